/*
 * audit/audit.c: the audit's one pass over the catalog and the report tree.
 *
 * Every pair gets a level: 0 if its image was not fetched (or not stored),
 * else 1 + the index of the first stage (in pipeline order) that dropped
 * it, or S + 1 (selected) when no stage did. The funnel's checkpoints are
 * "candidates" (level >= 0), "fetched" (>= 1), "after STAGE s" (>= s + 2)
 * so every figure kept per level gives every checkpoint by summing levels
 * from the top. Stages are read generically from the decisions table, so
 * any stage's drops appear, in the order dedup, encode, filter, balance,
 * then any other stage by name.
 *
 * The report is one JSON tree (report.json); report.html and datasheet.md
 * are rendered from that tree, so every number shown is in the JSON.
 */
#include "audit_int.h"
#include "catalog/catalog.h"
#include "emb/emb.h"
#include "image/image.h"
#include "probe_int.h"
#include "store/store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STAGES  32
#define MAX_LEVELS  (MAX_STAGES + 2)
#define NSUB        3 /* composition subsets: candidates, fetched, selected */
#define TOP_DOMAINS 20
#define TOP_ASSOC   5

static const char *const sub_names[NSUB] = {"candidates", "fetched", "selected"};

/* ---- a string -> index map ---------------------------------------------- */

typedef struct smap {
    char **keys;
    int64_t *idx;
    size_t cap, n;
} smap;

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys ? m->keys[i] : NULL);
    free(m->keys);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

/* The index of key, adding it as m->n if new; -1 when out of memory. */
static int64_t smap_get(smap *m, const char *key)
{
    size_t len = strlen(key), h;
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        char **nk = calloc(nc, sizeof *nk);
        int64_t *ni = calloc(nc, sizeof *ni);
        if (!nk || !ni) {
            free(nk);
            free(ni);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                h = (size_t)wp_fnv1a64(m->keys[i], strlen(m->keys[i])) & (nc - 1);
                while (nk[h])
                    h = (h + 1) & (nc - 1);
                nk[h] = m->keys[i];
                ni[h] = m->idx[i];
            }
        free(m->keys);
        free(m->idx);
        m->keys = nk;
        m->idx = ni;
        m->cap = nc;
    }
    h = (size_t)wp_fnv1a64(key, len) & (m->cap - 1);
    while (m->keys[h]) {
        if (strcmp(m->keys[h], key) == 0)
            return m->idx[h];
        h = (h + 1) & (m->cap - 1);
    }
    if ((m->keys[h] = strdup(key)) == NULL)
        return -1;
    m->idx[h] = (int64_t)m->n;
    return (int64_t)m->n++;
}

/* Growable array of int64 counters, NSUB per key. */
typedef struct counts3 {
    int64_t (*v)[NSUB];
    size_t cap;
} counts3;

static int counts3_at(counts3 *c, int64_t i, int64_t **out)
{
    if ((size_t)i >= c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        while (nc <= (size_t)i)
            nc *= 2;
        int64_t(*nv)[NSUB] = realloc(c->v, nc * sizeof *nv);
        if (nv == NULL)
            return WP_ENOMEM;
        memset(nv + c->cap, 0, (nc - c->cap) * sizeof *nv);
        c->v = nv;
        c->cap = nc;
    }
    *out = c->v[i];
    return 0;
}

/* ---- histograms ----------------------------------------------------------- */

static const double chars_edges[] = {0, 1, 10, 20, 40, 80, 160, 320};
static const char *const chars_labels[] = {"0",     "1-9",    "10-19",   "20-39",
                                           "40-79", "80-159", "160-319", "320+"};
static const double side_edges[] = {0, 64, 128, 256, 512, 1024, 2048};
static const char *const side_labels[] = {"<64",      "64-127",    "128-255", "256-511",
                                          "512-1023", "1024-2047", "2048+"};
static const double aspect_edges[] = {0, 0.5, 0.75, 0.95, 1.05, 1.34, 2.0};
static const char *const aspect_labels[] = {"<0.5",      "0.5-0.75", "0.75-0.95", "0.95-1.05",
                                            "1.05-1.33", "1.34-2",   "2+"};
#define NCHARS  8
#define NSIDE   7
#define NASPECT 7

static int bin_of(const double *edges, int n, double v)
{
    int b = 0;
    for (int i = 0; i < n; i++)
        if (v >= edges[i])
            b = i;
    return b;
}

/* ---- gallery -------------------------------------------------------------- */

typedef struct gitem {
    uint64_t key; /* seeded hash: the smallest k keys are the sample */
    int64_t pair_id, image_id;
    char uid[WP_UID_HEX + 1];
    char *caption;
    double score;
    int stored;
} gitem;

typedef struct gbucket {
    char *label;
    int level; /* for ordering: the level the pair stopped at */
    int64_t total;
    int n;
    gitem *items;
} gbucket;

/* ---- the audit state ------------------------------------------------------ */

typedef struct stage_info {
    char name[96];
    int rank;
    int64_t decided, dropped_total;
} stage_info;

typedef struct audit {
    const aud_opts *o;
    cat *c;
    st_store *st;
    wp_err *err;
    int nstages;
    stage_info stages[MAX_STAGES];
    int nlevels;
    int64_t at_level[MAX_LEVELS];
    smap reasons; /* "level\treason" -> index */
    counts3 reason_counts;
    int64_t hist_chars[MAX_LEVELS][NCHARS], hist_side[MAX_LEVELS][NSIDE],
        hist_aspect[MAX_LEVELS][NASPECT];
    int64_t have_dims[MAX_LEVELS];
    smap domains, langs;
    counts3 domain_counts, lang_counts;
    int64_t lang_known[NSUB];
    /* demographics */
    aud_matcher *mx;
    int ngl, nal;           /* group / attribute lexicons (in mx order: groups first) */
    int gbase[AUD_LEX_MAX]; /* first global group id of each group lexicon */
    int ngroups_total;
    int64_t *group_level; /* [level][global group] */
    int64_t captions_any[MAX_LEVELS];
    /* co-occurrences [candidates|selected]: x = every group of every group
     * lexicon (global id gbase[l] + g), y = every attribute of every
     * attribute lexicon (abase[t] + g): one table per subset, so the
     * bootstrap reads each caption once per replicate */
    aud_cooc *cooc[2];
    int abase[AUD_LEX_MAX], nattr_total;
    /* queries */
    int has_queries, has_lang;
    counts3 q_counts;  /* per entry: matches in candidates, fetched, selected */
    int64_t *q_gender; /* per entry x gender groups (selected) */
    size_t q_gender_cap;
    int64_t q_pairs[NSUB];
    /* sensitive queries / content tags */
    int has_tags;
    counts3 q_unsafe; /* per entry: fetched pairs with a content tag, of them unsafe */
    char **unsafe;
    int nunsafe;
    int gender_lex; /* index of the "gender" lexicon, -1 if none */
    /* gallery */
    smap gkeys;
    gbucket *gb;
    size_t ngb, cgb;
    /* probes */
    aud_probe_ctx *probe;
    json_t *runs;
} audit;

static int stage_rank(const char *s)
{
    if (strcmp(s, "dedup") == 0)
        return 10;
    if (strncmp(s, "encode", 6) == 0)
        return 20;
    if (strcmp(s, "filter") == 0)
        return 30;
    if (strcmp(s, "balance") == 0)
        return 40;
    return 50;
}

static int cmp_stage(const void *a, const void *b)
{
    const stage_info *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return strcmp(x->name, y->name);
}

static void on_dec(void *ud, const char *stage, const char *decision, const char *reason,
                   int64_t count)
{
    audit *a = ud;
    int i;
    (void)reason;
    for (i = 0; i < a->nstages; i++)
        if (strcmp(a->stages[i].name, stage) == 0)
            break;
    if (i == a->nstages) {
        if (a->nstages >= MAX_STAGES)
            return;
        snprintf(a->stages[i].name, sizeof a->stages[i].name, "%s", stage);
        a->stages[i].rank = stage_rank(stage);
        a->nstages++;
    }
    a->stages[i].decided += count;
    if (strcmp(decision, "drop") == 0)
        a->stages[i].dropped_total += count;
}

static int stage_index(const audit *a, const char *stage)
{
    for (int i = 0; i < a->nstages; i++)
        if (strcmp(a->stages[i].name, stage) == 0)
            return i;
    return -1;
}

/* The checkpoint label of level k (the pairs with level >= k). */
static void level_name(const audit *a, int k, char *out, size_t cap)
{
    if (k == 0)
        snprintf(out, cap, "candidates");
    else if (k == 1)
        snprintf(out, cap, "fetched");
    else
        snprintf(out, cap, "after %s", a->stages[k - 2].name);
}

static int gallery_add(audit *a, const char *label, int level, const cat_audit_pair *p,
                       double score)
{
    int64_t gi = smap_get(&a->gkeys, label);
    gbucket *b;
    int k = a->o->gallery;
    if (gi < 0)
        return WP_ENOMEM;
    if ((size_t)gi >= a->ngb) {
        if (a->ngb == a->cgb) {
            size_t nc = a->cgb ? 2 * a->cgb : 16;
            gbucket *nb = realloc(a->gb, nc * sizeof *nb);
            if (nb == NULL)
                return WP_ENOMEM;
            a->gb = nb;
            a->cgb = nc;
        }
        b = &a->gb[a->ngb++];
        memset(b, 0, sizeof *b);
        b->label = strdup(label);
        b->level = level;
        b->items = calloc((size_t)(k > 0 ? k : 1), sizeof *b->items);
        if (!b->label || !b->items)
            return WP_ENOMEM;
    }
    b = &a->gb[gi];
    b->total++;
    if (k <= 0)
        return 0;
    uint64_t key = wp_mix64(wp_fnv1a64(p->uid ? p->uid : "", p->uid ? strlen(p->uid) : 0) ^
                            wp_mix64(a->o->seed + 0x9e3779b97f4a7c15ULL));
    int slot = -1;
    if (b->n < k)
        slot = b->n++;
    else {
        int worst = 0;
        for (int i = 1; i < b->n; i++)
            if (b->items[i].key > b->items[worst].key)
                worst = i;
        if (key < b->items[worst].key)
            slot = worst;
    }
    if (slot < 0)
        return 0;
    gitem *it = &b->items[slot];
    free(it->caption);
    memset(it, 0, sizeof *it);
    it->key = key;
    it->pair_id = p->pair_id;
    it->image_id = p->image_id;
    it->stored = p->stored && p->state && strcmp(p->state, "ok") == 0;
    it->score = score;
    snprintf(it->uid, sizeof it->uid, "%s", p->uid ? p->uid : "");
    {
        size_t n = wp_utf8_floor(p->text ? p->text : "", p->text_len, 240);
        it->caption = malloc(n + 4);
        if (it->caption == NULL)
            return WP_ENOMEM;
        memcpy(it->caption, p->text ? p->text : "", n);
        strcpy(it->caption + n, n < p->text_len ? "..." : "");
    }
    return 0;
}

static int reason_add(audit *a, int level, const char *reason)
{
    char key[256];
    int64_t *v;
    /* by kind: dedup's near:ID / semantic:ID name one group each */
    if (reason && reason[0])
        snprintf(key, sizeof key, "%d\t%.*s", level, (int)wp_reason_kind_len(reason), reason);
    else
        snprintf(key, sizeof key, "%d\t(no reason)", level);
    int64_t i = smap_get(&a->reasons, key);
    if (i < 0 || counts3_at(&a->reason_counts, i, &v) != 0)
        return WP_ENOMEM;
    v[0]++;
    return 0;
}

/* Adds 1 to the subsets (candidates, fetched, selected) the level is in. */
static void add_sub(int64_t *v, int level, int sel_level)
{
    v[0]++;
    if (level >= 1)
        v[1]++;
    if (level >= sel_level)
        v[2]++;
}

static int is_unsafe(const audit *a, const char *label)
{
    for (int i = 0; i < a->nunsafe; i++)
        if (strcasecmp(a->unsafe[i], label) == 0)
            return 1;
    return 0;
}

static int process_pair(audit *a, const cat_audit_pair *p, aud_hits *h)
{
    int level, first = -1, rc;
    const char *reason = NULL;
    int sel = a->nstages + 1;
    int fetched = p->state && strcmp(p->state, "ok") == 0 && p->stored;
    int64_t *v;
    double score = p->clip_score;
    char lbl[256];

    for (int d = 0; d < p->ndec; d++)
        if (strcmp(p->dec[d].decision, "drop") == 0) {
            int si = stage_index(a, p->dec[d].stage);
            if (si >= 0 && (first < 0 || si < first)) {
                first = si;
                reason = p->dec[d].reason;
            }
        }
    if (!fetched)
        level = 0;
    else
        level = first < 0 ? sel : first + 1;
    a->at_level[level]++;
    /* drop reasons and gallery rows */
    if (level == 0) {
        const char *r = p->state && strcmp(p->state, "pending") == 0 ? "not fetched yet"
                        : p->error_class                             ? p->error_class
                                                                     : p->state;
        if ((rc = reason_add(a, 0, r)) != 0)
            return rc;
        snprintf(lbl, sizeof lbl, "dropped at fetch: %s", r ? r : "unknown");
    } else if (level < sel) {
        if ((rc = reason_add(a, level, reason)) != 0)
            return rc;
        snprintf(lbl, sizeof lbl, "dropped by %s: %s", a->stages[level - 1].name,
                 reason && reason[0] ? reason : "(no reason)");
        for (int d = 0; d < p->ndec; d++)
            if (strcmp(p->dec[d].stage, a->stages[level - 1].name) == 0 && !isnan(p->dec[d].score))
                score = isnan(score) ? p->dec[d].score : score;
    } else
        snprintf(lbl, sizeof lbl, "kept (selected)");
    if ((rc = gallery_add(a, lbl, level, p, score)) != 0)
        return rc;
    /* histograms */
    a->hist_chars[level][bin_of(chars_edges, NCHARS,
                                (double)aud_utf8_chars(p->text ? p->text : "", p->text_len))]++;
    {
        int w = p->orig_width > 0 ? p->orig_width : p->width;
        int hgt = p->orig_height > 0 ? p->orig_height : p->height;
        if (w > 0 && hgt > 0) {
            a->have_dims[level]++;
            a->hist_side[level][bin_of(side_edges, NSIDE, w < hgt ? w : hgt)]++;
            a->hist_aspect[level][bin_of(aspect_edges, NASPECT, (double)w / hgt)]++;
        }
    }
    /* domains and languages */
    {
        char dom[256];
        aud_url_domain(p->url, dom, sizeof dom);
        int64_t di = smap_get(&a->domains, dom);
        if (di < 0 || counts3_at(&a->domain_counts, di, &v) != 0)
            return WP_ENOMEM;
        add_sub(v, level, sel);
        if (p->lang != NULL) {
            int64_t li = smap_get(&a->langs, p->lang);
            if (li < 0 || counts3_at(&a->lang_counts, li, &v) != 0)
                return WP_ENOMEM;
            add_sub(v, level, sel);
            add_sub(a->lang_known, level, sel);
        }
    }
    /* caption terms */
    aud_match(a->mx, p->text ? p->text : "", p->text_len, h);
    {
        int any = 0;
        for (int l = 0; l < a->ngl; l++)
            for (int i = 0; i < h->n[l]; i++) {
                a->group_level[(size_t)level * a->ngroups_total + a->gbase[l] + h->g[l][i]]++;
                any = 1;
            }
        a->captions_any[level] += any;
        uint16_t xs[AUD_LEX_MAX * AUD_HITS_MAX], ys[AUD_LEX_MAX * AUD_HITS_MAX];
        int nx = 0, ny = 0;
        for (int l = 0; l < a->ngl; l++)
            for (int i = 0; i < h->n[l]; i++)
                xs[nx++] = (uint16_t)(a->gbase[l] + h->g[l][i]);
        for (int t = 0; t < a->nal; t++)
            for (int i = 0; i < h->n[a->ngl + t]; i++)
                ys[ny++] = (uint16_t)(a->abase[t] + h->g[a->ngl + t][i]);
        if ((rc = aud_cooc_add(a->cooc[0], xs, nx, ys, ny)) != 0)
            return rc;
        if (level >= sel && (rc = aud_cooc_add(a->cooc[1], xs, nx, ys, ny)) != 0)
            return rc;
    }
    /* query matches: per entry, its pairs per subset, their content tags
     * and (selected pairs) the gender groups their captions mention */
    if (a->has_queries) {
        int unsafe = a->has_tags && p->content_label != NULL && is_unsafe(a, p->content_label);
        if (p->nentries > 0)
            add_sub(a->q_pairs, level, sel);
        for (int i = 0; i < p->nentries; i++) {
            int64_t e = p->entries[i], *u;
            if (e < 0 || e > 100000000)
                continue;
            if (counts3_at(&a->q_counts, e, &v) != 0 || counts3_at(&a->q_unsafe, e, &u) != 0)
                return WP_ENOMEM;
            add_sub(v, level, sel);
            if (level >= 1 && p->content_label != NULL) {
                u[0]++; /* fetched pairs with a content tag */
                u[1] += unsafe;
            }
            if (level >= sel && a->gender_lex >= 0) {
                int ng = aud_matcher_lex(a->mx, a->gender_lex)->ngroups;
                if ((size_t)(e + 1) * (size_t)ng > a->q_gender_cap) {
                    size_t nc = a->q_gender_cap ? a->q_gender_cap : 1024;
                    while (nc < (size_t)(e + 1) * (size_t)ng)
                        nc *= 2;
                    int64_t *ng2 = realloc(a->q_gender, nc * sizeof *ng2);
                    if (ng2 == NULL)
                        return WP_ENOMEM;
                    memset(ng2 + a->q_gender_cap, 0, (nc - a->q_gender_cap) * sizeof *ng2);
                    a->q_gender = ng2;
                    a->q_gender_cap = nc;
                }
                for (int k = 0; k < h->n[a->gender_lex]; k++)
                    a->q_gender[(size_t)e * ng + h->g[a->gender_lex][k]]++;
            }
        }
    }
    /* probes */
    if (a->probe != NULL && level >= 1) {
        const aud_lex *gx = a->gender_lex >= 0 ? aud_matcher_lex(a->mx, a->gender_lex) : NULL;
        if ((rc = aud_probe_pair(a->probe, p->pair_id, p->uid, level, sel, lbl, p->clip_score, h,
                                 a->gender_lex, gx ? (const char *const *)gx->groups : NULL,
                                 gx ? gx->ngroups : 0, a->err)) != 0)
            return rc;
    }
    return 0;
}

/* ---- building the report tree ------------------------------------------- */

/* json_object_set_new that remembers an allocation failure. */
static int oom;
static void jset(json_t *o, const char *k, json_t *v)
{
    if (o == NULL || v == NULL || json_object_set_new(o, k, v) != 0)
        oom = 1;
}
static void jpush(json_t *a, json_t *v)
{
    if (a == NULL || v == NULL || json_array_append_new(a, v) != 0)
        oom = 1;
}
static json_t *jnum(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}
static json_t *jround(double v)
{
    /* 6 significant digits are plenty for a report; keeps the JSON small */
    if (isnan(v) || isinf(v))
        return json_null();
    char b[32];
    snprintf(b, sizeof b, "%.6g", v);
    return json_real(strtod(b, NULL));
}

/* Count of pairs with level >= k. */
static int64_t reach(const audit *a, int k)
{
    int64_t n = 0;
    for (int l = k; l < a->nlevels; l++)
        n += a->at_level[l];
    return n;
}

static int sub_level(const audit *a, int s)
{
    return s == 0 ? 0 : s == 1 ? 1 : a->nlevels - 1;
}

static json_t *histogram(const audit *a, const char *title, const char *unit,
                         const char *const *labels, int nb, const int64_t *cells, int row_stride)
{
    json_t *o = json_object(), *bins = json_array(), *counts = json_object();
    for (int b = 0; b < nb; b++)
        jpush(bins, json_string(labels[b]));
    for (int s = 0; s < NSUB; s++) {
        json_t *arr = json_array();
        for (int b = 0; b < nb; b++) {
            int64_t n = 0;
            for (int l = sub_level(a, s); l < a->nlevels; l++)
                n += cells[(size_t)l * row_stride + b];
            jpush(arr, json_integer(n));
        }
        jset(counts, sub_names[s], arr);
    }
    jset(o, "title", json_string(title));
    jset(o, "unit", json_string(unit));
    jset(o, "bins", bins);
    jset(o, "counts", counts);
    return o;
}

typedef struct ranked {
    const char *key;
    int64_t v, w; /* sort by v descending, then key */
    int64_t idx;
} ranked;

static int cmp_ranked(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* The map's keys ranked by counts subset s (descending, then by key). */
static ranked *rank_map(const smap *m, const counts3 *c, int s)
{
    ranked *r = calloc(m->n + 1, sizeof *r);
    size_t k = 0;
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            r[k].key = m->keys[i];
            r[k].idx = m->idx[i];
            r[k].v = c->v[m->idx[i]][s];
            k++;
        }
    qsort(r, k, sizeof *r, cmp_ranked);
    return r;
}

static json_t *funnel_json(const audit *a, const cat_audit_coll *coll)
{
    json_t *o = json_object(), *steps = json_array();
    for (int k = 0; k < a->nlevels; k++) {
        json_t *st = json_object(), *reasons = json_array();
        char name[160];
        level_name(a, k, name, sizeof name);
        jset(st, "name", json_string(name));
        jset(st, "stage",
             k == 0 ? json_null() : json_string(k == 1 ? "fetch" : a->stages[k - 2].name));
        jset(st, "count", json_integer(reach(a, k)));
        /* the pairs this step removed: those at level k - 1 */
        int64_t dropped = k == 0 ? 0 : a->at_level[k - 1];
        jset(st, "dropped", json_integer(dropped));
        if (k > 0) {
            ranked *r = rank_map(&a->reasons, &a->reason_counts, 0);
            if (r == NULL)
                oom = 1;
            for (size_t i = 0; r && i < a->reasons.n; i++) {
                int lv = atoi(r[i].key);
                if (lv != k - 1)
                    continue;
                json_t *e = json_object();
                jset(e, "reason", json_string(strchr(r[i].key, '\t') + 1));
                jset(e, "count", json_integer(r[i].v));
                jpush(reasons, e);
            }
            free(r);
        }
        jset(st, "reasons", reasons);
        jpush(steps, st);
    }
    jset(o, "steps", steps);
    jset(o, "selected", json_integer(a->at_level[a->nlevels - 1]));
    {
        json_t *sh = json_object();
        jset(sh, "available", json_boolean(coll->has_shards));
        jset(sh, "count", coll->has_shards ? json_integer(coll->shard_samples) : json_null());
        jset(sh, "shards", json_integer(coll->shards));
        jset(sh, "output", coll->has_shards ? json_string(coll->shard_output) : json_null());
        jset(sh, "needs", coll->has_shards ? json_null() : json_string("witpipe shard"));
        jset(o, "in_shards", sh);
    }
    return o;
}

static double entropy_bits(const int64_t *v, size_t n, int64_t total)
{
    double h = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0) {
            double p = (double)v[i] / (double)total;
            h -= p * log2(p);
        }
    return h;
}

static int cmp_i64_desc(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

typedef struct qentry {
    int64_t entry;
    char *text;
} qentry;
typedef struct qlist {
    qentry *e;
    size_t n, cap;
    int fail;
} qlist;

static void on_query(void *ud, int64_t entry, const char *text)
{
    qlist *q = ud;
    if (q->n == q->cap) {
        size_t nc = q->cap ? 2 * q->cap : 1024;
        qentry *ne = realloc(q->e, nc * sizeof *ne);
        if (ne == NULL) {
            q->fail = 1;
            return;
        }
        q->e = ne;
        q->cap = nc;
    }
    q->e[q->n].entry = entry;
    q->e[q->n].text = strdup(text ? text : "");
    if (q->e[q->n].text == NULL)
        q->fail = 1;
    q->n++;
}

static const char *qtext(const qlist *q, int64_t entry)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (q->e[mid].entry < entry)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < q->n && q->e[lo].entry == entry ? q->e[lo].text : NULL;
}

static json_t *queries_json(audit *a, const qlist *q, json_t **sensitive, char **sens, int nsens)
{
    json_t *o = json_object();
    *sensitive = json_object();
    if (!a->has_queries) {
        jset(o, "available", json_false());
        jset(o, "needs", json_string("witpipe balance"));
        jset(*sensitive, "available", json_false());
        jset(*sensitive, "needs", json_string("witpipe balance and witpipe filter"));
        return o;
    }
    jset(o, "available", json_true());
    jset(o, "needs", json_null());
    jset(o, "entries", json_integer((json_int_t)q->n));
    size_t ne = a->q_counts.cap;
    int64_t *tmp = malloc((ne + 1) * sizeof *tmp);
    json_t *matched = json_object(), *top10 = json_object(), *ent = json_object(),
           *pairs = json_object(), *top1 = json_object();
    if (tmp == NULL) {
        oom = 1;
        return o;
    }
    for (int s = 0; s < NSUB; s++) {
        int64_t tot = 0, m = 0, t10 = 0, t1 = 0;
        for (size_t i = 0; i < ne; i++) {
            tmp[i] = a->q_counts.v[i][s];
            tot += tmp[i];
            m += tmp[i] > 0;
        }
        qsort(tmp, ne, sizeof *tmp, cmp_i64_desc);
        for (size_t i = 0; i < ne && i < 10; i++)
            t10 += tmp[i];
        size_t one = q->n / 100 > 0 ? q->n / 100 : 1;
        for (size_t i = 0; i < ne && i < one; i++)
            t1 += tmp[i];
        jset(matched, sub_names[s], json_integer(m));
        jset(pairs, sub_names[s], json_integer(a->q_pairs[s]));
        jset(top10, sub_names[s], tot ? jround((double)t10 / tot) : json_null());
        jset(top1, sub_names[s], tot ? jround((double)t1 / tot) : json_null());
        for (size_t i = 0; i < ne; i++)
            tmp[i] = a->q_counts.v[i][s];
        jset(ent, sub_names[s], tot ? jround(entropy_bits(tmp, ne, tot)) : json_null());
    }
    free(tmp);
    jset(o, "matched_entries", matched);
    jset(o, "pairs_matched", pairs);
    jset(o, "top10_share", top10);
    jset(o, "top1pct_share", top1);
    jset(o, "entropy_bits", ent);
    /* per-query skew: entries whose selected pairs lean most to one gender
     * group, against that group's share over all selected pairs */
    json_t *skew = json_array();
    if (a->gender_lex >= 0 && a->q_gender != NULL) {
        const aud_lex *lx = aud_matcher_lex(a->mx, a->gender_lex);
        int ng = lx->ngroups;
        int64_t all[AUD_GROUPS_MAX] = {0}, alltot = 0;
        size_t rows = a->q_gender_cap / (size_t)ng;
        for (size_t e = 0; e < rows; e++)
            for (int g = 0; g < ng; g++) {
                all[g] += a->q_gender[e * ng + g];
                alltot += a->q_gender[e * ng + g];
            }
        typedef struct {
            double d;
            size_t e;
            int g;
            int64_t n, k;
        } sk;
        sk *list = calloc(rows + 1, sizeof *list);
        size_t nl = 0;
        for (size_t e = 0; list && e < rows; e++) {
            int64_t tot = 0;
            for (int g = 0; g < ng; g++)
                tot += a->q_gender[e * ng + g];
            if (tot < a->o->min_cooc || alltot == 0)
                continue;
            int best = 0;
            double bd = -2;
            for (int g = 0; g < ng; g++) {
                double d = (double)a->q_gender[e * ng + g] / tot - (double)all[g] / alltot;
                if (d > bd) {
                    bd = d;
                    best = g;
                }
            }
            list[nl++] = (sk){bd, e, best, tot, a->q_gender[e * ng + best]};
        }
        for (size_t i = 0; i < nl && i < 10; i++) { /* partial selection sort: top 10 */
            size_t b = i;
            for (size_t j = i + 1; j < nl; j++)
                if (list[j].d > list[b].d || (list[j].d == list[b].d && list[j].e < list[b].e))
                    b = j;
            sk t = list[i];
            list[i] = list[b];
            list[b] = t;
            json_t *e = json_object();
            const char *txt = qtext(q, (int64_t)list[i].e);
            double lo, hi;
            aud_wilson((double)list[i].k, (double)list[i].n, &lo, &hi);
            jset(e, "entry", json_integer((json_int_t)list[i].e));
            jset(e, "query", json_string(txt ? txt : ""));
            jset(e, "group", json_string(lx->groups[list[i].g]));
            jset(e, "mentions", json_integer(list[i].n));
            jset(e, "group_mentions", json_integer(list[i].k));
            jset(e, "share", jround((double)list[i].k / list[i].n));
            jset(e, "share_lo", jround(lo));
            jset(e, "share_hi", jround(hi));
            jset(e, "overall_share", jround((double)all[list[i].g] / alltot));
            jpush(skew, e);
        }
        free(list);
    }
    jset(o, "skew", skew);
    /* sensitive queries */
    if (!a->has_tags) {
        jset(*sensitive, "available", json_false());
        jset(*sensitive, "needs", json_string("witpipe filter (content tags)"));
    } else {
        json_t *rows = json_array();
        jset(*sensitive, "available", json_true());
        jset(*sensitive, "needs", json_null());
        for (int i = 0; i < nsens; i++)
            for (size_t k = 0; k < q->n; k++)
                if (strcasecmp(q->e[k].text, sens[i]) == 0) {
                    int64_t e = q->e[k].entry, tagged = 0, unsafe = 0, pairsf = 0;
                    if ((size_t)e < a->q_unsafe.cap) {
                        tagged = a->q_unsafe.v[e][0];
                        unsafe = a->q_unsafe.v[e][1];
                    }
                    if ((size_t)e < a->q_counts.cap)
                        pairsf = a->q_counts.v[e][1];
                    double lo, hi;
                    aud_wilson((double)unsafe, (double)tagged, &lo, &hi);
                    json_t *r = json_object();
                    jset(r, "query", json_string(q->e[k].text));
                    jset(r, "pairs_fetched", json_integer(pairsf));
                    jset(r, "tagged", json_integer(tagged));
                    jset(r, "unsafe", json_integer(unsafe));
                    jset(r, "share", tagged ? jround((double)unsafe / tagged) : json_null());
                    jset(r, "share_lo", jnum(lo));
                    jset(r, "share_hi", jnum(hi));
                    jpush(rows, r);
                    break;
                }
        jset(*sensitive, "rows", rows);
    }
    return o;
}

static json_t *composition_json(audit *a, const qlist *q, json_t **sensitive, char **sens,
                                int nsens)
{
    json_t *o = json_object(), *subs = json_array();
    for (int s = 0; s < NSUB; s++)
        jpush(subs, json_string(sub_names[s]));
    jset(o, "subsets", subs);
    {
        json_t *n = json_object();
        for (int s = 0; s < NSUB; s++)
            jset(n, sub_names[s], json_integer(reach(a, sub_level(a, s))));
        jset(o, "pairs", n);
    }
    jset(o, "caption_chars",
         histogram(a, "Caption length", "characters", chars_labels, NCHARS, &a->hist_chars[0][0],
                   NCHARS));
    jset(o, "image_short_side",
         histogram(a, "Image size (shorter side, original)", "pixels", side_labels, NSIDE,
                   &a->hist_side[0][0], NSIDE));
    jset(o, "aspect",
         histogram(a, "Aspect ratio", "width / height", aspect_labels, NASPECT,
                   &a->hist_aspect[0][0], NASPECT));
    /* domains */
    {
        json_t *d = json_object(), *top = json_array(), *distinct = json_object(),
               *share = json_object();
        ranked *r = rank_map(&a->domains, &a->domain_counts, 0);
        if (r == NULL)
            oom = 1;
        for (int s = 0; s < NSUB; s++) {
            int64_t nd = 0, tot = 0, t10 = 0;
            int64_t *tmp = malloc((a->domains.n + 1) * sizeof *tmp);
            if (tmp == NULL) {
                oom = 1;
                break;
            }
            for (size_t i = 0; i < a->domains.n; i++) {
                tmp[i] = a->domain_counts.v[i][s];
                nd += tmp[i] > 0;
                tot += tmp[i];
            }
            qsort(tmp, a->domains.n, sizeof *tmp, cmp_i64_desc);
            for (size_t i = 0; i < a->domains.n && i < 10; i++)
                t10 += tmp[i];
            free(tmp);
            jset(distinct, sub_names[s], json_integer(nd));
            jset(share, sub_names[s], tot ? jround((double)t10 / tot) : json_null());
        }
        for (size_t i = 0; r && i < a->domains.n && i < TOP_DOMAINS; i++) {
            json_t *e = json_object();
            jset(e, "domain", json_string(r[i].key));
            for (int s = 0; s < NSUB; s++)
                jset(e, sub_names[s], json_integer(a->domain_counts.v[r[i].idx][s]));
            jpush(top, e);
        }
        free(r);
        jset(d, "distinct", distinct);
        jset(d, "top10_share", share);
        jset(d, "top", top);
        jset(o, "domains", d);
    }
    /* languages */
    {
        json_t *l = json_object(), *top = json_array(), *known = json_object();
        jset(l, "available", json_boolean(a->has_lang));
        jset(l, "needs", a->has_lang ? json_null() : json_string("witpipe filter"));
        ranked *r = a->has_lang ? rank_map(&a->langs, &a->lang_counts, 0) : NULL;
        for (size_t i = 0; r && i < a->langs.n && i < 30; i++) {
            json_t *e = json_object();
            jset(e, "lang", json_string(r[i].key));
            for (int s = 0; s < NSUB; s++)
                jset(e, sub_names[s], json_integer(a->lang_counts.v[r[i].idx][s]));
            jpush(top, e);
        }
        free(r);
        for (int s = 0; s < NSUB; s++)
            jset(known, sub_names[s], json_integer(a->lang_known[s]));
        jset(l, "distinct", json_integer(a->has_lang ? (json_int_t)a->langs.n : 0));
        jset(l, "with_language", known);
        jset(l, "top", top);
        jset(o, "languages", l);
    }
    jset(o, "queries", queries_json(a, q, sensitive, sens, nsens));
    return o;
}

typedef struct cell {
    int y;
    double npmi, lo, hi, expct;
    int64_t nxy;
} cell;

static int cmp_cell_desc(const void *x, const void *y)
{
    const cell *a = x, *b = y;
    if (a->npmi != b->npmi)
        return a->npmi > b->npmi ? -1 : 1;
    return a->y - b->y;
}

static int cmp_cell_asc(const void *x, const void *y)
{
    const cell *a = x, *b = y;
    if (a->npmi != b->npmi)
        return a->npmi < b->npmi ? -1 : 1;
    return a->y - b->y;
}

/* The strongest associations each way of every group of lexicon gl with
 * the attributes of lexicon al, in subset si (0 candidates, 1 selected). */
static int assoc_json(audit *a, int si, int gl, int t, const aud_npmi_out *res, json_t *out)
{
    const aud_cooc *co = a->cooc[si];
    int X0 = a->gbase[gl], Y0 = a->abase[t], NY = a->nattr_total;
    const aud_lex *gx = aud_matcher_lex(a->mx, gl), *ax = aud_matcher_lex(a->mx, a->ngl + t);
    const double *np = res->npmi, *lo = res->lo, *hi = res->hi;
    const int64_t *cnt = res->count;
    cell *cells = NULL;
    int rc = 0;
    cells = calloc((size_t)ax->ngroups + 1, sizeof *cells);
    if (cells == NULL) {
        rc = wp_err_set(a->err, WP_ENOMEM, "out of memory");
        goto out;
    }
    json_t *o = json_object(), *items = json_array();
    jset(o, "subset", json_string(si == 0 ? "candidates" : "selected"));
    jset(o, "group_lexicon", json_string(gx->name));
    jset(o, "attribute_lexicon", json_string(ax->name));
    jset(o, "documents", json_integer(aud_cooc_docs(co)));
    double n = (double)aud_cooc_docs(co);
    for (int x = 0; x < gx->ngroups; x++) {
        int nc = 0;
        double nx = (double)aud_cooc_nx(co, X0 + x);
        for (int dir = 0; dir < 2; dir++) {
            nc = 0;
            for (int y = 0; y < ax->ngroups; y++) {
                size_t k = (size_t)(X0 + x) * NY + (Y0 + y);
                double ny = (double)aud_cooc_ny(co, Y0 + y), ex = n > 0 ? nx * ny / n : 0;
                /* positive: seen together at least min_cooc times; negative:
                 * expected at least min_cooc times under independence */
                if (isnan(np[k]) || (dir == 0 && (cnt[k] < a->o->min_cooc || np[k] <= 0)) ||
                    (dir == 1 && (ex < a->o->min_cooc || np[k] >= 0)))
                    continue;
                cells[nc++] = (cell){y, np[k], lo[k], hi[k], ex, cnt[k]};
            }
            qsort(cells, (size_t)nc, sizeof *cells, dir == 0 ? cmp_cell_desc : cmp_cell_asc);
            for (int i = 0; i < nc && i < TOP_ASSOC; i++) {
                json_t *e = json_object();
                int y = cells[i].y;
                jset(e, "group", json_string(gx->groups[x]));
                jset(e, "attribute", json_string(ax->groups[y]));
                jset(e, "direction", json_string(dir == 0 ? "positive" : "negative"));
                jset(e, "npmi", jround(cells[i].npmi));
                jset(e, "ci_lo", jround(cells[i].lo));
                jset(e, "ci_hi", jround(cells[i].hi));
                jset(e, "n_xy", json_integer(cells[i].nxy));
                jset(e, "n_x", json_integer(aud_cooc_nx(co, X0 + x)));
                jset(e, "n_y", json_integer(aud_cooc_ny(co, Y0 + y)));
                jset(e, "expected", jround(cells[i].expct));
                jpush(items, e);
            }
        }
    }
    jset(o, "items", items);
    jpush(out, o);
out:
    free(cells);
    return rc;
}

static int demographics_json(audit *a, json_t **out)
{
    json_t *o = json_object(), *lex = json_array(), *cps = json_array(), *groups = json_array(),
           *caps = json_array(), *any = json_array(), *assoc = json_array();
    int rc = 0;
    for (int i = 0; i < aud_matcher_nlex(a->mx); i++) {
        const aud_lex *lx = aud_matcher_lex(a->mx, i);
        json_t *e = json_object(), *g = json_array();
        jset(e, "name", json_string(lx->name));
        jset(e, "kind", json_string(lx->is_attr ? "attribute" : "group"));
        jset(e, "file", json_string(lx->path));
        jset(e, "sha256", json_string(lx->sha256));
        jset(e, "terms", json_integer(lx->nterms));
        for (int k = 0; k < lx->ngroups; k++)
            jpush(g, json_string(lx->groups[k]));
        jset(e, "groups", g);
        jpush(lex, e);
    }
    for (int k = 0; k < a->nlevels; k++) {
        char name[160];
        int64_t n = 0;
        level_name(a, k, name, sizeof name);
        if (k == a->nlevels - 1 && k > 1)
            snprintf(name, sizeof name, "selected (after %s)", a->stages[k - 2].name);
        jpush(cps, json_string(name));
        jpush(caps, json_integer(reach(a, k)));
        for (int l = k; l < a->nlevels; l++)
            n += a->captions_any[l];
        jpush(any, json_integer(n));
    }
    for (int l = 0; l < a->ngl; l++) {
        const aud_lex *lx = aud_matcher_lex(a->mx, l);
        for (int g = 0; g < lx->ngroups; g++) {
            json_t *e = json_object(), *cnt = json_array(), *sh = json_array();
            jset(e, "lexicon", json_string(lx->name));
            jset(e, "group", json_string(lx->groups[g]));
            for (int k = 0; k < a->nlevels; k++) {
                int64_t n = 0, tot = reach(a, k);
                for (int lv = k; lv < a->nlevels; lv++)
                    n += a->group_level[(size_t)lv * a->ngroups_total + a->gbase[l] + g];
                jpush(cnt, json_integer(n));
                jpush(sh, tot ? jround((double)n / tot) : json_null());
            }
            jset(e, "captions", cnt);
            jset(e, "share", sh);
            jpush(groups, e);
        }
    }
    {
        /* every table's bootstrap in one pass (shared document weights) */
        const aud_cooc *tabs[2] = {a->cooc[0], a->cooc[1]};
        aud_npmi_out res[2];
        rc = aud_cooc_npmi_many(tabs, 2, a->o->bootstrap, a->o->seed, res, a->err);
        if (rc == 0) {
            for (int si = 0; si < 2 && rc == 0; si++)
                for (int l = 0; l < a->ngl && rc == 0; l++)
                    for (int t = 0; t < a->nal && rc == 0; t++)
                        rc = assoc_json(a, si, l, t, &res[si], assoc);
            aud_npmi_out_free(res, 2);
        }
    }
    jset(o, "lexicons", lex);
    jset(o, "checkpoints", cps);
    jset(o, "captions", caps);
    jset(o, "captions_with_group_term", any);
    jset(o, "groups", groups);
    jset(o, "min_cooccurrence", json_integer(a->o->min_cooc));
    jset(o, "bootstrap_replicates", json_integer(a->o->bootstrap));
    jset(o, "associations", assoc);
    *out = o;
    return rc;
}

/* A small JPEG of a stored image as a data: URI, or NULL on any failure
 * (a gallery cell then shows the caption alone). */
static char *thumbnail(audit *a, int64_t image_id)
{
    cat_image_loc loc;
    wp_err e = {0};
    void *bytes = NULL;
    img_image im = {0}, sm = {0};
    wp_buf jpg = {0}, uri = {0};
    char *res = NULL;
    if (a->st == NULL || cat_image_location(a->c, image_id, &loc, &e) != 0 || loc.bytes <= 0 ||
        loc.bytes > (64 << 20))
        return NULL;
    bytes = malloc((size_t)loc.bytes);
    if (bytes == NULL ||
        st_read(a->st, loc.store_file, loc.store_offset, bytes, (size_t)loc.bytes, &e) != 0)
        goto out;
    img_decode_opts dop = {.apply_exif = 1, .alpha = IMG_ALPHA_WHITE, .max_pixels = 100000000};
    dop.min_width = dop.min_height = 128;
    if (img_decode(bytes, (size_t)loc.bytes, &dop, &im, &e) != 0 ||
        img_resize_mode(&im, IMG_RESIZE_KEEP_RATIO_LARGEST, 128, 1, &sm, &e) != 0 ||
        img_encode_jpeg(&sm, 70, &jpg, &e) != 0)
        goto out;
    if (wp_buf_puts(&uri, "data:image/jpeg;base64,") != 0 || aud_base64(jpg.data, jpg.len, &uri))
        goto out;
    res = wp_buf_steal(&uri);
out:
    free(bytes);
    img_free(&im);
    img_free(&sm);
    wp_buf_free(&jpg);
    wp_buf_free(&uri);
    return res;
}

static int cmp_gitem(const void *x, const void *y)
{
    const gitem *a = x, *b = y;
    return a->key < b->key ? -1 : a->key > b->key;
}

static int cmp_gbucket(const void *x, const void *y)
{
    const gbucket *a = x, *b = y;
    /* kept first, then by level (pipeline order), then largest first */
    int ka = strncmp(a->label, "kept", 4) == 0, kb = strncmp(b->label, "kept", 4) == 0;
    if (ka != kb)
        return kb - ka;
    if (a->level != b->level)
        return a->level - b->level;
    if (a->total != b->total)
        return a->total > b->total ? -1 : 1;
    return strcmp(a->label, b->label);
}

static json_t *gallery_json(audit *a)
{
    json_t *o = json_object(), *rows = json_array();
    jset(o, "enabled", json_boolean(a->o->gallery > 0));
    jset(o, "per_row", json_integer(a->o->gallery));
    jset(o, "seed", json_integer((json_int_t)a->o->seed));
    if (a->ngb > 0)
        qsort(a->gb, a->ngb, sizeof *a->gb, cmp_gbucket);
    for (size_t i = 0; i < a->ngb; i++) {
        gbucket *b = &a->gb[i];
        json_t *r = json_object(), *items = json_array();
        qsort(b->items, (size_t)b->n, sizeof *b->items, cmp_gitem);
        jset(r, "label", json_string(b->label));
        jset(r, "pairs", json_integer(b->total));
        for (int k = 0; k < b->n; k++) {
            gitem *it = &b->items[k];
            json_t *e = json_object();
            char *th = it->stored && a->o->gallery > 0 ? thumbnail(a, it->image_id) : NULL;
            jset(e, "uid", json_string(it->uid));
            jset(e, "caption", json_string(it->caption ? it->caption : ""));
            jset(e, "score", jnum(it->score));
            jset(e, "thumb", th ? json_string(th) : json_null());
            free(th);
            jpush(items, e);
        }
        jset(r, "items", items);
        jpush(rows, r);
    }
    jset(o, "rows", rows);
    return o;
}

static void on_run(void *ud, const cat_audit_run *r)
{
    audit *a = ud;
    json_t *e = json_object(), *p, *c;
    jset(e, "id", json_integer(r->id));
    jset(e, "stage", json_string(r->stage ? r->stage : ""));
    jset(e, "status", json_string(r->status ? r->status : ""));
    jset(e, "started_at", json_integer(r->started_at));
    jset(e, "ended_at", r->ended_at >= 0 ? json_integer(r->ended_at) : json_null());
    p = json_loads(r->params ? r->params : "{}", 0, NULL);
    c = json_loads(r->counts ? r->counts : "{}", 0, NULL);
    jset(e, "params", p && json_is_object(p) ? p : json_object());
    jset(e, "counts", c && json_is_object(c) ? c : json_object());
    if (p && !json_is_object(p))
        json_decref(p);
    if (c && !json_is_object(c))
        json_decref(c);
    jpush(a->runs, e);
}

static void on_source(void *ud, const char *kind, const char *loc, int64_t added, int64_t pairs)
{
    json_t *arr = ud, *e = json_object();
    jset(e, "kind", json_string(kind ? kind : ""));
    jset(e, "location", json_string(loc ? loc : ""));
    jset(e, "added_at", json_integer(added));
    jset(e, "pairs", json_integer(pairs));
    jpush(arr, e);
}

static const char *const limits_text[] = {
    "Caption-side figures count words that caption authors wrote, matched against short English "
    "lexicons (audit/lexicon/). They describe the text, not the people pictured, and miss every "
    "caption in another language or wording.",
    "nPMI measures co-occurrence in captions, not cause; intervals are 95% Poisson-bootstrap "
    "percentile intervals over captions; associations seen fewer than the minimum count are "
    "not listed.",
    "Image-side figures are perceived attributes inferred by a CLIP model from pixels: they are "
    "not anyone's gender, age, race or identity, the label sets (binary gender, seven race groups) "
    "are coarse and contested, and zero-shot accuracy itself differs between groups, so a "
    "disparity mixes the corpus's bias with the model's.",
    "The report holds aggregates only: no per-image inferred attribute is written unless "
    "--per-image was given.",
    "Sections marked 'not available' need a stage that has not run on this corpus; run it and "
    "audit again.",
};

/* Reads a list file: one entry a line, '#' comments, blank lines skipped. */
static int read_list(const char *path, char ***out, int *n, wp_err *err)
{
    wp_buf b = {0};
    char **v = NULL;
    int k = 0, cap = 0, rc;
    *out = NULL;
    *n = 0;
    if ((rc = wp_read_file(path, 1u << 20, &b, err)) != 0)
        return wp_err_set(err, AUD_ELABELS, "%s: cannot read", path);
    for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' '))
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 32;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (nv == NULL)
                goto oom;
            v = nv;
        }
        if ((v[k] = strdup(line)) == NULL)
            goto oom;
        k++;
    }
    wp_buf_free(&b);
    *out = v;
    *n = k;
    return 0;
oom:
    for (int i = 0; i < k; i++)
        free(v[i]);
    free(v);
    wp_buf_free(&b);
    return wp_err_set(err, WP_ENOMEM, "out of memory");
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int write_out(const char *dir, const char *name, const char *data, size_t n, char *path,
                     wp_err *err)
{
    char tmp[WP_PATH_MAX];
    int rc = wp_path_join(path ? path : tmp, dir, name, err);
    if (rc != 0)
        return rc;
    return wp_write_file_atomic(path ? path : tmp, data, n, err);
}

static const char *const lex_files[] = {"gender", "age", "identity", "occupation", "adjective"};
static const int lex_attr[] = {0, 0, 0, 1, 1};

int aud_run(cat *c, st_store *st, const aud_opts *o, const wp_reporter *rep, aud_summary *sum,
            wp_err *err)
{
    audit a;
    cat_audit_cursor *cur = NULL;
    cat_audit_pair p;
    cat_audit_coll coll;
    aud_hits *hits = NULL;
    json_t *report = NULL, *sensitive = NULL, *demo = NULL;
    qlist q = {0};
    char **sens = NULL;
    int nsens = 0, rc = 0;
    char path[WP_PATH_MAX], model_name[256] = "";
    wp_progress pr = {0};
    char *js = NULL;
    wp_buf html = {0}, ds = {0};
    int64_t done = 0;

    memset(&a, 0, sizeof a);
    memset(sum, 0, sizeof *sum);
    oom = 0;
    a.o = o;
    a.c = c;
    a.st = st;
    a.err = err;
    a.gender_lex = -1;
    if ((rc = wp_mkdir_p(o->outdir, err)) != 0)
        return rc;
    /* lexicons: group lexicons first, then attribute lexicons */
    if ((a.mx = aud_matcher_new()) == NULL || (hits = malloc(sizeof *hits)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof lex_files / sizeof *lex_files; i++) {
            char fn[64];
            if (lex_attr[i] != pass)
                continue;
            snprintf(fn, sizeof fn, "%s.tsv", lex_files[i]);
            if ((rc = wp_path_join(path, o->lexicon_dir, fn, err)) != 0 ||
                (rc = aud_matcher_load(a.mx, lex_files[i], path, lex_attr[i], err)) != 0)
                goto out;
            if (pass == 0) {
                if (strcmp(lex_files[i], "gender") == 0)
                    a.gender_lex = a.ngl;
                a.gbase[a.ngl] = a.ngroups_total;
                a.ngroups_total += aud_matcher_lex(a.mx, a.ngl)->ngroups;
                a.ngl++;
            } else
                a.nal++;
        }
    if ((rc = wp_path_join(path, o->labels_dir, "sensitive_queries.txt", err)) != 0 ||
        (rc = read_list(path, &sens, &nsens, err)) != 0)
        goto out;
    if ((rc = wp_path_join(path, o->labels_dir, "unsafe_tags.txt", err)) != 0 ||
        (rc = read_list(path, &a.unsafe, &a.nunsafe, err)) != 0)
        goto out;
    /* stages, in pipeline order */
    if ((rc = cat_audit_decision_counts(c, on_dec, &a, err)) != 0)
        goto out;
    qsort(a.stages, (size_t)a.nstages, sizeof *a.stages, cmp_stage);
    a.nlevels = a.nstages + 2;
    a.group_level = calloc((size_t)a.nlevels * (a.ngroups_total + 1), sizeof *a.group_level);
    if (a.group_level == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int t = 0; t < a.nal; t++) {
        a.abase[t] = a.nattr_total;
        a.nattr_total += aud_matcher_lex(a.mx, a.ngl + t)->ngroups;
    }
    for (int si = 0; si < 2; si++)
        if ((a.cooc[si] = aud_cooc_new(a.ngroups_total, a.nattr_total)) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
    /* the model's embeddings */
    if (o->model_dir != NULL) {
        char sub[WP_PATH_MAX], edir[WP_PATH_MAX];
        emb_model_name(o->model_dir, o->model_name, model_name, sizeof model_name);
        snprintf(sub, sizeof sub, "embeddings/%s", model_name);
        if ((rc = wp_path_join(edir, cat_dir(c), sub, err)) != 0 ||
            (rc = wp_path_join(path, o->labels_dir, "probes.txt", err)) != 0)
            goto out;
        if ((rc = aud_probe_open(o->model_dir, edir, path, o->per_image, &a.probe, err)) != 0)
            goto out;
    }
    if ((rc = cat_audit_cursor_open(c, o->model_dir ? model_name : NULL, &cur, err)) != 0)
        goto out;
    a.has_lang = cat_audit_cursor_tables(cur)->lang;
    a.has_queries = cat_audit_cursor_tables(cur)->queries;
    a.has_tags = cat_audit_cursor_tables(cur)->tags;
    pr.stage = "audit";
    pr.total = (uint64_t)cat_count_pairs(c);
    while ((rc = cat_audit_cursor_next(cur, &p, err)) == 1) {
        if ((rc = process_pair(&a, &p, hits)) != 0) {
            if (rc == WP_ENOMEM)
                wp_err_set(err, rc, "out of memory");
            goto out;
        }
        if ((++done & 0xffff) == 0) {
            pr.done = (uint64_t)done;
            wp_report_progress(rep, &pr);
            if (wp_stop_requested()) {
                rc = wp_err_set(err, WP_ESTOP, "stopped");
                goto out;
            }
        }
    }
    if (rc != 0)
        goto out;
    pr.done = (uint64_t)done;
    wp_report_progress(rep, &pr);
    cat_audit_cursor_close(cur);
    cur = NULL;
    if (a.has_queries && (rc = cat_audit_queries(c, on_query, &q, err)) != 0)
        goto out;
    if (q.fail) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = cat_audit_collection(c, &coll, err)) != 0)
        goto out;

    /* the report tree */
    report = json_object();
    jset(report, "schema", json_string("witpipe-audit-report/1"));
    jset(report, "witpipe_version", json_string(WP_VERSION));
    jset(report, "generated_at", json_integer(wp_unix_time()));
    {
        json_t *corp = json_object(), *srcs = json_array();
        char *rp = realpath(cat_dir(c), NULL);
        jset(corp, "dir", json_string(rp ? rp : cat_dir(c)));
        free(rp);
        jset(corp, "pairs", json_integer(done));
        jset(corp, "images", json_integer(coll.images));
        jset(corp, "first_added", json_integer(coll.first_added));
        jset(corp, "last_added", json_integer(coll.last_added));
        if ((rc = cat_audit_sources(c, on_source, srcs, err)) != 0)
            goto out;
        jset(corp, "sources", srcs);
        jset(report, "corpus", corp);
    }
    {
        json_t *op = json_object();
        jset(op, "seed", json_integer((json_int_t)o->seed));
        jset(op, "bootstrap", json_integer(o->bootstrap));
        jset(op, "gallery", json_integer(o->gallery));
        jset(op, "min_cooccurrence", json_integer(o->min_cooc));
        jset(op, "model", o->model_dir ? json_string(model_name) : json_null());
        jset(op, "per_image", json_boolean(o->per_image));
        jset(op, "lexicon_dir", json_string(o->lexicon_dir));
        jset(op, "labels_dir", json_string(o->labels_dir));
        jset(report, "options", op);
    }
    a.runs = json_array();
    if ((rc = cat_audit_runs(c, on_run, &a, err)) != 0)
        goto out;
    jset(report, "runs", a.runs);
    {
        json_t *cl = json_object();
        jset(cl, "pages", json_integer(coll.pages));
        jset(cl, "pages_refused_by_robots", json_integer(coll.pages_robots));
        jset(cl, "pages_opted_out", json_integer(coll.pages_opt_out));
        jset(cl, "robots_files", json_integer(coll.robots_cached));
        jset(cl, "images_opted_out", json_integer(coll.images_opt_out));
        jset(report, "collection", cl);
    }
    jset(report, "funnel", funnel_json(&a, &coll));
    jset(report, "composition", composition_json(&a, &q, &sensitive, sens, nsens));
    jset(report, "gallery", gallery_json(&a));
    if ((rc = demographics_json(&a, &demo)) != 0)
        goto out;
    jset(report, "demographics", demo);
    if (a.probe != NULL)
        jset(report, "probes", aud_probe_json(a.probe, o->min_cooc));
    else {
        json_t *pb = json_object();
        jset(pb, "available", json_false());
        jset(pb, "needs", json_string("witpipe encode --model M, then witpipe audit --model M"));
        jset(report, "probes", pb);
    }
    jset(report, "sensitive_queries", sensitive);
    sensitive = NULL;
    {
        json_t *lim = json_array();
        for (size_t i = 0; i < sizeof limits_text / sizeof *limits_text; i++)
            jpush(lim, json_string(limits_text[i]));
        jset(report, "limits", lim);
    }
    if (oom) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory building the report");
        goto out;
    }
    js = wp_json_tree_text(report, WP_JSON_INDENT(1) | WP_JSON_PREC(8));
    if (js == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = write_out(o->outdir, "report.json", js, strlen(js), sum->report_json, err)) != 0)
        goto out;
    if (aud_render_html(report, &html) != 0 || aud_render_datasheet(report, &ds) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory rendering the report");
        goto out;
    }
    if ((rc = write_out(o->outdir, "report.html", html.data, html.len, sum->report_html, err)) !=
            0 ||
        (rc = write_out(o->outdir, "datasheet.md", ds.data, ds.len, sum->datasheet, err)) != 0)
        goto out;
    if (a.probe != NULL && o->per_image) {
        const wp_buf *pi = aud_probe_per_image(a.probe);
        if ((rc = write_out(o->outdir, "per_image.jsonl", pi->data ? pi->data : "", pi->len, NULL,
                            err)) != 0)
            goto out;
    }
    sum->pairs = done;
    sum->fetched = reach(&a, 1);
    sum->selected = a.at_level[a.nlevels - 1];
    sum->probes_run = a.probe != NULL;
out:
    cat_audit_cursor_close(cur);
    json_decref(report);
    json_decref(sensitive);
    free(js);
    wp_buf_free(&html);
    wp_buf_free(&ds);
    free(hits);
    free_list(sens, nsens);
    free_list(a.unsafe, a.nunsafe);
    for (size_t i = 0; i < q.n; i++)
        free(q.e[i].text);
    free(q.e);
    aud_cooc_free(a.cooc[0]);
    aud_cooc_free(a.cooc[1]);
    aud_matcher_free(a.mx);
    aud_probe_close(a.probe);
    free(a.group_level);
    smap_free(&a.reasons);
    smap_free(&a.domains);
    smap_free(&a.langs);
    smap_free(&a.gkeys);
    free(a.reason_counts.v);
    free(a.domain_counts.v);
    free(a.lang_counts.v);
    free(a.q_counts.v);
    free(a.q_unsafe.v);
    free(a.q_gender);
    for (size_t i = 0; i < a.ngb; i++) {
        for (int k = 0; k < a.gb[i].n; k++)
            free(a.gb[i].items[k].caption);
        free(a.gb[i].items);
        free(a.gb[i].label);
    }
    free(a.gb);
    return rc;
}
