/*
 * add/add.c: URL + caption lists into the catalog (witpipe add FILE).
 *
 * libarchive's raw format undoes any compression and hands over plain
 * bytes; a fixed window of ADD_RECORD_MAX + one chunk holds the record
 * being parsed, so memory stays flat however long the file is. TSV lines
 * are split on tabs (no quoting), CSV follows RFC 4180 section 2 (quoted
 * fields may hold commas, quotes and line breaks), JSONL is one jansson
 * object per line. Every record is checked (UTF-8, URL, lengths) before it
 * is stored; bad ones are counted and reported with file:line.
 */
#include "add_int.h"
#include "parquet/parquet.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ADD_CHUNK         (256 * 1024)                 /* window room beyond one record */
#define ADD_WINDOW        (ADD_RECORD_MAX + ADD_CHUNK) /* the whole read buffer */
#define ADD_OPEN_BLOCK    65536                        /* libarchive's read block */
#define ADD_PROGRESS_ROWS 4096 /* rows between progress reports (a power of 2) */

struct add_reader {
    struct archive *a;
    char name[WP_PATH_MAX];
    int format;
    char *buf; /* ADD_WINDOW bytes; unread bytes are buf[pos..len) */
    size_t pos, len;
    const char *blk; /* the rest of libarchive's current block */
    size_t blk_left;
    int eof;    /* no more bytes will come */
    int broken; /* ... because the stream failed */
    char brk[WP_ERR_MAX / 2];
    int64_t line;   /* line number of buf[pos] */
    int first_line; /* a BOM may still have to be stripped */
    uint64_t total;
    /* columns (TSV, CSV) */
    int ncols;
    int url_idx, text_idx;
    int keep_idx[ADD_KEEP_MAX];
    int nkeep;
    const char *url_col, *text_col;
    const char *keep_cols[ADD_KEEP_MAX];
    /* the current record's fields: base + off[i], len[i] */
    const char *fbase;
    size_t foff[ADD_FIELDS_MAX], flen[ADD_FIELDS_MAX];
    int nf;
    wp_buf scratch; /* CSV fields, unescaped */
    wp_buf extra;   /* JSON of the kept columns */
    json_t *json;   /* the current JSONL object */
    /* Parquet (format ADD_FMT_PARQUET): the reader and the selected columns'
     * values of the current row: url, caption, then the kept columns */
    pq_reader *pq;
    pq_value pqv[2 + ADD_KEEP_MAX];
    int pq_done;
    int pq_rg;          /* the next row group to look at */
    int64_t pq_rg_base; /* this file's first row group in the run's numbering */
    int part_i, part_n; /* --part I/N: row groups (base + g) % N == I - 1 */
    int pq_rgs_read;    /* row groups read whole */
};

static const char *const bad_names[ADD_BAD_NREASONS] = {
    "none",        "no_url",      "bad_url",  "invalid_utf8", "too_long",
    "bad_quoting", "field_count", "bad_json", "truncated",
};

const char *add_bad_name(int reason)
{
    if (reason < 0 || reason >= ADD_BAD_NREASONS)
        return "unknown";
    return bad_names[reason];
}

int add_format_parse(const char *s)
{
    if (strcmp(s, "tsv") == 0)
        return ADD_FMT_TSV;
    if (strcmp(s, "csv") == 0)
        return ADD_FMT_CSV;
    if (strcmp(s, "jsonl") == 0 || strcmp(s, "ndjson") == 0)
        return ADD_FMT_JSONL;
    if (strcmp(s, "parquet") == 0)
        return ADD_FMT_PARQUET;
    return -1;
}

static int has_suffix(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && strncasecmp(s + n - k, suf, k) == 0;
}

int add_format_from_name(const char *path)
{
    static const char *const comp[] = {".gz",  ".gzip", ".zst",  ".zstd",
                                       ".bz2", ".xz",   ".lzma", ".lz4"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof comp / sizeof comp[0]; i++) {
        if (has_suffix(path, n, comp[i])) {
            n -= strlen(comp[i]);
            break;
        }
    }
    if (has_suffix(path, n, ".tsv") || has_suffix(path, n, ".tab"))
        return ADD_FMT_TSV;
    if (has_suffix(path, n, ".csv"))
        return ADD_FMT_CSV;
    if (has_suffix(path, n, ".jsonl") || has_suffix(path, n, ".ndjson") ||
        has_suffix(path, n, ".json"))
        return ADD_FMT_JSONL;
    return ADD_FMT_AUTO;
}

/* ---- the byte window ---------------------------------------------------- */

/* Reads more bytes into the window (moving unread bytes to its start).
 * Blocks come from archive_read_data_block, which hands over whatever is
 * available (archive_read_data would wait to fill the whole request, so a
 * pipe's rows would sit unprocessed). Returns the number of bytes added; 0
 * at the end or when the stream broke (r->eof set either way) or when the
 * window is full. */
static size_t fill(add_reader *r)
{
    size_t room, k;

    if (r->eof)
        return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    room = ADD_WINDOW - r->len;
    if (room == 0)
        return 0;
    while (r->blk_left == 0) {
        const void *p = NULL;
        size_t n = 0;
        la_int64_t off = 0;
        int rc = archive_read_data_block(r->a, &p, &n, &off);
        if (rc == ARCHIVE_RETRY)
            continue;
        if (rc == ARCHIVE_EOF) {
            r->eof = 1;
            return 0;
        }
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            const char *m = archive_error_string(r->a);
            r->eof = 1;
            r->broken = 1;
            snprintf(r->brk, sizeof r->brk, "%s", m ? m : "read error");
            return 0;
        }
        r->blk = p;
        r->blk_left = n;
    }
    k = r->blk_left < room ? r->blk_left : room;
    memcpy(r->buf + r->len, r->blk, k);
    r->blk += k;
    r->blk_left -= k;
    r->len += k;
    return k;
}

/* Discards bytes up to and including the next line break, without keeping
 * them: this is how a 1 GB line passes through a 1 MB window. */
static void skip_line(add_reader *r)
{
    for (;;) {
        char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (nl != NULL) {
            r->pos = (size_t)(nl - r->buf) + 1;
            r->line++;
            return;
        }
        r->pos = r->len;
        if (r->eof) {
            r->line++;
            return;
        }
        fill(r);
    }
}

enum { LINE_EOF = 0, LINE_OK = 1, LINE_LONG = 2, LINE_CUT = 3 };

/* The next physical line, without its CR LF / LF. Returns LINE_OK,
 * LINE_EOF, LINE_LONG (over ADD_RECORD_MAX: skipped, nothing returned) or
 * LINE_CUT (the last, partial line of a broken stream). */
static int get_line(add_reader *r, const char **p, size_t *n, int64_t *lineno)
{
    size_t scanned = 0;
    for (;;) {
        char *s = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = memchr(s + scanned, '\n', avail - scanned);
        if (nl != NULL || (r->eof && avail > 0)) {
            size_t k = nl != NULL ? (size_t)(nl - s) : avail;
            if (k > ADD_RECORD_MAX) {
                *lineno = r->line;
                skip_line(r);
                return LINE_LONG;
            }
            *p = s;
            *n = k;
            *lineno = r->line++;
            r->pos += nl != NULL ? k + 1 : k;
            if (*n > 0 && s[*n - 1] == '\r')
                (*n)--;
            if (nl == NULL && r->broken)
                return LINE_CUT;
            return LINE_OK;
        }
        if (r->eof)
            return LINE_EOF;
        if (avail >= ADD_RECORD_MAX) {
            *lineno = r->line;
            skip_line(r);
            return LINE_LONG;
        }
        scanned = avail;
        fill(r);
    }
}

static void strip_bom(add_reader *r, const char **p, size_t *n)
{
    if (!r->first_line)
        return;
    r->first_line = 0;
    if (*n >= 3 && memcmp(*p, "\xEF\xBB\xBF", 3) == 0) {
        *p += 3;
        *n -= 3;
    }
}

/* ---- TSV and CSV fields --------------------------------------------------- */

/* Splits a TSV line on tabs (no quoting). Returns 0 or -1 when it has more
 * than ADD_FIELDS_MAX fields. */
static int split_tsv(add_reader *r, const char *p, size_t n)
{
    size_t start = 0;
    r->fbase = p;
    r->nf = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '\t') {
            if (r->nf == ADD_FIELDS_MAX)
                return -1;
            r->foff[r->nf] = start;
            r->flen[r->nf] = i - start;
            r->nf++;
            start = i + 1;
        }
    }
    return 0;
}

enum { CSV_MORE = 0, CSV_OK = 1, CSV_BADQ = -1, CSV_MANY = -2, CSV_NOMEM = -3 };

/* Parses one CSV record (RFC 4180 section 2) from p[0..n) into r's fields
 * (unescaped, in r->scratch). at_eof says no bytes follow p[n-1]. Returns
 * CSV_OK with *used (bytes consumed, line break included) and *breaks (line
 * breaks consumed), CSV_MORE when the record may continue past n, CSV_BADQ
 * for quoting against the RFC, CSV_MANY for too many fields. */
static int parse_csv(add_reader *r, const char *p, size_t n, int at_eof, size_t *used,
                     int64_t *breaks)
{
    size_t i = 0;
    int64_t nl = 0;

    wp_buf_reset(&r->scratch);
    r->nf = 0;
    for (;;) {
        size_t start;
        if (r->nf == ADD_FIELDS_MAX)
            return CSV_MANY;
        r->foff[r->nf] = r->scratch.len;
        if (i < n && p[i] == '"') {
            /* Rule 5: a field may be enclosed in double quotes; rule 6: then
             * it may hold line breaks, commas and double quotes. */
            i++;
            for (;;) {
                const char *q = memchr(p + i, '"', n - i);
                size_t stop = q != NULL ? (size_t)(q - p) : n;
                for (size_t k = i; k < stop; k++)
                    nl += p[k] == '\n';
                if (wp_buf_append(&r->scratch, p + i, stop - i) != 0)
                    return CSV_NOMEM;
                i = stop;
                if (q == NULL)
                    return at_eof ? CSV_BADQ : CSV_MORE; /* unterminated quote */
                if (i + 1 >= n && !at_eof)
                    return CSV_MORE; /* "" or " + separator: cannot tell yet */
                if (i + 1 < n && p[i + 1] == '"') {
                    /* Rule 7: a double quote inside is escaped by doubling. */
                    if (wp_buf_putc(&r->scratch, '"') != 0)
                        return CSV_NOMEM;
                    i += 2;
                    continue;
                }
                i++; /* the closing quote */
                break;
            }
            r->flen[r->nf] = r->scratch.len - r->foff[r->nf];
            r->nf++;
            /* Rules 1, 4: after the closing quote comes a comma, a line break
             * or the end of the file, nothing else. */
            if (i >= n) {
                if (!at_eof)
                    return CSV_MORE;
                break;
            }
            if (p[i] == ',') {
                i++;
                continue;
            }
            if (p[i] == '\n') {
                i++;
                nl++;
                break;
            }
            if (p[i] == '\r') {
                if (i + 1 >= n && !at_eof)
                    return CSV_MORE;
                if (i + 1 >= n) {
                    i++;
                    break;
                }
                if (p[i + 1] == '\n') {
                    i += 2;
                    nl++;
                    break;
                }
            }
            return CSV_BADQ;
        }
        /* Rule 5: in a field not enclosed in quotes, no quote may appear. */
        start = i;
        while (i < n && p[i] != ',' && p[i] != '\n') {
            if (p[i] == '"')
                return CSV_BADQ;
            i++;
        }
        if (i >= n && !at_eof)
            return CSV_MORE;
        {
            size_t end = i;
            /* Rule 1: records end in CRLF (a bare LF is accepted too). */
            if (i < n && p[i] == '\n' && end > start && p[end - 1] == '\r')
                end--;
            else if (i >= n && end > start && p[end - 1] == '\r')
                end--;
            if (wp_buf_append(&r->scratch, p + start, end - start) != 0)
                return CSV_NOMEM;
        }
        r->flen[r->nf] = r->scratch.len - r->foff[r->nf];
        r->nf++;
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        if (i < n) {
            i++; /* the line break */
            nl++;
        }
        break;
    }
    r->fbase = r->scratch.data;
    *used = i;
    *breaks = nl;
    return CSV_OK;
}

enum { REC_EOF = 0, REC_OK = 1, REC_BAD = 2 };

/* The next CSV record's fields. Returns REC_OK, REC_EOF or REC_BAD with
 * rec->bad / detail set; *raw / *rawn is the record's text (for UTF-8
 * checks). A record with bad quoting costs only its first physical line:
 * parsing resumes on the next one. */
static int next_csv(add_reader *r, add_record *rec, const char **raw, size_t *rawn)
{
    for (;;) {
        size_t used = 0;
        int64_t breaks = 0;
        const char *p = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        int k;

        if (avail == 0) {
            if (r->eof)
                return REC_EOF;
            fill(r);
            continue;
        }
        if (r->first_line && avail < 3 && !r->eof) {
            fill(r);
            continue;
        }
        if (r->first_line) {
            r->first_line = 0;
            if (avail >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
                r->pos += 3;
                continue;
            }
        }
        /* Blank lines carry no record. */
        if (p[0] == '\n' || (avail >= 2 && p[0] == '\r' && p[1] == '\n')) {
            r->pos += p[0] == '\n' ? 1 : 2;
            r->line++;
            continue;
        }
        rec->line = r->line;
        k = parse_csv(r, p, avail, r->eof, &used, &breaks);
        if (k == CSV_OK) {
            *raw = p;
            *rawn = used;
            r->pos += used;
            r->line += breaks > 0 ? breaks : 1;
            if (r->broken && r->pos == r->len && (used == 0 || p[used - 1] != '\n')) {
                rec->bad = ADD_BAD_TRUNCATED;
                snprintf(rec->detail, sizeof rec->detail, "record cut short: %s", r->brk);
                return REC_BAD;
            }
            return REC_OK;
        }
        if (k == CSV_NOMEM) {
            rec->bad = ADD_BAD_TOO_LONG;
            snprintf(rec->detail, sizeof rec->detail, "out of memory for the record");
            skip_line(r);
            return REC_BAD;
        }
        if (k == CSV_MORE && avail < ADD_RECORD_MAX) {
            fill(r);
            continue;
        }
        /* Bad quoting, too many fields, or a record that will not end within
         * ADD_RECORD_MAX: give up this physical line and resynchronise on
         * the next one. */
        if (k == CSV_MANY) {
            rec->bad = ADD_BAD_FIELDS;
            snprintf(rec->detail, sizeof rec->detail, "more than %d fields", ADD_FIELDS_MAX);
        } else if (k == CSV_BADQ) {
            rec->bad = ADD_BAD_QUOTING;
            snprintf(rec->detail, sizeof rec->detail,
                     "quote out of place or never closed (RFC 4180 section 2)");
        } else if (memchr(p, '\n', avail) == NULL) {
            rec->bad = ADD_BAD_TOO_LONG;
            snprintf(rec->detail, sizeof rec->detail, "line longer than %d bytes", ADD_RECORD_MAX);
        } else {
            rec->bad = ADD_BAD_QUOTING;
            snprintf(rec->detail, sizeof rec->detail,
                     "quoted field runs past %d bytes (quote never closed?)", ADD_RECORD_MAX);
        }
        skip_line(r);
        return REC_BAD;
    }
}

/* ---- opening ---------------------------------------------------------- */

static int find_col(add_reader *r, const char *name)
{
    size_t k = strlen(name);
    for (int i = 0; i < r->nf; i++)
        if (r->flen[i] == k && memcmp(r->fbase + r->foff[i], name, k) == 0)
            return i;
    return -1;
}

static int missing_col(add_reader *r, const char *name, wp_err *err)
{
    char cols[256];
    size_t off = 0;
    cols[0] = '\0';
    for (int i = 0; i < r->nf && off < sizeof cols - 8; i++) {
        int w = snprintf(cols + off, sizeof cols - off, "%s%.*s", i ? ", " : "",
                         (int)(r->flen[i] > 40 ? 40 : r->flen[i]), r->fbase + r->foff[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return wp_err_set(err, ADD_ECOLUMN, "%s:1: no column '%s' in the header (columns: %s)", r->name,
                      name, cols);
}

/* Reads the header record of a TSV or CSV file and finds the columns. */
static int read_header(add_reader *r, wp_err *err)
{
    add_record rec;
    const char *p = NULL;
    size_t n = 0;
    int64_t ln = 0;

    memset(&rec, 0, sizeof rec);
    if (r->format == ADD_FMT_TSV) {
        int k;
        do {
            k = get_line(r, &p, &n, &ln);
            if (k == LINE_OK)
                strip_bom(r, &p, &n);
        } while (k == LINE_OK && n == 0);
        if (k == LINE_EOF)
            goto empty;
        if (k == LINE_LONG)
            return wp_err_set(err, WP_EFORMAT, "%s:%lld: header longer than %d bytes", r->name,
                              (long long)ln, ADD_RECORD_MAX);
        if (split_tsv(r, p, n) != 0)
            return wp_err_set(err, WP_EFORMAT, "%s:%lld: header has more than %d columns", r->name,
                              (long long)ln, ADD_FIELDS_MAX);
    } else {
        int k = next_csv(r, &rec, &p, &n);
        if (k == REC_EOF)
            goto empty;
        if (k == REC_BAD)
            return wp_err_set(err, WP_EFORMAT, "%s:%lld: bad header: %s", r->name,
                              (long long)rec.line, rec.detail);
    }
    if (r->broken)
        return wp_err_set(err, ADD_ESTREAM, "%s: %s", r->name, r->brk);
    if (!wp_utf8_valid(p, n))
        return wp_err_set(err, WP_EFORMAT, "%s: header is not valid UTF-8", r->name);
    r->ncols = r->nf;
    if ((r->url_idx = find_col(r, r->url_col)) < 0)
        return missing_col(r, r->url_col, err);
    if ((r->text_idx = find_col(r, r->text_col)) < 0)
        return missing_col(r, r->text_col, err);
    for (int i = 0; i < r->nkeep; i++)
        if ((r->keep_idx[i] = find_col(r, r->keep_cols[i])) < 0)
            return missing_col(r, r->keep_cols[i], err);
    return 0;
empty:
    if (r->broken)
        return wp_err_set(err, ADD_ESTREAM, "%s: %s", r->name, r->brk);
    r->ncols = 0;
    return 0;
}

/* A reader for name with the options applied and no stream yet: its window
 * and libarchive handle are allocated, the filters registered. Returns 0,
 * WP_EFORMAT (format unknown) or WP_ENOMEM; *out is set either way when it
 * could be allocated (close it). */
static int reader_new(const char *name, const add_opts *o, add_reader **out, wp_err *err)
{
    add_reader *r;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    *out = r;
    snprintf(r->name, sizeof r->name, "%s", strcmp(name, "-") == 0 ? "(stdin)" : name);
    r->format = o->format != ADD_FMT_AUTO ? o->format : add_format_from_name(name);
    r->line = 1;
    r->first_line = 1;
    r->url_col = o->url_col ? o->url_col : "url";
    r->text_col = o->text_col ? o->text_col : "caption";
    r->nkeep = o->nkeep;
    for (int i = 0; i < o->nkeep; i++)
        r->keep_cols[i] = o->keep_cols[i];
    if (r->format == ADD_FMT_AUTO)
        return wp_err_set(err, WP_EFORMAT,
                          "%s: cannot tell the format from the name; use --format tsv|csv|jsonl",
                          r->name);
    r->buf = malloc(ADD_WINDOW + 1);
    r->a = archive_read_new();
    if (r->buf == NULL || r->a == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    /* Only the compressions lists come in: the catch-all set would also
     * "decode" a text file that happens to start like uuencode. */
    archive_read_support_filter_gzip(r->a);
    archive_read_support_filter_bzip2(r->a);
    archive_read_support_filter_xz(r->a);
    archive_read_support_filter_lzma(r->a);
    archive_read_support_filter_zstd(r->a);
    archive_read_support_filter_lz4(r->a);
    archive_read_support_format_raw(r->a);
    archive_read_support_format_empty(r->a);
    return 0;
}

/* Reads the stream's (raw) header and, for TSV / CSV, the header row, once
 * archive_read_open* returned rc. Returns 0 or the error of
 * add_reader_open. */
static int reader_start(add_reader *r, int rc, wp_err *err)
{
    struct archive_entry *e;

    if (rc != ARCHIVE_OK)
        return wp_err_set(err, ADD_ESTREAM, "%s: %s", r->name,
                          archive_error_string(r->a) ? archive_error_string(r->a) : "cannot open");
    rc = archive_read_next_header(r->a, &e);
    if (rc == ARCHIVE_EOF) {
        r->eof = 1; /* an empty file */
    } else if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return wp_err_set(err, ADD_ESTREAM, "%s: %s", r->name,
                          archive_error_string(r->a) ? archive_error_string(r->a) : "cannot read");
    }
    if (r->format != ADD_FMT_JSONL)
        return read_header(r, err);
    return 0;
}

/* Opens a Parquet file (told by its PAR1 magic, whatever its name): the
 * URL, caption and kept columns are selected by name; a nested one named
 * there is PQ_ENESTED, a missing one ADD_ECOLUMN. Other nested columns are
 * skipped by the reader and named by add_reader_skipped. */
static int open_parquet(const char *path, const add_opts *o, add_reader **out, wp_err *err)
{
    add_reader *r = calloc(1, sizeof *r);
    int cols[2 + ADD_KEEP_MAX], rc;
    const char *names[2 + ADD_KEEP_MAX];
    struct stat sb;

    *out = NULL;
    if (r == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", path);
    r->format = ADD_FMT_PARQUET;
    r->url_col = o->url_col ? o->url_col : "url";
    r->text_col = o->text_col ? o->text_col : "caption";
    r->nkeep = o->nkeep;
    if (stat(path, &sb) == 0)
        r->total = (uint64_t)sb.st_size;
    pq_read_opts po = {.no_verify_crc = o->no_verify_crc};
    if ((rc = pq_open(path, &po, &r->pq, err)) != 0)
        goto fail;
    names[0] = r->url_col;
    names[1] = r->text_col;
    for (int i = 0; i < o->nkeep; i++)
        names[2 + i] = r->keep_cols[i] = o->keep_cols[i];
    for (int i = 0; i < 2 + o->nkeep; i++) {
        if ((cols[i] = pq_find_column(r->pq, names[i], err)) < 0) {
            rc = cols[i] == PQ_ENOCOL
                     ? wp_err_set(err, ADD_ECOLUMN, "%s: no column '%s'", path, names[i])
                     : cols[i];
            goto fail;
        }
    }
    if ((rc = pq_select(r->pq, cols, 2 + o->nkeep)) != 0) {
        rc = wp_err_set(err, PQ_EFORMAT, "%s: cannot select the columns", path);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    add_reader_close(r);
    return rc;
}

int add_reader_row_groups(const add_reader *r)
{
    return r->pq != NULL ? pq_num_row_groups(r->pq) : -1;
}

int add_reader_row_groups_read(const add_reader *r)
{
    return r->pq_rgs_read;
}

void add_reader_set_part(add_reader *r, int64_t rg_base, int part_i, int part_n)
{
    r->pq_rg_base = rg_base;
    r->part_i = part_i;
    r->part_n = part_n;
}

const char *add_reader_skipped(const add_reader *r, int i)
{
    return r->pq != NULL ? pq_skipped(r->pq, i) : NULL;
}

/* A reader over a stream: the bytes data[0..n) when from_mem, else the file
 * path ("-": standard input). Errors as add_reader_open. */
static int open_stream(const char *path, int from_mem, const void *data, size_t n,
                       const add_opts *o, add_reader **out, wp_err *err)
{
    add_reader *r = NULL;
    int rc;

    *out = NULL;
    if ((rc = reader_new(path, o, &r, err)) != 0)
        goto fail;
    if (from_mem) {
        r->total = n;
        rc = archive_read_open_memory(r->a, data, n);
    } else if (strcmp(path, "-") == 0) {
        rc = archive_read_open_fd(r->a, 0, ADD_OPEN_BLOCK);
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            rc = wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path,
                            strerror(errno));
            goto fail;
        }
        if (S_ISDIR(sb.st_mode)) {
            rc = wp_err_set(err, WP_EINVAL, "%s: is a directory (use --files for images)", path);
            goto fail;
        }
        r->total = (uint64_t)sb.st_size;
        rc = archive_read_open_filename(r->a, path, ADD_OPEN_BLOCK);
    }
    if ((rc = reader_start(r, rc, err)) != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    add_reader_close(r);
    return rc;
}

int add_reader_open(const char *path, const add_opts *o, add_reader **out, wp_err *err)
{
    *out = NULL;
    if (strcmp(path, "-") != 0 && o->format == ADD_FMT_AUTO) {
        unsigned char head[4];
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(head, 1, sizeof head, f) : 0;
        if (f != NULL)
            fclose(f);
        if (pq_magic(head, n))
            return open_parquet(path, o, out, err);
    }
    if (o->format == ADD_FMT_PARQUET)
        return open_parquet(path, o, out, err);
    return open_stream(path, 0, NULL, 0, o, out, err);
}

int add_reader_open_mem(const void *data, size_t n, const char *name, const add_opts *o,
                        add_reader **out, wp_err *err)
{
    return open_stream(name, 1, data, n, o, out, err);
}

void add_reader_close(add_reader *r)
{
    if (r == NULL)
        return;
    if (r->a != NULL)
        archive_read_free(r->a);
    pq_close(r->pq);
    json_decref(r->json);
    wp_buf_free(&r->scratch);
    wp_buf_free(&r->extra);
    free(r->buf);
    free(r);
}

void add_reader_progress(const add_reader *r, uint64_t *done, uint64_t *total)
{
    if (r->pq != NULL) { /* rows read, as the share of the file's bytes */
        int64_t rows = pq_num_rows(r->pq), at = pq_row_index(r->pq);
        *total = r->total;
        *done = rows > 0 && at > 0 ? (uint64_t)((double)r->total * (double)at / (double)rows) : 0;
        return;
    }
    la_int64_t b = archive_filter_bytes(r->a, -1);
    *done = b > 0 ? (uint64_t)b : 0;
    *total = r->total;
}

/* ---- records ---------------------------------------------------------- */

static void set_bad(add_record *rec, int why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_bad(add_record *rec, int why, const char *fmt, ...)
{
    va_list ap;
    rec->bad = why;
    va_start(ap, fmt);
    wp_vformat(rec->detail, sizeof rec->detail, fmt, ap);
    va_end(ap);
}

/* The checks every format shares, on rec->url / rec->text. */
static void check_pair(add_record *rec)
{
    const char *u = rec->url;
    size_t n = rec->url_len;

    while (n > 0 && (*u == ' ' || *u == '\t'))
        u++, n--;
    while (n > 0 && (u[n - 1] == ' ' || u[n - 1] == '\t' || u[n - 1] == '\r'))
        n--;
    rec->url = u;
    rec->url_len = n;
    if (n == 0) {
        set_bad(rec, ADD_BAD_NO_URL, "empty URL");
        return;
    }
    if (n > ADD_URL_MAX) {
        set_bad(rec, ADD_BAD_TOO_LONG, "URL of %zu bytes (max %d)", n, ADD_URL_MAX);
        return;
    }
    if (!(n > 7 && strncasecmp(u, "http://", 7) == 0) &&
        !(n > 8 && strncasecmp(u, "https://", 8) == 0)) {
        set_bad(rec, ADD_BAD_URL, "not an http(s) URL: '%.*s'", (int)wp_utf8_floor(u, n, 40), u);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        /* RFC 3986 section 2: no spaces or control characters in a URL. */
        if (c <= 0x20 || c == 0x7f) {
            set_bad(rec, ADD_BAD_URL, "space or control character in URL at byte %zu", i);
            return;
        }
    }
    if (rec->text_len > ADD_TEXT_MAX) {
        set_bad(rec, ADD_BAD_TOO_LONG, "caption of %zu bytes (max %d)", rec->text_len,
                ADD_TEXT_MAX);
        return;
    }
    rec->text_missing = rec->text_len == 0;
}

static int utf8_ok(add_record *rec, const char *p, size_t n)
{
    if (memchr(p, '\0', n) != NULL) {
        set_bad(rec, ADD_BAD_UTF8, "NUL byte in record");
        return 0;
    }
    if (!wp_utf8_valid(p, n)) {
        set_bad(rec, ADD_BAD_UTF8, "invalid UTF-8");
        return 0;
    }
    return 1;
}

/* Checks rec's pair; when it is good and columns are kept, starts the JSON
 * object of its kept columns in r->extra and returns 1, else 0. */
static int extra_begin(add_reader *r, add_record *rec, wp_json *j)
{
    check_pair(rec);
    if (rec->bad || r->nkeep == 0)
        return 0;
    wp_buf_reset(&r->extra);
    wp_json_init(j, &r->extra);
    wp_json_obj_begin(j, NULL);
    return 1;
}

/* Ends it: rec->extra_json is the object, or rec is bad for the reason why
 * (the writer ran out of memory or depth). */
static void extra_end(add_reader *r, wp_json *j, add_record *rec, const char *why)
{
    wp_json_obj_end(j);
    if (wp_json_finish(j) != 0)
        set_bad(rec, ADD_BAD_TOO_LONG, "%s", why);
    else
        rec->extra_json = r->extra.data;
}

/* Maps a TSV/CSV record's fields onto rec. */
static void fields_to_record(add_reader *r, add_record *rec)
{
    if (r->nf != r->ncols) {
        set_bad(rec, ADD_BAD_FIELDS, "%d fields, the header has %d", r->nf, r->ncols);
        return;
    }
    rec->url = r->fbase + r->foff[r->url_idx];
    rec->url_len = r->flen[r->url_idx];
    rec->text = r->fbase + r->foff[r->text_idx];
    rec->text_len = r->flen[r->text_idx];
    wp_json j;
    if (!extra_begin(r, rec, &j))
        return;
    for (int i = 0; i < r->nkeep; i++) {
        int k = r->keep_idx[i];
        wp_json_strn(&j, r->keep_cols[i], r->fbase + r->foff[k], r->flen[k]);
    }
    extra_end(r, &j, rec, "out of memory for kept columns");
}

static void jsonl_to_record(add_reader *r, add_record *rec, const char *p, size_t n)
{
    json_error_t je;
    json_t *u, *t;

    r->json = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (r->json == NULL) {
        set_bad(rec, ADD_BAD_JSON, "column %d: %s", je.column, je.text);
        return;
    }
    if (!json_is_object(r->json)) {
        set_bad(rec, ADD_BAD_JSON, "not a JSON object");
        return;
    }
    u = json_object_get(r->json, r->url_col);
    if (u == NULL || json_is_null(u)) {
        set_bad(rec, ADD_BAD_NO_URL, "no \"%s\" member", r->url_col);
        return;
    }
    if (!json_is_string(u)) {
        set_bad(rec, ADD_BAD_JSON, "\"%s\" is not a string", r->url_col);
        return;
    }
    rec->url = json_string_value(u);
    rec->url_len = json_string_length(u);
    t = json_object_get(r->json, r->text_col);
    if (t == NULL || json_is_null(t)) {
        rec->text = "";
        rec->text_len = 0;
    } else if (json_is_string(t)) {
        rec->text = json_string_value(t);
        rec->text_len = json_string_length(t);
    } else {
        set_bad(rec, ADD_BAD_JSON, "\"%s\" is not a string", r->text_col);
        return;
    }
    wp_json j;
    if (!extra_begin(r, rec, &j))
        return;
    for (int i = 0; i < r->nkeep; i++) {
        json_t *v = json_object_get(r->json, r->keep_cols[i]);
        if (v != NULL)
            wp_json_tree(&j, r->keep_cols[i], v, 0);
    }
    extra_end(r, &j, rec, "kept columns: out of memory or nested too deep");
}

/* The next Parquet row as a record: the URL must be a string; a null
 * caption is an empty one (counted as missing, as in the other formats);
 * kept columns go to extra with their types (pq_value_json). */
static int next_parquet(add_reader *r, add_record *rec, wp_err *err)
{
    const pq_value *v = r->pqv;
    int rc;

    if (r->pq_done)
        return 0;
    while (!pq_next_row(r->pq, r->pqv)) {
        int g = r->pq_rg;
        while (g < pq_num_row_groups(r->pq) &&
               !pq_part_has(r->pq_rg_base + g, r->part_i, r->part_n))
            g++;
        r->pq_rg = g + 1;
        if (g >= pq_num_row_groups(r->pq)) {
            r->pq_done = 1;
            return 0;
        }
        if ((rc = pq_read_row_group(r->pq, g, err)) < 0) {
            /* err names the file, row group, column and page; the next call
             * goes on with the next row group (--continue). */
            if (rc == WP_ENOMEM) {
                r->pq_done = 1;
                return rc;
            }
            char msg[WP_ERR_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return wp_err_set(err, ADD_ESTREAM, "%s", msg);
        }
        r->pq_rgs_read++;
    }
    rec->line = pq_row_index(r->pq) + 1;
    if (v[0].type != PQ_STRING && v[0].type != PQ_BYTES) {
        set_bad(rec, v[0].type == PQ_NULL ? ADD_BAD_NO_URL : ADD_BAD_URL, "row %lld: the URL is %s",
                (long long)rec->line - 1, v[0].type == PQ_NULL ? "null" : "not a string");
        return 1;
    }
    if (v[1].type != PQ_NULL && v[1].type != PQ_STRING && v[1].type != PQ_BYTES) {
        set_bad(rec, ADD_BAD_FIELDS, "row %lld: the caption is not a string",
                (long long)rec->line - 1);
        return 1;
    }
    if (!utf8_ok(rec, v[0].s, v[0].len) ||
        (v[1].type != PQ_NULL && !utf8_ok(rec, v[1].s, v[1].len)))
        return 1;
    rec->url = v[0].s;
    rec->url_len = v[0].len;
    rec->text = v[1].type == PQ_NULL ? "" : v[1].s;
    rec->text_len = v[1].type == PQ_NULL ? 0 : v[1].len;
    wp_json j;
    if (!extra_begin(r, rec, &j))
        return 1;
    for (int i = 0; i < r->nkeep; i++)
        pq_value_json(&j, r->keep_cols[i], &v[2 + i]);
    extra_end(r, &j, rec, "out of memory for kept columns");
    return 1;
}

int add_reader_next(add_reader *r, add_record *rec, wp_err *err)
{
    const char *p = NULL;
    size_t n = 0;

    json_decref(r->json);
    r->json = NULL;
    memset(rec, 0, sizeof *rec);
    if (r->format == ADD_FMT_PARQUET)
        return next_parquet(r, rec, err);
    if (r->format != ADD_FMT_JSONL && r->ncols == 0)
        goto end; /* an empty file: not even a header */
    if (r->format == ADD_FMT_CSV) {
        int k = next_csv(r, rec, &p, &n);
        if (k == REC_EOF)
            goto end;
        if (k == REC_BAD)
            return 1;
        if (utf8_ok(rec, p, n))
            fields_to_record(r, rec);
        return 1;
    }
    for (;;) {
        int k = get_line(r, &p, &n, &rec->line);
        if (k == LINE_EOF)
            goto end;
        if (k == LINE_LONG) {
            set_bad(rec, ADD_BAD_TOO_LONG, "line longer than %d bytes", ADD_RECORD_MAX);
            return 1;
        }
        if (k == LINE_CUT) {
            set_bad(rec, ADD_BAD_TRUNCATED, "line cut short: %s", r->brk);
            return 1;
        }
        strip_bom(r, &p, &n);
        if (n == 0)
            continue; /* blank lines carry no record */
        if (!utf8_ok(rec, p, n))
            return 1;
        if (r->format == ADD_FMT_TSV) {
            if (split_tsv(r, p, n) != 0)
                set_bad(rec, ADD_BAD_FIELDS, "more than %d fields", ADD_FIELDS_MAX);
            else
                fields_to_record(r, rec);
        } else {
            jsonl_to_record(r, rec, p, n);
        }
        return 1;
    }
end:
    if (r->broken)
        return wp_err_set(err, ADD_ESTREAM, "%s: stream broken after line %lld: %s", r->name,
                          (long long)(r->line - 1), r->brk);
    return 0;
}

/* ---- into the catalog --------------------------------------------------- */

static const char *format_name(int f)
{
    return f == ADD_FMT_TSV       ? "tsv"
           : f == ADD_FMT_CSV     ? "csv"
           : f == ADD_FMT_PARQUET ? "parquet"
                                  : "jsonl";
}

static void progress(const wp_reporter *rep, add_reader *r, const add_stats *st)
{
    wp_progress p = {0};
    uint64_t done, total;
    add_reader_progress(r, &done, &total);
    p.stage = "add";
    p.unit = "bytes";
    p.done = done;
    p.total = total;
    p.errors = st->bad;
    p.bytes = st->bytes + done;
    wp_report_progress(rep, &p);
}

int add_source(cat *c, const char *path, const add_reader *r, int64_t *source_id, wp_err *err)
{
    wp_buf params = {0};
    wp_json j;
    int rc;
    wp_json_init(&j, &params);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "format", format_name(r->format));
    wp_json_str(&j, "url_col", r->url_col);
    wp_json_str(&j, "text_col", r->text_col);
    wp_json_obj_end(&j);
    rc = wp_json_finish(&j) != 0
             ? wp_err_set(err, WP_ENOMEM, "out of memory")
             : cat_source_get_or_add(c, "list", path, params.data, source_id, err);
    wp_buf_free(&params);
    return rc;
}

int add_store(cat *c, const add_record *rec, const char *name, int64_t source_id, cat_run *run,
              const wp_reporter *rep, add_stats *st, wp_err *err)
{
    char origin[WP_PATH_MAX + 32];
    cat_pair_in in;
    int is_new = 0, rc;

    st->rows++;
    if (rec->bad != ADD_BAD_NONE) {
        st->bad++;
        st->bad_by[rec->bad]++;
        if (st->reported < ADD_BAD_REPORT)
            wp_report_event(rep, WP_LOG_WARN, "bad_row", "%s:%lld: %s: %s", name,
                            (long long)rec->line, add_bad_name(rec->bad), rec->detail);
        st->reported++;
        return 0;
    }
    snprintf(origin, sizeof origin, "%s:%lld", name, (long long)rec->line);
    memset(&in, 0, sizeof in);
    in.url = rec->url;
    in.url_len = rec->url_len;
    in.text = rec->text;
    in.text_len = rec->text_len;
    in.source_id = source_id;
    in.origin = origin;
    in.extra_json = rec->extra_json;
    in.run_id = run != NULL ? cat_run_id(run) : 0;
    if ((rc = cat_pair_add(c, &in, NULL, NULL, &is_new, err)) != 0)
        return rc;
    if (is_new) {
        st->added++;
        st->empty_text += rec->text_missing != 0;
    } else {
        st->duplicates++;
    }
    return 0;
}

int add_list(cat *c, const char *path, const add_opts *o, cat_run *run, const wp_reporter *rep,
             add_stats *st, wp_err *err)
{
    add_reader *r = NULL;
    add_record rec;
    int64_t source_id = 0;
    int batch = o->batch_rows > 0 ? o->batch_rows : ADD_BATCH_ROWS;
    int n = 0, since_tick = 0, rc, k;
    uint64_t done = 0, total = 0, recno = 0;

    if ((rc = add_reader_open(path, o, &r, err)) != 0) {
        st->files_failed++;
        return rc;
    }
    for (int i = 0; add_reader_skipped(r, i) != NULL; i++)
        wp_report_event(rep, WP_LOG_INFO, "parquet_skipped", "%s: nested column '%s' skipped", path,
                        add_reader_skipped(r, i));
    if ((rc = add_source(c, path, r, &source_id, err)) != 0)
        goto out;
    if ((rc = cat_bulk_mode(c, 1, err)) != 0 || (rc = cat_begin(c, err)) != 0)
        goto out;
    for (;;) {
        if (++since_tick >= ADD_PROGRESS_ROWS) {
            since_tick = 0;
            progress(rep, r, st);
            if (wp_stop_requested()) {
                /* Between records: everything read so far is committed. */
                rc = wp_err_set(err, WP_ESTOP, "%s: stopped after line %lld", r->name,
                                (long long)(r->line - 1));
                break;
            }
        }
        k = add_reader_next(r, &rec, err);
        if (k <= 0) {
            /* Ctrl-C while reading a pipe may surface as a read error. */
            rc = k < 0 && wp_stop_requested() ? WP_ESTOP : k;
            break;
        }
        if (!wp_part_has(&o->records, o->part_by_host && rec.bad == ADD_BAD_NONE
                                          ? wp_part_key_host(rec.url, rec.url_len)
                                          : recno)) {
            recno++;
            continue; /* another part's record */
        }
        recno++;
        if ((rc = add_store(c, &rec, r->name, source_id, run, rep, st, err)) != 0)
            break;
        if (++n >= batch) {
            n = 0;
            if ((rc = add_report_list(run, st, -1, err)) != 0 || (rc = cat_commit(c, err)) != 0)
                break;
            if ((rc = cat_begin(c, err)) != 0)
                break;
        }
    }
    if (rc == 0 || rc == ADD_ESTREAM || rc == WP_ESTOP) {
        /* A broken stream or a stop still keeps every complete record
         * before it. */
        wp_err keep = {0};
        int crc = cat_commit(c, rc == 0 ? err : &keep);
        if (rc == 0)
            rc = crc;
    } else {
        cat_rollback(c);
    }
    progress(rep, r, st);
out:
    if (cat_in_transaction(c))
        cat_rollback(c);
    cat_bulk_mode(c, 0, NULL);
    add_reader_progress(r, &done, &total);
    st->bytes += done;
    if (rc == 0)
        st->files++;
    else if (rc != WP_ESTOP)
        st->files_failed++;
    add_reader_close(r);
    return rc;
}
