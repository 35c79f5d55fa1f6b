/*
 * catalog/cat_encode.c: the queries of the encode stage: which pairs still
 * need an embedding for a model, the next shard number, and recording the
 * rows of a written shard (embeddings table) or a pair that cannot be
 * encoded (an encode/drop decision).
 */
#include "cat_int.h"

#include <string.h>

static int encode_row(sqlite3_stmt *s, void *out, int k, wp_arena *arena)
{
    cat_encode_item *e = (cat_encode_item *)out + k;
    e->pair_id = sqlite3_column_int64(s, 0);
    e->image_id = sqlite3_column_int64(s, 1);
    e->uid = cat_col_dup(s, 2, arena);
    e->text = cat_col_dup(s, 3, arena);
    e->text_len = (size_t)sqlite3_column_bytes(s, 3);
    return e->uid == NULL || e->text == NULL;
}

int cat_encode_todo(cat *c, const char *model, int64_t after_pair, int max, cat_encode_item *out,
                    int *n, wp_arena *arena, wp_err *err)
{
    /* pairs of stored images without an embedding for this model and
     * without an encode decision (images that failed to decode) */
    static const char sql[] =
        "SELECT p.id, p.image_id, p.uid, p.text FROM pairs p JOIN images i ON i.id = p.image_id "
        "WHERE p.id > ?1 AND i.state = 'ok' "
        "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.pair_id = p.id AND e.model = ?2) "
        "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.pair_id = p.id AND d.stage = ?3) "
        "ORDER BY p.id LIMIT ?4";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    char stage[CAT_ENCODE_STAGE_MAX];

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    snprintf(stage, sizeof stage, "encode:%s", model);
    sqlite3_bind_int64(s, 1, after_pair);
    sqlite3_bind_text(s, 2, model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, stage, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 4, max);
    return cat_fill_rows(c, s, encode_row, out, arena, n, "list pairs to encode", err);
}

int64_t cat_encode_count_todo(cat *c, const char *model)
{
    static const char sql[] =
        "SELECT count(*) FROM pairs p JOIN images i ON i.id = p.image_id WHERE i.state = 'ok' "
        "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.pair_id = p.id AND e.model = ?1) "
        "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.pair_id = p.id AND d.stage = ?2)";
    sqlite3_stmt *s = cat_stmt(c, sql, NULL);
    char stage[CAT_ENCODE_STAGE_MAX];
    int64_t v = -1;

    if (s == NULL)
        return -1;
    snprintf(stage, sizeof stage, "encode:%s", model);
    sqlite3_bind_text(s, 1, model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, stage, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}

int cat_encode_next_shard(cat *c, const char *model, int64_t *shard, wp_err *err)
{
    static const char sql[] = "SELECT coalesce(max(shard) + 1, 0) FROM embeddings WHERE model = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;

    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return cat_sqlerr(c, err, "next embedding shard");
    }
    *shard = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

int cat_encode_add(cat *c, int64_t pair_id, const char *model, int64_t shard, int64_t row,
                   double clip_score, wp_err *err)
{
    static const char sql[] = "INSERT OR REPLACE INTO embeddings(pair_id, model, shard, row, "
                              "clip_score) VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);

    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, shard);
    sqlite3_bind_int64(s, 4, row);
    sqlite3_bind_double(s, 5, clip_score);
    return cat_step_done(c, s, err, "add embedding");
}

int cat_encode_drop(cat *c, int64_t pair_id, const char *model, const char *reason, int64_t run_id,
                    wp_err *err)
{
    static const char sql[] = "INSERT OR REPLACE INTO decisions(pair_id, stage, decision, reason, "
                              "score, run_id) VALUES (?1, ?2, 'drop', ?3, NULL, ?4)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    char stage[CAT_ENCODE_STAGE_MAX];

    if (s == NULL)
        return CAT_ESQL;
    snprintf(stage, sizeof stage, "encode:%s", model);
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, stage, -1, SQLITE_TRANSIENT);
    cat_bind_text(s, 3, reason);
    cat_bind_opt_int(s, 4, run_id > 0 ? run_id : -1);
    return cat_step_done(c, s, err, "add encode decision");
}

int64_t cat_encode_count(cat *c, const char *model)
{
    static const char sql[] = "SELECT count(*) FROM embeddings WHERE model = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, NULL);
    int64_t v = -1;

    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}
