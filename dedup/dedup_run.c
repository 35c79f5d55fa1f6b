/*
 * dedup/dedup_run.c: the `dedup` stage over a corpus.
 *
 * 1. Hash: every stored image without a perceptual hash of its current
 *    bytes is read back from the store, decoded at reduced JPEG scale and
 *    hashed on OpenMP threads, a batch at a time; each batch's hashes are
 *    committed to the catalog (image_phash) before the next, so a stopped
 *    or killed run keeps them and the next run hashes only the rest.
 * 2. Decide, in memory, over the pairs of stored images:
 *    contaminated (pHash within the radius of an evaluation image), then
 *    exact (same image, same stored or served bytes), then near (whole
 *    and centre pHashes both within the radius, or one's whole within it
 *    of the other's centre: multi-index hashing, connected components), then
 *    semantic (SemDeDup over the image embeddings of one model). Each step
 *    sees only the pairs the earlier ones kept. A group keeps one pair:
 *    the highest CLIP score, else the largest original, else the first
 *    added; the others are dropped with reason KIND:KEEPER_PAIR_ID.
 * 3. Record: the stage's earlier decisions are deleted and the new drops
 *    inserted in one transaction (a kill leaves the old set or the new
 *    one), with the caption flags of --text-dup (stage "dedup-text", for
 *    the filter stage), then the run's counts, then the HTML picture.
 */
#include "catalog/catalog.h"
#include "clip/clip.h"
#include "dedup/dd_int.h"
#include "emb/emb.h"
#include "kern/kern.h"
#include "store/store.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HASH_BATCH      1024
#define IMAGE_BYTES_MAX ((int64_t)64 << 20)

dd_opts dd_opts_default(void)
{
    dd_opts o;
    memset(&o, 0, sizeof o);
    o.exact = o.near = 1;
    o.radius = 6;
    o.iters = 20;
    o.eps[0] = 0.05;
    o.neps = 1;
    o.report_groups = 20;
    o.against_radius = 6;
    return o;
}

typedef struct item {
    int64_t pair_id, image_id, area;
    uint8_t sha[16], osha[16];
    int has_sha, has_osha, has_phash;
    float score;                /* NAN when none */
    uint64_t phash[2];          /* whole image, centre */
    int64_t emb_shard, emb_row; /* -1 when no embedding */
    int kind;                   /* enum dd_kind: why dropped, DD_KEEP when kept */
    int64_t group;              /* the keeper's pair id, or the evaluation set */
    double dscore;              /* distance to the keeper (NAN: none) */
} item;

typedef struct items {
    item *v;
    size_t n, cap;
} items;

/* ---- --max-memory ------------------------------------------------------ */

/* Bytes a step holds per pair beside its item: the near step's sort and
 * union-find rows (tuple, position, two hashes, representative, parent),
 * the multi-index tables' 24 bytes a hash for both hashes, a group slot. */
#define NEAR_ROW_BYTES (24 + 8 + 16 + 4 + 4 + 48 + 8)

/* 1 when --max-memory was given and need bytes exceed it (the budget in
 * *budget), else 0. */
static int mem_over(int64_t need, int64_t *budget)
{
    if (!wp_mem_is_set())
        return 0;
    *budget = wp_mem_budget(omp_get_max_threads());
    return need > *budget;
}

/* 0 when `need` bytes fit --max-memory (always, when it was not given);
 * else WP_ELIMIT with a message naming what needs them, the budget and the
 * --max-memory that would do. */

static int mem_fits(int64_t need, const char *what, wp_err *err)
{
    int64_t budget;
    if (!mem_over(need, &budget))
        return 0;
    return wp_err_set(err, WP_ELIMIT,
                      "dedup: %s needs about %lld MiB, over --max-memory %lld MiB; give "
                      "--max-memory %lldM or more, or dedup fewer pairs",
                      what, (long long)(need >> 20), (long long)(budget >> 20),
                      (long long)((need + (1 << 20) - 1) >> 20));
}

static int hex16(const char *hex, uint8_t out[16])
{
    if (strlen(hex) < 32)
        return 0;
    for (int i = 0; i < 16; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = hex[2 * i + k];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                return 0;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 1;
}

static int add_item(void *ud, const cat_dedup_item *it)
{
    items *L = ud;
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 4096;
        item *v = realloc(L->v, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        L->v = v;
        L->cap = cap;
    }
    item *x = &L->v[L->n++];
    memset(x, 0, sizeof *x);
    x->pair_id = it->pair_id;
    x->image_id = it->image_id;
    x->area = it->orig_area;
    x->has_sha = hex16(it->sha256, x->sha);
    x->has_osha = hex16(it->orig_sha256, x->osha);
    x->score = isnan(it->clip_score) ? NAN : (float)it->clip_score;
    x->has_phash = it->has_phash;
    x->phash[0] = it->phash;
    x->phash[1] = it->phash_inner;
    x->emb_shard = x->emb_row = -1;
    x->dscore = NAN;
    return 0;
}

/* 1 when a should be kept rather than b. */
static int better(const item *a, const item *b)
{
    int sa = !isnan(a->score), sb = !isnan(b->score);
    if (sa != sb)
        return sa;
    if (sa && a->score != b->score)
        return a->score > b->score;
    if (a->area != b->area)
        return a->area > b->area;
    return a->pair_id < b->pair_id;
}

/* ---- groups ------------------------------------------------------------ */

typedef struct groups {
    dd_group *g;
    size_t n, cap;
    int64_t *mem; /* all members, group after group */
    size_t nmem, capmem;
} groups;

/* Makes a group of items idx[0..m): picks the keeper (forced_keep unless
 * SIZE_MAX), marks the others dropped with kind, records the group.
 * dist(a, b) gives the score. */
static int make_group(items *L, const size_t *idx, size_t m, int kind, groups *G,
                      double (*dist)(const item *, const item *), size_t forced_keep)
{
    size_t keep = idx[0];
    for (size_t k = 1; k < m; k++)
        if (better(&L->v[idx[k]], &L->v[keep]))
            keep = idx[k];
    if (forced_keep != SIZE_MAX)
        keep = forced_keep;
    if (G->n == G->cap) {
        size_t cap = G->cap ? G->cap * 2 : 256;
        dd_group *g = realloc(G->g, cap * sizeof *g);
        if (g == NULL)
            return WP_ENOMEM;
        G->g = g;
        G->cap = cap;
    }
    if (G->nmem + m > G->capmem) {
        size_t cap = G->capmem ? G->capmem * 2 : 4096;
        while (cap < G->nmem + m)
            cap *= 2;
        int64_t *v = realloc(G->mem, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        G->mem = v;
        G->capmem = cap;
    }
    /* members are stored as offsets first (mem may move); fixed at the end */
    G->g[G->n++] = (dd_group){kind, L->v[keep].pair_id, (const int64_t *)(uintptr_t)G->nmem, m};
    G->mem[G->nmem++] = L->v[keep].pair_id;
    for (size_t k = 0; k < m; k++) {
        item *x = &L->v[idx[k]];
        if (idx[k] == keep)
            continue;
        G->mem[G->nmem++] = x->pair_id;
        x->kind = kind;
        x->group = L->v[keep].pair_id;
        x->dscore = dist ? dist(x, &L->v[keep]) : NAN;
    }
    return 0;
}

/* The smallest distance between either hash of a and either of b. */
static double phash_dist(const item *a, const item *b)
{
    int d = 64;
    for (int x = 0; x < 2; x++)
        for (int y = 0; y < 2; y++)
            if (dd_hamming(a->phash[x], b->phash[y]) < d)
                d = dd_hamming(a->phash[x], b->phash[y]);
    return d;
}

/* Groups the active items sub[0..m) by comp (the component of each, an
 * index into sub): every component of two or more becomes a group. With
 * root_keeps, the component's root is its keeper (SemDeDup's kept row). */
static int groups_from_components(items *L, const size_t *sub, const uint32_t *comp, size_t m,
                                  int kind, groups *G, double (*dist)(const item *, const item *),
                                  int root_keeps, int64_t *ngroups)
{
    size_t *order = malloc((m ? m : 1) * sizeof *order), *idx = malloc((m ? m : 1) * sizeof *idx);
    size_t *start = calloc(m + 1, sizeof *start);
    int rc = 0;
    if (!order || !idx || !start) {
        rc = WP_ENOMEM;
        goto out;
    }
    /* counting sort of positions by component root */
    for (size_t k = 0; k < m; k++)
        start[comp[k] + 1]++;
    for (size_t k = 0; k < m; k++)
        start[k + 1] += start[k];
    for (size_t k = 0; k < m; k++)
        order[start[comp[k]]++] = k;
    memmove(start + 1, start, m * sizeof *start);
    start[0] = 0;
    for (size_t r = 0; r < m; r++) {
        size_t cn = start[r + 1] - start[r];
        if (cn < 2)
            continue;
        for (size_t q = 0; q < cn; q++)
            idx[q] = sub[order[start[r] + q]];
        if ((rc = make_group(L, idx, cn, kind, G, dist, root_keeps ? sub[r] : SIZE_MAX)) != 0)
            goto out;
        (*ngroups)++;
    }
out:
    free(order);
    free(idx);
    free(start);
    return rc;
}

/* ---- exact ------------------------------------------------------------- */

typedef struct keyed {
    uint8_t key[17]; /* namespace byte + 16 */
    uint32_t at;     /* position in sub */
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = memcmp(x->key, y->key, sizeof x->key);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

static int step_exact(items *L, groups *G, dd_counts *cnt)
{
    size_t m = 0, nk = 0;
    size_t *sub = malloc((L->n ? L->n : 1) * sizeof *sub);
    uint32_t *par = malloc((L->n ? L->n : 1) * sizeof *par);
    keyed *k = malloc((L->n ? L->n : 1) * 3 * sizeof *k);
    int rc = 0;
    if (!sub || !par || !k) {
        rc = WP_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < L->n; i++)
        if (L->v[i].kind == DD_KEEP)
            sub[m++] = i;
    for (size_t q = 0; q < m; q++) {
        item *x = &L->v[sub[q]];
        par[q] = (uint32_t)q;
        memset(k[nk].key, 0, sizeof k[nk].key);
        k[nk].key[0] = 0;
        memcpy(k[nk].key + 1, &x->image_id, sizeof x->image_id);
        k[nk++].at = (uint32_t)q;
        if (x->has_sha) {
            k[nk].key[0] = 1;
            memcpy(k[nk].key + 1, x->sha, 16);
            k[nk++].at = (uint32_t)q;
        }
        if (x->has_osha) {
            k[nk].key[0] = 2;
            memcpy(k[nk].key + 1, x->osha, 16);
            k[nk++].at = (uint32_t)q;
        }
    }
    qsort(k, nk, sizeof *k, cmp_keyed);
    for (size_t q = 1; q < nk; q++)
        if (memcmp(k[q].key, k[q - 1].key, sizeof k[q].key) == 0)
            dd_uf_union(par, k[q].at, k[q - 1].at);
    for (size_t q = 0; q < m; q++)
        par[q] = dd_uf_find(par, (uint32_t)q);
    rc = groups_from_components(L, sub, par, m, DD_EXACT, G, NULL, 0, &cnt->exact_groups);
out:
    free(sub);
    free(par);
    free(k);
    return rc;
}

/* ---- near -------------------------------------------------------------- */

/* Whether two images' hash pairs (whole, centre) say near-duplicate at
 * radius r: the whole images and the centres both within r (a re-encoded,
 * resized, recoloured or marked copy), or one's whole within r of the
 * other's centre (a copy cropped by about DD_PHASH_CROP a side). Any one
 * of the four within r is not enough: two shots of one scene from nearby
 * viewpoints can be that close on the whole image alone. */
static int phash_match(const uint64_t a[2], const uint64_t b[2], int r)
{
    return (dd_hamming(a[0], b[0]) <= r && dd_hamming(a[1], b[1]) <= r) ||
           dd_hamming(a[0], b[1]) <= r || dd_hamming(a[1], b[0]) <= r;
}

typedef struct tuple_at {
    uint64_t w, c;
    uint32_t at; /* position in sub */
} tuple_at;

static int cmp_tuple_at(const void *a, const void *b)
{
    const tuple_at *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    if (x->c != y->c)
        return x->c < y->c ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

/* Near groups. Images with the same (whole, centre) hashes are joined
 * first (a corpus may hold thousands of blank or solid-colour images with
 * one hash: all pairs of them would be quadratic), then both hashes of
 * each distinct pair go through the MIH join, and each pair of hashes
 * found joins its images when phash_match agrees. */
static int step_near(items *L, int radius, groups *G, dd_counts *cnt, wp_err *err)
{
    size_t m = 0, np = 0, nu = 0;
    size_t *sub = malloc((L->n ? L->n : 1) * sizeof *sub);
    tuple_at *ta = malloc((L->n ? L->n : 1) * sizeof *ta);
    uint64_t *h = malloc((L->n ? L->n : 1) * 2 * sizeof *h);
    uint32_t *rep = malloc((L->n ? L->n : 1) * sizeof *rep);
    uint32_t *par = malloc((L->n ? L->n : 1) * sizeof *par);
    dd_pair *pairs = NULL;
    int rc = 0;
    if (!sub || !ta || !h || !rep || !par) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < L->n; i++)
        if (L->v[i].kind == DD_KEEP && L->v[i].has_phash) {
            ta[m] = (tuple_at){L->v[i].phash[0], L->v[i].phash[1], (uint32_t)m};
            par[m] = (uint32_t)m;
            sub[m++] = i;
        }
    qsort(ta, m, sizeof *ta, cmp_tuple_at);
    for (size_t q = 0; q < m; q++) {
        if (q > 0 && ta[q].w == ta[q - 1].w && ta[q].c == ta[q - 1].c) {
            dd_uf_union(par, ta[q].at, ta[q - 1].at);
            continue;
        }
        h[2 * nu] = ta[q].w;
        h[2 * nu + 1] = ta[q].c;
        rep[nu++] = ta[q].at;
    }
    if ((rc = dd_mih_join(h, 2 * nu, radius, &pairs, &np, err)) != 0)
        goto out;
    for (size_t p = 0; p < np; p++) {
        uint32_t x = pairs[p].i / 2, y = pairs[p].j / 2;
        if (x != y && phash_match(h + 2 * x, h + 2 * y, radius))
            dd_uf_union(par, rep[x], rep[y]);
    }
    for (size_t q = 0; q < m; q++)
        par[q] = dd_uf_find(par, (uint32_t)q);
    if ((rc = groups_from_components(L, sub, par, m, DD_NEAR, G, phash_dist, 0,
                                     &cnt->near_groups)) != 0)
        wp_err_set(err, rc, "out of memory");
out:
    free(sub);
    free(ta);
    free(h);
    free(rep);
    free(par);
    free(pairs);
    return rc;
}

/* ---- semantic ---------------------------------------------------------- */

static int find_pair(const items *L, int64_t pair_id)
{
    size_t lo = 0, hi = L->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (L->v[mid].pair_id < pair_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < L->n && L->v[lo].pair_id == pair_id ? (int)lo : -1;
}

static int on_emb(void *ud, int64_t pair_id, int64_t shard, int64_t row)
{
    items *L = ud;
    int at = find_pair(L, pair_id);
    if (at >= 0) {
        L->v[at].emb_shard = shard;
        L->v[at].emb_row = row;
    }
    return 0;
}

/* Orders positions of active items by (shard, row): each shard is read once. */
static int cmp_emb(const void *a, const void *b, void *ud)
{
    const items *L = ud;
    const item *x = &L->v[*(const size_t *)a], *y = &L->v[*(const size_t *)b];
    if (x->emb_shard != y->emb_shard)
        return x->emb_shard < y->emb_shard ? -1 : 1;
    return (x->emb_row > y->emb_row) - (x->emb_row < y->emb_row);
}

static int pick_model(struct cat *c, const dd_opts *o, char *model, size_t cap, wp_err *err)
{
    wp_buf names = {0};
    int n = 0, rc;
    if (o->model != NULL && o->model[0]) {
        snprintf(model, cap, "%s", o->model);
        return 0;
    }
    if ((rc = cat_dedup_models(c, &names, &n, err)) != 0)
        goto out;
    if (n != 1)
        rc = wp_err_set(err, DD_EMODEL,
                        n == 0 ? "--semantic: no embeddings in the catalog (run encode first)"
                               : "--semantic: embeddings of several models; choose one with "
                                 "--model (%s)",
                        names.data ? names.data : "");
    else
        snprintf(model, cap, "%s", names.data);
out:
    wp_buf_free(&names);
    return rc;
}

/* The image embeddings of model for the items (all of them, or only the
 * kept ones): *sub (malloc'ed) their positions in (shard, row) order and
 * *X (malloc'ed, m x d) their unit rows, read shard by shard. *m = 0 when
 * none has an embedding (*X NULL). */
static int load_embeddings(struct cat *c, items *L, const char *model, int kept_only,
                           int64_t row_extra, const char *what, size_t **subp, float **Xp,
                           size_t *mp, int *dp, wp_err *err)
{
    char path[WP_PATH_MAX], rel[WP_PATH_MAX];
    size_t *sub = NULL, m = 0;
    float *X = NULL;
    emb_set *set = NULL;
    int d = 0, rc;

    *subp = NULL;
    *Xp = NULL;
    *mp = 0;
    for (size_t i = 0; i < L->n; i++)
        L->v[i].emb_shard = L->v[i].emb_row = -1;
    if ((rc = cat_dedup_embeddings(c, model, on_emb, L, err)) != 0)
        return rc;
    sub = malloc((L->n ? L->n : 1) * sizeof *sub);
    if (sub == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (size_t i = 0; i < L->n; i++)
        if ((!kept_only || L->v[i].kind == DD_KEEP) && L->v[i].emb_shard >= 0)
            sub[m++] = i;
    qsort_r(sub, m, sizeof *sub, cmp_emb, L);
    /* the embeddings module maps the model's folder once (emb/emb.h) */
    snprintf(rel, sizeof rel, "embeddings/%s", model);
    if ((rc = wp_path_join(path, cat_dir(c), rel, err)) != 0 ||
        (m > 0 && (rc = emb_open(path, &set, err)) != 0))
        goto out;
    d = m > 0 ? emb_dim(set) : 0;
    if (m > 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s of %zu embeddings of %d floats", what, m, d);
        if ((rc = mem_fits((int64_t)(L->n * sizeof *L->v) +
                               (int64_t)m * ((int64_t)d * 4 + 8 + row_extra),
                           msg, err)) != 0)
            goto out;
    }
    if (m > 0 && (X = malloc(m * (size_t)d * sizeof *X)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for %zu x %d", m, d);
        goto out;
    }
    for (size_t q = 0; q < m; q++) {
        item *x = &L->v[sub[q]];
        int64_t row = emb_find_pair(set, x->pair_id);
        float *dst = X + q * (size_t)d;
        double s2 = 0;
        if (row < 0) {
            rc = wp_err_set(err, DD_EFORMAT, "%s: no embedding row for pair %lld", path,
                            (long long)x->pair_id);
            goto out;
        }
        if ((rc = emb_read(set, EMB_IMAGE, row, 1, dst, err)) != 0)
            goto out;
        for (int j = 0; j < d; j++)
            s2 += (double)dst[j] * dst[j];
        if (s2 > 0)
            for (int j = 0; j < d; j++)
                dst[j] = (float)(dst[j] / sqrt(s2));
    }
out:
    emb_close(set);
    if (rc != 0) {
        free(sub);
        free(X);
        return rc;
    }
    *subp = sub;
    *Xp = X;
    *mp = m;
    *dp = d;
    return 0;
}

/* ---- decontamination --------------------------------------------------- */

#define EVAL_BLOCK   256   /* evaluation rows per product */
#define CORPUS_BLOCK 16384 /* corpus rows per product */

/* Marks an item contaminated by evaluation set `set` at distance dist
 * (the nearer of two findings wins). */
static void contaminate(item *x, int set, double dist, dd_counts *cnt)
{
    if (x->kind == DD_CONTAM && x->dscore <= dist)
        return;
    if (x->kind != DD_CONTAM)
        cnt->contaminated++;
    x->kind = DD_CONTAM;
    x->group = set;
    x->dscore = dist;
}

/* What one pass over an evaluation set's images collects: both pHashes of
 * each (when hashing) and its unit image embedding (when cm is set). */
typedef struct eval_acc {
    const wp_reporter *rep;
    int hash;
    const clip_model *cm;
    int d;
    uint64_t *h; /* 2 per image hashed */
    size_t nh, caph;
    float *E; /* d per image embedded */
    size_t ne, cape;
    size_t seen;
    /* --max-memory (against_fits): what the run holds besides the set, the
     * bytes each of the set's images costs, and the set's name */
    int64_t held, per;
    const char *loc;
} eval_acc;

/* Bytes an evaluation image costs beside its pHashes (16) and embedding:
 * its copy in the join's hash array (16) and the multi-index tables' 24
 * bytes for each of its two hashes. */
#define AGAINST_JOIN_BYTES (16 + 48)

/* 0 when the evaluation set's arrays grown to cap images fit --max-memory
 * (always when it was not given); else WP_ELIMIT naming the set, the
 * images read so far, the bytes they need and the budget. */
static int against_fits(const eval_acc *A, size_t cap, wp_err *err)
{
    int64_t need = A->held + (int64_t)cap * A->per, budget;
    if (!mem_over(need, &budget))
        return 0;
    return wp_err_set(err, WP_ELIMIT,
                      "dedup: the evaluation set %s needs more than %lld MiB after %zu images "
                      "(%lld bytes an image: %s; %lld MiB for the pairs), over --max-memory "
                      "%lld MiB; give a larger --max-memory or a smaller set",
                      A->loc, (long long)((need + (1 << 20) - 1) >> 20), A->seen, (long long)A->per,
                      A->cm == NULL ? "its pHashes and their join index"
                      : A->hash     ? "its pHashes, their join index and its embedding"
                                    : "its embedding",
                      (long long)(A->held >> 20), (long long)(budget >> 20));
}

static int on_eval_image(void *ud, const char *name, const void *data, size_t n, wp_err *err)
{
    eval_acc *A = ud;
    wp_err e = {0};
    int rc;

    A->seen++;
    if (A->hash) {
        if (A->nh == A->caph) {
            size_t cap = A->caph ? A->caph * 2 : 256;
            if ((rc = against_fits(A, cap, err)) != 0)
                return rc;
            uint64_t *h = realloc(A->h, cap * 2 * sizeof *h);
            if (h == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            A->h = h;
            A->caph = cap;
        }
        if ((rc = dd_phash_bytes(data, n, &A->h[2 * A->nh], &A->h[2 * A->nh + 1], &e)) != 0) {
            if (rc == WP_ENOMEM)
                return wp_err_set(err, rc, "%s", e.msg);
            wp_report_event(A->rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", name, e.msg);
            return 0;
        }
        A->nh++;
    }
    if (A->cm != NULL) {
        if (A->ne == A->cape) {
            size_t cap = A->cape ? A->cape * 2 : 256;
            if ((rc = against_fits(A, cap, err)) != 0)
                return rc;
            float *E = realloc(A->E, cap * (size_t)A->d * sizeof *E);
            if (E == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            A->E = E;
            A->cape = cap;
        }
        float *v = A->E + A->ne * (size_t)A->d;
        if ((rc = clip_embed_image_bytes(A->cm, data, n, v, &e)) != 0) {
            if (rc == WP_ENOMEM)
                return wp_err_set(err, rc, "%s", e.msg);
            wp_report_event(A->rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", name, e.msg);
            return 0;
        }
        clip_l2_normalize(v, A->d);
        A->ne++;
    }
    return 0;
}

/* Drops the items with a pHash (whole or centre) within radius of one of
 * an evaluation image's two, eh[0..2ne). */
static int against_by_phash(items *L, int radius, int set, const uint64_t *eh, size_t ne,
                            dd_counts *cnt, wp_err *err)
{
    size_t m = 0, npairs = 0;
    uint64_t *h = malloc((L->n + ne + 1) * 2 * sizeof *h);
    size_t *sub = malloc((L->n + 1) * sizeof *sub);
    dd_pair *pairs = NULL;
    int rc = 0;

    if (!h || !sub) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    /* both hashes of each corpus image (2q, 2q + 1), then the evaluation
     * images' */
    for (size_t i = 0; i < L->n; i++)
        if (L->v[i].has_phash) {
            h[2 * m] = L->v[i].phash[0];
            h[2 * m + 1] = L->v[i].phash[1];
            sub[m++] = i;
        }
    if (ne > 0)
        memcpy(h + 2 * m, eh, ne * 2 * sizeof *h);
    if ((rc = dd_mih_join(h, 2 * (m + ne), radius, &pairs, &npairs, err)) != 0)
        goto out;
    for (size_t p = 0; p < npairs; p++) {
        /* i < j: a corpus item's hash with an evaluation image's, the
         * two images near-duplicates as step_near decides */
        if (pairs[p].i >= 2 * m || pairs[p].j < 2 * m ||
            !phash_match(h + pairs[p].i / 2 * 2, h + pairs[p].j / 2 * 2, radius))
            continue;
        contaminate(&L->v[sub[pairs[p].i / 2]], set, pairs[p].dist, cnt);
    }
out:
    free(h);
    free(sub);
    free(pairs);
    return rc;
}

/* Drops the items whose unit image embedding (X, m x d; item sub[r] for
 * row r) has a cosine above thr with an evaluation image's (E, ne x d). */
static void against_by_embedding(items *L, const float *X, const size_t *sub, size_t m, int d,
                                 const float *E, size_t ne, float thr, int set, float *S,
                                 dd_counts *cnt)
{
    for (size_t e0 = 0; e0 < ne; e0 += EVAL_BLOCK) {
        int me = (int)(ne - e0 < EVAL_BLOCK ? ne - e0 : EVAL_BLOCK);
        for (size_t c0 = 0; c0 < m; c0 += CORPUS_BLOCK) {
            int mc = (int)(m - c0 < CORPUS_BLOCK ? m - c0 : CORPUS_BLOCK);
            kn_gemm_nt(me, mc, d, 1.0f, E + e0 * d, d, X + c0 * d, d, 0.0f, S, mc);
            for (int i = 0; i < me; i++)
                for (int j = 0; j < mc; j++)
                    if (S[(size_t)i * mc + j] > thr)
                        contaminate(&L->v[sub[c0 + (size_t)j]], set, 1.0 - S[(size_t)i * mc + j],
                                    cnt);
        }
    }
}

/* Each evaluation set's images are read once (dd_eval_each), hashed and,
 * with against_eps, embedded with opts->clip_model (the model the corpus
 * embeddings came from); corpus pairs near one of them are contaminated. */
static int step_against(struct cat *c, items *L, const dd_opts *o, const wp_reporter *rep,
                        dd_counts *cnt, wp_err *err)
{
    char model[256];
    clip_model *cm = NULL;
    size_t *esub = NULL, m = 0;
    float *X = NULL, *S = NULL;
    int d = 0, rc = 0;

    if (o->against_eps > 0) {
        if (o->clip_model == NULL)
            return wp_err_set(err, DD_EMODEL,
                              "--against-eps needs the CLIP model folder "
                              "(--clip-model) that encoded the corpus");
        if ((rc = pick_model(c, o, model, sizeof model, err)) != 0 ||
            (rc = load_embeddings(c, L, model, 0, 0, "--against-eps", &esub, &X, &m, &d, err)) != 0)
            goto out;
        if (m > 0) {
            if ((rc = clip_model_open(o->clip_model, NULL, &cm, err)) != 0)
                goto out;
            if (clip_model_arch(cm)->embed_dim != d) {
                rc = wp_err_set(err, DD_EMODEL, "%s: embeddings of %d, the corpus's (%s) %d",
                                o->clip_model, clip_model_arch(cm)->embed_dim, model, d);
                goto out;
            }
            if ((S = malloc((size_t)EVAL_BLOCK * CORPUS_BLOCK * sizeof *S)) == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    for (int a = 0; a < o->nagainst && rc == 0; a++) {
        eval_acc A = {.rep = rep, .hash = o->against_radius >= 0, .cm = cm, .d = d};
        A.loc = o->against[a];
        /* held: the pairs' items, the corpus side of the join (both hashes,
         * the item index, the tables), the corpus embeddings and the block */
        A.held = (int64_t)L->n * (int64_t)(sizeof *L->v) +
                 (A.hash ? (int64_t)L->n * (16 + 8 + 48) : 0) +
                 (int64_t)m * ((int64_t)d * 4 + (int64_t)sizeof *esub) +
                 (S != NULL ? (int64_t)EVAL_BLOCK * CORPUS_BLOCK * 4 : 0);
        A.per = (A.hash ? 16 + AGAINST_JOIN_BYTES : 0) + (cm != NULL ? (int64_t)d * 4 : 0);
        rc = dd_eval_each(o->against[a], (size_t)IMAGE_BYTES_MAX, on_eval_image, &A, rep, err);
        if (rc == 0 && A.hash) {
            rc = against_by_phash(L, o->against_radius, a, A.h, A.nh, cnt, err);
            wp_report_event(rep, WP_LOG_INFO, "dedup_against", "%s: %zu images hashed of %zu",
                            o->against[a], A.nh, A.seen);
        }
        if (rc == 0 && cm != NULL) {
            against_by_embedding(L, X, esub, m, d, A.E, A.ne, (float)(1.0 - o->against_eps), a, S,
                                 cnt);
            wp_report_event(rep, WP_LOG_INFO, "dedup_against", "%s: %zu images embedded of %zu",
                            o->against[a], A.ne, A.seen);
        }
        free(A.h);
        free(A.E);
    }
out:
    clip_model_free(cm);
    free(esub);
    free(X);
    free(S);
    return rc;
}

/* The semantic step's bytes per row beside the row itself: position,
 * assignment, keep_of per eps, union-find root, k-means' best score and
 * pick, SemDeDup's member entry. */
#define SEM_ROW_BYTES(neps) ((int64_t)8 + 4 + 8 * (neps) + 4 + 4 + 8 + 16)

/* What the k-means of k clusters over m rows of d holds besides the rows:
 * centroids, per-thread sums and counts, one assignment block (semdedup.c's
 * ASSIGN_BLOCK of 16384 rows). */
static int64_t kmeans_bytes(size_t m, int d, int k)
{
    int64_t nthr = omp_get_max_threads();
    (void)m;
    return (int64_t)k * d * 4 * (1 + nthr) + nthr * k * 8 + (int64_t)16384 * k * 4;
}

/* What SemDeDup adds for a largest cluster of maxc rows of d: its copy,
 * one band of its Gram matrix (semdedup.c: at most 32 Mi floats, at least
 * 64 rows) and a flag per eps. */
static int64_t semdedup_bytes(size_t maxc, int d, int neps)
{
    int64_t band = maxc ? ((int64_t)32 << 20) / (int64_t)maxc : 1;
    if (band > (int64_t)maxc)
        band = (int64_t)maxc;
    if (band < 64)
        band = 64;
    return (int64_t)maxc * d * 4 + band * (int64_t)maxc * 4 + (int64_t)neps * maxc;
}

static int step_semantic(struct cat *c, items *L, const dd_opts *o, groups *G, dd_counts *cnt,
                         const wp_reporter *rep, wp_err *err)
{
    char model[256];
    size_t *sub = NULL, m = 0;
    float *X = NULL, *C = NULL;
    int32_t *assign = NULL;
    int64_t *keep_of = NULL, base;
    int d = 0, rc, k;
    char what[160];

    if ((rc = pick_model(c, o, model, sizeof model, err)) != 0 ||
        (rc = load_embeddings(c, L, model, 1, SEM_ROW_BYTES(o->neps), "the semantic step", &sub, &X,
                              &m, &d, err)) != 0)
        return rc;
    if (m < 2)
        goto out;
    k = o->clusters > 0 ? o->clusters : (int)lround(sqrt((double)m));
    if (k < 1)
        k = 1;
    if ((size_t)k > m)
        k = (int)m;
    base = (int64_t)(L->n * sizeof *L->v) + (int64_t)m * ((int64_t)d * 4 + SEM_ROW_BYTES(o->neps));
    snprintf(what, sizeof what, "the k-means of %zu embeddings of %d floats into %d clusters", m, d,
             k);
    if ((rc = mem_fits(base + kmeans_bytes(m, d, k), what, err)) != 0)
        goto out;
    C = malloc((size_t)k * d * sizeof *C);
    assign = malloc(m * sizeof *assign);
    keep_of = malloc((size_t)o->neps * m * sizeof *keep_of);
    if (!C || !assign || !keep_of) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    wp_report_event(rep, WP_LOG_INFO, "dedup_semantic",
                    "k-means: %zu embeddings of %d (%s), %d clusters, %d rounds", m, d, model, k,
                    o->iters);
    if ((rc = dd_kmeans(X, m, d, k, o->iters, 42, NULL, C, assign, NULL, err)) != 0)
        goto out;
    {
        /* the largest cluster sets SemDeDup's need */
        size_t maxc = 0, *size = calloc((size_t)k, sizeof *size);
        if (size == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t q = 0; q < m; q++)
            if (++size[assign[q]] > maxc)
                maxc = size[assign[q]];
        free(size);
        snprintf(what, sizeof what, "SemDeDup of %zu embeddings of %d floats (largest cluster %zu)",
                 m, d, maxc);
        if ((rc = mem_fits(base + (int64_t)k * d * 4 + semdedup_bytes(maxc, d, o->neps), what,
                           err)) != 0)
            goto out;
    }
    if ((rc = dd_semdedup(X, m, d, C, k, assign, o->eps, o->neps, keep_of, err)) != 0)
        goto out;
    for (int e = 0; e < o->neps; e++)
        for (size_t q = 0; q < m; q++)
            cnt->sem_drop_by_eps[e] += keep_of[(size_t)e * m + q] >= 0;
    /* groups of eps[0]: each kept row with the rows that duplicate it */
    {
        uint32_t *root = malloc(m * sizeof *root);
        if (root == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t q = 0; q < m; q++)
            root[q] = keep_of[q] >= 0 ? (uint32_t)keep_of[q] : (uint32_t)q;
        rc =
            groups_from_components(L, sub, root, m, DD_SEMANTIC, G, NULL, 1, &cnt->semantic_groups);
        free(root);
        if (rc != 0) {
            wp_err_set(err, rc, "out of memory");
            goto out;
        }
    }
out:
    free(sub);
    free(X);
    free(C);
    free(assign);
    free(keep_of);
    return rc;
}

/* ---- hashing ----------------------------------------------------------- */

static int hash_images(struct cat *c, struct st_store *st, const dd_opts *o, const wp_reporter *rep,
                       dd_counts *cnt, wp_err *err)
{
    cat_dedup_todo *todo = malloc(HASH_BATCH * sizeof *todo);
    uint64_t *ph = malloc(HASH_BATCH * 2 * sizeof *ph);
    int *ok = malloc(HASH_BATCH * sizeof *ok);
    wp_progress pr = {0};
    int64_t after = 0, total = cat_dedup_count_phash_todo(c, DD_PHASH_VERSION);
    int nthr = o->threads > 0 ? o->threads : omp_get_max_threads();
    int batch = o->batch > 0 && o->batch < HASH_BATCH ? o->batch : HASH_BATCH;
    int rc = 0, n;

    if (!todo || !ph || !ok) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    pr.stage = "dedup";
    pr.total = total > 0 ? (uint64_t)total : 0;
    for (;;) {
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped while hashing; %lld images hashed",
                            (long long)cnt->hashed);
            goto out;
        }
        if ((rc = cat_dedup_phash_todo(c, after, batch, DD_PHASH_VERSION, todo, &n, err)) != 0)
            goto out;
        if (n == 0)
            break;
        after = todo[n - 1].image_id;
        if (!wp_part_all(&o->part)) { /* keep the part's images only */
            int m = 0;
            for (int i = 0; i < n; i++)
                if (wp_part_has(&o->part, wp_part_key_hex(todo[i].sha256)))
                    todo[m++] = todo[i];
            n = m;
            if (n == 0)
                continue;
        }
#pragma omp parallel num_threads(nthr)
        {
            wp_buf b = {0};
#pragma omp for schedule(dynamic, 8)
            for (int i = 0; i < n; i++) {
                wp_err e = {0};
                ok[i] = 0;
                if (todo[i].bytes <= 0 || todo[i].bytes > IMAGE_BYTES_MAX)
                    continue;
                wp_buf_reset(&b);
                if (wp_buf_reserve(&b, (size_t)todo[i].bytes) != 0)
                    continue;
                if (st_read_verified(st, todo[i].store_file, todo[i].store_offset, b.data,
                                     (size_t)todo[i].bytes,
                                     todo[i].sha256[0] ? todo[i].sha256 : NULL, &e) != 0)
                    continue;
                ok[i] = dd_phash_bytes(b.data, (size_t)todo[i].bytes, &ph[2 * i], &ph[2 * i + 1],
                                       &e) == 0;
            }
            wp_buf_free(&b);
        }
        if ((rc = cat_begin(c, err)) != 0)
            goto out;
        for (int i = 0; i < n; i++) {
            if ((rc = cat_dedup_phash_put(c, todo[i].image_id, ok[i], ph[2 * i], ph[2 * i + 1],
                                          todo[i].sha256, DD_PHASH_VERSION, err)) != 0) {
                cat_rollback(c);
                goto out;
            }
            if (!ok[i]) {
                cnt->unreadable++;
                wp_report_event(rep, WP_LOG_WARN, "dedup_unreadable",
                                "image %lld: stored bytes could not be read or decoded",
                                (long long)todo[i].image_id);
            }
        }
        if ((rc = cat_commit(c, err)) != 0)
            goto out;
        cnt->hashed += n;
        pr.done += (uint64_t)n;
        pr.errors = (uint64_t)cnt->unreadable;
        wp_report_progress(rep, &pr);
        if (o->batch_delay_ms > 0) {
            struct timespec ts = {o->batch_delay_ms / 1000,
                                  (long)(o->batch_delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
out:
    free(todo);
    free(ph);
    free(ok);
    return rc;
}

/* ---- the run ----------------------------------------------------------- */

static int cmp_group_size(const void *a, const void *b)
{
    const dd_group *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return (x->keeper > y->keeper) - (x->keeper < y->keeper);
}

static int counts_json(const dd_counts *k, const dd_opts *o, wp_buf *b)
{
    wp_json j;
    wp_json_init(&j, b);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "pairs", k->pairs);
    wp_json_int(&j, "hashed", k->hashed);
    wp_json_int(&j, "unreadable", k->unreadable);
    wp_json_int(&j, "exact", k->exact);
    wp_json_int(&j, "near", k->near);
    wp_json_int(&j, "semantic", k->semantic);
    wp_json_int(&j, "contaminated", k->contaminated);
    wp_json_int(&j, "exact_groups", k->exact_groups);
    wp_json_int(&j, "near_groups", k->near_groups);
    wp_json_int(&j, "semantic_groups", k->semantic_groups);
    wp_json_int(&j, "text_shared", k->text_shared);
    wp_json_int(&j, "text_many", k->text_many);
    wp_json_bool(&j, "dry_run", o->dry_run);
    if (o->semantic) {
        wp_json_obj_begin(&j, "semantic_by_eps");
        for (int e = 0; e < o->neps; e++) {
            char key[32];
            snprintf(key, sizeof key, "%g", o->eps[e]);
            wp_json_int(&j, key, k->sem_drop_by_eps[e]);
        }
        wp_json_obj_end(&j);
    }
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

int dd_run(struct cat *c, struct st_store *st, const dd_opts *o, const wp_reporter *rep,
           dd_drop_fn drop_fn, void *ud, dd_counts *cnt, wp_err *err)
{
    items L = {0};
    groups G = {0};
    wp_buf params = {0}, cj = {0};
    cat_run *run = NULL;
    int64_t run_id = 0;
    int rc = 0;

    memset(cnt, 0, sizeof *cnt);
    if (o->radius < 0 || o->radius > DD_RADIUS_MAX || o->neps < 1 || o->neps > DD_EPS_MAX ||
        o->nagainst > DD_AGAINST_MAX)
        return wp_err_set(err, WP_EINVAL, "dedup: bad options");
    wp_json pj;
    wp_json_init(&pj, &params);
    wp_json_obj_begin(&pj, NULL);
    wp_json_bool(&pj, "exact", o->exact);
    wp_json_bool(&pj, "near", o->near);
    wp_json_bool(&pj, "semantic", o->semantic);
    wp_json_int(&pj, "radius", o->radius);
    wp_json_int(&pj, "clusters", o->clusters);
    wp_json_int(&pj, "iters", o->iters);
    wp_json_real(&pj, "eps", o->eps[0]);
    wp_json_int(&pj, "against", o->nagainst);
    wp_json_bool(&pj, "dry_run", o->dry_run);
    if (!wp_part_all(&o->part)) {
        char part[32];
        snprintf(part, sizeof part, "%d/%d", o->part.i, o->part.n);
        wp_json_str(&pj, "part", part);
    }
    wp_json_obj_end(&pj);
    if (wp_json_finish(&pj) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = cat_run_begin(c, "dedup", params.data, &run, err)) != 0)
        goto out;
    run_id = cat_run_id(run);
    if (!wp_part_all(&o->part)) { /* a part hashes; the merged corpus decides */
        rc = hash_images(c, st, o, rep, cnt, err);
        goto out;
    }
    if ((o->near || (o->nagainst > 0 && o->against_radius >= 0)) &&
        (rc = hash_images(c, st, o, rep, cnt, err)) != 0)
        goto out;
    if ((rc = cat_dedup_items(c, add_item, &L, err)) != 0) {
        if (rc == WP_ENOMEM)
            wp_err_set(err, rc, "out of memory listing pairs");
        goto out;
    }
    cnt->pairs = (int64_t)L.n;
    if (o->nagainst > 0 && (rc = step_against(c, &L, o, rep, cnt, err)) != 0)
        goto out;
    if (o->exact && (rc = step_exact(&L, &G, cnt)) != 0) {
        wp_err_set(err, rc, "out of memory");
        goto out;
    }
    if (o->near) {
        char what[96];
        snprintf(what, sizeof what, "the pHash index of %zu pairs", L.n);
        if ((rc = mem_fits((int64_t)L.n * (int64_t)(sizeof *L.v + NEAR_ROW_BYTES), what, err)) != 0)
            goto out;
    }
    if (o->near && (rc = step_near(&L, o->radius, &G, cnt, err)) != 0)
        goto out;
    if (o->semantic && (rc = step_semantic(c, &L, o, &G, cnt, rep, err)) != 0)
        goto out;
    for (size_t i = 0; i < L.n; i++) {
        cnt->exact += L.v[i].kind == DD_EXACT;
        cnt->near += L.v[i].kind == DD_NEAR;
        cnt->semantic += L.v[i].kind == DD_SEMANTIC;
    }
    for (size_t g = 0; g < G.n; g++)
        G.g[g].members = G.mem + (size_t)(uintptr_t)G.g[g].members;

    /* record */
    if (!o->dry_run) {
        if ((rc = cat_begin(c, err)) != 0 || (rc = cat_dedup_clear(c, err)) != 0)
            goto out;
    }
    for (size_t i = 0; i < L.n; i++) {
        item *x = &L.v[i];
        char reason[WP_PATH_MAX + 32];
        if (x->kind == DD_KEEP)
            continue;
        if (x->kind == DD_CONTAM) {
            char name[WP_PATH_MAX];
            dd_eval_name(o->against[x->group], name, sizeof name);
            snprintf(reason, sizeof reason, "contaminated:%s", name);
        } else {
            snprintf(reason, sizeof reason, "%s:%lld",
                     x->kind == DD_EXACT  ? "exact"
                     : x->kind == DD_NEAR ? "near"
                                          : "semantic",
                     (long long)x->group);
            if (x->kind == DD_EXACT)
                reason[5] = '\0'; /* plain "exact" */
        }
        if (!o->dry_run && (rc = cat_dedup_drop(c, x->pair_id, reason, x->dscore, run_id, err)))
            goto out;
        if (drop_fn)
            drop_fn(ud, x->pair_id, reason);
    }
    if (!o->dry_run && o->text_dup > 0 &&
        (rc = cat_dedup_text_flags(c, o->text_dup, o->text_dup, run_id, &cnt->text_shared,
                                   &cnt->text_many, err)) != 0)
        goto out;
    if (!o->dry_run && (rc = cat_commit(c, err)) != 0)
        goto out;
    if (o->report != NULL && G.n > 0) {
        size_t show = (size_t)(o->report_groups > 0 ? o->report_groups : 20);
        qsort(G.g, G.n, sizeof *G.g, cmp_group_size);
        if ((rc = dd_report_html(c, st, G.g, G.n < show ? G.n : show, o->report, err)) != 0)
            goto out;
    }
out:
    if (run != NULL) {
        wp_buf_reset(&cj);
        if (counts_json(cnt, o, &cj) != 0)
            wp_buf_reset(&cj);
        rc = cat_run_end(run, rc, cj.len ? cj.data : NULL, err);
    }
    free(L.v);
    free(G.g);
    free(G.mem);
    wp_buf_free(&params);
    wp_buf_free(&cj);
    return rc;
}
