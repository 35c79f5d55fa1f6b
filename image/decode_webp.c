/*
 * image/decode_webp.c: still WebP decoding with libwebp (lossy VP8, lossless
 * VP8L, extended VP8X with alpha) to RGB or, when the bitstream carries
 * alpha, straight RGBA, as PIL opens them. Animations are refused.
 */
#include "image/img_int.h"

#include <stdlib.h>
#include <webp/decode.h>

int img_webp_decode_native(const uint8_t *data, size_t n, img_image *out, int *mode, wp_err *err)
{
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(data, n, &f);
    if (st != VP8_STATUS_OK)
        return wp_err_set(err,
                          st == VP8_STATUS_UNSUPPORTED_FEATURE ? IMG_EUNSUPPORTED : IMG_ECORRUPT,
                          "webp: bad bitstream header (status %d)", (int)st);
    if (f.has_animation)
        return wp_err_set(err, IMG_EUNSUPPORTED, "webp: animated WebP is not decoded");
    if (f.width <= 0 || f.height <= 0 || f.width > IMG_MAX_SIDE || f.height > IMG_MAX_SIDE)
        return wp_err_set(err, IMG_ECORRUPT, "webp: bad size %dx%d", f.width, f.height);
    int ch = f.has_alpha ? 4 : 3;
    size_t stride = (size_t)f.width * (size_t)ch;
    size_t size = stride * (size_t)f.height;
    uint8_t *pix = malloc(size);
    if (!pix)
        return wp_err_set(err, WP_ENOMEM, "webp: out of memory for %dx%d", f.width, f.height);
    uint8_t *r = f.has_alpha ? WebPDecodeRGBAInto(data, n, pix, size, (int)stride)
                             : WebPDecodeRGBInto(data, n, pix, size, (int)stride);
    if (!r) {
        free(pix);
        return wp_err_set(err, IMG_ECORRUPT, "webp: truncated or corrupt bitstream");
    }
    img_adopt(out, f.width, f.height, ch, stride, pix);
    *mode = f.has_alpha ? IMG_MODE_RGBA : IMG_MODE_RGB;
    return 0;
}
