/*
 * emb/npy.c: the NumPy .npy header, written and parsed.
 *
 * Format (numpy/lib/format.py, "NEP 1"): the magic "\x93NUMPY", a major and
 * minor version byte, the header length as a little-endian u16 (1.0) or u32
 * (2.0, 3.0), then the header: a Python dict literal with exactly the keys
 * 'descr', 'fortran_order' and 'shape', ASCII (1.0, 2.0) or UTF-8 (3.0),
 * padded with spaces and ended by '\n'. The array data follows directly.
 * Only what embeddings use is accepted: little-endian float16/float32, C
 * order, one or two dimensions. The parser reads the dict with a small
 * tokenizer, never past the header, so any bytes give an error, not a read
 * out of bounds.
 */
#include "emb/emb.h"

#include <stdio.h>
#include <string.h>

int emb_npy_header(wp_buf *b, int64_t rows, int cols, int f16)
{
    char dict[160];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %d), }",
                     f16 ? "<f2" : "<f4", (long long)rows, cols);
    /* magic 6 + version 2 + length 2 + dict + padding + '\n' = multiple of 64 */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    int hlen = n + pad + 1;

    if (wp_buf_append(b, "\x93NUMPY\x01\x00", 8) != 0 || wp_buf_putc(b, hlen & 0xff) != 0 ||
        wp_buf_putc(b, (hlen >> 8) & 0xff) != 0 || wp_buf_append(b, dict, (size_t)n) != 0)
        return WP_ENOMEM;
    for (int i = 0; i < pad; i++)
        if (wp_buf_putc(b, ' ') != 0)
            return WP_ENOMEM;
    return wp_buf_putc(b, '\n');
}

/* A cursor over the header dict. */
typedef struct cur {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('...' or "..."), without escapes (none of the
 * valid keys or descrs has one). Sets *s, *n. */
static int read_str(cur *c, const char **s, size_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\')
            return -1;
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return 0;
}

/* A non-negative decimal integer below 2^62, Python's optional 'L' too. */
static int read_int(cur *c, int64_t *v)
{
    skip_ws(c);
    int64_t x = 0;
    int digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > ((int64_t)1 << 58))
            return -1;
        x = x * 10 + (*c->p - '0');
        c->p++;
        digits++;
    }
    if (digits == 0)
        return -1;
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *v = x;
    return 0;
}

static int word_is(cur *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

int emb_npy_parse(const void *data, size_t n, emb_npy *out, wp_err *err)
{
    const unsigned char *p = data;
    size_t hlen, hstart;
    int have_descr = 0, have_order = 0, have_shape = 0;
    int64_t dims[2] = {0, 0};
    int ndim = 0;

    memset(out, 0, sizeof *out);
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return wp_err_set(err, EMB_EFORMAT, "not a .npy file (no \\x93NUMPY magic)");
    if (p[6] == 1) {
        hlen = (size_t)p[8] | ((size_t)p[9] << 8);
        hstart = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (n < 12)
            return wp_err_set(err, EMB_EFORMAT, ".npy header cut short");
        hlen = (size_t)p[8] | ((size_t)p[9] << 8) | ((size_t)p[10] << 16) | ((size_t)p[11] << 24);
        hstart = 12;
    } else {
        return wp_err_set(err, EMB_EFORMAT, ".npy format version %d.%d not supported", p[6], p[7]);
    }
    if (hlen > EMB_NPY_HEADER_MAX)
        return wp_err_set(err, EMB_EFORMAT, ".npy header of %zu bytes (at most %u read)", hlen,
                          EMB_NPY_HEADER_MAX);
    if (hlen > n - hstart)
        return wp_err_set(err, EMB_EFORMAT, ".npy header runs past the end of the file");

    cur c = {(const char *)p + hstart, (const char *)p + hstart + hlen};
    if (!eat(&c, '{'))
        return wp_err_set(err, EMB_EFORMAT, ".npy header is not a dict");
    for (;;) {
        const char *key;
        size_t kn;
        if (eat(&c, '}'))
            break;
        if (read_str(&c, &key, &kn) != 0 || !eat(&c, ':'))
            return wp_err_set(err, EMB_EFORMAT, ".npy header: expected 'key': value");
        if (kn == 5 && memcmp(key, "descr", 5) == 0) {
            const char *d;
            size_t dn;
            if (read_str(&c, &d, &dn) != 0)
                return wp_err_set(err, EMB_EFORMAT, ".npy header: 'descr' is not a string");
            if (dn == 3 && memcmp(d, "<f2", 3) == 0)
                out->itemsize = 2;
            else if (dn == 3 && memcmp(d, "<f4", 3) == 0)
                out->itemsize = 4;
            else
                return wp_err_set(err, EMB_EFORMAT,
                                  ".npy dtype '%.*s' not supported (float16 '<f2' or float32 "
                                  "'<f4' only)",
                                  (int)(dn > 16 ? 16 : dn), d);
            have_descr = 1;
        } else if (kn == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (word_is(&c, "True"))
                return wp_err_set(err, EMB_EFORMAT, ".npy array in Fortran order not supported");
            if (!word_is(&c, "False"))
                return wp_err_set(err, EMB_EFORMAT, ".npy header: 'fortran_order' not a bool");
            have_order = 1;
        } else if (kn == 5 && memcmp(key, "shape", 5) == 0) {
            if (!eat(&c, '('))
                return wp_err_set(err, EMB_EFORMAT, ".npy header: 'shape' is not a tuple");
            while (!eat(&c, ')')) {
                int64_t v;
                if (ndim == 2)
                    return wp_err_set(err, EMB_EFORMAT, ".npy array has more than 2 dimensions");
                if (read_int(&c, &v) != 0)
                    return wp_err_set(err, EMB_EFORMAT, ".npy header: bad 'shape'");
                dims[ndim++] = v;
                if (!eat(&c, ',')) {
                    if (!eat(&c, ')'))
                        return wp_err_set(err, EMB_EFORMAT, ".npy header: bad 'shape'");
                    break;
                }
            }
            have_shape = 1;
        } else {
            return wp_err_set(err, EMB_EFORMAT, ".npy header: unknown key '%.*s'",
                              (int)(kn > 32 ? 32 : kn), key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return wp_err_set(err, EMB_EFORMAT, ".npy header: expected ',' or '}'");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return wp_err_set(err, EMB_EFORMAT, ".npy header lacks %s",
                          !have_descr   ? "'descr'"
                          : !have_order ? "'fortran_order'"
                                        : "'shape'");
    if (ndim == 1 && dims[0] == 0) {
        out->rows = 0;
        out->cols = 0;
    } else if (ndim == 2) {
        if (dims[1] < 1 || dims[1] > EMB_DIM_MAX)
            return wp_err_set(err, EMB_EFORMAT, ".npy rows of %lld values (1 to %d accepted)",
                              (long long)dims[1], EMB_DIM_MAX);
        out->rows = dims[0];
        out->cols = (int)dims[1];
    } else {
        return wp_err_set(err, EMB_EFORMAT, ".npy array of %d dimensions (rows x dim expected)",
                          ndim);
    }
    out->data_offset = hstart + hlen;
    /* rows < 2^58 and cols <= 16384: the product cannot overflow 2^63 only
     * when rows is bounded by the file, so check against n first */
    if (out->rows > 0 && (uint64_t)out->rows > (n - out->data_offset) / out->itemsize / out->cols)
        return wp_err_set(
            err, EMB_EFORMAT, ".npy data cut short: %lld x %d values need %llu bytes, %zu present",
            (long long)out->rows, out->cols,
            (unsigned long long)out->rows * out->cols * out->itemsize, n - out->data_offset);
    return 0;
}
