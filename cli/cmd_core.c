/*
 * cli/cmd_core.c: `witpipe init` and `witpipe status` (counts per section,
 * then each stage's runs: how many, and the last one's status, times,
 * params, counts and error), each with its option table and help text.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "merge/merge.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { O_FROM = 1000, O_FOR };

static const cli_opt init_opts_table[] = {
    {"from", 0, required_argument, O_FROM, "CORPUS",
     "make DIR a part directory of CORPUS instead: a copy of\n"
     "its catalog, and its store and embeddings linked or\n"
     "not as the stage needs (with --for)"},
    {"for", 0, required_argument, O_FOR, "STAGE",
     "the stage the part runs: fetch, dedup, encode,\n"
     "filter, balance or shard"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_init(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_init = {
    .name = "init",
    .summary = "create a corpus directory and its catalog",
    .run = cmd_init,
    .synopsis = "usage: witpipe init DIR\n"
                "       witpipe init PART_DIR --from CORPUS --for STAGE\n",
    .about = "Creates DIR (if needed) with an empty catalog (DIR/catalog.db) and image\n"
             "store (DIR/store/). Running it on an existing corpus changes nothing.\n"
             "\n"
             "With --from, makes PART_DIR the starting point of one part of STAGE over\n"
             "CORPUS (docs/scale-out.md): a consistent copy of CORPUS's catalog; for\n"
             "fetch an empty store of its own; for the stages that read images (dedup,\n"
             "encode, filter, balance, shard) CORPUS's store linked, and but for encode\n"
             "its embeddings too. Then run STAGE's part I of N in PART_DIR, and\n"
             "`witpipe -C CORPUS merge PART_DIR...` copies back only what the parts\n"
             "wrote.\n",
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
    .synopsis = "usage: witpipe status [-C DIR] [--json]\n"
                "       witpipe status [--json] PART_DIR...\n",
    .about = "Prints the corpus's counts: sources by kind, pairs, images by state and\n"
             "error class, decisions by stage and reason, crawl pages, shards,\n"
             "embeddings; then, per stage, how many runs it had and its last run (id,\n"
             "status: running, done, stopped or failed; start and end, the options it\n"
             "ran with, its counts, and the error of a failed run). A run killed\n"
             "without a chance to end stays \"running\" with the counts of its last\n"
             "commit. A corpus with merged parts also gets a \"parts\" section: per\n"
             "stage, how many of its parts ran it (done, running, stopped, failed, not\n"
             "run) and their last runs' counts summed.\n"
             "\n"
             "With PART_DIR... (the part corpora of a job split in parts, e.g.\n"
             "OUTDIR/parts/*), only that section, over those directories: a directory\n"
             "without a catalog yet counts as a part that has run nothing.\n",
    .opts = status_opts_table,
};

static int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    const char *dir;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int o;

    const char *from = NULL, *stage = NULL;

    while ((o = cli_next_opt(&cli_cmd_init, argc, argv)) != -1) {
        if (o == 'h') {
            cli_print_usage(&cli_cmd_init);
            return CLI_OK;
        }
        if (o == O_FROM)
            from = optarg;
        else if (o == O_FOR)
            stage = optarg;
        else
            return CLI_USAGE;
    }
    if (optind + 1 < argc)
        return cli_usage_error("init", "takes one directory");
    dir = optind < argc ? argv[optind] : ctx->corpus;
    if ((from == NULL) != (stage == NULL))
        return cli_usage_error("init", "--from CORPUS and --for STAGE go together");
    if (from != NULL) {
        if (mrg_part_init(from, dir, stage, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            return err.code == WP_EINVAL ? CLI_USAGE : CLI_FAIL;
        }
        cli_info(ctx, "part directory ready: %s (from %s, for %s)", dir, from, stage);
        return CLI_OK;
    }
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

/* ---- progress across parts ------------------------------------------- */

#define PARTS_STAGES_MAX 64

typedef struct part_stage {
    char stage[64];
    int64_t done, running, stopped, failed;
    json_t *counts; /* integer members of the last runs' counts, summed */
} part_stage;

typedef struct parts_acc {
    part_stage st[PARTS_STAGES_MAX];
    int n;
    int64_t parts, missing;
} parts_acc;

/* One part's last run of a stage. */
static void parts_run(void *ud, const cat_run_info *r)
{
    parts_acc *a = ud;
    part_stage *ps = NULL;
    json_error_t je;
    json_t *cj;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->st[i].stage, r->stage) == 0)
            ps = &a->st[i];
    if (ps == NULL) {
        if (a->n == PARTS_STAGES_MAX)
            return;
        ps = &a->st[a->n++];
        snprintf(ps->stage, sizeof ps->stage, "%s", r->stage);
        ps->counts = json_object();
    }
    if (strcmp(r->status, "done") == 0)
        ps->done++;
    else if (strcmp(r->status, "stopped") == 0)
        ps->stopped++;
    else if (strcmp(r->status, "failed") == 0)
        ps->failed++;
    else
        ps->running++;
    cj = r->counts ? json_loads(r->counts, 0, &je) : NULL;
    if (json_is_object(cj) && ps->counts != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(cj, k, v)
        {
            if (!json_is_integer(v))
                continue;
            json_t *have = json_object_get(ps->counts, k);
            json_object_set_new(
                ps->counts, k,
                json_integer(json_integer_value(v) + (have ? json_integer_value(have) : 0)));
        }
    }
    json_decref(cj);
}

static void parts_print(const parts_acc *a, json_t *root)
{
    if (root != NULL) {
        json_t *p = json_object(), *stages = json_object();
        json_object_set_new(p, "parts", json_integer(a->parts));
        json_object_set_new(p, "missing", json_integer(a->missing));
        for (int i = 0; i < a->n; i++) {
            const part_stage *ps = &a->st[i];
            json_t *o = json_object();
            json_object_set_new(o, "done", json_integer(ps->done));
            json_object_set_new(o, "running", json_integer(ps->running));
            json_object_set_new(o, "stopped", json_integer(ps->stopped));
            json_object_set_new(o, "failed", json_integer(ps->failed));
            json_object_set_new(
                o, "not_run",
                json_integer(a->parts - ps->done - ps->running - ps->stopped - ps->failed));
            json_object_set_new(o, "counts", ps->counts ? json_incref(ps->counts) : json_object());
            json_object_set_new(stages, ps->stage, o);
        }
        json_object_set_new(p, "stages", stages);
        json_object_set_new(root, "parts", p);
        return;
    }
    printf("parts (%lld%s", (long long)a->parts, a->missing ? ", " : "");
    if (a->missing)
        printf("%lld without a catalog yet", (long long)a->missing);
    printf(")\n");
    for (int i = 0; i < a->n; i++) {
        const part_stage *ps = &a->st[i];
        char *cj = wp_json_tree_text(ps->counts, WP_JSON_SORT_KEYS);
        printf("  %-12s %lld done, %lld running, %lld stopped, %lld failed, %lld not run\n",
               ps->stage, (long long)ps->done, (long long)ps->running, (long long)ps->stopped,
               (long long)ps->failed,
               (long long)(a->parts - ps->done - ps->running - ps->stopped - ps->failed));
        printf("    counts: %s\n", cj ? cj : "{}");
        free(cj);
    }
}

static void parts_free(parts_acc *a)
{
    for (int i = 0; i < a->n; i++)
        json_decref(a->st[i].counts);
}

/* `witpipe status PART_DIR...`: the parts section over those corpora. */
static int status_parts(cli_ctx *ctx, char **dirs, int n, int as_json)
{
    parts_acc a = {0};
    json_t *root = as_json ? json_object() : NULL;
    int rc = CLI_OK;
    for (int i = 0; i < n; i++) {
        char path[WP_PATH_MAX + 16];
        cat *c = NULL;
        wp_err err = {0};
        a.parts++;
        snprintf(path, sizeof path, "%s/catalog.db", dirs[i]);
        if (access(path, F_OK) != 0) {
            a.missing++;
            continue;
        }
        if (cat_open(dirs[i], CAT_READONLY, &c, &err) != 0 ||
            cat_runs_by_stage(c, parts_run, &a, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
            cat_close(c);
            break;
        }
        cat_close(c);
    }
    if (rc == CLI_OK) {
        parts_print(&a, root);
        char *text = wp_json_tree_text(root, WP_JSON_INDENT(1) | WP_JSON_SORT_KEYS);
        if (text != NULL)
            puts(text);
        else if (root != NULL)
            rc = CLI_FAIL; /* out of memory */
        free(text);
    }
    json_decref(root);
    parts_free(&a);
    return rc;
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
        return status_parts(ctx, argv + optind, argc - optind, as_json);
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
    if (rc == CLI_OK) { /* merged parts: their progress, stage by stage */
        parts_acc pa = {0};
        pa.parts = cat_merge_parts_count(c, &err);
        if (pa.parts < 0 || cat_runs_by_merged_part(c, parts_run, &pa, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
        } else if (pa.parts > 0) {
            parts_print(&pa, acc.root);
        }
        parts_free(&pa);
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
