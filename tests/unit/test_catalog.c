/*
 * tests/unit/test_catalog.c: the catalog: create and migrate, refusing a
 * catalog from a newer witpipe, the corpus lock, pair dedup by uid, image
 * results and locations, runs and sources, and the shard rows.
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
    snprintf(corpus, sizeof corpus, "%s/c", tl_mkdtemp());
    return 0;
}

static int teardown(void **state)
{
    char *slash = strrchr(corpus, '/');
    *slash = '\0';
    tl_rmtree(corpus);
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
    int is_new;
    cat_image_loc loc;
    cat_image_result r;

    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_run_start(c, "add", "{}", &run, &err), 0);
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
    assert_int_equal(cat_run_end(c, run, "done", "{\"added\":2}", &err), 0);
    cat_close(c);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
