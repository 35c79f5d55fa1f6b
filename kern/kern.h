/*
 * kern/kern.h: the compute kernels of the built-in CLIP (internal to
 * encode/): packed-weight GEMM with fused epilogues, attention, layer norm,
 * softmax, convolution helpers.
 *
 * Layout conventions: row-major float32 everywhere; a "linear" weight is
 * PyTorch's [out, in] (N x K) matrix. Packing happens once at model load;
 * kernels never allocate per call: besides the caller's scratch, each thread
 * that runs a kernel allocates about 640 KiB of packing buffers once, and a
 * thread whose products pack A on several threads (AVX-512, bf16) keeps a
 * buffer of M x K-block floats (at most 32 MiB kept between calls); both are
 * freed when the thread exits. On allocation failure the kernels still
 * compute, slowly, without them.
 * Threading: every kernel may use OpenMP internally; callers do not nest
 * parallel regions around them.
 *
 * The implementation is chosen at run time (kn_init): AVX-512 (+BF16 where
 * VDPBF16PS measures faster than f32 FMA, or + AMX-BF16 tiles where the OS
 * grants them and TDPBF16PS measures faster still), AVX2+FMA, or portable
 * C. All give the same results within float rounding (kn_path_info says
 * which and why).
 */
#ifndef KERN_H
#define KERN_H

#include <stddef.h>
#include <stdint.h>

enum kn_precision {
    KN_F32 = 0,  /* float32 weights and arithmetic (the default) */
    KN_BF16 = 1, /* bf16 weights and activations, float32 accumulation */
    /* split bf16 ("bf16x3", Henry, Tang & Heinecke 2019): each weight and
     * activation x is split into hi = bf16(x) and lo = bf16(x - hi), and a
     * product is a_hi*w_hi + a_hi*w_lo + a_lo*w_hi, accumulated in f32:
     * float32-level results (relative error about 2^-16 per product, some
     * 250x below plain bf16's 2^-8) for three bf16 products, run as one
     * bf16 GEMM over a tripled K on the native bf16 tile (weights take 1.5x
     * the f32 bytes). Worth it only where that tile runs clearly more than
     * 3x the f32 FMA rate (kn_bf16x3_worth: AMX). On a path without a
     * native bf16 tile it packs as KN_F32 (same results within float
     * rounding, never slower than f32). */
    KN_BF16X3 = 2,
};

enum kn_act {
    KN_ACT_NONE = 0,
    KN_ACT_GELU = 1,      /* exact erf GELU (LAION / HF "gelu") */
    KN_ACT_QUICKGELU = 2, /* x * sigmoid(1.702 x) (OpenAI) */
    KN_ACT_RELU = 3,
};

/* Detects the CPU once; returns a static name of the chosen path
 * ("amx-bf16", "avx512", "avx512-bf16", "avx2", "portable"). Safe to call
 * many times. */
const char *kn_init(void);
/* Forces a path for tests and benchmarks ("portable", "avx2", "avx512",
 * "avx512-bf16", "amx-bf16"), or "auto" for the run-time choice again;
 * returns 0, or -1
 * if the CPU lacks it (the path in use is then unchanged). Weights packed
 * before keep the layout of the path that packed them. */
int kn_force_path(const char *name);
/* Describes the path in use and why it was chosen, for `witpipe model info`
 * and `clip --verbose`: one line such as
 *   avx512-bf16 (chosen at run time; cpu has: avx512-bf16 avx512 avx2
 *   portable; bf16 weights: native VDPBF16PS tile; VDPBF16PS measured 1.78x
 *   the f32 FMA rate (430 vs 241 GFLOP/s on one thread); amx-bf16
 *   unavailable: ...; split bf16 (bf16x3): not worth it, VDPBF16PS measured
 *   1.78x the f32 FMA rate (needs more than 4x for three bf16 products))
 * Where the CPU has AVX512_BF16, the first dispatch (kn_init or any kernel)
 * times VDPBF16PS against f32 FMA on one thread (about 1 ms) and takes the
 * native bf16 tile only when it is clearly faster; otherwise the "avx512"
 * path runs bf16 weights as bf16-rounded floats on the f32 tile. The last
 * clause is kn_bf16x3_worth's standing on the path in use. Writes at
 * most len bytes (NUL-terminated when len > 0) into the caller's buf and
 * returns the length the full line needs (snprintf's rule; -1 on an encoding
 * error). Thread-safe; never fails otherwise. */
int kn_path_info(char *buf, size_t len);

/* Whether KN_BF16X3 weights pay on the path in use: 1 when it has a native
 * bf16 tile whose measured rate is worth three bf16 products against the
 * f32 FMA rate (kn_bf16x3_wins), or when kn_force_bf16x3 turned it on;
 * else 0 (callers then pack KN_F32). kn_path_info gives the figures. */
int kn_bf16x3_worth(void);
/* For tests and benchmarks: on != 0 makes kn_bf16x3_worth answer 1 on any
 * path (split packing runs natively wherever the path has a bf16 tile, as
 * f32 elsewhere); 0 restores the measured rule. */
void kn_force_bf16x3(int on);

/* A weight matrix W [N x K] packed for the GEMM micro-kernel. */
typedef struct kn_packed kn_packed;

/* Packs W (row-major N x K, float32) for precision prec (enum
 * kn_precision; KN_BF16X3 as described there). Returns NULL when out of
 * memory. The caller frees with kn_packed_free. */
kn_packed *kn_pack(const float *W, int N, int K, int prec);
void kn_packed_free(kn_packed *p);
int kn_packed_n(const kn_packed *p);
int kn_packed_k(const kn_packed *p);

/* C[M x N] = act(A[M x K] . W^T + bias) + residual
 * bias (length N) and residual ([M x N], leading dim ldr) may be NULL.
 * C may alias residual (same pointer, same leading dimension). */
void kn_linear(const float *A, int lda, int M, const kn_packed *W, const float *bias, int act,
               const float *residual, int ldr, float *C, int ldc);

/* Unpacked GEMMs for attention-sized products (no packing cost):
 * C = alpha * A[M x K] . B[N x K]^T + beta * C   (kn_gemm_nt)
 * C = alpha * A[M x K] . B[K x N]   + beta * C   (kn_gemm_nn) */
void kn_gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc);
void kn_gemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc);

/* out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta, per row of dim. */
void kn_layernorm(const float *x, int ldx, int rows, int dim, const float *gamma, const float *beta,
                  float eps, float *out, int ldo);

/* Multi-head self-attention core for one sequence:
 * qkv is [seq x 3*width] (q | k | v, heads of head_dim = width / heads),
 * out is [seq x width]. causal != 0 masks j > i. scratch must hold
 * kn_attention_scratch(seq, heads) floats. */
size_t kn_attention_scratch(int seq, int heads);
void kn_attention(const float *qkv, int seq, int width, int heads, int causal, float *out,
                  float *scratch);

/* kn_attention over nseq sequences stored one after another (qkv
 * [nseq*seq x 3*width], out [nseq*seq x width]) in one parallel loop over
 * (sequence, head): cheaper than nseq calls. scratch as for kn_attention
 * (used only when seq > 181). */
void kn_attention_batch(const float *qkv, int nseq, int seq, int width, int heads, int causal,
                        float *out, float *scratch);

/* kn_attention over nseq sequences of any lengths packed back to back:
 * sequence s is rows off[s]..off[s+1] of qkv ([off[nseq] x 3*width]) and
 * out ([off[nseq] x width]); one parallel loop over (sequence, head).
 * scratch as for kn_attention of the longest sequence (used only when it
 * is longer than 181). */
void kn_attention_var(const float *qkv, int nseq, const int *off, int width, int heads, int causal,
                      float *out, float *scratch);

/* Multi-head attention with separate q (nq rows) and k/v (nk rows), used by
 * ModifiedResNet's attention pooling: q [nq x width], k,v [nk x width].
 * scratch must hold heads * nq * nk floats (kn_attention_scratch(max(nq, nk),
 * heads) is enough). */
void kn_attention_qkv(const float *q, int nq, const float *k, const float *v, int nk, int width,
                      int heads, float *out, float *scratch);

/* In-place activation on n floats. */
void kn_activate(float *x, size_t n, int act);

/* 2-D convolution, NCHW, weights [cout x cin x kh x kw] packed as a linear
 * weight of N = cout, K = cin*kh*kw (kn_pack of the flattened weight).
 * out [cout x oh x ow] = act(conv(in) + bias). scratch must hold
 * kn_conv2d_scratch(...) floats. */
size_t kn_conv2d_scratch(int cin, int h, int w, int kh, int kw, int stride, int pad);
void kn_conv2d(const float *in, int cin, int h, int w, const kn_packed *W, int kh, int kw,
               int stride, int pad, const float *bias, int act, float *out, float *scratch);

#endif /* KERN_H */
