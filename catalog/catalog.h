/*
 * catalog/catalog.h: the corpus catalog, one SQLite database per corpus
 * directory (DIR/catalog.db, schema in schemas/catalog.sql).
 *
 * Every stage reads its work from here and writes its results back; no SQL
 * appears outside this module. A cat handle belongs to one thread (the
 * stage's writer thread); writes are grouped by the caller in transactions
 * with cat_begin/cat_commit, which is what makes a stage both fast and
 * crash-safe: a batch is either entirely in the catalog or not at all.
 *
 * Strings a cat function hands back live in the arena the caller passes in,
 * or, where no arena is taken, until the next call on the same handle.
 */
#ifndef CATALOG_H
#define CATALOG_H

#include "common/wp.h"

#include <stdint.h>

enum cat_status {
    CAT_ESQL = -100,      /* SQLite reported an error (message has details) */
    CAT_ENEWER = -101,    /* written by a newer witpipe: schema version too high */
    CAT_ELOCKED = -102,   /* another witpipe process holds the corpus */
    CAT_ENOCORPUS = -103, /* DIR has no catalog (run witpipe init) */
};

typedef struct cat cat;

#define CAT_CREATE   1 /* create DIR and its catalog if missing */
#define CAT_READONLY 2 /* no lock, no writes (witpipe status) */

/* ---- core ------------------------------------------------------------ */

/* Opens DIR's catalog, applying pending migrations. Unless CAT_READONLY,
 * takes an exclusive lock on the corpus for the life of the handle.
 * Returns 0 and *out, or CAT_ENOCORPUS, CAT_ENEWER, CAT_ELOCKED, CAT_ESQL,
 * WP_EIO with err filled. The caller frees *out with cat_close. */
int cat_open(const char *dir, int flags, cat **out, wp_err *err);
void cat_close(cat *c);
const char *cat_dir(const cat *c);
int cat_schema_version(const cat *c); /* user_version after migrations */
int cat_latest_schema_version(void);  /* the newest migration this build knows */

/* Batched writes. cat_begin starts a transaction (nesting is an error);
 * cat_commit ends it durably (WAL, synchronous=NORMAL + checkpoint on close). */
int cat_begin(cat *c, wp_err *err);
int cat_commit(cat *c, wp_err *err);
void cat_rollback(cat *c);
int cat_in_transaction(const cat *c);

/* ---- runs ------------------------------------------------------------ */

/* Records the start of a stage run; params_json is stored as given. */
int cat_run_start(cat *c, const char *stage, const char *params_json, int64_t *run_id, wp_err *err);
/* status: done | stopped | failed. counts_json: what the run did. */
int cat_run_end(cat *c, int64_t run_id, const char *status, const char *counts_json, wp_err *err);

/* ---- sources --------------------------------------------------------- */

/* Returns the id of the (kind, location) source, adding it if new. */
int cat_source_get_or_add(cat *c, const char *kind, const char *location, const char *params_json,
                          int64_t *id, wp_err *err);

/* ---- pairs ----------------------------------------------------------- */

typedef struct cat_pair_in {
    const char *url; /* image URL (or file:// URL of an imported file) */
    size_t url_len;
    const char *text; /* caption, valid UTF-8 */
    size_t text_len;
    int64_t source_id;
    const char *origin;     /* file:line or page URL; may be NULL */
    const char *extra_json; /* JSON object text or NULL */
    int64_t run_id;
    const char *uid; /* wp_pair_uid(url, text) if the caller has it, else NULL */
} cat_pair_in;

/* Adds the pair (and its image row, if the URL is new). An exact duplicate
 * of an existing (url, text) pair is not stored again: *is_new = 0 and
 * *pair_id names the existing row. Either out pointer may be NULL. */
int cat_pair_add(cat *c, const cat_pair_in *p, int64_t *pair_id, int64_t *image_id, int *is_new,
                 wp_err *err);
/* Records one more place an existing pair was seen (ignored if known). */
int cat_pair_seen(cat *c, int64_t pair_id, int64_t source_id, const char *origin, wp_err *err);
int64_t cat_count_pairs(cat *c);

/* ---- images ---------------------------------------------------------- */

typedef struct cat_image_todo {
    int64_t id;
    const char *url; /* in the caller's arena */
    int attempts;
} cat_image_todo;

/* Up to max images with state 'pending' and id > after_id, in id order.
 * Strings are allocated in arena. Returns 0 and *n (0 when none left). */
int cat_images_pending(cat *c, int64_t after_id, int max, cat_image_todo *out, int *n,
                       wp_arena *arena, wp_err *err);
int64_t cat_count_images_pending(cat *c);

/* The outcome of fetching (or importing) one image. Strings may be NULL;
 * numbers < 0 mean unknown and are stored as NULL. */
typedef struct cat_image_result {
    int64_t id;
    const char *state; /* ok | error | pending (to retry later) */
    const char *error_class;
    const char *error_detail;
    int http_status;
    int attempts;
    const char *opt_out;
    const char *format;
    const char *orig_format;
    int orig_width, orig_height;
    int64_t orig_bytes;
    const char *orig_sha256;
    int width, height;
    int64_t bytes;
    const char *sha256;
    int64_t store_file, store_offset;
    int64_t fetch_ms;
    int64_t run_id;
} cat_image_result;

/* A result with every number set to -1 and every string NULL. */
cat_image_result cat_image_result_init(int64_t id);
int cat_image_set_result(cat *c, const cat_image_result *r, wp_err *err);

/* Where an ok image's stored bytes are. Returns WP_ENOENT if the image is
 * not in state ok. format is a static string ("jpeg", "png", "webp"). */
typedef struct cat_image_loc {
    int64_t store_file, store_offset, bytes;
    int width, height;
    const char *format;
    char sha256[WP_SHA256_HEX + 1];
} cat_image_loc;
int cat_image_location(cat *c, int64_t image_id, cat_image_loc *loc, wp_err *err);

/* ---- status ---------------------------------------------------------- */

/* Calls fn once per (section, key, count) row: sources by kind, images by
 * state and error class, pairs, decisions by stage/decision/reason, pages
 * by state, shards, runs by stage. */
typedef void (*cat_stat_fn)(void *ud, const char *section, const char *key, int64_t count);
int cat_stats(cat *c, cat_stat_fn fn, void *ud, wp_err *err);

/* ---- stage sections ---------------------------------------------------
 * Stages add their own queries below, each in its own catalog/cat_STAGE.c. */

/* ---- crawl (catalog/cat_crawl.c) --------------------------------------- */

/* Where an archive (a warc/wat source) stopped: the compressed offset of
 * the next record and its record number. Zeros when never started. */
int cat_archive_progress_get(cat *c, int64_t source_id, int64_t *offset, int64_t *records,
                             int *done, wp_err *err);
int cat_archive_progress_set(cat *c, int64_t source_id, int64_t offset, int64_t records, int done,
                             wp_err *err);

/* The live crawl frontier (table pages, one row per normalised URL).
 * cat_page_add adds a pending page unless the URL is known (*added 0);
 * redirects = the redirect hops that led to it. */
int cat_page_add(cat *c, const char *url, int depth, int redirects, int64_t source_id, int *added,
                 wp_err *err);
typedef struct cat_page_todo {
    int64_t id;
    const char *url; /* in the caller's arena */
    int depth;
    int redirects;
} cat_page_todo;
/* Up to max pending pages, shallowest first (breadth-first order). */
int cat_pages_pending(cat *c, int max, cat_page_todo *out, int *n, wp_arena *arena, wp_err *err);
/* state: ok | error | skipped | redirect; error_class may be NULL; numbers
 * < 0 are stored as NULL. */
int cat_page_set_result(cat *c, int64_t id, const char *state, const char *error_class,
                        int http_status, int pairs_found, wp_err *err);
/* Pages in state (NULL: all). -1 on error. */
int64_t cat_count_pages(cat *c, const char *state);

/* robots.txt cache keyed by origin (scheme://host[:port]). *found is 0
 * when there is no entry fetched at or after min_fetched_at. */
int cat_robots_get(cat *c, const char *origin, int64_t min_fetched_at, int *status, wp_buf *body,
                   int *found, wp_err *err);
int cat_robots_put(cat *c, const char *origin, int status, const void *body, size_t len,
                   wp_err *err);
/* ---- fetch (catalog/cat_fetch.c) ---- */

/* One image's recorded outcome, as cat_image_set_result stored it (unknown
 * numbers are -1, absent strings NULL; strings live in arena). Returns 0,
 * WP_ENOENT for an unknown id, CAT_ESQL or WP_ENOMEM. */
int cat_image_get(cat *c, int64_t id, cat_image_result *out, wp_arena *arena, wp_err *err);

/* ---- shard (catalog/cat_shard.c) ---------------------------------------
 * What `witpipe shard` reads and records. The sample cursor runs on its own
 * read-only connection (one consistent snapshot for the whole run) so that
 * shard rows can be committed on the main handle while it is open. */

typedef struct cat_shard_cursor cat_shard_cursor;

/* One pair as the shard stage sees it. Strings may be NULL and stay valid
 * until the next cat_shard_cursor_next on the same cursor. */
typedef struct cat_sample {
    int64_t pair_id, image_id;
    const char *uid, *text, *origin, *extra;
    size_t text_len;
    const char *source_kind, *source_location;
    const char *url, *state, *error_class, *format, *orig_format;
    const char *sha256, *orig_sha256;
    int width, height, orig_width, orig_height; /* -1 when unknown */
    int64_t bytes, orig_bytes, store_file, store_offset;
    const char *drop; /* "stage/reason" of the first drop decision, or NULL */
    int selected;     /* state ok, stored, and not dropped */
} cat_sample;

/* Opens a cursor over every pair: in pair id order, or, with shuffle, in
 * the order of a 64-bit mix of seed and uid (ties by id): the same catalog
 * and seed always give the same order. Free with cat_shard_cursor_close. */
int cat_shard_cursor_open(cat *c, int shuffle, uint64_t seed, cat_shard_cursor **out, wp_err *err);
/* Returns 1 and the next pair, 0 at the end, or CAT_ESQL. */
int cat_shard_cursor_next(cat_shard_cursor *cur, cat_sample *s, wp_err *err);
/* Calls fn for each decision on pair_id, in stage order (score is NAN when
 * absent), then for each embedding model with a clip_score (stage NULL,
 * decision = model name). Returns 0 or CAT_ESQL. */
typedef void (*cat_decision_fn)(void *ud, const char *stage, const char *decision,
                                const char *reason, double score);
int cat_shard_decisions(cat_shard_cursor *cur, int64_t pair_id, cat_decision_fn fn, void *ud,
                        wp_err *err);
void cat_shard_cursor_close(cat_shard_cursor *cur);

/* A shards row. */
typedef struct cat_shard_row {
    int64_t samples, bytes, first_pair, last_pair;
    char sha256[WP_SHA256_HEX + 1];
    int done;
} cat_shard_row;

/* Reads the row of (output, name): 0, WP_ENOENT when there is none, CAT_ESQL. */
int cat_shard_get(cat *c, const char *output, const char *name, cat_shard_row *row, wp_err *err);
/* Records a finished shard (done = 1), replacing any earlier row. */
int cat_shard_put(cat *c, const char *output, const char *name, const cat_shard_row *row,
                  int64_t run_id, wp_err *err);

/* ---- add (catalog/cat_add.c) ------------------------------------------ */

/* Bulk loading on (1) or off (0): fewer, larger WAL checkpoints and a
 * bigger (bounded) page cache while a stage inserts millions of rows.
 * Turning it off checkpoints what has piled up. Returns 0 or CAT_ESQL. */
int cat_bulk_mode(cat *c, int on, wp_err *err);

/* ---- encode (catalog/cat_encode.c) ----------------------------------- */

#define CAT_ENCODE_STAGE_MAX 160 /* "encode:" + model name, decisions.stage */

typedef struct cat_encode_item {
    int64_t pair_id, image_id;
    const char *uid;  /* in the caller's arena */
    const char *text; /* in the caller's arena */
    size_t text_len;
} cat_encode_item;

/* Up to max pairs with id > after_pair whose image is stored ok, with no
 * embedding for model and no "encode:MODEL" decision, in pair id order.
 * Returns 0 and *n (0 when none left). */
int cat_encode_todo(cat *c, const char *model, int64_t after_pair, int max, cat_encode_item *out,
                    int *n, wp_arena *arena, wp_err *err);
/* How many pairs cat_encode_todo would list in all; -1 on error. */
int64_t cat_encode_count_todo(cat *c, const char *model);
/* 1 + the highest shard number recorded for model, 0 when none. */
int cat_encode_next_shard(cat *c, const char *model, int64_t *shard, wp_err *err);
/* Records pair_id as row `row` of shard `shard` of model. */
int cat_encode_add(cat *c, int64_t pair_id, const char *model, int64_t shard, int64_t row,
                   double clip_score, wp_err *err);
/* Records that pair_id cannot be encoded (decision drop, stage
 * "encode:MODEL"), so later runs skip it. */
int cat_encode_drop(cat *c, int64_t pair_id, const char *model, const char *reason, int64_t run_id,
                    wp_err *err);
/* Embeddings recorded for model; -1 on error. */
int64_t cat_encode_count(cat *c, const char *model);

/* ---- dedup (catalog/cat_dedup.c) ---------------------------------------- */

/* One pair of a stored image as the dedup stage sees it. */
typedef struct cat_dedup_item {
    int64_t pair_id, image_id;
    char sha256[WP_SHA256_HEX + 1];      /* stored bytes; "" when unknown */
    char orig_sha256[WP_SHA256_HEX + 1]; /* bytes as served; "" when unknown */
    int64_t orig_area;                   /* orig_width * orig_height, -1 unknown */
    double clip_score;                   /* the highest over models, NAN when none */
    int has_phash;                       /* hashes of the current stored bytes exist */
    uint64_t phash, phash_inner;         /* whole image, and less 5% a side */
} cat_dedup_item;

/* Calls fn for each pair whose image is stored ok, in pair id order; a
 * non-zero return from fn stops the walk and is returned. Else 0 or
 * CAT_ESQL. */
typedef int (*cat_dedup_item_fn)(void *ud, const cat_dedup_item *it);
int cat_dedup_items(cat *c, cat_dedup_item_fn fn, void *ud, wp_err *err);

/* A stored image still to hash: none recorded, or recorded for other bytes. */
typedef struct cat_dedup_todo {
    int64_t image_id, store_file, store_offset, bytes;
    char sha256[WP_SHA256_HEX + 1];
} cat_dedup_todo;
/* Up to max such images with id > after_image, in id order; *n = 0 when
 * none are left. */
int cat_dedup_phash_todo(cat *c, int64_t after_image, int max, cat_dedup_todo *out, int *n,
                         wp_err *err);
/* How many images cat_dedup_phash_todo would list in all; -1 on error. */
int64_t cat_dedup_count_phash_todo(cat *c);
/* Records an image's hashes (ok = 0: its bytes could not be hashed) as of
 * the stored bytes sha256. */
int cat_dedup_phash_put(cat *c, int64_t image_id, int ok, uint64_t phash, uint64_t inner,
                        const char *sha256, wp_err *err);
/* Calls fn(pair_id, shard, row) for each embedding row of model, in
 * (shard, row) order. */
typedef int (*cat_dedup_emb_fn)(void *ud, int64_t pair_id, int64_t shard, int64_t row);
int cat_dedup_embeddings(cat *c, const char *model, cat_dedup_emb_fn fn, void *ud, wp_err *err);
/* The models with embeddings, one name a line in out; *n of them. */
int cat_dedup_models(cat *c, wp_buf *out, int *n, wp_err *err);
/* Deletes every decision of stage "dedup" (a rerun replaces them). */
int cat_dedup_clear(cat *c, wp_err *err);
/* Records a drop decision of stage "dedup" (score NAN: none). */
int cat_dedup_drop(cat *c, int64_t pair_id, const char *reason, double score, int64_t run_id,
                   wp_err *err);
/* Caption flags for the filter stage (decisions of stage "dedup-text",
 * decision keep, score = the count): every pair whose caption is the
 * whole text of more than max_images different images (reason
 * caption_shared), and every other pair of an image with more than
 * max_captions different captions (reason many_captions); 0 turns a check
 * off. Earlier "dedup-text" decisions are replaced. *shared and *many
 * say how many pairs were flagged. Call inside a transaction. */
int cat_dedup_text_flags(cat *c, int max_images, int max_captions, int64_t run_id, int64_t *shared,
                         int64_t *many, wp_err *err);
/* A pair's caption (into out) and image id; WP_ENOENT for an unknown id. */
int cat_dedup_pair_text(cat *c, int64_t pair_id, wp_buf *out, int64_t *image_id, wp_err *err);

#endif /* CATALOG_H */
