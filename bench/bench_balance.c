/*
 * bench/bench_balance.c LIST CAPTIONS [MAX]: witpipe's side of
 * bench_balance.sh.
 *
 * Matching: loads LIST (one entry a line), builds the automaton (time,
 * memory: the automaton's own bytes and the growth of peak RSS), reads
 * CAPTIONS (one a line) into memory, matches them on one thread, then on
 * every core (OpenMP), and prints captions/s and the number of (caption,
 * entry) matches, which must equal pyahocorasick's.
 *
 * The balance draw: 10M synthetic pairs (1-3 entries each, Zipf over the
 * list, random uids) decided by bal_decide, MetaCLIP mode with t = 20000:
 * the in-memory step of witpipe balance, without catalog reads or writes.
 * It uses balance/bal_int.h (the module's own header) for that step.
 */
#include "balance/bal_int.h"
#include "balance/balance.h"
#include "common/wp.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* Returns wall seconds; *cpu gets the process CPU seconds used. */
static double match_all(const qry_matcher *m, char **caps, size_t *lens, size_t n, int threads,
                        long long *matches, double *cpu)
{
    double t0 = wp_now(), c0 = wp_cpu_time();
    long long total = 0;
    int bad = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total) reduction(| : bad)
    {
        qry_scratch *s = qry_scratch_new();
        if (s == NULL)
            bad = 1;
#pragma omp for schedule(dynamic, 1024)
        for (size_t i = 0; i < n; i++) {
            const uint32_t *ids;
            int k = s ? qry_match(m, caps[i], lens[i], s, &ids) : -1;
            if (k < 0)
                bad = 1;
            else
                total += k;
        }
        qry_scratch_free(s);
    }
    if (bad) {
        fprintf(stderr, "bench_balance: out of memory\n");
        exit(1);
    }
    *matches = total;
    *cpu = wp_cpu_time() - c0;
    return wp_now() - t0;
}

static int bench_draw(size_t npairs, size_t nentries)
{
    bal_pairs P;
    bal_result R;
    bal_opts o;
    wp_err err = {0};
    double t0, el, c0, cpu;
    size_t kept = 0;
    memset(&P, 0, sizeof P);
    P.n = npairs;
    P.nentries = nentries;
    P.pair_id = malloc(npairs * sizeof *P.pair_id);
    P.image_id = malloc(npairs * sizeof *P.image_id);
    P.uid = malloc(npairs * WP_UID_LEN);
    P.lang = calloc(npairs, sizeof *P.lang);
    P.moff = malloc((npairs + 1) * sizeof *P.moff);
    P.m = malloc(npairs * 3 * sizeof *P.m);
    if (!P.pair_id || !P.image_id || !P.uid || !P.lang || !P.moff || !P.m) {
        fprintf(stderr, "bench_balance: out of memory\n");
        return 1;
    }
    P.moff[0] = 0;
    for (size_t i = 0; i < npairs; i++) {
        int k = 1 + (int)(rnd() % 3);
        P.pair_id[i] = (int64_t)i + 1;
        P.image_id[i] = (int64_t)i + 1;
        for (int b = 0; b < WP_UID_LEN; b += 8) {
            uint64_t r = rnd();
            memcpy(P.uid + i * WP_UID_LEN + b, &r, 8);
        }
        for (int j = 0; j < k; j++) {
            /* Zipf-like: entry = floor(N^u) - 1 */
            double u = (double)(rnd() >> 11) / 9007199254740992.0;
            size_t e = (size_t)pow((double)nentries, u) - 1;
            P.m[P.nm++] = (uint32_t)(e < nentries ? e : nentries - 1);
        }
        /* entries of a pair are distinct and ascending, as the catalog gives them */
        for (uint64_t a = P.moff[i]; a < P.nm; a++)
            for (uint64_t b = a + 1; b < P.nm; b++)
                if (P.m[b] < P.m[a]) {
                    uint32_t t = P.m[a];
                    P.m[a] = P.m[b];
                    P.m[b] = t;
                }
        {
            uint64_t w = P.moff[i] + 1;
            for (uint64_t a = P.moff[i] + 1; a < P.nm; a++)
                if (P.m[a] != P.m[w - 1])
                    P.m[w++] = P.m[a];
            P.nm = w;
        }
        P.moff[i + 1] = P.nm;
    }
    bal_opts_init(&o);
    o.seed = 1;
    t0 = wp_now();
    c0 = wp_cpu_time();
    if (bal_decide(&P, &o, &R, &err) != 0) {
        fprintf(stderr, "bench_balance: %s\n", err.msg);
        return 1;
    }
    el = wp_now() - t0;
    cpu = wp_cpu_time() - c0;
    for (size_t i = 0; i < npairs; i++)
        kept += R.keep[i];
    printf("draw: %zu pairs, %zu matches over %zu entries, t = 20000: %.2f s wall, %.2f s CPU "
           "(%.1f M pairs/s by wall), %zu kept [target < 10 s]\n",
           npairs, P.nm, nentries, el, cpu, (double)npairs / el / 1e6, kept);
    bal_result_free(&R);
    free(P.pair_id);
    free(P.image_id);
    free(P.uid);
    free(P.lang);
    free(P.moff);
    free(P.m);
    return 0;
}

int main(int argc, char **argv)
{
    qry_list *l = NULL;
    qry_matcher *m = NULL;
    qry_load_stats st = {0};
    wp_err err = {0};
    wp_buf b = {0};
    char **caps = NULL;
    size_t *lens = NULL, n = 0, cap = 0, rss0, rss1, maxn = (size_t)-1;
    long long m1, mall;
    double t0, build, t1, tall, c1, call;
    int threads = omp_get_max_threads();

    if (argc < 3) {
        fprintf(stderr, "usage: bench_balance LIST CAPTIONS [MAX] | bench_balance --draw N E\n");
        return 2;
    }
    if (strcmp(argv[1], "--draw") == 0)
        return bench_draw((size_t)atoll(argv[2]), argc > 3 ? (size_t)atoll(argv[3]) : 500000);
    if (argc > 3)
        maxn = (size_t)atoll(argv[3]);
    if (qry_list_load(argv[1], &l, &st, &err) != 0) {
        fprintf(stderr, "bench_balance: %s\n", err.msg);
        return 1;
    }
    rss0 = wp_peak_rss_kb();
    t0 = wp_now();
    if (qry_matcher_new(l, QRY_RULE_METACLIP, 0, &m, &err) != 0) {
        fprintf(stderr, "bench_balance: %s\n", err.msg);
        return 1;
    }
    build = wp_now() - t0;
    rss1 = wp_peak_rss_kb();
    printf("automaton: %zu entries, %zu states, %.1f MB, built in %.2f s (peak RSS +%.1f MB "
           "while building) [target < 30 s, < 300 MB]\n",
           qry_list_count(l), qry_matcher_states(m), (double)qry_matcher_bytes(m) / 1e6, build,
           (double)(rss1 - rss0) / 1024.0);
    if (wp_read_file(argv[2], (size_t)1 << 36, &b, &err) != 0) {
        fprintf(stderr, "bench_balance: %s\n", err.msg);
        return 1;
    }
    for (char *p = b.data, *end = b.data + b.len; p < end && n < maxn;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            caps = realloc(caps, cap * sizeof *caps);
            lens = realloc(lens, cap * sizeof *lens);
            if (!caps || !lens) {
                fprintf(stderr, "bench_balance: out of memory\n");
                return 1;
            }
        }
        caps[n] = p;
        lens[n] = (size_t)(e - p);
        n++;
        p = nl ? nl + 1 : end;
    }
    t1 = match_all(m, caps, lens, n, 1, &m1, &c1);
    printf("match, 1 thread: %zu captions, %lld matches, %.2f s wall, %.2f s CPU: %.0f "
           "captions/s by CPU (%.0f by wall)\n",
           n, m1, t1, c1, (double)n / c1, (double)n / t1);
    tall = match_all(m, caps, lens, n, threads, &mall, &call);
    printf("match, %d threads: %zu captions, %lld matches, %.2f s wall, %.2f s CPU: %.0f "
           "captions/s by wall (%.2fx the 1-thread wall rate), %.0f per CPU second\n",
           threads, n, mall, tall, call, (double)n / tall, t1 / tall, (double)n / call);
    {
        /* the same rule with every entry in the byte automaton: why the
         * token index is used for entries padded on both sides */
        qry_matcher *ac = NULL;
        size_t nac = n < 200000 ? n : 200000;
        long long mac;
        double cac, tac;
        t0 = wp_now();
        if (qry_matcher_new(l, QRY_RULE_METACLIP, QRY_FORCE_AC, &ac, &err) != 0) {
            fprintf(stderr, "bench_balance: %s\n", err.msg);
            return 1;
        }
        build = wp_now() - t0;
        tac = match_all(ac, caps, lens, nac, 1, &mac, &cac);
        printf("byte automaton only (for comparison): %zu states, %.1f MB, built in %.2f s; 1 "
               "thread: %zu captions, %.0f captions/s by CPU (%.0f by wall)\n",
               qry_matcher_states(ac), (double)qry_matcher_bytes(ac) / 1e6, build, nac,
               (double)nac / cac, (double)nac / tac);
        qry_matcher_free(ac);
    }
    printf("RESULT %.0f %.0f %lld %.2f\n", (double)n / c1, (double)n / tall, m1, call / tall);
    free(caps);
    free(lens);
    wp_buf_free(&b);
    qry_matcher_free(m);
    qry_list_free(l);
    return m1 == mall ? 0 : 1;
}
