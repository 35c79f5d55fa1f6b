/*
 * image/resample.c: antialiased bicubic resampling with the arithmetic of
 * Pillow's ImagingResample (libImaging/Resample.c), so that results equal
 * PIL's Image.resize(size, BICUBIC) byte for byte:
 *  - the filter is Keys' cubic with a = -0.5 and support 2, widened by the
 *    downscale factor (antialiasing);
 *  - each output sample's weights are computed in double, normalised to
 *    sum 1, then rounded (half away from zero) to fixed point with
 *    PRECISION_BITS = 32 - 8 - 2 = 22 fractional bits;
 *  - the horizontal pass runs first and rounds/clips to uint8, then the
 *    vertical pass; a pass whose dimension does not change is skipped;
 *  - only the source rows the vertical pass needs go through the
 *    horizontal pass.
 * Also PIL's nearest-neighbour resize, used for palette images.
 *
 * Coefficient tables are built once per call; the inner loops are integer
 * multiply-adds over contiguous bytes with no allocation per row.
 */
#include "image/img_int.h"

/* The portable loops are written for the auto-vectoriser (-O2 in GCC 12
 * vectorises only the cheapest loops). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IMG_PRECISION_BITS (32 - 8 - 2)
/* Zero weights after the last table row, so that vector loops may read a
 * whole group of weights past any row. */
#define IMG_COEFF_PAD 8

static int force_scalar;

void img_resample_force_scalar(int on)
{
    force_scalar = on;
}

static int use_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return !force_scalar && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}
#define IMG_HALF (1 << (IMG_PRECISION_BITS - 1))

typedef struct coeffs {
    int ksize;   /* weights stored per output sample */
    int *bounds; /* per output sample: first input index, number of taps */
    int32_t *k;  /* fixed-point weights, ksize per output sample */
} coeffs;

static double bicubic(double x)
{
    /* Keys' cubic convolution with a = -0.5, evaluated as Pillow does */
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

/* Weights for output samples first .. first+count of resampling the
 * input span [in0, in1) of in_size samples to out_size (stored from index 0: a crop window costs
 * only its own tables, however large the full output would be). Returns 0 or WP_ENOMEM. */
static int coeffs_make(int in_size, float in0, float in1, int out_size, int first, int count,
                       coeffs *c)
{
    /* Pillow's precompute_coeffs: the box edges are floats */
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc((size_t)count * 2 * sizeof(int));
    c->k = calloc((size_t)count * (size_t)ksize + IMG_COEFF_PAD, sizeof(int32_t));
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!c->bounds || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return WP_ENOMEM;
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) /* cannot happen; keeps the table in bounds regardless */
            xmax = ksize;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = 0.0;
            if (x < xmax)
                v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << IMG_PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << IMG_PRECISION_BITS));
        }
        c->bounds[i * 2] = xmin;
        c->bounds[i * 2 + 1] = xmax;
    }
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t s)
{
    int32_t v = s >> IMG_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One row of the horizontal pass for output columns x0 .. x0+cw. C is a
 * literal at every call site so that the channel loop unrolls. */
static inline __attribute__((always_inline)) void hrow(const uint8_t *in, uint8_t *out, int x0,
                                                       int cw, const coeffs *c, const int C)
{
    for (int xx = 0; xx < cw; xx++) {
        int xmin = c->bounds[(xx + x0) * 2], n = c->bounds[(xx + x0) * 2 + 1];
        const int32_t *k = c->k + (size_t)(xx + x0) * c->ksize;
        const uint8_t *p = in + (size_t)xmin * C;
        int32_t s0 = IMG_HALF, s1 = IMG_HALF, s2 = IMG_HALF, s3 = IMG_HALF;
        for (int x = 0; x < n; x++, p += C) {
            s0 += p[0] * k[x];
            if (C > 1)
                s1 += p[1] * k[x];
            if (C > 2)
                s2 += p[2] * k[x];
            if (C > 3)
                s3 += p[3] * k[x];
        }
        uint8_t *o = out + (size_t)xx * C;
        o[0] = clip8(s0);
        if (C > 1)
            o[1] = clip8(s1);
        if (C > 2)
            o[2] = clip8(s2);
        if (C > 3)
            o[3] = clip8(s3);
    }
}

static void hpass(const uint8_t *in, size_t in_stride, int rows, int in_w, uint8_t *out,
                  size_t out_stride, int x0, int cw, const coeffs *c, int C)
{
    if (use_avx2()) {
        img_hpass_avx2(in, in_stride, rows, in_w, out, out_stride, x0, cw, c->bounds, c->k,
                       c->ksize, C);
        return;
    }
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = in + (size_t)y * in_stride;
        uint8_t *d = out + (size_t)y * out_stride;
        switch (C) {
        case 1:
            hrow(s, d, x0, cw, c, 1);
            break;
        case 2:
            hrow(s, d, x0, cw, c, 2);
            break;
        case 3:
            hrow(s, d, x0, cw, c, 3);
            break;
        default:
            hrow(s, d, x0, cw, c, 4);
            break;
        }
    }
}

/* The vertical pass for output rows y0 .. y0+ch; input row 0 of in is
 * source row `first`. acc holds one row of sums. */
static void vpass(const uint8_t *in, size_t in_stride, int first, uint8_t *out, size_t out_stride,
                  int y0, int ch, size_t rowbytes, const coeffs *c, int32_t *acc)
{
    for (int yy = 0; yy < ch; yy++) {
        int ymin = c->bounds[(yy + y0) * 2] - first, n = c->bounds[(yy + y0) * 2 + 1];
        const int32_t *k = c->k + (size_t)(yy + y0) * c->ksize;
        for (size_t i = 0; i < rowbytes; i++)
            acc[i] = IMG_HALF;
        for (int y = 0; y < n; y++) {
            const uint8_t *r = in + (size_t)(ymin + y) * in_stride;
            int32_t kk = k[y];
            for (size_t i = 0; i < rowbytes; i++)
                acc[i] += r[i] * kk;
        }
        uint8_t *d = out + (size_t)yy * out_stride;
        for (size_t i = 0; i < rowbytes; i++)
            d[i] = clip8(acc[i]);
    }
}

/* The window [x0, x0+cw) x [y0, y0+ch) of the source box b (x0, y0, x1,
 * y1 in source pixels, floats as in Pillow) resampled to w x h. */
static int resize_box(const img_image *src, const float b[4], int w, int h, int x0, int y0, int cw,
                      int ch, img_image *out, wp_err *err)
{
    int C = src->channels;
    if (w <= 0 || h <= 0 || cw <= 0 || ch <= 0 || x0 < 0 || y0 < 0 || x0 + cw > w || y0 + ch > h ||
        C < 1 || C > 4 || src->width <= 0 || src->height <= 0 || !(b[0] >= 0) || !(b[1] >= 0) ||
        !(b[2] <= (float)src->width) || !(b[3] <= (float)src->height) || !(b[2] > b[0]) ||
        !(b[3] > b[1]))
        return wp_err_set(err, WP_EINVAL, "resize: bad geometry %dx%d -> %dx%d [%d,%d %dx%d]",
                          src->width, src->height, w, h, x0, y0, cw, ch);
    /* as Pillow decides: a pass is skipped only when it would copy */
    int need_h = w != src->width || b[0] != 0 || b[2] != (float)w;
    int need_v = h != src->height || b[1] != 0 || b[3] != (float)h;
    coeffs hc = {0}, vc = {0};
    img_image o = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    int rc = 0;
    if (img_alloc(&o, cw, ch, C)) {
        rc = wp_err_set(err, WP_ENOMEM, "resize: out of memory for %dx%d", cw, ch);
        goto out;
    }
    if ((need_h && coeffs_make(src->width, b[0], b[2], w, x0, cw, &hc)) ||
        (need_v && coeffs_make(src->height, b[1], b[3], h, y0, ch, &vc))) {
        rc = wp_err_set(err, WP_ENOMEM, "resize: out of memory for coefficients");
        goto out;
    }
    /* Source rows the vertical pass reads (all of the window's rows when
     * there is no vertical pass). */
    int first = y0, last = y0 + ch;
    if (need_v) {
        first = vc.bounds[0];
        last = vc.bounds[(ch - 1) * 2] + vc.bounds[(ch - 1) * 2 + 1];
    }
    const uint8_t *mid;
    size_t mid_stride;
    if (need_h) {
        mid_stride = (size_t)cw * C;
        tmp = malloc(mid_stride * (size_t)(last - first));
        if (!tmp) {
            rc = wp_err_set(err, WP_ENOMEM, "resize: out of memory for %dx%d", cw, last - first);
            goto out;
        }
        hpass(src->pixels + (size_t)first * src->stride, src->stride, last - first, src->width, tmp,
              mid_stride, 0, cw, &hc, C);
        mid = tmp;
    } else {
        /* the window's columns, straight from the source */
        mid = src->pixels + (size_t)first * src->stride + (size_t)x0 * C;
        mid_stride = src->stride;
    }
    size_t rowbytes = (size_t)cw * C;
    if (need_v) {
        acc = malloc(rowbytes * sizeof(int32_t));
        if (!acc) {
            rc = wp_err_set(err, WP_ENOMEM, "resize: out of memory");
            goto out;
        }
        vpass(mid, mid_stride, first, o.pixels, o.stride, 0, ch, rowbytes, &vc, acc);
    } else {
        for (int y = 0; y < ch; y++)
            memcpy(o.pixels + (size_t)y * o.stride, mid + (size_t)y * mid_stride, rowbytes);
    }
    *out = o;
    o.pixels = NULL;
out:
    img_free(&o);
    coeffs_free(&hc);
    coeffs_free(&vc);
    free(tmp);
    free(acc);
    return rc;
}

int img_resize_bicubic_region(const img_image *src, int w, int h, int x0, int y0, int cw, int ch,
                              img_image *out, wp_err *err)
{
    const float b[4] = {0, 0, (float)src->width, (float)src->height};
    return resize_box(src, b, w, h, x0, y0, cw, ch, out, err);
}

int img_resize_bicubic(const img_image *src, int w, int h, img_image *out, wp_err *err)
{
    return img_resize_bicubic_region(src, w, h, 0, 0, w, h, out, err);
}

int img_resize_bicubic_box(const img_image *src, float x0, float y0, float x1, float y1, int w,
                           int h, img_image *out, wp_err *err)
{
    const float b[4] = {x0, y0, x1, y1};
    return resize_box(src, b, w, h, 0, 0, w, h, out, err);
}

/* Pillow's affine nearest (Geometry.c, ImagingScaleAffine): the source
 * coordinate of output x is (x + 0.5) * in / out, accumulated in double and
 * truncated. */
int img_resize_nearest(const img_image *src, int w, int h, img_image *out, wp_err *err)
{
    int C = src->channels;
    if (w <= 0 || h <= 0 || C < 1 || C > 4)
        return wp_err_set(err, WP_EINVAL, "resize: bad size %dx%d", w, h);
    img_image o = {0};
    int *xin = malloc((size_t)w * sizeof(int));
    if (!xin || img_alloc(&o, w, h, C)) {
        free(xin);
        return wp_err_set(err, WP_ENOMEM, "resize: out of memory for %dx%d", w, h);
    }
    double a0 = (double)src->width / w, a4 = (double)src->height / h;
    double xo = a0 * 0.5;
    for (int x = 0; x < w; x++, xo += a0) {
        int v = xo < 0.0 ? -1 : (int)xo;
        xin[x] = v < 0 ? 0 : v >= src->width ? src->width - 1 : v;
    }
    double yo = a4 * 0.5;
    for (int y = 0; y < h; y++, yo += a4) {
        int v = yo < 0.0 ? -1 : (int)yo;
        v = v < 0 ? 0 : v >= src->height ? src->height - 1 : v;
        const uint8_t *s = src->pixels + (size_t)v * src->stride;
        uint8_t *d = o.pixels + (size_t)y * o.stride;
        for (int x = 0; x < w; x++)
            memcpy(d + (size_t)x * C, s + (size_t)xin[x] * C, (size_t)C);
    }
    free(xin);
    *out = o;
    return 0;
}
