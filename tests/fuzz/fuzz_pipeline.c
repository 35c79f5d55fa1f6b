/*
 * tests/fuzz/fuzz_pipeline.c: libFuzzer target for the `witpipe run`
 * pipeline config (cli/cmd_run.c's cli_plan_parse; see fuzz_pipeline.h for
 * what is checked). Linked with the cli/ objects (the Makefile's fuzz
 * rule), which the other targets do not need.
 */
#include "tests/fuzz/fuzz_pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_pipeline_abort_on(fuzz_pipeline_one(data, size));
    return 0;
}
