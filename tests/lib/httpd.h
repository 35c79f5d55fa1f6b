/*
 * tests/lib/httpd.h: the fixture HTTP server (libmicrohttpd on 127.0.0.1,
 * ephemeral port) that the network and fetch tests talk to. It serves the
 * test images and the hostile cases fetch must survive, and keeps its own
 * log of concurrent connections and requests per Host header, and of when
 * each /flaky and /reset key was requested, so tests can check politeness
 * and retry delays from the server's side.
 *
 * Routes (query arguments in brackets):
 *   /img/NAME [ct]              a file of the document root; ct overrides Content-Type
 *   /html                       an HTML page served as image/jpeg
 *   /status [code]              that status, tiny body
 *   /flaky [key n code file ra] the first n requests for key answer code
 *                               (with Retry-After: ra if given), then file
 *   /trickle [n delay_ms]       n bytes, one every delay_ms
 *   /big [n cl]                 n bytes; cl=0 omits Content-Length (chunked)
 *   /gzbomb [n]                 n zero bytes gzip-compressed, Content-Encoding: gzip
 *   /redir [n file]             a chain of n redirects ending at /img/file
 *   /loop                       redirects to itself
 *   /redirect [to]              one redirect to the absolute URL to
 *   /xrobots [v file]           file with X-Robots-Tag: v (one field line per
 *                               newline in v)
 *   /reset [key n file]         the first n requests (n=-1: all) send half the
 *                               body and drop the connection
 *   /bomb                       a JPEG whose header claims 30000x30000
 *   /slow [ms file]             waits ms, then serves file
 *   /__stats                    JSON: requests, max_conns, max_active,
 *                               hosts: {host: max_active}
 */
#ifndef TL_HTTPD_H
#define TL_HTTPD_H

typedef struct tl_httpd tl_httpd;

typedef struct tl_httpd_stats {
    long requests;
    int max_conns;  /* most TCP connections open at once */
    int max_active; /* most requests in progress at once (all hosts) */
} tl_httpd_stats;

/* Starts the server on 127.0.0.1 with an ephemeral port, serving docroot.
 * Returns NULL (after printing why) on failure. */
tl_httpd *tl_httpd_start(const char *docroot);
int tl_httpd_port(const tl_httpd *h);
void tl_httpd_get_stats(tl_httpd *h, tl_httpd_stats *s);
/* The most requests in progress at once carrying this Host header
 * ("127.0.0.1:PORT"), 0 if none seen. */
int tl_httpd_host_max_active(tl_httpd *h, const char *host);
/* The requests seen for a /flaky or /reset key (0 if none), and when the
 * first and the last of them arrived (seconds on CLOCK_MONOTONIC). */
int tl_httpd_key_log(tl_httpd *h, const char *key, double *first_s, double *last_s);
void tl_httpd_stop(tl_httpd *h);

#endif
