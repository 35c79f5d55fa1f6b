/*
 * shard/export.c: `witpipe export`: the per-sample list of a corpus, one row
 * per pair with its URL, caption, uid, hashes, CLIP scores and every
 * stage's decision. This is what a curated dataset publishes instead of its
 * images (URLs plus the decisions that selected them), and what `witpipe
 * add` reads back to rebuild the corpus elsewhere.
 *
 * The rows come from the same cursor as the shards (cat_shard_cursor, pair
 * id order) and the JSONL row is built by the same function as a shard's
 * KEY.json, so "kept" here means exactly "in the shards".
 */
#include "shard/shard.h"
#include "shard/shard_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT_PROGRESS_EVERY 4096 /* rows between progress reports */

/* Appends s with tabs, CR and LF replaced by spaces (a TSV field). */
static int tsv_field(wp_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (wp_buf_putc(b, ch == '\t' || ch == '\n' || ch == '\r' ? ' ' : ch) != 0)
            return WP_ENOMEM;
    }
    return 0;
}

struct tsv_scores {
    wp_buf *b;
    int n;
};

static void on_score(void *ud, const char *stage, const char *decision, const char *reason,
                     double score)
{
    struct tsv_scores *t = ud;
    (void)reason;
    if (stage != NULL || t->n++ > 0 || isnan(score))
        return; /* the first model's score only (models in name order) */
    wp_buf_printf(t->b, "%.6f", score);
}

static int tsv_row(cat_shard_cursor *cur, const cat_sample *s, wp_buf *b, wp_err *err)
{
    struct tsv_scores t = {b, 0};
    const char *url = s->url ? s->url : "";
    int rc;

    wp_buf_reset(b);
    if (wp_buf_puts(b, s->uid) != 0 || wp_buf_putc(b, '\t') != 0 ||
        tsv_field(b, url, strlen(url)) != 0 || wp_buf_putc(b, '\t') != 0 ||
        tsv_field(b, s->text, s->text_len) != 0 || wp_buf_putc(b, '\t') != 0 ||
        wp_buf_puts(b, s->sha256 ? s->sha256 : "") != 0 ||
        wp_buf_puts(b, s->selected ? "\ttrue\t" : "\tfalse\t") != 0 ||
        (s->drop && tsv_field(b, s->drop, strlen(s->drop)) != 0) || wp_buf_putc(b, '\t') != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = cat_shard_decisions(cur, s->pair_id, on_score, &t, err)) != 0)
        return rc;
    return wp_buf_putc(b, '\n') != 0 ? wp_err_set(err, WP_ENOMEM, "out of memory") : 0;
}

int shard_export(cat *c, const shard_export_opts *o, const wp_reporter *rep,
                 shard_export_counts *counts, wp_err *err)
{
    char tmp[WP_PATH_MAX];
    cat_shard_cursor *cur = NULL;
    cat_sample s;
    wp_buf row = {0};
    FILE *f = NULL;
    wp_progress pr = {.stage = "export"};
    int rc, n;

    memset(counts, 0, sizeof *counts);
    if (o->path == NULL || o->path[0] == '\0' || strcmp(o->path, "-") == 0)
        return wp_err_set(err, WP_EINVAL, "export: needs an output file");
    if (o->format != SHARD_EXPORT_JSONL && o->format != SHARD_EXPORT_TSV)
        return wp_err_set(err, WP_EINVAL, "export: unknown format %d", o->format);
    n = snprintf(tmp, sizeof tmp, "%s.tmp", o->path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return wp_err_set(err, WP_ELIMIT, "%s: path too long", o->path);
    pr.total = (uint64_t)cat_count_pairs(c);
    if ((rc = cat_shard_cursor_open(c, 0, 0, &cur, err)) != 0)
        return rc;
    if ((f = fopen(tmp, "wbx")) == NULL && errno == EEXIST) {
        unlink(tmp); /* left by a stopped run */
        f = fopen(tmp, "wbx");
    }
    if (f == NULL) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    if (o->format == SHARD_EXPORT_TSV &&
        fputs("uid\turl\tcaption\tsha256\tkept\tdropped_by\tclip_score\n", f) < 0) {
        rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    while ((rc = cat_shard_cursor_next(cur, &s, err)) == 1) {
        counts->pairs++;
        if (s.selected)
            counts->kept++;
        if (o->all || s.selected) {
            if (o->format == SHARD_EXPORT_JSONL) {
                if ((rc = shard_sample_json(cur, &s, 1, &row, err)) != 0 ||
                    (rc = wp_buf_putc(&row, '\n')) != 0) {
                    if (rc == WP_ENOMEM)
                        wp_err_set(err, WP_ENOMEM, "out of memory");
                    goto out;
                }
            } else if ((rc = tsv_row(cur, &s, &row, err)) != 0) {
                goto out;
            }
            if (fwrite(row.data, 1, row.len, f) != row.len) {
                rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
                goto out;
            }
            counts->rows++;
        }
        if (counts->pairs % EXPORT_PROGRESS_EVERY == 0) {
            pr.done = (uint64_t)counts->pairs;
            wp_report_progress(rep, &pr);
            if (wp_stop_requested()) {
                rc = wp_err_set(err, WP_ESTOP, "export stopped after %lld pairs",
                                (long long)counts->pairs);
                goto out;
            }
        }
    }
    if (rc < 0)
        goto out;
    pr.done = (uint64_t)counts->pairs;
    wp_report_progress(rep, &pr);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, o->path) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot rename into place: %s", o->path, strerror(errno));
        goto out;
    }
    {
        /* the new name must survive a crash too */
        char dir[WP_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", o->path);
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, sizeof dir, ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
        rc = wp_fsync_dir(dir, err);
    }
out:
    if (f != NULL) {
        fclose(f);
        unlink(tmp);
    }
    wp_buf_free(&row);
    cat_shard_cursor_close(cur);
    return rc;
}
