/*
 * common/report.c: the bridge from library code to whatever the command
 * layer shows (progress lines, JSON events), and the process-wide stop flag
 * that Ctrl-C raises.
 */
#include "wp.h"

#include <stdatomic.h>

#include <signal.h>
#include <stdio.h>

/* Set by a signal handler, read by every thread: a lock-free atomic is
 * safe in both places (C11 7.14.1.1, 7.17). */
static atomic_int stop_flag;

void wp_report_progress(const wp_reporter *r, const wp_progress *p)
{
    if (r != NULL && r->progress != NULL)
        r->progress(r->ud, p);
}

void wp_report_event(const wp_reporter *r, wp_level level, const char *kind, const char *fmt, ...)
{
    char msg[WP_ERR_MAX * 2];
    va_list ap;

    if (r == NULL || r->event == NULL)
        return;
    va_start(ap, fmt);
    wp_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->event(r->ud, level, kind, msg);
}

void wp_request_stop(void)
{
    atomic_store(&stop_flag, 1);
}

int wp_stop_requested(void)
{
    return atomic_load(&stop_flag) != 0;
}

void wp_clear_stop(void)
{
    atomic_store(&stop_flag, 0);
}
