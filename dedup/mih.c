/*
 * dedup/mih.c: all pairs of 64-bit hashes within a Hamming radius, by
 * multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012), as a self
 * join.
 *
 * A hash is cut into m substrings (4 of 16 bits, or 3 of 21-22 bits for
 * large sets: about log2(n) bits each). Two hashes within distance r
 * differ in at most s = floor(r / m) bits in at least one substring
 * (pigeonhole). For each substring in turn the hashes are bucketed by its
 * value (a counting sort), and each bucket is compared with itself and
 * with every bucket whose value differs from it in 1..s bits (each bucket
 * pair once). Only hashes in such bucket pairs are compared, never all
 * pairs: on random hashes at r = 6 that is 232 / 2^21 of them per
 * substring with 3 substrings. A pair found through substring c is kept only when no
 * earlier substring would have found it, so each pair comes out once.
 * Bucket comparisons are independent and run on OpenMP threads, each
 * appending to its own list; the lists are merged and sorted at the end.
 */
#include "dedup/dd_int.h"
#include "dedup/mih_int.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void dd_pairvec_push(dd_pairvec *v, uint32_t i, uint32_t j, uint32_t dist)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        dd_pair *p = realloc(v->p, cap * sizeof *p);
        if (p == NULL) {
            v->oom = 1;
            return;
        }
        v->p = p;
        v->cap = cap;
    }
    v->p[v->len++] = (dd_pair){i, j, dist};
}

void dd_mih_block_c(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                    const uint32_t *ib, size_t nb, int same, int r, const dd_chunks *ch, int chunk,
                    dd_pairvec *out)
{
    dd_mih_block_body(ha, ia, na, hb, ib, nb, same, r, ch, chunk, out);
}

static dd_block_fn pick_block(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt"))
        return dd_mih_block_avx2;
#endif
    return dd_mih_block_c;
}

static int cmp_pair(const void *a, const void *b)
{
    const dd_pair *x = a, *y = b;
    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* The cut into m (3 or 4) substrings. */
static void make_chunks(int m, int radius, dd_chunks *ch)
{
    memset(ch, 0, sizeof *ch);
    if (m == 3) {
        static const int bits[3] = {21, 21, 22};
        ch->m = 3;
        for (int c = 0, at = 0; c < 3; at += bits[c++]) {
            ch->shift[c] = at;
            ch->bits[c] = bits[c];
        }
    } else {
        ch->m = 4;
        for (int c = 0; c < 4; c++) {
            ch->shift[c] = 16 * c;
            ch->bits[c] = 16;
        }
    }
    for (int c = 0; c < ch->m; c++)
        ch->mask[c] = ((uint64_t)1 << ch->bits[c]) - 1;
    ch->s = radius / ch->m;
}

/* Substrings about log2(n) bits long make buckets of a few hashes
 * (Norouzi et al.), but every non-empty bucket costs one lookup per
 * neighbour value (C(22, <= s) of them): measured, 4 substrings of 16 bits
 * win up to a few million hashes, 3 of 21-22 bits beyond (about half the
 * work at 10M), while r / 3 <= 2. */
int dd_mih_join(const uint64_t *h, size_t n, int radius, dd_pair **out, size_t *npairs, wp_err *err)
{
    int m = n >= ((size_t)1 << 22) && radius / 3 <= 2 ? 3 : 4;
    return dd_mih_join_cut(h, n, radius, m, out, npairs, err);
}

int dd_mih_join_cut(const uint64_t *h, size_t n, int radius, int m, dd_pair **out, size_t *npairs,
                    wp_err *err)
{
    dd_block_fn block = pick_block();
    dd_chunks ch;
    int nthr = omp_get_max_threads(), rc = 0;
    uint32_t *off = NULL, *ids = NULL, *masks = NULL;
    uint64_t *hs = NULL;
    dd_pairvec *vec = NULL;
    size_t total = 0, nkeys_max;

    *out = NULL;
    *npairs = 0;
    if (radius < 0 || radius > DD_RADIUS_MAX)
        return wp_err_set(err, WP_EINVAL, "radius %d is outside 0..%d", radius, DD_RADIUS_MAX);
    if (n >= UINT32_MAX)
        return wp_err_set(err, WP_EINVAL, "%zu hashes: at most %u", n, UINT32_MAX - 1);
    if (m != 3 && m != 4)
        return wp_err_set(err, WP_EINVAL, "%d substrings: 3 or 4", m);
    if (n < 2)
        return 0;
    make_chunks(m, radius, &ch);
    nkeys_max = (size_t)1 << ch.bits[ch.m - 1]; /* the last substring is the widest */
    off = malloc((nkeys_max + 1) * sizeof *off);
    masks = malloc(nkeys_max * sizeof *masks);
    ids = malloc(n * sizeof *ids);
    hs = malloc(n * sizeof *hs);
    vec = calloc((size_t)nthr, sizeof *vec);
    if (!masks || !off || !ids || !hs || !vec) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for %zu hashes", n);
        goto out;
    }

    for (int chunk = 0; chunk < ch.m; chunk++) {
        int shift = ch.shift[chunk], nmask = 0;
        uint32_t nkeys = (uint32_t)1 << ch.bits[chunk];
        uint64_t kmask = ch.mask[chunk];
        /* the neighbouring bucket values: masks of 1..s bits */
        for (uint32_t m = 1; m < nkeys; m++)
            if (__builtin_popcount(m) <= ch.s)
                masks[nmask++] = m;
        memset(off, 0, ((size_t)nkeys + 1) * sizeof *off);
        for (size_t k = 0; k < n; k++)
            off[((h[k] >> shift) & kmask) + 1]++;
        for (uint32_t k = 0; k < nkeys; k++)
            off[k + 1] += off[k];
        /* place items; off[key] walks to the bucket's end, then is shifted
         * back so that off[key] .. off[key + 1] is the bucket */
        for (size_t k = 0; k < n; k++) {
            uint32_t key = (uint32_t)((h[k] >> shift) & kmask);
            uint32_t at = off[key]++;
            hs[at] = h[k];
            ids[at] = (uint32_t)k;
        }
        memmove(off + 1, off, (size_t)nkeys * sizeof *off);
        off[0] = 0;

#pragma omp parallel for schedule(dynamic, 256) num_threads(nthr)
        for (uint32_t key = 0; key < nkeys; key++) {
            dd_pairvec *v = &vec[omp_get_thread_num()];
            uint32_t a0 = off[key], na = off[key + 1] - a0;
            if (na == 0)
                continue;
            block(hs + a0, ids + a0, na, hs + a0, ids + a0, na, 1, radius, &ch, chunk, v);
            for (int m = 0; m < nmask; m++) {
                uint32_t k2 = key ^ masks[m];
                if (k2 < key)
                    continue;
                uint32_t b0 = off[k2], nb = off[k2 + 1] - b0;
                if (nb > 0)
                    block(hs + a0, ids + a0, na, hs + b0, ids + b0, nb, 0, radius, &ch, chunk, v);
            }
        }
        for (int t = 0; t < nthr; t++)
            if (vec[t].oom) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory for the pairs found");
                goto out;
            }
    }
    for (int t = 0; t < nthr; t++)
        total += vec[t].len;
    if (total > 0) {
        dd_pair *all = malloc(total * sizeof *all);
        size_t at = 0;
        if (all == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory for %zu pairs", total);
            goto out;
        }
        for (int t = 0; t < nthr; t++) {
            if (vec[t].len)
                memcpy(all + at, vec[t].p, vec[t].len * sizeof *all);
            at += vec[t].len;
        }
        qsort(all, total, sizeof *all, cmp_pair);
        *out = all;
        *npairs = total;
    }
out:
    if (vec)
        for (int t = 0; t < nthr; t++)
            free(vec[t].p);
    free(vec);
    free(masks);
    free(off);
    free(ids);
    free(hs);
    return rc;
}

uint32_t dd_uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

void dd_uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = dd_uf_find(parent, a);
    b = dd_uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

void dd_components(size_t n, const dd_pair *pairs, size_t npairs, uint32_t *comp)
{
    /* union-find in comp itself; the smaller root wins, so each root is
     * its component's smallest index */
    for (size_t k = 0; k < n; k++)
        comp[k] = (uint32_t)k;
    for (size_t p = 0; p < npairs; p++)
        dd_uf_union(comp, pairs[p].i, pairs[p].j);
    for (size_t k = 0; k < n; k++)
        comp[k] = dd_uf_find(comp, (uint32_t)k);
}
