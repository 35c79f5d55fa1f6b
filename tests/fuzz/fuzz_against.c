/*
 * tests/fuzz/fuzz_against.c: libFuzzer target for dedup's evaluation-set
 * reader (dedup/against.c: folders, .tar shards, list files; see
 * fuzz_against_one in fuzz_targets.h for the input layout and the checks).
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_against_one(data, size));
    return 0;
}
