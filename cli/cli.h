/*
 * cli/cli.h: what witpipe's command layer shares: the global options, the
 * reporter that turns library progress and events into a TTY progress line
 * or JSON lines, and option-value parsing with one-line errors.
 *
 * Only the command layer prints or exits. Exit status: 0 success, 1 the run
 * failed, 2 usage error.
 */
#ifndef CLI_H
#define CLI_H

#include "common/wp.h"

#include <getopt.h>
#include <stdint.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

typedef struct cli_ctx {
    const char *corpus; /* -C DIR, default "." */
    int log_json;       /* --log-json: JSON lines on stderr */
    int quiet;          /* --quiet: errors only */
    int tty;            /* stderr is a terminal */
    wp_reporter rep;    /* hand this to library calls */
    /* progress line state */
    double start, last_draw;
    const char *stage;
    int line_open;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *summary; /* one line for witpipe --help */
    const char *usage;   /* full help text for witpipe help CMD */
    int (*run)(cli_ctx *ctx, int argc, char **argv);
    int uses_openmp; /* runs OpenMP teams: start with OMP_WAIT_POLICY=passive */
} cli_cmd;

/* Every command, in the order --help lists them (cli/main.c). */
extern const cli_cmd cli_commands[];
const cli_cmd *cli_find(const char *name);

/* Sets up ctx->rep for the chosen output mode. */
void cli_reporter_init(cli_ctx *ctx);
/* Ends an open progress line (prints the newline). */
void cli_progress_done(cli_ctx *ctx);

/* Messages to the user. cli_error prints "witpipe: error: ..." (or a JSON
 * event); cli_info prints unless --quiet. */
void cli_error(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_info(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error naming the command; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option parsing for commands: wraps getopt_long with one-line errors
 * ("witpipe CMD: unknown option '--x'", "... option '--x' needs a value").
 * Returns the option's val, -1 at the end, or '?' after printing an error.
 * Handles --help itself by returning 'h'. */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* Parse a number for option name; prints the one-line error and returns
 * CLI_USAGE when value is not a number in [min, max]. */
int cli_parse_i64(const char *cmd, const char *name, const char *value, int64_t min, int64_t max,
                  int64_t *out);
/* --precision f32|bf16 to CLIP_F32 / CLIP_BF16; CLI_USAGE after the error. */
int cli_parse_precision(const char *cmd, const char *value, int *out);
int cli_parse_double(const char *cmd, const char *name, const char *value, double min, double max,
                     double *out);

/* Ends a stage run in the catalog with status "stopped" (Ctrl-C: the run
 * resumes when started again), else "failed", else "done", and counts_json
 * (NULL for "{}"). Returns CLI_OK, or CLI_FAIL after printing the catalog's
 * error. */
struct cat;
int cli_end_run(cli_ctx *ctx, struct cat *c, int64_t run_id, int stopped, int failed,
                const char *counts_json);

/* Prints a command's usage text to stdout. */
void cli_print_usage(const cli_cmd *c);

#endif
