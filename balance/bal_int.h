/*
 * balance/bal_int.h: what the balance module's own files share: the
 * eligible pairs in memory (structure of arrays), the outcome of deciding
 * them, and the steps of bal_run. Not for other modules.
 */
#ifndef BAL_INT_H
#define BAL_INT_H

#include "balance.h"

/* Eligible pairs, in pair id order; pair i matches m[moff[i] .. moff[i+1]). */
typedef struct bal_pairs {
    size_t n, cap, cap2;
    int64_t *pair_id, *image_id;
    uint8_t *uid;   /* n * WP_UID_LEN */
    uint32_t *lang; /* index into langs (0 when there is no language) */
    uint64_t *moff; /* n + 1 */
    uint32_t *m;
    size_t nm, mcap;
    char **langs;
    uint32_t nlangs;
    int with_lang;
    size_t nentries;
} bal_pairs;

enum { WHY_MATCHED = 0, WHY_UNMATCHED = 1, WHY_ONE_TEXT = 2 };

/* The outcome. Counts are kept per key: a key is an entry, or with
 * --per-language a (language, entry) pair. */
typedef struct bal_result {
    uint8_t *keep, *why; /* per pair */
    double *score;       /* keep probability (metaclip) or draw (cap) */
    uint32_t *best;      /* per pair: best entry, UINT32_MAX when none */
    size_t nk;
    int64_t *kc, *kk; /* per key: matches before, kept after */
    uint32_t *klang, *kentry;
    int64_t *tl; /* t per language (nlangs entries; one without languages) */
    uint32_t ntl;
    int64_t *count, *kept; /* per entry, over all languages */
    size_t nentries;
} bal_result;

const char *bal_rule_key(int rule, int flags);
int bal_load_list(cat *c, qry_list **out, int64_t *version, wp_err *err);
int bal_pairs_load(cat *c, int with_lang, size_t nentries, bal_pairs *P, wp_err *err);
void bal_pairs_free(bal_pairs *P);
/* Decides every pair (bal_decide.c). 0, BAL_EOPTS or WP_ENOMEM. */
int bal_decide(const bal_pairs *P, const bal_opts *o, bal_result *R, wp_err *err);
void bal_result_free(bal_result *R);
/* 1 when pair uid falls in part i of n (1-based; n 0 means everything). */
int bal_in_part(const uint8_t uid[WP_UID_LEN], int i, int n);
/* Figures of st from the result (bal_decide.c). */
int bal_summarise(const bal_pairs *P, const bal_result *R, const qry_list *l, const bal_opts *o,
                  bal_stats *st, wp_err *err);
/* Records the decisions of the part and the per-entry counts (bal_report.c). */
int bal_write(cat *c, const bal_pairs *P, const bal_result *R, const qry_list *l, const bal_opts *o,
              int64_t version, const wp_reporter *rep, bal_stats *st, wp_err *err);
int bal_report_json(const char *path, const bal_opts *o, const bal_stats *st, const bal_result *R,
                    const qry_list *l, wp_err *err);
int bal_curve_svg(const char *path, const bal_result *R, const bal_stats *st, wp_err *err);

#endif
