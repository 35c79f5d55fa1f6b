/*
 * add/add_pq.c: `witpipe add` of Parquet files, decoded in parallel.
 *
 * The calling thread first opens every file's footer in byte order of the
 * paths (checking the named columns, recording each file as a source and
 * numbering the row groups across the files, which --part I/N splits),
 * then starts decoding threads that take one file at a time and turn its
 * rows into records (add_reader: the same checks as add_list) in batches
 * with their own arenas. The calling thread, the catalog's only writer,
 * takes the batches as they come and stores them in transactions of
 * batch_rows rows. A bounded pool of batches keeps memory flat: a decoder
 * waits for a free batch when the writer is behind. With one file (or one
 * thread) there is nothing to overlap worth a thread (decoding is a few
 * percent of the catalog insert, bench/bench_parquet.c), so the calling
 * thread decodes and stores each batch itself.
 */
#include "add_int.h"
#include "parquet/parquet.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PQB_ROWS  2048      /* records per batch */
#define PQB_BYTES (4 << 20) /* arena bytes after which a batch is handed over */
#define PQB_ARENA (1 << 20) /* the arena's block */

/* One hand-over from a decoder to the writer: records of one file, then
 * possibly a row group that could not be read (--continue), or the file's
 * end with its status. */
typedef struct pq_batch {
    int file;
    int nrec;
    add_record rec[PQB_ROWS];
    wp_arena *arena;
    uint64_t bytes; /* input bytes consumed since the file's previous batch */
    int rg_error;   /* msg names a row group that was skipped */
    int end;        /* the file is done: rc is its status */
    int rc;
    int rgs_read;
    char msg[WP_ERR_MAX];
    struct pq_batch *next;
} pq_batch;

typedef struct pq_file {
    const char *path;
    int64_t rg_base; /* its first row group in the run's numbering */
    int64_t source_id;
    int ok; /* its footer and columns were read */
} pq_file;

typedef struct pq_ctx {
    const add_opts *o;
    pq_file *files;
    int nfiles;
    pthread_mutex_t mu;
    pthread_cond_t ready_cv, free_cv;
    pq_batch *free_list;
    pq_batch *ready_head, *ready_tail;
    int next_file;
    int running; /* decoders not finished */
    int abort;   /* the writer stopped: decoders end */
    /* One decoding thread: the calling thread decodes and stores each
     * batch as it is handed over (no threads, no waiting). */
    int inline_mode;
    cat *c;
    cat_run *run;
    const wp_reporter *rep;
    add_stats *st;
    int pending, rc;
    uint64_t total;
    wp_err *err;
} pq_ctx;

static int by_path(const void *a, const void *b)
{
    return strcmp(((const pq_file *)a)->path, ((const pq_file *)b)->path);
}

/* A free batch for file f, or NULL when the run is being stopped. */
static pq_batch *take_free(pq_ctx *x, int f)
{
    pq_batch *b = NULL;
    pthread_mutex_lock(&x->mu);
    while (!x->abort && x->free_list == NULL)
        pthread_cond_wait(&x->free_cv, &x->mu);
    if (!x->abort) {
        b = x->free_list;
        x->free_list = b->next;
    }
    pthread_mutex_unlock(&x->mu);
    if (b != NULL) {
        wp_arena_reset(b->arena);
        b->file = f;
        b->nrec = 0;
        b->bytes = 0;
        b->rg_error = b->end = b->rc = b->rgs_read = 0;
        b->msg[0] = '\0';
        b->next = NULL;
    }
    return b;
}

static int store_batch(pq_ctx *x, const pq_batch *b);
static int store_one(pq_ctx *x, int f, const add_record *rec);
static void after_batch(pq_ctx *x);

static void hand_over(pq_ctx *x, pq_batch *b)
{
    if (x->inline_mode) { /* stored at once; the batch is free again */
        if (x->rc == 0)
            x->rc = store_batch(x, b);
        after_batch(x);
        b->next = x->free_list;
        x->free_list = b;
        return;
    }
    pthread_mutex_lock(&x->mu);
    if (x->ready_tail != NULL)
        x->ready_tail->next = b;
    else
        x->ready_head = b;
    x->ready_tail = b;
    pthread_cond_signal(&x->ready_cv);
    pthread_mutex_unlock(&x->mu);
}

/* Copies rec's strings into the batch's arena. Returns 0 or WP_ENOMEM. */
static int keep_record(pq_batch *b, const add_record *rec)
{
    add_record *d = &b->rec[b->nrec];
    *d = *rec;
    if (rec->bad == ADD_BAD_NONE) {
        d->url = wp_arena_strndup(b->arena, rec->url, rec->url_len);
        d->text = wp_arena_strndup(b->arena, rec->text, rec->text_len);
        d->extra_json = rec->extra_json ? wp_arena_strdup(b->arena, rec->extra_json) : NULL;
        if (d->url == NULL || d->text == NULL || (rec->extra_json && d->extra_json == NULL))
            return WP_ENOMEM;
    }
    b->nrec++;
    return 0;
}

/* Reads file f into batches. Returns 0, or -1 when the run is stopping. */
static int decode_file(pq_ctx *x, int f)
{
    add_opts o = *x->o;
    add_reader *r = NULL;
    add_record rec;
    uint64_t done = 0, total = 0, before = 0;
    pq_batch *b = take_free(x, f);
    wp_err e = {0};
    int rc;

    if (b == NULL)
        return -1;
    o.format = ADD_FMT_PARQUET;
    if ((rc = add_reader_open(x->files[f].path, &o, &r, &e)) != 0)
        goto end;
    /* --part I/N: row groups numbered across the files; with --part-by
     * host every row group is read and store_one keeps the part's hosts */
    if (!wp_part_all(&o.part) && !o.part_by_host)
        add_reader_set_part(r, x->files[f].rg_base, o.part.i, o.part.n);
    for (;;) {
        int k = add_reader_next(r, &rec, &e);
        if (k == 0)
            break;
        if (k > 0 && x->inline_mode) { /* stored as it comes, not copied */
            int src = x->rc == 0 ? store_one(x, f, &rec) : 0;
            if (src != 0) {
                x->rc = src;
                after_batch(x); /* stops the run */
            } else if (x->st->rows % PQB_ROWS == 0) {
                after_batch(x); /* progress and Ctrl-C */
            }
            if (x->abort) {
                add_reader_close(r);
                return -1;
            }
            continue;
        }
        if (k > 0 && keep_record(b, &rec) != 0)
            k = wp_err_set(&e, WP_ENOMEM, "%s: out of memory", x->files[f].path);
        if (k < 0 && (k != ADD_ESTREAM || !o.keep_going)) {
            rc = k;
            break;
        }
        if (k < 0) { /* --continue: this row group is skipped, the next read */
            b->rg_error = 1;
            snprintf(b->msg, sizeof b->msg, "%s", e.msg);
        }
        if (k < 0 || b->nrec == PQB_ROWS || wp_arena_used(b->arena) >= PQB_BYTES) {
            add_reader_progress(r, &done, &total);
            b->bytes = done - before;
            before = done;
            hand_over(x, b);
            if ((b = take_free(x, f)) == NULL) {
                add_reader_close(r);
                return -1;
            }
        }
    }
end:
    if (r != NULL) {
        add_reader_progress(r, &done, &total);
        b->bytes = (rc == 0 ? total : done) - before;
        b->rgs_read = add_reader_row_groups_read(r);
    }
    add_reader_close(r);
    b->end = 1;
    b->rc = rc;
    if (rc != 0)
        snprintf(b->msg, sizeof b->msg, "%s", e.msg);
    hand_over(x, b);
    return 0;
}

static void *decoder_main(void *arg)
{
    pq_ctx *x = arg;
    for (;;) {
        int f;
        pthread_mutex_lock(&x->mu);
        while (x->next_file < x->nfiles && !x->files[x->next_file].ok)
            x->next_file++;
        f = x->abort || x->next_file >= x->nfiles ? -1 : x->next_file++;
        pthread_mutex_unlock(&x->mu);
        if (f < 0 || decode_file(x, f) != 0)
            break;
    }
    pthread_mutex_lock(&x->mu);
    x->running--;
    pthread_cond_signal(&x->ready_cv);
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* The next batch, or NULL when every decoder has finished. */
static pq_batch *take_ready(pq_ctx *x)
{
    pq_batch *b;
    pthread_mutex_lock(&x->mu);
    while (x->ready_head == NULL && x->running > 0)
        pthread_cond_wait(&x->ready_cv, &x->mu);
    b = x->ready_head;
    if (b != NULL) {
        x->ready_head = b->next;
        if (x->ready_head == NULL)
            x->ready_tail = NULL;
    }
    pthread_mutex_unlock(&x->mu);
    return b;
}

static void give_back(pq_ctx *x, pq_batch *b)
{
    pthread_mutex_lock(&x->mu);
    b->next = x->free_list;
    x->free_list = b;
    pthread_cond_signal(&x->free_cv);
    pthread_mutex_unlock(&x->mu);
}

/* Opens each file's footer (sorted by path), numbers its row groups and
 * records it as a source. A file that cannot be opened is reported and
 * counted; returns 0 or a fatal error (WP_ENOMEM, CAT_ESQL). */
static int plan(cat *c, pq_ctx *x, const wp_reporter *rep, add_stats *st, wp_err *err)
{
    add_opts o = *x->o;
    int64_t base = 0;
    int rc = 0;

    o.format = ADD_FMT_PARQUET;
    qsort(x->files, (size_t)x->nfiles, sizeof *x->files, by_path);
    for (int f = 0; f < x->nfiles && rc == 0; f++) {
        add_reader *r = NULL;
        wp_err e = {0};
        int k = add_reader_open(x->files[f].path, &o, &r, &e);
        if (k == WP_ENOMEM) {
            rc = wp_err_set(err, k, "%s", e.msg);
        } else if (k != 0) {
            wp_report_event(rep, WP_LOG_ERROR, "error", "%s", e.msg);
            st->files_failed++;
        } else {
            for (int i = 0; add_reader_skipped(r, i) != NULL; i++)
                wp_report_event(rep, WP_LOG_INFO, "parquet_skipped",
                                "%s: nested column '%s' skipped", x->files[f].path,
                                add_reader_skipped(r, i));
            x->files[f].rg_base = base;
            base += add_reader_row_groups(r);
            x->files[f].ok = 1;
            rc = add_source(c, x->files[f].path, r, &x->files[f].source_id, err);
        }
        add_reader_close(r);
    }
    return rc;
}

static void report(const wp_reporter *rep, const add_stats *st, uint64_t total)
{
    wp_progress p = {0};
    p.stage = "add";
    p.unit = "bytes";
    p.done = st->bytes;
    p.total = total;
    p.errors = st->bad;
    p.bytes = st->bytes;
    wp_report_progress(rep, &p);
}

/* Stores one record of file f, committing every batch_rows. Returns 0 or
 * a catalog error. */
static int store_one(pq_ctx *x, int f, const add_record *rec)
{
    const pq_file *pf = &x->files[f];
    int batch = x->o->batch_rows > 0 ? x->o->batch_rows : ADD_BATCH_ROWS;
    int rc;

    if (x->o->part_by_host && rec->bad == ADD_BAD_NONE &&
        !wp_part_has(&x->o->part, wp_part_key_host(rec->url, rec->url_len)))
        return 0; /* another part's host */
    if ((rc = add_store(x->c, rec, pf->path, pf->source_id, x->run, x->rep, x->st, x->err)) != 0)
        return rc;
    if (++x->pending >= batch) {
        x->pending = 0;
        if ((rc = add_report_list(x->run, x->st, -1, x->err)) != 0 ||
            (rc = cat_commit(x->c, x->err)) != 0 || (rc = cat_begin(x->c, x->err)) != 0)
            return rc;
    }
    return 0;
}

/* Stores one batch. Returns 0 or a catalog error. */
static int store_batch(pq_ctx *x, const pq_batch *b)
{
    add_stats *st = x->st;
    int rc;

    for (int i = 0; i < b->nrec; i++)
        if ((rc = store_one(x, b->file, &b->rec[i])) != 0)
            return rc;
    st->bytes += b->bytes;
    if (b->rg_error) {
        st->bad_row_groups++;
        wp_report_event(x->rep, WP_LOG_ERROR, "bad_row_group", "%s (skipped: --continue)", b->msg);
    }
    if (b->end) {
        st->row_groups += (uint64_t)b->rgs_read;
        if (b->rc == 0) {
            st->files++;
        } else {
            st->files_failed++;
            wp_report_event(x->rep, WP_LOG_ERROR, "error", "%s", b->msg);
        }
    }
    return 0;
}

/* After a batch was stored: progress, Ctrl-C, and on any error the
 * decoders are told to end (what they still hand over is dropped). */
static void after_batch(pq_ctx *x)
{
    if (x->rc == 0 && wp_stop_requested())
        x->rc = wp_err_set(x->err, WP_ESTOP, "add: stopped after %llu rows",
                           (unsigned long long)x->st->rows);
    if (x->rc == 0)
        report(x->rep, x->st, x->total);
    if (x->rc != 0) {
        pthread_mutex_lock(&x->mu);
        x->abort = 1;
        pthread_cond_broadcast(&x->free_cv);
        pthread_mutex_unlock(&x->mu);
    }
}

int add_parquet(cat *c, char *const *paths, int npaths, const add_opts *o, cat_run *run,
                const wp_reporter *rep, add_stats *st, wp_err *err)
{
    pq_ctx x;
    pq_batch *pool = NULL;
    pthread_t *th = NULL;
    uint64_t failed0 = st->files_failed;
    int nthreads = o->threads > 0 ? o->threads : omp_get_max_threads();
    int started = 0, nbatch = 0, ok_files = 0, rc = 0;

    memset(&x, 0, sizeof x);
    x.o = o;
    x.nfiles = npaths;
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.ready_cv, NULL);
    pthread_cond_init(&x.free_cv, NULL);
    if (npaths <= 0)
        goto out;
    if ((x.files = calloc((size_t)npaths, sizeof *x.files)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < npaths; i++)
        x.files[i].path = paths[i];
    if ((rc = plan(c, &x, rep, st, err)) != 0)
        goto out;
    for (int f = 0; f < npaths; f++)
        ok_files += x.files[f].ok;
    if (ok_files == 0)
        goto out;
    if (nthreads > ok_files)
        nthreads = ok_files;
    if (nthreads < 1)
        nthreads = 1;
    nbatch = 2 * nthreads + 2;
    pool = calloc((size_t)nbatch, sizeof *pool);
    th = calloc((size_t)nthreads, sizeof *th);
    if (pool == NULL || th == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nbatch; i++) {
        if ((pool[i].arena = wp_arena_new(PQB_ARENA)) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        pool[i].next = x.free_list;
        x.free_list = &pool[i];
    }
    for (int f = 0; f < npaths; f++) {
        FILE *fp = x.files[f].ok ? fopen(x.files[f].path, "rb") : NULL;
        if (fp != NULL && fseeko(fp, 0, SEEK_END) == 0 && ftello(fp) > 0)
            x.total += (uint64_t)ftello(fp);
        if (fp != NULL)
            fclose(fp);
    }
    if ((rc = cat_bulk_mode(c, 1, err)) != 0 || (rc = cat_begin(c, err)) != 0)
        goto out;
    x.c = c;
    x.run = run;
    x.rep = rep;
    x.st = st;
    x.err = err;
    if (nthreads == 1) { /* one file, or one thread: decoded here, in order */
        x.inline_mode = 1;
        for (int f = 0; f < npaths && x.rc == 0; f++)
            if (x.files[f].ok && decode_file(&x, f) != 0)
                break;
    } else {
        for (; started < nthreads; started++) {
            pthread_mutex_lock(&x.mu);
            x.running++; /* before it starts: it counts itself out when done */
            pthread_mutex_unlock(&x.mu);
            if (pthread_create(&th[started], NULL, decoder_main, &x) != 0) {
                pthread_mutex_lock(&x.mu);
                x.running--;
                pthread_mutex_unlock(&x.mu);
                break;
            }
        }
        if (started == 0) {
            rc = wp_err_set(err, WP_ENOMEM, "add: cannot start a Parquet decoding thread");
            goto out;
        }
        for (pq_batch *b; (b = take_ready(&x)) != NULL;) {
            if (x.rc == 0)
                x.rc = store_batch(&x, b);
            give_back(&x, b);
            after_batch(&x);
        }
    }
    rc = x.rc;
    if (rc == 0 || rc == WP_ESTOP) {
        wp_err keep = {0};
        int crc = cat_commit(c, rc == 0 ? err : &keep);
        if (rc == 0)
            rc = crc;
    }
out:
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (cat_in_transaction(c))
        cat_rollback(c);
    cat_bulk_mode(c, 0, NULL);
    if (pool != NULL)
        for (int i = 0; i < nbatch; i++)
            wp_arena_free(pool[i].arena);
    free(pool);
    free(th);
    free(x.files);
    pthread_cond_destroy(&x.free_cv);
    pthread_cond_destroy(&x.ready_cv);
    pthread_mutex_destroy(&x.mu);
    if (rc == 0 && st->files_failed > failed0)
        rc = wp_err_set(err, ADD_EINPUT, "%llu Parquet file(s) could not be read to their end",
                        (unsigned long long)(st->files_failed - failed0));
    return rc;
}
