/*
 * store/store.h: the image store, append-only staging files inside the
 * corpus directory (DIR/store/NNNNNN.dat).
 *
 * Images are not stored one file per image: millions of small files are slow
 * to write, list and copy. Instead bytes are appended to a few large files
 * and the catalog records (file, offset, length, sha256), so any image is
 * read back with one pread. Appended bytes become visible to the catalog
 * only after st_sync: call it before committing the catalog rows that point
 * at them, and a crash can never leave a row pointing at bytes that are not
 * on disk. Bytes appended but never committed are simply unreferenced.
 *
 * Appends come from one thread (the stage's writer). st_read may be called
 * from any number of threads at once.
 *
 * Reclaiming space (st_compact, `witpipe store compact`). A killed run
 * leaves appended bytes no catalog row points at: the tail of the file it
 * was writing. Compaction keeps the contract above at every step, so a
 * crash anywhere in it (kill -9 included) loses nothing and leaves only
 * more unreferenced bytes for the next compaction:
 *   1. live bytes of an old file are copied, each checked against its
 *      sha256, to a new file numbered above every existing one;
 *   2. st_sync makes the copies and the new file's name durable;
 *   3. one catalog transaction points the file's rows at the copies;
 *   4. only then is the old file, now unreferenced, unlinked and the
 *      directory fsynced.
 * A crash before 3 leaves the new file unreferenced, one after 3 the old
 * file: either is removed whole by the next compaction. A file no row
 * points at is removed; a file whose rows cover it without gaps is left;
 * a file whose only gap is its tail (what a killed run leaves most often)
 * is truncated and fsynced instead of copied: rows never point past the
 * live end, so a crash leaves it at either length.
 */
#ifndef STORE_H
#define STORE_H

#include "catalog/catalog.h"
#include "common/wp.h"

#include <stdint.h>

#define ST_FILE_MAX ((int64_t)1 << 30) /* start a new file past 1 GiB */

enum st_status {
    ST_ECORRUPT = -200, /* bytes read back do not match what was recorded */
};

typedef struct st_store st_store;

/* Opens (creating if needed) DIR/store. Returns 0 and *out, or WP_EIO. */
int st_open(const char *corpus_dir, st_store **out, wp_err *err);
/* Closes files (after a final sync). Safe with NULL. */
void st_close(st_store *s);

/* Appends n bytes; *file and *offset say where they went. WP_EIO on a
 * failed write (nothing is recorded then). */
int st_append(st_store *s, const void *data, size_t n, int64_t *file, int64_t *offset, wp_err *err);
/* Makes every append so far durable: fdatasync of the current file and,
 * when a data file was created since the last sync, fsync of DIR/store so
 * that the new file's name survives a crash too. WP_EIO on failure. */
int st_sync(st_store *s, wp_err *err);
/* How many times st_sync fsynced the directory (tests). */
int64_t st_dir_syncs(const st_store *s);

/* Reads n bytes at (file, offset) into buf (which holds at least n). Returns
 * 0, WP_ENOENT for a missing file, WP_EIO, or ST_ECORRUPT on a short read. */
int st_read(st_store *s, int64_t file, int64_t offset, void *buf, size_t n, wp_err *err);
/* Like st_read, and checks the bytes against a hex SHA-256 (ST_ECORRUPT). */
int st_read_verified(st_store *s, int64_t file, int64_t offset, void *buf, size_t n,
                     const char *sha256_hex, wp_err *err);

/* One data file of the store: its number (NNNNNN.dat) and size in bytes. */
typedef struct st_file {
    int64_t num, size;
} st_file;

/* Lists the store's data files in number order into *out (malloc'd, the
 * caller frees; NULL when there are none). Returns 0, WP_EIO or WP_ENOMEM. */
int st_list(st_store *s, st_file **out, size_t *n, wp_err *err);
/* Makes appends go to a new file numbered above every existing one (synced
 * first, so the old one is durable). Returns 0 or WP_EIO. */
int st_rotate(st_store *s, wp_err *err);
/* The number of the file appends go to now. */
int64_t st_current_file(const st_store *s);
/* Removes data file `file`, which must not be the one appends go to
 * (WP_EINVAL), and fsyncs the directory. A missing file is no error.
 * Returns 0 or WP_EIO. */
int st_remove(st_store *s, int64_t file, wp_err *err);

/* Cuts data file `file` to size bytes (only unreferenced bytes may go)
 * and fsyncs it; appends to it continue at the new end. Returns 0 or
 * WP_EIO. */
int st_truncate(st_store *s, int64_t file, int64_t size, wp_err *err);

/* What st_compact did (or, with dry_run, would do). */
typedef struct st_compact_counts {
    int64_t files_before, files_after; /* data files */
    int64_t files_removed;             /* unreferenced files unlinked */
    int64_t files_rewritten;           /* files with gaps copied and unlinked */
    int64_t files_truncated;           /* files whose only gap was the tail */
    int64_t bytes_before, bytes_after; /* total size of the data files */
    int64_t bytes_live;                /* bytes catalog rows point at */
    int64_t bytes_reclaimed;           /* bytes_before - bytes_after */
    int64_t images_moved;              /* rows pointed at a copy */
} st_compact_counts;

/* Appends the counts to b as one JSON object (the "compact" run's counts).
 * Returns 0 or WP_ENOMEM. */
int st_compact_json(const st_compact_counts *n, wp_buf *b);

/* Reclaims the space no row of c's images points at, as described at the
 * top of this file; c must be the catalog of the corpus s belongs to, held
 * open (and so locked) by the caller, with no transaction open. Records a
 * "compact" run. Polls wp_stop_requested between files (WP_ESTOP: the files
 * done so far stay done). Returns 0 and fills *n; ST_ECORRUPT when a live
 * image's bytes do not match its sha256 (that file is left as it was),
 * WP_EIO, WP_ENOMEM or CAT_ESQL. */
int st_compact(st_store *s, cat *c, int dry_run, const wp_reporter *rep, st_compact_counts *n,
               wp_err *err);

#endif
