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

int pq_value_json(const pq_value *v, wp_buf *out)
{
    char d[40];
    int n;

    switch (v->type) {
    case PQ_BOOL:
        return wp_buf_puts(out, v->i ? "true" : "false");
    case PQ_INT64:
        return put_int(out, v->i);
    case PQ_DOUBLE: /* formatted once (wp_buf_printf would measure first) */
        if (!isfinite(v->d))
            return wp_buf_puts(out, "null");
        n = snprintf(d, sizeof d, "%.17g", v->d);
        return n > 0 && (size_t)n < sizeof d ? wp_buf_append(out, d, (size_t)n) : WP_EINVAL;
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
