/*
 * cli/cmd_crawl.c: `witpipe crawl`: candidate pairs from a live crawl
 * (--seeds FILE), WARC files (--warc FILE...) or Common Crawl WAT files
 * (--wat FILE...).
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
};

static int parse_part(const char *v, int *i, int *n)
{
    char tail;
    if (sscanf(v, "%d/%d%c", i, n, &tail) != 2 || *n < 1 || *i < 1 || *i > *n)
        return cli_usage_error("crawl", "--part '%s': expected I/N with 1 <= I <= N", v);
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
             "%llu images, %llu new pairs, %llu seen again, %llu corrupt spots",
             (unsigned long long)k->pages, (unsigned long long)k->pages_opt_out,
             (unsigned long long)k->pages_skipped, (unsigned long long)k->records,
             (unsigned long long)k->records_skipped, (unsigned long long)k->images,
             (unsigned long long)k->pairs_new, (unsigned long long)k->pairs_seen,
             (unsigned long long)k->corrupt);
    if (off > 0)
        cli_info(ctx, "crawl: dropped:%s", drops);
    return 0;
}

int cmd_crawl(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"seeds", required_argument, NULL, O_SEEDS},
        {"warc", no_argument, NULL, O_WARC},
        {"wat", no_argument, NULL, O_WAT},
        {"text-from", required_argument, NULL, O_TEXT_FROM},
        {"max-text", required_argument, NULL, O_MAX_TEXT},
        {"long-text", required_argument, NULL, O_LONG_TEXT},
        {"bad-utf8", required_argument, NULL, O_BAD_UTF8},
        {"skip-ext", required_argument, NULL, O_SKIP_EXT},
        {"max-page", required_argument, NULL, O_MAX_PAGE},
        {"part", required_argument, NULL, O_PART},
        {"batch", required_argument, NULL, O_BATCH},
        {"max-record", required_argument, NULL, O_MAX_RECORD},
        {"token", required_argument, NULL, O_TOKEN},
        {"max-depth", required_argument, NULL, O_MAX_DEPTH},
        {"max-pages", required_argument, NULL, O_MAX_PAGES},
        {"any-domain", no_argument, NULL, O_ANY_DOMAIN},
        {"include", required_argument, NULL, O_INCLUDE},
        {"exclude", required_argument, NULL, O_EXCLUDE},
        {"user-agent", required_argument, NULL, O_USER_AGENT},
        {"delay", required_argument, NULL, O_DELAY},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"retries", required_argument, NULL, O_RETRIES},
        {"concurrency", required_argument, NULL, O_CONCURRENCY},
        {"allow-net", required_argument, NULL, O_ALLOW_NET},
        {"no-prefilter", no_argument, NULL, O_NO_PREFILTER},
        {"dry-run", no_argument, NULL, O_DRY_RUN},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    crawl_opts o;
    crawl_archive_opts ao = {.part_i = 1, .part_n = 1, .batch = 4096, .max_record = 64u << 20};
    crawl_live_opts lo;
    const char *include[MAX_PATTERNS + 1] = {0}, *exclude[MAX_PATTERNS + 1] = {0};
    const char *allow_net[MAX_PATTERNS + 1] = {0};
    int n_inc = 0, n_exc = 0, n_allow = 0;
    int mode = 0; /* O_SEEDS, O_WARC, O_WAT */
    cat *c = NULL;
    crawl_sink *sink = NULL;
    wp_err err = {0};
    wp_buf params = {0}, counts = {0};
    int64_t run_id = 0, v;
    double d;
    int opt, rc = CLI_OK, lib_rc = 0;

    crawl_opts_init(&o);
    memset(&lo, 0, sizeof lo);
    lo.max_depth = 3;
    lo.max_pages = 10000;
    lo.delay = 1.0;
    lo.timeout = 30;
    lo.retries = 2;
    lo.concurrency = 16;
    while ((opt = cli_getopt("crawl", argc, argv, "", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("crawl"));
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
    if (mode == O_SEEDS)
        o.collect_links = 1;
    if (mode == O_SEEDS && o.dry_run)
        return cli_usage_error("crawl", "--dry-run is for --warc and --wat");

    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    wp_buf_printf(&params, "{\"mode\":\"%s\",\"part\":\"%d/%d\",\"max_text\":%zu}",
                  mode == O_SEEDS  ? "seeds"
                  : mode == O_WARC ? "warc"
                                   : "wat",
                  ao.part_i, ao.part_n, o.max_text);
    if (cat_run_start(c, "crawl", params.data ? params.data : "{}", &run_id, &err) != 0 ||
        (sink = crawl_sink_new(c, &o, run_id)) == NULL) {
        cli_error(ctx, "%s", err.msg[0] ? err.msg : "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    if (mode == O_SEEDS)
        lib_rc = crawl_live(c, sink, &lo, &err);
    else
        lib_rc = crawl_archives(c, sink, argv + optind, argc - optind, mode == O_WAT, &ao, &err);
    cli_progress_done(ctx);
    if (lib_rc != 0 && lib_rc != WP_ESTOP) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    if (lib_rc == WP_ESTOP)
        cli_warn(ctx, "crawl: stopped; run the same command again to resume");
    print_counts(ctx, crawl_sink_counts(sink));
    if (crawl_sink_counts(sink)->unreadable > 0)
        rc = CLI_FAIL;
    crawl_counts_json(crawl_sink_counts(sink), &counts);
    if (cli_end_run(ctx, c, run_id, lib_rc == WP_ESTOP, rc != CLI_OK, counts.data) != CLI_OK)
        rc = CLI_FAIL;
    if (lib_rc == WP_ESTOP && rc == CLI_OK)
        rc = CLI_FAIL;
out:
    crawl_sink_free(sink);
    cat_close(c);
    wp_buf_free(&params);
    wp_buf_free(&counts);
    return rc;
}
