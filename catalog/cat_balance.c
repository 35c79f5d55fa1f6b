/*
 * catalog/cat_balance.c: the queries of `witpipe queries` and `witpipe
 * balance`: storing a query list version, listing pairs still to match,
 * recording matches, reading eligible pairs with their matches, and
 * recording balance decisions and per-entry counts.
 */
#include "cat_int.h"

#include <string.h>

int cat_qry_put(cat *c, const char *source, const char *sha256, const char *params_json, size_t n,
                cat_entry_fn get, void *ud, int64_t run_id, int64_t *version, wp_err *err)
{
    static const char ins_list[] =
        "INSERT INTO query_lists(source, sha256, entries, params, created_at, run_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    static const char del_old[] = "DELETE FROM queries WHERE version != ?1";
    static const char ins[] = "INSERT INTO queries(version, entry, text) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *s;
    int64_t v;
    int rc, own = !c->in_tx;

    if (own && (rc = cat_begin(c, err)) != 0)
        return rc;
    if ((s = cat_stmt(c, ins_list, err)) == NULL) {
        rc = CAT_ESQL;
        goto fail;
    }
    cat_bind_text(s, 1, source);
    cat_bind_text(s, 2, sha256);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
    cat_bind_text(s, 4, params_json ? params_json : "{}");
    sqlite3_bind_int64(s, 5, wp_unix_time());
    cat_bind_opt_int(s, 6, run_id > 0 ? run_id : -1);
    if ((rc = cat_step_done(c, s, err, "record query list")) != 0)
        goto fail;
    v = sqlite3_last_insert_rowid(c->db);
    if ((s = cat_stmt(c, del_old, err)) == NULL) {
        rc = CAT_ESQL;
        goto fail;
    }
    sqlite3_bind_int64(s, 1, v);
    if ((rc = cat_step_done(c, s, err, "remove old query list")) != 0)
        goto fail;
    if ((s = cat_stmt(c, ins, err)) == NULL) {
        rc = CAT_ESQL;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *e = get(ud, i, &len);
        sqlite3_bind_int64(s, 1, v);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        sqlite3_bind_text(s, 3, e, (int)len, SQLITE_STATIC);
        if ((rc = cat_step_done(c, s, err, "store query")) != 0)
            goto fail;
    }
    if (own && (rc = cat_commit(c, err)) != 0)
        goto fail;
    *version = v;
    return 0;
fail:
    if (own)
        cat_rollback(c);
    return rc;
}

int cat_qry_current(cat *c, int64_t *version, int64_t *entries, char *sha256, wp_err *err)
{
    static const char sql[] =
        "SELECT version, entries, sha256 FROM query_lists ORDER BY version DESC LIMIT 1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(s, 0);
        if (entries)
            *entries = sqlite3_column_int64(s, 1);
        if (sha256)
            snprintf(sha256, WP_SHA256_HEX + 1, "%s", (const char *)sqlite3_column_text(s, 2));
        sqlite3_reset(s);
        return 0;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return wp_err_set(err, WP_ENOENT, "%s: no query list (run witpipe queries import)", c->dir);
    return cat_sqlerr(c, err, "read query list");
}

int cat_qry_entries(cat *c, int64_t version, cat_qry_fn fn, void *ud, wp_err *err)
{
    static const char sql[] = "SELECT entry, text FROM queries WHERE version = ?1 ORDER BY entry";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, version);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int k = fn(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                   (size_t)sqlite3_column_bytes(s, 1));
        if (k != 0) {
            sqlite3_reset(s);
            return k;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "read queries");
    return 0;
}

int cat_qry_match_todo(cat *c, int64_t version, const char *rule, int64_t after_pair, int max,
                       cat_match_item *out, int *n, wp_arena *arena, wp_err *err)
{
    static const char sql[] =
        "SELECT p.id, p.text, m.pair_id IS NOT NULL FROM pairs p "
        "LEFT JOIN pair_matched m ON m.pair_id = p.id WHERE p.id > ?1 "
        "AND (m.pair_id IS NULL OR m.version != ?2 OR m.rule != ?3) ORDER BY p.id LIMIT ?4";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc, k = 0;
    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, after_pair);
    sqlite3_bind_int64(s, 2, version);
    cat_bind_text(s, 3, rule);
    sqlite3_bind_int(s, 4, max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 1);
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        out[k].pair_id = sqlite3_column_int64(s, 0);
        out[k].text = wp_arena_strndup(arena, t ? t : "", len);
        out[k].text_len = len;
        out[k].stale = sqlite3_column_int(s, 2);
        if (out[k].text == NULL) {
            sqlite3_reset(s);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        k++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list pairs to match");
    *n = k;
    return 0;
}

int64_t cat_qry_count_todo(cat *c, int64_t version, const char *rule)
{
    static const char sql[] = "SELECT count(*) FROM pairs p "
                              "LEFT JOIN pair_matched m ON m.pair_id = p.id "
                              "WHERE m.pair_id IS NULL OR m.version != ?1 OR m.rule != ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, NULL);
    int64_t v = -1;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, version);
    cat_bind_text(s, 2, rule);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}

int cat_qry_match_put(cat *c, int64_t pair_id, int stale, int64_t version, const char *rule,
                      const uint32_t *ids, size_t k, wp_err *err)
{
    static const char del[] = "DELETE FROM pair_matches WHERE pair_id = ?1";
    static const char ins[] = "INSERT OR IGNORE INTO pair_matches(pair_id, entry) VALUES (?1, ?2)";
    static const char mark[] =
        "INSERT INTO pair_matched(pair_id, version, rule) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(pair_id) DO UPDATE SET version = ?2, rule = ?3";
    sqlite3_stmt *s;
    int rc;
    if (stale) {
        if ((s = cat_stmt(c, del, err)) == NULL)
            return CAT_ESQL;
        sqlite3_bind_int64(s, 1, pair_id);
        if ((rc = cat_step_done(c, s, err, "remove old matches")) != 0)
            return rc;
    }
    if (k > 0) {
        if ((s = cat_stmt(c, ins, err)) == NULL)
            return CAT_ESQL;
        for (size_t i = 0; i < k; i++) {
            sqlite3_bind_int64(s, 1, pair_id);
            sqlite3_bind_int64(s, 2, ids[i]);
            if ((rc = cat_step_done(c, s, err, "record match")) != 0)
                return rc;
        }
    }
    if ((s = cat_stmt(c, mark, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_int64(s, 2, version);
    cat_bind_text(s, 3, rule);
    return cat_step_done(c, s, err, "record matched pair");
}

int cat_bal_has_language(cat *c, wp_err *err)
{
    /* filter records each pair's language in pair_lang (migration 6) */
    static const char sql[] = "SELECT EXISTS (SELECT 1 FROM pair_lang)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int v;
    if (s == NULL)
        return CAT_ESQL;
    if (sqlite3_step(s) != SQLITE_ROW) {
        v = cat_sqlerr(c, err, "read pairs columns");
        sqlite3_reset(s);
        return v;
    }
    v = sqlite3_column_int(s, 0) > 0;
    sqlite3_reset(s);
    return v;
}

#define BAL_ELIGIBLE                                                                               \
    "FROM pairs p JOIN images i ON i.id = p.image_id "                                             \
    "LEFT JOIN pair_matches m ON m.pair_id = p.id WHERE i.state != 'error' "                       \
    "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.pair_id = p.id AND d.decision = 'drop' "    \
    "AND d.stage != 'balance') ORDER BY p.id, m.entry"

int cat_bal_pairs(cat *c, int with_lang, cat_bal_row_fn fn, void *ud, wp_err *err)
{
    static const char plain[] = "SELECT p.id, p.image_id, p.uid, NULL, m.entry " BAL_ELIGIBLE;
    static const char lang[] =
        "SELECT p.id, p.image_id, p.uid, "
        "(SELECT l.lang FROM pair_lang l WHERE l.pair_id = p.id), m.entry " BAL_ELIGIBLE;
    sqlite3_stmt *s;
    int rc;
    /* not cached: each is run once per balance run */
    if (sqlite3_prepare_v2(c->db, with_lang ? lang : plain, -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "read pairs to balance");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int k = fn(ud, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                   (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
                   sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 4));
        if (k != 0) {
            sqlite3_finalize(s);
            return k;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = cat_sqlerr(c, err, "read pairs to balance");
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_finalize(s);
    return 0;
}

int cat_bal_decide(cat *c, int64_t pair_id, int keep, const char *reason, double score,
                   int64_t run_id, wp_err *err)
{
    static const char sql[] =
        "INSERT INTO decisions(pair_id, stage, decision, reason, score, run_id) "
        "VALUES (?1, 'balance', ?2, ?3, ?4, ?5) ON CONFLICT(pair_id, stage) DO UPDATE SET "
        "decision = ?2, reason = ?3, score = ?4, run_id = ?5";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, keep ? "keep" : "drop", -1, SQLITE_STATIC);
    cat_bind_text(s, 3, reason);
    sqlite3_bind_double(s, 4, score);
    cat_bind_opt_int(s, 5, run_id > 0 ? run_id : -1);
    return cat_step_done(c, s, err, "record balance decision");
}

int cat_qry_set_count(cat *c, int64_t version, int64_t entry, int64_t count, int64_t kept,
                      wp_err *err)
{
    static const char sql[] =
        "UPDATE queries SET count = ?3, kept = ?4 WHERE version = ?1 AND entry = ?2";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, version);
    sqlite3_bind_int64(s, 2, entry);
    cat_bind_opt_int(s, 3, count);
    cat_bind_opt_int(s, 4, kept);
    return cat_step_done(c, s, err, "record entry counts");
}

int cat_qry_captions(cat *c, cat_text_fn fn, void *ud, wp_err *err)
{
    sqlite3_stmt *s;
    int rc;
    if (sqlite3_prepare_v2(c->db, "SELECT text FROM pairs ORDER BY id", -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "read captions");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        int k = fn(ud, t ? t : "", (size_t)sqlite3_column_bytes(s, 0));
        if (k != 0) {
            sqlite3_finalize(s);
            return k;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = cat_sqlerr(c, err, "read captions");
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_finalize(s);
    return 0;
}
