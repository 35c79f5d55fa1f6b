/*
 * encode/encode.h: the built-in CLIP model and the `encode` stage.
 *
 * A model directory is either a Hugging Face CLIPModel (config.json +
 * model.safetensors) or an OpenAI / open_clip state dict
 * (open_clip_config.json + open_clip_model.safetensors, or any single
 * *.safetensors with OpenAI names, the architecture then inferred from the
 * tensor shapes as OpenAI's build_model does). Vision towers: ViT and
 * ModifiedResNet. Weights (F32, F16, BF16 on disk) are converted to float32
 * and packed once at load; --precision bf16 packs them as bfloat16.
 *
 * Features returned are the projected, un-normalised embeddings, as
 * CLIPModel.get_image_features / encode_image return them.
 */
#ifndef ENCODE_H
#define ENCODE_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

enum enc_status {
    ENC_EFORMAT = -600, /* a malformed model file (safetensors, config) */
    ENC_EMODEL = -601,  /* tensors missing or of the wrong shape for the model */
    ENC_EUNSUP = -602,  /* a well-formed model this build does not run */
};

enum enc_layout {
    ENC_LAYOUT_HF = 0,     /* transformers CLIPModel names */
    ENC_LAYOUT_OPENAI = 1, /* OpenAI / open_clip state dict names */
};

enum enc_vision {
    ENC_VISION_VIT = 0,
    ENC_VISION_RESNET = 1, /* OpenAI's ModifiedResNet */
};

#define ENC_CTX_MAX 512 /* longest text context accepted */

/* The architecture, read from the config and the tensor shapes. */
typedef struct enc_arch {
    int layout; /* enum enc_layout */
    int vision; /* enum enc_vision */
    int v_act;  /* KN_ACT_QUICKGELU or KN_ACT_GELU: vision transformer MLPs */
    int t_act;  /* the same for the text transformer */
    int embed_dim;
    int image_size;
    /* vision transformer, or the attention pool of the ResNet */
    int v_width; /* ViT width; ResNet: stem width (64 for RN50) */
    int v_layers;
    int v_heads;
    int v_patch;
    int v_mlp;
    int rn_layers[4]; /* Bottleneck blocks per stage (ResNet) */
    float v_eps;
    /* text transformer */
    int t_width, t_layers, t_heads, t_ctx, t_vocab, t_mlp;
    float t_eps;
    int eos_id; /* < 0: the EOT is the argmax token id (OpenAI) */
    /* preprocessing */
    float mean[3], std[3];
} enc_arch;

typedef struct enc_model enc_model;

typedef struct enc_open_opts {
    int precision; /* enum kn_precision: KN_F32 (0) or KN_BF16 (1) */
} enc_open_opts;

/* Loads a model directory. Returns 0 and *out (free with enc_model_free),
 * or WP_ENOENT (no model file), ENC_EFORMAT, ENC_EMODEL, ENC_EUNSUP,
 * WP_ENOMEM, WP_EIO with err naming the file and tensor. opts may be NULL. */
int enc_model_open(const char *dir, const enc_open_opts *opts, enc_model **out, wp_err *err);

/* Builds a model with the given architecture and random weights (seeded,
 * deterministic), for benchmarks and tests. arch->layout is ignored. */
int enc_model_random(const enc_arch *arch, int precision, uint64_t seed, enc_model **out,
                     wp_err *err);
void enc_model_free(enc_model *m);

const enc_arch *enc_model_arch(const enc_model *m);
int64_t enc_model_params(const enc_model *m);
/* "F32", "F16", "BF16" (as stored; "random" for enc_model_random) */
const char *enc_model_dtype(const enc_model *m);
float enc_model_logit_scale(const enc_model *m); /* exp(logit_scale) */
/* The architecture as one JSON object (appended to out). 0 or WP_ENOMEM. */
int enc_model_info_json(const enc_model *m, wp_buf *out);
/* Multiply-adds times two for one image / one text of len tokens. */
double enc_image_flops(const enc_model *m);
double enc_text_flops(const enc_model *m, int len);

/* A workspace: every buffer a forward pass needs, grown on first use to the
 * largest batch seen and then reused (no allocation in steady state). One
 * workspace per thread running a forward pass. */
typedef struct enc_ws enc_ws;
enc_ws *enc_ws_new(void);
void enc_ws_free(enc_ws *ws);

/* pixels: n images [3 x S x S] (S = arch image_size), normalised. out:
 * n x embed_dim. Returns 0, WP_ENOMEM, or WP_EINVAL. */
int enc_encode_images(const enc_model *m, enc_ws *ws, const float *pixels, int n, float *out,
                      wp_err *err);
/* tokens: n rows of ctx ids (ctx <= arch t_ctx), zero padded, each with an
 * EOT. out: n x embed_dim. Each text runs on its positions up to its own
 * EOT only, the texts packed without padding (exact under the causal
 * mask). */
int enc_encode_texts(const enc_model *m, enc_ws *ws, const int32_t *tokens, int n, int ctx,
                     float *out, wp_err *err);

/* RGB bytes [S x S x 3] (after CLIP resize + crop) to normalised CHW floats. */
void enc_normalize_rgb(const enc_model *m, const uint8_t *rgb, float *out);

/* Scales v (n floats) to unit length; a zero vector stays zero. */
void enc_l2_normalize(float *v, int n);
float enc_cosine(const float *a, const float *b, int n);

/* ---- text helpers (encode/zeroshot.c) -------------------------------- */

struct enc_tok; /* encode/tokenizer.h */

#define ENC_IMAGENET_TEMPLATES 80
/* The CLIP paper's 80 ImageNet prompt templates ("a photo of a {}."). */
extern const char *const enc_imagenet_templates[ENC_IMAGENET_TEMPLATES];

/* Tokenizes (cut to the context as OpenAI's truncate=True does) and embeds
 * n NUL-terminated strings; out: n x embed_dim, un-normalised. */
int enc_embed_strings(const enc_model *m, enc_ws *ws, struct enc_tok *tok, const char *const *texts,
                      int n, float *out, wp_err *err);
/* Zero-shot classifier weights: for each label, every template with "{}"
 * replaced by the label is embedded and normalised, the embeddings averaged
 * and the mean renormalised. out: nl x embed_dim (unit rows). */
int enc_zeroshot_classifier(const enc_model *m, enc_ws *ws, struct enc_tok *tok,
                            const char *const *labels, int nl, const char *const *templates, int nt,
                            float *out, wp_err *err);

/* ---- the encode stage ------------------------------------------------ */

struct cat;
struct st_store;

typedef struct enc_run_opts {
    const char *model_dir;
    const char *model_name; /* folder name under DIR/embeddings/ */
    int batch;              /* images per forward pass */
    int precision;
    int shard_rows;     /* rows per .npy shard */
    int64_t limit;      /* stop after this many pairs; 0 = all */
    int decode_threads; /* image decoding threads; 0 = about one per 4 cores (max 8) */
} enc_run_opts;

typedef struct enc_run_counts {
    int64_t pairs, images, texts, shards, failed, skipped;
} enc_run_counts;

/* Embeds every pair whose image is stored ok and that has no embedding for
 * this model yet: DIR/embeddings/NAME/{img_emb,text_emb}/..._N.npy (float16)
 * and metadata_N.jsonl (row -> pair uid), then the catalog's embeddings
 * rows (with the image-text cosine as clip_score), shard by shard, so a
 * stopped run resumes after the last written shard. Images that fail to
 * decode get an encode/drop decision and are not retried. Returns 0,
 * WP_ESTOP when stopped (what was done is kept), or an error. */
int enc_run(struct cat *c, struct st_store *s, const enc_run_opts *opts, const wp_reporter *rep,
            enc_run_counts *counts, wp_err *err);

#endif /* ENCODE_H */
