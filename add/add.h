/*
 * add/add.h: `witpipe add`, the sources that need no crawling: URL +
 * caption lists (img2dataset's input: TSV, CSV, JSONL, plain or gzip / zstd
 * / bzip2 / xz compressed) and local folders of already-fetched images.
 *
 * Lists are streamed: a fixed window (ADD_RECORD_MAX plus one read chunk)
 * is all the memory a file of any length takes, and a record longer than
 * ADD_RECORD_MAX (a 1 GB line) is skipped as over-long without being
 * buffered. Bad rows are counted by reason and the first ADD_BAD_REPORT
 * are reported with file:line; they never stop a run. A damaged stream (a
 * truncated gzip) ends that file with an error after every complete record
 * before the damage has been kept.
 */
#ifndef ADD_H
#define ADD_H

#include "catalog/catalog.h"
#include "common/wp.h"
#include "store/store.h"

#include <stdint.h>

#define ADD_RECORD_MAX    (1 << 20)   /* one line / CSV record, bytes */
#define ADD_URL_MAX       8192        /* image URL, bytes */
#define ADD_TEXT_MAX      (64 * 1024) /* caption, bytes */
#define ADD_FIELDS_MAX    512         /* columns in a TSV/CSV record */
#define ADD_KEEP_MAX      64          /* --keep-cols entries */
#define ADD_COLNAME_MAX   256         /* one column name, bytes */
#define ADD_BAD_REPORT    10          /* bad rows reported one by one, per run */
#define ADD_BATCH_ROWS    50000       /* rows per catalog transaction */
#define ADD_FILE_MAX      (256 << 20) /* add --files: largest image imported */
#define ADD_LIST_LINE_MAX (64 * 1024) /* add --files-list: one line */

enum add_status {
    ADD_ECOLUMN = -800, /* the header lacks a requested column */
    ADD_ESTREAM = -801, /* the (compressed) stream is damaged or unreadable */
    ADD_EINPUT = -802,  /* some inputs could not be read (each reported on its own) */
};

enum add_format {
    ADD_FMT_AUTO = 0, /* from the file name, compression suffix stripped */
    ADD_FMT_TSV,
    ADD_FMT_CSV,
    ADD_FMT_JSONL,
    ADD_FMT_PARQUET, /* told by its PAR1 magic, whatever the name (parquet/) */
};

/* Why a row was not stored. */
enum add_bad {
    ADD_BAD_NONE = 0,
    ADD_BAD_NO_URL,    /* URL column empty or missing */
    ADD_BAD_URL,       /* not http(s)://, or spaces / control characters in it */
    ADD_BAD_UTF8,      /* invalid UTF-8 or a NUL byte anywhere in the record */
    ADD_BAD_TOO_LONG,  /* record, URL or caption longer than its maximum */
    ADD_BAD_QUOTING,   /* CSV quoting against RFC 4180 section 2 */
    ADD_BAD_FIELDS,    /* TSV/CSV: not as many fields as the header */
    ADD_BAD_JSON,      /* JSONL: not a JSON object, or url not a string */
    ADD_BAD_TRUNCATED, /* the last record, cut by a damaged stream */
    ADD_BAD_NREASONS
};

/* "no_url", "bad_url", ...: static strings. */
const char *add_bad_name(int reason);
/* "tsv", "csv", "jsonl" -> enum add_format, or -1. */
int add_format_parse(const char *s);
/* The format a file name implies once .gz/.zst/.bz2/.xz/.lzma/.lz4 is
 * stripped (.tsv, .tab, .csv, .jsonl, .ndjson, .json); ADD_FMT_AUTO when it
 * implies none. */
int add_format_from_name(const char *path);

typedef struct add_opts {
    int format;                          /* enum add_format; AUTO: from the name */
    const char *url_col;                 /* default "url" */
    const char *text_col;                /* default "caption" */
    const char *keep_cols[ADD_KEEP_MAX]; /* extra columns kept in pairs.extra */
    int nkeep;
    int batch_rows;    /* 0: ADD_BATCH_ROWS */
    int no_verify_crc; /* Parquet: do not check page CRCs */
    wp_part part;      /* add_run_lists' --part I/N: with at least N files, file k
                        * (0-based, in the order given) when k is in the part;
                        * with fewer, record r of every file when r is */
    int part_by_host;  /* --part-by host: every file read, a record taken when its
                        * URL's host is in the part (wp_part_key_host; a bad record
                        * by its number), so one host's pairs are in one part */
    wp_part records;   /* add_list: only the records (0-based, bad ones counted)
                        * in this part; n <= 1: all (add_run_lists sets it) */
    int keep_going;    /* --continue: a Parquet row group that cannot be read
                        * is reported, counted and skipped */
    int threads;       /* Parquet decoding threads; 0: OpenMP's maximum */
} add_opts;

/* The defaults: format from the file name, columns url and caption, no
 * kept columns, ADD_BATCH_ROWS rows per transaction. Cannot fail. */
void add_opts_init(add_opts *o);

/* ---- the record reader (no catalog) ----------------------------------- */

typedef struct add_reader add_reader;

/* One data record. Pointers stay valid until the next add_reader_next. */
typedef struct add_record {
    int64_t line; /* 1-based line where the record starts */
    int bad;      /* enum add_bad; the fields below are unset when bad */
    char detail[160];
    const char *url;
    size_t url_len;
    const char *text;
    size_t text_len;
    int text_missing;       /* the caption was empty, null or absent */
    const char *extra_json; /* {"col": value, ...} of --keep-cols, or NULL */
} add_record;

/* Opens path ("-" for standard input) for reading records. The header row
 * (TSV, CSV) is read here: ADD_ECOLUMN when a requested column is missing,
 * WP_EFORMAT when the format cannot be told from the name, WP_ENOENT or
 * ADD_ESTREAM when the file cannot be read. An empty file opens and has no
 * records. The caller frees *out with add_reader_close. */
int add_reader_open(const char *path, const add_opts *o, add_reader **out, wp_err *err);
/* The same for a list held in memory (tests, fuzzing): data[0..n),
 * possibly compressed, read as the file called name would be (name gives
 * the format when o->format is AUTO, and appears in messages). data must
 * stay valid and unchanged until add_reader_close. */
int add_reader_open_mem(const void *data, size_t n, const char *name, const add_opts *o,
                        add_reader **out, wp_err *err);
/* Parquet: the name of the i-th nested column the reader skipped, or NULL
 * past the last (always NULL for the text formats). */
const char *add_reader_skipped(const add_reader *r, int i);
/* Returns 1 and the next record, 0 at the end, or ADD_ESTREAM when the
 * stream broke (records before it were all returned; a record it cut short
 * comes back first, as ADD_BAD_TRUNCATED). */
int add_reader_next(add_reader *r, add_record *rec, wp_err *err);
/* Compressed bytes consumed so far and the file's size (0 if unknown). */
void add_reader_progress(const add_reader *r, uint64_t *done, uint64_t *total);
void add_reader_close(add_reader *r);

/* ---- lists into the catalog ------------------------------------------- */

typedef struct add_stats {
    uint64_t files;        /* files read to the end */
    uint64_t files_failed; /* files that could not be opened or broke */
    uint64_t rows;         /* data records seen, good and bad */
    uint64_t added;        /* new pairs stored */
    uint64_t duplicates;   /* exact (url, text) duplicates, stored once */
    uint64_t empty_text;   /* stored with an empty caption */
    uint64_t bad;          /* rows not stored */
    uint64_t bad_by[ADD_BAD_NREASONS];
    uint64_t reported;       /* bad rows reported one by one so far */
    uint64_t bytes;          /* input bytes consumed (compressed) */
    uint64_t row_groups;     /* Parquet row groups read (this part's) */
    uint64_t bad_row_groups; /* Parquet row groups skipped by --continue */
} add_stats;

/* Adds every good row of path to the catalog as a pair, in transactions of
 * batch_rows rows, recording the source (kind "list") and file:line as the
 * origin. Pairs point at run (NULL: none), whose counts are updated with
 * every commit. Bad rows are counted in st and the first ADD_BAD_REPORT of the
 * run reported through rep ("bad_row"). Returns 0 when the file was read to
 * its end; ADD_ESTREAM / ADD_ECOLUMN / WP_ENOENT when it could not be (rows
 * committed before the failure stay); WP_ESTOP on Ctrl-C after committing
 * what was read; CAT_ESQL on a catalog failure. */
int add_list(cat *c, const char *path, const add_opts *o, cat_run *run, const wp_reporter *rep,
             add_stats *st, wp_err *err);

/* ---- local images (add --files) --------------------------------------- */

typedef struct add_files_stats {
    uint64_t seen;            /* candidate files looked at */
    uint64_t imported;        /* images stored (state ok) */
    uint64_t already;         /* pair already in the catalog: nothing done */
    uint64_t no_caption;      /* imported with an empty caption */
    uint64_t errors;          /* recorded with state error */
    uint64_t skipped;         /* not imported: other files, and the two below */
    uint64_t skipped_links;   /* symbolic links (or images whose caption is one) */
    uint64_t skipped_special; /* FIFOs, sockets, devices (or a caption that is one) */
    uint64_t bytes;           /* image bytes stored */
} add_files_stats;

/* Imports the images under dir (recursively, in byte order of names) as
 * already-fetched images. Only regular files and directories inside dir are
 * read: symbolic links and FIFOs, sockets and devices (and images whose
 * caption file is one) are skipped, counted and reported ("file_skipped"
 * with the reason). A file counts when its header is an image's, or
 * when a caption file of the same name with .txt in place of its extension
 * sits beside it. The format and size come from the header (img_probe),
 * never the extension; a captioned file that is not a usable image gets
 * state error with class not_an_image, unsupported, corrupt, too_large or
 * unreadable. URLs are file:// URLs of the absolute path. Bytes go into the
 * store and are synced before the rows that point at them are committed.
 * Rows point at run (NULL: none), whose counts are updated with every
 * commit. Returns 0, WP_ESTOP, WP_EIO (dir unreadable) or CAT_ESQL. */
int add_files_dir(cat *c, st_store *s, const char *dir, cat_run *run, const wp_reporter *rep,
                  add_files_stats *st, wp_err *err);
/* The same for a list file: lines "path<TAB>caption" (no header; a line
 * without a tab has an empty caption); relative paths are relative to the
 * list's directory. */
int add_files_list(cat *c, st_store *s, const char *list, cat_run *run, const wp_reporter *rep,
                   add_files_stats *st, wp_err *err);

/* ---- the stage ---------------------------------------------------------- */

/* `witpipe add FILE...`: one run (stage "add", params: the options and
 * inputs). An argument that names no file but holds * ? or [ is a glob,
 * expanded here in byte order (one that matches nothing is an input that
 * could not be read). Text lists are read one after the other with
 * add_list; Parquet files (by their magic) with add_parquet, in parallel.
 * A file that cannot be read to its end is reported through rep ("error",
 * with its message) and the others are still read; then the run fails with
 * ADD_EINPUT. Returns 0, ADD_EINPUT, WP_EINVAL (--part with a text list),
 * WP_ESTOP (rows read so far are kept), CAT_ESQL or WP_ENOMEM; the run's
 * counts are st as JSON. */
int add_run_lists(cat *c, char *const *paths, int npaths, const add_opts *o, const wp_reporter *rep,
                  add_stats *st, wp_err *err);
/* Parquet files into the catalog, decoded in parallel (o->threads, at
 * most one per file) while the calling thread, the catalog's only writer,
 * stores their rows in transactions of batch_rows, each file a source as
 * add_list makes it. The catalog gets the same pairs (uids, texts, extra,
 * origins) and st the same counts as add_list on each file in turn; only
 * the order of rows (pair ids) may differ. Row groups are numbered across
 * the files in byte order of their paths, and --part I/N reads those with
 * number % N == I - 1. A row group that cannot be read ends its file
 * (earlier row groups stay) unless o->keep_going, which reports it ("error"
 * event naming file, row group, column and page), counts it in
 * st->bad_row_groups and reads the file's other row groups. Each file that
 * cannot be opened or read to its end is reported and counted in
 * st->files_failed; returns 0 when none, else ADD_EINPUT, or WP_ESTOP,
 * CAT_ESQL, WP_ENOMEM (the run stops; committed rows stay). */
int add_parquet(cat *c, char *const *paths, int npaths, const add_opts *o, cat_run *run,
                const wp_reporter *rep, add_stats *st, wp_err *err);

/* `witpipe add --files DIR` (list NULL) or `--files-list LIST` (dir NULL):
 * one run around add_files_dir / add_files_list; returns what they do. */
int add_run_files(cat *c, st_store *s, const char *dir, const char *list, const wp_reporter *rep,
                  add_files_stats *st, wp_err *err);

/* Writes the file:// URL (RFC 8089) of an absolute path into out, percent-
 * encoding bytes other than unreserved characters and '/' (RFC 3986
 * section 2.3). WP_ELIMIT when it does not fit in n bytes. */
int add_file_url(const char *abs_path, char *out, size_t n, wp_err *err);

#endif /* ADD_H */
