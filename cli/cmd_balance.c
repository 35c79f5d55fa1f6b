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
    int a, b, k = 0;
    if (sscanf(v, "%d/%d%n", &a, &b, &k) != 2 || v[k] != '\0' || b < 1 || a < 1 || a > b)
        return cli_usage_error("balance", "--part '%s': expected I/N with 1 <= I <= N", v);
    *i = a;
    *n = b;
    return 0;
}

int cmd_balance(cli_ctx *ctx, int argc, char **argv)
{
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
    static const struct option longopts[] = {{"mode", required_argument, NULL, O_MODE},
                                             {"t", required_argument, NULL, O_T},
                                             {"tail-fraction", required_argument, NULL, O_TAIL},
                                             {"per-language", no_argument, NULL, O_PERLANG},
                                             {"seed", required_argument, NULL, O_SEED},
                                             {"keep-unmatched", no_argument, NULL, O_KEEPUN},
                                             {"one-text-per-image", no_argument, NULL, O_ONE},
                                             {"part", required_argument, NULL, O_PART},
                                             {"rule", required_argument, NULL, O_RULE},
                                             {"ignore-case", no_argument, NULL, O_ICASE},
                                             {"report", required_argument, NULL, O_REPORT},
                                             {"curve", required_argument, NULL, O_CURVE},
                                             {"dry-run", no_argument, NULL, O_DRY},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    bal_opts o;
    bal_stats st;
    cat *c = NULL;
    wp_err err = {0};
    char report[WP_PATH_MAX], curve[WP_PATH_MAX];
    char *pjs = NULL, *cjs = NULL;
    int64_t run_id = 0, v;
    int opt, rc = CLI_OK, k, t_given = 0;
    wp_buf params = {0};

    bal_opts_init(&o);
    memset(&st, 0, sizeof st);
    report[0] = curve[0] = '\0';
    while ((opt = cli_getopt("balance", argc, argv, "", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("balance"));
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
    if (wp_buf_printf(&params,
                      "{\"mode\":\"%s\",\"t\":%lld,\"tail_fraction\":%g,\"per_language\":%s,"
                      "\"seed\":%llu,\"keep_unmatched\":%s,\"one_text_per_image\":%s,"
                      "\"part\":\"%d/%d\",\"rule\":\"%s\",\"dry_run\":%s}",
                      o.mode == BAL_MODE_CAP ? "cap" : "metaclip", (long long)o.t, o.tail_fraction,
                      o.per_language ? "true" : "false", (unsigned long long)o.seed,
                      o.keep_unmatched ? "true" : "false", o.one_text_per_image ? "true" : "false",
                      o.part_n ? o.part_i : 1, o.part_n ? o.part_n : 1,
                      o.rule == QRY_RULE_METACLIP2
                          ? (o.match_flags ? "metaclip2+icase" : "metaclip2")
                          : (o.match_flags ? "metaclip+icase" : "metaclip"),
                      o.dry_run ? "true" : "false") != 0 ||
        (pjs = wp_buf_steal(&params)) == NULL) {
        cli_error(ctx, "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    if (cat_run_start(c, "balance", pjs, &run_id, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    o.run_id = run_id;
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
    cjs = bal_stats_to_json(&o, &st);
    if (cli_end_run(ctx, c, run_id, k == WP_ESTOP, k != 0, cjs ? cjs : "{}") != CLI_OK)
        rc = CLI_FAIL;
out:
    bal_stats_clear(&st);
    cat_close(c);
    wp_buf_free(&params);
    free(pjs);
    free(cjs);
    return rc;
}
