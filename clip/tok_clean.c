/*
 * clip/tok_clean.c: the text cleaning that CLIP's SimpleTokenizer applies
 * before BPE, reproduced rule for rule so that token ids match:
 *
 *   ftfy.fix_text (ftfy 6.3, default TextFixerConfig), then
 *   html.unescape(html.unescape(text)).strip(), then
 *   re.sub(r'\s+', ' ', text).strip(), then str.lower().
 *
 * ftfy's mojibake repair is a search: when its "badness" heuristic says a
 * segment looks like mojibake, it re-encodes the text in each of ten
 * single-byte code pages and keeps the first that decodes as UTF-8. The
 * heuristic (ftfy/badness.py BADNESS_RE) and the UTF-8 detector
 * (chardata.UTF8_DETECTOR_RE) are expressed here as small tables of
 * character-class sequences instead of regular expressions; the classes come
 * from clip/tok_tables.c.
 */
#include "clip/tok_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define FTFY_MAX_SEGMENT 1000000 /* ftfy's max_decode_length, in code points */
#define NAMED_REF_MAX    32      /* html.unescape: longest name it looks at */
#define FTFY_ENTITY_MAX  24      /* ftfy HTML_ENTITY_RE: &#?[0-9A-Za-z]{1,24}; */

/* ---- code point strings ------------------------------------------------- */

int clip_tok_u32_push(clip_tok_u32 *s, uint32_t c)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = c;
    return 0;
}

int clip_tok_u32_append(clip_tok_u32 *s, const uint32_t *p, size_t n)
{
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n)
            cap *= 2;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (n > 0)
        memcpy(s->v + s->n, p, n * sizeof *p);
    s->n += n;
    return 0;
}

void clip_tok_u32_free(clip_tok_u32 *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629 section 4), 0 if none. */
static size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b = p[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t c;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        c = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        c = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        uint8_t x = p[i];
        if (i == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF))
            return 0;
        c = (c << 6) | (x & 0x3F);
    }
    *cp = c;
    return len;
}

int clip_tok_u32_from_utf8(clip_tok_u32 *s, const char *p, size_t n)
{
    const uint8_t *u = (const uint8_t *)p;
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        size_t len = utf8_seq(u + i, n - i, &c);
        if (len == 0) {
            c = 0xFFFD;
            len = 1;
        }
        if (clip_tok_u32_push(s, c) != 0)
            return WP_ENOMEM;
        i += len;
    }
    return 0;
}

int clip_tok_u32_to_utf8(const uint32_t *p, size_t n, wp_buf *out)
{
    if (wp_buf_reserve(out, n * 4 + 1) != 0)
        return WP_ENOMEM;
    char *o = out->data + out->len;
    for (size_t i = 0; i < n; i++)
        o += wp_utf8_put(p[i], o);
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static int u32_eq(const clip_tok_u32 *a, const clip_tok_u32 *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* Replaces *dst by *src (src is left empty). */
static void u32_move(clip_tok_u32 *dst, clip_tok_u32 *src)
{
    clip_tok_u32_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static int u32_copy(clip_tok_u32 *dst, const uint32_t *p, size_t n)
{
    dst->n = 0;
    return clip_tok_u32_append(dst, p, n);
}

/* ---- character properties ----------------------------------------------- */

uint32_t clip_tok_class_of(uint32_t c)
{
    if (c < 0x80)
        return c == ' ' ? CLIP_TOK_C_CONT : 0; /* a space may stand for 0xA0 */
    size_t lo = 0, hi = clip_tok_cpclasses_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (clip_tok_cpclasses[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < clip_tok_cpclasses_n && clip_tok_cpclasses[lo].cp == c)
        return clip_tok_cpclasses[lo].mask;
    return 0;
}

/* Python's str.isspace() (Py_UNICODE_ISSPACE), which is what `\s` and
 * str.strip() use for str patterns. */
static int py_isspace(uint32_t c)
{
    if (c < 0x80)
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return 1;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

static int is_letter_cat(int cat)
{
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT || cat == UTF8PROC_CATEGORY_LM ||
           cat == UTF8PROC_CATEGORY_LO;
}

static int is_number_cat(int cat)
{
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL ||
           cat == UTF8PROC_CATEGORY_NO;
}

/* Python's `\w` for str patterns: alphanumerics and '_'. */
static int py_isword(uint32_t c)
{
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    int cat = utf8proc_category((utf8proc_int32_t)c);
    return is_letter_cat(cat) || is_number_cat(cat);
}

/* ---- the badness heuristic (ftfy/badness.py BADNESS_RE) ----------------- */

#define BADNESS_CLASSES ((CLIP_TOK_C_BOX << 1) - 1) /* the classes BADNESS_RE uses */

enum pel_kind { PEL_SET = 0, PEL_WORD, PEL_SPACE, PEL_ANY, PEL_NOT_AZ, PEL_END };

/* One position of a pattern: a class mask plus a few literal code points. */
typedef struct pel {
    uint8_t kind;
    uint32_t mask;
    uint32_t lit[20]; /* zero-terminated */
} pel;

typedef struct pattern {
    int bol; /* anchored at the start of the text */
    pel el[7];
} pattern;

#define S(m)                                                                                       \
    {                                                                                              \
        PEL_SET, (m),                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
#define SL(m, ...)                                                                                 \
    {                                                                                              \
        PEL_SET, (m),                                                                              \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define L(...)                                                                                     \
    {                                                                                              \
        PEL_SET, 0,                                                                                \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

enum {
    C_COMMON = CLIP_TOK_C_COMMON,
    C_C1 = CLIP_TOK_C_C1,
    C_BAD = CLIP_TOK_C_BAD,
    C_LAW = CLIP_TOK_C_LAW,
    C_CUR = CLIP_TOK_C_CUR,
    C_START = CLIP_TOK_C_START,
    C_END = CLIP_TOK_C_END,
    C_NUM = CLIP_TOK_C_NUM,
    C_KAO = CLIP_TOK_C_KAO,
    C_UACC = CLIP_TOK_C_UACC,
    C_LACC = CLIP_TOK_C_LACC,
    C_UCOM = CLIP_TOK_C_UCOM,
    C_LCOM = CLIP_TOK_C_LCOM,
    C_BOX = CLIP_TOK_C_BOX,
    C_AZL = CLIP_TOK_C_AZL,
    C_AZU = CLIP_TOK_C_AZU,
};

/* The alternatives of BADNESS_RE, in its order. */
static const pattern badness[] = {
    {0, {S(C_C1)}},
    {0, {S(C_BAD | C_LACC | C_UACC | C_BOX | C_START | C_END | C_CUR | C_NUM | C_LAW), S(C_BAD)}},
    {0, {S(C_AZL | C_AZU), S(C_LCOM | C_UCOM), S(C_BAD)}},
    {0, {S(C_BAD), S(C_LACC | C_UACC | C_BOX | C_START | C_END | C_CUR | C_NUM | C_LAW)}},
    {0, {S(C_LACC | C_LCOM | C_BOX | C_END | C_CUR | C_NUM), S(C_UACC)}},
    {0, {S(C_BOX | C_END | C_CUR | C_NUM), S(C_LACC)}},
    {0, {S(C_LACC | C_BOX | C_END), S(C_CUR)}},
    {0, {{PEL_SPACE, 0, {0}}, S(C_UACC), S(C_CUR)}},
    {0, {S(C_UACC | C_BOX), S(C_NUM | C_LAW)}},
    {0, {S(C_LACC | C_UACC | C_BOX | C_CUR | C_END), S(C_START), S(C_NUM)}},
    {0, {S(C_LACC | C_UACC | C_CUR | C_NUM | C_BOX | C_LAW), S(C_END), S(C_START)}},
    {0, {S(C_CUR | C_NUM | C_BOX), S(C_START)}},
    {0, {S(C_AZL), S(C_UACC), S(C_START | C_CUR)}},
    {0, {S(C_BOX), S(C_KAO)}},
    {0, {S(C_LACC | C_UACC | C_CUR | C_NUM | C_START | C_END | C_LAW), S(C_BOX)}},
    {0, {S(C_BOX), S(C_END)}},
    {0, {S(C_LACC | C_UACC), S(C_START | C_END), {PEL_WORD, 0, {0}}}},
    /* the ligature oe when not followed by an unaccented Latin letter */
    {0, {L(0x152, 0x153), {PEL_NOT_AZ, 0, {0}}}},
    /* degree signs after capital letters */
    {0, {S(C_UACC), L(0xB0)}},
    /* common Windows-1252 two-character mojibake */
    {0,
     {L(0xC2, 0xC3, 0xCE, 0xD0),
      SL(C_START | C_END, 0x20AC, 0x153, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0, 0xAD, 0xAE,
         0xA9, 0xB0, 0xB7, 0xBB, 0x2013, 0x2014, 0xB4)}},
    {0, {L(0xD7), L(0xB2, 0xB3)}},
    /* Windows-1252 mojibake of Arabic: four characters */
    {0,
     {L(0xD8, 0xD9),
      SL(C_COMMON | C_CUR | C_BAD | C_NUM | C_START, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB),
      L(0xD8, 0xD9),
      SL(C_COMMON | C_CUR | C_BAD | C_NUM | C_START, 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB)}},
    /* Windows-1252 mojibake starting three-byte South Asian letters */
    {0, {L(0xE0), L(0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE)}},
    /* MacRoman mojibake */
    {0,
     {L(0x221A),
      L(0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5, 0xB5, 0xF8)}},
    {0, {L(0x2248), L(0xB0, 0xA2)}},
    {0,
     {L(0x201A), L(0xC4),
      L(0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0)}},
    {0, {L(0x201A), L(0xE2, 0xF3), L(0xE0, 0xE4, 0xB0, 0xEA)}},
    /* Windows-1251 mojibake */
    {0, {L(0x432), L(0x402)}},
    {0,
     {L(0x412, 0x413, 0x420, 0x421), SL(C_C1 | C_BAD | C_START | C_END | C_CUR, 0xB0, 0xB5),
      L(0x412, 0x413, 0x420, 0x421)}},
    {0,
     {L(0x413), L(0x45E), L(0x412), L(0x402), L(0x412), {PEL_ANY, 0, {0}}, SL(C_AZL | C_AZU, ' ')}},
    /* Windows-1252 encodings of a-grave, a-acute and no-break space */
    {0, {L(0xC3), L(0xA0, 0xA1)}},
    {0, {S(C_AZL), L(0xC3, 0xC2), L(' ')}},
    {0, {S(C_AZL), {PEL_SPACE, 0, {0}}, L(0xC3, 0xC2), L(' ')}},
    {1, {L(0xC3, 0xC2), L(' ')}},
    {0, {SL(C_AZL | C_END, '.', ',', '?', '!'), L(0xC2), SL(C_START | C_END, ' ')}},
    /* Windows-1253 mojibake */
    {0, {L(0x3B2), L(0x20AC), L(0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0)}},
    {0,
     {L(0x392, 0x393, 0x39E, 0x39F), SL(C_C1 | C_BAD | C_START | C_END | C_CUR, 0xB0),
      L(0x392, 0x393, 0x39E, 0x39F)}},
    /* Windows-1257 mojibake */
    {0, {L(0x101), L(0x20AC)}},
};

#undef S
#undef SL
#undef L

static int pel_match(const pel *e, uint32_t c, uint32_t cls)
{
    switch (e->kind) {
    case PEL_WORD:
        return py_isword(c);
    case PEL_SPACE:
        return py_isspace(c);
    case PEL_ANY:
        return c != '\n';
    case PEL_NOT_AZ:
        return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    default:
        break;
    }
    if (cls & e->mask)
        return 1;
    if ((e->mask & C_AZL) && c >= 'a' && c <= 'z')
        return 1;
    if ((e->mask & C_AZU) && c >= 'A' && c <= 'Z')
        return 1;
    for (int i = 0; i < 20 && e->lit[i] != 0; i++)
        if (e->lit[i] == c)
            return 1;
    return 0;
}

static int pattern_len(const pattern *p)
{
    int k = 0;
    while (k < 7 && !(p->el[k].kind == PEL_SET && p->el[k].mask == 0 && p->el[k].lit[0] == 0))
        k++;
    return k;
}

#define N_BADNESS (sizeof badness / sizeof badness[0])
static int badness_len[N_BADNESS];
static pthread_once_t badness_once = PTHREAD_ONCE_INIT;

static void badness_lengths(void)
{
    for (size_t k = 0; k < N_BADNESS; k++)
        badness_len[k] = pattern_len(&badness[k]);
}

static int is_bad_u32(const uint32_t *t, size_t n)
{
    /* Every alternative needs at least one character with a class bit, and
     * almost all text has none: check that first. */
    int any = 0;
    for (size_t i = 0; i < n && !any; i++)
        any = (clip_tok_class_of(t[i]) & BADNESS_CLASSES) != 0;
    if (!any)
        return 0;
    uint32_t small[256];
    uint32_t *cls = n <= 256 ? small : malloc(n * sizeof *cls);
    if (cls == NULL)
        return 1; /* out of memory: say bad, which only costs a retry */
    for (size_t i = 0; i < n; i++)
        cls[i] = clip_tok_class_of(t[i]);
    int bad = 0;
    size_t np = sizeof badness / sizeof badness[0];
    pthread_once(&badness_once, badness_lengths);
    size_t j = 0; /* the next position at or after i with a class bit */
    for (size_t i = 0; i < n && !bad; i++) {
        /* every alternative spans at most 7 code points and holds at least
         * one with a class bit: skip stretches without one */
        if (j < i) {
            j = i;
            while (j < n && !(cls[j] & BADNESS_CLASSES))
                j++;
        }
        if (j >= n)
            break;
        if (j > i + 6) {
            i = j - 7;
            continue;
        }
        for (size_t k = 0; k < np && !bad; k++) {
            const pattern *p = &badness[k];
            if (p->bol && i != 0)
                continue;
            int len = badness_len[k];
            if (i + (size_t)len > n)
                continue;
            int j = 0;
            while (j < len && pel_match(&p->el[j], t[i + (size_t)j], cls[i + (size_t)j]))
                j++;
            bad = j == len;
        }
    }
    if (cls != small)
        free(cls);
    return bad;
}

/* ---- single-byte code pages --------------------------------------------- */

typedef struct cp_rev {
    uint32_t cp;
    uint8_t byte;
} cp_rev;

/* Reverse maps of the code pages for bytes 0x80-0xFF and 0x1A, sorted. */
static cp_rev rev[CLIP_TOK_N_CODEPAGES][129];
static pthread_once_t rev_once = PTHREAD_ONCE_INIT;

static int cp_rev_cmp(const void *a, const void *b)
{
    uint32_t x = ((const cp_rev *)a)->cp, y = ((const cp_rev *)b)->cp;
    return x < y ? -1 : x > y;
}

static void rev_build(void)
{
    for (int e = 0; e < CLIP_TOK_N_CODEPAGES; e++) {
        int k = 0;
        for (int b = 0x80; b < 0x100; b++)
            rev[e][k++] = (cp_rev){clip_tok_codepages[e].dec[b], (uint8_t)b};
        rev[e][k++] = (cp_rev){clip_tok_codepages[e].dec[0x1A], 0x1A};
        qsort(rev[e], 129, sizeof(cp_rev), cp_rev_cmp);
    }
}

/* The byte that code point c encodes to in code page e, or -1. This is
 * ftfy's possible_encoding() per character: ASCII except 0x1A, plus what
 * bytes 0x80-0xFF and 0x1A decode to. */
static int cp_encode(int e, uint32_t c)
{
    if (c < 0x80 && c != 0x1A)
        return (int)c;
    size_t lo = 0, hi = 129;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rev[e][mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < 129 && rev[e][lo].cp == c)
        return rev[e][lo].byte;
    return -1;
}

/* ---- byte-level repairs (ftfy/fixes.py) --------------------------------- */

static int in(uint8_t b, uint8_t lo, uint8_t hi)
{
    return b >= lo && b <= hi;
}

/* chardata.ALTERED_UTF8_RE at p: the match length, or 0. */
static size_t altered_at(const uint8_t *p, size_t n)
{
    /* [\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf] and friends exclude 0x85 and 0xA0 */
#define CONT_NO_85_A0(x) (in((x), 0x80, 0xBF) && (x) != 0x85 && (x) != 0xA0)
    uint8_t b = p[0];
    if (n >= 2 && (b == 0xC2 || b == 0xC3 || b == 0xC5 || b == 0xCE || b == 0xD0 || b == 0xD9) &&
        p[1] == ' ')
        return 2;
    if (n >= 3 && (b == 0xE2 || b == 0xE3) && p[1] == ' ' && CONT_NO_85_A0(p[2]))
        return 3;
    if (n >= 3 && in(b, 0xE0, 0xE3) && CONT_NO_85_A0(p[1]) && p[2] == ' ')
        return 3;
    if (n >= 4 && b == 0xF0) {
        if (p[1] == ' ' && in(p[2], 0x80, 0xBF) && in(p[3], 0x80, 0xBF))
            return 4;
        if (in(p[1], 0x80, 0xBF) && p[2] == ' ' && in(p[3], 0x80, 0xBF))
            return 4;
        if (in(p[1], 0x80, 0xBF) && in(p[2], 0x80, 0xBF) && p[3] == ' ')
            return 4;
    }
#undef CONT_NO_85_A0
    return 0;
}

static int altered_search(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (altered_at(p + i, n - i))
            return 1;
    return 0;
}

/* fixes.restore_byte_a0: first "\xc3 " (a-grave before a space, except
 * before the Portuguese contractions) gets its 0xA0 back, then every
 * ALTERED_UTF8_RE match has its spaces turned into 0xA0. */
static int restore_byte_a0(const wp_buf *in_, wp_buf *out)
{
    const uint8_t *p = (const uint8_t *)in_->data;
    size_t n = in_->len;
    wp_buf tmp = {0};
    int rc = WP_ENOMEM;
    for (size_t i = 0; i < n;) {
        if (p[i] == 0xC3 && i + 1 < n && p[i + 1] == ' ') {
            const char *rest = (const char *)p + i + 2;
            size_t rn = n - i - 2;
            int skip = (rn >= 1 && rest[0] == ' ') || (rn >= 5 && memcmp(rest, "quele", 5) == 0) ||
                       (rn >= 5 && memcmp(rest, "quela", 5) == 0) ||
                       (rn >= 5 && memcmp(rest, "quilo", 5) == 0) ||
                       (rn >= 2 && memcmp(rest, "s ", 2) == 0);
            if (!skip) {
                if (wp_buf_append(&tmp, "\xc3\xa0 ", 3) != 0)
                    goto out;
                i += 2;
                continue;
            }
        }
        if (wp_buf_putc(&tmp, p[i]) != 0)
            goto out;
        i++;
    }
    out->len = 0;
    p = (const uint8_t *)tmp.data;
    n = tmp.len;
    for (size_t i = 0; i < n;) {
        size_t m = altered_at(p + i, n - i);
        if (m == 0) {
            if (wp_buf_putc(out, p[i]) != 0)
                goto out;
            i++;
            continue;
        }
        for (size_t k = 0; k < m; k++)
            if (wp_buf_putc(out, p[i + k] == ' ' ? 0xA0 : p[i + k]) != 0)
                goto out;
        i += m;
    }
    rc = 0;
out:
    wp_buf_free(&tmp);
    return rc;
}

/* chardata.LOSSY_UTF8_RE at p: the match length, or 0. Byte 0x1A stands for
 * a character a sloppy code page could not represent (U+FFFD). */
static size_t lossy_at(const uint8_t *p, size_t n)
{
#define SUB(x)   ((x) == 0x1A)
#define SUBQ(x)  ((x) == 0x1A || (x) == '?')
#define SUBC(x)  ((x) == 0x1A || in((x), 0x80, 0xBF))
#define SUBQC(x) ((x) == 0x1A || (x) == '?' || in((x), 0x80, 0xBF))
    uint8_t b = p[0];
    if (n >= 2 && in(b, 0xC2, 0xDF) && SUB(p[1]))
        return 2;
    if (n >= 2 && in(b, 0xC2, 0xC3) && p[1] == '?')
        return 2;
    if (n >= 6 && b == 0xED && in(p[1], 0xA0, 0xAF) && SUBQ(p[2]) && p[3] == 0xED &&
        in(p[4], 0xB0, 0xBF) && SUBQC(p[5]))
        return 6;
    if (n >= 6 && b == 0xED && in(p[1], 0xA0, 0xAF) && SUBQC(p[2]) && p[3] == 0xED &&
        in(p[4], 0xB0, 0xBF) && SUBQ(p[5]))
        return 6;
    if (n >= 3 && in(b, 0xE0, 0xEF) && SUBQ(p[1]) && SUBC(p[2]))
        return 3;
    if (n >= 3 && in(b, 0xE0, 0xEF) && SUBC(p[1]) && SUBQ(p[2]))
        return 3;
    if (n >= 4 && in(b, 0xF0, 0xF4)) {
        if (SUBQ(p[1]) && SUBC(p[2]) && SUBC(p[3]))
            return 4;
        if (SUBC(p[1]) && SUBQ(p[2]) && SUBC(p[3]))
            return 4;
        if (SUBC(p[1]) && SUBC(p[2]) && SUBQ(p[3]))
            return 4;
    }
    if (SUB(b))
        return 1;
#undef SUB
#undef SUBQ
#undef SUBC
#undef SUBQC
    return 0;
}

/* fixes.replace_lossy_sequences: each LOSSY_UTF8_RE match becomes the UTF-8
 * of U+FFFD. */
static int replace_lossy(const wp_buf *in_, wp_buf *out)
{
    const uint8_t *p = (const uint8_t *)in_->data;
    size_t n = in_->len;
    out->len = 0;
    for (size_t i = 0; i < n;) {
        size_t m = lossy_at(p + i, n - i);
        if (m == 0) {
            if (wp_buf_putc(out, p[i]) != 0)
                return WP_ENOMEM;
            i++;
        } else {
            if (wp_buf_append(out, "\xef\xbf\xbd", 3) != 0)
                return WP_ENOMEM;
            i += m;
        }
    }
    return 0;
}

/* Python's strict UTF-8 decoding, or ftfy's "utf-8-variants" when variants
 * is set (also CESU-8 surrogate pairs and Java's C0 80 for U+0000).
 * Returns 0, 1 if the bytes do not decode, or WP_ENOMEM. */
static int decode_utf8_strict(const uint8_t *p, size_t n, int variants, clip_tok_u32 *out)
{
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        if (variants && p[i] == 0xC0 && i + 1 < n && p[i + 1] == 0x80) {
            c = 0;
            i += 2;
        } else if (variants && p[i] == 0xED && i + 5 < n && in(p[i + 1], 0xA0, 0xAF) &&
                   in(p[i + 2], 0x80, 0xBF) && p[i + 3] == 0xED && in(p[i + 4], 0xB0, 0xBF) &&
                   in(p[i + 5], 0x80, 0xBF)) {
            c = (((uint32_t)p[i + 1] & 0x0F) << 16) + (((uint32_t)p[i + 2] & 0x3F) << 10) +
                (((uint32_t)p[i + 4] & 0x0F) << 6) + ((uint32_t)p[i + 5] & 0x3F) + 0x10000;
            i += 6;
        } else {
            size_t len = utf8_seq(p + i, n - i, &c);
            if (len == 0)
                return 1;
            i += len;
        }
        if (clip_tok_u32_push(out, c) != 0)
            return WP_ENOMEM;
    }
    return 0;
}

/* ---- fix_encoding -------------------------------------------------------- */

static int fix_encoding_u32(clip_tok_u32 *text);

/* chardata.UTF8_DETECTOR_RE at position i: the match length, or 0. */
static size_t utf8_detect_at(const uint32_t *t, size_t n, size_t i)
{
    if (i > 0 && (clip_tok_class_of(t[i - 1]) & CLIP_TOK_C_CONTS))
        return 0;
    size_t p = i;
    for (;;) {
        uint32_t c0 = clip_tok_class_of(t[p]);
#define CONT(k) (p + (k) < n && (clip_tok_class_of(t[p + (k)]) & CLIP_TOK_C_CONT))
        if ((c0 & CLIP_TOK_C_F2) && CONT(1))
            p += 2;
        else if ((c0 & CLIP_TOK_C_F3) && CONT(1) && CONT(2))
            p += 3;
        else if ((c0 & CLIP_TOK_C_F4) && CONT(1) && CONT(2) && CONT(3))
            p += 4;
        else
            break;
#undef CONT
        if (p >= n)
            break;
    }
    return p - i;
}

/* fixes.decode_inconsistent_utf8: fixes each UTF-8-looking run on its own. */
static int decode_inconsistent_utf8(const clip_tok_u32 *text, clip_tok_u32 *out)
{
    clip_tok_u32 sub = {0};
    int rc = WP_ENOMEM;
    out->n = 0;
    for (size_t i = 0; i < text->n;) {
        size_t m = utf8_detect_at(text->v, text->n, i);
        if (m == 0) {
            if (clip_tok_u32_push(out, text->v[i]) != 0)
                goto out;
            i++;
            continue;
        }
        if (u32_copy(&sub, text->v + i, m) != 0)
            goto out;
        if (m < text->n && is_bad_u32(sub.v, sub.n)) {
            int r = fix_encoding_u32(&sub);
            if (r != 0) {
                rc = r;
                goto out;
            }
        }
        if (clip_tok_u32_append(out, sub.v, sub.n) != 0)
            goto out;
        i += m;
    }
    rc = 0;
out:
    clip_tok_u32_free(&sub);
    return rc;
}

static int has_c1(const clip_tok_u32 *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i] >= 0x80 && t->v[i] <= 0x9F)
            return 1;
    return 0;
}

/* fixes.fix_c1_controls: C1 controls read as Windows-1252 (sloppy: the five
 * bytes Windows-1252 leaves undefined stay as they are). Returns 1 if
 * anything changed. */
static int fix_c1_controls(clip_tok_u32 *t)
{
    int changed = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i] >= 0x80 && t->v[i] <= 0x9F) {
            uint32_t c = clip_tok_codepages[CLIP_TOK_CP_SLOPPY1252].dec[t->v[i]];
            changed |= c != t->v[i];
            t->v[i] = c;
        }
    return changed;
}

/* ftfy's _fix_encoding_one_step_and_explain: *changed is set when text was
 * replaced. Returns 0 or WP_ENOMEM. */
static int fix_encoding_step(clip_tok_u32 *text, int *changed)
{
    *changed = 0;
    if (text->n == 0)
        return 0;
    int ascii = 1;
    for (size_t i = 0; i < text->n && ascii; i++)
        ascii = text->v[i] < 0x80;
    if (ascii || !is_bad_u32(text->v, text->n))
        return 0;
    pthread_once(&rev_once, rev_build);

    int rc = WP_ENOMEM;
    wp_buf bytes = {0}, tmp = {0};
    clip_tok_u32 fixed = {0};
    int possible_latin1 = 0;
    for (int e = 0; e < CLIP_TOK_N_CODEPAGES; e++) {
        bytes.len = 0;
        int ok = 1;
        if (wp_buf_reserve(&bytes, text->n + 1) != 0)
            goto out;
        for (size_t i = 0; i < text->n && ok; i++) {
            int b = cp_encode(e, text->v[i]);
            if (b < 0)
                ok = 0;
            else
                bytes.data[bytes.len++] = (char)b;
        }
        if (!ok)
            continue;
        bytes.data[bytes.len] = '\0';
        if (e == CLIP_TOK_CP_LATIN1)
            possible_latin1 = 1;
        if (e != CLIP_TOK_CP_MACROMAN && altered_search((const uint8_t *)bytes.data, bytes.len)) {
            if (restore_byte_a0(&bytes, &tmp) != 0)
                goto out;
            wp_buf swap = bytes;
            bytes = tmp;
            tmp = swap;
        }
        if (clip_tok_codepages[e].sloppy) {
            if (replace_lossy(&bytes, &tmp) != 0)
                goto out;
            wp_buf swap = bytes;
            bytes = tmp;
            tmp = swap;
        }
        int variants = memchr(bytes.data, 0xED, bytes.len) != NULL ||
                       memchr(bytes.data, 0xC0, bytes.len) != NULL;
        int r = decode_utf8_strict((const uint8_t *)bytes.data, bytes.len, variants, &fixed);
        if (r == WP_ENOMEM)
            goto out;
        if (r == 0) {
            *changed = !u32_eq(&fixed, text);
            u32_move(text, &fixed);
            rc = 0;
            goto out;
        }
    }

    /* a-hat-euro sequences embedded in otherwise sound text */
    int detected = 0;
    for (size_t i = 0; i < text->n && !detected; i++)
        detected = utf8_detect_at(text->v, text->n, i) > 0;
    if (detected) {
        int r = decode_inconsistent_utf8(text, &fixed);
        if (r != 0) {
            rc = r;
            goto out;
        }
        if (!u32_eq(&fixed, text)) {
            *changed = 1;
            u32_move(text, &fixed);
            rc = 0;
            goto out;
        }
    }

    /* Latin-1 meant as Windows-1252 (ftfy tests for "windows-1252" among the
     * possible encodings, which never holds, so this always runs). */
    if (possible_latin1) {
        if (u32_copy(&fixed, text->v, text->n) != 0)
            goto out;
        int ok = 1, diff = 0;
        for (size_t i = 0; i < fixed.n && ok; i++) {
            uint32_t c = fixed.v[i];
            if (c >= 0x80 && c <= 0x9F) {
                uint16_t d = clip_tok_cp1252_strict[c - 0x80];
                if (d == 0)
                    ok = 0;
                else if (d != c) {
                    fixed.v[i] = d;
                    diff = 1;
                }
            }
        }
        if (ok && diff) {
            *changed = 1;
            u32_move(text, &fixed);
            rc = 0;
            goto out;
        }
    }

    /* ftfy's loop stops when a step leaves the text as it was */
    if (has_c1(text))
        *changed = fix_c1_controls(text);
    rc = 0;
out:
    wp_buf_free(&bytes);
    wp_buf_free(&tmp);
    clip_tok_u32_free(&fixed);
    return rc;
}

static int fix_encoding_u32(clip_tok_u32 *text)
{
    for (;;) {
        int changed;
        int rc = fix_encoding_step(text, &changed);
        if (rc != 0)
            return rc;
        if (!changed)
            return 0;
    }
}

/* ---- HTML character references ------------------------------------------ */

static int entity_cmp(const char *key, size_t klen, const char *name)
{
    size_t nl = strlen(name);
    int c = memcmp(key, name, klen < nl ? klen : nl);
    if (c != 0)
        return c;
    return klen < nl ? -1 : klen > nl;
}

static const char *entity_find(const clip_tok_entity *tab, size_t n, const char *key, size_t klen)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = entity_cmp(key, klen, tab[mid].name);
        if (c == 0)
            return tab[mid].value;
        if (c > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int append_utf8_str(clip_tok_u32 *out, const char *s)
{
    return clip_tok_u32_from_utf8(out, s, strlen(s));
}

static int is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

/* The code point html.unescape gives a numeric reference (0 = nothing). */
static uint32_t charref_value(uint64_t num, int *empty)
{
    *empty = 0;
    for (size_t i = 0; i < clip_tok_invalid_charrefs_n; i++)
        if (clip_tok_invalid_charrefs[i].from == num)
            return clip_tok_invalid_charrefs[i].to;
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
        return 0xFFFD;
    for (size_t i = 0; i < clip_tok_invalid_codepoints_n; i++)
        if (clip_tok_invalid_codepoints[i] == num) {
            *empty = 1;
            return 0;
        }
    return (uint32_t)num;
}

/* Python's html.unescape over code points: the regex
 * &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and
 * _replace_charref. */
static int html_unescape_u32(const uint32_t *t, size_t n, clip_tok_u32 *out)
{
    out->n = 0;
    for (size_t i = 0; i < n;) {
        if (t[i] != '&' || i + 1 >= n) {
            if (clip_tok_u32_push(out, t[i]) != 0)
                return WP_ENOMEM;
            i++;
            continue;
        }
        size_t j = i + 1;
        if (t[j] == '#') {
            int hex = 0;
            size_t k = j + 1;
            if (k < n && is_digit(t[k])) {
                hex = 0;
            } else if (k + 1 < n && (t[k] == 'x' || t[k] == 'X') && wp_hex_digit(t[k + 1]) >= 0) {
                hex = 1;
                k++;
            } else {
                /* no reference here: '&' stays */
                if (clip_tok_u32_push(out, t[i]) != 0)
                    return WP_ENOMEM;
                i++;
                continue;
            }
            uint64_t num = 0;
            while (k < n && (hex ? wp_hex_digit(t[k]) >= 0 : is_digit(t[k]))) {
                uint32_t d = (uint32_t)wp_hex_digit(t[k]);
                if (num <= 0x10FFFF)
                    num = num * (hex ? 16 : 10) + d; /* saturates above 0x10FFFF */
                k++;
            }
            if (k < n && t[k] == ';')
                k++;
            int empty;
            uint32_t c = charref_value(num, &empty);
            if (!empty && clip_tok_u32_push(out, c) != 0)
                return WP_ENOMEM;
            i = k;
            continue;
        }
        /* a named reference: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < NAMED_REF_MAX && t[k] != '\t' && t[k] != '\n' && t[k] != '\f' &&
               t[k] != ' ' && t[k] != '<' && t[k] != '&' && t[k] != '#' && t[k] != ';')
            k++;
        if (k == j) {
            if (clip_tok_u32_push(out, t[i]) != 0)
                return WP_ENOMEM;
            i++;
            continue;
        }
        if (k < n && t[k] == ';')
            k++;
        /* the name as ASCII; names never hold anything else */
        char name[NAMED_REF_MAX + 2];
        size_t alen = 0;
        while (j + alen < k && t[j + alen] < 0x80) {
            name[alen] = (char)t[j + alen];
            alen++;
        }
        size_t slen = k - j;
        const char *v =
            alen == slen ? entity_find(clip_tok_html5, clip_tok_html5_n, name, slen) : NULL;
        size_t used = slen;
        if (v == NULL) {
            for (size_t x = slen - 1; x > 1; x--) {
                if (x > alen)
                    continue;
                v = entity_find(clip_tok_html5, clip_tok_html5_n, name, x);
                if (v != NULL) {
                    used = x;
                    break;
                }
            }
        }
        if (v == NULL) {
            if (clip_tok_u32_append(out, t + i, k - i) != 0)
                return WP_ENOMEM;
        } else {
            if (append_utf8_str(out, v) != 0 ||
                clip_tok_u32_append(out, t + j + used, slen - used) != 0)
                return WP_ENOMEM;
        }
        i = k;
    }
    return 0;
}

/* fixes.unescape_html: only &#?[0-9A-Za-z]{1,24}; references, the HTML5
 * names ending in ';' and their all-caps spellings, and numeric references
 * that html.unescape decodes whole. */
static int ftfy_unescape_html(const clip_tok_u32 *text, clip_tok_u32 *out)
{
    clip_tok_u32 tmp = {0};
    int rc = WP_ENOMEM;
    out->n = 0;
    const uint32_t *t = text->v;
    size_t n = text->n;
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        if (t[i] == '&') {
            size_t j = i + 1;
            if (j < n && t[j] == '#')
                j++;
            size_t k = j;
            while (k < n && t[k] < 0x80 &&
                   (is_digit(t[k]) || ((t[k] | 0x20) >= 'a' && (t[k] | 0x20) <= 'z')))
                k++;
            if (k > j && k - j <= FTFY_ENTITY_MAX && k < n && t[k] == ';')
                m = k + 1 - i;
        }
        if (m == 0) {
            if (clip_tok_u32_push(out, t[i]) != 0)
                goto out;
            i++;
            continue;
        }
        char key[FTFY_ENTITY_MAX + 4];
        for (size_t q = 1; q < m; q++)
            key[q - 1] = (char)t[i + q];
        size_t klen = m - 1; /* without '&', with ';' */
        const char *v = NULL;
        if (key[0] != '#') {
            v = entity_find(clip_tok_html5, clip_tok_html5_n, key, klen);
            if (v == NULL)
                v = entity_find(clip_tok_html_upper, clip_tok_html_upper_n, key, klen);
        }
        if (v != NULL) {
            if (append_utf8_str(out, v) != 0)
                goto out;
        } else if (key[0] == '#') {
            if (html_unescape_u32(t + i, m, &tmp) != 0)
                goto out;
            int semi = 0;
            for (size_t q = 0; q < tmp.n; q++)
                semi |= tmp.v[q] == ';';
            if (semi ? clip_tok_u32_append(out, t + i, m) : clip_tok_u32_append(out, tmp.v, tmp.n))
                goto out;
        } else {
            if (clip_tok_u32_append(out, t + i, m) != 0)
                goto out;
        }
        i += m;
    }
    rc = 0;
out:
    clip_tok_u32_free(&tmp);
    return rc;
}

/* ---- the simple fixers --------------------------------------------------- */

/* chardata.LIGATURES */
static const char *ligature(uint32_t c)
{
    switch (c) {
    case 0x132:
        return "IJ";
    case 0x133:
        return "ij";
    case 0x149:
        return "\xca\xbcn";
    case 0x1F1:
        return "DZ";
    case 0x1F2:
        return "Dz";
    case 0x1F3:
        return "dz";
    case 0x1C4:
        return "D\xc5\xbd";
    case 0x1C5:
        return "D\xc5\xbe";
    case 0x1C6:
        return "d\xc5\xbe";
    case 0x1C7:
        return "LJ";
    case 0x1C8:
        return "Lj";
    case 0x1C9:
        return "lj";
    case 0x1CA:
        return "NJ";
    case 0x1CB:
        return "Nj";
    case 0x1CC:
        return "nj";
    case 0xFB00:
        return "ff";
    case 0xFB01:
        return "fi";
    case 0xFB02:
        return "fl";
    case 0xFB03:
        return "ffi";
    case 0xFB04:
        return "ffl";
    case 0xFB05:
        return "\xc5\xbft";
    case 0xFB06:
        return "st";
    default:
        return NULL;
    }
}

/* The one-character fixers of fix_and_explain, in ftfy's order:
 * fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
 * fix_line_breaks (fix_surrogates has nothing to do on code points read from
 * UTF-8), then remove_terminal_escapes and remove_control_chars. */
static int simple_fixes(clip_tok_u32 *text)
{
    clip_tok_u32 out = {0};
    int rc = WP_ENOMEM;
    (void)fix_c1_controls(text);
    for (size_t i = 0; i < text->n; i++) {
        uint32_t c = text->v[i];
        const char *rep = ligature(c);
        if (rep == NULL && c == 0x3000)
            rep = " ";
        if (rep == NULL && c >= 0xFF01 && c <= 0xFFEF && clip_tok_width_map[c - 0xFF01][0] != '\0')
            rep = clip_tok_width_map[c - 0xFF01];
        if (rep != NULL) {
            if (append_utf8_str(&out, rep) != 0)
                goto out;
            continue;
        }
        if (clip_tok_u32_push(&out, c) != 0)
            goto out;
    }
    /* uncurl_quotes: double first, then single; then line breaks */
    for (size_t i = 0; i < out.n; i++) {
        uint32_t c = out.v[i];
        if (c >= 0x201C && c <= 0x201F)
            out.v[i] = '"';
        else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))
            out.v[i] = '\'';
    }
    text->n = 0;
    for (size_t i = 0; i < out.n; i++) {
        uint32_t c = out.v[i];
        if (c == '\r') {
            if (i + 1 < out.n && out.v[i + 1] == '\n')
                i++;
            c = '\n';
        } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
            c = '\n';
        }
        if (clip_tok_u32_push(text, c) != 0)
            goto out;
    }
    /* remove_terminal_escapes: \033\[((?:\d|;)*)([a-zA-Z]) */
    out.n = 0;
    for (size_t i = 0; i < text->n;) {
        if (text->v[i] == 0x1B && i + 1 < text->n && text->v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < text->n &&
                   (text->v[k] == ';' ||
                    utf8proc_category((utf8proc_int32_t)text->v[k]) == UTF8PROC_CATEGORY_ND))
                k++;
            uint32_t c = k < text->n ? text->v[k] : 0;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                i = k + 1;
                continue;
            }
        }
        if (clip_tok_u32_push(&out, text->v[i]) != 0)
            goto out;
        i++;
    }
    /* remove_control_chars (chardata.CONTROL_CHARS) */
    text->n = 0;
    for (size_t i = 0; i < out.n; i++) {
        uint32_t c = out.v[i];
        if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
            (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
            continue;
        text->v[text->n++] = c; /* never longer than out, and text->cap >= out.n */
    }
    rc = 0;
out:
    clip_tok_u32_free(&out);
    return rc;
}

/* unicodedata.normalize('NFC', text) through utf8proc. */
static int nfc(clip_tok_u32 *text)
{
    int need = 0;
    for (size_t i = 0; i < text->n && !need; i++)
        need = text->v[i] >= 0x300;
    if (!need)
        return 0; /* nothing below U+0300 composes or decomposes */
    wp_buf b = {0};
    if (clip_tok_u32_to_utf8(text->v, text->n, &b) != 0)
        return WP_ENOMEM;
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)b.data, (utf8proc_ssize_t)b.len,
                                      &res, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    wp_buf_free(&b);
    if (r < 0)
        return r == UTF8PROC_ERROR_NOMEM ? WP_ENOMEM : 0; /* leave text as it is */
    text->n = 0;
    int rc = clip_tok_u32_from_utf8(text, (const char *)res, (size_t)r);
    free(res);
    return rc;
}

/* 1 if no fixer can change t: printable ASCII, tabs and newlines, no '&'
 * (most captions). */
static int plain_ascii(const clip_tok_u32 *t)
{
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->v[i];
        if (!((c >= 0x20 && c < 0x7F && c != '&') || c == '\t' || c == '\n'))
            return 0;
    }
    return 1;
}

/* ftfy.fix_and_explain on one segment. */
static int fix_segment(clip_tok_u32 *text, int unescape)
{
    clip_tok_u32 orig = {0}, tmp = {0};
    int rc = WP_ENOMEM;
    if (plain_ascii(text))
        return 0;
    for (;;) {
        if (u32_copy(&orig, text->v, text->n) != 0)
            goto out;
        if (unescape) {
            if (ftfy_unescape_html(text, &tmp) != 0)
                goto out;
            u32_move(text, &tmp);
        }
        if ((rc = fix_encoding_u32(text)) != 0)
            goto out;
        rc = WP_ENOMEM;
        if (simple_fixes(text) != 0 || nfc(text) != 0)
            goto out;
        if (u32_eq(text, &orig))
            break;
    }
    rc = 0;
out:
    clip_tok_u32_free(&orig);
    clip_tok_u32_free(&tmp);
    return rc;
}

/* ftfy.fix_text: lines (or 1M code point pieces) are fixed one by one; once
 * a piece contains '<', HTML entities are left alone from there on. */
static int ftfy_u32(const clip_tok_u32 *text, clip_tok_u32 *out)
{
    clip_tok_u32 seg = {0};
    int rc = WP_ENOMEM;
    int unescape = 1;
    out->n = 0;
    for (size_t pos = 0; pos < text->n;) {
        size_t end = pos;
        while (end < text->n && text->v[end] != '\n')
            end++;
        end = end < text->n ? end + 1 : end;
        if (end - pos > FTFY_MAX_SEGMENT)
            end = pos + FTFY_MAX_SEGMENT;
        if (u32_copy(&seg, text->v + pos, end - pos) != 0)
            goto out;
        for (size_t i = 0; i < seg.n && unescape; i++)
            if (seg.v[i] == '<')
                unescape = 0;
        if ((rc = fix_segment(&seg, unescape)) != 0)
            goto out;
        rc = WP_ENOMEM;
        if (clip_tok_u32_append(out, seg.v, seg.n) != 0)
            goto out;
        pos = end;
    }
    rc = 0;
out:
    clip_tok_u32_free(&seg);
    return rc;
}

/* ---- lower-casing --------------------------------------------------------- */

/* Unicode's Cased property (Python's _PyUnicode_IsCased), approximated from
 * utf8proc's data: cased letters, anything with a case mapping, and the
 * Other_Lowercase / Other_Uppercase ranges. */
static int is_cased(uint32_t c)
{
    int cat = utf8proc_category((utf8proc_int32_t)c);
    if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
        return 1;
    if (utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
        utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c)
        return 1;
    return c == 0xAA || c == 0xBA || (c >= 0x2B0 && c <= 0x2B8) || c == 0x2C0 || c == 0x2C1 ||
           (c >= 0x2E0 && c <= 0x2E4) || c == 0x345 || c == 0x37A || (c >= 0x1D2C && c <= 0x1D6A) ||
           c == 0x1D78 || (c >= 0x1D9B && c <= 0x1DBF) || c == 0x2071 || c == 0x207F ||
           (c >= 0x2090 && c <= 0x209C) || (c >= 0x2160 && c <= 0x217F) ||
           (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x2C7C && c <= 0x2C7D) ||
           (c >= 0xA69C && c <= 0xA69D) || c == 0xA770 || (c >= 0xA7F8 && c <= 0xA7F9) ||
           (c >= 0xAB5C && c <= 0xAB5F);
}

/* Unicode's Case_Ignorable property (Python's _PyUnicode_IsCaseIgnorable). */
static int is_case_ignorable(uint32_t c)
{
    int cat = utf8proc_category((utf8proc_int32_t)c);
    if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
        cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK)
        return 1;
    switch (c) { /* Word_Break MidLetter, MidNumLet, Single_Quote */
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
        return 1;
    default:
        return 0;
    }
}

/* Python's str.lower() mapping of one code point (generated table), or NULL
 * when it has none. */
static const clip_tok_lower *lower_of(uint32_t c)
{
    size_t lo = 0, hi = clip_tok_lowers_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (clip_tok_lowers[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < clip_tok_lowers_n && clip_tok_lowers[lo].cp == c ? &clip_tok_lowers[lo] : NULL;
}

/* Python's str.lower(): full lower-case mapping (U+0130 becomes "i\u0307")
 * and the Final_Sigma rule for U+03A3. */
static int py_lower(const clip_tok_u32 *t, clip_tok_u32 *out)
{
    out->n = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->v[i];
        if (c < 0x80) {
            if (clip_tok_u32_push(out, (c >= 'A' && c <= 'Z') ? c + 32 : c) != 0)
                return WP_ENOMEM;
            continue;
        }
        if (c == 0x3A3) {
            size_t j = i;
            uint32_t p = 0;
            int found = 0;
            while (j > 0) {
                p = t->v[--j];
                if (!is_case_ignorable(p)) {
                    found = 1;
                    break;
                }
            }
            int final_sigma = found && is_cased(p);
            if (final_sigma) {
                size_t k = i + 1;
                while (k < t->n && is_case_ignorable(t->v[k]))
                    k++;
                final_sigma = k == t->n || !is_cased(t->v[k]);
            }
            if (clip_tok_u32_push(out, final_sigma ? 0x3C2 : 0x3C3) != 0)
                return WP_ENOMEM;
            continue;
        }
        const clip_tok_lower *lw = lower_of(c);
        if (lw == NULL ? clip_tok_u32_push(out, c) != 0
                       : (clip_tok_u32_push(out, lw->lo1) != 0 ||
                          (lw->lo2 != 0 && clip_tok_u32_push(out, lw->lo2) != 0)))
            return WP_ENOMEM;
    }
    return 0;
}

/* ---- the whole cleaning ---------------------------------------------------- */

/* str.strip() */
static void py_strip(clip_tok_u32 *t)
{
    size_t a = 0, b = t->n;
    while (a < b && py_isspace(t->v[a]))
        a++;
    while (b > a && py_isspace(t->v[b - 1]))
        b--;
    if (a > 0 && b > a)
        memmove(t->v, t->v + a, (b - a) * sizeof *t->v);
    t->n = b - a;
}

/* re.sub(r'\s+', ' ', text).strip() */
static void whitespace_clean(clip_tok_u32 *t)
{
    size_t o = 0;
    for (size_t i = 0; i < t->n;) {
        if (py_isspace(t->v[i])) {
            while (i < t->n && py_isspace(t->v[i]))
                i++;
            t->v[o++] = ' ';
        } else {
            t->v[o++] = t->v[i++];
        }
    }
    t->n = o;
    py_strip(t);
}

/* The whole of SimpleTokenizer's cleaning, on code points. Used by
 * tokenizer.c through clip_tok_clean_u32. */
int clip_tok_clean_u32(const char *text, size_t n, clip_tok_u32 *out);
int clip_tok_clean_u32(const char *text, size_t n, clip_tok_u32 *out)
{
    clip_tok_u32 a = {0}, b = {0};
    int rc = WP_ENOMEM;
    if (clip_tok_u32_from_utf8(&a, text, n) != 0)
        goto out;
    if ((rc = ftfy_u32(&a, &b)) != 0)
        goto out;
    rc = WP_ENOMEM;
    if (html_unescape_u32(b.v, b.n, &a) != 0 || html_unescape_u32(a.v, a.n, &b) != 0)
        goto out;
    py_strip(&b);
    whitespace_clean(&b);
    if (py_lower(&b, out) != 0)
        goto out;
    rc = 0;
out:
    clip_tok_u32_free(&a);
    clip_tok_u32_free(&b);
    return rc;
}

static int finish(int rc, const clip_tok_u32 *res, wp_buf *out, wp_err *err)
{
    if (rc == 0 && clip_tok_u32_to_utf8(res->v, res->n, out) != 0)
        rc = WP_ENOMEM;
    if (rc != 0)
        wp_err_set(err, rc, "tokenizer: out of memory cleaning text");
    return rc;
}

int clip_tok_clean(const char *text, size_t n, wp_buf *out, wp_err *err)
{
    clip_tok_u32 res = {0};
    int rc = clip_tok_clean_u32(text, n, &res);
    rc = finish(rc, &res, out, err);
    clip_tok_u32_free(&res);
    return rc;
}

int clip_tok_ftfy(const char *text, size_t n, wp_buf *out, wp_err *err)
{
    clip_tok_u32 a = {0}, b = {0};
    int rc = clip_tok_u32_from_utf8(&a, text, n);
    if (rc == 0)
        rc = ftfy_u32(&a, &b);
    rc = finish(rc, &b, out, err);
    clip_tok_u32_free(&a);
    clip_tok_u32_free(&b);
    return rc;
}

int clip_tok_fix_encoding(const char *text, size_t n, wp_buf *out, wp_err *err)
{
    clip_tok_u32 a = {0};
    int rc = clip_tok_u32_from_utf8(&a, text, n);
    if (rc == 0)
        rc = fix_encoding_u32(&a);
    rc = finish(rc, &a, out, err);
    clip_tok_u32_free(&a);
    return rc;
}

int clip_tok_is_bad(const char *text, size_t n)
{
    clip_tok_u32 a = {0};
    int bad = 0;
    if (clip_tok_u32_from_utf8(&a, text, n) == 0)
        bad = is_bad_u32(a.v, a.n);
    clip_tok_u32_free(&a);
    return bad;
}

int clip_tok_html_unescape(const char *text, size_t n, wp_buf *out, wp_err *err)
{
    clip_tok_u32 a = {0}, b = {0};
    int rc = clip_tok_u32_from_utf8(&a, text, n);
    if (rc == 0)
        rc = html_unescape_u32(a.v, a.n, &b);
    rc = finish(rc, &b, out, err);
    clip_tok_u32_free(&a);
    clip_tok_u32_free(&b);
    return rc;
}
