/*
 * clip/tok_int.h: internals of the CLIP text tokenizer shared by
 * clip/tokenizer.c, clip/tok_clean.c and the generated tables in
 * clip/tok_tables.c (tools/gen_tok_tables.py writes them).
 *
 * Text inside the cleaner is a growable array of Unicode code points
 * (clip_tok_u32), because ftfy's rules and Python's regular expressions all
 * work per code point.
 */
#ifndef CLIP_TOK_INT_H
#define CLIP_TOK_INT_H

#include "clip/clip.h"

#include <stddef.h>
#include <stdint.h>

/* ---- generated tables (clip/tok_tables.c) --------------------------- */

#define CLIP_TOK_N_CODEPAGES 10
enum clip_tok_cp_index {
    CLIP_TOK_CP_LATIN1 = 0,
    CLIP_TOK_CP_SLOPPY1252 = 1,
    CLIP_TOK_CP_MACROMAN = 8,
};

/* A single-byte code page: what each byte decodes to. */
typedef struct clip_tok_codepage {
    const char *name;
    int sloppy; /* undefined bytes pass through, 0x1A stands for U+FFFD */
    uint16_t dec[256];
} clip_tok_codepage;

typedef struct clip_tok_entity {
    const char *name;  /* without the '&'; may end with ';' */
    const char *value; /* UTF-8 */
} clip_tok_entity;

typedef struct clip_tok_cpmap {
    uint32_t from, to;
} clip_tok_cpmap;

typedef struct clip_tok_cpclass {
    uint32_t cp;
    uint32_t mask; /* CLIP_TOK_C_* bits */
} clip_tok_cpclass;

/* Character classes of ftfy's badness heuristic (the order of ORDER in the
 * generator) and of its UTF-8 detector. */
enum clip_tok_class {
    CLIP_TOK_C_COMMON = 1u << 0,
    CLIP_TOK_C_C1 = 1u << 1,
    CLIP_TOK_C_BAD = 1u << 2,
    CLIP_TOK_C_LAW = 1u << 3,
    CLIP_TOK_C_CUR = 1u << 4,
    CLIP_TOK_C_START = 1u << 5,
    CLIP_TOK_C_END = 1u << 6,
    CLIP_TOK_C_NUM = 1u << 7,
    CLIP_TOK_C_KAO = 1u << 8,
    CLIP_TOK_C_UACC = 1u << 9,
    CLIP_TOK_C_LACC = 1u << 10,
    CLIP_TOK_C_UCOM = 1u << 11,
    CLIP_TOK_C_LCOM = 1u << 12,
    CLIP_TOK_C_BOX = 1u << 13,
    CLIP_TOK_C_F2 = 1u << 14,
    CLIP_TOK_C_F3 = 1u << 15,
    CLIP_TOK_C_F4 = 1u << 16,
    CLIP_TOK_C_CONT = 1u << 17,
    CLIP_TOK_C_CONTS = 1u << 18,
    /* not in the table: tested directly */
    CLIP_TOK_C_AZL = 1u << 20, /* a-z */
    CLIP_TOK_C_AZU = 1u << 21, /* A-Z */
};

/* A run of code points sharing one pre-tokenizer class. */
typedef struct clip_tok_range {
    uint32_t lo, hi;
    uint32_t cls; /* CLIP_TOK_PRE_* */
} clip_tok_range;

enum clip_tok_pre_class {
    CLIP_TOK_PRE_PUNCT = 0,  /* [^\s\p{L}\p{N}] (not in the table) */
    CLIP_TOK_PRE_LETTER = 1, /* [\p{L}] */
    CLIP_TOK_PRE_NUMBER = 2, /* [\p{N}] */
    CLIP_TOK_PRE_NONE = 3,   /* no alternative matches it: skipped */
    CLIP_TOK_PRE_SPACE = 4,  /* \s (not in the table) */
};

typedef struct clip_tok_lower {
    uint32_t cp, lo1, lo2; /* lo2 = 0 unless the lower case is two code points */
} clip_tok_lower;

extern const clip_tok_codepage clip_tok_codepages[CLIP_TOK_N_CODEPAGES];
extern const uint16_t clip_tok_cp1252_strict[32]; /* bytes 0x80-0x9F; 0 = undefined */
extern const clip_tok_entity clip_tok_html5[];
extern const size_t clip_tok_html5_n;
extern const clip_tok_entity clip_tok_html_upper[];
extern const size_t clip_tok_html_upper_n;
extern const clip_tok_cpmap clip_tok_invalid_charrefs[];
extern const size_t clip_tok_invalid_charrefs_n;
extern const uint32_t clip_tok_invalid_codepoints[];
extern const size_t clip_tok_invalid_codepoints_n;
extern const char *const clip_tok_width_map[0xFFEF - 0xFF01 + 1];
extern const clip_tok_cpclass clip_tok_cpclasses[];
extern const size_t clip_tok_cpclasses_n;
extern const clip_tok_range clip_tok_pre_ranges[];
extern const size_t clip_tok_pre_ranges_n;
extern const clip_tok_lower clip_tok_lowers[];
extern const size_t clip_tok_lowers_n;

/* ---- code point strings ----------------------------------------------- */

typedef struct clip_tok_u32 {
    uint32_t *v;
    size_t n, cap;
} clip_tok_u32;

/* Appends; 0 or WP_ENOMEM (the string is unchanged on failure). */
int clip_tok_u32_push(clip_tok_u32 *s, uint32_t c);
int clip_tok_u32_append(clip_tok_u32 *s, const uint32_t *p, size_t n);
void clip_tok_u32_free(clip_tok_u32 *s);
/* Decodes UTF-8 into s (appending); each byte of an invalid sequence becomes
 * U+FFFD. 0 or WP_ENOMEM. */
int clip_tok_u32_from_utf8(clip_tok_u32 *s, const char *p, size_t n);
/* Appends the UTF-8 form of p[0..n) to out. 0 or WP_ENOMEM. */
struct wp_buf;
int clip_tok_u32_to_utf8(const uint32_t *p, size_t n, struct wp_buf *out);

/* For tests: runs both BPE merge paths (quadratic for short words, heap for
 * long ones) on the bytes of w; 1 if they agree, 0 if not, -1 out of
 * memory. */
struct clip_tok;
int clip_tok_bpe_paths_agree(const struct clip_tok *t, const char *w, size_t n);

/* The CLIP_TOK_C_* mask of one code point (0 for most). */
uint32_t clip_tok_class_of(uint32_t c);

/* ---- the cleaning steps, for tests and for other stages ---------------- */

/* SimpleTokenizer's text before pre-tokenizing:
 * whitespace_clean(basic_clean(text)).lower(). Appends UTF-8 to out.
 * 0 or WP_ENOMEM. */
int clip_tok_clean(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.fix_text(text) with ftfy 6.3's default configuration. */
int clip_tok_ftfy(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.fix_encoding(text): only the mojibake repair. */
int clip_tok_fix_encoding(const char *text, size_t n, wp_buf *out, wp_err *err);
/* ftfy.badness.is_bad(text): 1 if the text looks like mojibake, else 0. */
int clip_tok_is_bad(const char *text, size_t n);
/* Python's html.unescape(text) (HTML5 rules, references without ';' too). */
int clip_tok_html_unescape(const char *text, size_t n, wp_buf *out, wp_err *err);

#endif
