/*
 * catalog/cat_int.h: what the catalog's own files share; not for stages.
 */
#ifndef CAT_INT_H
#define CAT_INT_H

#include "catalog.h"

#include <sqlite3.h>

#define CAT_MAX_STMTS 96

struct cat {
    sqlite3 *db;
    char dir[WP_PATH_MAX];
    int lock_fd;
    int readonly;
    int in_tx;
    int version;
    int test_delay_ms; /* WITPIPE_TEST_COMMIT_DELAY_MS (tests only): sleep per commit */
    struct {
        const char *sql; /* identity: the address of a string literal */
        sqlite3_stmt *stmt;
    } stmts[CAT_MAX_STMTS];
    int nstmts;
};

/* A cached, reset prepared statement for sql (which must be a string
 * literal: the cache is keyed on its address). NULL with err filled. */
sqlite3_stmt *cat_stmt(cat *c, const char *sql, wp_err *err);
/* Fills err from the connection's last error; returns CAT_ESQL. */
int cat_sqlerr(cat *c, wp_err *err, const char *what);
/* The same for a connection of its own to dir's catalog.db (db may be NULL:
 * "out of memory"); returns CAT_ESQL. */
int cat_db_err(const char *dir, sqlite3 *db, wp_err *err, const char *what);
/* Opens the SQLite file path with flags and the catalog's busy timeout.
 * Returns 0, or CAT_ESQL with err filled and *db NULL; the caller closes *db. */
int cat_db_open(const char *path, int flags, sqlite3 **db, wp_err *err);
/* Opens a second, read-only connection to dir's catalog.db (a cursor that
 * reads while the first connection writes). Errors as cat_db_open. */
int cat_open_reader(const char *dir, sqlite3 **db, wp_err *err);
/* Fills element k of the array out from the current row of s, copying
 * text into arena; non-zero when the arena is out of memory. */
typedef int (*cat_row_fill)(sqlite3_stmt *s, void *out, int k, wp_arena *arena);
/* Steps s (bound; its LIMIT bounds the rows to what out holds) through its
 * rows, filling out[0..*n) with fill; resets s. Returns 0, WP_ENOMEM, or
 * CAT_ESQL naming what; *n is 0 on error. */
int cat_fill_rows(cat *c, sqlite3_stmt *s, cat_row_fill fill, void *out, wp_arena *arena, int *n,
                  const char *what, wp_err *err);
/* Binds text that may be NULL (stored as NULL). */
int cat_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Binds an integer, storing NULL when v < 0. */
int cat_bind_opt_int(sqlite3_stmt *s, int i, int64_t v);
/* Runs a statement that returns no rows; resets it. */
int cat_step_done(cat *c, sqlite3_stmt *s, wp_err *err, const char *what);

/* Column i of the current row: text (NULL for SQL NULL), or an integer
 * with -1 for SQL NULL (sizes and counts that may be unknown). */
static inline const char *cat_col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* Column i as text copied into arena ("" for SQL NULL); NULL when the arena
 * is out of memory. */
static inline char *cat_col_dup(sqlite3_stmt *s, int i, wp_arena *arena)
{
    const char *v = cat_col_text(s, i);
    return wp_arena_strndup(arena, v ? v : "", (size_t)sqlite3_column_bytes(s, i));
}

static inline int cat_col_int(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? -1 : sqlite3_column_int(s, i);
}

#endif
