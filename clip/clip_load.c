/*
 * clip/clip_load.c: builds an clip_model from a checkpoint directory
 * (Hugging Face or OpenAI/open_clip layout) or from random weights.
 *
 * Two steps: the architecture is decided first (config file plus tensor
 * shapes, as OpenAI's build_model infers it when there is no config), then
 * every weight is fetched by name through a "weight source" that checks its
 * shape, converts it to float32 and hands it to the model (or packs it).
 * The random source serves the same names with seeded random values, so
 * benchmarks build a real architecture without a file.
 */
#include "clip/clip_int.h"
#include "clip/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 192 /* longest weight name the builder forms */
#define CONFIG_MAX   (4 << 20)
#define DIM_MAX      (1 << 20) /* largest size read from a tensor's shape (vocab, width...) */

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* ---- ownership ------------------------------------------------------- */

float *clip_own(clip_model *m, float *p)
{
    if (p == NULL)
        return NULL;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (o == NULL) {
            free(p);
            return NULL;
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

kn_packed *clip_pack(clip_model *m, const float *w, int n, int k)
{
    return kn_pack(w, n, k, m->pack_precision);
}

static void free_block(clip_block *b)
{
    kn_packed_free(b->qkv);
    kn_packed_free(b->out);
    kn_packed_free(b->fc1);
    kn_packed_free(b->fc2);
}

static void free_conv(clip_conv *c)
{
    kn_packed_free(c->w);
}

void clip_model_free(clip_model *m)
{
    if (m == NULL)
        return;
    kn_packed_free(m->patch);
    kn_packed_free(m->v_proj);
    kn_packed_free(m->t_proj);
    if (m->v_blocks != NULL)
        for (int i = 0; i < m->a.v_layers; i++)
            free_block(&m->v_blocks[i]);
    if (m->t_blocks != NULL)
        for (int i = 0; i < m->a.t_layers; i++)
            free_block(&m->t_blocks[i]);
    free(m->v_blocks);
    free(m->t_blocks);
    for (int i = 0; i < 3; i++)
        free_conv(&m->stem[i]);
    for (int s = 0; s < 4; s++) {
        if (m->rn[s] == NULL)
            continue;
        for (int b = 0; b < m->rn_n[s]; b++) {
            free_conv(&m->rn[s][b].c1);
            free_conv(&m->rn[s][b].c2);
            free_conv(&m->rn[s][b].c3);
            free_conv(&m->rn[s][b].ds);
        }
        free(m->rn[s]);
    }
    kn_packed_free(m->ap_q);
    kn_packed_free(m->ap_k);
    kn_packed_free(m->ap_v);
    kn_packed_free(m->ap_c);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m);
}

/* ---- weight sources -------------------------------------------------- */

enum { H_W, H_ONE, H_ZERO, H_VAR, H_EMB };

typedef struct wsrc {
    clip_st *st; /* NULL: random weights */
    uint64_t rng;
} wsrc;

static float rnd_uniform(uint64_t *s)
{
    /* xorshift64*: plenty for benchmark weights */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)(((*s * 2685821657736338717ULL) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void shape_str(char *out, size_t cap, int nd, const int64_t *sh)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "[");
    for (int i = 0; i < nd && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, i ? ", %lld" : "%lld", (long long)sh[i]);
    if (o < cap)
        snprintf(out + o, cap - o, "]");
}

/* Fetches tensor name of exactly shape sh[0..nd) as a malloc'ed float32
 * array the caller owns. CLIP_EMODEL names the tensor when it is missing or
 * differently shaped; CLIP_EFORMAT for an unsupported dtype. */
static int fetch(clip_model *m, wsrc *s, const char *name, int hint, int nd, const int64_t *sh,
                 float **out, wp_err *err)
{
    int64_t numel = 1;
    float *p;

    *out = NULL;
    for (int i = 0; i < nd; i++)
        numel *= sh[i];
    if (s->st != NULL) {
        const clip_st_tensor *t = clip_st_find(s->st, name);
        char want[96], have[96];
        if (t == NULL)
            return wp_err_set(err, CLIP_EMODEL, "%s: tensor '%s' missing", clip_st_path(s->st),
                              name);
        int same = t->ndim == nd;
        for (int i = 0; same && i < nd; i++)
            same = t->shape[i] == sh[i];
        if (!same) {
            shape_str(want, sizeof want, nd, sh);
            shape_str(have, sizeof have, t->ndim, t->shape);
            return wp_err_set(err, CLIP_EMODEL, "%s: tensor '%s': shape %s, the model needs %s",
                              clip_st_path(s->st), name, have, want);
        }
    }
    p = malloc((size_t)(numel > 0 ? numel : 1) * sizeof *p);
    if (p == NULL)
        return wp_err_set(err, WP_ENOMEM, "tensor '%s': out of memory", name);
    if (s->st != NULL) {
        const clip_st_tensor *t = clip_st_find(s->st, name);
        int rc = clip_st_read_f32(s->st, t, p, err);
        if (rc != 0) {
            free(p);
            return rc;
        }
        clip_st_mark_used(s->st, t);
    } else {
        float scale = nd >= 2 ? 1.0f / sqrtf((float)(numel / sh[0])) : 0.02f;
        for (int64_t i = 0; i < numel; i++) {
            float r = rnd_uniform(&s->rng);
            switch (hint) {
            case H_ONE:
                p[i] = 1.0f + 0.1f * r;
                break;
            case H_VAR:
                p[i] = 1.0f + 0.5f * r * r;
                break;
            case H_ZERO:
                p[i] = 0.02f * r;
                break;
            case H_EMB:
                p[i] = 0.02f * r;
                break;
            default:
                p[i] = scale * r;
            }
        }
    }
    if (hint != H_VAR)
        m->params += numel;
    *out = p;
    return 0;
}

/* Owned 1-D vector. */
static int vec(clip_model *m, wsrc *s, const char *name, int hint, int64_t n, float **out,
               wp_err *err)
{
    int rc = fetch(m, s, name, hint, 1, &n, out, err);
    if (rc == 0 && clip_own(m, *out) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    return rc;
}

/* Owned 2-D matrix. */
static int mat(clip_model *m, wsrc *s, const char *name, int hint, int64_t r, int64_t c,
               float **out, wp_err *err)
{
    int64_t sh[2] = {r, c};
    int rc = fetch(m, s, name, hint, 2, sh, out, err);
    if (rc == 0 && clip_own(m, *out) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    return rc;
}

static int pack_out(clip_model *m, float *w, int n, int k, kn_packed **out, const char *name,
                    wp_err *err)
{
    *out = clip_pack(m, w, n, k);
    free(w);
    if (*out == NULL)
        return wp_err_set(err, WP_ENOMEM, "tensor '%s': out of memory packing", name);
    return 0;
}

/* Packed linear weight stored [n, k]. */
static int linear(clip_model *m, wsrc *s, const char *name, int n, int k, kn_packed **out,
                  wp_err *err)
{
    int64_t sh[2] = {n, k};
    float *w;
    int rc = fetch(m, s, name, H_W, 2, sh, &w, err);
    if (rc != 0)
        return rc;
    return pack_out(m, w, n, k, out, name, err);
}

/* Packed linear weight stored transposed, [k, n] (OpenAI projections). */
static int linear_t(clip_model *m, wsrc *s, const char *name, int n, int k, kn_packed **out,
                    wp_err *err)
{
    int64_t sh[2] = {k, n};
    float *w, *t;
    int rc = fetch(m, s, name, H_W, 2, sh, &w, err);
    if (rc != 0)
        return rc;
    t = malloc((size_t)n * (size_t)k * sizeof *t);
    if (t == NULL) {
        free(w);
        return wp_err_set(err, WP_ENOMEM, "tensor '%s': out of memory", name);
    }
    for (int i = 0; i < k; i++)
        for (int j = 0; j < n; j++)
            t[(size_t)j * k + i] = w[(size_t)i * n + j];
    free(w);
    return pack_out(m, t, n, k, out, name, err);
}

/* ---- transformer blocks ---------------------------------------------- */

/* OpenAI names: PREFIX.resblocks.i.{ln_1,attn.in_proj_*,attn.out_proj,ln_2,mlp.c_fc,mlp.c_proj} */
static int block_openai(clip_model *m, wsrc *s, const char *pre, int i, int w, int mlp,
                        clip_block *b, wp_err *err)
{
    char n[NAME_MAX_LEN];
    int rc;
#define NM(suffix) (snprintf(n, sizeof n, "%s.resblocks.%d.%s", pre, i, suffix), n)
    if ((rc = vec(m, s, NM("ln_1.weight"), H_ONE, w, &b->ln1_g, err)) != 0 ||
        (rc = vec(m, s, NM("ln_1.bias"), H_ZERO, w, &b->ln1_b, err)) != 0 ||
        (rc = vec(m, s, NM("ln_2.weight"), H_ONE, w, &b->ln2_g, err)) != 0 ||
        (rc = vec(m, s, NM("ln_2.bias"), H_ZERO, w, &b->ln2_b, err)) != 0 ||
        (rc = linear(m, s, NM("attn.in_proj_weight"), 3 * w, w, &b->qkv, err)) != 0 ||
        (rc = vec(m, s, NM("attn.in_proj_bias"), H_ZERO, 3 * w, &b->qkv_b, err)) != 0 ||
        (rc = linear(m, s, NM("attn.out_proj.weight"), w, w, &b->out, err)) != 0 ||
        (rc = vec(m, s, NM("attn.out_proj.bias"), H_ZERO, w, &b->out_b, err)) != 0 ||
        (rc = linear(m, s, NM("mlp.c_fc.weight"), mlp, w, &b->fc1, err)) != 0 ||
        (rc = vec(m, s, NM("mlp.c_fc.bias"), H_ZERO, mlp, &b->fc1_b, err)) != 0 ||
        (rc = linear(m, s, NM("mlp.c_proj.weight"), w, mlp, &b->fc2, err)) != 0 ||
        (rc = vec(m, s, NM("mlp.c_proj.bias"), H_ZERO, w, &b->fc2_b, err)) != 0)
        return rc;
#undef NM
    return 0;
}

/* HF names: PREFIX.layers.i.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2};
 * q, k and v are stacked into one [3W x W] weight. */
static int block_hf(clip_model *m, wsrc *s, const char *pre, int i, int w, int mlp, clip_block *b,
                    wp_err *err)
{
    char n[NAME_MAX_LEN];
    const char *qkv[3] = {"q", "k", "v"};
    float *wq = NULL, *bq = NULL, *part = NULL;
    int rc;
#define NM(suffix) (snprintf(n, sizeof n, "%s.layers.%d.%s", pre, i, suffix), n)
    if ((rc = vec(m, s, NM("layer_norm1.weight"), H_ONE, w, &b->ln1_g, err)) != 0 ||
        (rc = vec(m, s, NM("layer_norm1.bias"), H_ZERO, w, &b->ln1_b, err)) != 0 ||
        (rc = vec(m, s, NM("layer_norm2.weight"), H_ONE, w, &b->ln2_g, err)) != 0 ||
        (rc = vec(m, s, NM("layer_norm2.bias"), H_ZERO, w, &b->ln2_b, err)) != 0 ||
        (rc = linear(m, s, NM("self_attn.out_proj.weight"), w, w, &b->out, err)) != 0 ||
        (rc = vec(m, s, NM("self_attn.out_proj.bias"), H_ZERO, w, &b->out_b, err)) != 0 ||
        (rc = linear(m, s, NM("mlp.fc1.weight"), mlp, w, &b->fc1, err)) != 0 ||
        (rc = vec(m, s, NM("mlp.fc1.bias"), H_ZERO, mlp, &b->fc1_b, err)) != 0 ||
        (rc = linear(m, s, NM("mlp.fc2.weight"), w, mlp, &b->fc2, err)) != 0 ||
        (rc = vec(m, s, NM("mlp.fc2.bias"), H_ZERO, w, &b->fc2_b, err)) != 0)
        return rc;
    wq = malloc((size_t)3 * w * w * sizeof *wq);
    bq = malloc((size_t)3 * w * sizeof *bq);
    if (wq == NULL || bq == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int j = 0; j < 3; j++) {
        int64_t sh[2] = {w, w};
        char sfx[64];
        snprintf(sfx, sizeof sfx, "self_attn.%s_proj.weight", qkv[j]);
        if ((rc = fetch(m, s, NM(sfx), H_W, 2, sh, &part, err)) != 0)
            goto out;
        memcpy(wq + (size_t)j * w * w, part, (size_t)w * w * sizeof *part);
        free(part);
        snprintf(sfx, sizeof sfx, "self_attn.%s_proj.bias", qkv[j]);
        if ((rc = fetch(m, s, NM(sfx), H_ZERO, 1, sh, &part, err)) != 0)
            goto out;
        memcpy(bq + (size_t)j * w, part, (size_t)w * sizeof *part);
        free(part);
        part = NULL;
    }
#undef NM
    b->qkv_b = clip_own(m, bq);
    bq = NULL;
    if (b->qkv_b == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    rc = pack_out(m, wq, 3 * w, w, &b->qkv, "self_attn.qkv", err);
    wq = NULL;
out:
    free(wq);
    free(bq);
    return rc;
}

/* ---- ResNet ---------------------------------------------------------- */

/* Loads conv PREFIX.weight and BatchNorm BN.{weight,bias,running_mean,
 * running_var}, folding the BatchNorm (eval mode, eps 1e-5) into the conv. */
static int conv_bn(clip_model *m, wsrc *s, const char *conv, const char *bn, int cin, int cout,
                   int k, int stride, clip_conv *c, wp_err *err)
{
    char n[NAME_MAX_LEN];
    int64_t sh[4] = {cout, cin, k, k};
    float *w = NULL, *g = NULL, *b = NULL, *mu = NULL, *var = NULL;
    int rc;
    int64_t kk = (int64_t)cin * k * k;

    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->stride = stride;
    c->pad = k / 2;
    snprintf(n, sizeof n, "%s.weight", conv);
    if ((rc = fetch(m, s, n, H_W, 4, sh, &w, err)) != 0)
        goto out;
    int64_t cn = cout;
    snprintf(n, sizeof n, "%s.weight", bn);
    if ((rc = fetch(m, s, n, H_ONE, 1, &cn, &g, err)) != 0)
        goto out;
    snprintf(n, sizeof n, "%s.bias", bn);
    if ((rc = fetch(m, s, n, H_ZERO, 1, &cn, &b, err)) != 0)
        goto out;
    snprintf(n, sizeof n, "%s.running_mean", bn);
    if ((rc = fetch(m, s, n, H_VAR, 1, &cn, &mu, err)) != 0)
        goto out;
    snprintf(n, sizeof n, "%s.running_var", bn);
    if ((rc = fetch(m, s, n, H_VAR, 1, &cn, &var, err)) != 0)
        goto out;
    if (s->st == NULL)
        for (int o = 0; o < cout; o++)
            mu[o] -= 1.0f; /* random means around 0 */
    for (int o = 0; o < cout; o++) {
        if (!(var[o] >= 0.0f)) {
            rc = wp_err_set(err, CLIP_EMODEL, "%s: %s.running_var[%d] is negative",
                            s->st ? clip_st_path(s->st) : "random", bn, o);
            goto out;
        }
        /* double: the reference folds nothing, so keep the fold exact */
        double sc = (double)g[o] / sqrt((double)var[o] + 1e-5);
        for (int64_t j = 0; j < kk; j++)
            w[o * kk + j] = (float)(w[o * kk + j] * sc);
        b[o] = (float)((double)b[o] - (double)mu[o] * sc);
    }
    c->b = clip_own(m, b);
    b = NULL;
    if (c->b == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if (k > 1) {
        /* the forward pass is channels-last: (c, ky, kx) -> (ky, kx, c) */
        float *t = malloc((size_t)kk * sizeof *t);
        if (t == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        for (int o = 0; o < cout; o++) {
            float *wo = w + (size_t)o * kk;
            for (int ci = 0; ci < cin; ci++)
                for (int y = 0; y < k * k; y++)
                    t[(size_t)y * cin + ci] = wo[(size_t)ci * k * k + y];
            memcpy(wo, t, (size_t)kk * sizeof *t);
        }
        free(t);
    }
    rc = pack_out(m, w, cout, (int)kk, &c->w, conv, err);
    w = NULL;
out:
    free(w);
    free(g);
    free(b);
    free(mu);
    free(var);
    return rc;
}

static int build_resnet(clip_model *m, wsrc *s, wp_err *err)
{
    const clip_arch *a = &m->a;
    int w = a->v_width, rc, inpl;
    char cn[NAME_MAX_LEN], bn[NAME_MAX_LEN];

    if ((rc = conv_bn(m, s, "visual.conv1", "visual.bn1", 3, w / 2, 3, 2, &m->stem[0], err)) ||
        (rc = conv_bn(m, s, "visual.conv2", "visual.bn2", w / 2, w / 2, 3, 1, &m->stem[1], err)) ||
        (rc = conv_bn(m, s, "visual.conv3", "visual.bn3", w / 2, w, 3, 1, &m->stem[2], err)))
        return rc;
    inpl = w;
    for (int st = 0; st < 4; st++) {
        int planes = w << st;
        m->rn_n[st] = a->rn_layers[st];
        m->rn[st] = calloc((size_t)a->rn_layers[st], sizeof *m->rn[st]);
        if (m->rn[st] == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        for (int bi = 0; bi < a->rn_layers[st]; bi++) {
            clip_bottleneck *b = &m->rn[st][bi];
            int stride = bi == 0 && st > 0 ? 2 : 1;
            b->stride = stride;
            for (int j = 1; j <= 3; j++) {
                clip_conv *c = j == 1 ? &b->c1 : j == 2 ? &b->c2 : &b->c3;
                snprintf(cn, sizeof cn, "visual.layer%d.%d.conv%d", st + 1, bi, j);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.bn%d", st + 1, bi, j);
                rc = conv_bn(m, s, cn, bn, j == 1 ? inpl : planes, j == 3 ? 4 * planes : planes,
                             j == 2 ? 3 : 1, 1, c, err);
                if (rc != 0)
                    return rc;
            }
            b->has_ds = stride > 1 || inpl != 4 * planes;
            if (b->has_ds) {
                snprintf(cn, sizeof cn, "visual.layer%d.%d.downsample.0", st + 1, bi);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.downsample.1", st + 1, bi);
                if ((rc = conv_bn(m, s, cn, bn, inpl, 4 * planes, 1, 1, &b->ds, err)) != 0)
                    return rc;
            }
            inpl = 4 * planes;
        }
    }
    int c = w * 32, g = a->image_size / 32;
    if ((rc = mat(m, s, "visual.attnpool.positional_embedding", H_EMB, (int64_t)g * g + 1, c,
                  &m->ap_pos, err)) ||
        (rc = linear(m, s, "visual.attnpool.q_proj.weight", c, c, &m->ap_q, err)) ||
        (rc = vec(m, s, "visual.attnpool.q_proj.bias", H_ZERO, c, &m->ap_qb, err)) ||
        (rc = linear(m, s, "visual.attnpool.k_proj.weight", c, c, &m->ap_k, err)) ||
        (rc = vec(m, s, "visual.attnpool.k_proj.bias", H_ZERO, c, &m->ap_kb, err)) ||
        (rc = linear(m, s, "visual.attnpool.v_proj.weight", c, c, &m->ap_v, err)) ||
        (rc = vec(m, s, "visual.attnpool.v_proj.bias", H_ZERO, c, &m->ap_vb, err)) ||
        (rc = linear(m, s, "visual.attnpool.c_proj.weight", a->embed_dim, c, &m->ap_c, err)) ||
        (rc = vec(m, s, "visual.attnpool.c_proj.bias", H_ZERO, a->embed_dim, &m->ap_cb, err)))
        return rc;
    return 0;
}

/* ---- whole models ---------------------------------------------------- */

static int build_vit(clip_model *m, wsrc *s, wp_err *err)
{
    const clip_arch *a = &m->a;
    int w = a->v_width, p = a->v_patch, g = a->image_size / a->v_patch, rc;
    int hf = a->layout == CLIP_LAYOUT_HF;
    int64_t sh4[4] = {w, 3, p, p};
    float *cw;

    rc = fetch(m, s, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight",
               H_W, 4, sh4, &cw, err);
    if (rc != 0)
        return rc;
    if ((rc = pack_out(m, cw, w, 3 * p * p, &m->patch, "patch embedding", err)) != 0)
        return rc;
    if (hf) {
        if ((rc = vec(m, s, "vision_model.embeddings.class_embedding", H_EMB, w, &m->class_emb,
                      err)) ||
            (rc = mat(m, s, "vision_model.embeddings.position_embedding.weight", H_EMB,
                      (int64_t)g * g + 1, w, &m->v_pos, err)) ||
            (rc = vec(m, s, "vision_model.pre_layrnorm.weight", H_ONE, w, &m->ln_pre_g, err)) ||
            (rc = vec(m, s, "vision_model.pre_layrnorm.bias", H_ZERO, w, &m->ln_pre_b, err)) ||
            (rc = vec(m, s, "vision_model.post_layernorm.weight", H_ONE, w, &m->ln_post_g, err)) ||
            (rc = vec(m, s, "vision_model.post_layernorm.bias", H_ZERO, w, &m->ln_post_b, err)) ||
            (rc = linear(m, s, "visual_projection.weight", a->embed_dim, w, &m->v_proj, err)))
            return rc;
    } else {
        if ((rc = vec(m, s, "visual.class_embedding", H_EMB, w, &m->class_emb, err)) ||
            (rc = mat(m, s, "visual.positional_embedding", H_EMB, (int64_t)g * g + 1, w, &m->v_pos,
                      err)) ||
            (rc = vec(m, s, "visual.ln_pre.weight", H_ONE, w, &m->ln_pre_g, err)) ||
            (rc = vec(m, s, "visual.ln_pre.bias", H_ZERO, w, &m->ln_pre_b, err)) ||
            (rc = vec(m, s, "visual.ln_post.weight", H_ONE, w, &m->ln_post_g, err)) ||
            (rc = vec(m, s, "visual.ln_post.bias", H_ZERO, w, &m->ln_post_b, err)) ||
            (rc = linear_t(m, s, "visual.proj", a->embed_dim, w, &m->v_proj, err)))
            return rc;
    }
    m->v_blocks = calloc((size_t)a->v_layers, sizeof *m->v_blocks);
    if (m->v_blocks == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (int i = 0; i < a->v_layers; i++) {
        rc = hf ? block_hf(m, s, "vision_model.encoder", i, w, a->v_mlp, &m->v_blocks[i], err)
                : block_openai(m, s, "visual.transformer", i, w, a->v_mlp, &m->v_blocks[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int build_text(clip_model *m, wsrc *s, wp_err *err)
{
    const clip_arch *a = &m->a;
    int w = a->t_width, rc;
    int hf = a->layout == CLIP_LAYOUT_HF;
    float *ls = NULL;

    if (hf) {
        if ((rc = mat(m, s, "text_model.embeddings.token_embedding.weight", H_EMB, a->t_vocab, w,
                      &m->tok_emb, err)) ||
            (rc = mat(m, s, "text_model.embeddings.position_embedding.weight", H_EMB, a->t_ctx, w,
                      &m->t_pos, err)) ||
            (rc = vec(m, s, "text_model.final_layer_norm.weight", H_ONE, w, &m->ln_final_g, err)) ||
            (rc = vec(m, s, "text_model.final_layer_norm.bias", H_ZERO, w, &m->ln_final_b, err)) ||
            (rc = linear(m, s, "text_projection.weight", a->embed_dim, w, &m->t_proj, err)))
            return rc;
    } else {
        if ((rc = mat(m, s, "token_embedding.weight", H_EMB, a->t_vocab, w, &m->tok_emb, err)) ||
            (rc = mat(m, s, "positional_embedding", H_EMB, a->t_ctx, w, &m->t_pos, err)) ||
            (rc = vec(m, s, "ln_final.weight", H_ONE, w, &m->ln_final_g, err)) ||
            (rc = vec(m, s, "ln_final.bias", H_ZERO, w, &m->ln_final_b, err)) ||
            (rc = linear_t(m, s, "text_projection", a->embed_dim, w, &m->t_proj, err)))
            return rc;
    }
    m->t_blocks = calloc((size_t)a->t_layers, sizeof *m->t_blocks);
    if (m->t_blocks == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (int i = 0; i < a->t_layers; i++) {
        rc = hf ? block_hf(m, s, "text_model.encoder", i, w, a->t_mlp, &m->t_blocks[i], err)
                : block_openai(m, s, "transformer", i, w, a->t_mlp, &m->t_blocks[i], err);
        if (rc != 0)
            return rc;
    }
    /* logit_scale is a 0-dim tensor (some exports store [1]) */
    m->logit_scale = 100.0f;
    if (s->st != NULL) {
        const clip_st_tensor *t = clip_st_find(s->st, "logit_scale");
        if (t != NULL && t->numel == 1) {
            clip_st_mark_used(s->st, t);
            ls = malloc(sizeof *ls);
            if (ls == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            rc = clip_st_read_f32(s->st, t, ls, err);
            if (rc == 0)
                m->logit_scale = expf(ls[0]);
            free(ls);
            if (rc != 0)
                return rc;
            m->params += 1;
        }
    }
    return 0;
}

static int check_arch(const clip_arch *a, const char *where, wp_err *err)
{
    if (a->embed_dim <= 0 || a->t_width <= 0 || a->t_layers < 0 || a->t_heads <= 0 ||
        a->t_width % a->t_heads != 0 || a->t_ctx <= 1 || a->t_ctx > CLIP_CTX_MAX ||
        a->t_vocab <= 0 || a->t_mlp <= 0 || a->image_size <= 0 || a->v_width <= 0 ||
        a->v_heads <= 0)
        return wp_err_set(err, CLIP_EUNSUP,
                          "%s: unsupported or inconsistent sizes: embed %d, text width %d, "
                          "layers %d, heads %d, context %d, vocab %d, mlp %d, image %d",
                          where, a->embed_dim, a->t_width, a->t_layers, a->t_heads, a->t_ctx,
                          a->t_vocab, a->t_mlp, a->image_size);
    if (a->vision == CLIP_VISION_VIT) {
        if (a->v_patch <= 0 || a->image_size % a->v_patch != 0 || a->v_width % a->v_heads != 0 ||
            a->v_mlp <= 0 || a->v_layers < 0)
            return wp_err_set(err, CLIP_EUNSUP,
                              "%s: ViT patch %d, image %d, width %d, heads %d inconsistent", where,
                              a->v_patch, a->image_size, a->v_width, a->v_heads);
    } else {
        if (a->image_size % 32 != 0 || a->v_width % 2 != 0 || (a->v_width * 32) % a->v_heads)
            return wp_err_set(err, CLIP_EUNSUP, "%s: ResNet image %d, width %d, heads %d", where,
                              a->image_size, a->v_width, a->v_heads);
        for (int i = 0; i < 4; i++)
            if (a->rn_layers[i] <= 0 || a->rn_layers[i] > CLIP_RN_BLOCKS_MAX)
                return wp_err_set(err, CLIP_EUNSUP, "%s: ResNet stage %d has %d blocks", where,
                                  i + 1, a->rn_layers[i]);
    }
    return 0;
}

static int build(clip_model *m, wsrc *s, wp_err *err)
{
    int rc = check_arch(&m->a, s->st ? clip_st_path(s->st) : "random", err);
    if (rc != 0)
        return rc;
    /* Plain bf16 applies to ViT image towers only: elsewhere the accuracy
     * rule (features at cosine >= 0.999 to float32, CLIP scores within
     * 0.005) fails on the golden checkpoints, measured 2026-12-07 on both
     * native bf16 tiles (avx512-bf16, and amx-bf16 under emulation; they
     * round alike). Text tower in bf16: feature cosines >= 0.99985 but
     * scores moved by up to 0.0057 / 0.0080 / 0.0044 (hf quickgelu / hf
     * gelu / oc); its MLP alone 0.0053 on hf quickgelu (the image tower's
     * bf16 alone uses 0.0029-0.0038 of the budget). A ModifiedResNet folds
     * BatchNorm into its convolutions, which amplifies bf16 rounding: scores
     * moved by up to 0.0075 (0.0069 on AMX tiles), 0.0063-0.0070 with the
     * stem and attention pool kept float32. So the text tower and a
     * ModifiedResNet (convolutions, attention pool) run split bf16
     * (KN_BF16X3: three bf16 products, float32-level results; on the golden
     * checkpoints scores within about 1e-5 of f32 (6.9e-6 to 1.1e-5 seen),
     * tests/unit/test_clip_golden.c)
     * where kn_bf16x3_worth says three bf16 products beat one f32 (AMX),
     * and float32 elsewhere (Zen 4/5's VDPBF16PS is only about 2x f32 FMA).
     * The model reports what each tower really runs at, and why. */
    m->requested = m->precision;
    int bf16 = m->precision == KN_BF16;
    int split = bf16 && kn_bf16x3_worth() ? KN_BF16X3 : KN_F32;
    m->v_prec = !bf16 ? KN_F32 : m->a.vision == CLIP_VISION_VIT ? KN_BF16 : split;
    m->t_prec = bf16 ? split : KN_F32;
    if (m->v_prec == KN_F32 && m->t_prec == KN_F32)
        m->precision = KN_F32;
    m->pack_precision = m->v_prec;
    rc = m->a.vision == CLIP_VISION_VIT ? build_vit(m, s, err) : build_resnet(m, s, err);
    m->pack_precision = m->t_prec;
    if (rc == 0)
        rc = build_text(m, s, err);
    m->pack_precision = KN_F32;
    if (rc == 0)
        clip_model_plan(m);
    return rc;
}

int clip_model_random(const clip_arch *arch, int precision, uint64_t seed, clip_model **out,
                      wp_err *err)
{
    clip_model *m = calloc(1, sizeof *m);
    wsrc s = {NULL, seed * 2654435761ULL + 88172645463325252ULL};
    int rc;

    *out = NULL;
    if (m == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    kn_init();
    m->a = *arch;
    m->a.layout = CLIP_LAYOUT_OPENAI;
    m->precision = precision;
    snprintf(m->dtype, sizeof m->dtype, "random");
    rc = build(m, &s, err);
    if (rc != 0) {
        clip_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- architecture from config + shapes ------------------------------- */

static int jint(json_t *o, const char *k, int def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static double jnum(json_t *o, const char *k, double def)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

static json_t *load_json(const char *path, wp_err *err, int *rc)
{
    wp_buf b = {0};
    json_error_t je;
    json_t *j = NULL;

    *rc = wp_read_file(path, CONFIG_MAX, &b, err);
    if (*rc != 0)
        return NULL;
    j = json_loadb(b.data, b.len, 0, &je);
    wp_buf_free(&b);
    if (j == NULL || !json_is_object(j)) {
        *rc = wp_err_set(err, CLIP_EFORMAT, "%s:%d: %s", path, je.line,
                         j ? "not a JSON object" : je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Counts distinct i in names "PREFIX<i>." of the file. */
static int count_index(const clip_st *st, const char *prefix)
{
    int best = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < clip_st_count(st); i++) {
        const char *n = clip_st_at(st, i)->name;
        if (strncmp(n, prefix, pl) != 0)
            continue;
        char *end;
        long v = strtol(n + pl, &end, 10);
        if (end != n + pl && *end == '.' && v >= 0 && v < 100000 && v + 1 > best)
            best = (int)v + 1;
    }
    return best;
}

static const clip_st_tensor *need(const clip_st *st, const char *name, int ndim, wp_err *err,
                                  int *rc)
{
    const clip_st_tensor *t = clip_st_find(st, name);
    if (t == NULL) {
        *rc = wp_err_set(err, CLIP_EMODEL, "%s: tensor '%s' missing", clip_st_path(st), name);
        return NULL;
    }
    if (t->ndim != ndim) {
        *rc = wp_err_set(err, CLIP_EMODEL, "%s: tensor '%s' has %d dimensions, expected %d",
                         clip_st_path(st), name, t->ndim, ndim);
        return NULL;
    }
    /* The architecture is read from these shapes: a zero-sized tensor would
     * let any other dimension through for free (no data backs it), and the
     * sizes are multiplied in int. */
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] < 1 || t->shape[i] > DIM_MAX) {
            *rc = wp_err_set(err, CLIP_EMODEL,
                             "%s: tensor '%s': dimension %d is %lld (1 to %d expected)",
                             clip_st_path(st), name, i, (long long)t->shape[i], DIM_MAX);
            return NULL;
        }
    return t;
}

static int parse_act(const char *s, const char *where, int *act, wp_err *err)
{
    if (s == NULL || strcmp(s, "quick_gelu") == 0)
        *act = KN_ACT_QUICKGELU;
    else if (strcmp(s, "gelu") == 0)
        *act = KN_ACT_GELU;
    else
        return wp_err_set(err, CLIP_EUNSUP, "%s: hidden_act '%s' not supported (quick_gelu, gelu)",
                          where, s);
    return 0;
}

static int arch_hf(const clip_st *st, json_t *cfg, const char *cfg_path, clip_arch *a, wp_err *err)
{
    json_t *tc = json_object_get(cfg, "text_config"), *vc = json_object_get(cfg, "vision_config");
    const clip_st_tensor *t;
    int rc = 0;

    a->layout = CLIP_LAYOUT_HF;
    a->vision = CLIP_VISION_VIT;
    if ((t = need(st, "vision_model.embeddings.patch_embedding.weight", 4, err, &rc)) == NULL)
        return rc;
    a->v_width = (int)t->shape[0];
    a->v_patch = (int)t->shape[3];
    a->v_layers = count_index(st, "vision_model.encoder.layers.");
    if ((t = need(st, "vision_model.encoder.layers.0.mlp.fc1.weight", 2, err, &rc)) == NULL)
        return rc;
    a->v_mlp = (int)t->shape[0];
    if ((t = need(st, "vision_model.embeddings.position_embedding.weight", 2, err, &rc)) == NULL)
        return rc;
    int grid = (int)lround(sqrt((double)(t->shape[0] - 1)));
    a->image_size = jint(vc, "image_size", grid * a->v_patch);
    a->v_heads = jint(vc, "num_attention_heads", a->v_width / 64);
    a->v_eps = (float)jnum(vc, "layer_norm_eps", 1e-5);
    json_t *act = json_object_get(vc, "hidden_act");
    if ((rc = parse_act(json_string_value(act), cfg_path, &a->v_act, err)) != 0)
        return rc;
    if ((t = need(st, "text_model.embeddings.token_embedding.weight", 2, err, &rc)) == NULL)
        return rc;
    a->t_vocab = (int)t->shape[0];
    a->t_width = (int)t->shape[1];
    if ((t = need(st, "text_model.embeddings.position_embedding.weight", 2, err, &rc)) == NULL)
        return rc;
    a->t_ctx = (int)t->shape[0];
    a->t_layers = count_index(st, "text_model.encoder.layers.");
    if ((t = need(st, "text_model.encoder.layers.0.mlp.fc1.weight", 2, err, &rc)) == NULL)
        return rc;
    a->t_mlp = (int)t->shape[0];
    a->t_heads = jint(tc, "num_attention_heads", a->t_width / 64);
    a->t_eps = (float)jnum(tc, "layer_norm_eps", 1e-5);
    act = json_object_get(tc, "hidden_act");
    if ((rc = parse_act(json_string_value(act), cfg_path, &a->t_act, err)) != 0)
        return rc;
    /* transformers: eos_token_id 2 (the old default) means "take the argmax
     * id", anything else the first position holding that id */
    int eos = jint(tc, "eos_token_id", 2);
    a->eos_id = eos == 2 ? -1 : eos;
    if ((t = need(st, "text_projection.weight", 2, err, &rc)) == NULL)
        return rc;
    a->embed_dim = (int)t->shape[0];
    return 0;
}

static int arch_openai(const clip_st *st, json_t *cfg, clip_arch *a, wp_err *err)
{
    json_t *mc = json_object_get(cfg, "model_cfg");
    json_t *vc = json_object_get(mc, "vision_cfg"), *tc = json_object_get(mc, "text_cfg");
    const clip_st_tensor *t;
    int rc = 0;

    a->layout = CLIP_LAYOUT_OPENAI;
    a->eos_id = -1;
    a->v_eps = a->t_eps = 1e-5f;
    /* OpenAI checkpoints use QuickGELU; open_clip configs say so explicitly */
    a->v_act = a->t_act = (cfg == NULL || json_is_true(json_object_get(mc, "quick_gelu")))
                              ? KN_ACT_QUICKGELU
                              : KN_ACT_GELU;
    int head_width = jint(vc, "head_width", 64);
    if (head_width <= 0)
        head_width = 64;
    if (clip_st_find(st, "visual.proj") != NULL) {
        a->vision = CLIP_VISION_VIT;
        if ((t = need(st, "visual.conv1.weight", 4, err, &rc)) == NULL)
            return rc;
        a->v_width = (int)t->shape[0];
        a->v_patch = (int)t->shape[3];
        a->v_layers = count_index(st, "visual.transformer.resblocks.");
        if ((t = need(st, "visual.transformer.resblocks.0.mlp.c_fc.weight", 2, err, &rc)) == NULL)
            return rc;
        a->v_mlp = (int)t->shape[0];
        if ((t = need(st, "visual.positional_embedding", 2, err, &rc)) == NULL)
            return rc;
        int grid = (int)lround(sqrt((double)(t->shape[0] - 1)));
        a->image_size = jint(vc, "image_size", grid * a->v_patch);
        a->v_heads = a->v_width >= 2 * head_width ? a->v_width / head_width : 1;
    } else if (clip_st_find(st, "visual.attnpool.positional_embedding") != NULL) {
        a->vision = CLIP_VISION_RESNET;
        for (int s = 0; s < 4; s++) {
            char pre[32];
            snprintf(pre, sizeof pre, "visual.layer%d.", s + 1);
            a->rn_layers[s] = count_index(st, pre);
        }
        if ((t = need(st, "visual.layer1.0.conv1.weight", 4, err, &rc)) == NULL)
            return rc;
        a->v_width = (int)t->shape[0];
        if ((t = need(st, "visual.attnpool.positional_embedding", 2, err, &rc)) == NULL)
            return rc;
        int grid = (int)lround(sqrt((double)(t->shape[0] - 1)));
        a->image_size = jint(vc, "image_size", grid * 32);
        a->v_heads = a->v_width * 32 / head_width;
    } else {
        return wp_err_set(err, CLIP_EUNSUP,
                          "%s: no 'visual.proj' (ViT) or 'visual.attnpool.positional_embedding' "
                          "(ModifiedResNet): not a CLIP visual tower this build knows",
                          clip_st_path(st));
    }
    if ((t = need(st, "token_embedding.weight", 2, err, &rc)) == NULL)
        return rc;
    a->t_vocab = (int)t->shape[0];
    if ((t = need(st, "ln_final.weight", 1, err, &rc)) == NULL)
        return rc;
    a->t_width = (int)t->shape[0];
    if ((t = need(st, "positional_embedding", 2, err, &rc)) == NULL)
        return rc;
    a->t_ctx = (int)t->shape[0];
    a->t_layers = count_index(st, "transformer.resblocks.");
    if ((t = need(st, "transformer.resblocks.0.mlp.c_fc.weight", 2, err, &rc)) == NULL)
        return rc;
    a->t_mlp = (int)t->shape[0];
    a->t_heads = jint(tc, "heads", a->t_width >= 128 ? a->t_width / 64 : 1);
    if ((t = need(st, "text_projection", 2, err, &rc)) == NULL)
        return rc;
    a->embed_dim = (int)t->shape[1];
    return 0;
}

/* Mean/std from a JSON array of three numbers, if there is one. */
static void read_triplet(json_t *arr, float out[3])
{
    if (!json_is_array(arr) || json_array_size(arr) != 3)
        return;
    for (int i = 0; i < 3; i++)
        if (!json_is_number(json_array_get(arr, i)))
            return;
    for (int i = 0; i < 3; i++)
        out[i] = (float)json_number_value(json_array_get(arr, i));
}

static int find_file(const char *dir, const char *name, char *out, wp_err *err)
{
    if (wp_path_join(out, dir, name, err) != 0)
        return 0;
    return wp_file_exists(out);
}

/* Tensors the builder did not read mean a variant this build does not run
 * (layer scale, extra norms, attention pooling heads...): refusing it beats
 * silently wrong embeddings. Buffers that carry no weights are fine. */
static int check_unused(const clip_st *st, wp_err *err)
{
    static const char *const ignorable[] = {"position_ids",   "num_batches_tracked",
                                            "attn_mask",      "input_resolution",
                                            "context_length", "vocab_size"};
    for (int i = 0; i < clip_st_count(st); i++) {
        const char *n = clip_st_at(st, i)->name;
        int ok = clip_st_used(st, i);
        for (size_t k = 0; !ok && k < sizeof ignorable / sizeof ignorable[0]; k++) {
            size_t nl = strlen(n), kl = strlen(ignorable[k]);
            ok = nl >= kl && strcmp(n + nl - kl, ignorable[k]) == 0;
        }
        if (!ok)
            return wp_err_set(err, CLIP_EUNSUP,
                              "%s: tensor '%s' is not part of the CLIP architecture this build "
                              "runs (an unsupported variant?)",
                              clip_st_path(st), n);
    }
    return 0;
}

int clip_model_open(const char *dir, const clip_open_opts *opts, clip_model **out, wp_err *err)
{
    char st_path[WP_PATH_MAX], cfg_path[WP_PATH_MAX], pp_path[WP_PATH_MAX];
    clip_model *m = NULL;
    clip_st *st = NULL;
    json_t *cfg = NULL, *pp = NULL;
    int rc = 0, hf;

    *out = NULL;
    kn_init();
    if (find_file(dir, "model.safetensors", st_path, err) &&
        find_file(dir, "config.json", cfg_path, err)) {
        hf = 1;
    } else if (find_file(dir, "open_clip_model.safetensors", st_path, err)) {
        hf = 0;
        if (!find_file(dir, "open_clip_config.json", cfg_path, err))
            cfg_path[0] = '\0';
    } else if (find_file(dir, "model.safetensors", st_path, err)) {
        hf = 0; /* OpenAI names without a config: inferred from shapes */
        cfg_path[0] = '\0';
    } else {
        return wp_err_set(err, WP_ENOENT,
                          "%s: no model.safetensors + config.json (Hugging Face) or "
                          "open_clip_model.safetensors (OpenAI/open_clip)",
                          dir);
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    m->precision = opts != NULL ? opts->precision : KN_F32;
    if ((rc = clip_st_open(st_path, &st, err)) != 0)
        goto out;
    if (cfg_path[0] != '\0' && (cfg = load_json(cfg_path, err, &rc)) == NULL)
        goto out;
    if (hf && clip_st_find(st, "text_model.embeddings.token_embedding.weight") == NULL &&
        clip_st_find(st, "token_embedding.weight") != NULL)
        hf = 0; /* an OpenAI state dict saved as model.safetensors next to a config */
    rc = hf ? arch_hf(st, cfg, cfg_path, &m->a, err) : arch_openai(st, cfg, &m->a, err);
    if (rc != 0)
        goto out;
    memcpy(m->a.mean, clip_mean, sizeof clip_mean);
    memcpy(m->a.std, clip_std, sizeof clip_std);
    if (hf) {
        if (find_file(dir, "preprocessor_config.json", pp_path, err)) {
            if ((pp = load_json(pp_path, err, &rc)) == NULL)
                goto out;
            read_triplet(json_object_get(pp, "image_mean"), m->a.mean);
            read_triplet(json_object_get(pp, "image_std"), m->a.std);
        }
    } else if (cfg != NULL) {
        json_t *pc = json_object_get(cfg, "preprocess_cfg");
        read_triplet(json_object_get(pc, "mean"), m->a.mean);
        read_triplet(json_object_get(pc, "std"), m->a.std);
    }
    {
        const clip_st_tensor *t0 = clip_st_find(
            st, hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight");
        snprintf(m->dtype, sizeof m->dtype, "%s", t0 ? clip_st_dtype_name(t0->dtype) : "?");
    }
    wsrc s = {st, 0};
    rc = build(m, &s, err);
    if (rc == 0)
        rc = check_unused(st, err);
out:
    json_decref(cfg);
    json_decref(pp);
    clip_st_close(st);
    if (rc != 0) {
        clip_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- accessors ------------------------------------------------------- */

const clip_arch *clip_model_arch(const clip_model *m)
{
    return &m->a;
}

int64_t clip_model_params(const clip_model *m)
{
    return m->params;
}

const char *clip_model_dtype(const clip_model *m)
{
    return m->dtype;
}

float clip_model_logit_scale(const clip_model *m)
{
    return m->logit_scale;
}

static const char *act_name(int act)
{
    return act == KN_ACT_GELU ? "gelu" : "quick_gelu";
}

static const char *prec_name(int p)
{
    return p == KN_BF16 ? "bf16" : p == KN_BF16X3 ? "bf16x3" : "f32";
}

/* Why a tower runs at precision p (model info's precision_why). */
static const char *prec_why(const clip_model *m, int p)
{
    if (m->requested != KN_BF16)
        return "f32 requested";
    if (p == KN_BF16)
        return "bf16 requested: plain bf16 meets the accuracy rule on ViT image towers";
    if (p == KN_BF16X3)
        return "bf16 requested: plain bf16 breaks the accuracy rule on this tower; split bf16 "
               "(three bf16 products, float32-level results) beats one f32 product on this "
               "kernel path (see kernel)";
    return "bf16 requested: plain bf16 breaks the accuracy rule on this tower, and split bf16 "
           "(three bf16 products) does not beat one f32 product on this kernel path (see "
           "kernel)";
}

int clip_model_info_json(const clip_model *m, wp_buf *out)
{
    const clip_arch *a = &m->a;
    char path[1024];
    wp_json j;

    kn_path_info(path, sizeof path); /* the kernel path this process computes with, and why */
    wp_json_init(&j, out);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "layout", a->layout == CLIP_LAYOUT_HF ? "huggingface" : "openai");
    wp_json_obj_begin(&j, "vision");
    wp_json_str(&j, "type", a->vision == CLIP_VISION_VIT ? "vit" : "modified_resnet");
    wp_json_int(&j, "width", a->v_width);
    if (a->vision == CLIP_VISION_VIT) {
        wp_json_int(&j, "layers", a->v_layers);
        wp_json_int(&j, "heads", a->v_heads);
        wp_json_int(&j, "patch", a->v_patch);
        wp_json_int(&j, "mlp", a->v_mlp);
    } else {
        wp_json_arr_begin(&j, "layers");
        for (int i = 0; i < 4; i++)
            wp_json_int(&j, NULL, a->rn_layers[i]);
        wp_json_arr_end(&j);
        wp_json_int(&j, "heads", a->v_heads);
    }
    wp_json_int(&j, "image_size", a->image_size);
    wp_json_str(&j, "activation", a->vision == CLIP_VISION_VIT ? act_name(a->v_act) : "relu");
    wp_json_real_prec(&j, "layer_norm_eps", a->v_eps, 6);
    wp_json_str(&j, "precision", prec_name(m->v_prec));
    wp_json_str(&j, "precision_why", prec_why(m, m->v_prec));
    wp_json_obj_end(&j);
    wp_json_obj_begin(&j, "text");
    wp_json_int(&j, "width", a->t_width);
    wp_json_int(&j, "layers", a->t_layers);
    wp_json_int(&j, "heads", a->t_heads);
    wp_json_int(&j, "mlp", a->t_mlp);
    wp_json_int(&j, "context_length", a->t_ctx);
    wp_json_int(&j, "vocab_size", a->t_vocab);
    wp_json_str(&j, "activation", act_name(a->t_act));
    wp_json_real_prec(&j, "layer_norm_eps", a->t_eps, 6);
    wp_json_str(&j, "eot", a->eos_id < 0 ? "argmax" : "eos_token_id");
    wp_json_str(&j, "precision", prec_name(m->t_prec));
    wp_json_str(&j, "precision_why", prec_why(m, m->t_prec));
    wp_json_obj_end(&j);
    wp_json_int(&j, "embed_dim", a->embed_dim);
    wp_json_int(&j, "image_size", a->image_size);
    wp_json_arr_begin(&j, "mean");
    for (int i = 0; i < 3; i++)
        wp_json_real_prec(&j, NULL, a->mean[i], 8);
    wp_json_arr_end(&j);
    wp_json_arr_begin(&j, "std");
    for (int i = 0; i < 3; i++)
        wp_json_real_prec(&j, NULL, a->std[i], 8);
    wp_json_arr_end(&j);
    wp_json_str(&j, "dtype", m->dtype);
    wp_json_str(&j, "precision", m->precision == KN_BF16 ? "bf16" : "f32");
    wp_json_int(&j, "parameters", m->params);
    wp_json_real_prec(&j, "logit_scale", m->logit_scale, 6);
    wp_json_str(&j, "kernel", path);
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}
