/*
 * encode/encode_run.c: the `encode` stage: CLIP embeddings for every stored
 * pair of a corpus, written as float16 .npy shards plus a row -> pair uid
 * metadata file, and recorded in the catalog's embeddings table.
 *
 * Pipeline: the main thread (which owns the catalog handle) lists the next
 * batch of pairs and their image locations, and a decode thread reads the
 * image bytes back from the store, runs CLIP preprocessing and tokenizes
 * the captions into the other of two batch slots while the main thread runs
 * the model on the current one. Rows accumulate in memory until a shard is
 * full; the shard's files are written atomically first and only then are
 * its rows committed to the catalog, so a crash or Ctrl-C loses at most the
 * unfinished shard, which the next run redoes.
 */
#include "catalog/catalog.h"
#include "clip/clip.h"
#include "emb/emb.h"
#include "encode/encode.h"
#include "image/image.h"
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENC_BATCH_MAX       1024                /* pairs per forward pass */
#define ENC_SHARD_ROWS_MAX  1000000             /* rows per .npy shard */
#define ENC_IMAGE_BYTES_MAX ((int64_t)64 << 20) /* stored image larger than this: refused */
#define ENC_NAME_MAX        128                 /* model name under DIR/embeddings */
#define ENC_DECODE_MAX      8                   /* decode threads per batch */

/* One batch in flight: what the main thread listed and what the decode
 * thread made of it. */
typedef struct slot {
    cat_encode_item *items;
    int n;
    int *uidx;          /* item -> unique image index */
    int64_t *img_id;    /* unique image ids */
    cat_image_loc *loc; /* their stored locations */
    int *loc_ok;        /* location found */
    int nu;
    int *img_ok;                  /* decoded */
    wp_err *img_err;              /* why not */
    float *pixels;                /* nu x 3 x S x S */
    int32_t *tokens;              /* n x ctx */
    wp_buf bytes[ENC_DECODE_MAX]; /* the image each decode thread reads */
    uint8_t *rgb[ENC_DECODE_MAX]; /* S x S x 3, per decode thread */
    wp_arena *arena;
    pthread_t th[ENC_DECODE_MAX];
    int running; /* decode threads started and not yet joined */
} slot;

typedef struct runner {
    const clip_model *m;
    clip_tok *tok;
    st_store *st;
    int ctx, S, E;
} runner;

typedef struct job {
    runner *r;
    slot *s;
    int part, parts; /* this thread takes items part, part + parts, ... */
} job;

static void slot_free(slot *s)
{
    free(s->items);
    free(s->uidx);
    free(s->img_id);
    free(s->loc);
    free(s->loc_ok);
    free(s->img_ok);
    free(s->img_err);
    free(s->pixels);
    free(s->tokens);
    for (int i = 0; i < ENC_DECODE_MAX; i++) {
        free(s->rgb[i]);
        wp_buf_free(&s->bytes[i]);
    }
    wp_arena_free(s->arena);
}

static int slot_init(slot *s, int batch, const runner *r)
{
    size_t px = (size_t)3 * r->S * r->S;
    memset(s, 0, sizeof *s);
    s->items = calloc((size_t)batch, sizeof *s->items);
    s->uidx = calloc((size_t)batch, sizeof *s->uidx);
    s->img_id = calloc((size_t)batch, sizeof *s->img_id);
    s->loc = calloc((size_t)batch, sizeof *s->loc);
    s->loc_ok = calloc((size_t)batch, sizeof *s->loc_ok);
    s->img_ok = calloc((size_t)batch, sizeof *s->img_ok);
    s->img_err = calloc((size_t)batch, sizeof *s->img_err);
    s->pixels = malloc((size_t)batch * px * sizeof *s->pixels);
    s->tokens = calloc((size_t)batch * r->ctx, sizeof *s->tokens);
    for (int i = 0; i < ENC_DECODE_MAX; i++)
        if ((s->rgb[i] = malloc(px)) == NULL)
            return WP_ENOMEM;
    s->arena = wp_arena_new(64 << 10);
    if (!s->items || !s->uidx || !s->img_id || !s->loc || !s->loc_ok || !s->img_ok || !s->img_err ||
        !s->pixels || !s->tokens || !s->arena)
        return WP_ENOMEM;
    return 0;
}

/* The decode thread's work: images to normalised pixels, texts to ids.
 * Failures are per image (img_ok = 0, img_err says why). */
static void *decode_batch(void *arg)
{
    job *j = arg;
    runner *r = j->r;
    slot *s = j->s;
    size_t px = (size_t)3 * r->S * r->S;
    wp_buf *bytes = &s->bytes[j->part];
    uint8_t *rgb = s->rgb[j->part];

    for (int u = j->part; u < s->nu; u += j->parts) {
        wp_err *e = &s->img_err[u];
        s->img_ok[u] = 0;
        if (!s->loc_ok[u])
            continue;
        if (s->loc[u].bytes <= 0 || s->loc[u].bytes > ENC_IMAGE_BYTES_MAX) {
            wp_err_set(e, WP_ELIMIT, "stored size %lld bytes", (long long)s->loc[u].bytes);
            continue;
        }
        wp_buf_reset(bytes);
        if (wp_buf_reserve(bytes, (size_t)s->loc[u].bytes) != 0) {
            wp_err_set(e, WP_ENOMEM, "out of memory");
            continue;
        }
        if (st_read_verified(r->st, s->loc[u].store_file, s->loc[u].store_offset, bytes->data,
                             (size_t)s->loc[u].bytes, s->loc[u].sha256[0] ? s->loc[u].sha256 : NULL,
                             e) != 0)
            continue;
        if (img_clip_preprocess(bytes->data, (size_t)s->loc[u].bytes, r->S, rgb, e) != 0)
            continue;
        clip_normalize_rgb(r->m, rgb, s->pixels + (size_t)u * px);
        s->img_ok[u] = 1;
    }
    for (int i = j->part; i < s->n; i += j->parts) {
        wp_err e = {0};
        int32_t *row = s->tokens + (size_t)i * r->ctx;
        if (clip_tok_encode_ctx(r->tok, s->items[i].text, s->items[i].text_len, row, r->ctx, &e) <
            0) {
            /* only out of memory: leave an empty caption (SOT EOT) */
            memset(row, 0, (size_t)r->ctx * sizeof *row);
            row[0] = CLIP_TOK_SOT;
            row[1] = CLIP_TOK_EOT;
        }
    }
    return NULL;
}

static void join_decode(slot *s)
{
    for (int p = 0; p < s->running; p++)
        pthread_join(s->th[p], NULL);
    s->running = 0;
}

/* Starts parts decode threads on s; on failure joins those started. */
static int start_decode(slot *s, job *jobs, int parts, wp_err *err)
{
    for (int p = 0; p < parts; p++) {
        if (pthread_create(&s->th[p], NULL, decode_batch, &jobs[p]) != 0) {
            join_decode(s);
            return wp_err_set(err, WP_ENOMEM, "cannot start a decode thread");
        }
        s->running = p + 1;
    }
    return 0;
}

/* Lists the next batch into s (on the main thread: it uses the catalog). */
static int fill_slot(cat *c, const char *model, const wp_part *part, int64_t *after, int batch,
                     slot *s, wp_err *err)
{
    int rc;
    wp_arena_reset(s->arena);
    for (;;) { /* until a batch holds pairs of the part, or none are left */
        rc = cat_encode_todo(c, model, *after, batch, s->items, &s->n, s->arena, err);
        if (rc != 0)
            return rc;
        if (s->n == 0 || wp_part_all(part))
            break;
        *after = s->items[s->n - 1].pair_id;
        int m = 0;
        for (int i = 0; i < s->n; i++)
            if (wp_part_has(part, wp_part_key_hex(s->items[i].uid)))
                s->items[m++] = s->items[i];
        s->n = m;
        if (m > 0)
            break;
    }
    s->nu = 0;
    for (int i = 0; i < s->n; i++) {
        int u;
        for (u = 0; u < s->nu; u++)
            if (s->img_id[u] == s->items[i].image_id)
                break;
        if (u == s->nu) {
            wp_err e = {0};
            s->img_id[u] = s->items[i].image_id;
            rc = cat_image_location(c, s->img_id[u], &s->loc[u], &e);
            if (rc != 0 && rc != WP_ENOENT)
                return wp_err_set(err, rc, "%s", e.msg);
            s->loc_ok[u] = rc == 0;
            s->nu++;
        }
        s->uidx[i] = u;
    }
    if (s->n > 0 && wp_part_all(part))
        *after = s->items[s->n - 1].pair_id; /* (with a part: set above) */
    return 0;
}

/* ---- the memory budget ----------------------------------------------- */

/* Bytes one pair of a batch needs at most, estimated from the model: its
 * normalised pixels in both slots, and the forward pass's activations
 * (token rows of the widest layer, MLP and attention scores). */
static int64_t pair_bytes(const clip_arch *a, int S)
{
    int64_t px = (int64_t)3 * S * S, t = 1, w = a->v_width, mlp = a->v_mlp, heads = a->v_heads;
    if (a->v_patch > 0)
        t += (int64_t)(S / a->v_patch) * (S / a->v_patch);
    else /* a ResNet: the stem's feature map dominates */
        t = (int64_t)(S / 4) * (S / 4);
    if (w < a->t_width)
        w = a->t_width;
    if (mlp < a->t_mlp)
        mlp = a->t_mlp;
    if (heads < 1)
        heads = 1;
    return 2 * px * (int64_t)sizeof(float) + 4 * t * (8 * w + 2 * mlp) + 4 * heads * t * t;
}

/* --max-memory: half for decoding stored images (image/budget.c), half for
 * the batch, which is lowered to fit (a warning says so) or refused when
 * not even one pair fits. */
static int mem_plan(const clip_arch *a, int S, int *batch, const wp_reporter *rep, wp_err *err)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t budget = wp_mem_budget(ncpu > 0 ? (int)ncpu : 1), per = pair_bytes(a, S);
    int64_t fit = budget / 2 / per;
    if (fit < 1)
        return wp_err_set(err, WP_ELIMIT,
                          "--max-memory %lld MiB is too low for encode with this model: one pair "
                          "needs about %lld MiB, and a batch gets half the budget; give "
                          "--max-memory %lld M or more",
                          (long long)(budget >> 20), (long long)(per >> 20),
                          (long long)((2 * per + (1 << 20) - 1) >> 20));
    if (*batch > fit) {
        wp_report_event(rep, WP_LOG_WARN, "batch_lowered",
                        "encode: --batch %d lowered to %lld to fit --max-memory %lld MiB "
                        "(about %lld MiB a pair)",
                        *batch, (long long)fit, (long long)(budget >> 20), (long long)(per >> 20));
        *batch = (int)fit;
    }
    img_budget_set(budget / 2);
    return 0;
}

/* ---- shards ---------------------------------------------------------- */

typedef struct shard {
    uint16_t *img, *txt; /* rows x E, float16 */
    emb_row *meta;       /* pair id, uid and score per row */
    int rows, cap;
} shard;

/* Writes shard number no's files, then records its rows (and the pending
 * drop decisions) in one transaction. */
static int flush_shard(cat *c, const char *dir, const char *model, int64_t no, shard *sh, int E,
                       enc_run_counts *counts, wp_err *err)
{
    int rc = 0;

    if (sh->rows == 0)
        return 0;
    if ((rc = emb_write_shard(dir, no, sh->rows, E, sh->img, sh->txt, sh->meta, err)) != 0)
        goto out;
    if ((rc = cat_begin(c, err)) != 0)
        goto out;
    for (int i = 0; i < sh->rows; i++)
        if ((rc = cat_encode_add(c, sh->meta[i].pair_id, model, no, i, sh->meta[i].clip_score,
                                 err)) != 0) {
            cat_rollback(c);
            goto out;
        }
    if ((rc = cat_commit(c, err)) != 0)
        goto out;
    counts->shards++;
    counts->pairs += sh->rows;
    sh->rows = 0;
out:
    return rc;
}

void enc_run_opts_init(enc_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 32;
    o->shard_rows = 10000;
    o->precision = CLIP_F32;
}

int enc_run(struct cat *c, struct st_store *st, const enc_run_opts *o, const wp_reporter *rep,
            enc_run_counts *counts, wp_err *err)
{
    clip_model *m = NULL;
    clip_tok *tok = NULL;
    clip_ws *ws = NULL;
    slot slots[2];
    shard sh;
    runner r;
    job jobs[2][ENC_DECODE_MAX];
    char name[ENC_NAME_MAX], dir[WP_PATH_MAX], sub[WP_PATH_MAX];
    float *iemb = NULL, *temb = NULL;
    cat_run *run = NULL;
    int64_t run_id = 0, shard_no = 0, after = 0, total;
    int rc = 0, cur = 0, batch = o->batch > 0 ? o->batch : 32;
    int shard_rows = o->shard_rows > 0 ? o->shard_rows : 10000;
    /* decoding keeps up with the model at about one thread per four cores */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int parts = o->decode_threads > 0 ? o->decode_threads : ncpu >= 8 ? (int)(ncpu / 4) : 1;
    if (parts > ENC_DECODE_MAX)
        parts = ENC_DECODE_MAX;
    clip_open_opts oo = {o->precision};
    wp_buf params = {0};
    wp_progress pr = {0};

    memset(counts, 0, sizeof *counts);
    memset(slots, 0, sizeof slots);
    memset(&sh, 0, sizeof sh);
    if (batch > ENC_BATCH_MAX || shard_rows > ENC_SHARD_ROWS_MAX)
        return wp_err_set(err, WP_EINVAL, "batch %d (max %d) or shard rows %d (max %d) too large",
                          batch, ENC_BATCH_MAX, shard_rows, ENC_SHARD_ROWS_MAX);
    emb_model_name(o->model_dir, o->model_name, name, sizeof name);
    if ((rc = clip_model_open(o->model_dir, &oo, &m, err)) != 0)
        goto out;
    if ((rc = clip_tok_open_dir(o->model_dir, &tok, err)) != 0)
        goto out;
    r.m = m;
    r.tok = tok;
    r.st = st;
    r.ctx = clip_model_arch(m)->t_ctx;
    r.S = clip_model_arch(m)->image_size;
    r.E = clip_model_arch(m)->embed_dim;
    if ((rc = mem_plan(clip_model_arch(m), r.S, &batch, rep, err)) != 0)
        goto out;
    ws = clip_ws_new();
    iemb = malloc((size_t)batch * r.E * sizeof *iemb);
    temb = malloc((size_t)batch * r.E * sizeof *temb);
    sh.cap = shard_rows;
    sh.img = malloc((size_t)shard_rows * r.E * sizeof *sh.img);
    sh.txt = malloc((size_t)shard_rows * r.E * sizeof *sh.txt);
    sh.meta = malloc((size_t)shard_rows * sizeof *sh.meta);
    if (!ws || !iemb || !temb || !sh.img || !sh.txt || !sh.meta ||
        slot_init(&slots[0], batch, &r) != 0 || slot_init(&slots[1], batch, &r) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for batch %d, shard %d", batch, shard_rows);
        goto out;
    }
    snprintf(sub, sizeof sub, "embeddings/%s", name);
    if ((rc = wp_path_join(dir, cat_dir(c), sub, err)) != 0)
        goto out;
    static const char *const subdirs[] = {"img_emb", "text_emb", "metadata"};
    for (int i = 0; i < 3; i++) {
        char p[WP_PATH_MAX];
        if ((rc = wp_path_join(p, dir, subdirs[i], err)) != 0 || (rc = wp_mkdir_p(p, err)) != 0)
            goto out;
    }
    char part[32];
    snprintf(part, sizeof part, "%d/%d", wp_part_all(&o->part) ? 1 : o->part.i,
             wp_part_all(&o->part) ? 1 : o->part.n);
    wp_json pj;
    wp_json_init(&pj, &params);
    wp_json_obj_begin(&pj, NULL);
    wp_json_str(&pj, "model", name);
    wp_json_int(&pj, "batch", batch);
    wp_json_str(&pj, "precision", o->precision == CLIP_BF16 ? "bf16" : "f32");
    wp_json_int(&pj, "shard_rows", shard_rows);
    wp_json_str(&pj, "part", part);
    wp_json_obj_end(&pj);
    if (wp_json_finish(&pj) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = cat_run_begin(c, "encode", params.data, &run, err)) != 0)
        goto out;
    run_id = cat_run_id(run);
    if ((rc = cat_encode_next_shard(c, name, &shard_no, err)) != 0 ||
        (rc = emb_remove_leftovers(dir, shard_no, NULL, err)) != 0)
        goto out;
    total = cat_encode_count_todo(c, name);
    if (o->limit > 0 && total > o->limit)
        total = o->limit;
    pr.stage = "encode";
    pr.total = total > 0 ? (uint64_t)total : 0;

    /* prime: list and decode the first batch */
    int want = batch;
    if (o->limit > 0 && o->limit < want)
        want = (int)o->limit;
    if ((rc = fill_slot(c, name, &o->part, &after, want, &slots[cur], err)) != 0)
        goto out;
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < parts; p++)
            jobs[i][p] = (job){&r, &slots[i], p, parts};
    if (slots[cur].n > 0 && (rc = start_decode(&slots[cur], jobs[cur], parts, err)) != 0)
        goto out;
    int64_t listed = slots[cur].n;
    while (slots[cur].n > 0) {
        slot *s = &slots[cur], *nx = &slots[1 - cur];
        join_decode(s);
        /* list the next batch and start decoding it while this one runs */
        nx->n = 0;
        want = batch;
        if (o->limit > 0 && o->limit - listed < want)
            want = (int)(o->limit - listed);
        if (want > 0 && !wp_stop_requested()) {
            if ((rc = fill_slot(c, name, &o->part, &after, want, nx, err)) != 0)
                goto out;
            listed += nx->n;
            if (nx->n > 0 && (rc = start_decode(nx, jobs[1 - cur], parts, err)) != 0)
                goto out;
        }
        /* images: compact the decoded ones to the front */
        int nimg = 0;
        int map[ENC_BATCH_MAX];
        size_t px = (size_t)3 * r.S * r.S;
        for (int u = 0; u < s->nu; u++) {
            map[u] = -1;
            if (!s->img_ok[u])
                continue;
            if (nimg != u)
                memmove(s->pixels + (size_t)nimg * px, s->pixels + (size_t)u * px,
                        px * sizeof(float));
            map[u] = nimg++;
        }
        if ((rc = clip_encode_images(m, ws, s->pixels, nimg, iemb, err)) != 0)
            goto out;
        if ((rc = clip_encode_texts(m, ws, s->tokens, s->n, r.ctx, temb, err)) != 0)
            goto out;
        counts->images += nimg;
        counts->texts += s->n;
        for (int i = 0; i < nimg; i++)
            clip_l2_normalize(iemb + (size_t)i * r.E, r.E);
        /* pairs whose image could not be read or decoded: recorded so
         * that later runs skip them */
        int dropped = 0;
        for (int i = 0; i < s->n; i++) {
            int u = s->uidx[i];
            if (map[u] >= 0)
                continue;
            const char *why = s->loc_ok[u] ? s->img_err[u].msg : "image not stored";
            wp_report_event(rep, WP_LOG_WARN, "encode_decode_error", "image %lld (pair %s): %s",
                            (long long)s->img_id[u], s->items[i].uid, why);
            if (!dropped && (rc = cat_begin(c, err)) != 0)
                goto out;
            dropped = 1;
            int code = s->loc_ok[u] ? s->img_err[u].code : WP_ENOENT;
            const char *reason = code == WP_ENOENT || code == WP_EIO || code == ST_ECORRUPT
                                     ? "store_error"
                                 : code == WP_ELIMIT ? "too_large"
                                                     : "decode_error";
            if ((rc = cat_encode_drop(c, s->items[i].pair_id, name, reason, run_id, err)) != 0)
                goto out;
            counts->failed++;
        }
        if (dropped && (rc = cat_commit(c, err)) != 0)
            goto out;
        for (int i = 0; i < s->n; i++) {
            int k = map[s->uidx[i]];
            float *t = temb + (size_t)i * r.E;
            if (k < 0)
                continue;
            clip_l2_normalize(t, r.E);
            const float *im = iemb + (size_t)k * r.E;
            float score = 0;
            for (int j = 0; j < r.E; j++) {
                sh.img[(size_t)sh.rows * r.E + j] = wp_f32_to_f16(im[j]);
                sh.txt[(size_t)sh.rows * r.E + j] = wp_f32_to_f16(t[j]);
                score += im[j] * t[j];
            }
            sh.meta[sh.rows].pair_id = s->items[i].pair_id;
            snprintf(sh.meta[sh.rows].uid, sizeof sh.meta[sh.rows].uid, "%s", s->items[i].uid);
            sh.meta[sh.rows].clip_score = score;
            sh.rows++;
            if (sh.rows == sh.cap) {
                if ((rc = flush_shard(c, dir, name, shard_no, &sh, r.E, counts, err)) != 0)
                    goto out;
                shard_no++;
            }
        }
        pr.done += (uint64_t)s->n;
        pr.errors = (uint64_t)counts->failed;
        wp_report_progress(rep, &pr);
        cur = 1 - cur;
        if (wp_stop_requested() && slots[cur].running == 0)
            break;
    }
    if ((rc = flush_shard(c, dir, name, shard_no, &sh, r.E, counts, err)) != 0)
        goto out;
    if (wp_stop_requested())
        rc = wp_err_set(err, WP_ESTOP, "stopped; %lld pairs embedded", (long long)counts->pairs);
out:
    for (int i = 0; i < 2; i++)
        join_decode(&slots[i]);
    if (run != NULL) {
        wp_buf cj = {0};
        wp_json j;
        wp_json_init(&j, &cj);
        wp_json_obj_begin(&j, NULL);
        wp_json_int(&j, "pairs", counts->pairs);
        wp_json_int(&j, "images", counts->images);
        wp_json_int(&j, "texts", counts->texts);
        wp_json_int(&j, "shards", counts->shards);
        wp_json_int(&j, "failed", counts->failed);
        wp_json_obj_end(&j);
        rc = cat_run_end(run, rc, wp_json_finish(&j) == 0 ? cj.data : NULL, err);
        wp_buf_free(&cj);
    }
    for (int i = 0; i < 2; i++)
        slot_free(&slots[i]);
    free(sh.img);
    free(sh.txt);
    free(sh.meta);
    wp_buf_free(&params);
    free(iemb);
    free(temb);
    clip_ws_free(ws);
    clip_tok_free(tok);
    clip_model_free(m);
    return rc;
}
