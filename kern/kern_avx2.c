/*
 * kern/kern_avx2.c: AVX2 + FMA micro-kernels for kern/kern.c: the 6x16
 * f32 GEMM tile (12 ymm accumulators, 2 weight vectors, 1 broadcast) with
 * the fused bias / activation / residual epilogue, vector exp and erf for
 * GELU, QuickGELU and softmax. Compiled with -mavx2 -mfma -mf16c; only
 * called after kn_init has seen those features.
 */
#include "kern/kern.h"
#include "kern/kern_int.h"

#include <immintrin.h>
#include <math.h>

#define MR 6
#define NR 16
/* Floats ahead of the weight stream to prefetch: at batch 1 each weight is
 * read once, from DRAM (340 MB per ViT-B/32 image); 4 KiB ahead hides the
 * latency (measured +9% at batch 1, neutral at batch 32). Panels lie back
 * to back, so running past a panel's end fetches the next one. */
#ifndef PF_DIST
#define PF_DIST 1024
#endif
#ifndef PF_NEXT
#define PF_NEXT 1
#endif

/* exp(x) for float lanes, Cephes-style range reduction, ~2 ulp. The
 * rounding of x log2(e) to an integer n comes from adding 1.5 * 2^23, whose
 * low mantissa bits then hold n: no round or convert instruction. */
static inline __m256 exp8(__m256 x)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 fx = _mm256_sub_ps(t, magic);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    /* n in [-126, 128]: 2^(n-1) built in the exponent field (the bits of
     * 1.5 * 2^23 shift out), then doubled, so n = 128 (reached only after
     * clamping, where y < 1 keeps the product finite) does not overflow */
    __m256i e = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(126));
    __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, p2), _mm256_set1_ps(2.0f));
}

/* 1 / d for d >= 1 (finite): rcpps plus one Newton step, ~1 ulp short of
 * a division and several times its throughput. */
static inline __m256 rcp8(__m256 d)
{
    __m256 r = _mm256_rcp_ps(d);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
}

/* erf(x) as x P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf(4) = 1 - 1.5e-8):
 * a rational minimax fit (the one Eigen and XLA use), |error| < 5e-7 in
 * float, no exp: about half the work of exp-based formulas. */
static inline __m256 erf8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(p, x);
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

static inline __m256 act8(__m256 v, int act)
{
    switch (act) {
    case KN_ACT_GELU: {
        __m256 e = erf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
        return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)),
                             _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
    }
    case KN_ACT_QUICKGELU: {
        __m256 e = exp8(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)));
        return _mm256_mul_ps(v, rcp8(_mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    }
    case KN_ACT_RELU:
        return _mm256_max_ps(v, _mm256_setzero_ps());
    default:
        return v;
    }
}

/* The epilogue of one tile from its accumulators acc[mr][NR] (one call per
 * tile, out of line: keeps the micro-kernels small). */
static void store_tile(const kn_tile *t, const float *acc)
{
    if (t->nc != NR) {
        kn_tile_store(t, acc, NR);
        return;
    }
    __m256 al = _mm256_set1_ps(t->alpha), be = _mm256_set1_ps(t->beta);
    for (int i = 0; i < t->mr; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        __m256 v0 = _mm256_mul_ps(_mm256_load_ps(acc + i * NR), al);
        __m256 v1 = _mm256_mul_ps(_mm256_load_ps(acc + i * NR + 8), al);
        if (t->cin) {
            const float *ci = t->cin + (size_t)i * t->ldcin;
            v0 = _mm256_fmadd_ps(be, _mm256_loadu_ps(ci), v0);
            v1 = _mm256_fmadd_ps(be, _mm256_loadu_ps(ci + 8), v1);
        }
        if (t->last) {
            if (t->bias) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(t->bias));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(t->bias + 8));
            }
            if (t->act != KN_ACT_NONE) {
                v0 = act8(v0, t->act);
                v1 = act8(v1, t->act);
            }
            if (t->res) {
                const float *r = t->res + (size_t)i * t->ldr;
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(r));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(r + 8));
            }
        }
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
    }
}

/* One micro-kernel per row count so the accumulators stay in registers. */
#define FMA_ROW(R, AOFF, B0, B1)                                                                   \
    _Pragma("GCC unroll 6") for (int i = 0; i < R; i++)                                            \
    {                                                                                              \
        __m256 av = _mm256_broadcast_ss(ap[i] + (AOFF));                                           \
        c0[i] = _mm256_fmadd_ps(av, B0, c0[i]);                                                    \
        c1[i] = _mm256_fmadd_ps(av, B1, c1[i]);                                                    \
    }

/* One micro-kernel per row count so the accumulators stay in registers. */
#define UKR(R)                                                                                     \
    static void ukr_##R(const kn_tile *t)                                                          \
    {                                                                                              \
        __m256 c0[R], c1[R];                                                                       \
        _Pragma("GCC unroll 6") for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_ps();   \
        const float *b = t->b;                                                                     \
        const float *ap[R];                                                                        \
        _Pragma("GCC unroll 6") for (int i = 0; i < R; i++) ap[i] =                                \
            (const float *)t->a + (size_t)i * t->lda;                                              \
        int kc = t->kc, k = 0;                                                                     \
        for (int i = 0; i < R; i++)                                                                \
            _mm_prefetch((const char *)(t->c + (size_t)i * t->ldc), _MM_HINT_T0);                  \
        const char *pf = t->pf;                                                                    \
        int pfn = t->pf_lines;                                                                     \
        for (; k + 2 <= kc; k += 2) {                                                              \
            if (PF_NEXT && pfn > 0) {                                                              \
                _mm_prefetch(pf, _MM_HINT_T1);                                                     \
                pf += 64;                                                                          \
                pfn--;                                                                             \
            }                                                                                      \
            if (PF_DIST) {                                                                         \
                _mm_prefetch((const char *)(b + PF_DIST), _MM_HINT_T0);                            \
                _mm_prefetch((const char *)(b + PF_DIST + 16), _MM_HINT_T0);                       \
            }                                                                                      \
            __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);                             \
            FMA_ROW(R, k, b0, b1)                                                                  \
            __m256 b2 = _mm256_load_ps(b + 16), b3 = _mm256_load_ps(b + 24);                       \
            FMA_ROW(R, k + 1, b2, b3)                                                              \
            b += 2 * NR;                                                                           \
        }                                                                                          \
        if (k < kc) {                                                                              \
            __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);                             \
            FMA_ROW(R, k, b0, b1)                                                                  \
        }                                                                                          \
        float tmp[R * NR] __attribute__((aligned(32)));                                            \
        _Pragma("GCC unroll 6") for (int i = 0; i < R; i++)                                        \
        {                                                                                          \
            _mm256_store_ps(tmp + i * NR, c0[i]);                                                  \
            _mm256_store_ps(tmp + i * NR + 8, c1[i]);                                              \
        }                                                                                          \
        store_tile(t, tmp);                                                                        \
    }

UKR(1)
UKR(2)
UKR(3)
UKR(4)
UKR(5)
UKR(6)

static void ukr_avx2(const kn_tile *t)
{
    switch (t->mr) {
    case 1:
        ukr_1(t);
        break;
    case 2:
        ukr_2(t);
        break;
    case 3:
        ukr_3(t);
        break;
    case 4:
        ukr_4(t);
        break;
    case 5:
        ukr_5(t);
        break;
    default:
        ukr_6(t);
        break;
    }
}

static void act_avx2(float *x, size_t n, int act)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, act8(_mm256_loadu_ps(x + i), act));
    for (; i < n; i++)
        x[i] = kn_act1(x[i], act);
}

static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hsum8(__m256 v);

/* Rows are short (50-77 for CLIP): the ragged tail goes through masked
 * loads and stores instead of scalar expf. */
static void softmax_avx2(float *x, int n)
{
    int nv = n / 8 * 8, tail = n - nv;
    __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 ninf = _mm256_set1_ps(-INFINITY), m8 = ninf, xt = ninf;
    for (int i = 0; i < nv; i += 8)
        m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    if (tail) {
        xt = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + nv, mask), _mm256_castsi256_ps(mask));
        m8 = _mm256_max_ps(m8, xt);
    }
    __m256 mv = _mm256_set1_ps(hmax8(m8)), s8 = _mm256_setzero_ps();
    for (int i = 0; i < nv; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        s8 = _mm256_add_ps(s8, e);
    }
    if (tail) {
        xt = _mm256_and_ps(exp8(_mm256_sub_ps(xt, mv)), _mm256_castsi256_ps(mask));
        s8 = _mm256_add_ps(s8, xt);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum8(s8));
    for (int i = 0; i < nv; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (tail)
        _mm256_maskstore_ps(x + nv, mask, _mm256_mul_ps(xt, inv));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* See layernorm_portable (kern.c): mean, then centred sums with the
 * rounding correction of the mean. */
static void layernorm_avx2(const float *x, int dim, const float *gamma, const float *beta,
                           float eps, float *out)
{
    int nv = dim / 8 * 8, i;
    __m256 s8 = _mm256_setzero_ps();
    for (i = 0; i < nv; i += 8)
        s8 = _mm256_add_ps(s8, _mm256_loadu_ps(x + i));
    float s = hsum8(s8);
    for (; i < dim; i++)
        s += x[i];
    float mean = s / (float)dim;
    __m256 m8 = _mm256_set1_ps(mean), c8 = _mm256_setzero_ps(), v8 = _mm256_setzero_ps();
    for (i = 0; i < nv; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + i), m8);
        c8 = _mm256_add_ps(c8, t);
        v8 = _mm256_fmadd_ps(t, t, v8);
    }
    float c = hsum8(c8), v = hsum8(v8);
    for (; i < dim; i++) {
        float t = x[i] - mean;
        c += t;
        v += t * t;
    }
    c /= (float)dim;
    float var = v / (float)dim - c * c;
    float rs = 1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps);
    __m256 r8 = _mm256_set1_ps(rs);
    __m256 cc = _mm256_set1_ps(c);
    for (i = 0; i < nv; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8), cc), r8);
        if (gamma)
            t = _mm256_mul_ps(t, _mm256_loadu_ps(gamma + i));
        if (beta)
            t = _mm256_add_ps(t, _mm256_loadu_ps(beta + i));
        _mm256_storeu_ps(out + i, t);
    }
    for (; i < dim; i++) {
        float t = ((x[i] - mean) - c) * rs;
        out[i] = t * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

const kn_isa kn_isa_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .kc = 768, /* A is read in place and B streams well from L2: long K blocks win */
    .mc = 144,
    .bf16_mr = 0,
    .packs_a = 0,
    .ukr = ukr_avx2,
    .ukr_bf16 = NULL,
    .act = act_avx2,
    .softmax = softmax_avx2,
    .layernorm = layernorm_avx2,
};
