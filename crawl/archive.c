/*
 * crawl/archive.c: `witpipe crawl --warc/--wat`: archives into pairs.
 *
 * Each file is a source (kind warc or wat). Records are read as a stream,
 * pages go through the shared extractor (WARC) or the WAT decoder on a
 * reader thread (when the process may use more than one CPU), and their
 * pairs through the sink on the calling thread, the catalog's only writer,
 * in transactions of ao->batch records; each commit also
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
#include <pthread.h>
#include <sched.h>
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
    int is_wat;
    int by_record;
    int64_t records_left; /* ao->max_records still to read; -1: no limit */
    wp_buf tmp1, tmp2;    /* de-chunked / decompressed bodies (reader thread) */
    size_t batch_bytes;   /* a batch is closed past this many arena bytes */
    int nslots;           /* batches in flight, 1..NSLOTS */
    size_t tree_max;      /* WAT records parsed whole up to this size (arch_budget) */
} arch_ctx;

/* ---- the reader thread: records -> pages --------------------------------
 *
 * Decompressing and extracting (the reader) and storing pairs (the
 * writer, the calling thread, the catalog's only user) overlap: the
 * reader fills batches of up to BATCH_RECORDS records' outcomes, each with
 * its own arena, through a ring of NSLOTS. The writer takes them in order
 * and applies each outcome (pairs, resume point, event, counts) as it
 * goes, so a run stopped mid-batch counts exactly what it stored, as one
 * thread would, and memory stays flat (NSLOTS batches at most, each closed
 * at BATCH_RECORDS records or BATCH_BYTES bytes). */

#define BATCH_RECORDS 64
#define NSLOTS        3
/* A batch is also closed when its arena holds this many bytes, so the
 * batches in flight hold at most NSLOTS x (BATCH_BYTES + one page's
 * CRAWL_PAGE_OUT_MAX) whatever the records hold. */
#define BATCH_BYTES (16u << 20)
/* Under --max-memory (see arch_budget): what the process needs besides the
 * batches, and the smallest batch a budget may close at. */
#define ARCH_BASE_BYTES      ((int64_t)32 << 20)
#define ARCH_MIN_BATCH_BYTES ((int64_t)1 << 20)

typedef struct rec_out {
    crawl_page *pg;             /* a page to store, or NULL */
    int64_t next_offset;        /* where the next record starts (resume point), -1 unknown */
    uint64_t index;             /* this record's number */
    const char *event;          /* a message to report (in the batch arena), or NULL */
    const char *event_name;     /* "corrupt" | "bad_payload" | "too_large" | "capped" */
    unsigned char is_record;    /* 0: a damaged stretch between records */
    unsigned char skipped;      /* counts in records_skipped */
    unsigned char page_skipped; /* counts in pages_skipped */
    unsigned char corrupt;      /* counts in corrupt */
} rec_out;

typedef struct batch {
    wp_arena *arena;
    rec_out out[BATCH_RECORDS];
    int n;
    int status; /* 0: more follows; 1: end of file; < 0: error (err) */
    wp_err err;
} batch;

typedef struct pipeline {
    arch_ctx *x;
    warc_reader *r;
    warc_record *rec;
    const char *path;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch slots[NSLOTS];
    uint64_t filled, taken; /* batches handed over / given back */
    int stop;               /* the writer wants no more */
    int64_t next_index;     /* the number of the record after the last one read */
} pipeline;

/* One WARC record: a response record with an HTML payload becomes *pg. */
static int warc_record_page(arch_ctx *x, const warc_record *rec, const char *path, batch *b,
                            rec_out *ro, wp_err *err)
{
    crawl_http_head h;
    const char *body;
    size_t body_len;
    int rc;

    if (strcmp(rec->type, "response") != 0 ||
        strncasecmp(rec->content_type, "application/http", 16) != 0 || rec->target_uri[0] == 0) {
        ro->skipped = 1;
        return 0;
    }
    if (rec->block == NULL) {
        ro->page_skipped = 1; /* larger than --max-record */
        return 0;
    }
    if (crawl_http_split(rec->block, rec->block_len, &h) != 0 || h.status < 200 || h.status > 299 ||
        !is_html_type(h.ct)) {
        ro->skipped = 1;
        return 0;
    }
    rc = crawl_http_body(&h, x->o->max_page, &x->tmp1, &x->tmp2, &body, &body_len);
    if (rc == WP_ENOMEM)
        return wp_err_set(err, rc, "out of memory");
    if (rc != 0 || body_len > x->o->max_page) {
        ro->page_skipped = 1; /* too large, or an encoding we cannot undo */
        /* A server's damaged payload is not a damaged archive: the page is
         * skipped, but where it is gets said. */
        if (rc == WP_EFORMAT) {
            ro->event_name = "bad_payload";
            ro->event = wp_arena_sprintf(b->arena,
                                         "%s: byte %lld: record %s: payload not decodable "
                                         "(Content-Encoding '%s'%s); page skipped",
                                         path, (long long)rec->offset, rec->target_uri, h.encoding,
                                         h.chunked ? ", chunked" : "");
            if (ro->event == NULL)
                return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
        return 0;
    }
    return crawl_extract(body, body_len, rec->target_uri, h.ct[0] ? h.ct : NULL,
                         h.xrobots[0] ? h.xrobots : NULL, x->o, b->arena, &ro->pg, err);
}

/* A WAT record whose page is not used: the event name and a message naming
 * the record and err's message, which is cleared. Returns 0, or WP_ENOMEM. */
static int wat_record_event(const warc_record *rec, const char *path, batch *b, rec_out *ro,
                            const char *name, wp_err *err)
{
    ro->pg = NULL;
    ro->event_name = name;
    ro->event =
        wp_arena_sprintf(b->arena, "%s: byte %lld: record %s: %s", path, (long long)rec->offset,
                         rec->target_uri[0] ? rec->target_uri : "(no target)", err->msg);
    wp_err_clear(err);
    return ro->event != NULL ? 0 : wp_err_set(err, WP_ENOMEM, "out of memory");
}

static int wat_record_page(arch_ctx *x, const warc_record *rec, const char *path, batch *b,
                           rec_out *ro, wp_err *err)
{
    int rc;
    if (strcmp(rec->type, "metadata") != 0 || strstr(rec->content_type, "json") == NULL) {
        ro->skipped = 1;
        return 0;
    }
    if (rec->block == NULL) {
        ro->page_skipped = 1;
        return 0;
    }
    rc = crawl_wat_page(rec->block, rec->block_len, x->o, x->tree_max, b->arena, &ro->pg, err);
    if (rc == WP_ELIMIT) {
        ro->page_skipped = 1;
        return wat_record_event(rec, path, b, ro, "too_large", err);
    }
    if (rc == WP_EFORMAT) {
        ro->corrupt = 1;
        return wat_record_event(rec, path, b, ro, "corrupt", err);
    }
    if (rc != 0)
        return rc;
    if (ro->pg == NULL)
        ro->skipped = 1;
    return 0;
}

/* A page that hit a cap says so, with where it is. Returns 0 or WP_ENOMEM. */
static int capped_event(arch_ctx *x, const warc_record *rec, const char *path, batch *b,
                        rec_out *ro)
{
    const crawl_page *pg = ro->pg;
    if (pg == NULL || ro->event != NULL ||
        (pg->drops[CRAWL_DROP_OVER_CAP] == 0 && pg->attrs_capped == 0))
        return 0;
    ro->event_name = "capped";
    ro->event = wp_arena_sprintf(
        b->arena,
        "%s: byte %lld: record %s: %llu images past the cap (--max-images %zu) not read, "
        "%llu attributes past the cap (--max-attrs %d) dropped",
        path, (long long)rec->offset, rec->target_uri,
        (unsigned long long)pg->drops[CRAWL_DROP_OVER_CAP], x->o->max_images,
        (unsigned long long)pg->attrs_capped, x->o->max_attrs);
    return ro->event != NULL ? 0 : WP_ENOMEM;
}

/* Fills b with the next records' outcomes. */
static void fill_batch(pipeline *pl, batch *b)
{
    arch_ctx *x = pl->x;
    wp_arena_reset(b->arena);
    wp_err_clear(&b->err);
    b->n = 0;
    b->status = 0;
    while (b->n < BATCH_RECORDS) {
        rec_out *ro = &b->out[b->n];
        int rc = warc_next(pl->r, pl->rec, &b->err);
        memset(ro, 0, sizeof *ro);
        ro->next_offset = -1;
        if (rc < 0 || rc == WARC_END) {
            b->status = rc < 0 ? rc : 1;
            return;
        }
        if (rc == WARC_CORRUPT) {
            ro->corrupt = 1;
            ro->event_name = "corrupt";
            ro->event = wp_arena_strdup(b->arena, b->err.msg);
            wp_err_clear(&b->err);
            if (ro->event == NULL) {
                b->status = wp_err_set(&b->err, WP_ENOMEM, "out of memory");
                return;
            }
            b->n++;
            continue;
        }
        ro->is_record = 1;
        wp_part part = {x->ao->part_i, x->ao->part_n};
        if (!x->by_record || wp_part_has(&part, pl->rec->index)) {
            rc = x->is_wat ? wat_record_page(x, pl->rec, pl->path, b, ro, &b->err)
                           : warc_record_page(x, pl->rec, pl->path, b, ro, &b->err);
            if (rc == 0 && capped_event(x, pl->rec, pl->path, b, ro) != 0)
                rc = wp_err_set(&b->err, WP_ENOMEM, "out of memory");
            if (rc != 0) {
                b->status = rc;
                return;
            }
        }
        ro->next_offset = pl->rec->next_offset;
        ro->index = pl->rec->index;
        pl->next_index = (int64_t)pl->rec->index + 1;
        b->n++;
        if (wp_stop_requested() || wp_arena_used(b->arena) >= x->batch_bytes)
            return; /* hand over what there is (the writer stops, or memory) */
    }
}

static void *reader_main(void *arg)
{
    pipeline *pl = arg;
    for (;;) {
        batch *b;
        pthread_mutex_lock(&pl->mu);
        while (pl->filled - pl->taken == (uint64_t)pl->x->nslots && !pl->stop)
            pthread_cond_wait(&pl->cv, &pl->mu);
        if (pl->stop) {
            pthread_mutex_unlock(&pl->mu);
            return NULL;
        }
        b = &pl->slots[pl->filled % (uint64_t)pl->x->nslots];
        pthread_mutex_unlock(&pl->mu);
        fill_batch(pl, b);
        pthread_mutex_lock(&pl->mu);
        pl->filled++;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
        if (b->status != 0)
            return NULL;
    }
}

/* ---- the writer: pages -> catalog ---------------------------------------- */

/* Tells the reader thread, if one runs, to stop, and waits for it. */
static void stop_reader(pipeline *pl, pthread_t reader, int *started)
{
    if (!*started)
        return;
    pthread_mutex_lock(&pl->mu);
    pl->stop = 1;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    pthread_join(reader, NULL);
    *started = 0;
}

/* CPUs this process may run on (1 when that cannot be told). */
static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

static int one_file(arch_ctx *x, const char *file, wp_err *err)
{
    crawl_counts *k = crawl_sink_counts(x->sink);
    char abs[PATH_MAX];
    const char *loc = realpath(file, abs) ? abs : file;
    int64_t source_id = 0, offset = 0, records = 0, last_off = -1, last_rec = 0;
    int done = 0, rc = 0, n_in_batch = 0, n_since_progress = 0, started = 0, slots_made = 0;
    int64_t consumed0 = 0;
    pipeline pl;
    pthread_t reader;

    memset(&pl, 0, sizeof pl);
    pl.x = x;
    pl.path = file;
    memset(&reader, 0, sizeof reader);
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
    if (pthread_mutex_init(&pl.mu, NULL) != 0)
        return wp_err_set(err, WP_ENOMEM, "cannot create a mutex");
    if (pthread_cond_init(&pl.cv, NULL) != 0) {
        pthread_mutex_destroy(&pl.mu);
        return wp_err_set(err, WP_ENOMEM, "cannot create a condition variable");
    }
    for (; slots_made < x->nslots; slots_made++)
        if ((pl.slots[slots_made].arena = wp_arena_new(ARENA_BLOCK)) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
    if ((pl.rec = malloc(sizeof *pl.rec)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = warc_open(file, offset, (uint64_t)records, x->ao->max_record, &pl.r, err)) != 0)
        goto out;
    pl.next_index = records;
    consumed0 = offset;
    if ((rc = cat_begin(x->c, err)) != 0)
        goto out;
    /* One CPU: the reader's work is done inline, batch by batch, which is
     * the same work without the hand-overs. */
    if (usable_cpus() > 1) {
        if (pthread_create(&reader, NULL, reader_main, &pl) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: cannot start the reader thread", file);
            goto out;
        }
        started = 1;
    }
    for (int status = 0; status == 0 && rc == 0;) {
        batch *b;
        if (!started) {
            fill_batch(&pl, &pl.slots[pl.filled % (uint64_t)x->nslots]);
            pl.filled++;
        }
        pthread_mutex_lock(&pl.mu);
        while (pl.filled == pl.taken)
            pthread_cond_wait(&pl.cv, &pl.mu);
        b = &pl.slots[pl.taken % (uint64_t)x->nslots];
        pthread_mutex_unlock(&pl.mu);
        for (int i = 0; i < b->n && rc == 0; i++) {
            const rec_out *ro = &b->out[i];
            if (wp_stop_requested()) {
                rc = WP_ESTOP;
                break;
            }
            k->records += ro->is_record;
            k->records_skipped += ro->skipped;
            k->pages_skipped += ro->page_skipped;
            k->corrupt += ro->corrupt;
            if (ro->event != NULL)
                wp_report_event(x->ao->rep, WP_LOG_WARN, ro->event_name, "%s", ro->event);
            if (ro->pg != NULL && (rc = crawl_sink_page(x->sink, ro->pg, source_id, err)) != 0)
                break;
            if (ro->next_offset >= 0) {
                last_off = ro->next_offset;
                last_rec = (int64_t)ro->index + 1;
            }
            if (!ro->is_record)
                continue; /* a damaged stretch: not a record of the batch */
            if (x->records_left > 0 && --x->records_left == 0) {
                rc = WP_ESTOP; /* --max-records: saved like a stop, resumed alike */
                break;
            }
            if (++n_in_batch >= x->ao->batch) {
                if (last_off >= 0 && !x->o->dry_run &&
                    (rc = cat_archive_progress_set(x->c, source_id, last_off, last_rec, 0, err)) !=
                        0)
                    break;
                if ((rc = cat_commit(x->c, err)) != 0 || (rc = cat_begin(x->c, err)) != 0)
                    break;
                n_in_batch = 0;
            }
            if (++n_since_progress >= PROGRESS_RECORDS) {
                wp_progress p = {.stage = "crawl",
                                 .done = k->pages,
                                 .errors = k->corrupt,
                                 .bytes = k->bytes + (uint64_t)(last_off - consumed0)};
                if (last_off >= consumed0)
                    wp_report_progress(x->ao->rep, &p);
                n_since_progress = 0;
            }
        }
        status = b->status;
        if (rc == 0 && status < 0)
            rc = wp_err_set(err, status, "%s", b->err.msg);
        pthread_mutex_lock(&pl.mu);
        pl.taken++;
        pthread_cond_broadcast(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        if (rc == 0 && wp_stop_requested())
            rc = WP_ESTOP;
    }
    stop_reader(&pl, reader, &started);
    /* The reader is gone: its warc_reader is ours again. */
    if (rc == 0 && !x->o->dry_run) {
        rc = cat_archive_progress_set(x->c, source_id, warc_consumed(pl.r), pl.next_index, 1, err);
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
    k->bytes += (uint64_t)((rc == 0         ? warc_consumed(pl.r)
                            : last_off >= 0 ? last_off
                                            : consumed0) -
                           consumed0);
out:
    stop_reader(&pl, reader, &started);
    if (cat_in_transaction(x->c))
        cat_rollback(x->c);
    warc_close(pl.r);
    free(pl.rec);
    for (int i = 0; i < slots_made; i++)
        wp_arena_free(pl.slots[i].arena);
    pthread_cond_destroy(&pl.cv);
    pthread_mutex_destroy(&pl.mu);
    return rc;
}

/* Sizes the batches and, for WAT, the whole-tree parse: BATCH_BYTES,
 * NSLOTS and CRAWL_WAT_FULL_MAX by default. Under --max-memory what is left
 * after the fixed needs (ARCH_BASE_BYTES, one record of --max-record, two
 * bodies of --max-page) is shared by the batches in flight, each costing
 * its bytes plus one page's CRAWL_PAGE_OUT_MAX (the page that closes it),
 * and for WAT the jansson tree of a record in an unusual layout
 * (CRAWL_WAT_TREE_COST bytes a record byte): the batches get half of it
 * (at least one of ARCH_MIN_BATCH_BYTES), fewer slots first, then smaller
 * ones; the tree what they leave, its record limit lowered to fit. WP_ELIMIT
 * naming the options when one slot of ARCH_MIN_BATCH_BYTES and, for WAT,
 * ARCH_MIN_TREE_BYTES of tree do not fit. */
#define ARCH_MIN_TREE_BYTES ((int64_t)1 << 20)
static int arch_budget(arch_ctx *x, wp_err *err)
{
    int64_t budget, fixed, slot_min, left, tree_min, share;
    x->nslots = NSLOTS;
    x->batch_bytes = BATCH_BYTES;
    x->tree_max = CRAWL_WAT_FULL_MAX;
    if (!wp_mem_is_set())
        return 0;
    budget = wp_mem_budget(1);
    fixed = ARCH_BASE_BYTES + (int64_t)x->ao->max_record + 2 * (int64_t)x->o->max_page;
    slot_min = ARCH_MIN_BATCH_BYTES + (int64_t)CRAWL_PAGE_OUT_MAX;
    tree_min = x->is_wat ? ARCH_MIN_TREE_BYTES : 0;
    left = budget - fixed;
    if (left < slot_min + tree_min)
        return wp_err_set(err, WP_ELIMIT,
                          "--max-memory %lld MiB is too low for crawl --%s: reading needs at "
                          "least %lld MiB (--max-record %lld MiB, --max-page %lld MiB, one "
                          "batch%s); give --max-memory %lldM or more, or lower --max-record",
                          (long long)(budget >> 20), x->is_wat ? "wat" : "warc",
                          (long long)((fixed + slot_min + tree_min + (1 << 20) - 1) >> 20),
                          (long long)(x->ao->max_record >> 20), (long long)(x->o->max_page >> 20),
                          x->is_wat ? ", one whole-tree parse" : "",
                          (long long)((fixed + slot_min + tree_min + (1 << 20) - 1) >> 20));
    share = x->is_wat ? (left - tree_min) / 2 : left;
    if (share < slot_min)
        share = slot_min;
    if (share / slot_min < x->nslots)
        x->nslots = (int)(share / slot_min);
    if (share / x->nslots - (int64_t)CRAWL_PAGE_OUT_MAX < (int64_t)x->batch_bytes)
        x->batch_bytes = (size_t)(share / x->nslots - (int64_t)CRAWL_PAGE_OUT_MAX);
    if (x->is_wat) {
        int64_t tree = left - (int64_t)x->nslots * ((int64_t)x->batch_bytes + CRAWL_PAGE_OUT_MAX);
        if (tree / CRAWL_WAT_TREE_COST < (int64_t)x->tree_max)
            x->tree_max = (size_t)(tree / CRAWL_WAT_TREE_COST);
    }
    return 0;
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
    x.records_left = ao->max_records > 0 ? ao->max_records : -1;
    if (ao->part_n < 1 || ao->part_i < 1 || ao->part_i > ao->part_n)
        return wp_err_set(err, WP_EINVAL, "--part %d/%d: need 1 <= I <= N", ao->part_i, ao->part_n);
    x.o = crawl_sink_opts(sink);
    if ((rc = arch_budget(&x, err)) != 0)
        return rc;
    /* Archives stream pairs by the hundred thousand: checkpoint the WAL
     * rarely (see cat_bulk_mode). */
    if (!x.o->dry_run && (rc = cat_bulk_mode(c, 1, err)) != 0)
        return rc;
    for (int i = 0; i < nfiles && rc == 0; i++) {
        wp_part part = {ao->part_i, ao->part_n};
        if (!x.by_record && !wp_part_has(&part, (uint64_t)i))
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
    wp_buf_free(&x.tmp1);
    wp_buf_free(&x.tmp2);
    return rc;
}
