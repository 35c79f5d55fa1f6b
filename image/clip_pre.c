/*
 * image/clip_pre.c: CLIP's image preprocessing, byte-exact with the
 * reference recipe (torchvision on PIL):
 *   Resize(size, BICUBIC)  shorter side to size, longer side
 *                          int(size * long / short) (torchvision's
 *                          _compute_resized_output_size);
 *   CenterCrop(size)       top = int(round((h - size) / 2.0)), Python's
 *                          round-half-to-even;
 *   convert("RGB").
 * PIL details reproduced: no EXIF rotation; the resize runs in the image's
 * own mode (L stays one channel, CMYK is resized as CMYK and converted with
 * cmyk2rgb afterwards, RGBA/LA are premultiplied before resampling and
 * unpremultiplied after, palette and 1-bit images are resized NEAREST
 * because PIL's Image.resize forces NEAREST for modes "P" and "1"); resizing to
 * the same size is a copy; alpha is dropped without compositing.
 * Only the cropped window of the resized image is computed.
 */
#include "image/img_int.h"

#include <stdlib.h>
#include <string.h>

/* PIL refuses images over twice Image.MAX_IMAGE_PIXELS (89478485) as
 * decompression bombs; so do we. */
#define IMG_CLIP_MAX_PIXELS (2 * 89478485LL)

/* int(round(d / 2.0)) for an integer d >= 0, rounding half to even. */
static int half_round_even(int d)
{
    int q = d / 2;
    if ((d & 1) && (q & 1))
        q++;
    return q;
}

/* Pillow's RGBA -> RGBa / LA -> La (Convert.c): c * a / 255 rounded. */
static void premultiply(img_image *im)
{
    int C = im->channels;
    for (int y = 0; y < im->height; y++) {
        uint8_t *p = im->pixels + (size_t)y * im->stride;
        for (int x = 0; x < im->width; x++, p += C) {
            unsigned a = p[C - 1];
            for (int c = 0; c < C - 1; c++)
                p[c] = (uint8_t)img_muldiv255(p[c], a);
        }
    }
}

/* Pillow's RGBa -> RGBA (Convert.c): 255 * c / a truncated and clipped;
 * alpha 0 and 255 leave the colour as it is. */
static void unpremultiply(img_image *im)
{
    int C = im->channels;
    for (int y = 0; y < im->height; y++) {
        uint8_t *p = im->pixels + (size_t)y * im->stride;
        for (int x = 0; x < im->width; x++, p += C) {
            unsigned a = p[C - 1];
            if (a == 0 || a == 255)
                continue;
            for (int c = 0; c < C - 1; c++) {
                unsigned v = 255u * p[c] / a;
                p[c] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
    }
}

/* Copies the window [x0, x0+cw) x [y0, y0+ch) of src into a new image. */
static int crop(const img_image *src, int x0, int y0, int cw, int ch, img_image *out, wp_err *err)
{
    img_image o = {0};
    if (img_alloc(&o, cw, ch, src->channels))
        return wp_err_set(err, WP_ENOMEM, "clip: out of memory for %dx%d", cw, ch);
    for (int y = 0; y < ch; y++)
        memcpy(o.pixels + (size_t)y * o.stride,
               src->pixels + (size_t)(y + y0) * src->stride + (size_t)x0 * src->channels,
               (size_t)cw * src->channels);
    *out = o;
    return 0;
}

int img_clip_preprocess(const void *data, size_t n, int size, uint8_t *out_rgb, wp_err *err)
{
    if (size <= 0 || size > IMG_MAX_SIDE)
        return wp_err_set(err, WP_EINVAL, "clip: bad size %d", size);
    img_info info;
    int rc = img_probe(data, n, &info, err);
    if (rc < 0)
        return rc;
    img_image nat = {0}, win = {0}, rgb = {0};
    int mode = 0;
    int64_t charge = 0;
    if (info.width > 0 && info.height > 0 && info.width <= IMG_MAX_SIDE &&
        info.height <= IMG_MAX_SIDE && (int64_t)info.width * info.height <= IMG_CLIP_MAX_PIXELS) {
        charge = (int64_t)info.width * info.height * IMG_BUDGET_PER_PIXEL;
        if ((rc = img_budget_acquire(charge, img_format_name(info.format), err)) != 0)
            return rc;
    }
    rc = img_decode_native(data, n, IMG_CLIP_MAX_PIXELS, 1, 0, &info, &nat, &mode, err);
    if (rc < 0) {
        img_budget_release(charge);
        return rc;
    }

    int w = nat.width, h = nat.height;
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    /* Python: int(size * long / short), a correctly rounded double
     * division truncated toward zero */
    int new_long = (int)((double)((int64_t)size * longer) / shorter);
    int nw = w <= h ? size : new_long, nh = w <= h ? new_long : size;
    int top = half_round_even(nh - size), left = half_round_even(nw - size);

    if (nw == w && nh == h) {
        rc = crop(&nat, left, top, size, size, &win, err);
    } else if (mode == IMG_MODE_P || mode == IMG_MODE_PA || mode == IMG_MODE_1) {
        img_image full = {0};
        rc = img_resize_nearest(&nat, nw, nh, &full, err);
        if (rc == 0)
            rc = crop(&full, left, top, size, size, &win, err);
        img_free(&full);
    } else {
        int alpha = mode == IMG_MODE_RGBA || mode == IMG_MODE_LA;
        if (alpha)
            premultiply(&nat);
        rc = img_resize_bicubic_region(&nat, nw, nh, left, top, size, size, &win, err);
        if (rc == 0 && alpha)
            unpremultiply(&win);
    }
    img_free(&nat);
    if (rc < 0)
        goto out;
    rc = img_to_rgb(&win, mode, IMG_ALPHA_DROP, &rgb, err);
    if (rc < 0)
        goto out;
    for (int y = 0; y < size; y++)
        memcpy(out_rgb + (size_t)y * size * 3, rgb.pixels + (size_t)y * rgb.stride,
               (size_t)size * 3);
out:
    img_free(&win);
    img_free(&rgb);
    img_budget_release(charge);
    return rc;
}
