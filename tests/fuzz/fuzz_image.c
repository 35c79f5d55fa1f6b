/*
 * tests/fuzz/fuzz_image.c: libFuzzer target for the image module: every
 * input goes through img_probe, img_decode (with EXIF rotation, DCT scaling
 * and a pixel limit, as fetch uses it) and CLIP preprocessing. A crash,
 * sanitizer report or leak is a bug; error returns are expected.
 */
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Keeps each run fast: larger images are refused from the header. */
#define FUZZ_MAX_PIXELS (4000 * 4000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_info info;
    wp_err err = {0};
    int rc = img_probe(data, size, &info, &err);
    if (rc == 0 && (info.width <= 0 || info.height <= 0))
        abort(); /* a successful probe always has a size */

    img_decode_opts opts = {.apply_exif = 1,
                            .alpha = IMG_ALPHA_WHITE,
                            .max_pixels = FUZZ_MAX_PIXELS,
                            .min_width = 64,
                            .min_height = 64};
    img_image im = {0};
    rc = img_decode(data, size, &opts, &im, &err);
    if (rc == 0) {
        if (im.channels != 3 || im.width <= 0 || im.height <= 0 ||
            (int64_t)im.width * im.height > FUZZ_MAX_PIXELS)
            abort();
        img_image small = {0};
        if (img_resize_mode(&im, IMG_RESIZE_CENTER_CROP, 32, 1, &small, &err) == 0)
            img_free(&small);
        img_free(&im);
    }
    if (rc == 0 && (int64_t)info.width * info.height <= FUZZ_MAX_PIXELS) {
        static uint8_t rgb[32 * 32 * 3];
        (void)img_clip_preprocess(data, size, 32, rgb, &err);
    }
    return 0;
}
