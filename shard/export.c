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
#include "parquet/parquet.h"

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

static void on_first(void *ud, const char *stage, const char *decision, const char *reason,
                     double score)
{
    double *v = ud;
    (void)decision;
    (void)reason;
    if (stage == NULL && isnan(*v))
        *v = score; /* the first model's score (models in name order) */
}

static const pq_column export_cols[] = {
    {"uid", PQ_STRING, 0},           {"url", PQ_STRING, 0},
    {"caption", PQ_STRING, 0},       {"kept", PQ_BOOL, 0},
    {"dropped_by", PQ_STRING, 1},    {"sha256", PQ_STRING, 1},
    {"width", PQ_INT64, 1},          {"height", PQ_INT64, 1},
    {"original_width", PQ_INT64, 1}, {"original_height", PQ_INT64, 1},
    {"clip_score", PQ_DOUBLE, 1},
};
#define EXPORT_NCOLS ((int)(sizeof export_cols / sizeof export_cols[0]))

static pq_value str_or_null(const char *s)
{
    return s ? (pq_value){.type = PQ_STRING, .s = s, .len = strlen(s)}
             : (pq_value){.type = PQ_NULL};
}

static pq_value int_or_null(int64_t v)
{
    return v >= 0 ? (pq_value){.type = PQ_INT64, .i = v} : (pq_value){.type = PQ_NULL};
}

/* Every EXPORT_PROGRESS_EVERY pairs: the progress line, and WP_ESTOP when
 * the user asked to stop (the caller removes its temporary file). */
static int tick(const wp_reporter *rep, wp_progress *pr, const shard_export_counts *counts,
                wp_err *err)
{
    if (counts->pairs % EXPORT_PROGRESS_EVERY != 0)
        return 0;
    pr->done = (uint64_t)counts->pairs;
    wp_report_progress(rep, pr);
    if (wp_stop_requested())
        return wp_err_set(err, WP_ESTOP, "export stopped after %lld pairs",
                          (long long)counts->pairs);
    return 0;
}

/* The next pair the export writes (every pair with --all, else the
 * selected ones): 1 with *s, 0 when the cursor is done (the last progress
 * line reported), or an error (WP_ESTOP from tick). Counts pairs and kept
 * ones; each pair is ticked once, after the caller wrote its row. */
static int next_exported(cat_shard_cursor *cur, const shard_export_opts *o, cat_sample *s,
                         const wp_reporter *rep, wp_progress *pr, shard_export_counts *counts,
                         wp_err *err)
{
    int rc;
    for (;;) {
        if (counts->pairs > 0 && (rc = tick(rep, pr, counts, err)) != 0)
            return rc;
        if ((rc = cat_shard_cursor_next(cur, s, err)) != 1)
            break;
        counts->pairs++;
        if (s->selected)
            counts->kept++;
        if (o->all || s->selected)
            return 1;
    }
    if (rc == 0) {
        pr->done = (uint64_t)counts->pairs;
        wp_report_progress(rep, pr);
    }
    return rc;
}

/* The Parquet export: the same pairs as the other formats, typed columns. */
static int export_parquet(cat *c, const shard_export_opts *o, const wp_reporter *rep,
                          shard_export_counts *counts, wp_err *err)
{
    cat_shard_cursor *cur = NULL;
    pq_writer *w = NULL;
    cat_sample s;
    wp_progress pr = {.stage = "export"};
    pq_write_opts wo = {.codec = o->zstd ? PQ_ZSTD : PQ_SNAPPY,
                        .row_group_rows = o->row_group_rows};
    int rc;

    pr.total = (uint64_t)cat_count_pairs(c);
    if ((rc = cat_shard_cursor_open(c, 0, 0, &cur, err)) != 0)
        return rc;
    if ((rc = pq_writer_open(o->path, export_cols, EXPORT_NCOLS, &wo, &w, err)) != 0)
        goto out;
    while ((rc = next_exported(cur, o, &s, rep, &pr, counts, err)) == 1) {
        double score = NAN;
        if ((rc = cat_shard_decisions(cur, s.pair_id, on_first, &score, err)) != 0)
            goto out;
        pq_value v[EXPORT_NCOLS] = {
            str_or_null(s.uid),
            str_or_null(s.url ? s.url : ""),
            {.type = PQ_STRING, .s = s.text, .len = s.text_len},
            {.type = PQ_BOOL, .i = s.selected ? 1 : 0},
            str_or_null(s.drop),
            str_or_null(s.sha256),
            int_or_null(s.width),
            int_or_null(s.height),
            int_or_null(s.orig_width),
            int_or_null(s.orig_height),
            isnan(score) ? (pq_value){.type = PQ_NULL} : (pq_value){.type = PQ_DOUBLE, .d = score},
        };
        if ((rc = pq_writer_append(w, v, err)) != 0)
            goto out;
        counts->rows++;
    }
    if (rc != 0)
        goto out;
    rc = pq_writer_close(w, err); /* writes path.tmp, fsyncs, renames */
    w = NULL;
out:
    if (w != NULL)
        pq_writer_free(w);
    cat_shard_cursor_close(cur);
    return rc;
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
    if (o->format == SHARD_EXPORT_PARQUET)
        return export_parquet(c, o, rep, counts, err);
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
    while ((rc = next_exported(cur, o, &s, rep, &pr, counts, err)) == 1) {
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
    if (rc != 0)
        goto out;
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
