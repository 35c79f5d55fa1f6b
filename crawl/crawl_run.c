/*
 * crawl/crawl_run.c: the crawl stage as one catalog run: crawl_run begins
 * the run with its options, hands a sink to the live crawler or the
 * archive reader, and ends the run with the stage's status and counts.
 * Also the archive and live crawl option defaults.
 */
#include "crawl.h"

#include <stdio.h>
#include <string.h>

void crawl_archive_opts_init(crawl_archive_opts *ao)
{
    memset(ao, 0, sizeof *ao);
    ao->part_i = 1;
    ao->part_n = 1;
    ao->batch = 4096;
    ao->max_record = 64u << 20;
}

void crawl_live_opts_init(crawl_live_opts *lo)
{
    memset(lo, 0, sizeof *lo);
    lo->max_depth = 3;
    lo->max_pages = 10000;
    lo->delay = 1.0;
    lo->timeout = 30;
    lo->retries = 2;
    lo->concurrency = 16;
    lo->part = WP_PART_ALL;
}

int crawl_run(cat *c, int source, const crawl_opts *o, const crawl_live_opts *lo, char **files,
              int nfiles, const crawl_archive_opts *ao, crawl_counts *counts, wp_err *err)
{
    const char *word = source == CRAWL_SRC_SEEDS  ? "seeds"
                       : source == CRAWL_SRC_WARC ? "warc"
                                                  : "wat";
    int part_i = source == CRAWL_SRC_SEEDS ? lo->part.i : ao->part_i;
    int part_n = source == CRAWL_SRC_SEEDS ? lo->part.n : ao->part_n;
    wp_buf params = {0}, cj = {0};
    crawl_opts oo = *o;
    crawl_sink *sink = NULL;
    cat_run *run = NULL;
    int rc;

    memset(counts, 0, sizeof *counts);
    if (source < CRAWL_SRC_SEEDS || source > CRAWL_SRC_WAT)
        return wp_err_set(err, WP_EINVAL, "crawl: unknown source %d", source);
    char part[32];
    wp_json pj;
    snprintf(part, sizeof part, "%d/%d", part_i, part_n);
    wp_json_init(&pj, &params);
    wp_json_obj_begin(&pj, NULL);
    wp_json_str(&pj, "mode", word);
    wp_json_str(&pj, "part", part);
    wp_json_uint(&pj, "max_text", o->max_text);
    wp_json_obj_end(&pj);
    if (wp_json_finish(&pj) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = cat_run_begin(c, "crawl", params.data, &run, err)) != 0)
        goto out;
    oo.collect_links = source == CRAWL_SRC_SEEDS; /* the live crawl follows links */
    if ((sink = crawl_sink_new(c, &oo, cat_run_id(run))) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto end;
    }
    if (source == CRAWL_SRC_SEEDS)
        rc = crawl_live(c, sink, lo, err);
    else
        rc = crawl_archives(c, sink, files, nfiles, source == CRAWL_SRC_WAT, ao, err);
    *counts = *crawl_sink_counts(sink);
    if (rc == 0 && counts->unreadable > 0)
        rc = wp_err_set(err, CRAWL_EINPUT, "crawl: %llu of %d files could not be read",
                        (unsigned long long)counts->unreadable, nfiles);
    if (crawl_counts_json(counts, &cj) != 0) {
        if (rc == 0)
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        wp_buf_free(&cj);
    }
end:
    rc = cat_run_end(run, rc, cj.data, err);
out:
    crawl_sink_free(sink);
    wp_buf_free(&params);
    wp_buf_free(&cj);
    return rc;
}
