/*
 * balance/bal_run.c: the balance stage. Matches every pair not yet matched
 * against the current query list (OpenMP, one scratch per thread, catalog
 * writes on the calling thread), reads the eligible pairs and their matches
 * into memory, decides every pair (so the figures and every decision are the
 * same whatever --part is chosen), records the decisions of the chosen part,
 * and writes the report (bal_report.c).
 *
 * WIT's cap rule (BAL_MODE_CAP): pairs are visited in the order of their
 * seeded draw (ascending); a pair is kept while any entry it matches has
 * kept fewer than t pairs, and a kept pair counts towards every entry it
 * matches. Pairs matching nothing follow --keep-unmatched in both modes.
 */
#include "bal_int.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_BATCH  8192
#define DECIDE_BATCH 50000

void bal_opts_init(bal_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = BAL_MODE_METACLIP;
    o->t = BAL_T_DEFAULT;
    o->rule = QRY_RULE_METACLIP;
}

void bal_stats_clear(bal_stats *st)
{
    for (int i = 0; i < st->ntop_before; i++)
        free((char *)st->top_before[i].entry);
    for (int i = 0; i < st->ntop_after; i++)
        free((char *)st->top_after[i].entry);
    st->ntop_before = st->ntop_after = 0;
}

const char *bal_rule_key(int rule, int flags)
{
    if (rule == QRY_RULE_METACLIP2)
        return (flags & QRY_IGNORE_CASE) ? "metaclip2+icase" : "metaclip2";
    return (flags & QRY_IGNORE_CASE) ? "metaclip+icase" : "metaclip";
}

static int add_entry(void *ud, int64_t entry, const char *text, size_t len)
{
    qry_list *l = ud;
    if ((size_t)entry != qry_list_count(l))
        return QRY_EENTRY;
    return qry_list_add(l, text, len, NULL);
}

int bal_load_list(cat *c, qry_list **out, int64_t *version, wp_err *err)
{
    int64_t n = 0;
    qry_list *l;
    int rc;
    *out = NULL;
    rc = cat_qry_current(c, version, &n, NULL, err);
    if (rc == WP_ENOENT)
        return wp_err_set(err, QRY_ENOLIST,
                          "%s: no query list in the catalog (run witpipe queries import FILE or "
                          "witpipe queries build)",
                          cat_dir(c));
    if (rc != 0)
        return rc;
    if ((l = qry_list_new()) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_qry_entries(c, *version, add_entry, l, err);
    if (rc == 0 && (int64_t)qry_list_count(l) != n)
        rc = QRY_EENTRY;
    if (rc == QRY_EENTRY)
        wp_err_set(err, rc, "%s: query list version %lld is damaged (entries out of order)",
                   cat_dir(c), (long long)*version);
    else if (rc == WP_ENOMEM)
        wp_err_set(err, rc, "out of memory");
    if (rc != 0) {
        qry_list_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int bal_match_pending(cat *c, int rule, int flags, const wp_reporter *rep, int64_t *matched,
                      wp_err *err)
{
    qry_list *l = NULL;
    qry_matcher *m = NULL;
    cat_match_item *items = NULL;
    uint32_t **res = NULL;
    int *nres = NULL;
    wp_arena *arena = NULL;
    const char *rk = bal_rule_key(rule, flags);
    int64_t version, after = 0, total;
    wp_progress pr = {.stage = "match"};
    int rc, n, nthreads = omp_get_max_threads();
    qry_scratch **scr = NULL;

    *matched = 0;
    if ((rc = bal_load_list(c, &l, &version, err)) != 0)
        return rc;
    total = cat_qry_count_todo(c, version, rk);
    if (total == 0)
        goto out;
    pr.total = total > 0 ? (uint64_t)total : 0;
    if ((rc = qry_matcher_new(l, rule, flags, &m, err)) != 0)
        goto out;
    items = malloc(MATCH_BATCH * sizeof *items);
    res = calloc(MATCH_BATCH, sizeof *res);
    nres = calloc(MATCH_BATCH, sizeof *nres);
    scr = calloc((size_t)nthreads, sizeof *scr);
    arena = wp_arena_new(1 << 22);
    if (!items || !res || !nres || !scr || !arena) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nthreads; i++)
        if ((scr[i] = qry_scratch_new()) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
    for (;;) {
        int oom = 0;
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped");
            goto out;
        }
        wp_arena_reset(arena);
        if ((rc = cat_qry_match_todo(c, version, rk, after, MATCH_BATCH, items, &n, arena, err)))
            goto out;
        if (n == 0)
            break;
#pragma omp parallel for schedule(dynamic, 64) reduction(| : oom)
        for (int i = 0; i < n; i++) {
            const uint32_t *ids;
            qry_scratch *s = scr[omp_get_thread_num()];
            int k = qry_match(m, items[i].text, items[i].text_len, s, &ids);
            free(res[i]);
            res[i] = NULL;
            nres[i] = 0;
            if (k < 0) {
                oom = 1;
            } else if (k > 0) {
                res[i] = malloc((size_t)k * sizeof *res[i]);
                if (res[i] == NULL)
                    oom = 1;
                else
                    memcpy(res[i], ids, (size_t)k * sizeof *ids);
                nres[i] = k;
            }
        }
        if (oom) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory matching captions");
            goto out;
        }
        if ((rc = cat_begin(c, err)) != 0)
            goto out;
        for (int i = 0; i < n; i++)
            if ((rc = cat_qry_match_put(c, items[i].pair_id, items[i].stale, version, rk, res[i],
                                        (size_t)nres[i], err)) != 0) {
                cat_rollback(c);
                goto out;
            }
        if ((rc = cat_commit(c, err)) != 0)
            goto out;
        after = items[n - 1].pair_id;
        *matched += n;
        pr.done = (uint64_t)*matched;
        wp_report_progress(rep, &pr);
    }
out:
    if (res)
        for (int i = 0; i < MATCH_BATCH; i++)
            free(res[i]);
    if (scr)
        for (int i = 0; i < nthreads; i++)
            qry_scratch_free(scr[i]);
    free(scr);
    free(res);
    free(nres);
    free(items);
    wp_arena_free(arena);
    qry_matcher_free(m);
    qry_list_free(l);
    return rc;
}

/* ---- the eligible pairs in memory ---------------------------------------- */

typedef struct loader {
    bal_pairs *P;
    int64_t last;
    int64_t budget; /* --max-memory, 0 when not given */
} loader;

/* What balancing holds per pair and per match, loaded and decided: the
 * pair's id, image, uid, language and match offset (44 bytes) and
 * bal_decide's keep, why, score, best, alive and sort key (31); a match's
 * entry, its key and the decision's slot (20). */
#define BAL_PAIR_BYTES  ((int64_t)80)
#define BAL_MATCH_BYTES ((int64_t)20)

/* 1 when n pairs and nm matches fit the loader's budget. */
static int bal_fits(const loader *L, size_t n, size_t nm)
{
    return L->budget <= 0 ||
           (int64_t)n * BAL_PAIR_BYTES + (int64_t)nm * BAL_MATCH_BYTES <= L->budget;
}

static int push_lang(bal_pairs *P, const char *lang, uint32_t *out)
{
    const char *name = lang ? lang : "";
    for (uint32_t i = 0; i < P->nlangs; i++)
        if (strcmp(P->langs[i], name) == 0) {
            *out = i;
            return 0;
        }
    if (P->nlangs % 16 == 0) {
        char **nl = realloc(P->langs, (P->nlangs + 16) * sizeof *nl);
        if (nl == NULL)
            return WP_ENOMEM;
        P->langs = nl;
    }
    if ((P->langs[P->nlangs] = strdup(name)) == NULL)
        return WP_ENOMEM;
    *out = P->nlangs++;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    void *np;
    size_t nc;
    if (need <= *cap)
        return 0;
    nc = *cap ? *cap * 2 : 4096;
    while (nc < need)
        nc *= 2;
    np = realloc(*p, nc * elem);
    if (np == NULL)
        return WP_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

static int load_row(void *ud, int64_t pair_id, int64_t image_id, const char *uid, const char *lang,
                    int64_t entry)
{
    loader *L = ud;
    bal_pairs *P = L->P;
    if (pair_id != L->last) {
        size_t i = P->n;
        if (!bal_fits(L, i + 1, P->nm))
            return WP_ELIMIT;
        if (grow((void **)&P->pair_id, &P->cap, i + 1, sizeof *P->pair_id) != 0)
            return WP_ENOMEM;
        /* the parallel arrays grow together with pair_id's capacity */
        if (P->cap != P->cap2) {
            int64_t *im = realloc(P->image_id, P->cap * sizeof *im);
            uint8_t *u = im ? realloc(P->uid, P->cap * WP_UID_LEN) : NULL;
            uint32_t *lg = u ? realloc(P->lang, P->cap * sizeof *lg) : NULL;
            uint64_t *mo = lg ? realloc(P->moff, (P->cap + 1) * sizeof *mo) : NULL;
            if (im)
                P->image_id = im;
            if (u)
                P->uid = u;
            if (lg)
                P->lang = lg;
            if (mo)
                P->moff = mo;
            if (!im || !u || !lg || !mo)
                return WP_ENOMEM;
            P->cap2 = P->cap;
        }
        P->pair_id[i] = pair_id;
        P->image_id[i] = image_id;
        if (uid == NULL || bal_uid_parse(uid, P->uid + i * WP_UID_LEN) != 0)
            memset(P->uid + i * WP_UID_LEN, 0, WP_UID_LEN);
        P->lang[i] = 0;
        if (P->with_lang && push_lang(P, lang, &P->lang[i]) != 0)
            return WP_ENOMEM;
        P->moff[i] = P->nm;
        P->moff[i + 1] = P->nm;
        P->n++;
        L->last = pair_id;
    }
    if (entry >= 0 && (uint64_t)entry < P->nentries) {
        if (!bal_fits(L, P->n, P->nm + 1))
            return WP_ELIMIT;
        if (grow((void **)&P->m, &P->mcap, P->nm + 1, sizeof *P->m) != 0)
            return WP_ENOMEM;
        P->m[P->nm++] = (uint32_t)entry;
        P->moff[P->n] = P->nm;
    }
    return 0;
}

void bal_pairs_free(bal_pairs *P)
{
    free(P->pair_id);
    free(P->image_id);
    free(P->uid);
    free(P->lang);
    free(P->moff);
    free(P->m);
    for (uint32_t i = 0; i < P->nlangs; i++)
        free(P->langs[i]);
    free(P->langs);
    memset(P, 0, sizeof *P);
}

int bal_pairs_load(cat *c, int with_lang, size_t nentries, bal_pairs *P, wp_err *err)
{
    loader L = {.P = P, .last = -1, .budget = wp_mem_is_set() ? wp_mem_budget(1) : 0};
    int rc;
    memset(P, 0, sizeof *P);
    P->with_lang = with_lang;
    P->nentries = nentries;
    P->moff = malloc(sizeof *P->moff);
    if (P->moff == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    P->moff[0] = 0;
    rc = cat_bal_pairs(c, with_lang, load_row, &L, err);
    if (rc == WP_ENOMEM)
        wp_err_set(err, rc, "out of memory reading pairs");
    else if (rc == WP_ELIMIT)
        wp_err_set(
            err, rc,
            "balance: more than %zu pairs with %zu query matches need over %lld MiB "
            "(%lld bytes a pair, %lld a match), over --max-memory %lld MiB; give a "
            "larger --max-memory",
            P->n, P->nm,
            (long long)(((int64_t)P->n * BAL_PAIR_BYTES + (int64_t)P->nm * BAL_MATCH_BYTES) >> 20),
            (long long)BAL_PAIR_BYTES, (long long)BAL_MATCH_BYTES, (long long)(L.budget >> 20));
    return rc;
}

/* ---- the stage ------------------------------------------------------------ */

static int bal_run_inner(cat *c, const bal_opts *o, const wp_reporter *rep, bal_stats *st,
                         wp_err *err)
{
    qry_list *l = NULL;
    bal_pairs P;
    bal_result R;
    int64_t version, matched = 0;
    int rc, has_lang = 0;

    memset(st, 0, sizeof *st);
    memset(&P, 0, sizeof P);
    memset(&R, 0, sizeof R);
    if (o->per_language) {
        has_lang = cat_bal_has_language(c, err);
        if (has_lang < 0)
            return has_lang;
        if (!has_lang)
            return wp_err_set(err, BAL_ENOLANG,
                              "--per-language needs each pair's language from the filter stage "
                              "(table pair_lang), which this catalog does not hold yet; run "
                              "witpipe filter first, or balance without --per-language");
    }
    if ((rc = bal_match_pending(c, o->rule, o->match_flags, rep, &matched, err)) != 0)
        return rc;
    st->pairs_matched_now = matched;
    if ((rc = bal_load_list(c, &l, &version, err)) != 0)
        return rc;
    st->list_version = version;
    st->entries = (int64_t)qry_list_count(l);
    if ((rc = bal_pairs_load(c, has_lang, qry_list_count(l), &P, err)) != 0)
        goto out;
    if ((rc = bal_decide(&P, o, &R, err)) != 0)
        goto out;
    if ((rc = bal_summarise(&P, &R, l, o, st, err)) != 0)
        goto out;
    if (!o->dry_run && (rc = bal_write(c, &P, &R, l, o, version, rep, st, err)) != 0)
        goto out;
    if (o->report_json && (rc = bal_report_json(o->report_json, o, st, &R, l, err)) != 0)
        goto out;
    if (o->curve_svg && (rc = bal_curve_svg(o->curve_svg, &R, st, err)) != 0)
        goto out;
out:
    bal_result_free(&R);
    bal_pairs_free(&P);
    qry_list_free(l);
    return rc;
}

/* The options as the run's params JSON; NULL when out of memory. */
static char *bal_params_json(const bal_opts *o)
{
    wp_buf b = {0};
    wp_json j;
    char part[32];
    snprintf(part, sizeof part, "%d/%d", o->part_n ? o->part_i : 1, o->part_n ? o->part_n : 1);
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "mode", o->mode == BAL_MODE_CAP ? "cap" : "metaclip");
    wp_json_int(&j, "t", o->t);
    wp_json_real(&j, "tail_fraction", o->tail_fraction);
    wp_json_bool(&j, "per_language", o->per_language);
    wp_json_uint(&j, "seed", o->seed);
    wp_json_bool(&j, "keep_unmatched", o->keep_unmatched);
    wp_json_bool(&j, "one_text_per_image", o->one_text_per_image);
    wp_json_str(&j, "part", part);
    wp_json_str(&j, "rule",
                o->rule == QRY_RULE_METACLIP2 ? (o->match_flags ? "metaclip2+icase" : "metaclip2")
                                              : (o->match_flags ? "metaclip+icase" : "metaclip"));
    wp_json_bool(&j, "dry_run", o->dry_run);
    wp_json_obj_end(&j);
    if (wp_json_finish(&j) != 0) {
        wp_buf_free(&b);
        return NULL;
    }
    return wp_buf_steal(&b);
}

int bal_run(cat *c, const bal_opts *o, const wp_reporter *rep, bal_stats *st, wp_err *err)
{
    char *pjs = bal_params_json(o), *cjs = NULL;
    cat_run *run = NULL;
    bal_opts ro = *o;
    int rc;

    if (pjs == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_run_begin(c, "balance", pjs, &run, err);
    free(pjs);
    if (rc != 0)
        return rc;
    ro.run_id = cat_run_id(run);
    rc = bal_run_inner(c, &ro, rep, st, err);
    cjs = bal_stats_to_json(&ro, st);
    rc = cat_run_end(run, rc, cjs, err);
    free(cjs);
    return rc;
}

int bal_match_run(cat *c, int rule, int flags, const wp_reporter *rep, int64_t *matched,
                  wp_err *err)
{
    cat_run *run = NULL;
    wp_buf counts = {0};
    wp_json j;
    int rc = cat_run_begin(c, "queries", "{\"action\":\"match\"}", &run, err);
    if (rc != 0)
        return rc;
    rc = bal_match_pending(c, rule, flags, rep, matched, err);
    wp_json_init(&j, &counts);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "matched", *matched);
    wp_json_obj_end(&j);
    rc = cat_run_end(run, rc, wp_json_finish(&j) == 0 ? counts.data : NULL, err);
    wp_buf_free(&counts);
    return rc;
}
