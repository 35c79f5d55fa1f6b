/*
 * balance/bal_decide.c: deciding every eligible pair in memory (one text
 * per image, counts per entry or per (language, entry), t, MetaCLIP's draw
 * or WIT's cap) and the figures of the report (head share, entropy, the
 * largest entries). Everything here depends only on the pairs and the
 * options, never on the order the catalog returned them in: pairs are
 * sorted by id on load, and the draw depends on (seed, uid) only.
 */
#include "bal_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NO_ENTRY 0xffffffffu

void bal_result_free(bal_result *R)
{
    free(R->keep);
    free(R->why);
    free(R->score);
    free(R->best);
    free(R->kc);
    free(R->kk);
    free(R->klang);
    free(R->kentry);
    free(R->tl);
    free(R->count);
    free(R->kept);
    memset(R, 0, sizeof *R);
}

int bal_in_part(const uint8_t uid[WP_UID_LEN], int i, int n)
{
    wp_part p = {i, n};
    return wp_part_has(&p, wp_part_key_uid(uid));
}

typedef struct sortkey {
    uint64_t a;
    double b;
    int64_t c;
    size_t i;
} sortkey;

static int sk_cmp(const void *x, const void *y)
{
    const sortkey *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->c < q->c ? -1 : p->c > q->c;
}

static int u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* the key index of (lang, entry) */
static size_t key_of(const bal_result *R, const uint64_t *keys, int per_lang, uint32_t lang,
                     uint32_t e)
{
    uint64_t k;
    size_t lo = 0, hi = R->nk;
    if (!per_lang)
        return e;
    k = (uint64_t)lang << 32 | e;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (keys[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int bal_decide(const bal_pairs *P, const bal_opts *o, bal_result *R, wp_err *err)
{
    size_t n = P->n, *mk = NULL;
    uint8_t *alive = NULL;
    uint64_t *keys = NULL;
    sortkey *order = NULL;
    int per_lang = o->per_language && P->with_lang;
    int rc = WP_ENOMEM;

    memset(R, 0, sizeof *R);
    if (o->mode == BAL_MODE_CAP && (o->tail_fraction > 0 || per_lang))
        return wp_err_set(err, BAL_EOPTS, "--mode cap takes --t only");
    R->keep = calloc(n ? n : 1, 1);
    R->why = calloc(n ? n : 1, 1);
    R->score = calloc(n ? n : 1, sizeof *R->score);
    R->best = malloc((n ? n : 1) * sizeof *R->best);
    alive = malloc(n ? n : 1);
    mk = malloc((P->nm ? P->nm : 1) * sizeof *mk);
    R->nentries = P->nentries;
    R->count = calloc(P->nentries ? P->nentries : 1, sizeof *R->count);
    R->kept = calloc(P->nentries ? P->nentries : 1, sizeof *R->kept);
    if (!R->keep || !R->why || !R->score || !R->best || !alive || !mk || !R->count || !R->kept)
        goto fail;
    memset(alive, 1, n);

    /* one text per image: the pair with the smallest stream-1 draw */
    if (o->one_text_per_image && n > 0) {
        order = malloc(n * sizeof *order);
        if (order == NULL)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            order[i].a = (uint64_t)P->image_id[i];
            order[i].b = bal_draw(o->seed, 1, P->uid + i * WP_UID_LEN);
            order[i].c = P->pair_id[i];
            order[i].i = i;
        }
        qsort(order, n, sizeof *order, sk_cmp);
        for (size_t j = 1; j < n; j++)
            if (order[j].a == order[j - 1].a) {
                alive[order[j].i] = 0;
                R->why[order[j].i] = WHY_ONE_TEXT;
            }
        free(order);
        order = NULL;
    }

    /* keys and their counts before balancing */
    if (per_lang) {
        size_t nk = 0;
        keys = malloc((P->nm ? P->nm : 1) * sizeof *keys);
        if (keys == NULL)
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (alive[i])
                for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++)
                    keys[nk++] = (uint64_t)P->lang[i] << 32 | P->m[j];
        qsort(keys, nk, sizeof *keys, u64_cmp);
        R->nk = 0;
        for (size_t j = 0; j < nk; j++)
            if (R->nk == 0 || keys[j] != keys[R->nk - 1])
                keys[R->nk++] = keys[j];
    } else {
        R->nk = P->nentries;
    }
    R->kc = calloc(R->nk ? R->nk : 1, sizeof *R->kc);
    R->kk = calloc(R->nk ? R->nk : 1, sizeof *R->kk);
    R->klang = calloc(R->nk ? R->nk : 1, sizeof *R->klang);
    R->kentry = malloc((R->nk ? R->nk : 1) * sizeof *R->kentry);
    R->ntl = per_lang ? (P->nlangs ? P->nlangs : 1) : 1;
    R->tl = calloc(R->ntl, sizeof *R->tl);
    if (!R->kc || !R->kk || !R->klang || !R->kentry || !R->tl)
        goto fail;
    for (size_t k = 0; k < R->nk; k++) {
        R->klang[k] = per_lang ? (uint32_t)(keys[k] >> 32) : 0;
        R->kentry[k] = per_lang ? (uint32_t)keys[k] : (uint32_t)k;
    }
    for (size_t i = 0; i < n; i++)
        for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++) {
            mk[j] = key_of(R, keys, per_lang, P->lang[i], P->m[j]);
            if (alive[i]) {
                R->kc[mk[j]]++;
                R->count[P->m[j]]++;
            }
        }

    /* t: given, or from the tail fraction (per language) */
    for (uint32_t g = 0; g < R->ntl; g++) {
        double f = o->tail_fraction > 0 ? o->tail_fraction : (per_lang ? 0.06 : 0);
        if (f <= 0) {
            R->tl[g] = o->t;
            continue;
        }
        {
            int64_t *v = malloc((R->nk ? R->nk : 1) * sizeof *v);
            size_t nv = 0;
            if (v == NULL)
                goto fail;
            for (size_t k = 0; k < R->nk; k++)
                if (R->klang[k] == g)
                    v[nv++] = R->kc[k];
            R->tl[g] = bal_t_for_tail(v, nv, f);
            free(v);
            if (R->tl[g] < 0)
                goto fail;
        }
    }

    /* best entry: the rarest matched (smallest count, then smallest id) */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint32_t b = NO_ENTRY;
        int64_t bc = INT64_MAX;
        for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++)
            if (R->kc[mk[j]] < bc || (R->kc[mk[j]] == bc && P->m[j] < b)) {
                bc = R->kc[mk[j]];
                b = P->m[j];
            }
        R->best[i] = b;
        if (alive[i] && b == NO_ENTRY)
            R->why[i] = WHY_UNMATCHED;
    }

    if (o->mode == BAL_MODE_METACLIP) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double q = 1.0, u;
            if (!alive[i])
                continue;
            if (R->best[i] == NO_ENTRY) {
                R->keep[i] = o->keep_unmatched != 0;
                R->score[i] = o->keep_unmatched ? 1.0 : 0.0;
                continue;
            }
            for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++) {
                int64_t c = R->kc[mk[j]], t = R->tl[R->klang[mk[j]]];
                q *= c > t ? 1.0 - (double)t / (double)c : 0.0;
            }
            u = bal_draw(o->seed, 0, P->uid + i * WP_UID_LEN);
            R->score[i] = 1.0 - q;
            R->keep[i] = u < 1.0 - q;
        }
    } else {
        /* WIT's cap, in the order of the seeded draw */
        size_t no = 0;
        int64_t *room = calloc(R->nk ? R->nk : 1, sizeof *room);
        order = malloc((n ? n : 1) * sizeof *order);
        if (room == NULL || order == NULL) {
            free(room);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (!alive[i])
                continue;
            R->score[i] = bal_draw(o->seed, 0, P->uid + i * WP_UID_LEN);
            if (R->best[i] == NO_ENTRY) {
                R->keep[i] = o->keep_unmatched != 0;
                continue;
            }
            order[no].a = 0;
            order[no].b = R->score[i];
            order[no].c = P->pair_id[i];
            order[no].i = i;
            no++;
        }
        qsort(order, no, sizeof *order, sk_cmp);
        for (size_t r = 0; r < no; r++) {
            size_t i = order[r].i;
            int ok = 0;
            for (uint64_t j = P->moff[i]; j < P->moff[i + 1] && !ok; j++)
                ok = room[mk[j]] < o->t;
            if (!ok)
                continue;
            R->keep[i] = 1;
            for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++)
                room[mk[j]]++;
        }
        free(room);
        R->tl[0] = o->t;
    }
    for (size_t i = 0; i < n; i++)
        if (R->keep[i])
            for (uint64_t j = P->moff[i]; j < P->moff[i + 1]; j++) {
                R->kk[mk[j]]++;
                R->kept[P->m[j]]++;
            }
    rc = 0;
fail:
    if (rc != 0) {
        wp_err_set(err, rc, "out of memory balancing %zu pairs", n);
        bal_result_free(R);
    }
    free(order);
    free(keys);
    free(mk);
    free(alive);
    return rc;
}

/* ---- figures -------------------------------------------------------------- */

static double entropy_bits(const int64_t *v, size_t n)
{
    double tot = 0, h = 0;
    for (size_t i = 0; i < n; i++)
        tot += (double)v[i];
    if (tot <= 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0) {
            double p = (double)v[i] / tot;
            h -= p * log2(p);
        }
    return h;
}

typedef struct topent {
    int64_t v;
    size_t k;
} topent;

static int top_cmp(const void *x, const void *y)
{
    const topent *a = x, *b = y;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

static int fill_top(const bal_pairs *P, const bal_result *R, const qry_list *l, const int64_t *v,
                    bal_entry_count *out, int *nout)
{
    topent *t = malloc((R->nk ? R->nk : 1) * sizeof *t);
    size_t m = 0;
    if (t == NULL)
        return WP_ENOMEM;
    for (size_t k = 0; k < R->nk; k++)
        if (v[k] > 0) {
            t[m].v = v[k];
            t[m].k = k;
            m++;
        }
    qsort(t, m, sizeof *t, top_cmp);
    *nout = 0;
    for (size_t r = 0; r < m && r < BAL_TOP; r++) {
        size_t len;
        const char *e = qry_list_entry(l, R->kentry[t[r].k], &len);
        char *s;
        if (P->with_lang && P->nlangs > 0) {
            const char *lg = P->langs[R->klang[t[r].k]];
            size_t ll = strlen(lg);
            s = malloc(ll + len + 2);
            if (s) {
                memcpy(s, lg, ll);
                s[ll] = ':';
                memcpy(s + ll + 1, e, len);
                s[ll + 1 + len] = '\0';
            }
        } else {
            s = strndup(e, len);
        }
        if (s == NULL) {
            free(t);
            return WP_ENOMEM;
        }
        out[r].entry = s;
        out[r].count = t[r].v;
        (*nout)++;
    }
    free(t);
    return 0;
}

int bal_summarise(const bal_pairs *P, const bal_result *R, const qry_list *l, const bal_opts *o,
                  bal_stats *st, wp_err *err)
{
    double hb = 0, ha = 0;
    int64_t tmax = 0;
    st->pairs = (int64_t)P->n;
    for (size_t i = 0; i < P->n; i++) {
        if (R->best[i] != NO_ENTRY && R->why[i] != WHY_ONE_TEXT)
            st->pairs_matched++;
        if (!bal_in_part(P->uid + i * WP_UID_LEN, o->part_i, o->part_n))
            continue;
        st->pairs_decided++;
        if (R->keep[i])
            st->kept++;
        else {
            st->dropped++;
            if (R->why[i] == WHY_UNMATCHED)
                st->dropped_unmatched++;
            if (R->why[i] == WHY_ONE_TEXT)
                st->dropped_one_text++;
        }
    }
    for (size_t e = 0; e < R->nentries; e++)
        if (R->count[e] > 0)
            st->entries_matched++;
    for (uint32_t g = 0; g < R->ntl; g++)
        if (R->tl[g] > tmax)
            tmax = R->tl[g];
    st->t = tmax;
    for (size_t k = 0; k < R->nk; k++) {
        st->matches_before += R->kc[k];
        st->matches_after += R->kk[k];
        if (R->kc[k] > R->tl[R->klang[k]]) {
            st->head_entries++;
            hb += (double)R->kc[k];
            ha += (double)R->kk[k];
        }
    }
    st->head_share_before = st->matches_before ? hb / (double)st->matches_before : 0;
    st->head_share_after = st->matches_after ? ha / (double)st->matches_after : 0;
    st->entropy_before = entropy_bits(R->kc, R->nk);
    st->entropy_after = entropy_bits(R->kk, R->nk);
    if (fill_top(P, R, l, R->kc, st->top_before, &st->ntop_before) != 0 ||
        fill_top(P, R, l, R->kk, st->top_after, &st->ntop_after) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    return 0;
}
