/*
 * cli/cmd_balance.c: `witpipe balance`: match captions against the current
 * query list and balance the corpus (MetaCLIP's draw or WIT's cap),
 * recording a decision per pair, a report JSON and the count curve SVG.
 */
#include "balance/balance.h"
#include "catalog/catalog.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_part(const char *v, int *i, int *n)
{
    wp_part p;
    if (cli_parse_part("balance", v, &p) != 0)
        return CLI_USAGE;
    *i = p.i;
    *n = p.n;
    return 0;
}

enum {
    O_MODE = 1000,
    O_T,
    O_TAIL,
    O_PERLANG,
    O_SEED,
    O_KEEPUN,
    O_ONE,
    O_PART,
    O_RULE,
    O_ICASE,
    O_REPORT,
    O_CURVE,
    O_DRY
};

static const cli_opt balance_opts_table[] = {
    {"mode", 0, required_argument, O_MODE, "M",
     "metaclip (default): p_e = t / max(count_e, t); a pair\nmatching entries E is kept with "
     "probability\n1 - prod(1 - p_e). cap: WIT's rule, pairs in the order\nof their seeded draw; "
     "a pair is kept while any of its\nentries has kept fewer than t, and a kept pair counts\n"
     "for all its entries"},
    {"t", 0, required_argument, O_T, "N", "the per-entry target (default 20000)"},
    {"tail-fraction", 0, required_argument, O_TAIL, "F",
     "choose t as the smallest t with sum(count_e < t) >=\nF * all matches (MetaCLIP 2 uses about "
     "0.06)"},
    {"per-language", 0, no_argument, O_PERLANG, NULL,
     "t per language (filter's language field; tail fraction\ndefault 0.06), counts per "
     "(language, entry)"},
    {"seed", 0, required_argument, O_SEED, "N",
     "the draw: u = mix(seed, pair uid) in [0,1), so any\nmachine deciding any subset agrees "
     "(default 0)"},
    {"keep-unmatched", 0, no_argument, O_KEEPUN, NULL,
     "keep pairs matching no entry (default: drop)"},
    {"one-text-per-image", 0, no_argument, O_ONE, NULL,
     "an image with several captions keeps one (seeded),\nbefore balancing"},
    {"part", 0, required_argument, O_PART, "I/N",
     "record decisions only for part I of N (by uid); counts\nand decisions are those of the whole "
     "corpus"},
    {"rule", 0, required_argument, O_RULE, "R", "the matching rule (see witpipe help queries)"},
    {"ignore-case", 0, no_argument, O_ICASE, NULL, "match without case (see witpipe help queries)"},
    {"report", 0, required_argument, O_REPORT, "FILE",
     "the report JSON (default DIR/balance_report.json;\nschemas/balance_report.schema.json)"},
    {"curve", 0, required_argument, O_CURVE, "FILE",
     "the sorted count curve before/after, SVG (default\nDIR/balance_curve.svg)"},
    {"dry-run", 0, no_argument, O_DRY, NULL, "decide and report, record no decisions"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_balance(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_balance = {
    .name = "balance",
    .summary = "balance pairs over the query list (MetaCLIP, WIT cap)",
    .run = cmd_balance,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe balance [-C DIR] [options]\n",
    .about = "Matches every pair not yet matched against the current query list (all\n"
             "cores), then decides each eligible pair (no drop decision from another\n"
             "stage, image not failed) and records it in decisions: stage balance, reason\n"
             "the pair's rarest matched entry (or unmatched, one_text_per_image), score\n"
             "the keep probability. Re-runnable with other options: decisions are replaced.\n",
    .opts = balance_opts_table,
};

int cmd_balance(cli_ctx *ctx, int argc, char **argv)
{
    bal_opts o;
    bal_stats st;
    cat *c = NULL;
    wp_err err = {0};
    char report[WP_PATH_MAX], curve[WP_PATH_MAX];
    char *pjs = NULL, *cjs = NULL;
    int64_t v;
    int opt, rc = CLI_OK, k, t_given = 0;
    wp_buf params = {0};

    bal_opts_init(&o);
    memset(&st, 0, sizeof st);
    report[0] = curve[0] = '\0';
    while ((opt = cli_next_opt(&cli_cmd_balance, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_balance);
            return CLI_OK;
        case O_MODE:
            if (strcmp(optarg, "metaclip") == 0)
                o.mode = BAL_MODE_METACLIP;
            else if (strcmp(optarg, "cap") == 0)
                o.mode = BAL_MODE_CAP;
            else
                return cli_usage_error("balance", "--mode '%s': expected metaclip or cap", optarg);
            break;
        case O_T:
            if (cli_parse_i64("balance", "--t", optarg, 1, INT64_MAX / 2, &o.t) != 0)
                return CLI_USAGE;
            t_given = 1;
            break;
        case O_TAIL:
            if (cli_parse_double("balance", "--tail-fraction", optarg, 1e-9, 1.0,
                                 &o.tail_fraction) != 0)
                return CLI_USAGE;
            break;
        case O_PERLANG:
            o.per_language = 1;
            break;
        case O_SEED:
            if (cli_parse_i64("balance", "--seed", optarg, 0, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            o.seed = (uint64_t)v;
            break;
        case O_KEEPUN:
            o.keep_unmatched = 1;
            break;
        case O_ONE:
            o.one_text_per_image = 1;
            break;
        case O_PART:
            if (parse_part(optarg, &o.part_i, &o.part_n) != 0)
                return CLI_USAGE;
            break;
        case O_RULE:
            if (strcmp(optarg, "metaclip") == 0)
                o.rule = QRY_RULE_METACLIP;
            else if (strcmp(optarg, "metaclip2") == 0)
                o.rule = QRY_RULE_METACLIP2;
            else
                return cli_usage_error("balance", "--rule '%s': expected metaclip or metaclip2",
                                       optarg);
            break;
        case O_ICASE:
            o.match_flags |= QRY_IGNORE_CASE;
            break;
        case O_REPORT:
            snprintf(report, sizeof report, "%s", optarg);
            break;
        case O_CURVE:
            snprintf(curve, sizeof curve, "%s", optarg);
            break;
        case O_DRY:
            o.dry_run = 1;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("balance", "unexpected argument '%s'", argv[optind]);
    if (o.tail_fraction > 0 && t_given)
        return cli_usage_error("balance", "--t and --tail-fraction exclude each other");
    if (o.mode == BAL_MODE_CAP && (o.tail_fraction > 0 || o.per_language))
        return cli_usage_error("balance", "--mode cap takes --t only (no --tail-fraction, "
                                          "--per-language)");
    if (o.per_language && t_given)
        return cli_usage_error("balance", "--per-language chooses t per language from "
                                          "--tail-fraction (default 0.06); drop --t");
    if ((!report[0] && wp_path_join(report, ctx->corpus, "balance_report.json", &err) != 0) ||
        (!curve[0] && wp_path_join(curve, ctx->corpus, "balance_curve.svg", &err) != 0)) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    o.report_json = report;
    o.curve_svg = curve;
    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    k = bal_run(c, &o, &ctx->rep, &st, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; matches so far are kept, run again to finish");
        else
            cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else {
        cli_info(ctx,
                 "%lld pairs (%lld matched now), %lld of %lld entries matched; t = %lld, %lld "
                 "head entries; kept %lld, dropped %lld (%lld unmatched, %lld one text per "
                 "image) of %lld decided; head share %.3f -> %.3f, entropy %.2f -> %.2f bits",
                 (long long)st.pairs, (long long)st.pairs_matched_now,
                 (long long)st.entries_matched, (long long)st.entries, (long long)st.t,
                 (long long)st.head_entries, (long long)st.kept, (long long)st.dropped,
                 (long long)st.dropped_unmatched, (long long)st.dropped_one_text,
                 (long long)st.pairs_decided, st.head_share_before, st.head_share_after,
                 st.entropy_before, st.entropy_after);
        cli_info(ctx, "report: %s, count curve: %s", report, curve);
    }
    bal_stats_clear(&st);
    cat_close(c);
    wp_buf_free(&params);
    free(pjs);
    free(cjs);
    return rc;
}
