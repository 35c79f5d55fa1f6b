/*
 * dedup/dd_int.h: what the dedup stage's own files share (the groups it
 * found, for the HTML picture); not for other modules.
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

#endif
