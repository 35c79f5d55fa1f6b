/*
 * kern/kern_amx.c: the AMX-BF16 micro-kernel for kern/kern.c's bf16
 * weights: a 32 x 32 tile of C as 2 x 2 accumulator tiles of 16 x 16
 * floats (tmm0-3), A as two 16-row tiles of 16 bf16 pairs (tmm4-5, rows of
 * pairs as the driver packs them for bf16_rowmajor), B as two 16-pair x 16
 * column tiles (tmm6-7) read straight from the packed weight panel, whose
 * [K/2][32] pairs layout is AMX's VNNI layout (the two bf16 of a K pair
 * side by side, a panel row of 128 bytes holding both B tiles' rows); K is
 * packed padded to a multiple of 32 (one tile step), so only M and N have
 * edges: rows past the tile's come from a tile configuration with fewer
 * rows (loaded only when the shape changes, per thread), columns past N
 * are the panel's zero padding and never stored. K blocks of KC_AMX
 * (kern_avx512.c). The epilogue (alpha,
 * beta * C, bias, activation, residual) is the AVX-512 one.
 *
 * Also: whether the CPU and OS let this process use AMX (CPUID bits, XCR0
 * tile state, Linux's ARCH_REQ_XCOMP_PERM), and the TDPBF16PS rate probe
 * of kn_init's dispatch. Compiled with -mamx-tile -mamx-bf16 and called
 * only after that check; with KN_EMULATE_AMX the same source runs on
 * kern/kern_amx_tiles.h's portable emulation (tests/kern_avx512_emul.sh).
 */
#include "kern/kern_amx_tiles.h"
#include "kern/kern.h"
#include "kern/kern_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifndef KN_EMULATE_AMX
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define NR      32 /* columns of a C tile: two 16-float accumulators */
#define MR      32 /* rows: two 16-row accumulators */
#define TPAIRS  16 /* K pairs per tile step (32 k: 64 bytes of an A row) */
#define BSTRIDE (NR * 4)

#ifndef ARCH_REQ_XCOMP_PERM
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define XFEATURE_XTILEDATA 18

/* The configuration this thread loaded last (rows of the upper and lower
 * halves, as r0 * 17 + r1), -1 before the first. */
static _Thread_local int t_cfg = -1;

static void tile_set(kt_config *c, int t, int rows)
{
    c->rows[t] = (uint8_t)rows;
    c->colsb[t] = rows ? 64 : 0;
}

/* Tiles for an r0 + r1 row C tile (r0 <= 16, r1 <= 16): tmm0-1 and tmm4
 * have r0 rows, tmm2-3 and tmm5 r1 (unused when 0), tmm6-7 16 pair rows. */
static void tile_config(int r0, int r1)
{
    int key = r0 * 17 + r1;
    if (t_cfg == key)
        return;
    kt_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    tile_set(&c, 0, r0);
    tile_set(&c, 1, r0);
    tile_set(&c, 4, r0);
    tile_set(&c, 2, r1);
    tile_set(&c, 3, r1);
    tile_set(&c, 5, r1);
    tile_set(&c, 6, TPAIRS);
    tile_set(&c, 7, TPAIRS);
    kt_loadconfig(&c);
    t_cfg = key;
}

/* See kn_isa.ukr_bf16: t->a rows of t->kc / 2 pairs (row i at t->a + i *
 * t->lda pairs), t->kc a multiple of 32, t->b the panel at this K block. */
void kn_amx_ukr_bf16(const kn_tile *t)
{
    int mr = t->mr < MR ? t->mr : MR;
    int r0 = mr < 16 ? mr : 16, r1 = mr - r0;
    tile_config(r0, r1);
    const char *a0 = (const char *)t->a, *b = (const char *)t->b;
    long sa = (long)t->lda * 4;
    const char *a1 = a0 + 16 * sa;
    int npairs = t->kc / 2, steps = npairs / TPAIRS;
    /* the next panel's share, spread over the k steps */
    const char *pf = t->pf;
    int pfn = t->pf_lines, pf_each = steps > 0 ? (pfn + steps - 1) / steps : 0;
    kt_zero(0);
    kt_zero(1);
    if (r1) {
        kt_zero(2);
        kt_zero(3);
        for (int s = 0; s < steps; s++) {
            const char *bs = b + (size_t)s * TPAIRS * BSTRIDE;
            kt_loadd(6, bs, BSTRIDE);
            kt_loadd(7, bs + 64, BSTRIDE);
            kt_loadd(4, a0 + (size_t)s * 64, sa);
            kt_loadd(5, a1 + (size_t)s * 64, sa);
            kt_dpbf16ps(0, 4, 6);
            kt_dpbf16ps(1, 4, 7);
            kt_dpbf16ps(2, 5, 6);
            kt_dpbf16ps(3, 5, 7);
            for (int i = 0; i < pf_each && pfn > 0; i++, pfn--, pf += 64)
                __builtin_prefetch(pf, 0, 2);
        }
    } else {
        for (int s = 0; s < steps; s++) {
            const char *bs = b + (size_t)s * TPAIRS * BSTRIDE;
            kt_loadd(6, bs, BSTRIDE);
            kt_loadd(7, bs + 64, BSTRIDE);
            kt_loadd(4, a0 + (size_t)s * 64, sa);
            kt_dpbf16ps(0, 4, 6);
            kt_dpbf16ps(1, 4, 7);
            for (int i = 0; i < pf_each && pfn > 0; i++, pfn--, pf += 64)
                __builtin_prefetch(pf, 0, 2);
        }
    }
    float acc[MR * NR] __attribute__((aligned(64)));
    kt_stored(0, acc, BSTRIDE);
    kt_stored(1, acc + 16, BSTRIDE);
    if (r1) {
        kt_stored(2, acc + 16 * NR, BSTRIDE);
        kt_stored(3, acc + 16 * NR + 16, BSTRIDE);
    }
    kn_avx512_store_tile(t, acc);
}

/* ---- availability and rate probe ------------------------------------------ */

int kn_amx_os_check(char *why, size_t len)
{
#ifdef KN_EMULATE_AMX
    snprintf(why, len, "emulated in portable C (KN_EMULATE_AMX)");
    return kn_amx_usable(1, 1, 0, NULL, 0);
#else
    unsigned a, b, c, d;
    int bits = 0, xcr0_ok = 0, perm = ENOSYS;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
        bits = (d >> 22 & 1) && (d >> 24 & 1);                     /* AMX-BF16, AMX-TILE */
    if (bits && __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1)) { /* OSXSAVE: xgetbv works */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0_ok = (lo >> 17 & 3) == 3; /* XTILECFG and XTILEDATA enabled */
    }
    if (bits && xcr0_ok)
        perm = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : errno;
    return kn_amx_usable(bits, xcr0_ok, perm, why, len);
#endif
}

/* iters x 4 TDPBF16PS (16 x 16 x 32 bf16 products each) on 4 independent
 * accumulators, operands loaded once; returns the FLOPs done. */
double kn_amx_probe(long iters, float *sink)
{
    uint16_t src[16 * 32];
    for (int i = 0; i < 16 * 32; i++)
        src[i] = 0x3c00; /* 2^-7: the sums stay small */
    tile_config(16, 16);
    kt_loadd(4, src, 64);
    kt_loadd(5, src, 64);
    kt_loadd(6, src, 64);
    kt_loadd(7, src, 64);
    kt_zero(0);
    kt_zero(1);
    kt_zero(2);
    kt_zero(3);
    for (long it = 0; it < iters; it++) {
        kt_dpbf16ps(0, 4, 6);
        kt_dpbf16ps(1, 4, 7);
        kt_dpbf16ps(2, 5, 6);
        kt_dpbf16ps(3, 5, 7);
    }
    float out[16 * 16];
    kt_stored(0, out, 64);
    *sink += out[0];
    kt_stored(3, out, 64);
    *sink += out[255];
    /* the dispatching thread may never compute: no tile state kept for it */
    kt_release();
    t_cfg = -1;
    return (double)iters * 4 * 16 * 16 * 32 * 2;
}
