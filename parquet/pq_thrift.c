/*
 * parquet/pq_thrift.c: the Thrift compact protocol, by hand, for Parquet's
 * footer (FileMetaData) and page headers, read and written.
 *
 * The reader is a bounded cursor: every varint is at most 10 bytes, every
 * list count and string length is checked against the bytes left before it
 * is used, and nesting is capped at PQ_THRIFT_DEPTH, so a hostile footer can
 * make decoding fail but not read out of bounds, recurse without end or
 * allocate more than the footer's size suggests.
 */
#include "parquet/pq_int.h"

#include <stdlib.h>
#include <string.h>

#define PQ_SCHEMA_MAX 100000 /* schema elements accepted */

void pq_t_fail(pq_tin *t, const char *why)
{
    if (!t->bad) {
        t->bad = 1;
        t->why = why;
    }
    t->p = t->end;
}

uint64_t pq_t_varint(pq_tin *t)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (t->p >= t->end) {
            pq_t_fail(t, "truncated varint");
            return 0;
        }
        uint8_t b = *t->p++;
        if (shift == 63 && (b & 0x7e) != 0) {
            pq_t_fail(t, "varint overflows 64 bits");
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    pq_t_fail(t, "varint longer than 10 bytes");
    return 0;
}

int64_t pq_t_zigzag(pq_tin *t)
{
    uint64_t u = pq_t_varint(t);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

int pq_t_field(pq_tin *t, int *last, int *id)
{
    if (t->p >= t->end) {
        pq_t_fail(t, "truncated struct");
        return TT_STOP;
    }
    uint8_t b = *t->p++;
    int type = b & 0x0f;
    if (type == TT_STOP)
        return TT_STOP;
    int delta = b >> 4;
    if (delta != 0) {
        *id = *last + delta;
    } else {
        int64_t v = pq_t_zigzag(t);
        if (v < -32768 || v > 32767) {
            pq_t_fail(t, "field id out of range");
            return TT_STOP;
        }
        *id = (int)v;
    }
    *last = *id;
    if (type > TT_STRUCT) {
        pq_t_fail(t, "unknown field type");
        return TT_STOP;
    }
    return type;
}

int pq_t_list(pq_tin *t, int *etype)
{
    if (t->p >= t->end) {
        pq_t_fail(t, "truncated list");
        return 0;
    }
    uint8_t b = *t->p++;
    uint64_t n = b >> 4;
    *etype = b & 0x0f;
    if (n == 15)
        n = pq_t_varint(t);
    if (t->bad)
        return 0;
    if (*etype == TT_STOP || *etype > TT_STRUCT) {
        pq_t_fail(t, "bad list element type");
        return 0;
    }
    if (n > (uint64_t)(t->end - t->p)) {
        pq_t_fail(t, "list count past the end of the footer");
        return 0;
    }
    return (int)n;
}

const uint8_t *pq_t_binary(pq_tin *t, size_t *len)
{
    uint64_t n = pq_t_varint(t);
    if (t->bad) {
        *len = 0;
        return NULL;
    }
    if (n > (uint64_t)(t->end - t->p)) {
        pq_t_fail(t, "string length past the end of the footer");
        *len = 0;
        return NULL;
    }
    const uint8_t *p = t->p;
    t->p += n;
    *len = (size_t)n;
    return p;
}

void pq_t_skip(pq_tin *t, int type)
{
    if (t->bad)
        return;
    switch (type) {
    case TT_TRUE:
    case TT_FALSE:
        return; /* a field's value is in its header; in a list it is 1 byte */
    case TT_BYTE:
        if (t->p >= t->end)
            pq_t_fail(t, "truncated byte");
        else
            t->p++;
        return;
    case TT_I16:
    case TT_I32:
    case TT_I64:
        (void)pq_t_varint(t);
        return;
    case TT_DOUBLE:
        if (t->end - t->p < 8)
            pq_t_fail(t, "truncated double");
        else
            t->p += 8;
        return;
    case TT_BINARY: {
        size_t n;
        (void)pq_t_binary(t, &n);
        return;
    }
    default:
        break;
    }
    if (++t->depth > PQ_THRIFT_DEPTH) {
        pq_t_fail(t, "nesting deeper than 32");
        return;
    }
    if (type == TT_STRUCT) {
        int last = 0, id, ft;
        while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP)
            pq_t_skip(t, ft);
    } else if (type == TT_LIST || type == TT_SET) {
        int et;
        int n = pq_t_list(t, &et);
        for (int i = 0; i < n && !t->bad; i++) {
            if (et == TT_TRUE || et == TT_FALSE)
                pq_t_skip(t, TT_BYTE);
            else
                pq_t_skip(t, et);
        }
    } else if (type == TT_MAP) {
        uint64_t n = pq_t_varint(t);
        if (!t->bad && n > 0) {
            if (n > (uint64_t)(t->end - t->p)) {
                pq_t_fail(t, "map count past the end of the footer");
            } else if (t->p >= t->end) {
                pq_t_fail(t, "truncated map");
            } else {
                uint8_t kv = *t->p++;
                int kt = kv >> 4, vt = kv & 0x0f;
                if (kt == TT_TRUE || kt == TT_FALSE)
                    kt = TT_BYTE;
                if (vt == TT_TRUE || vt == TT_FALSE)
                    vt = TT_BYTE;
                for (uint64_t i = 0; i < n && !t->bad; i++) {
                    pq_t_skip(t, kt);
                    pq_t_skip(t, vt);
                }
            }
        }
    } else {
        pq_t_fail(t, "unknown type");
    }
    t->depth--;
}

/* Reads an i32 field value, failing on a wrong wire type. */
static int32_t rd_i32(pq_tin *t, int type)
{
    if (type != TT_I32 && type != TT_I16 && type != TT_BYTE) {
        pq_t_fail(t, "field has the wrong type (want i32)");
        return 0;
    }
    if (type == TT_BYTE) {
        if (t->p >= t->end) {
            pq_t_fail(t, "truncated byte");
            return 0;
        }
        return (int8_t)*t->p++;
    }
    int64_t v = pq_t_zigzag(t);
    if (v < INT32_MIN || v > INT32_MAX) {
        pq_t_fail(t, "i32 out of range");
        return 0;
    }
    return (int32_t)v;
}

static int64_t rd_i64(pq_tin *t, int type)
{
    if (type != TT_I64 && type != TT_I32) {
        pq_t_fail(t, "field has the wrong type (want i64)");
        return 0;
    }
    return pq_t_zigzag(t);
}

static char *rd_str(pq_tin *t, int type, wp_arena *a)
{
    if (type != TT_BINARY) {
        pq_t_fail(t, "field has the wrong type (want string)");
        return NULL;
    }
    size_t n;
    const uint8_t *p = pq_t_binary(t, &n);
    if (t->bad)
        return NULL;
    char *s = wp_arena_strndup(a, (const char *)p, n);
    if (s == NULL)
        pq_t_fail(t, "out of memory");
    return s;
}

static int enter(pq_tin *t, int type)
{
    if (type != TT_STRUCT) {
        pq_t_fail(t, "field has the wrong type (want struct)");
        return 0;
    }
    if (++t->depth > PQ_THRIFT_DEPTH) {
        pq_t_fail(t, "nesting deeper than 32");
        return 0;
    }
    return 1;
}

/* LogicalType: a union; we keep which member is set (and INTEGER's width). */
static void rd_logical(pq_tin *t, pq_schema_el *e)
{
    int last = 0, id, ft;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        if (ft == TT_STRUCT && e->logical == 0) {
            e->logical = id;
            if (id == 10) { /* IntType { 1: i8 bitWidth, 2: bool isSigned } */
                if (!enter(t, ft))
                    return;
                int l2 = 0, id2, f2;
                while (!t->bad && (f2 = pq_t_field(t, &l2, &id2)) != TT_STOP) {
                    if (id2 == 1)
                        e->int_bits = rd_i32(t, f2);
                    else if (id2 == 2)
                        e->int_signed = f2 == TT_TRUE;
                    else
                        pq_t_skip(t, f2);
                }
                t->depth--;
                continue;
            }
        }
        pq_t_skip(t, ft);
    }
}

static void rd_schema_el(pq_tin *t, pq_schema_el *e, wp_arena *a)
{
    int last = 0, id, ft;
    e->type = -1;
    e->repetition = -1;
    e->converted = -1;
    e->int_signed = 1;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        switch (id) {
        case 1:
            e->type = rd_i32(t, ft);
            break;
        case 2:
            e->type_length = rd_i32(t, ft);
            break;
        case 3:
            e->repetition = rd_i32(t, ft);
            break;
        case 4:
            e->name = rd_str(t, ft, a);
            break;
        case 5:
            e->num_children = rd_i32(t, ft);
            break;
        case 6:
            e->converted = rd_i32(t, ft);
            break;
        case 10:
            if (enter(t, ft)) {
                rd_logical(t, e);
                t->depth--;
            }
            break;
        default:
            pq_t_skip(t, ft);
        }
    }
    if (!t->bad && e->name == NULL)
        pq_t_fail(t, "schema element without a name");
}

static void rd_colmeta(pq_tin *t, pq_chunk *c)
{
    int last = 0, id, ft;
    int seen = 0;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        switch (id) {
        case 1:
            c->type = rd_i32(t, ft);
            seen |= 1;
            break;
        case 4:
            c->codec = rd_i32(t, ft);
            seen |= 2;
            break;
        case 5:
            c->num_values = rd_i64(t, ft);
            seen |= 4;
            break;
        case 6:
            c->total_uncompressed = rd_i64(t, ft);
            break;
        case 7:
            c->total_compressed = rd_i64(t, ft);
            seen |= 8;
            break;
        case 9:
            c->data_page_offset = rd_i64(t, ft);
            seen |= 16;
            break;
        case 11:
            c->dict_page_offset = rd_i64(t, ft);
            break;
        default:
            pq_t_skip(t, ft);
        }
    }
    if (!t->bad && seen != 31)
        pq_t_fail(t, "column metadata lacks a required field");
}

static void rd_chunk(pq_tin *t, pq_chunk *c)
{
    int last = 0, id, ft;
    c->dict_page_offset = -1;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        if (id == 1 && ft == TT_BINARY) {
            size_t n;
            (void)pq_t_binary(t, &n);
            c->external = 1;
        } else if (id == 3) {
            if (enter(t, ft)) {
                rd_colmeta(t, c);
                c->has_meta = 1;
                t->depth--;
            }
        } else {
            pq_t_skip(t, ft);
        }
    }
}

static void rd_rowgroup(pq_tin *t, pq_rowgroup *g, wp_arena *a)
{
    int last = 0, id, ft;
    int seen = 0;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        if (id == 1 && ft == TT_LIST) {
            int et, n = pq_t_list(t, &et);
            if (t->bad)
                break;
            if (et != TT_STRUCT) {
                pq_t_fail(t, "row group columns are not structs");
                break;
            }
            g->cols = wp_arena_calloc(a, (size_t)(n ? n : 1) * sizeof *g->cols);
            if (g->cols == NULL) {
                pq_t_fail(t, "out of memory");
                break;
            }
            g->ncols = n;
            for (int i = 0; i < n && !t->bad; i++) {
                if (++t->depth > PQ_THRIFT_DEPTH) {
                    pq_t_fail(t, "nesting deeper than 32");
                    break;
                }
                rd_chunk(t, &g->cols[i]);
                t->depth--;
            }
            seen |= 1;
        } else if (id == 3) {
            g->num_rows = rd_i64(t, ft);
            seen |= 2;
        } else {
            pq_t_skip(t, ft);
        }
    }
    if (!t->bad && seen != 3)
        pq_t_fail(t, "row group lacks its columns or row count");
}

int pq_meta_decode(const uint8_t *buf, size_t n, wp_arena *a, pq_meta *m, wp_err *err)
{
    pq_tin t = {.p = buf, .end = buf + n};
    int last = 0, id, ft;
    int seen = 0;

    memset(m, 0, sizeof *m);
    while (!t.bad && (ft = pq_t_field(&t, &last, &id)) != TT_STOP) {
        if (id == 2 && ft == TT_LIST) {
            int et, k = pq_t_list(&t, &et);
            if (t.bad)
                break;
            if (et != TT_STRUCT || k < 1 || k > PQ_SCHEMA_MAX) {
                pq_t_fail(&t, "schema list is empty, too long or not structs");
                break;
            }
            m->schema = wp_arena_calloc(a, (size_t)k * sizeof *m->schema);
            if (m->schema == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory decoding the footer");
            m->nschema = k;
            t.depth++;
            for (int i = 0; i < k && !t.bad; i++)
                rd_schema_el(&t, &m->schema[i], a);
            t.depth--;
            seen |= 1;
        } else if (id == 3) {
            m->num_rows = rd_i64(&t, ft);
            seen |= 2;
        } else if (id == 4 && ft == TT_LIST) {
            int et, k = pq_t_list(&t, &et);
            if (t.bad)
                break;
            if (et != TT_STRUCT) {
                pq_t_fail(&t, "row groups are not structs");
                break;
            }
            m->rgs = wp_arena_calloc(a, (size_t)(k ? k : 1) * sizeof *m->rgs);
            if (m->rgs == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory decoding the footer");
            m->nrg = k;
            t.depth++;
            for (int i = 0; i < k && !t.bad; i++)
                rd_rowgroup(&t, &m->rgs[i], a);
            t.depth--;
            seen |= 4;
        } else if (id == 6 && ft == TT_BINARY) {
            m->created_by = rd_str(&t, ft, a);
        } else {
            pq_t_skip(&t, ft);
        }
    }
    if (!t.bad && seen != 7)
        pq_t_fail(&t, "FileMetaData lacks its schema, row count or row groups");
    if (!t.bad && m->num_rows < 0)
        pq_t_fail(&t, "negative row count");
    if (t.bad) {
        if (t.why != NULL && strcmp(t.why, "out of memory") == 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory decoding the footer");
        return wp_err_set(err, PQ_EFORMAT, "corrupt footer (FileMetaData): %s near byte %zu of %zu",
                          t.why, (size_t)(t.p - buf), n);
    }
    return 0;
}

static void rd_data_header(pq_tin *t, pq_page_header *h, int v2)
{
    int last = 0, id, ft;
    int seen = 0;
    while (!t->bad && (ft = pq_t_field(t, &last, &id)) != TT_STOP) {
        if (id == 1) {
            h->num_values = rd_i32(t, ft);
            seen |= 1;
        } else if (!v2 && id == 2) {
            h->encoding = rd_i32(t, ft);
            seen |= 2;
        } else if (!v2 && id == 3) {
            h->def_encoding = rd_i32(t, ft);
        } else if (v2 && id == 2) {
            h->num_nulls = rd_i32(t, ft);
        } else if (v2 && id == 3) {
            h->num_rows = rd_i32(t, ft);
        } else if (v2 && id == 4) {
            h->encoding = rd_i32(t, ft);
            seen |= 2;
        } else if (v2 && id == 5) {
            h->def_bytes = rd_i32(t, ft);
        } else if (v2 && id == 6) {
            h->rep_bytes = rd_i32(t, ft);
        } else if (v2 && id == 7 && (ft == TT_TRUE || ft == TT_FALSE)) {
            h->is_compressed = ft == TT_TRUE;
        } else {
            pq_t_skip(t, ft);
        }
    }
    if (!t->bad && seen != 3)
        pq_t_fail(t, "data page header lacks its value count or encoding");
}

int pq_page_header_decode(const uint8_t *buf, size_t n, pq_page_header *h, const char **why)
{
    pq_tin t = {.p = buf, .end = buf + n};
    int last = 0, id, ft;
    int seen = 0, sub = 0;

    memset(h, 0, sizeof *h);
    h->type = -1;
    h->is_compressed = 1;
    h->def_encoding = PQ_E_RLE;
    while (!t.bad && (ft = pq_t_field(&t, &last, &id)) != TT_STOP) {
        switch (id) {
        case 1:
            h->type = rd_i32(&t, ft);
            seen |= 1;
            break;
        case 2:
            h->uncompressed_size = rd_i32(&t, ft);
            seen |= 2;
            break;
        case 3:
            h->compressed_size = rd_i32(&t, ft);
            seen |= 4;
            break;
        case 4:
            h->crc = (uint32_t)rd_i32(&t, ft);
            h->has_crc = 1;
            break;
        case 5:
        case 8:
            if (enter(&t, ft)) {
                rd_data_header(&t, h, id == 8);
                t.depth--;
                sub = id;
            }
            break;
        case 7: /* DictionaryPageHeader { 1: num_values, 2: encoding } */
            if (enter(&t, ft)) {
                int l2 = 0, id2, f2;
                while (!t.bad && (f2 = pq_t_field(&t, &l2, &id2)) != TT_STOP) {
                    if (id2 == 1)
                        h->num_values = rd_i32(&t, f2);
                    else if (id2 == 2)
                        h->encoding = rd_i32(&t, f2);
                    else
                        pq_t_skip(&t, f2);
                }
                t.depth--;
                sub = 7;
            }
            break;
        default:
            pq_t_skip(&t, ft);
        }
    }
    if (!t.bad && seen != 7)
        pq_t_fail(&t, "page header lacks its type or sizes");
    if (!t.bad && (h->uncompressed_size < 0 || h->compressed_size < 0))
        pq_t_fail(&t, "negative page size");
    if (!t.bad && h->num_values < 0)
        pq_t_fail(&t, "negative value count");
    if (!t.bad &&
        ((h->type == 0 && sub != 5) || (h->type == 2 && sub != 7) || (h->type == 3 && sub != 8)))
        pq_t_fail(&t, "page header lacks the header of its page type");
    if (!t.bad && h->type == 3 &&
        (h->def_bytes < 0 || h->rep_bytes < 0 || h->num_nulls < 0 || h->num_rows < 0 ||
         (int64_t)h->def_bytes + h->rep_bytes > h->compressed_size ||
         (int64_t)h->def_bytes + h->rep_bytes > h->uncompressed_size))
        pq_t_fail(&t, "bad level lengths in data page v2 header");
    if (t.bad) {
        *why = t.why;
        return PQ_EFORMAT;
    }
    return (int)(t.p - buf);
}

/* ---- writing ------------------------------------------------------------ */

static void put(pq_tout *o, const void *p, size_t n)
{
    if (!o->bad && wp_buf_append(o->b, p, n) != 0)
        o->bad = 1;
}

void pq_to_varint(pq_tout *o, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    put(o, tmp, (size_t)n);
}

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

void pq_to_field(pq_tout *o, int id, int type)
{
    int *last = &o->last[o->depth];
    int delta = id - *last;
    if (delta > 0 && delta <= 15) {
        uint8_t b = (uint8_t)(delta << 4 | type);
        put(o, &b, 1);
    } else {
        uint8_t b = (uint8_t)type;
        put(o, &b, 1);
        pq_to_varint(o, zz(id));
    }
    *last = id;
}

void pq_to_i32(pq_tout *o, int id, int32_t v)
{
    pq_to_field(o, id, TT_I32);
    pq_to_varint(o, zz(v));
}

void pq_to_i64(pq_tout *o, int id, int64_t v)
{
    pq_to_field(o, id, TT_I64);
    pq_to_varint(o, zz(v));
}

void pq_to_bool(pq_tout *o, int id, int v)
{
    pq_to_field(o, id, v ? TT_TRUE : TT_FALSE);
}

void pq_to_binary(pq_tout *o, int id, const void *p, size_t n)
{
    if (id > 0)
        pq_to_field(o, id, TT_BINARY);
    pq_to_varint(o, n);
    put(o, p, n);
}

void pq_to_list(pq_tout *o, int id, int etype, size_t n)
{
    pq_to_field(o, id, TT_LIST);
    if (n < 15) {
        uint8_t b = (uint8_t)(n << 4 | (size_t)etype);
        put(o, &b, 1);
    } else {
        uint8_t b = (uint8_t)(0xf0 | etype);
        put(o, &b, 1);
        pq_to_varint(o, n);
    }
}

void pq_to_struct_begin(pq_tout *o, int id)
{
    if (id > 0)
        pq_to_field(o, id, TT_STRUCT);
    if (o->depth + 1 >= PQ_THRIFT_DEPTH) {
        o->bad = 1;
        return;
    }
    o->last[++o->depth] = 0;
}

void pq_to_struct_end(pq_tout *o)
{
    uint8_t b = 0;
    put(o, &b, 1);
    if (o->depth > 0)
        o->depth--;
}
