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

#endif
