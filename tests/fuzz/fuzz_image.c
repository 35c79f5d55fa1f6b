/*
 * tests/fuzz/fuzz_image.c: libFuzzer target for the image module: every
 * input goes through img_probe, img_decode (with EXIF rotation, DCT scaling
 * and a pixel limit, as fetch uses it) and CLIP preprocessing
 * (fuzz_image_one in fuzz_targets.h). A crash, sanitizer report, leak or
 * broken contract is a bug; error returns are expected.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_image_one(data, size));
    return 0;
}
