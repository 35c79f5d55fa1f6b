/*
 * tests/unit/test_kern.c: the CLIP compute kernels (kern/kern.h) against
 * naive double-precision loops on random inputs, on every ISA path this CPU
 * has (portable, avx2, avx512, avx512-bf16, amx-bf16; the others skip: the
 * AVX-512 and AMX ones run everywhere under tests/kern_avx512_emul.sh,
 * which compiles the kernels against SIMDe and kern/kern_amx_tiles.h's
 * tile emulation, itself checked here against the instruction's
 * definition): packed linear
 * with every epilogue and odd shapes, bf16 weights (native dot product and
 * the rounded-f32 fallback), aliasing C == residual, unpacked GEMMs with
 * alpha/beta, layer norm, activations, softmax attention (causal and
 * cross), and im2col convolution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kern/kern.h"
#include "kern/kern_int.h"
#include "tests/lib/testlib.h"

/* the portable tile emulation, whatever the build of kern/ uses */
#define KN_EMULATE_AMX
#include "kern/kern_amx_tiles.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ull;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p + 64);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

static float bf16r(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

static double act_ref(double x, int act)
{
    switch (act) {
    case KN_ACT_GELU:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case KN_ACT_QUICKGELU:
        return x / (1.0 + exp(-1.702 * x));
    case KN_ACT_RELU:
        return x > 0 ? x : 0;
    default:
        return x;
    }
}

/* The path named by the test's state, or skip() when this CPU lacks it. */
static void use_path(void **state)
{
    const char *p = *state;
    assert_non_null(kn_init());
    if (kn_force_path(p) != 0) {
        printf("SKIP: path %s not available on this CPU\n", p);
        skip();
    }
}

static int reset_path(void **state)
{
    (void)state;
    kn_scratch_fail_for_tests(0);
    kn_force_path("portable");
    return 0;
}

/* kn_linear on M x N x K with every optional input against the double
 * product: of bf16-rounded A and W when rounded, of A and W themselves
 * otherwise. Returns the worst error over the bound 2e-5 * sum|terms| +
 * 2e-6 (f32-level: <= 1 passes), describing that element in msg. */
static double linear_worst(int M, int N, int K, int prec, int act, int use_bias, int use_res,
                           int alias, int rounded, char *msg, size_t len)
{
    double worst = 0.0;
    msg[0] = '\0';
    int lda = K + 3, ldc = N + 5;
    float *A = rand_buf((size_t)M * lda, 1.0f);
    float *W = rand_buf((size_t)N * K, 0.5f);
    float *bias = rand_buf((size_t)N, 1.0f);
    float *R = rand_buf((size_t)M * ldc, 1.0f);
    float *C = rand_buf((size_t)M * ldc, 1.0f);
    float *R0 = malloc((size_t)M * ldc * sizeof *R0);
    assert_non_null(R0);
    memcpy(R0, R, (size_t)M * ldc * sizeof *R0);
    kn_packed *p = kn_pack(W, N, K, prec);
    assert_non_null(p);
    assert_int_equal(kn_packed_n(p), N);
    assert_int_equal(kn_packed_k(p), K);
    float *out = alias ? R : C;
    kn_linear(A, lda, M, p, use_bias ? bias : NULL, act, use_res ? R : NULL, ldc, out, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < K; k++) {
                double a = A[(size_t)i * lda + k], w = W[(size_t)j * K + k];
                if (rounded) {
                    a = bf16r((float)a);
                    w = bf16r((float)w);
                }
                s += a * w;
                sa += fabs(a * w);
            }
            if (use_bias) {
                s += bias[j];
                sa += fabs(bias[j]);
            }
            s = act_ref(s, act);
            if (use_res) {
                s += R0[(size_t)i * ldc + j];
                sa += fabs(R0[(size_t)i * ldc + j]);
            }
            double got = out[(size_t)i * ldc + j];
            double tol = 2e-5 * sa + 2e-6;
            if (!(fabs(got - s) / tol <= worst)) {
                worst = isnan(got) ? INFINITY : fabs(got - s) / tol;
                snprintf(msg, len,
                         "linear M=%d N=%d K=%d prec=%d act=%d bias=%d res=%d alias=%d: "
                         "C[%d][%d] = %.8g, want %.8g",
                         M, N, K, prec, act, use_bias, use_res, alias, i, j, got, s);
            }
        }
        /* the padding between rows is untouched */
        if (!alias)
            for (int j = N; j < ldc; j++)
                assert_true(out[(size_t)i * ldc + j] == C[(size_t)i * ldc + j] ||
                            isnan(C[(size_t)i * ldc + j]));
    }
    kn_packed_free(p);
    free(A);
    free(W);
    free(bias);
    free(R);
    free(C);
    free(R0);
    return worst;
}

/* Checks kn_linear within the f32-level bound; prec KN_BF16 against the
 * product of the bf16-rounded inputs, KN_F32 and KN_BF16X3 against the
 * exact one. */
static void check_linear(int M, int N, int K, int prec, int act, int use_bias, int use_res,
                         int alias)
{
    char msg[256];
    if (linear_worst(M, N, K, prec, act, use_bias, use_res, alias, prec == KN_BF16, msg,
                     sizeof msg) > 1.0)
        fail_msg("%s", msg);
}

static const int shapes[][3] = {
    {1, 1, 1},    {1, 16, 8},    {7, 13, 5},   {6, 32, 64},   {13, 33, 17}, {50, 96, 40},
    {1, 70, 600}, {33, 70, 300}, {150, 20, 9}, {29, 65, 257}, {2, 3, 513},  {300, 40, 64},
};

static void run_linear_f32(void **state, int prec)
{
    use_path(state);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int act = 0; act <= KN_ACT_RELU; act++)
            check_linear(shapes[s][0], shapes[s][1], shapes[s][2], prec, act, 1, 1, 0);
    /* without bias / residual, and C aliasing the residual (with an
     * activation too, which needs the whole K in one block) */
    check_linear(17, 40, 300, prec, KN_ACT_NONE, 0, 0, 0);
    check_linear(17, 40, 300, prec, KN_ACT_GELU, 0, 1, 0);
    check_linear(17, 40, 300, prec, KN_ACT_NONE, 1, 1, 1);
    check_linear(17, 40, 700, prec, KN_ACT_QUICKGELU, 1, 1, 1);
    check_linear(1, 48, 20, prec, KN_ACT_GELU, 1, 1, 1);
    check_linear(3, 20, 5000, prec, KN_ACT_GELU, 1, 1, 1); /* K too long for packed groups */
}

static void test_linear_f32_all_epilogues(void **state)
{
    run_linear_f32(state, KN_F32);
}

static void test_linear_bf16_matches_rounded_reference(void **state)
{
    run_linear_f32(state, KN_BF16);
}

/* bf16 products at every edge of the AMX tiling (16-row accumulators in
 * 32 x 32 tiles, 32-k tile steps, K blocks of 512, team packing above
 * 2^18 multiply-adds) and of the other tiles, against the double product
 * of the bf16-rounded inputs. */
static void test_linear_bf16_tile_edges(void **state)
{
    use_path(state);
    static const int ms[] = {1, 15, 16, 17, 33}, ns[] = {1, 16, 17, 33, 65};
    static const int ks[] = {1, 31, 32, 33, 95};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++)
                check_linear(ms[i], ns[j], ks[k], KN_BF16, (int)(k % 4), 1, (int)(j & 1), 0);
    check_linear(65, 70, 1025, KN_BF16, KN_ACT_GELU, 1, 1, 0);      /* two K blocks */
    check_linear(100, 64, 2100, KN_BF16, KN_ACT_NONE, 1, 1, 0);     /* team packing, 3 blocks */
    check_linear(47, 33, 1100, KN_BF16, KN_ACT_QUICKGELU, 1, 1, 1); /* C aliases res */
}

/* Split bf16 (KN_BF16X3) gives f32-level results against the exact
 * product: every epilogue and odd shape, every edge of the AMX tiling
 * (K = 11 is 33 tripled; K blocks of 512 split a value's triple), K blocks,
 * team packing, C aliasing the residual. */
static void test_linear_bf16x3_f32_level(void **state)
{
    use_path(state);
    run_linear_f32(state, KN_BF16X3);
    static const int ms[] = {1, 15, 16, 17, 33}, ns[] = {1, 16, 17, 33, 65};
    static const int ks[] = {1, 10, 11, 21, 33, 95};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++)
                check_linear(ms[i], ns[j], ks[k], KN_BF16X3, (int)(k % 4), 1, (int)(j & 1), 0);
    check_linear(65, 70, 1025, KN_BF16X3, KN_ACT_GELU, 1, 1, 0);      /* 3075: 7 K blocks */
    check_linear(100, 64, 2100, KN_BF16X3, KN_ACT_NONE, 1, 1, 0);     /* team packing */
    check_linear(47, 33, 1100, KN_BF16X3, KN_ACT_QUICKGELU, 1, 1, 1); /* C aliases res */
}

/* The bound the split is held to is one plain bf16 fails: on the same
 * products against the exact result, KN_BF16 misses it by far (on every
 * path, rounded weights or the native tile) while KN_BF16X3 meets it. */
static void test_bf16x3_bound_fails_plain_bf16(void **state)
{
    use_path(state);
    static const int sh[][3] = {{7, 13, 5}, {33, 70, 300}, {17, 33, 95}};
    char msg[256];
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
        double plain = linear_worst(sh[i][0], sh[i][1], sh[i][2], KN_BF16, KN_ACT_NONE, 1, 0, 0, 0,
                                    msg, sizeof msg);
        double split = linear_worst(sh[i][0], sh[i][1], sh[i][2], KN_BF16X3, KN_ACT_NONE, 1, 0, 0,
                                    0, msg, sizeof msg);
        printf("%s %dx%dx%d: worst error / f32 bound: plain bf16 %.2f, bf16x3 %.3f\n",
               (const char *)*state, sh[i][0], sh[i][1], sh[i][2], plain, split);
        if (!(plain > 4.0))
            fail_msg("plain bf16 within %.2f of the f32 bound", plain);
        if (!(split <= 1.0))
            fail_msg("%s", msg);
    }
}

/* What the split computes: a_hi w_hi + a_hi w_lo + a_lo w_hi, without
 * a_lo w_lo. For x = 1 + 2^-8 + 2^-16 (hi = 1 + 2^-7, lo = -(2^-8 -
 * 2^-16), both exact bf16) x * x misses lo^2 (about 2^-16, far above f32
 * rounding) where the path has a native bf16 tile; elsewhere KN_BF16X3
 * packs as f32 and gives exactly the f32 product, in the GEMM and in the
 * out-of-memory loops alike. */
static void test_bf16x3_drops_only_lo_lo(void **state)
{
    use_path(state);
    float x = 1.0f + 0x1p-8f + 0x1p-16f, hi = 1.0f + 0x1p-7f, lo = -(0x1p-8f - 0x1p-16f);
    assert_true(bf16r(x) == hi && bf16r(x - hi) == lo && hi + lo == x);
    int native = !strcmp(*state, "avx512-bf16") || !strcmp(*state, "amx-bf16");
    for (int oom = 0; oom <= 1; oom++) {
        float C[2] = {0}, F[2] = {0}, A[2] = {x, x}, W[1] = {x};
        kn_scratch_fail_for_tests(oom);
        kn_packed *p = kn_pack(W, 1, 1, KN_BF16X3), *f = kn_pack(W, 1, 1, KN_F32);
        assert_non_null(p);
        assert_non_null(f);
        kn_linear(A, 1, 2, p, NULL, KN_ACT_NONE, NULL, 0, C, 1);
        kn_linear(A, 1, 2, f, NULL, KN_ACT_NONE, NULL, 0, F, 1);
        kn_scratch_fail_for_tests(0);
        double split = (double)hi * hi + 2.0 * (double)hi * lo;
        for (int i = 0; i < 2; i++) {
            if (native && fabs(C[i] - split) > 0x1p-22)
                fail_msg("oom %d: split x*x = %.9g, want %.9g", oom, C[i], split);
            if (native && !(fabs(C[i] - F[i]) > 0x1p-17))
                fail_msg("oom %d: split x*x = %.9g as f32's %.9g", oom, C[i], F[i]);
            if (!native && C[i] != F[i])
                fail_msg("oom %d: bf16x3 without a bf16 tile %.9g, f32 %.9g", oom, C[i], F[i]);
        }
        kn_packed_free(p);
        kn_packed_free(f);
    }
}

/* bf16 bits of f by kern's rule: nearest even, NaNs kept quiet. */
static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The AVX-512 body of split bf16's A packing writes, per value, the
 * triple (hi, hi, lo) of the definition bit for bit: hi = bf16(a), lo =
 * bf16(a - hi), lo 0 where hi is not finite (NaN, inf, values rounding to
 * inf), ties to even, signed zeros and denormals; 48 words per 16 values
 * and not one more. */
static void test_bf16x3_vector_split_matches_definition(void **state)
{
    (void)state;
    if (kn_force_path("avx512") != 0) {
        printf("SKIP: no AVX-512 on this CPU\n");
        skip();
    }
    enum { G = 5, NV = 16 * G };
    float a[NV];
    for (int i = 0; i < NV; i++)
        a[i] = frand() * (i % 7 == 0 ? 1e30f : 3.0f);
    const float special[] = {NAN,
                             -NAN,
                             INFINITY,
                             -INFINITY,
                             3.4028235e38f,
                             -3.4e38f,
                             0.0f,
                             -0.0f,
                             1e-40f,
                             -3e-39f,
                             1.0f + 0x1p-8f,
                             1.0f + 0x1p-8f + 0x1p-7f,
                             1.0f + 0x1p-8f + 0x1p-16f,
                             0x1p-126f,
                             65504.0f,
                             -1.0f / 3.0f};
    memcpy(a + 16, special, sizeof special);
    uint16_t got[48 * G + 8];
    for (int i = 0; i < 48 * G + 8; i++)
        got[i] = 0xabcd;
    kn_avx512_x3_body(a, G, got);
    for (int i = 0; i < NV; i++) {
        uint16_t hi = bf16_bits(a[i]), lo = 0;
        uint32_t hu = (uint32_t)hi << 16;
        float hf;
        memcpy(&hf, &hu, 4);
        if ((hi & 0x7f80u) != 0x7f80u)
            lo = bf16_bits(a[i] - hf);
        if (got[3 * i] != hi || got[3 * i + 1] != hi || got[3 * i + 2] != lo)
            fail_msg("value %d (%a): got %04x %04x %04x, want %04x %04x %04x", i, (double)a[i],
                     got[3 * i], got[3 * i + 1], got[3 * i + 2], hi, hi, lo);
    }
    for (int i = 48 * G; i < 48 * G + 8; i++)
        assert_int_equal(got[i], 0xabcd);
    kn_force_path("auto");
}

static void check_conv_prec(int cin, int h, int w, int cout, int kh, int kw, int stride, int pad,
                            int act, int prec);

/* Convolutions on split weights: f32-level against the exact sum. */
static void test_conv2d_bf16x3(void **state)
{
    use_path(state);
    check_conv_prec(3, 13, 11, 8, 3, 3, 2, 1, KN_ACT_RELU, KN_BF16X3);
    check_conv_prec(5, 7, 7, 17, 1, 1, 1, 0, KN_ACT_GELU, KN_BF16X3);
    check_conv_prec(7, 9, 9, 40, 3, 3, 1, 1, KN_ACT_NONE, KN_BF16X3); /* K = 63 */
    kn_scratch_fail_for_tests(1);
    check_conv_prec(3, 13, 11, 8, 3, 3, 2, 1, KN_ACT_RELU, KN_BF16X3);
    kn_scratch_fail_for_tests(0);
}

/* The split rule: three bf16 products pay only where the bf16 tile runs
 * well past 3x the f32 FMA rate (AMX), never on VDPBF16PS (Zen 4/5: 2x,
 * Sapphire Rapids 0.46x); kn_force_bf16x3 turns it on for tests, and
 * kn_path_info states the standing. */
static void test_bf16x3_rule(void **state)
{
    (void)state;
    assert_int_equal(kn_bf16x3_wins(7.1e12, 4.76e11), 1); /* AMX, 15x */
    assert_int_equal(kn_bf16x3_wins(4.5e11, 2.41e11), 0); /* Zen 5, 1.87x */
    assert_int_equal(kn_bf16x3_wins(2.0e11, 1.0e11), 0);  /* Zen 4 */
    assert_int_equal(kn_bf16x3_wins(2.2e11, 4.76e11), 0); /* Sapphire Rapids VDPBF16PS */
    assert_int_equal(kn_bf16x3_wins(3.0e11, 1.0e11), 0);  /* break-even */
    assert_int_equal(kn_bf16x3_wins(4.0e11, 1.0e11), 0);
    assert_int_equal(kn_bf16x3_wins(4.5e11, 1.0e11), 1);
    assert_int_equal(kn_bf16x3_wins(0.0, 0.0), 0);
    char buf[1024];
    assert_int_equal(kn_force_path("auto"), 0);
    kn_path_info(buf, sizeof buf);
    assert_non_null(strstr(buf, "split bf16 (bf16x3): "));
    int worth = kn_bf16x3_worth();
    assert_int_equal(worth, strstr(buf, "bf16x3): worth it") != NULL);
    kn_force_bf16x3(1);
    assert_int_equal(kn_bf16x3_worth(), 1);
    kn_path_info(buf, sizeof buf);
    assert_non_null(strstr(buf, "forced on by kn_force_bf16x3"));
    kn_force_bf16x3(0);
    assert_int_equal(kn_bf16x3_worth(), worth);
    /* no native bf16 tile: never worth it, packs as f32 */
    assert_int_equal(kn_force_path("portable"), 0);
    assert_int_equal(kn_bf16x3_worth(), 0);
    kn_path_info(buf, sizeof buf);
    assert_non_null(strstr(buf, "no native bf16 tile, packs as f32"));
    assert_int_equal(kn_force_path("auto"), 0);
}

/* A NaN weight poisons only its own output column: packing pads K (to 2,
 * or to 32 for AMX) with zeros, never with the next row's values. */
static void test_weight_nan_stays_in_its_column(void **state)
{
    use_path(state);
    for (int prec = KN_F32; prec <= KN_BF16X3; prec++)
        for (int K = 1; K <= 40; K += 13) {
            int M = 3, N = 3;
            float *A = rand_buf((size_t)M * K, 1.0f), *W = rand_buf((size_t)N * K, 1.0f);
            float C[9];
            W[(size_t)1 * K] = NAN; /* row 1, k = 0: what row 0's padding would read */
            kn_packed *p = kn_pack(W, N, K, prec);
            assert_non_null(p);
            kn_linear(A, K, M, p, NULL, KN_ACT_NONE, NULL, 0, C, N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    if (isnan(C[i * N + j]) != (j == 1))
                        fail_msg("prec %d K %d: C[%d][%d] = %g", prec, K, i, j, C[i * N + j]);
            kn_packed_free(p);
            free(A);
            free(W);
        }
}

/* kern_amx_tiles.h's emulation against TDPBF16PS's definition: every
 * destination element adds, pair by pair, the two bf16 products of A's row
 * and B's pair row, on tiles of fewer rows and bytes than the maximum;
 * stores write only rows x colsb. */
static void test_amx_tile_emulation(void **state)
{
    (void)state;
    kt_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    int M = 11, N = 13, K = 7; /* rows of C/A, columns (floats) of C/B, pairs */
    c.rows[0] = (uint8_t)M;
    c.colsb[0] = (uint16_t)(N * 4);
    c.rows[1] = (uint8_t)M;
    c.colsb[1] = (uint16_t)(K * 4);
    c.rows[2] = (uint8_t)K;
    c.colsb[2] = (uint16_t)(N * 4);
    kt_loadconfig(&c);
    uint16_t a[16 * 32], b[16 * 32];
    float cin[16 * 16], out[16 * 16];
    for (int i = 0; i < 16 * 32; i++) {
        float fa = bf16r(frand()), fb = bf16r(frand());
        uint32_t ua, ub;
        memcpy(&ua, &fa, 4);
        memcpy(&ub, &fb, 4);
        a[i] = (uint16_t)(ua >> 16);
        b[i] = (uint16_t)(ub >> 16);
    }
    for (int i = 0; i < 16 * 16; i++)
        cin[i] = frand();
    kt_loadd(0, cin, 64);
    kt_loadd(1, a, 64);
    kt_loadd(2, b, 64);
    kt_dpbf16ps(0, 1, 2);
    for (int i = 0; i < 16 * 16; i++)
        out[i] = -7.0f;
    kt_stored(0, out, 64);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            if (m >= M || n >= N) { /* outside the tile: never written */
                assert_true(out[m * 16 + n] == -7.0f);
                continue;
            }
            float want = cin[m * 16 + n];
            for (int k = 0; k < K; k++)
                for (int h = 0; h < 2; h++) {
                    uint32_t ua = (uint32_t)a[m * 32 + 2 * k + h] << 16;
                    uint32_t ub = (uint32_t)b[k * 32 + 2 * n + h] << 16;
                    float fa, fb;
                    memcpy(&fa, &ua, 4);
                    memcpy(&fb, &ub, 4);
                    want += fa * fb;
                }
            assert_true(out[m * 16 + n] == want);
        }
    /* tilezero zeroes; so does a new configuration, whose narrower tiles
     * store only their own rows x colsb */
    kt_zero(0);
    kt_stored(0, out, 64);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            assert_true(out[m * 16 + n] == 0.0f);
    kt_loadd(0, cin, 64);
    c.rows[0] = 3;
    c.colsb[0] = 8;
    kt_loadconfig(&c);
    for (int i = 0; i < 16 * 16; i++)
        out[i] = -7.0f;
    kt_stored(0, out, 64);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++)
            assert_true(out[m * 16 + n] == (m < 3 && n < 2 ? 0.0f : -7.0f));
    /* TILERELEASE leaves no configuration: the next user loads one */
    kt_release();
    assert_int_equal(kt_regs.configured, 0);
}

/* The AMX rules: usable only with the CPU bits, XCR0's tile state and
 * Linux's permission, the reason naming the first missing one; chosen only
 * when TDPBF16PS clearly beats the best other bf16 rate. */
static void test_amx_availability_and_dispatch_rule(void **state)
{
    (void)state;
    char why[160];
    assert_int_equal(kn_amx_usable(0, 1, 0, why, sizeof why), 0);
    assert_non_null(strstr(why, "no AMX"));
    assert_int_equal(kn_amx_usable(1, 0, 0, why, sizeof why), 0);
    assert_non_null(strstr(why, "XCR0"));
    assert_int_equal(kn_amx_usable(1, 1, EPERM, why, sizeof why), 0);
    assert_non_null(strstr(why, "refused"));
    assert_non_null(strstr(why, "ARCH_REQ_XCOMP_PERM"));
    assert_int_equal(kn_amx_usable(1, 1, 0, why, sizeof why), 1);
    assert_int_equal(kn_amx_usable(1, 1, 0, NULL, 0), 1);
    assert_int_equal(kn_amx_wins(3.5e12, 2.2e11), 1); /* Sapphire Rapids, one core */
    assert_int_equal(kn_amx_wins(1.0e11, 1.0e11), 0);
    assert_int_equal(kn_amx_wins(0.0, 0.0), 0);
    /* this CPU's answer is in kn_path_info's line, and forcing follows it */
    char buf[1024];
    assert_non_null(kn_init());
    kn_path_info(buf, sizeof buf);
    if (kn_force_path("amx-bf16") == 0)
        assert_non_null(strstr(buf, "amx-bf16 available"));
    else
        assert_non_null(strstr(buf, "amx-bf16 unavailable: "));
    kn_force_path("auto");
}

/* C = alpha A op(B) + beta C for both layouts, with padded leading dims. */
static void check_gemm(int nt, int M, int N, int K, float alpha, float beta)
{
    int lda = K + 2, ldb = (nt ? K : N) + 3, ldc = N + 1;
    int brows = nt ? N : K;
    float *A = rand_buf((size_t)M * lda, 1.0f);
    float *B = rand_buf((size_t)brows * ldb, 1.0f);
    float *C = rand_buf((size_t)M * ldc, 1.0f);
    float *C0 = malloc((size_t)M * ldc * sizeof *C0);
    assert_non_null(C0);
    memcpy(C0, C, (size_t)M * ldc * sizeof *C0);
    if (nt)
        kn_gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        kn_gemm_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < K; k++) {
                double b = nt ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += A[(size_t)i * lda + k] * b;
                sa += fabs(A[(size_t)i * lda + k] * b);
            }
            double want = alpha * s + (beta != 0 ? beta * C0[(size_t)i * ldc + j] : 0);
            double tol = 2e-5 * (fabs(alpha) * sa + fabs(beta * C0[(size_t)i * ldc + j])) + 1e-6;
            double got = C[(size_t)i * ldc + j];
            if (fabs(got - want) > tol)
                fail_msg("gemm_%s M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.8g, want %.8g",
                         nt ? "nt" : "nn", M, N, K, alpha, beta, i, j, got, want);
        }
    free(A);
    free(B);
    free(C);
    free(C0);
}

static void test_gemm_nt_nn_alpha_beta(void **state)
{
    use_path(state);
    for (int nt = 0; nt <= 1; nt++) {
        check_gemm(nt, 1, 1, 1, 1.0f, 0.0f);
        check_gemm(nt, 50, 50, 64, 0.125f, 0.0f);
        check_gemm(nt, 77, 64, 77, 1.0f, 1.0f);
        check_gemm(nt, 5, 19, 300, -0.5f, 2.0f);
        check_gemm(nt, 31, 200, 700, 1.0f, 0.5f);
        check_gemm(nt, 160, 37, 23, 2.0f, 0.0f);
    }
}

static void test_layernorm_rows(void **state)
{
    use_path(state);
    int rows = 9, dim = 77, ld = 80;
    float *x = rand_buf((size_t)rows * ld, 3.0f);
    float *g = rand_buf(dim, 1.0f), *b = rand_buf(dim, 1.0f);
    float *o = rand_buf((size_t)rows * ld, 1.0f);
    for (int i = 0; i < dim; i++) {
        x[i] += 100.0f;                          /* a large mean must not cost precision */
        x[ld + i] = 1000.0f + 0.01f * x[ld + i]; /* nor a tiny spread around a huge one */
    }
    kn_layernorm(x, ld, rows, dim, g, b, 1e-5f, o, ld);
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < dim; i++)
            m += x[(size_t)r * ld + i];
        m /= dim;
        for (int i = 0; i < dim; i++)
            v += (x[(size_t)r * ld + i] - m) * (x[(size_t)r * ld + i] - m);
        v /= dim;
        for (int i = 0; i < dim; i++) {
            double want = (x[(size_t)r * ld + i] - m) / sqrt(v + 1e-5) * g[i] + b[i];
            assert_float_equal(o[(size_t)r * ld + i], want, 2e-5 * (1 + fabs(want)));
        }
    }
    /* in place */
    kn_layernorm(x, ld, rows, dim, NULL, NULL, 0.0f, x, ld); /* no eps: variance 1 */
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < dim; i++)
            m += x[(size_t)r * ld + i];
        for (int i = 0; i < dim; i++)
            v += x[(size_t)r * ld + i] * x[(size_t)r * ld + i];
        assert_float_equal(m / dim, 0.0, 2e-6);
        assert_float_equal(v / dim, 1.0, 1e-4);
    }
    free(x);
    free(g);
    free(b);
    free(o);
}

static void test_activations_match_reference(void **state)
{
    use_path(state);
    size_t n = 40003; /* more than one chunk, and a ragged tail */
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++)
        x[i] = -12.0f + 24.0f * (float)i / (float)n;
    x[0] = -100.0f;
    x[1] = 100.0f;
    x[2] = 0.0f;
    for (int act = 0; act <= KN_ACT_RELU; act++) {
        memcpy(y, x, n * sizeof *x);
        kn_activate(y, n, act);
        for (size_t i = 0; i < n; i++) {
            double want = act_ref(x[i], act);
            if (fabs(y[i] - want) > 2e-6 * (1 + fabs(want)))
                fail_msg("act %d at x=%.8g: %.9g, want %.9g", act, x[i], y[i], want);
        }
    }
    free(x);
    free(y);
}

/* Reference attention for one layout: q rows of stride ldq, k/v stride ldkv. */
static void attn_ref(const float *q, int ldq, int nq, const float *k, const float *v, int ldkv,
                     int nk, int width, int heads, int causal, double *out)
{
    int hd = width / heads;
    double *s = malloc((size_t)nk * sizeof *s);
    assert_non_null(s);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < nq; i++) {
            int n = causal ? i + 1 : nk;
            double mx = -1e300, sum = 0;
            for (int j = 0; j < n; j++) {
                double d = 0;
                for (int t = 0; t < hd; t++)
                    d += (double)q[(size_t)i * ldq + h * hd + t] * k[(size_t)j * ldkv + h * hd + t];
                s[j] = d / sqrt((double)hd);
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < n; j++) {
                s[j] = exp(s[j] - mx);
                sum += s[j];
            }
            for (int t = 0; t < hd; t++) {
                double o = 0;
                for (int j = 0; j < n; j++)
                    o += s[j] / sum * v[(size_t)j * ldkv + h * hd + t];
                out[(size_t)i * width + h * hd + t] = o;
            }
        }
    free(s);
}

static void check_attention(int seq, int width, int heads, int causal)
{
    float *qkv = rand_buf((size_t)seq * 3 * width, 2.0f);
    float *out = rand_buf((size_t)seq * width, 1.0f);
    float *scr = malloc(kn_attention_scratch(seq, heads) * sizeof(float));
    double *ref = malloc((size_t)seq * width * sizeof *ref);
    assert_non_null(scr);
    assert_non_null(ref);
    kn_attention(qkv, seq, width, heads, causal, out, scr);
    attn_ref(qkv, 3 * width, seq, qkv + width, qkv + 2 * width, 3 * width, seq, width, heads,
             causal, ref);
    for (size_t i = 0; i < (size_t)seq * width; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i])))
            fail_msg("attention seq=%d width=%d heads=%d causal=%d: out[%zu] = %.8g, want %.8g",
                     seq, width, heads, causal, i, out[i], ref[i]);
    free(qkv);
    free(out);
    free(scr);
    free(ref);
}

static void test_attention_self_and_causal(void **state)
{
    use_path(state);
    check_attention(1, 64, 1, 0);
    check_attention(50, 768, 12, 0);
    check_attention(77, 512, 8, 1);
    check_attention(17, 96, 3, 1);
}

/* The batched form equals per-sequence attention, sequence by sequence. */
static void check_attention_batch(int nseq, int seq, int width, int heads, int causal)
{
    size_t in = (size_t)seq * 3 * width, on = (size_t)seq * width;
    float *qkv = rand_buf(nseq * in, 2.0f), *out = rand_buf(nseq * on, 1.0f);
    float *scr = malloc(kn_attention_scratch(seq, heads) * sizeof(float));
    double *ref = malloc(on * sizeof *ref);
    assert_non_null(scr);
    assert_non_null(ref);
    kn_attention_batch(qkv, nseq, seq, width, heads, causal, out, scr);
    for (int s = 0; s < nseq; s++) {
        const float *b = qkv + s * in;
        attn_ref(b, 3 * width, seq, b + width, b + 2 * width, 3 * width, seq, width, heads, causal,
                 ref);
        for (size_t i = 0; i < on; i++)
            if (fabs(out[s * on + i] - ref[i]) > 1e-5 * (1 + fabs(ref[i])))
                fail_msg("attention batch %d seq=%d causal=%d: out[%d][%zu] = %.8g, want %.8g",
                         nseq, seq, causal, s, i, out[s * on + i], ref[i]);
    }
    free(qkv);
    free(out);
    free(scr);
    free(ref);
}

static void test_attention_batch_matches_per_sequence(void **state)
{
    use_path(state);
    check_attention_batch(3, 50, 192, 3, 0);
    check_attention_batch(2, 77, 128, 2, 1);
    check_attention_batch(1, 7, 64, 4, 1);
    check_attention_batch(2, 190, 64, 1, 0); /* longer than the per-thread buffer */
    kn_scratch_fail_for_tests(1);            /* and without any buffer */
    check_attention_batch(2, 20, 64, 2, 1);
    kn_scratch_fail_for_tests(0);
}

/* Sequences of different lengths back to back (kn_attention_var) equal the
 * reference attention of each sequence on its own rows. */
static void check_attention_var(int nseq, const int *lens, int width, int heads, int causal)
{
    int off[8], maxlen = 0;
    assert_true(nseq < 8);
    off[0] = 0;
    for (int s = 0; s < nseq; s++) {
        off[s + 1] = off[s] + lens[s];
        maxlen = lens[s] > maxlen ? lens[s] : maxlen;
    }
    size_t rows = (size_t)off[nseq];
    float *qkv = rand_buf(rows * 3 * width, 2.0f), *out = rand_buf(rows * width, 1.0f);
    float *scr = malloc(kn_attention_scratch(maxlen, heads) * sizeof(float));
    double *ref = malloc((size_t)maxlen * width * sizeof *ref);
    assert_non_null(scr);
    assert_non_null(ref);
    kn_attention_var(qkv, nseq, off, width, heads, causal, out, scr);
    for (int s = 0; s < nseq; s++) {
        const float *b = qkv + (size_t)off[s] * 3 * width;
        attn_ref(b, 3 * width, lens[s], b + width, b + 2 * width, 3 * width, lens[s], width, heads,
                 causal, ref);
        for (size_t i = 0; i < (size_t)lens[s] * width; i++) {
            float got = out[(size_t)off[s] * width + i];
            if (fabs(got - ref[i]) > 1e-5 * (1 + fabs(ref[i])))
                fail_msg("attention var seq %d (len %d) causal=%d: out[%zu] = %.8g, want %.8g", s,
                         lens[s], causal, i, got, ref[i]);
        }
    }
    free(qkv);
    free(out);
    free(scr);
    free(ref);
}

static void test_attention_var_matches_per_sequence(void **state)
{
    use_path(state);
    static const int a[] = {9, 77, 1, 23, 40}, b[] = {50, 12}, c[] = {190, 30};
    check_attention_var(5, a, 128, 2, 1);
    check_attention_var(2, b, 192, 3, 0);
    check_attention_var(2, c, 64, 1, 1); /* longer than the per-thread buffer */
    kn_scratch_fail_for_tests(1);        /* and without any buffer */
    check_attention_var(5, a, 64, 2, 1);
    kn_scratch_fail_for_tests(0);
}

static void test_attention_qkv_cross(void **state)
{
    use_path(state);
    int nq = 3, nk = 50, width = 128, heads = 4;
    float *q = rand_buf((size_t)nq * width, 2.0f), *k = rand_buf((size_t)nk * width, 2.0f);
    float *v = rand_buf((size_t)nk * width, 2.0f), *out = rand_buf((size_t)nq * width, 1.0f);
    float *scr = malloc(kn_attention_scratch(nk, heads) * sizeof(float));
    double *ref = malloc((size_t)nq * width * sizeof *ref);
    assert_non_null(scr);
    assert_non_null(ref);
    kn_attention_qkv(q, nq, k, v, nk, width, heads, out, scr);
    attn_ref(q, width, nq, k, v, width, nk, width, heads, 0, ref);
    for (size_t i = 0; i < (size_t)nq * width; i++)
        assert_float_equal(out[i], ref[i], 1e-5 * (1 + fabs(ref[i])));
    free(q);
    free(k);
    free(v);
    free(out);
    free(scr);
    free(ref);
}

static void check_conv_prec(int cin, int h, int w, int cout, int kh, int kw, int stride, int pad,
                            int act, int prec)
{
    int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    int K = cin * kh * kw;
    float *in = rand_buf((size_t)cin * h * w, 1.0f);
    float *W = rand_buf((size_t)cout * K, 0.5f);
    float *bias = rand_buf(cout, 1.0f);
    float *out = rand_buf((size_t)cout * oh * ow, 1.0f);
    size_t ns = kn_conv2d_scratch(cin, h, w, kh, kw, stride, pad);
    assert_int_equal(ns, (size_t)oh * ow * K);
    float *scr = malloc(ns * sizeof(float));
    assert_non_null(scr);
    kn_packed *p = kn_pack(W, cout, K, prec);
    assert_non_null(p);
    kn_conv2d(in, cin, h, w, p, kh, kw, stride, pad, bias, act, out, scr);
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double s = bias[co], sa = fabs(bias[co]);
                for (int c = 0; c < cin; c++)
                    for (int dy = 0; dy < kh; dy++)
                        for (int dx = 0; dx < kw; dx++) {
                            int iy = y * stride - pad + dy, ix = x * stride - pad + dx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            double t = (double)in[((size_t)c * h + iy) * w + ix] *
                                       W[(size_t)co * K + (c * kh + dy) * kw + dx];
                            s += t;
                            sa += fabs(t);
                        }
                double want = act_ref(s, act), got = out[((size_t)co * oh + y) * ow + x];
                if (fabs(got - want) > 2e-5 * sa + 1e-6)
                    fail_msg("conv cin=%d %dx%d k=%dx%d s=%d p=%d prec=%d: out[%d][%d][%d] = "
                             "%.8g, want %.8g",
                             cin, h, w, kh, kw, stride, pad, prec, co, y, x, got, want);
            }
    kn_packed_free(p);
    free(in);
    free(W);
    free(bias);
    free(out);
    free(scr);
}

static void check_conv(int cin, int h, int w, int cout, int kh, int kw, int stride, int pad,
                       int act)
{
    check_conv_prec(cin, h, w, cout, kh, kw, stride, pad, act, KN_F32);
}

static void test_conv2d_im2col(void **state)
{
    use_path(state);
    check_conv(3, 64, 64, 40, 32, 32, 32, 0, KN_ACT_NONE); /* ViT patch embedding, 2x2 */
    check_conv(3, 13, 11, 8, 3, 3, 2, 1, KN_ACT_RELU);     /* ResNet stem style */
    check_conv(5, 7, 7, 17, 1, 1, 1, 0, KN_ACT_GELU);      /* 1x1 */
    check_conv(2, 9, 6, 3, 3, 2, 1, 2, KN_ACT_NONE);       /* wide padding */
}

/* Without packing buffers (allocation failure) every kernel still computes
 * the right result through its plain-loop fallback. */
static void test_out_of_memory_fallbacks(void **state)
{
    use_path(state);
    kn_scratch_fail_for_tests(1);
    for (int prec = KN_F32; prec <= KN_BF16X3; prec++) {
        check_linear(13, 33, 70, prec, KN_ACT_GELU, 1, 1, 0);
        check_linear(7, 40, 700, prec, KN_ACT_QUICKGELU, 1, 1, 1);
        check_linear(9, 17, 30, prec, KN_ACT_NONE, 1, 1, 1);
    }
    check_gemm(1, 9, 21, 70, 0.5f, 1.0f);
    check_gemm(0, 9, 21, 70, 1.0f, 0.0f);
    check_attention(17, 96, 3, 1);
    check_conv(3, 13, 11, 8, 3, 3, 2, 1, KN_ACT_RELU);
    kn_scratch_fail_for_tests(0);
}

/* A weight packed under one path keeps working after another path is
 * chosen (it carries its own layout), and a NaN input poisons exactly the
 * rows it is in, in both precisions. */
static void test_packed_weight_outlives_path_and_nan_stays_local(void **state)
{
    use_path(state);
    int M = 4, N = 20, K = 40;
    float *A = rand_buf((size_t)M * K, 1.0f), *W = rand_buf((size_t)N * K, 1.0f);
    float C1[4 * 20], C2[4 * 20];
    for (int prec = KN_F32; prec <= KN_BF16X3; prec++) {
        kn_packed *p = kn_pack(W, N, K, prec);
        assert_non_null(p);
        kn_linear(A, K, M, p, NULL, KN_ACT_NONE, NULL, 0, C1, N);
        assert_int_equal(kn_force_path("portable"), 0);
        kn_linear(A, K, M, p, NULL, KN_ACT_NONE, NULL, 0, C2, N);
        assert_memory_equal(C1, C2, sizeof C1);
        A[K + 7] = NAN; /* row 1 */
        kn_linear(A, K, M, p, NULL, KN_ACT_GELU, NULL, 0, C1, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                assert_true(isnan(C1[i * N + j]) == (i == 1));
        A[K + 7] = 0.5f;
        assert_int_equal(kn_force_path(*state), 0);
        kn_packed_free(p);
    }
    free(A);
    free(W);
}

static void test_path_selection(void **state)
{
    (void)state;
    const char *name = kn_init();
    assert_non_null(name);
    assert_true(!strcmp(name, "portable") || !strcmp(name, "avx2") || !strcmp(name, "avx512") ||
                !strcmp(name, "avx512-bf16") || !strcmp(name, "amx-bf16"));
    assert_int_equal(kn_force_path("portable"), 0);
    assert_string_equal(kn_init(), "portable");
    assert_int_equal(kn_force_path("no-such-isa"), -1);
    assert_int_equal(kn_force_path(NULL), -1);
    assert_string_equal(kn_init(), "portable");
}

/* The bf16 rule: the native tile only when VDPBF16PS clearly beats f32 FMA
 * (Zen 4: 2x; Sapphire Rapids: 0.46x; a tie stays on f32). */
static void test_bf16_dispatch_rule(void **state)
{
    (void)state;
    assert_int_equal(kn_bf16_native_wins(2.0e11, 1.0e11), 1);  /* Zen 4 */
    assert_int_equal(kn_bf16_native_wins(4.3e11, 2.41e11), 1); /* Zen 5 */
    assert_int_equal(kn_bf16_native_wins(2.2e11, 4.76e11), 0); /* Sapphire Rapids */
    assert_int_equal(kn_bf16_native_wins(1.0e11, 1.0e11), 0);
    assert_int_equal(kn_bf16_native_wins(1.05e11, 1.0e11), 0);
    assert_int_equal(kn_bf16_native_wins(0.0, 0.0), 0); /* nothing measured */
}

/* kn_path_info names the path in use first, the paths the CPU has, the
 * bf16 reason (a measured ratio where the CPU has AVX512_BF16), says when a
 * path was forced, and follows snprintf's truncation rule. */
static void test_path_info(void **state)
{
    (void)state;
    char buf[1024], small[8];
    assert_int_equal(kn_force_path("auto"), 0);
    const char *name = kn_init();
    int n = kn_path_info(buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_int_equal((int)strlen(buf), n);
    assert_true(!strncmp(buf, name, strlen(name)) && buf[strlen(name)] == ' ');
    assert_non_null(strstr(buf, "chosen at run time"));
    assert_non_null(strstr(buf, "cpu has: "));
    assert_non_null(strstr(buf, "portable"));
    assert_non_null(strstr(buf, "bf16 weights: "));
    if (kn_force_path("avx512-bf16") == 0) { /* the CPU (or SIMDe) has it: rates measured */
        assert_non_null(strstr(buf, "avx512-bf16 avx512 avx2 portable"));
        assert_non_null(strstr(buf, "VDPBF16PS measured "));
        /* the choice follows the rule on the rates it printed */
        assert_int_equal(!strcmp(name, "avx512-bf16"), strstr(buf, "native VDPBF16PS") != NULL);
    }
    assert_int_equal(kn_force_path("portable"), 0);
    n = kn_path_info(buf, sizeof buf);
    assert_true(!strncmp(buf, "portable (", 10));
    if (strcmp(name, "portable"))
        assert_non_null(strstr(buf, "forced by kn_force_path"));
    assert_int_equal(kn_path_info(small, sizeof small), n);
    assert_int_equal((int)strlen(small), (int)sizeof small - 1);
    assert_int_equal(kn_force_path(name), 0);
    kn_path_info(buf, sizeof buf);
    assert_non_null(strstr(buf, "chosen at run time"));
}

#define PATH_TEST(fn, path)                                                                        \
    {                                                                                              \
        .name = #fn "/" path, .test_func = fn, .setup_func = NULL, .teardown_func = reset_path,    \
        .initial_state = (void *)path                                                              \
    }
#define PATH_TESTS(fn)                                                                             \
    PATH_TEST(fn, "portable"), PATH_TEST(fn, "avx2"), PATH_TEST(fn, "avx512"),                     \
        PATH_TEST(fn, "avx512-bf16"), PATH_TEST(fn, "amx-bf16")

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_selection),
        cmocka_unit_test(test_bf16_dispatch_rule),
        cmocka_unit_test(test_path_info),
        cmocka_unit_test(test_amx_tile_emulation),
        cmocka_unit_test(test_amx_availability_and_dispatch_rule),
        cmocka_unit_test(test_bf16x3_rule),
        cmocka_unit_test(test_bf16x3_vector_split_matches_definition),
        PATH_TESTS(test_linear_bf16x3_f32_level),
        PATH_TESTS(test_bf16x3_bound_fails_plain_bf16),
        PATH_TESTS(test_bf16x3_drops_only_lo_lo),
        PATH_TESTS(test_conv2d_bf16x3),
        PATH_TESTS(test_linear_bf16_tile_edges),
        PATH_TESTS(test_weight_nan_stays_in_its_column),
        PATH_TESTS(test_linear_f32_all_epilogues),
        PATH_TESTS(test_linear_bf16_matches_rounded_reference),
        PATH_TESTS(test_gemm_nt_nn_alpha_beta),
        PATH_TESTS(test_layernorm_rows),
        PATH_TESTS(test_activations_match_reference),
        PATH_TESTS(test_attention_self_and_causal),
        PATH_TESTS(test_attention_qkv_cross),
        PATH_TESTS(test_attention_batch_matches_per_sequence),
        PATH_TESTS(test_attention_var_matches_per_sequence),
        PATH_TESTS(test_conv2d_im2col),
        PATH_TESTS(test_out_of_memory_fallbacks),
        PATH_TESTS(test_packed_weight_outlives_path_and_nan_stays_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
