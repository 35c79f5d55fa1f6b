/*
 * tests/unit/test_image.c: the image module: probing every test image,
 * decoding (modes, EXIF rotation, DCT scaling, truncation, pixel bombs,
 * hostile bytes), PNG colour types made here with libspng's encoder,
 * img2dataset resize modes, JPEG encode round trips, and CLIP
 * preprocessing against the golden PIL output in ../shared.
 *
 * Test images are read from tests/data/images (copied from
 * ../shared/testdata/images), else from ../shared. Without ../shared the
 * tests that need it SKIP loudly; with ../shared, a missing image FAILS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "image/image.h"
#include "image/img_int.h"
#include "tests/lib/testlib.h"

#include <jpeglib.h>
#include <pthread.h>
#include <math.h>
#include <spng.h>
#include <webp/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads a test image from tests/data/images, else ../shared. NULL after a
 * loud SKIP line only when ../shared is absent altogether; when ../shared
 * is there and the image is in neither place, the test FAILS: a missing
 * expected image is a broken checkout, not a reason to test less. */
static uint8_t *load_image(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/images/%s", name);
    uint8_t *b = (uint8_t *)tl_slurp(path, n);
    if (b)
        return b;
    snprintf(path, sizeof path, "testdata/images/%s", name);
    const char *p = tl_shared_path(path);
    if (p == NULL) {
        printf("SKIP: test image %s not found (tests/data/images or ../shared)\n", name);
        return NULL;
    }
    b = (uint8_t *)tl_slurp(p, n);
    if (b == NULL)
        fail_msg("test image %s missing: not in tests/data/images nor at %s", name, p);
    return b;
}

#define LOAD_OR_SKIP(var, n, name)                                                                 \
    size_t n;                                                                                      \
    uint8_t *var = load_image(name, &n);                                                           \
    if (!var) {                                                                                    \
        skip();                                                                                    \
        return;                                                                                    \
    }

typedef struct expect_probe {
    const char *file;
    int format, w, h, ch, cmyk, alpha, progressive, orientation, adobe;
} expect_probe;

static const expect_probe k_images[] = {
    {"astronaut.jpg", IMG_FMT_JPEG, 512, 512, 3, 0, 0, 0, 1, -1},
    {"astronaut_444.jpg", IMG_FMT_JPEG, 512, 512, 3, 0, 0, 0, 1, -1},
    {"camera_gray.jpg", IMG_FMT_JPEG, 512, 512, 1, 0, 0, 0, 1, -1},
    {"chelsea.jpg", IMG_FMT_JPEG, 451, 300, 3, 0, 0, 0, 1, -1},
    {"chelsea.webp", IMG_FMT_WEBP, 451, 300, 3, 0, 0, 0, 1, -1},
    {"chelsea_cmyk.jpg", IMG_FMT_JPEG, 451, 300, 4, 1, 0, 0, 1, 0},
    {"chelsea_exif_rot90.jpg", IMG_FMT_JPEG, 451, 300, 3, 0, 0, 0, 6, -1},
    {"coffee_progressive.jpg", IMG_FMT_JPEG, 600, 400, 3, 0, 0, 1, 1, -1},
    {"hubble_deep_field.jpg", IMG_FMT_JPEG, 1000, 872, 3, 0, 0, 0, 1, 1},
    {"logo_rgba.png", IMG_FMT_PNG, 500, 500, 4, 0, 1, 0, 1, -1},
    {"motorcycle.png", IMG_FMT_PNG, 741, 500, 3, 0, 0, 0, 1, -1},
    {"panorama_4to1.jpg", IMG_FMT_JPEG, 600, 150, 3, 0, 0, 0, 1, -1},
    {"rocket.jpg", IMG_FMT_JPEG, 640, 427, 3, 0, 0, 0, 1, -1},
    {"tiny_48.jpg", IMG_FMT_JPEG, 48, 48, 3, 0, 0, 0, 1, -1},
};
#define N_IMAGES (sizeof k_images / sizeof k_images[0])

static void test_probe_every_test_image(void **state)
{
    int seen = 0;
    for (size_t i = 0; i < N_IMAGES; i++) {
        const expect_probe *x = &k_images[i];
        size_t n;
        uint8_t *b = load_image(x->file, &n);
        if (!b)
            continue;
        img_info in;
        wp_err e = {0};
        assert_int_equal(img_probe(b, n, &in, &e), 0);
        assert_int_equal(in.format, x->format);
        assert_int_equal(in.width, x->w);
        assert_int_equal(in.height, x->h);
        assert_int_equal(in.channels, x->ch);
        assert_int_equal(in.cmyk, x->cmyk);
        assert_int_equal(in.has_alpha, x->alpha);
        assert_int_equal(in.progressive, x->progressive);
        assert_int_equal(in.orientation, x->orientation);
        assert_int_equal(in.adobe, x->adobe);
        free(b);
        seen++;
    }
    if (seen == 0)
        skip();
}

static void test_probe_recognises_other_formats(void **state)
{
    img_info in;
    wp_err e = {0};
    const char *html = "<!DOCTYPE html><html><body>404 Not Found</body></html>";
    assert_int_equal(img_probe(html, strlen(html), &in, &e), IMG_ENOTIMAGE);
    const char *inline_svg = "<!doctype html>\n<title>x</title><svg width=\"10\"></svg>";
    assert_int_equal(img_probe(inline_svg, strlen(inline_svg), &in, &e), IMG_ENOTIMAGE);
    const char *text = "just some text";
    assert_int_equal(img_probe(text, strlen(text), &in, &e), IMG_ENOTIMAGE);
    assert_int_equal(img_probe("", 0, &in, &e), IMG_ENOTIMAGE);
    const char *svg =
        "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    assert_int_equal(img_probe(svg, strlen(svg), &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.format, IMG_FMT_SVG);
    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x40, 0x01, 0xF0, 0x00, 0, 0, 0};
    assert_int_equal(img_probe(gif, sizeof gif, &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.format, IMG_FMT_GIF);
    assert_int_equal(in.width, 320);
    assert_int_equal(in.height, 240);
    uint8_t bmp[54] = {'B', 'M'};
    bmp[10] = 54;
    bmp[18] = 10;                                       /* width 10 */
    bmp[22] = 0xF6, bmp[23] = bmp[24] = bmp[25] = 0xFF; /* height -10: top-down */
    assert_int_equal(img_probe(bmp, sizeof bmp, &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.format, IMG_FMT_BMP);
    assert_int_equal(in.height, 10);
    const uint8_t tiff[] = {'M', 'M', 0, 42, 0, 0, 0, 8};
    assert_int_equal(img_probe(tiff, sizeof tiff, &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.format, IMG_FMT_TIFF);
    const uint8_t avif[] = {0, 0, 0, 24, 'f', 't', 'y', 'p', 'm', 'i', 'f', '1',
                            0, 0, 0, 0,  'm', 'i', 'f', '1', 'a', 'v', 'i', 'f'};
    assert_int_equal(img_probe(avif, sizeof avif, &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.format, IMG_FMT_AVIF);
    assert_string_equal(img_format_ext(IMG_FMT_JPEG), "jpg");
    assert_string_equal(img_format_name(IMG_FMT_WEBP), "webp");
}

/* A minimal JPEG header: SOI, optional APP1 EXIF with orientation in the
 * given byte order, SOF0 of w x h with 3 components. No scan data. */
static size_t make_jpeg_header(uint8_t *p, int w, int h, int orientation, int big_endian)
{
    size_t o = 0;
    p[o++] = 0xFF, p[o++] = 0xD8;
    if (orientation) {
        /* TIFF header, IFD0 at 8 with one entry: tag 0x0112 SHORT count 1 */
        static const uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                                     0,   1,   0,  0, 0, 0, 0, 0, 0, 0, 0,    0,    0};
        static const uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0,
                                     3,   0,   0, 0,  1, 0, 0, 0, 0, 0, 0,    0,    0};
        uint8_t t[sizeof le];
        memcpy(t, big_endian ? be : le, sizeof t);
        t[big_endian ? 19 : 18] = (uint8_t)orientation; /* value, left-justified */
        size_t len = 2 + 6 + sizeof t;
        p[o++] = 0xFF, p[o++] = 0xE1, p[o++] = (uint8_t)(len >> 8), p[o++] = (uint8_t)len;
        memcpy(p + o, "Exif\0\0", 6);
        o += 6;
        memcpy(p + o, t, sizeof t);
        o += sizeof t;
    }
    const uint8_t sof[] = {0xFF,       0xC0,
                           0,          17,
                           8,          (uint8_t)(h >> 8),
                           (uint8_t)h, (uint8_t)(w >> 8),
                           (uint8_t)w, 3,
                           1,          0x22,
                           0,          2,
                           0x11,       1,
                           3,          0x11,
                           1};
    memcpy(p + o, sof, sizeof sof);
    return o + sizeof sof;
}

static void test_probe_exif_both_byte_orders(void **state)
{
    uint8_t buf[256];
    img_info in;
    wp_err e = {0};
    for (int be = 0; be <= 1; be++) {
        for (int o = 1; o <= 8; o++) {
            size_t n = make_jpeg_header(buf, 640, 480, o, be);
            assert_int_equal(img_probe(buf, n, &in, &e), 0);
            assert_int_equal(in.orientation, o);
            assert_int_equal(in.width, 640);
            assert_int_equal(in.height, 480);
        }
    }
}

static void test_probe_refuses_12bit_and_lossless_jpeg(void **state)
{
    uint8_t buf[256];
    size_t n = make_jpeg_header(buf, 64, 48, 0, 0);
    img_info in;
    wp_err e = {0};
    assert_int_equal(img_probe(buf, n, &in, &e), 0);
    buf[n - 15] = 12; /* sample precision */
    assert_int_equal(img_probe(buf, n, &in, &e), IMG_EUNSUPPORTED);
    assert_int_equal(in.width, 64);
    buf[n - 15] = 8;
    buf[n - 18] = 0xC3; /* lossless */
    assert_int_equal(img_probe(buf, n, &in, &e), IMG_EUNSUPPORTED);
    buf[n - 18] = 0xC2; /* progressive is fine */
    assert_int_equal(img_probe(buf, n, &in, &e), 0);
    assert_int_equal(in.progressive, 1);
    img_image im = {0};
    buf[n - 18] = 0xC3;
    assert_int_equal(img_decode(buf, n, NULL, &im, &e), IMG_EUNSUPPORTED);
}

static void test_probe_truncated_header_names_offset(void **state)
{
    uint8_t buf[256];
    size_t n = make_jpeg_header(buf, 640, 480, 6, 0);
    img_info in;
    wp_err e = {0};
    for (size_t cut = 2; cut < n - 9; cut++) /* SOF sizes need 10 bytes */ {
        int rc = img_probe(buf, cut, &in, &e);
        assert_int_equal(rc, IMG_ECORRUPT);
        assert_non_null(strstr(e.msg, "byte"));
    }
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H'};
    assert_int_equal(img_probe(png, sizeof png, &in, &e), IMG_ECORRUPT);
    assert_non_null(strstr(e.msg, "byte 14"));
    const uint8_t webp[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8'};
    assert_int_equal(img_probe(webp, sizeof webp, &in, &e), IMG_ECORRUPT);
    assert_non_null(strstr(e.msg, "byte"));
}

static void test_decode_every_test_image(void **state)
{
    int seen = 0;
    for (size_t i = 0; i < N_IMAGES; i++) {
        const expect_probe *x = &k_images[i];
        size_t n;
        uint8_t *b = load_image(x->file, &n);
        if (!b)
            continue;
        img_decode_opts o = {.apply_exif = 1, .alpha = IMG_ALPHA_WHITE};
        img_image im = {0};
        wp_err e = {0};
        int rc = img_decode(b, n, &o, &im, &e);
        if (rc != 0)
            printf("%s: %s\n", x->file, e.msg);
        assert_int_equal(rc, 0);
        int swap = x->orientation >= 5;
        assert_int_equal(im.width, swap ? x->h : x->w);
        assert_int_equal(im.height, swap ? x->w : x->h);
        assert_int_equal(im.channels, 3);
        assert_int_equal(im.stride, (size_t)im.width * 3);
        /* photos are not flat: the first row must vary */
        int varies = 0;
        for (int xx = 1; xx < im.width && !varies; xx++)
            varies = memcmp(im.pixels, im.pixels + xx * 3, 3) != 0;
        assert_true(varies || x->alpha);
        img_free(&im);
        free(b);
        seen++;
    }
    if (seen == 0)
        skip();
}

/* Mean absolute difference between two same-size RGB images. */
static double mean_abs_diff(const img_image *a, const img_image *b)
{
    double s = 0;
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width * 3; x++)
            s += abs(a->pixels[(size_t)y * a->stride + x] - b->pixels[(size_t)y * b->stride + x]);
    return s / ((double)a->width * a->height * 3);
}

static int decode_file(const char *name, const img_decode_opts *o, img_image *im)
{
    size_t n;
    uint8_t *b = load_image(name, &n);
    if (!b)
        return -1000;
    wp_err e = {0};
    int rc = img_decode(b, n, o, im, &e);
    free(b);
    return rc;
}

static void test_decode_gray_cmyk_webp_agree_with_rgb(void **state)
{
    img_decode_opts o = {.apply_exif = 1};
    img_image ref = {0}, cmyk = {0}, webp = {0}, gray = {0};
    if (decode_file("chelsea.jpg", &o, &ref) == -1000 ||
        decode_file("chelsea_cmyk.jpg", &o, &cmyk) == -1000 ||
        decode_file("chelsea.webp", &o, &webp) == -1000 ||
        decode_file("camera_gray.jpg", &o, &gray) == -1000) {
        img_free(&ref), img_free(&cmyk), img_free(&webp), img_free(&gray);
        skip();
        return;
    }
    /* the same photo through CMYK (PIL's inverted CMYK + cmyk2rgb) and
     * through lossy WebP stays close to the RGB JPEG */
    double dc = mean_abs_diff(&ref, &cmyk), dw = mean_abs_diff(&ref, &webp);
    printf("chelsea: mean |rgb - cmyk| = %.2f, |rgb - webp| = %.2f\n", dc, dw);
    assert_true(dc < 6.0);
    assert_true(dw < 6.0);
    /* grayscale expands to R = G = B */
    for (size_t i = 0; i < (size_t)gray.width * gray.height; i++) {
        assert_int_equal(gray.pixels[i * 3], gray.pixels[i * 3 + 1]);
        assert_int_equal(gray.pixels[i * 3], gray.pixels[i * 3 + 2]);
    }
    img_free(&ref), img_free(&cmyk), img_free(&webp), img_free(&gray);
}

static uint8_t *encode_png(int ct, int depth, int w, int h, const uint8_t *px, size_t pxlen,
                           const uint8_t *plte, int nplte, const uint8_t *alpha, size_t *outlen);

/* Encodes 4-component data as a JPEG in the given colour space (JCS_CMYK
 * or JCS_YCCK); libjpeg writes the Adobe marker. malloc'ed result. */
static unsigned char *encode_cmyk(const uint8_t *px, int w, int h, J_COLOR_SPACE cs,
                                  unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, cs);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * w * 4);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return mem;
}

static void test_decode_adobe_cmyk_and_ycck(void **state)
{
    /* Adobe CMYK is stored inverted: stored (R, G, B, 255) is C = 255 - R,
     * K = 0, which PIL's CMYK;I + cmyk2rgb turns back into (R, G, B) */
    img_image ref = {0};
    img_decode_opts o = {.apply_exif = 0};
    if (decode_file("chelsea.jpg", &o, &ref) == -1000) {
        skip();
        return;
    }
    int w = ref.width, h = ref.height;
    uint8_t *px = malloc((size_t)w * h * 4);
    assert_non_null(px);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        memcpy(px + i * 4, ref.pixels + i * 3, 3);
        px[i * 4 + 3] = 255;
    }
    J_COLOR_SPACE spaces[] = {JCS_CMYK, JCS_YCCK};
    for (int s = 0; s < 2; s++) {
        unsigned long len = 0;
        unsigned char *jpg = encode_cmyk(px, w, h, spaces[s], &len);
        img_info in;
        wp_err e = {0};
        assert_int_equal(img_probe(jpg, len, &in, &e), 0);
        assert_int_equal(in.cmyk, 1);
        assert_int_equal(in.adobe, s == 0 ? 0 : 2);
        img_image im = {0};
        assert_int_equal(img_decode(jpg, len, &o, &im, &e), 0);
        double d = mean_abs_diff(&ref, &im);
        printf("%s JPEG: mean |rgb - decoded| = %.2f\n", s ? "YCCK" : "CMYK", d);
        assert_true(d < 3.0);
        img_free(&im);
        free(jpg);
    }
    free(px);
    img_free(&ref);
}

static void test_decode_alpha_white_and_drop(void **state)
{
    /* RGBA pixels: transparent, half, opaque */
    const uint8_t rgba[] = {10, 20, 30, 0, 200, 100, 0, 128, 1, 2, 3, 255};
    size_t n;
    uint8_t *png = encode_png(6, 8, 3, 1, rgba, sizeof rgba, NULL, 0, NULL, &n);
    img_image white = {0}, drop = {0};
    img_decode_opts ow = {.alpha = IMG_ALPHA_WHITE}, od = {.alpha = IMG_ALPHA_DROP};
    wp_err e = {0};
    assert_int_equal(img_decode(png, n, &ow, &white, &e), 0);
    assert_int_equal(img_decode(png, n, &od, &drop, &e), 0);
    /* white: c * a / 255 + 255 - a, rounded */
    const uint8_t want_white[] = {255, 255, 255, 227, 177, 127, 1, 2, 3};
    const uint8_t want_drop[] = {10, 20, 30, 200, 100, 0, 1, 2, 3};
    assert_memory_equal(white.pixels, want_white, 9);
    assert_memory_equal(drop.pixels, want_drop, 9);
    img_free(&white), img_free(&drop);
    free(png);
    /* the bundled RGBA logo is opaque: both policies give its colours */
    LOAD_OR_SKIP(b, bn, "logo_rgba.png");
    img_image nat = {0};
    int mode;
    img_info info;
    assert_int_equal(img_probe(b, bn, &info, &e), 0);
    assert_int_equal(img_decode_native(b, bn, 0, 1, 0, &info, &nat, &mode, &e), 0);
    assert_int_equal(mode, IMG_MODE_RGBA);
    assert_int_equal(img_decode(b, bn, &ow, &white, &e), 0);
    assert_int_equal(img_decode(b, bn, &od, &drop, &e), 0);
    for (size_t i = 0; i < (size_t)nat.width * nat.height; i += 97)
        for (int c = 0; c < 3; c++) {
            assert_int_equal(drop.pixels[i * 3 + c], nat.pixels[i * 4 + c]);
            assert_int_equal(white.pixels[i * 3 + c], nat.pixels[i * 4 + c]);
        }
    img_free(&nat), img_free(&white), img_free(&drop);
    free(b);
}

static void test_exif_rotation_swaps_dimensions(void **state)
{
    LOAD_OR_SKIP(b, n, "chelsea_exif_rot90.jpg");
    img_image raw = {0}, rot = {0};
    img_decode_opts no = {.apply_exif = 0}, yes = {.apply_exif = 1};
    wp_err e = {0};
    assert_int_equal(img_decode(b, n, &no, &raw, &e), 0);
    assert_int_equal(img_decode(b, n, &yes, &rot, &e), 0);
    assert_int_equal(raw.width, 451);
    assert_int_equal(raw.height, 300);
    assert_int_equal(rot.width, 300);
    assert_int_equal(rot.height, 451);
    /* orientation 6: rotate 90 degrees clockwise, so raw (x, y) lands at
     * (H - 1 - y, x) */
    for (int y = 0; y < raw.height; y += 37)
        for (int x = 0; x < raw.width; x += 41)
            assert_memory_equal(raw.pixels + (size_t)y * raw.stride + x * 3,
                                rot.pixels + (size_t)x * rot.stride + (raw.height - 1 - y) * 3, 3);
    img_free(&raw), img_free(&rot);
    free(b);
}

static void test_orient_all_eight(void **state)
{
    /* a 3x2 image whose pixel (x, y) holds 10*y + x */
    img_image src = {0};
    assert_int_equal(img_alloc(&src, 3, 2, 1), 0);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            src.pixels[y * 3 + x] = (uint8_t)(10 * y + x);
    /* expected outputs, row by row (EXIF 2.3 orientation semantics) */
    static const uint8_t want[9][6] = {
        {0},
        {0, 1, 2, 10, 11, 12}, /* 1 */
        {2, 1, 0, 12, 11, 10}, /* 2 mirror */
        {12, 11, 10, 2, 1, 0}, /* 3 rotate 180 */
        {10, 11, 12, 0, 1, 2}, /* 4 flip */
        {0, 10, 1, 11, 2, 12}, /* 5 transpose (2 wide, 3 tall) */
        {10, 0, 11, 1, 12, 2}, /* 6 rotate 90 cw */
        {12, 2, 11, 1, 10, 0}, /* 7 transverse */
        {2, 12, 1, 11, 0, 10}, /* 8 rotate 90 ccw */
    };
    wp_err e = {0};
    for (int o = 1; o <= 8; o++) {
        img_image out = {0};
        assert_int_equal(img_orient(&src, o, &out, &e), 0);
        assert_int_equal(out.width, o >= 5 ? 2 : 3);
        assert_int_equal(out.height, o >= 5 ? 3 : 2);
        assert_memory_equal(out.pixels, want[o], 6);
        img_free(&out);
    }
    img_free(&src);
}

static void test_truncated_and_cut_jpegs_are_corrupt(void **state)
{
    wp_err e = {0};
    img_image im = {0};
    {
        LOAD_OR_SKIP(b, n, "truncated.jpg");
        assert_int_equal(img_decode(b, n, NULL, &im, &e), IMG_ECORRUPT);
        assert_null(im.pixels);
        free(b);
    }
    LOAD_OR_SKIP(b, n, "chelsea.jpg");
    size_t cuts[] = {n / 10, n / 3, n / 2, n - 100};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        int rc = img_decode(b, cuts[i], NULL, &im, &e);
        assert_int_equal(rc, IMG_ECORRUPT);
        assert_null(im.pixels);
    }
    free(b);
    LOAD_OR_SKIP(p, pn, "coffee_progressive.jpg");
    assert_int_equal(img_decode(p, pn * 2 / 3, NULL, &im, &e), IMG_ECORRUPT);
    free(p);
    LOAD_OR_SKIP(w, wn, "chelsea.webp");
    assert_int_equal(img_decode(w, wn / 2, NULL, &im, &e), IMG_ECORRUPT);
    free(w);
    LOAD_OR_SKIP(g, gn, "logo_rgba.png");
    assert_int_equal(img_decode(g, gn / 2, NULL, &im, &e), IMG_ECORRUPT);
    free(g);
}

static void test_html_is_not_an_image(void **state)
{
    const char *html = "<html><head><title>Error</title></head><body>Forbidden</body></html>";
    img_image im = {0};
    wp_err e = {0};
    assert_int_equal(img_decode(html, strlen(html), NULL, &im, &e), IMG_ENOTIMAGE);
    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
    assert_int_equal(img_decode(gif, sizeof gif, NULL, &im, &e), IMG_EUNSUPPORTED);
    assert_null(im.pixels);
}

/* --max-pixels is a limit one may reach: a 500x500 PNG decodes under a
 * limit of exactly 250000 pixels and is refused under 249999 (PNG has no
 * DCT scaling to fall back on). */
static void test_max_pixels_boundary_is_inclusive(void **state)
{
    img_image im = {0};
    wp_err e = {0};
    LOAD_OR_SKIP(b, n, "logo_rgba.png");
    img_decode_opts o = {.max_pixels = 500 * 500};
    assert_int_equal(img_decode(b, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 500);
    assert_int_equal(im.height, 500);
    img_free(&im);
    o.max_pixels = 500 * 500 - 1;
    assert_int_equal(img_decode(b, n, &o, &im, &e), IMG_ETOOBIG);
    assert_null(im.pixels);
    free(b);
}

static void test_pixel_bomb_refused_from_header(void **state)
{
    uint8_t buf[256];
    size_t n = make_jpeg_header(buf, 30000, 30000, 0, 0);
    img_decode_opts o = {.max_pixels = 100000000};
    img_image im = {0};
    wp_err e = {0};
    assert_int_equal(img_decode(buf, n, &o, &im, &e), IMG_ETOOBIG);
    assert_non_null(strstr(e.msg, "30000x30000"));
    assert_null(im.pixels);
    /* the same as a PNG IHDR */
    uint8_t png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                       0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    png[18] = 0x75, png[19] = 0x30; /* 30000 */
    png[22] = 0x75, png[23] = 0x30;
    png[24] = 8, png[25] = 2;
    assert_int_equal(img_decode(png, sizeof png, &o, &im, &e), IMG_ETOOBIG);
    /* CLIP preprocessing applies PIL's bomb limit too */
    uint8_t huge[256];
    n = make_jpeg_header(huge, 65000, 65000, 0, 0);
    static uint8_t rgb[224 * 224 * 3];
    assert_int_equal(img_clip_preprocess(huge, n, 224, rgb, &e), IMG_ETOOBIG);
}

/* xorshift64: deterministic mutations */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_mutated_images_never_crash(void **state)
{
    const char *files[] = {"chelsea.jpg", "coffee_progressive.jpg", "chelsea.webp", "logo_rgba.png",
                           "tiny_48.jpg", "chelsea_cmyk.jpg"};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int tried = 0, decoded = 0, failed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *orig = load_image(files[f], &n);
        if (!orig)
            continue;
        uint8_t *b = malloc(n);
        assert_non_null(b);
        for (int it = 0; it < 40; it++) {
            memcpy(b, orig, n);
            size_t len = n;
            int kind = (int)(rnd(&seed) % 3);
            int flips = 1 + (int)(rnd(&seed) % 8);
            /* mutations concentrate on the header, where parsers branch */
            size_t span = kind == 0 ? (n < 512 ? n : 512) : n;
            for (int k = 0; k < flips; k++)
                b[rnd(&seed) % span] ^= (uint8_t)(1u << (rnd(&seed) % 8));
            if (kind == 2)
                len = 1 + rnd(&seed) % n;
            img_info in;
            img_image im = {0};
            wp_err e = {0};
            img_decode_opts o = {.apply_exif = 1, .max_pixels = 4000000};
            (void)img_probe(b, len, &in, &e);
            int rc = img_decode(b, len, &o, &im, &e);
            tried++;
            if (rc == 0) {
                assert_true(im.width > 0 && im.height > 0 && im.channels == 3);
                assert_true((int64_t)im.width * im.height <= 4000000);
                decoded++;
            } else {
                assert_true(rc == IMG_ECORRUPT || rc == IMG_ENOTIMAGE || rc == IMG_EUNSUPPORTED ||
                            rc == IMG_ETOOBIG);
                assert_null(im.pixels);
                failed++;
            }
            img_free(&im);
        }
        free(b);
        free(orig);
    }
    printf("mutations: %d tried, %d decoded, %d rejected\n", tried, decoded, failed);
    if (tried == 0)
        skip();
    assert_true(failed > 0);
}

static void test_dct_scaling_reduces_size(void **state)
{
    LOAD_OR_SKIP(b, n, "chelsea.jpg");
    img_image im = {0};
    wp_err e = {0};
    /* 451x300: 1/4 gives 113x75, 1/8 (57x38) would be too small */
    img_decode_opts o = {.min_width = 100, .min_height = 70};
    assert_int_equal(img_decode(b, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 113);
    assert_int_equal(im.height, 75);
    img_free(&im);
    o.min_width = 200;
    o.min_height = 150; /* 1/2 gives 226x150 */
    assert_int_equal(img_decode(b, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 226);
    assert_int_equal(im.height, 150);
    img_free(&im);
    o.min_width = 300; /* no scale keeps >= 300 wide except 1 */
    assert_int_equal(img_decode(b, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 451);
    img_free(&im);
    free(b);
    /* the minimum applies after EXIF rotation */
    LOAD_OR_SKIP(r, rn, "chelsea_exif_rot90.jpg");
    img_decode_opts ro = {.apply_exif = 1, .min_width = 70, .min_height = 100};
    assert_int_equal(img_decode(r, rn, &ro, &im, &e), 0);
    assert_int_equal(im.width, 75);
    assert_int_equal(im.height, 113);
    img_free(&im);
    free(r);
}

/* ---- PNG colour types, made with libspng's encoder ------------------- */

static uint8_t *encode_png(int ct, int depth, int w, int h, const uint8_t *px, size_t pxlen,
                           const uint8_t *plte, int nplte, const uint8_t *alpha, size_t *outlen)
{
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(c);
    spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {.width = (uint32_t)w,
                           .height = (uint32_t)h,
                           .bit_depth = (uint8_t)depth,
                           .color_type = (uint8_t)ct};
    assert_int_equal(spng_set_ihdr(c, &ih), 0);
    if (plte) {
        struct spng_plte p = {.n_entries = (uint32_t)nplte};
        for (int i = 0; i < nplte; i++) {
            p.entries[i].red = plte[i * 3];
            p.entries[i].green = plte[i * 3 + 1];
            p.entries[i].blue = plte[i * 3 + 2];
        }
        assert_int_equal(spng_set_plte(c, &p), 0);
        if (alpha) {
            struct spng_trns t = {.n_type3_entries = (uint32_t)nplte};
            memcpy(t.type3_alpha, alpha, (size_t)nplte);
            assert_int_equal(spng_set_trns(c, &t), 0);
        }
    }
    assert_int_equal(spng_encode_image(c, px, pxlen, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
    int err = 0;
    uint8_t *png = spng_get_png_buffer(c, outlen, &err);
    assert_int_equal(err, 0);
    spng_ctx_free(c);
    return png;
}

static void test_png_palette_gray_alpha_16bit(void **state)
{
    wp_err e = {0};
    img_image im = {0};
    img_info in;
    size_t n;
    /* palette 4x2, index i -> colour i; entry 2 fully transparent */
    const uint8_t plte[] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    const uint8_t trns[] = {255, 255, 0};
    const uint8_t idx[] = {0, 1, 2, 0, 2, 1, 0, 1};
    uint8_t *png = encode_png(3, 8, 4, 2, idx, sizeof idx, plte, 3, NULL, &n);
    assert_int_equal(img_probe(png, n, &in, &e), 0);
    assert_int_equal(in.has_alpha, 0);
    assert_int_equal(img_decode(png, n, NULL, &im, &e), 0);
    assert_memory_equal(im.pixels, "\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\x00\x00", 12);
    img_free(&im);
    free(png);
    png = encode_png(3, 8, 4, 2, idx, sizeof idx, plte, 3, trns, &n);
    assert_int_equal(img_probe(png, n, &in, &e), 0);
    assert_int_equal(in.has_alpha, 1);
    img_decode_opts white = {.alpha = IMG_ALPHA_WHITE};
    assert_int_equal(img_decode(png, n, &white, &im, &e), 0);
    assert_memory_equal(im.pixels + 6, "\xff\xff\xff", 3); /* index 2 over white */
    img_free(&im);
    free(png);
    /* gray + alpha 8-bit: (100, 0) -> white, (100, 255) -> 100 */
    const uint8_t ga[] = {100, 0, 100, 255};
    png = encode_png(4, 8, 2, 1, ga, sizeof ga, NULL, 0, NULL, &n);
    assert_int_equal(img_decode(png, n, &white, &im, &e), 0);
    assert_memory_equal(im.pixels, "\xff\xff\xff\x64\x64\x64", 6);
    img_free(&im);
    free(png);
    /* 16-bit RGB keeps the high byte */
    const uint16_t rgb16[] = {0x1234, 0x5678, 0x9abc}; /* spng takes host-endian samples */
    png = encode_png(2, 16, 1, 1, (const uint8_t *)rgb16, sizeof rgb16, NULL, 0, NULL, &n);
    assert_int_equal(img_decode(png, n, NULL, &im, &e), 0);
    assert_memory_equal(im.pixels, "\x12\x56\x9a", 3);
    img_free(&im);
    free(png);
    /* 2-bit gray scales to 0, 85, 170, 255 */
    const uint8_t g2[] = {0x1B}; /* 00 01 10 11 */
    png = encode_png(0, 2, 4, 1, g2, sizeof g2, NULL, 0, NULL, &n);
    assert_int_equal(img_decode(png, n, NULL, &im, &e), 0);
    assert_memory_equal(im.pixels, "\x00\x00\x00\x55\x55\x55\xaa\xaa\xaa\xff\xff\xff", 12);
    img_free(&im);
    free(png);
}

static void test_clip_palette_and_1bit_resize_nearest(void **state)
{
    /* PIL resizes "P" and "1" images NEAREST: a 448x448 palette image
     * halves to 224 by taking every odd pixel ((x + 0.5) * 2 truncated) */
    const int W = 448;
    uint8_t *idx = malloc((size_t)W * W);
    assert_non_null(idx);
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++)
            idx[y * W + x] = (uint8_t)((x + 3 * y) % 5);
    const uint8_t plte[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 200, 0};
    size_t n;
    uint8_t *png = encode_png(3, 8, W, W, idx, (size_t)W * W, plte, 5, NULL, &n);
    static uint8_t out[224 * 224 * 3];
    wp_err e = {0};
    assert_int_equal(img_clip_preprocess(png, n, 224, out, &e), 0);
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++) {
            int k = idx[(2 * y + 1) * W + 2 * x + 1];
            assert_memory_equal(out + (y * 224 + x) * 3, plte + k * 3, 3);
        }
    free(png);
    /* 1-bit gray: a vertical stripe pattern stays pure black and white */
    size_t rowb = W / 8;
    uint8_t *bits = calloc(rowb * W, 1);
    assert_non_null(bits);
    for (int y = 0; y < W; y++)
        for (size_t b = 0; b < rowb; b++)
            bits[y * rowb + b] = 0x33; /* 0011 0011 */
    png = encode_png(0, 1, W, W, bits, rowb * W, NULL, 0, NULL, &n);
    assert_int_equal(img_clip_preprocess(png, n, 224, out, &e), 0);
    for (int x = 0; x < 224; x++) {
        int src = 2 * x + 1, bit = (0x33 >> (7 - src % 8)) & 1;
        assert_int_equal(out[x * 3], bit ? 255 : 0);
    }
    free(png);
    free(bits);
    free(idx);
}

/* A little-endian TIFF block holding only IFD0 with the orientation. */
static void tiff_orientation(uint8_t t[26], int orientation)
{
    static const uint8_t le[26] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                                   0,   1,   0,  0, 0, 0, 0, 0, 0, 0, 0,    0,    0};
    memcpy(t, le, 26);
    t[18] = (uint8_t)orientation;
}

static void test_png_and_webp_exif_orientation(void **state)
{
    wp_err e = {0};
    img_info in;
    img_image im = {0};
    img_decode_opts o = {.apply_exif = 1};
    /* PNG eXIf chunk, orientation 8, on a 3x2 RGB image */
    uint8_t tiff[26];
    tiff_orientation(tiff, 8);
    const uint8_t rgb[18] = {0};
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(c);
    spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {.width = 3, .height = 2, .bit_depth = 8, .color_type = 2};
    assert_int_equal(spng_set_ihdr(c, &ih), 0);
    struct spng_exif ex = {.length = sizeof tiff, .data = (char *)tiff};
    assert_int_equal(spng_set_exif(c, &ex), 0);
    assert_int_equal(spng_encode_image(c, rgb, sizeof rgb, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
    size_t n;
    int err = 0;
    uint8_t *png = spng_get_png_buffer(c, &n, &err);
    spng_ctx_free(c);
    assert_non_null(png);
    assert_int_equal(img_probe(png, n, &in, &e), 0);
    assert_int_equal(in.orientation, 8);
    assert_int_equal(img_decode(png, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 2);
    assert_int_equal(im.height, 3);
    img_free(&im);
    free(png);

    /* WebP: chelsea's VP8 chunk wrapped in VP8X with an EXIF chunk */
    LOAD_OR_SKIP(w, wn, "chelsea.webp");
    assert_memory_equal(w + 12, "VP8 ", 4);
    size_t vp8 = wn - 12; /* the VP8 chunk with its header */
    size_t total = 12 + 18 + vp8 + 8 + sizeof tiff;
    uint8_t *x = calloc(total, 1);
    assert_non_null(x);
    memcpy(x, "RIFF", 4);
    x[4] = (uint8_t)(total - 8), x[5] = (uint8_t)((total - 8) >> 8);
    x[6] = (uint8_t)((total - 8) >> 16);
    memcpy(x + 8, "WEBPVP8X", 8);
    x[16] = 10;
    x[20] = 0x08;                         /* EXIF present */
    x[24] = 450 & 0xff, x[25] = 450 >> 8; /* canvas width - 1 */
    x[27] = 299 & 0xff, x[28] = 299 >> 8; /* canvas height - 1 */
    memcpy(x + 30, w + 12, vp8);
    memcpy(x + 30 + vp8, "EXIF", 4);
    x[30 + vp8 + 4] = sizeof tiff;
    tiff_orientation(tiff, 6);
    memcpy(x + 30 + vp8 + 8, tiff, sizeof tiff);
    assert_int_equal(img_probe(x, total, &in, &e), 0);
    assert_int_equal(in.format, IMG_FMT_WEBP);
    assert_int_equal(in.orientation, 6);
    int rc = img_decode(x, total, &o, &im, &e);
    if (rc)
        printf("webp: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(im.width, 300);
    assert_int_equal(im.height, 451);
    img_free(&im);
    free(x);
    free(w);
}

/* ---- resampling and resize modes ------------------------------------ */

static void fill_pattern(img_image *im)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width * im->channels; x++)
            im->pixels[(size_t)y * im->stride + x] = (uint8_t)((x * 7 + y * 13) & 0xff);
}

static void test_bicubic_constant_and_identity(void **state)
{
    img_image src = {0}, out = {0};
    wp_err e = {0};
    assert_int_equal(img_alloc(&src, 97, 61, 3), 0);
    memset(src.pixels, 173, src.stride * 61);
    int sizes[][2] = {{30, 20}, {200, 150}, {97, 20}, {40, 61}, {1, 1}};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(img_resize_bicubic(&src, sizes[i][0], sizes[i][1], &out, &e), 0);
        assert_int_equal(out.width, sizes[i][0]);
        assert_int_equal(out.height, sizes[i][1]);
        for (size_t k = 0; k < out.stride * out.height; k++)
            assert_int_equal(out.pixels[k], 173);
        img_free(&out);
    }
    fill_pattern(&src);
    assert_int_equal(img_resize_bicubic(&src, 97, 61, &out, &e), 0);
    assert_memory_equal(out.pixels, src.pixels, src.stride * 61);
    img_free(&out);
    /* a window equals the same part of the full resize */
    img_image full = {0}, win = {0};
    assert_int_equal(img_resize_bicubic(&src, 50, 40, &full, &e), 0);
    assert_int_equal(img_resize_bicubic_region(&src, 50, 40, 7, 5, 30, 20, &win, &e), 0);
    for (int y = 0; y < 20; y++)
        assert_memory_equal(win.pixels + (size_t)y * win.stride,
                            full.pixels + (size_t)(y + 5) * full.stride + 7 * 3, 30 * 3);
    img_free(&full), img_free(&win), img_free(&src);
}

static void test_simd_and_scalar_resample_agree(void **state)
{
    /* the AVX2 loops (when the CPU has them) against the portable ones, on
     * noise, for every channel count and up/down scales in each direction */
    uint64_t seed = 12345;
    const int dims[][4] = {{37, 23, 11, 7}, {64, 64, 224, 224}, {300, 7, 41, 30},
                           {5, 300, 3, 33}, {129, 77, 128, 77}, {129, 77, 129, 20},
                           {2, 2, 9, 1},    {1000, 3, 17, 3}};
    wp_err e = {0};
    for (int C = 1; C <= 4; C++) {
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            img_image src = {0}, a = {0}, b = {0};
            assert_int_equal(img_alloc(&src, dims[d][0], dims[d][1], C), 0);
            for (size_t i = 0; i < src.stride * src.height; i++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                src.pixels[i] = (uint8_t)seed;
            }
            img_resample_force_scalar(1);
            assert_int_equal(img_resize_bicubic(&src, dims[d][2], dims[d][3], &a, &e), 0);
            img_resample_force_scalar(0);
            assert_int_equal(img_resize_bicubic(&src, dims[d][2], dims[d][3], &b, &e), 0);
            assert_memory_equal(a.pixels, b.pixels, a.stride * a.height);
            img_free(&src), img_free(&a), img_free(&b);
        }
    }
}

/* Resizes src with mode to size (only_if_bigger: bigger) and checks the
 * output is w x h. */
static void expect_resized(const img_image *src, int mode, int size, int bigger, int w, int h)
{
    img_image out = {0};
    wp_err e = {0};
    assert_int_equal(img_resize_mode(src, mode, size, bigger, &out, &e), 0);
    assert_int_equal(out.width, w);
    assert_int_equal(out.height, h);
    img_free(&out);
}

static void test_resize_modes_sizes(void **state)
{
    img_image src = {0}, out = {0};
    wp_err e = {0};
    assert_int_equal(img_alloc(&src, 400, 200, 3), 0);
    fill_pattern(&src);
    struct {
        int mode, w, h;
    } cases[] = {
        {IMG_RESIZE_NO, 400, 200},
        {IMG_RESIZE_KEEP_RATIO, 200, 100},
        {IMG_RESIZE_KEEP_RATIO_LARGEST, 100, 50},
        {IMG_RESIZE_CENTER_CROP, 100, 100},
        {IMG_RESIZE_BORDER, 100, 100},
    };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(img_resize_mode(&src, cases[i].mode, 100, 0, &out, &e), 0);
        assert_int_equal(out.width, cases[i].w);
        assert_int_equal(out.height, cases[i].h);
        if (cases[i].mode == IMG_RESIZE_BORDER) {
            /* 100x50 centred: rows 0..24 and 75..99 are white padding */
            for (int x = 0; x < 300; x++) {
                assert_int_equal(out.pixels[x], 255);
                assert_int_equal(out.pixels[24 * out.stride + x], 255);
                assert_int_equal(out.pixels[75 * out.stride + x], 255);
            }
        }
        img_free(&out);
    }
    /* center_crop = the middle of keep_ratio */
    img_image kr = {0}, cc = {0};
    assert_int_equal(img_resize_mode(&src, IMG_RESIZE_KEEP_RATIO, 100, 0, &kr, &e), 0);
    assert_int_equal(img_resize_mode(&src, IMG_RESIZE_CENTER_CROP, 100, 0, &cc, &e), 0);
    for (int y = 0; y < 100; y++)
        assert_memory_equal(cc.pixels + y * cc.stride, kr.pixels + y * kr.stride + 50 * 3, 300);
    img_free(&kr), img_free(&cc);
    /* odd ratio: 333x100 keep_ratio 64 -> round(333 * 0.64) = 213 */
    img_image odd = {0};
    assert_int_equal(img_alloc(&odd, 333, 100, 3), 0);
    fill_pattern(&odd);
    expect_resized(&odd, IMG_RESIZE_KEEP_RATIO, 64, 0, 213, 64);
    img_free(&odd);
    /* only_if_bigger: a small image is kept as it is, unpadded even in
     * border mode (img2dataset pads only what it resized) */
    img_image small = {0};
    assert_int_equal(img_alloc(&small, 50, 30, 3), 0);
    memset(small.pixels, 200, small.stride * 30);
    expect_resized(&small, IMG_RESIZE_KEEP_RATIO, 100, 1, 50, 30);
    assert_int_equal(img_resize_mode(&small, IMG_RESIZE_BORDER, 100, 1, &out, &e), 0);
    assert_int_equal(out.width, 50);
    assert_int_equal(out.height, 30);
    assert_int_equal(out.pixels[0], 200);
    img_free(&out);
    assert_int_equal(img_resize_mode(&small, IMG_RESIZE_BORDER, 100, 0, &out, &e), 0);
    assert_int_equal(out.width, 100);
    assert_int_equal(out.height, 100);
    assert_int_equal(out.pixels[0], 255);
    assert_int_equal(out.pixels[50 * out.stride + 50 * 3], 200);
    img_free(&out);
    /* upscaled: round(50 * 100 / 30) */
    expect_resized(&small, IMG_RESIZE_KEEP_RATIO, 100, 0, 167, 100);
    img_free(&small);
    img_free(&src);
    /* only_if_bigger looks at the shorter side for keep_ratio/center_crop
     * and at the longer side for keep_ratio_largest/border (img2dataset) */
    img_image mid = {0};
    assert_int_equal(img_alloc(&mid, 300, 200, 3), 0);
    fill_pattern(&mid);
    assert_int_equal(img_resize_mode(&mid, IMG_RESIZE_CENTER_CROP, 256, 1, &out, &e), 0);
    assert_int_equal(out.width, 300);
    assert_int_equal(out.height, 200);
    assert_memory_equal(out.pixels, mid.pixels, mid.stride * 200);
    img_free(&out);
    /* round(200 * 256 / 300) */
    expect_resized(&mid, IMG_RESIZE_KEEP_RATIO_LARGEST, 256, 1, 256, 171);
    img_free(&mid);
    /* Python's round is half to even: 7 * 1.5 = 10.5 -> 10, 5 * 1.5 -> 8 */
    img_image tiny = {0};
    assert_int_equal(img_alloc(&tiny, 7, 2, 3), 0);
    fill_pattern(&tiny);
    expect_resized(&tiny, IMG_RESIZE_KEEP_RATIO, 3, 0, 10, 3);
    img_free(&tiny);
    assert_int_equal(img_alloc(&tiny, 5, 2, 3), 0);
    fill_pattern(&tiny);
    assert_int_equal(img_resize_mode(&tiny, IMG_RESIZE_KEEP_RATIO, 3, 0, &out, &e), 0);
    assert_int_equal(out.width, 8);
    img_free(&out);
    img_free(&tiny);
    /* a 2000x1 strip: keep_ratio would be 512000 wide, refused; the centre
     * crop only computes its window */
    img_image strip = {0};
    assert_int_equal(img_alloc(&strip, 2000, 1, 3), 0);
    fill_pattern(&strip);
    assert_int_equal(img_resize_mode(&strip, IMG_RESIZE_KEEP_RATIO, 256, 0, &out, &e), WP_ELIMIT);
    assert_null(out.pixels);
    expect_resized(&strip, IMG_RESIZE_CENTER_CROP, 256, 0, 256, 256);
    img_free(&strip);
    assert_int_equal(img_resize_mode_parse("keep_ratio_largest"), IMG_RESIZE_KEEP_RATIO_LARGEST);
    assert_int_equal(img_resize_mode_parse("center_crop"), IMG_RESIZE_CENTER_CROP);
    assert_int_equal(img_resize_mode_parse("bogus"), -1);
}

static void test_resize_mode_hint_keeps_target_reachable(void **state)
{
    int mw, mh;
    img_resize_mode_hint(IMG_RESIZE_CENTER_CROP, 256, 4000, 3000, &mw, &mh);
    assert_int_equal(mw, 256);
    assert_int_equal(mh, 256);
    img_resize_mode_hint(IMG_RESIZE_KEEP_RATIO_LARGEST, 256, 4000, 3000, &mw, &mh);
    assert_int_equal(mw, 256);
    assert_int_equal(mh, 1);
    img_resize_mode_hint(IMG_RESIZE_BORDER, 256, 3000, 4000, &mw, &mh);
    assert_int_equal(mw, 1);
    assert_int_equal(mh, 256);
    img_resize_mode_hint(IMG_RESIZE_NO, 256, 3000, 4000, &mw, &mh);
    assert_int_equal(mw, 0);
    assert_int_equal(mh, 0);
    /* decoding with the hint then resizing gives the final size */
    LOAD_OR_SKIP(b, n, "coffee_progressive.jpg");
    img_resize_mode_hint(IMG_RESIZE_CENTER_CROP, 96, 600, 400, &mw, &mh);
    img_decode_opts o = {.min_width = mw, .min_height = mh};
    img_image im = {0}, out = {0};
    wp_err e = {0};
    assert_int_equal(img_decode(b, n, &o, &im, &e), 0);
    assert_int_equal(im.width, 150); /* 1/4 scale, 1/8 would give 75x50 */
    assert_int_equal(im.height, 100);
    assert_int_equal(img_resize_mode(&im, IMG_RESIZE_CENTER_CROP, 96, 0, &out, &e), 0);
    assert_int_equal(out.width, 96);
    assert_int_equal(out.height, 96);
    img_free(&im), img_free(&out);
    free(b);
}

static void test_jpeg_encode_round_trip(void **state)
{
    img_image im = {0}, back = {0};
    img_decode_opts o = {.apply_exif = 1};
    if (decode_file("chelsea.jpg", &o, &im) == -1000) {
        skip();
        return;
    }
    wp_buf jpg = {0};
    wp_err e = {0};
    assert_int_equal(img_encode_jpeg(&im, 90, &jpg, &e), 0);
    assert_true(jpg.len > 1000);
    assert_int_equal((uint8_t)jpg.data[0], 0xFF);
    assert_int_equal((uint8_t)jpg.data[1], 0xD8);
    assert_int_equal((uint8_t)jpg.data[jpg.len - 2], 0xFF);
    assert_int_equal((uint8_t)jpg.data[jpg.len - 1], 0xD9);
    assert_int_equal(img_decode(jpg.data, jpg.len, &o, &back, &e), 0);
    assert_int_equal(back.width, im.width);
    assert_int_equal(back.height, im.height);
    double mse = 0;
    for (size_t i = 0; i < im.stride * im.height; i++) {
        double d = (double)im.pixels[i] - back.pixels[i];
        mse += d * d;
    }
    mse /= (double)(im.stride * im.height);
    double psnr = 10 * log10(255.0 * 255.0 / (mse > 1e-9 ? mse : 1e-9));
    printf("jpeg q90 round trip: %zu bytes, PSNR %.2f dB\n", jpg.len, psnr);
    assert_true(psnr > 32.0);
    /* lower quality: smaller file */
    size_t q90 = jpg.len;
    assert_int_equal(img_encode_jpeg(&im, 30, &jpg, &e), 0);
    assert_true(jpg.len < q90);
    assert_int_equal(img_encode_jpeg(&im, 0, &jpg, &e), WP_EINVAL);
    wp_buf_free(&jpg);
    img_free(&im), img_free(&back);
}

static void test_clip_preprocess_matches_golden(void **state)
{
    if (!tl_shared_dir("CLIP preprocessing goldens")) {
        skip();
        return;
    }
    static uint8_t out[224 * 224 * 3];
    int checked = 0;
    /* pass 0: the CPU's fastest resampling loops; pass 1: the portable ones */
    for (size_t i = 0; i < 2 * N_IMAGES; i++) {
        img_resample_force_scalar(i >= N_IMAGES);
        const char *f = k_images[i % N_IMAGES].file;
        char rel[256];
        snprintf(rel, sizeof rel, "golden/clip/preprocess/%s.rgb224.u8", f);
        size_t gn = 0, n = 0;
        const char *gp = tl_shared_path(rel);
        char *gold = tl_slurp(gp, &gn);
        if (gold == NULL)
            fail_msg("golden %s missing while ../shared is there", gp);
        uint8_t *b = load_image(f, &n);
        assert_int_equal(gn, sizeof out);
        wp_err e = {0};
        int rc = img_clip_preprocess(b, n, 224, out, &e);
        if (rc)
            printf("%s: %s\n", f, e.msg);
        assert_int_equal(rc, 0);
        int maxd = 0, cnt = 0;
        for (size_t k = 0; k < gn; k++) {
            int d = abs((int)out[k] - (int)(uint8_t)gold[k]);
            if (d > maxd)
                maxd = d;
            cnt += d != 0;
        }
        printf("golden %-24s %-8s max diff %d, %d bytes differ\n", f,
               i >= N_IMAGES ? "scalar" : "default", maxd, cnt);
        assert_true(maxd <= 1);
        assert_true(cnt <= 64);
        free(gold), free(b);
        checked++;
    }
    img_resample_force_scalar(0);
    assert_true(checked > 0);
}

/* ---- the decode budget ------------------------------------------------ */

typedef struct bomb_job {
    const uint8_t *png;
    size_t n;
    int rc;
    int w;
} bomb_job;

static void *decode_bomb(void *arg)
{
    bomb_job *j = arg;
    img_image im = {0};
    wp_err e = {0};
    j->rc = img_decode(j->png, j->n, NULL, &im, &e);
    j->w = im.width;
    img_free(&im);
    return NULL;
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

/* Four threads decode a 4000 x 4000 RGBA PNG (a few KB compressed, 64 MB
 * raw) at once under a budget that holds one such decode: they take turns,
 * the charge never exceeds the budget, and peak RSS grows by about one
 * decode's memory, not four (the hardening issue's pixel bombs cost 0.55 GB
 * per worker). A budget below one decode refuses it with IMG_ETOOBIG. */
static void test_decode_budget_bounds_pixel_bombs(void **state)
{
    enum { W = 4000, H = 4000, T = 4 };
    size_t rawlen = (size_t)W * H * 4, n = 0;
    uint8_t *raw = calloc(1, rawlen);
    assert_non_null(raw);
    for (size_t i = 0; i < rawlen; i += 4)
        raw[i + 3] = 255;
    uint8_t *png =
        encode_png(SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, W, H, raw, rawlen, NULL, 0, NULL, &n);
    free(raw);
    assert_true(n < rawlen / 100);
    int64_t charge = (int64_t)W * H * IMG_BUDGET_PER_PIXEL, old = img_budget_get();

    /* reset the peak RSS (Linux clear_refs 5) so earlier tests do not count */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    int can_reset = cr != NULL && fputs("5", cr) >= 0;
    if (cr != NULL)
        can_reset = (fclose(cr) == 0) && can_reset;
    long base = vm_hwm_kb();

    img_budget_set(charge + charge / 2);
    pthread_t th[T];
    bomb_job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (bomb_job){png, n, -1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, decode_bomb, &jobs[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_int_equal(jobs[i].w, W);
    }
    assert_true(img_budget_peak() <= charge + charge / 2);
    assert_true(img_budget_peak() >= charge);
    long grown = vm_hwm_kb() - base;
    /* one decode touches ~112 MB (RGBA + RGB); four at once would be ~450 */
#ifdef __SANITIZE_ADDRESS__
    can_reset = 0; /* ASan's quarantine keeps freed blocks: RSS says nothing here */
#endif
    if (can_reset && base > 0 && grown > 250 * 1024)
        fail_msg("peak RSS grew by %ld MB with a one-decode budget", grown / 1024);

    /* too big for the budget on its own: refused, not waited for */
    img_budget_set(charge / 2);
    img_image im = {0};
    wp_err e = {0};
    assert_int_equal(img_decode(png, n, NULL, &im, &e), IMG_ETOOBIG);
    assert_non_null(strstr(e.msg, "decode budget"));
    uint8_t rgb[224 * 224 * 3];
    assert_int_equal(img_clip_preprocess(png, n, 224, rgb, &e), IMG_ETOOBIG);
    /* and everything charged was given back */
    img_budget_set(charge);
    assert_int_equal(img_decode(png, n, NULL, &im, &e), 0);
    img_free(&im);
    assert_int_equal(img_decode(png, n, NULL, &im, &e), 0);
    assert_int_equal(img_budget_peak(), (int64_t)W * H * IMG_BUDGET_PER_PIXEL);
    img_free(&im);
    img_budget_set(old);
    free(png);
}

/* The header probe reads a lossless (VP8L) WebP's 14-bit width and height
 * fields exactly, for odd non-square sizes with and without alpha, and
 * agrees with the decoder. (A mutation that misread the height survived
 * the suite before: the probe feeds the pixel-bomb gate.) */
static void test_probe_vp8l_sizes_exact(void **state)
{
    static const int sizes[][2] = {{37, 53},   {53, 37},  {1, 300},  {300, 1},
                                   {1000, 17}, {2, 9001}, {9001, 2}, {3, 16383}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int alpha = 0; alpha <= 1; alpha++) {
            int w = sizes[k][0], h = sizes[k][1], C = alpha ? 4 : 3;
            uint8_t *px = malloc((size_t)w * h * C), *out = NULL;
            assert_non_null(px);
            for (int i = 0; i < w * h * C; i++)
                px[i] = (uint8_t)(i * 7 + k);
            if (alpha)
                for (int i = 3; i < w * h * 4; i += 4)
                    px[i] = (uint8_t)(i % 200); /* keep real alpha */
            size_t n = alpha ? WebPEncodeLosslessRGBA(px, w, h, w * 4, &out)
                             : WebPEncodeLosslessRGB(px, w, h, w * 3, &out);
            assert_true(n > 0);
            assert_memory_equal(out + 12, "VP8L", 4);
            img_info in;
            wp_err e = {0};
            assert_int_equal(img_probe(out, n, &in, &e), 0);
            if (in.width != w || in.height != h)
                fail_msg("VP8L %dx%d%s probed as %dx%d", w, h, alpha ? " RGBA" : "", in.width,
                         in.height);
            img_image im = {0};
            assert_int_equal(img_decode(out, n, NULL, &im, &e), 0);
            assert_int_equal(im.width, w);
            assert_int_equal(im.height, h);
            img_free(&im);
            WebPFree(out);
            free(px);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_every_test_image),
        cmocka_unit_test(test_probe_recognises_other_formats),
        cmocka_unit_test(test_probe_exif_both_byte_orders),
        cmocka_unit_test(test_probe_refuses_12bit_and_lossless_jpeg),
        cmocka_unit_test(test_probe_truncated_header_names_offset),
        cmocka_unit_test(test_decode_every_test_image),
        cmocka_unit_test(test_decode_gray_cmyk_webp_agree_with_rgb),
        cmocka_unit_test(test_decode_adobe_cmyk_and_ycck),
        cmocka_unit_test(test_decode_alpha_white_and_drop),
        cmocka_unit_test(test_exif_rotation_swaps_dimensions),
        cmocka_unit_test(test_orient_all_eight),
        cmocka_unit_test(test_truncated_and_cut_jpegs_are_corrupt),
        cmocka_unit_test(test_html_is_not_an_image),
        cmocka_unit_test(test_pixel_bomb_refused_from_header),
        cmocka_unit_test(test_max_pixels_boundary_is_inclusive),
        cmocka_unit_test(test_mutated_images_never_crash),
        cmocka_unit_test(test_dct_scaling_reduces_size),
        cmocka_unit_test(test_png_palette_gray_alpha_16bit),
        cmocka_unit_test(test_clip_palette_and_1bit_resize_nearest),
        cmocka_unit_test(test_png_and_webp_exif_orientation),
        cmocka_unit_test(test_bicubic_constant_and_identity),
        cmocka_unit_test(test_simd_and_scalar_resample_agree),
        cmocka_unit_test(test_resize_modes_sizes),
        cmocka_unit_test(test_resize_mode_hint_keeps_target_reachable),
        cmocka_unit_test(test_jpeg_encode_round_trip),
        cmocka_unit_test(test_clip_preprocess_matches_golden),
        cmocka_unit_test(test_decode_budget_bounds_pixel_bombs),
        cmocka_unit_test(test_probe_vp8l_sizes_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
