/*
 * fetch/fetch.c: the fetch stage (see fetch.h): the main loop (network
 * engine + the single writer to store and catalog), the image worker pool
 * and the per-image processing.
 */
#include "fetch.h"

#include "image/image.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE_MAX         512 /* pending rows read from the catalog at once */
#define WORKERS_MAX      64
#define FLUSH_INTERVAL_S 1.0 /* commit at least this often */
#define DETAIL_MAX       256
#define POLL_MS          100

typedef struct job job;
struct job {
    job *next;
    int64_t id;
    int prev_attempts;
    /* network */
    const char *net_class; /* NULL: downloaded */
    char detail[DETAIL_MAX];
    int http_status;
    int attempts;
    char opt_out[NET_DIRECTIVE_MAX];
    wp_buf body;
    int64_t fetch_ms;
    /* image work */
    const char *err_class; /* NULL: stored */
    const char *orig_format, *format;
    int ow, oh, w, h;
    int64_t orig_bytes;
    char orig_sha[WP_SHA256_HEX + 1], sha[WP_SHA256_HEX + 1];
    wp_buf out; /* re-encoded bytes; empty when the original is kept */
    int keep_original;
    int64_t store_file, store_offset, stored_bytes;
};

typedef struct pool {
    pthread_t th[WORKERS_MAX];
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv_in, cv_out;
    job *in_head, *in_tail;
    int nin, busy;
    job *out_head, *out_tail;
    int quit;
    net_engine *e;
    const fetch_opts *o;
    double cpu_decode, cpu_resize, cpu_encode;
} pool;

typedef struct fetch_ctx {
    cat *c;
    st_store *st;
    const fetch_opts *o;
    const wp_reporter *rep;
    net_engine *e;
    pool p;
    job *ready_head, *ready_tail; /* network failures, no image work needed */
    job **batch;
    int nbatch;
    double last_flush;
    cat_run *run; /* this run's row in the catalog */
    int64_t run_id;
    int64_t inflight;
    fetch_stats stats;
    wp_progress prog;
} fetch_ctx;

void fetch_opts_init(fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    net_opts_init(&o->net);
    o->resize_mode = IMG_RESIZE_BORDER;
    o->image_size = 256;
    o->quality = 95;
    o->reencode = 1;
    o->max_pixels = 89478485;
    o->batch = 256;
}

static double thread_cpu(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void job_free(job *j)
{
    if (j == NULL)
        return;
    wp_buf_free(&j->body);
    wp_buf_free(&j->out);
    free(j);
}

static void list_push(job **head, job **tail, job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* ---- image work (worker threads) ------------------------------------------- */

static const char *class_of_img(int rc)
{
    switch (rc) {
    case IMG_ENOTIMAGE:
        return FETCH_EC_NOT_IMAGE;
    case IMG_EUNSUPPORTED:
        return FETCH_EC_UNSUPPORTED;
    case IMG_ECORRUPT:
        return FETCH_EC_CORRUPT;
    case IMG_ETOOBIG:
        return FETCH_EC_PIXELS;
    default:
        return FETCH_EC_INTERNAL;
    }
}

static void fail(job *j, const char *cls, const char *fmt, const char *msg)
{
    j->err_class = cls;
    snprintf(j->detail, sizeof j->detail, fmt, msg);
}

/* Header filters, from img_probe's answer alone (no pixels decoded). */
static int header_filters(job *j, const fetch_opts *o, const img_info *info)
{
    int64_t px = (int64_t)info->width * info->height;
    int lo = j->ow < j->oh ? j->ow : j->oh, hi = j->ow < j->oh ? j->oh : j->ow;
    char why[96];
    if (o->max_pixels > 0 && px > o->max_pixels) {
        snprintf(why, sizeof why, "%dx%d over --max-pixels", info->width, info->height);
        fail(j, FETCH_EC_PIXELS, "%s", why);
        return -1;
    }
    if (o->min_image_size > 0 && lo < o->min_image_size) {
        snprintf(why, sizeof why, "%dx%d under --min-image-size", j->ow, j->oh);
        fail(j, FETCH_EC_TOO_SMALL, "%s", why);
        return -1;
    }
    if (o->max_aspect_ratio > 0 && lo > 0 && (double)hi / lo > o->max_aspect_ratio) {
        snprintf(why, sizeof why, "%dx%d over --max-aspect-ratio", j->ow, j->oh);
        fail(j, FETCH_EC_ASPECT, "%s", why);
        return -1;
    }
    if (o->max_image_area > 0 && px > o->max_image_area) {
        snprintf(why, sizeof why, "%dx%d over --max-image-area", j->ow, j->oh);
        fail(j, FETCH_EC_AREA, "%s", why);
        return -1;
    }
    return 0;
}

static void process(pool *p, job *j)
{
    const fetch_opts *o = p->o;
    img_info info;
    img_image im = {0}, rs = {0};
    img_decode_opts dop;
    uint8_t sha[WP_SHA256_LEN];
    wp_err e = {0};
    double t0 = thread_cpu(), t1, t2 = 0, t3 = 0;
    int rc;

    j->orig_bytes = (int64_t)j->body.len;
    if (wp_sha256_buf(j->body.data, j->body.len, sha) != 0) {
        fail(j, FETCH_EC_INTERNAL, "%s", "sha256 failed");
        return;
    }
    wp_hex(sha, WP_SHA256_LEN, j->orig_sha);
    memset(&info, 0, sizeof info);
    rc = img_probe(j->body.data, j->body.len, &info, &e);
    if (info.format != IMG_FMT_UNKNOWN)
        j->orig_format = img_format_name(info.format);
    if (rc != 0) {
        fail(j, class_of_img(rc), "%s", e.msg);
        goto out;
    }
    /* EXIF orientations 5..8 swap the sides. */
    j->ow = info.orientation >= 5 ? info.height : info.width;
    j->oh = info.orientation >= 5 ? info.width : info.height;
    if (header_filters(j, o, &info) != 0)
        goto out;

    memset(&dop, 0, sizeof dop);
    dop.apply_exif = 1;
    dop.alpha = IMG_ALPHA_WHITE;
    dop.max_pixels = o->max_pixels;
    j->keep_original = !o->reencode && o->resize_mode == IMG_RESIZE_NO;
    if (j->keep_original) {
        /* Still decoded (at 1/8 scale where possible) so that a truncated or
         * corrupt file is never stored. */
        dop.min_width = dop.min_height = 1;
    } else if (o->resize_mode != IMG_RESIZE_NO) {
        img_resize_mode_hint(o->resize_mode, o->image_size, j->ow, j->oh, &dop.min_width,
                             &dop.min_height);
    }
    rc = img_decode(j->body.data, j->body.len, &dop, &im, &e);
    t1 = thread_cpu();
    if (rc != 0) {
        fail(j, class_of_img(rc), "%s", e.msg);
        goto out_t1;
    }
    if (j->keep_original) {
        j->format = j->orig_format;
        j->w = j->ow;
        j->h = j->oh;
        memcpy(j->sha, j->orig_sha, sizeof j->sha);
        j->stored_bytes = j->orig_bytes;
        t2 = t3 = t1;
        goto out_t3;
    }
    const img_image *src = &im;
    if (o->resize_mode != IMG_RESIZE_NO) {
        rc = img_resize_mode(&im, o->resize_mode, o->image_size, o->resize_only_if_bigger, &rs, &e);
        if (rc != 0) {
            fail(j, FETCH_EC_INTERNAL, "%s", e.msg);
            t2 = t3 = thread_cpu();
            goto out_t3;
        }
        src = &rs;
    }
    t2 = thread_cpu();
    rc = img_encode_jpeg(src, o->quality, &j->out, &e);
    t3 = thread_cpu();
    if (rc != 0) {
        fail(j, FETCH_EC_INTERNAL, "%s", e.msg);
        goto out_t3;
    }
    j->format = "jpeg";
    j->w = src->width;
    j->h = src->height;
    j->stored_bytes = (int64_t)j->out.len;
    if (wp_sha256_buf(j->out.data, j->out.len, sha) != 0) {
        fail(j, FETCH_EC_INTERNAL, "%s", "sha256 failed");
        goto out_t3;
    }
    wp_hex(sha, WP_SHA256_LEN, j->sha);
out_t3:
    pthread_mutex_lock(&p->mu);
    p->cpu_decode += t1 - t0;
    p->cpu_resize += t2 - t1;
    p->cpu_encode += t3 - t2;
    pthread_mutex_unlock(&p->mu);
    img_free(&im);
    img_free(&rs);
    if (j->err_class == NULL && !j->keep_original)
        wp_buf_free(&j->body); /* only the stored bytes travel on */
    return;
out_t1:
    pthread_mutex_lock(&p->mu);
    p->cpu_decode += t1 - t0;
    pthread_mutex_unlock(&p->mu);
    return;
out:
    pthread_mutex_lock(&p->mu);
    p->cpu_decode += thread_cpu() - t0;
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        job *j;
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->in_head == NULL)
            pthread_cond_wait(&p->cv_in, &p->mu);
        if (p->in_head == NULL) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        j = p->in_head;
        p->in_head = j->next;
        if (p->in_head == NULL)
            p->in_tail = NULL;
        p->nin--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);

        process(p, j);

        pthread_mutex_lock(&p->mu);
        p->busy--;
        list_push(&p->out_head, &p->out_tail, j);
        pthread_cond_signal(&p->cv_out);
        pthread_mutex_unlock(&p->mu);
        net_wakeup(p->e); /* the main loop may be waiting in poll */
    }
}

static int pool_start(pool *p, int n, wp_err *err)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_in, NULL);
    pthread_cond_init(&p->cv_out, NULL);
    for (p->n = 0; p->n < n; p->n++)
        if (pthread_create(&p->th[p->n], NULL, worker, p) != 0)
            return wp_err_set(err, WP_ENOMEM, "fetch: cannot start worker thread %d", p->n);
    return 0;
}

static void pool_stop(pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv_in);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    while (p->out_head) {
        job *j = p->out_head;
        p->out_head = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&p->cv_in);
    pthread_cond_destroy(&p->cv_out);
    pthread_mutex_destroy(&p->mu);
}

/* ---- network callbacks (main thread) ---------------------------------------- */

static const char *sniff(void *cb_ud, void *ud, const void *data, size_t n)
{
    img_info info;
    /* Give up on HTML, JSON and the like after the first bytes instead of
     * downloading them whole. */
    if (img_probe(data, n, &info, NULL) == IMG_ENOTIMAGE)
        return FETCH_EC_NOT_IMAGE;
    return NULL;
}

static void on_done(void *cb_ud, net_result *r)
{
    fetch_ctx *f = cb_ud;
    job *j = r->ud;
    if (r->error_class != NULL && strcmp(r->error_class, NET_EC_ABORTED) == 0) {
        /* Stopped: the image stays pending for the next run. */
        job_free(j);
        f->inflight--;
        return;
    }
    j->http_status = r->http_status;
    j->attempts = r->attempts;
    j->fetch_ms = (int64_t)(r->download_s * 1000 + 0.5);
    snprintf(j->opt_out, sizeof j->opt_out, "%s", r->opt_out);
    if (r->attempts > 1)
        f->stats.retried += (uint64_t)(r->attempts - 1);
    if (r->error_class != NULL) {
        j->net_class = r->error_class;
        snprintf(j->detail, sizeof j->detail, "%s", r->detail);
        list_push(&f->ready_head, &f->ready_tail, j);
        return;
    }
    j->body = r->body;
    memset(&r->body, 0, sizeof r->body);
    pthread_mutex_lock(&f->p.mu);
    list_push(&f->p.in_head, &f->p.in_tail, j);
    f->p.nin++;
    pthread_cond_signal(&f->p.cv_in);
    pthread_mutex_unlock(&f->p.mu);
}

/* ---- recording (main thread) ----------------------------------------------------- */

static int counts_json(const fetch_stats *s, wp_buf *b);

/* Records the counts so far on the run, inside the batch's transaction. */
static int report_counts(fetch_ctx *f, wp_err *err)
{
    wp_buf counts = {0};
    int rc;
    if (f->run == NULL)
        return 0;
    if (counts_json(&f->stats, &counts) != 0) {
        wp_buf_free(&counts);
        return wp_err_set(err, WP_ENOMEM, "fetch: out of memory");
    }
    rc = cat_run_counts(f->run, counts.data, err);
    wp_buf_free(&counts);
    return rc;
}

static int flush(fetch_ctx *f, wp_err *err)
{
    int rc = 0, i;
    f->last_flush = wp_now();
    if (f->nbatch == 0)
        return 0;
    /* Bytes first, durably; only then the rows that point at them. */
    if ((rc = st_sync(f->st, err)) != 0)
        goto out;
    if ((rc = cat_begin(f->c, err)) != 0)
        goto out;
    for (i = 0; i < f->nbatch; i++) {
        job *j = f->batch[i];
        cat_image_result r = cat_image_result_init(j->id);
        const char *cls = j->net_class ? j->net_class : j->err_class;
        r.state = cls ? "error" : "ok";
        r.error_class = cls;
        r.error_detail = cls ? j->detail : NULL;
        r.http_status = j->http_status > 0 ? j->http_status : -1;
        r.attempts = j->prev_attempts + j->attempts;
        r.opt_out = j->opt_out[0] ? j->opt_out : NULL;
        r.orig_format = j->orig_format;
        if (j->ow > 0) {
            r.orig_width = j->ow;
            r.orig_height = j->oh;
        }
        if (j->net_class == NULL) {
            r.orig_bytes = j->orig_bytes;
            r.orig_sha256 = j->orig_sha;
        }
        if (cls == NULL) {
            r.format = j->format;
            r.width = j->w;
            r.height = j->h;
            r.bytes = j->stored_bytes;
            r.sha256 = j->sha;
            r.store_file = j->store_file;
            r.store_offset = j->store_offset;
        }
        r.fetch_ms = j->fetch_ms;
        r.run_id = f->run_id;
        if ((rc = cat_image_set_result(f->c, &r, err)) != 0) {
            cat_rollback(f->c);
            goto out;
        }
    }
    if ((rc = report_counts(f, err)) != 0) {
        cat_rollback(f->c);
        goto out;
    }
    rc = cat_commit(f->c, err);
out:
    for (i = 0; i < f->nbatch; i++)
        job_free(f->batch[i]);
    f->nbatch = 0;
    return rc;
}

static int record(fetch_ctx *f, job *j, wp_err *err)
{
    const char *cls = j->net_class ? j->net_class : j->err_class;
    f->inflight--;
    f->stats.done++;
    f->prog.done++;
    if (cls == NULL) {
        const wp_buf *b = j->keep_original ? &j->body : &j->out;
        int rc = st_append(f->st, b->data, b->len, &j->store_file, &j->store_offset, err);
        if (rc != 0) {
            job_free(j);
            return rc;
        }
        f->stats.ok++;
        f->stats.bytes_out += b->len;
        wp_buf_free(&j->body);
        wp_buf_free(&j->out);
    } else {
        f->stats.errors++;
        f->prog.errors++;
        wp_report_event(f->rep, WP_LOG_DEBUG, cls, "%s", j->detail);
        wp_buf_free(&j->body);
    }
    if (j->orig_bytes > 0) {
        f->stats.bytes_in += (uint64_t)j->orig_bytes;
        f->prog.bytes += (uint64_t)j->orig_bytes;
    }
    f->batch[f->nbatch++] = j;
    if (f->nbatch >= f->o->batch)
        return flush(f, err);
    return 0;
}

/* Records everything finished so far. */
static int drain(fetch_ctx *f, wp_err *err)
{
    job *list, *j;
    int rc = 0;
    while ((j = f->ready_head) != NULL) {
        f->ready_head = j->next;
        if (f->ready_head == NULL)
            f->ready_tail = NULL;
        if (rc == 0)
            rc = record(f, j, err);
        else
            job_free(j), f->inflight--;
    }
    pthread_mutex_lock(&f->p.mu);
    list = f->p.out_head;
    f->p.out_head = f->p.out_tail = NULL;
    pthread_mutex_unlock(&f->p.mu);
    while ((j = list) != NULL) {
        list = j->next;
        if (rc == 0)
            rc = record(f, j, err);
        else
            job_free(j), f->inflight--;
    }
    if (rc == 0 && wp_now() - f->last_flush >= FLUSH_INTERVAL_S)
        rc = flush(f, err);
    return rc;
}

static int online_cpus(void);

/* Under a given --max-memory: what fetch holds besides decoded pixels and
 * the bodies (the catalog's page cache, the queues, libcurl). */
#define FETCH_BASE_BYTES ((int64_t)64 << 20)

/* The memory budget (--max-memory): half of it for decoded pixels, shared
 * by the workers (image/budget.c); refused when one image at --max-pixels
 * could not be decoded within that half. When --max-memory is given, the
 * other half (less FETCH_BASE_BYTES) holds the downloaded bodies, each up to
 * --max-bytes: one per transfer in flight, and the workers' (one each
 * being decoded, up to 2 x workers + 4 queued, where the network pauses).
 * *parallel is lowered to what fits (a `parallel_lowered` warning); refused
 * naming the options when not one transfer fits. */
static int mem_plan(const fetch_opts *o, int *parallel, const wp_reporter *rep, wp_err *err)
{
    int workers = o->workers > 0 ? o->workers : online_cpus();
    int64_t budget = wp_mem_budget(workers), decode = budget / 2;
    int64_t need = img_budget_need(o->max_pixels);
    int64_t body = o->net.max_bytes > 0 ? o->net.max_bytes : 1, queue = 3 * (int64_t)workers + 4;
    int64_t fit;
    if (need > decode)
        return wp_err_set(err, WP_ELIMIT,
                          "--max-memory %lld MiB is too low for fetch: decoding one image of "
                          "--max-pixels %lld needs up to %lld MiB, and decoding gets half the "
                          "budget; give --max-memory %lld M or more, or lower --max-pixels",
                          (long long)(budget >> 20), (long long)o->max_pixels,
                          (long long)(need >> 20), (long long)((2 * need + (1 << 20) - 1) >> 20));
    if (wp_mem_is_set()) {
        fit = (budget - decode - FETCH_BASE_BYTES) / body - queue;
        if (fit < 1) {
            int64_t bodies = (queue + 1) * body, want = 2 * (bodies + FETCH_BASE_BYTES);
            if (want < 2 * need)
                want = 2 * need;
            return wp_err_set(err, WP_ELIMIT,
                              "--max-memory %lld MiB is too low for fetch: one download and the "
                              "workers' %lld bodies (--workers %d) of up to --max-bytes %lld "
                              "bytes each need %lld MiB, beside %lld MiB for the process and "
                              "half the budget for decoding; give --max-memory %lldM or more, "
                              "or lower --max-bytes or --workers",
                              (long long)(budget >> 20), (long long)queue, workers, (long long)body,
                              (long long)((bodies + (1 << 20) - 1) >> 20),
                              (long long)(FETCH_BASE_BYTES >> 20),
                              (long long)((want + (1 << 20) - 1) >> 20));
        }
        if (fit < *parallel) {
            wp_report_event(rep, WP_LOG_WARN, "parallel_lowered",
                            "fetch: --parallel %d lowered to %lld to fit --max-memory %lld MiB "
                            "(each download may buffer --max-bytes %lld bytes, beside the "
                            "workers' %lld bodies)",
                            *parallel, (long long)fit, (long long)(budget >> 20), (long long)body,
                            (long long)queue);
            *parallel = (int)fit;
        }
    }
    img_budget_set(decode);
    return 0;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

/* runs.params of a fetch run (common/wp.h's JSON writer): o's options,
 * and `parallel_asked` when the memory budget lowered --parallel from
 * asked. 0 or WP_ENOMEM. */
static int params_json(const fetch_opts *o, int asked, wp_buf *b)
{
    wp_json j;
    wp_json_init(&j, b);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "parallel", o->net.parallel);
    if (asked != o->net.parallel)
        wp_json_int(&j, "parallel_asked", asked);
    wp_json_int(&j, "per_host", o->net.per_host);
    wp_json_real(&j, "host_delay", o->net.host_delay_s);
    wp_json_int(&j, "retries", o->net.retries);
    wp_json_int(&j, "max_bytes", o->net.max_bytes);
    wp_json_int(&j, "resize_mode", o->resize_mode);
    wp_json_int(&j, "image_size", o->image_size);
    wp_json_int(&j, "quality", o->quality);
    wp_json_int(&j, "reencode", o->reencode);
    wp_json_int(&j, "max_pixels", o->max_pixels);
    if (!wp_part_all(&o->part)) {
        char part[32];
        snprintf(part, sizeof part, "%d/%d", o->part.i, o->part.n);
        wp_json_str(&j, "part", part);
    }
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

/* runs.counts of a fetch run. 0 or WP_ENOMEM. */
static int counts_json(const fetch_stats *s, wp_buf *b)
{
    wp_json j;
    wp_json_init(&j, b);
    wp_json_obj_begin(&j, NULL);
    wp_json_uint(&j, "done", s->done);
    wp_json_uint(&j, "ok", s->ok);
    wp_json_uint(&j, "errors", s->errors);
    wp_json_uint(&j, "retried", s->retried);
    wp_json_uint(&j, "bytes_in", s->bytes_in);
    wp_json_uint(&j, "bytes_out", s->bytes_out);
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

int fetch_run(cat *c, st_store *st, const fetch_opts *o, const wp_reporter *rep, fetch_stats *stats,
              wp_err *err)
{
    fetch_ctx *f = calloc(1, sizeof *f);
    wp_arena *arena = NULL;
    cat_image_todo *todo = NULL;
    int ntodo = 0, itodo = 0, exhausted = 0, stopping = 0, rc = 0, pool_up = 0;
    int64_t after_id = 0, submitted = 0, window;
    double t_start = wp_now(), cpu0 = thread_cpu();
    wp_buf params = {0}, counts = {0};
    int asked;      /* --parallel as given */
    fetch_opts eff; /* o with --parallel as the memory budget has it (mem_plan) */

    if (f == NULL)
        return wp_err_set(err, WP_ENOMEM, "fetch: out of memory");
    eff = *o;
    asked = o->net.parallel;
    if ((rc = mem_plan(o, &eff.net.parallel, rep, err)) != 0)
        goto out; /* before the run is recorded and any request */
    o = &eff;
    f->c = c;
    f->st = st;
    f->o = o;
    f->rep = rep;
    f->prog.stage = "fetch";
    f->last_flush = wp_now();
    window = o->window > 0 ? o->window : 8 * (int64_t)o->net.parallel;
    if (window < 16)
        window = 16;
    if (window > FETCH_WINDOW_MAX)
        window = FETCH_WINDOW_MAX;
    f->batch = calloc((size_t)(o->batch > 0 ? o->batch : 1), sizeof *f->batch);
    todo = calloc(PAGE_MAX, sizeof *todo);
    arena = wp_arena_new(1 << 16);
    if (f->batch == NULL || todo == NULL || arena == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "fetch: out of memory");
        goto out;
    }
    f->prog.total = (uint64_t)cat_count_images_pending(c);
    if (o->limit > 0 && f->prog.total > (uint64_t)o->limit)
        f->prog.total = (uint64_t)o->limit;
    if (params_json(o, asked, &params) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "fetch: out of memory");
        goto out;
    }
    if ((rc = cat_run_begin(c, "fetch", params.data, &f->run, err)) != 0)
        goto out;
    f->run_id = cat_run_id(f->run);
    /* two descriptors per connection at most (socket, resolver), the
     * catalog, store, worker pipes and a margin: fail now, not midway */
    {
        char what[64];
        snprintf(what, sizeof what, "fetch --parallel %d", o->net.parallel);
        if ((rc = wp_fd_reserve((int64_t)o->net.parallel * 2 + 64, what, err)) != 0)
            goto out;
    }
    if ((rc = net_new(&o->net, on_done, sniff, f, &f->e, err)) != 0)
        goto out;
    f->p.e = f->e;
    f->p.o = o;
    if ((rc = pool_start(&f->p, o->workers > 0 ? o->workers : online_cpus(), err)) != 0) {
        pool_up = 1;
        goto out;
    }
    pool_up = 1;

    for (;;) {
        if (!stopping && wp_stop_requested()) {
            /* Ctrl-C: no new work; transfers are abandoned (their images stay
             * pending), finished bodies are still processed and recorded. */
            stopping = 1;
            net_abort_all(f->e);
        }
        while (!stopping && !exhausted && f->inflight < window) {
            if (itodo == ntodo) {
                wp_arena_reset(arena);
                itodo = 0;
                if ((rc = cat_images_pending(c, after_id, PAGE_MAX, todo, &ntodo, arena, err)) != 0)
                    goto out;
                if (ntodo == 0) {
                    exhausted = 1;
                    break;
                }
            }
            if (o->limit > 0 && submitted >= o->limit) {
                exhausted = 1;
                break;
            }
            cat_image_todo *t = &todo[itodo++];
            if (!wp_part_has(&o->part, wp_part_key_host(t->url, strlen(t->url)))) {
                after_id = t->id; /* another part's host: left pending */
                continue;
            }
            job *j = calloc(1, sizeof *j);
            if (j == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "fetch: out of memory");
                goto out;
            }
            j->id = t->id;
            j->prev_attempts = t->attempts;
            after_id = t->id;
            f->inflight++;
            submitted++;
            if (net_submit(f->e, t->url, 0, j, NULL) != 0) {
                /* An URL the engine refuses outright (over NET_URL_MAX). */
                j->net_class = NET_EC_BAD_URL;
                snprintf(j->detail, sizeof j->detail, "image %lld: URL too long", (long long)j->id);
                list_push(&f->ready_head, &f->ready_tail, j);
            }
        }
        if ((rc = drain(f, err)) != 0)
            goto out;
        wp_report_progress(rep, &f->prog);
        if (f->inflight == 0 && (exhausted || stopping))
            break;
        /* Backpressure: while the workers are behind, leave the network
         * alone so downloaded bodies cannot pile up in memory. */
        pthread_mutex_lock(&f->p.mu);
        int behind = f->p.nin >= 2 * f->p.n + 4;
        if (behind && f->p.out_head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->p.cv_out, &f->p.mu, &ts);
        }
        pthread_mutex_unlock(&f->p.mu);
        if (!behind && (rc = net_run(f->e, POLL_MS, err)) != 0)
            goto out;
    }
    rc = flush(f, err);
    if (rc == 0 && stopping)
        rc = wp_err_set(err, WP_ESTOP, "fetch: stopped; %lld images left pending",
                        (long long)cat_count_images_pending(c));
out:
    if (f->e != NULL)
        net_abort_all(f->e); /* after an error: the rest stays pending */
    if (pool_up)
        pool_stop(&f->p);
    while (f->ready_head) {
        job *j = f->ready_head;
        f->ready_head = j->next;
        job_free(j);
    }
    if (rc != 0 && rc != WP_ESTOP) {
        wp_err keep = err ? *err : (wp_err){0};
        for (int i = 0; i < f->nbatch; i++)
            job_free(f->batch[i]);
        f->nbatch = 0;
        if (err)
            *err = keep;
    } else {
        int frc = flush(f, err);
        if (rc == 0)
            rc = frc;
    }
    net_stats ns;
    if (f->e != NULL) {
        net_get_stats(f->e, &ns);
        f->stats.max_host_active = ns.max_host_active;
        net_free(f->e);
    }
    f->stats.wall_s = wp_now() - t_start;
    f->stats.cpu_net_s = thread_cpu() - cpu0;
    f->stats.cpu_decode_s = f->p.cpu_decode;
    f->stats.cpu_resize_s = f->p.cpu_resize;
    f->stats.cpu_encode_s = f->p.cpu_encode;
    f->stats.stopped = rc == WP_ESTOP;
    /* Out of memory here leaves the last reported counts, not the run open. */
    if (counts_json(&f->stats, &counts) != 0)
        wp_buf_reset(&counts);
    rc = cat_run_end(f->run, rc, counts.len > 0 ? counts.data : NULL, err);
    wp_buf_free(&params);
    wp_buf_free(&counts);
    if (stats)
        *stats = f->stats;
    wp_arena_free(arena);
    free(todo);
    free(f->batch);
    free(f);
    return rc;
}
