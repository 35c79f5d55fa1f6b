/*
 * image/img_int.h: internals shared by the files of the image module
 * (byte readers, per-format decoders, the resampler's mode-aware entry
 * points and PIL's pixel conversions). Not for use outside image/.
 */
#ifndef IMG_INT_H
#define IMG_INT_H

#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/* Largest side any decoder accepts, whatever max_pixels says: keeps every
 * size computation (w * h * 4) far from overflow. */
#define IMG_MAX_SIDE 65535

static inline uint32_t img_be16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}
static inline uint32_t img_le16(const uint8_t *p)
{
    return ((uint32_t)p[1] << 8) | p[0];
}
static inline uint32_t img_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t img_le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
static inline uint32_t img_le24(const uint8_t *p)
{
    return ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* PIL's MULDIV255: a * b / 255 rounded, in integers (Pillow ImagingUtils.h). */
static inline unsigned img_muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* What a decoder hands back: pixels in the image's own "PIL mode". */
enum img_mode {
    IMG_MODE_L = 1,    /* gray */
    IMG_MODE_LA = 2,   /* gray + alpha (straight) */
    IMG_MODE_RGB = 3,  /* RGB */
    IMG_MODE_RGBA = 4, /* RGB + alpha (straight) */
    IMG_MODE_CMYK = 5, /* PIL's CMYK (already inverted the Adobe way) */
    IMG_MODE_P = 6,    /* palette image expanded to RGB: PIL resizes it NEAREST */
    IMG_MODE_PA = 7,   /* palette image with tRNS, expanded to RGBA */
    IMG_MODE_1 = 8,    /* 1-bit gray as 0/255: PIL's "1", also resized NEAREST */
};

/* Fills out with the w x h image of ch channels in pix (stride bytes a
 * row); out owns pix from then on. */
static inline void img_adopt(img_image *out, int w, int h, int ch, size_t stride, uint8_t *pix)
{
    out->width = w;
    out->height = h;
    out->channels = ch;
    out->stride = stride;
    out->pixels = pix;
}

/* Channels stored per pixel for a mode. */
int img_mode_channels(int mode);

/* Per-format decoders to the image's native mode. scale_denom is 1, 2, 4
 * or 8 and gray (1: a gray, YCbCr or RGB JPEG comes out as mode L, its
 * luma) is for JPEG only; others ignore both. Size limits were already checked by
 * the caller from the probe. On error out is untouched. */
int img_jpeg_decode_native(const uint8_t *data, size_t n, int scale_denom, int gray, img_image *out,
                           int *mode, wp_err *err);
int img_png_decode_native(const uint8_t *data, size_t n, img_image *out, int *mode, wp_err *err);
int img_webp_decode_native(const uint8_t *data, size_t n, img_image *out, int *mode, wp_err *err);

/* Decodes data, already probed into info (img_probe returned 0), to its
 * native mode after checking the header's size against max_pixels (0 = no
 * limit) and IMG_MAX_SIDE. scale_denom and gray as above. */
int img_decode_native(const void *data, size_t n, int64_t max_pixels, int scale_denom, int gray,
                      const img_info *info, img_image *out, int *mode, wp_err *err);

/* Converts a native-mode image to RGB in place of out (new buffer).
 * alpha is enum img_alpha. */
int img_to_rgb(const img_image *src, int mode, int alpha, img_image *out, wp_err *err);

/* Applies an EXIF orientation (1..8) into a new image. */
int img_orient(const img_image *src, int orientation, img_image *out, wp_err *err);

/* The window [x0, x0+cw) x [y0, y0+ch) of img_resize_bicubic(src, w, h):
 * the same bytes, computing only what the window needs (CLIP's centre
 * crop). out is a new cw x ch image. Returns 0, WP_EINVAL or WP_ENOMEM. */
int img_resize_bicubic_region(const img_image *src, int w, int h, int x0, int y0, int cw, int ch,
                              img_image *out, wp_err *err);

/* AVX2 inner loops of the resampler (resample_avx2.c), same bytes as the
 * scalar ones. in_w is the source width (bounds the 8-byte loads). */
void img_hpass_avx2(const uint8_t *in, size_t in_stride, int rows, int in_w, uint8_t *out,
                    size_t out_stride, int x0, int cw, const int *bounds, const int32_t *kk,
                    int ksize, int C);
void img_vpass_avx2(const uint8_t *in, size_t in_stride, int first, uint8_t *out, size_t out_stride,
                    int y0, int ch, size_t rowbytes, const int *bounds, const int32_t *kk,
                    int ksize);
/* Tests: 1 forces the portable loops even on an AVX2 CPU. Not thread-safe;
 * set before resampling starts. */
void img_resample_force_scalar(int on);

/* PIL's nearest-neighbour resize (Image.resize(NEAREST)), used for palette
 * images, which PIL never resamples with a filter. */
int img_resize_nearest(const img_image *src, int w, int h, img_image *out, wp_err *err);

/* Bytes charged per decoded pixel while a decode runs (native up to 4
 * channels, RGB conversion 3, orientation 3, and a byte of slack). */
#define IMG_BUDGET_PER_PIXEL 11
/* Charges bytes to the decode budget, waiting while other decodes hold it.
 * Returns 0, or IMG_ETOOBIG (naming what) when bytes alone exceed it. */
int img_budget_acquire(int64_t bytes, const char *what, wp_err *err);
void img_budget_release(int64_t bytes);

#endif /* IMG_INT_H */
