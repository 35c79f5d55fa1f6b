/*
 * audit/stats.c: the audit's statistics: normalised PMI, its Poisson
 * bootstrap percentile intervals over documents, Wilson intervals for
 * shares, a seeded generator, and small text helpers (base64, registrable
 * domains, code point counts).
 *
 * The bootstrap resamples documents (captions): each replicate weights
 * every document with an independent Poisson(1) draw (the Poisson
 * bootstrap, asymptotically the same as resampling n of n with
 * replacement). Documents with no item only add to n, so their total
 * weight is drawn at once as one Poisson(n_empty) variate: the cost is in
 * the documents that mention something, not in the corpus size.
 */
#include "audit_int.h"

#include <arpa/inet.h>
#include <libpsl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double aud_npmi(double nxy, double nx, double ny, double n)
{
    if (n <= 0 || nx <= 0 || ny <= 0)
        return NAN;
    if (nxy <= 0)
        return -1.0;
    double pxy = nxy / n, px = nx / n, py = ny / n;
    if (pxy >= 1.0)
        return 1.0;
    return log(pxy / (px * py)) / -log(pxy);
}

void aud_wilson(double k, double n, double *lo, double *hi)
{
    const double z = 1.959963984540054;
    if (n <= 0) {
        *lo = *hi = NAN;
        return;
    }
    double p = k / n, z2 = z * z;
    double den = 1 + z2 / n;
    double c = (p + z2 / (2 * n)) / den;
    double h = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den;
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

void aud_rng_seed(aud_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = wp_splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t aud_rng_next(aud_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double aud_rng_uniform(aud_rng *r)
{
    return (double)(aud_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t aud_rng_poisson(aud_rng *r, double lambda)
{
    if (lambda <= 0)
        return 0;
    if (lambda < 30) {
        /* inversion by sequential search */
        double p = exp(-lambda), f = p, u = aud_rng_uniform(r);
        uint32_t k = 0;
        while (u > f && k < 1000) {
            k++;
            p *= lambda / k;
            f += p;
        }
        return k;
    }
    /* Box-Muller normal, rounded */
    double u1 = aud_rng_uniform(r), u2 = aud_rng_uniform(r);
    double z = sqrt(-2 * log(u1 > 0 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
    double v = floor(lambda + sqrt(lambda) * z + 0.5);
    return v < 0 ? 0 : (uint32_t)v;
}

/* ---- co-occurrences ----------------------------------------------------- */

struct aud_cooc {
    int nx, ny;
    int64_t docs, empty;
    int64_t *cx, *cy, *cxy; /* point counts */
    /* documents with any item: items[off[d] .. off[d+1]), x items first
     * (nxs[d] of them) then y items */
    uint16_t *items;
    uint8_t *nxs;
    uint32_t *off;
    uint32_t *ids; /* document number (order of aud_cooc_add) of each stored doc */
    size_t nitems, citems, ndocs, cdocs;
};

aud_cooc *aud_cooc_new(int nx, int ny)
{
    aud_cooc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->nx = nx;
    c->ny = ny;
    c->cx = calloc((size_t)nx + 1, sizeof *c->cx);
    c->cy = calloc((size_t)ny + 1, sizeof *c->cy);
    c->cxy = calloc((size_t)nx * ny + 1, sizeof *c->cxy);
    c->off = malloc(sizeof *c->off);
    if (!c->cx || !c->cy || !c->cxy || !c->off) {
        aud_cooc_free(c);
        return NULL;
    }
    c->off[0] = 0;
    return c;
}

void aud_cooc_free(aud_cooc *c)
{
    if (c == NULL)
        return;
    free(c->cx);
    free(c->cy);
    free(c->cxy);
    free(c->items);
    free(c->nxs);
    free(c->off);
    free(c->ids);
    free(c);
}

int64_t aud_cooc_docs(const aud_cooc *c)
{
    return c->docs;
}
int64_t aud_cooc_nx(const aud_cooc *c, int x)
{
    return x >= 0 && x < c->nx ? c->cx[x] : 0;
}
int64_t aud_cooc_ny(const aud_cooc *c, int y)
{
    return y >= 0 && y < c->ny ? c->cy[y] : 0;
}

int aud_cooc_add(aud_cooc *c, const uint16_t *xs, int nxs, const uint16_t *ys, int nys)
{
    c->docs++;
    if (nxs + nys == 0) {
        c->empty++;
        return 0;
    }
    if (nxs > 255)
        nxs = 255;
    if (c->ndocs + 1 >= c->cdocs) {
        size_t nc = c->cdocs ? 2 * c->cdocs : 1024;
        uint8_t *nn = realloc(c->nxs, nc);
        if (nn == NULL)
            return WP_ENOMEM;
        c->nxs = nn;
        uint32_t *ni = realloc(c->ids, nc * sizeof *ni);
        if (ni == NULL)
            return WP_ENOMEM;
        c->ids = ni;
        uint32_t *no = realloc(c->off, (nc + 1) * sizeof *no);
        if (no == NULL)
            return WP_ENOMEM;
        c->off = no;
        c->cdocs = nc;
    }
    if (c->nitems + (size_t)nxs + (size_t)nys > c->citems) {
        size_t nc = c->citems ? 2 * c->citems : 4096;
        while (nc < c->nitems + (size_t)nxs + (size_t)nys)
            nc *= 2;
        uint16_t *ni = realloc(c->items, nc * sizeof *ni);
        if (ni == NULL)
            return WP_ENOMEM;
        c->items = ni;
        c->citems = nc;
    }
    for (int i = 0; i < nxs; i++) {
        c->items[c->nitems++] = xs[i];
        c->cx[xs[i]]++;
    }
    for (int j = 0; j < nys; j++) {
        c->items[c->nitems++] = ys[j];
        c->cy[ys[j]]++;
    }
    for (int i = 0; i < nxs; i++)
        for (int j = 0; j < nys; j++)
            c->cxy[(size_t)xs[i] * c->ny + ys[j]]++;
    c->nxs[c->ndocs] = (uint8_t)nxs;
    c->ids[c->ndocs] = (uint32_t)(c->docs - 1);
    c->off[++c->ndocs] = (uint32_t)c->nitems;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n) by linear interpolation (numpy's
 * default). */
static double quantile(const double *v, int n, double q)
{
    if (n <= 0)
        return NAN;
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* Poisson(1) weights from 64-bit hashes: P(W <= k) scaled to 2^64. */
static uint64_t pois1_cdf[24];
static int pois1_ready;

static void pois1_init(void)
{
    double p = exp(-1.0), f = 0;
    for (int k = 0; k < 24; k++) {
        f += p;
        p /= (k + 1);
        pois1_cdf[k] = f >= 1.0 ? UINT64_MAX : (uint64_t)(f * 18446744073709551616.0);
    }
    pois1_cdf[23] = UINT64_MAX;
    pois1_ready = 1;
}

static uint32_t pois1(uint64_t u)
{
    uint32_t k = 0;
    while (u > pois1_cdf[k])
        k++;
    return k;
}

/* The weight of document id in replicate b: a hash, so that every table
 * built from the same documents resamples them alike, and replicates can
 * run in any order on any thread with the same result. */
static uint32_t weight(uint64_t seed, int b, uint32_t id)
{
    return pois1(
        wp_mix64(seed ^ wp_mix64(((uint64_t)(uint32_t)b << 32 | id) + 0x9e3779b97f4a7c15ULL)));
}

int aud_cooc_npmi_many(const aud_cooc *const *cs, int nt, int B, uint64_t seed, aud_npmi_out *out,
                       wp_err *err)
{
    double **reps = calloc((size_t)nt + 1, sizeof *reps);
    uint32_t maxid = 0;
    size_t maxcells = 1;
    int rc = 0, fail = 0;

    if (!pois1_ready)
        pois1_init();
    memset(out, 0, (size_t)nt * sizeof *out);
    if (reps == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (int t = 0; t < nt; t++) {
        const aud_cooc *c = cs[t];
        size_t cells = (size_t)c->nx * c->ny;
        out[t].npmi = calloc(cells + 1, sizeof *out[t].npmi);
        out[t].lo = calloc(cells + 1, sizeof *out[t].lo);
        out[t].hi = calloc(cells + 1, sizeof *out[t].hi);
        out[t].count = calloc(cells + 1, sizeof *out[t].count);
        reps[t] = malloc((cells + 1) * (size_t)(B > 0 ? B : 1) * sizeof **reps);
        if (!out[t].npmi || !out[t].lo || !out[t].hi || !out[t].count || !reps[t]) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory for %zu x %d bootstrap cells", cells, B);
            goto out;
        }
        for (size_t k = 0; k < cells; k++) {
            int x = (int)(k / (size_t)c->ny), y = (int)(k % (size_t)c->ny);
            out[t].npmi[k] =
                aud_npmi((double)c->cxy[k], (double)c->cx[x], (double)c->cy[y], (double)c->docs);
            out[t].count[k] = c->cxy[k];
        }
        if (c->docs > (int64_t)maxid)
            maxid = (uint32_t)c->docs;
        if (cells > maxcells)
            maxcells = cells;
    }
#pragma omp parallel reduction(| : fail)
    {
        /* per replicate, each document's weight is drawn once and shared by
         * every table that holds it (255: not drawn yet) */
        uint8_t *wcache = malloc((size_t)maxid + 1);
        double *wx = malloc(AUD_GROUPS_MAX * sizeof *wx), *wy = malloc(AUD_GROUPS_MAX * sizeof *wy);
        double *wxy = malloc(maxcells * sizeof *wxy);
        if (!wcache || !wx || !wy || !wxy)
            fail = 1;
#pragma omp for schedule(dynamic, 2)
        for (int b = 0; b < B; b++) {
            if (!wcache || !wx || !wy || !wxy)
                continue;
            memset(wcache, 255, (size_t)maxid + 1);
            for (int t = 0; t < nt; t++) {
                const aud_cooc *c = cs[t];
                size_t cells = (size_t)c->nx * c->ny;
                aud_rng r;
                aud_rng_seed(&r, seed ^ wp_mix64(((uint64_t)b << 8 | (uint64_t)t) + 1));
                /* documents with no item: their total weight in one draw */
                double n = (double)aud_rng_poisson(&r, (double)c->empty);
                memset(wx, 0, (size_t)c->nx * sizeof *wx);
                memset(wy, 0, (size_t)c->ny * sizeof *wy);
                memset(wxy, 0, cells * sizeof *wxy);
                for (size_t d = 0; d < c->ndocs; d++) {
                    uint32_t id = c->ids[d], w = wcache[id];
                    if (w == 255) {
                        w = weight(seed, b, id);
                        wcache[id] = (uint8_t)(w > 254 ? 254 : w);
                    }
                    if (w == 0)
                        continue;
                    const uint16_t *it = c->items + c->off[d];
                    int nxs = c->nxs[d], nys = (int)(c->off[d + 1] - c->off[d]) - nxs;
                    n += w;
                    for (int i = 0; i < nxs; i++) {
                        wx[it[i]] += w;
                        double *row = wxy + (size_t)it[i] * c->ny;
                        for (int j = 0; j < nys; j++)
                            row[it[nxs + j]] += w;
                    }
                    for (int j = 0; j < nys; j++)
                        wy[it[nxs + j]] += w;
                }
                for (size_t k = 0; k < cells; k++) {
                    int x = (int)(k / (size_t)c->ny), y = (int)(k % (size_t)c->ny);
                    reps[t][k * (size_t)B + (size_t)b] = aud_npmi(wxy[k], wx[x], wy[y], n);
                }
            }
        }
        free(wcache);
        free(wx);
        free(wy);
        free(wxy);
    }
    if (fail) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for the bootstrap");
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        size_t cells = (size_t)cs[t]->nx * cs[t]->ny;
        for (size_t k = 0; k < cells; k++) {
            double *v = reps[t] + k * (size_t)B;
            int m = 0;
            for (int b = 0; b < B; b++)
                if (!isnan(v[b]))
                    v[m++] = v[b];
            qsort(v, (size_t)m, sizeof *v, cmp_double);
            out[t].lo[k] = quantile(v, m, 0.025);
            out[t].hi[k] = quantile(v, m, 0.975);
        }
    }
out:
    for (int t = 0; t < nt; t++)
        free(reps[t]);
    free(reps);
    if (rc != 0)
        aud_npmi_out_free(out, nt);
    return rc;
}

void aud_npmi_out_free(aud_npmi_out *o, int n)
{
    for (int t = 0; t < n; t++) {
        free(o[t].npmi);
        free(o[t].lo);
        free(o[t].hi);
        free(o[t].count);
        memset(&o[t], 0, sizeof o[t]);
    }
}

int aud_cooc_npmi(const aud_cooc *c, int B, uint64_t seed, double **npmi, double **lo, double **hi,
                  int64_t **count, wp_err *err)
{
    aud_npmi_out o;
    int rc = aud_cooc_npmi_many(&c, 1, B, seed, &o, err);
    if (rc != 0)
        return rc;
    *npmi = o.npmi;
    *lo = o.lo;
    *hi = o.hi;
    if (count)
        *count = o.count;
    else
        free(o.count);
    return 0;
}

/* ---- text helpers ------------------------------------------------------- */

int aud_base64(const void *p, size_t n, wp_buf *out)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *s = p;
    if (wp_buf_reserve(out, (n + 2) / 3 * 4 + 1) != 0)
        return WP_ENOMEM;
    out->data[out->len] = '\0';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {tb[v >> 18], tb[(v >> 12) & 63], i + 1 < n ? tb[(v >> 6) & 63] : '=',
                     i + 2 < n ? tb[v & 63] : '='};
        wp_buf_append(out, q, 4);
    }
    return 0;
}

void aud_url_domain(const char *url, char *out, size_t cap)
{
    char host[256];
    const char *p, *e;
    size_t n = 0;
    snprintf(out, cap, "(none)");
    if (url == NULL)
        return;
    if (strncmp(url, "file:", 5) == 0) {
        snprintf(out, cap, "(local file)");
        return;
    }
    p = strstr(url, "://");
    if (p == NULL)
        return;
    p += 3;
    e = p + strcspn(p, "/?#");
    /* userinfo */
    for (const char *a = p; a < e; a++)
        if (*a == '@')
            p = a + 1;
    if (p < e && *p == '[') { /* IPv6 literal */
        const char *rb = memchr(p, ']', (size_t)(e - p));
        if (rb != NULL)
            e = rb + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon != NULL)
            e = colon;
    }
    while (p < e && n + 1 < sizeof host) {
        char c = *p++;
        host[n++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    while (n > 0 && host[n - 1] == '.')
        n--;
    host[n] = '\0';
    if (n == 0)
        return;
    const char *rd = NULL;
    const psl_ctx_t *psl = psl_builtin();
    unsigned char a4[4];
    if (psl != NULL && host[0] != '[' && inet_pton(AF_INET, host, a4) != 1)
        rd = psl_registrable_domain(psl, host);
    snprintf(out, cap, "%s", rd ? rd : host);
}

int64_t aud_utf8_chars(const char *s, size_t n)
{
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}
