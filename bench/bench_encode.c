/*
 * bench/bench_encode.c: throughput of the built-in CLIP on CLIP ViT-B/32
 * and RN50 with random weights (the architecture built in memory, no file):
 * images/s at batch 1 and 32 (f32 and bf16), texts/s on caption-length
 * token rows and on full 77-token rows, the achieved GFLOP/s, and RN50
 * images/s. Each case runs for a fixed minimum time and reports the best
 * of its repetitions. WITPIPE_BENCH_QUICK=1 shortens every case.
 */
#include "encode/encode.h"
#include "encode/kern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 32
#define CTX       77

static double min_time = 3.0; /* seconds per case */

static enc_arch vit_b32(void)
{
    enc_arch a;
    memset(&a, 0, sizeof a);
    a.vision = ENC_VISION_VIT;
    a.v_act = a.t_act = KN_ACT_QUICKGELU;
    a.embed_dim = 512;
    a.image_size = 224;
    a.v_width = 768;
    a.v_layers = 12;
    a.v_heads = 12;
    a.v_patch = 32;
    a.v_mlp = 3072;
    a.v_eps = a.t_eps = 1e-5f;
    a.t_width = 512;
    a.t_layers = 12;
    a.t_heads = 8;
    a.t_ctx = CTX;
    a.t_vocab = 49408;
    a.t_mlp = 2048;
    a.eos_id = -1;
    for (int i = 0; i < 3; i++) {
        a.mean[i] = 0.45f;
        a.std[i] = 0.27f;
    }
    return a;
}

static enc_arch rn50(void)
{
    enc_arch a = vit_b32();
    a.vision = ENC_VISION_RESNET;
    a.embed_dim = 1024;
    a.v_width = 64;
    a.v_heads = 32;
    a.rn_layers[0] = 3;
    a.rn_layers[1] = 4;
    a.rn_layers[2] = 6;
    a.rn_layers[3] = 3;
    return a;
}

/* Runs fn until min_time has passed (at least twice); returns the best
 * items per second over the repetitions. */
static double time_images(const enc_model *m, enc_ws *ws, const float *px, int batch, float *out)
{
    wp_err err = {0};
    double best = 0, t0 = wp_now();
    int reps = 0;
    enc_encode_images(m, ws, px, batch, out, &err); /* warm-up: workspace, caches */
    while (reps < 2 || wp_now() - t0 < min_time) {
        double t = wp_now();
        if (enc_encode_images(m, ws, px, batch, out, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        double r = batch / (wp_now() - t);
        if (r > best)
            best = r;
        reps++;
    }
    return best;
}

static double time_texts(const enc_model *m, enc_ws *ws, const int32_t *tok, int batch, float *out)
{
    wp_err err = {0};
    double best = 0, t0 = wp_now();
    int reps = 0;
    enc_encode_texts(m, ws, tok, batch, CTX, out, &err);
    while (reps < 2 || wp_now() - t0 < min_time) {
        double t = wp_now();
        if (enc_encode_texts(m, ws, tok, batch, CTX, out, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        double r = batch / (wp_now() - t);
        if (r > best)
            best = r;
        reps++;
    }
    return best;
}

/* Token rows: SOT, len-2 word ids, EOT; lens cycle through a spread
 * typical of web alt-text captions (mean ~18 tokens). */
static const int caption_lens[16] = {9, 14, 22, 12, 31, 17, 11, 25, 16, 20, 13, 27, 10, 19, 23, 15};

static void make_tokens(int32_t *tok, int batch, int full)
{
    memset(tok, 0, (size_t)batch * CTX * sizeof *tok);
    for (int b = 0; b < batch; b++) {
        int len = full ? CTX : caption_lens[b % 16];
        int32_t *r = tok + (size_t)b * CTX;
        r[0] = 49406;
        for (int i = 1; i < len - 1; i++)
            r[i] = 400 + (b * 131 + i * 977) % 40000;
        r[len - 1] = 49407;
    }
}

int main(void)
{
    enc_model *m = NULL;
    wp_err err = {0};
    const char *quick = getenv("WITPIPE_BENCH_QUICK");
    if (quick != NULL && quick[0] == '1')
        min_time = 0.5;
    printf("witpipe encode bench: kernels %s, CLIP ViT-B/32 and RN50, random weights\n", kn_init());
    size_t px_n = (size_t)BATCH_MAX * 3 * 224 * 224;
    float *px = malloc(px_n * sizeof *px);
    float *out = malloc((size_t)BATCH_MAX * 1024 * sizeof *out);
    int32_t *tok = malloc((size_t)BATCH_MAX * CTX * sizeof *tok);
    enc_ws *ws = enc_ws_new();
    if (!px || !out || !tok || !ws) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < px_n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        px[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    enc_arch a = vit_b32();
    for (int prec = KN_F32; prec <= KN_BF16; prec++) {
        const char *pn = prec == KN_BF16 ? "bf16" : "f32";
        if (enc_model_random(&a, prec, 1, &m, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        double gf = enc_image_flops(m) / 1e9;
        if (prec == KN_F32)
            printf("ViT-B/32: %.2f GFLOP per image, %lld parameters\n", gf,
                   (long long)enc_model_params(m));
        for (int batch = 1; batch <= BATCH_MAX; batch *= 32) {
            double r = time_images(m, ws, px, batch, out);
            printf("witpipe ViT-B/32 image %s batch %-2d  %7.2f img/s  %6.1f GFLOP/s\n", pn, batch,
                   r, r * gf);
            fflush(stdout);
        }
        if (prec == KN_F32) {
            /* text always runs in f32 (see encode.h) */
            make_tokens(tok, BATCH_MAX, 0);
            double r = time_texts(m, ws, tok, BATCH_MAX, out);
            /* each text runs on its own tokens up to its EOT (no padding) */
            double tf = 0;
            for (int i = 0; i < BATCH_MAX; i++)
                tf += enc_text_flops(m, caption_lens[i % 16]) / BATCH_MAX;
            printf("witpipe ViT-B/32 text f32 batch 32, captions 9-31 tokens  %7.2f texts/s  "
                   "%6.1f GFLOP/s\n",
                   r, r * tf / 1e9);
            make_tokens(tok, BATCH_MAX, 1);
            r = time_texts(m, ws, tok, BATCH_MAX, out);
            printf("witpipe ViT-B/32 text f32 batch 32 x 77 tokens  %7.2f texts/s  %6.1f GFLOP/s\n",
                   r, r * enc_text_flops(m, CTX) / 1e9);
            fflush(stdout);
        }
        enc_model_free(m);
        m = NULL;
    }
    a = rn50();
    for (int prec = KN_F32; prec <= KN_BF16; prec++) {
        if (enc_model_random(&a, prec, 2, &m, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        double gf = enc_image_flops(m) / 1e9;
        if (prec == KN_F32)
            printf("RN50: %.2f GFLOP per image\n", gf);
        double r = time_images(m, ws, px, 8, out);
        printf("witpipe RN50 image %s batch 8  %7.2f img/s  %6.1f GFLOP/s\n",
               prec == KN_BF16 ? "bf16" : "f32", r, r * gf);
        fflush(stdout);
        enc_model_free(m);
        m = NULL;
    }
    enc_ws_free(ws);
    free(px);
    free(out);
    free(tok);
    return 0;
}
