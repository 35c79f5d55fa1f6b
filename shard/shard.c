/*
 * shard/shard.c: WebDataset shards through libarchive's ustar writer.
 *
 * One pass over the catalog cursor decides everything: which pairs are
 * samples, where each shard ends, what every member holds. Shards the
 * catalog records as done (and whose file is in place with the recorded
 * size) are walked without writing, so a re-run finishes only what is
 * missing and the result equals a single uninterrupted run.
 */
#include "shard.h"
#include "parquet/parquet.h"
#include "shard_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_TRAILER        (2 * SHARD_TAR_BLOCK) /* two zero blocks end a tar */
#define SHARD_PROGRESS_EVERY 256                   /* pairs between progress reports */
#define SHARD_WRITEBACK      (8 << 20)             /* bytes between writeback kicks */
#define SHARD_PARALLEL_MIN   (64 << 10)            /* images this big are hashed beside the write */

int64_t shard_member_bytes(int64_t n)
{
    return SHARD_TAR_BLOCK + (n + SHARD_TAR_BLOCK - 1) / SHARD_TAR_BLOCK * SHARD_TAR_BLOCK;
}

typedef struct out_sink {
    int fd;
    wp_sha256 *h;
    int64_t bytes;
    int64_t flushed; /* bytes handed to writeback already */
} out_sink;

typedef struct open_shard {
    int index;
    char name[SHARD_NAME_MAX];
    char path[WP_PATH_MAX], tmp[WP_PATH_MAX];
    int writing; /* 0: done earlier, only walked */
    int foreign; /* another part's shard (or the planning walk): walked, nothing written */
    struct archive *a;
    out_sink out;
    cat_shard_row prev; /* the earlier run's row when walking */
    int64_t samples, bytes, first_pair, last_pair;
    json_t *stats;
    pq_writer *pq; /* --parquet: NNNNN.parquet beside the tar (img2dataset's) */
} open_shard;

/* A helper thread that checks one image's sha256 while the main thread
 * writes its members. It sleeps on a condition variable between images
 * (OpenMP's spinning workers were ruinous on a busy machine). */
typedef struct verifier {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t go, done_cv;
    int job, done, quit;
    struct run *r;
    const cat_sample *s;
    int rc;
    wp_err err;
} verifier;

typedef struct run {
    cat *c;
    st_store *s;
    const shard_opts *o;
    const wp_reporter *rep;
    shard_stats *st;
    char outdir[PATH_MAX];
    cat_shard_cursor *cur;
    struct archive_entry *entry;
    wp_buf img, meta;
    json_t *manifest_shards;
    json_t *pending; /* stats of excluded pairs before the next shard opens */
    open_shard sh;
    int have_shard;
    int next_index;
    verifier v;
    cat_run *crun;          /* this run's row in the catalog */
    double t0;              /* when the run began (counts' elapsed_s) */
    int planning;           /* --part's first walk: only counts the shards of the plan */
    int64_t own_lo, own_hi; /* the shards this run writes: [own_lo, own_hi) */
} run;

/* The run's counts as a JSON object (runs.counts); NULL when out of memory.
 * The caller frees it. */
static char *counts_json(const shard_stats *st, double elapsed)
{
    wp_buf b = {0};
    wp_json j;
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "shards", st->shards);
    wp_json_int(&j, "written", st->written);
    wp_json_int(&j, "skipped", st->skipped);
    wp_json_int(&j, "samples", st->samples);
    wp_json_int(&j, "pairs", st->pairs);
    wp_json_int(&j, "excluded", st->excluded);
    wp_json_int(&j, "bytes", st->bytes);
    wp_json_int(&j, "bytes_written", st->bytes_written);
    if (elapsed >= 0)
        wp_json_real(&j, "elapsed_s", elapsed);
    wp_json_obj_end(&j);
    if (wp_json_finish(&j) != 0) {
        wp_buf_free(&b);
        return NULL;
    }
    return wp_buf_steal(&b);
}

/* Records the counts so far on the run (after each shard: a killed run
 * shows how far it got). */
static int report_counts(run *r, int final, wp_err *err)
{
    char *cj = counts_json(r->st, final ? wp_now() - r->t0 : -1);
    int rc;
    if (cj == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_run_counts(r->crun, cj, err);
    free(cj);
    return rc;
}

static char *params_json(const shard_opts *o)
{
    wp_buf b = {0};
    wp_json j;
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "output", o->output);
    wp_json_int(&j, "per_shard", o->per_shard);
    wp_json_int(&j, "max_bytes", o->max_bytes);
    if (o->shuffle)
        wp_json_int(&j, "shuffle", (int64_t)o->seed);
    else
        wp_json_null(&j, "shuffle");
    wp_json_int(&j, "mtime", o->mtime);
    if (!wp_part_all(&o->part)) {
        char part[32];
        snprintf(part, sizeof part, "%d/%d", o->part.i, o->part.n);
        wp_json_str(&j, "part", part);
    }
    wp_json_obj_end(&j);
    if (wp_json_finish(&j) != 0) {
        wp_buf_free(&b);
        return NULL;
    }
    return wp_buf_steal(&b);
}

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    out_sink *o = ud;
    const char *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(o->fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            archive_set_error(a, errno, "write failed: %s", strerror(errno));
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (wp_sha256_update(o->h, buf, n) != 0) {
        archive_set_error(a, EINVAL, "sha256 failed");
        return -1;
    }
    o->bytes += (int64_t)n;
    if (o->bytes - o->flushed >= SHARD_WRITEBACK) {
        /* Start writeback of what is written so far: the disk works while
         * we go on, and the fsync at the end has little left to wait for.
         * Only a hint; an error here shows up at that fsync. */
        (void)sync_file_range(o->fd, o->flushed, o->bytes - o->flushed, SYNC_FILE_RANGE_WRITE);
        o->flushed = o->bytes;
    }
    return (la_ssize_t)n;
}

/* Adds 1 to obj[key] (an integer). */
static void bump(json_t *obj, const char *key, json_int_t by)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        json_object_set_new(obj, key, json_integer(by));
    else
        json_integer_set(v, json_integer_value(v) + by);
}

static json_t *stats_new(void)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "pairs", json_integer(0));
    json_object_set_new(j, "samples", json_integer(0));
    json_object_set_new(j, "by_state", json_object());
    json_object_set_new(j, "by_error_class", json_object());
    json_object_set_new(j, "dropped", json_object());
    json_object_set_new(j, "by_format", json_object());
    return j;
}

static void stats_count(json_t *j, const cat_sample *s)
{
    bump(j, "pairs", 1);
    bump(json_object_get(j, "by_state"), s->state ? s->state : "unknown", 1);
    if (s->error_class != NULL)
        bump(json_object_get(j, "by_error_class"), s->error_class, 1);
    if (s->drop != NULL) {
        /* "stage/reason" by the reason's kind: dedup's near:ID and
         * semantic:ID name a group each, counted as near / semantic */
        char key[WP_PATH_MAX + 64];
        const char *slash = strchr(s->drop, '/');
        size_t head = slash ? (size_t)(slash - s->drop) + 1 : 0;
        snprintf(key, sizeof key, "%.*s%.*s", (int)head, s->drop,
                 (int)wp_reason_kind_len(s->drop + head), s->drop + head);
        bump(json_object_get(j, "dropped"), key, 1);
    }
    if (s->selected) {
        bump(j, "samples", 1);
        bump(json_object_get(j, "by_format"), s->format ? s->format : "unknown", 1);
    }
}

static const char *ext_for(const char *format)
{
    if (format == NULL)
        return "bin";
    if (strcmp(format, "jpeg") == 0)
        return "jpg";
    if (strcmp(format, "png") == 0)
        return "png";
    if (strcmp(format, "webp") == 0)
        return "webp";
    return "bin";
}

static int add_member(run *r, const char *name, const void *p, size_t n, wp_err *err)
{
    struct archive *a = r->sh.a;
    struct archive_entry *e = r->entry;
    size_t off = 0;

    archive_entry_clear(e);
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, (time_t)r->o->mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK)
        goto fail;
    while (off < n) {
        la_ssize_t w = archive_write_data(a, (const char *)p + off, n - off);
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (archive_write_finish_entry(a) != ARCHIVE_OK)
        goto fail;
    return 0;
fail:
    return wp_err_set(err, SHARD_ETAR, "%s: %s: %s", r->sh.tmp, name,
                      archive_error_string(a) ? archive_error_string(a) : "tar write failed");
}

/* Throws away a shard being written (stop, failure): its .tmp goes. */
static void abandon(run *r)
{
    if (!r->have_shard)
        return;
    if (r->sh.a != NULL) {
        archive_write_free(r->sh.a);
        r->sh.a = NULL;
    }
    if (r->sh.out.fd >= 0) {
        close(r->sh.out.fd);
        r->sh.out.fd = -1;
        unlink(r->sh.tmp);
    }
    wp_sha256_free(r->sh.out.h);
    r->sh.out.h = NULL;
    pq_writer_free(r->sh.pq); /* removes its .tmp */
    r->sh.pq = NULL;
    json_decref(r->sh.stats);
    r->sh.stats = NULL;
    r->have_shard = 0;
}

/* The columns of img2dataset's per-shard metadata Parquet. */
static const pq_column shard_pq_cols[] = {
    {"key", PQ_STRING, 0},    {"url", PQ_STRING, 0},           {"caption", PQ_STRING, 1},
    {"status", PQ_STRING, 0}, {"error_message", PQ_STRING, 1}, {"width", PQ_INT64, 1},
    {"height", PQ_INT64, 1},  {"original_width", PQ_INT64, 1}, {"original_height", PQ_INT64, 1},
    {"sha256", PQ_STRING, 1},
};
#define SHARD_PQ_NCOLS ((int)(sizeof shard_pq_cols / sizeof shard_pq_cols[0]))

static pq_value pq_str(const char *s, size_t n)
{
    return s ? (pq_value){.type = PQ_STRING, .s = s, .len = n} : (pq_value){.type = PQ_NULL};
}

static pq_value pq_int(int64_t v)
{
    return v >= 0 ? (pq_value){.type = PQ_INT64, .i = v} : (pq_value){.type = PQ_NULL};
}

/* One sample's row of the shard's Parquet (status success, as img2dataset
 * writes for the samples it stored). */
static int pq_row(open_shard *sh, const cat_sample *s, wp_err *err)
{
    pq_value v[SHARD_PQ_NCOLS] = {
        pq_str(s->uid, strlen(s->uid)),
        pq_str(s->url ? s->url : "", s->url ? strlen(s->url) : 0),
        pq_str(s->text, s->text_len),
        pq_str("success", 7),
        {.type = PQ_NULL},
        pq_int(s->width),
        pq_int(s->height),
        pq_int(s->orig_width),
        pq_int(s->orig_height),
        pq_str(s->sha256, s->sha256 ? strlen(s->sha256) : 0),
    };
    return pq_writer_append(sh->pq, v, err);
}

static int open_next(run *r, wp_err *err)
{
    open_shard *sh = &r->sh;
    char fname[SHARD_NAME_MAX + 8];
    struct stat sb;
    int rc;

    memset(sh, 0, sizeof *sh);
    sh->out.fd = -1;
    sh->index = r->next_index++;
    sh->first_pair = sh->last_pair = -1;
    snprintf(sh->name, sizeof sh->name, "%05d.tar", sh->index);
    snprintf(fname, sizeof fname, "%s.tmp", sh->name);
    if ((rc = wp_path_join(sh->path, r->outdir, sh->name, err)) != 0 ||
        (rc = wp_path_join(sh->tmp, r->outdir, fname, err)) != 0)
        return rc;
    sh->stats = r->pending ? r->pending : stats_new();
    r->pending = NULL;
    if (sh->stats == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    r->have_shard = 1;
    if (r->planning || sh->index < r->own_lo || sh->index >= r->own_hi) {
        sh->foreign = 1;
        return 0;
    }
    rc = cat_shard_get(r->c, r->outdir, sh->name, &sh->prev, err);
    if (rc != 0 && rc != WP_ENOENT)
        return rc;
    if (rc == 0 && sh->prev.done && stat(sh->path, &sb) == 0 && sb.st_size == sh->prev.bytes)
        return 0; /* done by an earlier run: walk it, write nothing */
    sh->writing = 1;
    sh->out.fd = open(sh->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sh->out.fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot create: %s", sh->tmp, strerror(errno));
    sh->out.h = wp_sha256_new();
    sh->a = archive_write_new();
    if (sh->out.h == NULL || sh->a == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    /* ustar: names here are short ASCII, so no pax records are needed and
     * headers carry nothing but what is set below. The last block is not
     * padded, so a shard's size is exactly its members plus the trailer. */
    if (archive_write_set_format_ustar(sh->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(sh->a, SHARD_WRITE_BLOCK) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(sh->a, 1) != ARCHIVE_OK ||
        archive_write_open2(sh->a, &sh->out, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
        return wp_err_set(err, SHARD_ETAR, "%s: %s", sh->tmp,
                          archive_error_string(sh->a) ? archive_error_string(sh->a)
                                                      : "cannot start tar");
    if (r->o->parquet) {
        char pname[SHARD_NAME_MAX + 16], ppath[WP_PATH_MAX];
        pq_write_opts wo = {.codec = PQ_SNAPPY};
        snprintf(pname, sizeof pname, "%05d.parquet", sh->index);
        if ((rc = wp_path_join(ppath, r->outdir, pname, err)) != 0 ||
            (rc = pq_writer_open(ppath, shard_pq_cols, SHARD_PQ_NCOLS, &wo, &sh->pq, err)) != 0)
            return rc;
    }
    return 0;
}

static int write_stats(run *r, const char *sha, wp_err *err)
{
    open_shard *sh = &r->sh;
    char name[SHARD_NAME_MAX + 16], path[WP_PATH_MAX];
    char *txt;
    int rc;

    json_object_set_new(sh->stats, "name", json_string(sh->name));
    json_object_set_new(sh->stats, "bytes", json_integer((json_int_t)(sh->bytes + SHARD_TRAILER)));
    json_object_set_new(sh->stats, "sha256", json_string(sha));
    snprintf(name, sizeof name, "%05d_stats.json", sh->index);
    if ((rc = wp_path_join(path, r->outdir, name, err)) != 0)
        return rc;
    txt = wp_json_tree_text(sh->stats, WP_JSON_INDENT(2) | WP_JSON_SORT_KEYS);
    if (txt == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = wp_write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

static int close_current(run *r, wp_err *err)
{
    open_shard *sh = &r->sh;
    cat_shard_row row;
    int64_t total = sh->bytes + SHARD_TRAILER;
    json_t *m;
    int rc;

    if (sh->foreign) { /* in the plan, not ours to write or record */
        r->st->shards++;
        r->st->bytes += total;
        json_decref(sh->stats);
        sh->stats = NULL;
        r->have_shard = 0;
        return 0;
    }
    memset(&row, 0, sizeof row);
    row.samples = sh->samples;
    row.bytes = total;
    row.first_pair = sh->first_pair;
    row.last_pair = sh->last_pair;
    if (sh->writing) {
        uint8_t md[WP_SHA256_LEN];
        if (archive_write_close(sh->a) != ARCHIVE_OK)
            return wp_err_set(err, SHARD_ETAR, "%s: %s", sh->tmp,
                              archive_error_string(sh->a) ? archive_error_string(sh->a)
                                                          : "cannot finish tar");
        archive_write_free(sh->a);
        sh->a = NULL;
        if (sh->out.bytes != total)
            return wp_err_set(err, SHARD_ETAR, "%s: wrote %lld bytes, planned %lld", sh->tmp,
                              (long long)sh->out.bytes, (long long)total);
        if (wp_sha256_final(sh->out.h, md) != 0)
            return wp_err_set(err, WP_EINVAL, "sha256 failed");
        wp_hex(md, sizeof md, row.sha256);
        if (fsync(sh->out.fd) != 0)
            return wp_err_set(err, WP_EIO, "%s: fsync failed: %s", sh->tmp, strerror(errno));
        close(sh->out.fd);
        sh->out.fd = -1;
        /* the Parquet first: a shard whose tar has its name is complete */
        if (sh->pq != NULL) {
            rc = pq_writer_close(sh->pq, err);
            sh->pq = NULL;
            if (rc != 0)
                return rc;
        }
        /* Only a complete, durable shard gets its final name. */
        if (rename(sh->tmp, sh->path) != 0)
            return wp_err_set(err, WP_EIO, "%s: cannot rename: %s", sh->tmp, strerror(errno));
        if ((rc = wp_fsync_dir(r->outdir, err)) != 0)
            return rc;
        r->st->written++;
        r->st->bytes_written += total;
    } else {
        if (sh->prev.samples != sh->samples || sh->prev.bytes != total)
            return wp_err_set(err, SHARD_ECHANGED,
                              "%s: an earlier run wrote %lld samples / %lld bytes, the catalog "
                              "now gives %lld / %lld: it changed since; shard into a new "
                              "output directory (-o)",
                              sh->path, (long long)sh->prev.samples, (long long)sh->prev.bytes,
                              (long long)sh->samples, (long long)total);
        snprintf(row.sha256, sizeof row.sha256, "%s", sh->prev.sha256);
        r->st->skipped++;
    }
    if ((rc = write_stats(r, row.sha256, err)) != 0)
        return rc;
    if (sh->writing &&
        (rc = cat_shard_put(r->c, r->outdir, sh->name, &row, cat_run_id(r->crun), err)) != 0)
        return rc;
    m = json_object();
    json_object_set_new(m, "name", json_string(sh->name));
    json_object_set_new(m, "samples", json_integer((json_int_t)row.samples));
    json_object_set_new(m, "bytes", json_integer((json_int_t)row.bytes));
    json_object_set_new(m, "sha256", json_string(row.sha256));
    json_array_append_new(r->manifest_shards, m);
    r->st->shards++;
    if ((rc = report_counts(r, 0, err)) != 0)
        return rc;
    r->st->bytes += total;
    wp_sha256_free(sh->out.h);
    sh->out.h = NULL;
    json_decref(sh->stats);
    sh->stats = NULL;
    r->have_shard = 0;
    return 0;
}

/* Checks r->img against the sample's recorded sha256. */
static int verify(run *r, const cat_sample *s, wp_err *err)
{
    uint8_t md[WP_SHA256_LEN];
    char hex[WP_SHA256_HEX + 1];
    if (wp_sha256_buf(r->img.data, (size_t)s->bytes, md) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    wp_hex(md, sizeof md, hex);
    if (strcmp(hex, s->sha256) != 0)
        return wp_err_set(err, ST_ECORRUPT,
                          "image %lld (%s): stored bytes (file %lld at %lld) do not match "
                          "sha256 %s",
                          (long long)s->image_id, s->url ? s->url : "", (long long)s->store_file,
                          (long long)s->store_offset, s->sha256);
    return 0;
}

/* The sample's three members: image, caption, metadata. */
static int write_sample(run *r, const cat_sample *s, wp_err *err)
{
    char name[WP_UID_HEX + 16];
    int rc;
    snprintf(name, sizeof name, "%s.%s", s->uid, ext_for(s->format));
    if ((rc = add_member(r, name, r->img.data, (size_t)s->bytes, err)) != 0)
        return rc;
    snprintf(name, sizeof name, "%s.txt", s->uid);
    if ((rc = add_member(r, name, s->text, s->text_len, err)) != 0)
        return rc;
    snprintf(name, sizeof name, "%s.json", s->uid);
    return add_member(r, name, r->meta.data, r->meta.len, err);
}

static void *verifier_main(void *arg)
{
    verifier *v = arg;
    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->job && !v->quit)
            pthread_cond_wait(&v->go, &v->mu);
        if (v->quit)
            break;
        v->job = 0;
        pthread_mutex_unlock(&v->mu);
        wp_err_clear(&v->err);
        v->rc = verify(v->r, v->s, &v->err);
        pthread_mutex_lock(&v->mu);
        v->done = 1;
        pthread_cond_signal(&v->done_cv);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

/* Starts the verifier on first use; -1 when no thread can be had (the
 * caller then verifies inline). */
static int verifier_start(run *r)
{
    verifier *v = &r->v;
    if (v->started)
        return 0;
    v->r = r;
    if (pthread_mutex_init(&v->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&v->go, NULL) != 0 || pthread_cond_init(&v->done_cv, NULL) != 0 ||
        pthread_create(&v->th, NULL, verifier_main, v) != 0) {
        pthread_mutex_destroy(&v->mu);
        return -1;
    }
    v->started = 1;
    return 0;
}

static void verifier_stop(run *r)
{
    verifier *v = &r->v;
    if (!v->started)
        return;
    pthread_mutex_lock(&v->mu);
    v->quit = 1;
    pthread_cond_signal(&v->go);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->th, NULL);
    pthread_cond_destroy(&v->go);
    pthread_cond_destroy(&v->done_cv);
    pthread_mutex_destroy(&v->mu);
    v->started = 0;
}

static int add_sample(run *r, const cat_sample *s, int64_t size, wp_err *err)
{
    open_shard *sh = &r->sh;
    int rc;

    if (sh->writing) {
        if (s->bytes > SHARD_IMAGE_MAX)
            return wp_err_set(err, WP_ELIMIT, "image %lld: %lld bytes, more than %lld",
                              (long long)s->image_id, (long long)s->bytes,
                              (long long)SHARD_IMAGE_MAX);
        wp_buf_reset(&r->img);
        if (wp_buf_reserve(&r->img, (size_t)s->bytes + 1) != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        if ((rc = st_read(r->s, s->store_file, s->store_offset, r->img.data, (size_t)s->bytes,
                          err)) != 0)
            return wp_err_prefix(err, "image %lld (%s)", (long long)s->image_id,
                                 s->url ? s->url : "");
        /* The image's sha256 is checked while its members are written (two
         * hashes per byte, in and out, on two cores): a mismatch throws the
         * unpublished shard away, so nothing corrupt is ever renamed into
         * place. */
        if (s->bytes >= SHARD_PARALLEL_MIN && verifier_start(r) == 0) {
            int wrc;
            pthread_mutex_lock(&r->v.mu);
            r->v.s = s;
            r->v.job = 1;
            pthread_cond_signal(&r->v.go);
            pthread_mutex_unlock(&r->v.mu);
            wrc = write_sample(r, s, err);
            pthread_mutex_lock(&r->v.mu);
            while (!r->v.done)
                pthread_cond_wait(&r->v.done_cv, &r->v.mu);
            r->v.done = 0;
            pthread_mutex_unlock(&r->v.mu);
            if (r->v.rc != 0) {
                *err = r->v.err;
                return r->v.rc;
            }
            if (wrc != 0)
                return wrc;
        } else {
            if ((rc = verify(r, s, err)) != 0 || (rc = write_sample(r, s, err)) != 0)
                return rc;
        }
    }
    if (sh->writing && sh->pq != NULL && (rc = pq_row(sh, s, err)) != 0)
        return rc;
    if (sh->samples == 0)
        sh->first_pair = s->pair_id;
    sh->last_pair = s->pair_id;
    sh->samples++;
    sh->bytes += size;
    r->st->samples++;
    return 0;
}

/* Removes the leftovers of a killed run: NNNNN.tar.tmp, and the
 * NAME.json.tmp.PID files of wp_write_file_atomic. Nobody else can be
 * writing them, since the catalog lock is ours. */
static void remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[WP_PATH_MAX];
        int ours = (n > 8 && strcmp(e->d_name + n - 8, ".tar.tmp") == 0) ||
                   (n > 12 && strcmp(e->d_name + n - 12, ".parquet.tmp") == 0) ||
                   strstr(e->d_name, ".json.tmp.") != NULL;
        if (ours && wp_path_join(path, dir, e->d_name, NULL) == 0)
            unlink(path);
    }
    closedir(d);
}

static int write_manifest(run *r, wp_err *err)
{
    json_t *m = json_object(), *opts = json_object();
    char path[WP_PATH_MAX], pattern[64];
    char *txt;
    int rc;

    json_object_set_new(m, "format", json_string("webdataset"));
    json_object_set_new(m, "version", json_integer(1));
    json_object_set_new(m, "key", json_string("uid"));
    if (r->st->shards > 0)
        snprintf(pattern, sizeof pattern, "{%05d..%05lld}.tar", 0, (long long)(r->st->shards - 1));
    else
        pattern[0] = '\0';
    json_object_set_new(m, "shard_pattern", json_string(pattern));
    json_object_set_new(m, "samples", json_integer((json_int_t)r->st->samples));
    json_object_set_new(m, "bytes", json_integer((json_int_t)r->st->bytes));
    json_object_set_new(m, "pairs", json_integer((json_int_t)r->st->pairs));
    json_object_set_new(m, "excluded", json_integer((json_int_t)r->st->excluded));
    json_object_set_new(opts, "per_shard", json_integer((json_int_t)r->o->per_shard));
    json_object_set_new(opts, "max_bytes",
                        r->o->max_bytes > 0 ? json_integer((json_int_t)r->o->max_bytes)
                                            : json_null());
    json_object_set_new(opts, "shuffle_seed",
                        r->o->shuffle ? json_integer((json_int_t)r->o->seed) : json_null());
    json_object_set_new(opts, "mtime", json_integer((json_int_t)r->o->mtime));
    json_object_set_new(m, "options", opts);
    json_object_set(m, "shards", r->manifest_shards);
    txt = wp_json_tree_text(m, WP_JSON_INDENT(2));
    json_decref(m);
    if (txt == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = wp_path_join(path, r->outdir, "manifest.json", err)) == 0)
        rc = wp_write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* One walk of the sample order: samples cut into shards as the options
 * say; shards are written unless done earlier, foreign or planning. */
static int walk(run *r, const shard_opts *opts, int64_t total, wp_err *err)
{
    shard_stats *st = r->st;
    cat_sample smp;
    int rc = 0, k;

    if ((rc = cat_shard_cursor_open(r->c, opts->shuffle, opts->seed, &r->cur, err)) != 0)
        goto done;
    while ((k = cat_shard_cursor_next(r->cur, &smp, err)) == 1) {
        int64_t size;
        st->pairs++;
        if (st->pairs % SHARD_PROGRESS_EVERY == 0) {
            wp_progress p = {0};
            p.stage = "shard";
            p.done = (uint64_t)st->pairs;
            p.total = total > 0 ? (uint64_t)total : 0;
            p.bytes = (uint64_t)(st->bytes_written + (r->have_shard ? r->sh.out.bytes : 0));
            wp_report_progress(r->rep, &p);
        }
        /* Every pair, not every progress tick: a corpus smaller than one
         * tick (or one of large samples) stops on Ctrl-C too. */
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped after %lld shards", (long long)st->shards);
            goto done;
        }
        if (!smp.selected) {
            st->excluded++;
            if (!r->have_shard && r->pending == NULL && (r->pending = stats_new()) == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto done;
            }
            stats_count(r->have_shard ? r->sh.stats : r->pending, &smp);
            continue;
        }
        if ((rc = shard_sample_json(r->cur, &smp, 0, &r->meta, err)) != 0)
            goto done;
        size = shard_member_bytes(smp.bytes) + shard_member_bytes((int64_t)smp.text_len) +
               shard_member_bytes((int64_t)r->meta.len);
        if (r->have_shard &&
            (r->sh.samples >= opts->per_shard ||
             (opts->max_bytes > 0 && r->sh.bytes + size + SHARD_TRAILER > opts->max_bytes)) &&
            (rc = close_current(r, err)) != 0)
            goto done;
        if (!r->have_shard && (rc = open_next(r, err)) != 0)
            goto done;
        stats_count(r->sh.stats, &smp);
        if ((rc = add_sample(r, &smp, size, err)) != 0)
            goto done;
    }
    if (k < 0) {
        rc = k;
        goto done;
    }
    if (r->have_shard && (rc = close_current(r, err)) != 0)
        goto done;
done:
    abandon(r);
    cat_shard_cursor_close(r->cur);
    r->cur = NULL;
    return rc;
}

void shard_opts_init(shard_opts *o)
{
    memset(o, 0, sizeof *o);
    o->per_shard = SHARD_PER_DEFAULT;
}

int shard_run(cat *c, st_store *s, const shard_opts *o, const wp_reporter *rep, shard_stats *st,
              wp_err *err)
{
    run r;
    shard_opts opts = *o;
    char outdef[WP_PATH_MAX];
    char *pjs = NULL, *cjs = NULL;
    int64_t total = cat_count_pairs(c);
    int rc;

    memset(&r, 0, sizeof r);
    memset(st, 0, sizeof *st);
    if (opts.per_shard <= 0)
        opts.per_shard = SHARD_PER_DEFAULT;
    if (opts.output == NULL) {
        if ((rc = wp_path_join(outdef, cat_dir(c), "shards", err)) != 0)
            return rc;
        opts.output = outdef;
    }
    r.c = c;
    r.s = s;
    r.o = &opts;
    r.rep = rep;
    r.st = st;
    r.sh.out.fd = -1;
    r.t0 = wp_now();
    if ((pjs = params_json(&opts)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_run_begin(c, "shard", pjs, &r.crun, err);
    free(pjs);
    if (rc != 0)
        return rc;
    if ((rc = wp_mkdir_p(opts.output, err)) != 0)
        goto out;
    if (realpath(opts.output, r.outdir) == NULL) {
        rc = wp_err_set(err, WP_EIO, "%s: %s", opts.output, strerror(errno));
        goto out;
    }
    /* Parts share the output directory and may run at once: a part leaves
     * the others' temporary files alone (its own are truncated when it
     * writes that shard again; the run without --part cleans up). */
    if (wp_part_all(&opts.part))
        remove_leftovers(r.outdir);
    r.entry = archive_entry_new();
    r.manifest_shards = json_array();
    if (r.entry == NULL || r.manifest_shards == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if (!wp_part_all(&opts.part)) {
        /* --part: walk the plan once to count its shards S, then write
         * shards [floor((I-1)S/N), floor(IS/N)) of it */
        shard_stats plan;
        r.planning = 1;
        if ((rc = walk(&r, &opts, total, err)) != 0)
            goto out;
        plan = *st;
        memset(st, 0, sizeof *st);
        r.planning = 0;
        r.next_index = 0;
        json_decref(r.pending);
        r.pending = NULL;
        wp_part_range(&opts.part, plan.shards, &r.own_lo, &r.own_hi);
    } else {
        r.own_lo = 0;
        r.own_hi = INT64_MAX;
    }
    if ((rc = walk(&r, &opts, total, err)) != 0)
        goto out;
    /* a part writes its shards' files; the manifest (of the whole plan) is
     * written by a run without --part once every part is merged */
    if (wp_part_all(&opts.part))
        rc = write_manifest(&r, err);
out:
    verifier_stop(&r);
    abandon(&r);
    json_decref(r.pending);
    json_decref(r.manifest_shards);
    cat_shard_cursor_close(r.cur);
    if (r.entry)
        archive_entry_free(r.entry);
    wp_buf_free(&r.img);
    wp_buf_free(&r.meta);
    cjs = counts_json(st, wp_now() - r.t0);
    rc = cat_run_end(r.crun, rc, cjs, err);
    free(cjs);
    return rc;
}
