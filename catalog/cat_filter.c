/*
 * catalog/cat_filter.c: the queries of `witpipe filter` and `witpipe
 * explain`: a batched pair scan joined with what the rules read (image
 * sizes, language, CLIP score, dedup flag, content tag), the scores of one
 * model, the stage's decisions and verdicts, resumption, languages, tags,
 * and one pair's whole record as JSON (built by SQLite's JSON functions).
 */
#include "cat_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The score of a pair per clip_text (?3): its own, or its image's best or
 * mean caption score. */
#define SCORE_EXPR                                                                                 \
    "CASE ?3 WHEN 0 THEN e.clip_score "                                                            \
    "WHEN 1 THEN (SELECT max(e2.clip_score) FROM pairs p2 JOIN embeddings e2 "                     \
    "  ON e2.pair_id = p2.id AND e2.model = ?2 WHERE p2.image_id = p.image_id) "                   \
    "ELSE (SELECT avg(e2.clip_score) FROM pairs p2 JOIN embeddings e2 "                            \
    "  ON e2.pair_id = p2.id AND e2.model = ?2 WHERE p2.image_id = p.image_id) END"

/* The scan reads only what the rules need: one statement per combination
 * of caption (X), language (L), score (S) and tag (T) columns, unused ones
 * NULL, so a text rule alone costs no lookups in pair_lang, embeddings or
 * pair_tags, and a CLIP rule alone copies no captions. */
#define X_COLS_0 "NULL, "
#define X_COLS_1 "p.text, "
#define L_COLS_0 "NULL, NULL, "
#define L_COLS_1 "l.lang, l.conf, "
#define L_JOIN_0 ""
#define L_JOIN_1 "LEFT JOIN pair_lang l ON l.pair_id = p.id "
#define S_COLS_0 "NULL, "
#define S_COLS_1 SCORE_EXPR ", "
#define S_JOIN_0 ""
#define S_JOIN_1 "LEFT JOIN embeddings e ON e.pair_id = p.id AND e.model = ?2 "
#define T_COLS_0 "NULL "
#define T_COLS_1 "t.label "
#define T_JOIN_0 ""
#define T_JOIN_1 "LEFT JOIN pair_tags t ON t.pair_id = p.id AND t.kind = 'content' "
#define ROWS_SQL(X, L, S, T)                                                                       \
    "SELECT p.id, p.image_id, " X_COLS_##X                                                         \
        "i.orig_width, i.orig_height, i.orig_bytes, i.bytes, " L_COLS_##L S_COLS_##S               \
        "CASE WHEN ?4 THEN EXISTS (SELECT 1 FROM decisions d WHERE d.pair_id = p.id "              \
        "  AND d.stage = 'dedup-text') ELSE 0 END, " T_COLS_##T                                    \
        ", p.uid "                                                                                 \
        "FROM pairs p JOIN images i ON i.id = p.image_id " L_JOIN_##L S_JOIN_##S T_JOIN_##T        \
        "WHERE p.id > ?1 ORDER BY p.id LIMIT ?5"

int cat_filter_rows(cat *c, const char *model, int clip_text, int want, int64_t after_pair, int max,
                    cat_filter_row *out, int *n, wp_arena *arena, wp_err *err)
{
#define Q4(X, L)                                                                                   \
    static const char q##X##L##00 [] = ROWS_SQL(X, L, 0, 0),                                       \
                                  q##X##L##01 [] = ROWS_SQL(X, L, 0, 1),                           \
                                  q##X##L##10 [] = ROWS_SQL(X, L, 1, 0),                           \
                                  q##X##L##11 [] = ROWS_SQL(X, L, 1, 1)
    Q4(0, 0);
    Q4(0, 1);
    Q4(1, 0);
    Q4(1, 1);
#undef Q4
    static const char *const qs[16] = {q0000, q0001, q0010, q0011, q0100, q0101, q0110, q0111,
                                       q1000, q1001, q1010, q1011, q1100, q1101, q1110, q1111};
    int v = ((want & CAT_FILTER_TEXT) ? 8 : 0) | ((want & CAT_FILTER_LANG) ? 4 : 0) |
            (model != NULL ? 2 : 0) | ((want & CAT_FILTER_TAG) ? 1 : 0);
    const char *sql = qs[v];
    int want_dup = (want & CAT_FILTER_DUP) != 0;
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc, k = 0;

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, after_pair);
    cat_bind_text(s, 2, model);
    sqlite3_bind_int(s, 3, clip_text);
    sqlite3_bind_int(s, 4, want_dup ? 1 : 0);
    sqlite3_bind_int(s, 5, max);
    while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cat_filter_row *r = &out[k];
        const char *text = (const char *)sqlite3_column_text(s, 2);
        size_t tl = (size_t)sqlite3_column_bytes(s, 2);
        r->pair_id = sqlite3_column_int64(s, 0);
        r->image_id = sqlite3_column_int64(s, 1);
        if (want & CAT_FILTER_TEXT) {
            r->text = wp_arena_strndup(arena, text ? text : "", tl);
            r->text_len = tl;
            if (r->text == NULL)
                goto oom;
        } else {
            r->text = "";
            r->text_len = 0;
        }
        r->orig_width = cat_col_int(s, 3);
        r->orig_height = cat_col_int(s, 4);
        r->orig_bytes = sqlite3_column_type(s, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 5);
        r->bytes = sqlite3_column_type(s, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 6);
        r->has_lang = sqlite3_column_type(s, 7) != SQLITE_NULL;
        r->lang[0] = '\0';
        if (r->has_lang) {
            snprintf(r->lang, sizeof r->lang, "%s", (const char *)sqlite3_column_text(s, 7));
            r->lang_conf = sqlite3_column_double(s, 8);
        }
        r->has_score = sqlite3_column_type(s, 9) != SQLITE_NULL;
        r->clip_score = r->has_score ? sqlite3_column_double(s, 9) : NAN;
        r->text_dup = sqlite3_column_int(s, 10);
        r->tag = NULL;
        if (sqlite3_column_type(s, 11) != SQLITE_NULL &&
            (r->tag = wp_arena_strdup(arena, (const char *)sqlite3_column_text(s, 11))) == NULL)
            goto oom;
        snprintf(r->uid, sizeof r->uid, "%s",
                 sqlite3_column_text(s, 12) ? (const char *)sqlite3_column_text(s, 12) : "");
        k++;
    }
    sqlite3_reset(s);
    if (k < max && rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "read pairs to filter");
    *n = k;
    return 0;
oom:
    sqlite3_reset(s);
    return wp_err_set(err, WP_ENOMEM, "out of memory");
}

int cat_filter_models(cat *c, cat_model_fn fn, void *ud, wp_err *err)
{
    static const char sql[] = "SELECT model, count(*) FROM embeddings "
                              "WHERE clip_score IS NOT NULL GROUP BY model ORDER BY model";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, "list scored models");
}

int cat_filter_count_scores(cat *c, const char *model, int clip_text, int64_t *n, wp_err *err)
{
    static const char sql[] = "SELECT count(*) FROM pairs p "
                              "LEFT JOIN embeddings e ON e.pair_id = p.id AND e.model = ?2 "
                              "WHERE (" SCORE_EXPR ") IS NOT NULL";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    cat_bind_text(s, 2, model);
    sqlite3_bind_int(s, 3, clip_text);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return cat_sqlerr(c, err, "count CLIP scores");
    return 0;
}

int cat_filter_scores(cat *c, const char *model, int clip_text, int64_t **ids, double **scores,
                      int64_t *n, wp_err *err)
{
    static const char sql[] = "SELECT p.id, " SCORE_EXPR " FROM pairs p "
                              "LEFT JOIN embeddings e ON e.pair_id = p.id AND e.model = ?2 "
                              "WHERE (" SCORE_EXPR ") IS NOT NULL ORDER BY p.id";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int64_t k = 0, cap = 0;
    int64_t *id = NULL;
    double *sc = NULL;
    int rc;

    *ids = NULL;
    *scores = NULL;
    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    cat_bind_text(s, 2, model);
    sqlite3_bind_int(s, 3, clip_text);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (k == cap) {
            int64_t nc = cap ? 2 * cap : 4096;
            int64_t *ni = realloc(id, (size_t)nc * sizeof *ni);
            double *ns;
            if (ni == NULL)
                goto oom;
            id = ni;
            if ((ns = realloc(sc, (size_t)nc * sizeof *ns)) == NULL)
                goto oom;
            sc = ns;
            cap = nc;
        }
        id[k] = sqlite3_column_int64(s, 0);
        sc[k] = sqlite3_column_double(s, 1);
        k++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(id);
        free(sc);
        return cat_sqlerr(c, err, "read CLIP scores");
    }
    *ids = id;
    *scores = sc;
    *n = k;
    return 0;
oom:
    sqlite3_reset(s);
    free(id);
    free(sc);
    return wp_err_set(err, WP_ENOMEM, "out of memory");
}

int cat_filter_reset(cat *c, wp_err *err)
{
    static const char del_dec[] = "DELETE FROM decisions WHERE stage = 'filter'";
    static const char del_ver[] = "DELETE FROM filter_verdicts";
    sqlite3_stmt *s = cat_stmt(c, del_dec, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    if ((rc = cat_step_done(c, s, err, "clear filter decisions")) != 0)
        return rc;
    if ((s = cat_stmt(c, del_ver, err)) == NULL)
        return CAT_ESQL;
    return cat_step_done(c, s, err, "clear filter verdicts");
}

int cat_filter_put(cat *c, int64_t pair_id, int drop, const char *reason, double score,
                   const char *rules_json, int64_t run_id, wp_err *err)
{
    static const char dec[] = "INSERT INTO decisions(pair_id, stage, decision, reason, "
                              "score, run_id) VALUES (?1, 'filter', ?2, ?3, ?4, ?5)";
    static const char ver[] = "INSERT INTO filter_verdicts(pair_id, rules, run_id) "
                              "VALUES (?1, ?2, ?3)";
    sqlite3_stmt *s = cat_stmt(c, dec, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, drop ? "drop" : "keep", -1, SQLITE_STATIC);
    cat_bind_text(s, 3, reason);
    if (isnan(score))
        sqlite3_bind_null(s, 4);
    else
        sqlite3_bind_double(s, 4, score);
    cat_bind_opt_int(s, 5, run_id > 0 ? run_id : -1);
    if ((rc = cat_step_done(c, s, err, "record filter decision")) != 0)
        return rc;
    if (rules_json == NULL)
        return 0;
    if ((s = cat_stmt(c, ver, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, rules_json, -1, SQLITE_TRANSIENT);
    cat_bind_opt_int(s, 3, run_id > 0 ? run_id : -1);
    return cat_step_done(c, s, err, "record filter verdicts");
}

int cat_filter_resume_point(cat *c, const char *params_json, int64_t run_id, int64_t *after,
                            wp_err *err)
{
    static const char last[] = "SELECT status, params FROM runs WHERE stage = 'filter' "
                               "AND id <> ?1 ORDER BY id DESC LIMIT 1";
    static const char maxp[] = "SELECT coalesce(max(pair_id), 0) FROM decisions "
                               "WHERE stage = 'filter'";
    sqlite3_stmt *s = cat_stmt(c, last, err);
    int rc, resume = 0;

    *after = -1;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, run_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *st = (const char *)sqlite3_column_text(s, 0);
        const char *pj = (const char *)sqlite3_column_text(s, 1);
        resume =
            st != NULL && strcmp(st, "done") != 0 && pj != NULL && strcmp(pj, params_json) == 0;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "find the last filter run");
    if (!resume)
        return 0;
    if ((s = cat_stmt(c, maxp, err)) == NULL)
        return CAT_ESQL;
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, "find where the filter stopped");
        sqlite3_reset(s);
        return rc;
    }
    *after = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

int cat_lang_put(cat *c, int64_t pair_id, const char *lang, double conf, int reliable, wp_err *err)
{
    static const char sql[] = "INSERT INTO pair_lang(pair_id, lang, conf, reliable) "
                              "VALUES (?1, ?2, ?3, ?4)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    sqlite3_bind_text(s, 2, lang, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 3, conf);
    sqlite3_bind_int(s, 4, reliable ? 1 : 0);
    return cat_step_done(c, s, err, "record language");
}

int cat_tag_todo(cat *c, const char *kind, const char *model, int64_t after_pair, int max,
                 cat_tag_item *out, int *n, wp_err *err)
{
    static const char sql[] =
        "SELECT p.id, i.id, i.store_file, i.store_offset, i.bytes, i.sha256 "
        "FROM pairs p JOIN images i ON i.id = p.image_id "
        "WHERE p.id > ?1 AND i.state = 'ok' AND i.store_file IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM pair_tags t WHERE t.pair_id = p.id AND t.kind = ?2 "
        "  AND t.model IS ?3) ORDER BY p.id LIMIT ?4";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc, k = 0;

    *n = 0;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, after_pair);
    cat_bind_text(s, 2, kind);
    cat_bind_text(s, 3, model);
    sqlite3_bind_int(s, 4, max);
    while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(s, 5);
        out[k].pair_id = sqlite3_column_int64(s, 0);
        out[k].image_id = sqlite3_column_int64(s, 1);
        out[k].store_file = sqlite3_column_int64(s, 2);
        out[k].store_offset = sqlite3_column_int64(s, 3);
        out[k].bytes = sqlite3_column_int64(s, 4);
        snprintf(out[k].sha256, sizeof out[k].sha256, "%s", sha ? sha : "");
        k++;
    }
    sqlite3_reset(s);
    if (k < max && rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "list pairs to tag");
    *n = k;
    return 0;
}

int cat_tag_put(cat *c, int64_t pair_id, const char *kind, const char *label, double score,
                double margin, const char *model, wp_err *err)
{
    static const char sql[] = "INSERT OR REPLACE INTO pair_tags(pair_id, kind, label, score, "
                              "margin, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, pair_id);
    cat_bind_text(s, 2, kind);
    cat_bind_text(s, 3, label);
    sqlite3_bind_double(s, 4, score);
    sqlite3_bind_double(s, 5, margin);
    cat_bind_text(s, 6, model);
    return cat_step_done(c, s, err, "record tag");
}

int cat_pair_explain(cat *c, const char *uid, wp_buf *out, wp_err *err)
{
    static const char find[] = "SELECT id FROM pairs WHERE uid >= ?1 AND uid < ?1 || 'g' "
                               "ORDER BY uid LIMIT 2";
    static const char sql[] =
        "SELECT json_object("
        " 'uid', p.uid, 'pair_id', p.id, 'text', p.text, 'origin', p.origin,"
        " 'extra', json(coalesce(p.extra, 'null')),"
        " 'image', json_object('id', i.id, 'url', i.url, 'state', i.state,"
        "   'error_class', i.error_class, 'orig_format', i.orig_format,"
        "   'orig_width', i.orig_width, 'orig_height', i.orig_height,"
        "   'orig_bytes', i.orig_bytes, 'width', i.width, 'height', i.height,"
        "   'bytes', i.bytes),"
        " 'decisions', (SELECT json_group_array(json_object('stage', d.stage,"
        "   'decision', d.decision, 'reason', d.reason, 'score', d.score, 'run_id', d.run_id))"
        "   FROM (SELECT * FROM decisions WHERE pair_id = p.id ORDER BY stage) d),"
        " 'clip_scores', (SELECT json_group_array(json_object('model', e.model,"
        "   'clip_score', e.clip_score, 'shard', e.shard, 'row', e.row))"
        "   FROM (SELECT * FROM embeddings WHERE pair_id = p.id ORDER BY model) e),"
        " 'lang', (SELECT json_object('lang', l.lang, 'conf', l.conf, 'reliable', l.reliable)"
        "   FROM pair_lang l WHERE l.pair_id = p.id),"
        " 'filter_rules', (SELECT json(v.rules) FROM filter_verdicts v WHERE v.pair_id = p.id),"
        " 'tags', (SELECT json_group_array(json_object('kind', t.kind, 'label', t.label,"
        "   'score', t.score, 'margin', t.margin, 'model', t.model))"
        "   FROM pair_tags t WHERE t.pair_id = p.id))"
        "FROM pairs p JOIN images i ON i.id = p.image_id WHERE p.id = ?1";
    sqlite3_stmt *s;
    int64_t id = -1;
    int rc, found = 0;
    size_t len = strlen(uid);

    if (len < 8 || len > WP_UID_HEX || strspn(uid, "0123456789abcdef") != len)
        return wp_err_set(err, WP_EINVAL, "'%s' is not a pair uid (8 to 32 lowercase hex digits)",
                          uid);
    if ((s = cat_stmt(c, find, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, uid, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        id = sqlite3_column_int64(s, 0);
        found++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "find pair");
    if (found == 0)
        return wp_err_set(err, WP_ENOENT, "%s: no pair with uid %s", c->dir, uid);
    if (found > 1)
        return wp_err_set(err, WP_EINVAL, "%s: uid prefix %s names several pairs", c->dir, uid);
    if ((s = cat_stmt(c, sql, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, "explain pair");
        sqlite3_reset(s);
        return rc;
    }
    rc = wp_buf_append(out, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
    sqlite3_reset(s);
    return rc ? wp_err_set(err, WP_ENOMEM, "out of memory") : 0;
}
