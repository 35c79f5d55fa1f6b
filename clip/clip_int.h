/*
 * clip/clip_int.h: the in-memory CLIP model shared by the loader
 * (clip_load.c) and the forward passes (clip_fwd.c); internal to clip/.
 *
 * Every float array and packed matrix belongs to the model and is freed by
 * clip_model_free. Linear weights are kept in PyTorch's [out, in] order.
 */
#ifndef CLIP_CLIP_INT_H
#define CLIP_CLIP_INT_H

#include "clip/clip.h"
#include "kern/kern.h"

/* One pre-LN residual attention block. */
typedef struct clip_block {
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    kn_packed *qkv; /* [3W x W]: q | k | v */
    float *qkv_b;
    kn_packed *out;
    float *out_b;
    kn_packed *fc1;
    float *fc1_b;
    kn_packed *fc2;
    float *fc2_b;
} clip_block;

/* A convolution with BatchNorm folded in (bias = folded shift). */
typedef struct clip_conv {
    kn_packed *w;
    float *b;
    int cin, cout, k, stride, pad;
} clip_conv;

typedef struct clip_bottleneck {
    clip_conv c1, c2, c3, ds;
    int has_ds;
    int stride;
} clip_bottleneck;

#define CLIP_RN_BLOCKS_MAX 64 /* Bottleneck blocks per stage */

struct clip_model {
    clip_arch a;
    int precision;      /* what runs: requested, or KN_F32 where no tower takes bf16 */
    int requested;      /* the precision asked for (enum kn_precision) */
    int pack_precision; /* what clip_pack uses for the part being built */
    int v_prec, t_prec; /* what the image and text towers run at (KN_*) */
    char dtype[8];
    int64_t params;
    float logit_scale; /* exp() of the stored value */

    /* vision: ViT */
    kn_packed *patch; /* [W x 3*p*p] */
    float *class_emb; /* [W] */
    float *v_pos;     /* [1 + grid^2, W] */
    float *ln_pre_g, *ln_pre_b, *ln_post_g, *ln_post_b;
    clip_block *v_blocks;
    kn_packed *v_proj; /* [E x W] */

    /* vision: ModifiedResNet */
    clip_conv stem[3];
    clip_bottleneck *rn[4];
    int rn_n[4];
    float *ap_pos; /* [1 + g^2, C] */
    kn_packed *ap_q, *ap_k, *ap_v, *ap_c;
    float *ap_qb, *ap_kb, *ap_vb, *ap_cb;
    size_t rn_act_max;     /* largest activation of one image (floats) */
    size_t rn_scratch_max; /* largest conv scratch */
    double img_flops;      /* one image, 2 x multiply-adds */

    /* text */
    float *tok_emb; /* [vocab, Wt] */
    float *t_pos;   /* [ctx, Wt] */
    clip_block *t_blocks;
    float *ln_final_g, *ln_final_b;
    kn_packed *t_proj; /* [E x Wt] */

    /* every float array above, for freeing */
    float **owned;
    int n_owned, cap_owned;
};

/* Records p as owned by m; returns p, or NULL (and frees p) when out of
 * memory. */
float *clip_own(clip_model *m, float *p);
/* Packs W [n x k] at the model's precision, counting parameters; NULL on
 * out of memory. */
kn_packed *clip_pack(clip_model *m, const float *w, int n, int k);
/* Allocates the model's ResNet/ViT derived sizes after weights are set. */
void clip_model_plan(clip_model *m);

#endif /* CLIP_CLIP_INT_H */
