/*
 * parquet/pq_read.c: the Parquet reader: footer and schema, then one row
 * group at a time, its selected column chunks read, their pages checked
 * (CRC), decompressed and decoded into typed arrays the row cursor walks.
 *
 * Memory: the footer (kept for the reader's life) plus one row group's
 * selected column data, which is freed (arena reset) when the next row
 * group is read. Column chunks are read with pread, never the whole file.
 * A dictionary page found at data_page_offset (dictionary_page_offset 0 or
 * absent, a known writer bug) is accepted: pages are walked from the first
 * of the two offsets and each page says what it is.
 */
#include "parquet/pq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PQ_DEF_MAX_PAGE    ((size_t)256 << 20)
#define PQ_DEF_MAX_FOOTER  ((size_t)64 << 20)
#define PQ_DEF_MAX_RG_ROWS ((int64_t)16 << 20)
#define PQ_SCHEMA_DEPTH    64
#define PQ_JULIAN_EPOCH    2440588LL /* Julian day of 1970-01-01 */

typedef struct pq_col {
    const char *name;
    const char *disp; /* name for messages: control bytes escaped, cut at 200 */
    int leaf;         /* index of its column chunk */
    int phys;
    int type_length;
    pq_type type;
    int optional;
    int is_unsigned; /* UINT_8/16/32 stored in INT32: zero-extend */
} pq_col;

/* One selected column's values for the current row group. */
typedef struct pq_colbuf {
    uint8_t *valid;
    int64_t *iv; /* BOOLEAN, INT32, INT64, INT96 */
    double *dv;  /* FLOAT, DOUBLE */
    pq_str *sv;  /* BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY */
} pq_colbuf;

struct pq_reader {
    char *name;
    int fd;
    const uint8_t *mem;
    uint64_t size;
    uint64_t data_end; /* where the footer starts: column data lies before */
    pq_read_opts o;

    wp_arena *meta_arena;
    pq_meta m;
    int nleaves;
    pq_col *cols;
    int ncols;
    char **skipped;
    int nskipped;

    int *sel;
    int nsel;

    wp_arena *rg_arena;
    pq_colbuf *cb;
    int rg;          /* the row group loaded, -1 none */
    int stream_next; /* the next row group pq_stream_next considers */
    int64_t rg_rows, cur;
    int64_t rg_first; /* the file's index of the loaded row group's first row */
    uint64_t decoded;

    /* reusable scratch */
    uint8_t *chunk;
    size_t chunk_cap;
    uint8_t *page;
    size_t page_cap;
    uint32_t *idx;
    size_t idx_cap;
    int64_t *tmp;
    size_t tmp_cap;
};

/* The location of the page being decoded, for error messages. */
typedef struct pq_where {
    pq_reader *r;
    int rg, col, page;
    uint64_t off;
} pq_where;

static int where_err(const pq_where *w, wp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int where_err(const pq_where *w, wp_err *err, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const pq_col *c = &w->r->cols[w->col];
    if (w->page >= 0)
        return wp_err_set(err, code, "%s: row group %d, column %s, page %d (offset %llu): %s",
                          w->r->name, w->rg, c->disp, w->page, (unsigned long long)w->off, msg);
    return wp_err_set(err, code, "%s: row group %d, column %s: %s", w->r->name, w->rg, c->disp,
                      msg);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return WP_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int read_at(pq_reader *r, uint64_t off, size_t n, const uint8_t **out, wp_err *err)
{
    if (off > r->size || n > r->size - off)
        return wp_err_set(err, PQ_EFORMAT, "%s: read of %zu bytes at %llu past the end", r->name, n,
                          (unsigned long long)off);
    if (r->mem != NULL) {
        *out = r->mem + off;
        return 0;
    }
    if (grow((void **)&r->chunk, &r->chunk_cap, n + 1, 1) != 0)
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory reading %zu bytes", r->name, n);
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(r->fd, r->chunk + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return wp_err_set(err, WP_EIO, "%s: read at %llu failed: %s", r->name,
                              (unsigned long long)(off + got), k < 0 ? strerror(errno) : "EOF");
        got += (size_t)k;
    }
    *out = r->chunk;
    return 0;
}

/* A schema name fit for a one-line message: control bytes as \xNN, cut at
 * 200 bytes. NULL when out of memory. */
static char *disp_name(wp_arena *a, const char *s)
{
    char buf[256];
    size_t n = 0;
    for (; *s && n < 200; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\\x%02x", c);
        else
            buf[n++] = (char)c;
    }
    buf[n] = '\0';
    return wp_arena_strdup(a, buf);
}

static pq_type map_type(const pq_schema_el *e)
{
    switch (e->type) {
    case PQ_T_BOOLEAN:
        return PQ_BOOL;
    case PQ_T_INT32:
    case PQ_T_INT64:
    case PQ_T_INT96:
        return PQ_INT64;
    case PQ_T_FLOAT:
    case PQ_T_DOUBLE:
        return PQ_DOUBLE;
    case PQ_T_BYTE_ARRAY:
        if (e->converted == 0 || e->converted == 4 || e->converted == 19 || e->logical == 1 ||
            e->logical == 4 || e->logical == 12)
            return PQ_STRING;
        return PQ_BYTES;
    default:
        return PQ_BYTES;
    }
}

/* Walks the subtree at schema[i]: counts its leaves, sets *next past it. */
static int subtree(const pq_meta *m, int i, int depth, int *leaves, int *next)
{
    if (i >= m->nschema || depth > PQ_SCHEMA_DEPTH)
        return -1;
    const pq_schema_el *e = &m->schema[i];
    if (e->num_children <= 0) {
        if (e->num_children < 0)
            return -1;
        if (e->type >= 0)
            (*leaves)++;
        *next = i + 1;
        return 0;
    }
    int j = i + 1;
    for (int c = 0; c < e->num_children; c++)
        if (subtree(m, j, depth + 1, leaves, &j) != 0)
            return -1;
    *next = j;
    return 0;
}

static const char *nested_kind(const pq_schema_el *e)
{
    if (e->num_children <= 0)
        return "repeated";
    if (e->converted == 3 || e->logical == 3)
        return "list";
    if (e->converted == 1 || e->converted == 2 || e->logical == 2)
        return "map";
    return "struct";
}

static int build_schema(pq_reader *r, wp_err *err)
{
    const pq_meta *m = &r->m;
    const pq_schema_el *root = &m->schema[0];
    int i = 1, leaf = 0;

    r->cols = wp_arena_calloc(r->meta_arena, (size_t)m->nschema * sizeof *r->cols);
    r->skipped = wp_arena_calloc(r->meta_arena, (size_t)m->nschema * sizeof *r->skipped);
    if (r->cols == NULL || r->skipped == NULL)
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", r->name);
    if (root->num_children < 0 || root->num_children >= m->nschema)
        return wp_err_set(err, PQ_EFORMAT, "%s: corrupt schema: root has %d children of %d",
                          r->name, root->num_children, m->nschema - 1);
    for (int c = 0; c < root->num_children; c++) {
        if (i >= m->nschema)
            return wp_err_set(err, PQ_EFORMAT, "%s: corrupt schema: fewer elements than children",
                              r->name);
        const pq_schema_el *e = &m->schema[i];
        int leaves = 0, next = 0;
        char *disp = disp_name(r->meta_arena, e->name);
        if (disp == NULL)
            return wp_err_set(err, WP_ENOMEM, "%s: out of memory", r->name);
        if (subtree(m, i, 1, &leaves, &next) != 0)
            return wp_err_set(err, PQ_EFORMAT,
                              "%s: corrupt schema under %s (children past the end, or nesting "
                              "deeper than %d)",
                              r->name, disp, PQ_SCHEMA_DEPTH);
        if (e->num_children == 0 && e->type >= 0 && e->repetition != 2) {
            pq_col *col = &r->cols[r->ncols++];
            col->name = e->name;
            col->disp = disp;
            col->leaf = leaf;
            col->phys = e->type;
            col->type_length = e->type_length;
            col->type = map_type(e);
            col->optional = e->repetition == 1;
            col->is_unsigned =
                e->type == PQ_T_INT32 && ((e->converted >= 11 && e->converted <= 13) ||
                                          (e->logical == 10 && !e->int_signed));
            if (e->type > PQ_T_FLBA)
                return wp_err_set(err, PQ_EFORMAT, "%s: column %s has unknown physical type %d",
                                  r->name, disp, e->type);
            if (e->type == PQ_T_FLBA && (e->type_length <= 0 || e->type_length > (1 << 20)))
                return wp_err_set(err, PQ_EFORMAT, "%s: column %s has bad fixed length %d", r->name,
                                  disp, e->type_length);
        } else if (leaves > 0 || e->num_children > 0) {
            r->skipped[r->nskipped] =
                wp_arena_sprintf(r->meta_arena, "%s (%s)", disp, nested_kind(e));
            if (r->skipped[r->nskipped] == NULL)
                return wp_err_set(err, WP_ENOMEM, "%s: out of memory", r->name);
            r->nskipped++;
        }
        leaf += leaves;
        i = next;
    }
    if (i != m->nschema)
        return wp_err_set(err, PQ_EFORMAT, "%s: corrupt schema: %d elements, the tree uses %d",
                          r->name, m->nschema, i);
    r->nleaves = leaf;
    for (int g = 0; g < m->nrg; g++) {
        if (m->rgs[g].ncols != leaf)
            return wp_err_set(err, PQ_EFORMAT,
                              "%s: row group %d has %d column chunks, the schema %d leaves",
                              r->name, g, m->rgs[g].ncols, leaf);
        if (m->rgs[g].num_rows < 0)
            return wp_err_set(err, PQ_EFORMAT, "%s: row group %d has a negative row count", r->name,
                              g);
    }
    return 0;
}

static int open_common(pq_reader *r, wp_err *err)
{
    const uint8_t *p;
    int rc;
    if (r->o.max_page == 0)
        r->o.max_page = PQ_DEF_MAX_PAGE;
    if (r->o.max_footer == 0)
        r->o.max_footer = PQ_DEF_MAX_FOOTER;
    if (r->o.max_rg_rows <= 0 || r->o.max_rg_rows > INT32_MAX)
        r->o.max_rg_rows = PQ_DEF_MAX_RG_ROWS;
    if (r->size < 12)
        return wp_err_set(err, PQ_EFORMAT, "%s: not a Parquet file (%llu bytes, too short)",
                          r->name, (unsigned long long)r->size);
    if ((rc = read_at(r, 0, 4, &p, err)) != 0)
        return rc;
    if (memcmp(p, "PAR1", 4) != 0)
        return wp_err_set(err, PQ_EFORMAT, "%s: not a Parquet file (no PAR1 magic at the start)",
                          r->name);
    if ((rc = read_at(r, r->size - 8, 8, &p, err)) != 0)
        return rc;
    if (memcmp(p + 4, "PARE", 4) == 0)
        return wp_err_set(err, PQ_EUNSUPPORTED, "%s: encrypted Parquet footer is not supported",
                          r->name);
    if (memcmp(p + 4, "PAR1", 4) != 0)
        return wp_err_set(err, PQ_EFORMAT,
                          "%s: truncated or not Parquet (no PAR1 magic at the end)", r->name);
    uint32_t flen =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if ((uint64_t)flen > r->size - 12)
        return wp_err_set(err, PQ_EFORMAT,
                          "%s: footer length %u past the start of the file (%llu bytes)", r->name,
                          flen, (unsigned long long)r->size);
    if (flen > r->o.max_footer)
        return wp_err_set(err, WP_ELIMIT, "%s: footer of %u bytes is larger than %zu", r->name,
                          flen, r->o.max_footer);
    r->data_end = r->size - 8 - flen;
    if ((rc = read_at(r, r->data_end, flen, &p, err)) != 0)
        return rc;
    if ((rc = pq_meta_decode(p, flen, r->meta_arena, &r->m, err)) != 0)
        return wp_err_prefix(err, "%s", r->name);
    if ((rc = build_schema(r, err)) != 0)
        return rc;
    return pq_select(r, NULL, 0);
}

static int reader_new(const char *name, const pq_read_opts *opts, pq_reader **out, wp_err *err)
{
    pq_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    r->fd = -1;
    r->rg = -1;
    r->name = strdup(name ? name : "(memory)");
    r->meta_arena = wp_arena_new(8 << 10);
    r->rg_arena = wp_arena_new(16 << 10);
    if (r->name == NULL || r->meta_arena == NULL || r->rg_arena == NULL) {
        pq_close(r);
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    if (opts != NULL)
        r->o = *opts;
    *out = r;
    return 0;
}

int pq_open(const char *path, const pq_read_opts *opts, pq_reader **out, wp_err *err)
{
    pq_reader *r;
    struct stat st;
    int rc;
    *out = NULL;
    if ((rc = reader_new(path, opts, &r, err)) != 0)
        return rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = wp_err_set(err, WP_EIO, "%s: not a regular file", path);
        goto out;
    }
    r->size = (uint64_t)st.st_size;
    rc = open_common(r, err);
out:
    if (rc != 0)
        pq_close(r);
    else
        *out = r;
    return rc;
}

int pq_open_mem(const void *data, size_t size, const char *name, const pq_read_opts *opts,
                pq_reader **out, wp_err *err)
{
    pq_reader *r;
    int rc;
    *out = NULL;
    if ((rc = reader_new(name, opts, &r, err)) != 0)
        return rc;
    r->mem = data ? data : (const uint8_t *)"";
    r->size = size;
    rc = open_common(r, err);
    if (rc != 0)
        pq_close(r);
    else
        *out = r;
    return rc;
}

void pq_close(pq_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    wp_arena_free(r->meta_arena);
    wp_arena_free(r->rg_arena);
    free(r->name);
    free(r->sel);
    free(r->cb);
    free(r->chunk);
    free(r->page);
    free(r->idx);
    free(r->tmp);
    free(r);
}

int pq_magic(const void *p, size_t n)
{
    return n >= 4 && memcmp(p, "PAR1", 4) == 0;
}

int64_t pq_num_rows(const pq_reader *r)
{
    return r->m.num_rows;
}

int pq_num_row_groups(const pq_reader *r)
{
    return r->m.nrg;
}

int64_t pq_row_group_rows(const pq_reader *r, int rg)
{
    return rg >= 0 && rg < r->m.nrg ? r->m.rgs[rg].num_rows : -1;
}

int pq_num_columns(const pq_reader *r)
{
    return r->ncols;
}

const char *pq_column_name(const pq_reader *r, int col)
{
    return col >= 0 && col < r->ncols ? r->cols[col].name : NULL;
}

pq_type pq_column_type(const pq_reader *r, int col)
{
    return col >= 0 && col < r->ncols ? r->cols[col].type : PQ_NULL;
}

int pq_column_nullable(const pq_reader *r, int col)
{
    return col >= 0 && col < r->ncols ? r->cols[col].optional : 0;
}

const char *pq_skipped(const pq_reader *r, int i)
{
    return i >= 0 && i < r->nskipped ? r->skipped[i] : NULL;
}

const char *pq_created_by(const pq_reader *r)
{
    return r->m.created_by ? r->m.created_by : "";
}

uint64_t pq_decoded_bytes(const pq_reader *r)
{
    return r->decoded;
}

int pq_part_has(int64_t rg, int part_i, int part_n)
{
    if (part_n <= 1)
        return 1;
    return rg % part_n == part_i - 1;
}

int pq_find_column(const pq_reader *r, const char *name, wp_err *err)
{
    for (int i = 0; i < r->ncols; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            return i;
    size_t n = strlen(name);
    for (int i = 0; i < r->nskipped; i++)
        if (strncmp(r->skipped[i], name, n) == 0 && r->skipped[i][n] == ' ')
            return wp_err_set(err, PQ_ENESTED, "%s: column %s is nested (%s), not readable",
                              r->name, name, r->skipped[i] + n + 2);
    return wp_err_set(err, PQ_ENOCOL, "%s: no column named %s", r->name, name);
}

int pq_select(pq_reader *r, const int *cols, int n)
{
    int all = cols == NULL || n <= 0;
    int k = all ? r->ncols : n;
    int *sel = malloc((size_t)(k ? k : 1) * sizeof *sel);
    pq_colbuf *cb = calloc((size_t)(k ? k : 1), sizeof *cb);
    if (sel == NULL || cb == NULL) {
        free(sel);
        free(cb);
        return WP_ENOMEM;
    }
    for (int i = 0; i < k; i++) {
        sel[i] = all ? i : cols[i];
        if (sel[i] < 0 || sel[i] >= r->ncols) {
            free(sel);
            free(cb);
            return WP_EINVAL;
        }
    }
    free(r->sel);
    free(r->cb);
    r->sel = sel;
    r->cb = cb;
    r->nsel = k;
    r->rg_rows = r->cur = 0;
    r->rg = -1;
    wp_arena_reset(r->rg_arena);
    return 0;
}

/* ---- page decoding -------------------------------------------------------- */

/* A decoded dictionary. */
typedef struct pq_dict {
    size_t n;
    int64_t *iv;
    double *dv;
    pq_str *sv;
} pq_dict;

static int64_t int96_ns(const uint8_t *p)
{
    uint64_t nanos = 0;
    for (int i = 7; i >= 0; i--)
        nanos = nanos << 8 | p[i];
    int64_t day = (int32_t)((uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
                            (uint32_t)p[11] << 24);
    return (int64_t)((uint64_t)(day - PQ_JULIAN_EPOCH) * 86400000000000ULL + nanos);
}

static int64_t rd_le32(const uint8_t *p, int is_unsigned)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return is_unsigned ? (int64_t)v : (int64_t)(int32_t)v;
}

static int64_t rd_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* PLAIN: n values of column c from p[0..len) into iv / dv / sv. */
static int decode_plain(const pq_col *c, const uint8_t *p, size_t len, size_t n, int64_t *iv,
                        double *dv, pq_str *sv, const char **why)
{
    size_t w;
    switch (c->phys) {
    case PQ_T_BOOLEAN:
        if ((n + 7) / 8 > len) {
            *why = "PLAIN booleans past the end of the page";
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            iv[i] = (p[i >> 3] >> (i & 7)) & 1;
        return 0;
    case PQ_T_INT32:
    case PQ_T_FLOAT:
        w = 4;
        break;
    case PQ_T_INT64:
    case PQ_T_DOUBLE:
        w = 8;
        break;
    case PQ_T_INT96:
        w = 12;
        break;
    case PQ_T_BYTE_ARRAY:
        return pq_plain_ba_decode(p, len, sv, n, NULL, why);
    default: /* FLBA */
        w = (size_t)c->type_length;
        break;
    }
    if (n > len / w) {
        *why = "PLAIN values past the end of the page";
        return -1;
    }
    for (size_t i = 0; i < n; i++, p += w) {
        switch (c->phys) {
        case PQ_T_INT32:
            iv[i] = rd_le32(p, c->is_unsigned);
            break;
        case PQ_T_INT64:
            iv[i] = rd_le64(p);
            break;
        case PQ_T_INT96:
            iv[i] = int96_ns(p);
            break;
        case PQ_T_FLOAT: {
            float f;
            memcpy(&f, p, 4);
            dv[i] = f;
            break;
        }
        case PQ_T_DOUBLE:
            memcpy(&dv[i], p, 8);
            break;
        default:
            sv[i].p = (const char *)p;
            sv[i].len = (uint32_t)w;
        }
    }
    return 0;
}

/* Decodes the nn non-null values of one data page (encoding enc) at value
 * slot pos of column buffer b. */
static int decode_values(pq_reader *r, const pq_col *c, pq_colbuf *b, const pq_dict *dict, int enc,
                         const uint8_t *p, size_t len, size_t pos, size_t nn, const char **why)
{
    int64_t *iv = b->iv ? b->iv + pos : NULL;
    double *dv = b->dv ? b->dv + pos : NULL;
    pq_str *sv = b->sv ? b->sv + pos : NULL;

    switch (enc) {
    case PQ_E_PLAIN:
        return decode_plain(c, p, len, nn, iv, dv, sv, why);
    case PQ_E_PLAIN_DICTIONARY:
    case PQ_E_RLE_DICTIONARY: {
        if (dict == NULL) {
            *why = "dictionary-encoded page without a dictionary page";
            return -1;
        }
        if (nn == 0)
            return 0;
        if (len < 1) {
            *why = "dictionary indices missing";
            return -1;
        }
        if (grow((void **)&r->idx, &r->idx_cap, nn, sizeof *r->idx) != 0) {
            *why = "out of memory";
            return -1;
        }
        if (pq_rle_decode(p + 1, len - 1, p[0], r->idx, nn, why) != 0)
            return -1;
        for (size_t i = 0; i < nn; i++) {
            uint32_t k = r->idx[i];
            if (k >= dict->n) {
                *why = "dictionary index out of range";
                return -1;
            }
            if (iv)
                iv[i] = dict->iv[k];
            else if (dv)
                dv[i] = dict->dv[k];
            else
                sv[i] = dict->sv[k];
        }
        return 0;
    }
    case PQ_E_RLE: {
        if (c->phys != PQ_T_BOOLEAN) {
            *why = "RLE values in a non-boolean column";
            return -1;
        }
        if (len < 4) {
            *why = "RLE booleans lack their length";
            return -1;
        }
        uint32_t l = (uint32_t)rd_le32(p, 1);
        if (l > len - 4) {
            *why = "RLE booleans past the end of the page";
            return -1;
        }
        if (grow((void **)&r->idx, &r->idx_cap, nn, sizeof *r->idx) != 0) {
            *why = "out of memory";
            return -1;
        }
        if (pq_rle_decode(p + 4, l, 1, r->idx, nn, why) != 0)
            return -1;
        for (size_t i = 0; i < nn; i++)
            iv[i] = r->idx[i];
        return 0;
    }
    case PQ_E_DELTA_BINARY_PACKED: {
        size_t cnt, used;
        if (c->phys != PQ_T_INT32 && c->phys != PQ_T_INT64) {
            *why = "DELTA_BINARY_PACKED in a column that is not INT32 or INT64";
            return -1;
        }
        if (pq_delta_decode(p, len, c->phys == PQ_T_INT32, iv, nn, &cnt, &used, why) != 0)
            return -1;
        if (cnt != nn) {
            *why = "DELTA_BINARY_PACKED value count differs from the page's";
            return -1;
        }
        if (c->is_unsigned)
            for (size_t i = 0; i < nn; i++)
                iv[i] = (int64_t)(uint32_t)iv[i];
        return 0;
    }
    case PQ_E_DELTA_LENGTH_BYTE_ARRAY:
    case PQ_E_DELTA_BYTE_ARRAY:
        if (c->phys != PQ_T_BYTE_ARRAY && !(enc == PQ_E_DELTA_BYTE_ARRAY && c->phys == PQ_T_FLBA)) {
            *why = "delta byte-array encoding in a column of another type";
            return -1;
        }
        if (grow((void **)&r->tmp, &r->tmp_cap, nn + 1, sizeof *r->tmp) != 0) {
            *why = "out of memory";
            return -1;
        }
        if (enc == PQ_E_DELTA_LENGTH_BYTE_ARRAY)
            return pq_dlba_decode(p, len, sv, nn, r->tmp, why);
        if (pq_dba_decode(p, len, sv, nn, r->tmp, r->rg_arena, why) != 0)
            return -1;
        if (c->phys == PQ_T_FLBA)
            for (size_t i = 0; i < nn; i++)
                if (sv[i].len != (uint32_t)c->type_length) {
                    *why = "DELTA_BYTE_ARRAY value of the wrong fixed length";
                    return -1;
                }
        return 0;
    case PQ_E_BYTE_STREAM_SPLIT: {
        size_t w = c->phys == PQ_T_INT32 || c->phys == PQ_T_FLOAT    ? 4
                   : c->phys == PQ_T_INT64 || c->phys == PQ_T_DOUBLE ? 8
                   : c->phys == PQ_T_FLBA                            ? (size_t)c->type_length
                                                                     : 0;
        if (w == 0) {
            *why = "BYTE_STREAM_SPLIT in a column of another type";
            return -1;
        }
        if (nn > 0 && nn * w / w != nn) {
            *why = "BYTE_STREAM_SPLIT too large";
            return -1;
        }
        uint8_t *out = wp_arena_alloc(r->rg_arena, nn * w + 1);
        if (out == NULL) {
            *why = "out of memory";
            return -1;
        }
        if (pq_bss_decode(p, len, (int)w, out, nn, why) != 0)
            return -1;
        return decode_plain(c, out, nn * w, nn, iv, dv, sv, why);
    }
    default:
        *why = "unsupported encoding";
        return -1;
    }
}

/* Spreads the nn values decoded at slots pos.. over pos..pos+n by the
 * validity bytes (in place, from the end). */
static void spread(pq_colbuf *b, size_t pos, size_t n, size_t nn)
{
    size_t j = nn;
    for (size_t i = n; i-- > 0 && j > 0;) {
        if (!b->valid[pos + i])
            continue;
        j--;
        if (j == i)
            break; /* the rest is already in place */
        if (b->iv)
            b->iv[pos + i] = b->iv[pos + j];
        else if (b->dv)
            b->dv[pos + i] = b->dv[pos + j];
        else
            b->sv[pos + i] = b->sv[pos + j];
    }
}

static int read_chunk(pq_reader *r, int rg, int k, wp_err *err)
{
    const pq_col *c = &r->cols[r->sel[k]];
    const pq_chunk *ch = &r->m.rgs[rg].cols[c->leaf];
    pq_colbuf *b = &r->cb[k];
    pq_where w = {.r = r, .rg = rg, .col = r->sel[k], .page = -1};
    size_t rows = (size_t)r->rg_rows;
    int byte_col = c->phys == PQ_T_BYTE_ARRAY || c->phys == PQ_T_FLBA;
    const uint8_t *buf;
    pq_dict dict = {0};
    int have_dict = 0;
    int rc;

    if (!ch->has_meta)
        return where_err(&w, err, PQ_EFORMAT, "column chunk without metadata");
    if (ch->external)
        return where_err(&w, err, PQ_EUNSUPPORTED, "column chunk in another file (file_path)");
    if (ch->type != c->phys)
        return where_err(&w, err, PQ_EFORMAT, "chunk type %d differs from the schema's %d",
                         ch->type, c->phys);
    if (ch->num_values != r->rg_rows)
        return where_err(&w, err, PQ_EFORMAT, "chunk has %lld values for %lld rows",
                         (long long)ch->num_values, (long long)r->rg_rows);
    int64_t start = ch->data_page_offset;
    if (ch->dict_page_offset > 0 && ch->dict_page_offset < start)
        start = ch->dict_page_offset;
    if (start < 4 || ch->total_compressed < 0 || (uint64_t)start > r->data_end ||
        (uint64_t)ch->total_compressed > r->data_end - (uint64_t)start)
        return where_err(&w, err, PQ_EFORMAT,
                         "chunk at offset %lld, %lld bytes, lies outside the file's data (%llu "
                         "bytes)",
                         (long long)start, (long long)ch->total_compressed,
                         (unsigned long long)r->data_end);
    size_t len = (size_t)ch->total_compressed;
    if ((rc = read_at(r, (uint64_t)start, len, &buf, err)) != 0)
        return wp_err_prefix(err, "row group %d, column %s", rg, c->disp);

    /* The value arrays of the row group. */
    b->valid = wp_arena_alloc(r->rg_arena, rows + 1);
    if (b->valid == NULL)
        return where_err(&w, err, WP_ENOMEM, "out of memory");
    b->iv = NULL;
    b->dv = NULL;
    b->sv = NULL;
    if (c->phys == PQ_T_FLOAT || c->phys == PQ_T_DOUBLE)
        b->dv = wp_arena_alloc(r->rg_arena, (rows + 1) * sizeof *b->dv);
    else if (byte_col)
        b->sv = wp_arena_alloc(r->rg_arena, (rows + 1) * sizeof *b->sv);
    else
        b->iv = wp_arena_alloc(r->rg_arena, (rows + 1) * sizeof *b->iv);
    if (!b->dv && !b->sv && !b->iv)
        return where_err(&w, err, WP_ENOMEM, "out of memory");

    size_t off = 0, pos = 0;
    for (int page = 0; pos < rows || off < len; page++) {
        pq_page_header h;
        const char *why = NULL;
        w.page = page;
        w.off = (uint64_t)start + off;
        if (off >= len) {
            return where_err(&w, err, PQ_EFORMAT, "chunk ends after %zu of %zu values", pos, rows);
        }
        int hl = pq_page_header_decode(buf + off, len - off, &h, &why);
        if (hl < 0)
            return where_err(&w, err, PQ_EFORMAT, "corrupt page header: %s", why);
        off += (size_t)hl;
        if ((size_t)h.compressed_size > len - off)
            return where_err(&w, err, PQ_EFORMAT, "page of %d bytes runs past its column chunk",
                             h.compressed_size);
        const uint8_t *pd = buf + off;
        size_t plen = (size_t)h.compressed_size;
        off += plen;
        if (h.type == 1)
            continue; /* index page */
        if (h.type != 0 && h.type != 2 && h.type != 3)
            return where_err(&w, err, PQ_EUNSUPPORTED, "unknown page type %d", h.type);
        if (h.has_crc && !r->o.no_verify_crc) {
            uint32_t got = pq_crc32(pd, plen);
            if (got != h.crc)
                return where_err(&w, err, PQ_ECRC, "page CRC mismatch (stored %08x, computed %08x)",
                                 h.crc, got);
        }
        if ((size_t)h.uncompressed_size > r->o.max_page)
            return where_err(&w, err, WP_ELIMIT, "page of %d bytes is larger than %zu",
                             h.uncompressed_size, r->o.max_page);
        r->decoded += (uint64_t)h.uncompressed_size;

        /* v2: levels come first, uncompressed. */
        size_t lv = h.type == 3 ? (size_t)h.def_bytes + (size_t)h.rep_bytes : 0;
        size_t ulen = (size_t)h.uncompressed_size - lv;
        uint8_t *u;
        if (byte_col || h.type == 2)
            u = wp_arena_alloc(r->rg_arena, ulen + 1);
        else if (grow((void **)&r->page, &r->page_cap, ulen + 1, 1) == 0)
            u = r->page;
        else
            u = NULL;
        if (u == NULL)
            return where_err(&w, err, WP_ENOMEM, "out of memory");
        int codec = h.type == 3 && !h.is_compressed ? PQ_UNCOMPRESSED : ch->codec;
        if (h.type == 3 && ulen == 0 && plen == lv)
            rc = 0; /* an empty v2 page may have no compressed block at all */
        else
            rc = pq_decompress(codec, pd + lv, plen - lv, u, ulen, &why);
        if (rc != 0)
            return where_err(&w, err, rc, "%s (codec %s)", why, pq_codec_name(codec));

        if (h.type == 2) {
            if (have_dict)
                return where_err(&w, err, PQ_EFORMAT, "a second dictionary page");
            if (pos > 0)
                return where_err(&w, err, PQ_EFORMAT, "dictionary page after data pages");
            if (h.encoding != PQ_E_PLAIN && h.encoding != PQ_E_PLAIN_DICTIONARY)
                return where_err(&w, err, PQ_EUNSUPPORTED, "dictionary page encoding %s",
                                 pq_encoding_name(h.encoding));
            if (c->phys == PQ_T_BOOLEAN)
                return where_err(&w, err, PQ_EFORMAT, "dictionary page for a boolean column");
            size_t dn = (size_t)h.num_values;
            if (dn > ulen + 1)
                return where_err(&w, err, PQ_EFORMAT, "dictionary of %zu values in %zu bytes", dn,
                                 ulen);
            dict.n = dn;
            if (b->dv)
                dict.dv = wp_arena_alloc(r->rg_arena, (dn + 1) * sizeof *dict.dv);
            else if (b->sv)
                dict.sv = wp_arena_alloc(r->rg_arena, (dn + 1) * sizeof *dict.sv);
            else
                dict.iv = wp_arena_alloc(r->rg_arena, (dn + 1) * sizeof *dict.iv);
            if (!dict.dv && !dict.sv && !dict.iv)
                return where_err(&w, err, WP_ENOMEM, "out of memory");
            if (decode_plain(c, u, ulen, dn, dict.iv, dict.dv, dict.sv, &why) != 0)
                return where_err(&w, err, PQ_EFORMAT, "dictionary: %s", why);
            have_dict = 1;
            continue;
        }

        /* A data page: num_values rows (flat column). */
        size_t n = (size_t)h.num_values;
        if (n > rows - pos)
            return where_err(&w, err, PQ_EFORMAT, "page holds %zu values, the chunk %zu more", n,
                             rows - pos);
        const uint8_t *vp = u;
        size_t vlen = ulen;
        size_t nn = n;
        uint8_t *valid = b->valid + pos;
        if (c->optional) {
            const uint8_t *lp;
            size_t ll;
            if (h.type == 3) {
                if (h.rep_bytes != 0)
                    return where_err(&w, err, PQ_EFORMAT, "repetition levels in a flat column");
                lp = pd;
                ll = (size_t)h.def_bytes;
            } else {
                if (h.def_encoding != PQ_E_RLE)
                    return where_err(&w, err, PQ_EUNSUPPORTED, "definition levels in encoding %s",
                                     pq_encoding_name(h.def_encoding));
                if (ulen < 4)
                    return where_err(&w, err, PQ_EFORMAT, "definition levels lack their length");
                ll = (size_t)rd_le32(u, 1);
                if (ll > ulen - 4)
                    return where_err(&w, err, PQ_EFORMAT,
                                     "definition levels past the end of the page");
                lp = u + 4;
                vp = u + 4 + ll;
                vlen = ulen - 4 - ll;
            }
            if (grow((void **)&r->idx, &r->idx_cap, n + 1, sizeof *r->idx) != 0)
                return where_err(&w, err, WP_ENOMEM, "out of memory");
            if (pq_rle_decode(lp, ll, 1, r->idx, n, &why) != 0)
                return where_err(&w, err, PQ_EFORMAT, "definition levels: %s", why);
            nn = 0;
            for (size_t i = 0; i < n; i++) {
                valid[i] = (uint8_t)r->idx[i];
                nn += r->idx[i];
            }
        } else {
            if (h.type == 3 && (h.def_bytes != 0 || h.rep_bytes != 0))
                return where_err(&w, err, PQ_EFORMAT, "levels in a required column");
            memset(valid, 1, n);
        }
        if (decode_values(r, c, b, have_dict ? &dict : NULL, h.encoding, vp, vlen, pos, nn, &why) !=
            0)
            return where_err(&w, err,
                             strcmp(why, "unsupported encoding") == 0 ? PQ_EUNSUPPORTED
                             : strcmp(why, "out of memory") == 0      ? WP_ENOMEM
                                                                      : PQ_EFORMAT,
                             "%s (encoding %s)", why, pq_encoding_name(h.encoding));
        if (nn < n)
            spread(b, pos, n, nn);
        pos += n;
    }
    return 0;
}

int pq_read_row_group(pq_reader *r, int rg, wp_err *err)
{
    r->rg = -1;
    r->rg_rows = r->cur = 0;
    r->decoded = 0;
    wp_arena_reset(r->rg_arena);
    if (rg < 0 || rg >= r->m.nrg)
        return wp_err_set(err, WP_EINVAL, "%s: no row group %d (the file has %d)", r->name, rg,
                          r->m.nrg);
    int64_t rows = r->m.rgs[rg].num_rows;
    if (rows > r->o.max_rg_rows)
        return wp_err_set(err, WP_ELIMIT, "%s: row group %d has %lld rows, more than %lld", r->name,
                          rg, (long long)rows, (long long)r->o.max_rg_rows);
    r->rg_rows = rows;
    r->rg = rg;
    r->rg_first = 0;
    for (int g = 0; g < rg; g++)
        r->rg_first += r->m.rgs[g].num_rows;
    for (int k = 0; k < r->nsel; k++) {
        int rc = read_chunk(r, rg, k, err);
        if (rc != 0) {
            r->rg_rows = 0;
            r->rg = -1;
            wp_arena_reset(r->rg_arena);
            return rc;
        }
    }
    return (int)(rows > INT32_MAX ? INT32_MAX : rows);
}

int pq_next_row(pq_reader *r, pq_value *vals)
{
    if (r->cur >= r->rg_rows)
        return 0;
    size_t i = (size_t)r->cur++;
    for (int k = 0; k < r->nsel; k++) {
        const pq_col *c = &r->cols[r->sel[k]];
        const pq_colbuf *b = &r->cb[k];
        pq_value *v = &vals[k];
        if (!b->valid[i]) {
            memset(v, 0, sizeof *v);
            v->type = PQ_NULL;
            continue;
        }
        v->type = c->type;
        if (b->iv) {
            v->i = b->iv[i];
            v->d = (double)v->i;
        } else if (b->dv) {
            v->d = b->dv[i];
            v->i = 0;
        } else {
            v->s = b->sv[i].p;
            v->len = b->sv[i].len;
        }
    }
    return 1;
}

int pq_stream_next(pq_reader *r, int part_i, int part_n, pq_value *vals, wp_err *err)
{
    while (!pq_next_row(r, vals)) {
        int g = r->stream_next;
        while (g < r->m.nrg && !pq_part_has(g, part_i, part_n))
            g++;
        if (g >= r->m.nrg) {
            r->stream_next = g;
            return 0;
        }
        r->stream_next = g + 1;
        int rc = pq_read_row_group(r, g, err);
        if (rc < 0)
            return rc;
    }
    return 1;
}

int64_t pq_row_index(const pq_reader *r)
{
    if (r->rg < 0 || r->cur == 0)
        return -1;
    return r->rg_first + r->cur - 1;
}
