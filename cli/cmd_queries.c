/*
 * cli/cmd_queries.c: `witpipe queries SUBCOMMAND`: the query list.
 *   import FILE   store a list (lines, or MetaCLIP's metadata.json)
 *   build -o FILE make a list offline (WordNet, a text corpus, titles)
 *   match         match every pair not yet matched against the list
 *   grep          match captions on stdin against a list file (no catalog)
 */
#include "balance/balance.h"
#include "catalog/catalog.h"
#include "cli.h"

#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    O_WN = 1000,
    O_NOWN,
    O_CORPUS,
    O_TITLES,
    O_MINC,
    O_MINPMI,
    O_MINBI,
    O_MAXE,
    O_TABLE,
    O_NONUM,
    O_IMPORT,
    O_RULE,
    O_ICASE,
    O_LIST,
    O_JSONL,
    O_COUNT,
};

static const cli_opt queries_opts_table[] = {
    {NULL, 0, 0, 0, NULL, "build:"},
    {"output", 'o', required_argument, 'o', "FILE", "where the list goes (one entry a line)"},
    {"wordnet", 0, required_argument, O_WN, "DIR",
     "WordNet lemmas from DIR's data.* files (default\n/usr/share/wordnet, Debian's wordnet-base; "
     "'_' -> ' ')"},
    {"no-wordnet", 0, no_argument, O_NOWN, NULL, "no WordNet entries"},
    {"text-corpus", 0, required_argument, O_CORPUS, "FILE",
     "a text corpus file (repeatable; also as arguments)"},
    {"min-count", 0, required_argument, O_MINC, "N",
     "unigrams seen at least N times (default 100)"},
    {"min-pmi", 0, required_argument, O_MINPMI, "X",
     "bigrams with PMI >= X, natural log (default 3.0)"},
    {"min-bigram-count", 0, required_argument, O_MINBI, "N",
     "bigrams seen at least N times (default 20)"},
    {"titles", 0, required_argument, O_TITLES, "FILE",
     "one title a line, each an entry (repeatable)"},
    {"no-numbers", 0, no_argument, O_NONUM, NULL, "leave out the numbers 0-99"},
    {"max-entries", 0, required_argument, O_MAXE, "N", "keep the N most frequent (default 500000)"},
    {"table-max", 0, required_argument, O_TABLE, "N",
     "counter slots (default 4194304): memory stays bounded;\nwhen full, the least counted half is "
     "recycled\n(counts of rare items become lower bounds)"},
    {"import", 0, no_argument, O_IMPORT, NULL, "also store the list in the catalog"},
    {NULL, 0, 0, 0, NULL, "match and grep:"},
    {"rule", 0, required_argument, O_RULE, "R",
     "metaclip (default): caption padded with spaces, each of\n, . ; : ? ! and ` surrounded by "
     "spaces, tab/CR/LF made\nspaces; an entry matches when ' entry ' occurs\n(case-sensitive). "
     "metaclip2: no space on a side of the\nentry whose end character is CJK, Thai, Lao, "
     "Myanmar,\nKhmer, Tibetan or punctuation"},
    {"ignore-case", 0, no_argument, O_ICASE, NULL,
     "lowercase caption and entries (simple case mapping)"},
    {NULL, 0, 0, 0, NULL, "grep:"},
    {"list", 0, required_argument, O_LIST, "FILE", "the list to match against"},
    {"jsonl", 0, no_argument, O_JSONL, NULL, "stdin holds JSON strings, one a line"},
    {"count", 0, no_argument, O_COUNT, NULL, "print totals only"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_queries(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_queries = {
    .name = "queries",
    .summary = "the query list: import, build, match",
    .run = cmd_queries,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe queries import FILE\n"
                "       witpipe queries build -o FILE [options] [FILE...]\n"
                "       witpipe queries match [--rule metaclip|metaclip2] [--ignore-case]\n"
                "       witpipe queries grep --list FILE [--rule R] [--ignore-case] [--jsonl] "
                "[--count]\n",
    .about = "The query list is WIT's ~500k queries, MetaCLIP's metadata entries. The\n"
             "catalog holds one current list; each import or build --import stores a new\n"
             "version, and pairs matched against an older list are matched again.\n"
             "\n"
             "import FILE: one entry per line (kept verbatim: spaces and punctuation are\n"
             "part of the entry), or MetaCLIP's metadata.json (a JSON array of strings)\n"
             "unchanged. Empty entries, entries over 256 bytes, invalid UTF-8 and\n"
             "repeats are skipped and counted; list order is kept.\n"
             "\n"
             "build -o FILE [FILE...]: a list made offline, written to FILE (one entry a\n"
             "line) from WordNet lemmas, unigrams and PMI bigrams of text corpus files\n"
             "(plain, .gz, .zst, .bz2, .xz; a Wikipedia dump as text; default: the\n"
             "catalog's captions), --titles and the numbers 0-99.\n"
             "\n"
             "match: matches every pair not yet matched under the current list and rule\n"
             "(witpipe balance does this first too).\n"
             "\n"
             "grep: matches captions on stdin (one a line, or JSON strings with --jsonl)\n"
             "against a list FILE without a catalog, printing each caption's entry numbers\n"
             "(0-based, list order) on one line; --count prints totals only.\n",
    .opts = queries_opts_table,
};

/* An option of the queries table that belongs to another subcommand
 * (the parser accepted it): a one-line usage error naming it. An unknown
 * option ('?') was reported by the parser already. */
static int not_here(const char *sub, int opt)
{
    if (opt == '?')
        return CLI_USAGE;
    for (const cli_opt *o = queries_opts_table; o->name != NULL || o->help != NULL; o++)
        if (o->name != NULL && o->val == opt)
            return cli_usage_error(sub, "--%s is not an option of this subcommand", o->name);
    return CLI_USAGE;
}

static int parse_rule(const char *cmd, const char *v, int *rule)
{
    if (strcmp(v, "metaclip") == 0)
        *rule = QRY_RULE_METACLIP;
    else if (strcmp(v, "metaclip2") == 0)
        *rule = QRY_RULE_METACLIP2;
    else
        return cli_usage_error(cmd, "--rule '%s': expected metaclip or metaclip2", v);
    return 0;
}

/* Stores l in the corpus as the new current list. */
static int store_list(cli_ctx *ctx, const qry_list *l, const char *source, const char *action)
{
    cat *c = NULL;
    wp_err err = {0};
    int64_t version = 0;
    int rc = CLI_OK;

    if (cat_open(ctx->corpus, 0, &c, &err) != 0 ||
        qry_store(c, l, source, action, &version, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else {
        cli_info(ctx, "query list version %lld: %zu entries", (long long)version,
                 qry_list_count(l));
    }
    cat_close(c);
    return rc;
}

static void report_load(cli_ctx *ctx, const char *path, const qry_load_stats *st)
{
    cli_info(ctx,
             "%s: %lld entries read, %lld kept; skipped %lld duplicates, %lld empty, %lld "
             "longer than %d bytes, %lld invalid UTF-8",
             path, (long long)st->read, (long long)st->kept, (long long)st->duplicates,
             (long long)st->empty, (long long)st->too_long, QRY_ENTRY_MAX, (long long)st->bad_utf8);
}

static int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
    qry_list *l = NULL;
    qry_load_stats st = {0};
    wp_err err = {0};
    int opt, rc;
    while ((opt = cli_next_opt(&cli_cmd_queries, argc, argv)) != -1) {
        if (opt == 'h') {
            cli_print_usage(&cli_cmd_queries);
            return CLI_OK;
        }
        return not_here("queries import", opt);
    }
    if (optind + 1 != argc)
        return cli_usage_error("queries import", "needs exactly one FILE");
    if (qry_list_load(argv[optind], &l, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    report_load(ctx, argv[optind], &st);
    rc = store_list(ctx, l, argv[optind], "import");
    qry_list_free(l);
    return rc;
}

static int cmd_build(cli_ctx *ctx, int argc, char **argv)
{
    qry_build_opts o;
    qry_build_stats st = {0};
    qry_list *l = NULL;
    cat *c = NULL;
    wp_err err = {0};
    const char *output = NULL;
    const char **corpus = calloc((size_t)argc + 1, sizeof *corpus);
    const char **titles = calloc((size_t)argc + 1, sizeof *titles);
    int nc = 0, nt = 0, opt, rc = CLI_OK, do_import = 0;
    int64_t v;

    if (corpus == NULL || titles == NULL) {
        free(corpus);
        free(titles);
        cli_error(ctx, "out of memory");
        return CLI_FAIL;
    }
    qry_build_opts_init(&o);
    while ((opt = cli_next_opt(&cli_cmd_queries, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_queries);
            goto out;
        case 'o':
            output = optarg;
            break;
        case O_WN:
            o.wordnet_dir = optarg;
            break;
        case O_NOWN:
            o.wordnet_dir = NULL;
            break;
        case O_CORPUS:
            corpus[nc++] = optarg;
            break;
        case O_TITLES:
            titles[nt++] = optarg;
            break;
        case O_MINC:
            if (cli_parse_i64("queries build", "--min-count", optarg, 1, INT64_MAX, &o.min_count))
                rc = CLI_USAGE;
            break;
        case O_MINPMI:
            if (cli_parse_double("queries build", "--min-pmi", optarg, -100, 100, &o.min_pmi))
                rc = CLI_USAGE;
            break;
        case O_MINBI:
            if (cli_parse_i64("queries build", "--min-bigram-count", optarg, 1, INT64_MAX,
                              &o.min_bigram_count))
                rc = CLI_USAGE;
            break;
        case O_MAXE:
            if (cli_parse_i64("queries build", "--max-entries", optarg, 1, 100000000,
                              &o.max_entries))
                rc = CLI_USAGE;
            break;
        case O_TABLE:
            if (cli_parse_i64("queries build", "--table-max", optarg, 1024, (int64_t)1 << 34, &v))
                rc = CLI_USAGE;
            o.table_max = (size_t)v;
            break;
        case O_NONUM:
            o.numbers = 0;
            break;
        case O_IMPORT:
            do_import = 1;
            break;
        default:
            rc = not_here("queries build", opt);
        }
        if (rc != CLI_OK)
            goto out;
    }
    /* the corpus files may also follow the options */
    while (optind < argc)
        corpus[nc++] = argv[optind++];
    if (output == NULL) {
        rc = cli_usage_error("queries build", "needs -o FILE");
        goto out;
    }
    o.corpus = nc ? corpus : NULL;
    o.titles = nt ? titles : NULL;
    if (nc == 0) {
        /* default corpus: the catalog's own captions */
        if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0) {
            cli_error(ctx, "%s (give corpus FILEs to build without a catalog)", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
        o.catalog = c;
    }
    if (qry_build(&o, &l, &st, &ctx->rep, &err) != 0 || qry_list_write(l, output, &err) != 0) {
        cli_progress_done(ctx);
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    cli_progress_done(ctx);
    cli_info(ctx,
             "%s: %lld entries (WordNet %lld, unigrams %lld, bigrams %lld, titles %lld, numbers "
             "%lld) from %lld lines, %lld tokens; %lld counter slots recycled",
             output, (long long)st.entries, (long long)st.wordnet, (long long)st.unigrams,
             (long long)st.bigrams, (long long)st.titles, (long long)st.numbers,
             (long long)st.lines, (long long)st.tokens, (long long)st.evicted);
    cat_close(c);
    c = NULL;
    if (do_import)
        rc = store_list(ctx, l, output, "build");
out:
    cat_close(c);
    qry_list_free(l);
    free(corpus);
    free(titles);
    return rc;
}

static int cmd_match(cli_ctx *ctx, int argc, char **argv)
{
    int rule = QRY_RULE_METACLIP, flags = 0, opt, rc = CLI_OK, k;
    cat *c = NULL;
    wp_err err = {0};
    int64_t matched = 0;
    while ((opt = cli_next_opt(&cli_cmd_queries, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_queries);
            return CLI_OK;
        case O_RULE:
            if (parse_rule("queries match", optarg, &rule) != 0)
                return CLI_USAGE;
            break;
        case O_ICASE:
            flags |= QRY_IGNORE_CASE;
            break;
        default:
            return not_here("queries match", opt);
        }
    }
    if (optind < argc)
        return cli_usage_error("queries match", "unexpected argument '%s'", argv[optind]);
    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    k = bal_match_run(c, rule, flags, &ctx->rep, &matched, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else {
        cli_info(ctx, "%lld pairs matched", (long long)matched);
    }
    cat_close(c);
    return rc;
}

/* Reads one caption per line of stdin: a JSON string with --jsonl, else
 * the line itself; prints the matched entry numbers of each, one line per
 * caption. Batches are matched on all cores. */
static int cmd_grep(cli_ctx *ctx, int argc, char **argv)
{
    enum { BATCH = 16384 };
    const char *list = NULL;
    int rule = QRY_RULE_METACLIP, flags = 0, jsonl = 0, count_only = 0, opt, rc = CLI_OK;
    qry_list *l = NULL;
    qry_matcher *m = NULL;
    qry_load_stats lst = {0};
    wp_err err = {0};
    char **lines = NULL;
    size_t *lens = NULL;
    wp_buf *outs = NULL;
    qry_scratch **scr = NULL;
    int nthreads = omp_get_max_threads();
    char *line = NULL;
    size_t cap = 0;
    int64_t ncap = 0, nmatch = 0;
    double t0;

    while ((opt = cli_next_opt(&cli_cmd_queries, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_queries);
            return CLI_OK;
        case O_LIST:
            list = optarg;
            break;
        case O_RULE:
            if (parse_rule("queries grep", optarg, &rule) != 0)
                return CLI_USAGE;
            break;
        case O_ICASE:
            flags |= QRY_IGNORE_CASE;
            break;
        case O_JSONL:
            jsonl = 1;
            break;
        case O_COUNT:
            count_only = 1;
            break;
        default:
            return not_here("queries grep", opt);
        }
    }
    if (list == NULL)
        return cli_usage_error("queries grep", "needs --list FILE");
    if (optind < argc)
        return cli_usage_error("queries grep", "unexpected argument '%s'", argv[optind]);
    t0 = wp_now();
    if (qry_list_load(list, &l, &lst, &err) != 0 || qry_matcher_new(l, rule, flags, &m, &err)) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    cli_info(ctx, "%zu entries, %zu states, %.1f MB, built in %.2f s", qry_list_count(l),
             qry_matcher_states(m), (double)qry_matcher_bytes(m) / 1e6, wp_now() - t0);
    lines = calloc(BATCH, sizeof *lines);
    lens = calloc(BATCH, sizeof *lens);
    outs = calloc(BATCH, sizeof *outs);
    scr = calloc((size_t)nthreads, sizeof *scr);
    if (!lines || !lens || !outs || !scr) {
        cli_error(ctx, "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    for (int i = 0; i < nthreads; i++)
        if ((scr[i] = qry_scratch_new()) == NULL) {
            cli_error(ctx, "out of memory");
            rc = CLI_FAIL;
            goto out;
        }
    for (;;) {
        int n = 0, bad = 0;
        ssize_t got = 0;
        while (n < BATCH && (got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            if (len > 0 && line[len - 1] == '\n')
                len--;
            free(lines[n]);
            lines[n] = NULL;
            if (jsonl) {
                json_error_t je;
                json_t *v = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                if (v == NULL || !json_is_string(v)) {
                    json_decref(v);
                    cli_error(ctx, "stdin: caption %lld is not a JSON string",
                              (long long)(ncap + n + 1));
                    rc = CLI_FAIL;
                    goto out;
                }
                lens[n] = json_string_length(v);
                lines[n] = malloc(lens[n] + 1);
                if (lines[n])
                    memcpy(lines[n], json_string_value(v), lens[n] + 1);
                json_decref(v);
            } else {
                lens[n] = len;
                lines[n] = strndup(line, len);
            }
            if (lines[n] == NULL) {
                cli_error(ctx, "out of memory");
                rc = CLI_FAIL;
                goto out;
            }
            n++;
        }
        if (n == 0)
            break;
#pragma omp parallel for schedule(dynamic, 256) reduction(| : bad) reduction(+ : nmatch)
        for (int i = 0; i < n; i++) {
            const uint32_t *ids;
            int k = qry_match(m, lines[i], lens[i], scr[omp_get_thread_num()], &ids);
            wp_buf_reset(&outs[i]);
            if (k < 0) {
                bad = 1;
                continue;
            }
            nmatch += k;
            if (count_only)
                continue;
            for (int j = 0; j < k; j++)
                if (wp_buf_printf(&outs[i], j ? " %u" : "%u", ids[j]) != 0)
                    bad = 1;
        }
        if (bad) {
            cli_error(ctx, "out of memory");
            rc = CLI_FAIL;
            goto out;
        }
        if (!count_only)
            for (int i = 0; i < n; i++) {
                fwrite(outs[i].data ? outs[i].data : "", 1, outs[i].len, stdout);
                putchar('\n');
            }
        ncap += n;
        if (got < 0)
            break;
    }
    if (count_only)
        printf("%lld captions, %lld matches\n", (long long)ncap, (long long)nmatch);
    if (fflush(stdout) != 0) {
        cli_error(ctx, "stdout: write failed");
        rc = CLI_FAIL;
    }
out:
    if (lines)
        for (int i = 0; i < BATCH; i++)
            free(lines[i]);
    if (outs)
        for (int i = 0; i < BATCH; i++)
            wp_buf_free(&outs[i]);
    if (scr)
        for (int i = 0; i < nthreads; i++)
            qry_scratch_free(scr[i]);
    free(scr);
    free(lines);
    free(lens);
    free(outs);
    free(line);
    qry_matcher_free(m);
    qry_list_free(l);
    return rc;
}

int cmd_queries(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("queries", "needs a subcommand: import, build, match or grep");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_print_usage(&cli_cmd_queries);
        return CLI_OK;
    }
    if (strcmp(argv[1], "import") == 0)
        return cmd_import(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "build") == 0)
        return cmd_build(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "match") == 0)
        return cmd_match(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "grep") == 0)
        return cmd_grep(ctx, argc - 1, argv + 1);
    return cli_usage_error("queries", "unknown subcommand '%s'", argv[1]);
}
