/*
 * tests/fuzz/fuzz_robots_tag.c: libFuzzer target for the robots-directive
 * parser (net/net_robots.c, used by fetch and crawl). Input
 * "value\ntokens\ndirectives"; checked: a hit is a lower-cased directive the
 * value holds and the list allows, and an unscoped value opts out exactly
 * when one of its words is listed.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_robots_tag_one(data, size));
    return 0;
}
