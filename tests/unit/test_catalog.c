/*
 * tests/unit/test_catalog.c: the catalog: create and migrate, refusing a
 * catalog from a newer witpipe, the corpus lock, pair dedup by uid, image
 * results and locations, runs and sources, and the shard rows; the
 * stage-run API (begin, counts, end from a status code) and the per-stage
 * run summary `witpipe status` prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/wp.h"
#include "tests/lib/testlib.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char corpus[300];

static int setup(void **state)
{
    tl_scratch_corpus(corpus, sizeof corpus);
    return 0;
}

static int teardown(void **state)
{
    tl_scratch_corpus_rm(corpus);
    return 0;
}

static void test_open_creates_and_migrates(void **state)
{
    cat *c = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(corpus, 0, &c, &err), CAT_ENOCORPUS);
    assert_non_null(strstr(err.msg, "witpipe init"));
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_true(cat_latest_schema_version() >= 1);
    assert_int_equal(cat_schema_version(c), cat_latest_schema_version());
    cat_close(c);
    /* Reopening an existing corpus works without CAT_CREATE. */
    assert_int_equal(cat_open(corpus, 0, &c, &err), 0);
    cat_close(c);
}

static void test_newer_schema_is_refused(void **state)
{
    cat *c = NULL;
    wp_err err = {0};
    char path[400], sql[64];
    sqlite3 *db;
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    cat_close(c);
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", cat_latest_schema_version() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(cat_open(corpus, 0, &c, &err), CAT_ENEWER);
    assert_null(c);
    assert_non_null(strstr(err.msg, "newer witpipe"));
}

static void test_lock_held_by_another_handle(void **state)
{
    cat *a = NULL, *b = NULL, *ro = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(corpus, CAT_CREATE, &a, &err), 0);
    assert_int_equal(cat_open(corpus, 0, &b, &err), CAT_ELOCKED);
    assert_null(b);
    /* Readers (witpipe status) are not locked out. */
    assert_int_equal(cat_open(corpus, CAT_READONLY, &ro, &err), 0);
    cat_close(ro);
    cat_close(a);
    assert_int_equal(cat_open(corpus, 0, &b, &err), 0);
    cat_close(b);
}

static void test_pair_dedup_and_image_results(void **state)
{
    cat *c = NULL;
    wp_err err = {0};
    cat_pair_in p = {0};
    int64_t pid1, pid2, pid3, img1, img2, img3, src, run;
    cat_run *crun = NULL;
    int is_new;
    cat_image_loc loc;
    cat_image_result r;

    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_run_begin(c, "add", "{}", &crun, &err), 0);
    run = cat_run_id(crun);
    assert_int_equal(cat_source_get_or_add(c, "list", "x.tsv", NULL, &src, &err), 0);
    int64_t src2;
    assert_int_equal(cat_source_get_or_add(c, "list", "x.tsv", NULL, &src2, &err), 0);
    assert_int_equal(src, src2);
    p.url = "http://h/a.jpg";
    p.url_len = strlen(p.url);
    p.text = "a cat";
    p.text_len = 5;
    p.source_id = src;
    p.run_id = run;
    assert_int_equal(cat_begin(c, &err), 0);
    assert_int_equal(cat_pair_add(c, &p, &pid1, &img1, &is_new, &err), 0);
    assert_int_equal(is_new, 1);
    assert_int_equal(cat_pair_add(c, &p, &pid2, &img2, &is_new, &err), 0);
    assert_int_equal(is_new, 0);
    assert_int_equal(pid1, pid2);
    p.text = "a kitten";
    p.text_len = 8;
    assert_int_equal(cat_pair_add(c, &p, &pid3, &img3, &is_new, &err), 0);
    assert_int_equal(is_new, 1);
    assert_true(pid3 != pid1);
    assert_int_equal(img3, img1); /* one image row per URL */
    assert_int_equal(cat_commit(c, &err), 0);
    assert_int_equal(cat_count_pairs(c), 2);
    assert_int_equal(cat_count_images_pending(c), 1);

    assert_int_equal(cat_image_location(c, img1, &loc, &err), WP_ENOENT);
    r = cat_image_result_init(img1);
    r.state = "ok";
    r.format = "png";
    r.width = 20;
    r.height = 10;
    r.bytes = 136;
    r.sha256 = "ab";
    r.store_file = 1;
    r.store_offset = 42;
    r.run_id = run;
    assert_int_equal(cat_image_set_result(c, &r, &err), 0);
    assert_int_equal(cat_image_location(c, img1, &loc, &err), 0);
    assert_string_equal(loc.format, "png");
    assert_int_equal(loc.store_offset, 42);
    assert_int_equal(loc.width, 20);
    assert_string_equal(loc.sha256, "ab");
    assert_int_equal(cat_count_images_pending(c), 0);
    assert_int_equal(cat_run_end(crun, 0, "{\"added\":2}", &err), 0);
    cat_close(c);
}

/* What runs holds for one run id, straight from SQLite. */
typedef struct run_row {
    char stage[32], status[16], params[256], counts[256], error[WP_ERR_MAX];
    int64_t started, ended; /* ended -1 when NULL */
    int has_error;
} run_row;

static void read_run(int64_t id, run_row *out)
{
    char path[400];
    sqlite3 *db;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT stage, status, params, counts, error, started_at, "
                                        "coalesce(ended_at, -1) FROM runs WHERE id = ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, id);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    snprintf(out->stage, sizeof out->stage, "%s", sqlite3_column_text(s, 0));
    snprintf(out->status, sizeof out->status, "%s", sqlite3_column_text(s, 1));
    snprintf(out->params, sizeof out->params, "%s", sqlite3_column_text(s, 2));
    snprintf(out->counts, sizeof out->counts, "%s", sqlite3_column_text(s, 3));
    out->has_error = sqlite3_column_type(s, 4) != SQLITE_NULL;
    if (out->has_error)
        snprintf(out->error, sizeof out->error, "%s", sqlite3_column_text(s, 4));
    out->started = sqlite3_column_int64(s, 5);
    out->ended = sqlite3_column_int64(s, 6);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_run_status_follows_the_stage_return_code(void **state)
{
    static const struct {
        int rc;
        const char *status;
    } cases[] = {{0, "done"}, {WP_ESTOP, "stopped"}, {WP_EIO, "failed"}, {CAT_ESQL, "failed"}};
    cat *c = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cat_run *run = NULL;
        run_row row;
        int64_t id;
        assert_int_equal(cat_run_begin(c, "fetch", "{\"parallel\":4}", &run, &err), 0);
        id = cat_run_id(run);
        assert_true(id > 0);
        read_run(id, &row);
        assert_string_equal(row.status, "running");
        assert_int_equal(row.ended, -1);
        if (cases[i].rc != 0)
            wp_err_set(&err, cases[i].rc, "disk on fire at step %zu", i);
        /* A failing stage gets its own code back and its err untouched. */
        assert_int_equal(cat_run_end(run, cases[i].rc, "{\"done\":3}", &err), cases[i].rc);
        read_run(id, &row);
        assert_string_equal(row.stage, "fetch");
        assert_string_equal(row.status, cases[i].status);
        assert_string_equal(row.params, "{\"parallel\":4}");
        assert_string_equal(row.counts, "{\"done\":3}");
        assert_true(row.ended >= row.started);
        if (strcmp(cases[i].status, "failed") == 0) {
            char want[64];
            snprintf(want, sizeof want, "disk on fire at step %zu", i);
            assert_true(row.has_error);
            assert_string_equal(row.error, want);
            assert_string_equal(err.msg, want);
        } else {
            assert_false(row.has_error);
        }
        wp_err_clear(&err);
    }
    cat_close(c);
}

static void test_run_counts_are_kept_by_a_killed_run(void **state)
{
    cat *c = NULL;
    cat_run *run = NULL;
    wp_err err = {0};
    run_row row;
    int64_t id;
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_run_begin(c, "add", NULL, &run, &err), 0);
    id = cat_run_id(run);
    /* Inside a transaction the counts commit with the batch... */
    assert_int_equal(cat_begin(c, &err), 0);
    assert_int_equal(cat_run_counts(run, "{\"added\":1}", &err), 0);
    assert_int_equal(cat_commit(c, &err), 0);
    /* ...and a rolled-back batch takes its counts with it. */
    assert_int_equal(cat_begin(c, &err), 0);
    assert_int_equal(cat_run_counts(run, "{\"added\":99}", &err), 0);
    cat_rollback(c);
    assert_int_equal(cat_run_counts(run, "{\"added\":2}", &err), 0);
    read_run(id, &row);
    assert_string_equal(row.params, "{}");
    assert_string_equal(row.counts, "{\"added\":2}");
    /* Not JSON objects: refused, the counts stay. */
    assert_int_equal(cat_run_counts(run, "[1,2]", &err), WP_EINVAL);
    assert_int_equal(cat_run_counts(run, "{\"added\":", &err), WP_EINVAL);
    read_run(id, &row);
    assert_string_equal(row.counts, "{\"added\":2}");
    /* The process dies here: the handle is never ended. */
    free(run);
    cat_close(c);
    read_run(id, &row);
    assert_string_equal(row.status, "running");
    assert_string_equal(row.counts, "{\"added\":2}");
    assert_int_equal(row.ended, -1);
}

static void test_run_begin_refuses_bad_params_and_end_keeps_last_counts(void **state)
{
    cat *c = NULL;
    cat_run *run = NULL;
    wp_err err = {0};
    run_row row;
    int64_t id;
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_run_begin(c, "shard", "\"x\"", &run, &err), WP_EINVAL);
    assert_null(run);
    assert_int_equal(cat_run_begin(c, "", "{}", &run, &err), WP_EINVAL);
    assert_int_equal(cat_run_end(NULL, WP_ESTOP, NULL, &err), WP_ESTOP);
    assert_int_equal(cat_run_begin(c, "shard", "{}", &run, &err), 0);
    id = cat_run_id(run);
    assert_int_equal(cat_run_counts(run, "{\"shards\":5}", &err), 0);
    /* NULL counts at the end: the last reported stay. */
    assert_int_equal(cat_run_end(run, 0, NULL, &err), 0);
    read_run(id, &row);
    assert_string_equal(row.status, "done");
    assert_string_equal(row.counts, "{\"shards\":5}");
    /* A failed stage with an open batch: rolled back, the run still ends. */
    assert_int_equal(cat_run_begin(c, "shard", "{}", &run, &err), 0);
    id = cat_run_id(run);
    assert_int_equal(cat_begin(c, &err), 0);
    assert_int_equal(cat_run_end(run, WP_EIO, "{\"shards\":1}", NULL), WP_EIO);
    assert_false(cat_in_transaction(c));
    read_run(id, &row);
    assert_string_equal(row.status, "failed");
    assert_string_equal(row.error, "failed (no message)");
    cat_close(c);
}

typedef struct seen_runs {
    int n;
    char stage[4][16];
    int64_t runs[4], id[4];
    char status[4][16];
    int has_error[4];
} seen_runs;

static void on_run(void *ud, const cat_run_info *r)
{
    seen_runs *s = ud;
    assert_true(s->n < 4);
    snprintf(s->stage[s->n], sizeof s->stage[0], "%s", r->stage);
    snprintf(s->status[s->n], sizeof s->status[0], "%s", r->status);
    s->runs[s->n] = r->runs;
    s->id[s->n] = r->id;
    s->has_error[s->n] = r->error != NULL;
    s->n++;
}

static void test_runs_by_stage_gives_count_and_last_run(void **state)
{
    cat *c = NULL, *ro = NULL;
    cat_run *run = NULL;
    wp_err err = {0};
    seen_runs seen = {0};
    int64_t last_fetch = 0;
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cat_run_begin(c, "fetch", "{}", &run, &err), 0);
        last_fetch = cat_run_id(run);
        wp_err_set(&err, WP_EIO, "boom");
        assert_int_equal(cat_run_end(run, i == 2 ? WP_EIO : 0, NULL, &err), i == 2 ? WP_EIO : 0);
    }
    assert_int_equal(cat_run_begin(c, "add", "{}", &run, &err), 0);
    assert_int_equal(cat_run_end(run, WP_ESTOP, NULL, &err), WP_ESTOP);
    assert_int_equal(cat_run_begin(c, "crawl", "{}", &run, &err), 0);
    free(run); /* killed */
    cat_close(c);

    /* status reads through a read-only handle while nobody writes */
    assert_int_equal(cat_open(corpus, CAT_READONLY, &ro, &err), 0);
    assert_int_equal(cat_runs_by_stage(ro, on_run, &seen, &err), 0);
    cat_close(ro);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.stage[0], "add");
    assert_string_equal(seen.status[0], "stopped");
    assert_int_equal(seen.runs[0], 1);
    assert_string_equal(seen.stage[1], "crawl");
    assert_string_equal(seen.status[1], "running");
    assert_string_equal(seen.stage[2], "fetch");
    assert_int_equal(seen.runs[2], 3);
    assert_int_equal(seen.id[2], last_fetch);
    assert_string_equal(seen.status[2], "failed");
    assert_true(seen.has_error[2]);
    assert_false(seen.has_error[0]);
}

static void test_shard_rows(void **state)
{
    cat *c = NULL;
    wp_err err = {0};
    cat_shard_row row = {0}, back;
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_shard_get(c, "/out", "00000.tar", &back, &err), WP_ENOENT);
    row.samples = 3;
    row.bytes = 4096;
    row.first_pair = 1;
    row.last_pair = 9;
    snprintf(row.sha256, sizeof row.sha256, "%064d", 7);
    assert_int_equal(cat_shard_put(c, "/out", "00000.tar", &row, 0, &err), 0);
    assert_int_equal(cat_shard_get(c, "/out", "00000.tar", &back, &err), 0);
    assert_int_equal(back.samples, 3);
    assert_int_equal(back.bytes, 4096);
    assert_int_equal(back.done, 1);
    assert_string_equal(back.sha256, row.sha256);
    row.samples = 4;
    assert_int_equal(cat_shard_put(c, "/out", "00000.tar", &row, 0, &err), 0);
    assert_int_equal(cat_shard_get(c, "/out", "00000.tar", &back, &err), 0);
    assert_int_equal(back.samples, 4);
    cat_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_held_by_another_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_dedup_and_image_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_status_follows_the_stage_return_code, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_counts_are_kept_by_a_killed_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_begin_refuses_bad_params_and_end_keeps_last_counts,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_by_stage_gives_count_and_last_run, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
