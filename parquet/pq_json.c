/*
 * parquet/pq_json.c: one Parquet value as JSON, for the stages that keep
 * columns of a Parquet list in pairs.extra (add --keep-cols) with their
 * types: integers stay integers, doubles doubles, booleans and nulls as
 * such. Written through wp_json (common/), the one JSON writer, so strings
 * are escaped and repaired by witpipe's one policy.
 */
#include "parquet/parquet.h"

/* Bytes that are not UTF-8, as {"base64":"..."} (RFC 4648 section 4). */
static int put_base64(wp_json *j, const char *key, const unsigned char *p, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    wp_buf t = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        rc = wp_buf_append(&t, q, 4);
    }
    wp_json_obj_begin(j, key);
    wp_json_strn(j, "base64", t.data ? t.data : "", t.len);
    wp_json_obj_end(j);
    wp_buf_free(&t);
    return rc != 0 ? WP_ENOMEM : j->status;
}

int pq_value_json(wp_json *j, const char *key, const pq_value *v)
{
    switch (v->type) {
    case PQ_BOOL:
        return wp_json_bool(j, key, (int)v->i);
    case PQ_INT64:
        return wp_json_int(j, key, v->i);
    case PQ_DOUBLE:
        return wp_json_real(j, key, v->d); /* NaN and infinities: null */
    case PQ_STRING:
        return wp_json_strn(j, key, v->s, v->len);
    case PQ_BYTES:
        if (wp_utf8_valid(v->s, v->len))
            return wp_json_strn(j, key, v->s, v->len);
        return put_base64(j, key, (const unsigned char *)v->s, v->len);
    default:
        return wp_json_null(j, key);
    }
}
