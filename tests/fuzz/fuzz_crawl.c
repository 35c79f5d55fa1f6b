/*
 * tests/fuzz/fuzz_crawl.c: libFuzzer target for the crawl module's parsers
 * of hostile input: HTML extraction (with and without the prefilter),
 * robots.txt, WAT metadata JSON (targeted reader and jansson reference),
 * HTTP response splitting and body decoding, and the WARC record reader on
 * the same bytes written to a file. What is checked: fuzz_crawl_one in
 * fuzz_targets.h. Seeds: tests/fuzz/corpus/crawl.
 */
#include "tests/fuzz/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_crawl_one(data, size));
    return 0;
}
