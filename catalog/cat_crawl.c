/*
 * catalog/cat_crawl.c: what `witpipe crawl` keeps in the catalog: archive
 * progress (resume points), the live crawl frontier (pages) and the
 * robots.txt cache.
 */
#include "cat_int.h"

#include <string.h>

int cat_archive_progress_get(cat *c, int64_t source_id, int64_t *offset, int64_t *records,
                             int *done, wp_err *err)
{
    static const char sql[] =
        "SELECT offset, records, done FROM archive_progress WHERE source_id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    *offset = *records = 0;
    *done = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, source_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *offset = sqlite3_column_int64(s, 0);
        *records = sqlite3_column_int64(s, 1);
        *done = sqlite3_column_int(s, 2);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "read archive progress");
    return 0;
}

int cat_archive_progress_set(cat *c, int64_t source_id, int64_t offset, int64_t records, int done,
                             wp_err *err)
{
    static const char sql[] =
        "INSERT INTO archive_progress(source_id, offset, records, done) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(source_id) DO UPDATE SET offset = ?2, records = ?3, done = ?4";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, source_id);
    sqlite3_bind_int64(s, 2, offset);
    sqlite3_bind_int64(s, 3, records);
    sqlite3_bind_int(s, 4, done);
    return cat_step_done(c, s, err, "save archive progress");
}

int cat_page_add(cat *c, const char *url, int depth, int redirects, int64_t source_id, int *added,
                 wp_err *err)
{
    static const char sql[] = "INSERT INTO pages(url, depth, source_id, redirects) "
                              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(url) DO NOTHING";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, url, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, depth);
    cat_bind_opt_int(s, 3, source_id > 0 ? source_id : -1);
    sqlite3_bind_int(s, 4, redirects);
    if ((rc = cat_step_done(c, s, err, "add page")) != 0)
        return rc;
    if (added)
        *added = sqlite3_changes(c->db) == 1;
    return 0;
}

static int page_row(sqlite3_stmt *s, void *out, int k, wp_arena *arena)
{
    cat_page_todo *p = (cat_page_todo *)out + k;
    p->id = sqlite3_column_int64(s, 0);
    p->url = cat_col_dup(s, 1, arena);
    p->depth = sqlite3_column_int(s, 2);
    p->redirects = sqlite3_column_int(s, 3);
    return p->url == NULL;
}

int cat_pages_pending(cat *c, int max, cat_page_todo *out, int *n, wp_arena *arena, wp_err *err)
{
    static const char sql[] = "SELECT id, url, depth, redirects FROM pages WHERE state = 'pending' "
                              "ORDER BY depth, id LIMIT ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int(s, 1, max);
    return cat_fill_rows(c, s, page_row, out, arena, n, "list pending pages", err);
}

int cat_page_set_result(cat *c, int64_t id, const char *state, const char *error_class,
                        int http_status, int pairs_found, wp_err *err)
{
    static const char sql[] = "UPDATE pages SET state = ?2, error_class = ?3, http_status = ?4, "
                              "pairs_found = ?5, fetched_at = ?6 WHERE id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, id);
    cat_bind_text(s, 2, state);
    cat_bind_text(s, 3, error_class);
    cat_bind_opt_int(s, 4, http_status);
    cat_bind_opt_int(s, 5, pairs_found);
    sqlite3_bind_int64(s, 6, wp_unix_time());
    return cat_step_done(c, s, err, "record page result");
}

int64_t cat_count_pages(cat *c, const char *state)
{
    static const char all[] = "SELECT count(*) FROM pages";
    static const char by[] = "SELECT count(*) FROM pages WHERE state = ?1";
    sqlite3_stmt *s = cat_stmt(c, state ? by : all, NULL);
    int64_t n = -1;
    if (s == NULL)
        return -1;
    if (state)
        sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

int cat_robots_get(cat *c, const char *origin, int64_t min_fetched_at, int *status, wp_buf *body,
                   int *found, wp_err *err)
{
    static const char sql[] =
        "SELECT http_status, body FROM robots WHERE origin = ?1 AND fetched_at >= ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    *found = 0;
    *status = 0;
    wp_buf_reset(body);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, min_fetched_at);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(s, 1);
        int n = sqlite3_column_bytes(s, 1);
        *status = sqlite3_column_int(s, 0);
        *found = 1;
        if (n > 0 && wp_buf_append(body, b, (size_t)n) != 0) {
            sqlite3_reset(s);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "read robots cache");
    return 0;
}

int cat_robots_put(cat *c, const char *origin, int status, const void *body, size_t len,
                   wp_err *err)
{
    static const char sql[] = "INSERT INTO robots(origin, http_status, body, fetched_at) "
                              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(origin) DO UPDATE SET "
                              "http_status = ?2, body = ?3, fetched_at = ?4";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, status);
    sqlite3_bind_blob(s, 3, body ? body : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, wp_unix_time());
    return cat_step_done(c, s, err, "save robots.txt");
}
