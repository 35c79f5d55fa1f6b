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
    int corpus_set;     /* -C was given (witpipe run: it beats the config's corpus) */
    int log_json;       /* --log-json: JSON lines on stderr */
    int quiet;          /* --quiet: errors only */
    int tty;            /* stderr is a terminal */
    wp_reporter rep;    /* hand this to library calls */
    /* progress line state */
    double start, last_draw;
    const char *stage;
    int line_open;
} cli_ctx;

/* One option of a command: the parser's entry and its help at once, so
 * `witpipe help CMD` and the parser read the same table. An entry with no
 * name but help is a group heading ("Network:"); an all-zero entry ends
 * the table. --help / -h is added by the parser and the help. */
typedef struct cli_opt {
    const char *name; /* the long name, without "--" */
    int short_name;   /* its one-letter form ('o' for -o), or 0 */
    int has_arg;      /* no_argument or required_argument */
    int val;          /* what cli_next_opt returns for it */
    const char *arg;  /* the value's name in the help ("N", "FILE"); NULL for a flag */
    const char *help; /* what it does, default included; '\n' breaks lines */
} cli_opt;

#define CLI_OPTS_MAX 64 /* options in one table, headings included */

typedef struct cli_cmd {
    const char *name;
    const char *summary; /* one line for witpipe --help */
    /* The help text: usage, when written whole (commands without an option
     * table), else synopsis ("usage: ..." lines), about (what the command
     * does, before the options), the option table and epilog (after it). */
    const char *usage;
    int (*run)(cli_ctx *ctx, int argc, char **argv);
    int uses_openmp; /* runs OpenMP teams: start with OMP_WAIT_POLICY=passive */
    const char *synopsis;
    const char *about;
    const cli_opt *opts;
    const char *epilog;
} cli_cmd;

/* Every command, in the order --help lists them (cli/commands.c), NULL
 * terminated. */
extern const cli_cmd *const cli_commands[];
extern const cli_cmd cli_cmd_init, cli_cmd_status, cli_cmd_add, cli_cmd_crawl, cli_cmd_fetch,
    cli_cmd_encode, cli_cmd_shard, cli_cmd_export, cli_cmd_run, cli_cmd_queries, cli_cmd_balance,
    cli_cmd_filter, cli_cmd_explain, cli_cmd_audit, cli_cmd_dedup, cli_cmd_clip, cli_cmd_model,
    cli_cmd_merge, cli_cmd_slurm, cli_cmd_store;
const cli_cmd *cli_find(const char *name);

/* Option parsing from a command's table: getopt_long over its options
 * (and --help), one-line errors as cli_getopt gives them. Returns the
 * option's val, 'h' for --help, -1 at the end, or '?' after printing an
 * error. optarg holds the value. */
int cli_next_opt(const cli_cmd *cmd, int argc, char **argv);
/* The help text of cmd into out (replacing its contents): usage when the
 * command has no table, else synopsis, about, the options, epilog. Returns
 * 0 or WP_ENOMEM. */
int cli_usage_text(const cli_cmd *cmd, wp_buf *out);

/* The pipeline config of `witpipe run` (cli/cmd_run.c), parsed without
 * printing or touching a corpus: text (len bytes of JSON) named file in
 * messages. Returns the plan (free with cli_plan_free), or NULL with msg
 * (cap bytes) set to "FILE: $.path: what" (or "FILE: line L, column C:
 * what" for bad JSON). Step i (0 <= i < cli_plan_steps) is a stage command
 * and the argument vector it runs with (argv[0] its name, NULL-terminated,
 * owned by the plan). */
typedef struct cli_plan cli_plan;
cli_plan *cli_plan_parse(const char *file, const void *text, size_t len, const char *corpus_opt,
                         char *msg, size_t cap);
int cli_plan_steps(const cli_plan *p);
const cli_cmd *cli_plan_step(const cli_plan *p, int i, int *argc, char *const **argv);
/* The corpus folder: corpus_opt, else the config's "corpus", else ".". */
const char *cli_plan_corpus(const cli_plan *p);
void cli_plan_free(cli_plan *p); /* NULL: nothing */

/* Sets up ctx->rep for the chosen output mode. */
void cli_reporter_init(cli_ctx *ctx);
/* Ends an open progress line (prints the newline). */
void cli_progress_done(cli_ctx *ctx);

/* Messages to the user. cli_error prints "witpipe: error: ..." (or a JSON
 * event); cli_info prints unless --quiet. */
void cli_error(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_info(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s (NULL: nothing) to f as text safe for a terminal
 * (wp_utf8_printable: no control characters, valid UTF-8). Every string
 * that comes from input rows or the catalog is printed through it. */
void cli_put(FILE *f, const char *s);
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
/* Parses --part I/N (wp_part_parse) into *p; on a bad value prints a usage
 * error naming cmd and returns CLI_USAGE. */
int cli_parse_part(const char *cmd, const char *value, wp_part *p);
int cli_parse_i64(const char *cmd, const char *name, const char *value, int64_t min, int64_t max,
                  int64_t *out);
/* --precision f32|bf16 to CLIP_F32 / CLIP_BF16; CLI_USAGE after the error. */
int cli_parse_precision(const char *cmd, const char *value, int *out);
int cli_parse_double(const char *cmd, const char *name, const char *value, double min, double max,
                     double *out);

/* Prints a command's usage text to stdout. */
void cli_print_usage(const cli_cmd *c);

#endif
