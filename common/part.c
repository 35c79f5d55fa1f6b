/*
 * common/part.c: the one partition rule behind every stage's --part I/N
 * (docs/scale-out.md): an item belongs to part (key mod N) + 1, where the
 * key depends only on the item (its pair uid, its URL's host, its record
 * number), and contiguous ranges for work that must stay in order (shard).
 */
#include "wp.h"

int wp_part_parse(const char *s, wp_part *p)
{
    int64_t v[2];
    const char *q = s;
    for (int k = 0; k < 2; k++) {
        int64_t x = 0;
        int digits = 0;
        while (*q >= '0' && *q <= '9') {
            x = x * 10 + (*q - '0');
            if (x > 1000000)
                return WP_EINVAL;
            q++;
            digits++;
        }
        if (digits == 0)
            return WP_EINVAL;
        v[k] = x;
        if (k == 0 && *q++ != '/')
            return WP_EINVAL;
    }
    if (*q != '\0' || v[1] < 1 || v[0] < 1 || v[0] > v[1])
        return WP_EINVAL;
    p->i = (int)v[0];
    p->n = (int)v[1];
    return 0;
}

int wp_part_all(const wp_part *p)
{
    return p == NULL || p->n <= 1;
}

int wp_part_has(const wp_part *p, uint64_t k)
{
    if (wp_part_all(p))
        return 1;
    return (int)(k % (uint64_t)p->n) == p->i - 1;
}

uint64_t wp_part_key_uid(const uint8_t uid[WP_UID_LEN])
{
    uint64_t k = 0;
    for (int b = 0; b < 8; b++)
        k = k << 8 | uid[b];
    return k;
}

uint64_t wp_part_key_hex(const char *hex)
{
    uint8_t b[8];
    size_t n = strlen(hex);
    if (n >= 16 && wp_unhex(hex, 8, b) == 0) {
        uint64_t k = 0;
        for (int i = 0; i < 8; i++)
            k = k << 8 | b[i];
        return k;
    }
    return wp_fnv1a64(hex, n);
}

uint64_t wp_part_key_host(const char *url, size_t len)
{
    const char *p = url, *end = url + len, *h, *e;
    uint64_t k = 0xcbf29ce484222325ULL;
    for (; p + 1 < end; p++)
        if (p[0] == '/' && p[1] == '/')
            break;
    if (p + 1 >= end)
        return wp_fnv1a64(url, len);
    h = p + 2;
    /* the authority ends at the first / ? #; userinfo ends at its last @ */
    for (e = h; e < end && *e != '/' && *e != '?' && *e != '#'; e++)
        ;
    for (const char *a = h; a < e; a++)
        if (*a == '@')
            h = a + 1;
    if (h < e && *h == '[') { /* IPv6 literal: up to and with ']' */
        const char *r = h;
        while (r < e && *r != ']')
            r++;
        e = r < e ? r + 1 : e;
    } else {
        const char *c = h;
        while (c < e && *c != ':')
            c++;
        e = c;
    }
    for (; h < e; h++) { /* FNV-1a of the lowercased bytes */
        unsigned char ch = (unsigned char)*h;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        k ^= ch;
        k *= 0x100000001b3ULL;
    }
    return k;
}

void wp_part_range(const wp_part *p, int64_t total, int64_t *lo, int64_t *hi)
{
    if (wp_part_all(p) || total <= 0) {
        *lo = 0;
        *hi = total > 0 ? total : 0;
        return;
    }
    /* floor(j T / n) = j (T / n) + floor(j (T mod n) / n): exact, and no
     * product over n * n (at most 10^12) */
    int64_t q = total / p->n, r = total % p->n;
    *lo = (int64_t)(p->i - 1) * q + (int64_t)(p->i - 1) * r / p->n;
    *hi = (int64_t)p->i * q + (int64_t)p->i * r / p->n;
}
