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

/* dd_mih_join with the hashes cut into m = 3 (21, 21, 22 bits) or 4 (16
 * bits each) substrings, whatever n is (tests reach both cuts). */
int dd_mih_join_cut(const uint64_t *h, size_t n, int radius, int m, dd_pair **out, size_t *npairs,
                    wp_err *err);

/* Appends one pair (sets oom instead when out of memory). */
void dd_pairvec_push(dd_pairvec *v, uint32_t i, uint32_t j, uint32_t dist);

/* How the 64 bits are cut: m substrings, substring c = (h >> shift[c]) &
 * mask[c]; s = radius / m, the sub-radius searched in each. */
typedef struct dd_chunks {
    int m, s;
    int shift[4], bits[4];
    uint64_t mask[4];
} dd_chunks;

/* Compares every hash of block A with every hash of block B (same != 0:
 * A is B, each unordered pair once) and appends the pairs within radius r
 * that no earlier substring (0..chunk-1) already finds, i.e. whose every
 * earlier substring differs in more than ch->s bits. */
typedef void (*dd_block_fn)(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                            const uint32_t *ib, size_t nb, int same, int r, const dd_chunks *ch,
                            int chunk, dd_pairvec *out);
void dd_mih_block_c(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                    const uint32_t *ib, size_t nb, int same, int r, const dd_chunks *ch, int chunk,
                    dd_pairvec *out);
void dd_mih_block_avx2(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                       const uint32_t *ib, size_t nb, int same, int r, const dd_chunks *ch,
                       int chunk, dd_pairvec *out);

/* The body both builds compile. */
static inline void dd_mih_block_body(const uint64_t *ha, const uint32_t *ia, size_t na,
                                     const uint64_t *hb, const uint32_t *ib, size_t nb, int same,
                                     int r, const dd_chunks *ch, int chunk, dd_pairvec *out)
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
                earlier = __builtin_popcountll((d >> ch->shift[c]) & ch->mask[c]) <= ch->s;
            if (earlier)
                continue;
            uint32_t i = ia[a], j = ib[b];
            dd_pairvec_push(out, i < j ? i : j, i < j ? j : i, (uint32_t)dist);
        }
    }
}

#endif
