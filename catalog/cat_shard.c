/*
 * catalog/cat_shard.c: the queries of `witpipe shard`: a cursor over every
 * pair with its image, source and first drop decision (in id order or a
 * seeded shuffle), the decisions and scores of one pair, and the shards
 * table.
 */
#include "cat_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cat_shard_cursor {
    sqlite3 *db; /* a read-only connection of its own */
    sqlite3_stmt *main, *dec, *emb;
    char dir[WP_PATH_MAX];
};

/* SQL columns of the cursor, shared by both orders. */
#define SAMPLE_COLS                                                                                \
    "SELECT p.id, p.uid, p.text, p.origin, p.extra, s.kind, s.location, i.id, i.url, i.state, "    \
    "i.error_class, i.format, i.orig_format, i.sha256, i.orig_sha256, i.width, i.height, "         \
    "i.orig_width, i.orig_height, i.bytes, i.orig_bytes, i.store_file, i.store_offset, "           \
    "(SELECT d.stage || '/' || coalesce(d.reason, '') FROM decisions d WHERE d.pair_id = p.id "    \
    " AND d.decision = 'drop' ORDER BY d.stage LIMIT 1) "                                          \
    "FROM pairs p JOIN images i ON i.id = p.image_id LEFT JOIN sources s ON s.id = p.source_id "

/* wp_shard_key(seed, uid): the shuffle order, a mix of the seed and the
 * first 16 hex digits of the uid (itself a SHA-256 prefix). */
static void shard_key_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    uint64_t seed = (uint64_t)sqlite3_value_int64(argv[0]);
    const unsigned char *uid = sqlite3_value_text(argv[1]);
    uint64_t u = 0;
    (void)argc;
    for (int i = 0; uid != NULL && i < 16 && uid[i]; i++) {
        int v = wp_hex_digit(uid[i]);
        u = u << 4 | (uint64_t)(v < 0 ? 0 : v);
    }
    sqlite3_result_int64(ctx, (sqlite3_int64)wp_mix64(u ^ wp_mix64(seed + 0x9e3779b97f4a7c15ULL)));
}

static int cur_err(cat_shard_cursor *cur, wp_err *err, const char *what)
{
    return cat_db_err(cur->dir, cur->db, err, what);
}

int cat_shard_cursor_open(cat *c, int shuffle, uint64_t seed, cat_shard_cursor **out, wp_err *err)
{
    static const char by_id[] = SAMPLE_COLS "ORDER BY p.id";
    static const char by_key[] = SAMPLE_COLS "ORDER BY wp_shard_key(?1, p.uid), p.id";
    static const char dec[] = "SELECT stage, decision, reason, score FROM decisions "
                              "WHERE pair_id = ?1 ORDER BY stage";
    static const char emb[] = "SELECT model, clip_score FROM embeddings "
                              "WHERE pair_id = ?1 AND clip_score IS NOT NULL ORDER BY model";
    cat_shard_cursor *cur;
    int rc;

    *out = NULL;
    cur = calloc(1, sizeof *cur);
    if (cur == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    snprintf(cur->dir, sizeof cur->dir, "%s", c->dir);
    if ((rc = cat_open_reader(c->dir, &cur->db, err)) != 0)
        goto fail;
    if (sqlite3_create_function(cur->db, "wp_shard_key", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                NULL, shard_key_fn, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(cur->db, shuffle ? by_key : by_id, -1, &cur->main, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(cur->db, dec, -1, &cur->dec, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(cur->db, emb, -1, &cur->emb, NULL) != SQLITE_OK) {
        rc = cur_err(cur, err, "prepare sample query");
        goto fail;
    }
    if (shuffle)
        sqlite3_bind_int64(cur->main, 1, (sqlite3_int64)seed);
    *out = cur;
    return 0;
fail:
    cat_shard_cursor_close(cur);
    return rc;
}

void cat_shard_cursor_close(cat_shard_cursor *cur)
{
    if (cur == NULL)
        return;
    sqlite3_finalize(cur->main);
    sqlite3_finalize(cur->dec);
    sqlite3_finalize(cur->emb);
    if (cur->db)
        sqlite3_close(cur->db);
    free(cur);
}

static int64_t col_i64(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, i);
}

int cat_shard_cursor_next(cat_shard_cursor *cur, cat_sample *o, wp_err *err)
{
    sqlite3_stmt *s = cur->main;
    int rc = sqlite3_step(s);

    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return cur_err(cur, err, "read samples");
    memset(o, 0, sizeof *o);
    o->pair_id = sqlite3_column_int64(s, 0);
    o->uid = cat_col_text(s, 1);
    o->text = cat_col_text(s, 2);
    o->text_len = (size_t)sqlite3_column_bytes(s, 2);
    o->origin = cat_col_text(s, 3);
    o->extra = cat_col_text(s, 4);
    o->source_kind = cat_col_text(s, 5);
    o->source_location = cat_col_text(s, 6);
    o->image_id = sqlite3_column_int64(s, 7);
    o->url = cat_col_text(s, 8);
    o->state = cat_col_text(s, 9);
    o->error_class = cat_col_text(s, 10);
    o->format = cat_col_text(s, 11);
    o->orig_format = cat_col_text(s, 12);
    o->sha256 = cat_col_text(s, 13);
    o->orig_sha256 = cat_col_text(s, 14);
    o->width = cat_col_int(s, 15);
    o->height = cat_col_int(s, 16);
    o->orig_width = cat_col_int(s, 17);
    o->orig_height = cat_col_int(s, 18);
    o->bytes = col_i64(s, 19);
    o->orig_bytes = col_i64(s, 20);
    o->store_file = col_i64(s, 21);
    o->store_offset = col_i64(s, 22);
    o->drop = cat_col_text(s, 23);
    if (o->text == NULL)
        o->text = "";
    if (o->uid == NULL)
        o->uid = "";
    o->selected = o->state != NULL && strcmp(o->state, "ok") == 0 && o->drop == NULL &&
                  o->store_file >= 0 && o->store_offset >= 0 && o->bytes >= 0 && o->sha256 != NULL;
    return 1;
}

int cat_shard_decisions(cat_shard_cursor *cur, int64_t pair_id, cat_decision_fn fn, void *ud,
                        wp_err *err)
{
    int rc;
    sqlite3_reset(cur->dec);
    sqlite3_bind_int64(cur->dec, 1, pair_id);
    while ((rc = sqlite3_step(cur->dec)) == SQLITE_ROW)
        fn(ud, cat_col_text(cur->dec, 0), cat_col_text(cur->dec, 1), cat_col_text(cur->dec, 2),
           sqlite3_column_type(cur->dec, 3) == SQLITE_NULL ? NAN
                                                           : sqlite3_column_double(cur->dec, 3));
    sqlite3_reset(cur->dec);
    if (rc != SQLITE_DONE)
        return cur_err(cur, err, "read decisions");
    sqlite3_reset(cur->emb);
    sqlite3_bind_int64(cur->emb, 1, pair_id);
    while ((rc = sqlite3_step(cur->emb)) == SQLITE_ROW)
        fn(ud, NULL, cat_col_text(cur->emb, 0), NULL, sqlite3_column_double(cur->emb, 1));
    sqlite3_reset(cur->emb);
    if (rc != SQLITE_DONE)
        return cur_err(cur, err, "read embeddings");
    return 0;
}

int cat_shard_get(cat *c, const char *output, const char *name, cat_shard_row *row, wp_err *err)
{
    static const char sql[] = "SELECT samples, bytes, sha256, first_pair, last_pair, done "
                              "FROM shards WHERE output = ?1 AND name = ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, output, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return WP_ENOENT;
    }
    if (rc != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, "read shard");
        sqlite3_reset(s);
        return rc;
    }
    memset(row, 0, sizeof *row);
    row->samples = sqlite3_column_int64(s, 0);
    row->bytes = sqlite3_column_int64(s, 1);
    snprintf(row->sha256, sizeof row->sha256, "%s", cat_col_text(s, 2) ? cat_col_text(s, 2) : "");
    row->first_pair = col_i64(s, 3);
    row->last_pair = col_i64(s, 4);
    row->done = sqlite3_column_int(s, 5);
    sqlite3_reset(s);
    return 0;
}

int cat_shard_put(cat *c, const char *output, const char *name, const cat_shard_row *row,
                  int64_t run_id, wp_err *err)
{
    static const char sql[] =
        "INSERT INTO shards(output, name, samples, bytes, sha256, first_pair, last_pair, done, "
        "run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8) ON CONFLICT(output, name) DO UPDATE "
        "SET samples = excluded.samples, bytes = excluded.bytes, sha256 = excluded.sha256, "
        "first_pair = excluded.first_pair, last_pair = excluded.last_pair, done = 1, "
        "run_id = excluded.run_id";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, output, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, row->samples);
    sqlite3_bind_int64(s, 4, row->bytes);
    sqlite3_bind_text(s, 5, row->sha256, -1, SQLITE_TRANSIENT);
    cat_bind_opt_int(s, 6, row->first_pair);
    cat_bind_opt_int(s, 7, row->last_pair);
    cat_bind_opt_int(s, 8, run_id > 0 ? run_id : -1);
    return cat_step_done(c, s, err, "record shard");
}
