/*
 * tests/fuzz/fuzz_parquet_footer.c: libFuzzer target for the Parquet reader's
 * footer decoding (parquet/; see fuzz_pq_footer_one in fuzz_parquet.h for the input
 * layout and what is checked beyond the sanitizers).
 */
#include "tests/fuzz/fuzz_parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_pq_abort_on(fuzz_pq_footer_one(data, size));
    return 0;
}
