/*
 * tests/unit/test_common.c: the common library: errors, arenas, buffers,
 * SHA-256 and pair uids, UTF-8 validation/repair/truncation, durable files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/wp.h"
#include "tests/lib/testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_err_set_and_prefix(void **state)
{
    wp_err e = {0};
    assert_int_equal(wp_err_set(&e, WP_EIO, "file %s", "x.tsv"), WP_EIO);
    assert_string_equal(e.msg, "file x.tsv");
    assert_int_equal(wp_err_prefix(&e, "line %d", 3), WP_EIO);
    assert_string_equal(e.msg, "line 3: file x.tsv");
    assert_int_equal(wp_err_set(NULL, WP_EINVAL, "ignored"), WP_EINVAL);
}

static void test_arena_alignment_and_reset(void **state)
{
    wp_arena *a = wp_arena_new(256);
    assert_non_null(a);
    for (int i = 1; i < 100; i++) {
        char *p = wp_arena_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, (size_t)i);
    }
    char *big = wp_arena_alloc(a, 10000); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 10000);
    wp_arena_reset(a);
    assert_int_equal(wp_arena_used(a), 0);
    char *s = wp_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    wp_arena_free(a);
}

static void test_buf_append_printf_steal(void **state)
{
    wp_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(wp_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "0,1,2,", 6);
    char *s = wp_buf_steal(&b);
    assert_null(b.data);
    assert_int_equal(strlen(s), 3890);
    free(s);
    wp_buf_free(&b);
}

static void test_sha256_known_vector(void **state)
{
    uint8_t md[32];
    char hex[65];
    assert_int_equal(wp_sha256_buf("abc", 3, md), 0);
    wp_hex(md, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    wp_sha256 *h = wp_sha256_new();
    assert_non_null(h);
    wp_sha256_update(h, "a", 1);
    wp_sha256_update(h, "bc", 2);
    uint8_t md2[32];
    assert_int_equal(wp_sha256_final(h, md2), 0);
    wp_sha256_free(h);
    assert_memory_equal(md, md2, 32);
}

static void test_pair_uid_is_sha_of_url_nul_text(void **state)
{
    char uid[WP_UID_HEX + 1], uid2[WP_UID_HEX + 1];
    uint8_t md[32];
    char hex[65];
    assert_int_equal(wp_pair_uid("http://a/x.jpg", 14, "a cat", 5, uid), 0);
    assert_int_equal(wp_sha256_buf("http://a/x.jpg\0a cat", 20, md), 0);
    wp_hex(md, 16, hex);
    assert_string_equal(uid, hex);
    /* the separator keeps ("ab","c") and ("a","bc") apart */
    assert_int_equal(wp_pair_uid("ab", 2, "c", 1, uid), 0);
    assert_int_equal(wp_pair_uid("a", 1, "bc", 2, uid2), 0);
    assert_string_not_equal(uid, uid2);
}

static void test_utf8_valid_rejects_bad_forms(void **state)
{
    assert_true(wp_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    assert_false(wp_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(wp_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(wp_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(wp_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(wp_utf8_valid("\x80", 1));             /* lone continuation */
}

static void test_utf8_repair_replaces_each_bad_char_once(void **state)
{
    wp_buf b = {0};
    long n = wp_utf8_repair("a\xe2\x82z\xffq", 6, &b);
    assert_int_equal(n, 2);
    assert_string_equal(b.data, "a\xef\xbf\xbdz\xef\xbf\xbdq");
    wp_buf_free(&b);
}

static void test_utf8_floor_stays_on_boundary(void **state)
{
    const char *s = "ab\xe2\x82\xac"; /* "ab€" */
    assert_int_equal(wp_utf8_floor(s, 5, 4), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 3), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 2), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 5), 5);
    assert_int_equal(wp_utf8_floor(s, 5, 99), 5);
}

static void test_atomic_write_and_bounded_read(void **state)
{
    char *dir = tl_mkdtemp();
    char path[WP_PATH_MAX];
    wp_err e = {0};
    wp_buf b = {0};
    assert_non_null(dir);
    assert_int_equal(wp_path_join(path, dir, "a/b/c", &e), 0);
    char sub[WP_PATH_MAX];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    assert_int_equal(wp_mkdir_p(sub, &e), 0);
    assert_int_equal(wp_write_file_atomic(path, "hello", 5, &e), 0);
    assert_int_equal(wp_read_file(path, 100, &b, &e), 0);
    assert_string_equal(b.data, "hello");
    assert_int_equal(wp_read_file(path, 4, &b, &e), WP_ELIMIT);
    assert_non_null(strstr(e.msg, "larger than 4"));
    snprintf(sub, sizeof sub, "%s/missing", dir);
    assert_int_equal(wp_read_file(sub, 4, &b, &e), WP_ENOENT);
    wp_buf_free(&b);
    tl_rmtree(dir);
}

/* wp_fd_reserve raises the soft open-file limit up to the hard one, and
 * past the hard one fails with a message naming the ulimit to ask for. Run
 * in a child: lowering the hard limit cannot be undone. */
static void test_fd_reserve_raises_or_explains(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {32, 64};
        wp_err err = {0};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(10);
        if (wp_fd_reserve(48, "test", &err) != 0)
            _exit(11);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 48)
            _exit(12);
        if (wp_fd_reserve(20, "test", &err) != 0) /* already enough */
            _exit(13);
        if (wp_fd_reserve(100, "fetch --parallel 90", &err) != WP_ELIMIT)
            _exit(14);
        if (strstr(err.msg, "ulimit -n 100") == NULL ||
            strstr(err.msg, "fetch --parallel 90") == NULL)
            _exit(15);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_arena_alignment_and_reset),
        cmocka_unit_test(test_buf_append_printf_steal),
        cmocka_unit_test(test_sha256_known_vector),
        cmocka_unit_test(test_pair_uid_is_sha_of_url_nul_text),
        cmocka_unit_test(test_utf8_valid_rejects_bad_forms),
        cmocka_unit_test(test_utf8_repair_replaces_each_bad_char_once),
        cmocka_unit_test(test_utf8_floor_stays_on_boundary),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
        cmocka_unit_test(test_fd_reserve_raises_or_explains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
