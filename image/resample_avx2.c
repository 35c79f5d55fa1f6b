/*
 * image/resample_avx2.c: AVX2 inner loops of the PIL-exact bicubic
 * resampler (image/resample.c chooses them at run time when the CPU has
 * AVX2). The arithmetic is the scalar code's, lane by lane: uint8 samples
 * times 22-bit fixed-point weights summed in int32 from 1 << 21, shifted
 * right by 22 and saturated to 0..255 (packs/packus saturate exactly like
 * Pillow's clip8 table), so the bytes are identical.
 */
#include "image/img_int.h"

#include <immintrin.h>
#include <string.h>

#define PREC 22
#define HALF (1 << (PREC - 1))

/* 8 bytes from p, zero-extended to 8 int32 lanes */
static inline __m256i load8_u8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

static inline int32_t clip_scalar(int32_t s)
{
    int32_t v = s >> PREC;
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

void img_hpass_avx2(const uint8_t *in, size_t in_stride, int rows, int in_w, uint8_t *out,
                    size_t out_stride, int x0, int cw, const int *bounds, const int32_t *kk,
                    int ksize, int C)
{
    const __m256i dup4 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i dup2 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    /* RGB of two pixels into lanes 0-2 and 4-6; lanes 3 and 7 get a weight of 0 */
    const __m256i rgb_idx = _mm256_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5);
    const __m256i rgb_mask = _mm256_setr_epi32(-1, -1, -1, 0, -1, -1, -1, 0);
    size_t row_len = (size_t)in_w * C;
    for (int y = 0; y < rows; y++) {
        const uint8_t *row = in + (size_t)y * in_stride;
        uint8_t *o = out + (size_t)y * out_stride;
        for (int xx = 0; xx < cw; xx++) {
            int xmin = bounds[(xx + x0) * 2], n = bounds[(xx + x0) * 2 + 1];
            const int32_t *k = kk + (size_t)(xx + x0) * ksize;
            const uint8_t *p = row + (size_t)xmin * C;
            /* taps whose 8-byte load stays inside the row */
            size_t avail = row_len - (size_t)xmin * C;
            int x = 0;
            __m256i acc = _mm256_setzero_si256();
            int32_t s[4] = {HALF, HALF, HALF, HALF};
            if (C == 4) {
                for (; x + 2 <= n && (size_t)x * 4 + 8 <= avail; x += 2) {
                    __m256i kv = _mm256_permutevar8x32_epi32(
                        _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(k + x))), dup4);
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(load8_u8(p + x * 4), kv));
                }
            } else if (C == 3) {
                for (; x + 2 <= n && (size_t)x * 3 + 8 <= avail; x += 2) {
                    __m256i kv = _mm256_permutevar8x32_epi32(
                        _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(k + x))), dup4);
                    kv = _mm256_and_si256(kv, rgb_mask);
                    __m256i px = _mm256_permutevar8x32_epi32(load8_u8(p + x * 3), rgb_idx);
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, kv));
                }
            } else if (C == 2) {
                for (; x + 4 <= n && (size_t)x * 2 + 8 <= avail; x += 4) {
                    __m256i kv = _mm256_permutevar8x32_epi32(
                        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(k + x))), dup2);
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(load8_u8(p + x * 2), kv));
                }
            } else {
                for (; x + 8 <= n && (size_t)x + 8 <= avail; x += 8) {
                    __m256i kv = _mm256_loadu_si256((const __m256i *)(k + x));
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(load8_u8(p + x), kv));
                }
            }
            /* fold the vector lanes into per-channel sums */
            int32_t lanes[8];
            _mm256_storeu_si256((__m256i *)lanes, acc);
            if (C == 4 || C == 3) {
                for (int c = 0; c < 4; c++)
                    s[c] += lanes[c] + lanes[c + 4];
            } else if (C == 2) {
                s[0] += lanes[0] + lanes[2] + lanes[4] + lanes[6];
                s[1] += lanes[1] + lanes[3] + lanes[5] + lanes[7];
            } else {
                for (int l = 0; l < 8; l++)
                    s[0] += lanes[l];
            }
            /* remaining taps */
            for (; x < n; x++)
                for (int c = 0; c < C; c++)
                    s[c] += p[x * C + c] * k[x];
            uint8_t *d = o + (size_t)xx * C;
            for (int c = 0; c < C; c++)
                d[c] = (uint8_t)clip_scalar(s[c]);
        }
    }
}

void img_vpass_avx2(const uint8_t *in, size_t in_stride, int first, uint8_t *out, size_t out_stride,
                    int y0, int ch, size_t rowbytes, const int *bounds, const int32_t *kk,
                    int ksize)
{
    const __m256i half = _mm256_set1_epi32(HALF);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int yy = 0; yy < ch; yy++) {
        int ymin = bounds[(yy + y0) * 2] - first, n = bounds[(yy + y0) * 2 + 1];
        const int32_t *k = kk + (size_t)(yy + y0) * ksize;
        const uint8_t *base = in + (size_t)ymin * in_stride;
        uint8_t *d = out + (size_t)yy * out_stride;
        size_t i = 0;
        for (; i + 32 <= rowbytes; i += 32) {
            __m256i a0 = half, a1 = half, a2 = half, a3 = half;
            const uint8_t *r = base + i;
            for (int y = 0; y < n; y++, r += in_stride) {
                __m256i kv = _mm256_set1_epi32(k[y]);
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(load8_u8(r), kv));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(load8_u8(r + 8), kv));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(load8_u8(r + 16), kv));
                a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(load8_u8(r + 24), kv));
            }
            a0 = _mm256_srai_epi32(a0, PREC);
            a1 = _mm256_srai_epi32(a1, PREC);
            a2 = _mm256_srai_epi32(a2, PREC);
            a3 = _mm256_srai_epi32(a3, PREC);
            /* packs/packus work per 128-bit lane; the permute restores order */
            __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
            p = _mm256_permutevar8x32_epi32(p, order);
            _mm256_storeu_si256((__m256i *)(d + i), p);
        }
        for (; i < rowbytes; i++) {
            int32_t s = HALF;
            const uint8_t *r = base + i;
            for (int y = 0; y < n; y++, r += in_stride)
                s += *r * k[y];
            d[i] = (uint8_t)clip_scalar(s);
        }
    }
}
