/*
 * dedup/mih_int.h: what the multi-index hashing files share: the growable
 * pair list and the block comparison, compiled once portably (mih.c) and
 * once with AVX2 + POPCNT (mih_avx2.c), chosen at run time.
 */
#ifndef DD_MIH_INT_H
#define DD_MIH_INT_H

#include "dedup/dedup.h"

typedef struct dd_pairvec {
    dd_pair *p;
    size_t len, cap;
    int oom;
} dd_pairvec;

/* Appends one pair (sets oom instead when out of memory). */
void dd_pairvec_push(dd_pairvec *v, uint32_t i, uint32_t j, uint32_t dist);

/* Compares every hash of block A with every hash of block B (same != 0:
 * A is B, each unordered pair once) and appends the pairs within radius r
 * that no earlier chunk (chunks 0..chunk-1, 16 bits each) already finds,
 * i.e. whose every earlier chunk differs in more than s bits. */
typedef void (*dd_block_fn)(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                            const uint32_t *ib, size_t nb, int same, int r, int s, int chunk,
                            dd_pairvec *out);
void dd_mih_block_c(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                    const uint32_t *ib, size_t nb, int same, int r, int s, int chunk,
                    dd_pairvec *out);
void dd_mih_block_avx2(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                       const uint32_t *ib, size_t nb, int same, int r, int s, int chunk,
                       dd_pairvec *out);

/* The body both builds compile. */
static inline void dd_mih_block_body(const uint64_t *ha, const uint32_t *ia, size_t na,
                                     const uint64_t *hb, const uint32_t *ib, size_t nb, int same,
                                     int r, int s, int chunk, dd_pairvec *out)
{
    for (size_t a = 0; a < na; a++) {
        uint64_t x = ha[a];
        for (size_t b = same ? a + 1 : 0; b < nb; b++) {
            uint64_t d = x ^ hb[b];
            int dist = __builtin_popcountll(d);
            if (dist > r)
                continue;
            int earlier = 0;
            for (int c = 0; c < chunk && !earlier; c++)
                earlier = __builtin_popcountll((d >> (16 * c)) & 0xffff) <= s;
            if (earlier)
                continue;
            uint32_t i = ia[a], j = ib[b];
            dd_pairvec_push(out, i < j ? i : j, i < j ? j : i, (uint32_t)dist);
        }
    }
}

#endif
