/*
 * tests/lib/robots_cases.h: the shared table of robots-directive cases
 * (tests/data/robots_cases.tsv) for every test that checks an opt-out path:
 * the parser itself, fetch (X-Robots-Tag on an image) and crawl (WARC
 * header, <meta>, live pages). One table, so the paths cannot drift apart.
 */
#ifndef TL_ROBOTS_CASES_H
#define TL_ROBOTS_CASES_H

#define TL_ROBOTS_VALUE_MAX 512
#define TL_ROBOTS_TOKEN     "witpipe" /* the product token the table is written for */

typedef struct tl_robots_case {
    char value[TL_ROBOTS_VALUE_MAX]; /* field lines joined by '\n' */
    int lines;                       /* how many field lines */
    unsigned flags;                  /* NET_ROBOTS_* expected */
    int opt_out;                     /* flags & NET_ROBOTS_OPT_OUT: the path must refuse */
    int line;                        /* line in the .tsv, for messages */
} tl_robots_case;

/* Reads the table (path relative to the repository root, where tests run).
 * Returns the number of cases and *out (free() it), or -1 after printing
 * why (missing file, unknown flag word, over-long value). */
int tl_robots_cases(tl_robots_case **out);

#endif
