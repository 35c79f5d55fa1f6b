/*
 * kern/kern.c: the CLIP compute kernels' driver and portable code: run-time
 * ISA dispatch (feature bits, then for bf16 measured VDPBF16PS / TDPBF16PS /
 * FMA rate comparisons; kn_path_info reports the choice), weight packing, the
 * cache-blocked OpenMP GEMM driver that feeds the per-ISA micro-kernels
 * (kern_avx2.c, kern_avx512.c, kern_amx.c), the portable micro-kernel, layer
 * norm, softmax, attention and im2col convolution. Split bf16 (KN_BF16X3)
 * is plain bf16 over a tripled K: only packing (kn_pack, pack_group) knows.
 *
 * Blocking (BLIS style). Weights are packed once (kn_pack) as panels [K][NR],
 * so a K block of a panel is one contiguous run. C is cut into MR x NR tiles;
 * the micro-kernel accumulates one tile over one K block and applies the
 * fused epilogue on the last. On ISAs that read A in place (AVX2, portable)
 * the threads share out tasks of (row block x panel chunk), each walking K
 * in long blocks: A rows stay in L2, each weight micro-panel streams from
 * L2/L3 and is reused by every row group of the block. Where A must be
 * packed (AVX-512's broadcast layout, bf16 pairs, bf16 rounding) the team
 * packs, per K block, all of A's rows once into a shared buffer, then
 * shares out (row block x panel chunk) tasks: two barriers per K block.
 */
#include "kern/kern.h"
#include "kern/kern_int.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KN_APACK_CAP (64 * 1024) /* floats of packed A (a row block x K block) */
#define KN_BPACK_CAP (64 * 1024) /* floats of packed B (unpacked GEMMs) */
#define KN_CONV_TMP  (32 * 1024) /* floats of conv output rows */
#define KN_PAR_MIN   (1 << 18)   /* multiply-adds below which a GEMM runs on one thread */

/* ---- per-thread scratch --------------------------------------------------
 * Packed A, packed B (unpacked GEMMs) and conv output rows: allocated on a
 * thread's first use and freed when the thread exits (a pthread key), so
 * threads that never run a kernel pay nothing (no big static TLS). When the
 * allocation fails the kernels fall back to slow loops that need none. */

#define KN_SCRATCH_FLOATS (KN_APACK_CAP + KN_BPACK_CAP + KN_CONV_TMP)

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static int g_scratch_key_ok;
static _Thread_local float *t_scratch;

/* The growable buffer a team packs all of A's rows into (one K block). */
static pthread_key_t g_big_key;
static int g_big_key_ok;
static _Thread_local void *t_big;
static _Thread_local size_t t_bigcap;

#define KN_BIG_KEEP ((size_t)32 << 20) /* bytes of team buffer kept between calls */

static void scratch_key_make(void)
{
    g_scratch_key_ok = pthread_key_create(&g_scratch_key, free) == 0;
    g_big_key_ok = pthread_key_create(&g_big_key, free) == 0;
}

static int g_scratch_fail;

void kn_scratch_fail_for_tests(int on)
{
    __atomic_store_n(&g_scratch_fail, on, __ATOMIC_RELAXED);
}

/* This thread's scratch (KN_SCRATCH_FLOATS, 64-byte aligned), or NULL when
 * out of memory. */
static float *scratch_get(void)
{
    if (__atomic_load_n(&g_scratch_fail, __ATOMIC_RELAXED))
        return NULL;
    if (t_scratch)
        return t_scratch;
    pthread_once(&g_scratch_once, scratch_key_make);
    float *p = aligned_alloc(64, KN_SCRATCH_FLOATS * sizeof(float));
    if (!p)
        return NULL;
    if (g_scratch_key_ok && pthread_setspecific(g_scratch_key, p) != 0) {
        free(p);
        return NULL;
    }
    t_scratch = p;
    return p;
}

/* This thread's team buffer of at least bytes (64-byte aligned), or NULL
 * when out of memory. Freed at thread exit, or by big_release. */
static void *big_get(size_t bytes)
{
    if (__atomic_load_n(&g_scratch_fail, __ATOMIC_RELAXED))
        return NULL;
    if (t_big && t_bigcap >= bytes)
        return t_big;
    pthread_once(&g_scratch_once, scratch_key_make);
    if (!g_big_key_ok)
        return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (!p)
        return NULL;
    if (pthread_setspecific(g_big_key, p) != 0) {
        free(p);
        return NULL;
    }
    free(t_big);
    t_big = p;
    t_bigcap = bytes;
    return p;
}

/* Drops an unusually large team buffer after use. */
static void big_release(void)
{
    if (t_bigcap > KN_BIG_KEEP) {
        pthread_setspecific(g_big_key, NULL);
        free(t_big);
        t_big = NULL;
        t_bigcap = 0;
    }
}

#define SCR_APACK(s)   (s)
#define SCR_BPACK(s)   ((s) + KN_APACK_CAP)
#define SCR_CONVTMP(s) ((s) + KN_APACK_CAP + KN_BPACK_CAP)

/* ---- scalar helpers and the portable ISA --------------------------------- */

float kn_act1(float x, int act)
{
    switch (act) {
    case KN_ACT_GELU:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case KN_ACT_QUICKGELU:
        return x / (1.0f + expf(-1.702f * x));
    case KN_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    default:
        return x;
    }
}

void kn_tile_store(const kn_tile *t, const float *acc, int ld)
{
    for (int i = 0; i < t->mr; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        const float *ci = t->cin ? t->cin + (size_t)i * t->ldcin : NULL;
        const float *r = t->res ? t->res + (size_t)i * t->ldr : NULL;
        for (int j = 0; j < t->nc; j++) {
            float v = t->alpha * acc[i * ld + j];
            if (ci)
                v += t->beta * ci[j];
            if (t->last) {
                if (t->bias)
                    v += t->bias[j];
                v = kn_act1(v, t->act);
                if (r)
                    v += r[j];
            }
            c[j] = v;
        }
    }
}

#define PORT_MR 4
#define PORT_NR 16

static void ukr_portable(const kn_tile *t)
{
    float acc[PORT_MR][PORT_NR];
    memset(acc, 0, sizeof acc);
    const float *a = t->a, *b = t->b;
    for (int i = 0; i < t->mr; i++) {
        const float *ai = a + (size_t)i * t->lda;
        for (int k = 0; k < t->kc; k++) {
            float av = ai[k];
            for (int j = 0; j < PORT_NR; j++)
                acc[i][j] += av * b[k * PORT_NR + j];
        }
    }
    kn_tile_store(t, &acc[0][0], PORT_NR);
}

static void act_portable(float *x, size_t n, int act)
{
    if (act == KN_ACT_NONE)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = kn_act1(x[i], act);
}

static void softmax_portable(float *x, int n)
{
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void layernorm_portable(const float *x, int dim, const float *gamma, const float *beta,
                               float eps, float *out);

const kn_isa kn_isa_portable = {
    .name = "portable",
    .mr = PORT_MR,
    .nr = PORT_NR,
    .kc = 256,
    .mc = 128,
    .bf16_mr = 0,
    .packs_a = 0,
    .ukr = ukr_portable,
    .ukr_bf16 = NULL,
    .act = act_portable,
    .softmax = softmax_portable,
    .layernorm = layernorm_portable,
};

/* ---- dispatch ------------------------------------------------------------ */

static const kn_isa *g_isa;

/* ---- AMX: usable only where the CPU has it, the OS enabled its state and
 * Linux granted this process tile data (asked once) ---------------------- */

static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;
static int g_amx_ok;
static char g_amx_why[160];

static int cpu_has(const char *name);

static void amx_check(void)
{
    if (!cpu_has("avx512")) { /* the amx-bf16 path is AVX-512's otherwise */
        snprintf(g_amx_why, sizeof g_amx_why, "no AVX-512");
        return;
    }
    g_amx_ok = kn_amx_os_check(g_amx_why, sizeof g_amx_why);
}

int kn_amx_usable(int cpu_bits, int xcr0_ok, int perm_errno, char *why, size_t len)
{
    char tmp[1];
    if (!why) {
        why = tmp;
        len = sizeof tmp;
    }
    if (!cpu_bits) {
        snprintf(why, len, "no AMX-TILE/AMX-BF16 CPU bits");
        return 0;
    }
    if (!xcr0_ok) {
        snprintf(why, len, "the OS has not enabled AMX tile state (XCR0)");
        return 0;
    }
    if (perm_errno) {
        snprintf(why, len, "Linux refused tile data (arch_prctl ARCH_REQ_XCOMP_PERM: %s)",
                 strerror(perm_errno));
        return 0;
    }
    snprintf(why, len, "CPU bits, XCR0 tile state and Linux permission");
    return 1;
}

int kn_amx_wins(double amx_flops, double other_flops)
{
    return amx_flops > 1.1 * other_flops;
}

static int cpu_has(const char *name)
{
    if (!strcmp(name, "amx-bf16")) {
        pthread_once(&g_amx_once, amx_check);
        return g_amx_ok;
    }
#ifdef KN_EMULATE_AVX512
    if (!strncmp(name, "avx512", 6)) /* kern_avx512.c runs on SIMDe */
        return 1;
#endif
    __builtin_cpu_init();
    if (!strcmp(name, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    if (!strcmp(name, "avx512-bf16"))
        return cpu_has("avx512") && __builtin_cpu_supports("avx512bf16");
    if (!strcmp(name, "portable"))
        return 1;
    return 0;
}

static const kn_isa *isa_named(const char *name)
{
    if (!strcmp(name, "amx-bf16"))
        return &kn_isa_amx;
    if (!strcmp(name, "avx512-bf16"))
        return &kn_isa_avx512bf16;
    if (!strcmp(name, "avx512"))
        return &kn_isa_avx512;
    if (!strcmp(name, "avx2"))
        return &kn_isa_avx2;
    if (!strcmp(name, "portable"))
        return &kn_isa_portable;
    return NULL;
}

/* ---- dispatch by measured rate --------------------------------------------
 * Feature bits are not enough for bf16: VDPBF16PS runs at twice the f32
 * FMA rate on AMD Zen 4, about 1.8x on Zen 5, but at less than half of it
 * on Intel Sapphire Rapids. So where the CPU has AVX512_BF16, the first
 * dispatch times both on one thread (register-only loops, best of several
 * short interleaved runs, about 1 ms in all) and keeps the native bf16 tile
 * only when it wins; otherwise the "avx512" path serves, which runs bf16
 * weights as bf16-rounded floats on the f32 FMA tile (same results up to
 * float rounding). The choice and its reason are kept for kn_path_info. */

#ifdef KN_EMULATE_AVX512
#define KN_PROBE_ITERS 200 /* SIMDe: the rates mean nothing, keep it short */
#else
#define KN_PROBE_ITERS 40000 /* about 0.1 ms per run at 2 FMA/cycle */
#endif
#define KN_PROBE_RUNS 5
#if defined KN_EMULATE_AMX
#define KN_AMX_PROBE_ITERS 10
#else
#define KN_AMX_PROBE_ITERS 2000 /* 131 MFLOP: about 0.1 ms at AMX's rate */
#endif

static pthread_once_t g_dispatch_once = PTHREAD_ONCE_INIT;
static const kn_isa *g_auto;           /* the path the dispatch chose */
static char g_reason[512];             /* why (written once, by dispatch) */
static double g_rate_f32, g_rate_bf16; /* FLOP/s on one thread, 0 if not measured */
static double g_rate_amx;
static int g_forced; /* kn_force_path replaced the choice */

int kn_bf16_native_wins(double bf16_flops, double f32_flops)
{
    /* ties go to f32: the fallback gives the same features, and a
     * measurement within a few percent is noise */
    return bf16_flops > 1.1 * f32_flops;
}

static double probe_seconds(double (*fn)(long, float *), long iters, double *flops, float *sink)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *flops = fn(iters, sink);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
}

/* Best-of-runs rates of both probes, interleaved so that a disturbance
 * (another process, a frequency change) hits both alike. */
static void measure_rates(double *f32, double *bf16)
{
    float sink = 0.0f;
    double fl, best_f = 0.0, best_b = 0.0;
    /* warm-up: the upper 256 bits of the units may be powered down */
    probe_seconds(kn_avx512_probe_f32, KN_PROBE_ITERS, &fl, &sink);
    probe_seconds(kn_avx512_probe_bf16, KN_PROBE_ITERS, &fl, &sink);
    for (int r = 0; r < KN_PROBE_RUNS; r++) {
        double s = probe_seconds(kn_avx512_probe_f32, KN_PROBE_ITERS, &fl, &sink);
        if (s > 0.0 && fl / s > best_f)
            best_f = fl / s;
        s = probe_seconds(kn_avx512_probe_bf16, KN_PROBE_ITERS, &fl, &sink);
        if (s > 0.0 && fl / s > best_b)
            best_b = fl / s;
    }
    *f32 = best_f;
    *bf16 = best_b + (sink == 12345.0f ? 1e-30 : 0.0); /* keeps sink live */
}

/* Best-of-runs TDPBF16PS rate on this thread. */
static double measure_amx(void)
{
    float sink = 0.0f;
    double fl, best = 0.0;
    probe_seconds(kn_amx_probe, KN_AMX_PROBE_ITERS, &fl, &sink);
    for (int r = 0; r < KN_PROBE_RUNS; r++) {
        double s = probe_seconds(kn_amx_probe, KN_AMX_PROBE_ITERS, &fl, &sink);
        if (s > 0.0 && fl / s > best)
            best = fl / s;
    }
    return best + (sink == 12345.0f ? 1e-30 : 0.0);
}

static void dispatch(void)
{
    static const char *order[] = {"avx512", "avx2", "portable"};
    const kn_isa *isa = &kn_isa_portable;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        if (cpu_has(order[k])) {
            isa = isa_named(order[k]);
            break;
        }
    if (cpu_has("avx512-bf16")) {
        measure_rates(&g_rate_f32, &g_rate_bf16);
        double ratio = g_rate_f32 > 0.0 ? g_rate_bf16 / g_rate_f32 : 0.0;
        int win = kn_bf16_native_wins(g_rate_bf16, g_rate_f32);
        if (win)
            isa = &kn_isa_avx512bf16;
        snprintf(g_reason, sizeof g_reason,
                 "bf16 weights: %s; VDPBF16PS measured %.2fx the f32 FMA rate (%.0f vs %.0f "
                 "GFLOP/s on one thread)",
                 win ? "native VDPBF16PS tile" : "f32 FMA tile on bf16-rounded weights", ratio,
                 g_rate_bf16 / 1e9, g_rate_f32 / 1e9);
    } else if (isa == &kn_isa_avx512) {
        snprintf(g_reason, sizeof g_reason,
                 "bf16 weights: f32 FMA tile on bf16-rounded weights (no AVX512_BF16)");
    } else {
        snprintf(g_reason, sizeof g_reason,
                 "bf16 weights: f32 math on bf16-rounded weights (no "
                 "AVX-512)");
    }
    /* AMX against the best of the above for bf16 weights */
    size_t used = strlen(g_reason);
    if (cpu_has("amx-bf16")) {
        double other = isa == &kn_isa_avx512bf16 ? g_rate_bf16 : g_rate_f32;
        const char *oname = isa == &kn_isa_avx512bf16 ? "VDPBF16PS" : "f32 FMA";
        g_rate_amx = measure_amx();
        int win = kn_amx_wins(g_rate_amx, other);
        if (win) {
            isa = &kn_isa_amx;
            snprintf(g_reason, sizeof g_reason,
                     "bf16 weights: AMX TDPBF16PS tiles; amx-bf16 available (%s), TDPBF16PS "
                     "measured %.1fx the %s rate (%.0f vs %.0f GFLOP/s on one thread)",
                     g_amx_why, other > 0.0 ? g_rate_amx / other : 0.0, oname, g_rate_amx / 1e9,
                     other / 1e9);
        } else {
            snprintf(g_reason + used, sizeof g_reason - used,
                     "; amx-bf16 available (%s) but not measured faster: TDPBF16PS %.0f vs %s "
                     "%.0f GFLOP/s on one thread",
                     g_amx_why, g_rate_amx / 1e9, oname, other / 1e9);
        }
    } else {
        snprintf(g_reason + used, sizeof g_reason - used, "; amx-bf16 unavailable: %s", g_amx_why);
    }
    g_auto = isa;
    __atomic_store_n(&g_isa, isa, __ATOMIC_RELEASE);
}

static const kn_isa *isa_get(void)
{
    const kn_isa *i = __atomic_load_n(&g_isa, __ATOMIC_ACQUIRE);
    if (i)
        return i;
    pthread_once(&g_dispatch_once, dispatch);
    return __atomic_load_n(&g_isa, __ATOMIC_ACQUIRE);
}

const char *kn_init(void)
{
    return isa_get()->name;
}

int kn_force_path(const char *name)
{
    pthread_once(&g_dispatch_once, dispatch); /* the reason stays the dispatch's */
    if (name && !strcmp(name, "auto")) {
        __atomic_store_n(&g_isa, g_auto, __ATOMIC_RELEASE);
        __atomic_store_n(&g_forced, 0, __ATOMIC_RELEASE);
        return 0;
    }
    if (!name || !isa_named(name) || !cpu_has(name))
        return -1;
    __atomic_store_n(&g_isa, isa_named(name), __ATOMIC_RELEASE);
    __atomic_store_n(&g_forced, isa_named(name) != g_auto, __ATOMIC_RELEASE);
    return 0;
}

static void x3_reason(const kn_isa *isa, char *buf, size_t len);

int kn_path_info(char *buf, size_t len)
{
    const kn_isa *isa = isa_get();
    static const char *all[] = {"amx-bf16", "avx512-bf16", "avx512", "avx2", "portable"};
    char avail[80] = "";
    size_t used = 0;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (cpu_has(all[k])) {
            int w = snprintf(avail + used, sizeof avail - used, "%s%s", used ? " " : "", all[k]);
            if (w > 0 && (size_t)w < sizeof avail - used)
                used += (size_t)w;
        }
    int forced = __atomic_load_n(&g_forced, __ATOMIC_ACQUIRE);
    char x3[200];
    x3_reason(isa, x3, sizeof x3);
    int n =
        snprintf(buf, len, "%s (%s; cpu has: %s; %s; %s)", isa->name,
                 forced ? "forced by kn_force_path" : "chosen at run time", avail, g_reason, x3);
    return n < 0 ? -1 : n;
}

/* ---- bf16 ---------------------------------------------------------------- */

/* Round to nearest even, keeping NaNs quiet NaNs. */
static inline uint16_t f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float bfround(float f)
{
    uint32_t u = (uint32_t)f2bf(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

/* ---- split bf16 (KN_BF16X3) ----------------------------------------------
 * A product over K runs as a plain bf16 product over 3K: per k, the weight
 * triple (w_hi, w_lo, w_hi) against the activation triple (a_hi, a_hi,
 * a_lo), so that the native tile adds a_hi w_hi + a_hi w_lo + a_lo w_hi.
 * The triples follow each other along K, so every K block, the tile's K
 * granularity and the zero padding past 3K stay the driver's. */

/* The triple of value q of x (nk values; zeros at or past nk): hi, lo as
 * (hi, lo, hi) for a weight, (hi, hi, lo) for an activation. lo is zero
 * where hi is not finite (inf - inf would make a NaN of an inf). */
static inline void x3_triple(const float *x, int nk, int q, int act, uint16_t t[3])
{
    if (!x || q >= nk) {
        t[0] = t[1] = t[2] = 0;
        return;
    }
    float v = x[q];
    uint16_t hi = f2bf(v), lo = 0;
    if ((hi & 0x7f80u) != 0x7f80u)
        lo = f2bf(v - bfround(v)); /* exact in float */
    t[0] = hi;
    t[1] = act ? hi : lo;
    t[2] = act ? lo : hi;
}

/* Elements [e0, e1) of x's tripled row from element k0 on, element e at
 * word (e / 2) * stride * 2 + e % 2 of d (pairs of bf16, the even element
 * in the low half, pair j at pair j * stride). */
static void x3_walk(const float *x, int nk, int act, int k0, int e0, int e1, uint16_t *d,
                    size_t stride)
{
    uint16_t t[3];
    int q = (k0 + e0) / 3, c = (k0 + e0) % 3;
    x3_triple(x, nk, q, act, t);
    for (int e = e0; e < e1; e++) {
        d[(size_t)(e / 2) * stride * 2 + (e & 1)] = t[c];
        if (++c == 3) {
            c = 0;
            x3_triple(x, nk, ++q, act, t);
        }
    }
}

/* Elements [k0, k0 + n) (n even) of x's tripled row (x has nk values) as
 * bf16 pairs, pair j at dst[j * stride]; an activation's whole groups of 16
 * values go through body where the path has one (AVX-512): straight into
 * rows of pairs (stride 1), through a 48-element bounce buffer into the
 * [kc/2][MR] groups of the avx512-bf16 tile (stride MR). */
static void x3_pairs(const float *x, int nk, int act, int k0, int n, uint32_t *dst, size_t stride,
                     void (*body)(const float *, int, uint16_t *))
{
    uint16_t *d = (uint16_t *)dst;
    if (!body || !act || !x) {
        x3_walk(x, nk, act, k0, 0, n, d, stride);
        return;
    }
    int e = (3 - k0 % 3) % 3; /* to the next whole triple, at an even element */
    e += (e & 1) * 3;
    e = e < n ? e : n;
    x3_walk(x, nk, act, k0, 0, e, d, stride);
    int q = (k0 + e) / 3, g = q < nk ? (nk - q) / 16 : 0;
    g = g < (n - e) / 48 ? g : (n - e) / 48;
    if (g > 0 && stride == 1) {
        body(x + q, g, d + e);
        e += 48 * g;
    } else {
        uint32_t t[24]; /* 48 bf16: 24 pairs, e even */
        for (; g > 0; g--, q += 16, e += 48) {
            body(x + q, 1, (uint16_t *)t);
            uint32_t *p = dst + (size_t)(e / 2) * stride;
            for (int j = 0; j < 24; j++)
                p[(size_t)j * stride] = t[j];
        }
    }
    x3_walk(x, nk, act, k0, e, n, d, stride);
}

/* The vector body of split bf16's A packing on isa's path, or NULL. */
static void (*x3_body(const kn_isa *isa))(const float *, int, uint16_t *)
{
    return isa == &kn_isa_avx512bf16 || isa == &kn_isa_amx ? kn_avx512_x3_body : NULL;
}

/* Element k of a's tripled row (a has nk values), as a float. */
static float x3_elem(const float *a, int nk, int k)
{
    uint16_t t[3];
    x3_triple(a, nk, k / 3, 1, t);
    uint32_t u = (uint32_t)t[k % 3] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int g_x3_forced;

int kn_bf16x3_wins(double bf16_flops, double f32_flops)
{
    /* three bf16 products per f32 one, plus the tripled A packing: only a
     * rate well past 3x pays (AMX: about 15x; Zen 4/5 VDPBF16PS: 2x) */
    return bf16_flops > 4.0 * f32_flops;
}

void kn_force_bf16x3(int on)
{
    __atomic_store_n(&g_x3_forced, on != 0, __ATOMIC_RELEASE);
}

/* The native bf16 rate of isa and its name (0 where it has no bf16 tile). */
static double x3_rate(const kn_isa *isa, const char **name)
{
    *name = isa == &kn_isa_amx ? "TDPBF16PS" : "VDPBF16PS";
    if (isa == &kn_isa_amx)
        return g_rate_amx;
    return isa == &kn_isa_avx512bf16 ? g_rate_bf16 : 0.0;
}

int kn_bf16x3_worth(void)
{
    const kn_isa *isa = isa_get();
    if (__atomic_load_n(&g_x3_forced, __ATOMIC_ACQUIRE))
        return 1;
    const char *name;
    double r = x3_rate(isa, &name);
    return isa->ukr_bf16 && g_rate_f32 > 0.0 && kn_bf16x3_wins(r, g_rate_f32);
}

/* kn_path_info's words on split bf16 for isa, into buf (len bytes). */
static void x3_reason(const kn_isa *isa, char *buf, size_t len)
{
    const char *name;
    double r = x3_rate(isa, &name);
    if (!isa->ukr_bf16) {
        snprintf(buf, len, "split bf16 (bf16x3): no native bf16 tile, packs as f32");
        return;
    }
    int worth = g_rate_f32 > 0.0 && kn_bf16x3_wins(r, g_rate_f32);
    int n = snprintf(buf, len,
                     "split bf16 (bf16x3): %s, %s measured %.2fx the f32 FMA rate (needs more "
                     "than 4x for three bf16 products)",
                     worth ? "worth it" : "not worth it", name,
                     g_rate_f32 > 0.0 ? r / g_rate_f32 : 0.0);
    if (__atomic_load_n(&g_x3_forced, __ATOMIC_ACQUIRE) && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "; forced on by kn_force_bf16x3");
}

/* ---- packed weights ------------------------------------------------------ */

enum { FMT_F32 = 0, FMT_BF16_NATIVE = 1, FMT_BF16_ROUNDED = 2, FMT_BF16X3 = 3 };

/* Whether a format is bf16 pairs for the native bf16 tile. */
static int fmt_pairs(int fmt)
{
    return fmt == FMT_BF16_NATIVE || fmt == FMT_BF16X3;
}

struct kn_packed {
    int n, k, prec;
    int kp; /* the driver's K (3K for split bf16) rounded up to the format's k granularity */
    int fmt;
    int nr;
    const kn_isa *isa;
    size_t pstride; /* bytes per panel */
    void *data;
};

kn_packed *kn_pack(const float *W, int N, int K, int prec)
{
    if (!W || N <= 0 || K <= 0)
        return NULL;
    const kn_isa *isa = isa_get();
    kn_packed *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = N;
    p->k = K;
    p->prec = prec;
    p->isa = isa;
    p->nr = isa->nr;
    if (prec == KN_BF16)
        p->fmt = isa->ukr_bf16 ? FMT_BF16_NATIVE : FMT_BF16_ROUNDED;
    else if (prec == KN_BF16X3 && K <= INT_MAX / 3)
        p->fmt = isa->ukr_bf16 ? FMT_BF16X3 : FMT_F32; /* no bf16 tile: f32 is as exact */
    else
        p->fmt = FMT_F32;
    int kd = p->fmt == FMT_BF16X3 ? 3 * K : K; /* the K the driver runs */
    int kg = !fmt_pairs(p->fmt) ? 1 : isa->bf16_kgran ? isa->bf16_kgran : 2;
    p->kp = (kd + kg - 1) / kg * kg;
    int nr = p->nr, np = (N + nr - 1) / nr;
    size_t esz = fmt_pairs(p->fmt) ? 2 : 4;
    p->pstride = (size_t)p->kp * nr * esz;
    size_t bytes = (p->pstride * np + 63) & ~(size_t)63;
    p->data = aligned_alloc(64, bytes);
    if (!p->data) {
        free(p);
        return NULL;
    }
#pragma omp parallel for schedule(static) if ((size_t)N * K > 65536)
    for (int pi = 0; pi < np; pi++) {
        char *base = (char *)p->data + p->pstride * pi;
        for (int j = 0; j < nr; j++) {
            int n = pi * nr + j;
            const float *w = n < N ? W + (size_t)n * K : NULL;
            if (p->fmt == FMT_BF16X3) {
                x3_pairs(w, K, 0, 0, p->kp, (uint32_t *)base + j, (size_t)nr, NULL);
            } else if (p->fmt == FMT_BF16_NATIVE) {
                uint16_t *d = (uint16_t *)base;
                for (int k = 0; k < p->kp; k += 2) {
                    /* zeros past K: AMX pads K to a whole tile step */
                    float w0 = (w && k < K) ? w[k] : 0.0f, w1 = (w && k + 1 < K) ? w[k + 1] : 0.0f;
                    d[((size_t)(k / 2) * nr + j) * 2] = f2bf(w0);
                    d[((size_t)(k / 2) * nr + j) * 2 + 1] = f2bf(w1);
                }
            } else {
                float *d = (float *)base;
                for (int k = 0; k < K; k++) {
                    float v = w ? w[k] : 0.0f;
                    d[(size_t)k * nr + j] = p->fmt == FMT_BF16_ROUNDED ? bfround(v) : v;
                }
            }
        }
    }
    return p;
}

void kn_packed_free(kn_packed *p)
{
    if (!p)
        return;
    free(p->data);
    free(p);
}

int kn_packed_n(const kn_packed *p)
{
    return p->n;
}

int kn_packed_k(const kn_packed *p)
{
    return p->k;
}

/* The K of the product the driver runs for p (3K for split bf16). */
static int packed_kd(const kn_packed *p)
{
    return p->fmt == FMT_BF16X3 ? 3 * p->k : p->k;
}

/* ---- the GEMM driver ----------------------------------------------------- */

typedef struct drive {
    const kn_isa *isa;
    int fmt; /* FMT_*: how A is packed and which micro-kernel runs */
    int M, N, K;
    const float *A;
    int lda;
    const char *B; /* panels */
    size_t pstride;
    int nr;
    float *C;
    int ldc;
    float alpha;
    const float *cin0; /* added (times beta0) in the first K block */
    int ldcin0;
    float beta0;
    const float *bias;
    int act;
    const float *res; /* added after the activation in the last K block */
    int ldr;
    int first, last; /* whether this call's first/last K block is the global one */
    int slow;        /* use the plain loops (packed A cannot fit the buffer) */
    int kc, mc;
} drive;

static int drive_mr(const drive *d)
{
    return fmt_pairs(d->fmt) ? d->isa->bf16_mr : d->isa->mr;
}

/* K granularity of the packed weight and of every K block (kn_pack's). */
static int drive_kgran(const drive *d)
{
    if (!fmt_pairs(d->fmt))
        return 1;
    return d->isa->bf16_kgran ? d->isa->bf16_kgran : 2;
}

/* Rows of a block are split into balanced groups of at most mr rows. */
typedef struct groups {
    int n, base, extra;
} groups;

static groups groups_of(int rows, int mr)
{
    groups g;
    g.n = (rows + mr - 1) / mr;
    g.base = rows / g.n;
    g.extra = rows % g.n;
    return g;
}

/* First row (from the block's start) and row count of group i. */
static int group_row(groups g, int i)
{
    return i * g.base + (i < g.extra ? i : g.extra);
}

static int group_rows(groups g, int i)
{
    return g.base + (i < g.extra);
}

/* Packs group gi of the row block at m0 for the K range [k0, k0+kcur):
 * [kcur][mr] floats, [kcur/2][mr] bf16 pairs, or (rowmajor, bf16-rounded
 * fallback on ISAs that read A in place) rows of kcur rounded floats. */
static void pack_group(const drive *d, int m0, groups g, int gi, int k0, int kcur, int mr,
                       int rowmajor, void *buf)
{
    int r0 = group_row(g, gi), gr = group_rows(g, gi);
    if (rowmajor) {
        for (int i = 0; i < gr; i++) {
            const float *a = d->A + (size_t)(m0 + r0 + i) * d->lda + k0;
            float *dst = (float *)buf + (size_t)(r0 + i) * kcur;
            for (int k = 0; k < kcur; k++)
                dst[k] = bfround(a[k]);
        }
    } else if (fmt_pairs(d->fmt)) {
        /* [kcur/2][mr] per group, or rows of kcur/2 pairs (bf16_rowmajor) */
        int rm = d->isa->bf16_rowmajor;
        uint32_t *dst = rm ? (uint32_t *)buf + (size_t)r0 * (kcur / 2)
                           : (uint32_t *)buf + (size_t)gi * mr * (kcur / 2);
        size_t step = rm ? 1 : (size_t)mr, rowstep = rm ? (size_t)kcur / 2 : 1;
        for (int i = 0; d->fmt == FMT_BF16X3 && i < gr; i++) /* d->K is 3 x A's columns */
            x3_pairs(d->A + (size_t)(m0 + r0 + i) * d->lda, d->K / 3, 1, k0, kcur,
                     dst + (size_t)i * rowstep, step, x3_body(d->isa));
        for (int i = 0; d->fmt == FMT_BF16_NATIVE && i < gr; i++) {
            const float *a = d->A + (size_t)(m0 + r0 + i) * d->lda + k0;
            uint32_t *di = dst + (size_t)i * rowstep;
            if (d->isa->bf16_pairs) {
                int navail = d->K - k0 < kcur ? d->K - k0 : kcur;
                d->isa->bf16_pairs(a, kcur, navail, di, (int)step);
                continue;
            }
            for (int k = 0; k < kcur; k += 2) {
                float a0 = k0 + k < d->K ? a[k] : 0.0f;
                float a1 = k0 + k + 1 < d->K ? a[k + 1] : 0.0f;
                di[(size_t)(k / 2) * step] = (uint32_t)f2bf(a0) | (uint32_t)f2bf(a1) << 16;
            }
        }
    } else {
        float *dst = (float *)buf + (size_t)gi * mr * kcur;
        for (int i = 0; i < gr; i++) {
            const float *a = d->A + (size_t)(m0 + r0 + i) * d->lda + k0;
            if (d->fmt == FMT_BF16_ROUNDED)
                for (int k = 0; k < kcur; k++)
                    dst[(size_t)k * mr + i] = bfround(a[k]);
            else
                for (int k = 0; k < kcur; k++)
                    dst[(size_t)k * mr + i] = a[k];
        }
    }
}

/* Whether the ISA reads this product's A in place (no packing). */
static int drive_direct(const drive *d)
{
    return d->fmt == FMT_F32 && !d->isa->packs_a;
}

static int drive_rowmajor(const drive *d)
{
    return d->fmt == FMT_BF16_ROUNDED && !d->isa->packs_a;
}

/* C tiles of rows [m0, m0+rows) x panels [p0, p1) for the K block [k0,
 * k0+kcur), A from apack (as pack_group left it) or in place. */
static void compute_block(const drive *d, int m0, int rows, int k0, int kcur, int p0, int p1,
                          const void *apack)
{
    int mr = drive_mr(d);
    int kgran = drive_kgran(d);
    int Kp = (d->K + kgran - 1) / kgran * kgran;
    size_t esz = fmt_pairs(d->fmt) ? 2 : 4;
    groups g = groups_of(rows, mr);
    void (*ukr)(const kn_tile *) = fmt_pairs(d->fmt) ? d->isa->ukr_bf16 : d->isa->ukr;
    int direct = drive_direct(d), rowmajor = drive_rowmajor(d);
    int first = d->first && k0 == 0, last = d->last && k0 + kcur >= Kp;
    for (int p = p0; p < p1; p++) {
        int j0 = p * d->nr;
        kn_tile t;
        t.b = d->B + d->pstride * p + (size_t)k0 * d->nr * esz;
        t.kc = kcur;
        t.nc = d->N - j0 < d->nr ? d->N - j0 : d->nr;
        t.ldc = d->ldc;
        t.alpha = d->alpha;
        t.last = last;
        t.bias = last && d->bias ? d->bias + j0 : NULL;
        t.act = d->act;
        t.ldr = d->ldr;
        /* the next panel's K block, in one slice per row group: in place of
         * the weights streaming from DRAM (batch 1) or L3 into the first
         * group of the next panel, every group fetches a share into L2 */
        size_t pf_bytes = p + 1 < p1 ? (size_t)kcur * d->nr * esz : 0;
        int pf_total = (int)(pf_bytes / 64), pf_each = (pf_total + g.n - 1) / g.n;
        for (int gi = 0; gi < g.n; gi++) {
            int r = m0 + group_row(g, gi);
            int pf0 = gi * pf_each < pf_total ? gi * pf_each : pf_total;
            t.pf = t.b + d->pstride + (size_t)pf0 * 64;
            t.pf_lines = pf_total - pf0 < pf_each ? pf_total - pf0 : pf_each;
            if (direct) {
                t.a = d->A + (size_t)r * d->lda + k0;
                t.lda = d->lda;
            } else if (rowmajor) {
                t.a = (const float *)apack + (size_t)(r - m0) * kcur;
                t.lda = kcur;
            } else if (fmt_pairs(d->fmt) && d->isa->bf16_rowmajor) {
                t.a = (const uint32_t *)apack + (size_t)(r - m0) * (kcur / 2);
                t.lda = kcur / 2;
            } else {
                t.a = (const char *)apack + (size_t)gi * mr * kcur * esz;
                t.lda = 0;
            }
            t.mr = group_rows(g, gi);
            t.c = d->C + (size_t)r * d->ldc + j0;
            if (first) {
                t.cin = d->cin0 ? d->cin0 + (size_t)r * d->ldcin0 + j0 : NULL;
                t.ldcin = d->ldcin0;
                t.beta = d->beta0;
            } else {
                t.cin = t.c;
                t.ldcin = d->ldc;
                t.beta = 1.0f;
            }
            t.res = last && d->res ? d->res + (size_t)r * d->ldr + j0 : NULL;
            ukr(&t);
        }
    }
}

static float bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element (n, k) of the packed B of d. */
static float packed_b(const drive *d, int n, int k)
{
    const char *panel = d->B + d->pstride * (size_t)(n / d->nr);
    int j = n % d->nr;
    if (fmt_pairs(d->fmt))
        return bf2f(((const uint16_t *)panel)[((size_t)(k / 2) * d->nr + j) * 2 + (k & 1)]);
    return ((const float *)panel)[(size_t)k * d->nr + j];
}

/* Element k of row a of A as the product over d->K takes it. */
static float a_slow(const drive *d, const float *a, int k)
{
    if (d->fmt == FMT_BF16X3)
        return x3_elem(a, d->K / 3, k);
    return d->fmt == FMT_F32 ? a[k] : bfround(a[k]);
}

/* The task without scratch memory (out of memory): plain loops over the
 * whole K range of the call, which is then a single packed weight. */
static void run_task_slow(const drive *d, int m0, int rows, int p0, int p1)
{
    int n1 = p1 * d->nr < d->N ? p1 * d->nr : d->N;
    for (int r = m0; r < m0 + rows; r++) {
        const float *a = d->A + (size_t)r * d->lda;
        for (int n = p0 * d->nr; n < n1; n++) {
            float acc = 0.0f;
            for (int k = 0; k < d->K; k++)
                acc += a_slow(d, a, k) * packed_b(d, n, k);
            kn_tile t = {0};
            t.mr = t.nc = 1;
            t.c = d->C + (size_t)r * d->ldc + n;
            t.alpha = d->alpha;
            t.cin = d->first && d->cin0 ? d->cin0 + (size_t)r * d->ldcin0 + n : NULL;
            t.beta = d->beta0;
            t.last = d->last;
            t.bias = d->bias ? d->bias + n : NULL;
            t.act = d->act;
            t.res = d->res ? d->res + (size_t)r * d->ldr + n : NULL;
            kn_tile_store(&t, &acc, 1);
        }
    }
}

/* Direct path (A read in place): task t of mb row blocks x nb panel chunks,
 * n-major so that consecutive tasks share weights; the task walks K. */
static void run_task(const drive *d, int t, int mb, int mc, int nb, int np)
{
    int ib = t % mb, jb = t / mb;
    int m0 = ib * mc, rows = d->M - m0 < mc ? d->M - m0 : mc;
    int pb = np / nb, pe = np % nb;
    int p0 = jb * pb + (jb < pe ? jb : pe);
    int p1 = p0 + pb + (jb < pe);
    if (rows <= 0 || p1 <= p0)
        return;
    for (int k0 = 0; k0 < d->K; k0 += d->kc) {
        int kcur = d->K - k0 < d->kc ? d->K - k0 : d->kc;
        compute_block(d, m0, rows, k0, kcur, p0, p1, NULL);
    }
}

static void compute_chunk(const drive *d, int m0, int rows, int k0, int kcur, int c, int nchunk,
                          int np, const void *apack)
{
    int pb = np / nchunk, pe = np % nchunk;
    int p0 = c * pb + (c < pe ? c : pe);
    int p1 = p0 + pb + (c < pe);
    compute_block(d, m0, rows, k0, kcur, p0, p1, apack);
}

/* Packing path on one thread: for each row block and K block, A is packed
 * into the thread's scratch, then the panels are computed. Plain loops (no
 * worksharing: this also runs inside the attention heads' parallel loop). */
static void drive_packed(const drive *d, void *apack, int mc, int nchunk, int np)
{
    int mr = drive_mr(d);
    int kgran = drive_kgran(d);
    int Kp = (d->K + kgran - 1) / kgran * kgran;
    int rowmajor = drive_rowmajor(d);
    for (int m0 = 0; m0 < d->M; m0 += mc) {
        int rows = d->M - m0 < mc ? d->M - m0 : mc;
        groups g = groups_of(rows, mr);
        for (int k0 = 0; k0 < Kp; k0 += d->kc) {
            int kcur = Kp - k0 < d->kc ? Kp - k0 : d->kc;
            for (int gi = 0; gi < g.n; gi++)
                pack_group(d, m0, g, gi, k0, kcur, mr, rowmajor, apack);
            for (int c = 0; c < nchunk; c++)
                compute_chunk(d, m0, rows, k0, kcur, c, nchunk, np, apack);
        }
    }
}

/* Packing path on a team: per K block, the threads pack all of A's row
 * blocks into the caller's team buffer (each group once), then share out
 * (row block x panel chunk) tasks: two barriers per K block, so a thread
 * that the OS deschedules holds the others up rarely. Returns 0, having
 * done nothing, when the buffer cannot be had. */
static int drive_team(const drive *d, int nt, int np)
{
    int mr = drive_mr(d);
    int kgran = drive_kgran(d);
    int Kp = (d->K + kgran - 1) / kgran * kgran;
    int rowmajor = drive_rowmajor(d);
    int mc = d->isa->mc / mr * mr;
    if (mc < mr)
        mc = mr;
    if (mc > d->M)
        mc = d->M;
    int mb = (d->M + mc - 1) / mc;
    mc = (d->M + mb - 1) / mb;
    int gmax = (mc + mr - 1) / mr;
    size_t blk = (size_t)gmax * mr * d->kc * sizeof(float);
    char *buf = big_get(blk * mb);
    if (!buf)
        return 0;
    int nchunk = (4 * nt + mb - 1) / mb;
    if (nchunk > np)
        nchunk = np;
#pragma omp parallel num_threads(nt)
    for (int k0 = 0; k0 < Kp; k0 += d->kc) {
        int kcur = Kp - k0 < d->kc ? Kp - k0 : d->kc;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < mb * gmax; i++) {
            int ib = i / gmax, gi = i % gmax, m0 = ib * mc;
            int rows = d->M - m0 < mc ? d->M - m0 : mc;
            groups g = groups_of(rows, mr);
            if (gi < g.n)
                pack_group(d, m0, g, gi, k0, kcur, mr, rowmajor, buf + blk * ib);
        }
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < mb * nchunk; t++) {
            int ib = t / nchunk, c = t % nchunk, m0 = ib * mc;
            int rows = d->M - m0 < mc ? d->M - m0 : mc;
            compute_chunk(d, m0, rows, k0, kcur, c, nchunk, np, buf + blk * ib);
        }
    }
    big_release();
    return 1;
}

/* Runs the whole product, on all threads when par and big enough. */
static void drive_run(drive *d, int par)
{
    int np = (d->N + d->nr - 1) / d->nr;
    int mc = d->mc;
    if (mc > d->M)
        mc = d->M;
    if (mc < 1)
        mc = 1;
    if (d->M <= 0 || np <= 0)
        return;
    int mb = (d->M + mc - 1) / mc;
    /* even row blocks: avoids a tiny last block */
    mc = (d->M + mb - 1) / mb;
    int nt = par ? omp_get_max_threads() : 1;
    if ((double)d->M * d->N * d->K < KN_PAR_MIN)
        nt = 1;
    if (!drive_direct(d)) {
        if (nt > 1 && drive_team(d, nt, np))
            return;
        float *scr = d->slow ? NULL : scratch_get();
        if (!scr) { /* out of memory: plain loops, rows split across threads */
#pragma omp parallel for schedule(static) if (nt > 1)
            for (int ib = 0; ib < mb; ib++) {
                int m0 = ib * mc;
                run_task_slow(d, m0, d->M - m0 < mc ? d->M - m0 : mc, 0, np);
            }
            return;
        }
        drive_packed(d, SCR_APACK(scr), mc, np < 4 ? np : 4, np);
        return;
    }
    int nb = 1;
    if (nt > 1) {
        /* at least 4 equal tasks per thread, and a multiple of the thread
         * count so that an idle machine finishes them all at once */
        nb = (4 * nt + mb - 1) / mb;
        while ((mb * nb) % nt && nb < np)
            nb++;
        if (nb > np)
            nb = np;
    }
    int ntask = mb * nb;
    if (nt == 1 || ntask == 1) {
        /* no OpenMP region at all: small products (attention heads) are
         * called inside a parallel loop, where even a one-thread team costs */
        for (int t = 0; t < ntask; t++)
            run_task(d, t, mb, mc, nb, np);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < ntask; t++)
        run_task(d, t, mb, mc, nb, np);
}

static void drive_blocking(drive *d)
{
    int mr = drive_mr(d);
    d->kc = fmt_pairs(d->fmt) ? d->isa->bf16_kc : d->isa->kc;
    d->mc = d->isa->mc / mr * mr;
    /* even K blocks of at most kc: no short tail block */
    int kg = drive_kgran(d), kr = kg > 8 ? kg : 8;
    int kp = (d->K + kg - 1) / kg * kg, nkb = (kp + d->kc - 1) / d->kc;
    if (nkb > 0) {
        int kc = (kp + nkb - 1) / nkb;
        kc = (kc + kr - 1) / kr * kr;
        if (kc < d->kc)
            d->kc = kc;
    }
    int direct = d->fmt == FMT_F32 && !d->isa->packs_a;
    if (!direct && (size_t)d->mc * d->kc > KN_APACK_CAP) /* the packed A block must fit */
        d->mc = KN_APACK_CAP / d->kc / mr * mr;
    if (d->mc < mr)
        d->mc = mr;
}

void kn_linear(const float *A, int lda, int M, const kn_packed *W, const float *bias, int act,
               const float *residual, int ldr, float *C, int ldc)
{
    if (M <= 0 || !W)
        return;
    drive d = {0};
    d.isa = W->isa;
    d.fmt = W->fmt;
    d.M = M;
    d.N = W->n;
    d.K = packed_kd(W);
    d.A = A;
    d.lda = lda;
    d.B = W->data;
    d.pstride = W->pstride;
    d.nr = W->nr;
    d.C = C;
    d.ldc = ldc;
    d.alpha = 1.0f;
    d.bias = bias;
    d.act = act;
    d.first = d.last = 1;
    drive_blocking(&d);
    if (residual && act == KN_ACT_NONE) {
        d.cin0 = residual; /* start from the residual: safe when C aliases it */
        d.ldcin0 = ldr;
        d.beta0 = 1.0f;
    } else if (residual) {
        d.res = residual;
        d.ldr = ldr;
        if (residual == C && W->kp > d.kc) {
            /* partial sums in C would clobber the residual: one K block
             * (packed A then holds as many whole rows as fit) */
            int mr = drive_mr(&d), fit = KN_APACK_CAP / W->kp;
            d.kc = W->kp;
            if (drive_rowmajor(&d))
                d.mc = fit;
            else if (!drive_direct(&d))
                d.mc = fit / mr * mr;
            if (!drive_direct(&d) && d.mc < 1)
                d.slow = 1; /* not even one row group fits: plain loops */
        }
    }
    drive_run(&d, 1);
}

/* One [kcur][nr] panel of columns n0.. of op(B), zero past column N. */
static void pack_b_panel(int bt, const float *B, int ldb, int n0, int N, int k0, int kcur, int nr,
                         float *dst)
{
    int nv = N - n0 < nr ? N - n0 : nr;
    if (bt) { /* B is N x K: a transpose, read along rows */
        for (int j = 0; j < nv; j++) {
            const float *src = B + (size_t)(n0 + j) * ldb + k0;
            for (int k = 0; k < kcur; k++)
                dst[(size_t)k * nr + j] = src[k];
        }
        for (int j = nv; j < nr; j++)
            for (int k = 0; k < kcur; k++)
                dst[(size_t)k * nr + j] = 0.0f;
    } else { /* B is K x N: row pieces */
        for (int k = 0; k < kcur; k++) {
            const float *src = B + (size_t)(k0 + k) * ldb + n0;
            float *d = dst + (size_t)k * nr;
            memcpy(d, src, (size_t)nv * sizeof *d);
            for (int j = nv; j < nr; j++)
                d[j] = 0.0f;
        }
    }
}

/* C = alpha A B^T + beta C (bt = 1, B is N x K) or alpha A B + beta C (bt = 0,
 * B is K x N), B packed block by block into the thread-local buffer. */
static void gemm_unpacked(int bt, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc, int par)
{
    if (M <= 0 || N <= 0)
        return;
    const kn_isa *isa = isa_get();
    int nr = isa->nr;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    float *scr = scratch_get();
    if (!scr) { /* out of memory: plain loops */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float acc = 0.0f;
                for (int k = 0; k < K; k++)
                    acc += A[(size_t)i * lda + k] *
                           (bt ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                float *c = C + (size_t)i * ldc + j;
                *c = alpha * acc + (beta != 0.0f ? beta * *c : 0.0f);
            }
        return;
    }
    float *bpack = SCR_BPACK(scr);
    drive d = {0};
    d.isa = isa;
    d.fmt = FMT_F32;
    d.M = M;
    d.A = A;
    d.lda = lda;
    d.nr = nr;
    d.ldc = ldc;
    d.alpha = alpha;
    d.act = KN_ACT_NONE;
    drive_blocking(&d);
    int kc = d.kc;
    int np = (N + nr - 1) / nr;
    for (int k0 = 0; k0 < K; k0 += kc) {
        int kcur = K - k0 < kc ? K - k0 : kc;
        int chunk = KN_BPACK_CAP / (kcur * nr);
        for (int q0 = 0; q0 < np; q0 += chunk) {
            int q1 = q0 + chunk < np ? q0 + chunk : np;
            for (int q = q0; q < q1; q++)
                pack_b_panel(bt, B, ldb, q * nr, N, k0, kcur, nr,
                             bpack + (size_t)(q - q0) * kcur * nr);
            int n0 = q0 * nr, n1 = q1 * nr < N ? q1 * nr : N;
            d.N = n1 - n0;
            d.K = kcur;
            d.A = A + k0;
            d.B = (const char *)bpack;
            d.pstride = (size_t)kcur * nr * 4;
            d.C = C + n0;
            d.first = k0 == 0;
            d.last = k0 + kcur >= K;
            d.cin0 = beta != 0.0f ? C + n0 : NULL;
            d.ldcin0 = ldc;
            d.beta0 = beta;
            drive_run(&d, par);
        }
    }
}

void kn_gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc)
{
    gemm_unpacked(1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
}

void kn_gemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc)
{
    gemm_unpacked(0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
}

/* ---- layer norm, activation ---------------------------------------------- */

/* Two passes: the mean, then the centred sum of squares together with the
 * centred sum, which corrects the float rounding of the mean (rows of
 * large mean lose no precision). */
static void layernorm_portable(const float *x, int dim, const float *gamma, const float *beta,
                               float eps, float *out)
{
    float s = 0.0f;
    for (int i = 0; i < dim; i++)
        s += x[i];
    float mean = s / (float)dim, c = 0.0f, v = 0.0f;
    for (int i = 0; i < dim; i++) {
        float t = x[i] - mean;
        c += t;
        v += t * t;
    }
    c /= (float)dim;
    float var = v / (float)dim - c * c;
    float rs = 1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps);
    for (int i = 0; i < dim; i++) {
        float t = ((x[i] - mean) - c) * rs;
        out[i] = t * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

void kn_layernorm(const float *x, int ldx, int rows, int dim, const float *gamma, const float *beta,
                  float eps, float *out, int ldo)
{
    const kn_isa *isa = isa_get();
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536)
    for (int r = 0; r < rows; r++)
        isa->layernorm(x + (size_t)r * ldx, dim, gamma, beta, eps, out + (size_t)r * ldo);
}

void kn_activate(float *x, size_t n, int act)
{
    if (act == KN_ACT_NONE || n == 0)
        return;
    const kn_isa *isa = isa_get();
    size_t chunk = 16384;
    size_t nchunk = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (size_t c = 0; c < nchunk; c++) {
        size_t a = c * chunk, len = n - a < chunk ? n - a : chunk;
        isa->act(x + a, len, act);
    }
}

/* ---- attention ----------------------------------------------------------- */

size_t kn_attention_scratch(int seq, int heads)
{
    return (size_t)heads * seq * seq;
}

/* One head: S = q k^T / sqrt(hd), row softmax (masked when causal), o = S v. */
static void attn_head(const kn_isa *isa, const float *q, int ldq, int nq, const float *k,
                      const float *v, int ldkv, int nk, int hd, int causal, float *o, int ldo,
                      float *S)
{
    float scale = 1.0f / sqrtf((float)hd);
    gemm_unpacked(1, nq, nk, hd, scale, q, ldq, k, ldkv, 0.0f, S, nk, 0);
    for (int i = 0; i < nq; i++) {
        float *row = S + (size_t)i * nk;
        int n = causal ? (i + 1 < nk ? i + 1 : nk) : nk;
        isa->softmax(row, n);
        for (int j = n; j < nk; j++)
            row[j] = 0.0f;
    }
    gemm_unpacked(0, nq, hd, nk, 1.0f, S, nk, v, ldkv, 0.0f, o, ldo, 0);
}

void kn_attention(const float *qkv, int seq, int width, int heads, int causal, float *out,
                  float *scratch)
{
    const kn_isa *isa = isa_get();
    int hd = width / heads, ld = 3 * width;
#pragma omp parallel for schedule(dynamic, 1) if (heads > 1 && (size_t)seq * seq * width > 32768)
    for (int h = 0; h < heads; h++) {
        const float *q = qkv + h * hd, *k = qkv + width + h * hd, *v = qkv + 2 * width + h * hd;
        attn_head(isa, q, ld, seq, k, v, ld, seq, hd, causal, out + h * hd, width,
                  scratch + (size_t)h * seq * seq);
    }
}

/* One head without any buffer (out of memory): row by row, S in a stack
 * row of at most KN_ATTN_ROW keys. */
#define KN_ATTN_ROW 256

static void attn_head_rows(const float *q, int ldq, int nq, const float *k, const float *v,
                           int ldkv, int nk, int hd, int causal, float *o, int ldo)
{
    float srow[KN_ATTN_ROW];
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < nq; i++) {
        int n = causal ? (i + 1 < nk ? i + 1 : nk) : nk;
        float m = -INFINITY, sum = 0.0f;
        for (int j = 0; j < n; j++) {
            float dot = 0.0f;
            for (int t = 0; t < hd; t++)
                dot += q[(size_t)i * ldq + t] * k[(size_t)j * ldkv + t];
            srow[j] = dot * scale;
            m = srow[j] > m ? srow[j] : m;
        }
        for (int j = 0; j < n; j++) {
            srow[j] = expf(srow[j] - m);
            sum += srow[j];
        }
        float *oi = o + (size_t)i * ldo;
        for (int t = 0; t < hd; t++)
            oi[t] = 0.0f;
        for (int j = 0; j < n; j++) {
            float w = srow[j] / sum;
            for (int t = 0; t < hd; t++)
                oi[t] += w * v[(size_t)j * ldkv + t];
        }
    }
}

/* The (sequence, head) tasks of nseq sequences back to back: sequence s is
 * rows off[s]..off[s+1] (off NULL: every sequence seq rows), one parallel
 * loop in all. S lives in each thread's own scratch: tasks of different
 * sequences share a head index, so the caller's per-head slices would
 * collide. One region instead of one per sequence matters on a shared
 * machine: every region's join waits for a descheduled thread. */
static void attention_tasks(const float *qkv, int nseq, const int *off, int seq, int width,
                            int heads, int causal, float *out, float *scratch)
{
    int maxlen = seq;
    size_t work = 0;
    if (off) {
        maxlen = 0;
        for (int s = 0; s < nseq; s++) {
            int n = off[s + 1] - off[s];
            maxlen = n > maxlen ? n : maxlen;
            work += (size_t)n * n * width;
        }
    } else {
        work = (size_t)nseq * seq * seq * width;
    }
    if ((size_t)maxlen * maxlen > KN_CONV_TMP || maxlen > KN_ATTN_ROW) {
        for (int s = 0; s < nseq; s++) {
            size_t r0 = off ? (size_t)off[s] : (size_t)s * seq;
            int n = off ? off[s + 1] - off[s] : seq;
            kn_attention(qkv + r0 * 3 * width, n, width, heads, causal, out + r0 * width, scratch);
        }
        return;
    }
    const kn_isa *isa = isa_get();
    int hd = width / heads, ld = 3 * width, ntask = nseq * heads;
#pragma omp parallel for schedule(dynamic, 1) if (ntask > 1 && work > 32768)
    for (int t = 0; t < ntask; t++) {
        int sq = t / heads, h = t % heads;
        size_t r0 = off ? (size_t)off[sq] : (size_t)sq * seq;
        int n = off ? off[sq + 1] - off[sq] : seq;
        const float *base = qkv + r0 * ld;
        const float *q = base + h * hd, *k = base + width + h * hd, *v = base + 2 * width + h * hd;
        float *o = out + r0 * width + h * hd;
        float *scr = scratch_get();
        if (n <= 0)
            continue;
        if (scr)
            attn_head(isa, q, ld, n, k, v, ld, n, hd, causal, o, width, SCR_CONVTMP(scr));
        else
            attn_head_rows(q, ld, n, k, v, ld, n, hd, causal, o, width);
    }
}

void kn_attention_batch(const float *qkv, int nseq, int seq, int width, int heads, int causal,
                        float *out, float *scratch)
{
    attention_tasks(qkv, nseq, NULL, seq, width, heads, causal, out, scratch);
}

void kn_attention_var(const float *qkv, int nseq, const int *off, int width, int heads, int causal,
                      float *out, float *scratch)
{
    attention_tasks(qkv, nseq, off, 0, width, heads, causal, out, scratch);
}

void kn_attention_qkv(const float *q, int nq, const float *k, const float *v, int nk, int width,
                      int heads, float *out, float *scratch)
{
    const kn_isa *isa = isa_get();
    int hd = width / heads;
#pragma omp parallel for schedule(dynamic, 1) if (heads > 1 && (size_t)nq * nk * width > 32768)
    for (int h = 0; h < heads; h++) {
        attn_head(isa, q + h * hd, width, nq, k + h * hd, v + h * hd, width, nk, hd, 0,
                  out + h * hd, width, scratch + (size_t)h * nq * nk);
    }
}

/* ---- convolution --------------------------------------------------------- */

static int conv_out(int n, int k, int stride, int pad)
{
    return (n + 2 * pad - k) / stride + 1;
}

size_t kn_conv2d_scratch(int cin, int h, int w, int kh, int kw, int stride, int pad)
{
    int oh = conv_out(h, kh, stride, pad), ow = conv_out(w, kw, stride, pad);
    if (oh <= 0 || ow <= 0)
        return 0;
    return (size_t)oh * ow * cin * kh * kw;
}

void kn_conv2d(const float *in, int cin, int h, int w, const kn_packed *W, int kh, int kw,
               int stride, int pad, const float *bias, int act, float *out, float *scratch)
{
    int oh = conv_out(h, kh, stride, pad), ow = conv_out(w, kw, stride, pad);
    if (oh <= 0 || ow <= 0)
        return;
    int P = oh * ow, Kc = cin * kh * kw, cout = W->n;
    /* im2col: one row per output pixel, K ordered (c, y, x) like the weight */
#pragma omp parallel for schedule(static) if ((size_t)P * Kc > 65536)
    for (int p = 0; p < P; p++) {
        int oy = p / ow, ox = p % ow;
        float *row = scratch + (size_t)p * Kc;
        for (int c = 0; c < cin; c++)
            for (int y = 0; y < kh; y++) {
                int iy = oy * stride - pad + y;
                for (int x = 0; x < kw; x++) {
                    int ix = ox * stride - pad + x;
                    row[(c * kh + y) * kw + x] = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                                     ? in[((size_t)c * h + iy) * w + ix]
                                                     : 0.0f;
                }
            }
    }
    float *scr = scratch_get();
    if (!scr || cout > KN_CONV_TMP) {
        /* out of memory (or more channels than the row buffer): plain
         * loops over the packed weight */
        for (int p = 0; p < P; p++)
            for (int co = 0; co < cout; co++) {
                drive d = {0};
                d.isa = W->isa;
                d.fmt = W->fmt;
                d.N = W->n;
                d.K = packed_kd(W);
                d.B = W->data;
                d.pstride = W->pstride;
                d.nr = W->nr;
                float acc = 0.0f;
                const float *a = scratch + (size_t)p * Kc;
                for (int k = 0; k < d.K; k++)
                    acc += a_slow(&d, a, k) * packed_b(&d, co, k);
                if (bias)
                    acc += bias[co];
                out[(size_t)co * P + p] = kn_act1(acc, act);
            }
        return;
    }
    float *tmp = SCR_CONVTMP(scr);
    int chunk = KN_CONV_TMP / cout;
    for (int p0 = 0; p0 < P; p0 += chunk) {
        int n = P - p0 < chunk ? P - p0 : chunk;
        kn_linear(scratch + (size_t)p0 * Kc, Kc, n, W, bias, act, NULL, 0, tmp, cout);
        for (int p = 0; p < n; p++)
            for (int co = 0; co < cout; co++)
                out[(size_t)co * P + p0 + p] = tmp[(size_t)p * cout + co];
    }
}
