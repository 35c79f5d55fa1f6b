/*
 * common/half_avx2.c: IEEE half to float conversion with F16C (8
 * values per instruction), used by wp_f16_convert when the CPU has it. Built
 * with -mavx2 -mf16c (see the Makefile); only called after a run-time check.
 */
#include "common/wp.h"

#include <immintrin.h>
#include <string.h>

void wp_f16_convert_f16c(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++)
        dst[i] = wp_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}
