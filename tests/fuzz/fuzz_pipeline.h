/*
 * tests/fuzz/fuzz_pipeline.h: what the pipeline-config fuzz target does
 * with one input, shared by the libFuzzer program (tests/fuzz/
 * fuzz_pipeline.c, `make fuzz`, linked with cli/) and by
 * tests/unit/test_cli.c, which replays the seeds (tests/fuzz/corpus/
 * pipeline) and reproducers (tests/fuzz/regress/pipeline) in the normal
 * and the ASan + UBSan build. Kept apart from fuzz_targets.h because it
 * needs the command layer (cli/), which the other targets do not link.
 *
 * fuzz_pipeline_one(data, size) returns 0, or the source line of the first
 * violated check. The input is a `witpipe run` config (JSON), parsed by
 * cli_plan_parse. Checked beyond the sanitizers:
 *   - a refused config's message is one line without control characters
 *     (keys and values from the config shown printable), "fuzz.json: " then a JSON
 *     path ("$", "$.stages[I]..." with I a stage of the config) or the
 *     JSON parser's "line L, column C";
 *   - an accepted config has 1..64 steps, each a stage command (not init,
 *     status, run, clip, model, explain, slurm) whose argument vector
 *     starts with its name, is NULL-terminated, and is accepted whole by
 *     that command's option table (cli_next_opt never reports an error,
 *     every option it returns is in the table, and what is left after the
 *     options is the "args" the config gave after "--").
 */
#ifndef FUZZ_PIPELINE_H
#define FUZZ_PIPELINE_H

#include "cli/cli.h"
#include "common/wp.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_PL_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return __LINE__;                                                                       \
    } while (0)

static inline void fuzz_pipeline_abort_on(int line)
{
    if (line != 0) {
        fprintf(stderr, "fuzz: check at tests/fuzz/fuzz_pipeline.h:%d failed\n", line);
        abort();
    }
}

/* 1 when val is the val of an option of cmd's table (or 'h', --help). */
static inline int fuzz_pl_in_table(const cli_cmd *cmd, int val)
{
    if (val == 'h')
        return 1;
    for (const cli_opt *o = cmd->opts; o != NULL && (o->name || o->help); o++)
        if (o->name != NULL && o->val == val)
            return 1;
    return 0;
}

/* Runs step i's argument vector through its command's option table. */
static inline int fuzz_pl_step(const cli_plan *p, int i)
{
    static const char *const not_stages[] = {"init",  "status",  "run",  "clip",
                                             "model", "explain", "slurm"};
    int argc, o, dashdash = -1;
    char *const *argv;
    const cli_cmd *cmd = cli_plan_step(p, i, &argc, &argv);
    char **copy;

    FUZZ_PL_CHECK(cmd != NULL && cmd->opts != NULL && argc >= 1 && argv != NULL);
    FUZZ_PL_CHECK(argv[argc] == NULL && strcmp(argv[0], cmd->name) == 0);
    FUZZ_PL_CHECK(cli_find(cmd->name) == cmd);
    for (size_t k = 0; k < sizeof not_stages / sizeof not_stages[0]; k++)
        FUZZ_PL_CHECK(strcmp(cmd->name, not_stages[k]) != 0);
    for (int k = 1; k < argc; k++) {
        FUZZ_PL_CHECK(argv[k] != NULL);
        if (dashdash < 0 && strcmp(argv[k], "--") == 0)
            dashdash = k;
    }
    /* getopt permutes: a copy */
    if ((copy = malloc(((size_t)argc + 1) * sizeof *copy)) == NULL)
        return 0;
    memcpy(copy, argv, ((size_t)argc + 1) * sizeof *copy);
    optind = 0; /* full re-initialisation of GNU getopt */
    opterr = 0;
    while ((o = cli_next_opt(cmd, argc, copy)) != -1) {
        if (o == '?' || o == ':' || !fuzz_pl_in_table(cmd, o)) {
            free(copy);
            return __LINE__;
        }
    }
    /* no positional argument before "--", and every one after it kept */
    {
        int left = argc - optind, given = dashdash < 0 ? 0 : argc - dashdash - 1;
        free(copy);
        FUZZ_PL_CHECK(left == given);
    }
    opterr = 1;
    return 0;
}

static inline int fuzz_pipeline_one(const uint8_t *data, size_t size)
{
    char msg[WP_PATH_MAX + 600];
    cli_plan *p = cli_plan_parse("fuzz.json", data, size, NULL, msg, sizeof msg);
    int line = 0;

    if (p == NULL) {
        static const char head[] = "fuzz.json: ";
        const char *rest = msg + sizeof head - 1;
        FUZZ_PL_CHECK(strncmp(msg, head, sizeof head - 1) == 0);
        for (const char *c = msg; *c; c++) /* one line, no escape sequence */
            FUZZ_PL_CHECK(((unsigned char)*c >= 0x20 && *c != 0x7f) || *c == '\t');
        FUZZ_PL_CHECK(rest[0] == '$' || strncmp(rest, "line ", 5) == 0 ||
                      strcmp(rest, "out of memory") == 0);
        if (strncmp(rest, "$.stages[", 9) == 0) {
            /* the stage named is one the config has (at most 64 are read) */
            long idx = strtol(rest + 9, NULL, 10);
            FUZZ_PL_CHECK(idx >= 0 && idx < 64);
        }
        return 0;
    }
    FUZZ_PL_CHECK(cli_plan_steps(p) >= 1 && cli_plan_steps(p) <= 64);
    FUZZ_PL_CHECK(cli_plan_corpus(p) != NULL);
    for (int i = 0; i < cli_plan_steps(p) && line == 0; i++)
        line = fuzz_pl_step(p, i);
    cli_plan_free(p);
    return line;
}

#endif
