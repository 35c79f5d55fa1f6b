/*
 * catalog/cat_pairs.c: candidate pairs and their images: adding pairs
 * (deduplicated by uid), the pending-image queue and fetch results.
 */
#include "cat_int.h"

#include <string.h>

/* Most URLs are new when pairs stream in from a list or an archive, so
 * the insert is tried first: one index probe for a new URL instead of a
 * failed SELECT followed by an INSERT. */
static int image_id_for_url(cat *c, const char *url, size_t len, int64_t *id, wp_err *err)
{
    static const char ins[] = "INSERT INTO images(url) VALUES (?1) ON CONFLICT(url) DO NOTHING";
    static const char sel[] = "SELECT id FROM images WHERE url = ?1";
    sqlite3_stmt *s = cat_stmt(c, ins, err);
    int rc;

    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, url, (int)len, SQLITE_STATIC);
    if ((rc = cat_step_done(c, s, err, "add image")) != 0)
        return rc;
    if (sqlite3_changes(c->db) == 1) {
        *id = sqlite3_last_insert_rowid(c->db);
        return 0;
    }
    if ((s = cat_stmt(c, sel, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, url, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return 0;
    }
    sqlite3_reset(s);
    return cat_sqlerr(c, err, "find image");
}

int cat_pair_add(cat *c, const cat_pair_in *p, int64_t *pair_id, int64_t *image_id, int *is_new,
                 wp_err *err)
{
    static const char ins[] =
        "INSERT INTO pairs(uid, image_id, text, source_id, origin, extra, added_at, run_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(uid) DO NOTHING";
    static const char sel[] = "SELECT id, image_id FROM pairs WHERE uid = ?1";
    char own_uid[WP_UID_HEX + 1];
    const char *uid = p->uid;
    int64_t img = 0;
    sqlite3_stmt *s;
    int rc;

    if (uid == NULL) {
        if (wp_pair_uid(p->url, p->url_len, p->text, p->text_len, own_uid) != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        uid = own_uid;
    }
    if ((rc = image_id_for_url(c, p->url, p->url_len, &img, err)) != 0)
        return rc;
    if ((s = cat_stmt(c, ins, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, uid, WP_UID_HEX, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, img);
    sqlite3_bind_text(s, 3, p->text, (int)p->text_len, SQLITE_STATIC);
    cat_bind_opt_int(s, 4, p->source_id > 0 ? p->source_id : -1);
    cat_bind_text(s, 5, p->origin);
    cat_bind_text(s, 6, p->extra_json);
    sqlite3_bind_int64(s, 7, wp_unix_time());
    cat_bind_opt_int(s, 8, p->run_id > 0 ? p->run_id : -1);
    if ((rc = cat_step_done(c, s, err, "add pair")) != 0)
        return rc;
    if (sqlite3_changes(c->db) == 1) {
        if (pair_id)
            *pair_id = sqlite3_last_insert_rowid(c->db);
        if (image_id)
            *image_id = img;
        if (is_new)
            *is_new = 1;
        return 0;
    }
    if ((s = cat_stmt(c, sel, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, uid, WP_UID_HEX, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, "find pair");
        sqlite3_reset(s);
        return rc;
    }
    if (pair_id)
        *pair_id = sqlite3_column_int64(s, 0);
    if (image_id)
        *image_id = sqlite3_column_int64(s, 1);
    if (is_new)
        *is_new = 0;
    sqlite3_reset(s);
    return 0;
}

int cat_pair_seen(cat *c, int64_t pair_id, int64_t source_id, const char *origin, wp_err *err)
{
    static const char sql[] = "INSERT OR IGNORE INTO pair_seen(pair_id, source_id, origin) "
                              "VALUES (?1, ?2, ?3)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    cat_bind_opt_int(s, 2, source_id > 0 ? source_id : -1);
    cat_bind_text(s, 3, origin ? origin : "");
    return cat_step_done(c, s, err, "record pair origin");
}

static int64_t count(cat *c, const char *sql)
{
    sqlite3_stmt *s = cat_stmt(c, sql, NULL);
    int64_t n = -1;
    if (s == NULL)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

int64_t cat_count_pairs(cat *c)
{
    static const char sql[] = "SELECT count(*) FROM pairs";
    return count(c, sql);
}

int64_t cat_count_images_pending(cat *c)
{
    static const char sql[] = "SELECT count(*) FROM images WHERE state = 'pending'";
    return count(c, sql);
}

static int image_row(sqlite3_stmt *s, void *out, int k, wp_arena *arena)
{
    cat_image_todo *t = (cat_image_todo *)out + k;
    t->id = sqlite3_column_int64(s, 0);
    t->url = cat_col_dup(s, 1, arena);
    t->attempts = sqlite3_column_int(s, 2);
    return t->url == NULL;
}

int cat_images_pending(cat *c, int64_t after_id, int max, cat_image_todo *out, int *n,
                       wp_arena *arena, wp_err *err)
{
    static const char sql[] = "SELECT id, url, attempts FROM images "
                              "WHERE state = 'pending' AND id > ?1 ORDER BY id LIMIT ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, err);

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, after_id);
    sqlite3_bind_int(s, 2, max);
    return cat_fill_rows(c, s, image_row, out, arena, n, "list pending images", err);
}

cat_image_result cat_image_result_init(int64_t id)
{
    cat_image_result r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.http_status = -1;
    r.attempts = -1;
    r.orig_width = r.orig_height = -1;
    r.orig_bytes = -1;
    r.width = r.height = -1;
    r.bytes = -1;
    r.store_file = r.store_offset = -1;
    r.fetch_ms = -1;
    r.run_id = -1;
    return r;
}

int cat_image_set_result(cat *c, const cat_image_result *r, wp_err *err)
{
    static const char sql[] =
        "UPDATE images SET state = ?2, error_class = ?3, error_detail = ?4, http_status = ?5, "
        "attempts = coalesce(?6, attempts), opt_out = ?7, format = ?8, orig_format = ?9, "
        "orig_width = ?10, orig_height = ?11, orig_bytes = ?12, orig_sha256 = ?13, width = ?14, "
        "height = ?15, bytes = ?16, sha256 = ?17, store_file = ?18, store_offset = ?19, "
        "fetch_ms = ?20, fetched_at = ?21, run_id = coalesce(?22, run_id) WHERE id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, r->id);
    cat_bind_text(s, 2, r->state ? r->state : "error");
    cat_bind_text(s, 3, r->error_class);
    cat_bind_text(s, 4, r->error_detail);
    cat_bind_opt_int(s, 5, r->http_status);
    cat_bind_opt_int(s, 6, r->attempts);
    cat_bind_text(s, 7, r->opt_out);
    cat_bind_text(s, 8, r->format);
    cat_bind_text(s, 9, r->orig_format);
    cat_bind_opt_int(s, 10, r->orig_width);
    cat_bind_opt_int(s, 11, r->orig_height);
    cat_bind_opt_int(s, 12, r->orig_bytes);
    cat_bind_text(s, 13, r->orig_sha256);
    cat_bind_opt_int(s, 14, r->width);
    cat_bind_opt_int(s, 15, r->height);
    cat_bind_opt_int(s, 16, r->bytes);
    cat_bind_text(s, 17, r->sha256);
    cat_bind_opt_int(s, 18, r->store_file);
    cat_bind_opt_int(s, 19, r->store_offset);
    cat_bind_opt_int(s, 20, r->fetch_ms);
    sqlite3_bind_int64(s, 21, wp_unix_time());
    cat_bind_opt_int(s, 22, r->run_id);
    return cat_step_done(c, s, err, "record image result");
}

static const char *static_format(const char *f)
{
    if (f == NULL)
        return "bin";
    if (strcmp(f, "jpeg") == 0)
        return "jpeg";
    if (strcmp(f, "png") == 0)
        return "png";
    if (strcmp(f, "webp") == 0)
        return "webp";
    return "bin";
}

int cat_image_location(cat *c, int64_t image_id, cat_image_loc *loc, wp_err *err)
{
    static const char sql[] = "SELECT store_file, store_offset, bytes, width, height, format, "
                              "sha256 FROM images WHERE id = ?1 AND state = 'ok'";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    const char *sha;
    int rc;

    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, image_id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        if (rc == SQLITE_DONE)
            return wp_err_set(err, WP_ENOENT, "image %lld is not stored", (long long)image_id);
        return cat_sqlerr(c, err, "find image");
    }
    loc->store_file = sqlite3_column_int64(s, 0);
    loc->store_offset = sqlite3_column_int64(s, 1);
    loc->bytes = sqlite3_column_int64(s, 2);
    loc->width = sqlite3_column_int(s, 3);
    loc->height = sqlite3_column_int(s, 4);
    loc->format = static_format((const char *)sqlite3_column_text(s, 5));
    sha = (const char *)sqlite3_column_text(s, 6);
    snprintf(loc->sha256, sizeof loc->sha256, "%s", sha ? sha : "");
    sqlite3_reset(s);
    return 0;
}
