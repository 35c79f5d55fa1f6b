/*
 * dedup/phash.c: the 64-bit DCT perceptual hash of an image.
 *
 * The image goes to 8-bit grayscale as PIL's convert("L") does (ITU-R 601
 * luma in 16-bit fixed point, img_to_gray), is resampled to 32 x 32 with PIL's bicubic
 * (img_resize_bicubic, byte-exact with PIL), and the 8 x 8 lowest
 * frequencies of its 2-D DCT-II are compared with their median: bit
 * 63 - (8u + v) is set when coefficient (u, v) is greater. The scale of
 * the DCT does not matter (only the comparison with the median does), so
 * the unnormalised cosine sums are used. This is imagehash.phash with
 * bicubic in place of Lanczos, which a test re-implements in Python.
 *
 * Hashing is cheap beside decoding, so dd_phash_bytes asks the JPEG
 * decoder for gray (libjpeg hands over the stored luma, skipping the
 * chroma IDCT, upsampling and colour conversion; within a rounding step
 * of convert("L"), and what PIL's draft("L") gives) at the smallest DCT
 * scale that still gives 32 px a side: a 256 px stored image is decoded
 * at 1/8 scale, the DC coefficients alone, and is already 32 x 32. The
 * centre hash resamples the fractional box 5% in from each side (PIL's
 * resize with box=), so it means the same at any decoded size.
 */
#include "dedup/dedup.h"
#include "image/image.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 32
#define LOW  8

/* cos(pi k (2n + 1) / 64) for n < 32, k < 8 (k innermost: the loops
 * below run over k, which the compiler vectorises). */
static double dct_tab[SIDE][LOW];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int n = 0; n < SIDE; n++)
        for (int k = 0; k < LOW; k++)
            dct_tab[n][k] = cos(M_PI * k * (2 * n + 1) / (2.0 * SIDE));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The hash of a 32 x 32 gray image (stride bytes per row). */
static uint64_t hash_gray32(const uint8_t *g, size_t stride)
{
    double rows[SIDE][LOW]; /* DCT along each row: rows[y][v] */
    double f[LOW * LOW], sorted[LOW * LOW], med;
    uint64_t h = 0;

    pthread_once(&tab_once, tab_init);
    for (int y = 0; y < SIDE; y++) {
        const uint8_t *p = g + (size_t)y * stride;
        double acc[LOW] = {0};
        for (int x = 0; x < SIDE; x++)
            for (int v = 0; v < LOW; v++)
                acc[v] += dct_tab[x][v] * p[x];
        memcpy(rows[y], acc, sizeof acc);
    }
    for (int u = 0; u < LOW; u++) {
        double acc[LOW] = {0};
        for (int y = 0; y < SIDE; y++)
            for (int v = 0; v < LOW; v++)
                acc[v] += dct_tab[y][u] * rows[y][v];
        for (int v = 0; v < LOW; v++)
            f[u * LOW + v] = sorted[u * LOW + v] = acc[v];
    }
    qsort(sorted, LOW * LOW, sizeof sorted[0], cmp_double);
    med = (sorted[LOW * LOW / 2 - 1] + sorted[LOW * LOW / 2]) / 2;
    for (int i = 0; i < LOW * LOW; i++)
        if (f[i] > med)
            h |= (uint64_t)1 << (63 - i);
    return h;
}

/* The hash of a gray image of any size (resampled to 32 x 32). */
static int hash_gray(const img_image *g, uint64_t *out, wp_err *err)
{
    img_image small = {0};
    int rc;
    if (g->width == SIDE && g->height == SIDE) {
        *out = hash_gray32(g->pixels, g->stride);
        return 0;
    }
    if ((rc = img_resize_bicubic(g, SIDE, SIDE, &small, err)) != 0)
        return rc;
    *out = hash_gray32(small.pixels, small.stride);
    img_free(&small);
    return 0;
}

int dd_phash_image(const img_image *im, uint64_t *out, wp_err *err)
{
    img_image gray = {0};
    int rc;

    if (im == NULL || im->pixels == NULL || im->width < 1 || im->height < 1 ||
        (im->channels != 1 && im->channels != 3))
        return wp_err_set(err, WP_EINVAL, "phash: needs a gray or RGB image");
    if (im->channels == 1)
        return hash_gray(im, out, err);
    if ((rc = img_to_gray(im, &gray, err)) == 0)
        rc = hash_gray(&gray, out, err);
    img_free(&gray);
    return rc;
}

int dd_phash_bytes(const void *data, size_t n, uint64_t *full, uint64_t *inner, wp_err *err)
{
    img_decode_opts o = {.apply_exif = 1,
                         .alpha = IMG_ALPHA_WHITE,
                         .max_pixels = (int64_t)2 * 89478485,
                         .min_width = DD_PHASH_DECODE,
                         .min_height = DD_PHASH_DECODE,
                         .gray = 1};
    img_image gray = {0};
    int rc = img_decode(data, n, &o, &gray, err);
    if (rc != 0)
        return rc;
    if ((rc = hash_gray(&gray, full, err)) != 0)
        goto out;
    if (inner != NULL) {
        /* the centre: the box DD_PHASH_CROP in from each side, in
         * fractional pixels (at 32 px a side 5% is 1.6 px), resampled
         * straight to 32 x 32 as PIL's resize(box=...) does */
        double w = gray.width, h = gray.height;
        img_image small = {0};
        if ((rc = img_resize_bicubic_box(&gray, (float)(w * DD_PHASH_CROP),
                                         (float)(h * DD_PHASH_CROP), (float)(w - w * DD_PHASH_CROP),
                                         (float)(h - h * DD_PHASH_CROP), SIDE, SIDE, &small,
                                         err)) != 0)
            goto out;
        *inner = hash_gray32(small.pixels, small.stride);
        img_free(&small);
    }
out:
    img_free(&gray);
    return rc;
}
