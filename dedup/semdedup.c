/*
 * dedup/semdedup.c: semantic deduplication (SemDeDup, Abbas et al. 2023):
 * spherical k-means of unit embeddings, then, inside each cluster, greedy
 * pruning of rows too close to a row already kept.
 *
 * Both halves are matrix products done by kern/'s GEMM: the k-means
 * assignment is X . C^T in blocks of rows (kn_linear with the centroids
 * packed as a weight, once per round), and the pruning compares
 * a block of a cluster's rows (in visiting order) with the rows kept so far
 * and with each other, so a cluster of c rows costs about c^2 d / 2
 * multiply-adds in GEMM and c^2 / 2 comparisons, never a hand loop over
 * dimensions.
 */
#include "dedup/dedup.h"
#include "kern/kern.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define ASSIGN_BLOCK 16384      /* rows per k-means assignment product */
#define GRAM_FLOATS  (32 << 20) /* the largest piece of a cluster's Gram matrix */

static void normalize(float *v, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += (double)v[j] * v[j];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int j = 0; j < d; j++)
            v[j] *= inv;
    }
}

/* assign[r] = argmax_c X_r . C_c, best[r] = that cosine. S: scratch of
 * ASSIGN_BLOCK x k floats. The centroids are packed once (kn_pack) and
 * every block of rows multiplied with them (kn_linear): C is the "weight"
 * of a linear layer without bias. Returns 0 or WP_ENOMEM. */
static int assign_rows(const float *X, size_t n, int d, const float *C, int k, float *S,
                       int32_t *assign, float *best)
{
    kn_packed *W = kn_pack(C, k, d, KN_F32);
    if (W == NULL)
        return WP_ENOMEM;
    for (size_t r0 = 0; r0 < n; r0 += ASSIGN_BLOCK) {
        int m = (int)(n - r0 < ASSIGN_BLOCK ? n - r0 : ASSIGN_BLOCK);
        kn_linear(X + r0 * (size_t)d, d, m, W, NULL, KN_ACT_NONE, NULL, 0, S, k);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < m; i++) {
            const float *row = S + (size_t)i * k;
            int arg = 0;
            float v = row[0];
            for (int c = 1; c < k; c++)
                if (row[c] > v) {
                    v = row[c];
                    arg = c;
                }
            assign[r0 + (size_t)i] = arg;
            best[r0 + (size_t)i] = v;
        }
    }
    kn_packed_free(W);
    return 0;
}

int dd_kmeans(const float *X, size_t n, int d, int k, int iters, uint64_t seed, const float *init,
              float *C, int32_t *assign, double *objective, wp_err *err)
{
    int nthr = omp_get_max_threads(), rc = 0;
    float *S = NULL, *best = NULL, *sums = NULL;
    int64_t *cnt = NULL;
    size_t *pick = NULL;

    if (k < 1 || (size_t)k > n || d < 1)
        return wp_err_set(err, WP_EINVAL, "k-means: %d clusters of %zu rows of %d", k, n, d);
    kn_init();
    S = malloc((size_t)ASSIGN_BLOCK * k * sizeof *S);
    best = malloc(n * sizeof *best);
    sums = malloc((size_t)nthr * k * d * sizeof *sums);
    cnt = malloc((size_t)nthr * k * sizeof *cnt);
    if (!S || !best || !sums || !cnt) {
        rc = wp_err_set(err, WP_ENOMEM, "k-means: out of memory for %d x %d", k, d);
        goto out;
    }
    if (init != NULL) {
        memcpy(C, init, (size_t)k * d * sizeof *C);
    } else {
        /* k distinct rows: a partial Fisher-Yates shuffle of the indices */
        uint64_t st = seed;
        if ((pick = malloc(n * sizeof *pick)) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "k-means: out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            pick[i] = i;
        for (int c = 0; c < k; c++) {
            size_t j = (size_t)c + (size_t)(wp_splitmix64(&st) % (n - (size_t)c));
            size_t t = pick[c];
            pick[c] = pick[j];
            pick[j] = t;
            memcpy(C + (size_t)c * d, X + pick[c] * d, (size_t)d * sizeof *C);
        }
    }
    for (int it = 0; it < iters; it++) {
        if (assign_rows(X, n, d, C, k, S, assign, best) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "k-means: out of memory");
            goto out;
        }
        memset(sums, 0, (size_t)nthr * k * d * sizeof *sums);
        memset(cnt, 0, (size_t)nthr * k * sizeof *cnt);
#pragma omp parallel num_threads(nthr)
        {
            int t = omp_get_thread_num();
            float *my = sums + (size_t)t * k * d;
            int64_t *mc = cnt + (size_t)t * k;
#pragma omp for schedule(static)
            for (size_t r = 0; r < n; r++) {
                float *dst = my + (size_t)assign[r] * d;
                const float *x = X + r * d;
                for (int j = 0; j < d; j++)
                    dst[j] += x[j];
                mc[assign[r]]++;
            }
        }
        for (int t = 1; t < nthr; t++) {
            for (size_t q = 0; q < (size_t)k * d; q++)
                sums[q] += sums[(size_t)t * k * d + q];
            for (int c = 0; c < k; c++)
                cnt[c] += cnt[(size_t)t * k + c];
        }
        for (int c = 0; c < k; c++) {
            float *cc = C + (size_t)c * d;
            if (cnt[c] > 0) {
                memcpy(cc, sums + (size_t)c * d, (size_t)d * sizeof *cc);
                normalize(cc, d);
                continue;
            }
            /* empty: the row farthest from its own centroid, taken once */
            size_t far = 0;
            float v = INFINITY;
            for (size_t r = 0; r < n; r++)
                if (best[r] < v && cnt[assign[r]] > 1) {
                    v = best[r];
                    far = r;
                }
            memcpy(cc, X + far * d, (size_t)d * sizeof *cc);
            normalize(cc, d);
            if (v < INFINITY) {
                cnt[assign[far]]--;
                best[far] = INFINITY;
            }
        }
    }
    if (assign_rows(X, n, d, C, k, S, assign, best) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "k-means: out of memory");
        goto out;
    }
    if (objective != NULL) {
        double obj = 0;
        for (size_t r = 0; r < n; r++)
            obj += 1.0 - best[r];
        *objective = obj;
    }
out:
    free(S);
    free(best);
    free(sums);
    free(cnt);
    free(pick);
    return rc;
}

typedef struct member {
    float cos; /* to the centroid */
    uint32_t row;
} member;

static int cmp_member(const void *a, const void *b)
{
    const member *x = a, *y = b;
    if (x->cos != y->cos)
        return x->cos < y->cos ? -1 : 1; /* farthest (lowest cosine) first */
    return (x->row > y->row) - (x->row < y->row);
}

int dd_semdedup(const float *X, size_t n, int d, const float *C, int k, const int32_t *assign,
                const double *eps, int neps, int64_t *keep_of, wp_err *err)
{
    size_t *start = NULL, maxc = 0;
    member *mem = NULL;
    float *M = NULL, *G = NULL;
    uint8_t *kept = NULL;
    int rc = 0;

    kn_init();
    start = calloc((size_t)k + 1, sizeof *start);
    mem = malloc((n ? n : 1) * sizeof *mem);
    if (!start || !mem) {
        rc = wp_err_set(err, WP_ENOMEM, "semdedup: out of memory");
        goto out;
    }
    /* members grouped by cluster (a counting sort), then ordered */
    for (size_t r = 0; r < n; r++)
        start[assign[r] + 1]++;
    for (int c = 0; c < k; c++) {
        if (start[c + 1] > maxc)
            maxc = start[c + 1];
        start[c + 1] += start[c];
    }
    {
        size_t *fill = malloc((size_t)k * sizeof *fill);
        if (fill == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "semdedup: out of memory");
            goto out;
        }
        memcpy(fill, start, (size_t)k * sizeof *fill);
        for (size_t r = 0; r < n; r++) {
            const float *x = X + r * d, *cc = C + (size_t)assign[r] * d;
            float s = 0;
            for (int j = 0; j < d; j++)
                s += x[j] * cc[j];
            mem[fill[assign[r]]++] = (member){s, (uint32_t)r};
        }
        free(fill);
    }
    /* rows per band of the cluster's Gram matrix: at most GRAM_FLOATS */
    size_t band = maxc ? GRAM_FLOATS / maxc : 1;
    if (band > maxc)
        band = maxc;
    if (band < 64)
        band = 64;
    M = malloc((maxc ? maxc : 1) * d * sizeof *M);
    G = malloc(band * (maxc ? maxc : 1) * sizeof *G);
    kept = malloc((size_t)neps * (maxc ? maxc : 1));
    if (!M || !G || !kept) {
        rc = wp_err_set(err, WP_ENOMEM, "semdedup: out of memory for a cluster of %zu", maxc);
        goto out;
    }
    for (int c = 0; c < k; c++) {
        member *cm = mem + start[c];
        size_t cn = start[c + 1] - start[c];
        qsort(cm, cn, sizeof *cm, cmp_member);
        for (size_t i = 0; i < cn; i++)
            memcpy(M + i * d, X + (size_t)cm[i].row * d, (size_t)d * sizeof *M);
        /* rows r0 .. r0 + rb against rows 0 .. r0 + rb (those before them
         * in visiting order, and the band itself) in one product */
        for (size_t r0 = 0; r0 < cn; r0 += band) {
            int rb = (int)(cn - r0 < band ? cn - r0 : band);
            int w = (int)r0 + rb;
            kn_gemm_nt(rb, w, d, 1.0f, M + r0 * d, d, M, d, 0.0f, G, w);
            for (int e = 0; e < neps; e++) {
                float thr = (float)(1.0 - eps[e]);
                uint8_t *ke = kept + (size_t)e * maxc;
                int64_t *ko = keep_of + (size_t)e * n;
                for (int i = 0; i < rb; i++) {
                    size_t at = r0 + (size_t)i;
                    const float *g = G + (size_t)i * w;
                    float v = -INFINITY;
                    size_t arg = 0;
                    for (size_t j = 0; j < at; j++)
                        if (ke[j] && g[j] > v) {
                            v = g[j];
                            arg = j;
                        }
                    ke[at] = !(v > thr);
                    ko[cm[at].row] = ke[at] ? -1 : (int64_t)cm[arg].row;
                }
            }
        }
    }
out:
    free(start);
    free(mem);
    free(M);
    free(G);
    free(kept);
    return rc;
}
