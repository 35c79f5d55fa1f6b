/*
 * clip/zeroshot.c: text-side helpers of the built-in CLIP: embedding
 * strings (tokenize + batch), and zero-shot classifiers built the way the
 * CLIP paper's ImageNet notebook does (every label with every prompt
 * template, each embedding normalised, averaged, renormalised).
 */
#include "clip/clip_int.h"
#include "clip/clip.h"

#include <stdlib.h>
#include <string.h>

#define CLIP_TEXT_BATCH 64   /* texts per forward pass */
#define CLIP_PROMPT_MAX 1024 /* longest label + template, bytes */

/* The 80 prompt templates of the CLIP paper's ImageNet evaluation
 * (Prompt_Engineering_for_ImageNet.ipynb). */
const char *const clip_imagenet_templates[CLIP_IMAGENET_TEMPLATES] = {
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
};

int clip_embed_strings(const clip_model *m, clip_ws *ws, struct clip_tok *tok,
                       const char *const *texts, int n, float *out, wp_err *err)
{
    int ctx = m->a.t_ctx, E = m->a.embed_dim, rc = 0;
    int32_t *ids = malloc((size_t)CLIP_TEXT_BATCH * ctx * sizeof *ids);

    if (ids == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    for (int b = 0; b < n && rc == 0; b += CLIP_TEXT_BATCH) {
        int k = n - b < CLIP_TEXT_BATCH ? n - b : CLIP_TEXT_BATCH;
        for (int i = 0; i < k && rc == 0; i++) {
            int r = clip_tok_encode_ctx(tok, texts[b + i], strlen(texts[b + i]),
                                        ids + (size_t)i * ctx, ctx, err);
            if (r < 0)
                rc = r;
        }
        if (rc == 0)
            rc = clip_encode_texts(m, ws, ids, k, ctx, out + (size_t)b * E, err);
    }
    free(ids);
    return rc;
}

/* label substituted for the first "{}" of template t; WP_ELIMIT if long. */
static int fill_template(const char *t, const char *label, char *out, size_t cap, wp_err *err)
{
    const char *at = strstr(t, "{}");
    int n = at ? snprintf(out, cap, "%.*s%s%s", (int)(at - t), t, label, at + 2)
               : snprintf(out, cap, "%s %s", t, label);
    if (n < 0 || (size_t)n >= cap)
        return wp_err_set(err, WP_ELIMIT, "prompt for label '%.40s' longer than %zu bytes", label,
                          cap - 1);
    return 0;
}

int clip_zeroshot_classifier(const clip_model *m, clip_ws *ws, struct clip_tok *tok,
                             const char *const *labels, int nl, const char *const *templates,
                             int nt, float *out, wp_err *err)
{
    int E = m->a.embed_dim, rc = 0;
    char *buf = malloc((size_t)nt * CLIP_PROMPT_MAX);
    const char **prompts = malloc((size_t)nt * sizeof *prompts);
    float *emb = malloc((size_t)nt * E * sizeof *emb);

    if (buf == NULL || prompts == NULL || emb == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int l = 0; l < nl; l++) {
        for (int t = 0; t < nt; t++) {
            prompts[t] = buf + (size_t)t * CLIP_PROMPT_MAX;
            if ((rc = fill_template(templates[t], labels[l], buf + (size_t)t * CLIP_PROMPT_MAX,
                                    CLIP_PROMPT_MAX, err)) != 0)
                goto out;
        }
        if ((rc = clip_embed_strings(m, ws, tok, prompts, nt, emb, err)) != 0)
            goto out;
        float *o = out + (size_t)l * E;
        memset(o, 0, (size_t)E * sizeof *o);
        for (int t = 0; t < nt; t++) {
            clip_l2_normalize(emb + (size_t)t * E, E);
            for (int j = 0; j < E; j++)
                o[j] += emb[(size_t)t * E + j] / (float)nt;
        }
        clip_l2_normalize(o, E);
    }
out:
    free(buf);
    free(prompts);
    free(emb);
    return rc;
}
