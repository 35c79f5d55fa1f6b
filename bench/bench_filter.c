/*
 * bench/bench_filter.c: the filter stage's speed against its anchors, in
 * one run: the text + image rules and the CLIP-score threshold as catalog
 * scans (anchor: 1M pairs/s per core), beside SQLite running the
 * equivalent SELECT in-process and the sqlite3 shell running it (the
 * floor: no filter can scan the catalog faster than SQLite reads it); the
 * recording run (decisions written, one transaction per batch); and CLD2
 * (anchor: 50k captions/s per core) on the real alt texts of
 * bench/data/alt_texts.txt.
 *
 * The catalog is synthetic: N pairs (1M; WITPIPE_BENCH_QUICK=1: 100k) with
 * captions drawn from the alt texts, boilerplate and short captions mixed
 * in, image sizes and bytes, and a CLIP score per pair; it is generated
 * with SQL straight into the tables (the bench is not library code).
 * Figures are the best of 3 runs, as pairs per CPU second of this process
 * (one thread), with the wall-clock rate beside them.
 */
#include "catalog/catalog.h"
#include "filter/filter.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char **lines;
static size_t nlines;

static void load_texts(void)
{
    size_t len;
    char *s = tl_slurp("bench/data/alt_texts.txt", &len), *p;
    if (s == NULL) {
        /* run from elsewhere: BUILD/bench/bench_filter -> BUILD/../bench/data */
        char exe[4096], path[4200];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            for (int up = 0; up < 3; up++) {
                char *slash = strrchr(exe, '/');
                if (slash != NULL)
                    *slash = '\0';
            }
            snprintf(path, sizeof path, "%s/bench/data/alt_texts.txt", exe);
            s = tl_slurp(path, &len);
        }
    }
    if (s == NULL) {
        fprintf(stderr, "bench_filter: run from the repository root (bench/data/alt_texts.txt)\n");
        exit(1);
    }
    lines = calloc(len + 1, sizeof *lines);
    for (p = strtok(s, "\n"); p != NULL; p = strtok(NULL, "\n"))
        lines[nlines++] = p;
}

static void text_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char *const extra[] = {"IMG_1234.JPG", "logo", "click to enlarge",
                                        "buy buy buy",  "cat",  "https://example.com/x.jpg"};
    int64_t i = sqlite3_value_int64(argv[0]);
    (void)argc;
    if (i % 10 == 0) /* one pair in ten: boilerplate or a word */
        sqlite3_result_text(ctx, extra[(i / 10) % 6], -1, SQLITE_STATIC);
    else
        sqlite3_result_text(ctx, lines[(uint64_t)(i * 2654435761u) % nlines], -1, SQLITE_STATIC);
}

static void make_catalog(const char *dir, int64_t n)
{
    char path[4200], sql[2048];
    cat *c = NULL;
    sqlite3 *db;
    wp_err err = {0};
    if (cat_open(dir, CAT_CREATE, &c, &err) != 0) {
        fprintf(stderr, "bench_filter: %s\n", err.msg);
        exit(1);
    }
    cat_close(c);
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        exit(1);
    sqlite3_create_function(db, "bench_text", 1, SQLITE_UTF8, NULL, text_fn, NULL, NULL);
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN;"
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %lld) "
             "INSERT INTO images(id, url, state, format, orig_format, orig_width, orig_height, "
             "  orig_bytes, width, height, bytes) "
             "SELECT i, 'http://example.com/' || i || '.jpg', 'ok', 'jpeg', 'jpeg', "
             "  100 + (i * 7919) %% 900, 100 + (i * 104729) %% 900, 1000 + (i * 31) %% 100000, "
             "  256, 256, 1000 + (i * 31) %% 20000 FROM k;"
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %lld) "
             "INSERT INTO pairs(id, uid, image_id, text, added_at) "
             "SELECT i, printf('%%032x', i), i, bench_text(i), 0 FROM k;"
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %lld) "
             "INSERT INTO embeddings(pair_id, model, shard, row, clip_score) "
             "SELECT i, 'b32', i / 10000, i %% 10000, ((i * 48271) %% 2147483647) %% 10000 "
             "  / 20000.0 FROM k;"
             "COMMIT; PRAGMA wal_checkpoint(TRUNCATE);",
             (long long)n, (long long)n, (long long)n);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_filter: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_close(db);
}

typedef struct fig {
    double cpu_rate, wall_rate;
} fig;

static fig best3(double (*fn)(void *, double *), void *ud, int64_t n)
{
    fig f = {0, 0};
    for (int r = 0; r < 3; r++) {
        double w, c = fn(ud, &w);
        if (n / c > f.cpu_rate)
            f.cpu_rate = (double)n / c;
        if (n / w > f.wall_rate)
            f.wall_rate = (double)n / w;
    }
    return f;
}

typedef struct frun {
    const char *dir;
    flt_rules *r;
    int dry;
} frun;

static double do_filter(void *ud, double *wall)
{
    frun *x = ud;
    cat *c = NULL;
    wp_err err = {0};
    flt_opts o = {0};
    flt_report rep;
    wp_buf pj = {0};
    double c0, w0;
    if (cat_open(x->dir, 0, &c, &err) != 0 || flt_prepare(c, x->r, &err) != 0 ||
        flt_rules_json(x->r, &pj) != 0) {
        fprintf(stderr, "bench_filter: %s\n", err.msg);
        exit(1);
    }
    o.rules = x->r;
    o.dry_run = x->dry;
    o.no_lang_detect = 1;
    o.params_json = pj.data;
    c0 = cpu();
    w0 = wp_now();
    if (flt_run(c, &o, NULL, &rep, &err) != 0) {
        fprintf(stderr, "bench_filter: %s\n", err.msg);
        exit(1);
    }
    *wall = wp_now() - w0;
    c0 = cpu() - c0;
    wp_buf_free(&pj);
    cat_close(c);
    return c0;
}

typedef struct qrun {
    const char *dir, *sql;
} qrun;

static double do_select(void *ud, double *wall)
{
    qrun *q = ud;
    char path[4200];
    sqlite3 *db;
    sqlite3_stmt *s;
    double c0 = cpu(), w0 = wp_now();
    int64_t sum = 0;
    snprintf(path, sizeof path, "%s/catalog.db", q->dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, q->sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_filter: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_exec(db, "PRAGMA cache_size=-65536", NULL, NULL, NULL);
    /* every column read, as the filter reads them */
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(s); i++) {
            switch (sqlite3_column_type(s, i)) {
            case SQLITE_INTEGER:
                sum += sqlite3_column_int64(s, i);
                break;
            case SQLITE_FLOAT:
                sum += (int64_t)sqlite3_column_double(s, i);
                break;
            case SQLITE_TEXT:
                sum += sqlite3_column_bytes(s, i);
                break;
            default:
                break;
            }
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    *wall = wp_now() - w0;
    (void)sum;
    return cpu() - c0;
}

/* The sqlite3 shell on the same SELECT: wall clock only (its own CPU time
 * is not this process's). */
static double shell_rate(const char *dir, const char *sql, int64_t n)
{
    char cmd[8192];
    double best = 0;
    snprintf(cmd, sizeof cmd, "sqlite3 -readonly '%s/catalog.db' \"%s\" > /dev/null 2>&1", dir,
             sql);
    if (system("command -v sqlite3 > /dev/null 2>&1") != 0)
        return 0;
    for (int r = 0; r < 3; r++) {
        double w0 = wp_now();
        if (system(cmd) != 0)
            return 0;
        double rate = (double)n / (wp_now() - w0);
        best = rate > best ? rate : best;
    }
    return best;
}

static void print_row(const char *name, fig f, double anchor, const char *anchor_name)
{
    printf("  %-44s %10.0f pairs/s/CPU-s %10.0f pairs/s wall", name, f.cpu_rate, f.wall_rate);
    if (anchor > 0)
        printf("   %s %.0f: %s", anchor_name, anchor, f.cpu_rate >= anchor ? "met" : "NOT met");
    printf("\n");
}

int main(void)
{
    int quick = getenv("WITPIPE_BENCH_QUICK") != NULL;
    int64_t n = quick ? 100000 : 1000000;
    char *tmp = tl_mkdtemp(), dir[4200];
    flt_rules text_img, clip, all;
    frun fr;
    qrun q;
    fig f;
    double floor_rate;
    wp_err err = {0};

    /* the text + image rules, in SQL where SQL can say them (the floor) */
    static const char sel_rules[] =
        "SELECT count(*) FROM pairs p JOIN images i ON i.id = p.image_id "
        "WHERE length(trim(p.text)) < 6 OR length(p.text) > 1000 "
        "OR length(trim(p.text)) - length(replace(trim(p.text), ' ', '')) + 1 < 3 "
        "OR lower(p.text) IN ('logo', 'image', 'click to enlarge') "
        "OR min(i.orig_width, i.orig_height) < 200 "
        "OR max(i.orig_width, i.orig_height) > 3.0 * min(i.orig_width, i.orig_height) "
        "OR i.orig_bytes < 5000 OR i.orig_width * i.orig_height < 40000";
    static const char sel_clip[] = "SELECT count(*) FROM pairs p LEFT JOIN embeddings e "
                                   "ON e.pair_id = p.id AND e.model = 'b32' "
                                   "WHERE e.clip_score IS NULL OR e.clip_score < 0.28";
    static const char sel_clip_cols[] =
        "SELECT p.id, p.image_id, i.orig_width, i.orig_height, i.orig_bytes, i.bytes, "
        "e.clip_score FROM pairs p JOIN images i ON i.id = p.image_id "
        "LEFT JOIN embeddings e ON e.pair_id = p.id AND e.model = 'b32'";
    static const char sel_cols[] =
        "SELECT p.id, p.image_id, p.text, i.orig_width, i.orig_height, i.orig_bytes, i.bytes, "
        "e.clip_score FROM pairs p JOIN images i ON i.id = p.image_id "
        "LEFT JOIN embeddings e ON e.pair_id = p.id AND e.model = 'b32'";

    load_texts();
    snprintf(dir, sizeof dir, "%s/c", tmp);
    printf("filter bench: %lld synthetic pairs (captions from bench/data/alt_texts.txt), "
           "best of 3, one thread\n",
           (long long)n);
    fflush(stdout);
    make_catalog(dir, n);

    flt_rules_init(&text_img);
    text_img.min_chars = 6;
    text_img.max_chars = 1000;
    text_img.min_words = 3;
    text_img.max_repeat = 2;
    text_img.boilerplate = 1;
    text_img.min_side = 200;
    text_img.max_aspect = 3;
    text_img.min_bytes = 5000;
    text_img.min_pixels = 40000;
    flt_rules_init(&clip);
    clip.min_clip_score = 0.28;
    all = text_img;
    all.min_clip_score = 0.28;

    q.dir = dir;
    q.sql = sel_rules;
    f = best3(do_select, &q, n);
    floor_rate = f.cpu_rate;
    print_row("floor: SQLite, text+image rules as a SELECT", f, 0, "");
    printf("  %-44s %10s %25.0f pairs/s wall\n", "floor: sqlite3 shell, the same SELECT", "",
           shell_rate(dir, sel_rules, n));
    q.sql = sel_cols;
    print_row("floor: SQLite, reading the filter's columns", best3(do_select, &q, n), 0, "");
    fr.dir = dir;
    fr.dry = 1;
    fr.r = &text_img;
    f = best3(do_filter, &fr, n);
    print_row("filter --dry-run, 9 text+image rules", f, 1e6, "anchor");
    printf("  %-44s %9.2fx the SELECT floor\n", "", f.cpu_rate / floor_rate);
    q.sql = sel_clip;
    print_row("floor: SQLite, CLIP threshold as a SELECT", best3(do_select, &q, n), 0, "");
    printf("  %-44s %10s %25.0f pairs/s wall\n", "floor: sqlite3 shell, the same SELECT", "",
           shell_rate(dir, sel_clip, n));
    q.sql = sel_clip_cols;
    print_row("floor: SQLite, reading the CLIP rule's columns", best3(do_select, &q, n), 0, "");
    fr.r = &clip;
    print_row("filter --dry-run --min-clip-score 0.28", best3(do_filter, &fr, n), 1e6, "anchor");
    clip.min_clip_score = NAN;
    clip.clip_top_pct = 30;
    print_row("filter --dry-run --clip-top 30%", best3(do_filter, &fr, n), 1e6, "anchor");
    fr.dry = 0;
    fr.r = &all;
    print_row("filter (recording decisions), all of them", best3(do_filter, &fr, n), 0, "");

    /* CLD2 on real captions */
    {
        double best = 0;
        int64_t k = 0;
        flt_lang l;
        for (int r = 0; r < 3; r++) {
            double c0 = cpu();
            int reps = quick ? 20 : 200;
            for (int j = 0; j < reps; j++)
                for (size_t i = 0; i < nlines; i++) {
                    flt_lang_detect(lines[i], strlen(lines[i]), &l);
                    k += l.conf > 0.5;
                }
            double rate = (double)reps * (double)nlines / (cpu() - c0);
            best = rate > best ? rate : best;
        }
        printf("  %-44s %10.0f captions/s/CPU-s%26s anchor 50000: %s\n",
               "CLD2 language detection (flt_lang_detect)", best, "",
               best >= 50000 ? "met" : "NOT met");
        (void)k;
    }
    tl_rmtree(tmp);
    (void)err;
    return 0;
}
