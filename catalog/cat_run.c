/*
 * catalog/cat_run.c: stage runs (table runs): the one begin / counts / end
 * API every stage records its runs through, and the per-stage summary
 * `witpipe status` prints. A run's status comes from the stage's return
 * code, so no stage spells "done" / "stopped" / "failed" itself.
 */
#include "cat_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CAT_STAGE_MAX 64 /* longest stage name kept with a run handle */

struct cat_run {
    cat *c;
    int64_t id;
    char stage[CAT_STAGE_MAX];
};

/* 0 when s is the text of a JSON object, else -1. */
static int json_check_object(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    int ok = j != NULL && json_is_object(j);
    json_decref(j);
    return ok ? 0 : -1;
}

/* 0 when s (NULL counts as {}) is the text of a JSON object, else WP_EINVAL
 * naming what (params, counts) and the stage. */
static int check_object(const char *s, const char *stage, const char *what, wp_err *err)
{
    if (s != NULL && json_check_object(s) != 0)
        return wp_err_set(err, WP_EINVAL, "run of %s: %s is not a JSON object", stage, what);
    return 0;
}

int cat_run_begin(cat *c, const char *stage, const char *params_json, cat_run **out, wp_err *err)
{
    static const char sql[] = "INSERT INTO runs(stage, params, started_at) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *s;
    cat_run *r;
    int rc;

    *out = NULL;
    if (stage == NULL || stage[0] == '\0' || strlen(stage) >= CAT_STAGE_MAX)
        return wp_err_set(err, WP_EINVAL, "run: stage name empty or longer than %d bytes",
                          CAT_STAGE_MAX - 1);
    if ((rc = check_object(params_json, stage, "params", err)) != 0)
        return rc;
    if ((s = cat_stmt(c, sql, err)) == NULL)
        return CAT_ESQL;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    sqlite3_bind_text(s, 1, stage, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, params_json ? params_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, wp_unix_time());
    if ((rc = cat_step_done(c, s, err, "record run")) != 0) {
        free(r);
        return rc;
    }
    r->c = c;
    r->id = sqlite3_last_insert_rowid(c->db);
    snprintf(r->stage, sizeof r->stage, "%s", stage);
    *out = r;
    return 0;
}

int64_t cat_run_id(const cat_run *r)
{
    return r->id;
}

int cat_run_counts(cat_run *r, const char *counts_json, wp_err *err)
{
    static const char sql[] = "UPDATE runs SET counts = ?2 WHERE id = ?1";
    sqlite3_stmt *s;
    int rc;
    if ((rc = check_object(counts_json, r->stage, "counts", err)) != 0)
        return rc;
    if ((s = cat_stmt(r->c, sql, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_text(s, 2, counts_json ? counts_json : "{}", -1, SQLITE_TRANSIENT);
    return cat_step_done(r->c, s, err, "record run counts");
}

int cat_run_end(cat_run *r, int status, const char *counts_json, wp_err *err)
{
    static const char sql[] = "UPDATE runs SET ended_at = ?2, status = ?3, "
                              "counts = coalesce(?4, counts), error = ?5 WHERE id = ?1";
    const char *word = status == 0 ? "done" : status == WP_ESTOP ? "stopped" : "failed";
    wp_err local = {0};
    wp_err *e = status == 0 ? err : &local; /* a failing stage's err stays as it is */
    sqlite3_stmt *s;
    int rc;

    if (r == NULL)
        return status;
    if (status != 0)
        cat_rollback(r->c); /* the batch the stage failed or stopped in */
    if (counts_json != NULL && json_check_object(counts_json) != 0)
        counts_json = NULL; /* a stage bug: keep the last counts, still end the run */
    if ((s = cat_stmt(r->c, sql, e)) == NULL) {
        rc = CAT_ESQL;
        goto out;
    }
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_int64(s, 2, wp_unix_time());
    sqlite3_bind_text(s, 3, word, -1, SQLITE_STATIC);
    cat_bind_text(s, 4, counts_json);
    if (status != 0 && status != WP_ESTOP)
        cat_bind_text(s, 5, err != NULL && err->msg[0] != '\0' ? err->msg : "failed (no message)");
    else
        cat_bind_text(s, 5, NULL);
    rc = cat_step_done(r->c, s, e, "finish run");
out:
    free(r);
    return status != 0 ? status : rc;
}

/* Hands the current row of a runs query (stage, runs, id, status,
 * started_at, ended_at, params, counts, error) to fn. */
static void run_row(sqlite3_stmt *s, cat_run_fn fn, void *ud)
{
    cat_run_info ri = {
        .stage = (const char *)sqlite3_column_text(s, 0),
        .runs = sqlite3_column_int64(s, 1),
        .id = sqlite3_column_int64(s, 2),
        .status = (const char *)sqlite3_column_text(s, 3),
        .started_at = sqlite3_column_int64(s, 4),
        .ended_at = sqlite3_column_int64(s, 5),
        .params = (const char *)sqlite3_column_text(s, 6),
        .counts = (const char *)sqlite3_column_text(s, 7),
        .error = (const char *)sqlite3_column_text(s, 8),
    };
    fn(ud, &ri);
}

/* Steps s (prepared, bound), handing every row to fn through run_row;
 * resets it either way. Returns 0 or CAT_ESQL naming what. */
static int each_run(cat *c, sqlite3_stmt *s, cat_run_fn fn, void *ud, const char *what, wp_err *err)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        run_row(s, fn, ud);
    rc = rc == SQLITE_DONE ? 0 : cat_sqlerr(c, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int cat_runs_by_stage(cat *c, cat_run_fn fn, void *ud, wp_err *err)
{
    static const char sql[] =
        "SELECT r.stage, n.runs, r.id, r.status, r.started_at, coalesce(r.ended_at, -1), "
        "r.params, r.counts, r.error "
        "FROM (SELECT stage, count(*) AS runs, max(id) AS last FROM runs GROUP BY stage) n "
        "JOIN runs r ON r.id = n.last ORDER BY r.stage";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    return s == NULL ? CAT_ESQL : each_run(c, s, fn, ud, "list runs", err);
}

int cat_runs_by_merged_part(cat *c, cat_run_fn fn, void *ud, wp_err *err)
{
    static const char sql[] =
        "SELECT r.stage, n.runs, r.id, r.status, r.started_at, coalesce(r.ended_at, -1), "
        "r.params, r.counts, r.error "
        "FROM (SELECT stage, merged_part, count(*) AS runs, max(id) AS last FROM runs "
        "WHERE merged_part IS NOT NULL GROUP BY stage, merged_part) n "
        "JOIN runs r ON r.id = n.last ORDER BY r.stage, r.merged_part";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    return s == NULL ? CAT_ESQL : each_run(c, s, fn, ud, "list runs of merged parts", err);
}

int cat_runs_of_stage(cat *c, const char *stage, cat_run_fn fn, void *ud, wp_err *err)
{
    static const char sql[] =
        "SELECT stage, 1, id, status, started_at, coalesce(ended_at, -1), params, counts, error "
        "FROM runs WHERE stage = ?1 ORDER BY id";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, stage, -1, SQLITE_TRANSIENT);
    return each_run(c, s, fn, ud, "list runs", err);
}
