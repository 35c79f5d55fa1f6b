/*
 * audit/audit_int.h: what the audit's own files share (and its unit tests
 * use): the lexicon matcher, nPMI and its bootstrap, Wilson intervals,
 * base64, the seeded RNG, and the renderers of report.html and datasheet.md
 * from the report's JSON tree. Not for other modules.
 */
#ifndef AUDIT_INT_H
#define AUDIT_INT_H

#include "audit.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- lexicons (audit/lexicon.c) ----------------------------------------
 * A lexicon file is UTF-8 text: '#' lines are comments, every other
 * non-blank line is GROUP<TAB>TERM. Captions and terms are split the same
 * way: ASCII letters are lower-cased, a token is a run of ASCII letters,
 * digits and bytes >= 0x80, anything else separates. A term of up to
 * AUD_NGRAM_MAX tokens matches that token sequence anywhere in a caption. */

#define AUD_NGRAM_MAX  4
#define AUD_LEX_MAX    8    /* lexicon files */
#define AUD_GROUPS_MAX 512  /* groups per lexicon */
#define AUD_HITS_MAX   64   /* distinct groups recorded per caption and lexicon */
#define AUD_TOKENS_MAX 4096 /* tokens of a caption looked at */

typedef struct aud_lex {
    char name[32]; /* file name without .tsv: gender, age, occupation... */
    int is_attr;   /* occupation / adjective lexicons (associated with groups) */
    int ngroups;
    char *groups[AUD_GROUPS_MAX];
    int nterms;
    char sha256[WP_SHA256_HEX + 1]; /* of the file */
    char path[WP_PATH_MAX];
} aud_lex;

typedef struct aud_matcher aud_matcher;

/* Distinct groups of each lexicon found in one caption. */
typedef struct aud_hits {
    int n[AUD_LEX_MAX];
    uint16_t g[AUD_LEX_MAX][AUD_HITS_MAX];
} aud_hits;

aud_matcher *aud_matcher_new(void);
void aud_matcher_free(aud_matcher *m);
/* Loads path as lexicon name (is_attr: an attribute lexicon). Returns 0,
 * AUD_ELEXICON (missing, a line without a tab, too many groups, a term
 * with no token or more than AUD_NGRAM_MAX) with err naming file:line,
 * WP_ENOMEM. */
int aud_matcher_load(aud_matcher *m, const char *name, const char *path, int is_attr, wp_err *err);
int aud_matcher_nlex(const aud_matcher *m);
const aud_lex *aud_matcher_lex(const aud_matcher *m, int i);
/* Fills h with the distinct groups of each lexicon that text mentions (in
 * order of first mention). Returns 0 or WP_ENOMEM. */
int aud_match(aud_matcher *m, const char *text, size_t n, aud_hits *h);

/* ---- statistics (audit/stats.c) --------------------------------------- */

/* Normalised PMI of two events over n documents: nxy both, nx and ny each.
 * log(p(x,y) / (p(x) p(y))) / -log p(x,y); -1 when nxy = 0, 1 when nxy =
 * n; NAN when nx, ny or n is 0. Weights may be fractional. */
double aud_npmi(double nxy, double nx, double ny, double n);

/* Wilson score 95% interval of k successes in n; lo = hi = NAN when n = 0. */
void aud_wilson(double k, double n, double *lo, double *hi);

/* splitmix64-seeded xoshiro256** generator. */
typedef struct aud_rng {
    uint64_t s[4];
} aud_rng;
void aud_rng_seed(aud_rng *r, uint64_t seed);
uint64_t aud_rng_next(aud_rng *r);
double aud_rng_uniform(aud_rng *r); /* [0, 1) */
/* A Poisson(lambda) draw: exact (inversion) below 30, rounded normal above. */
uint32_t aud_rng_poisson(aud_rng *r, double lambda);

/* Co-occurrence data for nPMI with bootstrap intervals: documents each
 * hold a set of x items (0..nx-1) and y items (0..ny-1). */
typedef struct aud_cooc aud_cooc;
aud_cooc *aud_cooc_new(int nx, int ny);
void aud_cooc_free(aud_cooc *c);
/* Adds a document (xs, ys may be empty: it still counts in n). 0 or WP_ENOMEM. */
int aud_cooc_add(aud_cooc *c, const uint16_t *xs, int nxs, const uint16_t *ys, int nys);
/* Point estimates and Poisson-bootstrap percentile 95% intervals for every
 * (x, y) cell: npmi, lo, hi are nx*ny arrays (x major) the caller frees.
 * count gets nxy per cell (may be NULL). B replicates, seeded. 0 or WP_ENOMEM. */
int aud_cooc_npmi(const aud_cooc *c, int B, uint64_t seed, double **npmi, double **lo, double **hi,
                  int64_t **count, wp_err *err);
/* The same for nt tables at once: every document's bootstrap weight in a
 * replicate is drawn once (a hash of seed, replicate and its number in
 * order of aud_cooc_add), so tables filled with the same documents in the
 * same order resample them alike. out[t] gets nx*ny arrays (free with
 * aud_npmi_out_free). 0 or WP_ENOMEM. */
typedef struct aud_npmi_out {
    double *npmi, *lo, *hi;
    int64_t *count;
} aud_npmi_out;
int aud_cooc_npmi_many(const aud_cooc *const *cs, int nt, int B, uint64_t seed, aud_npmi_out *out,
                       wp_err *err);
void aud_npmi_out_free(aud_npmi_out *o, int n);
int64_t aud_cooc_docs(const aud_cooc *c);
int64_t aud_cooc_nx(const aud_cooc *c, int x);
int64_t aud_cooc_ny(const aud_cooc *c, int y);

/* ---- small helpers ------------------------------------------------------ */

/* Appends base64 (RFC 4648, padded) of p[0..n) to out. 0 or WP_ENOMEM. */
int aud_base64(const void *p, size_t n, wp_buf *out);
/* The registrable domain of an http(s) URL's host (libpsl), else the host;
 * "(local file)" for file: URLs, "(none)" when there is no host. Written
 * to out (cap bytes, lower case). */
void aud_url_domain(const char *url, char *out, size_t cap);
/* Characters (code points) of a UTF-8 string. */
int64_t aud_utf8_chars(const char *s, size_t n);

/* ---- rendering (audit/html.c, audit/datasheet.c) ------------------------ */

/* report.html from the report tree; 0 or WP_ENOMEM. */
int aud_render_html(const json_t *report, wp_buf *out);
/* datasheet.md from the report tree; 0 or WP_ENOMEM. */
int aud_render_datasheet(const json_t *report, wp_buf *out);

/* ---- image-side probes (audit/probe.c) ---------------------------------- */

typedef struct aud_probe_set aud_probe_set;
/* Parses probes.txt: "[probe]" section lines, then CLASS<TAB>PROMPT | PROMPT
 * ... lines. Returns 0, AUD_ELABELS (file:line) or WP_ENOMEM. */
int aud_probes_load(const char *path, aud_probe_set **out, wp_err *err);
void aud_probes_free(aud_probe_set *p);

#endif /* AUDIT_INT_H */
