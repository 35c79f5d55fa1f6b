/*
 * cli/main.c: witpipe's entry point: global options, dispatch through the
 * command table (cli/commands.c), help and version, Ctrl-C handling.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char global_help[] =
    "witpipe %s: build WIT-style image-text corpora\n"
    "\n"
    "usage: witpipe [-C DIR] [--log-json] [--quiet] [--max-memory SIZE] COMMAND [ARGS]\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  -C DIR        the corpus directory (default: the current directory)\n"
    "  --log-json    progress and events as JSON lines on stderr\n"
    "  -q, --quiet   print errors only\n"
    "  --max-memory SIZE\n"
    "                the memory budget (K, M, G suffixes; default 1 GiB + 512 MiB\n"
    "                per worker, two at least; docs/security.md)\n"
    "  -h, --help    this help; witpipe help COMMAND or COMMAND --help for one\n"
    "  --version     print the version\n"
    "\n"
    "Commands:\n";

static void print_help(void)
{
    printf(global_help, WP_VERSION);
    for (const cli_cmd *const *c = cli_commands; *c != NULL; c++)
        printf("  %-10s %s\n", (*c)->name, (*c)->summary);
    printf("\nExit status: 0 success, 1 the run failed, 2 usage error.\n");
}

static void on_signal(int sig)
{
    int saved = errno; /* the interrupted code may be about to read it */
    (void)sig;
    if (wp_stop_requested()) {
        /* A second Ctrl-C: the user insists. Nothing is lost: the catalog
         * only holds committed batches. */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        errno = saved;
        return;
    }
    wp_request_stop();
    errno = saved;
}

/* Removes the global options from argv wherever they are (before a "--"),
 * filling ctx. Returns CLI_USAGE on a bad one, else 0. */
static int take_globals(cli_ctx *ctx, int *argc, char **argv, int *want_help, int *want_version)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "-C") == 0 || strcmp(a, "--corpus") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "witpipe: option '%s' needs a directory\n", a);
                return CLI_USAGE;
            }
            ctx->corpus = argv[++i];
            ctx->corpus_set = 1;
        } else if (strncmp(a, "-C", 2) == 0 && a[2] != '\0') {
            ctx->corpus = a + 2;
            ctx->corpus_set = 1;
        } else if (strncmp(a, "--corpus=", 9) == 0) {
            ctx->corpus = a + 9;
            ctx->corpus_set = 1;
        } else if (strcmp(a, "--max-memory") == 0 || strncmp(a, "--max-memory=", 13) == 0) {
            const char *v = a[12] == '=' ? a + 13 : (i + 1 < *argc ? argv[++i] : NULL);
            int64_t b = 0;
            wp_err e = {0};
            if (v == NULL) {
                fprintf(stderr, "witpipe: option '--max-memory' needs a size\n");
                return CLI_USAGE;
            }
            if (wp_mem_parse(v, &b, &e) != 0) {
                fprintf(stderr, "witpipe: --max-memory: %s\n", e.msg);
                return CLI_USAGE;
            }
            if (b < WP_MEM_MIN) {
                fprintf(stderr, "witpipe: --max-memory %s: below the smallest budget, %lld MiB\n",
                        v, (long long)(WP_MEM_MIN >> 20));
                return CLI_USAGE;
            }
            wp_mem_set(b);
        } else if (strcmp(a, "--log-json") == 0) {
            ctx->log_json = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            ctx->quiet = 1;
        } else if (strcmp(a, "--version") == 0 && out == 1) {
            *want_version = 1;
        } else if ((strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) && out == 1) {
            *want_help = 1;
        } else {
            argv[out++] = a;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    cli_ctx ctx;
    const cli_cmd *cmd;
    static char **orig_argv; /* static: still reachable on the early returns */
    int want_help = 0, want_version = 0, rc;
    struct sigaction sa;

    memset(&ctx, 0, sizeof ctx);
    ctx.corpus = ".";
    ctx.tty = isatty(STDERR_FILENO);
    /* take_globals reorders argv; a second start needs it as given. */
    orig_argv = malloc((size_t)(argc + 1) * sizeof *argv);
    if (orig_argv != NULL)
        memcpy(orig_argv, argv, (size_t)(argc + 1) * sizeof *argv);
    if (take_globals(&ctx, &argc, argv, &want_help, &want_version) != 0)
        return CLI_USAGE;
    if (want_version) {
        printf("witpipe %s\n", WP_VERSION);
        return CLI_OK;
    }
    if (want_help || argc < 2) {
        print_help();
        return argc < 2 && !want_help ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_help();
            return CLI_OK;
        }
        cmd = cli_find(argv[2]);
        if (cmd == NULL)
            return cli_usage_error("help", "unknown command '%s'", argv[2]);
        cli_print_usage(cmd);
        return CLI_OK;
    }
    cmd = cli_find(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "witpipe: unknown command '%s' (see witpipe --help)\n", argv[1]);
        return CLI_USAGE;
    }
    /* OpenMP workers that spin while they wait hold a CPU that a
     * descheduled team mate needs when the machine is shared (measured:
     * ViT-B/32 at batch 1 beside one busy core, 3.8 -> 9.2 img/s; no loss
     * seen on a quiet machine). libgomp reads the policy only when it
     * loads, so a command that runs OpenMP teams sets it and executes
     * itself again, with its original arguments; when that fails it
     * carries on with the default policy. Other commands skip the second
     * start (a few ms of dynamic linking each time). */
    if (cmd->uses_openmp && orig_argv != NULL && getenv("OMP_WAIT_POLICY") == NULL &&
        getenv("GOMP_SPINCOUNT") == NULL && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", orig_argv);
    free(orig_argv);
    orig_argv = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cli_reporter_init(&ctx);
    optind = 1;
    rc = cmd->run(&ctx, argc - 1, argv + 1);
    cli_progress_done(&ctx);
    return rc;
}
