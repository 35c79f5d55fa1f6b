/*
 * tests/fuzz/fuzz_queries.c: libFuzzer target for query lists (plain lines
 * and MetaCLIP's metadata.json, balance/qry_list.c) and for the matcher
 * (balance/qry_match.c), checked against a plain substring search of
 * MetaCLIP's rule (fuzz_queries_one in fuzz_targets.h).
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_queries_one(data, size));
    return 0;
}
