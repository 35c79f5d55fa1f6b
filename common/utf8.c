/*
 * common/utf8.c: UTF-8 validation, repair, boundary-safe truncation and the
 * one encoder of a code point (used by charset conversion, HTML and JSON
 * unescaping, the tokenizer).
 *
 * Captions come from the open web; the catalog and the shards hold only
 * valid UTF-8, so every text passes through here. Rules per RFC 3629
 * section 4: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF.
 */
#include "wp.h"

#include <stdio.h>

/* Length of the valid sequence starting at s (at most n bytes), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0) /* overlong */
            return 0;
        if (c == 0xED && s[1] >= 0xA0) /* surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xF4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

int wp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = seq_len(p + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

size_t wp_utf8_get(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k = n > 0 ? seq_len(p, n) : 0;
    if (k == 0)
        return 0;
    if (k == 1)
        *cp = p[0];
    else if (k == 2)
        *cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    else if (k == 3)
        *cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    else
        *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
              (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    return k;
}

long wp_utf8_repair(const char *s, size_t n, wp_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    long bad = 0;

    while (i < n) {
        size_t k = seq_len(p + i, n - i);
        if (k > 0) {
            i += k;
            run += k;
            continue;
        }
        if (wp_buf_append(out, p + i - run, run) != 0 || wp_buf_append(out, "\xEF\xBF\xBD", 3))
            return WP_ENOMEM;
        run = 0;
        bad++;
        /* Skip the lead byte and any continuation bytes that belonged to it,
         * so one broken character becomes one U+FFFD. */
        i++;
        while (i < n && (p[i] & 0xC0) == 0x80)
            i++;
    }
    if (wp_buf_append(out, p + i - run, run) != 0)
        return WP_ENOMEM;
    return bad;
}

size_t wp_utf8_floor(const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    if (max >= n)
        return n;
    while (max > 0 && (p[max] & 0xC0) == 0x80)
        max--;
    return max;
}

size_t wp_utf8_put(uint32_t cp, char out[4])
{
    /* RFC 3629 section 3; what UTF-8 cannot hold becomes U+FFFD. */
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int wp_utf8_append(wp_buf *b, uint32_t cp)
{
    char e[4];
    return wp_buf_append(b, e, wp_utf8_put(cp, e));
}

size_t wp_utf8_uncut(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k = n, want;
    /* Back over at most 3 continuation bytes to the last lead byte. */
    while (k > 0 && n - k < 3 && (p[k - 1] & 0xC0) == 0x80)
        k--;
    if (k == 0 || p[k - 1] < 0xC0)
        return n; /* ASCII or stray continuation bytes: nothing was cut */
    k--;
    want = p[k] >= 0xF0 ? 4 : p[k] >= 0xE0 ? 3 : 2;
    return n - k < want ? k : n;
}

size_t wp_vformat(char *out, size_t n, const char *fmt, va_list ap)
{
    int w = vsnprintf(out, n, fmt, ap);
    size_t len;
    if (w < 0) {
        out[0] = '\0';
        return 0;
    }
    if ((size_t)w < n)
        return (size_t)w;
    len = wp_utf8_uncut(out, n - 1);
    out[len] = '\0';
    return len;
}

int wp_utf8_printable(const char *s, size_t n, wp_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = seq_len(p + i, n - i), run = i;
        /* A run of printable characters is copied as it is. */
        while (k > 0 && !(p[i] < 0x20 && p[i] != '\t') && p[i] != 0x7F &&
               !(p[i] == 0xC2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F)) {
            i += k;
            if (i >= n)
                break;
            k = seq_len(p + i, n - i);
        }
        if (i > run && wp_buf_append(out, p + run, i - run) != 0)
            return WP_ENOMEM;
        if (i >= n)
            break;
        if (k == 0) {
            /* Invalid: one U+FFFD for the lead byte and its continuations. */
            if (wp_buf_append(out, "\xEF\xBF\xBD", 3) != 0)
                return WP_ENOMEM;
            i++;
            while (i < n && (p[i] & 0xC0) == 0x80)
                i++;
            continue;
        }
        if (p[i] == 0xC2) {
            char e[6] = {'\\', 'u', '0', '0', hex[p[i + 1] >> 4], hex[p[i + 1] & 15]};
            if (wp_buf_append(out, e, 6) != 0)
                return WP_ENOMEM;
            i += 2;
        } else {
            char e[4] = {'\\', 'x', hex[p[i] >> 4], hex[p[i] & 15]};
            if (wp_buf_append(out, e, 4) != 0)
                return WP_ENOMEM;
            i++;
        }
    }
    return 0;
}
