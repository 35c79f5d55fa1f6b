/*
 * parquet/pq_json.c: one Parquet value as JSON, for the stages that keep
 * columns of a Parquet list in pairs.extra (add --keep-cols) with their
 * types: integers stay integers, doubles doubles, booleans and nulls as
 * such, strings escaped.
 */
#include "parquet/parquet.h"

#include <math.h>
#include <stdio.h>

static int put_str(wp_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (wp_buf_putc(out, '"') != 0)
        return WP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = wp_buf_append(out, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = wp_buf_append(out, e, 6);
        } else {
            rc = wp_buf_putc(out, c);
        }
        if (rc != 0)
            return WP_ENOMEM;
    }
    return wp_buf_putc(out, '"');
}

static int put_utf8(wp_buf *out, const char *s, size_t n)
{
    if (wp_utf8_valid(s, n))
        return put_str(out, s, n);
    wp_buf tmp = {0};
    int rc = wp_utf8_repair(s, n, &tmp) < 0 ? WP_ENOMEM : put_str(out, tmp.data, tmp.len);
    wp_buf_free(&tmp);
    return rc;
}

static int put_base64(wp_buf *out, const unsigned char *p, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (wp_buf_puts(out, "{\"base64\":\"") != 0)
        return WP_ENOMEM;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        if (wp_buf_append(out, q, 4) != 0)
            return WP_ENOMEM;
    }
    return wp_buf_puts(out, "\"}");
}

/* An integer in decimal, without printf (add writes millions). */
static int put_int(wp_buf *out, int64_t v)
{
    char d[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        d[sizeof d - 1 - n++] = '-';
    return wp_buf_append(out, d + sizeof d - n, (size_t)n);
}

/* A finite double in the fewest decimals (up to 17 significant) that read
 * back as the same double. Fast path, without printf: the smallest k with
 * r = round(|d| * 10^k) an integer below 2^53 and r / 10^k == |d| in IEEE
 * division, which is the correctly rounded value of the decimal r * 10^-k,
 * so any correctly rounding reader (strtod, JSON parsers) gets d back.
 * Otherwise (and for zeros, tiny and huge values) %.17g. */
static int put_double(wp_buf *out, double d)
{
    char buf[48];
    double a = fabs(d), p = 1;
    int n;

    if (a >= 1e-5 && a < 1e15) {
        for (int k = 0; k <= 17; k++, p *= 10) {
            double s = a * p, r = nearbyint(s);
            if (s >= 9007199254740992.0)
                break;
            if (r / p != a)
                continue;
            char dig[24];
            int nd = 0, at = 0;
            uint64_t u = (uint64_t)r;
            do {
                dig[nd++] = (char)('0' + u % 10);
                u /= 10;
            } while (u > 0);
            while (nd <= k) /* at least one digit before the point */
                dig[nd++] = '0';
            if (d < 0)
                buf[at++] = '-';
            for (int i = nd - 1; i >= 0; i--) {
                buf[at++] = dig[i];
                if (i == k && k > 0)
                    buf[at++] = '.';
            }
            return wp_buf_append(out, buf, (size_t)at);
        }
    }
    n = snprintf(buf, sizeof buf, "%.17g", d);
    return n > 0 && (size_t)n < sizeof buf ? wp_buf_append(out, buf, (size_t)n) : WP_EINVAL;
}

int pq_value_json(const pq_value *v, wp_buf *out)
{
    switch (v->type) {
    case PQ_BOOL:
        return wp_buf_puts(out, v->i ? "true" : "false");
    case PQ_INT64:
        return put_int(out, v->i);
    case PQ_DOUBLE:
        if (!isfinite(v->d))
            return wp_buf_puts(out, "null");
        return put_double(out, v->d);
    case PQ_STRING:
        return put_utf8(out, v->s, v->len);
    case PQ_BYTES:
        if (wp_utf8_valid(v->s, v->len))
            return put_str(out, v->s, v->len);
        return put_base64(out, (const unsigned char *)v->s, v->len);
    default:
        return wp_buf_puts(out, "null");
    }
}
