/*
 * tests/unit/test_merge.c: merging part corpora (merge/merge.h,
 * catalog/cat_merge.c) through the library: pairs by uid and images by URL
 * across parts, store bytes readable at their new numbers, a part merged
 * twice refused (and skipped with skip_merged), the fingerprint stable for a
 * copy of a part, a broken partition (two decisions for one pair) refused
 * with the corpus unchanged, an unfinished part refused unless partial.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/wp.h"
#include "merge/merge.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[256];

static int setup(void **state)
{
    snprintf(root, sizeof root, "%s", tl_mkdtemp());
    return 0;
}

static int teardown(void **state)
{
    tl_rmtree(root);
    return 0;
}

/* A part corpus at root/name with one pair per url (caption "cap URL"),
 * each image stored ok with the bytes "bytes of URL"; filter decision
 * keep (or drop when drop_all) for every pair; its run ended done unless
 * unfinished. */
static void make_part(const char *name, const char *const *urls, int n, int drop_all,
                      int unfinished)
{
    char dir[512];
    cat *c = NULL;
    st_store *st = NULL;
    cat_run *run = NULL;
    wp_err err = {0};

    snprintf(dir, sizeof dir, "%s/%s", root, name);
    assert_int_equal(cat_open(dir, CAT_CREATE, &c, &err), 0);
    assert_int_equal(st_open(dir, &st, &err), 0);
    assert_int_equal(cat_run_begin(c, "add", "{\"list\":\"x\"}", &run, &err), 0);
    assert_int_equal(cat_begin(c, &err), 0);
    for (int i = 0; i < n; i++) {
        char text[256], data[256];
        int64_t pid, iid, file, off;
        snprintf(text, sizeof text, "cap %s", urls[i]);
        snprintf(data, sizeof data, "bytes of %s", urls[i]);
        cat_pair_in p = {.url = urls[i],
                         .url_len = strlen(urls[i]),
                         .text = text,
                         .text_len = strlen(text),
                         .run_id = cat_run_id(run)};
        assert_int_equal(cat_pair_add(c, &p, &pid, &iid, NULL, &err), 0);
        assert_int_equal(st_append(st, data, strlen(data), &file, &off, &err), 0);
        cat_image_result r = cat_image_result_init(iid);
        r.state = "ok";
        r.format = "jpeg";
        r.bytes = (int64_t)strlen(data);
        r.sha256 = "00";
        r.store_file = file;
        r.store_offset = off;
        r.run_id = cat_run_id(run);
        assert_int_equal(cat_image_set_result(c, &r, &err), 0);
        assert_int_equal(cat_filter_put(c, pid, drop_all, drop_all ? "min_words" : NULL, NAN, NULL,
                                        cat_run_id(run), &err),
                         0);
    }
    assert_int_equal(st_sync(st, &err), 0);
    assert_int_equal(cat_commit(c, &err), 0);
    if (unfinished)
        free(run); /* left "running", as a killed run is */
    else
        assert_int_equal(cat_run_end(run, 0, "{}", &err), 0);
    st_close(st);
    cat_close(c);
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", root, name);
}

/* The stored bytes of url's image in the corpus at dir. */
static void check_bytes(const char *dir, const char *url)
{
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    cat_image_loc loc;
    char want[256], got[256];
    int64_t pid = 0, iid = 0;
    int is_new = 1;
    char text[256];

    snprintf(text, sizeof text, "cap %s", url);
    snprintf(want, sizeof want, "bytes of %s", url);
    assert_int_equal(cat_open(dir, 0, &c, &err), 0);
    cat_pair_in p = {.url = url, .url_len = strlen(url), .text = text, .text_len = strlen(text)};
    assert_int_equal(cat_pair_add(c, &p, &pid, &iid, &is_new, &err), 0);
    assert_int_equal(is_new, 0); /* the pair came across */
    assert_int_equal(cat_image_location(c, iid, &loc, &err), 0);
    assert_int_equal(loc.bytes, (int64_t)strlen(want));
    assert_int_equal(st_open(dir, &st, &err), 0);
    assert_int_equal(st_read(st, loc.store_file, loc.store_offset, got, (size_t)loc.bytes, &err),
                     0);
    assert_memory_equal(got, want, strlen(want));
    st_close(st);
    cat_close(c);
}

static int64_t pairs_in(const char *dir)
{
    cat *c = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(dir, CAT_READONLY, &c, &err), 0);
    int64_t n = cat_count_pairs(c);
    cat_close(c);
    return n;
}

static void test_merge_by_content_keys(void **state)
{
    static const char *const a[] = {"http://a/1.jpg", "http://a/2.jpg", "http://b/3.jpg"};
    static const char *const b[] = {"http://b/3.jpg", "http://c/4.jpg"};
    char pa[512], pb[512], corpus[512];
    mrg_counts n;
    wp_err err = {0};

    make_part("pa", a, 3, 0, 0);
    make_part("pb", b, 2, 0, 0);
    path_of(pa, sizeof pa, "pa");
    path_of(pb, sizeof pb, "pb");
    path_of(corpus, sizeof corpus, "corpus");
    const char *parts[] = {pa, pb};
    assert_int_equal(mrg_merge(corpus, parts, 2, NULL, &n, &err), 0);
    assert_int_equal(n.parts, 2);
    assert_int_equal(n.pairs, 5);
    assert_int_equal(n.pairs_new, 4); /* 3.jpg's pair is in both */
    assert_int_equal(n.images_new, 4);
    assert_int_equal(n.store_files, 2);
    assert_int_equal(pairs_in(corpus), 4);
    for (int i = 0; i < 3; i++)
        check_bytes(corpus, a[i]);
    check_bytes(corpus, b[1]);

    /* the same part again: refused, nothing changes; skipped on request */
    assert_int_equal(mrg_merge(corpus, parts + 1, 1, NULL, &n, &err), CAT_EMERGED);
    assert_non_null(strstr(err.msg, "merged already"));
    assert_non_null(strstr(err.msg, pb));
    mrg_opts o = {.skip_merged = 1};
    assert_int_equal(mrg_merge(corpus, parts, 2, &o, &n, &err), 0);
    assert_int_equal(n.skipped, 2);
    assert_int_equal(n.parts, 0);
    assert_int_equal(pairs_in(corpus), 4);
}

static void test_fingerprint_is_content(void **state)
{
    static const char *const a[] = {"http://a/1.jpg"};
    char pa[512], cp[768], cmd[2048];
    char f1[WP_SHA256_LEN * 2 + 1], f2[WP_SHA256_LEN * 2 + 1];
    cat *c = NULL;
    wp_err err = {0};

    make_part("pa", a, 1, 0, 0);
    path_of(pa, sizeof pa, "pa");
    snprintf(cp, sizeof cp, "%s-copy", pa);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", pa, cp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cat_open(pa, 0, &c, &err), 0);
    assert_int_equal(cat_merge_fingerprint(c, f1, &err), 0);
    cat_close(c);
    assert_int_equal(cat_open(cp, 0, &c, &err), 0);
    assert_int_equal(cat_merge_fingerprint(c, f2, &err), 0);
    cat_close(c);
    assert_string_equal(f1, f2);
    assert_int_equal(strlen(f1), 64);
}

static void test_conflicting_decisions_refused(void **state)
{
    static const char *const a[] = {"http://a/1.jpg"};
    char pa[512], pb[512], corpus[512];
    mrg_counts n;
    wp_err err = {0};

    make_part("pa", a, 1, 0, 0); /* keep */
    make_part("pb", a, 1, 1, 0); /* drop, same pair */
    path_of(pa, sizeof pa, "pa");
    path_of(pb, sizeof pb, "pb");
    path_of(corpus, sizeof corpus, "corpus");
    const char *parts[] = {pa, pb};
    assert_int_equal(mrg_merge(corpus, parts, 2, NULL, &n, &err), CAT_ECONFLICT);
    assert_non_null(strstr(err.msg, "filter"));
    assert_non_null(strstr(err.msg, pb));
    assert_int_equal(n.parts, 1); /* the first stays merged */
    assert_int_equal(pairs_in(corpus), 1);
    /* pb was not recorded: merging it still refuses, for the same reason */
    assert_int_equal(mrg_merge(corpus, parts + 1, 1, NULL, &n, &err), CAT_ECONFLICT);
}

static void test_unfinished_part(void **state)
{
    static const char *const a[] = {"http://a/1.jpg"};
    char pa[512], corpus[512];
    mrg_counts n;
    wp_err err = {0};

    make_part("pa", a, 1, 0, 1);
    path_of(pa, sizeof pa, "pa");
    path_of(corpus, sizeof corpus, "corpus");
    const char *parts[] = {pa};
    assert_int_equal(mrg_merge(corpus, parts, 1, NULL, &n, &err), MRG_EUNFINISHED);
    assert_non_null(strstr(err.msg, "--partial"));
    mrg_opts o = {.partial = 1};
    assert_int_equal(mrg_merge(corpus, parts, 1, &o, &n, &err), 0);
    assert_int_equal(pairs_in(corpus), 1);
    /* a corpus is not merged into itself */
    const char *self[] = {corpus};
    assert_int_equal(mrg_merge(corpus, self, 1, &o, &n, &err), MRG_ESAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_by_content_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_is_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_decisions_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_part, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
