/*
 * audit/probe_int.h: the image-side probes of the audit (audit/probe.c):
 * zero-shot classification of the image embeddings that `witpipe encode`
 * wrote (read through emb/, never recomputed) against prompt-ensemble
 * classifiers built from audit/labels/probes.txt, accumulated per
 * perceived group. Private to audit/ and its tests.
 */
#ifndef AUDIT_PROBE_INT_H
#define AUDIT_PROBE_INT_H

#include "audit_int.h"

typedef struct aud_probe_ctx aud_probe_ctx;

/* Loads the model of model_dir (for the prompts only), builds the
 * classifiers of probes_path and maps the embeddings folder emb_dir.
 * per_image: keep one JSON line per classified pair. Returns 0 and *out
 * (free with aud_probe_close), AUD_ELABELS, AUD_ENOEMB (no embeddings
 * there), the clip/emb modules' errors, WP_ENOMEM. */
int aud_probe_open(const char *model_dir, const char *emb_dir, const char *probes_path,
                   int per_image, aud_probe_ctx **out, wp_err *err);
void aud_probe_close(aud_probe_ctx *p);

/* Classifies pair_id's image (if it has an embedding row) and adds it to
 * the tallies: level/sel as in audit.c (level >= sel: selected), bucket
 * the row label of where the pair stopped, clip_score (NAN if none), h
 * its caption's lexicon hits and gender_lex the index of the gender
 * lexicon in h (or -1). Returns 0, WP_ENOMEM or an emb read error. */
int aud_probe_pair(aud_probe_ctx *p, int64_t pair_id, const char *uid, int level, int sel,
                   const char *bucket, double clip_score, const aud_hits *h, int gender_lex,
                   const char *const *gender_groups, int ngender, wp_err *err);

/* The "probes" section of report.json (a new object), or NULL when out of
 * memory. */
json_t *aud_probe_json(aud_probe_ctx *p, int min_count);

/* The per-image lines (JSON Lines) kept when per_image was set. */
const wp_buf *aud_probe_per_image(const aud_probe_ctx *p);

#endif /* AUDIT_PROBE_INT_H */
