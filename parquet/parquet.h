/*
 * parquet/parquet.h: witpipe's own Parquet reader and writer (pq_).
 *
 * Debian 12 packages no Parquet or Arrow library, and the metadata of the
 * datasets people re-curate (LAION, DataComp, COYO, img2dataset shards) is
 * published as Parquet, so this is a small reader and writer written from
 * the format specification on the codec libraries Debian has (snappy, zlib,
 * zstd, lz4, brotli). It covers flat columns, which is what those datasets
 * use, and refuses the rest with a one-line error naming the file, row
 * group, column and page.
 *
 * Reading is streaming: the footer is decoded once, then one row group at a
 * time is read and decoded for the selected columns only, so memory is
 * bounded by the largest row group's selected column data whatever the
 * file's size. Writing buffers one row group of rows, then writes it.
 *
 * Decisions on what other readers disagree about:
 *  - dictionary_page_offset 0 (a known writer bug: offset 0 holds the
 *    magic, so it can only be a placeholder) is taken as absent; a chunk is
 *    read from the lower of its dictionary and data page offsets and every
 *    page header says what the page is. parquet-testing's
 *    dict-page-offset-zero.parquet reads (arrow-rs refuses its footer).
 *  - Codec LZ4 (5) is Hadoop's framing, else a bare LZ4 block, as some
 *    writers emitted; LZ4_RAW (7) is a bare block. LZO is refused.
 *  - INT96 timestamps are nanoseconds since 1970 (PQ_INT64); DECIMAL is
 *    read as its unscaled integer or bytes; FLOAT16 and other fixed-length
 *    values as bytes; unsigned 8/16/32-bit integers are zero-extended.
 *  - Definition levels in the deprecated BIT_PACKED encoding, encrypted
 *    footers and column chunks in other files are refused (PQ_EUNSUPPORTED).
 */
#ifndef PARQUET_H
#define PARQUET_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

/* Error codes (-1800 range, common/wp.h). */
enum pq_status {
    PQ_EFORMAT = -1800,      /* not Parquet, or a malformed footer / page */
    PQ_EUNSUPPORTED = -1801, /* a valid feature this reader does not handle */
    PQ_ECRC = -1802,         /* a page's CRC32 does not match its bytes */
    PQ_ECODEC = -1803,       /* a page did not decompress to its stated size */
    PQ_ENOCOL = -1804,       /* a named column does not exist */
    PQ_ENESTED = -1805,      /* a named column is nested (list, map, struct) */
    PQ_ETYPE = -1806,        /* a value's type does not match its column (writer) */
};

/* The type of one value. Integers of every width (and INT96 timestamps, as
 * nanoseconds since 1970) are PQ_INT64; FLOAT and DOUBLE are PQ_DOUBLE;
 * BYTE_ARRAY annotated as a string (UTF8, STRING, ENUM, JSON) is PQ_STRING,
 * other BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY are PQ_BYTES. */
typedef enum pq_type { PQ_NULL = 0, PQ_BOOL, PQ_INT64, PQ_DOUBLE, PQ_STRING, PQ_BYTES } pq_type;

/* One value. For PQ_STRING / PQ_BYTES, s[0..len) (not NUL-terminated; a
 * string is not checked for valid UTF-8). For PQ_BOOL, i is 0 or 1. */
typedef struct pq_value {
    pq_type type;
    int64_t i;
    double d;
    const char *s;
    size_t len;
} pq_value;

/* Codecs, with their Parquet numbers. */
typedef enum pq_codec {
    PQ_UNCOMPRESSED = 0,
    PQ_SNAPPY = 1,
    PQ_GZIP = 2,
    PQ_BROTLI = 4,
    PQ_LZ4 = 5, /* Hadoop framing, or a raw block as some writers emit */
    PQ_ZSTD = 6,
    PQ_LZ4_RAW = 7,
} pq_codec;

/* ---- reading ----------------------------------------------------------- */

typedef struct pq_reader pq_reader;

typedef struct pq_read_opts {
    int no_verify_crc;   /* 1: page CRCs are not checked (--no-verify-crc) */
    size_t max_page;     /* largest decompressed page accepted; 0 = 256 MiB */
    size_t max_footer;   /* largest footer accepted; 0 = 64 MiB */
    int64_t max_rg_rows; /* most rows in a row group read; 0 = 16 Mi (a memory bound) */
} pq_read_opts;

/* 1 if p[0..n) starts with Parquet's magic "PAR1" (detection by content,
 * not by name; pq_open also checks the magic at the end). */
int pq_magic(const void *p, size_t n);

/* Opens a Parquet file: checks the PAR1 magic at both ends and decodes the
 * footer (FileMetaData) and schema. opts may be NULL (defaults). On error
 * returns PQ_EFORMAT / PQ_EUNSUPPORTED / WP_EIO / WP_ENOENT / WP_ENOMEM,
 * *out is NULL and err names the file. The reader reads the file with pread
 * and keeps it open until pq_close. */
int pq_open(const char *path, const pq_read_opts *opts, pq_reader **out, wp_err *err);
/* The same on a file already in memory (data must outlive the reader);
 * name is used in error messages. */
int pq_open_mem(const void *data, size_t size, const char *name, const pq_read_opts *opts,
                pq_reader **out, wp_err *err);
/* Frees the reader; NULL is fine. */
void pq_close(pq_reader *r);

/* What the footer says. Flat columns are the readable ones: top-level
 * primitive columns, required or optional. Nested columns (lists, maps,
 * structs, repeated fields) are skipped: pq_skipped names each top-level
 * nested field once ("e (list)"), or returns NULL past the last. */
int64_t pq_num_rows(const pq_reader *r);
int pq_num_row_groups(const pq_reader *r);
int64_t pq_row_group_rows(const pq_reader *r, int rg);   /* -1 if rg is out of range */
int pq_num_columns(const pq_reader *r);                  /* flat columns */
const char *pq_column_name(const pq_reader *r, int col); /* NULL if out of range */
pq_type pq_column_type(const pq_reader *r, int col);
int pq_column_nullable(const pq_reader *r, int col);
const char *pq_skipped(const pq_reader *r, int i);
const char *pq_created_by(const pq_reader *r); /* "" when absent */

/* Finds a flat column by exact name: its index, or PQ_ENOCOL (err lists
 * nothing more) or PQ_ENESTED (err: "FILE: column C is nested (list), not
 * readable") when it names a skipped nested field. */
int pq_find_column(const pq_reader *r, const char *name, wp_err *err);

/* Selects the columns the row group reads decode, by flat column index;
 * only those are read from the file. n = 0 or cols = NULL selects all flat
 * columns. Returns 0, or WP_EINVAL for a bad index, WP_ENOMEM. */
int pq_select(pq_reader *r, const int *cols, int n);

/* The row groups that part i of n (1-based, as --part I/N) reads: every
 * row group rg with rg % n == i - 1, rg counted in one file or, for `add`
 * of several files, across all of them in byte order of their names.
 * Returns 1 if rg belongs to the part (always when n <= 1). */
int pq_part_has(int64_t rg, int part_i, int part_n);

/* Reads and decodes row group rg's selected columns, replacing the previous
 * row group's values (the memory of one row group is kept at a time). On
 * success returns the row group's row count (>= 0) and positions the row
 * cursor before its first row. On error returns a negative code (PQ_ECRC,
 * PQ_EFORMAT, PQ_ECODEC, PQ_EUNSUPPORTED, WP_EIO, WP_ENOMEM) with err set to
 * one line naming file, row group, column and page; the reader stays usable
 * and the next call may read another row group (--continue). */
int pq_read_row_group(pq_reader *r, int rg, wp_err *err);

/* The next row of the current row group: fills vals[k] for the k-th
 * selected column (the order given to pq_select) and returns 1, or 0 after
 * the last row. String and byte values point into the reader's memory and
 * stay valid until the next pq_read_row_group or pq_close. Cannot fail. */
int pq_next_row(pq_reader *r, pq_value *vals);

/* The streaming form of the two calls above, for `add`: returns 1 with the
 * next row of part part_i of part_n (1-based; 1, 1 = the whole file) in
 * vals, reading the part's next row group when the current one is done; 0
 * after the part's last row. A row group that cannot be read returns its
 * negative code with err naming file, row group, column and page; calling
 * again goes on with the next row group (--continue), or the caller stops.
 * Values stay valid until the next call that reads a row group. */
int pq_stream_next(pq_reader *r, int part_i, int part_n, pq_value *vals, wp_err *err);
/* The 0-based index in the file of the row last returned (for messages:
 * "FILE: row N"); -1 before the first. */
int64_t pq_row_index(const pq_reader *r);

/* Bytes of uncompressed column data (values, levels) the last
 * pq_read_row_group decoded: the page's uncompressed sizes (for benches). */
uint64_t pq_decoded_bytes(const pq_reader *r);

/* Writes v to j as one JSON value, the member key inside an object (for
 * pairs.extra): null; true / false; an integer; a double (shortest exact
 * form; NaN and infinities, which JSON lacks, as null); a string (invalid
 * UTF-8 replaced by U+FFFD); bytes as a string when they are valid UTF-8,
 * else {"base64":"..."}. Returns the writer's sticky status. */
int pq_value_json(wp_json *j, const char *key, const pq_value *v);

/* ---- writing ----------------------------------------------------------- */

typedef struct pq_writer pq_writer;

/* One column of the file: name, type (PQ_BOOL, PQ_INT64, PQ_DOUBLE,
 * PQ_STRING, PQ_BYTES) and whether nulls are allowed (an optional column). */
typedef struct pq_column {
    const char *name;
    pq_type type;
    int nullable;
} pq_column;

typedef struct pq_write_opts {
    pq_codec codec;         /* PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_GZIP or PQ_ZSTD */
    int level;              /* zstd / gzip level; 0 = the library's default */
    int64_t row_group_rows; /* rows per row group; 0 = 65536 */
    int no_dictionary;      /* 1: string columns always PLAIN */
    size_t page_bytes;      /* target data page size; 0 = 1 MiB */
} pq_write_opts;

/* Creates path (written as path.tmp, renamed over path by pq_writer_close)
 * with the given columns (copied). opts may be NULL (snappy, 65536 rows).
 * String and byte columns are dictionary encoded, falling back to PLAIN in
 * a row group where the dictionary would not pay (too many distinct
 * values); other columns are PLAIN. Returns 0, or WP_EINVAL (no columns, a
 * bad type or codec, an empty or duplicate name), WP_EIO, WP_ENOMEM. */
int pq_writer_open(const char *path, const pq_column *cols, int ncols, const pq_write_opts *opts,
                   pq_writer **out, wp_err *err);
/* Appends one row: vals[k] for column k, of the column's type, or PQ_NULL
 * for a nullable column. Values are copied. Writes a row group every
 * row_group_rows rows. Returns 0, PQ_ETYPE (a value of the wrong type, or
 * a null in a required column), WP_EIO, WP_ENOMEM; after an error the
 * writer can only be freed. */
int pq_writer_append(pq_writer *w, const pq_value *vals, wp_err *err);
/* Writes the last row group and the footer, fsyncs and renames the file
 * into place, and frees the writer (also on error, when the temporary file
 * is removed). Returns 0, WP_EIO, WP_ENOMEM. */
int pq_writer_close(pq_writer *w, wp_err *err);
/* Discards the writer and its temporary file; NULL is fine. */
void pq_writer_free(pq_writer *w);

#endif /* PARQUET_H */
