/*
 * tests/unit/test_dedup.c: the dedup library without a catalog: the
 * multi-index hashing join against brute force on 200k random hashes with
 * planted near pairs (radius 0..10 with 4 substrings, 0..8 with 3), connected components, spherical
 * k-means against a plain reference implementation (objective within 1%),
 * SemDeDup dropping exactly the planted near copies, the float16 .npy
 * reader, and the perceptual hash of gray and RGB forms of one image.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dedup/dedup.h"
#include "dedup/mih_int.h"
#include "image/image.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

/* ---- multi-index hashing -------------------------------------------- */

#define NH      200000
#define RMAX    10
#define PLANTED 3000

typedef struct bf_pair {
    uint32_t i, j, d;
} bf_pair;

/* Every pair within RMAX by comparing all pairs (the reference). */
#if defined(__x86_64__)
__attribute__((target("popcnt")))
#endif
static size_t
brute_force(const uint64_t *h, size_t n, bf_pair *out, size_t cap)
{
    size_t m = 0;
#pragma omp parallel for schedule(dynamic, 256)
    for (size_t i = 0; i < n; i++) {
        uint64_t x = h[i];
        for (size_t j = i + 1; j < n; j++) {
            int d = __builtin_popcountll(x ^ h[j]);
            if (d <= RMAX) {
#pragma omp critical
                {
                    if (m < cap)
                        out[m] = (bf_pair){(uint32_t)i, (uint32_t)j, (uint32_t)d};
                    m++;
                }
            }
        }
    }
    return m;
}

static int cmp_bf(const void *a, const void *b)
{
    const bf_pair *x = a, *y = b;
    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static void test_mih_equals_brute_force(void **state)
{
    (void)state;
    uint64_t *h = malloc(NH * sizeof *h);
    size_t cap = 100000;
    bf_pair *bf = malloc(cap * sizeof *bf);
    assert_non_null(h);
    assert_non_null(bf);
    rng_state = 12345;
    for (size_t i = 0; i < NH; i++)
        h[i] = wp_splitmix64(&rng_state);
    /* planted near copies: k = 0..12 flipped bits, some chained so that
     * components have more than two members */
    for (int p = 0; p < PLANTED; p++) {
        size_t src = wp_splitmix64(&rng_state) % NH, dst = wp_splitmix64(&rng_state) % NH;
        int k = (int)(wp_splitmix64(&rng_state) % 13);
        uint64_t v = h[src];
        for (int b = 0; b < k; b++)
            v ^= (uint64_t)1 << (wp_splitmix64(&rng_state) % 64);
        h[dst] = v;
    }
    size_t nbf = brute_force(h, NH, bf, cap);
    assert_true(nbf < cap);
    qsort(bf, nbf, sizeof *bf, cmp_bf);
    size_t seen_at_max = 0;
    /* the automatic cut (4 substrings at this size), then 3 substrings */
    for (int q = 0; q <= RMAX + 9; q++) {
        int r = q <= RMAX ? q : q - RMAX - 1, cut = q <= RMAX ? 0 : 3;
        dd_pair *pairs = NULL;
        size_t np = 0, want = 0, k = 0;
        wp_err err = {0};
        if (cut)
            assert_int_equal(dd_mih_join_cut(h, NH, r, cut, &pairs, &np, &err), 0);
        else
            assert_int_equal(dd_mih_join(h, NH, r, &pairs, &np, &err), 0);
        for (size_t q = 0; q < nbf; q++) {
            if ((int)bf[q].d > r)
                continue;
            assert_true(k < np);
            assert_int_equal(pairs[k].i, bf[q].i);
            assert_int_equal(pairs[k].j, bf[q].j);
            assert_int_equal(pairs[k].dist, bf[q].d);
            k++;
            want++;
        }
        assert_int_equal(np, want);
        if (q == RMAX)
            seen_at_max = np;
        free(pairs);
    }
    /* the planted pairs are there, and a few random ones too */
    assert_true(seen_at_max > PLANTED / 2);
    free(h);
    free(bf);
}

static void test_mih_edge_cases(void **state)
{
    (void)state;
    uint64_t h[4] = {0, 0, ~0ULL, 1};
    dd_pair *p = NULL;
    size_t n = 0;
    wp_err err = {0};
    assert_int_equal(dd_mih_join(h, 4, 0, &p, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].i, 0);
    assert_int_equal(p[0].j, 1);
    free(p);
    assert_int_equal(dd_mih_join(h, 4, 64, &p, &n, &err), WP_EINVAL);
    assert_int_equal(dd_mih_join(h, 1, 3, &p, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(p);
    /* radius 32 crosses every substring's sub-radius of 8 */
    assert_int_equal(dd_mih_join(h, 4, 32, &p, &n, &err), 0);
    assert_int_equal(n, 3); /* (0,1) (0,3) (1,3) */
    free(p);
}

static void test_components(void **state)
{
    (void)state;
    dd_pair p[] = {{5, 7, 0}, {1, 5, 0}, {2, 3, 0}, {7, 8, 0}};
    uint32_t comp[10];
    dd_components(10, p, 4, comp);
    uint32_t want[10] = {0, 1, 2, 2, 4, 1, 6, 1, 1, 9};
    for (int i = 0; i < 10; i++)
        assert_int_equal(comp[i], want[i]);
}

/* ---- k-means and SemDeDup ------------------------------------------- */

static void normalize(float *v, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += (double)v[j] * v[j];
    for (int j = 0; j < d; j++)
        v[j] = (float)(v[j] / sqrt(s));
}

/* n points around k random unit centres: centre + noise of norm ~spread */
static float *clusters(int n, int d, int k, double spread, float *centres, int *label)
{
    float *X = malloc((size_t)n * d * sizeof *X);
    assert_non_null(X);
    for (int c = 0; c < k; c++) {
        for (int j = 0; j < d; j++)
            centres[c * d + j] = (float)tl_gauss(&rng_state);
        normalize(centres + c * d, d);
    }
    for (int i = 0; i < n; i++) {
        int c = i % k;
        label[i] = c;
        for (int j = 0; j < d; j++)
            X[(size_t)i * d + j] =
                centres[c * d + j] + (float)(spread * tl_gauss(&rng_state) / sqrt(d));
        normalize(X + (size_t)i * d, d);
    }
    return X;
}

/* A plain spherical k-means, loops only, double sums: the reference. */
static double reference_kmeans(const float *X, int n, int d, int k, int iters, const float *init)
{
    double *C = malloc((size_t)k * d * sizeof *C), *S = malloc((size_t)k * d * sizeof *S);
    int *a = malloc((size_t)n * sizeof *a);
    double obj = 0;
    for (int q = 0; q < k * d; q++)
        C[q] = init[q];
    for (int it = 0; it <= iters; it++) {
        obj = 0;
        for (int i = 0; i < n; i++) {
            double best = -2;
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int j = 0; j < d; j++)
                    s += X[(size_t)i * d + j] * C[c * d + j];
                if (s > best) {
                    best = s;
                    a[i] = c;
                }
            }
            obj += 1 - best;
        }
        if (it == iters)
            break;
        memset(S, 0, (size_t)k * d * sizeof *S);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                S[a[i] * d + j] += X[(size_t)i * d + j];
        for (int c = 0; c < k; c++) {
            double nn = 0;
            for (int j = 0; j < d; j++)
                nn += S[c * d + j] * S[c * d + j];
            if (nn > 0)
                for (int j = 0; j < d; j++)
                    C[c * d + j] = S[c * d + j] / sqrt(nn);
        }
    }
    free(C);
    free(S);
    free(a);
    return obj;
}

static void test_kmeans_matches_reference(void **state)
{
    (void)state;
    int n = 4000, d = 48, k = 16, iters = 10;
    float *centres = malloc((size_t)k * d * sizeof *centres), *init, *C;
    int *label = malloc((size_t)n * sizeof *label);
    int32_t *assign = malloc((size_t)n * sizeof *assign);
    rng_state = 777;
    /* overlapping clusters (spread 1.5): the iterations matter */
    float *X = clusters(n, d, k, 1.5, centres, label);
    init = malloc((size_t)k * d * sizeof *init);
    C = malloc((size_t)k * d * sizeof *C);
    for (int c = 0; c < k; c++)
        memcpy(init + c * d, X + (size_t)(wp_splitmix64(&rng_state) % n) * d,
               (size_t)d * sizeof *init);
    double obj = 0, ref = reference_kmeans(X, n, d, k, iters, init);
    wp_err err = {0};
    assert_int_equal(dd_kmeans(X, n, d, k, iters, 1, init, C, assign, &obj, &err), 0);
    printf("k-means objective %.4f, reference %.4f\n", obj, ref);
    assert_true(fabs(obj - ref) <= 0.01 * ref);
    /* and the rounds did lower it from the start */
    double obj0 = reference_kmeans(X, n, d, k, 0, init);
    assert_true(obj < obj0);
    for (int i = 0; i < n; i++)
        assert_true(assign[i] >= 0 && assign[i] < k);
    assert_int_equal(dd_kmeans(X, n, d, 0, iters, 1, NULL, C, assign, &obj, &err), WP_EINVAL);
    free(centres);
    free(label);
    free(assign);
    free(X);
    free(init);
    free(C);
}

static void test_semdedup_drops_planted_copies(void **state)
{
    (void)state;
    int base = 1000, d = 64, k = 10, ncopy = 40, n = base + ncopy;
    float *centres = malloc((size_t)k * d * sizeof *centres);
    int *label = malloc((size_t)n * sizeof *label);
    int *orig = malloc((size_t)n * sizeof *orig);
    rng_state = 4242;
    float *X0 = clusters(base, d, k, 1.0, centres, label);
    float *X = malloc((size_t)n * d * sizeof *X);
    memcpy(X, X0, (size_t)base * d * sizeof *X);
    /* copies: the original nudged a little towards its centre (so it is
     * visited after the original) with a little noise: cosine > 0.99;
     * distinct originals (two copies of one would be 0.9999 alike) */
    for (int q = 0; q < ncopy; q++) {
        int src = q * (base / ncopy) + (int)(wp_splitmix64(&rng_state) % (base / ncopy)),
            row = base + q;
        orig[row] = src;
        label[row] = label[src];
        for (int j = 0; j < d; j++)
            X[(size_t)row * d + j] = X[(size_t)src * d + j] + 0.05f * centres[label[src] * d + j] +
                                     (float)(0.01 * tl_gauss(&rng_state) / sqrt(d));
        normalize(X + (size_t)row * d, d);
    }
    float *C = malloc((size_t)k * d * sizeof *C);
    int32_t *assign = malloc((size_t)n * sizeof *assign);
    double eps[3] = {0.05, 0.0001, 0.5};
    int64_t *keep_of = malloc((size_t)3 * n * sizeof *keep_of);
    wp_err err = {0};

    /* centroids started at the planted centres: the copies are exactly
     * the rows dropped, each pointing at its original */
    assert_int_equal(dd_kmeans(X, n, d, k, 10, 1, centres, C, assign, NULL, &err), 0);
    assert_int_equal(dd_semdedup(X, n, d, C, k, assign, eps, 3, keep_of, &err), 0);
    for (int r = 0; r < n; r++) {
        if (r < base) {
            assert_int_equal(keep_of[r], -1);
        } else {
            assert_int_equal(keep_of[r], orig[r]);
        }
        assert_int_equal(keep_of[n + r], -1); /* eps 0.0001: nothing that far */
    }
    int64_t loose = 0;
    for (int r = 0; r < n; r++)
        loose += keep_of[2 * n + r] >= 0;
    assert_true(loose > ncopy); /* eps 0.5: whole neighbourhoods go */

    /* a seeded start: still one row of each planted pair, and no other */
    assert_int_equal(dd_kmeans(X, n, d, k, 10, 99, NULL, C, assign, NULL, &err), 0);
    assert_int_equal(dd_semdedup(X, n, d, C, k, assign, eps, 1, keep_of, &err), 0);
    int dropped = 0;
    for (int r = 0; r < n; r++) {
        if (keep_of[r] < 0)
            continue;
        dropped++;
        int a = r >= base ? r : (int)keep_of[r];
        assert_true(a >= base);
        assert_true(keep_of[r] == orig[a] || (r == orig[a] && keep_of[r] == a));
    }
    assert_int_equal(dropped, ncopy);
    free(centres);
    free(label);
    free(orig);
    free(X0);
    free(X);
    free(C);
    free(assign);
    free(keep_of);
}

/* ---- .npy ------------------------------------------------------------ */

static void test_phash_gray_and_rgb_agree(void **state)
{
    (void)state;
    img_image g = {0}, rgb = {0};
    uint64_t a = 0, b = 0, c = 0;
    wp_err err = {0};
    assert_int_equal(img_alloc(&g, 100, 70, 1), 0);
    assert_int_equal(img_alloc(&rgb, 100, 70, 3), 0);
    for (int y = 0; y < 70; y++)
        for (int x = 0; x < 100; x++) {
            uint8_t v = (uint8_t)((x * 3 + y * y / 7 + (x * y) % 31) & 0xff);
            g.pixels[y * g.stride + x] = v;
            memset(rgb.pixels + y * rgb.stride + 3 * x, v, 3);
        }
    assert_int_equal(dd_phash_image(&g, &a, &err), 0);
    assert_int_equal(dd_phash_image(&rgb, &b, &err), 0);
    assert_true(a == b);
    assert_int_equal(__builtin_popcountll(a), 32); /* median split: half the bits */
    /* the negative image flips every bit but the ones at the median */
    for (size_t q = 0; q < g.stride * 70; q++)
        g.pixels[q] = (uint8_t)(255 - g.pixels[q]);
    assert_int_equal(dd_phash_image(&g, &c, &err), 0);
    assert_true(dd_hamming(a, c) >= 60);
    img_free(&g);
    img_free(&rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mih_equals_brute_force),
        cmocka_unit_test(test_mih_edge_cases),
        cmocka_unit_test(test_components),
        cmocka_unit_test(test_kmeans_matches_reference),
        cmocka_unit_test(test_semdedup_drops_planted_copies),
        cmocka_unit_test(test_phash_gray_and_rgb_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
