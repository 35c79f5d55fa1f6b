/*
 * image/decode.c: img_decode and what it is built from: the image buffer,
 * the size check made from the header before any pixel memory exists, the
 * per-format dispatch, PIL's conversions to RGB (gray expansion, CMYK,
 * alpha) and from RGB to gray, and EXIF orientation.
 */
#include "image/img_int.h"

#include <stdlib.h>
#include <string.h>

void img_free(img_image *im)
{
    if (!im)
        return;
    free(im->pixels);
    img_budget_release(im->budget);
    memset(im, 0, sizeof *im);
}

int img_alloc(img_image *im, int width, int height, int channels)
{
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || width > IMG_MAX_SIDE * 4 ||
        height > IMG_MAX_SIDE * 4)
        return WP_EINVAL;
    size_t stride = (size_t)width * (size_t)channels;
    uint8_t *p = malloc(stride * (size_t)height);
    if (!p)
        return WP_ENOMEM;
    img_adopt(im, width, height, channels, stride, p);
    return 0;
}

int img_mode_channels(int mode)
{
    switch (mode) {
    case IMG_MODE_L:
    case IMG_MODE_1:
        return 1;
    case IMG_MODE_LA:
        return 2;
    case IMG_MODE_RGB:
    case IMG_MODE_P:
        return 3;
    default: /* RGBA, CMYK, PA */
        return 4;
    }
}

int img_decode_native(const void *data, size_t n, int64_t max_pixels, int scale_denom, int gray,
                      const img_info *info, img_image *out, int *mode, wp_err *err)
{
    if (info->width <= 0 || info->height <= 0)
        return wp_err_set(err, IMG_ECORRUPT, "%s: no size in header",
                          img_format_name(info->format));
    /* Checked before any pixel memory is allocated: a 50-byte header may
     * claim 30000 x 30000 pixels. */
    int64_t px = (int64_t)info->width * info->height;
    if ((max_pixels > 0 && px > max_pixels) || info->width > IMG_MAX_SIDE ||
        info->height > IMG_MAX_SIDE)
        return wp_err_set(err, IMG_ETOOBIG, "%s: %dx%d is more than %lld pixels",
                          img_format_name(info->format), info->width, info->height,
                          (long long)(max_pixels > 0 ? max_pixels : (int64_t)IMG_MAX_SIDE));
    const uint8_t *p = data;
    switch (info->format) {
    case IMG_FMT_JPEG:
        return img_jpeg_decode_native(p, n, scale_denom, gray, out, mode, err);
    case IMG_FMT_PNG:
        return img_png_decode_native(p, n, out, mode, err);
    case IMG_FMT_WEBP:
        return img_webp_decode_native(p, n, out, mode, err);
    default:
        return wp_err_set(err, IMG_EUNSUPPORTED, "%s: not decoded", img_format_name(info->format));
    }
}

int img_to_gray(const img_image *rgb, img_image *out, wp_err *err)
{
    img_image g = {0};
    if (rgb == NULL || rgb->pixels == NULL || rgb->channels != 3)
        return wp_err_set(err, WP_EINVAL, "image: gray conversion needs RGB");
    if (img_alloc(&g, rgb->width, rgb->height, 1))
        return wp_err_set(err, WP_ENOMEM, "image: out of memory for %dx%d gray", rgb->width,
                          rgb->height);
    for (int y = 0; y < rgb->height; y++) {
        const uint8_t *s = rgb->pixels + (size_t)y * rgb->stride;
        uint8_t *d = g.pixels + (size_t)y * g.stride;
        for (int x = 0; x < rgb->width; x++, s += 3)
            d[x] = (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
    }
    *out = g;
    return 0;
}

/* Composites c over white with alpha a, rounded: c*a/255 + 255 - a. */
static inline uint8_t over_white(unsigned c, unsigned a)
{
    return (uint8_t)(img_muldiv255(c, a) + 255 - a);
}

int img_to_rgb(const img_image *src, int mode, int alpha, img_image *out, wp_err *err)
{
    img_image o = {0};
    if (img_alloc(&o, src->width, src->height, 3))
        return wp_err_set(err, WP_ENOMEM, "image: out of memory for %dx%d RGB", src->width,
                          src->height);
    int white = alpha == IMG_ALPHA_WHITE;
    for (int y = 0; y < src->height; y++) {
        const uint8_t *s = src->pixels + (size_t)y * src->stride;
        uint8_t *d = o.pixels + (size_t)y * o.stride;
        int w = src->width;
        switch (mode) {
        case IMG_MODE_L:
        case IMG_MODE_1:
            for (int x = 0; x < w; x++, d += 3)
                d[0] = d[1] = d[2] = s[x];
            break;
        case IMG_MODE_LA:
            for (int x = 0; x < w; x++, d += 3, s += 2)
                d[0] = d[1] = d[2] = white ? over_white(s[0], s[1]) : s[0];
            break;
        case IMG_MODE_RGB:
        case IMG_MODE_P:
            memcpy(d, s, (size_t)w * 3);
            break;
        case IMG_MODE_RGBA:
        case IMG_MODE_PA:
            for (int x = 0; x < w; x++, d += 3, s += 4) {
                if (white) {
                    d[0] = over_white(s[0], s[3]);
                    d[1] = over_white(s[1], s[3]);
                    d[2] = over_white(s[2], s[3]);
                } else {
                    d[0] = s[0];
                    d[1] = s[1];
                    d[2] = s[2];
                }
            }
            break;
        case IMG_MODE_CMYK:
            /* Pillow's cmyk2rgb (Convert.c): no colour management */
            for (int x = 0; x < w; x++, d += 3, s += 4) {
                int nk = 255 - s[3];
                for (int c = 0; c < 3; c++) {
                    int v = nk - (int)img_muldiv255(s[c], (unsigned)nk);
                    d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
            break;
        default:
            img_free(&o);
            return wp_err_set(err, WP_EINVAL, "image: unknown pixel mode %d", mode);
        }
    }
    *out = o;
    return 0;
}

int img_orient(const img_image *src, int orientation, img_image *out, wp_err *err)
{
    int W = src->width, H = src->height, C = src->channels;
    int swap = orientation >= 5 && orientation <= 8;
    img_image o = {0};
    if (img_alloc(&o, swap ? H : W, swap ? W : H, C))
        return wp_err_set(err, WP_ENOMEM, "image: out of memory for %dx%d", W, H);
    /* Output position of input (ix, iy) is linear: off0 + ix*dx + iy*dy
     * pixels, with the output row length ow. */
    ptrdiff_t ow = o.width, off0, dx, dy;
    switch (orientation) {
    case 2: /* mirror horizontally */
        off0 = W - 1, dx = -1, dy = ow;
        break;
    case 3: /* rotate 180 */
        off0 = (ptrdiff_t)(H - 1) * ow + W - 1, dx = -1, dy = -ow;
        break;
    case 4: /* mirror vertically */
        off0 = (ptrdiff_t)(H - 1) * ow, dx = 1, dy = -ow;
        break;
    case 5: /* transpose */
        off0 = 0, dx = ow, dy = 1;
        break;
    case 6: /* rotate 90 clockwise */
        off0 = H - 1, dx = ow, dy = -1;
        break;
    case 7: /* transverse */
        off0 = (ptrdiff_t)(W - 1) * ow + H - 1, dx = -ow, dy = -1;
        break;
    case 8: /* rotate 90 counter-clockwise */
        off0 = (ptrdiff_t)(W - 1) * ow, dx = -ow, dy = 1;
        break;
    default:
        off0 = 0, dx = 1, dy = ow;
        break;
    }
    for (int iy = 0; iy < H; iy++) {
        const uint8_t *s = src->pixels + (size_t)iy * src->stride;
        ptrdiff_t pos = off0 + (ptrdiff_t)iy * dy;
        for (int ix = 0; ix < W; ix++, pos += dx, s += C)
            memcpy(o.pixels + pos * C, s, (size_t)C);
    }
    *out = o;
    return 0;
}

/* The largest DCT scale denominator (1, 2, 4, 8) that keeps both decoded
 * sides >= the requested minimum. */
static int pick_scale(const img_info *in, const img_decode_opts *opts)
{
    if (in->format != IMG_FMT_JPEG || (opts->min_width <= 0 && opts->min_height <= 0))
        return 1;
    int w = in->width, h = in->height;
    if (opts->apply_exif && in->orientation >= 5) {
        int t = w;
        w = h;
        h = t;
    }
    int best = 1;
    for (int d = 2; d <= 8; d *= 2) {
        int sw = (w + d - 1) / d, sh = (h + d - 1) / d;
        if (sw >= opts->min_width && sh >= opts->min_height)
            best = d;
    }
    return best;
}

int img_decode(const void *data, size_t n, const img_decode_opts *opts, img_image *out, wp_err *err)
{
    static const img_decode_opts defaults = {.apply_exif = 1, .alpha = IMG_ALPHA_WHITE};
    if (!opts)
        opts = &defaults;
    img_info info;
    int rc = img_probe(data, n, &info, err);
    if (rc < 0)
        return rc;
    img_image nat = {0}, rgb = {0};
    int mode = 0, scale = pick_scale(&info, opts);
    int64_t px = (int64_t)info.width * info.height, charge = 0;
    /* charge the budget only for what the size check will let through */
    if (info.width > 0 && info.height > 0 && info.width <= IMG_MAX_SIDE &&
        info.height <= IMG_MAX_SIDE && (opts->max_pixels <= 0 || px <= opts->max_pixels)) {
        charge = (int64_t)((info.width + scale - 1) / scale) * ((info.height + scale - 1) / scale) *
                 IMG_BUDGET_PER_PIXEL;
        if ((rc = img_budget_acquire(charge, img_format_name(info.format), err)) != 0)
            return rc;
    }
    rc = img_decode_native(data, n, opts->max_pixels, scale, opts->gray, &info, &nat, &mode, err);
    if (rc < 0) {
        img_budget_release(charge);
        return rc;
    }
    if (mode == IMG_MODE_RGB || mode == IMG_MODE_P ||
        (opts->gray && (mode == IMG_MODE_L || mode == IMG_MODE_1))) {
        rgb = nat; /* already what we hand out */
        nat.pixels = NULL;
    } else {
        rc = img_to_rgb(&nat, mode, opts->alpha, &rgb, err);
        img_free(&nat);
        if (rc < 0) {
            img_budget_release(charge);
            return rc;
        }
    }
    if (opts->gray && rgb.channels == 3) {
        img_image g;
        rc = img_to_gray(&rgb, &g, err);
        img_free(&rgb);
        if (rc < 0) {
            img_budget_release(charge);
            return rc;
        }
        rgb = g;
    }
    if (opts->apply_exif && info.orientation > 1) {
        img_image o;
        rc = img_orient(&rgb, info.orientation, &o, err);
        img_free(&rgb);
        if (rc < 0) {
            img_budget_release(charge);
            return rc;
        }
        rgb = o;
    }
    /* the result keeps its own bytes charged until img_free */
    int64_t keep = (int64_t)rgb.stride * rgb.height;
    if (keep > charge)
        keep = charge;
    img_budget_release(charge - keep);
    rgb.budget = keep;
    *out = rgb;
    return 0;
}
