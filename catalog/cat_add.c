/*
 * catalog/cat_add.c: catalog settings for bulk loading (witpipe add).
 *
 * Adding a list inserts into two unique indexes (image URL, pair uid) whose
 * keys arrive in no useful order, so every batch touches pages all over
 * them. With SQLite's default of a checkpoint every 1000 WAL pages, nearly
 * every commit triggers a checkpoint (and its fsync) that rewrites the same
 * hot index pages again; letting the WAL grow to CAT_BULK_WAL_PAGES between
 * checkpoints writes each hot page once per checkpoint instead. Memory
 * stays bounded: the page cache is capped at CAT_BULK_CACHE_KB.
 */
#include "cat_int.h"

#include <stdio.h>

#define CAT_BULK_WAL_PAGES   32768  /* pages (4 KiB) between checkpoints: 128 MiB */
#define CAT_BULK_CACHE_KB    131072 /* page cache while loading: 128 MiB */
#define CAT_NORMAL_WAL_PAGES 1000   /* SQLite's default */
#define CAT_NORMAL_CACHE_KB  65536  /* what cat_open sets */

int cat_bulk_mode(cat *c, int on, wp_err *err)
{
    char sql[128];
    char *msg = NULL;
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%d; PRAGMA cache_size=-%d;",
             on ? CAT_BULK_WAL_PAGES : CAT_NORMAL_WAL_PAGES,
             on ? CAT_BULK_CACHE_KB : CAT_NORMAL_CACHE_KB);
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        wp_err_set(err, CAT_ESQL, "%s/catalog.db: bulk mode: %s", c->dir, msg ? msg : "error");
        sqlite3_free(msg);
        return CAT_ESQL;
    }
    if (!on && !c->in_tx)
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return 0;
}
