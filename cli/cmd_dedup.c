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
    O_CLIPMODEL,
    O_PART,
};

static const cli_opt dedup_opts_table[] = {
    {"exact", 0, no_argument, O_EXACT, NULL,
     "same image: same URL, stored bytes or bytes as served"},
    {"near", 0, no_argument, O_NEAR, NULL,
     "64-bit DCT perceptual hashes of the image and of its\ncentre both within --radius, or "
     "one's whole within it of\nthe other's centre (a crop); hashes are kept in the\ncatalog, a "
     "stopped run resumes"},
    {"radius", 0, required_argument, O_RADIUS, "N", "Hamming radius, 0..32 (default 6)"},
    {"semantic", 0, no_argument, O_SEM, NULL,
     "SemDeDup over the image embeddings of `encode`: spherical\nk-means, then within each cluster "
     "(farthest from the\ncentroid first) drop a pair whose cosine to a kept one\nexceeds 1 - eps"},
    {"model", 0, required_argument, O_MODEL, "NAME",
     "embeddings to use (DIR/embeddings/NAME; default the only one)"},
    {"clusters", 0, required_argument, O_CLUSTERS, "K", "k-means clusters (default about sqrt(N))"},
    {"iters", 0, required_argument, O_ITERS, "N", "k-means rounds (default 20)"},
    {"eps", 0, required_argument, O_EPS, "E[,E...]",
     "SemDeDup eps (default 0.05); with several values the\nfirst decides and each one's removal "
     "count is printed"},
    {"against", 0, required_argument, O_AGAINST, "SET",
     "drop pairs whose image is within --radius of an image\nof an evaluation set: a folder of "
     "images, a folder of\nWebDataset .tar shards, one .tar, or a file listing image\nand/or "
     ".tar paths (repeatable; reason contaminated:NAME)"},
    {"against-radius", 0, required_argument, O_ARADIUS, "R",
     "the pHash radius for --against (default --radius; off: none)"},
    {"against-eps", 0, required_argument, O_AEPS, "E",
     "also drop pairs whose image embedding (--model) has a\ncosine above 1 - E with an evaluation "
     "image's, embedded\nwith --clip-model DIR (the model that encoded the corpus)"},
    {"text-dup", 0, required_argument, O_TEXTDUP, "N",
     "flag (stage dedup-text, decision keep, for the filter\nstage) pairs whose caption is the "
     "whole text of more than\nN images (reason caption_shared: \"logo\", file names) and\npairs "
     "of an image with more than N captions\n(many_captions)"},
    {"dry-run", 0, no_argument, O_DRY, NULL,
     "print PAIR_ID<TAB>REASON for every pair it would drop;\nrecord no decisions"},
    {"report", 0, required_argument, O_REPORT, "FILE",
     "the largest groups as one HTML file with thumbnails\n(default DIR/dedup_groups.html); "
     "--no-report: none"},
    {"groups", 0, required_argument, O_GROUPS, "N", "groups in the report (default 20)"},
    {"threads", 0, required_argument, O_THREADS, "N", "hashing threads (default one per core)"},
    {"batch", 0, required_argument, O_BATCH, "N",
     "images hashed per catalog transaction (default 1024)"},
    {"no-report", 0, no_argument, O_NOREPORT, NULL, "write no HTML report"},
    {"part", 0, required_argument, O_PART, "I/N",
     "only hash the stored images whose SHA-256 is in part I\n"
     "of N, deciding nothing: after merging the parts, a\n"
     "dedup without --part decides over the whole corpus"},
    {"clip-model", 0, required_argument, O_CLIPMODEL, "DIR",
     "the CLIP model folder that embeds evaluation images for\n--against-eps"},
    {"batch-delay-ms", 0, required_argument, O_DELAY, "MS",
     "tests only: sleep MS after each hashing batch (kill -9\ntests need a run that lasts)"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_dedup(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_dedup = {
    .name = "dedup",
    .summary = "drop exact, near-duplicate and semantic duplicates; decontaminate",
    .run = cmd_dedup,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe dedup [-C DIR] [--exact] [--near] [--semantic] [OPTIONS]\n",
    .about = "Finds duplicate images among the stored pairs and records a drop decision\n"
             "(stage dedup) for all pairs of a group but one, so that shard leaves them\n"
             "out. The kept pair is the one with the highest CLIP score when scores\n"
             "exist, else the largest original image, else the first added. Reasons:\n"
             "exact, near:KEPT, semantic:KEPT, contaminated:SET (KEPT = the kept pair's\n"
             "id). A run replaces the stage's earlier decisions. Without --exact, --near\n"
             "or --semantic, exact and near run.\n",
    .opts = dedup_opts_table,
};

int cmd_dedup(cli_ctx *ctx, int argc, char **argv)
{
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
    while ((opt = cli_next_opt(&cli_cmd_dedup, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_dedup);
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
        case O_PART:
            if (cli_parse_part("dedup", optarg, &o.part) != 0)
                return CLI_USAGE;
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
    if (!wp_part_all(&o.part)) {
        cli_info(ctx,
                 "part %d/%d: %lld images hashed, %lld unreadable; nothing decided (run dedup "
                 "without --part on the merged corpus)",
                 o.part.i, o.part.n, (long long)k.hashed, (long long)k.unreadable);
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
