/*
 * cli/cmd_core.c: `witpipe init` and `witpipe status` (counts per section,
 * then each stage's runs: how many, and the last one's status, times,
 * params, counts and error), each with its option table and help text.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const cli_opt init_opts_table[] = {{0, 0, 0, 0, 0, 0}};

static int cmd_init(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_init = {
    .name = "init",
    .summary = "create a corpus directory and its catalog",
    .run = cmd_init,
    .synopsis = "usage: witpipe init DIR\n",
    .about = "Creates DIR (if needed) with an empty catalog (DIR/catalog.db) and image\n"
             "store (DIR/store/). Running it on an existing corpus changes nothing.\n",
    .opts = init_opts_table,
};

enum { O_JSON = 1000 };

static const cli_opt status_opts_table[] = {
    {"json", 0, no_argument, O_JSON, NULL,
     "one JSON object instead of a table\n(schemas/status.schema.json)"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_status(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_status = {
    .name = "status",
    .summary = "counts per stage, state and error class; each stage's runs",
    .run = cmd_status,
    .synopsis = "usage: witpipe status [-C DIR] [--json]\n",
    .about = "Prints the corpus's counts: sources by kind, pairs, images by state and\n"
             "error class, decisions by stage and reason, crawl pages, shards,\n"
             "embeddings; then, per stage, how many runs it had and its last run (id,\n"
             "status: running, done, stopped or failed; start and end, the options it\n"
             "ran with, its counts, and the error of a failed run). A run killed\n"
             "without a chance to end stays \"running\" with the counts of its last\n"
             "commit.\n",
    .opts = status_opts_table,
};

static int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    const char *dir;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int o;

    while ((o = cli_next_opt(&cli_cmd_init, argc, argv)) != -1) {
        if (o == 'h') {
            cli_print_usage(&cli_cmd_init);
            return CLI_OK;
        }
        return CLI_USAGE;
    }
    if (optind + 1 < argc)
        return cli_usage_error("init", "takes one directory");
    dir = optind < argc ? argv[optind] : ctx->corpus;
    if (cat_open(dir, CAT_CREATE, &c, &err) != 0 || st_open(dir, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        cat_close(c);
        return CLI_FAIL;
    }
    cli_info(ctx, "corpus ready: %s (catalog schema %d)", dir, cat_schema_version(c));
    st_close(st);
    cat_close(c);
    return CLI_OK;
}

#define STATUS_SECTION_MAX 64

struct status_acc {
    json_t *root;
    /* A copy: the strings handed to status_print die with the next row. */
    char last_section[STATUS_SECTION_MAX];
};

static void status_print(void *ud, const char *section, const char *key, int64_t count)
{
    struct status_acc *acc = ud;
    if (acc->root != NULL) {
        json_t *sec = json_object_get(acc->root, section);
        if (sec == NULL) {
            sec = json_object();
            json_object_set_new(acc->root, section, sec);
        }
        json_object_set_new(sec, key ? key : "", json_integer(count));
        return;
    }
    if (strcmp(acc->last_section, section) != 0) {
        printf("%s\n", section);
        snprintf(acc->last_section, sizeof acc->last_section, "%s", section);
    }
    printf("  %-40s %12lld\n", key ? key : "", (long long)count);
}

/* Unix seconds as an ISO 8601 UTC time into out (size n). */
static void iso_time(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, n, "%lld", (long long)t);
}

/* JSON text from the catalog as a value (an object); a string if it does
 * not parse (it always should). */
static json_t *json_or_string(const char *s)
{
    json_error_t je;
    json_t *j = s ? json_loads(s, JSON_DECODE_ANY, &je) : NULL;
    return j != NULL ? j : json_string(s ? s : "");
}

static void status_run(void *ud, const cat_run_info *r)
{
    struct status_acc *acc = ud;
    char started[32], ended[32];
    if (acc->root != NULL) {
        json_t *runs = json_object_get(acc->root, "runs"), *st = json_object(),
               *last = json_object();
        if (runs == NULL) {
            runs = json_object();
            json_object_set_new(acc->root, "runs", runs);
        }
        json_object_set_new(last, "id", json_integer(r->id));
        json_object_set_new(last, "status", json_string(r->status));
        json_object_set_new(last, "started_at", json_integer(r->started_at));
        json_object_set_new(last, "ended_at",
                            r->ended_at >= 0 ? json_integer(r->ended_at) : json_null());
        json_object_set_new(last, "params", json_or_string(r->params));
        json_object_set_new(last, "counts", json_or_string(r->counts));
        if (r->error != NULL)
            json_object_set_new(last, "error", json_string(r->error));
        json_object_set_new(st, "runs", json_integer(r->runs));
        json_object_set_new(st, "last", last);
        json_object_set_new(runs, r->stage, st);
        return;
    }
    if (strcmp(acc->last_section, "runs") != 0) {
        printf("runs\n");
        snprintf(acc->last_section, sizeof acc->last_section, "runs");
    }
    iso_time(r->started_at, started, sizeof started);
    if (r->ended_at >= 0)
        iso_time(r->ended_at, ended, sizeof ended);
    printf("  %-40s %12lld\n", r->stage, (long long)r->runs);
    printf("    last: run %lld, %s, started %s%s%s\n", (long long)r->id, r->status, started,
           r->ended_at >= 0 ? ", ended " : "", r->ended_at >= 0 ? ended : "");
    /* The params name input files and the error may quote input text. */
    printf("    params: ");
    cli_put(stdout, r->params ? r->params : "{}");
    printf("\n    counts: ");
    cli_put(stdout, r->counts ? r->counts : "{}");
    printf("\n");
    if (r->error != NULL) {
        printf("    error: ");
        cli_put(stdout, r->error);
        printf("\n");
    }
}

static int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    struct status_acc acc = {0};
    cat *c = NULL;
    wp_err err = {0};
    int o, as_json = 0, rc = CLI_OK;
    while ((o = cli_next_opt(&cli_cmd_status, argc, argv)) != -1) {
        if (o == 'h') {
            cli_print_usage(&cli_cmd_status);
            return CLI_OK;
        }
        if (o == O_JSON)
            as_json = 1;
        else
            return CLI_USAGE;
    }
    if (optind < argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (as_json)
        acc.root = json_object();
    else
        printf("corpus %s\n", ctx->corpus);
    if (cat_stats(c, status_print, &acc, &err) != 0 ||
        cat_runs_by_stage(c, status_run, &acc, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    if (acc.root != NULL) {
        if (rc == CLI_OK) {
            char *s = wp_json_tree_text(acc.root, WP_JSON_INDENT(1) | WP_JSON_SORT_KEYS);
            if (s == NULL) {
                cli_error(ctx, "out of memory");
                rc = CLI_FAIL;
            } else {
                puts(s);
                free(s);
            }
        }
        json_decref(acc.root);
    }
    cat_close(c);
    return rc;
}
