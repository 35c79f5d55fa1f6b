/*
 * catalog/cat_fetch.c: queries the fetch stage and its tests use beyond the
 * core image API: one image's recorded outcome.
 */
#include "cat_int.h"

#include <string.h>

static const char *dup_col(sqlite3_stmt *s, int i, wp_arena *a)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? wp_arena_strdup(a, (const char *)v) : NULL;
}

static int64_t int_col(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, i);
}

int cat_image_get(cat *c, int64_t id, cat_image_result *out, wp_arena *arena, wp_err *err)
{
    static const char sql[] =
        "SELECT state, error_class, error_detail, http_status, attempts, opt_out, format, "
        "orig_format, orig_width, orig_height, orig_bytes, orig_sha256, width, height, bytes, "
        "sha256, store_file, store_offset, fetch_ms, run_id FROM images WHERE id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return wp_err_set(err, WP_ENOENT, "image %lld: no such image", (long long)id);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return cat_sqlerr(c, err, "read image");
    }
    *out = cat_image_result_init(id);
    out->state = dup_col(s, 0, arena);
    out->error_class = dup_col(s, 1, arena);
    out->error_detail = dup_col(s, 2, arena);
    out->http_status = (int)int_col(s, 3);
    out->attempts = (int)int_col(s, 4);
    out->opt_out = dup_col(s, 5, arena);
    out->format = dup_col(s, 6, arena);
    out->orig_format = dup_col(s, 7, arena);
    out->orig_width = (int)int_col(s, 8);
    out->orig_height = (int)int_col(s, 9);
    out->orig_bytes = int_col(s, 10);
    out->orig_sha256 = dup_col(s, 11, arena);
    out->width = (int)int_col(s, 12);
    out->height = (int)int_col(s, 13);
    out->bytes = int_col(s, 14);
    out->sha256 = dup_col(s, 15, arena);
    out->store_file = int_col(s, 16);
    out->store_offset = int_col(s, 17);
    out->fetch_ms = int_col(s, 18);
    out->run_id = int_col(s, 19);
    sqlite3_reset(s);
    if (out->state == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    return 0;
}
