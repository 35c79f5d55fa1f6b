/*
 * kern/kern_amx_tiles.h: the AMX tile operations kern/kern_amx.c uses, as
 * the real intrinsics (LDTILECFG, TILELOADD, TILESTORED, TILEZERO,
 * TDPBF16PS; compiled with -mamx-tile -mamx-bf16) or, with
 * KN_EMULATE_AMX, as a small portable C emulation of exactly those five
 * instructions on a per-thread tile register file, so that the one kernel
 * source runs (slowly) on any CPU and tests/kern_avx512_emul.sh checks its
 * tiling, packing and edge handling against the f32 reference.
 *
 * The emulation follows the instruction set reference: a tile has the rows
 * and bytes per row (colsb) of the loaded configuration; loads zero the
 * bytes past colsb, TDPBF16PS adds, for each row m and column n of the
 * destination, the products of the bf16 pairs of A's row m and B's pair
 * row k (both products exact in float, added one after the other in
 * float), over colsb(A) / 4 pairs; input denormals are read as zero and
 * results flushed to zero, as the hardware does. Using a tile that the
 * configuration leaves empty aborts (the hardware raises #UD).
 */
#ifndef KERN_AMX_TILES_H
#define KERN_AMX_TILES_H

#include <stdint.h>
#include <string.h>

/* The 64-byte tile configuration of palette 1. */
typedef struct kt_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} kt_config;

#ifndef KN_EMULATE_AMX

#include <immintrin.h>

/* GCC 12's tileloadd has no memory clobber: the barrier orders it after
 * the stores that filled its source (no instruction emitted) */
#define kt_loadconfig(cfg) _tile_loadconfig(cfg)
#define kt_loadd(t, base, stride)                                                                  \
    do {                                                                                           \
        __asm__ volatile("" ::: "memory");                                                         \
        _tile_loadd(t, base, stride);                                                              \
    } while (0)
#define kt_stored(t, base, stride) _tile_stored(t, base, stride)
#define kt_zero(t)                 _tile_zero(t)
#define kt_dpbf16ps(c, a, b)       _tile_dpbf16ps(c, a, b)
#define kt_release()               _tile_release()

#else /* KN_EMULATE_AMX */

#include <stdlib.h>

#define KT_TILES 8
#define KT_ROWS  16
#define KT_COLSB 64

typedef struct kt_state {
    int configured;
    uint8_t rows[KT_TILES];
    uint16_t colsb[KT_TILES];
    uint8_t t[KT_TILES][KT_ROWS][KT_COLSB];
} kt_state;

static _Thread_local kt_state kt_regs;

static inline void kt_check(int t)
{
    if (!kt_regs.configured || t < 0 || t >= KT_TILES || kt_regs.rows[t] == 0 ||
        kt_regs.colsb[t] == 0)
        abort(); /* #UD on the hardware: a kernel bug, never a data error */
}

static inline void kt_loadconfig(const void *cfg)
{
    kt_config c;
    memcpy(&c, cfg, sizeof c);
    if (c.palette != 1)
        abort();
    memset(&kt_regs, 0, sizeof kt_regs); /* LDTILECFG zeroes every tile */
    for (int i = 0; i < KT_TILES; i++) {
        if (c.rows[i] > KT_ROWS || c.colsb[i] > KT_COLSB || (c.rows[i] == 0) != (c.colsb[i] == 0))
            abort();
        kt_regs.rows[i] = c.rows[i];
        kt_regs.colsb[i] = c.colsb[i];
    }
    kt_regs.configured = 1;
}

/* TILERELEASE: back to the init state (no configuration, tiles zero) */
static inline void kt_release(void)
{
    memset(&kt_regs, 0, sizeof kt_regs);
}

static inline void kt_loadd(int t, const void *base, long stride)
{
    kt_check(t);
    memset(kt_regs.t[t], 0, sizeof kt_regs.t[t]);
    for (int r = 0; r < kt_regs.rows[t]; r++)
        memcpy(kt_regs.t[t][r], (const char *)base + (long)r * stride, kt_regs.colsb[t]);
}

static inline void kt_stored(int t, void *base, long stride)
{
    kt_check(t);
    for (int r = 0; r < kt_regs.rows[t]; r++)
        memcpy((char *)base + (long)r * stride, kt_regs.t[t][r], kt_regs.colsb[t]);
}

static inline void kt_zero(int t)
{
    kt_check(t);
    memset(kt_regs.t[t], 0, sizeof kt_regs.t[t]);
}

/* A bf16 as float, denormals read as zero. */
static inline float kt_bf(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float kt_ftz(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    memcpy(&f, &u, 4);
    return f;
}

static inline void kt_dpbf16ps(int c, int a, int b)
{
    kt_check(c);
    kt_check(a);
    kt_check(b);
    int M = kt_regs.rows[c], N = kt_regs.colsb[c] / 4, K = kt_regs.colsb[a] / 4;
    /* the shapes TDPBF16PS requires (else #UD) */
    if (kt_regs.rows[a] != M || kt_regs.rows[b] != K || kt_regs.colsb[b] != kt_regs.colsb[c])
        abort();
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc;
            memcpy(&acc, &kt_regs.t[c][m][n * 4], 4);
            for (int k = 0; k < K; k++) {
                const uint8_t *pa = &kt_regs.t[a][m][k * 4], *pb = &kt_regs.t[b][k][n * 4];
                acc = kt_ftz(acc + kt_bf(pa) * kt_bf(pb));
                acc = kt_ftz(acc + kt_bf(pa + 2) * kt_bf(pb + 2));
            }
            memcpy(&kt_regs.t[c][m][n * 4], &acc, 4);
        }
}

#endif /* KN_EMULATE_AMX */

#endif /* KERN_AMX_TILES_H */
