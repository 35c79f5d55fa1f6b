/*
 * balance/bal_draw.c: the arithmetic of balancing, free of the catalog: the
 * seeded per-pair draw, MetaCLIP's keep probability and MetaCLIP 2's t for
 * a tail fraction. bal_run.c applies them; tests check them directly.
 */
#include "balance.h"

#include <stdlib.h>

double bal_draw(uint64_t seed, uint64_t stream, const uint8_t uid[WP_UID_LEN])
{
    uint64_t hi = 0, lo = 0, h;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | uid[i];
        lo = lo << 8 | uid[8 + i];
    }
    h = wp_mix64(seed + stream * 0xd1b54a32d192ed03ULL + 0x9e3779b97f4a7c15ULL);
    h = wp_mix64(h ^ hi);
    h = wp_mix64(h ^ lo);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int bal_uid_parse(const char *hex, uint8_t uid[WP_UID_LEN])
{
    for (int i = 0; i < WP_UID_LEN; i++) {
        int a = hexval((unsigned char)hex[2 * i]), b;
        if (a < 0)
            return WP_EINVAL;
        b = hexval((unsigned char)hex[2 * i + 1]);
        if (b < 0)
            return WP_EINVAL;
        uid[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t bal_t_for_tail(const int64_t *counts, size_t n, double fraction)
{
    int64_t *v, total = 0, cum = 0, t = 1;
    size_t i = 0;
    if (n == 0)
        return 1;
    v = malloc(n * sizeof *v);
    if (v == NULL)
        return -1;
    for (size_t k = 0; k < n; k++) {
        v[k] = counts[k] > 0 ? counts[k] : 0;
        total += v[k];
    }
    qsort(v, n, sizeof *v, i64_cmp);
    /* tail(t) = sum of counts < t only changes at t = c + 1 for a count c;
     * the smallest t reaching the target is therefore 1 or some c + 1. */
    if (total == 0 || fraction <= 0) {
        free(v);
        return 1;
    }
    while (i < n) {
        int64_t c = v[i];
        /* add every entry with this count: they all fall below t = c + 1 */
        while (i < n && v[i] == c)
            cum += v[i++];
        if ((double)cum >= fraction * (double)total) {
            t = c + 1;
            break;
        }
    }
    if (i >= n && (double)cum < fraction * (double)total)
        t = v[n - 1] + 1;
    free(v);
    return t;
}

double bal_keep_prob(const int64_t *counts, const uint32_t *ids, size_t k, int64_t t)
{
    double q = 1.0;
    for (size_t i = 0; i < k; i++) {
        int64_t c = counts[ids[i]];
        double p = c > t ? (double)t / (double)c : 1.0;
        q *= 1.0 - p;
    }
    return 1.0 - q;
}
