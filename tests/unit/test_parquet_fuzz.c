/*
 * tests/unit/test_parquet_fuzz.c: replays the Parquet fuzz inputs through
 * the same per-input checks the libFuzzer targets run
 * (tests/fuzz/fuzz_parquet.h): the checked-in seeds
 * (tests/fuzz/corpus/parquet_{footer,page,file}/) and crash reproducers
 * (tests/fuzz/regress/parquet_*), and the real files of
 * ../shared/testdata/parquet, whole (file target) and their footers
 * (footer target). CI builds no libFuzzer, so this is how the corpora run
 * there, in the normal and the ASan + UBSan build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/fuzz/fuzz_parquet.h"
#include "tests/lib/testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*one_fn)(const uint8_t *data, size_t size);

/* The target fn, on the whole input or only on a Parquet file's footer. */
struct target {
    one_fn fn;
    int footer_only;
};

static int check_one(const uint8_t *p, size_t len, void *ud)
{
    const struct target *t = ud;
    if (t->footer_only) {
        /* The footer between the data and its length + PAR1. */
        if (len < 12)
            return TL_SKIP;
        uint32_t fl = (uint32_t)p[len - 8] | (uint32_t)p[len - 7] << 8 |
                      (uint32_t)p[len - 6] << 16 | (uint32_t)p[len - 5] << 24;
        if (fl > len - 12)
            return TL_SKIP;
        p += len - 8 - fl;
        len = fl;
    }
    return t->fn(p, len);
}

/* Runs fn on every file of dir (sorted); fails naming the file and check.
 * suffix: only names ending so (NULL: all). Returns how many ran. */
static int replay_dir(const char *dir, const char *suffix, one_fn fn, int footer_only)
{
    struct target t = {fn, footer_only};
    return tl_replay_dir(dir, suffix, check_one, &t, "tests/fuzz/fuzz_parquet.h");
}

/* fn on the seeds and reproducers of tests/fuzz/{corpus,regress}/name. */
static int replay(const char *name, one_fn fn)
{
    struct target t = {fn, 0};
    return tl_replay_corpus(name, check_one, &t, "tests/fuzz/fuzz_parquet.h");
}

static void test_footer_corpus(void **state)
{
    int n = replay("parquet_footer", fuzz_pq_footer_one);
    assert_true(n >= 3);
    /* The footers of our file seeds too. */
    assert_true(replay_dir("tests/fuzz/corpus/parquet_file", NULL, fuzz_pq_footer_one, 1) >= 3);
}

static void test_page_corpus(void **state)
{
    assert_true(replay("parquet_page", fuzz_pq_page_one) >= 6);
}

static void test_file_corpus(void **state)
{
    assert_true(replay("parquet_file", fuzz_pq_file_one) >= 3);
}

/* The real files of other writers: whole, and their footers. */
static void test_shared_seeds(void **state)
{
    const char *d = tl_shared_path("testdata/parquet");
    if (d == NULL || !wp_file_exists(d)) {
        fprintf(stderr, "SKIP: ../shared/testdata/parquet absent\n");
        skip();
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", d);
    assert_true(replay_dir(dir, ".parquet", fuzz_pq_file_one, 0) >= 20);
    assert_true(replay_dir(dir, ".parquet", fuzz_pq_footer_one, 1) >= 20);
}

/* The checks can fail: a contract violation is caught. */
static void test_checks_catch_violations(void **state)
{
    /* A footer target input that decodes is checked, not only run: an
     * empty schema list would be a violation, and the decoder refuses it. */
    const uint8_t empty_schema[] = {0x19, 0x0c, 0x00};
    wp_arena *a = wp_arena_new(4096);
    pq_meta m;
    assert_int_equal(pq_meta_decode(empty_schema, sizeof empty_schema, a, &m, NULL), PQ_EFORMAT);
    wp_arena_free(a);
    assert_int_equal(fuzz_pq_footer_one(empty_schema, sizeof empty_schema), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_footer_corpus),
        cmocka_unit_test(test_page_corpus),
        cmocka_unit_test(test_file_corpus),
        cmocka_unit_test(test_shared_seeds),
        cmocka_unit_test(test_checks_catch_violations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
