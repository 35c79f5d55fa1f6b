/*
 * fetch/fetch.h: the fetch stage: downloads every image still 'pending' in
 * the catalog, identifies, filters, decodes, resizes and re-encodes it, and
 * stores the result in the image store, recording one final state per
 * image.
 *
 * One thread runs the network engine and is the only writer (image store
 * and catalog); a small pool of worker threads does the image work. Results
 * are committed in batches, each after st_sync, so a crash at any moment
 * leaves every image either with a committed final state pointing at
 * durable bytes, or still 'pending' for the next run.
 */
#ifndef FETCH_H
#define FETCH_H

#include "catalog/catalog.h"
#include "common/wp.h"
#include "net/net.h"
#include "store/store.h"

#include <stdint.h>

#define FETCH_WINDOW_MAX 65536

/* Error classes fetch adds to net's (NET_EC_*). */
#define FETCH_EC_NOT_IMAGE   "not_an_image"
#define FETCH_EC_UNSUPPORTED "unsupported_format"
#define FETCH_EC_CORRUPT     "corrupt"
#define FETCH_EC_PIXELS      "too_many_pixels"
#define FETCH_EC_TOO_SMALL   "too_small"
#define FETCH_EC_ASPECT      "aspect_ratio"
#define FETCH_EC_AREA        "too_large_area"
#define FETCH_EC_INTERNAL    "internal"

typedef struct fetch_opts {
    net_opts net;    /* network limits, retries, guard, user agent */
    int resize_mode; /* enum img_resize_mode (default border) */
    int image_size;  /* default 256 */
    int resize_only_if_bigger;
    int quality;             /* JPEG quality, default 95 */
    int reencode;            /* 0: keep the original bytes when no resize is needed */
    int64_t max_pixels;      /* refuse from the header (default 89478485, PIL's limit) */
    int min_image_size;      /* shorter side below this: too_small (0 = off) */
    double max_aspect_ratio; /* longer/shorter above this: aspect_ratio (0 = off) */
    int64_t max_image_area;  /* w*h above this: too_large_area (0 = off) */
    int workers;             /* image threads (0 = one per CPU) */
    int window;              /* requests in flight or queued (0 = 8 x parallel) */
    int batch;               /* results per catalog commit (default 256) */
    int64_t limit;           /* stop after this many images (0 = all) */
    wp_part part;            /* --part I/N: only images whose URL host is in the part
                              * (wp_part_key_host), so each host is fetched by one part */
} fetch_opts;

void fetch_opts_init(fetch_opts *o);

typedef struct fetch_stats {
    uint64_t done, ok, errors, retried;
    uint64_t bytes_in;  /* original bytes downloaded (kept bodies) */
    uint64_t bytes_out; /* bytes stored */
    double wall_s;
    /* CPU seconds: the network/writer thread, and per image phase in the
     * workers. */
    double cpu_net_s, cpu_decode_s, cpu_resize_s, cpu_encode_s;
    int max_host_active; /* most transfers open to one host at once */
    int stopped;         /* Ctrl-C: the run ended early, the rest stays pending */
} fetch_stats;

/* Fetches pending images of c into st (with o->part: only those of its
 * hosts; the others stay pending). rep (may be NULL) gets progress
 * ("fetch": done/total/errors/bytes) and one event per failed image at
 * debug level. Returns 0 when every pending image was handled, WP_ESTOP
 * when stopped by wp_request_stop (results so far are committed), or a
 * negative error (catalog, store, network setup) with err filled. stats
 * (may be NULL) is filled in every case. The run is recorded in the catalog
 * (stage "fetch": its options, its counts with every commit, its end). */
int fetch_run(cat *c, st_store *st, const fetch_opts *o, const wp_reporter *rep, fetch_stats *stats,
              wp_err *err);

#endif /* FETCH_H */
