/*
 * net/net.h: witpipe's polite, hostile-web-proof HTTP client, shared by
 * `witpipe fetch` (images) and `witpipe crawl` (pages, robots.txt).
 *
 * One event-driven engine (libcurl multi) per stage, driven from one thread:
 * the caller submits requests (URL + user pointer) and calls net_run in its
 * loop; every request ends in exactly one call of the completion callback
 * with the HTTP status, final URL, a few headers, the body (capped) or an
 * error class. The engine enforces:
 *  - a global concurrency limit and, per host, a connection cap and a
 *    minimum delay between request starts (a list dominated by one site
 *    never hammers it);
 *  - connect / total / low-speed timeouts, a body size cap counted in the
 *    write callback (Content-Length is only a hint);
 *  - retries with exponential backoff and jitter for timeouts, resets, 429
 *    and 5xx (a Retry-After on a 429 or 503 honoured, RFC 9110 section
 *    10.2.3); never for other 4xx;
 *  - at most NET_MAX_REDIRECTS redirects, http/https only;
 *  - X-Robots-Tag opt-outs, decided from the headers before any body byte
 *    is accepted;
 *  - an SSRF guard: every address curl is about to connect to (after DNS,
 *    on every redirect hop) is checked against blocked ranges unless an
 *    --allow-net CIDR opens it.
 */
#ifndef NET_H
#define NET_H

#include "common/wp.h"

#include <stdint.h>
#include <sys/socket.h>

enum net_status {
    NET_ECURL = -400,    /* libcurl refused to set up (message has details) */
    NET_EBADCIDR = -401, /* an --allow-net value is not a CIDR range */
};

/* ---- addresses (SSRF guard) ----------------------------------------- */

/* Why an address is blocked; NET_ADDR_PUBLIC means it may be contacted. */
enum net_addr_class {
    NET_ADDR_PUBLIC = 0,
    NET_ADDR_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    NET_ADDR_PRIVATE,     /* RFC 1918: 10/8, 172.16/12, 192.168/16; fc00::/7 (RFC 4193) */
    NET_ADDR_LINKLOCAL,   /* 169.254/16 (incl. cloud metadata), fe80::/10 */
    NET_ADDR_CGNAT,       /* 100.64/10 (RFC 6598) */
    NET_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    NET_ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    NET_ADDR_RESERVED,    /* 240/4, 255.255.255.255, 192.0.0/24, test nets, 198.18/15 */
    NET_ADDR_UNKNOWN,     /* not IPv4 or IPv6 */
};

/* The class of a socket address. IPv4-mapped (::ffff:a.b.c.d), IPv4-
 * compatible (::a.b.c.d), SIIT-translated (::ffff:0:a.b.c.d), NAT64
 * (64:ff9b::/96), 6to4 (2002::/16), Teredo (2001::/32: server and client)
 * and ISATAP (interface id [02]00:5efe:a.b.c.d) IPv6 addresses are
 * classified by the IPv4 addresses they embed; the local-use translation
 * prefix 64:ff9b:1::/48 is private. Cannot fail. */
int net_addr_classify(const struct sockaddr *sa);
/* "loopback", "private", ... "public"; static strings. */
const char *net_addr_class_name(int cls);

/* Parses a literal host the way the system resolver does: IPv6 (with or
 * without brackets) and IPv4 in any inet_aton spelling (2130706433,
 * 0177.0.0.1, 0x7f.1). Returns 0 and fills *ss, or WP_EINVAL. */
int net_addr_parse(const char *host, struct sockaddr_storage *ss);

/* A list of CIDR ranges that are allowed even though blocked by class. */
typedef struct net_acl net_acl;
/* Returns NULL when out of memory. Free with net_acl_free. */
net_acl *net_acl_new(void);
void net_acl_free(net_acl *a);
/* Adds "127.0.0.0/8", "::1/128" or a bare address (a /32 or /128).
 * Returns 0, NET_EBADCIDR or WP_ENOMEM. */
int net_acl_add(net_acl *a, const char *cidr, wp_err *err);
/* 1 if sa lies in one of the ranges. a may be NULL (empty list). */
int net_acl_contains(const net_acl *a, const struct sockaddr *sa);
/* The guard's verdict: NET_ADDR_PUBLIC if sa may be contacted (public, or
 * allowed by acl), else its blocking class. */
int net_addr_check(const net_acl *a, const struct sockaddr *sa);

/* ---- robots directives (X-Robots-Tag, <meta name="robots">) ----------- */

#define NET_DIRECTIVE_MAX 32 /* longest directive name kept */

/* What a directive list says to us, one bit per directive as written. */
#define NET_ROBOTS_NOAI         0x01u
#define NET_ROBOTS_NOIMAGEAI    0x02u
#define NET_ROBOTS_NOINDEX      0x04u
#define NET_ROBOTS_NOIMAGEINDEX 0x08u
#define NET_ROBOTS_NOFOLLOW     0x10u
#define NET_ROBOTS_NONE         0x20u /* "none": noindex and nofollow */
#define NET_ROBOTS_EXPIRED      0x40u /* "unavailable_after: DATE" with DATE <= now */
/* Any of these keeps our content out (images in fetch, a page's images in
 * crawl): none and an expired unavailable_after count as noindex. */
#define NET_ROBOTS_OPT_OUT                                                                         \
    (NET_ROBOTS_NOAI | NET_ROBOTS_NOIMAGEAI | NET_ROBOTS_NOINDEX | NET_ROBOTS_NOIMAGEINDEX |       \
     NET_ROBOTS_NONE | NET_ROBOTS_EXPIRED)
#define NET_ROBOTS_ANY_NOINDEX  (NET_ROBOTS_NOINDEX | NET_ROBOTS_NONE | NET_ROBOTS_EXPIRED)
#define NET_ROBOTS_ANY_NOFOLLOW (NET_ROBOTS_NOFOLLOW | NET_ROBOTS_NONE)

/* The directives that opt an image out by default (fetch --ignore-directive
 * removes names from this list; none and unavailable_after follow noindex). */
#define NET_DEFAULT_DIRECTIVES "noai,noimageai,noindex,noimageindex"

/* Parses an X-Robots-Tag value or a robots <meta> content: comma-separated,
 * case-insensitive directives (noai, noimageai, noindex, noimageindex,
 * nofollow, none, all, unavailable_after: DATE; others ignored); a
 * "botname:" prefix scopes the directives after it, up to the next name or
 * the end of the line, to that robot, and they apply only when botname is one
 * of the comma-separated names in tokens (unscoped ones always apply).
 * Several header field lines may be joined by '\n'; each has its own scope.
 * An unavailable_after date (ISO 8601, RFC 1123, RFC 850 or asctime, commas
 * inside it allowed) sets NET_ROBOTS_EXPIRED when it is <= now (Unix
 * seconds); a future or unreadable date sets nothing. Returns the
 * NET_ROBOTS_* bits; NULL value gives 0. Cannot fail. */
unsigned net_robots_parse(const char *value, const char *tokens, int64_t now);

/* The opt-out decision on parsed flags against the comma-separated list of
 * opt-out directives (NET_DEFAULT_DIRECTIVES or a subset; none and an
 * expired unavailable_after need "noindex" in it). Returns 1 and copies the
 * directive's name as written ("noai", "none", "unavailable_after") to hit
 * when opted out, else 0. Cannot fail. */
int net_robots_optout(unsigned flags, const char *directives, char hit[NET_DIRECTIVE_MAX]);

/* net_robots_optout(net_robots_parse(value, tokens, now), directives, hit)
 * with now the wall clock: one X-Robots-Tag value checked as fetch does. */
int net_robots_tag_optout(const char *value, const char *tokens, const char *directives,
                          char hit[NET_DIRECTIVE_MAX]);

/* The name of one NET_ROBOTS_* bit ("noai", "unavailable_after"), a static
 * string, or NULL for anything else. */
const char *net_robots_flag_name(unsigned flag);

/* 1 if a <meta name=...> value addresses us: "robots" (every crawler) or one
 * of the comma-separated names in tokens, case-insensitively. */
int net_robots_meta_name(const char *name, const char *tokens);

/* ---- engine ------------------------------------------------------------ */

#define NET_MAX_REDIRECTS 5
#define NET_SNIFF_LEN     32   /* bytes handed to the sniff hook */
#define NET_CT_MAX        128  /* longest Content-Type kept */
#define NET_URL_MAX       8192 /* longest URL accepted */
#define NET_DETAIL_MAX    256  /* longest error detail */
#define NET_XROBOTS_MAX   1024 /* X-Robots-Tag text kept for the caller */

typedef struct net_opts {
    int parallel;             /* transfers at once (default 64) */
    int per_host;             /* transfers at once per host (default 4) */
    double host_delay_s;      /* minimum gap between request starts per host (0) */
    long connect_timeout_ms;  /* default 10000 */
    long total_timeout_ms;    /* whole transfer, default 60000 */
    long low_speed_bytes;     /* abort below this many bytes/s ... (default 1024) */
    long low_speed_time_s;    /* ... for this long (default 10) */
    int64_t max_bytes;        /* body cap after decoding (default 20 MB) */
    int retries;              /* extra attempts for retryable failures (default 2) */
    double backoff_base_s;    /* first retry delay, doubled each time (default 0.5) */
    double backoff_max_s;     /* cap on one backoff (default 30) */
    double retry_after_max_s; /* a longer Retry-After gives up (default 120) */
    const char *user_agent;   /* full User-Agent header */
    const char *robot_tokens; /* names X-Robots-Tag "ua:" scopes that mean us */
    const char *directives;   /* opt-out list; NULL = NET_DEFAULT_DIRECTIVES, "" = none */
    int ssrf_guard;           /* 1 (default): refuse blocked address classes */
    const net_acl *allow;     /* ranges opened despite the guard (borrowed) */
    /* Names pinned to addresses, curl's CURLOPT_RESOLVE entries
     * "HOST:PORT:ADDR[,ADDR...]" (addresses tried in order, each still
     * judged by the guard); NULL-terminated, borrowed; NULL: none. */
    const char *const *resolve;
} net_opts;

/* Fills o with the defaults above. */
void net_opts_init(net_opts *o);

/* Request flags for net_submit. */
#define NET_REQ_NO_OPTOUT       1 /* ignore X-Robots-Tag (robots.txt, pages) */
#define NET_REQ_NO_RETRY        2
#define NET_REQ_KEEP_ERROR_BODY 4 /* keep the body of 4xx/5xx responses */
/* Do not follow redirects: a 3xx ends the request with class http_3xx and
 * its target in redirect_url, so the caller can vet the target itself (the
 * live crawl checks robots.txt and scope for every hop). */
#define NET_REQ_NO_FOLLOW 8

/* Error classes, also the words stored in the catalog. */
#define NET_EC_DNS       "dns"
#define NET_EC_CONNECT   "connect"
#define NET_EC_TIMEOUT   "timeout"
#define NET_EC_RESET     "reset"
#define NET_EC_TLS       "tls"
#define NET_EC_HTTP_3XX  "http_3xx"
#define NET_EC_HTTP_4XX  "http_4xx"
#define NET_EC_HTTP_5XX  "http_5xx"
#define NET_EC_TOO_LARGE "too_large"
#define NET_EC_OPT_OUT   "opt_out"
#define NET_EC_BLOCKED   "blocked_address"
#define NET_EC_REDIRECTS "too_many_redirects"
#define NET_EC_SCHEME    "bad_scheme"
#define NET_EC_BAD_URL   "bad_url"
#define NET_EC_ENCODING  "bad_encoding"
#define NET_EC_NETWORK   "network"
#define NET_EC_ABORTED   "aborted" /* net_abort_all; the caller should retry later */

/* What one request ended with. Valid only during the callback, except body,
 * whose memory the callback may take (wp_buf_steal, or copy the struct and
 * zero r->body). */
typedef struct net_result {
    void *ud;                    /* as submitted */
    const char *url;             /* as submitted */
    const char *final_url;       /* after redirects (NULL if never connected) */
    const char *error_class;     /* NULL on success (2xx), else a NET_EC_* word or
                                    the sniff hook's word */
    char detail[NET_DETAIL_MAX]; /* one line, with the URL, when error_class */
    int http_status;             /* last response's status, 0 if none */
    int curl_code;               /* CURLcode of the last attempt */
    int attempts;                /* 1 + retries used */
    int redirects;
    const char *redirect_url;        /* NET_REQ_NO_FOLLOW: a 3xx's Location, absolute; else NULL */
    char opt_out[NET_DIRECTIVE_MAX]; /* the directive that opted out, or "" */
    unsigned robots;                 /* NET_ROBOTS_* of the X-Robots-Tag lines (our tokens) */
    const char *x_robots;          /* those lines joined by '\n' (cut at NET_XROBOTS_MAX), or "" */
    char content_type[NET_CT_MAX]; /* as served, or "" */
    wp_buf body;                   /* the body (empty on error unless KEEP_ERROR_BODY) */
    double download_s;             /* wall time of the last attempt */
    double total_s;                /* from first start to completion, incl. backoff */
} net_result;

/* Called once per request from inside net_run (or net_abort_all). */
typedef void (*net_done_fn)(void *cb_ud, net_result *r);
/* Called once per response with at least NET_SNIFF_LEN body bytes (or the
 * whole body if shorter, at the end): return NULL to continue, or an error
 * class word (a static string) to abort the transfer with it. */
typedef const char *(*net_sniff_fn)(void *cb_ud, void *ud, const void *p, size_t n);

typedef struct net_engine net_engine;

/* Creates an engine (copies o; o->allow is borrowed and must outlive it).
 * Returns 0 and *out, or NET_ECURL / WP_ENOMEM. Free with net_free. */
int net_new(const net_opts *o, net_done_fn done, net_sniff_fn sniff, void *cb_ud, net_engine **out,
            wp_err *err);
/* Aborts whatever is left (see net_abort_all) and frees. Safe with NULL. */
void net_free(net_engine *e);

/* Queues a request (the URL is copied). It starts when the global and
 * per-host limits allow. Returns 0, WP_ENOMEM, or WP_EINVAL for an URL over
 * NET_URL_MAX (no callback then). */
int net_submit(net_engine *e, const char *url, int flags, void *ud, wp_err *err);

/* Starts what may start, waits up to timeout_ms for network activity, and
 * runs the callbacks of requests that finished. Returns 0 or NET_ECURL. */
int net_run(net_engine *e, int timeout_ms, wp_err *err);

/* Makes a net_run waiting in another thread return early. The one
 * engine function that may be called from any thread. */
void net_wakeup(net_engine *e);

/* Requests not yet completed (queued, waiting to retry, or transferring). */
size_t net_pending(const net_engine *e);
size_t net_active(const net_engine *e);

/* Ends every request now: each gets its callback with NET_EC_ABORTED. */
void net_abort_all(net_engine *e);

/* Counters since net_new. */
typedef struct net_stats {
    uint64_t started, completed, retried, ok, failed;
    uint64_t bytes;      /* body bytes received */
    int max_host_active; /* the most transfers ever open to one host */
} net_stats;
void net_get_stats(const net_engine *e, net_stats *s);

#endif /* NET_H */
