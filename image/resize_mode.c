/*
 * image/resize_mode.c: img2dataset's resize modes (no, border, keep_ratio,
 * keep_ratio_largest, center_crop) on top of the PIL-exact bicubic
 * resampler, and the DCT-scaling hint that lets the JPEG decoder do most
 * of a large downscale for free.
 *
 * Sizes follow albumentations as img2dataset calls it: the scaled side is
 * round-half-up(side * size / reference side), the centre crop's offset is
 * (side - size) // 2, padding puts (size - side) // 2 before the image.
 * Where img2dataset uses OpenCV's INTER_AREA / LANCZOS4 we use PIL's
 * antialiased bicubic in both directions.
 */
#include "image/img_int.h"

#include <math.h>
#include <string.h>

int img_resize_mode_parse(const char *s)
{
    static const struct {
        const char *name;
        int mode;
    } modes[] = {
        {"no", IMG_RESIZE_NO},
        {"border", IMG_RESIZE_BORDER},
        {"keep_ratio", IMG_RESIZE_KEEP_RATIO},
        {"keep_ratio_largest", IMG_RESIZE_KEEP_RATIO_LARGEST},
        {"center_crop", IMG_RESIZE_CENTER_CROP},
    };
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0)
            return modes[i].mode;
    return -1;
}

void img_resize_mode_hint(int mode, int size, int src_w, int src_h, int *min_w, int *min_h)
{
    *min_w = *min_h = 0; /* full size */
    if (size <= 0 || src_w <= 0 || src_h <= 0)
        return;
    switch (mode) {
    case IMG_RESIZE_KEEP_RATIO:
    case IMG_RESIZE_CENTER_CROP:
        /* the shorter side ends at size: both decoded sides must stay >= size */
        *min_w = *min_h = size;
        break;
    case IMG_RESIZE_KEEP_RATIO_LARGEST:
    case IMG_RESIZE_BORDER:
        /* the longer side ends at size */
        if (src_w >= src_h)
            *min_w = size, *min_h = 1;
        else
            *min_w = 1, *min_h = size;
        break;
    default:
        break;
    }
}

/* round-half-up(side * size / ref), at least 1 */
static int scaled(int side, int size, int ref)
{
    int v = (int)floor((double)side * size / ref + 0.5);
    return v < 1 ? 1 : v;
}

static int copy_image(const img_image *src, img_image *out, wp_err *err)
{
    img_image o = {0};
    if (img_alloc(&o, src->width, src->height, src->channels))
        return wp_err_set(err, WP_ENOMEM, "resize: out of memory for %dx%d", src->width,
                          src->height);
    for (int y = 0; y < src->height; y++)
        memcpy(o.pixels + (size_t)y * o.stride, src->pixels + (size_t)y * src->stride,
               (size_t)src->width * src->channels);
    *out = o;
    return 0;
}

/* Centres src on a black size x size canvas (src must fit). */
static int pad_black(const img_image *src, int size, img_image *out, wp_err *err)
{
    img_image o = {0};
    int C = src->channels;
    if (img_alloc(&o, size, size, C))
        return wp_err_set(err, WP_ENOMEM, "resize: out of memory for %dx%d", size, size);
    memset(o.pixels, 0, o.stride * (size_t)size);
    int top = (size - src->height) / 2, left = (size - src->width) / 2;
    for (int y = 0; y < src->height; y++)
        memcpy(o.pixels + (size_t)(y + top) * o.stride + (size_t)left * C,
               src->pixels + (size_t)y * src->stride, (size_t)src->width * C);
    *out = o;
    return 0;
}

/* Resizes to w x h, or copies when the size does not change. */
static int resize_to(const img_image *src, int w, int h, img_image *out, wp_err *err)
{
    if (w == src->width && h == src->height)
        return copy_image(src, out, err);
    return img_resize_bicubic(src, w, h, out, err);
}

int img_resize_mode(const img_image *src, int mode, int size, int only_if_bigger, img_image *out,
                    wp_err *err)
{
    if (!src || !src->pixels || src->width <= 0 || src->height <= 0)
        return wp_err_set(err, WP_EINVAL, "resize: empty image");
    if (mode != IMG_RESIZE_NO && (size <= 0 || size > IMG_MAX_SIDE))
        return wp_err_set(err, WP_EINVAL, "resize: bad size %d", size);
    int w = src->width, h = src->height;
    int shorter = w < h ? w : h, longer = w < h ? h : w;
    int downscale = longer > size;
    if (mode == IMG_RESIZE_NO)
        return copy_image(src, out, err);
    if (only_if_bigger && !downscale) {
        if (mode == IMG_RESIZE_BORDER)
            return pad_black(src, size, out, err);
        return copy_image(src, out, err);
    }
    switch (mode) {
    case IMG_RESIZE_KEEP_RATIO:
        return resize_to(src, scaled(w, size, shorter), scaled(h, size, shorter), out, err);
    case IMG_RESIZE_KEEP_RATIO_LARGEST:
        return resize_to(src, scaled(w, size, longer), scaled(h, size, longer), out, err);
    case IMG_RESIZE_CENTER_CROP: {
        int nw = scaled(w, size, shorter), nh = scaled(h, size, shorter);
        int cw = nw < size ? nw : size, ch = nh < size ? nh : size;
        int left = (nw - cw) / 2, top = (nh - ch) / 2;
        if (nw == w && nh == h) {
            img_image o = {0};
            if (img_alloc(&o, cw, ch, src->channels))
                return wp_err_set(err, WP_ENOMEM, "resize: out of memory");
            for (int y = 0; y < ch; y++)
                memcpy(o.pixels + (size_t)y * o.stride,
                       src->pixels + (size_t)(y + top) * src->stride + (size_t)left * src->channels,
                       (size_t)cw * src->channels);
            *out = o;
            return 0;
        }
        return img_resize_bicubic_region(src, nw, nh, left, top, cw, ch, out, err);
    }
    case IMG_RESIZE_BORDER: {
        img_image mid = {0};
        int rc = resize_to(src, scaled(w, size, longer), scaled(h, size, longer), &mid, err);
        if (rc < 0)
            return rc;
        rc = pad_black(&mid, size, out, err);
        img_free(&mid);
        return rc;
    }
    default:
        return wp_err_set(err, WP_EINVAL, "resize: unknown mode %d", mode);
    }
}
