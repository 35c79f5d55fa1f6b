/*
 * clip/clip_fwd.c: the CLIP forward passes (ViT, ModifiedResNet, text
 * transformer) on top of the kern.h kernels, and the reusable workspace.
 *
 * Activations are row-major [tokens x width]. Each forward pass runs the
 * whole batch through every layer at once so that the GEMMs see M = batch x
 * tokens rows; attention runs per sequence. The workspace keeps every
 * buffer between calls and only grows, so a steady stream of same-sized
 * batches allocates nothing.
 */
#include "clip/clip_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { WS_A, WS_B, WS_C, WS_D, WS_E, WS_F, WS_G, WS_H, WS_SLOTS };

struct clip_ws {
    float *buf[WS_SLOTS];
    size_t cap[WS_SLOTS];
    int *eot;
    int eot_cap;
    int *off; /* sequence start rows, n + 1 */
    int off_cap;
};

clip_ws *clip_ws_new(void)
{
    return calloc(1, sizeof(clip_ws));
}

void clip_ws_free(clip_ws *ws)
{
    if (ws == NULL)
        return;
    for (int i = 0; i < WS_SLOTS; i++)
        free(ws->buf[i]);
    free(ws->eot);
    free(ws->off);
    free(ws);
}

/* A buffer of at least n floats in slot i (contents not kept on growth). */
static float *ws_get(clip_ws *ws, int i, size_t n)
{
    if (n == 0)
        n = 1;
    if (ws->cap[i] < n) {
        free(ws->buf[i]);
        ws->buf[i] = NULL;
        ws->cap[i] = 0;
        /* 64-byte alignment for the SIMD kernels */
        size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
        ws->buf[i] = aligned_alloc(64, bytes);
        if (ws->buf[i] == NULL)
            return NULL;
        ws->cap[i] = n;
    }
    return ws->buf[i];
}

/* ---- plan: sizes and FLOPs ------------------------------------------- */

static int conv_out(int x, int k, int s, int p)
{
    return (x + 2 * p - k) / s + 1;
}

static void plan_conv(clip_model *m, const clip_conv *c, int *h, int *w, double *fl)
{
    int oh = conv_out(*h, c->k, c->stride, c->pad), ow = conv_out(*w, c->k, c->stride, c->pad);
    /* NHWC im2col rows of one image; 1x1 stride-1 convs need none */
    size_t sc = c->k == 1 && c->stride == 1 ? 0 : (size_t)oh * ow * c->k * c->k * c->cin;
    size_t act = (size_t)c->cout * oh * ow;
    if (sc > m->rn_scratch_max)
        m->rn_scratch_max = sc;
    if (act > m->rn_act_max)
        m->rn_act_max = act;
    *fl += 2.0 * oh * ow * c->cout * c->cin * c->k * c->k;
    *h = oh;
    *w = ow;
}

static double block_flops(int seq, int w, int mlp, int att_len)
{
    return 2.0 * seq * w * 3 * w + 4.0 * seq * att_len * w + 2.0 * seq * w * w +
           4.0 * seq * w * mlp;
}

void clip_model_plan(clip_model *m)
{
    const clip_arch *a = &m->a;
    double fl = 0;

    if (a->vision == CLIP_VISION_VIT) {
        int g = a->image_size / a->v_patch, seq = g * g + 1;
        fl = 2.0 * g * g * a->v_width * 3 * a->v_patch * a->v_patch;
        fl += a->v_layers * block_flops(seq, a->v_width, a->v_mlp, seq);
        fl += 2.0 * a->v_width * a->embed_dim;
    } else {
        int h = a->image_size, w = a->image_size;
        m->rn_act_max = (size_t)3 * h * w;
        for (int i = 0; i < 3; i++)
            plan_conv(m, &m->stem[i], &h, &w, &fl);
        h /= 2;
        w /= 2;
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < m->rn_n[s]; b++) {
                const clip_bottleneck *bk = &m->rn[s][b];
                int h1 = h, w1 = w;
                plan_conv(m, &bk->c1, &h1, &w1, &fl);
                plan_conv(m, &bk->c2, &h1, &w1, &fl);
                h1 /= bk->stride;
                w1 /= bk->stride;
                plan_conv(m, &bk->c3, &h1, &w1, &fl);
                if (bk->has_ds) {
                    int h2 = h / bk->stride, w2 = w / bk->stride;
                    plan_conv(m, &bk->ds, &h2, &w2, &fl);
                }
                h = h1;
                w = w1;
            }
        int c = a->v_width * 32, n = h * w + 1;
        fl += 2.0 * c * c * (1 + 2 * n) + 4.0 * n * c + 2.0 * c * a->embed_dim;
    }
    m->img_flops = fl;
}

double clip_image_flops(const clip_model *m)
{
    return m->img_flops;
}

double clip_text_flops(const clip_model *m, int len)
{
    const clip_arch *a = &m->a;
    return a->t_layers * block_flops(len, a->t_width, a->t_mlp, (len + 1) / 2) +
           2.0 * a->t_width * a->embed_dim;
}

/* ---- transformer ----------------------------------------------------- */

/* Runs the blocks in place over x, which holds nseq sequences back to
 * back: sequence s is rows off[s]..off[s+1] (no padding: every op but
 * attention is row-wise). h, qkv, mlp and scratch are caller buffers of
 * off[nseq] rows (scratch: kn_attention_scratch of the longest sequence). */
static void transformer(const clip_block *blocks, int layers, int nseq, const int *off, int w,
                        int heads, int mlp_dim, int act, float eps, int causal, float *x, float *h,
                        float *qkv, float *mlp, float *scratch)
{
    int rows = off[nseq], uniform = 1;
    for (int s = 1; s < nseq && uniform; s++)
        uniform = off[s + 1] - off[s] == off[1] - off[0];
    for (int l = 0; l < layers; l++) {
        const clip_block *b = &blocks[l];
        kn_layernorm(x, w, rows, w, b->ln1_g, b->ln1_b, eps, h, w);
        kn_linear(h, w, rows, b->qkv, b->qkv_b, KN_ACT_NONE, NULL, 0, qkv, 3 * w);
        /* one parallel loop over (sequence, head) */
        if (uniform)
            kn_attention_batch(qkv, nseq, off[1] - off[0], w, heads, causal, h, scratch);
        else
            kn_attention_var(qkv, nseq, off, w, heads, causal, h, scratch);
        kn_linear(h, w, rows, b->out, b->out_b, KN_ACT_NONE, x, w, x, w);
        kn_layernorm(x, w, rows, w, b->ln2_g, b->ln2_b, eps, h, w);
        kn_linear(h, w, rows, b->fc1, b->fc1_b, act, NULL, 0, mlp, mlp_dim);
        kn_linear(mlp, mlp_dim, rows, b->fc2, b->fc2_b, KN_ACT_NONE, x, w, x, w);
    }
}

/* ws->off sized for n sequences (n + 1 entries); 0 or WP_ENOMEM. */
static int ws_offsets(clip_ws *ws, int n)
{
    if (ws->off_cap < n + 1) {
        int *o = realloc(ws->off, (size_t)(n + 1) * sizeof *o);
        if (o == NULL)
            return WP_ENOMEM;
        ws->off = o;
        ws->off_cap = n + 1;
    }
    return 0;
}

/* ---- ViT ------------------------------------------------------------- */

static int vit_images(const clip_model *m, clip_ws *ws, const float *px, int n, float *out,
                      wp_err *err)
{
    const clip_arch *a = &m->a;
    int p = a->v_patch, g = a->image_size / p, np = g * g, seq = np + 1, w = a->v_width;
    int k = 3 * p * p, S = a->image_size;
    size_t rows = (size_t)n * seq;
    float *patches = ws_get(ws, WS_A, (size_t)n * np * k);
    float *x = ws_get(ws, WS_B, rows * w);
    float *h = ws_get(ws, WS_C, rows * w);
    float *qkv = ws_get(ws, WS_D, rows * 3 * w);
    float *mlp = ws_get(ws, WS_E, rows * a->v_mlp);
    float *sc = ws_get(ws, WS_F, kn_attention_scratch(seq, a->v_heads));

    if (!patches || !x || !h || !qkv || !mlp || !sc)
        return wp_err_set(err, WP_ENOMEM, "out of memory for a batch of %d images", n);
        /* conv1 with stride = kernel = patch is a linear map of each flattened
         * patch (channel, row, column order, as the conv weight is stored) */
#pragma omp parallel for collapse(2) schedule(static) if (n > 1)
    for (int b = 0; b < n; b++)
        for (int gy = 0; gy < g; gy++)
            for (int gx = 0; gx < g; gx++) {
                float *row = patches + ((size_t)b * np + (size_t)gy * g + gx) * k;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(row + (size_t)c * p * p + (size_t)ky * p,
                               px + (((size_t)b * 3 + c) * S + (size_t)gy * p + ky) * S +
                                   (size_t)gx * p,
                               (size_t)p * sizeof(float));
            }
    /* one GEMM over every patch of the batch (M = n x 49), into qkv as a
     * temporary, then class token + positions per image */
    kn_linear(patches, k, n * np, m->patch, NULL, KN_ACT_NONE, NULL, 0, qkv, w);
    for (int b = 0; b < n; b++) {
        float *xb = h + (size_t)b * seq * w;
        const float *pb = qkv + (size_t)b * np * w;
        for (int j = 0; j < w; j++)
            xb[j] = m->class_emb[j] + m->v_pos[j];
        for (size_t i = (size_t)w; i < (size_t)seq * w; i++)
            xb[i] = pb[i - w] + m->v_pos[i];
    }
    kn_layernorm(h, w, (int)rows, w, m->ln_pre_g, m->ln_pre_b, a->v_eps, x, w);
    if (ws_offsets(ws, n) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (int b = 0; b <= n; b++)
        ws->off[b] = b * seq;
    transformer(m->v_blocks, a->v_layers, n, ws->off, w, a->v_heads, a->v_mlp, a->v_act, a->v_eps,
                0, x, h, qkv, mlp, sc);
    /* ln_post on the class token of each image (row stride seq*w) */
    kn_layernorm(x, seq * w, n, w, m->ln_post_g, m->ln_post_b, a->v_eps, h, w);
    kn_linear(h, w, n, m->v_proj, NULL, KN_ACT_NONE, NULL, 0, out, a->embed_dim);
    return 0;
}

/* ---- ModifiedResNet -------------------------------------------------- */

/* The trunk runs channels-last (NHWC: one row of C floats per pixel) on a
 * chunk of images at once, so that every 1x1 convolution is one GEMM over
 * all the chunk's pixels and 3x3 ones are an im2col plus one GEMM per group
 * of images; 3x3 weights were reordered at load to (ky, kx, c) to match. */

#define RN_CHUNK 8 /* images through the trunk at once */

static void avgpool_nhwc(const float *in, int nb, int h, int w, int c, int k, float *out)
{
    int oh = h / k, ow = w / k;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < nb; b++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float *o = out + (((size_t)b * oh + y) * ow + x) * c;
                memset(o, 0, (size_t)c * sizeof *o);
                for (int dy = 0; dy < k; dy++)
                    for (int dx = 0; dx < k; dx++) {
                        const float *i =
                            in +
                            (((size_t)b * h + (size_t)y * k + dy) * w + (size_t)x * k + dx) * c;
                        for (int j = 0; j < c; j++)
                            o[j] += i[j];
                    }
                for (int j = 0; j < c; j++)
                    o[j] *= inv;
            }
}

/* Rows (oy, ox) of nb images, each k*k*cin floats in (ky, kx, c) order,
 * zero where the window leaves the image. */
static void im2col_nhwc(const float *in, int nb, int h, int w, int cin, int k, int stride, int pad,
                        float *out)
{
    int oh = conv_out(h, k, stride, pad), ow = conv_out(w, k, stride, pad);
    size_t kk = (size_t)k * k * cin;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < nb; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *r = out + (((size_t)b * oh + oy) * ow + ox) * kk;
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy * stride - pad + ky;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = ox * stride - pad + kx;
                        float *d = r + ((size_t)ky * k + kx) * cin;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            memset(d, 0, (size_t)cin * sizeof *d);
                        else
                            memcpy(d, in + (((size_t)b * h + iy) * w + ix) * cin,
                                   (size_t)cin * sizeof *d);
                    }
                }
            }
}

/* out = act(conv(in) + bias) + res over nb NHWC images; scratch holds
 * scap floats (at least one image's im2col). */
static void conv_nhwc(const clip_conv *c, const float *in, int nb, int *h, int *w, int act,
                      const float *res, float *out, float *scratch, size_t scap)
{
    int oh = conv_out(*h, c->k, c->stride, c->pad), ow = conv_out(*w, c->k, c->stride, c->pad);
    size_t per = (size_t)oh * ow;
    if (c->k == 1 && c->stride == 1) {
        kn_linear(in, c->cin, nb * (int)per, c->w, c->b, act, res, c->cout, out, c->cout);
    } else {
        size_t kk = (size_t)c->k * c->k * c->cin;
        int group = (int)(scap / (per * kk));
        if (group < 1)
            group = 1;
        for (int b = 0; b < nb; b += group) {
            int g = nb - b < group ? nb - b : group;
            im2col_nhwc(in + (size_t)b * *h * *w * c->cin, g, *h, *w, c->cin, c->k, c->stride,
                        c->pad, scratch);
            kn_linear(scratch, (int)kk, g * (int)per, c->w, c->b, act,
                      res ? res + (size_t)b * per * c->cout : NULL, c->cout,
                      out + (size_t)b * per * c->cout, c->cout);
        }
    }
    *h = oh;
    *w = ow;
}

/* nb images (NCHW pixels) through the stem and the four stages; returns
 * the buffer holding the [nb x hh*ww x C] features. */
static float *resnet_trunk(const clip_model *m, const float *px, int nb, float *bufs[4], float *sc,
                           size_t scap, int *hh, int *ww)
{
    int S = m->a.image_size, h = S, w = S;
    float *X = bufs[0], *P = bufs[1], *Q = bufs[2], *R = bufs[3];
    size_t np = (size_t)S * S;

    for (int b = 0; b < nb; b++)
        for (size_t i = 0; i < np; i++)
            for (int c = 0; c < 3; c++)
                X[((size_t)b * np + i) * 3 + c] = px[((size_t)b * 3 + c) * np + i];
    conv_nhwc(&m->stem[0], X, nb, &h, &w, KN_ACT_RELU, NULL, P, sc, scap);
    conv_nhwc(&m->stem[1], P, nb, &h, &w, KN_ACT_RELU, NULL, Q, sc, scap);
    conv_nhwc(&m->stem[2], Q, nb, &h, &w, KN_ACT_RELU, NULL, P, sc, scap);
    avgpool_nhwc(P, nb, h, w, m->stem[2].cout, 2, X);
    h /= 2;
    w /= 2;
    for (int s = 0; s < 4; s++)
        for (int bi = 0; bi < m->rn_n[s]; bi++) {
            const clip_bottleneck *b = &m->rn[s][bi];
            int h1 = h, w1 = w, cin = b->c1.cin;
            float *mid, *idn, *tmp;
            conv_nhwc(&b->c1, X, nb, &h1, &w1, KN_ACT_RELU, NULL, P, sc, scap);
            conv_nhwc(&b->c2, P, nb, &h1, &w1, KN_ACT_RELU, NULL, Q, sc, scap);
            mid = Q;
            if (b->stride > 1) {
                avgpool_nhwc(Q, nb, h1, w1, b->c2.cout, b->stride, P);
                h1 /= b->stride;
                w1 /= b->stride;
                mid = P;
            }
            idn = X;
            if (b->has_ds) {
                float *free_buf = mid == P ? Q : P;
                int h2 = h, w2 = w;
                if (b->stride > 1) {
                    avgpool_nhwc(X, nb, h, w, cin, b->stride, free_buf);
                    h2 /= b->stride;
                    w2 /= b->stride;
                    conv_nhwc(&b->ds, free_buf, nb, &h2, &w2, KN_ACT_NONE, NULL, X, sc, scap);
                    idn = X;
                } else {
                    conv_nhwc(&b->ds, X, nb, &h2, &w2, KN_ACT_NONE, NULL, free_buf, sc, scap);
                    idn = free_buf;
                }
            }
            {
                int h3 = h1, w3 = w1;
                /* conv3 + bias + identity, then the block's ReLU */
                conv_nhwc(&b->c3, mid, nb, &h3, &w3, KN_ACT_NONE, idn, R, sc, scap);
                kn_activate(R, (size_t)nb * h3 * w3 * b->c3.cout, KN_ACT_RELU);
            }
            tmp = X;
            X = R;
            R = tmp;
            h = h1;
            w = w1;
        }
    *hh = h;
    *ww = w;
    return X;
}

static int resnet_images(const clip_model *m, clip_ws *ws, const float *px, int n, float *out,
                         wp_err *err)
{
    const clip_arch *a = &m->a;
    int S = a->image_size, C = a->v_width * 32, g = S / 32, nt = g * g + 1;
    int chunk = n < RN_CHUNK ? n : RN_CHUNK;
    float *bufs[4];
    size_t scap = m->rn_scratch_max > 0 ? m->rn_scratch_max : 1;
    float *sc = ws_get(ws, WS_E, scap);
    float *T = ws_get(ws, WS_F, (size_t)n * nt * C);
    float *K = ws_get(ws, WS_G, (size_t)n * nt * C * 2);
    float *qo = ws_get(ws, WS_H, (size_t)n * C * 2 + kn_attention_scratch(nt, a->v_heads));

    for (int i = 0; i < 4; i++)
        bufs[i] = ws_get(ws, WS_A + i, m->rn_act_max * chunk);
    if (!bufs[0] || !bufs[1] || !bufs[2] || !bufs[3] || !sc || !T || !K || !qo)
        return wp_err_set(err, WP_ENOMEM, "out of memory for a batch of %d images", n);
    float *V = K + (size_t)n * nt * C, *q = qo, *o = qo + (size_t)n * C, *asc = o + (size_t)n * C;
    for (int b0 = 0; b0 < n; b0 += chunk) {
        int nb = n - b0 < chunk ? n - b0 : chunk, hh, ww;
        const float *f = resnet_trunk(m, px + (size_t)b0 * 3 * S * S, nb, bufs, sc, scap, &hh, &ww);
        if (hh * ww + 1 != nt)
            return wp_err_set(err, WP_EINVAL,
                              "ResNet output %dx%d does not match the %d-token attention pool", hh,
                              ww, nt);
        /* tokens: [mean, spatial (row-major)] + positional embedding */
        for (int b = 0; b < nb; b++) {
            const float *fb = f + (size_t)b * (nt - 1) * C;
            float *t = T + (size_t)(b0 + b) * nt * C;
            memcpy(t + C, fb, (size_t)(nt - 1) * C * sizeof *t);
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int i = 0; i < nt - 1; i++)
                    s += fb[(size_t)i * C + c];
                t[c] = (float)(s / (nt - 1));
            }
            for (size_t i = 0; i < (size_t)nt * C; i++)
                t[i] += m->ap_pos[i];
        }
    }
    kn_linear(T, C, n * nt, m->ap_k, m->ap_kb, KN_ACT_NONE, NULL, 0, K, C);
    kn_linear(T, C, n * nt, m->ap_v, m->ap_vb, KN_ACT_NONE, NULL, 0, V, C);
    kn_linear(T, nt * C, n, m->ap_q, m->ap_qb, KN_ACT_NONE, NULL, 0, q, C);
    for (int b = 0; b < n; b++)
        kn_attention_qkv(q + (size_t)b * C, 1, K + (size_t)b * nt * C, V + (size_t)b * nt * C, nt,
                         C, a->v_heads, o + (size_t)b * C, asc);
    kn_linear(o, C, n, m->ap_c, m->ap_cb, KN_ACT_NONE, NULL, 0, out, a->embed_dim);
    return 0;
}

int clip_encode_images(const clip_model *m, clip_ws *ws, const float *pixels, int n, float *out,
                       wp_err *err)
{
    if (n <= 0)
        return n == 0 ? 0 : wp_err_set(err, WP_EINVAL, "negative image count");
    if (m->a.vision == CLIP_VISION_VIT)
        return vit_images(m, ws, pixels, n, out, err);
    return resnet_images(m, ws, pixels, n, out, err);
}

/* ---- text ------------------------------------------------------------ */

int clip_encode_texts(const clip_model *m, clip_ws *ws, const int32_t *tokens, int n, int ctx,
                      float *out, wp_err *err)
{
    const clip_arch *a = &m->a;
    int w = a->t_width, len = 0;

    if (n <= 0)
        return n == 0 ? 0 : wp_err_set(err, WP_EINVAL, "negative text count");
    if (ctx <= 0 || ctx > a->t_ctx)
        return wp_err_set(err, WP_EINVAL, "text context %d outside 1..%d", ctx, a->t_ctx);
    if (ws->eot_cap < n) {
        int *e = realloc(ws->eot, (size_t)n * sizeof *e);
        if (e == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        ws->eot = e;
        ws->eot_cap = n;
    }
    for (int b = 0; b < n; b++) {
        const int32_t *t = tokens + (size_t)b * ctx;
        int best = 0, pos = -1;
        for (int i = 0; i < ctx; i++) {
            if (t[i] < 0 || t[i] >= a->t_vocab)
                return wp_err_set(err, WP_EINVAL,
                                  "text %d, position %d: token id %d outside "
                                  "the vocabulary (0..%d)",
                                  b, i, t[i], a->t_vocab - 1);
            if (t[i] > t[best])
                best = i;
            if (pos < 0 && a->eos_id >= 0 && t[i] == a->eos_id)
                pos = i;
        }
        ws->eot[b] = pos >= 0 ? pos : best;
        if (ws->eot[b] + 1 > len)
            len = ws->eot[b] + 1;
    }
    /* The causal mask makes positions past a text's EOT irrelevant to its
     * EOT feature, so each text runs on its first eot + 1 tokens only,
     * packed back to back without padding. */
    if (ws_offsets(ws, n) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    ws->off[0] = 0;
    for (int b = 0; b < n; b++)
        ws->off[b + 1] = ws->off[b] + ws->eot[b] + 1;
    size_t rows = (size_t)ws->off[n];
    float *x = ws_get(ws, WS_A, rows * w);
    float *h = ws_get(ws, WS_B, rows * w);
    float *qkv = ws_get(ws, WS_C, rows * 3 * w);
    float *mlp = ws_get(ws, WS_D, rows * a->t_mlp);
    float *sc = ws_get(ws, WS_E, kn_attention_scratch(len, a->t_heads));
    if (!x || !h || !qkv || !mlp || !sc)
        return wp_err_set(err, WP_ENOMEM, "out of memory for a batch of %d texts", n);
    for (int b = 0; b < n; b++)
        for (int i = 0; i <= ws->eot[b]; i++) {
            const float *e = m->tok_emb + (size_t)tokens[(size_t)b * ctx + i] * w;
            const float *p = m->t_pos + (size_t)i * w;
            float *r = x + ((size_t)ws->off[b] + i) * w;
            for (int j = 0; j < w; j++)
                r[j] = e[j] + p[j];
        }
    transformer(m->t_blocks, a->t_layers, n, ws->off, w, a->t_heads, a->t_mlp, a->t_act, a->t_eps,
                1, x, h, qkv, mlp, sc);
    for (int b = 0; b < n; b++)
        kn_layernorm(x + ((size_t)ws->off[b] + ws->eot[b]) * w, w, 1, w, m->ln_final_g,
                     m->ln_final_b, a->t_eps, h + (size_t)b * w, w);
    kn_linear(h, w, n, m->t_proj, NULL, KN_ACT_NONE, NULL, 0, out, a->embed_dim);
    return 0;
}

/* ---- small helpers --------------------------------------------------- */

void clip_normalize_rgb(const clip_model *m, const uint8_t *rgb, float *out)
{
    int S = m->a.image_size;
    size_t np = (size_t)S * S;
    for (int c = 0; c < 3; c++) {
        float mean = m->a.mean[c], sd = m->a.std[c];
        for (size_t i = 0; i < np; i++)
            out[c * np + i] = ((float)rgb[i * 3 + c] / 255.0f - mean) / sd;
    }
}

void clip_l2_normalize(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++)
        v[i] *= inv;
}

float clip_cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0)
        return 0.0f;
    return (float)(ab / sqrt(aa * bb));
}
