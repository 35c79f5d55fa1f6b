/*
 * tests/unit/test_parquet_write.c: the Parquet writer (parquet/). Files
 * written with every writable codec are read back with our reader to the
 * same values (round trip); the UNCOMPRESSED and GZIP ones are also read by
 * a second, independent reader written in Python from the format
 * specification (tests/integration/pq_spec_reader.py, standard library
 * only), which must find the same values. Also: the dictionary is used for
 * repetitive strings and not for unique ones, and bad appends are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parquet/parquet.h"
#include "parquet/pq_int.h"
#include "tests/lib/testlib.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCOLS 8
#define NROWS 3000

static const pq_column cols[NCOLS] = {
    {"url", PQ_STRING, 0},  {"caption", PQ_STRING, 1}, {"tag", PQ_STRING, 1},
    {"width", PQ_INT64, 1}, {"height", PQ_INT64, 0},   {"similarity", PQ_DOUBLE, 1},
    {"nsfw", PQ_BOOL, 1},   {"blob", PQ_BYTES, 1},
};

/* Row i's values (deterministic); strings point into static buffers, so
 * one row at a time. */
static void make_row(int i, pq_value *v, char *url, char *cap, unsigned char *blob)
{
    static const char *const tags[] = {"cat", "dog", "bird", "UNLIKELY", "crème brûlée"};
    uint32_t h = (uint32_t)i * 2654435761u;
    memset(v, 0, NCOLS * sizeof *v);
    snprintf(url, 64, "https://img.example.org/%d/%08x.jpg", i, h);
    v[0] = (pq_value){.type = PQ_STRING, .s = url, .len = strlen(url)};
    if (h % 7 == 0) {
        v[1].type = PQ_NULL;
    } else {
        snprintf(cap, 128, "a photo number %d of something %u", i, h % 1000);
        v[1] = (pq_value){.type = PQ_STRING, .s = cap, .len = i % 11 == 0 ? 0 : strlen(cap)};
    }
    if (i % 5 == 3)
        v[2].type = PQ_NULL;
    else
        v[2] = (pq_value){.type = PQ_STRING, .s = tags[h % 5], .len = strlen(tags[h % 5])};
    v[3] = i % 13 == 0 ? (pq_value){.type = PQ_NULL}
                       : (pq_value){.type = PQ_INT64, .i = (int64_t)(h % 4000) - 7};
    v[4] = (pq_value){.type = PQ_INT64, .i = i == 1 ? INT64_MIN : i == 2 ? INT64_MAX : i * 3};
    double d = (double)(h % 100000) / 100000.0 - 0.25;
    if (i == 5)
        d = NAN;
    if (i == 6)
        d = -INFINITY;
    v[5] = i % 17 == 0 ? (pq_value){.type = PQ_NULL} : (pq_value){.type = PQ_DOUBLE, .d = d};
    v[6] =
        i % 3 == 0 ? (pq_value){.type = PQ_NULL} : (pq_value){.type = PQ_BOOL, .i = (h >> 3) & 1};
    for (int k = 0; k < 5; k++)
        blob[k] = (unsigned char)(h >> (k * 5));
    blob[0] = 0xff; /* not UTF-8 */
    v[7] = i % 4 == 0 ? (pq_value){.type = PQ_NULL}
                      : (pq_value){.type = PQ_BYTES, .s = (char *)blob, .len = 5};
}

static void write_file(const char *path, pq_codec codec, int64_t rg_rows, size_t page_bytes)
{
    pq_write_opts o = {.codec = codec, .row_group_rows = rg_rows, .page_bytes = page_bytes};
    pq_writer *w = NULL;
    wp_err err = {0};
    if (pq_writer_open(path, cols, NCOLS, &o, &w, &err) != 0)
        fail_msg("open: %s", err.msg);
    for (int i = 0; i < NROWS; i++) {
        pq_value v[NCOLS];
        char url[64], cap[128];
        unsigned char blob[8];
        make_row(i, v, url, cap, blob);
        if (pq_writer_append(w, v, &err) != 0)
            fail_msg("append %d: %s", i, err.msg);
    }
    if (pq_writer_close(w, &err) != 0)
        fail_msg("close: %s", err.msg);
    assert_true(!wp_file_exists(strcat(strcpy((char[1100]){0}, path), ".tmp")));
}

static int same_value(const pq_value *a, const pq_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case PQ_NULL:
        return 1;
    case PQ_BOOL:
    case PQ_INT64:
        return a->i == b->i;
    case PQ_DOUBLE:
        return (isnan(a->d) && isnan(b->d)) || memcmp(&a->d, &b->d, 8) == 0;
    default:
        return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
    }
}

/* Reads path with our reader and compares every value with make_row. */
static void read_back(const char *path, int want_rgs)
{
    pq_reader *r = NULL;
    wp_err err = {0};
    if (pq_open(path, NULL, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(pq_num_rows(r), NROWS);
    assert_int_equal(pq_num_columns(r), NCOLS);
    assert_int_equal(pq_num_row_groups(r), want_rgs);
    for (int k = 0; k < NCOLS; k++) {
        assert_string_equal(pq_column_name(r, k), cols[k].name);
        assert_int_equal(pq_column_type(r, k), cols[k].type);
        assert_int_equal(pq_column_nullable(r, k), cols[k].nullable);
    }
    int row = 0;
    pq_value got[NCOLS];
    for (int g = 0; g < pq_num_row_groups(r); g++) {
        if (pq_read_row_group(r, g, &err) < 0)
            fail_msg("%s", err.msg);
        while (pq_next_row(r, got)) {
            pq_value want[NCOLS];
            char url[64], cap[128];
            unsigned char blob[8];
            make_row(row, want, url, cap, blob);
            for (int k = 0; k < NCOLS; k++)
                if (!same_value(&want[k], &got[k]))
                    fail_msg("%s: row %d column %s differs", path, row, cols[k].name);
            row++;
        }
    }
    assert_int_equal(row, NROWS);
    pq_close(r);
}

static void test_round_trip_codecs(void **state)
{
    static const pq_codec codecs[] = {PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_GZIP, PQ_ZSTD};
    char *dir = tl_mkdtemp();
    char path[1100];
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        snprintf(path, sizeof path, "%s/rt%zu.parquet", dir, c);
        write_file(path, codecs[c], 1000, 0);
        read_back(path, 3);
        /* Small pages: many data pages per chunk. */
        write_file(path, codecs[c], 0, 512);
        read_back(path, 1);
    }
    tl_rmtree(dir);
}

/* Repetitive strings get a dictionary page; unique ones are PLAIN. Read
 * from the footer's column chunks. */
static void test_dictionary_choice(void **state)
{
    char *dir = tl_mkdtemp();
    char path[1100];
    snprintf(path, sizeof path, "%s/d.parquet", dir);
    write_file(path, PQ_SNAPPY, 0, 0);
    size_t n;
    char *data = tl_slurp(path, &n);
    assert_non_null(data);
    uint32_t flen = (uint8_t)data[n - 8] | (uint32_t)(uint8_t)data[n - 7] << 8 |
                    (uint32_t)(uint8_t)data[n - 6] << 16;
    wp_arena *a = wp_arena_new(4096);
    pq_meta m;
    assert_int_equal(pq_meta_decode((uint8_t *)data + n - 8 - flen, flen, a, &m, NULL), 0);
    assert_int_equal(m.nrg, 1);
    assert_true(m.rgs[0].cols[0].dict_page_offset < 0); /* url: unique */
    assert_true(m.rgs[0].cols[1].dict_page_offset < 0); /* caption: unique */
    assert_true(m.rgs[0].cols[2].dict_page_offset > 0); /* tag: 5 values */
    assert_int_equal(m.rgs[0].cols[2].codec, PQ_SNAPPY);
    wp_arena_free(a);
    free(data);

    /* no_dictionary: PLAIN everywhere, same values. */
    pq_write_opts o = {.codec = PQ_ZSTD, .no_dictionary = 1};
    pq_writer *w = NULL;
    assert_int_equal(pq_writer_open(path, cols, NCOLS, &o, &w, NULL), 0);
    pq_value v[NCOLS];
    char url[64], cap[128];
    unsigned char blob[8];
    make_row(1, v, url, cap, blob);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pq_writer_append(w, v, NULL), 0);
    assert_int_equal(pq_writer_close(w, NULL), 0);
    data = tl_slurp(path, &n);
    flen = (uint8_t)data[n - 8] | (uint32_t)(uint8_t)data[n - 7] << 8;
    a = wp_arena_new(4096);
    assert_int_equal(pq_meta_decode((uint8_t *)data + n - 8 - flen, flen, a, &m, NULL), 0);
    for (int k = 0; k < NCOLS; k++)
        assert_true(m.rgs[0].cols[k].dict_page_offset < 0);
    wp_arena_free(a);
    free(data);
    tl_rmtree(dir);
}

/* Runs the independent Python reader on path; returns its JSON or NULL. */
static json_t *spec_read(const char *path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "python3 tests/integration/pq_spec_reader.py '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t je;
    json_t *j = json_loadf(p, 0, &je);
    int rc = pclose(p);
    if (j == NULL || rc != 0)
        fail_msg("pq_spec_reader failed on %s (%s)", path, je.text);
    return j;
}

/* A value of make_row as the Python reader prints it. */
static void check_json(const char *file, int row, int k, const pq_value *want, json_t *got)
{
    int ok;
    switch (want->type) {
    case PQ_NULL:
        ok = json_is_null(got);
        break;
    case PQ_BOOL:
        ok = json_is_boolean(got) && json_is_true(got) == (want->i != 0);
        break;
    case PQ_INT64:
        ok = json_is_integer(got) && json_integer_value(got) == want->i;
        break;
    case PQ_DOUBLE:
        if (isnan(want->d))
            ok = json_is_string(got) && strcmp(json_string_value(got), "NaN") == 0;
        else if (isinf(want->d))
            ok = json_is_string(got) &&
                 strcmp(json_string_value(got), want->d > 0 ? "Infinity" : "-Infinity") == 0;
        else
            ok = json_is_number(got) && json_number_value(got) == want->d;
        break;
    case PQ_STRING:
        ok = json_is_string(got) && json_string_length(got) == want->len &&
             memcmp(json_string_value(got), want->s, want->len) == 0;
        break;
    default: {
        char hex[64];
        for (size_t i = 0; i < want->len; i++)
            sprintf(hex + 2 * i, "%02x", (unsigned char)want->s[i]);
        hex[2 * want->len] = '\0';
        json_t *h = json_object_get(got, "hex");
        ok = json_is_string(h) && strcmp(json_string_value(h), hex) == 0;
    }
    }
    if (!ok)
        fail_msg("%s: row %d column %s: the independent reader differs", file, row, cols[k].name);
}

static void test_independent_reader(void **state)
{
    if (system("python3 -c 1 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: python3 absent: no independent check\n");
        skip();
    }
    static const pq_codec codecs[] = {PQ_UNCOMPRESSED, PQ_GZIP};
    char *dir = tl_mkdtemp();
    char path[1100];
    for (size_t c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/ind%zu.parquet", dir, c);
        write_file(path, codecs[c], 1000, 2048);
        json_t *j = spec_read(path);
        assert_int_equal(json_integer_value(json_object_get(j, "num_rows")), NROWS);
        json_t *names = json_object_get(j, "columns");
        assert_int_equal(json_array_size(names), NCOLS);
        for (int k = 0; k < NCOLS; k++)
            assert_string_equal(json_string_value(json_array_get(names, (size_t)k)), cols[k].name);
        json_t *rows = json_object_get(j, "rows");
        assert_int_equal(json_array_size(rows), NROWS);
        for (int i = 0; i < NROWS; i++) {
            pq_value want[NCOLS];
            char url[64], cap[128];
            unsigned char blob[8];
            make_row(i, want, url, cap, blob);
            json_t *row = json_array_get(rows, (size_t)i);
            for (int k = 0; k < NCOLS; k++)
                check_json(path, i, k, &want[k], json_array_get(row, (size_t)k));
        }
        json_decref(j);
    }
    tl_rmtree(dir);
}

static void test_bad_appends(void **state)
{
    char *dir = tl_mkdtemp();
    char path[1100];
    snprintf(path, sizeof path, "%s/bad.parquet", dir);
    pq_writer *w = NULL;
    wp_err err = {0};
    pq_column dup[2] = {{"a", PQ_INT64, 0}, {"a", PQ_DOUBLE, 0}};
    assert_int_equal(pq_writer_open(path, dup, 2, NULL, &w, &err), WP_EINVAL);
    pq_write_opts o = {.codec = PQ_BROTLI};
    assert_int_equal(pq_writer_open(path, cols, NCOLS, &o, &w, &err), WP_EINVAL);

    assert_int_equal(pq_writer_open(path, cols, NCOLS, NULL, &w, &err), 0);
    pq_value v[NCOLS];
    char url[64], cap[128];
    unsigned char blob[8];
    make_row(1, v, url, cap, blob);
    v[4].type = PQ_NULL; /* height is required */
    assert_int_equal(pq_writer_append(w, v, &err), PQ_ETYPE);
    assert_non_null(strstr(err.msg, "height"));
    pq_writer_free(w); /* the temporary file goes too */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(wp_file_exists(tmp));
    assert_false(wp_file_exists(path));

    assert_int_equal(pq_writer_open(path, cols, NCOLS, NULL, &w, &err), 0);
    make_row(1, v, url, cap, blob);
    v[3] = (pq_value){.type = PQ_DOUBLE, .d = 1.5}; /* width is INT64 */
    assert_int_equal(pq_writer_append(w, v, &err), PQ_ETYPE);
    assert_int_not_equal(pq_writer_close(w, &err), 0);
    assert_false(wp_file_exists(path));

    /* An empty file is valid: no row groups, no rows. */
    assert_int_equal(pq_writer_open(path, cols, NCOLS, NULL, &w, &err), 0);
    assert_int_equal(pq_writer_close(w, &err), 0);
    pq_reader *r = NULL;
    assert_int_equal(pq_open(path, NULL, &r, &err), 0);
    assert_int_equal(pq_num_rows(r), 0);
    assert_int_equal(pq_num_row_groups(r), 0);
    pq_close(r);
    tl_rmtree(dir);
}

/* The RLE / bit-packed hybrid and delta decoders on hand-made input. */
static void test_decoders(void **state)
{
    const char *why = NULL;
    uint32_t out[20];
    /* RLE run of 5 x 3 (bw 2), then one bit-packed group 0..7 at bw 3. */
    const uint8_t rle[] = {0x0a, 0x03, 0x03, 0x88, 0xc6, 0xfa};
    assert_int_equal(pq_rle_decode(rle, sizeof rle, 3, out, 13, &why), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i], 3);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[5 + i], i);
    assert_int_equal(pq_rle_decode(rle, 3, 3, out, 13, &why), -1); /* truncated */
    assert_non_null(why);
    /* DELTA_BINARY_PACKED of 1..5: block 128, 4 miniblocks, 5 values,
     * first 1, min delta 1, bit widths 0. */
    const uint8_t dbp[] = {0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00};
    int64_t v[8];
    size_t cnt, used;
    assert_int_equal(pq_delta_decode(dbp, sizeof dbp, 0, v, 8, &cnt, &used, &why), 0);
    assert_int_equal(cnt, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(v[i], i + 1);
    assert_int_equal(used, sizeof dbp);
    assert_int_equal(pq_delta_decode(dbp, sizeof dbp, 0, v, 4, &cnt, &used, &why), -1);
}

/* pq_stream_next over parts: every row exactly once across the parts, in
 * file order within each, with its file row index; selected columns only,
 * in the order asked. */
static void test_stream_parts(void **state)
{
    char *dir = tl_mkdtemp();
    char path[1100];
    snprintf(path, sizeof path, "%s/s.parquet", dir);
    write_file(path, PQ_SNAPPY, 256, 0); /* 12 row groups */
    int seen[NROWS] = {0};
    for (int part = 1; part <= 3; part++) {
        pq_reader *r = NULL;
        wp_err err = {0};
        assert_int_equal(pq_open(path, NULL, &r, &err), 0);
        int c[2];
        c[0] = pq_find_column(r, "width", &err);
        c[1] = pq_find_column(r, "url", &err);
        assert_int_equal(pq_find_column(r, "nope", &err), PQ_ENOCOL);
        assert_int_equal(pq_select(r, c, 2), 0);
        assert_int_equal(pq_row_index(r), -1);
        pq_value v[2];
        int64_t prev = -1;
        int rc;
        while ((rc = pq_stream_next(r, part, 3, v, &err)) == 1) {
            int64_t i = pq_row_index(r);
            assert_true(i > prev && i < NROWS);
            assert_int_equal((i / 256) % 3, part - 1);
            prev = i;
            seen[i]++;
            pq_value want[NCOLS];
            char url[64], cap[128];
            unsigned char blob[8];
            make_row((int)i, want, url, cap, blob);
            assert_true(same_value(&want[3], &v[0]));
            assert_true(same_value(&want[0], &v[1]));
        }
        assert_int_equal(rc, 0);
        assert_int_equal(pq_stream_next(r, part, 3, v, &err), 0);
        pq_close(r);
    }
    for (int i = 0; i < NROWS; i++)
        assert_int_equal(seen[i], 1);

    /* The memory bound: a row group over max_rg_rows is refused, named. */
    pq_read_opts lim = {.max_rg_rows = 100};
    pq_reader *r = NULL;
    wp_err err = {0};
    assert_int_equal(pq_open(path, &lim, &r, &err), 0);
    assert_int_equal(pq_read_row_group(r, 0, &err), WP_ELIMIT);
    assert_non_null(strstr(err.msg, "row group 0 has 256 rows"));
    pq_close(r);
    tl_rmtree(dir);
}

/* Values as JSON for pairs.extra: types kept, strings escaped. */
static void test_value_json(void **state)
{
    wp_buf b = {0};
    wp_json j;
    pq_value v[] = {
        {.type = PQ_NULL},
        {.type = PQ_BOOL, .i = 1},
        {.type = PQ_INT64, .i = -9007199254740993LL},
        {.type = PQ_DOUBLE, .d = 0.1},
        {.type = PQ_DOUBLE, .d = 3.0},
        {.type = PQ_DOUBLE, .d = NAN},
        {.type = PQ_STRING, .s = "a\"b\\\n\xff", .len = 6},
        {.type = PQ_BYTES, .s = "ok", .len = 2},
        {.type = PQ_BYTES, .s = "\xff\x00\x01", .len = 3},
    };
    wp_json_init(&j, &b);
    wp_json_arr_begin(&j, NULL);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(pq_value_json(&j, NULL, &v[i]), 0);
    wp_json_arr_end(&j);
    assert_int_equal(wp_json_finish(&j), 0);
    /* 0.1 in its shortest exact form, 3.0 still a real; a control character escaped as
     * jansson writes it (\n), invalid UTF-8 as U+FFFD. */
    assert_string_equal(b.data, "[null,true,-9007199254740993,0.1,3.0,null,"
                                "\"a\\\"b\\\\\\n\xef\xbf\xbd\",\"ok\",{\"base64\":\"/wAB\"}]");
    /* doubles: every one reads back (strtod) as the same bits; short
     * decimals stay short; zeros keep their sign */
    static const struct {
        double d;
        const char *want;
    } shortv[] = {{0.28, "0.28"},           {-2.5, "-2.5"}, {3.0, "3.0"}, {1e-5, "0.00001"},
                  {123456.75, "123456.75"}, {-0.0, "-0.0"}, {0.0, "0.0"}};
    for (size_t k = 0; k < sizeof shortv / sizeof shortv[0]; k++) {
        pq_value dv = {.type = PQ_DOUBLE, .d = shortv[k].d};
        wp_buf_reset(&b);
        wp_json_init(&j, &b);
        assert_int_equal(pq_value_json(&j, NULL, &dv), 0);
        assert_string_equal(b.data, shortv[k].want);
    }
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 200000; k++) {
        double d;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (k % 2 == 0) { /* any bit pattern */
            memcpy(&d, &x, sizeof d);
        } else { /* a short decimal in the fast path's range, or an ulp beside one */
            d = (double)(x % 100000000) / 1e4 * (x & 1 ? 1 : -1);
            if (x & 2)
                d = nextafter(d, 1e300);
        }
        if (!isfinite(d))
            continue;
        pq_value dv = {.type = PQ_DOUBLE, .d = d};
        wp_buf_reset(&b);
        wp_json_init(&j, &b);
        assert_int_equal(pq_value_json(&j, NULL, &dv), 0);
        double back = strtod(b.data, NULL);
        if (memcmp(&back, &d, sizeof d) != 0)
            fail_msg("%.17g written as %s", d, b.data);
    }
    wp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_codecs),  cmocka_unit_test(test_dictionary_choice),
        cmocka_unit_test(test_independent_reader), cmocka_unit_test(test_bad_appends),
        cmocka_unit_test(test_decoders),           cmocka_unit_test(test_value_json),
        cmocka_unit_test(test_stream_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
