/*
 * common/err.c: filling wp_err, the one-line error report every witpipe
 * function hands back to its caller.
 */
#include "wp.h"

#include <stdio.h>
#include <string.h>

static void set_msg(wp_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* e->msg from fmt, cut on a character boundary when too long. */
static void set_msg(wp_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wp_vformat(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

int wp_err_vset(wp_err *e, int code, const char *fmt, va_list ap)
{
    if (e == NULL)
        return code;
    e->code = code;
    wp_vformat(e->msg, sizeof e->msg, fmt, ap);
    return code;
}

int wp_err_set(wp_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wp_err_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int wp_err_prefix(wp_err *e, const char *fmt, ...)
{
    char prefix[WP_ERR_MAX];
    char old[WP_ERR_MAX];
    va_list ap;

    if (e == NULL)
        return WP_EINVAL;
    va_start(ap, fmt);
    wp_vformat(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    set_msg(e, "%s: %s", prefix, old);
    return e->code;
}

void wp_err_clear(wp_err *e)
{
    if (e == NULL)
        return;
    e->code = 0;
    e->msg[0] = '\0';
}
