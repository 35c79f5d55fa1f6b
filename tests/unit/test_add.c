/*
 * tests/unit/test_add.c: witpipe add's readers and import: CSV quoting
 * per RFC 4180 (edge cases and broken quoting), TSV, JSONL, compressed
 * inputs made here with libarchive's writer, truncated streams, over-long
 * lines, bad rows with file:line, dedup of exact duplicates, and local
 * image folders (--files) with format and size from the header; the stage
 * entry point add_run_lists as one catalog run, failing on an unreadable file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/wp.h"
#include "add/add.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static const char *path_in(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static const char *write_file(const char *name, const void *data, size_t n)
{
    const char *p = path_in(name);
    assert_int_equal(tl_write(p, data, n), 0);
    return p;
}

/* Writes data compressed with the named libarchive filter ("gzip", "zstd",
 * "xz", "bzip2"), as a raw stream (no archive format around it). */
static const char *write_compressed(const char *name, const char *filter, const char *data,
                                    size_t n)
{
    const char *p = path_in(name);
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    assert_non_null(a);
    assert_int_equal(archive_write_add_filter_by_name(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, p), ARCHIVE_OK);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "data");
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, data, n), (la_ssize_t)n);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    archive_entry_free(e);
    return p;
}

typedef struct got {
    int n;
    int64_t line[64];
    int bad[64];
    char url[64][128];
    char text[64][128];
    char extra[64][128];
} got;

/* Reads every record of r into g and closes r; returns the final status. */
static int drain(add_reader *r, got *g)
{
    add_record rec;
    wp_err err = {0};
    int rc;
    while ((rc = add_reader_next(r, &rec, &err)) == 1) {
        assert_true(g->n < 64);
        g->line[g->n] = rec.line;
        g->bad[g->n] = rec.bad;
        if (!rec.bad) {
            snprintf(g->url[g->n], 128, "%.*s", (int)rec.url_len, rec.url);
            snprintf(g->text[g->n], 128, "%.*s", (int)rec.text_len, rec.text);
            snprintf(g->extra[g->n], 128, "%s", rec.extra_json ? rec.extra_json : "");
        }
        g->n++;
    }
    add_reader_close(r);
    return rc;
}

/* Reads every record of path; returns the final status (0 or error). */
static int read_all(const char *path, const add_opts *o, got *g)
{
    add_reader *r = NULL;
    wp_err err = {0};
    int rc = add_reader_open(path, o, &r, &err);
    memset(g, 0, sizeof *g);
    if (rc != 0)
        return rc;
    return drain(r, g);
}

/* The same for a list in memory (add_reader_open_mem). */
static int read_all_mem(const void *data, size_t n, const char *name, const add_opts *o, got *g)
{
    add_reader *r = NULL;
    wp_err err = {0};
    int rc = add_reader_open_mem(data, n, name, o, &r, &err);
    memset(g, 0, sizeof *g);
    if (rc != 0)
        return rc;
    return drain(r, g);
}

static void test_format_from_name(void **state)
{
    assert_int_equal(add_format_from_name("a/b.tsv"), ADD_FMT_TSV);
    assert_int_equal(add_format_from_name("x.TSV.GZ"), ADD_FMT_TSV);
    assert_int_equal(add_format_from_name("x.csv.zst"), ADD_FMT_CSV);
    assert_int_equal(add_format_from_name("x.jsonl.xz"), ADD_FMT_JSONL);
    assert_int_equal(add_format_from_name("x.parquet"), ADD_FMT_AUTO);
    assert_int_equal(add_format_from_name("x.gz"), ADD_FMT_AUTO);
    assert_int_equal(add_format_parse("csv"), ADD_FMT_CSV);
    assert_int_equal(add_format_parse("xml"), -1);
}

static void test_csv_rfc4180_quoting_edge_cases(void **state)
{
    /* Quoted comma, doubled quotes, CRLF inside a quoted field, an empty
     * quoted field, CRLF record ends, a last record without a line break. */
    static const char csv[] = "url,caption,note\r\n"
                              "http://h/1.jpg,\"a, b\",x\r\n"
                              "http://h/2.jpg,\"say \"\"hi\"\"\",\"\"\r\n"
                              "http://h/3.jpg,\"two\r\nlines\",y\r\n"
                              "\"http://h/4.jpg\",plain text,\r\n"
                              "http://h/5.jpg,last,z";
    add_opts o = {0};
    got g;
    o.keep_cols[0] = "note";
    o.nkeep = 1;
    assert_int_equal(read_all(write_file("q.csv", csv, sizeof csv - 1), &o, &g), 0);
    assert_int_equal(g.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.bad[i], ADD_BAD_NONE);
    assert_string_equal(g.text[0], "a, b");
    assert_string_equal(g.text[1], "say \"hi\"");
    assert_string_equal(g.extra[1], "{\"note\":\"\"}");
    assert_string_equal(g.text[2], "two\r\nlines");
    assert_string_equal(g.extra[2], "{\"note\":\"y\"}");
    assert_string_equal(g.url[3], "http://h/4.jpg");
    assert_string_equal(g.text[4], "last");
    /* Line numbers: the multi-line record moves the next one down. */
    assert_int_equal(g.line[0], 2);
    assert_int_equal(g.line[2], 4);
    assert_int_equal(g.line[3], 6);
    assert_int_equal(g.line[4], 7);
}

static void test_csv_broken_quoting_costs_one_line(void **state)
{
    static const char csv[] = "url,caption\n"
                              "http://h/1.jpg,ok\n"
                              "http://h/2.jpg,stray\"quote\n"   /* rule 5 */
                              "http://h/3.jpg,\"closed\"junk\n" /* text after closing quote */
                              "http://h/4.jpg,fine\n"
                              "http://h/5.jpg,\"never closed\n" /* runs to EOF */
                              "http://h/6.jpg,after\n";
    got g;
    add_opts o = {0};
    assert_int_equal(read_all(write_file("b.csv", csv, sizeof csv - 1), &o, &g), 0);
    assert_int_equal(g.n, 6);
    assert_int_equal(g.bad[0], ADD_BAD_NONE);
    assert_int_equal(g.bad[1], ADD_BAD_QUOTING);
    assert_int_equal(g.line[1], 3);
    assert_int_equal(g.bad[2], ADD_BAD_QUOTING);
    assert_int_equal(g.line[2], 4);
    assert_int_equal(g.bad[3], ADD_BAD_NONE);
    assert_string_equal(g.text[3], "fine");
    assert_int_equal(g.bad[4], ADD_BAD_QUOTING);
    assert_int_equal(g.line[4], 6);
    /* Resynchronised on the line after the unterminated quote. */
    assert_int_equal(g.bad[5], ADD_BAD_NONE);
    assert_int_equal(g.line[5], 7);
    assert_string_equal(g.text[5], "after");
}

static void test_tsv_bad_rows_and_lines(void **state)
{
    static const char tsv[] = "\xEF\xBB\xBFurl\tcaption\n"
                              "http://h/1.jpg\tone\r\n"
                              "\n"
                              "\tno url\n"
                              "ftp://h/x\tscheme\n"
                              "http://h/ sp.jpg\tspace\n"
                              "http://h/2.jpg\tbad \xC3\x28 utf8\n"
                              "http://h/3.jpg\ttoo\tmany\n"
                              "http://h/4.jpg\t\n"
                              "HTTPS://h/5.jpg\tcaps scheme\n";
    got g;
    add_opts o = {0};
    assert_int_equal(read_all(write_file("t.tsv", tsv, sizeof tsv - 1), &o, &g), 0);
    assert_int_equal(g.n, 8);
    assert_int_equal(g.bad[0], ADD_BAD_NONE);
    assert_string_equal(g.text[0], "one"); /* CR stripped */
    assert_int_equal(g.line[0], 2);
    assert_int_equal(g.bad[1], ADD_BAD_NO_URL);
    assert_int_equal(g.line[1], 4); /* the blank line counted, not reported */
    assert_int_equal(g.bad[2], ADD_BAD_URL);
    assert_int_equal(g.bad[3], ADD_BAD_URL);
    assert_int_equal(g.bad[4], ADD_BAD_UTF8);
    assert_int_equal(g.line[4], 7);
    assert_int_equal(g.bad[5], ADD_BAD_FIELDS);
    assert_int_equal(g.bad[6], ADD_BAD_NONE);
    assert_string_equal(g.text[6], "");
    assert_int_equal(g.bad[7], ADD_BAD_NONE);
}

static void test_tsv_nul_byte_is_bad(void **state)
{
    static const char tsv[] = "url\tcaption\nhttp://h/1.jpg\tnul\0here\nhttp://h/2.jpg\tok\n";
    got g;
    add_opts o = {0};
    assert_int_equal(read_all(write_file("n.tsv", tsv, sizeof tsv - 1), &o, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.bad[0], ADD_BAD_UTF8);
    assert_int_equal(g.bad[1], ADD_BAD_NONE);
}

static void test_jsonl_records_and_kept_values(void **state)
{
    static const char jl[] =
        "{\"url\":\"http://h/1.jpg\",\"caption\":\"a\\tb\",\"w\":3,\"m\":{\"k\":[1]}}\n"
        "{\"url\":\"http://h/2.jpg\",\"caption\":null}\n"
        "{\"url\":7}\n"
        "[1,2]\n"
        "{\"url\":\"http://h/3.jpg\"} trailing\n"
        "{\"caption\":\"no url\"}\n";
    got g;
    add_opts o = {0};
    o.keep_cols[0] = "w";
    o.keep_cols[1] = "m";
    o.nkeep = 2;
    assert_int_equal(read_all(write_file("j.jsonl", jl, sizeof jl - 1), &o, &g), 0);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.text[0], "a\tb");
    assert_string_equal(g.extra[0], "{\"w\":3,\"m\":{\"k\":[1]}}");
    assert_int_equal(g.bad[1], ADD_BAD_NONE);
    assert_string_equal(g.text[1], "");
    assert_string_equal(g.extra[1], "{}");
    assert_int_equal(g.bad[2], ADD_BAD_JSON);
    assert_int_equal(g.bad[3], ADD_BAD_JSON);
    assert_int_equal(g.bad[4], ADD_BAD_JSON);
    assert_int_equal(g.bad[5], ADD_BAD_NO_URL);
    assert_int_equal(g.line[5], 6);
}

static void test_custom_columns_and_missing_column(void **state)
{
    static const char tsv[] = "link\ttitle\nhttp://h/1.jpg\tt1\n";
    const char *p = write_file("c.tsv", tsv, sizeof tsv - 1);
    add_opts o = {0};
    add_reader *r = NULL;
    wp_err err = {0};
    got g;
    assert_int_equal(add_reader_open(p, &o, &r, &err), ADD_ECOLUMN);
    assert_non_null(strstr(err.msg, "no column 'url'"));
    assert_non_null(strstr(err.msg, "link, title"));
    o.url_col = "link";
    o.text_col = "title";
    assert_int_equal(read_all(p, &o, &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text[0], "t1");
}

static void test_compressed_inputs(void **state)
{
    static const char tsv[] = "url\tcaption\nhttp://h/1.jpg\tone\nhttp://h/2.jpg\ttwo\n";
    static const char *const filters[] = {"gzip", "zstd", "xz", "bzip2"};
    static const char *const names[] = {"z.tsv.gz", "z.tsv.zst", "z.tsv.xz", "z.tsv.bz2"};
    for (int i = 0; i < 4; i++) {
        got g;
        add_opts o = {0};
        const char *p = write_compressed(names[i], filters[i], tsv, sizeof tsv - 1);
        assert_int_equal(read_all(p, &o, &g), 0);
        assert_int_equal(g.n, 2);
        assert_string_equal(g.url[1], "http://h/2.jpg");
        assert_string_equal(g.text[1], "two");
    }
}

/* A list in memory reads exactly as the same bytes in a file: plain CSV
 * with quoting, gzip-compressed TSV, an empty buffer; the name gives the
 * format. */
static void test_memory_reader_matches_file_reader(void **state)
{
    static const char csv[] = "url,caption\r\n"
                              "http://h/1.jpg,\"a, \"\"b\"\"\"\r\n"
                              "http://h/2.jpg,\"two\r\nlines\"\r\n"
                              "ftp://h/3.jpg,bad\r\n";
    static const char tsv[] = "url\tcaption\nhttp://h/1.jpg\tone\nhttp://h/2.jpg\ttwo\n";
    add_opts o = {0};
    got gf, gm;
    size_t n = 0;

    assert_int_equal(read_all(write_file("m.csv", csv, sizeof csv - 1), &o, &gf), 0);
    assert_int_equal(read_all_mem(csv, sizeof csv - 1, "m.csv", &o, &gm), 0);
    assert_int_equal(gm.n, 3);
    assert_memory_equal(&gf, &gm, sizeof gf);
    assert_string_equal(gm.text[0], "a, \"b\"");
    assert_int_equal(gm.line[2], 5);
    assert_int_equal(gm.bad[2], ADD_BAD_URL);

    char *gz = tl_slurp(write_compressed("m.tsv.gz", "gzip", tsv, sizeof tsv - 1), &n);
    assert_non_null(gz);
    assert_int_equal(read_all_mem(gz, n, "m.tsv.gz", &o, &gm), 0);
    free(gz);
    assert_int_equal(gm.n, 2);
    assert_string_equal(gm.url[1], "http://h/2.jpg");
    assert_string_equal(gm.text[1], "two");

    assert_int_equal(read_all_mem("", 0, "e.jsonl", &o, &gm), 0);
    assert_int_equal(gm.n, 0);
    assert_int_equal(read_all_mem(tsv, sizeof tsv - 1, "noext", &o, &gm), WP_EFORMAT);
}

static void test_truncated_gzip_keeps_rows_before(void **state)
{
    wp_buf b = {0};
    size_t n = 0;
    char *gz;
    got g;
    add_opts o = {0};
    const char *p;
    wp_buf_puts(&b, "url\tcaption\n");
    for (int i = 0; i < 20000; i++)
        wp_buf_printf(&b, "http://h/%d.jpg\tcaption %d %x\n", i, i, i * 2654435761u);
    p = write_compressed("big.tsv.gz", "gzip", b.data, b.len);
    gz = tl_slurp(p, &n);
    assert_non_null(gz);
    p = write_file("cut.tsv.gz", gz, n / 2);
    free(gz);
    {
        add_reader *r = NULL;
        add_record rec;
        wp_err err = {0};
        int rc, good = 0, cut = 0;
        int64_t last = 0;
        assert_int_equal(add_reader_open(p, &o, &r, &err), 0);
        while ((rc = add_reader_next(r, &rec, &err)) == 1) {
            if (rec.bad == ADD_BAD_NONE) {
                good++;
                assert_int_equal(rec.line, last + 1 + (good == 1));
                last = rec.line;
            } else {
                assert_int_equal(rec.bad, ADD_BAD_TRUNCATED);
                cut++;
            }
        }
        assert_int_equal(rc, ADD_ESTREAM);
        assert_non_null(strstr(err.msg, "cut.tsv.gz"));
        assert_true(good > 1000 && good < 20000);
        assert_true(cut <= 1);
        add_reader_close(r);
    }
    (void)g;
    wp_buf_free(&b);
}

static void test_overlong_line_skipped_without_buffering(void **state)
{
    const size_t big = 3 * (size_t)ADD_RECORD_MAX;
    char *data = malloc(big + 200);
    size_t n = 0;
    got g;
    add_opts o = {0};
    assert_non_null(data);
    n += (size_t)sprintf(data + n, "url\tcaption\nhttp://h/1.jpg\tbefore\nhttp://h/2.jpg\t");
    memset(data + n, 'a', big);
    n += big;
    n += (size_t)sprintf(data + n, "\nhttp://h/3.jpg\tafter\n");
    assert_int_equal(read_all(write_file("long.tsv", data, n), &o, &g), 0);
    free(data);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.bad[0], ADD_BAD_NONE);
    assert_int_equal(g.bad[1], ADD_BAD_TOO_LONG);
    assert_int_equal(g.line[1], 3);
    assert_int_equal(g.bad[2], ADD_BAD_NONE);
    assert_int_equal(g.line[2], 4);
    assert_string_equal(g.text[2], "after");
}

static void test_long_caption_is_bad(void **state)
{
    size_t cap = ADD_TEXT_MAX + 10, n = 0;
    char *data = malloc(cap + 100);
    got g;
    add_opts o = {0};
    n += (size_t)sprintf(data, "url\tcaption\nhttp://h/1.jpg\t");
    memset(data + n, 'c', cap);
    n += cap;
    data[n++] = '\n';
    assert_int_equal(read_all(write_file("lc.tsv", data, n), &o, &g), 0);
    free(data);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.bad[0], ADD_BAD_TOO_LONG);
}

static void test_empty_file_has_no_records(void **state)
{
    got g;
    add_opts o = {0};
    assert_int_equal(read_all(write_file("e.tsv", "", 0), &o, &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(read_all(write_file("e.csv", "", 0), &o, &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(read_all(write_file("e.jsonl", "", 0), &o, &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(read_all(write_compressed("e.tsv.gz", "gzip", "", 0), &o, &g), 0);
    assert_int_equal(g.n, 0);
}

static void test_unknown_format_and_missing_file(void **state)
{
    got g;
    add_opts o = {0};
    assert_int_equal(read_all(write_file("x.dat", "a", 1), &o, &g), WP_EFORMAT);
    assert_int_equal(read_all(path_in("missing.tsv"), &o, &g), WP_ENOENT);
}

/* ---- into the catalog ----------------------------------------------------- */

struct events {
    int n;
    char msg[16][256];
};

static void on_event(void *ud, wp_level level, const char *kind, const char *msg)
{
    struct events *e = ud;
    if (strcmp(kind, "bad_row") == 0 && e->n < 16)
        snprintf(e->msg[e->n++], 256, "%s", msg);
}

static void test_list_into_catalog_dedups_and_reports(void **state)
{
    static const char tsv[] = "url\tcaption\n"
                              "http://h/1.jpg\tcat\n"
                              "http://h/1.jpg\tcat\n"    /* exact duplicate */
                              "http://h/1.jpg\tkitten\n" /* same image, new caption */
                              "\tno url\n"
                              "http://h/2.jpg\t\n";
    const char *p = write_file("l.tsv", tsv, sizeof tsv - 1);
    char corpus[300];
    struct events ev = {0};
    wp_reporter rep = {NULL, on_event, &ev};
    add_stats st;
    add_opts o = {0};
    wp_err err = {0};
    cat *c = NULL;

    snprintf(corpus, sizeof corpus, "%s/corpus", dir);
    memset(&st, 0, sizeof st);
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    o.batch_rows = 2; /* several transactions */
    assert_int_equal(add_list(c, p, &o, NULL, &rep, &st, &err), 0);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.bad, 1);
    assert_int_equal(st.bad_by[ADD_BAD_NO_URL], 1);
    assert_int_equal(st.empty_text, 1);
    /* A second pass adds nothing. */
    assert_int_equal(add_list(c, p, &o, NULL, &rep, &st, &err), 0);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.duplicates, 5);
    cat_close(c);
    assert_int_equal(ev.n, 2);
    assert_non_null(strstr(ev.msg[0], "l.tsv:5: no_url"));
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs"), 3);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images"), 2);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE origin LIKE '%l.tsv:4'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM sources WHERE kind = 'list'"), 1);
}

struct errors {
    int n;
    char msg[4][256];
};

static void on_error_event(void *ud, wp_level level, const char *kind, const char *msg)
{
    struct errors *e = ud;
    if (level == WP_LOG_ERROR && strcmp(kind, "error") == 0 && e->n < 4)
        snprintf(e->msg[e->n++], 256, "%s", msg);
}

static void test_run_lists_is_one_run_and_fails_on_an_unreadable_file(void **state)
{
    static const char tsv[] = "url\tcaption\nhttp://h/1.jpg\tcat\nhttp://h/2.jpg\tdog\n";
    char missing[300], corpus[300];
    char *paths[3];
    struct errors ev = {0};
    wp_reporter rep = {NULL, on_error_event, &ev};
    add_stats st;
    add_opts o;
    wp_err err = {0};
    cat *c = NULL;

    snprintf(missing, sizeof missing, "%s/no-such.tsv", dir);
    snprintf(corpus, sizeof corpus, "%s/runs", dir);
    paths[0] = (char *)write_file("a.tsv", tsv, sizeof tsv - 1);
    paths[1] = missing;
    paths[2] = paths[0]; /* read again: all duplicates */
    add_opts_init(&o);
    assert_string_equal(o.url_col, "url");
    assert_string_equal(o.text_col, "caption");
    assert_int_equal(o.batch_rows, ADD_BATCH_ROWS);
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    /* The missing file is reported, the others are read, the run fails. */
    assert_int_equal(add_run_lists(c, paths, 3, &o, &rep, &st, &err), ADD_EINPUT);
    assert_non_null(strstr(err.msg, "1 of 3"));
    assert_int_equal(ev.n, 1);
    assert_non_null(strstr(ev.msg[0], "no-such.tsv"));
    assert_int_equal(st.files, 2);
    assert_int_equal(st.files_failed, 1);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.duplicates, 2);
    /* All good inputs: done. */
    assert_int_equal(add_run_lists(c, paths, 1, &o, &rep, &st, &err), 0);
    cat_close(c);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM runs WHERE stage = 'add'"), 2);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM runs WHERE status = 'failed' AND "
                                      "error LIKE '%could not be read%'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT json_extract(counts, '$.files_failed') FROM runs "
                                      "ORDER BY id LIMIT 1"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM runs WHERE status = 'done'"), 1);
    /* Every pair points at the run that added it. */
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE run_id = "
                                      "(SELECT min(id) FROM runs)"),
                     2);
}

static void test_files_dir_uses_headers_not_names(void **state)
{
    char corpus[300], img[300], cmd[1024];
    add_files_stats st;
    wp_err err = {0};
    cat *c = NULL;
    st_store *s = NULL;

    snprintf(corpus, sizeof corpus, "%s/corpus", dir);
    snprintf(img, sizeof img, "%s/img", dir);
    /* A PNG named .jpg, a WebP, a JPEG without caption, a cut JPEG and a
     * text file posing as an image. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/sub && cp tests/data/core/small_20x10.png %s/a.jpg && "
             "echo 'a png' > %s/a.txt && cp tests/data/core/chelsea.webp %s/sub/cat.webp && "
             "printf 'a cat' > %s/sub/cat.txt && cp tests/data/core/tiny_48.jpg %s/nocap.jpg && "
             "cp tests/data/core/truncated.jpg %s/cut.jpg && echo cut > %s/cut.txt && "
             "echo '<html>' > %s/fake.png && echo fake > %s/fake.txt && echo x > %s/readme.md",
             img, img, img, img, img, img, img, img, img, img, img);
    assert_int_equal(system(cmd), 0);
    memset(&st, 0, sizeof st);
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(st_open(corpus, &s, &err), 0);
    if (add_files_dir(c, s, img, NULL, NULL, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(st.seen, 5);
    assert_int_equal(st.imported, 3);
    assert_int_equal(st.no_caption, 1);
    assert_int_equal(st.errors, 2);
    assert_int_equal(st.skipped, 1); /* readme.md */
    /* Again: everything is already there. */
    assert_int_equal(add_files_dir(c, s, img, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.already, 5);
    st_close(s);
    cat_close(c);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE '%/a.jpg' AND "
                                      "format = 'png' AND width = 20 AND height = 10"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE '%/cat.webp' AND "
                                      "format = 'webp' AND width = 451 AND height = 300"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE text = 'a png'"), 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE '%/cut.jpg' AND "
                                      "state = 'error' AND error_class = 'corrupt'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE '%/fake.png' AND "
                                      "state = 'error' AND error_class = 'not_an_image'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE '%readme%'"), 0);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM images WHERE url LIKE 'file:///%' "
                                      "AND sha256 = orig_sha256 AND bytes = 2117"),
                     1);
}

static void test_file_url_percent_encodes(void **state)
{
    char out[128];
    wp_err err = {0};
    assert_int_equal(add_file_url("/a b/c%d/é.jpg", out, sizeof out, &err), 0);
    assert_string_equal(out, "file:///a%20b/c%25d/%C3%A9.jpg");
    assert_int_equal(add_file_url("/aaaaaaaaaaaaaaaaaaaa", out, 12, &err), WP_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_from_name),
        cmocka_unit_test_setup_teardown(test_csv_rfc4180_quoting_edge_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_broken_quoting_costs_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsv_bad_rows_and_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsv_nul_byte_is_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl_records_and_kept_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_columns_and_missing_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_reader_matches_file_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_gzip_keeps_rows_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line_skipped_without_buffering, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_caption_is_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_has_no_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_format_and_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_into_catalog_dedups_and_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_lists_is_one_run_and_fails_on_an_unreadable_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_dir_uses_headers_not_names, setup, teardown),
        cmocka_unit_test(test_file_url_percent_encodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
