/*
 * crawl/archive.c: `witpipe crawl --warc/--wat`: archives into pairs.
 *
 * Each file is a source (kind warc or wat). Records are read as a stream,
 * pages go through the shared extractor (WARC) or the WAT decoder, pairs
 * through the sink, in transactions of ao->batch records; each commit also
 * saves the file's resume point (archive_progress) in the same
 * transaction, so a killed run resumes where the last commit ended and
 * never stores half a batch.
 *
 * --part I/N: with at least N files, file k belongs to part k mod N;
 * otherwise record k of each file does. Either way the split depends only
 * on the inputs, so N workers given the same list cover everything once.
 */
#include "crawl_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARENA_BLOCK      (256 * 1024)
#define PROGRESS_RECORDS 256 /* records between progress reports (commits are rarer) */

static int is_html_type(const char *ct)
{
    while (*ct == ' ')
        ct++;
    return ct[0] == '\0' || strncasecmp(ct, "text/html", 9) == 0 ||
           strncasecmp(ct, "application/xhtml+xml", 21) == 0;
}

typedef struct arch_ctx {
    cat *c;
    crawl_sink *sink;
    const crawl_archive_opts *ao;
    const crawl_opts *o;
    wp_arena *arena;
    int is_wat;
    int by_record;
    wp_buf tmp1, tmp2; /* de-chunked / decompressed bodies */
} arch_ctx;

/* One WARC record: response records with an HTML payload become pages. */
static int warc_record_page(arch_ctx *x, const warc_record *rec, int64_t source_id,
                            const char *path, wp_err *err)
{
    crawl_counts *k = crawl_sink_counts(x->sink);
    crawl_http_head h;
    const char *body;
    size_t body_len;
    int rc;
    crawl_page *pg = NULL;

    if (strcmp(rec->type, "response") != 0 ||
        strncasecmp(rec->content_type, "application/http", 16) != 0 || rec->target_uri[0] == 0) {
        k->records_skipped++;
        return 0;
    }
    if (rec->block == NULL) {
        k->pages_skipped++; /* larger than --max-record */
        return 0;
    }
    if (crawl_http_split(rec->block, rec->block_len, &h) != 0 || h.status < 200 || h.status > 299 ||
        !is_html_type(h.ct)) {
        k->records_skipped++;
        return 0;
    }
    rc = crawl_http_body(&h, x->o->max_page, &x->tmp1, &x->tmp2, &body, &body_len);
    if (rc == WP_ENOMEM)
        return wp_err_set(err, rc, "out of memory");
    if (rc != 0 || body_len > x->o->max_page) {
        k->pages_skipped++; /* too large, or an encoding we cannot undo */
        /* A server's damaged payload is not a damaged archive: the page is
         * skipped, but where it is gets said. */
        if (rc == WP_EFORMAT)
            wp_report_event(x->ao->rep, WP_LOG_WARN, "bad_payload",
                            "%s: byte %lld: record %s: payload not decodable (Content-Encoding "
                            "'%s'%s); page skipped",
                            path, (long long)rec->offset, rec->target_uri, h.encoding,
                            h.chunked ? ", chunked" : "");
        return 0;
    }
    wp_arena_reset(x->arena);
    rc = crawl_extract(body, body_len, rec->target_uri, h.ct[0] ? h.ct : NULL,
                       h.xrobots[0] ? h.xrobots : NULL, x->o, x->arena, &pg, err);
    if (rc != 0)
        return rc;
    return crawl_sink_page(x->sink, pg, source_id, err);
}

static int wat_record_page(arch_ctx *x, const warc_record *rec, int64_t source_id, const char *path,
                           wp_err *err)
{
    crawl_counts *k = crawl_sink_counts(x->sink);
    crawl_page *pg = NULL;
    int rc;
    if (strcmp(rec->type, "metadata") != 0 || strstr(rec->content_type, "json") == NULL) {
        k->records_skipped++;
        return 0;
    }
    if (rec->block == NULL) {
        k->pages_skipped++;
        return 0;
    }
    wp_arena_reset(x->arena);
    rc = crawl_wat_page(rec->block, rec->block_len, x->o, x->arena, &pg, err);
    if (rc == WP_EFORMAT) {
        k->corrupt++;
        wp_err_prefix(err, "%s: byte %lld: record %s", path, (long long)rec->offset,
                      rec->target_uri[0] ? rec->target_uri : "(no target)");
        wp_report_event(x->ao->rep, WP_LOG_WARN, "corrupt", "%s", err->msg);
        wp_err_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (pg == NULL) {
        k->records_skipped++;
        return 0;
    }
    return crawl_sink_page(x->sink, pg, source_id, err);
}

static int one_file(arch_ctx *x, const char *file, wp_err *err)
{
    crawl_counts *k = crawl_sink_counts(x->sink);
    char abs[PATH_MAX];
    const char *loc = realpath(file, abs) ? abs : file;
    int64_t source_id = 0, offset = 0, records = 0, last_off = -1, last_rec = 0;
    int done = 0, rc, n_in_batch = 0, n_since_progress = 0;
    warc_reader *r = NULL;
    warc_record *rec = NULL;
    int64_t consumed0 = 0;

    if ((rc = cat_source_get_or_add(x->c, x->is_wat ? "wat" : "warc", loc, NULL, &source_id,
                                    err)) != 0)
        return rc;
    if ((rc = cat_archive_progress_get(x->c, source_id, &offset, &records, &done, err)) != 0)
        return rc;
    if (done) {
        wp_report_event(x->ao->rep, WP_LOG_INFO, "already_done", "%s: already read; skipped", file);
        return 0;
    }
    if (offset > 0)
        wp_report_event(x->ao->rep, WP_LOG_INFO, "resume",
                        "%s: resuming at byte %lld (record %lld)", file, (long long)offset,
                        (long long)records);
    if ((rec = malloc(sizeof *rec)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = warc_open(file, offset, (uint64_t)records, x->ao->max_record, &r, err)) != 0)
        goto out;
    consumed0 = offset;
    if ((rc = cat_begin(x->c, err)) != 0)
        goto out;
    for (;;) {
        if (wp_stop_requested()) {
            rc = WP_ESTOP;
            break;
        }
        rc = warc_next(r, rec, err);
        if (rc < 0)
            break;
        if (rc == WARC_END) {
            rc = 0;
            break;
        }
        if (rc == WARC_CORRUPT) {
            k->corrupt++;
            wp_report_event(x->ao->rep, WP_LOG_WARN, "corrupt", "%s", err->msg);
            wp_err_clear(err);
            continue;
        }
        k->records++;
        if (x->by_record && (int)(rec->index % (uint64_t)x->ao->part_n) != x->ao->part_i - 1) {
            /* another part's record */
        } else {
            rc = x->is_wat ? wat_record_page(x, rec, source_id, file, err)
                           : warc_record_page(x, rec, source_id, file, err);
            if (rc != 0)
                break;
        }
        if (rec->next_offset >= 0) {
            last_off = rec->next_offset;
            last_rec = (int64_t)rec->index + 1;
        }
        if (++n_in_batch >= x->ao->batch) {
            if (last_off >= 0 && !x->o->dry_run &&
                (rc = cat_archive_progress_set(x->c, source_id, last_off, last_rec, 0, err)) != 0)
                break;
            if ((rc = cat_commit(x->c, err)) != 0 || (rc = cat_begin(x->c, err)) != 0)
                goto out;
            n_in_batch = 0;
        }
        if (++n_since_progress >= PROGRESS_RECORDS) {
            wp_progress p = {.stage = "crawl",
                             .done = k->pages,
                             .errors = k->corrupt,
                             .bytes = k->bytes + (uint64_t)(warc_consumed(r) - consumed0)};
            wp_report_progress(x->ao->rep, &p);
            n_since_progress = 0;
        }
    }
    if (rc == 0 && !x->o->dry_run) {
        rc = cat_archive_progress_set(x->c, source_id, warc_consumed(r), (int64_t)rec->index + 1, 1,
                                      err);
    } else if (rc == WP_ESTOP && last_off >= 0 && !x->o->dry_run) {
        int r2 = cat_archive_progress_set(x->c, source_id, last_off, last_rec, 0, err);
        if (r2 != 0)
            rc = r2;
    }
    if (rc == 0 || rc == WP_ESTOP) {
        int r2 = cat_commit(x->c, err);
        if (r2 != 0)
            rc = r2;
    } else {
        cat_rollback(x->c);
    }
    k->bytes += (uint64_t)(warc_consumed(r) - consumed0);
out:
    if (cat_in_transaction(x->c))
        cat_rollback(x->c);
    warc_close(r);
    free(rec);
    return rc;
}

int crawl_archives(cat *c, crawl_sink *sink, char **files, int nfiles, int is_wat,
                   const crawl_archive_opts *ao, wp_err *err)
{
    arch_ctx x;
    int rc = 0;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.sink = sink;
    x.ao = ao;
    x.is_wat = is_wat;
    x.o = NULL;
    x.by_record = ao->part_n > 1 && nfiles < ao->part_n;
    if (ao->part_n < 1 || ao->part_i < 1 || ao->part_i > ao->part_n)
        return wp_err_set(err, WP_EINVAL, "--part %d/%d: need 1 <= I <= N", ao->part_i, ao->part_n);
    if ((x.arena = wp_arena_new(ARENA_BLOCK)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    x.o = crawl_sink_opts(sink);
    /* Archives stream pairs by the hundred thousand: checkpoint the WAL
     * rarely (see cat_bulk_mode). */
    if (!x.o->dry_run && (rc = cat_bulk_mode(c, 1, err)) != 0) {
        wp_arena_free(x.arena);
        return rc;
    }
    for (int i = 0; i < nfiles && rc == 0; i++) {
        if (ao->part_n > 1 && !x.by_record && i % ao->part_n != ao->part_i - 1)
            continue;
        rc = one_file(&x, files[i], err);
        /* An unreadable file is reported and the others still read. */
        if (rc == WP_ENOENT || rc == WP_EIO) {
            crawl_sink_counts(sink)->unreadable++;
            wp_report_event(ao->rep, WP_LOG_ERROR, "unreadable", "%s", err->msg);
            wp_err_clear(err);
            rc = 0;
        }
    }
    if (!x.o->dry_run)
        cat_bulk_mode(c, 0, NULL);
    wp_arena_free(x.arena);
    wp_buf_free(&x.tmp1);
    wp_buf_free(&x.tmp2);
    return rc;
}
