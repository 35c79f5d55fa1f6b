/*
 * cli/cmd_slurm.c: `witpipe slurm PIPELINE.json --parts N -o DIR [--submit]`:
 * turns a pipeline config (cli/cmd_run.c) into sbatch scripts for a Slurm
 * cluster (docs/scale-out.md, docs/scale.md):
 *
 *   01-parts.sbatch   a job array of N tasks; task I runs `witpipe run` on
 *                     part-I.json: the leading item-by-item stages (add,
 *                     crawl, fetch, encode, filter) into DIR/parts/part-I-of-N.
 *                     The first of them (add or crawl) takes "part": "I/N",
 *                     so part I's corpus holds part I's pairs only; the
 *                     stages after it then do all of their part corpus (its
 *                     items are exactly the part's: fetch, encode and filter
 *                     need no --part there). add followed by fetch gets
 *                     "part-by": "host", so each host is fetched by one part
 *   02-merge.sbatch   `witpipe merge` of the N part corpora into the corpus
 *   NN-STAGE.sbatch   one job per remaining (global) stage over the merged
 *                     corpus, `witpipe run` on global-NN-STAGE.json
 *   submit.sh         sbatch --parsable each in turn, every job after the
 *                     one before it with --dependency=afterok:ID; prints
 *                     "NAME JOBID" lines
 *
 * Resources are per stage (a table of defaults, --cpus/--mem/--time for all,
 * --resources STAGE=CPUS,MEM,TIME for one), one log file per task in
 * DIR/logs. Nothing here needs Slurm except --submit, which runs submit.sh.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SL_MAX_STAGES 64
#define SL_MAX_RES    32

enum { O_PARTS = 1000, O_SUBMIT, O_BIN, O_PARTITION, O_ACCOUNT, O_CPUS, O_MEM, O_TIME, O_RES };

static const cli_opt slurm_opts_table[] = {
    {"parts", 0, required_argument, O_PARTS, "N", "split the item-by-item stages in N parts"},
    {"output", 'o', required_argument, 'o', "DIR", "where the scripts, part configs and logs go"},
    {"submit", 0, no_argument, O_SUBMIT, NULL,
     "submit them with sbatch, each after the one\nbefore (afterok), and print the job ids"},
    {"bin", 0, required_argument, O_BIN, "PATH", "the witpipe the jobs run (default: this one)"},
    {"partition", 0, required_argument, O_PARTITION, "P", "sbatch --partition for every job"},
    {"account", 0, required_argument, O_ACCOUNT, "A", "sbatch --account for every job"},
    {"cpus", 0, required_argument, O_CPUS, "N",
     "CPUs per task for every stage (default: per stage)"},
    {"mem", 0, required_argument, O_MEM, "M", "memory per task, e.g. 16G (default: per stage)"},
    {"time", 0, required_argument, O_TIME, "T",
     "time limit per task, e.g. 4:00:00 (default: per stage)"},
    {"resources", 0, required_argument, O_RES, "STAGE=C,M,T",
     "CPUs, memory and time of one stage (parts: the\narray, merge: the merge); repeatable"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_slurm(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_slurm = {
    .name = "slurm",
    .summary = "write (and submit) sbatch scripts running a pipeline as N parts",
    .run = cmd_slurm,
    .synopsis = "usage: witpipe slurm [-C DIR] PIPELINE.json --parts N -o OUTDIR [--submit]\n"
                "                     [--bin PATH] [--partition P] [--account A]\n"
                "                     [--cpus N] [--mem M] [--time T] [--resources STAGE=C,M,T]\n",
    .about = "Writes sbatch scripts that run PIPELINE.json (the config of `witpipe run`)\n"
             "on a Slurm cluster. The leading item-by-item stages (add, crawl, fetch,\n"
             "encode, filter) run as a job array of N tasks: task I runs `witpipe run` on\n"
             "OUTDIR/part-I.json into its own corpus OUTDIR/parts/part-I-of-N. The first\n"
             "stage (add or crawl) gets \"part\": \"I/N\", so the part corpus holds part\n"
             "I's pairs (add before fetch: \"part-by\": \"host\", so each host is fetched\n"
             "by one part), and the stages after it do all of their part corpus. A crawl\n"
             "of seeds splits by site (registrable domain, else host): each site, with\n"
             "its robots.txt and delay, is crawled by one part, and a link from one\n"
             "part's site to another's is not followed (counted as links_other_part; a\n"
             "page reachable only that way is missed). A filter with \"clip-top\" (a\n"
             "share of the whole corpus's scores) is a global stage. Then `witpipe merge`\n"
             "folds the parts into the corpus (-C DIR, else the config's \"corpus\"), and\n"
             "each remaining stage (dedup, balance, shard, export, audit...) runs as\n"
             "its own job over the merged corpus, each one only after the one before it\n"
             "succeeded (an afterok dependency). Every task logs to\n"
             "OUTDIR/logs/NAME-TASK.log.\n"
             "Relative paths in the config are taken from the current directory (the\n"
             "jobs start there).\n",
    .opts = slurm_opts_table,
    .epilog = "OUTDIR/submit.sh submits the jobs by hand, as --submit does.\n"
              "Exit status: 0 on success, 1 when writing or submitting failed, 2 for a\n"
              "usage or config error.\n",
};

typedef struct res {
    char stage[32];
    int cpus;
    char mem[32], time[32];
} res;

/* Defaults per stage: network-bound stages want few CPUs, encode many. */
static const res res_defaults[] = {
    {"parts", 8, "16G", "12:00:00"}, {"merge", 2, "8G", "4:00:00"},
    {"dedup", 16, "64G", "4:00:00"}, {"balance", 8, "32G", "2:00:00"},
    {"shard", 8, "16G", "8:00:00"},  {"export", 2, "8G", "2:00:00"},
    {"audit", 4, "16G", "2:00:00"},  {"encode", 32, "64G", "24:00:00"},
    {"filter", 8, "16G", "4:00:00"}, {"queries", 4, "16G", "2:00:00"},
    {"*", 4, "8G", "4:00:00"},
};

typedef struct sl_ctx {
    const char *out, *bin, *partition, *account, *corpus;
    char cwd[PATH_MAX];
    int parts;
    int cpus;
    const char *mem, *time;
    res over[SL_MAX_RES];
    int nover;
} sl_ctx;

static void resources(const sl_ctx *s, const char *stage, res *r)
{
    size_t n = sizeof res_defaults / sizeof res_defaults[0];
    *r = res_defaults[n - 1];
    for (size_t i = 0; i < n; i++)
        if (strcmp(res_defaults[i].stage, stage) == 0)
            *r = res_defaults[i];
    if (s->cpus > 0)
        r->cpus = s->cpus;
    if (s->mem)
        snprintf(r->mem, sizeof r->mem, "%s", s->mem);
    if (s->time)
        snprintf(r->time, sizeof r->time, "%s", s->time);
    for (int i = 0; i < s->nover; i++)
        if (strcmp(s->over[i].stage, stage) == 0) {
            r->cpus = s->over[i].cpus;
            snprintf(r->mem, sizeof r->mem, "%s", s->over[i].mem);
            snprintf(r->time, sizeof r->time, "%s", s->over[i].time);
        }
}

/* STAGE=CPUS,MEM,TIME */
static int parse_res(const char *v, res *r)
{
    const char *eq = strchr(v, '=');
    char cpus[16];
    if (eq == NULL || eq == v || (size_t)(eq - v) >= sizeof r->stage)
        return -1;
    memset(r, 0, sizeof *r);
    memcpy(r->stage, v, (size_t)(eq - v));
    if (sscanf(eq + 1, "%15[0-9],%31[^,],%31s", cpus, r->mem, r->time) != 3)
        return -1;
    r->cpus = atoi(cpus);
    return r->cpus > 0 ? 0 : -1;
}

/* Single-quotes s for sh. */
static void shq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static int is_part_stage(const char *stage)
{
    static const char *const v[] = {"add", "crawl", "fetch", "encode", "filter"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (strcmp(stage, v[i]) == 0)
            return 1;
    return 0;
}

/* Whether the stage takes --part in this build (its option table has it;
 * crawl splits archives by file or record and seeds by site). */
static int takes_part(const char *stage)
{
    const cli_cmd *c = cli_find(stage);
    int has = 0;
    if (c == NULL || c->opts == NULL)
        return 0;
    for (const cli_opt *o = c->opts; o->name || o->help; o++)
        if (o->name && strcmp(o->name, "part") == 0)
            has = 1;
    return has;
}

static FILE *open_out(const sl_ctx *s, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", s->out, name);
    return fopen(path, "w");
}

static int close_out(cli_ctx *ctx, FILE *f, const char *path, int exec_bit)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        cli_error(ctx, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    if (exec_bit && chmod(path, 0755) != 0) {
        cli_error(ctx, "%s: chmod failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void header(const sl_ctx *s, FILE *f, const char *job, const char *stage, int array)
{
    res r;
    resources(s, stage, &r);
    fprintf(f, "#!/bin/bash\n");
    fprintf(f, "# written by `witpipe slurm`: %s\n", job);
    fprintf(f, "#SBATCH --job-name=witpipe-%s\n", job);
    if (array)
        fprintf(f, "#SBATCH --array=1-%d\n", s->parts);
    fprintf(f, "#SBATCH --cpus-per-task=%d\n", r.cpus);
    fprintf(f, "#SBATCH --mem=%s\n", r.mem);
    fprintf(f, "#SBATCH --time=%s\n", r.time);
    fprintf(f, "#SBATCH --chdir=%s\n", s->cwd);
    if (array)
        fprintf(f, "#SBATCH --output=%s/logs/%s-%%a.log\n", s->out, job);
    else
        fprintf(f, "#SBATCH --output=%s/logs/%s.log\n", s->out, job);
    if (s->partition)
        fprintf(f, "#SBATCH --partition=%s\n", s->partition);
    if (s->account)
        fprintf(f, "#SBATCH --account=%s\n", s->account);
    fprintf(f, "set -euo pipefail\n");
}

static int write_json(cli_ctx *ctx, const sl_ctx *s, const char *name, json_t *obj)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s->out, name);
    wp_err err = {0};
    char *text = wp_json_tree_text(obj, WP_JSON_INDENT(2) | WP_JSON_SORT_KEYS);
    int rc = text != NULL ? wp_write_file_atomic(path, text, strlen(text), &err)
                          : wp_err_set(&err, WP_ENOMEM, "%s: out of memory", path);
    free(text);
    if (rc != 0) {
        cli_error(ctx, "%s", err.msg);
        return -1;
    }
    return 0;
}

static int generate(cli_ctx *ctx, sl_ctx *s, json_t *cfg, json_t *stages)
{
    char path[PATH_MAX + 64], name[96], jobs[SL_MAX_STAGES + 2][96];
    size_t nst = json_array_size(stages), first_global = 0;
    int njobs = 0;
    FILE *f;

    /* the leading per-part stages; a filter keeping a top percentage of
     * CLIP scores needs the whole corpus's scores, so it is global */
    while (first_global < nst) {
        json_t *st = json_array_get(stages, first_global);
        const char *sn = json_string_value(json_object_get(st, "stage"));
        if (!is_part_stage(sn) ||
            (strcmp(sn, "filter") == 0 && json_object_get(st, "clip-top") != NULL))
            break;
        first_global++;
    }
    const char *first = json_string_value(json_object_get(json_array_get(stages, 0), "stage"));
    if (first_global == 0 || (strcmp(first, "add") != 0 && strcmp(first, "crawl") != 0)) {
        cli_error(ctx, "$.stages[0]: the pipeline must start with add or crawl: each part's "
                       "corpus starts empty and gets its share of the pairs from it");
        return CLI_USAGE;
    }
    if (!takes_part(first))
        cli_warn(ctx,
                 "$.stages[0] (%s) has no --part for this source: each of the %d parts does "
                 "all of its work and the merge keeps one copy",
                 first, s->parts);
    int by_host = strcmp(first, "add") == 0 && first_global > 1 &&
                  strcmp(json_string_value(json_object_get(json_array_get(stages, 1), "stage")),
                         "fetch") == 0 &&
                  json_object_get(json_array_get(stages, 0), "part-by") == NULL;
    /* part configs */
    for (int p = 1; p <= s->parts; p++) {
        json_t *pc = json_object(), *arr = json_array();
        char dir[PATH_MAX + 64], part[32];
        if (!pc || !arr) {
            json_decref(pc);
            json_decref(arr);
            cli_error(ctx, "out of memory");
            return CLI_FAIL;
        }
        snprintf(dir, sizeof dir, "%s/parts/part-%d-of-%d", s->out, p, s->parts);
        snprintf(part, sizeof part, "%d/%d", p, s->parts);
        json_object_set_new(pc, "corpus", json_string(dir));
        for (size_t i = 0; i < first_global; i++) {
            json_t *st = json_deep_copy(json_array_get(stages, i));
            /* the first stage splits; the others do all of the part's corpus */
            json_object_del(st, "part");
            if (i == 0 && takes_part(first)) {
                json_object_set_new(st, "part", json_string(part));
                if (by_host)
                    json_object_set_new(st, "part-by", json_string("host"));
            }
            json_array_append_new(arr, st);
        }
        json_object_set_new(pc, "stages", arr);
        snprintf(name, sizeof name, "part-%d.json", p);
        int bad = write_json(ctx, s, name, pc);
        json_decref(pc);
        if (bad)
            return CLI_FAIL;
    }
    /* 01: the array */
    snprintf(jobs[njobs], sizeof jobs[0], "01-parts");
    if ((f = open_out(s, "01-parts.sbatch", path, sizeof path)) == NULL)
        goto ioerr;
    header(s, f, "parts", "parts", 1);
    fprintf(f, "I=${SLURM_ARRAY_TASK_ID:?not a Slurm array task}\n");
    fprintf(f, "exec ");
    shq(f, s->bin);
    fprintf(f, " -C \"");
    fprintf(f, "%s/parts/part-$I-of-%d\" run \"%s/part-$I.json\"\n", s->out, s->parts, s->out);
    if (close_out(ctx, f, path, 1) != 0)
        return CLI_FAIL;
    njobs++;
    /* 02: the merge */
    snprintf(jobs[njobs], sizeof jobs[0], "02-merge");
    if ((f = open_out(s, "02-merge.sbatch", path, sizeof path)) == NULL)
        goto ioerr;
    header(s, f, "merge", "merge", 0);
    fprintf(f, "exec ");
    shq(f, s->bin);
    fprintf(f, " -C ");
    shq(f, s->corpus);
    fprintf(f, " merge --skip-merged");
    for (int p = 1; p <= s->parts; p++)
        fprintf(f, " \\\n    '%s/parts/part-%d-of-%d'", s->out, p, s->parts);
    fprintf(f, "\n");
    if (close_out(ctx, f, path, 1) != 0)
        return CLI_FAIL;
    njobs++;
    /* 03..: the global stages */
    for (size_t i = first_global; i < nst; i++) {
        json_t *st = json_array_get(stages, i), *gc = json_object(), *arr = json_array();
        const char *sn = json_string_value(json_object_get(st, "stage"));
        char cfgname[128];
        if (!gc || !arr) {
            json_decref(gc);
            json_decref(arr);
            cli_error(ctx, "out of memory");
            return CLI_FAIL;
        }
        json_array_append_new(arr, json_deep_copy(st));
        json_object_set_new(gc, "corpus", json_string(s->corpus));
        json_object_set_new(gc, "stages", arr);
        snprintf(cfgname, sizeof cfgname, "global-%02d-%s.json", njobs + 1, sn);
        int bad = write_json(ctx, s, cfgname, gc);
        json_decref(gc);
        if (bad)
            return CLI_FAIL;
        snprintf(jobs[njobs], sizeof jobs[0], "%02d-%s", njobs + 1, sn);
        snprintf(name, sizeof name, "%s.sbatch", jobs[njobs]);
        if ((f = open_out(s, name, path, sizeof path)) == NULL)
            goto ioerr;
        header(s, f, jobs[njobs] + 3, sn, 0);
        fprintf(f, "exec ");
        shq(f, s->bin);
        fprintf(f, " -C ");
        shq(f, s->corpus);
        fprintf(f, " run '%s/%s'\n", s->out, cfgname);
        if (close_out(ctx, f, path, 1) != 0)
            return CLI_FAIL;
        njobs++;
    }
    (void)cfg;
    /* submit.sh */
    if ((f = open_out(s, "submit.sh", path, sizeof path)) == NULL)
        goto ioerr;
    fprintf(f, "#!/bin/sh\n# written by `witpipe slurm`: submits the jobs in order, each after the "
               "one before\n# (afterok); prints NAME JOBID per job.\nset -eu\n");
    fprintf(f, "mkdir -p '%s/logs'\n", s->out);
    for (int j = 0; j < njobs; j++) {
        if (j == 0)
            fprintf(f, "j0=$(sbatch --parsable '%s/%s.sbatch')\n", s->out, jobs[j]);
        else
            fprintf(f,
                    "j%d=$(sbatch --parsable --dependency=afterok:${j%d%%%%;*} '%s/%s.sbatch')\n",
                    j, j - 1, s->out, jobs[j]);
        fprintf(f, "echo \"%s ${j%d%%%%;*}\"\n", jobs[j], j);
    }
    if (close_out(ctx, f, path, 1) != 0)
        return CLI_FAIL;
    return CLI_OK;
ioerr:
    cli_error(ctx, "%s: cannot create: %s", path, strerror(errno));
    return CLI_FAIL;
}

/* An absolute form of p (relative to the current directory). */
static int absolute(const char *cwd, const char *p, char *out, size_t cap)
{
    int k = p[0] == '/' ? snprintf(out, cap, "%s", p) : snprintf(out, cap, "%s/%s", cwd, p);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}

static int cmd_slurm(cli_ctx *ctx, int argc, char **argv)
{
    sl_ctx s = {0};
    json_t *cfg = NULL, *stages;
    json_error_t jerr;
    char out[PATH_MAX], corpus[PATH_MAX], bin[PATH_MAX], cmdline[PATH_MAX + 32];
    const char *out_arg = NULL, *bin_arg = NULL;
    int opt, submit = 0, rc = CLI_FAIL;
    int64_t v;

    while ((opt = cli_next_opt(&cli_cmd_slurm, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_slurm);
            return CLI_OK;
        case O_PARTS:
            if (cli_parse_i64("slurm", "--parts", optarg, 1, 100000, &v) != 0)
                return CLI_USAGE;
            s.parts = (int)v;
            break;
        case 'o':
            out_arg = optarg;
            break;
        case O_SUBMIT:
            submit = 1;
            break;
        case O_BIN:
            bin_arg = optarg;
            break;
        case O_PARTITION:
            s.partition = optarg;
            break;
        case O_ACCOUNT:
            s.account = optarg;
            break;
        case O_CPUS:
            if (cli_parse_i64("slurm", "--cpus", optarg, 1, 100000, &v) != 0)
                return CLI_USAGE;
            s.cpus = (int)v;
            break;
        case O_MEM:
            s.mem = optarg;
            break;
        case O_TIME:
            s.time = optarg;
            break;
        case O_RES:
            if (s.nover == SL_MAX_RES || parse_res(optarg, &s.over[s.nover]) != 0)
                return cli_usage_error("slurm", "--resources '%s': expected STAGE=CPUS,MEM,TIME",
                                       optarg);
            s.nover++;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("slurm", "needs exactly one PIPELINE.json");
    if (s.parts == 0)
        return cli_usage_error("slurm", "needs --parts N");
    if (out_arg == NULL)
        return cli_usage_error("slurm", "needs -o OUTDIR");
    if (getcwd(s.cwd, sizeof s.cwd) == NULL) {
        cli_error(ctx, "cannot read the current directory: %s", strerror(errno));
        return CLI_FAIL;
    }
    cfg = json_load_file(argv[optind], 0, &jerr);
    if (cfg == NULL) {
        cli_error(ctx, "%s:%d: %s", argv[optind], jerr.line, jerr.text);
        return CLI_USAGE;
    }
    stages = json_object_get(cfg, "stages");
    if (!json_is_array(stages) || json_array_size(stages) == 0 ||
        json_array_size(stages) > SL_MAX_STAGES) {
        cli_error(ctx, "$.stages: an array of 1 to %d stages is needed", SL_MAX_STAGES);
        rc = CLI_USAGE;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        const char *sn = json_string_value(json_object_get(st, "stage"));
        if (sn == NULL || cli_find(sn) == NULL || strcmp(sn, "slurm") == 0) {
            cli_error(ctx, "$.stages[%zu].stage: not a witpipe stage", i);
            rc = CLI_USAGE;
            goto out;
        }
    }
    {
        const char *cp =
            ctx->corpus_set ? ctx->corpus : json_string_value(json_object_get(cfg, "corpus"));
        if (cp == NULL)
            cp = ".";
        if (absolute(s.cwd, cp, corpus, sizeof corpus) != 0 ||
            absolute(s.cwd, out_arg, out, sizeof out) != 0) {
            cli_error(ctx, "path too long");
            goto out;
        }
    }
    if (bin_arg) {
        if (absolute(s.cwd, bin_arg, bin, sizeof bin) != 0) {
            cli_error(ctx, "path too long");
            goto out;
        }
    } else {
        ssize_t k = readlink("/proc/self/exe", bin, sizeof bin - 1);
        if (k <= 0) {
            cli_error(ctx, "cannot find this program's path; give --bin");
            goto out;
        }
        bin[k] = 0;
    }
    s.out = out;
    s.corpus = corpus;
    s.bin = bin;
    {
        char logs[PATH_MAX + 8];
        wp_err err = {0};
        snprintf(logs, sizeof logs, "%s/logs", out);
        if (wp_mkdir_p(logs, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            goto out;
        }
    }
    if ((rc = generate(ctx, &s, cfg, stages)) != CLI_OK)
        goto out;
    cli_info(ctx, "slurm: %d parts; scripts in %s (submit.sh submits them)", s.parts, out);
    if (submit) {
        FILE *p;
        char line[256];
        snprintf(cmdline, sizeof cmdline, "sh '%s/submit.sh'", out);
        if ((p = popen(cmdline, "r")) == NULL) {
            cli_error(ctx, "cannot run %s: %s", cmdline, strerror(errno));
            rc = CLI_FAIL;
            goto out;
        }
        while (fgets(line, sizeof line, p) != NULL)
            fputs(line, stdout);
        int st = pclose(p);
        if (st != 0) {
            cli_error(ctx, "submitting failed (exit status %d); see the sbatch message above",
                      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            rc = CLI_FAIL;
            goto out;
        }
        fflush(stdout);
    }
    rc = CLI_OK;
out:
    json_decref(cfg);
    return rc;
}
