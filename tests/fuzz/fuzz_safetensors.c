/*
 * tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors
 * header validation (clip/safetensors.c, through clip_st_open_mem): a
 * file that passes must have every tensor inside the data section with a
 * shape matching its byte range, and converting its F32 / F16 / BF16
 * tensors must read exactly those bytes. A crash, sanitizer report, leak
 * or broken contract is a bug; CLIP_EFORMAT on bad input is expected.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_safetensors_one(data, size));
    return 0;
}
