/*
 * tests/unit/test_store.c: the image store: append, sync, read back,
 * sha256 verification, corruption and short-read detection, and a reopened
 * store continuing to append after what is there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/wp.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sha_hex(const void *p, size_t n, char out[WP_SHA256_HEX + 1])
{
    uint8_t md[WP_SHA256_LEN];
    assert_int_equal(wp_sha256_buf(p, n, md), 0);
    wp_hex(md, sizeof md, out);
}

static void test_append_sync_read_verify(void **state)
{
    char *dir = tl_mkdtemp();
    st_store *s = NULL;
    wp_err err = {0};
    int64_t f1, o1, f2, o2;
    char buf[64], sha[WP_SHA256_HEX + 1];

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "hello", 5, &f1, &o1, &err), 0);
    assert_int_equal(st_append(s, "world!", 6, &f2, &o2, &err), 0);
    assert_int_equal(f1, f2);
    assert_int_equal(o1, 0);
    assert_int_equal(o2, 5);
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(st_read(s, f2, o2, buf, 6, &err), 0);
    assert_memory_equal(buf, "world!", 6);
    sha_hex("hello", 5, sha);
    assert_int_equal(st_read_verified(s, f1, o1, buf, 5, sha, &err), 0);
    assert_memory_equal(buf, "hello", 5);
    /* The right length at the wrong place fails verification. */
    assert_int_equal(st_read_verified(s, f1, 1, buf, 5, sha, &err), ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "do not match"));
    /* Past the end: a short read. */
    assert_int_equal(st_read(s, f1, 8, buf, 10, &err), ST_ECORRUPT);
    /* A file that does not exist. */
    assert_int_equal(st_read(s, 99, 0, buf, 1, &err), WP_ENOENT);
    st_close(s);
    tl_rmtree(dir);
}

static void test_corruption_on_disk_is_detected(void **state)
{
    char *dir = tl_mkdtemp();
    char path[512], sha[WP_SHA256_HEX + 1], buf[16];
    st_store *s = NULL;
    wp_err err = {0};
    int64_t f, o;
    int fd;

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "0123456789", 10, &f, &o, &err), 0);
    assert_int_equal(st_sync(s, &err), 0);
    sha_hex("0123456789", 10, sha);
    snprintf(path, sizeof path, "%s/store/%06lld.dat", dir, (long long)f);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 4), 1); /* one flipped byte */
    close(fd);
    assert_int_equal(st_read_verified(s, f, o, buf, 10, sha, &err), ST_ECORRUPT);
    st_close(s);
    tl_rmtree(dir);
}

static void test_reopen_continues_appending(void **state)
{
    char *dir = tl_mkdtemp();
    st_store *s = NULL;
    wp_err err = {0};
    int64_t f1, o1, f2, o2;
    char buf[8];

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "first", 5, &f1, &o1, &err), 0);
    st_close(s);
    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "second", 6, &f2, &o2, &err), 0);
    assert_int_equal(f2, f1);
    assert_int_equal(o2, 5); /* after, not over, what was there */
    assert_int_equal(st_read(s, f1, o1, buf, 5, &err), 0);
    assert_memory_equal(buf, "first", 5);
    assert_int_equal(st_read(s, f2, o2, buf, 6, &err), 0);
    assert_memory_equal(buf, "second", 6);
    st_close(s);
    tl_rmtree(dir);
}

/* A data file fills up to ST_FILE_MAX exactly: an append that ends at the
 * limit stays in the file, the next byte starts a new one. The file is
 * made sparse (truncate) so the test writes a few bytes, not a GiB. */
static void test_file_fills_to_the_limit_exactly(void **state)
{
    char *dir = tl_mkdtemp();
    char path[600];
    st_store *s = NULL;
    wp_err err = {0};
    int64_t f, o;
    char buf[4];

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "x", 1, &f, &o, &err), 0);
    assert_int_equal(f, 1);
    st_close(s);
    snprintf(path, sizeof path, "%s/store/000001.dat", dir);
    assert_int_equal(truncate(path, ST_FILE_MAX - 4), 0);
    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "last", 4, &f, &o, &err), 0);
    assert_int_equal(f, 1);
    assert_int_equal(o, ST_FILE_MAX - 4);
    assert_int_equal(st_append(s, "next", 4, &f, &o, &err), 0);
    assert_int_equal(f, 2);
    assert_int_equal(o, 0);
    assert_int_equal(st_read(s, 1, ST_FILE_MAX - 4, buf, 4, &err), 0);
    assert_memory_equal(buf, "last", 4);
    st_close(s);
    tl_rmtree(dir);
}

/* A data file created by this store gets its directory fsynced at the
 * next st_sync, once; reopening an existing file does not need it. */
static void test_new_file_syncs_directory(void **state)
{
    char *dir = tl_mkdtemp();
    st_store *s = NULL;
    wp_err err = {0};
    int64_t f, o;

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_dir_syncs(s), 0);
    assert_int_equal(st_append(s, "abc", 3, &f, &o, &err), 0);
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(st_dir_syncs(s), 1);
    assert_int_equal(st_append(s, "def", 3, &f, &o, &err), 0);
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(st_dir_syncs(s), 1);
    st_close(s);
    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "ghi", 3, &f, &o, &err), 0);
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(st_dir_syncs(s), 0);
    st_close(s);
    tl_rmtree(dir);
}

/* st_rotate moves appends above every existing file (gaps included) and
 * syncs the new name; st_list sees every file in order; st_remove refuses
 * the file appends go to and removes the others, evicting a cached read
 * descriptor so that a later read reports the file missing. */
static void test_rotate_list_remove(void **state)
{
    char *dir = tl_mkdtemp(), path[WP_PATH_MAX];
    st_store *s = NULL;
    st_file *v = NULL;
    size_t n = 0;
    wp_err err = {0};
    int64_t f, o;
    char buf[4];
    FILE *fp;

    assert_int_equal(st_open(dir, &s, &err), 0);
    assert_int_equal(st_append(s, "abc", 3, &f, &o, &err), 0);
    assert_int_equal(f, 1);
    /* a stray higher file (a copy a killed compaction left) */
    snprintf(path, sizeof path, "%s/store/000005.dat", dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("zz", fp);
    fclose(fp);
    assert_int_equal(st_rotate(s, &err), 0);
    assert_int_equal(st_current_file(s), 6);
    assert_int_equal(st_append(s, "de", 2, &f, &o, &err), 0);
    assert_int_equal(f, 6);
    assert_int_equal(o, 0);
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(st_list(s, &v, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].num, 1);
    assert_int_equal(v[0].size, 3);
    assert_int_equal(v[1].num, 5);
    assert_int_equal(v[1].size, 2);
    assert_int_equal(v[2].num, 6);
    assert_int_equal(v[2].size, 2);
    free(v);
    assert_int_equal(st_remove(s, 6, &err), WP_EINVAL);
    assert_int_equal(st_read(s, 1, 0, buf, 3, &err), 0); /* caches a descriptor */
    assert_int_equal(st_remove(s, 1, &err), 0);
    assert_int_equal(st_remove(s, 1, &err), 0); /* already gone: no error */
    assert_int_equal(st_read(s, 1, 0, buf, 3, &err), WP_ENOENT);
    assert_int_equal(st_list(s, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    free(v);
    st_close(s);
    tl_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_sync_read_verify),
        cmocka_unit_test(test_corruption_on_disk_is_detected),
        cmocka_unit_test(test_reopen_continues_appending),
        cmocka_unit_test(test_new_file_syncs_directory),
        cmocka_unit_test(test_file_fills_to_the_limit_exactly),
        cmocka_unit_test(test_rotate_list_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
