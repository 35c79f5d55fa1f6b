/*
 * encode/tokenizer.h: CLIP's byte-level BPE tokenizer, giving the same ids as
 * OpenAI's clip/simple_tokenizer.py (SimpleTokenizer) with the real ftfy.
 *
 * Text goes through the same steps as SimpleTokenizer.encode:
 *   ftfy.fix_text (ftfy 6.3 defaults: HTML entities, mojibake, C1 controls,
 *   Latin ligatures, full-width forms, curly quotes, line breaks, terminal
 *   escapes, control characters, NFC), html.unescape twice, strip,
 *   whitespace collapse, str.lower(), the pre-tokenizer regex
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *   and BPE merges over the bytes of each piece, the last one marked </w>.
 *
 * Vocabulary: a model folder's vocab.json + merges.txt (Hugging Face layout),
 * bpe_simple_vocab_16e6.txt.gz (OpenAI / open_clip layout) or tokenizer.json
 * (Hugging Face tokenizers).
 *
 * Thread safety: an enc_tok may be shared by threads; its word cache is
 * guarded by a mutex.
 */
#ifndef ENCODE_TOKENIZER_H
#define ENCODE_TOKENIZER_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

#define ENC_TOK_SOT       49406 /* <|startoftext|> in CLIP's vocabulary */
#define ENC_TOK_EOT       49407 /* <|endoftext|> */
#define ENC_TOK_VOCAB     49408
#define ENC_TOK_CTX       77          /* CLIP's context length */
#define ENC_TOK_MERGES    48894       /* 49152 - 256 - 2 */
#define ENC_TOK_FILE_MAX  (64u << 20) /* largest vocabulary file read */
#define ENC_TOK_CACHE_MAX (1u << 16)  /* words cached before the cache restarts */

enum enc_tok_status {
    ENC_TOK_EVOCAB = -650, /* a vocabulary file is malformed or inconsistent */
};

typedef struct enc_tok enc_tok;

/* Loads the tokenizer of a model folder: vocab.json + merges.txt if both are
 * there, else bpe_simple_vocab_16e6.txt.gz, else tokenizer.json. Returns 0
 * and *out (free with enc_tok_free), or WP_ENOENT (none present),
 * ENC_TOK_EVOCAB, WP_EIO, WP_ENOMEM with err naming the file (and line). */
int enc_tok_open_dir(const char *dir, enc_tok **out, wp_err *err);
/* The same from an OpenAI bpe_simple_vocab_16e6.txt.gz (gzip; a plain text
 * file is accepted too). */
int enc_tok_open_bpe_gz(const char *path, enc_tok **out, wp_err *err);
/* The same from a Hugging Face vocab.json and merges.txt. */
int enc_tok_open_hf(const char *vocab_json, const char *merges_txt, enc_tok **out, wp_err *err);
/* The same from a Hugging Face tokenizer.json (model.vocab and
 * model.merges, merges as "a b" strings or ["a", "b"] pairs). */
int enc_tok_open_hf_json(const char *tokenizer_json, enc_tok **out, wp_err *err);
void enc_tok_free(enc_tok *t);

/* Token ids of text (UTF-8, n bytes) with <|startoftext|> first and
 * <|endoftext|> last, untruncated. Returns 0 and *ids (malloc'ed, caller
 * frees) with *n_ids, or WP_ENOMEM. Invalid UTF-8 bytes are read as U+FFFD. */
int enc_tok_encode(enc_tok *t, const char *text, size_t n, int32_t **ids, size_t *n_ids,
                   wp_err *err);
/* Fills row[0..ctx) with the ids of text, cut as OpenAI's tokenize(...,
 * truncate=True) does (the first ctx ids, the last replaced by
 * <|endoftext|>) and zero padded. Returns the number of ids written (>= 2),
 * or WP_EINVAL (ctx < 2), WP_ENOMEM. Stops tokenizing once the row is full. */
int enc_tok_encode_ctx(enc_tok *t, const char *text, size_t n, int32_t *row, int ctx, wp_err *err);

/* ---- the cleaning steps, for tests and for other stages ---------------- */

/* SimpleTokenizer's text before pre-tokenizing:
 * whitespace_clean(basic_clean(text)).lower(). Appends UTF-8 to out.
 * 0 or WP_ENOMEM. */
int enc_tok_clean(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.fix_text(text) with ftfy 6.3's default configuration. */
int enc_tok_ftfy(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.fix_encoding(text): only the mojibake repair. */
int enc_tok_fix_encoding(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.badness.is_bad(text): 1 if the text looks like mojibake, else 0. */
int enc_tok_is_bad(const char *text, size_t n);
/* Python's html.unescape(text) (HTML5 rules, references without ';' too). */
int enc_tok_html_unescape(const char *text, size_t n, wp_buf *out, wp_err *err);

#endif
