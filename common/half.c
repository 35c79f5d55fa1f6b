/*
 * common/half.c: IEEE binary16 and bfloat16 <-> float32, exact both ways
 * (subnormals, infinities and NaN kept; float -> half rounds to nearest
 * even). Used for F16/BF16 checkpoint tensors (clip/) and float16
 * embedding files (emb/). The F16C loop is in half_avx2.c, chosen at run
 * time.
 */
#include "common/wp.h"

#include <cpuid.h>
#include <string.h>

float wp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;

    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400) == 0);
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

float wp_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t wp_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffff;

    if (exp == 0xff) /* inf or NaN (keep NaN quiet) */
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, up to inf: still correct */
    return (uint16_t)(sign | half);
}

/* 1 if the CPU has F16C. Read from CPUID leaf 1 (ECX bit 29) because
 * clang before 16 rejects __builtin_cpu_supports("f16c"); the AVX check
 * there covers the OS saving the YMM state. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

void wp_f16_convert(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    if (cpu_has_f16c() && __builtin_cpu_supports("avx")) {
        wp_f16_convert_f16c(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = wp_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}
