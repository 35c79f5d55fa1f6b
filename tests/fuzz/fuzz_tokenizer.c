/*
 * tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the CLIP tokenizer:
 * every input (any bytes, read as UTF-8 with U+FFFD for invalid sequences)
 * goes through the ftfy-style cleaning, html.unescape and, when the BPE
 * vocabulary is found (WITPIPE_SHARED or ../shared), the whole encoder
 * (fuzz_tokenizer_one in fuzz_targets.h lists the checked invariants). A
 * crash, sanitizer report, leak, hang or broken invariant is a bug.
 */
#include "tests/fuzz/fuzz_targets.h"

#include <stdio.h>

static clip_tok *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *shared = getenv("WITPIPE_SHARED");
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/vocab/bpe_simple_vocab_16e6.txt.gz",
             shared != NULL ? shared : "../shared");
    if (clip_tok_open_bpe_gz(path, &tok, NULL) != 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary at %s: cleaning only\n", path);
        tok = NULL;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_tokenizer_one(tok, data, size));
    return 0;
}
