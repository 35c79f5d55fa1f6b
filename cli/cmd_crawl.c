/*
 * cli/cmd_crawl.c: `witpipe crawl`: candidate pairs from a live crawl
 * (--seeds FILE), WARC files (--warc FILE...) or Common Crawl WAT files
 * (--wat FILE...). The option table and the help text sit together here;
 * the stage (its run and defaults) is crawl/crawl.h's crawl_run.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "crawl/crawl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 64 /* --include / --exclude each */

enum {
    O_SEEDS = 1000,
    O_WARC,
    O_WAT,
    O_TEXT_FROM,
    O_MAX_TEXT,
    O_LONG_TEXT,
    O_BAD_UTF8,
    O_SKIP_EXT,
    O_MAX_PAGE,
    O_PART,
    O_BATCH,
    O_MAX_RECORD,
    O_TOKEN,
    O_MAX_DEPTH,
    O_MAX_PAGES,
    O_ANY_DOMAIN,
    O_INCLUDE,
    O_EXCLUDE,
    O_USER_AGENT,
    O_DELAY,
    O_TIMEOUT,
    O_RETRIES,
    O_CONCURRENCY,
    O_ALLOW_NET,
    O_NO_PREFILTER,
    O_DRY_RUN,
    O_MAX_IMAGES,
    O_MAX_ATTRS,
    O_MAX_RECORDS,
};

static const cli_opt crawl_opts_table[] = {
    {NULL, 0, 0, 0, NULL, "Sources:"},
    {"seeds", 0, required_argument, O_SEEDS, "FILE",
     "live crawl, breadth-first from the URLs in FILE (one a\n"
     "line, # comments); frontier kept in the catalog"},
    {"warc", 0, no_argument, O_WARC, "FILE...",
     "WARC 1.0/1.1 files, plain or gzip: response records\n"
     "with HTML payloads (chunked; gzip, deflate or br)"},
    {"wat", 0, no_argument, O_WAT, "FILE...",
     "Common Crawl WAT files (metadata JSON: IMG@/src links)"},
    {"part", 0, required_argument, O_PART, "I/N",
     "only part I of N (for scale-out). Archives: whole files\n"
     "when there are at least N, else every N-th record of\n"
     "each. --seeds: the seeds and pages whose site (registrable\n"
     "domain, else host) is in part I; in-scope links to other\n"
     "parts' sites are counted (links_other_part), not fetched"},
    {NULL, 0, 0, 0, NULL, "Extraction:"},
    {"text-from", 0, required_argument, O_TEXT_FROM, "LIST",
     "text candidates in order of preference, from alt,\n"
     "title, figcaption (default: alt)"},
    {"max-text", 0, required_argument, O_MAX_TEXT, "N", "longest text in bytes (default 2000)"},
    {"long-text", 0, required_argument, O_LONG_TEXT, "MODE",
     "truncate (at a character boundary, default) or drop"},
    {"bad-utf8", 0, required_argument, O_BAD_UTF8, "MODE",
     "repair (U+FFFD, default) or drop texts with invalid UTF-8"},
    {"skip-ext", 0, required_argument, O_SKIP_EXT, "LIST",
     "image extensions to drop (default svg,gif; \"\" for none)"},
    {"max-page", 0, required_argument, O_MAX_PAGE, "BYTES",
     "larger pages are skipped (default 8388608)"},
    {"max-images", 0, required_argument, O_MAX_IMAGES, "N",
     "images read per page or WAT record (default 20000);\n"
     "the rest are counted (over_cap) and reported"},
    {"max-attrs", 0, required_argument, O_MAX_ATTRS, "N",
     "attributes per tag kept before parsing (default 64);\n"
     "the rest are counted (attrs_capped) and reported"},
    {"token", 0, required_argument, O_TOKEN, "NAME", "our robots product token (default witpipe)"},
    {"no-prefilter", 0, no_argument, O_NO_PREFILTER, NULL,
     "parse whole pages and whole WAT records (slower; the\n"
     "reference the fast paths are tested against)"},
    {NULL, 0, 0, 0, NULL, "Archives:"},
    {"batch", 0, required_argument, O_BATCH, "N",
     "records per catalog transaction (default 4096; a\n"
     "killed run re-reads at most this many on resume)"},
    {"max-record", 0, required_argument, O_MAX_RECORD, "BYTES",
     "larger records are skipped (default 67108864)"},
    {"max-records", 0, required_argument, O_MAX_RECORDS, "N",
     "stop after N records in this run, as Ctrl-C does (run\n"
     "again to go on from there)"},
    {"dry-run", 0, no_argument, O_DRY_RUN, NULL,
     "extract and count only: no pairs stored, no progress\n"
     "saved (what a run would give; the bench's no-catalog figure)"},
    {NULL, 0, 0, 0, NULL, "Live crawl:"},
    {"max-depth", 0, required_argument, O_MAX_DEPTH, "N", "link depth from the seeds (default 3)"},
    {"max-pages", 0, required_argument, O_MAX_PAGES, "N",
     "pages to fetch in all, redirects included (default\n"
     "10000); a redirect's target is queued like a link and\n"
     "checked against robots.txt and scope (at most 5 hops)"},
    {"any-domain", 0, no_argument, O_ANY_DOMAIN, NULL,
     "follow links off the seeds' registrable domains"},
    {"include", 0, required_argument, O_INCLUDE, "PAT",
     "only URLs containing PAT (* wildcards; repeatable)"},
    {"exclude", 0, required_argument, O_EXCLUDE, "PAT",
     "never URLs containing PAT (* wildcards; repeatable)"},
    {"user-agent", 0, required_argument, O_USER_AGENT, "UA",
     "User-Agent header (default witpipe/VERSION)"},
    {"delay", 0, required_argument, O_DELAY, "S",
     "seconds between requests to one host (default 1;\n"
     "a longer robots.txt Crawl-delay wins)"},
    {"timeout", 0, required_argument, O_TIMEOUT, "S", "seconds per request (default 30)"},
    {"retries", 0, required_argument, O_RETRIES, "N",
     "retries for timeouts, 429 and 5xx (default 2)"},
    {"concurrency", 0, required_argument, O_CONCURRENCY, "N", "requests at once (default 16)"},
    {"allow-net", 0, required_argument, O_ALLOW_NET, "CIDR",
     "let the SSRF guard pass this range (repeatable)"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_crawl(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_crawl = {
    .name = "crawl",
    .summary = "candidate pairs from a live crawl, WARC or WAT files",
    .run = cmd_crawl,
    .synopsis = "usage: witpipe crawl [-C DIR] --seeds FILE [options]\n"
                "       witpipe crawl [-C DIR] --warc FILE... [options]\n"
                "       witpipe crawl [-C DIR] --wat FILE... [options]\n",
    .about = "Extracts (image URL, text) candidate pairs into the catalog. The text is\n"
             "the image's alt text by default; title and <figcaption> (and the page\n"
             "title and language) are kept in pairs.extra. A pair (URL, text) is stored\n"
             "once; every further page showing it is recorded as a sighting. Pages whose\n"
             "<meta name=robots> (or one naming our token) or X-Robots-Tag says noai or\n"
             "noimageai give no pairs. Runs resume where they stopped.\n",
    .opts = crawl_opts_table,
};

static int parse_part(const char *v, int *i, int *n)
{
    wp_part p;
    if (cli_parse_part("crawl", v, &p) != 0)
        return CLI_USAGE;
    *i = p.i;
    *n = p.n;
    return 0;
}

static int print_counts(cli_ctx *ctx, const crawl_counts *k)
{
    char drops[1024] = "";
    size_t off = 0;
    for (int i = 1; i < CRAWL_DROP_N; i++)
        if (k->drops[i] > 0 && off < sizeof drops)
            off += (size_t)snprintf(drops + off, sizeof drops - off, " %s=%llu", crawl_drop_name(i),
                                    (unsigned long long)k->drops[i]);
    cli_info(ctx,
             "crawl: %llu pages (%llu opted out, %llu skipped), %llu records (%llu skipped), "
             "%llu images, %llu new pairs, %llu seen again, %llu corrupt spots, "
             "%llu pages capped",
             (unsigned long long)k->pages, (unsigned long long)k->pages_opt_out,
             (unsigned long long)k->pages_skipped, (unsigned long long)k->records,
             (unsigned long long)k->records_skipped, (unsigned long long)k->images,
             (unsigned long long)k->pairs_new, (unsigned long long)k->pairs_seen,
             (unsigned long long)k->corrupt, (unsigned long long)k->pages_capped);
    if (off > 0)
        cli_info(ctx, "crawl: dropped:%s", drops);
    return 0;
}

static int cmd_crawl(cli_ctx *ctx, int argc, char **argv)
{
    crawl_opts o;
    crawl_archive_opts ao;
    crawl_live_opts lo;
    crawl_counts counts;
    const char *include[MAX_PATTERNS + 1] = {0}, *exclude[MAX_PATTERNS + 1] = {0};
    const char *allow_net[MAX_PATTERNS + 1] = {0};
    int n_inc = 0, n_exc = 0, n_allow = 0;
    int mode = 0; /* O_SEEDS, O_WARC, O_WAT */
    cat *c = NULL;
    wp_err err = {0};
    int64_t v;
    double d;
    int opt, rc = CLI_OK, lib_rc = 0;

    crawl_opts_init(&o);
    crawl_archive_opts_init(&ao);
    crawl_live_opts_init(&lo);
    while ((opt = cli_next_opt(&cli_cmd_crawl, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_crawl);
            return CLI_OK;
        case O_SEEDS:
        case O_WARC:
        case O_WAT:
            if (mode != 0 && mode != opt)
                return cli_usage_error("crawl", "choose one of --seeds, --warc, --wat");
            mode = opt;
            if (opt == O_SEEDS)
                lo.seeds_file = optarg;
            break;
        case O_TEXT_FROM:
            if (crawl_opts_text_from(&o, optarg, &err) != 0)
                return cli_usage_error("crawl", "%s", err.msg);
            break;
        case O_MAX_TEXT:
            if (cli_parse_i64("crawl", "--max-text", optarg, 1, 1 << 20, &v) != 0)
                return CLI_USAGE;
            o.max_text = (size_t)v;
            break;
        case O_LONG_TEXT:
            if (strcmp(optarg, "truncate") != 0 && strcmp(optarg, "drop") != 0)
                return cli_usage_error("crawl", "--long-text: truncate or drop");
            o.long_text_drop = strcmp(optarg, "drop") == 0;
            break;
        case O_BAD_UTF8:
            if (strcmp(optarg, "repair") != 0 && strcmp(optarg, "drop") != 0)
                return cli_usage_error("crawl", "--bad-utf8: repair or drop");
            o.bad_utf8_drop = strcmp(optarg, "drop") == 0;
            break;
        case O_SKIP_EXT:
            if (crawl_opts_skip_ext(&o, optarg, &err) != 0)
                return cli_usage_error("crawl", "%s", err.msg);
            break;
        case O_MAX_PAGE:
            if (cli_parse_i64("crawl", "--max-page", optarg, 1024, INT32_MAX, &v) != 0)
                return CLI_USAGE;
            o.max_page = (size_t)v;
            break;
        case O_PART:
            if (parse_part(optarg, &ao.part_i, &ao.part_n) != 0)
                return CLI_USAGE;
            lo.part.i = ao.part_i;
            lo.part.n = ao.part_n;
            break;
        case O_BATCH:
            if (cli_parse_i64("crawl", "--batch", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            ao.batch = (int)v;
            break;
        case O_MAX_RECORD:
            if (cli_parse_i64("crawl", "--max-record", optarg, 4096, INT32_MAX, &v) != 0)
                return CLI_USAGE;
            ao.max_record = (size_t)v;
            break;
        case O_MAX_IMAGES:
            if (cli_parse_i64("crawl", "--max-images", optarg, 1, 10000000, &v) != 0)
                return CLI_USAGE;
            o.max_images = (size_t)v;
            break;
        case O_MAX_ATTRS:
            if (cli_parse_i64("crawl", "--max-attrs", optarg, 1, 100000, &v) != 0)
                return CLI_USAGE;
            o.max_attrs = (int)v;
            break;
        case O_MAX_RECORDS:
            if (cli_parse_i64("crawl", "--max-records", optarg, 1, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            ao.max_records = v;
            break;
        case O_TOKEN:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof o.token)
                return cli_usage_error("crawl", "--token: 1 to %d characters",
                                       (int)sizeof o.token - 1);
            snprintf(o.token, sizeof o.token, "%s", optarg);
            break;
        case O_MAX_DEPTH:
            if (cli_parse_i64("crawl", "--max-depth", optarg, 0, 1000, &v) != 0)
                return CLI_USAGE;
            lo.max_depth = (int)v;
            break;
        case O_MAX_PAGES:
            if (cli_parse_i64("crawl", "--max-pages", optarg, 1, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            lo.max_pages = v;
            break;
        case O_DRY_RUN:
            o.dry_run = 1;
            break;
        case O_NO_PREFILTER:
            o.no_prefilter = 1;
            break;
        case O_ANY_DOMAIN:
            lo.any_domain = 1;
            break;
        case O_INCLUDE:
        case O_EXCLUDE:
        case O_ALLOW_NET: {
            const char **list = opt == O_INCLUDE ? include : opt == O_EXCLUDE ? exclude : allow_net;
            int *n = opt == O_INCLUDE ? &n_inc : opt == O_EXCLUDE ? &n_exc : &n_allow;
            if (*n >= MAX_PATTERNS)
                return cli_usage_error("crawl", "at most %d of each pattern option", MAX_PATTERNS);
            list[(*n)++] = optarg;
            break;
        }
        case O_USER_AGENT:
            lo.user_agent = optarg;
            break;
        case O_DELAY:
            if (cli_parse_double("crawl", "--delay", optarg, 0, 3600, &d) != 0)
                return CLI_USAGE;
            lo.delay = d;
            break;
        case O_TIMEOUT:
            if (cli_parse_double("crawl", "--timeout", optarg, 0.1, 3600, &d) != 0)
                return CLI_USAGE;
            lo.timeout = d;
            break;
        case O_RETRIES:
            if (cli_parse_i64("crawl", "--retries", optarg, 0, 20, &v) != 0)
                return CLI_USAGE;
            lo.retries = (int)v;
            break;
        case O_CONCURRENCY:
            if (cli_parse_i64("crawl", "--concurrency", optarg, 1, 1024, &v) != 0)
                return CLI_USAGE;
            lo.concurrency = (int)v;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (mode == 0)
        return cli_usage_error("crawl", "one of --seeds FILE, --warc FILE..., --wat FILE... "
                                        "is required");
    if (mode == O_SEEDS && optind < argc)
        return cli_usage_error("crawl", "unexpected argument '%s'", argv[optind]);
    if (mode != O_SEEDS && optind >= argc)
        return cli_usage_error("crawl", "%s needs at least one file",
                               mode == O_WARC ? "--warc" : "--wat");
    lo.include = n_inc ? include : NULL;
    lo.exclude = n_exc ? exclude : NULL;
    lo.allow_net = n_allow ? allow_net : NULL;
    lo.rep = &ctx->rep;
    ao.rep = &ctx->rep;
    if (mode == O_SEEDS && o.dry_run)
        return cli_usage_error("crawl", "--dry-run is for --warc and --wat");

    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    lib_rc = crawl_run(c,
                       mode == O_SEEDS  ? CRAWL_SRC_SEEDS
                       : mode == O_WARC ? CRAWL_SRC_WARC
                                        : CRAWL_SRC_WAT,
                       &o, &lo, argv + optind, argc - optind, &ao, &counts, &err);
    cli_progress_done(ctx);
    if (lib_rc != 0 && lib_rc != WP_ESTOP) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    if (lib_rc == WP_ESTOP) {
        cli_warn(ctx, "crawl: stopped; run the same command again to resume");
        rc = CLI_FAIL;
    }
    print_counts(ctx, &counts);
    cat_close(c);
    return rc;
}
