/*
 * clip/clip.h: the built-in CLIP model engine, a service any stage may use:
 * load a checkpoint, tokenize, embed images and texts, zero-shot classify,
 * fetch a model folder from a hub. The `encode` stage (encode/) is one user;
 * dedup, filter and audit are others. The GEMM kernels underneath are the
 * kern/ service (kern/kern.h).
 *
 * Embedding an image or a text takes three calls:
 *
 *     clip_model *m; clip_tok *tok; wp_err err;
 *     clip_model_open("models/clip-vit-base-patch32", NULL, &m, &err);   // 1
 *     clip_tok_open_dir("models/clip-vit-base-patch32", &tok, &err);
 *     float *e = malloc(sizeof(float) * clip_model_arch(m)->embed_dim);
 *     clip_embed_image_file(m, "cat.jpg", e, &err);                     // 2
 *     clip_embed_text(m, tok, "a photo of a cat", e, &err);             // 2'
 *     clip_tok_free(tok); clip_model_free(m);                           // 3
 *
 * (tests/unit/test_clip_api.c does exactly this, including only this
 * header.) The one-call helpers allocate a workspace per call; a stage
 * embedding many items keeps a clip_ws and calls clip_encode_images /
 * clip_encode_texts on batches.
 *
 * A model directory is either a Hugging Face CLIPModel (config.json +
 * model.safetensors) or an OpenAI / open_clip state dict
 * (open_clip_config.json + open_clip_model.safetensors, or any single
 * *.safetensors with OpenAI names, the architecture then inferred from the
 * tensor shapes as OpenAI's build_model does). Vision towers: ViT and
 * ModifiedResNet. Weights (F32, F16, BF16 on disk) are converted to float32
 * and packed once at load; CLIP_BF16 packs them as bfloat16.
 *
 * Features returned are the projected, un-normalised embeddings, as
 * CLIPModel.get_image_features / encode_image return them.
 *
 * Tokenizer: the same ids as OpenAI's clip/simple_tokenizer.py with the real
 * ftfy.
 * Text goes through the same steps as SimpleTokenizer.encode:
 *   ftfy.fix_text (ftfy 6.3 defaults: HTML entities, mojibake, C1 controls,
 *   Latin ligatures, full-width forms, curly quotes, line breaks, terminal
 *   escapes, control characters, NFC), html.unescape twice, strip,
 *   whitespace collapse, str.lower(), the pre-tokenizer regex
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *   and BPE merges over the bytes of each piece, the last one marked </w>.
 *
 * Vocabulary: a model folder's vocab.json + merges.txt (Hugging Face layout),
 * bpe_simple_vocab_16e6.txt.gz (OpenAI / open_clip layout) or tokenizer.json
 * (Hugging Face tokenizers).
 *
 * Thread safety: an clip_tok may be shared by threads; its word cache is
 * guarded by a mutex.
 *
 * Hub: `witpipe model pull`.
 * The file list comes from GET {endpoint}/api/models/{repo}/revision/{rev}
 * ("siblings"); each file a CLIP needs is then downloaded from
 * {endpoint}/{repo}/resolve/{rev}/{file} (large files are redirected to a
 * CDN). Downloads go to FILE.part and resume with HTTP Range requests
 * (RFC 9110 section 14.2) after an interruption, in the same run or the next
 * one; a finished file is checked against the size and SHA-256 the hub
 * announces (X-Linked-Size / X-Linked-Etag, or Content-Length and a SHA-256
 * ETag) before it is renamed into place. A file already in place is kept.
 */
#ifndef CLIP_H
#define CLIP_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

/* Arithmetic precision of a loaded model. */
enum clip_precision {
    CLIP_F32 = 0, /* float32 weights and arithmetic (the default) */
    /* bf16 weights and activations, float32 accumulation, on ViT image
     * towers; text towers and ModifiedResNets run split bf16 (KN_BF16X3,
     * float32-level results) where kn_bf16x3_worth, else float32 (model
     * info says which, per tower) */
    CLIP_BF16 = 1,
};

typedef struct clip_model clip_model; /* a loaded model */
typedef struct clip_tok clip_tok;     /* a tokenizer (vocabulary + merges) */

/* Activation of a transformer MLP (the values of kern.h's KN_ACT_*). */
enum clip_act {
    CLIP_ACT_GELU = 1,      /* exact erf GELU (LAION / HF "gelu") */
    CLIP_ACT_QUICKGELU = 2, /* x * sigmoid(1.702 x) (OpenAI) */
};

enum clip_status {
    CLIP_EFORMAT = -600, /* a malformed model file (safetensors, config) */
    CLIP_EMODEL = -601,  /* tensors missing or of the wrong shape for the model */
    CLIP_EUNSUP = -602,  /* a well-formed model this build does not run */
};

enum clip_layout {
    CLIP_LAYOUT_HF = 0,     /* transformers CLIPModel names */
    CLIP_LAYOUT_OPENAI = 1, /* OpenAI / open_clip state dict names */
};

enum clip_vision {
    CLIP_VISION_VIT = 0,
    CLIP_VISION_RESNET = 1, /* OpenAI's ModifiedResNet */
};

#define CLIP_CTX_MAX 512 /* longest text context accepted */

/* The architecture, read from the config and the tensor shapes. */
typedef struct clip_arch {
    int layout; /* enum clip_layout */
    int vision; /* enum clip_vision */
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
} clip_arch;

typedef struct clip_open_opts {
    int precision; /* enum kn_precision: KN_F32 (0) or KN_BF16 (1) */
} clip_open_opts;

/* Loads a model directory. Returns 0 and *out (free with clip_model_free),
 * or WP_ENOENT (no model file), CLIP_EFORMAT, CLIP_EMODEL, CLIP_EUNSUP,
 * WP_ENOMEM, WP_EIO with err naming the file and tensor. opts may be NULL. */
int clip_model_open(const char *dir, const clip_open_opts *opts, clip_model **out, wp_err *err);

/* Builds a model with the given architecture and random weights (seeded,
 * deterministic), for benchmarks and tests. arch->layout is ignored. */
int clip_model_random(const clip_arch *arch, int precision, uint64_t seed, clip_model **out,
                      wp_err *err);
void clip_model_free(clip_model *m);

const clip_arch *clip_model_arch(const clip_model *m);
int64_t clip_model_params(const clip_model *m);
/* "F32", "F16", "BF16" (as stored; "random" for clip_model_random) */
const char *clip_model_dtype(const clip_model *m);
float clip_model_logit_scale(const clip_model *m); /* exp(logit_scale) */
/* The architecture as one JSON object (appended to out). 0 or WP_ENOMEM. */
int clip_model_info_json(const clip_model *m, wp_buf *out);
/* Multiply-adds times two for one image / one text of len tokens. */
double clip_image_flops(const clip_model *m);
double clip_text_flops(const clip_model *m, int len);

/* A workspace: every buffer a forward pass needs, grown on first use to the
 * largest batch seen and then reused (no allocation in steady state). One
 * workspace per thread running a forward pass. */
typedef struct clip_ws clip_ws;
clip_ws *clip_ws_new(void);
void clip_ws_free(clip_ws *ws);

/* pixels: n images [3 x S x S] (S = arch image_size), normalised. out:
 * n x embed_dim. Returns 0, WP_ENOMEM, or WP_EINVAL. */
int clip_encode_images(const clip_model *m, clip_ws *ws, const float *pixels, int n, float *out,
                       wp_err *err);
/* tokens: n rows of ctx ids (ctx <= arch t_ctx), zero padded, each with an
 * EOT. out: n x embed_dim. Each text runs on its positions up to its own
 * EOT only, the texts packed without padding (exact under the causal
 * mask). */
int clip_encode_texts(const clip_model *m, clip_ws *ws, const int32_t *tokens, int n, int ctx,
                      float *out, wp_err *err);

/* RGB bytes [S x S x 3] (after CLIP resize + crop) to normalised CHW floats. */
void clip_normalize_rgb(const clip_model *m, const uint8_t *rgb, float *out);

/* Scales v (n floats) to unit length; a zero vector stays zero. */
void clip_l2_normalize(float *v, int n);
float clip_cosine(const float *a, const float *b, int n);

/* ---- text helpers (clip/zeroshot.c) ---------------------------------- */

#define CLIP_IMAGENET_TEMPLATES 80
/* The CLIP paper's 80 ImageNet prompt templates ("a photo of a {}."). */
extern const char *const clip_imagenet_templates[CLIP_IMAGENET_TEMPLATES];

/* Tokenizes (cut to the context as OpenAI's truncate=True does) and embeds
 * n NUL-terminated strings; out: n x embed_dim, un-normalised. */
int clip_embed_strings(const clip_model *m, clip_ws *ws, clip_tok *tok, const char *const *texts,
                       int n, float *out, wp_err *err);
/* Zero-shot classifier weights: for each label, every template with "{}"
 * replaced by the label is embedded and normalised, the embeddings averaged
 * and the mean renormalised. out: nl x embed_dim (unit rows). */
int clip_zeroshot_classifier(const clip_model *m, clip_ws *ws, clip_tok *tok,
                             const char *const *labels, int nl, const char *const *templates,
                             int nt, float *out, wp_err *err);

/* ---- one-call helpers ---------------------------------------------- */

/* Decodes an image file (JPEG, PNG, WebP), preprocesses it as CLIP's
 * reference does and writes its un-normalised embedding to out
 * (embed_dim floats). Returns 0, WP_ENOENT / WP_EIO (file), the image
 * module's decode errors, WP_ENOMEM, with err naming the file. */
int clip_embed_image_file(const clip_model *m, const char *path, float *out, wp_err *err);
/* The same for an image already in memory (data, n bytes; the caller's).
 * Returns 0, the image module's decode errors, WP_ENOMEM. */
int clip_embed_image_bytes(const clip_model *m, const void *data, size_t n, float *out,
                           wp_err *err);
/* Tokenizes text (cut to the model's context) and writes its un-normalised
 * embedding to out. Returns 0, WP_ENOMEM, WP_EINVAL. */
int clip_embed_text(const clip_model *m, clip_tok *tok, const char *text, float *out, wp_err *err);

/* ---- tokenizer (clip/tokenizer.c) ------------------------------------ */

#define CLIP_TOK_SOT       49406 /* <|startoftext|> in CLIP's vocabulary */
#define CLIP_TOK_EOT       49407 /* <|endoftext|> */
#define CLIP_TOK_VOCAB     49408
#define CLIP_TOK_CTX       77          /* CLIP's context length */
#define CLIP_TOK_MERGES    48894       /* 49152 - 256 - 2 */
#define CLIP_TOK_FILE_MAX  (64u << 20) /* largest vocabulary file read */
#define CLIP_TOK_CACHE_MAX (1u << 16)  /* words cached before the cache restarts */

enum clip_tok_status {
    CLIP_TOK_EVOCAB = -650, /* a vocabulary file is malformed or inconsistent */
};

/* Loads the tokenizer of a model folder: vocab.json + merges.txt if both are
 * there, else bpe_simple_vocab_16e6.txt.gz, else tokenizer.json. Returns 0
 * and *out (free with clip_tok_free), or WP_ENOENT (none present),
 * CLIP_TOK_EVOCAB, WP_EIO, WP_ENOMEM with err naming the file (and line). */
int clip_tok_open_dir(const char *dir, clip_tok **out, wp_err *err);
/* The same from an OpenAI bpe_simple_vocab_16e6.txt.gz (gzip; a plain text
 * file is accepted too). */
int clip_tok_open_bpe_gz(const char *path, clip_tok **out, wp_err *err);
/* The same from a Hugging Face vocab.json and merges.txt. */
int clip_tok_open_hf(const char *vocab_json, const char *merges_txt, clip_tok **out, wp_err *err);
/* The same from a Hugging Face tokenizer.json (model.vocab and
 * model.merges, merges as "a b" strings or ["a", "b"] pairs). */
int clip_tok_open_hf_json(const char *tokenizer_json, clip_tok **out, wp_err *err);
void clip_tok_free(clip_tok *t);

/* Token ids of text (UTF-8, n bytes) with <|startoftext|> first and
 * <|endoftext|> last, untruncated. Returns 0 and *ids (malloc'ed, caller
 * frees) with *n_ids, or WP_ENOMEM. Invalid UTF-8 bytes are read as U+FFFD. */
int clip_tok_encode(clip_tok *t, const char *text, size_t n, int32_t **ids, size_t *n_ids,
                    wp_err *err);
/* Fills row[0..ctx) with the ids of text, cut as OpenAI's tokenize(...,
 * truncate=True) does (the first ctx ids, the last replaced by
 * <|endoftext|>) and zero padded. Returns the number of ids written (>= 2),
 * or WP_EINVAL (ctx < 2), WP_ENOMEM. Stops tokenizing once the row is full. */
int clip_tok_encode_ctx(clip_tok *t, const char *text, size_t n, int32_t *row, int ctx,
                        wp_err *err);

/* ---- model hub (clip/hub.c) ----------------------------------------- */

#define CLIP_HUB_ENDPOINT "https://huggingface.co"
#define CLIP_HUB_REPO_MAX 200        /* longest "org/name" accepted */
#define CLIP_HUB_API_MAX  (8u << 20) /* largest file-list answer read */

enum clip_hub_status {
    CLIP_HUB_EHTTP = -660,    /* the hub answered with an error status or not at all */
    CLIP_HUB_EVERIFY = -661,  /* a download did not match the announced size or SHA-256 */
    CLIP_HUB_ENOFILES = -662, /* the repository has no safetensors CLIP weights */
};

typedef struct clip_hub_opts {
    const char *endpoint;   /* NULL: $HF_ENDPOINT, else CLIP_HUB_ENDPOINT */
    const char *cache;      /* root of the model cache; NULL: clip_hub_cache_root() */
    const char *revision;   /* NULL: "main" */
    const char *token;      /* bearer token; NULL: $HF_TOKEN if set */
    long connect_timeout_s; /* 0: 30 */
    long stall_timeout_s;   /* give up on a transfer that stalls this long; 0: 60 */
    int attempts;           /* tries per file (resuming each time); 0: 5 */
    const wp_reporter *rep; /* progress ("pull", bytes) and events; may be NULL */
} clip_hub_opts;

typedef struct clip_hub_result {
    char dir[WP_PATH_MAX]; /* the model folder */
    int fetched;           /* files downloaded now */
    int kept;              /* files already in place */
    int64_t bytes;         /* bytes received now */
} clip_hub_result;

/* The default cache root: $HF_HOME/witpipe/models if HF_HOME is set, else
 * $XDG_CACHE_HOME/witpipe/models, else ~/.cache/witpipe/models. 0 or
 * WP_ELIMIT / WP_EINVAL (no home directory). */
int clip_hub_cache_root(char out[WP_PATH_MAX], wp_err *err);

/* Downloads the CLIP files of repo ("org/name") into CACHE/org/name (with
 * "@REV" appended when the revision is not "main"; '/' in REV becomes '_').
 * Returns 0 and fills res (may be NULL), or WP_EINVAL (bad repo name),
 * CLIP_HUB_EHTTP, CLIP_HUB_EVERIFY, CLIP_HUB_ENOFILES, WP_EIO, WP_ENOMEM,
 * WP_ESTOP (Ctrl-C: partial downloads are kept as .part files), with err
 * naming the URL or file. */
int clip_hub_pull(const char *repo, const clip_hub_opts *opts, clip_hub_result *res, wp_err *err);

#endif /* CLIP_H */
