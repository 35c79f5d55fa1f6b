/*
 * merge/merge.h: `witpipe merge`: folding part corpora (docs/scale-out.md,
 * DIR/parts/STAGE-I-of-N/) into one corpus: their store files and
 * embedding shards are copied in under new numbers, then their catalogs are
 * merged by content keys (catalog/cat_merge.c), one transaction per part.
 */
#ifndef MERGE_H
#define MERGE_H

#include "common/wp.h"

#include <stdint.h>

enum mrg_status {
    MRG_EUNFINISHED = -1700, /* a part has runs that did not finish (see partial) */
    MRG_ESAME = -1701,       /* a part is the corpus itself */
};

typedef struct mrg_opts {
    int partial;     /* merge parts whose runs did not all finish */
    int skip_merged; /* a part merged already is skipped, not an error */
} mrg_opts;

typedef struct mrg_counts {
    int64_t parts, skipped, pairs, pairs_new, images_new, store_files, emb_shards;
} mrg_counts;

/* Merges the corpora at parts[0..n-1], in that order, into the corpus at
 * dir (created if missing). Each part is opened with its lock held (and
 * migrated to this build's schema), fingerprinted, checked (already merged:
 * CAT_EMERGED naming when, unless o->skip_merged; unfinished runs:
 * MRG_EUNFINISHED unless o->partial), its files copied (written as .tmp,
 * synced, renamed: a rerun after a crash rewrites them identically) and its
 * catalog merged. Parts before a failing one stay merged. Returns 0 and
 * *counts, or the first error with err naming the part. */
int mrg_merge(const char *dir, const char *const *parts, int n, const mrg_opts *o,
              mrg_counts *counts, wp_err *err);

/* Makes dir a part directory for a --part run of stage over the corpus at
 * corpus (docs/scale-out.md, "Starting a part from a corpus"): a
 * consistent copy of its catalog (cat_backup), and for fetch an empty store
 * of its own; for the stages that read images (dedup, encode, filter,
 * balance, shard) a link to the corpus's store, and but for encode (which
 * writes its own) to its embeddings. witpipe merge then copies only what
 * the part wrote. dir must hold no catalog yet. add and crawl parts start
 * from an empty corpus: WP_EINVAL, as for an unknown stage. Returns 0,
 * WP_EINVAL, WP_EIO, CAT_ENOCORPUS or CAT_ESQL. */
int mrg_part_init(const char *corpus, const char *dir, const char *stage, wp_err *err);

#endif
