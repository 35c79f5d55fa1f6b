/*
 * dedup/mih_avx2.c: the multi-index hashing block comparison built with
 * AVX2 and the POPCNT instruction (the portable build calls libgcc's
 * table popcount); chosen at run time on CPUs that have both.
 */
#include "dedup/mih_int.h"

void dd_mih_block_avx2(const uint64_t *ha, const uint32_t *ia, size_t na, const uint64_t *hb,
                       const uint32_t *ib, size_t nb, int same, int r, const dd_chunks *ch,
                       int chunk, dd_pairvec *out)
{
    dd_mih_block_body(ha, ia, na, hb, ib, nb, same, r, ch, chunk, out);
}
