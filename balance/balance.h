/*
 * balance/balance.h: the query list (WIT's ~500k queries, MetaCLIP's
 * metadata entries), matching captions against it, and the balancing stage
 * (MetaCLIP's draw, WIT's per-query cap).
 *
 * Three parts, one public header (prefixes qry_ for the list and matcher,
 * bal_ for balancing):
 *  - qry_list: an ordered list of distinct entries, read from a file (one
 *    entry a line, or MetaCLIP's metadata.json: a JSON array of strings) or
 *    built offline from WordNet, a text corpus and titles (qry_build).
 *  - qry_matcher: MetaCLIP's substring rule for every entry at once, in one
 *    pass over each caption (a word-level index for entries padded on both
 *    sides, an Aho-Corasick automaton over bytes for the others; see
 *    qry_match.c). Read-only once built, so any number of threads share it,
 *    each with its own qry_scratch.
 *  - bal_: the balancing decisions, pure functions over counts and a seeded
 *    draw, and bal_run, the stage that reads and writes the catalog.
 */
#ifndef BALANCE_H
#define BALANCE_H

#include "catalog/catalog.h"
#include "common/wp.h"

#include <stdint.h>

enum qry_status {
    QRY_ENOLIST = -1500,  /* the catalog holds no query list (run witpipe queries import) */
    QRY_EENTRY = -1501,   /* an entry is unusable (too long, invalid UTF-8) */
    QRY_ETOOMANY = -1502, /* more entries than the matcher can index (2^31) */
    BAL_ENOLANG = -1550,  /* --per-language without a language field in the catalog */
    BAL_EOPTS = -1551,    /* contradictory balancing options */
};

#define QRY_ENTRY_MAX 256 /* longest entry in bytes */

/* ---- query lists ------------------------------------------------------ */

typedef struct qry_list qry_list;

/* What loading a list skipped. */
typedef struct qry_load_stats {
    int64_t read;       /* entries read from the file */
    int64_t kept;       /* distinct entries kept */
    int64_t duplicates; /* exact repeats of an earlier entry (the first is kept) */
    int64_t empty;      /* empty entries (a padded empty entry would match any double space) */
    int64_t too_long;   /* longer than QRY_ENTRY_MAX bytes */
    int64_t bad_utf8;   /* not valid UTF-8 */
} qry_load_stats;

/* An empty list; NULL when out of memory. Free with qry_list_free. */
qry_list *qry_list_new(void);
void qry_list_free(qry_list *l);
/* Appends entry s[0..n) unless it is empty, too long, invalid UTF-8 or
 * already in the list (counted in st, which may be NULL). Returns 0 or
 * WP_ENOMEM. */
int qry_list_add(qry_list *l, const char *s, size_t n, qry_load_stats *st);
size_t qry_list_count(const qry_list *l);
/* Entry i (0-based, in list order) and its length; owned by the list. */
const char *qry_list_entry(const qry_list *l, size_t i, size_t *len);
/* Reads path: a JSON array of strings (MetaCLIP's metadata.json, detected by
 * a leading '[') or one entry per line (LF or CRLF; lines kept verbatim, so
 * an entry may hold spaces and punctuation). Returns 0 and a new list in
 * *out, WP_ENOENT/WP_EIO for an unreadable file, WP_EFORMAT for a bad JSON
 * file, WP_ENOMEM. */
int qry_list_load(const char *path, qry_list **out, qry_load_stats *st, wp_err *err);
/* The same for a list already in memory, data[0..len) (name is used in
 * messages only). The data is not kept. */
int qry_list_parse(const char *name, const char *data, size_t len, qry_list **out,
                   qry_load_stats *st, wp_err *err);
/* Hex SHA-256 of the list (entries joined by '\n'): its identity. */
int qry_list_sha256(const qry_list *l, char out[WP_SHA256_HEX + 1]);
/* Stores l in the corpus as the new current list (a run of stage
 * "queries" with action and source as its params). Returns 0 and the new
 * *version, or CAT_ESQL / WP_ENOMEM. */
int qry_store(cat *c, const qry_list *l, const char *source, const char *action, int64_t *version,
              wp_err *err);

/* ---- matching ---------------------------------------------------------- */

/* MetaCLIP's rule (metadata curation, substr_matching): the caption is
 * padded with one space at each end, each of , . ; : ? ! ` is surrounded by
 * spaces, then tab, CR and LF become spaces; entry e matches when " e "
 * occurs in that text, case-sensitively. QRY_RULE_METACLIP2 leaves out the
 * space on a side of the entry whose end character is CJK (Han, kana, Hangul,
 * CJK symbols, fullwidth forms), Thai, Lao, Myanmar, Khmer, Tibetan or
 * Unicode punctuation (general category P*). QRY_IGNORE_CASE lowercases
 * caption and entries per code point (Unicode simple lowercase mapping). */
enum { QRY_RULE_METACLIP = 0, QRY_RULE_METACLIP2 = 1 };
#define QRY_IGNORE_CASE 1
#define QRY_FORCE_AC    0x100 /* tests and bench: every entry in the byte automaton */

typedef struct qry_matcher qry_matcher;
typedef struct qry_scratch qry_scratch;

/* Builds the automaton for every entry of l (entry ids are list indexes).
 * Returns 0 and *out, WP_ENOMEM, QRY_ETOOMANY. The list may be freed after. */
int qry_matcher_new(const qry_list *l, int rule, int flags, qry_matcher **out, wp_err *err);
void qry_matcher_free(qry_matcher *m);
size_t qry_matcher_states(const qry_matcher *m);
size_t qry_matcher_bytes(const qry_matcher *m); /* memory held by the automaton */
/* The " entry " pattern text rule gives entry e (for tests and tools):
 * appended to out. Returns 0 or WP_ENOMEM. */
int qry_pattern(const char *e, size_t n, int rule, int flags, wp_buf *out);

/* Per-thread working memory for qry_match; NULL when out of memory. */
qry_scratch *qry_scratch_new(void);
void qry_scratch_free(qry_scratch *s);
/* Matches text[0..len) (UTF-8; invalid bytes are matched as they are) in
 * one pass. Returns the number of distinct entries that match (>= 0) with
 * their ids ascending in *ids (owned by s, valid until its next use), or
 * WP_ENOMEM. */
int qry_match(const qry_matcher *m, const char *text, size_t len, qry_scratch *s,
              const uint32_t **ids);

/* ---- building a list offline (qry_build.c) ---------------------------- */

typedef struct qry_build_opts {
    const char *wordnet_dir;   /* folder with data.noun, data.verb... (NULL: no WordNet) */
    const char *const *corpus; /* text files (plain, .gz, .zst); NULL-terminated, may be NULL */
    const char *const *titles; /* files with one title a line; NULL-terminated, may be NULL */
    int64_t min_count;         /* unigrams seen at least this often (default 100) */
    double min_pmi;            /* bigrams with at least this PMI (natural log; default 3.0) */
    int64_t min_bigram_count;  /* bigrams seen at least this often (default 20) */
    int64_t max_entries;       /* keep the most frequent (default 500000) */
    size_t table_max;          /* counting table slots (default 1<<22): the memory bound */
    int numbers;               /* add "0".."99" (default 1) */
    cat *catalog;              /* no corpus files: count the catalog's captions (may be NULL) */
} qry_build_opts;

typedef struct qry_build_stats {
    int64_t wordnet, unigrams, bigrams, titles, numbers; /* entries from each source */
    int64_t lines, tokens;                               /* corpus read */
    int64_t evicted; /* counter slots recycled when the table was full (see qry_build.c) */
    int64_t entries; /* in the list written */
} qry_build_stats;

void qry_build_opts_init(qry_build_opts *o);
/* Builds a list per o. Returns 0 and *out or an error (unreadable input:
 * WP_EIO/WP_ENOENT, WP_ENOMEM). */
int qry_build(const qry_build_opts *o, qry_list **out, qry_build_stats *st, const wp_reporter *rep,
              wp_err *err);
/* Writes l to path, one entry a line (an entry holding a newline is written
 * in JSON form instead: then the whole file is a JSON array). 0 or WP_EIO. */
int qry_list_write(const qry_list *l, const char *path, wp_err *err);

/* ---- balancing: the draw and the rules (bal_draw.c) -------------------- */

/* The seeded draw: u(seed, uid) in [0, 1) from a 64-bit mix of the seed and
 * the 16 bytes of the pair uid:
 *   h = mix(seed + 0x9e3779b97f4a7c15); h = mix(h ^ hi); h = mix(h ^ lo);
 *   u = (h >> 11) * 2^-53
 * where hi/lo are the uid's first/last 8 bytes read big-endian and mix is
 * splitmix64's finaliser. A pair's draw depends on nothing else, so any
 * machine deciding any subset of pairs gets the same answer. stream
 * separates independent draws for one pair (0: balancing, 1: choosing one
 * text per image): it is added to the seed times 0xd1b54a32d192ed03. */
double bal_draw(uint64_t seed, uint64_t stream, const uint8_t uid[WP_UID_LEN]);
/* Parses 32 hex digits into 16 bytes: 0 or WP_EINVAL. */
int bal_uid_parse(const char *hex, uint8_t uid[WP_UID_LEN]);

/* t for a tail fraction F (MetaCLIP 2): the smallest integer t >= 1 such
 * that the entries with count < t hold at least F of all matches,
 * sum(count_e : count_e < t) >= F * sum(count_e). Entries with count 0
 * count for nothing. Returns t (1 when there are no matches). */
int64_t bal_t_for_tail(const int64_t *counts, size_t n, double fraction);

/* MetaCLIP's keep probability of a pair matching entries ids[0..k): 1 -
 * prod(1 - p_e), p_e = t / max(count_e, t). 0 when k = 0. */
double bal_keep_prob(const int64_t *counts, const uint32_t *ids, size_t k, int64_t t);

/* ---- the stage (bal_run.c) -------------------------------------------- */

enum { BAL_MODE_METACLIP = 0, BAL_MODE_CAP = 1 };

#define BAL_T_DEFAULT 20000
#define BAL_TOP       30 /* entries listed in the report, before and after */

typedef struct bal_opts {
    int mode;             /* BAL_MODE_* */
    int64_t t;            /* per-entry target (default BAL_T_DEFAULT) */
    double tail_fraction; /* > 0: choose t from it (MetaCLIP 2) */
    int per_language;     /* t per language (needs the language field) */
    uint64_t seed;
    int keep_unmatched;
    int one_text_per_image;
    int part_i, part_n;    /* record only part i of n (1-based; 0/0: all): the pairs whose
                            * uid's first 8 bytes, big-endian, are i-1 mod n. Counts and
                            * decisions are always those of the whole corpus. */
    int rule, match_flags; /* the matching rule (QRY_RULE_*, QRY_IGNORE_CASE) */
    int dry_run;           /* decide and report, write no decisions */
    int64_t run_id;
    const char *report_json; /* write the report here (NULL: none) */
    const char *curve_svg;   /* the sorted count curve, before/after (NULL: none) */
} bal_opts;

void bal_opts_init(bal_opts *o);

typedef struct bal_entry_count {
    const char *entry; /* owned by the stats */
    int64_t count;
} bal_entry_count;

typedef struct bal_stats {
    int64_t pairs_matched_now; /* pairs (re-)matched by this run */
    int64_t pairs;             /* eligible pairs considered */
    int64_t pairs_matched;     /* eligible pairs matching at least one entry */
    int64_t pairs_decided;     /* in this --part */
    int64_t kept, dropped, dropped_unmatched, dropped_one_text;
    int64_t entries, entries_matched; /* in the list; with count > 0 */
    int64_t t;                        /* the t used (per language: the largest) */
    int64_t head_entries;             /* count > t */
    int64_t matches_before, matches_after;
    double head_share_before, head_share_after;
    double entropy_before, entropy_after; /* bits, of the entry distribution */
    bal_entry_count top_before[BAL_TOP], top_after[BAL_TOP];
    int ntop_before, ntop_after;
    int64_t list_version;
} bal_stats;

/* Matches every pair not yet matched against the catalog's current query
 * list under (rule, flags) on all cores, then balances per o and records a
 * decision (stage "balance", reason the pair's rarest matched entry, or
 * "unmatched" / "one_text_per_image"; score the keep probability) for each
 * eligible pair: pairs with no drop decision from another stage whose image
 * did not fail. Returns 0, QRY_ENOLIST, BAL_ENOLANG, WP_ESTOP, CAT_ESQL,
 * WP_EIO (report files), WP_ENOMEM. st is filled as far as the run got;
 * free its strings with bal_stats_clear. */
/* bal_match_pending as a run of stage "queries" (action match). */
int bal_match_run(cat *c, int rule, int flags, const wp_reporter *rep, int64_t *matched,
                  wp_err *err);
int bal_run(cat *c, const bal_opts *o, const wp_reporter *rep, bal_stats *st, wp_err *err);
/* Matching only (witpipe queries match): same as bal_run's first step. */
int bal_match_pending(cat *c, int rule, int flags, const wp_reporter *rep, int64_t *matched,
                      wp_err *err);
void bal_stats_clear(bal_stats *st);
/* The figures of a run as compact JSON (the run's counts; the report file
 * adds the curves): malloc'ed, NULL when out of memory. */
char *bal_stats_to_json(const bal_opts *o, const bal_stats *st);

#endif /* BALANCE_H */
