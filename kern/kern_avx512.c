/*
 * kern/kern_avx512.c: AVX-512 micro-kernels for kern/kern.c: the 14x32
 * f32 GEMM tile (28 zmm accumulators) reading A in place (no packing, K
 * blocks of 768, the fused epilogue straight from the registers), the 14x32
 * bf16 tile on _mm512_dpbf16_ps (weights packed as bf16 pairs along K,
 * activations converted while A is packed into [kc/2][14] pair groups, one
 * contiguous stream per tile, read at constant offsets without spills,
 * the epilogue's C lines prefetched during the K loop: with K blocks of 768
 * the bf16 GEMMs at M = 1600 went from 379 to 407-462 GFLOP/s on one Zen 5
 * thread over rows of pairs, whose 14 streams the L1 did not keep fed;
 * f32 accumulation), and vector
 * exp / erf for the activations and softmax. Both tiles prefetch the next
 * weight panel into L2 and the weight stream ahead into L1 (at batch 1 the
 * weights come from DRAM: measured +45% at batch 1, +12% at batch 32 on a
 * Zen 5 EPYC). Compiled with the AVX-512 F/BW/VL/DQ/BF16 flags; only called
 * after kn_init has seen them. The amx-bf16 path is this file's with
 * kern_amx.c's bf16 tile.
 */
#include "kern/kern.h"
#include "kern/kern_int.h"

#ifdef KN_EMULATE_AVX512
/* tests/kern_avx512_emul.sh: the same code on SIMDe's portable AVX-512 */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif
#include <math.h>
#include <string.h>

#define MR 14
#define NR 32
#ifndef PF_DIST
#define PF_DIST 1024
#endif
#ifndef KC_F32
#define KC_F32 768
#endif
#ifndef KC_BF16
#define KC_BF16 768
#endif
#ifndef BF16_PF
#define BF16_PF 256 /* floats ahead that bf16_pairs prefetches */
#endif
#ifndef MC_F32
#define MC_F32 140
#endif
/* AMX K block (a multiple of 32), not yet tuned on AMX hardware: one step
 * of the 2 x 2 tiles reads 2 KB of A and 2 KB of B for 64 cycles of
 * TDPBF16PS, too much for L2 alone; at 512 a panel's K block of B (32 KB)
 * stays in L1 while the row groups of the block stream their A from L2 */
#ifndef KC_AMX
#define KC_AMX 512
#endif

/* Bit casts to the bf16 pair vector type (no cast intrinsic in GCC 12). */
static inline __m512bh as_bh(__m512 v)
{
    __m512bh r;
    memcpy(&r, &v, sizeof r);
    return r;
}

static inline __m512bh bcast_bh(int pair)
{
    return as_bh(_mm512_castsi512_ps(_mm512_set1_epi32(pair)));
}

/* exp(x) for float lanes, Cephes-style range reduction, ~2 ulp. */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, fx);
}

/* erf(x) as x P(x^2) / Q(x^2) on x clamped to [-4, 4]: see erf8 in
 * kern_avx2.c. */
static inline __m512 erf16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

static inline __m512 act16(__m512 v, int act)
{
    switch (act) {
    case KN_ACT_GELU: {
        __m512 e = erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
        return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)),
                             _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
    }
    case KN_ACT_QUICKGELU: {
        __m512 e = exp16(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)));
        return _mm512_div_ps(v, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
    }
    case KN_ACT_RELU:
        return _mm512_max_ps(v, _mm512_setzero_ps());
    default:
        return v;
    }
}

/* Masked load and store of the first lanes of m: the hardware suppresses
 * faults in masked lanes; SIMDe's emulation reads whole vectors, so there
 * the lanes go through a zeroed copy (the masks are tested either way). */
static inline __m512 mload(__mmask16 m, const float *p)
{
#ifdef KN_EMULATE_AVX512
    float tmp[16] = {0};
    for (int j = 0; j < 16; j++)
        if (m >> j & 1)
            tmp[j] = p[j];
    return _mm512_loadu_ps(tmp);
#else
    return _mm512_maskz_loadu_ps(m, p);
#endif
}

static inline void mstore(__mmask16 m, float *p, __m512 v)
{
#ifdef KN_EMULATE_AVX512
    float tmp[16];
    _mm512_storeu_ps(tmp, v);
    for (int j = 0; j < 16; j++)
        if (m >> j & 1)
            p[j] = tmp[j];
#else
    _mm512_mask_storeu_ps(p, m, v);
#endif
}

/* The epilogue of one tile from its accumulators acc[mr][NR] (one call per
 * tile, out of line: keeps the micro-kernels small; also AMX's). Edge
 * tiles (nc < NR: attention's 50-key rows, text's 77) run the same vector
 * code on masked lanes. */
void kn_avx512_store_tile(const kn_tile *t, const float *acc)
{
    int nc = t->nc < NR ? t->nc : NR;
    __mmask16 m0 = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
    __mmask16 m1 = nc >= 32 ? (__mmask16)0xffff : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
    __m512 al = _mm512_set1_ps(t->alpha), be = _mm512_set1_ps(t->beta);
    for (int i = 0; i < t->mr; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        __m512 v0 = _mm512_mul_ps(_mm512_load_ps(acc + i * NR), al);
        __m512 v1 = _mm512_mul_ps(_mm512_load_ps(acc + i * NR + 16), al);
        if (t->cin) {
            const float *ci = t->cin + (size_t)i * t->ldcin;
            v0 = _mm512_fmadd_ps(be, mload(m0, ci), v0);
            v1 = _mm512_fmadd_ps(be, mload(m1, ci + 16), v1);
        }
        if (t->last) {
            if (t->bias) {
                v0 = _mm512_add_ps(v0, mload(m0, t->bias));
                v1 = _mm512_add_ps(v1, mload(m1, t->bias + 16));
            }
            if (t->act != KN_ACT_NONE) {
                v0 = act16(v0, t->act);
                v1 = act16(v1, t->act);
            }
            if (t->res) {
                const float *r = t->res + (size_t)i * t->ldr;
                v0 = _mm512_add_ps(v0, mload(m0, r));
                v1 = _mm512_add_ps(v1, mload(m1, r + 16));
            }
        }
        mstore(m0, c, v0);
        if (m1)
            mstore(m1, c + 16, v1);
    }
}

#define STORE_TILE(R)                                                                              \
    float tmp[R * NR] __attribute__((aligned(64)));                                                \
    _Pragma("GCC unroll 14") for (int i = 0; i < R; i++)                                           \
    {                                                                                              \
        _mm512_store_ps(tmp + i * NR, c0[i]);                                                      \
        _mm512_store_ps(tmp + i * NR + 16, c1[i]);                                                 \
    }                                                                                              \
    kn_avx512_store_tile(t, tmp);

/* The epilogue of row i of a full-width tile straight from its two
 * accumulators (no trip through memory). */
static inline void store_row(const kn_tile *t, int i, __m512 v0, __m512 v1)
{
    float *c = t->c + (size_t)i * t->ldc;
    if (t->alpha != 1.0f) {
        __m512 al = _mm512_set1_ps(t->alpha);
        v0 = _mm512_mul_ps(v0, al);
        v1 = _mm512_mul_ps(v1, al);
    }
    if (t->cin) {
        const float *ci = t->cin + (size_t)i * t->ldcin;
        __m512 be = _mm512_set1_ps(t->beta);
        v0 = _mm512_fmadd_ps(be, _mm512_loadu_ps(ci), v0);
        v1 = _mm512_fmadd_ps(be, _mm512_loadu_ps(ci + 16), v1);
    }
    if (t->last) {
        if (t->bias) {
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(t->bias));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(t->bias + 16));
        }
        if (t->act != KN_ACT_NONE) {
            v0 = act16(v0, t->act);
            v1 = act16(v1, t->act);
        }
        if (t->res) {
            const float *r = t->res + (size_t)i * t->ldr;
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(r));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(r + 16));
        }
    }
    _mm512_storeu_ps(c, v0);
    _mm512_storeu_ps(c + 16, v1);
}

/* Fetches the lines the epilogue of a tile of R rows will touch (C for
 * writing, cin and res for reading) while its K loop runs: at batch 32
 * they come from L3 or DRAM, and waiting for them cost 14% of the bf16
 * tile's time. */
static inline void prefetch_out(const kn_tile *t, int R)
{
    for (int i = 0; i < R; i++) {
        const float *c = t->c + (size_t)i * t->ldc;
        __builtin_prefetch(c, 1, 3);
        __builtin_prefetch(c + 16, 1, 3);
        if (t->cin && t->cin != t->c) {
            const float *ci = t->cin + (size_t)i * t->ldcin;
            __builtin_prefetch(ci, 0, 3);
            __builtin_prefetch(ci + 16, 0, 3);
        }
        if (t->last && t->res) {
            const float *r = t->res + (size_t)i * t->ldr;
            __builtin_prefetch(r, 0, 3);
            __builtin_prefetch(r + 16, 0, 3);
        }
    }
}

/* Row i's value at byte offset k4 of A: rows are addressed from one base
 * with seven byte strides (1, 3, 5, ..., 13 rows) times the x86 scales
 * 1, 2, 4, 8, so the 14 rows need 8 registers, not 14 pointers. */
#define AROW(i)                                                                                    \
    ((i) == 0    ? 0                                                                               \
     : (i) == 1  ? l1                                                                              \
     : (i) == 2  ? 2 * l1                                                                          \
     : (i) == 3  ? l3                                                                              \
     : (i) == 4  ? 4 * l1                                                                          \
     : (i) == 5  ? l5                                                                              \
     : (i) == 6  ? 2 * l3                                                                          \
     : (i) == 7  ? l7                                                                              \
     : (i) == 8  ? 8 * l1                                                                          \
     : (i) == 9  ? l9                                                                              \
     : (i) == 10 ? 2 * l5                                                                          \
     : (i) == 11 ? l11                                                                             \
     : (i) == 12 ? 4 * l3                                                                          \
                 : l13)
#define ABCAST(i) _mm512_set1_ps(*(const float *)(ak + AROW(i)))

/* f32 tile of R rows with A read in place (row i at a + i * lda): one
 * k step is 2 weight vectors and R broadcasts for 2R FMAs. The next
 * panel's share (t->pf) goes to L2, the weights PF_DIST floats ahead to
 * L1 (at batch 1 they stream from DRAM). */
#define UKR(R)                                                                                     \
    static void ukr_##R(const kn_tile *t)                                                          \
    {                                                                                              \
        __m512 c0[R], c1[R];                                                                       \
        _Pragma("GCC unroll 14") for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm512_setzero_ps();  \
        const float *b = t->b;                                                                     \
        const char *ak = (const char *)t->a, *aend = ak + (size_t)t->kc * 4;                       \
        ptrdiff_t l1 = (ptrdiff_t)t->lda * 4, l3 = 3 * l1, l5 = 5 * l1, l7 = 7 * l1;               \
        ptrdiff_t l9 = 9 * l1, l11 = 11 * l1, l13 = 13 * l1;                                       \
        const char *pf = t->pf;                                                                    \
        int pfn = t->pf_lines;                                                                     \
        for (; ak < aend; ak += 4) {                                                               \
            if (pfn > 0) {                                                                         \
                _mm_prefetch(pf, _MM_HINT_T1);                                                     \
                pf += 64;                                                                          \
                pfn--;                                                                             \
            }                                                                                      \
            if (PF_DIST) {                                                                         \
                _mm_prefetch((const char *)(b + PF_DIST), _MM_HINT_T0);                            \
                _mm_prefetch((const char *)(b + PF_DIST + 16), _MM_HINT_T0);                       \
            }                                                                                      \
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                            \
            _Pragma("GCC unroll 14") for (int i = 0; i < R; i++)                                   \
            {                                                                                      \
                __m512 av = ABCAST(i);                                                             \
                c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);                                            \
                c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);                                            \
            }                                                                                      \
            b += NR;                                                                               \
        }                                                                                          \
        (void)l3, (void)l5, (void)l7, (void)l9, (void)l11, (void)l13;                              \
        if (t->nc == NR) {                                                                         \
            _Pragma("GCC unroll 14") for (int i = 0; i < R; i++) store_row(t, i, c0[i], c1[i]);    \
        } else {                                                                                   \
            STORE_TILE(R)                                                                          \
        }                                                                                          \
    }

/* bf16 tile of R rows: A packed as [kc/2][MR] pair groups (t->lda is 0;
 * row i's pair of step s at a + s * MR + i, so every broadcast has a
 * constant displacement and no row pointer takes a register), one step is
 * two k, 2 weight vectors and R pair broadcasts for 2R dot products;
 * prefetches as the f32 tile. */
#define UKRB(R)                                                                                    \
    static void ukrb_##R(const kn_tile *t)                                                         \
    {                                                                                              \
        __m512 c0[R], c1[R];                                                                       \
        _Pragma("GCC unroll 14") for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm512_setzero_ps();  \
        const int *ak = (const int *)t->a, *aend = ak + (size_t)(t->kc / 2) * MR;                  \
        prefetch_out(t, R);                                                                        \
        const float *b = t->b;                                                                     \
        const char *pf = t->pf;                                                                    \
        int pfn = t->pf_lines;                                                                     \
        for (; ak < aend; ak += MR) {                                                              \
            if (pfn > 0) {                                                                         \
                _mm_prefetch(pf, _MM_HINT_T1);                                                     \
                pf += 64;                                                                          \
                pfn--;                                                                             \
            }                                                                                      \
            if (PF_DIST) {                                                                         \
                _mm_prefetch((const char *)(b + PF_DIST), _MM_HINT_T0);                            \
                _mm_prefetch((const char *)(b + PF_DIST + 16), _MM_HINT_T0);                       \
            }                                                                                      \
            __m512bh b0 = as_bh(_mm512_load_ps(b)), b1 = as_bh(_mm512_load_ps(b + 16));            \
            _Pragma("GCC unroll 14") for (int i = 0; i < R; i++)                                   \
            {                                                                                      \
                __m512bh av = bcast_bh(ak[i]);                                                     \
                c0[i] = _mm512_dpbf16_ps(c0[i], av, b0);                                           \
                c1[i] = _mm512_dpbf16_ps(c1[i], av, b1);                                           \
            }                                                                                      \
            b += NR;                                                                               \
        }                                                                                          \
        if (t->nc == NR) {                                                                         \
            _Pragma("GCC unroll 14") for (int i = 0; i < R; i++) store_row(t, i, c0[i], c1[i]);    \
        } else {                                                                                   \
            STORE_TILE(R)                                                                          \
        }                                                                                          \
    }

UKR(1)
UKR(2)
UKR(3)
UKR(4)
UKR(5)
UKR(6)
UKR(7)
UKR(8)
UKR(9)
UKR(10)
UKR(11)
UKR(12)
UKR(13)
UKR(14)
UKRB(1)
UKRB(2)
UKRB(3)
UKRB(4)
UKRB(5)
UKRB(6)
UKRB(7)
UKRB(8)
UKRB(9)
UKRB(10)
UKRB(11)
UKRB(12)
UKRB(13)
UKRB(14)

static void (*const ukr_tab[MR + 1])(const kn_tile *) = {
    ukr_1, ukr_1, ukr_2,  ukr_3,  ukr_4,  ukr_5,  ukr_6,  ukr_7,
    ukr_8, ukr_9, ukr_10, ukr_11, ukr_12, ukr_13, ukr_14,
};
static void (*const ukrb_tab[MR + 1])(const kn_tile *) = {
    ukrb_1, ukrb_1, ukrb_2,  ukrb_3,  ukrb_4,  ukrb_5,  ukrb_6,  ukrb_7,
    ukrb_8, ukrb_9, ukrb_10, ukrb_11, ukrb_12, ukrb_13, ukrb_14,
};

static void ukr_avx512(const kn_tile *t)
{
    ukr_tab[t->mr > MR ? MR : t->mr](t);
}

static void ukr_avx512_bf16(const kn_tile *t)
{
    ukrb_tab[t->mr > MR ? MR : t->mr](t);
}

static void act_avx512(float *x, size_t n, int act)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, act16(_mm512_loadu_ps(x + i), act));
    if (i < n) { /* the tail through a zero-padded vector */
        float tmp[16] = {0};
        memcpy(tmp, x + i, (n - i) * sizeof *x);
        _mm512_storeu_ps(tmp, act16(_mm512_loadu_ps(tmp), act));
        memcpy(x + i, tmp, (n - i) * sizeof *x);
    }
}

/* Horizontal max and sum (through memory: SIMDe lacks the reductions). */
static inline float hmax16(__m512 v)
{
    float t[16], m;
    _mm512_storeu_ps(t, v);
    m = t[0];
    for (int j = 1; j < 16; j++)
        m = t[j] > m ? t[j] : m;
    return m;
}

static inline float hsum16(__m512 v)
{
    float t[16], s = 0.0f;
    _mm512_storeu_ps(t, v);
    for (int j = 0; j < 16; j++)
        s += t[j];
    return s;
}

static void softmax_avx512(float *x, int n)
{
    int i = 0, nv = n / 16 * 16;
    float m = -INFINITY;
    if (nv > 0) {
        __m512 m16 = _mm512_loadu_ps(x);
        for (i = 16; i < nv; i += 16)
            m16 = _mm512_max_ps(m16, _mm512_loadu_ps(x + i));
        m = hmax16(m16);
    }
    for (i = nv; i < n; i++)
        m = x[i] > m ? x[i] : m;
    __m512 mv = _mm512_set1_ps(m), s16 = _mm512_setzero_ps();
    for (i = 0; i < nv; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
        _mm512_storeu_ps(x + i, e);
        s16 = _mm512_add_ps(s16, e);
    }
    float s = hsum16(s16);
    if (nv < n) { /* the tail: padding lanes hold -inf, whose exp is 0 */
        float tmp[16];
        for (int j = 0; j < 16; j++)
            tmp[j] = nv + j < n ? x[nv + j] : -INFINITY;
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(tmp), mv));
        _mm512_storeu_ps(tmp, e);
        for (int j = 0; nv + j < n; j++) {
            x[nv + j] = tmp[j];
            s += tmp[j];
        }
    }
    __m512 inv = _mm512_set1_ps(1.0f / s);
    for (i = 0; i < nv; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    for (i = nv; i < n; i++)
        x[i] *= 1.0f / s;
}

/* See layernorm_portable (kern.c): mean, then centred sums with the
 * rounding correction of the mean. */
static void layernorm_avx512(const float *x, int dim, const float *gamma, const float *beta,
                             float eps, float *out)
{
    int nv = dim / 16 * 16, i;
    __m512 s16 = _mm512_setzero_ps();
    for (i = 0; i < nv; i += 16)
        s16 = _mm512_add_ps(s16, _mm512_loadu_ps(x + i));
    float s = hsum16(s16);
    for (; i < dim; i++)
        s += x[i];
    float mean = s / (float)dim;
    __m512 m16 = _mm512_set1_ps(mean), c16 = _mm512_setzero_ps(), v16 = _mm512_setzero_ps();
    for (i = 0; i < nv; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(x + i), m16);
        c16 = _mm512_add_ps(c16, t);
        v16 = _mm512_fmadd_ps(t, t, v16);
    }
    float c = hsum16(c16), v = hsum16(v16);
    for (; i < dim; i++) {
        float t = x[i] - mean;
        c += t;
        v += t * t;
    }
    c /= (float)dim;
    float var = v / (float)dim - c * c;
    float rs = 1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps);
    __m512 r16 = _mm512_set1_ps(rs);
    __m512 cc = _mm512_set1_ps(c);
    for (i = 0; i < nv; i += 16) {
        __m512 t =
            _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), m16), cc), r16);
        if (gamma)
            t = _mm512_mul_ps(t, _mm512_loadu_ps(gamma + i));
        if (beta)
            t = _mm512_add_ps(t, _mm512_loadu_ps(beta + i));
        _mm512_storeu_ps(out + i, t);
    }
    for (; i < dim; i++) {
        float t = ((x[i] - mean) - c) * rs;
        out[i] = t * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

/* bf16 rounding (nearest even, NaNs kept quiet) of 16 floats, each result
 * in the low half of its 32-bit lane. */
static inline __m512i bf16_lanes(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                 _mm512_and_si512(hi, _mm512_set1_epi32(1)));
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

/* kn_avx512_x3_body (kern_int.h): split bf16's (KN_BF16X3) A packing, 16
 * activations per step, each split into hi = bf16(a) and lo = bf16(a -
 * hi) (lo zero where hi is not finite: kern.c's x3_triple bit for bit) and
 * written as the triples (hi, hi, lo), 48 bf16 in a row (one 64-byte and
 * one 32-byte store after a pack and a word permute); without it the
 * tripled A's packing runs scalar and costs more than the product on AMX. */
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
        __m512i hi = bf16_lanes(v);
        __m512 hif = _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16));
        __m512i lo = bf16_lanes(_mm512_sub_ps(v, hif)); /* exact in float */
        __mmask16 inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(hi, expo), expo);
        lo = _mm512_mask_mov_epi32(lo, inf, _mm512_setzero_si512());
        __m512i x = _mm512_packus_epi32(hi, lo); /* words <= 0xffff: exact */
        _mm512_storeu_si512(dst, _mm512_permutexvar_epi16(idx0, x));
        _mm256_storeu_si256((__m256i *)(dst + 32),
                            _mm512_castsi512_si256(_mm512_permutexvar_epi16(idx1, x)));
    }
}

/* See kn_isa.bf16_pairs: 32 values per step (packus puts the halves in
 * 128-bit lane order, the permute restores row order), the ragged end and
 * the zero padding through a zeroed copy. */
static void bf16_pairs_avx512(const float *a, int n, int navail, uint32_t *dst, int stride)
{
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    uint32_t pairs[16];
    for (int k = 0; k < n; k += 32) {
        __m512 v0, v1;
        if (k + 32 <= navail) {
            /* the activations stream from L3 or DRAM: fetch ahead */
            _mm_prefetch((const char *)(a + k + BF16_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + k + BF16_PF + 16), _MM_HINT_T0);
            v0 = _mm512_loadu_ps(a + k);
            v1 = _mm512_loadu_ps(a + k + 16);
        } else {
            float tmp[32] = {0};
            int m = navail - k;
            if (m > 0)
                memcpy(tmp, a + k, (size_t)m * sizeof *tmp);
            v0 = _mm512_loadu_ps(tmp);
            v1 = _mm512_loadu_ps(tmp + 16);
        }
        __m512i p = _mm512_packus_epi32(bf16_lanes(v0), bf16_lanes(v1));
        __m512i pv = _mm512_permutexvar_epi64(order, p);
        int np = (n - k) / 2 < 16 ? (n - k) / 2 : 16;
        if (stride == 1 && np == 16) { /* rows of pairs: one store */
            _mm512_storeu_si512(dst + k / 2, pv);
            continue;
        }
        _mm512_storeu_si512(pairs, pv);
        uint32_t *d = dst + (size_t)(k / 2) * stride;
        if (np == 16) {
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                d[(size_t)j * stride] = pairs[j];
            continue;
        }
        for (int j = 0; j < np; j++)
            d[(size_t)j * stride] = pairs[j];
    }
}

/* ---- rate probes (kn_init's calibration) --------------------------------- */

#define PROBE_CHAINS 12 /* independent accumulators: hide the latency on 2 ports */

/* iters x PROBE_CHAINS register-only FMAs of 16 lanes; returns the FLOPs
 * done (the result goes to *sink so the loop is not removed). */
double kn_avx512_probe_f32(long iters, float *sink)
{
    __m512 acc[PROBE_CHAINS];
    __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < PROBE_CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PROBE_CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    for (int i = 1; i < PROBE_CHAINS; i++)
        acc[0] = _mm512_add_ps(acc[0], acc[i]);
    *sink += hsum16(acc[0]);
    return (double)iters * PROBE_CHAINS * 16 * 2;
}

/* The same with VDPBF16PS (two bf16 products per lane and step). */
double kn_avx512_probe_bf16(long iters, float *sink)
{
    __m512 acc[PROBE_CHAINS];
    __m512bh x = bcast_bh(0x3f803f80), y = bcast_bh(0x35863586);
    for (int i = 0; i < PROBE_CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PROBE_CHAINS; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    for (int i = 1; i < PROBE_CHAINS; i++)
        acc[0] = _mm512_add_ps(acc[0], acc[i]);
    *sink += hsum16(acc[0]);
    return (double)iters * PROBE_CHAINS * 16 * 4;
}

const kn_isa kn_isa_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .kc = KC_F32,
    .mc = MC_F32,
    .bf16_mr = 0,
    .bf16_kc = 0,
    .packs_a = 0,
    .ukr = ukr_avx512,
    .ukr_bf16 = NULL,
    .act = act_avx512,
    .softmax = softmax_avx512,
    .layernorm = layernorm_avx512,
};

const kn_isa kn_isa_avx512bf16 = {
    .name = "avx512-bf16",
    .mr = MR,
    .nr = NR,
    .kc = KC_F32,
    .mc = MC_F32,
    .bf16_mr = MR,
    .bf16_kc = KC_BF16,
    .packs_a = 0,
    .bf16_rowmajor = 0,
    .ukr = ukr_avx512,
    .ukr_bf16 = ukr_avx512_bf16,
    .bf16_pairs = bf16_pairs_avx512,
    .act = act_avx512,
    .softmax = softmax_avx512,
    .layernorm = layernorm_avx512,
};

/* AMX-BF16 (kern_amx.c) for bf16 weights; everything else is AVX-512's. */
const kn_isa kn_isa_amx = {
    .name = "amx-bf16",
    .mr = MR,
    .nr = NR,
    .kc = KC_F32,
    .mc = MC_F32,
    .bf16_mr = 32,
    .bf16_kc = KC_AMX,
    .bf16_kgran = 32,
    .packs_a = 0,
    .bf16_rowmajor = 1,
    .ukr = ukr_avx512,
    .ukr_bf16 = kn_amx_ukr_bf16,
    .bf16_pairs = bf16_pairs_avx512,
    .act = act_avx512,
    .softmax = softmax_avx512,
    .layernorm = layernorm_avx512,
};
