/*
 * crawl/crawl.h: candidate (image URL, text) pairs from web pages: HTML
 * extraction, text cleaning, URL resolution and normalisation, robots.txt
 * (RFC 9309), WARC and Common Crawl WAT readers, and the live crawler.
 *
 * Extraction is shared by every source: a page's bytes, its URL and its
 * HTTP charset go in; a crawl_page comes out, all of whose strings are
 * valid UTF-8 and live in the caller's per-page arena. crawl_sink turns
 * pages into catalog pairs (one pair per (image URL, text), each further
 * page that shows it recorded as a sighting).
 */
#ifndef CRAWL_H
#define CRAWL_H

#include "catalog/catalog.h"
#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

enum crawl_status {
    CRAWL_EPARSE = -700,   /* the HTML parser could not be set up */
    CRAWL_ECORRUPT = -701, /* an archive is corrupt beyond recovery */
    CRAWL_ENET = -702,     /* the network module failed */
    CRAWL_EINPUT = -703,   /* some archive files could not be read (each reported) */
};

/* ---- options --------------------------------------------------------- */

/* Where a pair's text may come from, in the order --text-from lists them. */
enum crawl_text_src { CRAWL_TEXT_ALT, CRAWL_TEXT_TITLE, CRAWL_TEXT_FIGCAPTION, CRAWL_TEXT_NSRC };

#define CRAWL_MAX_SKIP_EXT     16
#define CRAWL_EXT_MAX          16   /* longest extension in --skip-ext */
#define CRAWL_DEFAULT_MAX_TEXT 2000 /* bytes */
#define CRAWL_DEFAULT_MAX_PAGE (8u << 20)
#define CRAWL_TOKEN_MAX        64
/* Resource budgets (docs/security.md, "Resource budgets"). */
#define CRAWL_DEFAULT_MAX_IMAGES 20000       /* images read per page or WAT record */
#define CRAWL_DEFAULT_MAX_ATTRS  64          /* attributes per start tag libxml2 sees */
#define CRAWL_MAX_TAG_BYTES      (1u << 20)  /* bytes per start tag libxml2 sees */
#define CRAWL_PAGE_OUT_MAX       (16u << 20) /* bytes of extracted images per page */

typedef struct crawl_opts {
    int text_from[CRAWL_TEXT_NSRC]; /* order of preference */
    int n_text_from;
    size_t max_text;    /* longest text in bytes */
    int long_text_drop; /* 1: drop over-long text; 0: truncate it */
    int bad_utf8_drop;  /* 1: drop text with invalid UTF-8; 0: repair */
    size_t max_page;    /* larger pages are skipped (too_large) */
    int collect_links;  /* the live crawl needs <a href> links */
    int dry_run;        /* extract and count, but store no pairs and no progress */
    int no_prefilter;   /* no shortcuts: parse whole pages (crawl/prefilter.c) and
                         * whole WAT records (crawl/wat.c); the reference the fast
                         * paths are tested against */
    char skip_ext[CRAWL_MAX_SKIP_EXT][CRAWL_EXT_MAX];
    int n_skip_ext;
    char token[CRAWL_TOKEN_MAX]; /* our robots product token, lower case */
    size_t max_images;           /* images read per page / WAT record; the rest counted over_cap */
    int max_attrs;               /* attributes kept per start tag before libxml2 parses it */
} crawl_opts;

/* Defaults: text from alt, 2000-byte texts truncated, invalid UTF-8
 * repaired, pages over 8 MiB skipped, --skip-ext svg,gif, token "witpipe",
 * 20000 images a page, 64 attributes a tag. */
void crawl_opts_init(crawl_opts *o);
/* "alt,title,figcaption" (any order, any subset). WP_EINVAL on a bad list. */
int crawl_opts_text_from(crawl_opts *o, const char *list, wp_err *err);
/* "svg,gif" or "" for none. WP_EINVAL / WP_ELIMIT on a bad list. */
int crawl_opts_skip_ext(crawl_opts *o, const char *list, wp_err *err);

/* ---- why things are dropped ------------------------------------------ */

enum crawl_drop {
    CRAWL_DROP_NONE,        /* not dropped (reasons are > 0) */
    CRAWL_DROP_DATA_URI,    /* data: image */
    CRAWL_DROP_SCHEME,      /* not http/https */
    CRAWL_DROP_BAD_URL,     /* unparsable */
    CRAWL_DROP_PIXEL,       /* declared 1x1 / 2x2 tracking pixel */
    CRAWL_DROP_SKIP_EXT,    /* --skip-ext */
    CRAWL_DROP_NO_TEXT,     /* none of the --text-from candidates */
    CRAWL_DROP_BAD_UTF8,    /* invalid UTF-8 with --bad-utf8 drop */
    CRAWL_DROP_TOO_LONG,    /* over --max-text with --long-text drop */
    CRAWL_DROP_OPT_OUT,     /* page says noai / noimageai / noimageindex / noindex */
    CRAWL_DROP_DUP_ON_PAGE, /* the same pair twice on one page */
    CRAWL_DROP_OVER_CAP,    /* past --max-images (or CRAWL_PAGE_OUT_MAX bytes): not read */
    CRAWL_DROP_N
};
/* Short lowercase name of a drop reason ("data_uri"). */
const char *crawl_drop_name(int reason);

/* ---- text ------------------------------------------------------------ */

#define CRAWL_CLEAN_ENTITIES 1 /* also decode HTML character references */

/* Cleans s[0..n) into out (replacing its contents): invalid UTF-8 repaired
 * (or refused), character references decoded if asked, control characters
 * removed, whitespace runs collapsed to one space, ends trimmed, then cut
 * to o->max_text bytes at a character boundary (or refused). Returns 0, a
 * positive enum crawl_drop reason (out then undefined), or WP_ENOMEM. */
int crawl_clean_text(const char *s, size_t n, int flags, const crawl_opts *o, wp_buf *out);

/* ---- URLs ------------------------------------------------------------ */

/* Resolves ref (an attribute value: surrounding whitespace is trimmed)
 * against the absolute URL base and normalises the result (fragment
 * removed, host lower case, default port removed, percent-encoding
 * normalised per RFC 3986 section 6.2.2). Only http and https survive.
 * Returns 0 with *out in arena, a positive enum crawl_drop reason, or
 * WP_ENOMEM. */
int crawl_url_resolve(const char *base, const char *ref, size_t ref_len, wp_arena *arena,
                      const char **out);
/* crawl_url_resolve with no base: ref must be absolute. */
int crawl_url_normalize(const char *url, wp_arena *arena, const char **out);
/* 1 if the last path segment of url has an extension in o->skip_ext. */
int crawl_url_skip_ext(const crawl_opts *o, const char *url);
/* The scheme://host[:port] of an absolute URL into out (size n); 0 or
 * WP_EINVAL. */
int crawl_url_origin(const char *url, char *out, size_t n);
/* The path and query of an absolute URL ("/" at least) into arena. */
const char *crawl_url_path_query(const char *url, wp_arena *arena);
/* The site of an absolute URL into out (size n): its registrable domain
 * (public suffix list, libpsl), or its lower-cased host for IP literals and
 * names without one (localhost, a public suffix). 0 or WP_EINVAL (no host,
 * or longer than n). */
int crawl_url_site(const char *url, char *out, size_t n);
/* The --part key of url's site for a live crawl (docs/scale-out.md):
 * FNV-1a 64 of crawl_url_site, so a site that is its host gets the host key
 * of wp_part_key_host (fetch's). A URL without a host: of the whole URL. */
uint64_t crawl_url_site_key(const char *url);
/* 1 if a and b are of one site (crawl_url_site). */
int crawl_same_site(const char *url_a, const char *url_b);

/* ---- charsets -------------------------------------------------------- */

#define CRAWL_CHARSET_MAX 40 /* longest charset label kept */

/* Decodes page bytes to valid UTF-8 in out (replacing its contents): BOM
 * first, then the HTTP Content-Type charset (http_ct may be a whole header
 * value or NULL), then <meta charset> in the first 1024 bytes, else
 * windows-1252 as browsers do; unknown labels also fall back to it. Bytes
 * that cannot be decoded and NULs become U+FFFD. The label used is written
 * to label. Returns 0 or WP_ENOMEM. */
int crawl_to_utf8(const char *p, size_t n, const char *http_ct, wp_buf *out,
                  char label[CRAWL_CHARSET_MAX]);

/* ---- extraction ------------------------------------------------------ */

typedef struct crawl_image {
    const char *url;  /* absolute, normalised http(s) */
    const char *attr; /* src, srcset, data-src, data-srcset, data-original, source */
    const char *alt;  /* cleaned texts; NULL when absent */
    const char *title;
    const char *figcaption;
    int width, height; /* declared; -1 when not given */
    int srcset_n;      /* srcset candidates seen */
    /* Why a text candidate was refused by cleaning (enum crawl_drop + 1),
     * 0 when it was kept or absent; indexed by enum crawl_text_src. */
    int refused[CRAWL_TEXT_NSRC];
} crawl_image;

typedef struct crawl_page {
    const char *url;     /* as given */
    const char *base;    /* what relative URLs were resolved against */
    const char *title;   /* cleaned <title>; NULL if none */
    const char *lang;    /* <html lang>; NULL if none */
    const char *charset; /* label the bytes were decoded with */
    /* Robots directives for us (crawl_robots_directives): noai or noindex
     * drops the page's images (opt-out); nofollow leaves its links. */
    int noai, noindex, nofollow;
    crawl_image *images;
    size_t n_images;
    const char **links; /* absolute http(s) <a>/<area> hrefs if collect_links */
    size_t n_links;
    uint64_t drops[CRAWL_DROP_N]; /* images dropped during extraction */
    uint64_t attrs_capped;        /* attributes past --max-attrs (or CRAWL_MAX_TAG_BYTES)
                                   * dropped before parsing */
} crawl_page;

/* Extracts images (and links) from one HTML page. http_ct is the HTTP
 * Content-Type value or NULL; x_robots the X-Robots-Tag header or NULL.
 * Everything in *out lives in arena. Returns 0, or WP_ENOMEM /
 * CRAWL_EPARSE with err filled (naming page_url). */
int crawl_extract(const char *html, size_t len, const char *page_url, const char *http_ct,
                  const char *x_robots, const crawl_opts *o, wp_arena *arena, crawl_page **out,
                  wp_err *err);

/* Parses a robots meta content or X-Robots-Tag value (several field lines
 * joined by newlines) with net_robots_parse for o->token and sets (never
 * clears) the flags: noai for noai / noimageai / noimageindex, noindex for
 * noindex / none / an expired unavailable_after, nofollow for nofollow /
 * none. Cannot fail. */
void crawl_robots_directives(const char *content, const crawl_opts *o, int *noai, int *noindex,
                             int *nofollow);

/* Parses a srcset attribute and returns the largest candidate's URL
 * (widest w, else densest x) in arena, or NULL when it has none. *n gets
 * the number of candidates. The returned score is w, or x * 1e-3. */
const char *crawl_srcset_best(const char *srcset, wp_arena *arena, int *n, double *score);

/* ---- the pair sink ---------------------------------------------------- */

typedef struct crawl_counts {
    uint64_t pages; /* pages that went through extraction */
    uint64_t pages_opt_out;
    uint64_t pages_skipped; /* too large, not HTML, ... */
    uint64_t images;        /* images with a usable URL */
    uint64_t pairs_new;
    uint64_t pairs_seen;       /* already in the catalog: one more sighting */
    uint64_t records;          /* archive records read */
    uint64_t records_skipped;  /* other record types / payloads */
    uint64_t corrupt;          /* corrupt spots reported */
    uint64_t bytes;            /* input bytes consumed (compressed for archives) */
    uint64_t unreadable;       /* files that could not be opened or read */
    uint64_t pages_capped;     /* pages / records that hit an image or attribute cap */
    uint64_t attrs_capped;     /* attributes dropped past --max-attrs */
    uint64_t links_other_part; /* live crawl --part: wanted links to another part's site */
    uint64_t drops[CRAWL_DROP_N];
} crawl_counts;

/* Appends the counts as a JSON object (for runs.counts) to out. Returns 0
 * or WP_ENOMEM. */
int crawl_counts_json(const crawl_counts *c, wp_buf *out);

typedef struct crawl_sink crawl_sink;
/* A sink adds pairs to c under run_id; the caller owns the transaction.
 * Returns NULL when out of memory. */
crawl_sink *crawl_sink_new(cat *c, const crawl_opts *o, int64_t run_id);
void crawl_sink_free(crawl_sink *s);
crawl_counts *crawl_sink_counts(crawl_sink *s);
const crawl_opts *crawl_sink_opts(const crawl_sink *s);
/* Adds the pairs of one page (a pair already stored gets a sighting with
 * this page's URL as origin). Returns 0 or a catalog error. */
int crawl_sink_page(crawl_sink *s, const crawl_page *p, int64_t source_id, wp_err *err);

/* ---- robots.txt (RFC 9309) ------------------------------------------- */

#define CRAWL_ROBOTS_MAX_BYTES (500 * 1024) /* RFC 9309 section 2.5 */
/* Octet comparisons (plus one per rule looked at) spent on one path at
 * most; past it the path is disallowed. A 500 KiB file of real rules
 * against an 8 KiB path stays far below. */
#define CRAWL_ROBOTS_MATCH_BUDGET (1u << 23)

typedef struct crawl_robots crawl_robots;
/* Parses the robots.txt body for product token `token` (case-insensitive,
 * RFC 9309 section 2.2.1) with `*` as fallback. status is the HTTP status
 * of the fetch (0: unreachable): 4xx allows everything, 5xx/0 disallows
 * everything (section 2.3.1). Only the first 500 KiB is parsed. Returns
 * NULL when out of memory. */
crawl_robots *crawl_robots_parse(const char *body, size_t len, int status, const char *token);
void crawl_robots_free(crawl_robots *r);
/* 1 if the path (with query, percent-encoded as in the URL) may be
 * crawled: the longest matching rule wins, Allow on ties (section 2.2.2). */
int crawl_robots_allowed(const crawl_robots *r, const char *path);
/* The same, also storing in *steps (when not NULL) the work it took: octet
 * comparisons plus one per rule looked at and per path octet decoded. Never
 * more than about CRAWL_ROBOTS_MATCH_BUDGET + the path's length + one
 * pattern's: rules are matched in one pass each, in order of precedence,
 * and a path that would cost more is disallowed. */
int crawl_robots_allowed_counted(const crawl_robots *r, const char *path, uint64_t *steps);
/* Crawl-delay of the chosen group in seconds, or -1 if none. */
double crawl_robots_delay(const crawl_robots *r);
/* 1 if pattern (with * and $) matches path per section 2.2.3. */
int crawl_robots_match(const char *pattern, size_t plen, const char *path);

/* ---- archives -------------------------------------------------------- */

typedef struct crawl_archive_opts {
    int part_i, part_n;  /* --part I/N (1-based), 1/1 = everything */
    int batch;           /* records per transaction */
    size_t max_record;   /* larger records are skipped */
    int64_t max_records; /* stop (resumably) after this many records in a run; 0: no limit */
    const wp_reporter *rep;
} crawl_archive_opts;

/* Reads WARC (is_wat = 0) or WAT (is_wat = 1) files into the catalog
 * through sink, resuming each at its archive_progress. Corrupt spots are
 * reported through rep (with file and byte offset) and reading resumes at
 * the next record. Returns 0, WP_ESTOP when stopped, or an error for
 * failures that stop the run (catalog, unreadable file). */
int crawl_archives(cat *c, crawl_sink *sink, char **files, int nfiles, int is_wat,
                   const crawl_archive_opts *ao, wp_err *err);

/* ---- live crawl -------------------------------------------------------- */

typedef struct crawl_live_opts {
    const char *seeds_file;
    int max_depth;
    int64_t max_pages;
    int any_domain;       /* do not keep to the seeds' registrable domains */
    const char **include; /* URL substrings/globs; NULL-terminated or NULL */
    const char **exclude;
    const char *user_agent;
    const char **allow_net; /* CIDRs the SSRF guard lets through (tests: 127.0.0.1) */
    wp_part part;           /* --part: only seeds and pages of this part's sites */
    double delay;           /* seconds between requests to one host */
    double timeout;         /* seconds per request */
    int retries;
    int concurrency;
    const wp_reporter *rep;
} crawl_live_opts;

/* Breadth-first crawl from the seeds with its frontier in the catalog's
 * pages table (resumable). Returns 0, WP_ESTOP, or an error. */
int crawl_live(cat *c, crawl_sink *sink, const crawl_live_opts *lo, wp_err *err);

/* ---- the stage (crawl/crawl_run.c) ----------------------------------- */

/* Defaults: part 1/1, 4096 records a transaction, records over 64 MiB
 * skipped. Cannot fail. */
void crawl_archive_opts_init(crawl_archive_opts *ao);
/* Defaults: depth 3, 10000 pages, 1 s between requests to a host, 30 s a
 * request, 2 retries, 16 requests at once. Cannot fail. */
void crawl_live_opts_init(crawl_live_opts *lo);

enum crawl_source { CRAWL_SRC_SEEDS = 1, CRAWL_SRC_WARC, CRAWL_SRC_WAT };

/* `witpipe crawl`: one catalog run (stage "crawl", params: source, part,
 * max_text) around crawl_live (CRAWL_SRC_SEEDS: lo; files unused) or
 * crawl_archives (files[0..nfiles) with ao). *counts gets what the run
 * did (also its final counts in the catalog). Returns 0, WP_ESTOP (run the
 * same command again to resume), CRAWL_EINPUT when an archive could not be
 * read (the others were), or the failure that stopped the run. */
int crawl_run(cat *c, int source, const crawl_opts *o, const crawl_live_opts *lo, char **files,
              int nfiles, const crawl_archive_opts *ao, crawl_counts *counts, wp_err *err);

#endif /* CRAWL_H */
