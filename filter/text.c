/*
 * filter/text.c: the text measures of the filter's caption rules: code
 * points, words as Python's str.split() counts them, and captions made of
 * one repeated word. They run on every pair of a corpus at millions of
 * captions a second, so they walk the bytes once, take ASCII a byte at a
 * time through a table and decode only the other characters, and never
 * allocate.
 */
#include "filter.h"

#include <stdint.h>

/* ASCII white space as str.isspace() has it: \t \n \v \f \r, 0x1c-0x1f,
 * space. */
static const uint8_t ascii_space[128] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [' '] = 1,
};

/* Decodes one non-ASCII UTF-8 sequence at s (s < e, *s >= 0x80); sets
 * *len. Invalid bytes decode as themselves, one byte long (the catalog
 * holds valid UTF-8 anyway). */
static uint32_t decode(const unsigned char *s, const unsigned char *e, int *len)
{
    unsigned c = s[0];
    if ((c & 0xe0) == 0xc0 && s + 1 < e) {
        *len = 2;
        return (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
    }
    if ((c & 0xf0) == 0xe0 && s + 2 < e) {
        *len = 3;
        return (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    }
    if ((c & 0xf8) == 0xf0 && s + 3 < e) {
        *len = 4;
        return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
               (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    }
    *len = 1;
    return c;
}

/* The non-ASCII characters str.split() splits on. */
static int uni_space(uint32_t c)
{
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Is the character at s white space? Sets *len. */
static inline int space_at(const unsigned char *s, const unsigned char *e, int *len)
{
    if (*s < 0x80) {
        *len = 1;
        return ascii_space[*s];
    }
    return uni_space(decode(s, e, len));
}

void flt_text_measure(const char *text, size_t n, int64_t *chars, int64_t *words)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    int64_t count = 0, pending = 0, nw = 0;
    int started = 0, in_word = 0, len, sp;

    while (s < e) {
        if (*s < 0x80) {
            sp = ascii_space[*s];
            len = 1;
        } else {
            sp = uni_space(decode(s, e, &len));
        }
        s += len;
        if (sp) {
            pending += started;
            in_word = 0;
            continue;
        }
        count += pending + 1;
        pending = 0;
        started = 1;
        nw += !in_word;
        in_word = 1;
    }
    *chars = count;
    *words = nw;
}

int64_t flt_text_chars(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    int64_t count = 0, pending = 0;
    int started = 0, len;

    while (s < e) {
        if (space_at(s, e, &len)) {
            pending += started; /* counted only if more text follows */
        } else {
            started = 1;
            count += pending + 1;
            pending = 0;
        }
        s += len;
    }
    return count;
}

int64_t flt_text_words(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    int64_t words = 0;
    int in_word = 0, len;

    while (s < e) {
        if (space_at(s, e, &len)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
        s += len;
    }
    return words;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int64_t flt_text_repeat(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    const unsigned char *w0 = NULL; /* the first word */
    size_t w0len = 0;
    int64_t count = 0;
    int len;

    while (s < e) {
        const unsigned char *w;
        if (space_at(s, e, &len)) {
            s += len;
            continue;
        }
        w = s;
        if (w0 == NULL) {
            while (s < e && !space_at(s, e, &len))
                s += len;
            w0 = w;
            w0len = (size_t)(s - w);
        } else {
            /* compare as we go: most captions differ at once */
            size_t i = 0;
            while (s < e && !space_at(s, e, &len)) {
                for (int k = 0; k < len; k++, i++)
                    if (i >= w0len || lower(s[k]) != lower(w0[i]))
                        return 0;
                s += len;
            }
            if (i != w0len)
                return 0;
        }
        count++;
    }
    return count >= 2 ? count : 0;
}
