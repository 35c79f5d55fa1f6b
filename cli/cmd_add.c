/*
 * cli/cmd_add.c: `witpipe add`: URL + caption lists, or local images with
 * --files / --files-list, into the corpus catalog.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "add/add.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADD_KEEP_ARG_MAX 4096 /* the --keep-cols value, bytes */

static int parse_keep(const char *arg, char *copy, add_opts *o)
{
    char *save = NULL;
    if (strlen(arg) >= ADD_KEEP_ARG_MAX)
        return cli_usage_error("add", "option '--keep-cols' is too long");
    snprintf(copy, ADD_KEEP_ARG_MAX, "%s", arg);
    o->nkeep = 0;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (o->nkeep == ADD_KEEP_MAX)
            return cli_usage_error("add", "option '--keep-cols': more than %d columns",
                                   ADD_KEEP_MAX);
        if (strlen(t) > ADD_COLNAME_MAX)
            return cli_usage_error("add", "option '--keep-cols': column name too long");
        o->keep_cols[o->nkeep++] = t;
    }
    if (o->nkeep == 0)
        return cli_usage_error("add", "option '--keep-cols' needs column names");
    return 0;
}

static json_t *list_counts(const add_stats *st)
{
    json_t *j = json_object(), *bad = json_object();
    json_object_set_new(j, "files", json_integer((json_int_t)st->files));
    json_object_set_new(j, "files_failed", json_integer((json_int_t)st->files_failed));
    json_object_set_new(j, "rows", json_integer((json_int_t)st->rows));
    json_object_set_new(j, "added", json_integer((json_int_t)st->added));
    json_object_set_new(j, "duplicates", json_integer((json_int_t)st->duplicates));
    json_object_set_new(j, "empty_text", json_integer((json_int_t)st->empty_text));
    json_object_set_new(j, "bad", json_integer((json_int_t)st->bad));
    json_object_set_new(j, "bytes", json_integer((json_int_t)st->bytes));
    for (int i = 1; i < ADD_BAD_NREASONS; i++)
        if (st->bad_by[i] > 0)
            json_object_set_new(bad, add_bad_name(i), json_integer((json_int_t)st->bad_by[i]));
    json_object_set_new(j, "bad_by_reason", bad);
    return j;
}

static json_t *files_counts(const add_files_stats *st)
{
    json_t *j = json_object();
    json_object_set_new(j, "seen", json_integer((json_int_t)st->seen));
    json_object_set_new(j, "imported", json_integer((json_int_t)st->imported));
    json_object_set_new(j, "already", json_integer((json_int_t)st->already));
    json_object_set_new(j, "no_caption", json_integer((json_int_t)st->no_caption));
    json_object_set_new(j, "errors", json_integer((json_int_t)st->errors));
    json_object_set_new(j, "skipped", json_integer((json_int_t)st->skipped));
    json_object_set_new(j, "bytes", json_integer((json_int_t)st->bytes));
    return j;
}

int cmd_add(cli_ctx *ctx, int argc, char **argv)
{
    enum { O_FORMAT = 1000, O_URL, O_TEXT, O_KEEP, O_BATCH, O_FILES, O_FILES_LIST };
    static const struct option longopts[] = {{"format", required_argument, NULL, O_FORMAT},
                                             {"url-col", required_argument, NULL, O_URL},
                                             {"text-col", required_argument, NULL, O_TEXT},
                                             {"keep-cols", required_argument, NULL, O_KEEP},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"files", required_argument, NULL, O_FILES},
                                             {"files-list", required_argument, NULL, O_FILES_LIST},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    static char keep_copy[ADD_KEEP_ARG_MAX];
    add_opts o;
    add_stats st;
    add_files_stats fst;
    const char *files_dir = NULL, *files_list = NULL;
    cat *c = NULL;
    st_store *store = NULL;
    wp_err err = {0};
    json_t *params = NULL, *counts = NULL;
    char *pjs = NULL, *cjs = NULL;
    int64_t run_id = 0, v;
    double t0 = wp_now();
    int opt, rc = CLI_OK, stopped = 0;

    memset(&o, 0, sizeof o);
    memset(&st, 0, sizeof st);
    memset(&fst, 0, sizeof fst);
    while ((opt = cli_getopt("add", argc, argv, "", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("add"));
            return CLI_OK;
        case O_FORMAT:
            if ((o.format = add_format_parse(optarg)) < 0)
                return cli_usage_error("add", "option '--format': '%s' is not tsv, csv or jsonl",
                                       optarg);
            break;
        case O_URL:
            if (optarg[0] == '\0')
                return cli_usage_error("add", "option '--url-col' needs a name");
            o.url_col = optarg;
            break;
        case O_TEXT:
            if (optarg[0] == '\0')
                return cli_usage_error("add", "option '--text-col' needs a name");
            o.text_col = optarg;
            break;
        case O_KEEP:
            if (parse_keep(optarg, keep_copy, &o) != 0)
                return CLI_USAGE;
            break;
        case O_BATCH:
            if (cli_parse_i64("add", "--batch", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            o.batch_rows = (int)v;
            break;
        case O_FILES:
            files_dir = optarg;
            break;
        case O_FILES_LIST:
            files_list = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (files_dir != NULL && files_list != NULL)
        return cli_usage_error("add", "give --files or --files-list, not both");
    if ((files_dir != NULL || files_list != NULL) && optind < argc)
        return cli_usage_error("add", "--files takes no list files");
    if (files_dir == NULL && files_list == NULL && optind >= argc)
        return cli_usage_error("add", "no input: give FILE... or --files DIR");

    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    params = json_object();
    json_object_set_new(params, "format",
                        json_string(o.format == ADD_FMT_TSV     ? "tsv"
                                    : o.format == ADD_FMT_CSV   ? "csv"
                                    : o.format == ADD_FMT_JSONL ? "jsonl"
                                                                : "auto"));
    json_object_set_new(params, "url_col", json_string(o.url_col ? o.url_col : "url"));
    json_object_set_new(params, "text_col", json_string(o.text_col ? o.text_col : "caption"));
    if (files_dir)
        json_object_set_new(params, "files", json_string(files_dir));
    if (files_list)
        json_object_set_new(params, "files_list", json_string(files_list));
    {
        json_t *in = json_array();
        for (int i = optind; i < argc; i++)
            json_array_append_new(in, json_string(argv[i]));
        json_object_set_new(params, "inputs", in);
    }
    pjs = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (pjs == NULL || cat_run_start(c, "add", pjs, &run_id, &err) != 0) {
        cli_error(ctx, "%s", pjs ? err.msg : "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    o.run_id = run_id;

    if (files_dir != NULL || files_list != NULL) {
        int k;
        if (st_open(ctx->corpus, &store, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
            goto end_run;
        }
        if (files_dir)
            k = add_files_dir(c, store, files_dir, run_id, &ctx->rep, &fst, &err);
        else
            k = add_files_list(c, store, files_list, run_id, &ctx->rep, &fst, &err);
        cli_progress_done(ctx);
        if (k == WP_ESTOP) {
            stopped = 1;
            cli_warn(ctx, "stopped; everything imported so far is kept");
        } else if (k != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
        }
        cli_info(ctx,
                 "files: %llu images imported (%llu bytes), %llu already present, %llu "
                 "without caption, %llu errors, %llu other files skipped",
                 (unsigned long long)fst.imported, (unsigned long long)fst.bytes,
                 (unsigned long long)fst.already, (unsigned long long)fst.no_caption,
                 (unsigned long long)fst.errors, (unsigned long long)fst.skipped);
        counts = files_counts(&fst);
        goto end_run;
    }

    for (int i = optind; i < argc && !stopped; i++) {
        int k = add_list(c, argv[i], &o, &ctx->rep, &st, &err);
        cli_progress_done(ctx);
        if (k == WP_ESTOP) {
            stopped = 1;
            cli_warn(ctx, "stopped; rows read so far are kept");
        } else if (k == CAT_ESQL || k == WP_ENOMEM) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
            break;
        } else if (k != 0) {
            /* This file could not be (fully) read; the others still are. */
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
        }
    }
    if (st.reported > ADD_BAD_REPORT)
        cli_warn(ctx, "%llu more bad rows not shown",
                 (unsigned long long)(st.reported - ADD_BAD_REPORT));
    {
        double el = wp_now() - t0;
        char reasons[512] = "";
        size_t off = 0;
        for (int i = 1; i < ADD_BAD_NREASONS; i++)
            if (st.bad_by[i] > 0 && off < sizeof reasons)
                off += (size_t)snprintf(reasons + off, sizeof reasons - off, "%s%s %llu",
                                        off ? ", " : " (", add_bad_name(i),
                                        (unsigned long long)st.bad_by[i]);
        if (off > 0 && off < sizeof reasons - 1)
            strcat(reasons, ")");
        cli_info(ctx,
                 "added %llu pairs from %llu rows in %llu file(s): %llu duplicates, %llu with "
                 "empty caption, %llu bad rows%s; %.1f s, %.0f rows/s",
                 (unsigned long long)st.added, (unsigned long long)st.rows,
                 (unsigned long long)(st.files + st.files_failed),
                 (unsigned long long)st.duplicates, (unsigned long long)st.empty_text,
                 (unsigned long long)st.bad, reasons, el, el > 0 ? (double)st.rows / el : 0.0);
    }
    counts = list_counts(&st);

end_run:
    if (counts == NULL)
        counts = json_object();
    json_object_set_new(counts, "elapsed_s", json_real(wp_now() - t0));
    cjs = json_dumps(counts, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (cli_end_run(ctx, c, run_id, stopped, rc != CLI_OK, cjs) != CLI_OK)
        rc = CLI_FAIL;
out:
    st_close(store);
    cat_close(c);
    json_decref(params);
    json_decref(counts);
    free(pjs);
    free(cjs);
    if (stopped && rc == CLI_OK)
        rc = CLI_FAIL;
    return rc;
}
