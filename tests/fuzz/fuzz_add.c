/*
 * tests/fuzz/fuzz_add.c: libFuzzer target for `witpipe add`'s list
 * reader (add/add.c) over TSV, CSV and JSONL, plain or compressed.
 * The first input byte picks the format and options (fuzz_add_opts in
 * fuzz_targets.h); the rest is the file, read to its end through
 * add_reader_open_mem. A crash, sanitizer report, leak, hang or a good
 * record that breaks the reader's contract is a bug.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_add_one(data, size));
    return 0;
}
