/*
 * tests/lib/site.h: a static fixture web site for the crawl tests
 * (libmicrohttpd on 127.0.0.1, ephemeral port).
 *
 * GET /PATH serves ROOT/PATH (ROOT/PATH/index.html for a directory) with a
 * Content-Type from the extension (.html text/html, .txt text/plain, .jpg
 * image/jpeg, .png image/png). Sibling files change the answer:
 *   PATH.status    the status code to answer with (body: PATH if present)
 *   PATH.location  answer 302 with this Location
 *   PATH.ct        the Content-Type header to send instead
 *   PATH.xrobots   X-Robots-Tag field lines to send, one per line
 *   PATH.bigmb     a generated HTML page of that many MiB
 *   PATH.delayms   wait this many milliseconds before answering
 * Every request is counted per path, so tests can check what was (not)
 * fetched.
 */
#ifndef TL_SITE_H
#define TL_SITE_H

typedef struct tl_site tl_site;

/* Starts serving root; returns NULL (after printing why) on failure. */
tl_site *tl_site_start(const char *root);
int tl_site_port(const tl_site *s);
/* Requests seen for exactly this path (no query). */
long tl_site_hits(tl_site *s, const char *path);
/* Requests seen in all, for every path. */
long tl_site_requests(tl_site *s);
void tl_site_stop(tl_site *s);

#endif
