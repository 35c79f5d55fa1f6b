/*
 * add/add_run.c: the add stage as one catalog run: `witpipe add FILE...`
 * (add_run_lists) and `--files` / `--files-list` (add_run_files) begin a
 * run with their options, hand it to the readers (which report counts at
 * every commit), and end it with the stage's status. Also the stage's
 * option defaults.
 */
#include "add_int.h"

#include "parquet/parquet.h"

#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void add_opts_init(add_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = ADD_FMT_AUTO;
    o->url_col = "url";
    o->text_col = "caption";
    o->batch_rows = ADD_BATCH_ROWS;
}

/* j as compact JSON text, then j released; NULL when out of memory. */
static char *dump(json_t *j)
{
    char *out = wp_json_tree_text(j, 0);
    json_decref(j);
    return out;
}

char *add_list_counts(const add_stats *st, double elapsed)
{
    json_t *j = json_object(), *bad = json_object();
    if (j == NULL || bad == NULL) {
        json_decref(j);
        json_decref(bad);
        return NULL;
    }
    json_object_set_new(j, "files", json_integer((json_int_t)st->files));
    json_object_set_new(j, "files_failed", json_integer((json_int_t)st->files_failed));
    json_object_set_new(j, "rows", json_integer((json_int_t)st->rows));
    json_object_set_new(j, "added", json_integer((json_int_t)st->added));
    json_object_set_new(j, "duplicates", json_integer((json_int_t)st->duplicates));
    json_object_set_new(j, "empty_text", json_integer((json_int_t)st->empty_text));
    json_object_set_new(j, "bad", json_integer((json_int_t)st->bad));
    json_object_set_new(j, "bytes", json_integer((json_int_t)st->bytes));
    if (st->row_groups > 0 || st->bad_row_groups > 0) { /* Parquet inputs */
        json_object_set_new(j, "row_groups", json_integer((json_int_t)st->row_groups));
        json_object_set_new(j, "bad_row_groups", json_integer((json_int_t)st->bad_row_groups));
    }
    for (int i = 1; i < ADD_BAD_NREASONS; i++)
        if (st->bad_by[i] > 0)
            json_object_set_new(bad, add_bad_name(i), json_integer((json_int_t)st->bad_by[i]));
    json_object_set_new(j, "bad_by_reason", bad);
    if (elapsed >= 0)
        json_object_set_new(j, "elapsed_s", json_real(elapsed));
    return dump(j);
}

char *add_files_counts(const add_files_stats *st, double elapsed)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "seen", json_integer((json_int_t)st->seen));
    json_object_set_new(j, "imported", json_integer((json_int_t)st->imported));
    json_object_set_new(j, "already", json_integer((json_int_t)st->already));
    json_object_set_new(j, "no_caption", json_integer((json_int_t)st->no_caption));
    json_object_set_new(j, "errors", json_integer((json_int_t)st->errors));
    json_object_set_new(j, "skipped", json_integer((json_int_t)st->skipped));
    json_object_set_new(j, "skipped_links", json_integer((json_int_t)st->skipped_links));
    json_object_set_new(j, "skipped_special", json_integer((json_int_t)st->skipped_special));
    json_object_set_new(j, "bytes", json_integer((json_int_t)st->bytes));
    if (elapsed >= 0)
        json_object_set_new(j, "elapsed_s", json_real(elapsed));
    return dump(j);
}

static int report(cat_run *run, char *cj, wp_err *err)
{
    int rc;
    if (cj == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_run_counts(run, cj, err);
    free(cj);
    return rc;
}

int add_report_list(cat_run *run, const add_stats *st, double elapsed, wp_err *err)
{
    return run == NULL ? 0 : report(run, add_list_counts(st, elapsed), err);
}

int add_report_files(cat_run *run, const add_files_stats *st, double elapsed, wp_err *err)
{
    return run == NULL ? 0 : report(run, add_files_counts(st, elapsed), err);
}

static const char *format_word(int f)
{
    return f == ADD_FMT_TSV       ? "tsv"
           : f == ADD_FMT_CSV     ? "csv"
           : f == ADD_FMT_JSONL   ? "jsonl"
           : f == ADD_FMT_PARQUET ? "parquet"
                                  : "auto";
}

/* The run's params: the options, and the inputs as given. */
static char *params_json(const add_opts *o, char *const *paths, int npaths, const char *dir,
                         const char *list)
{
    json_t *j = json_object(), *in = json_array(), *keep = json_array();
    if (j == NULL || in == NULL || keep == NULL) {
        json_decref(j);
        json_decref(in);
        json_decref(keep);
        return NULL;
    }
    json_object_set_new(j, "format", json_string(format_word(o->format)));
    json_object_set_new(j, "url_col", json_string(o->url_col ? o->url_col : "url"));
    json_object_set_new(j, "text_col", json_string(o->text_col ? o->text_col : "caption"));
    for (int i = 0; i < o->nkeep; i++)
        json_array_append_new(keep, json_string(o->keep_cols[i]));
    json_object_set_new(j, "keep_cols", keep);
    json_object_set_new(j, "batch",
                        json_integer(o->batch_rows > 0 ? o->batch_rows : ADD_BATCH_ROWS));
    if (!wp_part_all(&o->part)) {
        char part[32];
        snprintf(part, sizeof part, "%d/%d", o->part.i, o->part.n);
        json_object_set_new(j, "part", json_string(part));
        json_object_set_new(j, "part_by", json_string(o->part_by_host ? "host" : "records"));
    }
    if (o->keep_going)
        json_object_set_new(j, "continue", json_true());
    if (dir != NULL)
        json_object_set_new(j, "files", json_string(dir));
    if (list != NULL)
        json_object_set_new(j, "files_list", json_string(list));
    for (int i = 0; i < npaths; i++)
        json_array_append_new(in, json_string(paths[i]));
    json_object_set_new(j, "inputs", in);
    return dump(j);
}

/* Begins the add run with these params. */
static int begin(cat *c, char *pjs, cat_run **run, wp_err *err)
{
    int rc;
    if (pjs == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    rc = cat_run_begin(c, "add", pjs, run, err);
    free(pjs);
    return rc;
}

/* 1 when path should be read as Parquet: --format parquet, or its magic
 * when the format is left to the content. */
static int is_parquet(const char *path, const add_opts *o)
{
    unsigned char head[4];
    FILE *f;
    size_t n;
    if (o->format == ADD_FMT_PARQUET)
        return 1;
    if (o->format != ADD_FMT_AUTO || strcmp(path, "-") == 0)
        return 0;
    if ((f = fopen(path, "rb")) == NULL)
        return 0;
    n = fread(head, 1, sizeof head, f);
    fclose(f);
    return pq_magic(head, n);
}

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* The inputs with globs expanded (an argument that names an existing file
 * is taken as it is). A glob matching nothing is reported and counted as
 * a failed input. Returns 0 or WP_ENOMEM; *out holds malloc'ed copies. */
static int expand(char *const *paths, int npaths, const wp_reporter *rep, add_stats *st,
                  char ***out, int *nout, wp_err *err)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (int i = 0; i < npaths && rc == 0; i++) {
        glob_t g;
        size_t k;
        int use_glob = has_wildcard(paths[i]) && !wp_file_exists(paths[i]);
        memset(&g, 0, sizeof g);
        if (use_glob) {
            int grc = glob(paths[i], GLOB_ERR, NULL, &g);
            if (grc == GLOB_NOSPACE) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                break;
            }
            if (grc != 0 || g.gl_pathc == 0) {
                wp_report_event(rep, WP_LOG_ERROR, "error", "%s: no file matches", paths[i]);
                st->files_failed++;
                globfree(&g);
                continue;
            }
        }
        k = use_glob ? g.gl_pathc : 1;
        for (size_t j = 0; j < k && rc == 0; j++) {
            if (n == cap) {
                size_t nc = cap ? 2 * cap : 16;
                char **nv = realloc(v, nc * sizeof *nv);
                if (nv == NULL) {
                    rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                    break;
                }
                v = nv;
                cap = nc;
            }
            if ((v[n] = strdup(use_glob ? g.gl_pathv[j] : paths[i])) == NULL)
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            else
                n++;
        }
        if (use_glob)
            globfree(&g);
    }
    *out = v;
    *nout = (int)n;
    return rc;
}

int add_run_lists(cat *c, char *const *paths, int npaths, const add_opts *o, const wp_reporter *rep,
                  add_stats *st, wp_err *err)
{
    cat_run *run = NULL;
    double t0 = wp_now();
    char **in = NULL, **pq = NULL;
    int nin = 0, npq = 0, ntext = 0, by_file = 0;
    char *cj;
    int rc = 0;
    add_opts lo = *o;

    memset(st, 0, sizeof *st);
    if ((rc = begin(c, params_json(o, paths, npaths, NULL, NULL), &run, err)) != 0)
        return rc;
    if ((rc = expand(paths, npaths, rep, st, &in, &nin, err)) != 0)
        goto end;
    if ((pq = calloc((size_t)nin + 1, sizeof *pq)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto end;
    }
    for (int i = 0; i < nin; i++)
        if (is_parquet(in[i], o))
            pq[npq++] = in[i];
    /* --part on text lists: whole files when there are at least N of them,
     * else every N-th record (or, --part-by host, the part's hosts); the
     * Parquet files split by row group (add_parquet) */
    by_file = !wp_part_all(&o->part) && nin - npq >= o->part.n && !o->part_by_host;
    lo.records = by_file || wp_part_all(&o->part) ? WP_PART_ALL : o->part;
    /* Text lists one after the other, then the Parquet files in parallel. */
    for (int i = 0; i < nin; i++) {
        wp_err fe = {0};
        int k;
        if (is_parquet(in[i], o))
            continue;
        if (by_file && !wp_part_has(&o->part, (uint64_t)ntext++))
            continue; /* another part's file */
        k = add_list(c, in[i], &lo, run, rep, st, &fe);
        if (k == 0)
            continue;
        if (k == WP_ESTOP || k == CAT_ESQL || k == WP_ENOMEM) {
            if (err != NULL)
                *err = fe;
            rc = k;
            break;
        }
        /* This file could not be (fully) read; the others still are. */
        wp_report_event(rep, WP_LOG_ERROR, "error", "%s", fe.msg);
    }
    if (rc == 0 && npq > 0) {
        rc = add_parquet(c, pq, npq, o, run, rep, st, err);
        if (rc == ADD_EINPUT)
            rc = 0; /* each file was reported; counted below with the others */
    }
    if (rc == 0 && st->files_failed > 0)
        rc = wp_err_set(err, ADD_EINPUT, "%llu of %d input files could not be read to their end",
                        (unsigned long long)st->files_failed, nin);
end:
    cj = add_list_counts(st, wp_now() - t0);
    rc = cat_run_end(run, rc, cj, err);
    free(cj);
    for (int i = 0; i < nin; i++)
        free(in[i]);
    free(in);
    free(pq);
    return rc;
}

int add_run_files(cat *c, st_store *s, const char *dir, const char *list, const wp_reporter *rep,
                  add_files_stats *st, wp_err *err)
{
    add_opts o;
    cat_run *run = NULL;
    double t0 = wp_now();
    char *cj;
    int rc;

    memset(st, 0, sizeof *st);
    if ((dir == NULL) == (list == NULL))
        return wp_err_set(err, WP_EINVAL, "add: give a folder or a list of files, not both");
    add_opts_init(&o);
    if ((rc = begin(c, params_json(&o, NULL, 0, dir, list), &run, err)) != 0)
        return rc;
    if (dir != NULL)
        rc = add_files_dir(c, s, dir, run, rep, st, err);
    else
        rc = add_files_list(c, s, list, run, rep, st, err);
    cj = add_files_counts(st, wp_now() - t0);
    rc = cat_run_end(run, rc, cj, err);
    free(cj);
    return rc;
}
