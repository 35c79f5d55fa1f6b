/*
 * image/decode_png.c: PNG decoding with libspng, to the mode PIL gives the
 * image: L (gray), LA, RGB, RGBA, or a palette image expanded through its
 * palette (P, or PA when a tRNS chunk makes it transparent). 16-bit samples
 * keep their high byte, as PIL's "RGB;16B" unpacker does. Gamma and colour
 * chunks are ignored, as PIL ignores them.
 */
#include "image/img_int.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>

/* Ancillary chunk limits: a PNG is a few text chunks at most; anything
 * larger is a decompression bomb aimed at the metadata. */
#define IMG_PNG_CHUNK_MAX (8u << 20)
#define IMG_PNG_CACHE_MAX (32u << 20)

int img_png_decode_native(const uint8_t *data, size_t n, img_image *out, int *mode, wp_err *err)
{
    spng_ctx *ctx = spng_ctx_new(0);
    uint8_t *pix = NULL;
    int rc, e;
    if (!ctx)
        return wp_err_set(err, WP_ENOMEM, "png: out of memory");
    if ((e = spng_set_image_limits(ctx, IMG_MAX_SIDE, IMG_MAX_SIDE)) ||
        (e = spng_set_chunk_limits(ctx, IMG_PNG_CHUNK_MAX, IMG_PNG_CACHE_MAX)) ||
        (e = spng_set_png_buffer(ctx, data, n))) {
        rc = wp_err_set(err, IMG_ECORRUPT, "png: %s", spng_strerror(e));
        goto out;
    }
    struct spng_ihdr ihdr;
    if ((e = spng_get_ihdr(ctx, &ihdr))) {
        rc = wp_err_set(err, IMG_ECORRUPT, "png: header: %s", spng_strerror(e));
        goto out;
    }
    struct spng_trns trns;
    int has_trns = spng_get_trns(ctx, &trns) == 0;
    int fmt, m, ch, flags = 0;
    switch (ihdr.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
        /* 16-bit gray goes through RGB8 (spng's G8 takes <= 8 bits) */
        fmt = ihdr.bit_depth <= 8 ? SPNG_FMT_G8 : SPNG_FMT_RGB8;
        m = ihdr.bit_depth == 1 ? IMG_MODE_1 : ihdr.bit_depth <= 8 ? IMG_MODE_L : IMG_MODE_RGB;
        break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
        /* 8-bit GA is already interleaved gray, alpha: take it as stored
         * (spng's GA8 conversion does not cover this colour type) */
        fmt = ihdr.bit_depth <= 8 ? SPNG_FMT_PNG : SPNG_FMT_RGBA8;
        m = ihdr.bit_depth <= 8 ? IMG_MODE_LA : IMG_MODE_RGBA;
        break;
    case SPNG_COLOR_TYPE_INDEXED:
        fmt = has_trns ? SPNG_FMT_RGBA8 : SPNG_FMT_RGB8;
        flags = has_trns ? SPNG_DECODE_TRNS : 0;
        m = has_trns ? IMG_MODE_PA : IMG_MODE_P;
        break;
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
        fmt = SPNG_FMT_RGBA8;
        m = IMG_MODE_RGBA;
        break;
    default: /* truecolor; a tRNS colour key is ignored, as PIL's RGB ignores it */
        fmt = SPNG_FMT_RGB8;
        m = IMG_MODE_RGB;
        break;
    }
    ch = img_mode_channels(m);
    size_t size;
    if ((e = spng_decoded_image_size(ctx, fmt, &size))) {
        rc = wp_err_set(err, IMG_ECORRUPT, "png: %s", spng_strerror(e));
        goto out;
    }
    size_t stride = (size_t)ihdr.width * (size_t)ch;
    if (size != stride * ihdr.height) {
        rc = wp_err_set(err, IMG_ECORRUPT, "png: unexpected decoded size %zu", size);
        goto out;
    }
    pix = malloc(size ? size : 1);
    if (!pix) {
        rc = wp_err_set(err, WP_ENOMEM, "png: out of memory for %ux%u", ihdr.width, ihdr.height);
        goto out;
    }
    if ((e = spng_decode_image(ctx, pix, size, fmt, flags))) {
        rc = wp_err_set(err, IMG_ECORRUPT, "png: %s", spng_strerror(e));
        goto out;
    }
    img_adopt(out, (int)ihdr.width, (int)ihdr.height, ch, stride, pix);
    pix = NULL;
    *mode = m;
    rc = 0;
out:
    free(pix);
    spng_ctx_free(ctx);
    return rc;
}
