/*
 * kern/kern_x3_avx512.c: the AVX-512 body of split bf16's (KN_BF16X3) A
 * packing for kern/kern.c: 16 activations per step, each split into hi =
 * bf16(a) and lo = bf16(a - hi) (nearest even, NaNs kept quiet, lo zero
 * where hi is not finite: kern.c's x3_triple bit for bit) and written as
 * the triples (hi, hi, lo), 48 bf16 in a row (one 64-byte and one 32-byte
 * store after a pack and a word permute). Without it the packing of the tripled A
 * runs scalar and costs more than the product itself on the AMX tiles.
 * Compiled with the AVX-512 F/BW/VL/DQ/BF16 flags (the Makefile's
 * %_avx512.o rule); called only on the avx512-bf16 and amx-bf16 paths. With
 * KN_EMULATE_AVX512 it runs on SIMDe (tests/kern_avx512_emul.sh).
 */
#include "kern/kern_int.h"

#ifdef KN_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

/* bf16 bits (nearest even, NaNs quiet) of 16 floats, in the low halves. */
static inline __m512i x3_bf16(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);
    __m512i top = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                 _mm512_and_si512(top, _mm512_set1_epi32(1)));
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
}

void kn_avx512_x3_body(const float *a, int groups, uint16_t *dst)
{
    /* packus puts, per 128-bit lane l, hi of values 4l..4l+3 in words
     * 8l..8l+3 and their lo in words 8l+4..8l+7; output word e takes value
     * e / 3, its hi for e % 3 < 2, its lo for e % 3 == 2 */
    uint16_t i0[32], i1[32] = {0};
    for (int e = 0; e < 48; e++) {
        int v = e / 3;
        uint16_t w = (uint16_t)(8 * (v / 4) + (e % 3 == 2 ? 4 : 0) + v % 4);
        if (e < 32)
            i0[e] = w;
        else
            i1[e - 32] = w;
    }
    const __m512i idx0 = _mm512_loadu_si512(i0), idx1 = _mm512_loadu_si512(i1);
    const __m512i expo = _mm512_set1_epi32(0x7f80);
    for (int g = 0; g < groups; g++, a += 16, dst += 48) {
        __m512 v = _mm512_loadu_ps(a);
        __m512i hi = x3_bf16(v);
        __m512 hif = _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16));
        __m512i lo = x3_bf16(_mm512_sub_ps(v, hif)); /* exact in float */
        __mmask16 inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(hi, expo), expo);
        lo = _mm512_mask_mov_epi32(lo, inf, _mm512_setzero_si512());
        __m512i x = _mm512_packus_epi32(hi, lo); /* words <= 0xffff: exact */
        _mm512_storeu_si512(dst, _mm512_permutexvar_epi16(idx0, x));
        _mm256_storeu_si256((__m256i *)(dst + 32),
                            _mm512_castsi512_si256(_mm512_permutexvar_epi16(idx1, x)));
    }
}
