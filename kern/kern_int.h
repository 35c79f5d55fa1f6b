/*
 * kern/kern_int.h: internals shared by kern/kern.c (driver, portable
 * code) and the per-ISA micro-kernels in kern_avx2.c / kern_avx512.c.
 *
 * The GEMM driver cuts C into MR x NR tiles and hands each tile, one K block
 * at a time, to an ISA micro-kernel described by a kn_tile. The micro-kernel
 * accumulates A.B over the block and applies the epilogue
 *     v = alpha * acc (+ beta * cin)            every block
 *     v = act(v + bias) (+ res)                 last block only
 * then stores v into C. A reaches the f32 micro-kernel either row-major
 * (lda != 0: row i at a + i * lda; ISAs with packs_a == 0 read the caller's
 * matrix in place, no copy) or packed [kc][MR] per row group (lda == 0).
 * Packed B is [kc][NR] per panel; for native bf16, A and B hold 32-bit pairs
 * of bf16 (even k in the low half), A packed (as [kc/2][MR] groups, or as
 * rows of kc/2 pairs where the ISA sets bf16_rowmajor, lda then counting
 * pairs), and the k loop runs over kc / 2 pairs.
 */
#ifndef KERN_INT_H
#define KERN_INT_H

#include <stddef.h>
#include <stdint.h>

#define KN_MAXMR 32 /* largest MR of any micro-kernel (AMX's bf16 tile) */
#define KN_MAXNR 32 /* largest NR of any micro-kernel */

typedef struct kn_tile {
    const void *a; /* A rows of this tile (see lda) */
    int lda;       /* row stride in floats, or 0 for a packed [kc][MR] group */
    const void *b; /* packed B micro-panel at this K block */
    int kc;        /* k steps in this block (even for native bf16) */
    int mr, nc;    /* valid rows (<= MR) and columns (<= NR) */
    float *c;
    int ldc;
    float alpha;
    const float *cin; /* added as beta * cin before the epilogue, or NULL */
    int ldcin;
    float beta;
    int last;          /* apply bias, act, res */
    const float *bias; /* at this tile's first column, or NULL */
    int act;
    const float *res; /* at this tile's origin, or NULL */
    int ldr;
    /* cache lines (64 bytes) of the weights the caller computes next, to
     * prefetch into L2 while this tile computes (pf_lines may be 0) */
    const char *pf;
    int pf_lines;
} kn_tile;

typedef struct kn_isa {
    const char *name;
    int mr, nr;  /* f32 micro-kernel tile */
    int kc, mc;  /* cache blocking */
    int bf16_mr; /* native bf16 micro-kernel rows (0: no native bf16) */
    int bf16_kc; /* K block of the native bf16 kernel (even) */
    /* K granularity of native bf16 weights and K blocks: packed K is
     * padded with zeros to a multiple of it (0 means 2, one pair; AMX: 32,
     * one tile step) */
    int bf16_kgran;
    int packs_a; /* the f32 micro-kernel wants A packed (lda == 0) */
    /* the bf16 micro-kernel reads A as rows of kc/2 pairs (lda = kc/2, in
     * pairs) instead of [kc/2][MR] groups */
    int bf16_rowmajor;
    void (*ukr)(const kn_tile *t);
    void (*ukr_bf16)(const kn_tile *t);
    void (*act)(float *x, size_t n, int act);
    /* exp(x - max) / sum over x[0..n), in place */
    void (*softmax)(float *x, int n);
    /* bf16 pairs of one row of A: n (even) values of which the first navail
     * are a[], the rest zero, rounded to nearest even, pair j (values 2j,
     * 2j+1, the even one in the low half) stored at dst[j * stride]; NULL
     * where the portable loop serves */
    void (*bf16_pairs)(const float *a, int n, int navail, uint32_t *dst, int stride);
    /* one row of layer norm; out may equal x; gamma, beta may be NULL */
    void (*layernorm)(const float *x, int dim, const float *gamma, const float *beta, float eps,
                      float *out);
} kn_isa;

extern const kn_isa kn_isa_portable;
extern const kn_isa kn_isa_avx2;
extern const kn_isa kn_isa_avx512;
extern const kn_isa kn_isa_avx512bf16;
extern const kn_isa kn_isa_amx;

/* AVX-512's vector epilogue of a tile from acc[t->mr][32] (64-byte
 * aligned), for kern_amx.c. */
void kn_avx512_store_tile(const kn_tile *t, const float *acc);
/* The AMX-BF16 micro-kernel (kern_amx.c): 32 x 32, A as rows of pairs. */
void kn_amx_ukr_bf16(const kn_tile *t);
/* Whether this process may use AMX-BF16 (CPUID AMX-TILE and AMX-BF16 bits,
 * XCR0 tile state, Linux's ARCH_REQ_XCOMP_PERM granted; asks once per
 * call, so call it once): 1, or 0 with the reason in why (as
 * kn_amx_usable). */
int kn_amx_os_check(char *why, size_t len);
/* Register-only TDPBF16PS probe: iters x 4 tile products; returns the
 * FLOPs done, adds a result to *sink. Only after kn_amx_os_check said 1. */
double kn_amx_probe(long iters, float *sink);
/* The AMX availability rule: 1 when the CPU has the AMX bits (cpu_bits),
 * the OS enabled tile state in XCR0 (xcr0_ok) and Linux granted tile data
 * (perm_errno 0); else 0, with why (len bytes, NUL-terminated; may be
 * NULL) naming the first missing piece. */
int kn_amx_usable(int cpu_bits, int xcr0_ok, int perm_errno, char *why, size_t len);
/* The AMX dispatch rule: 1 when the measured TDPBF16PS rate (FLOP/s) is
 * worth using against the best other bf16 rate, else 0. */
int kn_amx_wins(double amx_flops, double other_flops);

/* The scalar epilogue on an accumulator tile acc[mr][ld] (edge tiles). */
void kn_tile_store(const kn_tile *t, const float *acc, int ld);
/* Makes every per-thread scratch allocation fail while on != 0, so tests
 * reach the out-of-memory fallbacks. */
void kn_scratch_fail_for_tests(int on);

/* Register-only rate probes of kern_avx512.c: iters x 12 FMAs (f32) or
 * VDPBF16PS (bf16) of 16 lanes; return the FLOPs done, add a result to
 * *sink. Only call where the CPU has AVX-512 (+BF16). */
double kn_avx512_probe_f32(long iters, float *sink);
double kn_avx512_probe_bf16(long iters, float *sink);

/* The bf16 dispatch rule: 1 when the measured VDPBF16PS rate (FLOP/s) is
 * worth using for bf16 weights against the f32 FMA rate, else 0 (bf16
 * weights then run as bf16-rounded floats on the f32 FMA tile). */
int kn_bf16_native_wins(double bf16_flops, double f32_flops);

/* The split bf16 (KN_BF16X3) rule: 1 when a native bf16 tile's measured
 * rate (FLOP/s) is worth three bf16 products per f32 one, with margin for
 * the tripled A packing (at least 4x the f32 FMA rate), else 0. */
int kn_bf16x3_wins(double bf16_flops, double f32_flops);

/* Split bf16's A packing on AVX-512 (kern_avx512.c): the values
 * a[0 .. 16 * groups) as triples (hi, hi, lo) of bf16, 48 * groups words
 * at dst (unaligned). Only where the CPU has AVX-512 (or SIMDe). */
void kn_avx512_x3_body(const float *a, int groups, uint16_t *dst);

/* Scalar activation of one value. */
float kn_act1(float x, int act);

#endif /* KERN_INT_H */
