/*
 * catalog/cat_audit.c: the reads of `witpipe audit`. The audit only reads:
 * a cursor over every pair merge-joined (in pair id order) with its image,
 * its decisions, its CLIP score under one model and, where the tables
 * exist, its language and query matches; plus the runs, sources, shards
 * and collection counts that the datasheet and the funnel need.
 *
 * Tables written by stages that may not have run or landed yet (filter's
 * pair_lang / pair_tags, balance's queries / pair_matches) are looked up
 * in sqlite_master and pragma table_info first, in one clearly named
 * function (cat_audit_probe_pending_tables); a missing one is reported as
 * absent and never queried.
 */
#include "cat_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cat_audit_cursor {
    sqlite3 *db; /* a read-only connection of its own: one snapshot */
    sqlite3_stmt *pairs, *dec, *emb, *lang, *match, *tag;
    int dec_row, emb_row, lang_row, match_row, tag_row; /* 1: a row is waiting */
    char dir[WP_PATH_MAX];
    cat_audit_tables tabs;
    int64_t *entries;
    int nentries, centries;
    /* decisions of the current pair, copied (the statement moves on) */
    char decbuf[CAT_AUDIT_MAX_DEC][3][96];
    char langbuf[32], tagbuf[96];
};

/* 1 if table t exists and has every column in cols (NULL-terminated). */
static int has_table(sqlite3 *db, const char *t, const char *const *cols)
{
    sqlite3_stmt *s = NULL;
    int found = 0, ok = 1;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    if (!found)
        return 0;
    for (int i = 0; cols != NULL && cols[i] != NULL && ok; i++) {
        int have = 0;
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &s,
                               NULL) != SQLITE_OK)
            return 0;
        sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, cols[i], -1, SQLITE_STATIC);
        have = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
        ok = have;
    }
    return ok;
}

/* 1 if the one-value query sql returns a non-zero value. */
static int nonempty(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0) != 0;
    sqlite3_finalize(s);
    return v;
}

/* The tables of stages that may not have run or landed yet. Each flag is 1
 * only when the table and every column the audit reads are there. */
static void probe_pending_tables(sqlite3 *db, cat_audit_tables *t)
{
    static const char *const lang[] = {"pair_id", "lang", "conf", NULL};
    static const char *const tags[] = {"pair_id", "kind", "label", NULL};
    static const char *const q[] = {"version", "entry", "text", NULL};
    static const char *const pm[] = {"pair_id", "entry", NULL};
    static const char *const verdicts[] = {"pair_id", "rules", NULL};
    memset(t, 0, sizeof *t);
    /* filter's tables exist once its migration ran; they count as present
     * when filter has written to them */
    t->lang =
        has_table(db, "pair_lang", lang) && nonempty(db, "SELECT EXISTS (SELECT 1 FROM pair_lang)");
    t->tags =
        has_table(db, "pair_tags", tags) && nonempty(db, "SELECT EXISTS (SELECT 1 FROM pair_tags)");
    /* balance's tables exist once its migration ran; they count as present
     * when a query list was stored and, where pair_matched records the
     * matching, pairs were matched */
    t->queries = has_table(db, "queries", q) && has_table(db, "pair_matches", pm) &&
                 nonempty(db, "SELECT EXISTS (SELECT 1 FROM queries)") &&
                 (!has_table(db, "pair_matched", NULL) ||
                  nonempty(db, "SELECT EXISTS (SELECT 1 FROM pair_matched)"));
    t->verdicts = has_table(db, "filter_verdicts", verdicts) &&
                  nonempty(db, "SELECT EXISTS (SELECT 1 FROM filter_verdicts)");
}

int cat_audit_probe_pending_tables(cat *c, cat_audit_tables *t, wp_err *err)
{
    (void)err;
    probe_pending_tables(c->db, t);
    return 0;
}

static int cur_err(cat_audit_cursor *cur, wp_err *err, const char *what)
{
    return cat_db_err(cur->dir, cur->db, err, what);
}

static int prep(cat_audit_cursor *cur, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v2(cur->db, sql, -1, s, NULL) == SQLITE_OK ? 0 : -1;
}

/* Steps s; *row = 1 when it has a row. */
static int adv(cat_audit_cursor *cur, sqlite3_stmt *s, int *row, wp_err *err)
{
    int rc;
    if (s == NULL) {
        *row = 0;
        return 0;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *row = 1;
        return 0;
    }
    *row = 0;
    return rc == SQLITE_DONE ? 0 : cur_err(cur, err, "reading");
}

int cat_audit_cursor_open(cat *c, const char *model, cat_audit_cursor **out, wp_err *err)
{
    cat_audit_cursor *cur = calloc(1, sizeof *cur);
    int rc = 0;
    *out = NULL;
    if (cur == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    snprintf(cur->dir, sizeof cur->dir, "%s", c->dir);
    if ((rc = cat_open_reader(c->dir, &cur->db, err)) != 0)
        goto fail;
    /* one long sequential read: map the file instead of copying pages */
    sqlite3_exec(cur->db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
    /* one snapshot for every statement */
    if (sqlite3_exec(cur->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = cur_err(cur, err, "BEGIN");
        goto fail;
    }
    probe_pending_tables(cur->db, &cur->tabs);
    if (prep(cur,
             "SELECT p.id, p.uid, p.text, i.url, i.state, i.error_class, i.width, i.height, "
             "i.orig_width, i.orig_height, i.id, i.store_file IS NOT NULL, p.extra "
             "FROM pairs p JOIN images i ON i.id = p.image_id ORDER BY p.id",
             &cur->pairs) != 0 ||
        prep(cur,
             "SELECT pair_id, stage, decision, coalesce(reason, ''), score FROM decisions "
             "ORDER BY pair_id, stage",
             &cur->dec) != 0 ||
        prep(cur,
             "SELECT pair_id, clip_score FROM embeddings WHERE model = ?1 AND clip_score IS NOT "
             "NULL ORDER BY pair_id",
             &cur->emb) != 0) {
        rc = cur_err(cur, err, "preparing");
        goto fail;
    }
    sqlite3_bind_text(cur->emb, 1, model ? model : "", -1, SQLITE_TRANSIENT);
    if ((cur->tabs.lang &&
         prep(cur, "SELECT pair_id, lang, conf FROM pair_lang ORDER BY pair_id", &cur->lang)) ||
        (cur->tabs.queries &&
         prep(cur, "SELECT pair_id, entry FROM pair_matches ORDER BY pair_id, entry",
              &cur->match)) ||
        (cur->tabs.tags && prep(cur,
                                "SELECT pair_id, label FROM pair_tags WHERE kind = 'content' "
                                "ORDER BY pair_id",
                                &cur->tag))) {
        rc = cur_err(cur, err, "preparing");
        goto fail;
    }
    if ((rc = adv(cur, cur->dec, &cur->dec_row, err)) != 0 ||
        (rc = adv(cur, cur->emb, &cur->emb_row, err)) != 0 ||
        (rc = adv(cur, cur->lang, &cur->lang_row, err)) != 0 ||
        (rc = adv(cur, cur->match, &cur->match_row, err)) != 0 ||
        (rc = adv(cur, cur->tag, &cur->tag_row, err)) != 0)
        goto fail;
    *out = cur;
    return 0;
fail:
    cat_audit_cursor_close(cur);
    return rc;
}

const cat_audit_tables *cat_audit_cursor_tables(const cat_audit_cursor *cur)
{
    return &cur->tabs;
}

void cat_audit_cursor_close(cat_audit_cursor *cur)
{
    if (cur == NULL)
        return;
    sqlite3_finalize(cur->pairs);
    sqlite3_finalize(cur->dec);
    sqlite3_finalize(cur->emb);
    sqlite3_finalize(cur->lang);
    sqlite3_finalize(cur->match);
    sqlite3_finalize(cur->tag);
    if (cur->db) {
        sqlite3_exec(cur->db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(cur->db);
    }
    free(cur->entries);
    free(cur);
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int cat_audit_cursor_next(cat_audit_cursor *cur, cat_audit_pair *p, wp_err *err)
{
    sqlite3_stmt *s = cur->pairs;
    int rc = sqlite3_step(s);
    int64_t id;
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return cur_err(cur, err, "reading pairs");
    memset(p, 0, sizeof *p);
    id = sqlite3_column_int64(s, 0);
    p->pair_id = id;
    p->uid = cat_col_text(s, 1);
    p->text = cat_col_text(s, 2);
    p->text_len = (size_t)sqlite3_column_bytes(s, 2);
    p->url = cat_col_text(s, 3);
    p->state = cat_col_text(s, 4);
    p->error_class = cat_col_text(s, 5);
    p->width = cat_col_int(s, 6);
    p->height = cat_col_int(s, 7);
    p->orig_width = cat_col_int(s, 8);
    p->orig_height = cat_col_int(s, 9);
    p->image_id = sqlite3_column_int64(s, 10);
    p->stored = sqlite3_column_int(s, 11);
    p->extra = cat_col_text(s, 12);
    p->clip_score = NAN;
    p->lang_conf = NAN;
    /* decisions: skip rows of pairs before this one (cannot happen with
     * foreign keys, but a hand-edited catalog may have them) */
    while (cur->dec_row && sqlite3_column_int64(cur->dec, 0) <= id) {
        if (sqlite3_column_int64(cur->dec, 0) == id && p->ndec < CAT_AUDIT_MAX_DEC) {
            int k = p->ndec++;
            copy(cur->decbuf[k][0], sizeof cur->decbuf[k][0], cat_col_text(cur->dec, 1));
            copy(cur->decbuf[k][1], sizeof cur->decbuf[k][1], cat_col_text(cur->dec, 2));
            copy(cur->decbuf[k][2], sizeof cur->decbuf[k][2], cat_col_text(cur->dec, 3));
            p->dec[k].stage = cur->decbuf[k][0];
            p->dec[k].decision = cur->decbuf[k][1];
            p->dec[k].reason = cur->decbuf[k][2];
            p->dec[k].score = sqlite3_column_type(cur->dec, 4) == SQLITE_NULL
                                  ? NAN
                                  : sqlite3_column_double(cur->dec, 4);
        }
        if ((rc = adv(cur, cur->dec, &cur->dec_row, err)) != 0)
            return rc;
    }
    while (cur->emb_row && sqlite3_column_int64(cur->emb, 0) <= id) {
        if (sqlite3_column_int64(cur->emb, 0) == id)
            p->clip_score = sqlite3_column_double(cur->emb, 1);
        if ((rc = adv(cur, cur->emb, &cur->emb_row, err)) != 0)
            return rc;
    }
    while (cur->lang_row && sqlite3_column_int64(cur->lang, 0) <= id) {
        if (sqlite3_column_int64(cur->lang, 0) == id) {
            copy(cur->langbuf, sizeof cur->langbuf, cat_col_text(cur->lang, 1));
            p->lang = cur->langbuf;
            p->lang_conf = sqlite3_column_double(cur->lang, 2);
        }
        if ((rc = adv(cur, cur->lang, &cur->lang_row, err)) != 0)
            return rc;
    }
    cur->nentries = 0;
    while (cur->match_row && sqlite3_column_int64(cur->match, 0) <= id) {
        if (sqlite3_column_int64(cur->match, 0) == id) {
            if (cur->nentries == cur->centries) {
                int nc = cur->centries ? 2 * cur->centries : 16;
                int64_t *ne = realloc(cur->entries, (size_t)nc * sizeof *ne);
                if (ne == NULL)
                    return wp_err_set(err, WP_ENOMEM, "out of memory");
                cur->entries = ne;
                cur->centries = nc;
            }
            cur->entries[cur->nentries++] = sqlite3_column_int64(cur->match, 1);
        }
        if ((rc = adv(cur, cur->match, &cur->match_row, err)) != 0)
            return rc;
    }
    p->entries = cur->entries;
    p->nentries = cur->nentries;
    p->matched = cur->tabs.queries ? 1 : 0;
    while (cur->tag_row && sqlite3_column_int64(cur->tag, 0) <= id) {
        if (sqlite3_column_int64(cur->tag, 0) == id) {
            copy(cur->tagbuf, sizeof cur->tagbuf, cat_col_text(cur->tag, 1));
            p->content_label = cur->tagbuf;
        }
        if ((rc = adv(cur, cur->tag, &cur->tag_row, err)) != 0)
            return rc;
    }
    return 1;
}

/* ---- whole-corpus reads ------------------------------------------------ */

int cat_audit_runs(cat *c, cat_audit_run_fn fn, void *ud, wp_err *err)
{
    sqlite3_stmt *s = cat_stmt(c,
                               "SELECT id, stage, params, started_at, ended_at, status, counts "
                               "FROM runs ORDER BY id",
                               err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cat_audit_run r;
        r.id = sqlite3_column_int64(s, 0);
        r.stage = cat_col_text(s, 1);
        r.params = cat_col_text(s, 2);
        r.started_at = sqlite3_column_int64(s, 3);
        r.ended_at = sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 4);
        r.status = cat_col_text(s, 5);
        r.counts = cat_col_text(s, 6);
        fn(ud, &r);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, "reading runs");
}

int cat_audit_sources(cat *c, cat_audit_source_fn fn, void *ud, wp_err *err)
{
    sqlite3_stmt *s =
        cat_stmt(c,
                 "SELECT s.kind, s.location, s.added_at, "
                 "(SELECT count(*) FROM pairs p WHERE p.source_id = s.id) FROM sources s ORDER BY "
                 "s.id",
                 err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ud, cat_col_text(s, 0), cat_col_text(s, 1), sqlite3_column_int64(s, 2),
           sqlite3_column_int64(s, 3));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, "reading sources");
}

static int64_t scalar(cat *c, const char *sql, wp_err *err, int *rc)
{
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int64_t v = 0;
    if (s == NULL) {
        *rc = CAT_ESQL;
        return 0;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        *rc = cat_sqlerr(c, err, "counting");
    sqlite3_reset(s);
    return v;
}

int cat_audit_collection(cat *c, cat_audit_coll *o, wp_err *err)
{
    int rc = 0;
    memset(o, 0, sizeof *o);
    o->pages = scalar(c, "SELECT count(*) FROM pages", err, &rc);
    o->pages_robots =
        scalar(c, "SELECT count(*) FROM pages WHERE error_class = 'robots'", err, &rc);
    o->pages_opt_out = scalar(
        c, "SELECT count(*) FROM pages WHERE error_class IN ('opt_out', 'noindex')", err, &rc);
    o->images = scalar(c, "SELECT count(*) FROM images", err, &rc);
    o->images_opt_out =
        scalar(c, "SELECT count(*) FROM images WHERE opt_out IS NOT NULL", err, &rc);
    o->robots_cached = scalar(c, "SELECT count(*) FROM robots", err, &rc);
    o->first_added = scalar(c, "SELECT coalesce(min(added_at), 0) FROM pairs", err, &rc);
    o->last_added = scalar(c, "SELECT coalesce(max(added_at), 0) FROM pairs", err, &rc);
    {
        sqlite3_stmt *s = cat_stmt(c,
                                   "SELECT output, sum(samples), count(*) FROM shards WHERE done = "
                                   "1 GROUP BY output ORDER BY max(id) DESC LIMIT 1",
                                   err);
        if (s == NULL)
            return CAT_ESQL;
        if (sqlite3_step(s) == SQLITE_ROW) {
            o->has_shards = 1;
            o->shard_samples = sqlite3_column_int64(s, 1);
            o->shards = sqlite3_column_int64(s, 2);
            copy(o->shard_output, sizeof o->shard_output, cat_col_text(s, 0));
        }
        sqlite3_reset(s);
    }
    return rc;
}

int cat_audit_queries(cat *c, cat_audit_query_fn fn, void *ud, wp_err *err)
{
    cat_audit_tables t;
    sqlite3_stmt *s = NULL;
    int rc;
    probe_pending_tables(c->db, &t);
    if (!t.queries)
        return WP_ENOENT;
    /* only the newest list's entries are kept in queries */
    if (sqlite3_prepare_v2(c->db,
                           "SELECT entry, text FROM queries WHERE version = (SELECT max(version) "
                           "FROM queries) ORDER BY entry",
                           -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "reading queries");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ud, sqlite3_column_int64(s, 0), cat_col_text(s, 1));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, "reading queries");
}

int cat_audit_decision_counts(cat *c, cat_audit_dec_fn fn, void *ud, wp_err *err)
{
    sqlite3_stmt *s = cat_stmt(c,
                               "SELECT stage, decision, coalesce(reason, ''), count(*) FROM "
                               "decisions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                               err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ud, cat_col_text(s, 0), cat_col_text(s, 1), cat_col_text(s, 2),
           sqlite3_column_int64(s, 3));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, "reading decisions");
}
