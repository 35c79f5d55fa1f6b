/*
 * encode/tok_int.h: internals of the CLIP text tokenizer shared by
 * encode/tokenizer.c, encode/tok_clean.c and the generated tables in
 * encode/tok_tables.c (tools/gen_tok_tables.py writes them).
 *
 * Text inside the cleaner is a growable array of Unicode code points
 * (enc_tok_u32), because ftfy's rules and Python's regular expressions all
 * work per code point.
 */
#ifndef ENCODE_TOK_INT_H
#define ENCODE_TOK_INT_H

#include <stddef.h>
#include <stdint.h>

/* ---- generated tables (encode/tok_tables.c) --------------------------- */

#define ENC_TOK_N_CODEPAGES 10
enum enc_tok_cp_index {
    ENC_TOK_CP_LATIN1 = 0,
    ENC_TOK_CP_SLOPPY1252 = 1,
    ENC_TOK_CP_MACROMAN = 8,
};

/* A single-byte code page: what each byte decodes to. */
typedef struct enc_tok_codepage {
    const char *name;
    int sloppy; /* undefined bytes pass through, 0x1A stands for U+FFFD */
    uint16_t dec[256];
} enc_tok_codepage;

typedef struct enc_tok_entity {
    const char *name;  /* without the '&'; may end with ';' */
    const char *value; /* UTF-8 */
} enc_tok_entity;

typedef struct enc_tok_cpmap {
    uint32_t from, to;
} enc_tok_cpmap;

typedef struct enc_tok_cpclass {
    uint32_t cp;
    uint32_t mask; /* ENC_TOK_C_* bits */
} enc_tok_cpclass;

/* Character classes of ftfy's badness heuristic (the order of ORDER in the
 * generator) and of its UTF-8 detector. */
enum enc_tok_class {
    ENC_TOK_C_COMMON = 1u << 0,
    ENC_TOK_C_C1 = 1u << 1,
    ENC_TOK_C_BAD = 1u << 2,
    ENC_TOK_C_LAW = 1u << 3,
    ENC_TOK_C_CUR = 1u << 4,
    ENC_TOK_C_START = 1u << 5,
    ENC_TOK_C_END = 1u << 6,
    ENC_TOK_C_NUM = 1u << 7,
    ENC_TOK_C_KAO = 1u << 8,
    ENC_TOK_C_UACC = 1u << 9,
    ENC_TOK_C_LACC = 1u << 10,
    ENC_TOK_C_UCOM = 1u << 11,
    ENC_TOK_C_LCOM = 1u << 12,
    ENC_TOK_C_BOX = 1u << 13,
    ENC_TOK_C_F2 = 1u << 14,
    ENC_TOK_C_F3 = 1u << 15,
    ENC_TOK_C_F4 = 1u << 16,
    ENC_TOK_C_CONT = 1u << 17,
    ENC_TOK_C_CONTS = 1u << 18,
    /* not in the table: tested directly */
    ENC_TOK_C_AZL = 1u << 20, /* a-z */
    ENC_TOK_C_AZU = 1u << 21, /* A-Z */
};

/* A run of code points sharing one pre-tokenizer class. */
typedef struct enc_tok_range {
    uint32_t lo, hi;
    uint32_t cls; /* ENC_TOK_PRE_* */
} enc_tok_range;

enum enc_tok_pre_class {
    ENC_TOK_PRE_PUNCT = 0,  /* [^\s\p{L}\p{N}] (not in the table) */
    ENC_TOK_PRE_LETTER = 1, /* [\p{L}] */
    ENC_TOK_PRE_NUMBER = 2, /* [\p{N}] */
    ENC_TOK_PRE_NONE = 3,   /* no alternative matches it: skipped */
    ENC_TOK_PRE_SPACE = 4,  /* \s (not in the table) */
};

typedef struct enc_tok_lower {
    uint32_t cp, lo1, lo2; /* lo2 = 0 unless the lower case is two code points */
} enc_tok_lower;

extern const enc_tok_codepage enc_tok_codepages[ENC_TOK_N_CODEPAGES];
extern const uint16_t enc_tok_cp1252_strict[32]; /* bytes 0x80-0x9F; 0 = undefined */
extern const enc_tok_entity enc_tok_html5[];
extern const size_t enc_tok_html5_n;
extern const enc_tok_entity enc_tok_html_upper[];
extern const size_t enc_tok_html_upper_n;
extern const enc_tok_cpmap enc_tok_invalid_charrefs[];
extern const size_t enc_tok_invalid_charrefs_n;
extern const uint32_t enc_tok_invalid_codepoints[];
extern const size_t enc_tok_invalid_codepoints_n;
extern const char *const enc_tok_width_map[0xFFEF - 0xFF01 + 1];
extern const enc_tok_cpclass enc_tok_cpclasses[];
extern const size_t enc_tok_cpclasses_n;
extern const enc_tok_range enc_tok_pre_ranges[];
extern const size_t enc_tok_pre_ranges_n;
extern const enc_tok_lower enc_tok_lowers[];
extern const size_t enc_tok_lowers_n;

/* ---- code point strings ----------------------------------------------- */

typedef struct enc_tok_u32 {
    uint32_t *v;
    size_t n, cap;
} enc_tok_u32;

/* Appends; 0 or WP_ENOMEM (the string is unchanged on failure). */
int enc_tok_u32_push(enc_tok_u32 *s, uint32_t c);
int enc_tok_u32_append(enc_tok_u32 *s, const uint32_t *p, size_t n);
void enc_tok_u32_free(enc_tok_u32 *s);
/* Decodes UTF-8 into s (appending); each byte of an invalid sequence becomes
 * U+FFFD. 0 or WP_ENOMEM. */
int enc_tok_u32_from_utf8(enc_tok_u32 *s, const char *p, size_t n);
/* Appends the UTF-8 form of p[0..n) to out. 0 or WP_ENOMEM. */
struct wp_buf;
int enc_tok_u32_to_utf8(const uint32_t *p, size_t n, struct wp_buf *out);

/* For tests: runs both BPE merge paths (quadratic for short words, heap for
 * long ones) on the bytes of w; 1 if they agree, 0 if not, -1 out of
 * memory. */
struct enc_tok;
int enc_tok_bpe_paths_agree(const struct enc_tok *t, const char *w, size_t n);

/* The ENC_TOK_C_* mask of one code point (0 for most). */
uint32_t enc_tok_class_of(uint32_t c);

#endif
