/*
 * dedup/dd_int.h: what the dedup stage's own files share (the groups it
 * found, for the HTML picture; the images of an evaluation set); not for
 * other modules.
 */
#ifndef DD_INT_H
#define DD_INT_H

#include "dedup/dedup.h"

struct cat;
struct st_store;

enum dd_kind { DD_KEEP = 0, DD_EXACT, DD_NEAR, DD_SEMANTIC, DD_CONTAM };

/* A group: its kind, the keeper's pair id and its members' pair ids
 * (keeper first). */
typedef struct dd_group {
    int kind;
    int64_t keeper;
    const int64_t *members;
    size_t n;
} dd_group;

/* Union-find over parent[] (parent[k] = k to start): the smaller root
 * wins, so a root is its set's smallest index (dedup/mih.c). */
uint32_t dd_uf_find(uint32_t *parent, uint32_t x);
void dd_uf_union(uint32_t *parent, uint32_t a, uint32_t b);

/* Writes the HTML picture of groups[0..ngroups) (already ordered, largest
 * first): per group its kind and members, each a thumbnail (base64 JPEG
 * data URI, read from the store) and its caption. Written atomically to
 * path. Returns 0 or an error (WP_EIO, WP_ENOMEM, CAT_ESQL). */
int dd_report_html(struct cat *c, struct st_store *s, const dd_group *groups, size_t ngroups,
                   const char *path, wp_err *err);

/* Called for each image of an evaluation set: name (its path, or
 * SHARD:MEMBER), its bytes (n of them, owned by the caller). Returns 0 to
 * go on, else an error (err filled) that stops dd_eval_each. */
typedef int (*dd_eval_fn)(void *ud, const char *name, const void *data, size_t n, wp_err *err);

/* Calls fn for every image of the evaluation set at loc (dedup/against.c:
 * a folder of images, a folder of WebDataset .tar shards, one .tar shard,
 * or a list file of image paths and/or shards), in a fixed order. Files
 * that cannot be read, and images over max_bytes, are warnings on rep.
 * Only regular files are read (a list naming a FIFO or a device gets a
 * warning). Returns 0, DD_EAGAINST (no such set, a folder that cannot be
 * listed, a set that is no folder or regular file, a list line too long
 * for a path: "LIST:LINE: ..."), WP_ENOMEM, a list file's read error or
 * fn's error. */
int dd_eval_each(const char *loc, size_t max_bytes, dd_eval_fn fn, void *ud, const wp_reporter *rep,
                 wp_err *err);

/* The set's name in reasons: the last component of its path without a
 * list file's or a shard's extension. */
void dd_eval_name(const char *loc, char *out, size_t cap);

#endif
