/*
 * tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the CLIP tokenizer:
 * every input (any bytes, read as UTF-8 with U+FFFD for invalid sequences)
 * goes through the ftfy-style cleaning, html.unescape and, when the BPE
 * vocabulary is found (WITPIPE_SHARED or ../shared), the whole encoder.
 * A crash, sanitizer report, leak or hang is a bug. Checked invariants: the
 * ids start with <|startoftext|>, end with <|endoftext|>, stay inside the
 * vocabulary, and the 77-token row is the untruncated ids cut as OpenAI's
 * truncate=True does.
 */
#include "encode/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enc_tok *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *shared = getenv("WITPIPE_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/bpe_simple_vocab_16e6.txt.gz",
             shared != NULL ? shared : "../shared");
    if (enc_tok_open_bpe_gz(path, &tok, NULL) != 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary at %s: cleaning only\n", path);
        tok = NULL;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    wp_buf out = {0};
    if (enc_tok_clean(text, size, &out, NULL) != 0)
        abort(); /* only out of memory may fail */
    if (!wp_utf8_valid(out.data ? out.data : "", out.len))
        abort(); /* the cleaned text is always valid UTF-8 */
    out.len = 0;
    if (enc_tok_html_unescape(text, size, &out, NULL) != 0)
        abort();
    wp_buf_free(&out);
    if (tok == NULL)
        return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (enc_tok_encode(tok, text, size, &ids, &n, NULL) != 0)
        abort();
    if (n < 2 || ids[0] != ENC_TOK_SOT || ids[n - 1] != ENC_TOK_EOT)
        abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= ENC_TOK_VOCAB)
            abort();
    int32_t row[ENC_TOK_CTX];
    int k = enc_tok_encode_ctx(tok, text, size, row, ENC_TOK_CTX, NULL);
    size_t want = n < ENC_TOK_CTX ? n : ENC_TOK_CTX;
    if (k != (int)want || memcmp(row, ids, (want - 1) * sizeof *ids) != 0 ||
        row[want - 1] != ENC_TOK_EOT)
        abort();
    for (size_t i = want; i < ENC_TOK_CTX; i++)
        if (row[i] != 0)
            abort();
    free(ids);
    return 0;
}
