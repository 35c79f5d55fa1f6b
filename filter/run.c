/*
 * filter/run.c: one filter run: resolve the CLIP model, compute the
 * --clip-top cut and the score histogram, then scan the pairs in batches,
 * detect missing languages, apply every rule and record the decisions
 * (one transaction per batch, so a stopped run resumes after its last
 * batch). Also the run's report as JSON.
 */
#include "filter.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_DEFAULT 50000

/* ---- the model of CLIP-score rules ------------------------------------- */

typedef struct models {
    int n;
    int found; /* the named model has scores */
    const char *want;
    char first[160];
    wp_buf list; /* "a (12), b (3)" for messages */
} models;

static void on_model(void *ud, const char *name, int64_t count)
{
    models *m = ud;
    if (m->n == 0)
        snprintf(m->first, sizeof m->first, "%s", name);
    if (m->want[0] != '\0' && strcmp(m->want, name) == 0)
        m->found = 1;
    wp_buf_printf(&m->list, "%s%s (%lld scores)", m->n ? ", " : "", name, (long long)count);
    m->n++;
}

int flt_prepare(cat *c, flt_rules *r, wp_err *err)
{
    models m = {0, 0, r->model, "", {0}};
    int rc = 0;

    if (!isnan(r->clip_top_pct) && !(r->clip_top_pct >= 0 && r->clip_top_pct <= 100))
        return wp_err_set(err, FLT_ERULE, "--clip-top: %g is not a percentage in [0, 100]",
                          r->clip_top_pct);
    if (!flt_rules_use_clip(r))
        return 0;
    if ((rc = cat_filter_models(c, on_model, &m, err)) != 0)
        goto out;
    if (m.n == 0) {
        rc = wp_err_set(err, FLT_ENOSCORES,
                        "%s: no CLIP scores in the catalog: run 'witpipe encode -C %s --model "
                        "MDIR' first, then filter by CLIP score",
                        cat_dir(c), cat_dir(c));
    } else if (r->model[0] == '\0' && m.n > 1) {
        rc = wp_err_set(err, FLT_EMODEL,
                        "%s: CLIP scores of several models: name one with --model (%s)", cat_dir(c),
                        m.list.data);
    } else if (r->model[0] == '\0') {
        snprintf(r->model, sizeof r->model, "%s", m.first);
    } else if (!m.found) {
        rc = wp_err_set(err, FLT_ENOSCORES,
                        "%s: no CLIP scores for model '%s' (scored: %s); run 'witpipe encode "
                        "--name %s' first",
                        cat_dir(c), r->model, m.list.data, r->model);
    }
out:
    wp_buf_free(&m.list);
    return rc;
}

/* ---- scores: the top-P cut and the histogram ---------------------------- */

typedef struct scored {
    double s;
    int64_t id;
} scored;

/* The order of --clip-top: higher score first, then lower pair id. */
static int before(const scored *x, const scored *y)
{
    return x->s != y->s ? x->s > y->s : x->id < y->id;
}

/* Moves the element of rank k (0-based, in `before` order) to v[k]
 * (quickselect with a median-of-three pivot: linear on average, where
 * sorting a million scores costs a tenth of a second). */
static void select_kth(scored *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
        scored a = v[lo], b = v[mid], c = v[hi], pivot, t;
        /* median of three */
        if (before(&b, &a))
            t = a, a = b, b = t;
        if (before(&c, &b))
            b = c;
        if (before(&b, &a))
            b = a;
        pivot = b;
        while (i <= j) {
            while (before(&v[i], &pivot))
                i++;
            while (before(&pivot, &v[j]))
                j--;
            if (i <= j) {
                t = v[i], v[i] = v[j], v[j] = t;
                i++, j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

typedef struct run_ctx {
    const flt_rules *r;
    const flt_boiler *boiler;
    int need_chars, need_lang;
    double top_s; /* --clip-top keeps score > top_s, or == top_s with id <= top_id */
    int64_t top_id;
} run_ctx;

static int score_setup(cat *c, run_ctx *x, flt_report *rep, wp_err *err)
{
    const flt_rules *r = x->r;
    int64_t *ids = NULL, n = 0;
    double *sc = NULL, lo, hi;
    int rc;

    /* the scores and ids (16 bytes a pair, up to twice that while their
     * arrays grow), and --clip-top's copy (16 more): counted before any is
     * read */
    if (wp_mem_is_set()) {
        int64_t need;
        if ((rc = cat_filter_count_scores(c, r->model, r->clip_text, &n, err)) != 0)
            return rc;
        need = n * (int64_t)(sizeof *ids + sizeof *sc) * (isnan(r->clip_top_pct) ? 2 : 3);
        if (need > wp_mem_budget(1))
            return wp_err_set(err, WP_ELIMIT,
                              "filter: the CLIP scores of %lld pairs need about %lld MiB, over "
                              "--max-memory %lld MiB; give --max-memory %lldM or more",
                              (long long)n, (long long)(need >> 20),
                              (long long)(wp_mem_budget(1) >> 20),
                              (long long)((need + (1 << 20) - 1) >> 20));
    }
    if ((rc = cat_filter_scores(c, r->model, r->clip_text, &ids, &sc, &n, err)) != 0)
        return rc;
    rep->scored = n;
    if (n == 0) {
        rc = wp_err_set(err, FLT_ENOSCORES,
                        "%s: no pair has a CLIP score for model '%s': run 'witpipe encode' first",
                        cat_dir(c), r->model);
        goto out;
    }
    lo = hi = sc[0];
    for (int64_t i = 1; i < n; i++) {
        lo = sc[i] < lo ? sc[i] : lo;
        hi = sc[i] > hi ? sc[i] : hi;
    }
    rep->hist_lo = floor(lo * 20) / 20;
    rep->hist_hi = ceil(hi * 20) / 20;
    if (rep->hist_hi <= rep->hist_lo || hi >= rep->hist_hi)
        rep->hist_hi += 0.05;
    for (int64_t i = 0; i < n; i++) {
        int b = (int)((sc[i] - rep->hist_lo) / (rep->hist_hi - rep->hist_lo) * FLT_HIST_BINS);
        b = b < 0 ? 0 : b >= FLT_HIST_BINS ? FLT_HIST_BINS - 1 : b;
        rep->hist[b]++;
    }
    if (!isnan(r->min_clip_score))
        rep->clip_threshold = r->min_clip_score;
    if (!isnan(r->clip_top_pct)) {
        /* Exactly round(n * P / 100) pairs kept: the highest scores, ties at
         * the cut broken by pair id (the earlier added pair first). */
        int64_t k = (int64_t)floor((double)n * r->clip_top_pct / 100.0 + 0.5);
        scored *v = malloc((size_t)n * sizeof *v);
        if (v == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        for (int64_t i = 0; i < n; i++) {
            v[i].s = sc[i];
            v[i].id = ids[i];
        }
        if (k > n)
            k = n;
        if (k > 0)
            select_kth(v, n, k - 1);
        rep->top_keep = k;
        if (k == 0) {
            x->top_s = INFINITY;
            x->top_id = 0;
        } else {
            x->top_s = v[k - 1].s;
            x->top_id = v[k - 1].id;
        }
        if (isnan(rep->clip_threshold) || x->top_s > rep->clip_threshold)
            rep->clip_threshold = x->top_s;
        free(v);
    }
out:
    free(ids);
    free(sc);
    return rc;
}

/* ---- the rules ---------------------------------------------------------- */

static int lang_listed(const flt_rules *r, const char *code)
{
    size_t base = strcspn(code, "-");
    for (int i = 0; i < r->nlangs; i++) {
        if (strcmp(r->langs[i], code) == 0)
            return 1;
        /* "zh" also admits "zh-Hant" */
        if (strlen(r->langs[i]) == base && strncmp(r->langs[i], code, base) == 0)
            return 1;
    }
    return 0;
}

/* The mask of rules that drop row (bit i: enum flt_rule i). */
static uint32_t evaluate(const run_ctx *x, const cat_filter_row *w, const char *lang, double conf)
{
    const flt_rules *r = x->r;
    uint32_t m = 0;

    if (x->need_chars || r->min_words >= 0) {
        int64_t ch, words;
        flt_text_measure(w->text, w->text_len, &ch, &words);
        if (r->min_chars >= 0 && ch < r->min_chars)
            m |= 1u << FLT_R_MIN_CHARS;
        if (r->max_chars >= 0 && ch > r->max_chars)
            m |= 1u << FLT_R_MAX_CHARS;
        if (r->min_words >= 0 && words < r->min_words)
            m |= 1u << FLT_R_MIN_WORDS;
    }
    if (r->max_repeat >= 0 && flt_text_repeat(w->text, w->text_len) > r->max_repeat)
        m |= 1u << FLT_R_MAX_REPEAT;
    if (r->boilerplate && flt_boiler_match(x->boiler, w->text, w->text_len))
        m |= 1u << FLT_R_BOILERPLATE;
    if (r->text_dup && w->text_dup)
        m |= 1u << FLT_R_TEXT_DUP;
    if (r->nlangs > 0 && !lang_listed(r, lang))
        m |= 1u << FLT_R_LANG;
    if (!isnan(r->min_lang_conf) && conf < r->min_lang_conf)
        m |= 1u << FLT_R_MIN_LANG_CONF;
    if (w->orig_width >= 0 && w->orig_height >= 0) {
        int lo = w->orig_width < w->orig_height ? w->orig_width : w->orig_height;
        int hi = w->orig_width < w->orig_height ? w->orig_height : w->orig_width;
        if (r->min_side >= 0 && lo < r->min_side)
            m |= 1u << FLT_R_MIN_SIDE;
        if (!isnan(r->max_aspect) && (lo == 0 || (double)hi / lo > r->max_aspect))
            m |= 1u << FLT_R_MAX_ASPECT;
        if (r->min_pixels >= 0 && (int64_t)w->orig_width * w->orig_height < r->min_pixels)
            m |= 1u << FLT_R_MIN_PIXELS;
    }
    if (r->min_bytes >= 0 && w->orig_bytes >= 0 && w->orig_bytes < r->min_bytes)
        m |= 1u << FLT_R_MIN_BYTES;
    if (flt_rules_use_clip(r)) {
        if (!w->has_score) {
            m |= 1u << FLT_R_NO_CLIP_SCORE;
        } else {
            if (!isnan(r->min_clip_score) && w->clip_score < r->min_clip_score)
                m |= 1u << FLT_R_MIN_CLIP_SCORE;
            if (!isnan(r->clip_top_pct) &&
                !(w->clip_score > x->top_s ||
                  (w->clip_score == x->top_s && w->pair_id <= x->top_id)))
                m |= 1u << FLT_R_CLIP_TOP;
        }
    }
    if (r->ntags > 0 && w->tag != NULL) {
        for (int i = 0; i < r->ntags; i++)
            if (strcmp(r->drop_tags[i], w->tag) == 0)
                m |= 1u << FLT_R_DROP_TAG;
    }
    return m;
}

static void mark_active(const flt_rules *r, int *a)
{
    memset(a, 0, FLT_R_COUNT * sizeof *a);
    a[FLT_R_MIN_CHARS] = r->min_chars >= 0;
    a[FLT_R_MAX_CHARS] = r->max_chars >= 0;
    a[FLT_R_MIN_WORDS] = r->min_words >= 0;
    a[FLT_R_MAX_REPEAT] = r->max_repeat >= 0;
    a[FLT_R_BOILERPLATE] = r->boilerplate;
    a[FLT_R_TEXT_DUP] = r->text_dup;
    a[FLT_R_LANG] = r->nlangs > 0;
    a[FLT_R_MIN_LANG_CONF] = !isnan(r->min_lang_conf);
    a[FLT_R_MIN_SIDE] = r->min_side >= 0;
    a[FLT_R_MAX_ASPECT] = !isnan(r->max_aspect);
    a[FLT_R_MIN_BYTES] = r->min_bytes >= 0;
    a[FLT_R_MIN_PIXELS] = r->min_pixels >= 0;
    a[FLT_R_NO_CLIP_SCORE] = flt_rules_use_clip(r);
    a[FLT_R_MIN_CLIP_SCORE] = !isnan(r->min_clip_score);
    a[FLT_R_CLIP_TOP] = !isnan(r->clip_top_pct);
    a[FLT_R_DROP_TAG] = r->ntags > 0;
}

static int verdicts_json(uint32_t m, wp_buf *o)
{
    int rc = 0, first = 1;
    wp_buf_reset(o);
    rc |= wp_buf_putc(o, '[');
    for (int i = 0; i < FLT_R_COUNT; i++) {
        if (!(m & (1u << i)))
            continue;
        rc |= wp_buf_printf(o, "%s\"%s\"", first ? "" : ",", flt_rule_name(i));
        first = 0;
    }
    rc |= wp_buf_putc(o, ']');
    return rc ? WP_ENOMEM : 0;
}

static int flt_run_inner(cat *c, const flt_opts *o, const wp_reporter *reporter, flt_report *rep,
                         wp_err *err)
{
    const flt_rules *r = o->rules;
    int batch = o->batch > 0 ? o->batch : BATCH_DEFAULT;
    run_ctx x = {r, o->boiler, 0, 0, INFINITY, 0};
    flt_boiler *own_boiler = NULL;
    cat_filter_row *rows = NULL;
    wp_arena *arena = NULL;
    wp_buf vj = {0};
    wp_progress pr = {"filter", 0, 0, 0, 0, NULL};
    int64_t after = 0;
    int rc = 0, n, want;

    memset(rep, 0, sizeof *rep);
    rep->clip_threshold = NAN;
    mark_active(r, rep->active);
    snprintf(rep->model, sizeof rep->model, "%s", r->model);
    x.need_chars = r->min_chars >= 0 || r->max_chars >= 0;
    x.need_lang = r->nlangs > 0 || !isnan(r->min_lang_conf) || !o->no_lang_detect;
    if (r->boilerplate && x.boiler == NULL) {
        if ((rc = flt_boiler_default(&own_boiler, err)) != 0)
            goto out;
        x.boiler = own_boiler;
    }
    if (flt_rules_use_clip(r)) {
        if (r->model[0] == '\0') {
            rc = wp_err_set(err, FLT_EMODEL, "CLIP-score rules need a model (flt_prepare)");
            goto out;
        }
        if ((rc = score_setup(c, &x, rep, err)) != 0)
            goto out;
    }
    if (!o->dry_run) {
        if ((rc = cat_filter_resume_point(c, o->params_json ? o->params_json : "{}", o->run_id,
                                          &after, err)) != 0)
            goto out;
        if (after < 0) {
            after = 0;
            if ((rc = cat_begin(c, err)) != 0)
                goto out;
            if ((rc = cat_filter_reset(c, err)) != 0 || (rc = cat_commit(c, err)) != 0) {
                cat_rollback(c);
                goto out;
            }
        } else {
            rep->resumed_after = after;
        }
    }
    rows = malloc((size_t)batch * sizeof *rows);
    arena = wp_arena_new(1 << 20);
    if (rows == NULL || arena == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    pr.total = (uint64_t)cat_count_pairs(c);
    want = (x.need_lang ? CAT_FILTER_LANG : 0) | (r->ntags > 0 ? CAT_FILTER_TAG : 0) |
           (r->text_dup ? CAT_FILTER_DUP : 0);
    /* the caption: for text rules, and to detect missing languages */
    if (x.need_chars || r->min_words >= 0 || r->max_repeat >= 0 || r->boilerplate || x.need_lang)
        want |= CAT_FILTER_TEXT;
    for (;;) {
        wp_arena_reset(arena);
        if ((rc = cat_filter_rows(c, flt_rules_use_clip(r) ? r->model : NULL, r->clip_text, want,
                                  after, batch, rows, &n, arena, err)) != 0)
            goto out;
        if (n == 0)
            break;
        if (!o->dry_run && (rc = cat_begin(c, err)) != 0)
            goto out;
        for (int i = 0; i < n; i++) {
            cat_filter_row *w = &rows[i];
            if (!wp_part_has(&o->part, wp_part_key_hex(w->uid)))
                continue; /* another part's pair */
            const char *lang = w->has_lang ? w->lang : "un";
            double conf = w->has_lang ? w->lang_conf : 0;
            int64_t bytes = w->bytes > 0 ? w->bytes : 0;
            flt_lang fl;
            uint32_t m;
            int first = -1;

            if (!w->has_lang && x.need_lang) {
                flt_lang_detect(w->text, w->text_len, &fl);
                lang = fl.code;
                conf = fl.conf;
                rep->lang_detected++;
                if (!o->dry_run &&
                    (rc = cat_lang_put(c, w->pair_id, fl.code, fl.conf, fl.reliable, err)) != 0)
                    goto fail_tx;
            }
            m = evaluate(&x, w, lang, conf);
            rep->pairs++;
            rep->pairs_bytes += bytes;
            for (int k = 0; k < FLT_R_COUNT; k++) {
                if (m & (1u << k)) {
                    rep->alone[k]++;
                    rep->alone_bytes[k] += bytes;
                    if (first < 0)
                        first = k;
                }
            }
            if (first >= 0) {
                rep->first[first]++;
                rep->dropped++;
                rep->dropped_bytes += bytes;
            }
            if (o->dry_run)
                continue;
            if (first >= 0 && (rc = verdicts_json(m, &vj)) != 0) {
                wp_err_set(err, rc, "out of memory");
                goto fail_tx;
            }
            if ((rc = cat_filter_put(c, w->pair_id, first >= 0,
                                     first >= 0 ? flt_rule_name(first) : NULL,
                                     w->has_score ? w->clip_score : NAN,
                                     first >= 0 ? vj.data : NULL, o->run_id, err)) != 0)
                goto fail_tx;
        }
        if (!o->dry_run && (rc = cat_commit(c, err)) != 0)
            goto fail_tx;
        after = rows[n - 1].pair_id;
        pr.done += (uint64_t)n;
        pr.errors = (uint64_t)rep->dropped;
        wp_report_progress(reporter, &pr);
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped");
            goto out;
        }
    }
    goto out;
fail_tx:
    cat_rollback(c);
out:
    flt_boiler_free(own_boiler);
    wp_arena_free(arena);
    free(rows);
    wp_buf_free(&vj);
    return rc;
}

/* ---- the report ------------------------------------------------------- */

static double pct(int64_t a, int64_t b)
{
    return b > 0 ? 100.0 * (double)a / (double)b : 0.0;
}

/* v rounded to 4 decimals: percentages and histogram edges need no more. */
static double dec4(double v)
{
    return round(v * 1e4) / 1e4;
}

int flt_report_json(const flt_report *rep, const flt_rules *r, int dry_run, wp_buf *o)
{
    wp_buf rules = {0};
    wp_json j;
    int rc = flt_rules_json(r, &rules);

    wp_json_init(&j, o);
    wp_json_obj_begin(&j, NULL);
    wp_json_bool(&j, "dry_run", dry_run);
    wp_json_raw(&j, "rules", rc == 0 ? rules.data : NULL);
    wp_json_int(&j, "pairs", rep->pairs);
    wp_json_int(&j, "bytes", rep->pairs_bytes);
    wp_json_int(&j, "lang_detected", rep->lang_detected);
    wp_json_int(&j, "resumed_after", rep->resumed_after);
    wp_json_arr_begin(&j, "per_rule");
    for (int k = 0; k < FLT_R_COUNT; k++) {
        if (!rep->active[k])
            continue;
        wp_json_obj_begin(&j, NULL);
        wp_json_str(&j, "rule", flt_rule_name(k));
        wp_json_int(&j, "dropped", rep->alone[k]);
        wp_json_real(&j, "pct_pairs", dec4(pct(rep->alone[k], rep->pairs)));
        wp_json_int(&j, "bytes", rep->alone_bytes[k]);
        wp_json_real(&j, "pct_bytes", dec4(pct(rep->alone_bytes[k], rep->pairs_bytes)));
        wp_json_int(&j, "first", rep->first[k]);
        wp_json_obj_end(&j);
    }
    wp_json_arr_end(&j);
    wp_json_obj_begin(&j, "all");
    wp_json_int(&j, "dropped", rep->dropped);
    wp_json_real(&j, "pct_pairs", dec4(pct(rep->dropped, rep->pairs)));
    wp_json_int(&j, "bytes", rep->dropped_bytes);
    wp_json_real(&j, "pct_bytes", dec4(pct(rep->dropped_bytes, rep->pairs_bytes)));
    wp_json_int(&j, "kept", rep->pairs - rep->dropped);
    wp_json_obj_end(&j);
    if (rep->scored > 0) {
        double w = (rep->hist_hi - rep->hist_lo) / FLT_HIST_BINS;
        wp_json_obj_begin(&j, "clip");
        wp_json_str(&j, "model", rep->model);
        wp_json_int(&j, "scored", rep->scored);
        wp_json_real(&j, "threshold", rep->clip_threshold); /* NaN, inf: null */
        if (!isnan(r->clip_top_pct))
            wp_json_int(&j, "top_keep", rep->top_keep);
        wp_json_arr_begin(&j, "histogram");
        for (int b = 0; b < FLT_HIST_BINS; b++) {
            wp_json_obj_begin(&j, NULL);
            wp_json_real(&j, "lo", dec4(rep->hist_lo + b * w));
            wp_json_real(&j, "hi", dec4(rep->hist_lo + (b + 1) * w));
            wp_json_int(&j, "count", rep->hist[b]);
            wp_json_obj_end(&j);
        }
        wp_json_arr_end(&j);
        wp_json_obj_end(&j);
    }
    wp_json_obj_end(&j);
    wp_buf_free(&rules);
    rc = rc != 0 ? rc : wp_json_finish(&j);
    return rc != 0 ? WP_ENOMEM : 0;
}

int flt_run(cat *c, const flt_opts *o, const wp_reporter *reporter, flt_report *rep, wp_err *err)
{
    flt_opts ro = *o;
    wp_buf params = {0}, counts = {0};
    cat_run *run = NULL;
    int rc;

    if (o->dry_run) /* a dry run changes nothing, not even the runs table */
        return flt_run_inner(c, o, reporter, rep, err);
    if (o->params_json != NULL ? wp_buf_puts(&params, o->params_json) != 0
                               : flt_rules_json(o->rules, &params) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if (!wp_part_all(&o->part)) {
        /* the rules object with "part":"I/N" added as its last member */
        json_t *pj = json_loads(params.data ? params.data : "", 0, NULL);
        char part[32], *text = NULL;
        snprintf(part, sizeof part, "%d/%d", o->part.i, o->part.n);
        if (json_is_object(pj) && json_object_set_new(pj, "part", json_string(part)) == 0)
            text = wp_json_tree_text(pj, 0);
        json_decref(pj);
        wp_buf_reset(&params);
        rc = text != NULL ? wp_buf_puts(&params, text) : WP_ENOMEM;
        free(text);
        if (rc != 0) {
            wp_buf_free(&params);
            return wp_err_set(err, WP_ENOMEM, "filter: params: out of memory or not an object");
        }
    }
    ro.params_json = params.data;
    if ((rc = cat_run_begin(c, "filter", ro.params_json, &run, err)) != 0) {
        wp_buf_free(&params);
        return rc;
    }
    ro.run_id = cat_run_id(run);
    rc = flt_run_inner(c, &ro, reporter, rep, err);
    if (rc == 0 && flt_report_json(rep, o->rules, 0, &counts) != 0)
        wp_buf_reset(&counts);
    rc = cat_run_end(run, rc, counts.len ? counts.data : NULL, err);
    wp_buf_free(&counts);
    wp_buf_free(&params);
    return rc;
}
