/*
 * crawl/live.c: the live crawler (placeholder until net/ is merged).
 */
#include "crawl.h"

int crawl_live(cat *c, crawl_sink *sink, const crawl_live_opts *lo, wp_err *err)
{
    return wp_err_set(err, WP_EINVAL, "live crawl: not built yet");
}
