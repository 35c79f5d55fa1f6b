/*
 * dedup/phash.c: the 64-bit DCT perceptual hash of an image.
 *
 * The image goes to 8-bit grayscale as PIL's convert("L") does (ITU-R 601
 * luma in 16-bit fixed point), is resampled to 32 x 32 with PIL's bicubic
 * (img_resize_bicubic, byte-exact with PIL), and the 8 x 8 lowest
 * frequencies of its 2-D DCT-II are compared with their median: bit
 * 63 - (8u + v) is set when coefficient (u, v) is greater. The scale of
 * the DCT does not matter (only the comparison with the median does), so
 * the unnormalised cosine sums are used. This is imagehash.phash with
 * bicubic in place of Lanczos, which a test re-implements in Python.
 *
 * Hashing is cheap beside decoding, so dd_phash_bytes asks the JPEG
 * decoder for the smallest DCT scale that still gives 64 px a side (32
 * for the hash, and enough that a 5% margin is 3 whole pixels): a 256 px
 * stored image is decoded at 1/4 scale, which skips most of the IDCT.
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

/* RGB to PIL's "L": ITU-R 601 luma in 16-bit fixed point. */
static int to_gray(const img_image *im, img_image *gray, wp_err *err)
{
    int rc = img_alloc(gray, im->width, im->height, 1);
    if (rc != 0)
        return wp_err_set(err, rc, "phash: out of memory");
    for (int y = 0; y < im->height; y++) {
        const uint8_t *s = im->pixels + (size_t)y * im->stride;
        uint8_t *d = gray->pixels + (size_t)y * gray->stride;
        for (int x = 0; x < im->width; x++, s += 3)
            d[x] = (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
    }
    return 0;
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
    if ((rc = to_gray(im, &gray, err)) == 0)
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
                         .min_height = DD_PHASH_DECODE};
    img_image im = {0}, gray = {0};
    int rc = img_decode(data, n, &o, &im, err);
    if (rc != 0)
        return rc;
    if ((rc = to_gray(&im, &gray, err)) != 0 || (rc = hash_gray(&gray, full, err)) != 0)
        goto out;
    if (inner != NULL) {
        /* the centre, as a view into the same pixels */
        int dx = (int)(gray.width * DD_PHASH_CROP + 0.5);
        int dy = (int)(gray.height * DD_PHASH_CROP + 0.5);
        img_image in = gray;
        if (gray.width - 2 * dx >= 1 && gray.height - 2 * dy >= 1) {
            in.width = gray.width - 2 * dx;
            in.height = gray.height - 2 * dy;
            in.pixels = gray.pixels + (size_t)dy * gray.stride + (size_t)dx;
        }
        rc = hash_gray(&in, inner, err);
    }
out:
    img_free(&im);
    img_free(&gray);
    return rc;
}
