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
 *
 * Several files at once (a glob, decoded in parallel) store what adding
 * them one by one stores; --part I/N splits the row groups of all the
 * files so that the parts together hold exactly the single run's pairs,
 * none twice; --continue skips a row group with a corrupt page (in our
 * own file and in a corrupted copy of a shared reference file), reporting
 * it with file, row group, column and page, and reads the rest.
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
    assert_int_equal(tl_sh("%s -q init %s && %s -q init %s", w, a, w, b), 0);
    assert_int_equal(tl_sh("%s -q -C %s add %s --url-col URL --text-col TEXT --keep-cols "
                           "WIDTH,HEIGHT,similarity,NSFW",
                           w, a, pq),
                     0);
    assert_int_equal(tl_sh("%s -q -C %s add %s --url-col URL --text-col TEXT", w, b, tsv), 0);
    assert_int_equal(tl_q_int(a, "SELECT count(*) FROM pairs"), ROWS - 2);
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
    assert_int_equal(tl_q_int(a, "SELECT count(*) FROM pairs WHERE json_type(extra, '$.WIDTH') = "
                                 "'integer' AND json_type(extra, '$.similarity') = 'real' AND "
                                 "json_type(extra, '$.NSFW') = 'text'"),
                     ROWS - 2);
    assert_int_equal(tl_q_int(a, "SELECT count(*) FROM pairs WHERE json_type(extra, '$.HEIGHT') = "
                                 "'null'"),
                     30); /* every tenth row (none of them a bad row) */
    assert_int_equal(tl_q_int(a, "SELECT json_extract(extra, '$.WIDTH') FROM pairs WHERE text = 'a "
                                 "photo of thing number 42' AND image_id = (SELECT id FROM images "
                                 "WHERE url LIKE '%/42.jpg')"),
                     142);
    /* bad rows counted by reason, in the add run's counts */
    assert_int_equal(
        tl_q_int(a, "SELECT json_extract(counts, '$.bad_by_reason.no_url') FROM runs WHERE "
                    "stage = 'add'"),
        1);
    assert_int_equal(
        tl_q_int(a, "SELECT json_extract(counts, '$.bad_by_reason.bad_url') FROM runs WHERE "
                    "stage = 'add'"),
        1);
    /* told by its magic, not its name */
    snprintf(bin, sizeof bin, "%s/laion.bin", dir);
    assert_int_equal(tl_sh("cp %s %s", pq, bin), 0);
    assert_int_equal(tl_sh("%s -q init %s/c && %s -q -C %s/c add %s --url-col URL --text-col TEXT",
                           w, dir, w, dir, bin),
                     0);
    char c[512];
    snprintf(c, sizeof c, "%s/c", dir);
    assert_int_equal(tl_q_int(c, "SELECT count(*) FROM pairs"), ROWS - 2);
}

static void parquet_errors_are_clear(void **state)
{
    char pq[512], out[512];
    const char *w = tl_witpipe_bin();
    snprintf(pq, sizeof pq, "%s/part.parquet", dir);
    write_laion(pq);
    snprintf(out, sizeof out, "%s/err.txt", dir);
    assert_int_equal(tl_sh("%s -q init %s/d", w, dir), 0);
    assert_int_equal(
        tl_sh("%s -q -C %s/d add %s --url-col url --text-col TEXT 2>%s", w, dir, pq, out), 1);
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
    assert_int_equal(tl_sh("%s -q -C %s/d add %s --url-col a --text-col b 2>%s", w, dir, bad, out),
                     1);
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "column") == NULL || strstr(msg, "row group") == NULL)
        fail_msg("unclear error: %s", msg);
    free(msg);
}

/* Rows from..from+n-1 as URL, TEXT, WIDTH in row groups of rg rows;
 * plain: uncompressed and without dictionaries (the URLs lie in the file
 * as they are, for the tests that corrupt one). Row k's URL is
 * https://x.example/<tag><k>.jpg; with dups, every 17th row repeats the
 * one before it (a duplicate within the file). */
static void write_rows(const char *path, const char *tag, int from, int n, int rg, int plain,
                       int dups)
{
    pq_column cols[] = {{"URL", PQ_STRING, 1}, {"TEXT", PQ_STRING, 1}, {"WIDTH", PQ_INT64, 1}};
    pq_write_opts wo = {
        .codec = plain ? PQ_UNCOMPRESSED : PQ_SNAPPY, .row_group_rows = rg, .no_dictionary = plain};
    pq_writer *w = NULL;
    wp_err err = {0};
    char url[128], text[128];
    if (pq_writer_open(path, cols, 3, &wo, &w, &err) != 0)
        fail_msg("pq_writer_open: %s", err.msg);
    for (int i = 0; i < n; i++) {
        int k = from + (dups && i % 17 == 16 ? i - 1 : i);
        pq_value v[3] = {0};
        snprintf(url, sizeof url, "https://x.example/%s%d.jpg", tag, k);
        snprintf(text, sizeof text, "caption %d", k % 50);
        v[0] = (pq_value){.type = PQ_STRING, .s = url, .len = strlen(url)};
        v[1] = (pq_value){.type = PQ_STRING, .s = text, .len = strlen(text)};
        v[2] = (pq_value){.type = PQ_INT64, .i = k};
        if (pq_writer_append(w, v, &err) != 0)
            fail_msg("pq_writer_append: %s", err.msg);
    }
    if (pq_writer_close(w, &err) != 0)
        fail_msg("pq_writer_close: %s", err.msg);
}

/* Pairs of main not in b (uid, URL, caption, kept columns and the file of
 * the origin): 0 when b holds every pair of main the same way. */
#define PAIRS_OF(db)                                                                               \
    "SELECT p.uid, i.url, p.text, p.extra FROM " db ".pairs p JOIN " db                            \
    ".images i ON i.id = p.image_id"
#define MISSING_IN_B "SELECT count(*) FROM (" PAIRS_OF("main") " EXCEPT " PAIRS_OF("b") ")"
#define MISSING_IN_A "SELECT count(*) FROM (" PAIRS_OF("b") " EXCEPT " PAIRS_OF("main") ")"

static int64_t count_of(const char *corpus, const char *key)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT sum(json_extract(counts, '$.%s')) FROM runs WHERE stage = 'add'", key);
    return tl_q_int(corpus, sql);
}

static void several_files_in_parallel_like_one_by_one(void **state)
{
    const char *w = tl_witpipe_bin();
    char f[4][512], a[512], b[512];
    /* four files, the last repeating 40 rows of the first (duplicates
     * across files), row groups of 50 */
    for (int i = 0; i < 4; i++)
        snprintf(f[i], sizeof f[i], "%s/in/part-%05d.parquet", dir, i);
    assert_int_equal(tl_sh("mkdir -p %s/in", dir), 0);
    write_rows(f[0], "a", 0, 400, 50, 0, 1);
    write_rows(f[1], "b", 0, 333, 50, 0, 1);
    write_rows(f[2], "c", 0, 1, 50, 0, 1);
    write_rows(f[3], "a", 360, 300, 50, 0, 1);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    assert_int_equal(tl_sh("%s -q init %s && %s -q init %s", w, a, w, b), 0);
    /* one run: a glob, four decoding threads */
    assert_int_equal(tl_sh("OMP_NUM_THREADS=4 %s -q -C %s add '%s/in/part-*.parquet' --url-col URL "
                           "--text-col TEXT --keep-cols WIDTH --batch 97",
                           w, a, dir),
                     0);
    /* one by one, one thread */
    for (int i = 0; i < 4; i++)
        assert_int_equal(tl_sh("OMP_NUM_THREADS=1 %s -q -C %s add %s --url-col URL --text-col TEXT "
                               "--keep-cols WIDTH",
                               w, b, f[i]),
                         0);
    int64_t pairs = tl_q_int(a, "SELECT count(*) FROM pairs");
    /* 400 + 333 + 1 + 300 rows; within each file every 17th repeats;
     * the last file's first 40 rows are the first file's last 40 */
    assert_true(pairs > 900);
    assert_int_equal(pairs, tl_q_int(b, "SELECT count(*) FROM pairs"));
    assert_int_equal(tl_q_int_with(a, b, MISSING_IN_B), 0);
    assert_int_equal(tl_q_int_with(a, b, MISSING_IN_A), 0);
    /* each pair seen in only one file has the same origin (file:row) */
    assert_int_equal(
        tl_q_int_with(a, b,
                      "SELECT count(*) FROM pairs p JOIN b.pairs q ON q.uid = p.uid WHERE "
                      "p.origin <> q.origin AND p.origin NOT LIKE '%part-00000%' AND "
                      "p.origin NOT LIKE '%part-00003%'"),
        0);
    /* the same counts: rows, pairs added, duplicates, files, row groups */
    assert_int_equal(count_of(a, "rows"), 1034);
    assert_int_equal(count_of(b, "rows"), 1034);
    assert_int_equal(count_of(a, "added"), count_of(b, "added"));
    assert_int_equal(count_of(a, "duplicates"), count_of(b, "duplicates"));
    assert_int_equal(count_of(a, "files"), 4);
    assert_int_equal(count_of(a, "row_groups"), 8 + 7 + 1 + 6);
    assert_int_equal(count_of(a, "row_groups"), count_of(b, "row_groups"));
    assert_int_equal(tl_q_int(a, "SELECT count(*) FROM sources WHERE kind = 'list'"), 4);
    /* a glob that matches nothing is a failed input, named */
    char out[512];
    snprintf(out, sizeof out, "%s/err.txt", dir);
    assert_int_equal(tl_sh("%s -q -C %s add '%s/in/none-*.parquet' --url-col URL --text-col TEXT "
                           "2>%s",
                           w, a, dir, out),
                     1);
    size_t n = 0;
    char *msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "none-*.parquet: no file matches") == NULL)
        fail_msg("unclear error: %s", msg);
    free(msg);
}

static void parts_give_the_single_run_pairs_once(void **state)
{
    const char *w = tl_witpipe_bin();
    char f[512], one[512], part[512];
    enum { NPARTS = 3 };
    /* three files of 5, 3 and 4 row groups: 12 row groups, numbered across
     * the files in byte order of their names */
    assert_int_equal(tl_sh("mkdir -p %s/in", dir), 0);
    snprintf(f, sizeof f, "%s/in/x-2.parquet", dir);
    write_rows(f, "p", 0, 250, 50, 0, 0);
    snprintf(f, sizeof f, "%s/in/x-1.parquet", dir);
    write_rows(f, "q", 0, 150, 50, 0, 0);
    snprintf(f, sizeof f, "%s/in/x-3.parquet", dir);
    write_rows(f, "r", 0, 199, 50, 0, 0);
    snprintf(one, sizeof one, "%s/one", dir);
    assert_int_equal(tl_sh("%s -q init %s && %s -q -C %s add '%s/in/x-*.parquet' --url-col URL "
                           "--text-col TEXT --keep-cols WIDTH",
                           w, one, w, one, dir),
                     0);
    int64_t total = tl_q_int(one, "SELECT count(*) FROM pairs"), sum = 0, rows = 0, rgs = 0;
    for (int i = 1; i <= NPARTS; i++) {
        snprintf(part, sizeof part, "%s/part%d", dir, i);
        /* the files in another order on the command line: the same split */
        assert_int_equal(tl_sh("%s -q init %s && %s -q -C %s add %s/in/x-3.parquet "
                               "%s/in/x-1.parquet %s/in/x-2.parquet --url-col URL --text-col TEXT "
                               "--keep-cols WIDTH --part %d/%d",
                               w, part, w, part, dir, dir, dir, i, NPARTS),
                         0);
        assert_int_equal(count_of(part, "row_groups"), 4);
        rgs += count_of(part, "row_groups");
        rows += count_of(part, "rows");
        sum += tl_q_int(part, "SELECT count(*) FROM pairs");
        /* every pair of the part is one of the single run's, the same */
        assert_int_equal(tl_q_int_with(part, one, MISSING_IN_B), 0);
        /* row groups of 50 rows: a pair's row group is row / 50, counted
         * from x-1 (3 groups), then x-2 (5), then x-3 (4) */
        char sql[600];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pairs WHERE ((CASE WHEN origin LIKE '%%x-1.parquet:%%' "
                 "THEN 0 WHEN origin LIKE '%%x-2.parquet:%%' THEN 3 ELSE 8 END) + (CAST(substr("
                 "origin, instr(origin, '.parquet:') + 9) AS INTEGER) - 1) / 50) %% %d <> %d",
                 NPARTS, i - 1);
        assert_int_equal(tl_q_int(part, sql), 0);
    }
    assert_int_equal(rgs, 12);
    assert_int_equal(rows, 599);
    /* the parts together: exactly the single run's pairs, none twice
     * (every pair of the parts is in the single run, and the counts add
     * up, and no two parts share a pair) */
    assert_int_equal(sum, total);
    for (int i = 1; i <= NPARTS; i++)
        for (int j = i + 1; j <= NPARTS; j++) {
            char pa[512], pb[512];
            snprintf(pa, sizeof pa, "%s/part%d", dir, i);
            snprintf(pb, sizeof pb, "%s/part%d", dir, j);
            assert_int_equal(tl_q_int_with(pa, pb,
                                           "SELECT count(*) FROM pairs WHERE uid IN (SELECT uid "
                                           "FROM b.pairs)"),
                             0);
        }
}

/* Flips one byte of the first occurrence of needle in path. */
static void corrupt(const char *path, const char *needle, size_t at)
{
    size_t n = 0;
    char *data = tl_slurp(path, &n);
    assert_non_null(data);
    char *p = memmem(data, n, needle, strlen(needle));
    assert_non_null(p);
    p[at] ^= 0x20;
    assert_int_equal(tl_write(path, data, n), 0);
    free(data);
}

static void continue_skips_a_bad_row_group(void **state)
{
    const char *w = tl_witpipe_bin();
    char f[512], g[512], out[512], c1[512], c2[512];
    size_t n = 0;
    char *msg;
    /* our file: 4 row groups of 50, URLs as they are; a byte of row 60's
     * URL (row group 1) flipped, so that page's CRC fails */
    snprintf(f, sizeof f, "%s/four.parquet", dir);
    write_rows(f, "k", 0, 200, 50, 1, 0);
    corrupt(f, "https://x.example/k60.jpg", 19);
    snprintf(out, sizeof out, "%s/err.txt", dir);
    snprintf(c1, sizeof c1, "%s/c1", dir);
    snprintf(c2, sizeof c2, "%s/c2", dir);
    assert_int_equal(tl_sh("%s -q init %s && %s -q init %s", w, c1, w, c2), 0);
    /* without --continue: the file stops there, with the clear error;
     * row group 0 was stored */
    assert_int_equal(tl_sh("%s -q -C %s add %s --url-col URL --text-col TEXT 2>%s", w, c1, f, out),
                     1);
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "four.parquet: row group 1, column URL, page") == NULL ||
        strstr(msg, "CRC") == NULL)
        fail_msg("unclear error: %s", msg);
    free(msg);
    assert_int_equal(tl_q_int(c1, "SELECT count(*) FROM pairs WHERE origin LIKE '%four.parquet:%'"),
                     50); /* rows 0..49 */
    /* with --continue: the other three row groups are read, the bad one
     * reported and counted; exit 0 */
    assert_int_equal(
        tl_sh("%s -q -C %s add %s --url-col URL --text-col TEXT --continue 2>%s", w, c2, f, out),
        0);
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "four.parquet: row group 1, column URL, page") == NULL)
        fail_msg("bad row group not reported: %s", msg);
    free(msg);
    assert_int_equal(count_of(c2, "bad_row_groups"), 1);
    assert_int_equal(count_of(c2, "row_groups"), 3);
    assert_int_equal(count_of(c2, "rows"), 150);
    assert_int_equal(tl_q_int(c2, "SELECT count(*) FROM pairs"), 150);
    assert_int_equal(tl_q_int(c2, "SELECT count(*) FROM images WHERE url GLOB "
                                  "'https://x.example/k[5-9][0-9].jpg'"),
                     0); /* none of row group 1's rows 50..99 */
    assert_int_equal(tl_q_int(c2, "SELECT count(*) FROM images WHERE url = "
                                  "'https://x.example/k199.jpg'"),
                     1);

    /* a corrupted copy of a shared reference file (parquet-mr's, with page
     * CRCs): a byte of its dictionary page flipped */
    const char *shared = tl_shared_dir("parquet reference files");
    if (shared == NULL)
        return;
    snprintf(g, sizeof g, "%s/bad-copy.parquet", dir);
    assert_int_equal(
        tl_sh("cp %s/testdata/parquet/plain-dict-uncompressed-checksum.parquet %s", shared, g), 0);
    corrupt(g, "a655fd0e-9949", 5);
    assert_int_equal(tl_sh("%s -q -C %s add %s --url-col binary_field --text-col binary_field 2>%s",
                           w, c1, g, out),
                     1);
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "bad-copy.parquet: row group 0, column binary_field, page 0") == NULL ||
        strstr(msg, "CRC") == NULL)
        fail_msg("unclear error: %s", msg);
    free(msg);
    /* with --continue beside a good file: the good one is read whole, the
     * bad row group counted, the run succeeds */
    snprintf(f, sizeof f, "%s/good.parquet", dir);
    write_rows(f, "g", 0, 120, 50, 0, 0);
    assert_int_equal(tl_sh("%s -q init %s/c3 && %s -q -C %s/c3 add %s %s --url-col binary_field "
                           "--text-col binary_field --continue 2>%s",
                           w, dir, w, dir, g, f, out),
                     1); /* good.parquet has no binary_field: a clear error */
    msg = tl_slurp(out, &n);
    assert_non_null(msg);
    if (strstr(msg, "good.parquet: no column 'binary_field'") == NULL)
        fail_msg("missing column not named: %s", msg);
    free(msg);
    assert_int_equal(tl_sh("%s -q init %s/c4 && %s -q -C %s/c4 add %s --url-col binary_field "
                           "--text-col binary_field --continue 2>%s",
                           w, dir, w, dir, g, out),
                     0);
    snprintf(c1, sizeof c1, "%s/c4", dir);
    assert_int_equal(count_of(c1, "bad_row_groups"), 1);
    assert_int_equal(count_of(c1, "rows"), 0);
    /* and --no-verify-crc reads the copy (the flipped byte is in a value) */
    assert_int_equal(tl_sh("%s -q init %s/c5 && %s -q -C %s/c5 add %s --url-col binary_field "
                           "--text-col binary_field --no-verify-crc 2>%s",
                           w, dir, w, dir, g, out),
                     0);
    snprintf(c1, sizeof c1, "%s/c5", dir);
    assert_int_equal(count_of(c1, "rows"), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(laion_file_adds_like_tsv, setup, teardown),
        cmocka_unit_test_setup_teardown(parquet_errors_are_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(several_files_in_parallel_like_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(parts_give_the_single_run_pairs_once, setup, teardown),
        cmocka_unit_test_setup_teardown(continue_skips_a_bad_row_group, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
