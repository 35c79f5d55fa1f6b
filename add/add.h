/*
 * crawl/ingest.h: `witpipe add`, the sources that need no crawling: URL +
 * caption lists (img2dataset's input: TSV, CSV, JSONL, plain or gzip / zstd
 * / bzip2 / xz compressed) and local folders of already-fetched images.
 *
 * Lists are streamed: a fixed window (ING_RECORD_MAX plus one read chunk)
 * is all the memory a file of any length takes, and a record longer than
 * ING_RECORD_MAX (a 1 GB line) is skipped as over-long without being
 * buffered. Bad rows are counted by reason and the first ING_BAD_REPORT
 * are reported with file:line; they never stop a run. A damaged stream (a
 * truncated gzip) ends that file with an error after every complete record
 * before the damage has been kept.
 */
#ifndef INGEST_H
#define INGEST_H

#include "catalog/catalog.h"
#include "common/wp.h"
#include "store/store.h"

#include <stdint.h>

#define ING_RECORD_MAX    (1 << 20)   /* one line / CSV record, bytes */
#define ING_URL_MAX       8192        /* image URL, bytes */
#define ING_TEXT_MAX      (64 * 1024) /* caption, bytes */
#define ING_FIELDS_MAX    512         /* columns in a TSV/CSV record */
#define ING_KEEP_MAX      64          /* --keep-cols entries */
#define ING_COLNAME_MAX   256         /* one column name, bytes */
#define ING_BAD_REPORT    10          /* bad rows reported one by one, per run */
#define ING_BATCH_ROWS    50000       /* rows per catalog transaction */
#define ING_FILE_MAX      (256 << 20) /* add --files: largest image imported */
#define ING_LIST_LINE_MAX (64 * 1024) /* add --files-list: one line */

enum ingest_status {
    ING_ECOLUMN = -800, /* the header lacks a requested column */
    ING_ESTREAM = -801, /* the (compressed) stream is damaged or unreadable */
};

enum ingest_format {
    ING_FMT_AUTO = 0, /* from the file name, compression suffix stripped */
    ING_FMT_TSV,
    ING_FMT_CSV,
    ING_FMT_JSONL,
};

/* Why a row was not stored. */
enum ingest_bad {
    ING_BAD_NONE = 0,
    ING_BAD_NO_URL,    /* URL column empty or missing */
    ING_BAD_URL,       /* not http(s)://, or spaces / control characters in it */
    ING_BAD_UTF8,      /* invalid UTF-8 or a NUL byte anywhere in the record */
    ING_BAD_TOO_LONG,  /* record, URL or caption longer than its maximum */
    ING_BAD_QUOTING,   /* CSV quoting against RFC 4180 section 2 */
    ING_BAD_FIELDS,    /* TSV/CSV: not as many fields as the header */
    ING_BAD_JSON,      /* JSONL: not a JSON object, or url not a string */
    ING_BAD_TRUNCATED, /* the last record, cut by a damaged stream */
    ING_BAD_NREASONS
};

/* "no_url", "bad_url", ...: static strings. */
const char *ingest_bad_name(int reason);
/* "tsv", "csv", "jsonl" -> enum ingest_format, or -1. */
int ingest_format_parse(const char *s);
/* The format a file name implies once .gz/.zst/.bz2/.xz/.lzma/.lz4 is
 * stripped (.tsv, .tab, .csv, .jsonl, .ndjson, .json); ING_FMT_AUTO when it
 * implies none. */
int ingest_format_from_name(const char *path);

typedef struct ingest_opts {
    int format;                          /* enum ingest_format; AUTO: from the name */
    const char *url_col;                 /* default "url" */
    const char *text_col;                /* default "caption" */
    const char *keep_cols[ING_KEEP_MAX]; /* extra columns kept in pairs.extra */
    int nkeep;
    int batch_rows; /* 0: ING_BATCH_ROWS */
    int64_t run_id; /* stored with every pair; 0 for none */
} ingest_opts;

/* ---- the record reader (no catalog) ----------------------------------- */

typedef struct ingest_reader ingest_reader;

/* One data record. Pointers stay valid until the next ingest_reader_next. */
typedef struct ingest_record {
    int64_t line; /* 1-based line where the record starts */
    int bad;      /* enum ingest_bad; the fields below are unset when bad */
    char detail[160];
    const char *url;
    size_t url_len;
    const char *text;
    size_t text_len;
    int text_missing;       /* the caption was empty, null or absent */
    const char *extra_json; /* {"col": value, ...} of --keep-cols, or NULL */
} ingest_record;

/* Opens path ("-" for standard input) for reading records. The header row
 * (TSV, CSV) is read here: ING_ECOLUMN when a requested column is missing,
 * WP_EFORMAT when the format cannot be told from the name, WP_ENOENT or
 * ING_ESTREAM when the file cannot be read. An empty file opens and has no
 * records. The caller frees *out with ingest_reader_close. */
int ingest_reader_open(const char *path, const ingest_opts *o, ingest_reader **out, wp_err *err);
/* The same for a list held in memory (tests, fuzzing): data[0..n),
 * possibly compressed, read as the file called name would be (name gives
 * the format when o->format is AUTO, and appears in messages). data must
 * stay valid and unchanged until ingest_reader_close. */
int ingest_reader_open_mem(const void *data, size_t n, const char *name, const ingest_opts *o,
                           ingest_reader **out, wp_err *err);
/* Returns 1 and the next record, 0 at the end, or ING_ESTREAM when the
 * stream broke (records before it were all returned; a record it cut short
 * comes back first, as ING_BAD_TRUNCATED). */
int ingest_reader_next(ingest_reader *r, ingest_record *rec, wp_err *err);
/* Compressed bytes consumed so far and the file's size (0 if unknown). */
void ingest_reader_progress(const ingest_reader *r, uint64_t *done, uint64_t *total);
void ingest_reader_close(ingest_reader *r);

/* ---- lists into the catalog ------------------------------------------- */

typedef struct ingest_stats {
    uint64_t files;        /* files read to the end */
    uint64_t files_failed; /* files that could not be opened or broke */
    uint64_t rows;         /* data records seen, good and bad */
    uint64_t added;        /* new pairs stored */
    uint64_t duplicates;   /* exact (url, text) duplicates, stored once */
    uint64_t empty_text;   /* stored with an empty caption */
    uint64_t bad;          /* rows not stored */
    uint64_t bad_by[ING_BAD_NREASONS];
    uint64_t reported; /* bad rows reported one by one so far */
    uint64_t bytes;    /* input bytes consumed (compressed) */
} ingest_stats;

/* Adds every good row of path to the catalog as a pair, in transactions of
 * batch_rows rows, recording the source (kind "list") and file:line as the
 * origin. Bad rows are counted in st and the first ING_BAD_REPORT of the
 * run reported through rep ("bad_row"). Returns 0 when the file was read to
 * its end; ING_ESTREAM / ING_ECOLUMN / WP_ENOENT when it could not be (rows
 * committed before the failure stay); WP_ESTOP on Ctrl-C after committing
 * what was read; CAT_ESQL on a catalog failure. */
int ingest_list(cat *c, const char *path, const ingest_opts *o, const wp_reporter *rep,
                ingest_stats *st, wp_err *err);

/* ---- local images (add --files) --------------------------------------- */

typedef struct ingest_files_stats {
    uint64_t seen;       /* candidate files looked at */
    uint64_t imported;   /* images stored (state ok) */
    uint64_t already;    /* pair already in the catalog: nothing done */
    uint64_t no_caption; /* imported with an empty caption */
    uint64_t errors;     /* recorded with state error */
    uint64_t skipped;    /* neither an image nor captioned: ignored */
    uint64_t bytes;      /* image bytes stored */
} ingest_files_stats;

/* Imports the images under dir (recursively, in byte order of names) as
 * already-fetched images. A file counts when its header is an image's, or
 * when a caption file of the same name with .txt in place of its extension
 * sits beside it. The format and size come from the header (img_probe),
 * never the extension; a captioned file that is not a usable image gets
 * state error with class not_an_image, unsupported, corrupt, too_large or
 * unreadable. URLs are file:// URLs of the absolute path. Bytes go into the
 * store and are synced before the rows that point at them are committed.
 * Returns 0, WP_ESTOP, WP_EIO (dir unreadable) or CAT_ESQL. */
int ingest_files_dir(cat *c, st_store *s, const char *dir, int64_t run_id, const wp_reporter *rep,
                     ingest_files_stats *st, wp_err *err);
/* The same for a list file: lines "path<TAB>caption" (no header; a line
 * without a tab has an empty caption); relative paths are relative to the
 * list's directory. */
int ingest_files_list(cat *c, st_store *s, const char *list, int64_t run_id, const wp_reporter *rep,
                      ingest_files_stats *st, wp_err *err);

/* Writes the file:// URL (RFC 8089) of an absolute path into out, percent-
 * encoding bytes other than unreserved characters and '/' (RFC 3986
 * section 2.3). WP_ELIMIT when it does not fit in n bytes. */
int ingest_file_url(const char *abs_path, char *out, size_t n, wp_err *err);

#endif /* INGEST_H */
