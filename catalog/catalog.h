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
    CAT_EMERGED = -104,   /* this part catalog was merged already */
    CAT_ECONFLICT = -105, /* a part's decision contradicts the corpus's */
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
/* Writes a consistent copy of c's catalog to path (SQLite's online backup:
 * safe while others read it). path must not exist: WP_EINVAL. Returns 0,
 * WP_EINVAL or CAT_ESQL (a partial file is removed). */
int cat_backup(cat *c, const char *path, wp_err *err);
int cat_latest_schema_version(void); /* the newest migration this build knows */

/* Tests only: with WITPIPE_TEST_COMMIT_DELAY_MS=N in the environment
 * (0..10000) every cat_commit sleeps N/2 ms before and N/2 ms after the
 * COMMIT, so that kill -9 and Ctrl-C can land in the middle of any stage's
 * work (tests/integration/test_soak.py, test_ctrl_c.py). */

/* Batched writes. cat_begin starts a transaction (nesting is an error);
 * cat_commit ends it durably (WAL, synchronous=NORMAL + checkpoint on close). */
int cat_begin(cat *c, wp_err *err);
int cat_commit(cat *c, wp_err *err);
void cat_rollback(cat *c);
int cat_in_transaction(const cat *c);

/* ---- runs (catalog/cat_run.c) --------------------------------------- */

/* One stage run, the same for every stage: begin it with the stage's name
 * and options, report its counts as it goes (each commit, so a killed run
 * shows how far it got), end it with the stage's status code:
 *
 *     cat_run *run;
 *     if ((rc = cat_run_begin(c, "shard", "{\"per_shard\":100}", &run, err)) != 0)
 *         return rc;
 *     ... work, calling cat_run_counts(run, "{\"shards\":3}", err) per batch ...
 *     return cat_run_end(run, rc, "{\"shards\":7}", err);
 *
 * A run killed before cat_run_end stays "running" with its last counts. */
typedef struct cat_run cat_run;

/* Records the start of a run of stage (a short lowercase word) with
 * params_json, a JSON object (NULL: {}). Returns 0 and *out (the caller
 * ends it with cat_run_end, which frees it), WP_EINVAL when params_json is
 * not a JSON object, CAT_ESQL or WP_ENOMEM. */
int cat_run_begin(cat *c, const char *stage, const char *params_json, cat_run **out, wp_err *err);
/* The run's id (runs.id; what rows written by the run point at). */
int64_t cat_run_id(const cat_run *r);
/* Replaces the run's counts with counts_json, a JSON object. May be called
 * any number of times; inside an open transaction the counts commit with
 * it. Returns 0, WP_EINVAL (not a JSON object) or CAT_ESQL. */
int cat_run_counts(cat_run *r, const char *counts_json, wp_err *err);
/* Ends the run and frees r (r may be NULL: returns status). status is the
 * stage's return code: 0 -> done, WP_ESTOP -> stopped, anything else ->
 * failed, with err's message stored as the run's error. counts_json becomes
 * the final counts (NULL, or text that is no JSON object: the last reported
 * stay). When status != 0 a
 * transaction still open is rolled back first (the batch the stage failed
 * in), and status is returned with err untouched (a failure to record the
 * end is dropped: the stage's own error matters more). When status is 0
 * the update joins an open transaction; returns 0, or CAT_ESQL with err
 * filled. So a stage ends with: return cat_run_end(run, rc, cj, err); */
int cat_run_end(cat_run *r, int status, const char *counts_json, wp_err *err);

/* A stage's runs as `witpipe status` shows them: how many, and the last. */
typedef struct cat_run_info {
    const char *stage;
    int64_t runs;                 /* runs of this stage in all */
    int64_t id;                   /* the last run */
    const char *status;           /* running (or killed) | done | stopped | failed */
    int64_t started_at, ended_at; /* unix seconds; ended_at -1 while running */
    const char *params, *counts;  /* JSON object text */
    const char *error;            /* NULL unless failed */
} cat_run_info;
/* Calls fn once per stage that has runs, in stage name order; the strings
 * live until fn returns. Returns 0 or CAT_ESQL. */
typedef void (*cat_run_fn)(void *ud, const cat_run_info *r);
int cat_runs_by_stage(cat *c, cat_run_fn fn, void *ud, wp_err *err);
/* For a corpus with merged parts: calls fn once per (merged part, stage)
 * with that part's last run of the stage (runs: the part's runs of it), in
 * stage order. Nothing when no part was merged. Returns 0 or CAT_ESQL. */
int cat_runs_by_merged_part(cat *c, cat_run_fn fn, void *ud, wp_err *err);
/* Calls fn for every run of stage, oldest first (runs is 1 in each).
 * Returns 0 or CAT_ESQL. */
int cat_runs_of_stage(cat *c, const char *stage, cat_run_fn fn, void *ud, wp_err *err);

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
 * by state, shards, embeddings by model (runs: cat_runs_by_stage). */
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

/* ---- queries and balance (catalog/cat_balance.c) ----------------------
 * The query list (one current version), each pair's matched entries, the
 * per-entry counts, and balance decisions. */

/* Returns entry i's bytes and length; used to hand a list to the catalog
 * without the catalog knowing the list type. */
typedef const char *(*cat_entry_fn)(void *ud, size_t i, size_t *len);

/* Stores a new query list version (n entries from get) and removes the
 * previous version's entries; *version is the new version. Runs in its own
 * transaction. Returns 0 or CAT_ESQL. */
int cat_qry_put(cat *c, const char *source, const char *sha256, const char *params_json, size_t n,
                cat_entry_fn get, void *ud, int64_t run_id, int64_t *version, wp_err *err);
/* The current list: its version, entry count and sha256 (65 bytes).
 * WP_ENOENT when no list was ever stored. */
int cat_qry_current(cat *c, int64_t *version, int64_t *entries, char *sha256, wp_err *err);
/* Calls fn(ud, entry, text, len) for every entry of version, in order.
 * fn returns 0 to go on, anything else to stop with that status. */
typedef int (*cat_qry_fn)(void *ud, int64_t entry, const char *text, size_t len);
int cat_qry_entries(cat *c, int64_t version, cat_qry_fn fn, void *ud, wp_err *err);

typedef struct cat_match_item {
    int64_t pair_id;
    const char *text; /* in the caller's arena */
    size_t text_len;
    int stale; /* has matches from another version or rule (to be replaced) */
} cat_match_item;
/* Up to max pairs with id > after_pair not matched under (version, rule),
 * in id order. Returns 0 and *n (0 when none are left). */
int cat_qry_match_todo(cat *c, int64_t version, const char *rule, int64_t after_pair, int max,
                       cat_match_item *out, int *n, wp_arena *arena, wp_err *err);
/* Pairs cat_qry_match_todo would list in all; -1 on error. */
int64_t cat_qry_count_todo(cat *c, int64_t version, const char *rule);
/* Records pair_id's matches (entries ids[0..k)) under (version, rule),
 * replacing earlier ones when stale. Call inside a transaction. */
int cat_qry_match_put(cat *c, int64_t pair_id, int stale, int64_t version, const char *rule,
                      const uint32_t *ids, size_t k, wp_err *err);

/* 1 if pairs has a language column (written by the filter stage), else 0;
 * negative on error. */
int cat_bal_has_language(cat *c, wp_err *err);
/* One row per (eligible pair, matched entry) in pair id order, entry -1 for
 * a pair matching nothing. Eligible: no drop decision from a stage other
 * than balance, and an image whose state is not error. uid is 32 hex
 * digits; lang is NULL unless with_lang (then it may still be NULL). The
 * strings are valid during the call. fn returns 0 to go on. */
typedef int (*cat_bal_row_fn)(void *ud, int64_t pair_id, int64_t image_id, const char *uid,
                              const char *lang, int64_t entry);
int cat_bal_pairs(cat *c, int with_lang, cat_bal_row_fn fn, void *ud, wp_err *err);
/* Records the balance decision of a pair (replacing an earlier one). */
int cat_bal_decide(cat *c, int64_t pair_id, int keep, const char *reason, double score,
                   int64_t run_id, wp_err *err);
/* Calls fn(ud, text, len) for every pair's caption, in id order (the
 * default corpus of witpipe queries build). fn returns 0 to go on. */
typedef int (*cat_text_fn)(void *ud, const char *text, size_t len);
int cat_qry_captions(cat *c, cat_text_fn fn, void *ud, wp_err *err);
/* Stores count and kept of one entry of version. */
int cat_qry_set_count(cat *c, int64_t version, int64_t entry, int64_t count, int64_t kept,
                      wp_err *err);

/* ---- filter (catalog/cat_filter.c) -------------------------------------
 * What `witpipe filter` and `witpipe explain` read and record: a batched
 * scan of pairs with what the rules need, the CLIP scores of one model,
 * the stage's decisions and per-rule verdicts, languages (pair_lang) and
 * content tags (pair_tags). */

/* One pair as the filter's rules see it. Numbers < 0 are unknown. */
typedef struct cat_filter_row {
    int64_t pair_id, image_id;
    const char *text; /* in the caller's arena */
    size_t text_len;
    int orig_width, orig_height;
    int64_t orig_bytes, bytes; /* as served; as stored (the shard's bytes) */
    int has_lang;
    char lang[16];
    double lang_conf;
    int has_score; /* a CLIP score of the model (per clip_text) */
    double clip_score;
    int text_dup;    /* dedup flagged the caption (decision dedup/text_dup) */
    const char *tag; /* the content tag, or NULL (arena) */
    char uid[WP_UID_HEX + 1];
} cat_filter_row;

#define CAT_FILTER_LANG 1 /* read pair_lang (else has_lang = 0) */
#define CAT_FILTER_TAG  2 /* read the content tag (else tag = NULL) */
#define CAT_FILTER_DUP  4 /* read the dedup text_dup flag (else 0) */
#define CAT_FILTER_TEXT 8 /* read the caption (else text "", text_len 0) */
/* Up to max pairs with id > after_pair in id order. model may be NULL (no
 * scores read); clip_text: 0 the pair's own score, 1 the max over its
 * image's pairs, 2 their mean. want: CAT_FILTER_* bits, what else to read.
 * Returns 0 and *n (0 at the end), CAT_ESQL, WP_ENOMEM. */
int cat_filter_rows(cat *c, const char *model, int clip_text, int want, int64_t after_pair, int max,
                    cat_filter_row *out, int *n, wp_arena *arena, wp_err *err);
/* Calls fn for each embedding model with at least one clip_score (name,
 * count), in name order. */
typedef void (*cat_model_fn)(void *ud, const char *model, int64_t count);
int cat_filter_models(cat *c, cat_model_fn fn, void *ud, wp_err *err);
/* *n = how many pairs cat_filter_scores would return (a COUNT: nothing
 * held). 0 or CAT_ESQL. */
int cat_filter_count_scores(cat *c, const char *model, int clip_text, int64_t *n, wp_err *err);
/* Every pair's score for model (see cat_filter_rows for clip_text), in
 * pair id order, as two malloc'ed arrays the caller frees. */
int cat_filter_scores(cat *c, const char *model, int clip_text, int64_t **ids, double **scores,
                      int64_t *n, wp_err *err);
/* Removes the stage's decisions (stage 'filter') and verdicts. */
int cat_filter_reset(cat *c, wp_err *err);
/* Records pair_id's decision (stage 'filter'): drop with reason, or keep
 * (reason NULL); score NaN is stored as NULL. rules_json: the JSON array of
 * every rule that would drop it, or NULL for none. */
int cat_filter_put(cat *c, int64_t pair_id, int drop, const char *reason, double score,
                   const char *rules_json, int64_t run_id, wp_err *err);
/* Where a filter run with these params can resume: when the newest filter
 * run other than run_id did not finish (status running, stopped or failed)
 * and recorded the same params, *after = the highest pair id it decided
 * (0 if none); otherwise *after = -1 (start afresh). */
int cat_filter_resume_point(cat *c, const char *params_json, int64_t run_id, int64_t *after,
                            wp_err *err);
/* Records the detected language of a pair that has none yet (a second
 * record for the same pair is CAT_ESQL). */
int cat_lang_put(cat *c, int64_t pair_id, const char *lang, double conf, int reliable, wp_err *err);

/* Pairs to tag: stored ok, id > after_pair, without a tag of kind from
 * model. store fields as in cat_image_loc. */
typedef struct cat_tag_item {
    int64_t pair_id, image_id;
    int64_t store_file, store_offset, bytes;
    char sha256[WP_SHA256_HEX + 1];
} cat_tag_item;
int cat_tag_todo(cat *c, const char *kind, const char *model, int64_t after_pair, int max,
                 cat_tag_item *out, int *n, wp_err *err);
/* Records (replacing) pair_id's tag of kind. */
int cat_tag_put(cat *c, int64_t pair_id, const char *kind, const char *label, double score,
                double margin, const char *model, wp_err *err);

/* Everything the catalog knows about one pair (by uid, or by a unique uid
 * prefix of at least 8 hex digits) as one JSON object appended to out:
 * the pair, its image, every decision, CLIP scores, language, filter
 * verdicts, tags (schemas/filter_explain.schema.json). Returns 0, WP_ENOENT
 * (no such pair), WP_EINVAL (the prefix names several), CAT_ESQL. */
int cat_pair_explain(cat *c, const char *uid, wp_buf *out, wp_err *err);

/* ---- audit (catalog/cat_audit.c): read only --------------------------- */

/* Tables of stages that may not have run (or landed) yet: 1 when the table
 * and every column the audit reads exist. lang: filter's pair_lang; tags:
 * filter's pair_tags (kind 'content'); queries: balance's queries +
 * pair_matches; verdicts: filter's filter_verdicts. */
typedef struct cat_audit_tables {
    int lang, tags, queries, verdicts;
} cat_audit_tables;

/* Looks the pending tables up in sqlite_master and pragma table_info; a
 * missing table or column is reported as absent (0), never an error.
 * Returns 0. */
int cat_audit_probe_pending_tables(cat *c, cat_audit_tables *t, wp_err *err);

#define CAT_AUDIT_MAX_DEC 16 /* decisions per pair kept by the cursor */

/* One pair as the audit sees it. Strings may be NULL (absent) and stay
 * valid until the next cat_audit_cursor_next. */
typedef struct cat_audit_pair {
    int64_t pair_id, image_id;
    const char *uid, *text, *url, *state, *error_class, *extra;
    size_t text_len;
    int width, height, orig_width, orig_height; /* -1 when unknown */
    int stored;                                 /* bytes are in the store */
    int ndec;
    struct {
        const char *stage, *decision, *reason; /* reason "" when none */
        double score;                          /* NAN when none */
    } dec[CAT_AUDIT_MAX_DEC];                  /* in stage name order */
    double clip_score;                         /* NAN: no embedding under the model */
    const char *lang;                          /* pair_lang.lang, NULL if none */
    double lang_conf;
    const int64_t *entries; /* pair_matches entries (queries table present) */
    int nentries;
    int matched;               /* the queries tables exist */
    const char *content_label; /* pair_tags kind 'content', NULL if none */
} cat_audit_pair;

typedef struct cat_audit_cursor cat_audit_cursor;

/* Opens a cursor over every pair in id order, on a read-only connection
 * of its own holding one snapshot; model names the embeddings whose CLIP
 * score is read (NULL: none). Returns 0 and *out (free with
 * cat_audit_cursor_close), CAT_ESQL or WP_ENOMEM. */
int cat_audit_cursor_open(cat *c, const char *model, cat_audit_cursor **out, wp_err *err);
/* Returns 1 and the next pair, 0 at the end, CAT_ESQL or WP_ENOMEM. */
int cat_audit_cursor_next(cat_audit_cursor *cur, cat_audit_pair *p, wp_err *err);
const cat_audit_tables *cat_audit_cursor_tables(const cat_audit_cursor *cur);
void cat_audit_cursor_close(cat_audit_cursor *cur);

/* A runs row; strings valid during the callback; ended_at -1 if NULL. */
typedef struct cat_audit_run {
    int64_t id, started_at, ended_at;
    const char *stage, *params, *status, *counts;
} cat_audit_run;
typedef void (*cat_audit_run_fn)(void *ud, const cat_audit_run *r);
/* Calls fn for every run in id order. 0 or CAT_ESQL. */
int cat_audit_runs(cat *c, cat_audit_run_fn fn, void *ud, wp_err *err);

typedef void (*cat_audit_source_fn)(void *ud, const char *kind, const char *location,
                                    int64_t added_at, int64_t pairs);
/* Calls fn for every source with the pairs first seen in it. 0 or CAT_ESQL. */
int cat_audit_sources(cat *c, cat_audit_source_fn fn, void *ud, wp_err *err);

/* How the corpus was collected: crawl pages refused by robots.txt or
 * opted out, images opted out (X-Robots-Tag), the shards of the latest
 * output. */
typedef struct cat_audit_coll {
    int64_t pages, pages_robots, pages_opt_out, robots_cached;
    int64_t images, images_opt_out;
    int64_t first_added, last_added; /* unix seconds, 0 when no pairs */
    int has_shards;
    int64_t shards, shard_samples;
    char shard_output[WP_PATH_MAX];
} cat_audit_coll;
int cat_audit_collection(cat *c, cat_audit_coll *out, wp_err *err);

typedef void (*cat_audit_dec_fn)(void *ud, const char *stage, const char *decision,
                                 const char *reason, int64_t count);
/* Calls fn for every (stage, decision, reason) of the decisions table with
 * its count, in that order (reason "" when none). 0 or CAT_ESQL. */
int cat_audit_decision_counts(cat *c, cat_audit_dec_fn fn, void *ud, wp_err *err);

typedef void (*cat_audit_query_fn)(void *ud, int64_t entry, const char *text);
/* Calls fn for each entry of the newest query list. WP_ENOENT when the
 * queries tables do not exist (balance has not run), 0, or CAT_ESQL. */
int cat_audit_queries(cat *c, cat_audit_query_fn fn, void *ud, wp_err *err);

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

/* A stored image still to hash: none recorded, or recorded for other bytes
 * or by another version of the hash than `version`. */
typedef struct cat_dedup_todo {
    int64_t image_id, store_file, store_offset, bytes;
    char sha256[WP_SHA256_HEX + 1];
} cat_dedup_todo;
/* Up to max such images with id > after_image, in id order; *n = 0 when
 * none are left. */
int cat_dedup_phash_todo(cat *c, int64_t after_image, int max, int version, cat_dedup_todo *out,
                         int *n, wp_err *err);
/* How many images cat_dedup_phash_todo would list in all; -1 on error. */
int64_t cat_dedup_count_phash_todo(cat *c, int version);
/* Records an image's hashes (ok = 0: its bytes could not be hashed) as of
 * the stored bytes sha256, computed by the hash's version. */
int cat_dedup_phash_put(cat *c, int64_t image_id, int ok, uint64_t phash, uint64_t inner,
                        const char *sha256, int version, wp_err *err);
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

/* ---- merging part catalogs (catalog/cat_merge.c) --------------------- */

/* The part's content fingerprint: hex SHA-256 of its runs (id, stage,
 * params, started_at, status, counts) and of its pairs' count, smallest and
 * largest uid, its ok images and their bytes, its decisions and drops, its
 * embeddings. The same part, wherever it was copied, has the same
 * fingerprint; two parts that agree on all of these are taken for one.
 * Returns 0 or CAT_ESQL / WP_ENOMEM. */
int cat_merge_fingerprint(cat *part, char out[WP_SHA256_LEN * 2 + 1], wp_err *err);
/* 1 when a part with this fingerprint was merged into c (*merged_at and
 * path, either may be NULL, say when and from where), 0 when not, CAT_ESQL. */
int cat_merge_find(cat *c, const char *fingerprint, int64_t *merged_at, char *path, size_t path_cap,
                   wp_err *err);
/* How many parts were merged into c; -1 on error (err filled). */
int64_t cat_merge_parts_count(cat *c, wp_err *err);
/* Runs of the part that are not done (running, killed, stopped, failed);
 * -1 with err filled on a SQL error. */
int64_t cat_merge_unfinished_runs(cat *part, wp_err *err);
/* The store file numbers images of c point at, ascending, in *files (the
 * caller frees it). Returns 0, CAT_ESQL or WP_ENOMEM. */
int cat_merge_store_files(cat *c, int64_t **files, size_t *n, wp_err *err);
/* The first store file number no image of c points at (1 for none). */
int cat_merge_store_base(cat *c, int64_t *base, wp_err *err);
/* Calls fn for each (model, embedding shard) of c, in order; a non-zero
 * return from fn stops and is returned. */
typedef int (*cat_merge_emb_fn)(void *ud, const char *model, int64_t shard);
int cat_merge_emb_shards(cat *c, cat_merge_emb_fn fn, void *ud, wp_err *err);

typedef struct cat_merge_emb {
    const char *model;
    int64_t old_shard, new_shard;
} cat_merge_emb;

typedef struct cat_merge_in {
    const char *catalog_path;             /* the part's catalog.db */
    const char *path;                     /* the part's directory, as recorded */
    const char *fingerprint;              /* cat_merge_fingerprint of the part */
    const int64_t *store_old, *store_new; /* store file renumbering (files already copied) */
    size_t nstore;
    const cat_merge_emb *emb; /* embedding shard renumbering (files already copied) */
    size_t nemb;
} cat_merge_in;

typedef struct cat_merge_counts {
    int64_t pairs, pairs_new, images_new, runs;
} cat_merge_counts;

/* Folds the part catalog into c in one transaction (docs/scale-out.md):
 * runs copied with new ids pointing at a new merged_parts row, sources,
 * images (new URLs added; a known URL takes the part's fetch result when it
 * ranks higher: ok > error > pending, or finished earlier), pairs by uid
 * (a known pair's sighting goes to pair_seen), pair_seen, decisions,
 * embeddings, languages, filter verdicts, tags, pages, robots, shards.
 * Store files and embedding shards are renumbered with in's maps; rows
 * whose file is not in the map lose their location. The part must not be
 * written meanwhile (the caller holds its lock). Returns 0; CAT_EMERGED
 * when the fingerprint is merged already, CAT_ECONFLICT when a decision
 * contradicts the corpus's (the message names the pair), CAT_ESQL; on any
 * error c is unchanged. Must not be called inside a transaction. */
int cat_merge_part(cat *c, const cat_merge_in *in, cat_merge_counts *out, wp_err *err);

/* ---- store compaction (catalog/cat_store.c) ---------------------------- */

/* One image row's stored bytes in a store file. */
typedef struct cat_store_ref {
    int64_t image_id, offset, bytes;
    char sha256[WP_SHA256_HEX + 1]; /* "" when the row has none */
} cat_store_ref;

/* Every image row pointing into store file `file`, by offset then id, in
 * *out (malloc'd, the caller frees; NULL when none). Returns 0, WP_ENOMEM
 * or CAT_ESQL. */
int cat_store_refs(cat *c, int64_t file, cat_store_ref **out, size_t *n, wp_err *err);
/* Points image image_id's stored bytes at (file, offset). Returns 0 or
 * CAT_ESQL. */
int cat_store_move(cat *c, int64_t image_id, int64_t file, int64_t offset, wp_err *err);

#endif /* CATALOG_H */
