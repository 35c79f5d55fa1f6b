/*
 * tests/fuzz/fuzz_crawl.c: libFuzzer target for the crawl module's parsers
 * of hostile input: HTML extraction (with and without the prefilter, which
 * must agree on the number of images), robots.txt, WAT metadata JSON (fast
 * path and reference), HTTP response splitting and body decoding, and the
 * WARC record reader on the same bytes written to a file. A crash,
 * sanitizer report, leak or disagreement is a bug; error returns are
 * expected.
 */
#include "crawl/crawl_int.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static crawl_opts o, o0, ref;
    static int init;
    const char *p = (const char *)data;
    wp_arena *a = wp_arena_new(1 << 16);
    crawl_page *pg = NULL, *pr = NULL;
    wp_err err = {0};

    if (!init) {
        crawl_opts_init(&o);
        o.collect_links = 1;
        ref = o;
        ref.no_prefilter = 1;
        o0 = o;
        o0.collect_links = 0;
        init = 1;
    }
    if (a == NULL)
        return 0;
    if (crawl_extract(p, size, "http://fuzz.example/a/b.html", NULL, NULL, &o, a, &pg, &err) == 0 &&
        crawl_extract(p, size, "http://fuzz.example/a/b.html", NULL, NULL, &ref, a, &pr, &err) ==
            0 &&
        pg->n_images != pr->n_images)
        abort();

    crawl_robots *r = crawl_robots_parse(p, size, 200, "witpipe");
    if (r != NULL) {
        crawl_robots_allowed(r, "/a/b?c=d");
        crawl_robots_free(r);
    }

    wp_arena_reset(a);
    crawl_page *w1 = NULL, *w2 = NULL;
    int r1 = crawl_wat_page(p, size, &o, a, &w1, &err);
    int r2 = crawl_wat_page(p, size, &ref, a, &w2, &err);
    /* Where the reference (jansson) accepts a record, the fast path must
     * find the same images. */
    if (r1 == 0 && r2 == 0 && w1 != NULL && w2 != NULL && w1->n_images != w2->n_images)
        abort();

    crawl_http_head h;
    if (crawl_http_split(p, size, &h) == 0) {
        wp_buf t1 = {0}, t2 = {0};
        const char *body;
        size_t blen;
        crawl_http_body(&h, 1 << 20, &t1, &t2, &body, &blen);
        wp_buf_free(&t1);
        wp_buf_free(&t2);
    }

    char path[] = "/tmp/fuzz-warc-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        if (write(fd, data, size) == (ssize_t)size) {
            warc_reader *wr = NULL;
            warc_record *rec = malloc(sizeof *rec);
            if (rec != NULL && warc_open(path, 0, 0, 1 << 20, &wr, &err) == 0) {
                for (int i = 0; i < 1000; i++) {
                    int rc = warc_next(wr, rec, &err);
                    if (rc == WARC_END || rc < 0)
                        break;
                }
            }
            warc_close(wr);
            free(rec);
        }
        close(fd);
        unlink(path);
    }
    wp_arena_free(a);
    return 0;
}
