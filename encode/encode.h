/*
 * encode/encode.h: the `encode` stage: CLIP embeddings and scores of every
 * stored pair, written through the embeddings module (emb/) and the
 * catalog. The model itself is the clip/ service.
 */
#ifndef ENCODE_H
#define ENCODE_H

#include "common/wp.h"

#include <stdint.h>

/* ---- the encode stage ------------------------------------------------ */

struct cat;
struct st_store;

typedef struct enc_run_opts {
    const char *model_dir;
    const char *model_name; /* folder name under DIR/embeddings/ */
    int batch;              /* images per forward pass */
    int precision;
    int shard_rows;     /* rows per .npy shard */
    int64_t limit;      /* stop after this many pairs; 0 = all */
    int decode_threads; /* image decoding threads; 0 = about one per 4 cores (max 8) */
    wp_part part;       /* --part I/N: only pairs whose uid is in the part (wp_part_key_hex) */
} enc_run_opts;

/* The defaults: 32 pairs per batch, 10000 rows per shard, f32, all pairs,
 * decode threads chosen from the core count; model_dir must be set. */
void enc_run_opts_init(enc_run_opts *o);

typedef struct enc_run_counts {
    int64_t pairs, images, texts, shards, failed, skipped;
} enc_run_counts;

/* Embeds every pair whose image is stored ok and that has no embedding for
 * this model yet: DIR/embeddings/NAME/{img_emb,text_emb}/..._N.npy (float16)
 * and metadata_N.jsonl (row -> pair uid), then the catalog's embeddings
 * rows (with the image-text cosine as clip_score), shard by shard, so a
 * stopped run resumes after the last written shard. Images that fail to
 * decode get an encode/drop decision and are not retried. Returns 0,
 * WP_ESTOP when stopped (what was done is kept), or an error. */
int enc_run(struct cat *c, struct st_store *s, const enc_run_opts *opts, const wp_reporter *rep,
            enc_run_counts *counts, wp_err *err);

#endif /* ENCODE_H */
