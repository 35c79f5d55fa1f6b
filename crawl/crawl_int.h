/*
 * crawl/crawl_int.h: what the crawl module's own files share: the WARC
 * record reader (also used for WAT files, which are WARC files of
 * metadata records) and the WAT record decoder.
 */
#ifndef CRAWL_INT_H
#define CRAWL_INT_H

#include "crawl.h"
#include "net/net.h"

#define WARC_MAX_HEADER (64 * 1024) /* longest WARC record header */
#define WARC_FIELD_MAX  8192        /* longest header value kept */
/* A WAT record the targeted reader cannot read is parsed whole (a tree of
 * several times its size) only up to this size; larger ones are skipped. */
#define CRAWL_WAT_FULL_MAX (8u << 20)
/* Heap bytes a jansson tree may cost per byte of its JSON: measured 20 for
 * an array of small integers, 31 of empty strings, 47 of empty arrays and
 * 79 of empty objects (the worst). Under --max-memory the archive reader
 * lowers the whole-tree limit to what its share of the budget holds. */
#define CRAWL_WAT_TREE_COST 80

typedef struct warc_reader warc_reader;

typedef struct warc_record {
    char version[16];                /* "WARC/1.1" */
    char type[32];                   /* WARC-Type, lower case */
    char target_uri[WARC_FIELD_MAX]; /* WARC-Target-URI, without <> */
    char content_type[256];          /* the record's Content-Type */
    const char *block;               /* the record block; NULL when too large */
    size_t block_len;                /* Content-Length */
    int64_t offset;                  /* where the record starts (see warc_offset_kind) */
    int64_t next_offset;             /* a resume point after it, or -1 if none */
    uint64_t index;                  /* records before it since the start offset */
} warc_record;

enum warc_next_status {
    WARC_END = 0,     /* no more records */
    WARC_RECORD = 1,  /* *rec filled */
    WARC_CORRUPT = 2, /* err names file and offset; call again to go on */
};

/* Opens path for reading from start_offset (a member boundary or 0),
 * detecting gzip. max_record: larger blocks are skipped (rec->block NULL).
 * Returns 0 and *out, or WP_ENOENT / WP_EIO / WP_ENOMEM. */
int warc_open(const char *path, int64_t start_offset, uint64_t first_index, size_t max_record,
              warc_reader **out, wp_err *err);
void warc_close(warc_reader *r);
/* Reads the next record. Returns WARC_RECORD, WARC_END, WARC_CORRUPT (then
 * reading resumes at the next record on the next call), or a negative
 * error (WP_EIO, WP_ENOMEM) that ends reading. The block stays valid until
 * the next call. */
int warc_next(warc_reader *r, warc_record *rec, wp_err *err);
/* Compressed bytes consumed so far (for progress). */
int64_t warc_consumed(const warc_reader *r);
int warc_is_gzip(const warc_reader *r);
/* Bytes read from the file so far (damage is skipped without re-reading). */
uint64_t warc_bytes_read(const warc_reader *r);

/* An HTTP response block (status line, headers, body) as stored in a
 * WARC response record. */
typedef struct crawl_http_head {
    int status;
    char ct[256];      /* Content-Type, "" if absent */
    char xrobots[512]; /* X-Robots-Tag field lines, one per line */
    char encoding[32]; /* Content-Encoding */
    int chunked;       /* Transfer-Encoding: chunked */
    const char *body;  /* as stored */
    size_t body_len;
} crawl_http_head;

/* Splits a response block. Returns 0 or WP_EFORMAT (not HTTP). */
int crawl_http_split(const char *block, size_t len, crawl_http_head *h);
/* The entity body with the transfer coding (chunked, RFC 9112 section
 * 7.1) and content coding (gzip, deflate, br) undone, at most max bytes; it
 * may live in tmp1 or tmp2. Returns 0, WP_ELIMIT (larger than max),
 * WP_EFORMAT (an encoding we do not decode, or corrupt) or WP_ENOMEM. */
int crawl_http_body(const crawl_http_head *h, size_t max, wp_buf *tmp1, wp_buf *tmp2,
                    const char **body, size_t *len);

/* Decodes one WAT metadata record's JSON into a page (images only, at most
 * o->max_images, the rest counted in drops[CRAWL_DROP_OVER_CAP]; text
 * cleaned with entities decoded). Returns 0 with *out (NULL when the
 * record is not an HTML page's metadata), WP_EFORMAT with err filled
 * (broken JSON), WP_ELIMIT (a record over tree_max bytes, at most
 * CRAWL_WAT_FULL_MAX, that only the full parse could read), or WP_ENOMEM. */
int crawl_wat_page(const char *json, size_t len, const crawl_opts *o, size_t tree_max,
                   wp_arena *arena, crawl_page **out, wp_err *err);

/* Caps on the start tags libxml2 sees: its duplicate-attribute check
 * compares each attribute with those before it (quadratic in their
 * number). A tag over a cap keeps its first max_attrs attributes and
 * max_tag bytes; the attributes dropped are counted in attrs_dropped. */
typedef struct crawl_tag_caps {
    int max_attrs;          /* attributes kept per start tag */
    size_t max_tag;         /* bytes kept per start tag */
    uint64_t attrs_dropped; /* out: attributes dropped (added to) */
} crawl_tag_caps;

/* Copies the parts of an HTML page that extraction can depend on (every
 * tag, the attributes of those we read, and the text inside <title> and
 * <figcaption>) into out, dropping comments, script/style bodies and other
 * text; <a>/<area> keep their attributes when keep_links. The tags kept
 * with attributes are cut to caps (NULL: none). Returns 0, 1 when the page
 * has a construct whose reading it cannot predict (then parse the whole
 * page), or WP_ENOMEM. */
int crawl_prefilter(const char *p, size_t n, int keep_links, crawl_tag_caps *caps, wp_buf *out);

/* For a page parsed whole: when a start tag in p[0..n) is over caps,
 * writes the page with such tags cut into out (replacing its contents) and
 * returns 1; returns 0 (out untouched) when none is, or WP_ENOMEM. */
int crawl_cap_tags(const char *p, size_t n, crawl_tag_caps *caps, wp_buf *out);

/* crawl_to_utf8 followed by crawl_prefilter when prefilter is set; for a
 * UTF-8 page the prefilter runs first, so only what is kept is validated.
 * Either way the tags libxml2 will see are cut to caps (NULL: none). tmp is
 * scratch space. Returns 0 or WP_ENOMEM. */
#define CRAWL_PF_ON    1 /* crawl_decode_html: run the prefilter */
#define CRAWL_PF_LINKS 2 /* ... keeping <a>/<area> attributes */
int crawl_decode_html(const char *p, size_t n, const char *http_ct, int prefilter,
                      crawl_tag_caps *caps, wp_buf *out, wp_buf *tmp,
                      char label[CRAWL_CHARSET_MAX]);

/* crawl_url_resolve without the fast path for already-normal URLs: every
 * URL through libcurl (tests compare the two). */
int crawl_url_resolve_slow(const char *base, const char *ref, size_t ref_len, wp_arena *arena,
                           const char **out);

/* A cleaned copy (crawl_clean_text with flags) of s[0..n) in arena; NULL
 * when s is NULL, or cleaning leaves nothing, or refuses it (then *refused,
 * if given, gets the drop reason + 1), or memory runs out (*oom = 1). */
const char *crawl_clean_dup(const char *s, size_t n, int flags, const crawl_opts *o, wp_arena *a,
                            wp_buf *tmp, int *refused, int *oom);

#endif /* CRAWL_INT_H */
