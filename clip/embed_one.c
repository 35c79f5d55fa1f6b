/*
 * clip/embed_one.c: one image file or one text to one embedding, for stages
 * and tools that embed a few items (zero-shot probes, evaluation images).
 * Each call allocates and frees its own workspace; bulk work keeps a clip_ws.
 */
#include "clip/clip.h"
#include "image/image.h"

#include <stdlib.h>

#define CLIP_ONE_FILE_MAX ((size_t)256 << 20) /* largest image file read */

int clip_embed_image_bytes(const clip_model *m, const void *data, size_t n, float *out, wp_err *err)
{
    int S = clip_model_arch(m)->image_size, rc;
    size_t px = (size_t)3 * S * S;
    uint8_t *rgb = malloc(px);
    float *pix = malloc(px * sizeof *pix);
    clip_ws *ws = clip_ws_new();

    if (rgb == NULL || pix == NULL || ws == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for a %dx%d image", S, S);
        goto out;
    }
    if ((rc = img_clip_preprocess(data, n, S, rgb, err)) != 0)
        goto out;
    clip_normalize_rgb(m, rgb, pix);
    rc = clip_encode_images(m, ws, pix, 1, out, err);
out:
    clip_ws_free(ws);
    free(pix);
    free(rgb);
    return rc;
}

int clip_embed_image_file(const clip_model *m, const char *path, float *out, wp_err *err)
{
    wp_buf b = {0};
    int rc = wp_read_file(path, CLIP_ONE_FILE_MAX, &b, err);
    if (rc == 0 && (rc = clip_embed_image_bytes(m, b.data, b.len, out, err)) != 0)
        wp_err_prefix(err, "%s", path);
    wp_buf_free(&b);
    return rc;
}

int clip_embed_text(const clip_model *m, clip_tok *tok, const char *text, float *out, wp_err *err)
{
    clip_ws *ws = clip_ws_new();
    int rc;

    if (ws == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = clip_embed_strings(m, ws, tok, &text, 1, out, err);
    clip_ws_free(ws);
    return rc;
}
