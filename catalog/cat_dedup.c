/*
 * catalog/cat_dedup.c: the queries of the dedup stage: the pairs it groups
 * (with their images' hashes, original sizes and best CLIP score), the
 * images still to perceptually hash and their hashes (image_phash), the
 * embeddings rows of a model, and replacing the stage's decisions.
 */
#include "cat_int.h"

#include <math.h>
#include <string.h>

int cat_dedup_items(cat *c, cat_dedup_item_fn fn, void *ud, wp_err *err)
{
    static const char sql[] =
        "SELECT p.id, p.image_id, i.sha256, i.orig_sha256, i.orig_width, i.orig_height, "
        "(SELECT max(e.clip_score) FROM embeddings e WHERE e.pair_id = p.id), h.phash, "
        "h.sha256 IS i.sha256, h.phash_inner FROM pairs p JOIN images i ON i.id = p.image_id "
        "LEFT JOIN image_phash h ON h.image_id = i.id "
        "WHERE i.state = 'ok' AND i.store_file IS NOT NULL ORDER BY p.id";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;

    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cat_dedup_item it;
        const char *sha = (const char *)sqlite3_column_text(s, 2);
        const char *osha = (const char *)sqlite3_column_text(s, 3);
        memset(&it, 0, sizeof it);
        it.pair_id = sqlite3_column_int64(s, 0);
        it.image_id = sqlite3_column_int64(s, 1);
        snprintf(it.sha256, sizeof it.sha256, "%s", sha ? sha : "");
        snprintf(it.orig_sha256, sizeof it.orig_sha256, "%s", osha ? osha : "");
        it.orig_area =
            sqlite3_column_type(s, 4) == SQLITE_NULL || sqlite3_column_type(s, 5) == SQLITE_NULL
                ? -1
                : sqlite3_column_int64(s, 4) * sqlite3_column_int64(s, 5);
        it.clip_score =
            sqlite3_column_type(s, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 6);
        it.has_phash = sqlite3_column_type(s, 7) != SQLITE_NULL && sqlite3_column_int(s, 8);
        it.phash = (uint64_t)sqlite3_column_int64(s, 7);
        it.phash_inner = (uint64_t)sqlite3_column_int64(s, 9);
        if ((rc = fn(ud, &it)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list pairs to deduplicate");
    return 0;
}

int cat_dedup_phash_todo(cat *c, int64_t after_image, int max, int version, cat_dedup_todo *out,
                         int *n, wp_err *err)
{
    static const char sql[] =
        "SELECT i.id, i.store_file, i.store_offset, i.bytes, i.sha256 FROM images i "
        "LEFT JOIN image_phash h ON h.image_id = i.id "
        "WHERE i.id > ?1 AND i.state = 'ok' AND i.store_file IS NOT NULL "
        "AND (h.image_id IS NULL OR h.sha256 IS NOT i.sha256 OR h.version IS NOT ?3) "
        "ORDER BY i.id LIMIT ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc, k = 0;

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, after_image);
    sqlite3_bind_int(s, 2, max);
    sqlite3_bind_int(s, 3, version);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(s, 4);
        out[k].image_id = sqlite3_column_int64(s, 0);
        out[k].store_file = sqlite3_column_int64(s, 1);
        out[k].store_offset = sqlite3_column_int64(s, 2);
        out[k].bytes = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 3);
        snprintf(out[k].sha256, sizeof out[k].sha256, "%s", sha ? sha : "");
        k++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list images to hash");
    *n = k;
    return 0;
}

int64_t cat_dedup_count_phash_todo(cat *c, int version)
{
    static const char sql[] =
        "SELECT count(*) FROM images i LEFT JOIN image_phash h ON h.image_id = i.id "
        "WHERE i.state = 'ok' AND i.store_file IS NOT NULL "
        "AND (h.image_id IS NULL OR h.sha256 IS NOT i.sha256 OR h.version IS NOT ?1)";
    sqlite3_stmt *s = cat_stmt(c, sql, NULL);
    int64_t v = -1;
    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, version);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}

int cat_dedup_phash_put(cat *c, int64_t image_id, int ok, uint64_t phash, uint64_t inner,
                        const char *sha256, int version, wp_err *err)
{
    static const char sql[] = "INSERT OR REPLACE INTO image_phash(image_id, phash, sha256, "
                              "phash_inner, version) VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, image_id);
    if (ok) {
        sqlite3_bind_int64(s, 2, (sqlite3_int64)phash);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)inner);
    } else {
        sqlite3_bind_null(s, 2);
        sqlite3_bind_null(s, 4);
    }
    cat_bind_text(s, 3, sha256 && sha256[0] ? sha256 : NULL);
    sqlite3_bind_int(s, 5, version);
    return cat_step_done(c, s, err, "record an image hash");
}

int cat_dedup_embeddings(cat *c, const char *model, cat_dedup_emb_fn fn, void *ud, wp_err *err)
{
    static const char sql[] =
        "SELECT pair_id, shard, row FROM embeddings WHERE model = ?1 ORDER BY shard, row";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = fn(ud, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                     sqlite3_column_int64(s, 2))) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list embeddings");
    return 0;
}

int cat_dedup_models(cat *c, wp_buf *out, int *n, wp_err *err)
{
    static const char sql[] = "SELECT DISTINCT model FROM embeddings ORDER BY model";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    *n = 0;
    wp_buf_reset(out);
    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(s, 0);
        if ((*n > 0 && wp_buf_putc(out, '\n') != 0) || wp_buf_puts(out, m ? m : "") != 0) {
            sqlite3_reset(s);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list embedding models");
    return 0;
}

int cat_dedup_clear(cat *c, wp_err *err)
{
    static const char sql[] = "DELETE FROM decisions WHERE stage = 'dedup'";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    return cat_step_done(c, s, err, "clear dedup decisions");
}

int cat_dedup_drop(cat *c, int64_t pair_id, const char *reason, double score, int64_t run_id,
                   wp_err *err)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO decisions(pair_id, stage, decision, reason, score, run_id) "
        "VALUES (?1, 'dedup', 'drop', ?2, ?3, ?4)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    cat_bind_text(s, 2, reason);
    if (isnan(score))
        sqlite3_bind_null(s, 3);
    else
        sqlite3_bind_double(s, 3, score);
    cat_bind_opt_int(s, 4, run_id);
    return cat_step_done(c, s, err, "record a dedup decision");
}

int cat_dedup_text_flags(cat *c, int max_images, int max_captions, int64_t run_id, int64_t *shared,
                         int64_t *many, wp_err *err)
{
    static const char clear[] = "DELETE FROM decisions WHERE stage = 'dedup-text'";
    /* a caption that is the whole text of more than N images */
    static const char by_text[] =
        "INSERT OR REPLACE INTO decisions(pair_id, stage, decision, reason, score, run_id) "
        "SELECT p.id, 'dedup-text', 'keep', 'caption_shared', t.n, ?2 FROM pairs p JOIN "
        "(SELECT text, count(DISTINCT image_id) AS n FROM pairs GROUP BY text "
        " HAVING count(DISTINCT image_id) > ?1) t ON t.text = p.text";
    /* an image with more than N different captions (a caption flag wins) */
    static const char by_image[] =
        "INSERT OR IGNORE INTO decisions(pair_id, stage, decision, reason, score, run_id) "
        "SELECT p.id, 'dedup-text', 'keep', 'many_captions', t.n, ?2 FROM pairs p JOIN "
        "(SELECT image_id, count(DISTINCT text) AS n FROM pairs GROUP BY image_id "
        " HAVING count(DISTINCT text) > ?1) t ON t.image_id = p.image_id";
    sqlite3_stmt *s;
    int rc;

    *shared = *many = 0;
    if ((s = cat_stmt(c, clear, err)) == NULL)
        return CAT_ESQL;
    if ((rc = cat_step_done(c, s, err, "clear text flags")) != 0)
        return rc;
    if (max_images > 0) {
        if ((s = cat_stmt(c, by_text, err)) == NULL)
            return CAT_ESQL;
        sqlite3_bind_int(s, 1, max_images);
        cat_bind_opt_int(s, 2, run_id);
        if ((rc = cat_step_done(c, s, err, "flag shared captions")) != 0)
            return rc;
        *shared = sqlite3_changes(c->db);
    }
    if (max_captions > 0) {
        if ((s = cat_stmt(c, by_image, err)) == NULL)
            return CAT_ESQL;
        sqlite3_bind_int(s, 1, max_captions);
        cat_bind_opt_int(s, 2, run_id);
        if ((rc = cat_step_done(c, s, err, "flag images with many captions")) != 0)
            return rc;
        *many = sqlite3_changes(c->db);
    }
    return 0;
}

int cat_dedup_pair_text(cat *c, int64_t pair_id, wp_buf *out, int64_t *image_id, wp_err *err)
{
    static const char sql[] = "SELECT text, image_id FROM pairs WHERE id = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    wp_buf_reset(out);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rc = wp_buf_append(out, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
        *image_id = sqlite3_column_int64(s, 1);
        sqlite3_reset(s);
        return rc == 0 ? 0 : wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return wp_err_set(err, WP_ENOENT, "no pair %lld", (long long)pair_id);
    return cat_sqlerr(c, err, "read a caption");
}
