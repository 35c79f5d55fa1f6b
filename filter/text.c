/*
 * filter/text.c: the text measures of the filter's caption rules: code
 * points, words as Python's str.split() counts them, and captions made of
 * one repeated word. They run on every pair of a corpus at millions of
 * captions a second, so they walk the bytes once and never allocate.
 */
#include "filter.h"

#include <stdint.h>

/* Decodes one UTF-8 sequence at s (s < e); sets *len. Invalid bytes decode
 * as themselves, one byte long (the catalog holds valid UTF-8 anyway). */
static uint32_t next_cp(const unsigned char *s, const unsigned char *e, int *len)
{
    unsigned c = s[0];
    if (c < 0x80 || s + 1 >= e) {
        *len = 1;
        return c;
    }
    if ((c & 0xe0) == 0xc0) {
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

/* Python's str.isspace() for the characters str.split() splits on. */
static int is_space(uint32_t c)
{
    if (c < 0x80)
        return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

int64_t flt_text_chars(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    int64_t count = 0, pending_space = 0;
    int started = 0, len;

    while (s < e) {
        uint32_t c = next_cp(s, e, &len);
        s += len;
        if (is_space(c)) {
            if (started)
                pending_space++; /* counted only if more text follows */
            continue;
        }
        started = 1;
        count += pending_space + 1;
        pending_space = 0;
    }
    return count;
}

int64_t flt_text_words(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + n;
    int64_t words = 0;
    int in_word = 0, len;

    while (s < e) {
        uint32_t c;
        if (*s < 0x80) {
            c = *s;
            len = 1;
        } else {
            c = next_cp(s, e, &len);
        }
        s += len;
        if (is_space(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
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
        uint32_t c = next_cp(s, e, &len);
        if (is_space(c)) {
            s += len;
            continue;
        }
        w = s;
        while (s < e) {
            c = next_cp(s, e, &len);
            if (is_space(c))
                break;
            s += len;
        }
        if (w0 == NULL) {
            w0 = w;
            w0len = (size_t)(s - w);
        } else {
            size_t wl = (size_t)(s - w);
            if (wl != w0len)
                return 0;
            for (size_t i = 0; i < wl; i++)
                if (lower(w[i]) != lower(w0[i]))
                    return 0;
        }
        count++;
    }
    return count >= 2 ? count : 0;
}
