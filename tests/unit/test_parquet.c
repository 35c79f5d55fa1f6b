/*
 * tests/unit/test_parquet.c: the Parquet reader (parquet/) against real
 * files written by other implementations (../shared/testdata/parquet, from
 * apache/parquet-testing) and the values an independent reader (arrow-rs)
 * found in them (expected/NAME.json), plus malformed inputs made by damaging a
 * good file: each must give a one-line error naming file, row group, column
 * and page, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parquet/parquet.h"
#include "parquet/pq_int.h"
#include "tests/lib/testlib.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pq_dir(void)
{
    const char *d = tl_shared_path("testdata/parquet");
    if (d == NULL || !wp_file_exists(d)) {
        fprintf(stderr, "SKIP: ../shared/testdata/parquet absent\n");
        return NULL;
    }
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s", d);
    return buf;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 text into out (malloc'ed); returns its length. */
static size_t b64dec(const char *s, unsigned char **out)
{
    size_t n = strlen(s), k = 0;
    unsigned char *o = malloc(n + 1);
    assert_non_null(o);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            continue;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
        }
    }
    *out = o;
    return k;
}

static int is_nested_type(const char *t)
{
    return strncmp(t, "List<", 5) == 0 || strncmp(t, "Struct<", 7) == 0 ||
           strncmp(t, "Map<", 4) == 0;
}

/* Compares one value to its expected JSON; fails naming file/row/column. */
static void check_value(const char *file, long row, const char *col, const char *atype,
                        json_t *want, const pq_value *got)
{
    char where[512];
    snprintf(where, sizeof where, "%s row %ld column %s", file, row, col);
    if (json_is_null(want)) {
        if (got->type != PQ_NULL)
            fail_msg("%s: want null, got type %d", where, got->type);
        return;
    }
    if (got->type == PQ_NULL)
        fail_msg("%s: want a value, got null", where);
    if (strncmp(atype, "Int", 3) == 0 || strncmp(atype, "Uint", 4) == 0 ||
        strncmp(atype, "Timestamp", 9) == 0) {
        long long w;
        if (json_is_string(want))
            w = strtoll(json_string_value(want), NULL, 10);
        else
            w = (long long)json_integer_value(want);
        if (got->type != PQ_INT64)
            fail_msg("%s: want an integer, got type %d", where, got->type);
        long long g = got->i;
        if (strcmp(atype, "Timestamp<NANOSECOND>") == 0) {
            /* The dump shows timestamps in milliseconds. */
            if (g % 1000000 != 0)
                fail_msg("%s: timestamp %lld ns not whole milliseconds", where, g);
            g /= 1000000;
        }
        if (g != w)
            fail_msg("%s: want %lld, got %lld", where, w, g);
    } else if (strncmp(atype, "Float", 5) == 0) {
        if (got->type != PQ_DOUBLE)
            fail_msg("%s: want a double, got type %d", where, got->type);
        if (json_is_string(want)) {
            if (strcmp(json_string_value(want), "NaN") != 0 || !isnan(got->d))
                fail_msg("%s: want %s, got %.17g", where, json_string_value(want), got->d);
        } else if (json_number_value(want) != got->d) {
            fail_msg("%s: want %.17g, got %.17g", where, json_number_value(want), got->d);
        }
    } else if (strcmp(atype, "Bool") == 0) {
        if (got->type != PQ_BOOL || got->i != json_is_true(want))
            fail_msg("%s: want %d, got type %d value %lld", where, json_is_true(want), got->type,
                     (long long)got->i);
    } else if (strcmp(atype, "Utf8") == 0) {
        const char *w = json_string_value(want);
        assert_non_null(w);
        if (got->type != PQ_STRING || got->len != strlen(w) || memcmp(got->s, w, got->len) != 0)
            fail_msg("%s: want \"%s\", got type %d \"%.*s\"", where, w, got->type, (int)got->len,
                     got->s);
    } else if (strcmp(atype, "Binary") == 0 || strncmp(atype, "FixedSizeBinary", 15) == 0) {
        json_t *b = json_object_get(want, "base64");
        assert_non_null(b);
        unsigned char *w;
        size_t wl = b64dec(json_string_value(b), &w);
        int ok = got->type == PQ_BYTES && got->len == wl && memcmp(got->s, w, wl) == 0;
        free(w);
        if (!ok)
            fail_msg("%s: binary differs (type %d, %zu bytes)", where, got->type, got->len);
    } else {
        fail_msg("%s: expected type %s not handled by the test", where, atype);
    }
}

/* Reads file (all row groups) and compares with the expected dump; returns
 * the number of values compared. */
static long compare_file(const char *dir, const char *file, json_t *exp, const pq_read_opts *o)
{
    char path[1024];
    pq_reader *r = NULL;
    wp_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (pq_open(path, o, &r, &err) != 0)
        fail_msg("%s: open: %s", file, err.msg);
    json_t *schema = json_object_get(exp, "schema");
    json_t *rows = json_object_get(exp, "rows");
    assert_int_equal(pq_num_rows(r), json_integer_value(json_object_get(exp, "num_rows")));

    /* Columns: every flat expected column is ours, every nested one skipped. */
    size_t ns = json_array_size(schema);
    int *cols = calloc(ns + 1, sizeof *cols);
    const char **names = calloc(ns + 1, sizeof *names), **types = calloc(ns + 1, sizeof *types);
    assert_true(cols && names && types);
    int nsel = 0;
    for (size_t i = 0; i < ns; i++) {
        json_t *s = json_array_get(schema, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *type = json_string_value(json_object_get(s, "type"));
        if (is_nested_type(type)) {
            int found = 0;
            for (int k = 0; pq_skipped(r, k) != NULL; k++)
                found |= strncmp(pq_skipped(r, k), name, strlen(name)) == 0;
            if (!found)
                fail_msg("%s: nested column %s not named as skipped", file, name);
            int rc = pq_find_column(r, name, &err);
            assert_int_equal(rc, PQ_ENESTED);
            assert_non_null(strstr(err.msg, name));
            continue;
        }
        int c = pq_find_column(r, name, &err);
        if (c < 0)
            fail_msg("%s: column %s: %s", file, name, err.msg);
        cols[nsel] = c;
        names[nsel] = name;
        types[nsel] = type;
        nsel++;
    }
    assert_int_equal(pq_num_columns(r), nsel);
    long compared = 0;
    if (nsel > 0) {
        assert_int_equal(pq_select(r, cols, nsel), 0);
        pq_value *v = calloc((size_t)nsel, sizeof *v);
        assert_non_null(v);
        long row = 0;
        for (int g = 0; g < pq_num_row_groups(r); g++) {
            int n = pq_read_row_group(r, g, &err);
            if (n < 0)
                fail_msg("%s: %s", file, err.msg);
            while (pq_next_row(r, v)) {
                json_t *want = json_array_get(rows, (size_t)row);
                assert_non_null(want);
                for (int k = 0; k < nsel; k++) {
                    check_value(file, row, names[k], types[k], json_object_get(want, names[k]),
                                &v[k]);
                    compared++;
                }
                row++;
            }
        }
        assert_int_equal(row, (long)json_array_size(rows));
        free(v);
    }
    free(cols);
    free(names);
    free(types);
    pq_close(r);
    return compared;
}

/* Every file the independent reader read, with a flat column, reads to the
 * same values; files with nested columns name what they skip. */
static void test_expected_values(void **state)
{
    const char *dir = pq_dir();
    if (dir == NULL)
        skip();
    char edir[1100];
    snprintf(edir, sizeof edir, "%s/expected", dir);
    DIR *d = opendir(edir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    long values = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", edir, e->d_name);
        json_error_t je;
        json_t *exp = json_load_file(p, 0, &je);
        assert_non_null(exp);
        const char *file = json_string_value(json_object_get(exp, "file"));
        if (json_object_get(exp, "rows") == NULL ||
            strcmp(file, "datapage_v1-corrupt-checksum.parquet") == 0) {
            json_decref(exp);
            continue;
        }
        values += compare_file(dir, file, exp, NULL);
        files++;
        json_decref(exp);
    }
    closedir(d);
    printf("compared %ld values in %d files\n", values, files);
    assert_true(files >= 20);
    assert_true(values > 10000);
}

/* A page whose CRC does not match: the error names file, row group, column
 * and page; skipping verification reads what the other reader read. */
static void test_corrupt_checksum(void **state)
{
    const char *dir = pq_dir();
    if (dir == NULL)
        skip();
    char path[1100];
    snprintf(path, sizeof path, "%s/datapage_v1-corrupt-checksum.parquet", dir);
    pq_reader *r = NULL;
    wp_err err = {0};
    assert_int_equal(pq_open(path, NULL, &r, &err), 0);
    int fails = 0;
    for (int g = 0; g < pq_num_row_groups(r); g++) {
        int rc = pq_read_row_group(r, g, &err);
        if (rc < 0) {
            assert_int_equal(rc, PQ_ECRC);
            assert_non_null(strstr(err.msg, "datapage_v1-corrupt-checksum.parquet"));
            assert_non_null(strstr(err.msg, "row group"));
            assert_non_null(strstr(err.msg, "column"));
            assert_non_null(strstr(err.msg, "page"));
            assert_non_null(strstr(err.msg, "CRC"));
            assert_null(strchr(err.msg, '\n'));
            fails++;
        }
    }
    assert_true(fails >= 1);
    pq_close(r);

    /* Streaming: the bad row group is reported, the rest still read. */
    assert_int_equal(pq_open(path, NULL, &r, &err), 0);
    pq_value sv[2];
    long good = 0;
    int errors = 0, rc;
    while ((rc = pq_stream_next(r, 1, 1, sv, &err)) != 0) {
        if (rc < 0) {
            assert_int_equal(rc, PQ_ECRC);
            errors++;
            continue; /* --continue */
        }
        good++;
    }
    assert_int_equal(errors, fails);
    assert_true(good < pq_num_rows(r));
    pq_close(r);

    /* The files with good CRCs verify (they are read in test_expected_values
     * with verification on); this one reads with --no-verify-crc. */
    snprintf(path, sizeof path, "%s/expected/datapage_v1-corrupt-checksum.json", dir);
    json_t *exp = json_load_file(path, 0, NULL);
    assert_non_null(exp);
    pq_read_opts o = {.no_verify_crc = 1};
    assert_true(compare_file(dir, "datapage_v1-corrupt-checksum.parquet", exp, &o) > 0);
    json_decref(exp);
}

/* The CRC check runs: the files with checksums have pages with a CRC and a
 * changed byte inside one makes the read fail. */
static void test_crc_detects_change(void **state)
{
    const char *dir = pq_dir();
    if (dir == NULL)
        skip();
    char path[1100];
    size_t n;
    snprintf(path, sizeof path, "%s/plain-dict-uncompressed-checksum.parquet", dir);
    char *data = tl_slurp(path, &n);
    assert_non_null(data);
    pq_reader *r = NULL;
    wp_err err = {0};
    assert_int_equal(pq_open_mem(data, n, "x.parquet", NULL, &r, &err), 0);
    assert_true(pq_read_row_group(r, 0, &err) >= 0);
    pq_close(r);
    /* Flip the last byte of the first page's data (the column chunk starts
     * at byte 4 with a page header). */
    pq_page_header h;
    const char *why;
    int hl = pq_page_header_decode((const uint8_t *)data + 4, n - 4, &h, &why);
    assert_true(hl > 0);
    assert_true(h.has_crc);
    data[4 + hl + h.compressed_size - 1] ^= 0x01;
    assert_int_equal(pq_open_mem(data, n, "x.parquet", NULL, &r, &err), 0);
    int rc = 0;
    for (int g = 0; g < pq_num_row_groups(r) && rc >= 0; g++)
        rc = pq_read_row_group(r, g, &err);
    assert_int_equal(rc, PQ_ECRC);
    printf("flipped byte: %s\n", err.msg);
    pq_close(r);
    free(data);
}

/* Opens p[0..n) and reads every row group; returns the first error code
 * (0 if none) with its message in err. */
static int read_all(const char *p, size_t n, const char *name, wp_err *err)
{
    pq_reader *r = NULL;
    int rc = pq_open_mem(p, n, name, NULL, &r, err);
    if (rc != 0)
        return rc;
    int first = 0;
    for (int g = 0; g < pq_num_row_groups(r); g++) {
        wp_err e2 = {0};
        rc = pq_read_row_group(r, g, &e2);
        if (rc < 0 && first == 0) {
            first = rc;
            *err = e2;
        }
    }
    pq_close(r);
    return first;
}

static void assert_one_line_naming(const wp_err *err, const char *name)
{
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
    if (strstr(err->msg, name) == NULL)
        fail_msg("error does not name %s: %s", name, err->msg);
}

/* Damaged files: truncated, footer length past the file, no magic, a
 * corrupt page header, an unknown codec. */
static void test_malformed(void **state)
{
    const char *dir = pq_dir();
    if (dir == NULL)
        skip();
    char path[1100];
    size_t n;
    snprintf(path, sizeof path, "%s/alltypes_plain.parquet", dir);
    char *data = tl_slurp(path, &n);
    assert_non_null(data);
    char *c = malloc(n);
    assert_non_null(c);
    wp_err err = {0};

    assert_int_equal(read_all(data, n, "good.parquet", &err), 0);

    /* Truncated at every length: never a crash, always a clear error. */
    for (size_t k = 0; k < n; k++) {
        memset(&err, 0, sizeof err);
        int rc = read_all(data, k, "trunc.parquet", &err);
        assert_true(rc < 0);
        assert_one_line_naming(&err, "trunc.parquet");
    }

    /* Footer length past the start of the file. */
    memcpy(c, data, n);
    c[n - 8] = (char)0xff;
    c[n - 7] = (char)0xff;
    assert_int_equal(read_all(c, n, "flen.parquet", &err), PQ_EFORMAT);
    assert_one_line_naming(&err, "flen.parquet");
    assert_non_null(strstr(err.msg, "footer length"));

    /* No magic at the start. */
    memcpy(c, data, n);
    c[0] = 'X';
    assert_int_equal(read_all(c, n, "magic.parquet", &err), PQ_EFORMAT);
    assert_one_line_naming(&err, "magic.parquet");

    /* A corrupt page header: the first byte of the first column chunk. */
    memcpy(c, data, n);
    memset(c + 4, 0xff, 6);
    int rc = read_all(c, n, "page.parquet", &err);
    assert_int_equal(rc, PQ_EFORMAT);
    assert_one_line_naming(&err, "page.parquet");
    assert_non_null(strstr(err.msg, "row group 0"));
    assert_non_null(strstr(err.msg, "column id"));
    assert_non_null(strstr(err.msg, "page 0"));

    /* Every byte of the footer flipped in turn: errors or reads, no crash. */
    uint32_t flen =
        (uint8_t)data[n - 8] | (uint8_t)data[n - 7] << 8 | (uint32_t)(uint8_t)data[n - 6] << 16;
    for (size_t k = n - 8 - flen; k < n - 8; k++) {
        memcpy(c, data, n);
        c[k] ^= 0x5a;
        memset(&err, 0, sizeof err);
        rc = read_all(c, n, "flip.parquet", &err);
        if (rc != 0)
            assert_one_line_naming(&err, "flip.parquet");
    }
    free(c);
    free(data);
}

/* An unknown or unsupported codec in the column metadata is a clear error
 * naming the codec. Built with the writer so the codec field is known. */
static void test_unsupported_codec(void **state)
{
    char *tmp = tl_mkdtemp();
    char path[1100];
    snprintf(path, sizeof path, "%s/c.parquet", tmp);
    pq_column cols[] = {{"x", PQ_INT64, 0}};
    pq_write_opts o = {.codec = PQ_UNCOMPRESSED};
    pq_writer *w = NULL;
    wp_err err = {0};
    assert_int_equal(pq_writer_open(path, cols, 1, &o, &w, &err), 0);
    pq_value v = {.type = PQ_INT64, .i = 7};
    assert_int_equal(pq_writer_append(w, &v, &err), 0);
    assert_int_equal(pq_writer_close(w, &err), 0);
    size_t n;
    char *data = tl_slurp(path, &n);
    assert_non_null(data);
    /* ColumnMetaData field 4 (codec) follows field 3 (path list): find the
     * byte 0x15 0x00 (delta 1, i32, value 0) after the path "x". */
    char *p = NULL;
    for (size_t k = 0; k + 3 < n; k++)
        if (data[k] == 'x' && data[k + 1] == 0x15 && data[k + 2] == 0x00) {
            p = data + k + 2;
            break;
        }
    assert_non_null(p);
    *p = 0x06; /* zigzag 3: LZO */
    assert_int_equal(read_all(data, n, "lzo.parquet", &err), PQ_EUNSUPPORTED);
    assert_one_line_naming(&err, "lzo.parquet");
    assert_non_null(strstr(err.msg, "LZO"));
    *p = 0x14; /* zigzag 10: unknown */
    assert_int_equal(read_all(data, n, "unk.parquet", &err), PQ_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "codec"));
    free(data);
    tl_rmtree(tmp);
}

/* The files the independent reader refused: our decision for each. */
static void test_refused_files(void **state)
{
    const char *dir = pq_dir();
    if (dir == NULL)
        skip();
    char path[1100];
    pq_reader *r = NULL;
    wp_err err = {0};

    /* nation.dict-malformed: a dictionary page that runs past its chunk. */
    snprintf(path, sizeof path, "%s/nation.dict-malformed.parquet", dir);
    assert_int_equal(pq_open(path, NULL, &r, &err), 0);
    int rc = 0;
    for (int g = 0; g < pq_num_row_groups(r) && rc >= 0; g++)
        rc = pq_read_row_group(r, g, &err);
    assert_true(rc < 0);
    printf("nation.dict-malformed: %s\n", err.msg);
    assert_one_line_naming(&err, "nation.dict-malformed.parquet");
    assert_non_null(strstr(err.msg, "page"));
    pq_close(r);

    /* large_string_map.brotli: one MAP column (nested): skipped and named;
     * no flat column to read. */
    snprintf(path, sizeof path, "%s/large_string_map.brotli.parquet", dir);
    assert_int_equal(pq_open(path, NULL, &r, &err), 0);
    assert_int_equal(pq_num_columns(r), 0);
    assert_non_null(pq_skipped(r, 0));
    printf("large_string_map skipped: %s\n", pq_skipped(r, 0));
    assert_non_null(strstr(pq_skipped(r, 0), "map"));
    pq_close(r);

    /* dict-page-offset-zero: dictionary_page_offset 0 with the dictionary
     * page at data_page_offset: read (pages say what they are). */
    snprintf(path, sizeof path, "%s/dict-page-offset-zero.parquet", dir);
    rc = pq_open(path, NULL, &r, &err);
    if (rc != 0)
        fail_msg("dict-page-offset-zero: %s", err.msg);
    long nonnull = 0, rows = 0;
    pq_value v[8];
    assert_true(pq_num_columns(r) <= 8);
    for (int g = 0; g < pq_num_row_groups(r); g++) {
        if (pq_read_row_group(r, g, &err) < 0)
            fail_msg("dict-page-offset-zero: %s", err.msg);
        while (pq_next_row(r, v)) {
            rows++;
            nonnull += v[0].type != PQ_NULL;
        }
    }
    printf("dict-page-offset-zero: %ld rows, %ld non-null, column %s\n", rows, nonnull,
           pq_column_name(r, 0));
    assert_int_equal(rows, pq_num_rows(r));
    assert_true(rows > 0);
    pq_close(r);
}

/* --part I/N covers each row group exactly once. */
static void test_part(void **state)
{
    assert_true(pq_magic("PAR1xx", 6));
    assert_false(pq_magic("PAR", 3));
    assert_false(pq_magic("url\tcaption", 11));
    for (int n = 1; n <= 5; n++)
        for (int rg = 0; rg < 20; rg++) {
            int hits = 0;
            for (int i = 1; i <= n; i++)
                hits += pq_part_has(rg, i, n);
            assert_int_equal(hits, 1);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_values),
        cmocka_unit_test(test_corrupt_checksum),
        cmocka_unit_test(test_crc_detects_change),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unsupported_codec),
        cmocka_unit_test(test_refused_files),
        cmocka_unit_test(test_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
