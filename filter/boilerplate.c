/*
 * filter/boilerplate.c: the boilerplate caption list (filter/boilerplate.txt
 * and its pattern language, described in filter.h): parsing, and matching
 * a normalised caption against every pattern with a small backtracking
 * matcher. Captions are short, so matching costs a few comparisons per
 * pattern for most captions (the first literal character differs).
 */
#include "filter.h"

#include <stdlib.h>
#include <string.h>

#define NORM_MAX 1000 /* longer captions are never boilerplate */

typedef struct pat {
    char *p; /* lowercased pattern */
    size_t len;
    int line;
    int next;     /* the next pattern with the same first character, or -1 */
    int blank_ok; /* can match a caption with a blank (has ' ' or '*') */
} pat;

/* Patterns are chained by their first literal character, so a caption is
 * tried only against the patterns that can start like it and those that
 * start with a wildcard. */
struct flt_boiler {
    pat *pats;
    int n, cap;
    int head[256];
    int wild;
    /* The longest caption with a blank that any pattern can match, or -1
     * when unbounded (a pattern with a blank or '*' and a wildcard):
     * longer captions with a blank are rejected while normalising. */
    int blank_max;
};

void flt_boiler_free(flt_boiler *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->n; i++)
        free(b->pats[i].p);
    free(b->pats);
    free(b);
}

int flt_boiler_count(const flt_boiler *b)
{
    return b ? b->n : 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_wild(int c)
{
    return c == '*' || c == '#' || c == '+' || c == '%';
}

/* Chains the patterns by first character (in line order, from the end). */
static void build_index(flt_boiler *b)
{
    for (int i = 0; i < 256; i++)
        b->head[i] = -1;
    b->wild = -1;
    b->blank_max = 0;
    for (int i = 0; i < b->n; i++) {
        pat *p = &b->pats[i];
        int wild = 0, fixed = 0;
        p->blank_ok = 0;
        for (size_t k = 0; k < p->len; k++) {
            int c = (unsigned char)p->p[k];
            if (c == '\\' && k + 1 < p->len) {
                p->blank_ok |= p->p[++k] == ' ';
            } else if (is_wild(c)) {
                wild = 1;
                p->blank_ok |= c == '*';
                continue;
            } else {
                p->blank_ok |= c == ' ';
            }
            fixed++;
        }
        if (p->blank_ok && b->blank_max >= 0)
            b->blank_max = wild ? -1 : fixed > b->blank_max ? fixed : b->blank_max;
    }
    for (int i = b->n - 1; i >= 0; i--) {
        const unsigned char *p = (const unsigned char *)b->pats[i].p;
        int c = p[0] == '\\' ? p[1] : p[0];
        if (p[0] != '\\' && is_wild(c)) {
            b->pats[i].next = b->wild;
            b->wild = i;
        } else {
            b->pats[i].next = b->head[c];
            b->head[c] = i;
        }
    }
}

int flt_boiler_parse(const char *text, size_t n, const char *name, flt_boiler **out, wp_err *err)
{
    flt_boiler *b = calloc(1, sizeof *b);
    const char *s = text, *e = text + n;
    int line = 0, rc = 0;

    *out = NULL;
    if (b == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    while (s < e) {
        const char *eol = memchr(s, '\n', (size_t)(e - s));
        const char *le = eol ? eol : e;
        const char *a = s, *z = le;
        line++;
        s = eol ? eol + 1 : e;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
            z--;
        if (a == z || *a == '#')
            continue;
        if (z[-1] == '\\' && (z - a < 2 || z[-2] != '\\')) {
            rc = wp_err_set(err, FLT_ELIST, "%s:%d: pattern ends in a lone '\\'", name, line);
            goto fail;
        }
        if (b->n == b->cap) {
            int nc = b->cap ? 2 * b->cap : 64;
            pat *np = realloc(b->pats, (size_t)nc * sizeof *np);
            if (np == NULL)
                goto oom;
            b->pats = np;
            b->cap = nc;
        }
        b->pats[b->n].p = malloc((size_t)(z - a) + 1);
        if (b->pats[b->n].p == NULL)
            goto oom;
        for (size_t i = 0; i < (size_t)(z - a); i++)
            b->pats[b->n].p[i] = (char)lower((unsigned char)a[i]);
        b->pats[b->n].p[z - a] = '\0';
        b->pats[b->n].len = (size_t)(z - a);
        b->pats[b->n].line = line;
        b->n++;
    }
    build_index(b);
    *out = b;
    return 0;
oom:
    rc = wp_err_set(err, WP_ENOMEM, "out of memory");
fail:
    flt_boiler_free(b);
    return rc;
}

int flt_boiler_default(flt_boiler **out, wp_err *err)
{
    return flt_boiler_parse(flt_boilerplate_txt, strlen(flt_boilerplate_txt),
                            "filter/boilerplate.txt", out, err);
}

int flt_boiler_load(const char *path, flt_boiler **out, wp_err *err)
{
    wp_buf b = {0};
    int rc = wp_read_file(path, 16u << 20, &b, err);
    *out = NULL;
    if (rc == 0)
        rc = flt_boiler_parse(b.data ? b.data : "", b.len, path, out, err);
    wp_buf_free(&b);
    return rc;
}

static int is_trim(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '.' ||
           c == ',' || c == ':' || c == ';' || c == '!' || c == '?' || c == '"' || c == '\'' ||
           c == '(' || c == ')' || c == '[' || c == ']' || c == '|' || c == '-' || c == '_' ||
           c == '*';
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_stem(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Matches pattern p[0..pe) against all of s[0..se). */
static int match(const char *p, const char *pe, const char *s, const char *se)
{
    while (p < pe) {
        int c = (unsigned char)*p;
        const char *t;
        switch (c) {
        case '*':
            for (t = se; t >= s; t--)
                if (match(p + 1, pe, t, se))
                    return 1;
            return 0;
        case '#':
        case '+':
        case '%':
            t = s;
            while (t < se && (c == '#'   ? is_digit((unsigned char)*t)
                              : c == '+' ? !is_blank((unsigned char)*t)
                                         : is_stem((unsigned char)*t)))
                t++;
            /* longest first; '#' and '+' need at least one character */
            for (; t >= s + (c == '%' ? 0 : 1); t--)
                if (match(p + 1, pe, t, se))
                    return 1;
            return 0;
        case '\\':
            p++;
            c = (unsigned char)*p;
            /* fall through */
        default:
            if (s == se || (unsigned char)*s != c)
                return 0;
            p++;
            s++;
        }
    }
    return s == se;
}

int flt_boiler_match(const flt_boiler *b, const char *text, size_t n)
{
    char norm[NORM_MAX + 1];
    size_t a = 0, z = n, k = 0;
    int blank = 0, any_blank = 0, best = 0;

    if (b == NULL || n == 0)
        return 0;
    while (a < z && is_trim((unsigned char)text[a]))
        a++;
    while (z > a && is_trim((unsigned char)text[z - 1]))
        z--;
    if (z - a > NORM_MAX)
        return 0;
    for (size_t i = a; i < z; i++) {
        int c = (unsigned char)text[i];
        if (is_blank(c)) {
            blank = 1;
            continue;
        }
        if (blank) {
            norm[k++] = ' ';
            any_blank = 1;
        }
        blank = 0;
        norm[k++] = (char)lower(c);
        if (any_blank && b->blank_max >= 0 && k > (size_t)b->blank_max)
            return 0; /* too long for every pattern that allows a blank */
    }
    if (k == 0)
        return 0;
    /* the first match in line order among the two chains */
    for (int i = b->head[(unsigned char)norm[0]]; i >= 0; i = b->pats[i].next) {
        const pat *p = &b->pats[i];
        if (any_blank && !p->blank_ok)
            continue;
        if (match(p->p, p->p + p->len, norm, norm + k)) {
            best = p->line;
            break;
        }
    }
    for (int i = b->wild; i >= 0; i = b->pats[i].next) {
        const pat *p = &b->pats[i];
        if (best != 0 && p->line > best)
            break;
        if (any_blank && !p->blank_ok)
            continue;
        if (match(p->p, p->p + p->len, norm, norm + k))
            return p->line;
    }
    return best;
}
