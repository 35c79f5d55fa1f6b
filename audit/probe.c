/*
 * audit/probe.c: the image-side probes. Prompt-ensemble classifiers are
 * built once from audit/labels/probes.txt with the model's text tower (a
 * class's prompts are embedded, each normalised, averaged, renormalised);
 * every pair's image embedding is read from the embeddings `witpipe encode`
 * wrote (never recomputed), normalised, and assigned to the class of
 * highest cosine in each probe (ties to the earlier class).
 *
 * Probes: [person] (its first class is "person"), then on person images
 * [gender], [age], [race]; the section 7.1 denigration probe over the
 * label set [race] + [crime] + [nonhuman], and again with [child] added;
 * filter disparity: per perceived group and per caption gender group, the
 * CLIP-score quartiles and the share of pairs each step removed.
 */
#include "probe_int.h"
#include "clip/clip.h"
#include "emb/emb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_PERSON, P_GENDER, P_AGE, P_RACE, P_CRIME, P_NONHUMAN, P_CHILD, P_N };
static const char *const probe_names[P_N] = {"person", "gender",   "age",  "race",
                                             "crime",  "nonhuman", "child"};

#define MAX_CLS     64
#define MAX_PROMPTS 32
#define MAX_BUCKETS 64
#define MAX_ROWS    64

typedef struct pclass {
    char *name;
    int nprompts;
    char *prompts[MAX_PROMPTS];
} pclass;

typedef struct probe {
    int ncls;
    pclass cls[MAX_CLS];
    float *w; /* ncls x E unit rows */
} probe;

struct aud_probe_set {
    probe p[P_N];
};

typedef struct frow { /* a disparity row */
    char label[160];
    int key; /* display order */
    int64_t n;
    int64_t removed[MAX_BUCKETS];
    float *scores;
    size_t nscores, cscores;
} frow;

typedef struct drow { /* a denigration row */
    char label[160];
    int key; /* display order */
    int64_t n, crime, nonhuman, crime_c, nonhuman_c, child_c;
} drow;

struct aud_probe_ctx {
    aud_probe_set *set;
    emb_set *emb;
    int E;
    char model[WP_PATH_MAX];
    int per_image;
    wp_buf lines;
    float *v, *den, *den_c; /* scratch; denigration label sets (unit rows) */
    int nden, nden_c;
    int64_t embedded[2], missing, person[2];
    int64_t attr[3][2][MAX_CLS]; /* gender/age/race x (fetched, selected) x class */
    drow drows[MAX_ROWS];
    int ndrows;
    frow frows[MAX_ROWS];
    int nfrows;
    char *buckets[MAX_BUCKETS];
    int nbuckets;
};

void aud_probes_free(aud_probe_set *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < P_N; i++) {
        for (int c = 0; c < s->p[i].ncls; c++) {
            free(s->p[i].cls[c].name);
            for (int k = 0; k < s->p[i].cls[c].nprompts; k++)
                free(s->p[i].cls[c].prompts[k]);
        }
        free(s->p[i].w);
    }
    free(s);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int aud_probes_load(const char *path, aud_probe_set **out, wp_err *err)
{
    wp_buf b = {0};
    aud_probe_set *s = calloc(1, sizeof *s);
    int rc = 0, line = 0, cur = -1;
    char *p, *end;
    *out = NULL;
    if (s == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if (wp_read_file(path, 4u << 20, &b, err) != 0) {
        rc = wp_err_set(err, AUD_ELABELS, "%s: cannot read the probe labels", path);
        goto out;
    }
    for (p = b.data; p < b.data + b.len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(b.data + b.len - p));
        if (end == NULL)
            end = b.data + b.len;
        *end = '\0';
        line++;
        char *t = trim(p);
        if (*t == '\0' || *t == '#')
            continue;
        if (*t == '[') {
            char *rb = strchr(t, ']');
            cur = -1;
            if (rb != NULL) {
                *rb = '\0';
                for (int i = 0; i < P_N; i++)
                    if (strcmp(t + 1, probe_names[i]) == 0)
                        cur = i;
            }
            if (cur < 0) {
                rc = wp_err_set(err, AUD_ELABELS, "%s:%d: unknown section '%s'", path, line, t);
                goto out;
            }
            continue;
        }
        char *tab = strchr(t, '\t');
        if (cur < 0 || tab == NULL) {
            rc = wp_err_set(err, AUD_ELABELS,
                            "%s:%d: expected CLASS<TAB>PROMPT | PROMPT inside a [section]", path,
                            line);
            goto out;
        }
        probe *pr = &s->p[cur];
        if (pr->ncls >= MAX_CLS) {
            rc = wp_err_set(err, AUD_ELABELS, "%s:%d: more than %d classes", path, line, MAX_CLS);
            goto out;
        }
        *tab = '\0';
        pclass *c = &pr->cls[pr->ncls++];
        if ((c->name = strdup(trim(t))) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        for (char *q = tab + 1, *bar; q != NULL; q = bar ? bar + 1 : NULL) {
            bar = strchr(q, '|');
            if (bar)
                *bar = '\0';
            char *pt = trim(q);
            if (*pt == '\0')
                continue;
            if (c->nprompts >= MAX_PROMPTS) {
                rc = wp_err_set(err, AUD_ELABELS, "%s:%d: more than %d prompts", path, line,
                                MAX_PROMPTS);
                goto out;
            }
            if ((c->prompts[c->nprompts++] = strdup(pt)) == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
        }
        if (c->nprompts == 0) {
            rc = wp_err_set(err, AUD_ELABELS, "%s:%d: class '%s' has no prompt", path, line,
                            c->name);
            goto out;
        }
    }
    for (int i = 0; i < P_N; i++)
        if (s->p[i].ncls == 0 || (i == P_PERSON && s->p[i].ncls < 2)) {
            rc = wp_err_set(err, AUD_ELABELS, "%s: section [%s] is missing or has too few classes",
                            path, probe_names[i]);
            goto out;
        }
out:
    wp_buf_free(&b);
    if (rc != 0)
        aud_probes_free(s);
    else
        *out = s;
    return rc;
}

/* Unit class vectors of one probe: the mean of its unit prompt embeddings,
 * renormalised. */
static int build(probe *pr, const clip_model *m, clip_ws *ws, clip_tok *tok, int E, wp_err *err)
{
    float *emb = malloc((size_t)MAX_PROMPTS * E * sizeof *emb);
    int rc = 0;
    pr->w = calloc((size_t)pr->ncls * E, sizeof *pr->w);
    if (emb == NULL || pr->w == NULL) {
        free(emb);
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    for (int c = 0; c < pr->ncls && rc == 0; c++) {
        pclass *cl = &pr->cls[c];
        if ((rc = clip_embed_strings(m, ws, tok, (const char *const *)cl->prompts, cl->nprompts,
                                     emb, err)) != 0)
            break;
        float *o = pr->w + (size_t)c * E;
        for (int t = 0; t < cl->nprompts; t++) {
            clip_l2_normalize(emb + (size_t)t * E, E);
            for (int j = 0; j < E; j++)
                o[j] += emb[(size_t)t * E + j] / (float)cl->nprompts;
        }
        clip_l2_normalize(o, E);
    }
    free(emb);
    return rc;
}

int aud_probe_open(const char *model_dir, const char *emb_dir, const char *probes_path,
                   int per_image, aud_probe_ctx **out, wp_err *err)
{
    aud_probe_ctx *p = calloc(1, sizeof *p);
    clip_model *m = NULL;
    clip_tok *tok = NULL;
    clip_ws *ws = NULL;
    int rc = 0;
    *out = NULL;
    if (p == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    p->per_image = per_image;
    snprintf(p->model, sizeof p->model, "%s", model_dir);
    if ((rc = aud_probes_load(probes_path, &p->set, err)) != 0)
        goto out;
    if ((rc = emb_open(emb_dir, &p->emb, err)) != 0) {
        if (rc == WP_ENOENT)
            rc = wp_err_set(err, AUD_ENOEMB,
                            "no embeddings in %s: run witpipe encode --model %s first", emb_dir,
                            model_dir);
        goto out;
    }
    if ((rc = clip_model_open(model_dir, NULL, &m, err)) != 0 ||
        (rc = clip_tok_open_dir(model_dir, &tok, err)) != 0)
        goto out;
    p->E = clip_model_arch(m)->embed_dim;
    if (p->E != emb_dim(p->emb)) {
        rc = wp_err_set(err, AUD_ENOEMB, "%s: embeddings have %d dimensions, the model %d", emb_dir,
                        emb_dim(p->emb), p->E);
        goto out;
    }
    if ((ws = clip_ws_new()) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < P_N && rc == 0; i++)
        rc = build(&p->set->p[i], m, ws, tok, p->E, err);
    if (rc != 0)
        goto out;
    /* the denigration label sets: race + crime + nonhuman (+ child) */
    {
        const probe *r = &p->set->p[P_RACE], *cr = &p->set->p[P_CRIME],
                    *nh = &p->set->p[P_NONHUMAN], *ch = &p->set->p[P_CHILD];
        int E = p->E;
        p->nden = r->ncls + cr->ncls + nh->ncls;
        p->nden_c = p->nden + ch->ncls;
        p->den = malloc((size_t)p->nden_c * E * sizeof *p->den);
        p->v = malloc((size_t)E * sizeof *p->v);
        if (p->den == NULL || p->v == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        float *d = p->den;
        memcpy(d, r->w, (size_t)r->ncls * E * sizeof *d);
        d += (size_t)r->ncls * E;
        memcpy(d, cr->w, (size_t)cr->ncls * E * sizeof *d);
        d += (size_t)cr->ncls * E;
        memcpy(d, nh->w, (size_t)nh->ncls * E * sizeof *d);
        d += (size_t)nh->ncls * E;
        memcpy(d, ch->w, (size_t)ch->ncls * E * sizeof *d);
    }
out:
    clip_ws_free(ws);
    clip_tok_free(tok);
    clip_model_free(m);
    if (rc != 0)
        aud_probe_close(p);
    else
        *out = p;
    return rc;
}

void aud_probe_close(aud_probe_ctx *p)
{
    if (p == NULL)
        return;
    aud_probes_free(p->set);
    emb_close(p->emb);
    wp_buf_free(&p->lines);
    free(p->v);
    free(p->den);
    for (int i = 0; i < p->nfrows; i++)
        free(p->frows[i].scores);
    for (int i = 0; i < p->nbuckets; i++)
        free(p->buckets[i]);
    free(p);
}

const wp_buf *aud_probe_per_image(const aud_probe_ctx *p)
{
    return &p->lines;
}

/* argmax over n unit rows of w (ties: the earlier row). */
static int argmax(const float *w, int n, const float *v, int E)
{
    int best = 0;
    float bs = -INFINITY;
    for (int c = 0; c < n; c++) {
        float s = 0;
        for (int j = 0; j < E; j++)
            s += w[(size_t)c * E + j] * v[j];
        if (s > bs) {
            bs = s;
            best = c;
        }
    }
    return best;
}

static drow *drow_get(aud_probe_ctx *p, const char *label, int key)
{
    for (int i = 0; i < p->ndrows; i++)
        if (strcmp(p->drows[i].label, label) == 0)
            return &p->drows[i];
    if (p->ndrows >= MAX_ROWS)
        return NULL;
    drow *r = &p->drows[p->ndrows++];
    memset(r, 0, sizeof *r);
    r->key = key;
    snprintf(r->label, sizeof r->label, "%s", label);
    return r;
}

static frow *frow_get(aud_probe_ctx *p, const char *label, int key)
{
    for (int i = 0; i < p->nfrows; i++)
        if (strcmp(p->frows[i].label, label) == 0)
            return &p->frows[i];
    if (p->nfrows >= MAX_ROWS)
        return NULL;
    frow *r = &p->frows[p->nfrows++];
    memset(r, 0, sizeof *r);
    r->key = key;
    snprintf(r->label, sizeof r->label, "%s", label);
    return r;
}

static int frow_add(aud_probe_ctx *p, const char *label, int key, int bucket, double score)
{
    frow *r = frow_get(p, label, key);
    if (r == NULL)
        return 0;
    r->n++;
    if (bucket >= 0)
        r->removed[bucket]++;
    if (!isnan(score)) {
        if (r->nscores == r->cscores) {
            size_t nc = r->cscores ? 2 * r->cscores : 256;
            float *ns = realloc(r->scores, nc * sizeof *ns);
            if (ns == NULL)
                return WP_ENOMEM;
            r->scores = ns;
            r->cscores = nc;
        }
        r->scores[r->nscores++] = (float)score;
    }
    return 0;
}

int aud_probe_pair(aud_probe_ctx *p, int64_t pair_id, const char *uid, int level, int sel,
                   const char *bucket, double clip_score, const aud_hits *h, int gender_lex,
                   const char *const *gender_groups, int ngender, wp_err *err)
{
    int64_t row = emb_find_pair(p->emb, pair_id);
    int E = p->E, rc, bk = -1, s = level >= sel;
    const aud_probe_set *set = p->set;
    char lbl[200];
    if (row < 0) {
        p->missing++;
        return 0;
    }
    if ((rc = emb_read(p->emb, EMB_IMAGE, row, 1, p->v, err)) != 0)
        return rc;
    clip_l2_normalize(p->v, E);
    p->embedded[0]++;
    p->embedded[1] += s;
    /* where the pair stopped: a bucket column unless it was kept */
    if (level < sel) {
        for (bk = 0; bk < p->nbuckets; bk++)
            if (strcmp(p->buckets[bk], bucket) == 0)
                break;
        if (bk == p->nbuckets) {
            if (p->nbuckets >= MAX_BUCKETS)
                bk = -1;
            else if ((p->buckets[p->nbuckets++] = strdup(bucket)) == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
    }
    int person = argmax(set->p[P_PERSON].w, set->p[P_PERSON].ncls, p->v, E) == 0;
    int cls[3] = {-1, -1, -1};
    if ((rc = frow_add(p, "all embedded pairs", 0, bk, clip_score)) != 0)
        return rc;
    for (int k = 0; k < ngender && gender_lex >= 0; k++)
        for (int i = 0; i < h->n[gender_lex]; i++)
            if (h->g[gender_lex][i] == k) {
                snprintf(lbl, sizeof lbl, "caption mentions: %s", gender_groups[k]);
                if ((rc = frow_add(p, lbl, 100 + k, bk, clip_score)) != 0)
                    return rc;
            }
    if (person) {
        p->person[0]++;
        p->person[1] += s;
        if ((rc = frow_add(p, "perceived: person", 200, bk, clip_score)) != 0)
            return rc;
        for (int a = 0; a < 3; a++) {
            const probe *pr = &set->p[P_GENDER + a];
            cls[a] = argmax(pr->w, pr->ncls, p->v, E);
            p->attr[a][0][cls[a]]++;
            p->attr[a][1][cls[a]] += s;
            snprintf(lbl, sizeof lbl, "perceived %s: %s", probe_names[P_GENDER + a],
                     pr->cls[cls[a]].name);
            if ((rc = frow_add(p, lbl, 300 + 100 * a + cls[a], bk, clip_score)) != 0)
                return rc;
        }
        /* denigration probe, without and with the child label */
        int nr = set->p[P_RACE].ncls, nc = set->p[P_CRIME].ncls;
        int d0 = argmax(p->den, p->nden, p->v, E), d1 = argmax(p->den, p->nden_c, p->v, E);
        int crime0 = d0 >= nr && d0 < nr + nc, non0 = d0 >= nr + nc;
        int crime1 = d1 >= nr && d1 < nr + nc, non1 = d1 >= nr + nc && d1 < p->nden,
            child1 = d1 >= p->nden;
        for (int a = -1; a < 3; a++) {
            drow *r;
            if (a < 0)
                r = drow_get(p, "all person images", 0);
            else {
                snprintf(lbl, sizeof lbl, "perceived %s: %s", probe_names[P_GENDER + a],
                         set->p[P_GENDER + a].cls[cls[a]].name);
                r = drow_get(p, lbl, 300 + 100 * a + cls[a]);
            }
            if (r == NULL)
                continue;
            r->n++;
            r->crime += crime0;
            r->nonhuman += non0;
            r->crime_c += crime1;
            r->nonhuman_c += non1;
            r->child_c += child1;
        }
    }
    if (p->per_image) {
        json_t *o = json_object();
        json_object_set_new(o, "uid", json_string(uid ? uid : ""));
        json_object_set_new(o, "pair_id", json_integer(pair_id));
        json_object_set_new(o, "person", json_boolean(person));
        for (int a = 0; a < 3; a++)
            json_object_set_new(o, probe_names[P_GENDER + a],
                                cls[a] >= 0 ? json_string(set->p[P_GENDER + a].cls[cls[a]].name)
                                            : json_null());
        char *js = wp_json_tree_text(o, 0);
        json_decref(o);
        if (js == NULL || wp_buf_puts(&p->lines, js) != 0 || wp_buf_putc(&p->lines, '\n') != 0) {
            free(js);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        free(js);
    }
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static json_t *r6(double v)
{
    char b[32];
    if (isnan(v) || isinf(v))
        return json_null();
    snprintf(b, sizeof b, "%.6g", v);
    return json_real(strtod(b, NULL));
}

static json_t *share(int64_t k, int64_t n, const char *prefix, json_t *o)
{
    char key[64];
    double lo, hi;
    aud_wilson((double)k, (double)n, &lo, &hi);
    json_object_set_new(o, prefix, json_integer(k));
    snprintf(key, sizeof key, "%s_share", prefix);
    json_object_set_new(o, key, n ? r6((double)k / n) : json_null());
    snprintf(key, sizeof key, "%s_lo", prefix);
    json_object_set_new(o, key, r6(lo));
    snprintf(key, sizeof key, "%s_hi", prefix);
    json_object_set_new(o, key, r6(hi));
    return o;
}

static double qf(const float *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static int cmp_drow(const void *x, const void *y)
{
    return ((const drow *)x)->key - ((const drow *)y)->key;
}

static int cmp_frow(const void *x, const void *y)
{
    return ((const frow *)x)->key - ((const frow *)y)->key;
}

json_t *aud_probe_json(aud_probe_ctx *p, int min_count)
{
    const aud_probe_set *set = p->set;
    json_t *o = json_object(), *attrs = json_array(), *e, *arr;
    static const char *const subs[2] = {"fetched", "selected"};
    (void)min_count;
    qsort(p->drows, (size_t)p->ndrows, sizeof *p->drows, cmp_drow);
    qsort(p->frows, (size_t)p->nfrows, sizeof *p->frows, cmp_frow);
    json_object_set_new(o, "available", json_true());
    json_object_set_new(o, "needs", json_null());
    json_object_set_new(o, "model", json_string(p->model));
    e = json_object();
    for (int s = 0; s < 2; s++)
        json_object_set_new(e, subs[s], json_integer(p->embedded[s]));
    json_object_set_new(o, "embedded", e);
    json_object_set_new(o, "without_embedding", json_integer(p->missing));
    e = json_object();
    for (int s = 0; s < 2; s++) {
        json_t *x = json_object();
        share(p->person[s], p->embedded[s], "person", x);
        json_object_set_new(e, subs[s], x);
    }
    json_object_set_new(o, "person", e);
    for (int a = 0; a < 3; a++) {
        const probe *pr = &set->p[P_GENDER + a];
        json_t *x = json_object(), *cl = json_array(), *cnt = json_object();
        json_object_set_new(x, "probe", json_string(probe_names[P_GENDER + a]));
        for (int c = 0; c < pr->ncls; c++)
            json_array_append_new(cl, json_string(pr->cls[c].name));
        for (int s = 0; s < 2; s++) {
            arr = json_array();
            for (int c = 0; c < pr->ncls; c++)
                json_array_append_new(arr, json_integer(p->attr[a][s][c]));
            json_object_set_new(cnt, subs[s], arr);
        }
        json_object_set_new(x, "classes", cl);
        json_object_set_new(x, "counts", cnt);
        json_array_append_new(attrs, x);
    }
    json_object_set_new(o, "attributes", attrs);
    /* denigration */
    {
        json_t *d = json_object(), *labels = json_array(), *crime = json_array(),
               *non = json_array(), *rows = json_array();
        for (int i = P_RACE; i <= P_NONHUMAN; i++)
            for (int c = 0; c < set->p[i].ncls; c++) {
                json_array_append_new(labels, json_string(set->p[i].cls[c].name));
                if (i == P_CRIME)
                    json_array_append_new(crime, json_string(set->p[i].cls[c].name));
                if (i == P_NONHUMAN)
                    json_array_append_new(non, json_string(set->p[i].cls[c].name));
            }
        json_object_set_new(d, "labels", labels);
        json_object_set_new(d, "crime_labels", crime);
        json_object_set_new(d, "nonhuman_labels", non);
        json_object_set_new(d, "child_label", json_string(set->p[P_CHILD].cls[0].name));
        for (int i = 0; i < p->ndrows; i++) {
            drow *r = &p->drows[i];
            json_t *x = json_object();
            json_object_set_new(x, "group", json_string(r->label));
            json_object_set_new(x, "n", json_integer(r->n));
            share(r->crime, r->n, "crime", x);
            share(r->nonhuman, r->n, "nonhuman", x);
            share(r->crime_c, r->n, "crime_with_child", x);
            share(r->nonhuman_c, r->n, "nonhuman_with_child", x);
            share(r->child_c, r->n, "child_with_child", x);
            json_array_append_new(rows, x);
        }
        json_object_set_new(d, "rows", rows);
        json_object_set_new(o, "denigration", d);
    }
    /* filter disparity */
    {
        json_t *d = json_object(), *cols = json_array(), *rows = json_array();
        for (int b = 0; b < p->nbuckets; b++)
            json_array_append_new(cols, json_string(p->buckets[b]));
        for (int i = 0; i < p->nfrows; i++) {
            frow *r = &p->frows[i];
            json_t *x = json_object(), *rem = json_array(), *cs = json_object();
            json_object_set_new(x, "group", json_string(r->label));
            json_object_set_new(x, "n", json_integer(r->n));
            if (r->nscores > 0)
                qsort(r->scores, r->nscores, sizeof *r->scores, cmp_float);
            json_object_set_new(cs, "n", json_integer((json_int_t)r->nscores));
            json_object_set_new(cs, "p25", r6(qf(r->scores, r->nscores, 0.25)));
            json_object_set_new(cs, "median", r6(qf(r->scores, r->nscores, 0.5)));
            json_object_set_new(cs, "p75", r6(qf(r->scores, r->nscores, 0.75)));
            json_object_set_new(x, "clip_score", cs);
            for (int b = 0; b < p->nbuckets; b++) {
                json_t *y = json_object();
                json_object_set_new(y, "step", json_string(p->buckets[b]));
                share(r->removed[b], r->n, "removed", y);
                json_array_append_new(rem, y);
            }
            json_object_set_new(x, "removed", rem);
            json_array_append_new(rows, x);
        }
        json_object_set_new(d, "steps", cols);
        json_object_set_new(d, "rows", rows);
        json_object_set_new(o, "disparity", d);
    }
    return o;
}
