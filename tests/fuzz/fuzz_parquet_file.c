/*
 * tests/fuzz/fuzz_parquet_file.c: libFuzzer target for the Parquet reader's
 * file decoding (parquet/; see fuzz_pq_file_one in fuzz_parquet.h for the input
 * layout and what is checked beyond the sanitizers).
 */
#include "tests/fuzz/fuzz_parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_pq_abort_on(fuzz_pq_file_one(data, size));
    return 0;
}
