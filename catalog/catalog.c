/*
 * catalog/catalog.c: opening the catalog (lock, pragmas, migrations),
 * transactions, the statement cache, sources and status counts.
 */
#include "cat_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

extern const char wp_schema_sql[];

#define MIGRATION_MARK "-- migration "

/* Page size of new catalogs. Pairs and images arrive with keys in random
 * order (uid hashes, URLs), so loads are bound by B-tree inserts and WAL
 * page writes; 16 KiB pages make the trees shallower and the writes fewer
 * (an archive load costs a quarter less than with SQLite's 4 KiB).
 * Existing catalogs keep their page size: WAL mode cannot change it. */
#define CAT_PAGE_SIZE 16384

/* Finds migration n's SQL in the embedded schema: returns a pointer to the
 * line after its mark and sets *len, or NULL when there is no migration n. */
static const char *find_migration(int n, size_t *len)
{
    const char *p = wp_schema_sql;
    const char *start = NULL;
    while ((p = strstr(p, MIGRATION_MARK)) != NULL) {
        int k = atoi(p + strlen(MIGRATION_MARK));
        const char *eol = strchr(p, '\n');
        if (start != NULL) {
            *len = (size_t)(p - start);
            return start;
        }
        if (k == n)
            start = eol ? eol + 1 : p + strlen(p);
        p = eol ? eol + 1 : p + strlen(p);
    }
    if (start != NULL)
        *len = strlen(start);
    return start;
}

int cat_latest_schema_version(void)
{
    int n = 0;
    size_t len;
    while (find_migration(n + 1, &len) != NULL)
        n++;
    return n;
}

int cat_db_err(const char *dir, sqlite3 *db, wp_err *err, const char *what)
{
    return wp_err_set(err, CAT_ESQL, "%s/catalog.db: %s: %s", dir, what,
                      db ? sqlite3_errmsg(db) : "out of memory");
}

int cat_sqlerr(cat *c, wp_err *err, const char *what)
{
    return cat_db_err(c->dir, c->db, err, what);
}

int cat_db_open(const char *path, int flags, sqlite3 **db, wp_err *err)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        int rc = wp_err_set(err, CAT_ESQL, "%s: cannot open: %s", path,
                            *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 10000);
    return 0;
}

int cat_open_reader(const char *dir, sqlite3 **db, wp_err *err)
{
    char path[WP_PATH_MAX];
    int rc;
    *db = NULL;
    if ((rc = wp_path_join(path, dir, "catalog.db", err)) != 0)
        return rc;
    return cat_db_open(path, SQLITE_OPEN_READONLY, db, err);
}

sqlite3_stmt *cat_stmt(cat *c, const char *sql, wp_err *err)
{
    sqlite3_stmt *s;
    for (int i = 0; i < c->nstmts; i++) {
        if (c->stmts[i].sql == sql) {
            sqlite3_reset(c->stmts[i].stmt);
            sqlite3_clear_bindings(c->stmts[i].stmt);
            return c->stmts[i].stmt;
        }
    }
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        cat_sqlerr(c, err, "prepare");
        return NULL;
    }
    if (c->nstmts < CAT_MAX_STMTS) {
        c->stmts[c->nstmts].sql = sql;
        c->stmts[c->nstmts].stmt = s;
        c->nstmts++;
    } else {
        /* Cache full: a programming error, reported rather than leaked. */
        sqlite3_finalize(s);
        wp_err_set(err, CAT_ESQL, "catalog statement cache full (CAT_MAX_STMTS)");
        return NULL;
    }
    return s;
}

int cat_fill_rows(cat *c, sqlite3_stmt *s, cat_row_fill fill, void *out, wp_arena *arena, int *n,
                  const char *what, wp_err *err)
{
    int rc, k = 0;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (fill(s, out, k, arena) != 0) {
            sqlite3_reset(s);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        k++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, what);
    *n = k;
    return 0;
}

int cat_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

int cat_bind_opt_int(sqlite3_stmt *s, int i, int64_t v)
{
    if (v < 0)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_int64(s, i, v);
}

int cat_step_done(cat *c, sqlite3_stmt *s, wp_err *err, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, what);
        sqlite3_reset(s);
        return rc;
    }
    sqlite3_reset(s);
    return 0;
}

static int exec(cat *c, const char *sql, wp_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        wp_err_set(err, CAT_ESQL, "%s/catalog.db: %s", c->dir, msg ? msg : "error");
        sqlite3_free(msg);
        return CAT_ESQL;
    }
    return 0;
}

static int get_user_version(cat *c, int *v, wp_err *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "read schema version");
    *v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return 0;
}

static int migrate(cat *c, wp_err *err)
{
    int latest = cat_latest_schema_version();
    int v = 0, rc;

    if ((rc = get_user_version(c, &v, err)) != 0)
        return rc;
    if (v > latest)
        return wp_err_set(err, CAT_ENEWER,
                          "%s/catalog.db: schema version %d was written by a newer witpipe "
                          "(this one knows up to %d); upgrade witpipe",
                          c->dir, v, latest);
    if (v < latest && c->readonly)
        return wp_err_set(err, CAT_ENEWER,
                          "%s/catalog.db: schema version %d is older than %d; run any writing "
                          "command once to migrate",
                          c->dir, v, latest);
    for (int n = v + 1; n <= latest; n++) {
        size_t len;
        const char *sql = find_migration(n, &len);
        char *copy = malloc(len + 64);
        if (copy == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        snprintf(copy, len + 64, "%.*s\nPRAGMA user_version = %d;", (int)len, sql, n);
        if ((rc = exec(c, "BEGIN IMMEDIATE", err)) != 0) {
            free(copy);
            return rc;
        }
        rc = exec(c, copy, err);
        free(copy);
        if (rc != 0) {
            exec(c, "ROLLBACK", NULL);
            return wp_err_prefix(err, "migration %d", n);
        }
        if ((rc = exec(c, "COMMIT", err)) != 0)
            return rc;
    }
    c->version = latest;
    return 0;
}

/* SQLite's memory statistics take a global mutex on every allocation; no
 * witpipe command reads them. Process-wide, and only possible before
 * SQLite initialises, hence once, before the first open. */
static void sqlite_global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int cat_open(const char *dir, int flags, cat **out, wp_err *err)
{
    static pthread_once_t config_once = PTHREAD_ONCE_INIT;
    char path[WP_PATH_MAX];
    int is_new = 0;
    cat *c;
    int rc;

    pthread_once(&config_once, sqlite_global_config);

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    c->lock_fd = -1;
    {
        /* tests only: make every commit slow, so kill -9 and Ctrl-C land
         * in the middle of any stage's work (tests/integration/test_soak.py) */
        const char *d = getenv("WITPIPE_TEST_COMMIT_DELAY_MS");
        c->test_delay_ms = d != NULL ? atoi(d) : 0;
        if (c->test_delay_ms < 0 || c->test_delay_ms > 10000)
            c->test_delay_ms = 0;
    }
    c->readonly = (flags & CAT_READONLY) != 0;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    if ((rc = wp_path_join(path, dir, "catalog.db", err)) != 0)
        goto fail;
    if (!wp_file_exists(path)) {
        if (!(flags & CAT_CREATE)) {
            rc = wp_err_set(err, CAT_ENOCORPUS,
                            "%s: not a witpipe corpus (no catalog.db); run 'witpipe init %s'", dir,
                            dir);
            goto fail;
        }
        if ((rc = wp_mkdir_p(dir, err)) != 0)
            goto fail;
        is_new = 1;
    }
    if (!c->readonly) {
        char lock[WP_PATH_MAX];
        if ((rc = wp_path_join(lock, dir, ".lock", err)) != 0)
            goto fail;
        c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (c->lock_fd < 0) {
            rc = wp_err_set(err, WP_EIO, "%s: cannot open: %s", lock, strerror(errno));
            goto fail;
        }
        if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = wp_err_set(err, CAT_ELOCKED, "%s: corpus is in use by another witpipe process",
                            dir);
            goto fail;
        }
    }
    if ((rc = cat_db_open(
             path, c->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
             &c->db, err)) != 0)
        goto fail;
    if (is_new && !c->readonly) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d;", CAT_PAGE_SIZE);
        if ((rc = exec(c, sql, err)) != 0)
            goto fail;
    }
    if (!c->readonly) {
        /* WAL: readers (witpipe status) never block the writer; NORMAL sync
         * is durable across process crashes, which is what kill -9 needs. */
        if ((rc = exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) != 0)
            goto fail;
    }
    if ((rc = exec(c, "PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;", err)) != 0)
        goto fail;
    if ((rc = migrate(c, err)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    cat_close(c);
    return rc;
}

void cat_close(cat *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nstmts; i++)
        sqlite3_finalize(c->stmts[i].stmt);
    if (c->db != NULL) {
        if (c->in_tx)
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(c->db);
    }
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c);
}

const char *cat_dir(const cat *c)
{
    return c->dir;
}

int cat_backup(cat *c, const char *path, wp_err *err)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *b;
    int rc = 0;

    if (wp_file_exists(path))
        return wp_err_set(err, WP_EINVAL, "%s: exists already", path);
    if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = wp_err_set(err, CAT_ESQL, "%s: %s", path, dst ? sqlite3_errmsg(dst) : "cannot open");
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", c->db, "main");
    if (b == NULL) {
        rc = wp_err_set(err, CAT_ESQL, "%s: backup: %s", path, sqlite3_errmsg(dst));
        goto out;
    }
    int k = sqlite3_backup_step(b, -1);
    if (sqlite3_backup_finish(b) != SQLITE_OK || k != SQLITE_DONE)
        rc = wp_err_set(err, CAT_ESQL, "%s: backup: %s", path, sqlite3_errmsg(dst));
out:
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == 0)
        rc = wp_err_set(err, CAT_ESQL, "%s: cannot close", path);
    if (rc != 0)
        unlink(path);
    return rc;
}

int cat_schema_version(const cat *c)
{
    return c->version;
}

int cat_begin(cat *c, wp_err *err)
{
    int rc;
    if (c->in_tx)
        return wp_err_set(err, WP_EINVAL, "cat_begin: transaction already open");
    if ((rc = exec(c, "BEGIN IMMEDIATE", err)) != 0)
        return rc;
    c->in_tx = 1;
    return 0;
}

int cat_commit(cat *c, wp_err *err)
{
    int rc;
    if (!c->in_tx)
        return wp_err_set(err, WP_EINVAL, "cat_commit: no transaction open");
    if (c->test_delay_ms > 0) /* half inside the transaction, half after */
        usleep((useconds_t)c->test_delay_ms * 500);
    rc = exec(c, "COMMIT", err);
    if (rc == 0 && c->test_delay_ms > 0)
        usleep((useconds_t)c->test_delay_ms * 500);
    if (rc == 0)
        c->in_tx = 0;
    return rc;
}

void cat_rollback(cat *c)
{
    if (!c->in_tx)
        return;
    exec(c, "ROLLBACK", NULL);
    c->in_tx = 0;
}

int cat_in_transaction(const cat *c)
{
    return c->in_tx;
}

/* ---- sources --------------------------------------------------------- */

int cat_source_get_or_add(cat *c, const char *kind, const char *location, const char *params_json,
                          int64_t *id, wp_err *err)
{
    static const char ins[] = "INSERT INTO sources(kind, location, params, added_at) "
                              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(kind, location) DO NOTHING";
    static const char sel[] = "SELECT id FROM sources WHERE kind = ?1 AND location = ?2";
    sqlite3_stmt *s = cat_stmt(c, ins, err);
    int rc;
    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, location, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, params_json ? params_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, wp_unix_time());
    if ((rc = cat_step_done(c, s, err, "add source")) != 0)
        return rc;
    if ((s = cat_stmt(c, sel, err)) == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, location, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = cat_sqlerr(c, err, "find source");
        sqlite3_reset(s);
        return rc;
    }
    *id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

/* ---- status ---------------------------------------------------------- */

/* wp_reason_kind(reason): the reason's kind (wp_reason_kind_len); NULL
 * stays NULL. */
static void reason_kind_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *r = (const char *)sqlite3_value_text(argv[0]);
    (void)argc;
    if (r == NULL)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_text(ctx, r, (int)wp_reason_kind_len(r), SQLITE_TRANSIENT);
}

int cat_stats(cat *c, cat_stat_fn fn, void *ud, wp_err *err)
{
    static const char *const queries[] = {
        "SELECT 'sources', kind, count(*) FROM sources GROUP BY kind ORDER BY kind",
        "SELECT 'pairs', 'total', count(*) FROM pairs",
        "SELECT 'images', state || coalesce('/' || error_class, ''), count(*) FROM images "
        "GROUP BY state, error_class ORDER BY state, error_class",
        /* by kind: dedup's near:ID / semantic:ID, one per group, count
         * as near / semantic (wp_reason_kind_len) */
        "SELECT 'decisions', stage || '/' || decision || coalesce('/' || wp_reason_kind(reason), "
        "''), count(*) FROM decisions GROUP BY stage, decision, wp_reason_kind(reason) "
        "ORDER BY stage, decision, wp_reason_kind(reason)",
        "SELECT 'pages', state || coalesce('/' || error_class, ''), count(*) FROM pages "
        "GROUP BY state, error_class ORDER BY state, error_class",
        "SELECT 'shards', output, count(*) FROM shards WHERE done = 1 GROUP BY output",
        "SELECT 'embeddings', model, count(*) FROM embeddings GROUP BY model",
    };
    if (sqlite3_create_function(c->db, "wp_reason_kind", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                NULL, reason_kind_fn, NULL, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "status");
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        sqlite3_stmt *s;
        int rc;
        if (sqlite3_prepare_v2(c->db, queries[i], -1, &s, NULL) != SQLITE_OK)
            return cat_sqlerr(c, err, "status");
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            fn(ud, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
               sqlite3_column_int64(s, 2));
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return cat_sqlerr(c, err, "status");
    }
    return 0;
}
