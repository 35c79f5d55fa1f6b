/*
 * catalog/cat_store.c: the queries store compaction needs (store/store.h,
 * st_compact): which rows point into a store file, and moving a row's
 * bytes to a copy.
 */
#include "cat_int.h"

#include <stdlib.h>
#include <string.h>

int cat_store_refs(cat *c, int64_t file, cat_store_ref **out, size_t *n, wp_err *err)
{
    static const char sql[] = "SELECT id, store_offset, bytes, sha256 FROM images "
                              "WHERE store_file = ?1 ORDER BY store_offset, id";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    cat_store_ref *v = NULL;
    size_t len = 0, cap = 0;
    int k, rc = 0;

    *out = NULL;
    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, file);
    while ((k = sqlite3_step(s)) == SQLITE_ROW) {
        const char *sha = cat_col_text(s, 3);
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 256;
            cat_store_ref *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
            cap = nc;
        }
        v[len].image_id = sqlite3_column_int64(s, 0);
        v[len].offset = sqlite3_column_type(s, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 1);
        v[len].bytes = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 2);
        v[len].sha256[0] = '\0';
        if (sha != NULL && strlen(sha) == WP_SHA256_HEX)
            memcpy(v[len].sha256, sha, WP_SHA256_HEX + 1);
        len++;
    }
    if (k != SQLITE_DONE)
        rc = cat_sqlerr(c, err, "store file rows");
out:
    sqlite3_reset(s);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

int cat_store_move(cat *c, int64_t image_id, int64_t file, int64_t offset, wp_err *err)
{
    static const char sql[] = "UPDATE images SET store_file = ?2, store_offset = ?3 WHERE id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, image_id);
    sqlite3_bind_int64(s, 2, file);
    sqlite3_bind_int64(s, 3, offset);
    return cat_step_done(c, s, err, "move stored image");
}
