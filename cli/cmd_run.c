/*
 * cli/cmd_run.c: `witpipe run PIPELINE.json`: the whole pipeline from one
 * config file, one stage after another, skipping what is done and resuming
 * what was interrupted.
 *
 * A config names the stages in order (schemas/pipeline.schema.json):
 *
 *     {"corpus": "corpus",
 *      "stages": [{"stage": "add", "args": ["list.tsv"], "url-col": "URL"},
 *                 {"stage": "fetch", "parallel": 64, "image-size": 256},
 *                 {"stage": "shard", "per-shard": 10000}]}
 *
 * Every key of a stage but "stage" and "args" is one of that command's long
 * options, spelled as on the command line: the key list IS the option table
 * (cli_cmd.opts), so a new option needs no config code. A flag takes true
 * (false leaves it out), a valued option a string or a number, and an array
 * repeats the option. "args" are the positional arguments. Each stage then
 * runs exactly as `witpipe STAGE --key value ... args` would, in this
 * process.
 *
 * Skipping: after a stage ends, a run of stage "run" is recorded with the
 * step's number, name and fingerprint (SHA-256 of the stage object with
 * sorted keys) and the stage's status. A step is skipped when every step
 * before it was skipped and its last record has the same fingerprint and
 * status done; anything else runs it again, which for every stage means
 * resuming (add skips known pairs, fetch takes pending images, encode the
 * pairs without embeddings, shard the missing shards). Editing one stage
 * therefore reruns it and everything after it.
 */
#include "catalog/catalog.h"
#include "cli.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_STAGES_MAX 64 /* steps in one pipeline */
#define RUN_ARGV_MAX   512
#define RUN_CONFIG_MAX ((size_t)16 << 20) /* bytes of a pipeline file */

enum { O_DRY = 1000 };

static const cli_opt run_opts_table[] = {
    {"dry-run", 0, no_argument, O_DRY, NULL,
     "print the plan (each step, the command it stands\nfor, whether it is done) and run nothing"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_run(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_run = {
    .name = "run",
    .summary = "run a pipeline config: every stage in order, resumably",
    .run = cmd_run,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe run [-C DIR] [--dry-run] PIPELINE.json\n",
    .about =
        "Runs the stages PIPELINE.json lists, in order, as the commands of the same\n"
        "names would (schemas/pipeline.schema.json). Each stage is an object with\n"
        "\"stage\" (add, crawl, fetch, dedup, encode, filter, balance, shard,\n"
        "export, audit...), \"args\" (its positional arguments) and any of the\n"
        "command's long options as keys, without the dashes: {\"stage\": \"fetch\",\n"
        "\"parallel\": 64} is fetch with its option parallel set to 64. true turns a\n"
        "flag on, an array repeats an option. The corpus is -C DIR, else the config's \"corpus\"\n"
        "(relative to the current directory), created if missing.\n"
        "\n"
        "A stage whose options are unchanged since it last finished, with every\n"
        "stage before it also unchanged, is skipped; any other stage runs, and a\n"
        "stage that was interrupted resumes where it stopped. A config error names\n"
        "the key and its path ($.stages[2].parallel) and nothing runs.\n",
    .opts = run_opts_table,
    .epilog = "Exit status: 0 when every stage succeeded, 1 at the first that failed\n"
              "(the stages after it do not run), 2 for a config error.\n",
};

/* Commands that are not pipeline stages. */
static int is_stage_command(const cli_cmd *c)
{
    static const char *const not_stages[] = {"init",  "status",  "run",  "clip",
                                             "model", "explain", "slurm"};
    for (size_t i = 0; i < sizeof not_stages / sizeof not_stages[0]; i++)
        if (strcmp(c->name, not_stages[i]) == 0)
            return 0;
    return 1;
}

typedef struct step {
    const cli_cmd *cmd;
    char fingerprint[WP_SHA256_HEX + 1];
    int argc;
    char *argv[RUN_ARGV_MAX];
    /* from earlier records */
    int done_before; /* last record: same fingerprint, done */
    int skip;
} step;

struct cli_plan {
    step st[RUN_STAGES_MAX];
    int n;
    char corpus[WP_PATH_MAX];
    wp_arena *arena;
    char *msg; /* the config error, "FILE: $.path: what" */
    size_t msg_cap;
};
typedef struct cli_plan plan;

static char *dup_str(plan *p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = wp_arena_alloc(p->arena, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static const cli_opt *find_opt(const cli_cmd *c, const char *key)
{
    if (c->opts == NULL)
        return NULL;
    for (const cli_opt *o = c->opts; o->name || o->help; o++)
        if (o->name != NULL && strcmp(o->name, key) == 0)
            return o;
    return NULL;
}

/* The option of c closest to key (edit distance <= 2), for "did you mean". */
static const char *near_opt(const cli_cmd *c, const char *key)
{
    const char *best = NULL;
    int bestd = 3;
    if (c->opts == NULL)
        return NULL;
    for (const cli_opt *o = c->opts; o->name || o->help; o++) {
        if (o->name == NULL)
            continue;
        size_t n = strlen(key), m = strlen(o->name);
        if (n > 64 || m > 64)
            continue;
        int d[65][65];
        for (size_t i = 0; i <= n; i++)
            d[i][0] = (int)i;
        for (size_t j = 0; j <= m; j++)
            d[0][j] = (int)j;
        for (size_t i = 1; i <= n; i++)
            for (size_t j = 1; j <= m; j++) {
                int sub = d[i - 1][j - 1] + (key[i - 1] != o->name[j - 1]);
                int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
                d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            }
        if (d[n][m] < bestd) {
            bestd = d[n][m];
            best = o->name;
        }
    }
    return best;
}

/* printf into msg (cut on a character boundary); nothing when msg is NULL. */
static void set_msg(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (msg == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    wp_vformat(msg, cap, fmt, ap);
    va_end(ap);
}

/* Fills the plan's message with "FILE: " and the error, keys and values
 * quoted from the config shown printable (wp_utf8_printable: one line, no
 * escape sequence); CLI_USAGE. */
static int cfg_error(plan *p, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_error(plan *p, const char *file, const char *fmt, ...)
{
    va_list ap;
    char what[512];
    wp_buf shown = {0};
    va_start(ap, fmt);
    wp_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (wp_utf8_printable(what, strlen(what), &shown) == 0 && shown.data != NULL)
        set_msg(p->msg, p->msg_cap, "%s: %.*s", file, (int)shown.len, shown.data);
    else
        set_msg(p->msg, p->msg_cap, "%s: out of memory", file);
    wp_buf_free(&shown);
    return CLI_USAGE;
}

/* A scalar value as option text; NULL for a type that cannot be one. */
static const char *scalar_text(plan *p, json_t *v)
{
    char buf[64];
    if (json_is_string(v))
        return dup_str(p, json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return dup_str(p, buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        return dup_str(p, buf);
    }
    return NULL;
}

static int push(step *s, char *a)
{
    if (a == NULL || s->argc >= RUN_ARGV_MAX - 1)
        return -1;
    s->argv[s->argc++] = a;
    s->argv[s->argc] = NULL;
    return 0;
}

/* One stage object into a step. CLI_USAGE after printing the error. */
static int build_step(plan *p, const char *file, int i, json_t *obj, step *s)
{
    const char *key;
    json_t *v, *args;
    char *dump;
    uint8_t d[WP_SHA256_LEN];

    if (!json_is_object(obj))
        return cfg_error(p, file, "$.stages[%d]: a stage is an object", i);
    v = json_object_get(obj, "stage");
    if (!json_is_string(v))
        return cfg_error(p, file,
                         "$.stages[%d].stage: missing (the command to run, e.g. \"fetch\")", i);
    s->cmd = cli_find(json_string_value(v));
    if (s->cmd == NULL || !is_stage_command(s->cmd))
        return cfg_error(p, file, "$.stages[%d].stage: '%s' is not a pipeline stage", i,
                         json_string_value(v));
    push(s, dup_str(p, s->cmd->name));
    json_object_foreach(obj, key, v)
    {
        const cli_opt *o;
        if (strcmp(key, "stage") == 0 || strcmp(key, "args") == 0)
            continue;
        o = find_opt(s->cmd, key);
        if (o == NULL) {
            const char *near = near_opt(s->cmd, key);
            return cfg_error(p, file, "$.stages[%d].%s: %s has no option --%s%s%s%s", i, key,
                             s->cmd->name, key, near ? " (did you mean " : "", near ? near : "",
                             near ? "?)" : "");
        }
        char flag[96];
        snprintf(flag, sizeof flag, "--%s", key);
        if (o->has_arg == no_argument) {
            if (!json_is_boolean(v))
                return cfg_error(p, file, "$.stages[%d].%s: a flag takes true or false", i, key);
            if (json_is_true(v) && push(s, dup_str(p, flag)) != 0)
                return cfg_error(p, file, "$.stages[%d]: too many arguments", i);
            continue;
        }
        size_t nvals = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t k = 0; k < nvals; k++) {
            json_t *e = json_is_array(v) ? json_array_get(v, k) : v;
            const char *t = scalar_text(p, e);
            if (t == NULL)
                return cfg_error(p, file, "$.stages[%d].%s%s: --%s takes a string or a number%s", i,
                                 key, json_is_array(v) ? "[...]" : "", key,
                                 json_is_array(v) ? "" : " (or an array of them)");
            if (push(s, dup_str(p, flag)) != 0 || push(s, (char *)t) != 0)
                return cfg_error(p, file, "$.stages[%d]: too many arguments", i);
        }
    }
    args = json_object_get(obj, "args");
    if (args != NULL) {
        if (!json_is_array(args))
            return cfg_error(p, file, "$.stages[%d].args: a list of strings", i);
        if (json_array_size(args) > 0 && push(s, dup_str(p, "--")) != 0)
            return cfg_error(p, file, "$.stages[%d]: too many arguments", i);
        for (size_t k = 0; k < json_array_size(args); k++) {
            const char *t = scalar_text(p, json_array_get(args, k));
            if (t == NULL)
                return cfg_error(p, file, "$.stages[%d].args[%zu]: a string", i, k);
            if (push(s, (char *)t) != 0)
                return cfg_error(p, file, "$.stages[%d]: too many arguments", i);
        }
    }
    /* 17 digits: jansson's default, so fingerprints recorded before the
     * writer was wp_json stay equal. */
    dump = wp_json_tree_text(obj, WP_JSON_SORT_KEYS | WP_JSON_PREC(17));
    if (dump == NULL || wp_sha256_buf(dump, strlen(dump), d) != 0) {
        free(dump);
        return cfg_error(p, file, "out of memory");
    }
    free(dump);
    wp_hex(d, WP_SHA256_LEN, s->fingerprint);
    return 0;
}

static int load_plan(plan *p, const char *file, const char *text, size_t len,
                     const char *corpus_opt)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *stages, *v;
    const char *key;
    int rc = 0;

    if (root == NULL)
        return cfg_error(p, file, "line %d, column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(root)) {
        rc = cfg_error(p, file, "$: a pipeline is a JSON object with \"stages\"");
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "stages") != 0 && strcmp(key, "corpus") != 0 &&
            strcmp(key, "$schema") != 0 && strcmp(key, "comment") != 0) {
            rc = cfg_error(p, file, "$.%s: unknown key (stages, corpus, comment, $schema)", key);
            goto out;
        }
    }
    stages = json_object_get(root, "stages");
    if (!json_is_array(stages) || json_array_size(stages) == 0) {
        rc = cfg_error(p, file, "$.stages: a non-empty list of stages");
        goto out;
    }
    if (json_array_size(stages) > RUN_STAGES_MAX) {
        rc = cfg_error(p, file, "$.stages: more than %d stages", RUN_STAGES_MAX);
        goto out;
    }
    v = json_object_get(root, "corpus");
    if (v != NULL && !json_is_string(v)) {
        rc = cfg_error(p, file, "$.corpus: a directory name");
        goto out;
    }
    snprintf(p->corpus, sizeof p->corpus, "%s",
             corpus_opt ? corpus_opt
             : v        ? json_string_value(v)
                        : ".");
    for (size_t i = 0; i < json_array_size(stages); i++) {
        if ((rc = build_step(p, file, (int)i, json_array_get(stages, i), &p->st[i])) != 0)
            goto out;
        p->n = (int)i + 1;
    }
out:
    json_decref(root);
    return rc;
}

cli_plan *cli_plan_parse(const char *file, const void *text, size_t len, const char *corpus_opt,
                         char *msg, size_t cap)
{
    plan *p = calloc(1, sizeof *p);
    if (msg != NULL && cap > 0)
        msg[0] = '\0';
    if (p == NULL || (p->arena = wp_arena_new(1 << 16)) == NULL) {
        free(p);
        set_msg(msg, cap, "%s: out of memory", file);
        return NULL;
    }
    p->msg = msg;
    p->msg_cap = cap;
    if (load_plan(p, file, text, len, corpus_opt) != 0) {
        cli_plan_free(p);
        return NULL;
    }
    return p;
}

int cli_plan_steps(const cli_plan *p)
{
    return p->n;
}

const cli_cmd *cli_plan_step(const cli_plan *p, int i, int *argc, char *const **argv)
{
    *argc = p->st[i].argc;
    *argv = p->st[i].argv;
    return p->st[i].cmd;
}

const char *cli_plan_corpus(const cli_plan *p)
{
    return p->corpus;
}

void cli_plan_free(cli_plan *p)
{
    if (p == NULL)
        return;
    wp_arena_free(p->arena);
    free(p);
}

/* Reads the "run" records: for each step the last record's verdict. */
static void on_record(void *ud, const cat_run_info *r)
{
    plan *p = ud;
    json_t *j = r->params ? json_loads(r->params, 0, NULL) : NULL;
    json_int_t no = -1;
    const char *fp = NULL, *name = NULL;
    if (j != NULL &&
        json_unpack(j, "{s:I, s:s, s:s}", "step", &no, "stage", &name, "fingerprint", &fp) == 0 &&
        no >= 0 && no < p->n) {
        step *s = &p->st[no];
        s->done_before = strcmp(name, s->cmd->name) == 0 && strcmp(fp, s->fingerprint) == 0 &&
                         r->status != NULL && strcmp(r->status, "done") == 0;
    }
    json_decref(j);
}

/* Marks the steps to skip, from the catalog (a missing corpus: none). */
static int read_records(cli_ctx *ctx, plan *p)
{
    char db[WP_PATH_MAX];
    cat *c = NULL;
    wp_err err = {0};
    int all_before = 1;

    if (wp_path_join(db, p->corpus, "catalog.db", &err) != 0 || !wp_file_exists(db))
        return 0;
    if (cat_open(p->corpus, CAT_READONLY, &c, &err) != 0 ||
        cat_runs_of_stage(c, "run", on_record, p, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        cat_close(c);
        return CLI_FAIL;
    }
    cat_close(c);
    for (int i = 0; i < p->n; i++) {
        p->st[i].skip = all_before && p->st[i].done_before;
        all_before = p->st[i].skip;
    }
    return 0;
}

/* Records how step i ended (a run of stage "run" begun and ended at once). */
static int record(cli_ctx *ctx, plan *p, int i, int status)
{
    cat *c = NULL;
    cat_run *r = NULL;
    wp_err err = {0}, serr = {0};
    json_t *params = json_pack("{s:i, s:s, s:s}", "step", i, "stage", p->st[i].cmd->name,
                               "fingerprint", p->st[i].fingerprint);
    char *pj = wp_json_tree_text(params, 0);
    int rc = CLI_OK;

    json_decref(params);
    if (pj == NULL || cat_open(p->corpus, 0, &c, &err) != 0 ||
        cat_run_begin(c, "run", pj, &r, &err) != 0) {
        cli_error(ctx, "run: recording step %d: %s", i + 1, pj ? err.msg : "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    if (status != 0)
        wp_err_set(&serr, status == WP_ESTOP ? WP_ESTOP : WP_EINVAL, "%s %s", p->st[i].cmd->name,
                   status == WP_ESTOP ? "stopped" : "failed");
    cat_run_end(r, status == WP_ESTOP ? WP_ESTOP : status != 0 ? WP_EINVAL : 0, "{}", &serr);
out:
    free(pj);
    cat_close(c);
    return rc;
}

static void print_step(const plan *p, int i, const char *verdict)
{
    const step *s = &p->st[i];
    printf("%2d. %-8s %-22s witpipe -C %s", i + 1, s->cmd->name, verdict, p->corpus);
    for (int k = 0; k < s->argc; k++)
        printf(" %s", s->argv[k]);
    printf("\n");
}

static int cmd_run(cli_ctx *ctx, int argc, char **argv)
{
    plan *p = NULL;
    int dry = 0, o, rc = CLI_OK;
    const char *corpus_opt = ctx->corpus_set ? ctx->corpus : NULL;
    char msg[WP_PATH_MAX + 600];
    wp_buf text = {0};
    wp_err err = {0};

    while ((o = cli_next_opt(&cli_cmd_run, argc, argv)) != -1) {
        if (o == 'h') {
            cli_print_usage(&cli_cmd_run);
            goto out;
        }
        if (o == O_DRY) {
            dry = 1;
            continue;
        }
        rc = CLI_USAGE;
        goto out;
    }
    if (optind + 1 != argc) {
        rc = cli_usage_error("run", "takes one pipeline file");
        goto out;
    }
    if (wp_read_file(argv[optind], RUN_CONFIG_MAX, &text, &err) != 0) {
        cli_error(ctx, "run: %s", err.msg);
        rc = CLI_USAGE;
        goto out;
    }
    if ((p = cli_plan_parse(argv[optind], text.data, text.len, corpus_opt, msg, sizeof msg)) ==
        NULL) {
        cli_error(ctx, "run: %s", msg);
        rc = CLI_USAGE;
        goto out;
    }
    if ((rc = read_records(ctx, p)) != 0)
        goto out;
    if (dry) {
        printf("plan for corpus %s (%d stages):\n", p->corpus, p->n);
        for (int i = 0; i < p->n; i++)
            print_step(p, i, p->st[i].skip ? "[done: skip]" : "[will run]");
        goto out;
    }
    ctx->corpus = p->corpus;
    {
        char db[WP_PATH_MAX];
        wp_err err = {0};
        if (wp_path_join(db, p->corpus, "catalog.db", &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
        if (!wp_file_exists(db)) {
            char *iargv[] = {"init", p->corpus, NULL};
            optind = 1;
            if ((rc = cli_cmd_init.run(ctx, 2, iargv)) != CLI_OK)
                goto out;
        }
    }
    for (int i = 0; i < p->n; i++) {
        step *s = &p->st[i];
        if (s->skip) {
            cli_info(ctx, "run: step %d/%d %s: done before with these options, skipped", i + 1,
                     p->n, s->cmd->name);
            continue;
        }
        cli_info(ctx, "run: step %d/%d %s", i + 1, p->n, s->cmd->name);
        optind = 1;
        int k = s->cmd->run(ctx, s->argc, s->argv);
        int status = k == CLI_OK ? 0 : wp_stop_requested() ? WP_ESTOP : WP_EINVAL;
        if (record(ctx, p, i, status) != CLI_OK || k != CLI_OK) {
            cli_error(ctx, "run: step %d/%d %s %s; later steps not run", i + 1, p->n, s->cmd->name,
                      status == WP_ESTOP ? "stopped" : "failed");
            rc = k == CLI_USAGE ? CLI_USAGE : CLI_FAIL;
            goto out;
        }
        if (wp_stop_requested()) {
            rc = CLI_FAIL;
            goto out;
        }
    }
    cli_info(ctx, "run: all %d steps done", p->n);
out:
    cli_plan_free(p);
    wp_buf_free(&text);
    return rc;
}
