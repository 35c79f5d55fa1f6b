/*
 * parquet/pq_write.c: the Parquet writer: flat typed columns, one row group
 * buffered at a time, written as data pages v1 (PLAIN, or RLE_DICTIONARY
 * with a dictionary page for string columns where that pays), definition
 * levels for nullable columns, a CRC32 on every page, and the footer in
 * the Thrift compact protocol.
 *
 * The output follows what pyarrow / Arrow C++ and parquet-mr write for the
 * same schema (strings as BYTE_ARRAY with the UTF8 converted type and the
 * STRING logical type), so the readers of the ecosystem read it. The file
 * is written as PATH.tmp and renamed into place on close, so a reader never
 * sees half a file.
 */
#include "parquet/pq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PQ_DICT_MAX_BYTES (1u << 20) /* a dictionary larger than this is not written */

typedef struct wchunk {
    int64_t data_off, dict_off; /* dict_off -1: none */
    int64_t unc, comp;
    int dict;
} wchunk;

typedef struct wcol {
    char *name;
    pq_type type;
    int nullable;
    uint8_t *valid;
    int64_t *iv;
    double *dv;
    uint64_t *offs; /* byte columns: value i is bytes[offs[i], offs[i+1]) */
    wp_buf bytes;
} wcol;

struct pq_writer {
    char *path, *tmp;
    int fd;
    uint64_t off;
    pq_write_opts o;
    int ncols;
    wcol *c;
    int64_t n, cap; /* rows buffered, room */
    int64_t total_rows;
    int nrg, rg_cap;
    int64_t *rg_rows;
    wchunk *chunks; /* nrg * ncols */
    wp_buf page, comp, hdr, vals;
    uint32_t *ids;
    size_t ids_cap;
    int failed;
};

static int wr(pq_writer *w, const void *p, size_t n, wp_err *err)
{
    const char *q = p;
    while (n > 0) {
        ssize_t k = write(w->fd, q, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return wp_err_set(err, WP_EIO, "%s: write failed: %s", w->tmp,
                              k < 0 ? strerror(errno) : "short write");
        q += k;
        n -= (size_t)k;
        w->off += (uint64_t)k;
    }
    return 0;
}

void pq_writer_free(pq_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    for (int k = 0; k < w->ncols; k++) {
        free(w->c[k].name);
        free(w->c[k].valid);
        free(w->c[k].iv);
        free(w->c[k].dv);
        free(w->c[k].offs);
        wp_buf_free(&w->c[k].bytes);
    }
    free(w->c);
    free(w->rg_rows);
    free(w->chunks);
    wp_buf_free(&w->page);
    wp_buf_free(&w->comp);
    wp_buf_free(&w->hdr);
    wp_buf_free(&w->vals);
    free(w->ids);
    free(w->path);
    free(w->tmp);
    free(w);
}

int pq_writer_open(const char *path, const pq_column *cols, int ncols, const pq_write_opts *opts,
                   pq_writer **out, wp_err *err)
{
    *out = NULL;
    if (cols == NULL || ncols <= 0 || ncols > 10000)
        return wp_err_set(err, WP_EINVAL, "%s: a Parquet file needs 1 to 10000 columns", path);
    pq_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    w->fd = -1;
    w->o.codec = PQ_SNAPPY;
    if (opts != NULL)
        w->o = *opts;
    if (w->o.row_group_rows <= 0)
        w->o.row_group_rows = 65536;
    if (w->o.page_bytes == 0)
        w->o.page_bytes = 1 << 20;
    int rc = 0;
    if (w->o.codec != PQ_UNCOMPRESSED && w->o.codec != PQ_SNAPPY && w->o.codec != PQ_GZIP &&
        w->o.codec != PQ_ZSTD) {
        rc = wp_err_set(err, WP_EINVAL, "%s: codec %s cannot be written", path,
                        pq_codec_name(w->o.codec));
        goto out;
    }
    w->c = calloc((size_t)ncols, sizeof *w->c);
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 5);
    if (w->c == NULL || w->path == NULL || w->tmp == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    w->ncols = ncols;
    for (int k = 0; k < ncols; k++) {
        if (cols[k].name == NULL || cols[k].name[0] == '\0' || cols[k].type < PQ_BOOL ||
            cols[k].type > PQ_BYTES) {
            rc = wp_err_set(err, WP_EINVAL, "%s: column %d has no name or a bad type", path, k);
            goto out;
        }
        for (int j = 0; j < k; j++)
            if (strcmp(cols[j].name, cols[k].name) == 0) {
                rc = wp_err_set(err, WP_EINVAL, "%s: column %s given twice", path, cols[k].name);
                goto out;
            }
        w->c[k].name = strdup(cols[k].name);
        if (w->c[k].name == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        w->c[k].type = cols[k].type;
        w->c[k].nullable = cols[k].nullable;
    }
    sprintf(w->tmp, "%s.tmp", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = wp_err_set(err, WP_EIO, "%s: %s", w->tmp, strerror(errno));
        goto out;
    }
    rc = wr(w, "PAR1", 4, err);
out:
    if (rc != 0)
        pq_writer_free(w);
    else
        *out = w;
    return rc;
}

static int reserve_rows(pq_writer *w, wp_err *err)
{
    if (w->n < w->cap)
        return 0;
    int64_t cap = w->cap ? w->cap * 2 : 1024;
    if (cap > w->o.row_group_rows)
        cap = w->o.row_group_rows;
    for (int k = 0; k < w->ncols; k++) {
        wcol *c = &w->c[k];
        void *v = realloc(c->valid, (size_t)cap);
        if (v == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        c->valid = v;
        if (c->type == PQ_DOUBLE) {
            v = realloc(c->dv, (size_t)cap * sizeof *c->dv);
            if (v == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            c->dv = v;
        } else if (c->type == PQ_STRING || c->type == PQ_BYTES) {
            v = realloc(c->offs, (size_t)(cap + 1) * sizeof *c->offs);
            if (v == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            c->offs = v;
            c->offs[0] = 0;
        } else {
            v = realloc(c->iv, (size_t)cap * sizeof *c->iv);
            if (v == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            c->iv = v;
        }
    }
    w->cap = cap;
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

static int put_le32(wp_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return wp_buf_append(b, t, 4);
}

static int put_varint(wp_buf *b, uint64_t v)
{
    uint8_t t[10];
    int n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    return wp_buf_append(b, t, (size_t)n);
}

/* The RLE / bit-packed hybrid of v[0..n) at bit width bw: runs of 8 or more
 * equal values as RLE runs, the rest bit-packed in groups of 8. */
static int rle_encode(const uint32_t *v, size_t n, int bw, wp_buf *b)
{
    int vbytes = (bw + 7) / 8;
    size_t i = 0;
    while (i < n) {
        size_t r = 1;
        while (i + r < n && v[i + r] == v[i])
            r++;
        if (r >= 8) {
            if (put_varint(b, (uint64_t)r << 1) != 0)
                return WP_ENOMEM;
            for (int k = 0; k < vbytes; k++)
                if (wp_buf_putc(b, (int)(v[i] >> (8 * k)) & 0xff) != 0)
                    return WP_ENOMEM;
            i += r;
            continue;
        }
        /* Bit-packed groups of 8 until a run of 8 starts at a group edge. */
        size_t j = i;
        while (j < n) {
            j += 8;
            if (j >= n)
                break;
            size_t rr = 1;
            while (j + rr < n && rr < 8 && v[j + rr] == v[j])
                rr++;
            if (rr >= 8)
                break;
        }
        size_t groups = (j - i + 7) / 8;
        if (put_varint(b, (uint64_t)groups << 1 | 1) != 0)
            return WP_ENOMEM;
        size_t nbytes = groups * (size_t)bw;
        if (wp_buf_reserve(b, nbytes) != 0)
            return WP_ENOMEM;
        uint8_t *o = (uint8_t *)b->data + b->len;
        memset(o, 0, nbytes);
        uint64_t bit = 0;
        for (size_t k = i; k < i + groups * 8; k++, bit += (uint64_t)bw) {
            uint32_t x = k < n ? v[k] : 0;
            for (int t = 0; t < bw; t++)
                if (x >> t & 1)
                    o[(bit + (uint64_t)t) >> 3] |= (uint8_t)(1u << ((bit + (uint64_t)t) & 7));
        }
        b->len += nbytes;
        b->data[b->len] = '\0';
        i = j < n ? j : n;
    }
    return 0;
}

static int bit_width(uint32_t max)
{
    int bw = 0;
    while (bw < 32 && (max >> bw) != 0)
        bw++;
    return bw;
}

/* PLAIN value k of column c onto b. */
static int plain_one(const wcol *c, size_t k, wp_buf *b)
{
    switch (c->type) {
    case PQ_INT64: {
        uint8_t t[8];
        uint64_t v = (uint64_t)c->iv[k];
        for (int i = 0; i < 8; i++)
            t[i] = (uint8_t)(v >> (8 * i));
        return wp_buf_append(b, t, 8);
    }
    case PQ_DOUBLE: {
        uint8_t t[8];
        uint64_t v;
        memcpy(&v, &c->dv[k], 8);
        for (int i = 0; i < 8; i++)
            t[i] = (uint8_t)(v >> (8 * i));
        return wp_buf_append(b, t, 8);
    }
    default: { /* STRING, BYTES */
        uint64_t a = c->offs[k], e = c->offs[k + 1];
        if (put_le32(b, (uint32_t)(e - a)) != 0)
            return WP_ENOMEM;
        return wp_buf_append(b, c->bytes.data + a, (size_t)(e - a));
    }
    }
}

/* Writes one page: header (with the CRC of the compressed bytes) + data. */
static int write_page(pq_writer *w, int type, const wp_buf *raw, int32_t num_values, int enc,
                      wchunk *ch, wp_err *err)
{
    int rc = pq_compress(w->o.codec, w->o.level, (const uint8_t *)raw->data, raw->len, &w->comp);
    if (rc != 0)
        return wp_err_set(err, rc, "%s: compressing a page failed (%s)", w->path,
                          pq_codec_name(w->o.codec));
    if (raw->len > INT32_MAX || w->comp.len > INT32_MAX)
        return wp_err_set(err, WP_ELIMIT, "%s: a page over 2 GiB", w->path);
    w->hdr.len = 0;
    pq_tout o = {.b = &w->hdr};
    pq_to_i32(&o, 1, type);
    pq_to_i32(&o, 2, (int32_t)raw->len);
    pq_to_i32(&o, 3, (int32_t)w->comp.len);
    pq_to_i32(&o, 4, (int32_t)pq_crc32((const uint8_t *)w->comp.data, w->comp.len));
    if (type == 0) {
        pq_to_struct_begin(&o, 5);
        pq_to_i32(&o, 1, num_values);
        pq_to_i32(&o, 2, enc);
        pq_to_i32(&o, 3, PQ_E_RLE);
        pq_to_i32(&o, 4, PQ_E_RLE);
        pq_to_struct_end(&o);
    } else {
        pq_to_struct_begin(&o, 7);
        pq_to_i32(&o, 1, num_values);
        pq_to_i32(&o, 2, PQ_E_PLAIN);
        pq_to_struct_end(&o);
    }
    pq_to_struct_end(&o);
    if (o.bad)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    ch->unc += (int64_t)(w->hdr.len + raw->len);
    ch->comp += (int64_t)(w->hdr.len + w->comp.len);
    if ((rc = wr(w, w->hdr.data, w->hdr.len, err)) != 0)
        return rc;
    return wr(w, w->comp.data, w->comp.len, err);
}

/* Dictionary ids of column c's non-null values (in w->ids, per row; null
 * rows get 0), the distinct values' rows in *first. Returns the distinct
 * count, 0 when the dictionary would not pay, or WP_ENOMEM. */
static int64_t build_dict(pq_writer *w, const wcol *c, size_t n, uint32_t **first)
{
    size_t nn = 0, cap = 16;
    for (size_t i = 0; i < n; i++)
        nn += c->valid[i];
    if (nn < 2)
        return 0;
    while (cap < 2 * nn)
        cap *= 2;
    uint32_t *tab = malloc(cap * sizeof *tab); /* row of first occurrence + 1 */
    uint32_t *dist = malloc((nn + 1) * sizeof *dist);
    uint32_t *tid = malloc(cap * sizeof *tid);
    if (tab == NULL || dist == NULL || tid == NULL) {
        free(tab);
        free(dist);
        free(tid);
        return WP_ENOMEM;
    }
    memset(tab, 0, cap * sizeof *tab);
    size_t nd = 0, bytes = 0;
    int64_t result = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c->valid[i]) {
            w->ids[i] = 0;
            continue;
        }
        const char *s = c->bytes.data + c->offs[i];
        size_t l = (size_t)(c->offs[i + 1] - c->offs[i]);
        size_t h = (size_t)wp_fnv1a64(s, l) & (cap - 1);
        for (;;) {
            if (tab[h] == 0) {
                tab[h] = (uint32_t)i + 1;
                tid[h] = (uint32_t)nd;
                dist[nd++] = (uint32_t)i;
                bytes += l + 4;
                w->ids[i] = tid[h];
                break;
            }
            size_t r = tab[h] - 1;
            if ((size_t)(c->offs[r + 1] - c->offs[r]) == l &&
                memcmp(c->bytes.data + c->offs[r], s, l) == 0) {
                w->ids[i] = tid[h];
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        if (bytes > PQ_DICT_MAX_BYTES || nd > nn / 2 + 1)
            goto out; /* would not pay */
    }
    result = (int64_t)nd;
out:
    free(tab);
    free(tid);
    if (result > 0)
        *first = dist;
    else
        free(dist);
    return result;
}

static int write_chunk(pq_writer *w, int k, wchunk *ch, wp_err *err)
{
    wcol *c = &w->c[k];
    size_t n = (size_t)w->n;
    int rc = 0;
    uint32_t *first = NULL;
    int64_t nd = 0;
    int bytecol = c->type == PQ_STRING || c->type == PQ_BYTES;

    ch->dict_off = -1;
    ch->data_off = (int64_t)w->off;
    if (bytecol) {
        if (w->ids_cap < n + 1) {
            uint32_t *p = realloc(w->ids, (n + 1) * sizeof *p);
            if (p == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            w->ids = p;
            w->ids_cap = n + 1;
        }
    }
    if (bytecol && !w->o.no_dictionary) {
        nd = build_dict(w, c, n, &first);
        if (nd < 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    if (nd > 0) {
        w->page.len = 0;
        for (int64_t d = 0; d < nd && rc == 0; d++)
            rc = plain_one(c, first[d], &w->page);
        free(first);
        if (rc != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        ch->dict_off = (int64_t)w->off;
        ch->dict = 1;
        if ((rc = write_page(w, 2, &w->page, (int32_t)nd, PQ_E_PLAIN, ch, err)) != 0)
            return rc;
        ch->data_off = (int64_t)w->off;
    }
    int bw = nd > 0 ? bit_width((uint32_t)(nd - 1)) : 0;

    /* Data pages of about page_bytes each. */
    size_t a = 0;
    while (a < n || (n == 0 && a == 0)) {
        size_t b = a, est = 0;
        while (b < n && (est < w->o.page_bytes || b == a)) {
            if (c->valid[b])
                est += nd > 0 ? 2 : bytecol ? 4 + (size_t)(c->offs[b + 1] - c->offs[b]) : 8;
            b++;
        }
        w->page.len = 0;
        if (c->nullable) {
            uint32_t *lv = malloc((b - a + 1) * sizeof *lv);
            if (lv == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            for (size_t i = a; i < b; i++)
                lv[i - a] = c->valid[i];
            w->vals.len = 0;
            rc = rle_encode(lv, b - a, 1, &w->vals);
            free(lv);
            if (rc != 0 || put_le32(&w->page, (uint32_t)w->vals.len) != 0 ||
                wp_buf_append(&w->page, w->vals.data, w->vals.len) != 0)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        int enc = PQ_E_PLAIN;
        if (nd > 0) {
            enc = PQ_E_RLE_DICTIONARY;
            /* The non-null rows' ids, packed to the front of a scratch. */
            uint32_t *v = malloc((b - a + 1) * sizeof *v);
            if (v == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            size_t m = 0;
            for (size_t i = a; i < b; i++)
                if (c->valid[i])
                    v[m++] = w->ids[i];
            rc = wp_buf_putc(&w->page, bw);
            if (rc == 0)
                rc = rle_encode(v, m, bw, &w->page);
            free(v);
        } else if (c->type == PQ_BOOL) {
            size_t m = 0;
            size_t start = w->page.len;
            size_t nb = 0;
            for (size_t i = a; i < b; i++)
                nb += c->valid[i];
            if (wp_buf_reserve(&w->page, (nb + 7) / 8) != 0)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
            memset(w->page.data + start, 0, (nb + 7) / 8);
            for (size_t i = a; i < b; i++)
                if (c->valid[i]) {
                    if (c->iv[i])
                        w->page.data[start + (m >> 3)] |= (char)(1 << (m & 7));
                    m++;
                }
            w->page.len += (nb + 7) / 8;
            w->page.data[w->page.len] = '\0';
        } else {
            for (size_t i = a; i < b && rc == 0; i++)
                if (c->valid[i])
                    rc = plain_one(c, i, &w->page);
        }
        if (rc != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        if ((rc = write_page(w, 0, &w->page, (int32_t)(b - a), enc, ch, err)) != 0)
            return rc;
        if (n == 0)
            break;
        a = b;
    }
    return 0;
}

static int flush_rg(pq_writer *w, wp_err *err)
{
    if (w->n == 0)
        return 0;
    if (w->nrg == w->rg_cap) {
        int cap = w->rg_cap ? w->rg_cap * 2 : 16;
        int64_t *rr = realloc(w->rg_rows, (size_t)cap * sizeof *rr);
        if (rr == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        w->rg_rows = rr;
        wchunk *cc = realloc(w->chunks, (size_t)cap * (size_t)w->ncols * sizeof *cc);
        if (cc == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        w->chunks = cc;
        w->rg_cap = cap;
    }
    wchunk *chs = w->chunks + (size_t)w->nrg * (size_t)w->ncols;
    memset(chs, 0, (size_t)w->ncols * sizeof *chs);
    for (int k = 0; k < w->ncols; k++) {
        int rc = write_chunk(w, k, &chs[k], err);
        if (rc != 0)
            return rc;
    }
    w->rg_rows[w->nrg++] = w->n;
    w->total_rows += w->n;
    w->n = 0;
    for (int k = 0; k < w->ncols; k++)
        w->c[k].bytes.len = 0;
    return 0;
}

int pq_writer_append(pq_writer *w, const pq_value *vals, wp_err *err)
{
    int rc;
    if (w->failed)
        return wp_err_set(err, WP_EINVAL, "%s: the writer failed earlier", w->path);
    if ((rc = reserve_rows(w, err)) != 0)
        goto fail;
    size_t i = (size_t)w->n;
    for (int k = 0; k < w->ncols; k++) {
        wcol *c = &w->c[k];
        const pq_value *v = &vals[k];
        int ok = v->type == c->type || (v->type == PQ_NULL && c->nullable) ||
                 (c->type == PQ_BYTES && v->type == PQ_STRING) ||
                 (c->type == PQ_STRING && v->type == PQ_BYTES);
        if (!ok) {
            rc = wp_err_set(err, PQ_ETYPE, "%s: column %s: a value of type %d for a %s column",
                            w->path, c->name, v->type,
                            v->type == PQ_NULL ? "required" : "differently typed");
            goto fail;
        }
        c->valid[i] = v->type != PQ_NULL;
        switch (c->type) {
        case PQ_BOOL:
            c->iv[i] = c->valid[i] && v->i != 0;
            break;
        case PQ_INT64:
            c->iv[i] = c->valid[i] ? v->i : 0;
            break;
        case PQ_DOUBLE:
            c->dv[i] = c->valid[i] ? v->d : 0;
            break;
        default:
            if (c->valid[i] && v->len > 0) {
                if (v->len > INT32_MAX) {
                    rc = wp_err_set(err, WP_ELIMIT, "%s: column %s: a value over 2 GiB", w->path,
                                    c->name);
                    goto fail;
                }
                if (wp_buf_append(&c->bytes, v->s, v->len) != 0) {
                    rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                    goto fail;
                }
            }
            c->offs[i + 1] = c->bytes.len;
        }
    }
    w->n++;
    if (w->n >= w->o.row_group_rows && (rc = flush_rg(w, err)) != 0)
        goto fail;
    return 0;
fail:
    w->failed = 1;
    return rc;
}

static int write_footer(pq_writer *w, wp_err *err)
{
    wp_buf b = {0};
    pq_tout o = {.b = &b};
    int rc;

    pq_to_i32(&o, 1, 1);
    pq_to_list(&o, 2, TT_STRUCT, (size_t)w->ncols + 1);
    pq_to_struct_begin(&o, 0);
    pq_to_binary(&o, 4, "schema", 6);
    pq_to_i32(&o, 5, w->ncols);
    pq_to_struct_end(&o);
    for (int k = 0; k < w->ncols; k++) {
        const wcol *c = &w->c[k];
        static const int phys[] = {0,           PQ_T_BOOLEAN,    PQ_T_INT64,
                                   PQ_T_DOUBLE, PQ_T_BYTE_ARRAY, PQ_T_BYTE_ARRAY};
        pq_to_struct_begin(&o, 0);
        pq_to_i32(&o, 1, phys[c->type]);
        pq_to_i32(&o, 3, c->nullable ? 1 : 0);
        pq_to_binary(&o, 4, c->name, strlen(c->name));
        if (c->type == PQ_STRING) {
            pq_to_i32(&o, 6, 0); /* UTF8 */
            pq_to_struct_begin(&o, 10);
            pq_to_struct_begin(&o, 1); /* StringType {} */
            pq_to_struct_end(&o);
            pq_to_struct_end(&o);
        }
        pq_to_struct_end(&o);
    }
    pq_to_i64(&o, 3, w->total_rows);
    pq_to_list(&o, 4, TT_STRUCT, (size_t)w->nrg);
    for (int g = 0; g < w->nrg; g++) {
        const wchunk *chs = w->chunks + (size_t)g * (size_t)w->ncols;
        int64_t total = 0;
        pq_to_struct_begin(&o, 0);
        pq_to_list(&o, 1, TT_STRUCT, (size_t)w->ncols);
        for (int k = 0; k < w->ncols; k++) {
            const wcol *c = &w->c[k];
            const wchunk *ch = &chs[k];
            static const int phys[] = {0,           PQ_T_BOOLEAN,    PQ_T_INT64,
                                       PQ_T_DOUBLE, PQ_T_BYTE_ARRAY, PQ_T_BYTE_ARRAY};
            total += ch->unc;
            pq_to_struct_begin(&o, 0);
            pq_to_i64(&o, 2, ch->dict_off >= 0 ? ch->dict_off : ch->data_off);
            pq_to_struct_begin(&o, 3);
            pq_to_i32(&o, 1, phys[c->type]);
            pq_to_list(&o, 2, TT_I32, ch->dict ? 3 : 2);
            pq_to_varint(&o, (uint64_t)PQ_E_PLAIN << 1);
            pq_to_varint(&o, (uint64_t)PQ_E_RLE << 1);
            if (ch->dict)
                pq_to_varint(&o, (uint64_t)PQ_E_RLE_DICTIONARY << 1);
            pq_to_list(&o, 3, TT_BINARY, 1);
            pq_to_binary(&o, 0, c->name, strlen(c->name));
            pq_to_i32(&o, 4, w->o.codec);
            pq_to_i64(&o, 5, w->rg_rows[g]);
            pq_to_i64(&o, 6, ch->unc);
            pq_to_i64(&o, 7, ch->comp);
            pq_to_i64(&o, 9, ch->data_off);
            if (ch->dict_off >= 0)
                pq_to_i64(&o, 11, ch->dict_off);
            pq_to_struct_end(&o);
            pq_to_struct_end(&o);
        }
        pq_to_i64(&o, 2, total);
        pq_to_i64(&o, 3, w->rg_rows[g]);
        pq_to_struct_end(&o);
    }
    const char *by = "witpipe version " WP_VERSION;
    pq_to_binary(&o, 6, by, strlen(by));
    pq_to_struct_end(&o);
    if (o.bad || put_le32(&b, (uint32_t)b.len) != 0 || wp_buf_append(&b, "PAR1", 4) != 0) {
        wp_buf_free(&b);
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    rc = wr(w, b.data, b.len, err);
    wp_buf_free(&b);
    return rc;
}

int pq_writer_close(pq_writer *w, wp_err *err)
{
    int rc;
    if (w == NULL)
        return 0;
    if (w->failed) {
        rc = wp_err_set(err, WP_EINVAL, "%s: the writer failed earlier", w->path);
        goto out;
    }
    if ((rc = flush_rg(w, err)) != 0 || (rc = write_footer(w, err)) != 0)
        goto out;
    if (fsync(w->fd) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: fsync: %s", w->tmp, strerror(errno));
        goto out;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        unlink(w->tmp);
        rc = wp_err_set(err, WP_EIO, "%s: close: %s", w->tmp, strerror(errno));
        goto out;
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0) {
        unlink(w->tmp);
        rc = wp_err_set(err, WP_EIO, "%s: rename: %s", w->path, strerror(errno));
        goto out;
    }
out:
    pq_writer_free(w);
    return rc;
}
