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
 */
#ifndef STORE_H
#define STORE_H

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

#endif
