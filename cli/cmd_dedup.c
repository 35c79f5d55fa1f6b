/*
 * cli/cmd_dedup.c: `witpipe dedup`: exact, near-duplicate and semantic
 * deduplication and decontamination (the work is dedup/dd_run); this file
 * parses options, prints what a dry run would drop and the counts.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "dedup/dedup.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_drop(void *ud, int64_t pair_id, const char *reason)
{
    (void)ud;
    printf("%lld\t%s\n", (long long)pair_id, reason);
}

/* "0.01,0.03" into o->eps; CLI_USAGE after a one-line error. */
static int parse_eps(const char *arg, dd_opts *o)
{
    char copy[512], *save = NULL;
    if (strlen(arg) >= sizeof copy)
        return cli_usage_error("dedup", "--eps: list too long");
    snprintf(copy, sizeof copy, "%s", arg);
    o->neps = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->neps == DD_EPS_MAX)
            return cli_usage_error("dedup", "--eps: at most %d values", DD_EPS_MAX);
        if (cli_parse_double("dedup", "--eps", t, 0, 2, &o->eps[o->neps]) != 0)
            return CLI_USAGE;
        o->neps++;
    }
    if (o->neps == 0)
        return cli_usage_error("dedup", "--eps needs a value");
    return 0;
}

int cmd_dedup(cli_ctx *ctx, int argc, char **argv)
{
    enum {
        O_EXACT = 1000,
        O_NEAR,
        O_SEM,
        O_RADIUS,
        O_CLUSTERS,
        O_ITERS,
        O_EPS,
        O_MODEL,
        O_AGAINST,
        O_DRY,
        O_REPORT,
        O_NOREPORT,
        O_GROUPS,
        O_THREADS,
        O_BATCH,
        O_DELAY,
        O_TEXTDUP,
        O_ARADIUS,
        O_AEPS,
        O_CLIPMODEL
    };
    static const struct option longopts[] = {{"exact", no_argument, NULL, O_EXACT},
                                             {"near", no_argument, NULL, O_NEAR},
                                             {"semantic", no_argument, NULL, O_SEM},
                                             {"radius", required_argument, NULL, O_RADIUS},
                                             {"clusters", required_argument, NULL, O_CLUSTERS},
                                             {"iters", required_argument, NULL, O_ITERS},
                                             {"eps", required_argument, NULL, O_EPS},
                                             {"model", required_argument, NULL, O_MODEL},
                                             {"against", required_argument, NULL, O_AGAINST},
                                             {"dry-run", no_argument, NULL, O_DRY},
                                             {"report", required_argument, NULL, O_REPORT},
                                             {"no-report", no_argument, NULL, O_NOREPORT},
                                             {"groups", required_argument, NULL, O_GROUPS},
                                             {"threads", required_argument, NULL, O_THREADS},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"batch-delay-ms", required_argument, NULL, O_DELAY},
                                             {"text-dup", required_argument, NULL, O_TEXTDUP},
                                             {"against-radius", required_argument, NULL, O_ARADIUS},
                                             {"against-eps", required_argument, NULL, O_AEPS},
                                             {"clip-model", required_argument, NULL, O_CLIPMODEL},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    dd_opts o = dd_opts_default();
    dd_counts k;
    char report[WP_PATH_MAX];
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int opt, rc = CLI_OK, kinds = 0, no_report = 0, aradius = 0;
    int64_t v;

    report[0] = '\0';
    o.exact = o.near = 0;
    while ((opt = cli_getopt("dedup", argc, argv, "", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("dedup"));
            return CLI_OK;
        case O_EXACT:
            o.exact = kinds = 1;
            break;
        case O_NEAR:
            o.near = kinds = 1;
            break;
        case O_SEM:
            o.semantic = kinds = 1;
            break;
        case O_RADIUS:
            if (cli_parse_i64("dedup", "--radius", optarg, 0, DD_RADIUS_MAX, &v) != 0)
                return CLI_USAGE;
            o.radius = (int)v;
            break;
        case O_CLUSTERS:
            if (cli_parse_i64("dedup", "--clusters", optarg, 1, 10000000, &v) != 0)
                return CLI_USAGE;
            o.clusters = (int)v;
            break;
        case O_ITERS:
            if (cli_parse_i64("dedup", "--iters", optarg, 0, 1000, &v) != 0)
                return CLI_USAGE;
            o.iters = (int)v;
            break;
        case O_EPS:
            if (parse_eps(optarg, &o) != 0)
                return CLI_USAGE;
            break;
        case O_MODEL:
            o.model = optarg;
            break;
        case O_AGAINST:
            if (o.nagainst == DD_AGAINST_MAX)
                return cli_usage_error("dedup", "at most %d --against sets", DD_AGAINST_MAX);
            o.against[o.nagainst++] = optarg;
            break;
        case O_DRY:
            o.dry_run = 1;
            break;
        case O_REPORT:
            snprintf(report, sizeof report, "%s", optarg);
            break;
        case O_NOREPORT:
            no_report = 1;
            break;
        case O_GROUPS:
            if (cli_parse_i64("dedup", "--groups", optarg, 1, 10000, &v) != 0)
                return CLI_USAGE;
            o.report_groups = (int)v;
            break;
        case O_THREADS:
            if (cli_parse_i64("dedup", "--threads", optarg, 1, 1024, &v) != 0)
                return CLI_USAGE;
            o.threads = (int)v;
            break;
        case O_BATCH:
            if (cli_parse_i64("dedup", "--batch", optarg, 1, 1024, &v) != 0)
                return CLI_USAGE;
            o.batch = (int)v;
            break;
        case O_DELAY:
            if (cli_parse_i64("dedup", "--batch-delay-ms", optarg, 0, 60000, &v) != 0)
                return CLI_USAGE;
            o.batch_delay_ms = (int)v;
            break;
        case O_ARADIUS:
            if (strcmp(optarg, "off") == 0) {
                o.against_radius = -1;
            } else {
                if (cli_parse_i64("dedup", "--against-radius", optarg, 0, DD_RADIUS_MAX, &v))
                    return CLI_USAGE;
                o.against_radius = (int)v;
            }
            aradius = 1;
            break;
        case O_AEPS:
            if (cli_parse_double("dedup", "--against-eps", optarg, 0, 2, &o.against_eps) != 0)
                return CLI_USAGE;
            break;
        case O_CLIPMODEL:
            o.clip_model = optarg;
            break;
        case O_TEXTDUP:
            if (cli_parse_i64("dedup", "--text-dup", optarg, 1, 1000000000, &v) != 0)
                return CLI_USAGE;
            o.text_dup = (int)v;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("dedup", "unexpected argument '%s'", argv[optind]);
    if (!kinds)
        o.exact = o.near = 1;
    if (!aradius)
        o.against_radius = o.radius;
    if (o.against_eps > 0 && o.clip_model == NULL)
        return cli_usage_error("dedup", "--against-eps needs --clip-model DIR (the model that "
                                        "encoded the corpus)");
    if (!no_report) {
        if (report[0] == '\0' && wp_path_join(report, ctx->corpus, "dedup_groups.html", &err)) {
            cli_error(ctx, "%s", err.msg);
            return CLI_FAIL;
        }
        o.report = report;
    }
    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    int r = dd_run(c, st, &o, &ctx->rep, o.dry_run ? print_drop : NULL, NULL, &k, &err);
    cli_progress_done(ctx);
    if (r != 0) {
        if (r == WP_ESTOP)
            cli_warn(ctx, "stopped; the hashes so far are kept, run again to go on");
        else
            cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    cli_info(ctx,
             "%s%lld pairs: %lld exact, %lld near (%lld groups), %lld semantic (%lld groups), "
             "%lld contaminated dropped; %lld images hashed, %lld unreadable",
             o.dry_run ? "dry run, nothing recorded: " : "", (long long)k.pairs, (long long)k.exact,
             (long long)k.near, (long long)k.near_groups, (long long)k.semantic,
             (long long)k.semantic_groups, (long long)k.contaminated, (long long)k.hashed,
             (long long)k.unreadable);
    if (o.text_dup > 0 && !o.dry_run)
        cli_info(ctx,
                 "text flags (stage dedup-text): %lld pairs with a caption of more than %d "
                 "images, %lld more of images with more than %d captions",
                 (long long)k.text_shared, o.text_dup, (long long)k.text_many, o.text_dup);
    if (o.semantic)
        for (int e = 0; e < o.neps; e++)
            cli_info(ctx, "semantic eps %g: %lld of %lld pairs (%.2f%%) would go", o.eps[e],
                     (long long)k.sem_drop_by_eps[e], (long long)k.pairs,
                     k.pairs ? 100.0 * (double)k.sem_drop_by_eps[e] / (double)k.pairs : 0.0);
    if (o.report && (k.exact_groups + k.near_groups + k.semantic_groups) > 0)
        cli_info(ctx, "largest groups: %s", o.report);
out:
    st_close(st);
    cat_close(c);
    return rc;
}
