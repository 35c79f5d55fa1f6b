/*
 * shard/shard_int.h: what shard.c and export.c share (internal to shard/).
 */
#ifndef SHARD_INT_H
#define SHARD_INT_H

#include "shard/shard.h"

/* Pair s (from cur) as compact JSON into out (replacing its contents):
 * the KEY.json member of a shard, or with export_row a row of `witpipe
 * export`. Returns 0, WP_ENOMEM or CAT_ESQL. */
int shard_sample_json(cat_shard_cursor *cur, const cat_sample *s, int export_row, wp_buf *out,
                      wp_err *err);

#endif
