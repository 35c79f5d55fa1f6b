/*
 * cli/report.c: how witpipe talks to its user: a progress line on a TTY
 * (done/total, rate, ETA, errors), JSON lines with --log-json, one-line
 * errors and warnings, and option-value parsing.
 *
 * Output hygiene: messages carry text from input rows (URLs, captions,
 * archive URIs). JSON lines are written by wp_json (valid UTF-8, controls
 * escaped); text for the terminal goes through cli_put, which shows
 * control characters as visible escapes (wp_utf8_printable), so no
 * escape sequence taken from input reaches the terminal.
 */
#include "cli.h"
#include "clip/clip.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAW_INTERVAL 0.2 /* seconds between TTY redraws */
#define JSON_INTERVAL 1.0 /* seconds between JSON progress events */

/* One --log-json line: the finished text of j, or nothing if it could not
 * be built (out of memory). */
static void put_json_line(wp_json *j, wp_buf *b)
{
    if (wp_json_finish(j) == 0) {
        fwrite(b->data, 1, b->len, stderr);
        fputc('\n', stderr);
    }
    wp_buf_free(b);
}

static void fmt_eta(char *out, size_t n, double s)
{
    if (!isfinite(s) || s < 0) {
        snprintf(out, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

/* Counts as "1234" or "12.5k"-free plain numbers; bytes as KB/MB/GB. */
static void fmt_count(char *out, size_t n, double v, int bytes)
{
    if (!bytes) {
        if (v == (double)(uint64_t)v)
            snprintf(out, n, "%llu", (unsigned long long)v);
        else
            snprintf(out, n, "%.1f", v);
    } else if (v >= 1e9) {
        snprintf(out, n, "%.2f GB", v / 1e9);
    } else if (v >= 1e6) {
        snprintf(out, n, "%.1f MB", v / 1e6);
    } else {
        snprintf(out, n, "%.0f kB", v / 1e3);
    }
}

static void on_progress(void *ud, const wp_progress *p)
{
    cli_ctx *ctx = ud;
    double now = wp_now();
    double el, rate, eta;
    int final = p->total > 0 && p->done >= p->total;

    if (ctx->start == 0 || ctx->stage != p->stage) {
        ctx->start = now;
        ctx->stage = p->stage;
        ctx->last_draw = 0;
    }
    if (ctx->quiet)
        return;
    if (!final && now - ctx->last_draw < (ctx->log_json ? JSON_INTERVAL : DRAW_INTERVAL))
        return;
    if (!ctx->log_json && !ctx->tty)
        return;
    ctx->last_draw = now;
    el = now - ctx->start;
    rate = el > 0 ? (double)p->done / el : 0;
    eta = p->total > p->done && rate > 0 ? (double)(p->total - p->done) / rate : NAN;
    if (ctx->log_json) {
        wp_buf b = {0};
        wp_json j;
        wp_json_init(&j, &b);
        wp_json_obj_begin(&j, NULL);
        wp_json_str(&j, "event", "progress");
        wp_json_str(&j, "stage", p->stage ? p->stage : "");
        wp_json_uint(&j, "done", p->done);
        wp_json_uint(&j, "total", p->total);
        wp_json_uint(&j, "errors", p->errors);
        wp_json_uint(&j, "bytes", p->bytes);
        wp_json_real_prec(&j, "rate", rate, 6);
        wp_json_real_prec(&j, "elapsed_s", el, 6);
        if (p->unit != NULL)
            wp_json_str(&j, "unit", p->unit);
        if (isfinite(eta))
            wp_json_real_prec(&j, "eta_s", eta, 6);
        wp_json_obj_end(&j);
        put_json_line(&j, &b);
        return;
    }
    char etas[32], dn[32], tot[32], rt[32];
    int in_bytes = p->unit != NULL && strcmp(p->unit, "bytes") == 0;
    fmt_count(dn, sizeof dn, (double)p->done, in_bytes);
    fmt_count(tot, sizeof tot, (double)p->total, in_bytes);
    fmt_count(rt, sizeof rt, rate, in_bytes);
    if (final)
        fmt_eta(etas, sizeof etas, el);
    else
        fmt_eta(etas, sizeof etas, eta);
    if (p->total > 0)
        fprintf(stderr, "\r\033[K%s %s/%s (%.1f%%) %s/s %s %s errors %llu",
                p->stage ? p->stage : "", dn, tot, 100.0 * (double)p->done / (double)p->total, rt,
                final ? "in" : "ETA", etas, (unsigned long long)p->errors);
    else
        fprintf(stderr, "\r\033[K%s %s %s/s errors %llu", p->stage ? p->stage : "", dn, rt,
                (unsigned long long)p->errors);
    ctx->line_open = 1;
}

void cli_progress_done(cli_ctx *ctx)
{
    if (ctx->line_open) {
        fputc('\n', stderr);
        ctx->line_open = 0;
    }
}

static const char *level_name(wp_level l)
{
    switch (l) {
    case WP_LOG_DEBUG:
        return "debug";
    case WP_LOG_INFO:
        return "info";
    case WP_LOG_WARN:
        return "warning";
    default:
        return "error";
    }
}

static void emit(cli_ctx *ctx, wp_level level, const char *kind, const char *msg)
{
    if (ctx->quiet && level < WP_LOG_ERROR)
        return;
    if (level == WP_LOG_DEBUG && !ctx->log_json)
        return;
    if (ctx->log_json) {
        /* wp_json escapes controls and repairs invalid UTF-8: the line is
         * always valid JSON in valid UTF-8. */
        wp_buf b = {0};
        wp_json j;
        wp_json_init(&j, &b);
        wp_json_obj_begin(&j, NULL);
        wp_json_str(&j, "event", kind);
        wp_json_str(&j, "level", level_name(level));
        wp_json_str(&j, "msg", msg);
        wp_json_obj_end(&j);
        put_json_line(&j, &b);
        return;
    }
    cli_progress_done(ctx);
    if (level != WP_LOG_INFO)
        fprintf(stderr, "witpipe: %s: ", level_name(level));
    cli_put(stderr, msg);
    fputc('\n', stderr);
}

void cli_put(FILE *f, const char *s)
{
    wp_buf b = {0};
    if (s == NULL)
        return;
    if (wp_utf8_printable(s, strlen(s), &b) == 0)
        fwrite(b.data, 1, b.len, f);
    else
        fputs("(text not shown: out of memory)", f);
    wp_buf_free(&b);
}

static void on_event(void *ud, wp_level level, const char *kind, const char *msg)
{
    emit(ud, level, kind, msg);
}

void cli_reporter_init(cli_ctx *ctx)
{
    ctx->rep.progress = on_progress;
    ctx->rep.event = on_event;
    ctx->rep.ud = ctx;
}

static void vemit(cli_ctx *ctx, wp_level level, const char *kind, const char *fmt, va_list ap)
{
    char msg[2 * WP_ERR_MAX];
    wp_vformat(msg, sizeof msg, fmt, ap);
    emit(ctx, level, kind, msg);
}

void cli_error(cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(ctx, WP_LOG_ERROR, "error", fmt, ap);
    va_end(ap);
}

void cli_warn(cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(ctx, WP_LOG_WARN, "warning", fmt, ap);
    va_end(ap);
}

void cli_info(cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(ctx, WP_LOG_INFO, "info", fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "witpipe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see witpipe %s --help)\n", cmd);
    return CLI_USAGE;
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    char opts[128];
    int c, idx = -1;

    /* Leading ':' makes getopt report a missing value as ':'; '+' stops at
     * the first non-option so positional arguments keep their order. */
    snprintf(opts, sizeof opts, ":%sh", shortopts ? shortopts : "");
    opterr = 0;
    c = getopt_long(argc, argv, opts, longopts, &idx);
    if (c == '?') {
        if (optopt != 0)
            cli_usage_error(cmd, "unknown option '-%c'", optopt);
        else
            cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        return '?';
    }
    if (c == ':') {
        cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        return '?';
    }
    return c;
}

int cli_parse_i64(const char *cmd, const char *name, const char *value, int64_t min, int64_t max,
                  int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return cli_usage_error(cmd, "option '%s': '%s' is not a whole number in %lld..%lld", name,
                               value, (long long)min, (long long)max);
    *out = v;
    return 0;
}

int cli_parse_part(const char *cmd, const char *value, wp_part *p)
{
    if (wp_part_parse(value, p) != 0)
        return cli_usage_error(cmd, "--part '%s': expected I/N with 1 <= I <= N", value);
    return 0;
}

int cli_parse_precision(const char *cmd, const char *value, int *out)
{
    if (strcmp(value, "f32") == 0)
        *out = CLIP_F32;
    else if (strcmp(value, "bf16") == 0)
        *out = CLIP_BF16;
    else
        return cli_usage_error(cmd, "--precision must be f32 or bf16, not '%s'", value);
    return 0;
}

int cli_parse_double(const char *cmd, const char *name, const char *value, double min, double max,
                     double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !(v >= min && v <= max))
        return cli_usage_error(cmd, "option '%s': '%s' is not a number in %g..%g", name, value, min,
                               max);
    *out = v;
    return 0;
}
