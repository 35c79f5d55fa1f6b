/*
 * cli/cmd_audit.c: `witpipe audit -C DIR -o OUTDIR [--model M]`: the bias
 * audit and datasheet of a corpus (audit/audit.h). Read only: the catalog
 * is opened without the writer's lock and no run is recorded, so an audit
 * can run beside any stage.
 */
#include "audit/audit.h"
#include "catalog/catalog.h"
#include "cli.h"
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The folder holding lexicon/ and labels/: $WITPIPE_AUDIT_DATA, else next
 * to the binary (build/witpipe, build/asan/witpipe -> the source tree's
 * audit/; an installed bin/witpipe -> share/witpipe/audit). */
static int find_data(char *out, size_t cap)
{
    static const char *const rel[] = {"/../audit", "/../../audit", "/../share/witpipe/audit"};
    char exe[WP_PATH_MAX], probe[WP_PATH_MAX + 64];
    const char *env = getenv("WITPIPE_AUDIT_DATA");
    ssize_t n;
    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(probe, sizeof probe, "%s%s/lexicon/gender.tsv", exe, rel[i]);
        if (wp_file_exists(probe)) {
            snprintf(probe, sizeof probe, "%s%s", exe, rel[i]);
            char *real = realpath(probe, NULL);
            snprintf(out, cap, "%s", real ? real : probe);
            free(real);
            return 0;
        }
    }
    return -1;
}

enum { O_MODEL = 1000, O_NAME, O_NOGAL, O_GAL, O_PER, O_SEED, O_BOOT, O_MIN, O_LEX, O_LAB };

static const cli_opt audit_opts_table[] = {
    {"output", 'o', required_argument, 'o', "OUTDIR",
     "where the three files go (created if missing; required)"},
    {"model", 0, required_argument, O_MODEL, "MDIR",
     "CLIP model folder used by witpipe encode: run the\nimage-side probes"},
    {"name", 0, required_argument, O_NAME, "NAME",
     "its folder under DIR/embeddings (default: as encode\nnames it)"},
    {"no-gallery", 0, no_argument, O_NOGAL, NULL, "no thumbnails or sample captions in the report"},
    {"gallery", 0, required_argument, O_GAL, "K", "samples per gallery row (default 6)"},
    {"seed", 0, required_argument, O_SEED, "N", "gallery sampling and bootstrap seed (default 0)"},
    {"bootstrap", 0, required_argument, O_BOOT, "B",
     "bootstrap replicates for nPMI intervals (default 200)"},
    {"min-count", 0, required_argument, O_MIN, "N",
     "fewest co-occurrences for an association to be\nlisted (default 5)"},
    {"lexicon", 0, required_argument, O_LEX, "DIR",
     "lexicon folder (default: the shipped audit/lexicon)"},
    {"labels", 0, required_argument, O_LAB, "DIR",
     "probe label folder (default: the shipped audit/labels)"},
    {"per-image", 0, no_argument, O_PER, NULL,
     "also write OUTDIR/per_image.jsonl with every image's\ninferred attributes (a warning is "
     "printed: keep it\nprivate)"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_audit(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_audit = {
    .name = "audit",
    .summary = "bias audit and datasheet of the corpus (report.html, report.json)",
    .run = cmd_audit,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe audit [-C DIR] -o OUTDIR [--model MDIR] [options]\n",
    .about = "Writes OUTDIR/report.html (one self-contained page: inline SVG charts and\n"
             "thumbnails, nothing fetched, printable), OUTDIR/report.json (every figure;\n"
             "schemas/audit_report.schema.json) and OUTDIR/datasheet.md (the seven\n"
             "sections of Datasheets for Datasets, blanks marked for what people must add).\n"
             "Works with whatever stages have run; sections that need a stage that has not\n"
             "run say which. Read only: the catalog is not written.\n"
             "\n"
             "Composition: the funnel (candidates, fetched, after each stage's decisions,\n"
             "in shards) with drop reasons; caption length, image size and aspect\n"
             "histograms; top registrable domains; languages and query coverage (once\n"
             "filter / balance have run); a gallery of seeded random samples of kept pairs\n"
             "and of each drop reason.\n"
             "Caption demographics: group terms (gender, age, identity) counted with the\n"
             "editable lexicons at every funnel step; nPMI associations with occupation\n"
             "and adjective terms, with 95% bootstrap intervals.\n"
             "Image probes (--model): zero-shot person / perceived gender, age, race, the\n"
             "CLIP paper's denigration probe (crime and non-human labels, with and without\n"
             "a 'child' label) and filter disparity, from the embeddings witpipe encode\n"
             "wrote for that model (never recomputed). Aggregates only.\n",
    .opts = audit_opts_table,
    .epilog = "Lexicons, labels and their limits are documented at the top of each file;\n"
              "WITPIPE_AUDIT_DATA names the folder holding lexicon/ and labels/ when the\n"
              "binary is not beside the source tree.\n",
};

static int cmd_audit(cli_ctx *ctx, int argc, char **argv)
{
    aud_opts o;
    aud_summary sum;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    char data[WP_PATH_MAX], lex[WP_PATH_MAX + 16], lab[WP_PATH_MAX + 16];
    int64_t v;
    int opt, rc = CLI_OK, k;
    double t0 = wp_now();

    memset(&o, 0, sizeof o);
    o.gallery = AUD_GALLERY_DEFAULT;
    o.bootstrap = AUD_BOOTSTRAP_DEFAULT;
    o.min_cooc = 5;
    o.seed = 0;
    while ((opt = cli_next_opt(&cli_cmd_audit, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_audit);
            return CLI_OK;
        case 'o':
            o.outdir = optarg;
            break;
        case O_MODEL:
            o.model_dir = optarg;
            break;
        case O_NAME:
            o.model_name = optarg;
            break;
        case O_NOGAL:
            o.gallery = 0;
            break;
        case O_GAL:
            if (cli_parse_i64("audit", "--gallery", optarg, 0, 100, &v) != 0)
                return CLI_USAGE;
            o.gallery = (int)v;
            break;
        case O_PER:
            o.per_image = 1;
            break;
        case O_SEED:
            if (cli_parse_i64("audit", "--seed", optarg, 0, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            o.seed = (uint64_t)v;
            break;
        case O_BOOT:
            if (cli_parse_i64("audit", "--bootstrap", optarg, 20, 100000, &v) != 0)
                return CLI_USAGE;
            o.bootstrap = (int)v;
            break;
        case O_MIN:
            if (cli_parse_i64("audit", "--min-count", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            o.min_cooc = (int)v;
            break;
        case O_LEX:
            o.lexicon_dir = optarg;
            break;
        case O_LAB:
            o.labels_dir = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("audit", "unexpected argument '%s'", argv[optind]);
    if (o.outdir == NULL)
        return cli_usage_error("audit", "needs -o OUTDIR");
    if (o.lexicon_dir == NULL || o.labels_dir == NULL) {
        if (find_data(data, sizeof data) != 0) {
            cli_error(ctx, "cannot find the audit's lexicons and labels: give --lexicon DIR and "
                           "--labels DIR, or set WITPIPE_AUDIT_DATA to the folder holding "
                           "lexicon/ and labels/");
            return CLI_FAIL;
        }
        snprintf(lex, sizeof lex, "%s/lexicon", data);
        snprintf(lab, sizeof lab, "%s/labels", data);
        if (o.lexicon_dir == NULL)
            o.lexicon_dir = lex;
        if (o.labels_dir == NULL)
            o.labels_dir = lab;
    }
    if (o.per_image && o.model_dir == NULL)
        return cli_usage_error("audit", "--per-image needs --model");
    if (o.per_image)
        cli_warn(ctx, "--per-image writes a perceived gender, age and race for every image to "
                      "per_image.jsonl: model guesses about people, not facts; keep that file "
                      "out of any published dataset");
    if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (o.gallery > 0 && st_open(ctx->corpus, &st, &err) != 0) {
        cli_warn(ctx, "no image store (%s): the gallery shows captions only", err.msg);
        st = NULL;
        wp_err_clear(&err);
    }
    k = aud_run(c, st, &o, &ctx->rep, &sum, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else
        cli_info(ctx, "audit: %lld pairs, %lld fetched, %lld selected%s; %.2f s\n  %s\n  %s\n  %s",
                 (long long)sum.pairs, (long long)sum.fetched, (long long)sum.selected,
                 sum.probes_run ? ", image probes run" : "", wp_now() - t0, sum.report_html,
                 sum.report_json, sum.datasheet);
    st_close(st);
    cat_close(c);
    return rc;
}
