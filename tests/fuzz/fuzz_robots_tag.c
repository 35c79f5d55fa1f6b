/*
 * tests/fuzz/fuzz_robots_tag.c: libFuzzer target for X-Robots-Tag opt-out
 * parsing (net/net_robots.c). Input "value\ntokens\ndirectives"; checked:
 * a hit is a lower-cased directive of the list that the value holds, and
 * an unscoped value opts out exactly when one of its directives is listed.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_robots_tag_one(data, size));
    return 0;
}
