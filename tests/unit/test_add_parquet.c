/*
 * tests/unit/test_add_parquet.c: `witpipe add` on Parquet (issue 17's
 * first complaint: `add part-00000.parquet --url-col URL --text-col TEXT`
 * read 0 rows). A LAION-style file written with our Parquet writer (URL,
 * TEXT, WIDTH, HEIGHT, similarity, NSFW; snappy; three row groups; a null
 * caption, a null URL, a non-http URL) is added through the binary: every
 * good row becomes a pair with the same uid a TSV of the same rows gives,
 * kept columns land in pairs.extra with their types, bad rows are counted
 * by reason, and the file is told by its magic even under a .bin name.
 * A missing or nested column is a clear error; a page with a broken CRC is
 * an error naming file, row group, column and page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/wp.h"
#include "parquet/parquet.h"
#include "tests/lib/testlib.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define ROWS 300

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "%s", tl_mkdtemp());
    return 0;
}

static int teardown(void **state)
{
    tl_rmtree(dir);
    return 0;
}

static void write_laion(const char *path)
{
    pq_column cols[] = {{"URL", PQ_STRING, 1},        {"TEXT", PQ_STRING, 1},
                        {"WIDTH", PQ_INT64, 1},       {"HEIGHT", PQ_INT64, 1},
                        {"similarity", PQ_DOUBLE, 0}, {"NSFW", PQ_STRING, 1}};
    pq_write_opts wo = {.codec = PQ_SNAPPY, .row_group_rows = 128};
    pq_writer *w = NULL;
    wp_err err = {0};
    char url[128], text[128];
    if (pq_writer_open(path, cols, 6, &wo, &w, &err) != 0)
        fail_msg("pq_writer_open: %s", err.msg);
    for (int i = 0; i < ROWS; i++) {
        pq_value v[6] = {0};
        snprintf(url, sizeof url, i == 7 ? "ftp://x.example/%d.jpg" : "https://x.example/%d.jpg",
                 i);
        snprintf(text, sizeof text, "a photo of thing number %d", i % 250); /* repeats */
        v[0] = (pq_value){.type = PQ_STRING, .s = url, .len = strlen(url)};
        if (i == 5)
            v[0] = (pq_value){.type = PQ_NULL};
        v[1] = (pq_value){.type = PQ_STRING, .s = text, .len = strlen(text)};
        if (i == 3)
            v[1] = (pq_value){.type = PQ_NULL};
        v[2] = (pq_value){.type = PQ_INT64, .i = 100 + i};
        v[3] = i % 10 == 0 ? (pq_value){.type = PQ_NULL} : (pq_value){.type = PQ_INT64, .i = 50};
        v[4] = (pq_value){.type = PQ_DOUBLE, .d = 0.25 + i / 1000.0};
        v[5] = (pq_value){.type = PQ_STRING, .s = "UNLIKELY", .len = 8};
        if (pq_writer_append(w, v, &err) != 0)
            fail_msg("pq_writer_append: %s", err.msg);
    }
    if (pq_writer_close(w, &err) != 0)
        fail_msg("pq_writer_close: %s", err.msg);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int64_t q_int(const char *corpus, const char *sql)
{
    char path[512];
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void laion_file_adds_like_tsv(void **state)
{
    char pq[512], bin[512], tsv[512], a[512], b[512];
    const char *w = tl_witpipe_bin();
    snprintf(pq, sizeof pq, "%s/part-00000.parquet", dir);
    write_laion(pq);
    /* the same rows as TSV (the good ones; the TSV reader's own rules for
     * the bad ones are tested elsewhere) */
    snprintf(tsv, sizeof tsv, "%s/same.tsv", dir);
    FILE *f = fopen(tsv, "w");
    assert_non_null(f);
    fprintf(f, "URL\tTEXT\n");
    for (int i = 0; i < ROWS; i++)
        if (i != 5 && i != 7)
            fprintf(f, "https://x.example/%d.jpg\t%s\n", i,
                    i == 3 ? ""
                           : (snprintf(a, sizeof a, "a photo of thing number %d", i % 250), a));
    fclose(f);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    assert_int_equal(sh("%s -q init %s && %s -q init %s", w, a, w, b), 0);
    assert_int_equal(sh("%s -q -C %s add %s --url-col URL --text-col TEXT --keep-cols "
                        "WIDTH,HEIGHT,similarity,NSFW",
                        w, a, pq),
                     0);
    assert_int_equal(sh("%s -q -C %s add %s --url-col URL --text-col TEXT", w, b, tsv), 0);
    assert_int_equal(q_int(a, "SELECT count(*) FROM pairs"), ROWS - 2);
    /* the same uids as the TSV gives */
    char attach[1024];
    snprintf(attach, sizeof attach,
             "SELECT count(*) FROM pairs WHERE uid IN (SELECT uid FROM b.pairs)");
    char sql[1400];
    snprintf(sql, sizeof sql, "ATTACH '%s/catalog.db' AS b", b);
    {
        char path[512];
        sqlite3 *db;
        sqlite3_stmt *s;
        snprintf(path, sizeof path, "%s/catalog.db", a);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, attach, -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(s, 0), ROWS - 2);
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    /* kept columns with their types: integers, doubles, strings, nulls */
    assert_int_equal(q_int(a, "SELECT count(*) FROM pairs WHERE json_type(extra, '$.WIDTH') = "
                              "'integer' AND json_type(extra, '$.similarity') = 'real' AND "
                              "json_type(extra, '$.NSFW') = 'text'"),
                     ROWS - 2);
    assert_int_equal(q_int(a, "SELECT count(*) FROM pairs WHERE json_type(extra, '$.HEIGHT') = "
                              "'null'"),
                     30); /* every tenth row (none of them a bad row) */
    assert_int_equal(q_int(a, "SELECT json_extract(extra, '$.WIDTH') FROM pairs WHERE text = 'a "
                              "photo of thing number 42' AND image_id = (SELECT id FROM images "
                              "WHERE url LIKE '%/42.jpg')"),
                     142);
    /* bad rows counted by reason, in the add run's counts */
    assert_int_equal(q_int(a,
                           "SELECT json_extract(counts, '$.bad_by_reason.no_url') FROM runs WHERE "
                           "stage = 'add'"),
                     1);
    assert_int_equal(q_int(a,
                           "SELECT json_extract(counts, '$.bad_by_reason.bad_url') FROM runs WHERE "
                           "stage = 'add'"),
                     1);
    /* told by its magic, not its name */
    snprintf(bin, sizeof bin, "%s/laion.bin", dir);
    assert_int_equal(sh("cp %s %s", pq, bin), 0);
    assert_int_equal(sh("%s -q init %s/c && %s -q -C %s/c add %s --url-col URL --text-col TEXT", w,
                        dir, w, dir, bin),
                     0);
    char c[512];
    snprintf(c, sizeof c, "%s/c", dir);
    assert_int_equal(q_int(c, "SELECT count(*) FROM pairs"), ROWS - 2);
}

static void parquet_errors_are_clear(void **state)
{
    char pq[512], out[512];
    const char *w = tl_witpipe_bin();
    snprintf(pq, sizeof pq, "%s/part.parquet", dir);
    write_laion(pq);
    snprintf(out, sizeof out, "%s/err.txt", dir);
    assert_int_equal(sh("%s -q init %s/d", w, dir), 0);
    assert_int_equal(sh("%s -q -C %s/d add %s --url-col url --text-col TEXT 2>%s", w, dir, pq, out),
                     1);
    size_t n = 0;
    char *msg = tl_slurp(out, &n);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "no column 'url'"));
    assert_non_null(strstr(msg, "part.parquet"));
    free(msg);
    /* a page whose CRC does not match: file, row group, column and page */
    const char *shared = tl_shared_dir("parquet reference files");
    if (shared == NULL)
        return;
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/testdata/parquet/datapage_v1-corrupt-checksum.parquet", shared);
    assert_int_equal(sh("%s -q -C %s/d add %s --url-col a --text-col b 2>%s", w, dir, bad, out), 1);
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "column") == NULL || strstr(msg, "row group") == NULL)
        fail_msg("unclear error: %s", msg);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(laion_file_adds_like_tsv, setup, teardown),
        cmocka_unit_test_setup_teardown(parquet_errors_are_clear, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
