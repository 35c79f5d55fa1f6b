/*
 * cli/cmd_filter.c: `witpipe filter`: parses the rules and presets, runs
 * the content tagger when asked, then the filter stage (or its dry run),
 * and prints the per-rule table and the CLIP-score histogram; the same
 * report goes to a JSON file (schemas/filter_report.schema.json).
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "filter/filter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_table(const flt_report *rep, int dry_run)
{
    printf("%s over %lld pairs (%lld bytes stored)\n",
           dry_run ? "dry run: what each rule alone and all together would drop"
                   : "what each rule alone and all together dropped",
           (long long)rep->pairs, (long long)rep->pairs_bytes);
    printf("  %-16s %12s %8s %14s %8s %12s\n", "rule", "pairs", "% pairs", "bytes", "% bytes",
           "first rule");
    for (int k = 0; k < FLT_R_COUNT; k++) {
        if (!rep->active[k])
            continue;
        printf("  %-16s %12lld %7.2f%% %14lld %7.2f%% %12lld\n", flt_rule_name(k),
               (long long)rep->alone[k],
               rep->pairs ? 100.0 * (double)rep->alone[k] / (double)rep->pairs : 0.0,
               (long long)rep->alone_bytes[k],
               rep->pairs_bytes ? 100.0 * (double)rep->alone_bytes[k] / (double)rep->pairs_bytes
                                : 0.0,
               (long long)rep->first[k]);
    }
    printf("  %-16s %12lld %7.2f%% %14lld %7.2f%%\n", "all", (long long)rep->dropped,
           rep->pairs ? 100.0 * (double)rep->dropped / (double)rep->pairs : 0.0,
           (long long)rep->dropped_bytes,
           rep->pairs_bytes ? 100.0 * (double)rep->dropped_bytes / (double)rep->pairs_bytes : 0.0);
    printf("  %-16s %12lld\n", "kept", (long long)(rep->pairs - rep->dropped));
    if (rep->scored > 0) {
        int64_t top = 1;
        double w = (rep->hist_hi - rep->hist_lo) / FLT_HIST_BINS;
        int tb = -1;
        for (int b = 0; b < FLT_HIST_BINS; b++)
            top = rep->hist[b] > top ? rep->hist[b] : top;
        if (isfinite(rep->clip_threshold))
            tb = (int)floor((rep->clip_threshold - rep->hist_lo) / w);
        printf("\nCLIP scores of %s (%lld pairs)", rep->model, (long long)rep->scored);
        if (isfinite(rep->clip_threshold))
            printf(", threshold %.4f", rep->clip_threshold);
        printf(":\n");
        if (tb < 0 && isfinite(rep->clip_threshold))
            printf("  threshold %.4f is below every score\n", rep->clip_threshold);
        for (int b = 0; b < FLT_HIST_BINS; b++) {
            char bar[41];
            int len = (int)(40.0 * (double)rep->hist[b] / (double)top + 0.5);
            memset(bar, '#', (size_t)len);
            bar[len] = '\0';
            printf("  [%7.3f, %7.3f) %10lld %-40s%s\n", rep->hist_lo + b * w,
                   rep->hist_lo + (b + 1) * w, (long long)rep->hist[b], bar,
                   b == tb ? " <- threshold" : "");
        }
        if (tb >= FLT_HIST_BINS)
            printf("  threshold %.4f is above every score\n", rep->clip_threshold);
    }
    fflush(stdout);
}

/* "--name" of the long option with value val (for messages). */
static const cli_opt filter_opts_table[];

static const char *int_opt_name(const cli_opt *o, int val)
{
    static char buf[64];
    for (; o->name != NULL || o->help != NULL; o++)
        if (o->name != NULL && o->val == val) {
            snprintf(buf, sizeof buf, "--%s", o->name);
            return buf;
        }
    return "option";
}

enum {
    O_MINC = 1000,
    O_MAXC,
    O_MINW,
    O_REP,
    O_BOIL,
    O_BOILF,
    O_DUP,
    O_LANG,
    O_LCONF,
    O_SIDE,
    O_ASP,
    O_BYTES,
    O_PIX,
    O_CLIP,
    O_TOP,
    O_MODEL,
    O_CTEXT,
    O_TAG,
    O_PRESET,
    O_DRY,
    O_REPORT,
    O_BATCH,
    O_NOLANG,
    O_TAGS,
    O_LABELS,
    O_PART,
};

static const cli_opt filter_opts_table[] = {
    {"min-chars", 0, required_argument, O_MINC, "N",
     "fewer characters (code points, trimmed) drop"},
    {"max-chars", 0, required_argument, O_MAXC, "N", "more characters drop"},
    {"min-words", 0, required_argument, O_MINW, "N", "fewer words (split on white space) drop"},
    {"max-repeat", 0, required_argument, O_REP, "N",
     "a caption of one word repeated more than N times drops"},
    {"boilerplate", 0, no_argument, O_BOIL, NULL,
     "drop captions matching the built-in list\n(filter/boilerplate.txt: camera file names, bare "
     "URLs,\n'image', 'logo', 'click to enlarge', 'next'...)"},
    {"boilerplate-file", 0, required_argument, O_BOILF, "F",
     "the same with the patterns of F instead"},
    {"text-dup", 0, no_argument, O_DUP, NULL, "drop captions dedup --text-dup flagged"},
    {NULL, 0, 0, 0, NULL, "Language (CLD2):"},
    {"lang", 0, required_argument, O_LANG, "en,de",
     "keep only these languages (zh also keeps zh-Hant)"},
    {"min-lang-conf", 0, required_argument, O_LCONF, "X",
     "drop a confidence below X (0..1; a word or two\nnever reaches 0.5; see README)"},
    {"no-lang-detect", 0, no_argument, O_NOLANG, NULL,
     "do not detect languages not yet known (unless a\nlanguage rule needs them)"},
    {NULL, 0, 0, 0, NULL, "Image (as fetch recorded it, before resizing; unknown sizes pass):"},
    {"min-side", 0, required_argument, O_SIDE, "N", "shorter side below N px drops"},
    {"max-aspect", 0, required_argument, O_ASP, "R", "longer/shorter side above R drops"},
    {"min-bytes", 0, required_argument, O_BYTES, "N", "images served with fewer bytes drop"},
    {"min-pixels", 0, required_argument, O_PIX, "N", "width*height below N drops"},
    {NULL, 0, 0, 0, NULL,
     "CLIP score (from witpipe encode; pairs without a score drop as no_clip_score):"},
    {"min-clip-score", 0, required_argument, O_CLIP, "S", "a score below S drops"},
    {"clip-top", 0, required_argument, O_TOP, "P[%]",
     "keep the top P percent of scored pairs: exactly\nround(N*P/100) of N, ties at the cut kept "
     "in pair id\norder (the earlier added first)"},
    {"model", 0, required_argument, O_MODEL, "NAME",
     "whose scores (needed when several were encoded)"},
    {"clip-score-text", 0, required_argument, O_CTEXT, "M",
     "own (default: each pair its own caption's score),\nmax or mean over the captions of the "
     "pair's image"},
    {NULL, 0, 0, 0, NULL,
     "Content tags (zero-shot CLIP; an approximation, not a trained detector):"},
    {"tags", 0, required_argument, O_TAGS, "MDIR",
     "first tag every stored pair's image with the closest\nlabel of filter/content_labels.txt "
     "(tags are kept;\nskipped by --dry-run)"},
    {"labels", 0, required_argument, O_LABELS, "FILE", "use FILE's TAG|PROMPT lines instead"},
    {"drop-tag", 0, required_argument, O_TAG, "T,...",
     "drop pairs tagged T (e.g. unsafe,watermark)"},
    {NULL, 0, 0, 0, NULL, "Presets (explicit rules win over a preset's):"},
    {"preset", 0, required_argument, O_PRESET, "NAME",
     "datacomp-basic: DataComp basic filtering: --lang en\n--min-words 3 --min-chars 6 --min-side "
     "200 --max-aspect 3\n"
     "laion: LAION-5B English: --min-clip-score 0.28 --lang en\ndatacomp-clip30: DataComp CLIP "
     "score: --clip-top 30"},
    {NULL, 0, 0, 0, NULL, "Run:"},
    {"part", 0, required_argument, O_PART, "I/N", "only the pairs whose uid is in part I of N"},
    {"dry-run", 0, no_argument, O_DRY, NULL,
     "count only: print what each rule alone and all together\nwould drop (pairs, % of pairs, % of "
     "stored bytes) and\nthe CLIP-score histogram; change nothing"},
    {"report", 0, required_argument, O_REPORT, "FILE",
     "the report as JSON (default DIR/filter_report.json, or\nDIR/filter_dry_run.json; "
     "schemas/filter_report.schema.json)"},
    {"batch", 0, required_argument, O_BATCH, "N", "pairs per catalog transaction (default 50000)"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_filter(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_filter = {
    .name = "filter",
    .summary = "drop pairs by text, language, image size, CLIP score; presets",
    .run = cmd_filter,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe filter [-C DIR] [RULES...] [--preset NAME] [--dry-run]\n",
    .about = "Applies the rules to every pair and records one decision per pair (stage\n"
             "filter: keep, or drop with the first rule that dropped it as reason and\n"
             "the CLIP score as score); every rule that would drop a pair on its own is\n"
             "kept too (table filter_verdicts) for the audit. shard leaves dropped pairs\n"
             "out. A new run replaces the stage's decisions; a stopped or killed run\n"
             "resumes when started again with the same rules. Each pair's language is\n"
             "detected once (CLD2) and kept in the catalog (pair_lang).\n"
             "Text:\n",
    .opts = filter_opts_table,
};

int cmd_filter(cli_ctx *ctx, int argc, char **argv)
{
    flt_rules r;
    flt_opts o;
    flt_report rep;
    flt_boiler *boiler = NULL;
    const char *presets[8];
    const char *boiler_file = NULL, *report_path = NULL, *tags_model = NULL, *labels = NULL;
    char report_def[WP_PATH_MAX];
    int npresets = 0, opt, rc = CLI_OK, k = 0;
    int64_t v;
    double d;
    cat *c = NULL;
    wp_err err = {0};
    wp_buf params = {0}, js = {0};
    double t0 = wp_now();

    flt_rules_init(&r);
    memset(&o, 0, sizeof o);
    while ((opt = cli_next_opt(&cli_cmd_filter, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_filter);
            return CLI_OK;
        case O_MINC:
        case O_MAXC:
        case O_MINW:
        case O_REP:
        case O_SIDE:
        case O_BYTES:
        case O_PIX:
        case O_BATCH:
            if (cli_parse_i64("filter", int_opt_name(filter_opts_table, opt), optarg,
                              opt == O_BATCH ? 1 : 0, opt == O_BATCH ? 1000000 : INT64_MAX / 4,
                              &v) != 0)
                return CLI_USAGE;
            if (opt == O_MINC)
                r.min_chars = v;
            else if (opt == O_MAXC)
                r.max_chars = v;
            else if (opt == O_MINW)
                r.min_words = v;
            else if (opt == O_REP)
                r.max_repeat = v;
            else if (opt == O_SIDE)
                r.min_side = v;
            else if (opt == O_BYTES)
                r.min_bytes = v;
            else if (opt == O_PIX)
                r.min_pixels = v;
            else
                o.batch = (int)v;
            break;
        case O_BOILF:
            boiler_file = optarg;
            /* fall through */
        case O_BOIL:
            r.boilerplate = 1;
            break;
        case O_DUP:
            r.text_dup = 1;
            break;
        case O_LANG:
            if (flt_rules_set_langs(&r, optarg, &err) != 0)
                return cli_usage_error("filter", "%s", err.msg);
            break;
        case O_TAG:
            if (flt_rules_set_tags(&r, optarg, &err) != 0)
                return cli_usage_error("filter", "%s", err.msg);
            break;
        case O_LCONF:
            if (cli_parse_double("filter", "--min-lang-conf", optarg, 0, 1, &r.min_lang_conf))
                return CLI_USAGE;
            break;
        case O_ASP:
            if (cli_parse_double("filter", "--max-aspect", optarg, 1, 1e9, &r.max_aspect))
                return CLI_USAGE;
            break;
        case O_CLIP:
            if (cli_parse_double("filter", "--min-clip-score", optarg, -1, 1, &r.min_clip_score))
                return CLI_USAGE;
            break;
        case O_TOP: {
            char buf[64];
            size_t len = strlen(optarg);
            snprintf(buf, sizeof buf, "%s", optarg);
            if (len > 0 && len < sizeof buf && buf[len - 1] == '%')
                buf[len - 1] = '\0';
            if (cli_parse_double("filter", "--clip-top", buf, 0, 100, &d) != 0)
                return CLI_USAGE;
            r.clip_top_pct = d;
            break;
        }
        case O_MODEL:
            if (strlen(optarg) >= sizeof r.model)
                return cli_usage_error("filter", "--model: name too long");
            snprintf(r.model, sizeof r.model, "%s", optarg);
            break;
        case O_CTEXT:
            if (strcmp(optarg, "own") == 0)
                r.clip_text = FLT_CLIP_OWN;
            else if (strcmp(optarg, "max") == 0)
                r.clip_text = FLT_CLIP_MAX;
            else if (strcmp(optarg, "mean") == 0)
                r.clip_text = FLT_CLIP_MEAN;
            else
                return cli_usage_error("filter", "--clip-score-text: own, max or mean, not '%s'",
                                       optarg);
            break;
        case O_PRESET:
            if (npresets == (int)(sizeof presets / sizeof presets[0]))
                return cli_usage_error("filter", "too many --preset options");
            presets[npresets++] = optarg;
            break;
        case O_DRY:
            o.dry_run = 1;
            break;
        case O_PART:
            if (cli_parse_part("filter", optarg, &o.part) != 0)
                return CLI_USAGE;
            break;
        case O_REPORT:
            report_path = optarg;
            break;
        case O_NOLANG:
            o.no_lang_detect = 1;
            break;
        case O_TAGS:
            tags_model = optarg;
            break;
        case O_LABELS:
            labels = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("filter", "unexpected argument '%s'", argv[optind]);
    /* presets last: an explicit rule wins */
    for (int i = 0; i < npresets; i++)
        if (flt_preset_apply(&r, presets[i], &err) != 0)
            return cli_usage_error("filter", "%s", err.msg);
    if (boiler_file != NULL && flt_boiler_load(boiler_file, &boiler, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    if (tags_model != NULL && o.dry_run)
        cli_warn(ctx, "--tags is skipped in a dry run (tags are written to the catalog); "
                      "--drop-tag uses the tags already there");
    if (tags_model != NULL && !o.dry_run) {
        flt_tag_opts to = {tags_model, labels, NULL, 0, 0};
        int64_t tagged = 0;
        k = flt_tag_run(c, &to, &ctx->rep, &tagged, &err);
        cli_progress_done(ctx);
        if (k != 0) {
            cli_error(ctx, "content tags: %s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
        cli_info(ctx, "content tags: %lld pairs tagged", (long long)tagged);
    }
    if (flt_prepare(c, &r, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    if (flt_rules_json(&r, &params) != 0) {
        cli_error(ctx, "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    o.rules = &r;
    o.boiler = boiler;
    o.params_json = params.data;
    k = flt_run(c, &o, &ctx->rep, &rep, &err);
    cli_progress_done(ctx);
    if (k != 0 && k != WP_ESTOP) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else if (k == WP_ESTOP) {
        cli_warn(ctx, "stopped; run the same command again to resume");
        rc = CLI_FAIL;
    }
    if (k == 0 || k == WP_ESTOP) {
        if (rep.resumed_after > 0)
            cli_info(ctx, "resumed after pair %lld", (long long)rep.resumed_after);
        if (k == 0 && !ctx->quiet)
            print_table(&rep, o.dry_run);
        if (flt_report_json(&rep, &r, o.dry_run, &js) != 0) {
            cli_error(ctx, "out of memory");
            rc = CLI_FAIL;
        } else if (k == 0) {
            if (report_path == NULL) {
                if (wp_path_join(report_def, ctx->corpus,
                                 o.dry_run ? "filter_dry_run.json" : "filter_report.json",
                                 &err) != 0) {
                    cli_error(ctx, "%s", err.msg);
                    rc = CLI_FAIL;
                    goto end;
                }
                report_path = report_def;
            }
            wp_buf_putc(&js, '\n');
            if (wp_write_file_atomic(report_path, js.data, js.len, &err) != 0) {
                cli_error(ctx, "%s", err.msg);
                rc = CLI_FAIL;
            } else {
                cli_info(ctx, "%s: %lld of %lld pairs dropped, %lld kept (%.2f s); report %s",
                         o.dry_run ? "dry run" : "filter", (long long)rep.dropped,
                         (long long)rep.pairs, (long long)(rep.pairs - rep.dropped), wp_now() - t0,
                         report_path);
            }
        }
    }
end:
out:
    flt_boiler_free(boiler);
    cat_close(c);
    wp_buf_free(&params);
    wp_buf_free(&js);
    return rc;
}
