/*
 * store/compact.c: st_compact, reclaiming the store space no catalog row
 * points at (the order of steps that keeps it crash-safe is in store.h).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* What one file needs. */
enum { KEEP, REMOVE, REWRITE, TRUNCATE };

/* A file's live bytes: the union of its rows' ranges (rows that share or
 * overlap bytes are copied once). Fills *live and returns KEEP, REMOVE,
 * REWRITE (gaps inside) or TRUNCATE (a gap at the end only), or
 * ST_ECORRUPT for a row pointing outside the file. */
static int plan_file(const st_file *f, int is_current, const cat_store_ref *r, size_t nr,
                     int64_t *live, wp_err *err)
{
    int64_t end = 0, sum = 0;
    int gap = 0;

    for (size_t i = 0; i < nr; i++) {
        if (r[i].offset < 0 || r[i].bytes < 0 || r[i].offset + r[i].bytes > f->size)
            return wp_err_set(err, ST_ECORRUPT,
                              "store file %06lld: image %lld points at %lld+%lld, past its end "
                              "(%lld bytes)",
                              (long long)f->num, (long long)r[i].image_id, (long long)r[i].offset,
                              (long long)r[i].bytes, (long long)f->size);
        if (r[i].offset > end)
            gap = 1;
        if (r[i].offset + r[i].bytes > end) {
            sum += r[i].offset + r[i].bytes - (r[i].offset > end ? r[i].offset : end);
            end = r[i].offset + r[i].bytes;
        }
    }
    *live = sum;
    if (nr == 0)
        return f->size == 0 && is_current ? KEEP : REMOVE;
    return gap ? REWRITE : end < f->size ? TRUNCATE : KEEP;
}

/* Copies the live bytes of file f to the appends' file, checking each row's
 * sha256, then points the rows at the copies in one transaction. */
static int rewrite_file(st_store *s, cat *c, const st_file *f, const cat_store_ref *r, size_t nr,
                        int64_t *moved, wp_err *err)
{
    int64_t *nfile = NULL, *noff = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, i = 0;
    int rc = 0;

    nfile = malloc((nr ? nr : 1) * sizeof *nfile);
    noff = malloc((nr ? nr : 1) * sizeof *noff);
    if (nfile == NULL || noff == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    while (i < nr) {
        /* one interval: rows [i, j) whose ranges overlap */
        int64_t start = r[i].offset, end = r[i].offset + r[i].bytes, at_file, at_off;
        size_t j = i + 1;
        while (j < nr && r[j].offset < end) {
            if (r[j].offset + r[j].bytes > end)
                end = r[j].offset + r[j].bytes;
            j++;
        }
        if ((size_t)(end - start) > cap) {
            uint8_t *nb = realloc(buf, (size_t)(end - start));
            if (nb == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            buf = nb;
            cap = (size_t)(end - start);
        }
        if ((rc = st_read(s, f->num, start, buf, (size_t)(end - start), err)) != 0)
            goto out;
        for (size_t k = i; k < j; k++) {
            uint8_t md[WP_SHA256_LEN];
            char hex[WP_SHA256_HEX + 1];
            if (r[k].sha256[0] == '\0')
                continue;
            if (wp_sha256_buf(buf + (r[k].offset - start), (size_t)r[k].bytes, md) != 0) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            wp_hex(md, sizeof md, hex);
            if (strcmp(hex, r[k].sha256) != 0) {
                rc = wp_err_set(err, ST_ECORRUPT,
                                "store file %06lld: image %lld's bytes at %lld do not match its "
                                "sha256 %s; the file was left as it is",
                                (long long)f->num, (long long)r[k].image_id, (long long)r[k].offset,
                                r[k].sha256);
                goto out;
            }
        }
        if ((rc = st_append(s, buf, (size_t)(end - start), &at_file, &at_off, err)) != 0)
            goto out;
        for (size_t k = i; k < j; k++) {
            nfile[k] = at_file;
            noff[k] = at_off + (r[k].offset - start);
        }
        i = j;
    }
    /* the copies (and their file's name) are durable before any row points
     * at them */
    if ((rc = st_sync(s, err)) != 0 || (rc = cat_begin(c, err)) != 0)
        goto out;
    for (i = 0; i < nr; i++) {
        if ((rc = cat_store_move(c, r[i].image_id, nfile[i], noff[i], err)) != 0) {
            cat_rollback(c);
            goto out;
        }
    }
    if ((rc = cat_commit(c, err)) != 0)
        goto out;
    *moved += (int64_t)nr;
out:
    free(buf);
    free(nfile);
    free(noff);
    return rc;
}

static int totals(st_store *s, int64_t *files, int64_t *bytes, wp_err *err)
{
    st_file *v;
    size_t n;
    int rc = st_list(s, &v, &n, err);
    if (rc != 0)
        return rc;
    *files = (int64_t)n;
    *bytes = 0;
    for (size_t i = 0; i < n; i++)
        *bytes += v[i].size;
    free(v);
    return 0;
}

int st_compact_json(const st_compact_counts *n, wp_buf *b)
{
    wp_json j;
    wp_json_init(&j, b);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "files_before", n->files_before);
    wp_json_int(&j, "files_after", n->files_after);
    wp_json_int(&j, "files_removed", n->files_removed);
    wp_json_int(&j, "files_rewritten", n->files_rewritten);
    wp_json_int(&j, "files_truncated", n->files_truncated);
    wp_json_int(&j, "bytes_before", n->bytes_before);
    wp_json_int(&j, "bytes_after", n->bytes_after);
    wp_json_int(&j, "bytes_live", n->bytes_live);
    wp_json_int(&j, "bytes_reclaimed", n->bytes_reclaimed);
    wp_json_int(&j, "images_moved", n->images_moved);
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

/* The counts as the run's counts (replacing b's contents; empty on failure). */
static void counts_json(const st_compact_counts *n, wp_buf *b)
{
    b->len = 0;
    if (st_compact_json(n, b) != 0)
        b->len = 0;
}

int st_compact(st_store *s, cat *c, int dry_run, const wp_reporter *rep, st_compact_counts *n,
               wp_err *err)
{
    st_file *files = NULL;
    size_t nf = 0;
    cat_store_ref *refs = NULL;
    size_t nr = 0;
    cat_run *run = NULL;
    wp_buf cj = {0};
    int rotated = 0, rc;

    memset(n, 0, sizeof *n);
    if ((rc = st_list(s, &files, &nf, err)) != 0)
        return rc;
    n->files_before = (int64_t)nf;
    for (size_t i = 0; i < nf; i++)
        n->bytes_before += files[i].size;
    if (!dry_run && (rc = cat_run_begin(c, "compact", "{\"dry_run\":false}", &run, err)) != 0)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        const st_file *f = &files[i];
        int64_t live = 0;
        int what;
        wp_progress p = {.stage = "compact", .done = i, .total = nf, .unit = NULL};

        wp_report_progress(rep, &p);
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped");
            goto out;
        }
        free(refs);
        refs = NULL;
        if ((rc = cat_store_refs(c, f->num, &refs, &nr, err)) != 0)
            goto out;
        what = plan_file(f, f->num == st_current_file(s) && !rotated, refs, nr, &live, err);
        if (what < 0) {
            rc = what;
            goto out;
        }
        n->bytes_live += live;
        if (what == KEEP)
            continue;
        if (what == REMOVE)
            n->files_removed++;
        else if (what == REWRITE)
            n->files_rewritten++;
        else
            n->files_truncated++;
        if (dry_run) {
            n->bytes_reclaimed += f->size - live;
            continue;
        }
        if (what == TRUNCATE) {
            if ((rc = st_truncate(s, f->num, live, err)) != 0)
                goto out;
            goto done;
        }
        /* appends (the copies) go to a file above every old one, and the
         * file being compacted is never the one appends go to */
        if (!rotated && (what == REWRITE || f->num == st_current_file(s))) {
            if ((rc = st_rotate(s, err)) != 0)
                goto out;
            rotated = 1;
        }
        if (what == REWRITE && (rc = rewrite_file(s, c, f, refs, nr, &n->images_moved, err)) != 0)
            goto out;
        if ((rc = st_remove(s, f->num, err)) != 0)
            goto out;
    done:
        counts_json(n, &cj);
        if (run != NULL && cj.len > 0 && (rc = cat_run_counts(run, cj.data, err)) != 0)
            goto out;
    }
    if (dry_run) {
        n->files_after = n->files_before - n->files_removed;
        n->bytes_after = n->bytes_before - n->bytes_reclaimed;
    } else {
        if ((rc = totals(s, &n->files_after, &n->bytes_after, err)) != 0)
            goto out;
        n->bytes_reclaimed = n->bytes_before - n->bytes_after;
    }
    {
        wp_progress p = {.stage = "compact", .done = nf, .total = nf, .unit = NULL};
        wp_report_progress(rep, &p);
    }
out:
    if (run != NULL) {
        if (rc == WP_ESTOP && totals(s, &n->files_after, &n->bytes_after, NULL) == 0)
            n->bytes_reclaimed = n->bytes_before - n->bytes_after;
        counts_json(n, &cj);
        rc = cat_run_end(run, rc, cj.len > 0 ? cj.data : NULL, err);
    }
    wp_buf_free(&cj);
    free(refs);
    free(files);
    return rc;
}
