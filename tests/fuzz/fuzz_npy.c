/*
 * tests/fuzz/fuzz_npy.c: libFuzzer target for the .npy header parser of the
 * embeddings module (emb/npy.c): any bytes give a clear EMB_EFORMAT error
 * or a header whose array lies inside the input.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_npy_one(data, size));
    return 0;
}
