/*
 * bench/bench_parquet.c: Parquet decoding speed (parquet/), beside the
 * issue's anchor of 100 MB/s of uncompressed column data per core.
 *
 * Generates a 1M-row LAION-style file with our writer (url unique, caption
 * drawn from 20 000 distinct captions so it is dictionary encoded, width,
 * height, similarity; snappy, row groups of 65 536 rows), then reads it on
 * one thread: every row group decoded and every row walked with
 * pq_next_row. MB/s = the pages' uncompressed bytes (values + levels, as
 * the page headers state them) / CPU seconds of the reading thread, best of
 * 3. Also printed: writing speed, the reader's peak RSS (bounded by a row
 * group, not by the file), and `witpipe add` (WITPIPE_BIN) of the file
 * into a new catalog beside `add` of the same rows as TSV, the floor the
 * issue names (the catalog insert): CPU seconds (user + system of the
 * child; the lower of two runs each, alternating) and its run's wall seconds, and the pairs each
 * stored (which must be equal). Parquet add must not be slower than TSV add. WITPIPE_BENCH_QUICK=1:
 * 100 000 rows.
 */
#include "bench/bench_clock.h"
#include "common/wp.h"
#include "parquet/parquet.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ANCHOR_MBS 100.0

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *const words[] = {
    "photo", "of",     "a",     "cat",   "dog",    "on",     "the",   "beach", "sunset",
    "red",   "car",    "house", "in",    "winter", "vector", "logo",  "stock", "image",
    "woman", "man",    "with",  "green", "tree",   "city",   "night", "blue",  "sky",
    "old",   "wooden", "table", "cup",   "coffee", "art",    "print", "poster"};

static void caption(uint32_t k, char *out, size_t cap)
{
    size_t n = 0;
    uint32_t h = k * 2654435761u + 12345;
    int nw = 4 + (int)(h % 9);
    for (int i = 0; i < nw && n + 16 < cap; i++) {
        h = h * 1103515245u + 12345;
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "",
                              words[(h >> 8) % (sizeof words / sizeof words[0])]);
    }
    snprintf(out + n, cap - n, " %u", k);
}

static double children_cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_CHILDREN, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
           (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

static long long count_pairs(const char *corpus)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long long n = -1;
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM pairs", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* `witpipe add INPUT` (kept columns width, height, similarity) into a new
 * catalog DIR/NAME: 0 with its wall and CPU seconds and the pairs stored. */
static int time_add(const char *bin, const char *dir, const char *name, const char *input,
                    double *wall, double *cpu, long long *pairs)
{
    char cmd[1200], corpus[300];
    snprintf(corpus, sizeof corpus, "%s/%s", dir, name);
    snprintf(cmd, sizeof cmd, "rm -rf %s && %s -q init %s >/dev/null", corpus, bin, corpus);
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "%s -q -C %s add --keep-cols width,height,similarity %s >/dev/null 2>&1", bin, corpus,
             input);
    double c0 = children_cpu(), a = now();
    if (system(cmd) != 0) {
        printf("  (failed: %s)\n", cmd);
        return -1;
    }
    *wall = now() - a;
    *cpu = children_cpu() - c0;
    *pairs = count_pairs(corpus);
    return 0;
}

int main(void)
{
    long rows = getenv("WITPIPE_BENCH_QUICK") ? 100000 : 1000000;
    char dir[] = "/tmp/bench_parquet.XXXXXX";
    char path[256];
    char cpu[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                snprintf(cpu, sizeof cpu, "%s", c ? c + 2 : line);
                cpu[strcspn(cpu, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    time_t t = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/laion.parquet", dir);

    pq_column cols[5] = {{"url", PQ_STRING, 0},
                         {"caption", PQ_STRING, 1},
                         {"width", PQ_INT64, 1},
                         {"height", PQ_INT64, 1},
                         {"similarity", PQ_DOUBLE, 0}};
    char tsv[300];
    snprintf(tsv, sizeof tsv, "%s/laion.tsv", dir);
    FILE *tf = fopen(tsv, "w");
    if (tf == NULL)
        return 1;
    fprintf(tf, "url\tcaption\twidth\theight\tsimilarity\n");
    pq_write_opts o = {.codec = PQ_SNAPPY, .row_group_rows = 65536};
    pq_writer *w = NULL;
    wp_err err = {0};
    double t0 = now();
    if (pq_writer_open(path, cols, 5, &o, &w, &err) != 0) {
        fprintf(stderr, "bench_parquet: %s\n", err.msg);
        return 1;
    }
    for (long i = 0; i < rows; i++) {
        char url[128], cap[160];
        uint32_t h = (uint32_t)i * 2246822519u;
        snprintf(url, sizeof url, "https://cdn%u.example.com/images/%08x/%ld.jpg", h % 50, h, i);
        caption(h % 20000, cap, sizeof cap);
        pq_value v[5] = {
            {.type = PQ_STRING, .s = url, .len = strlen(url)},
            {.type = i % 50 == 0 ? PQ_NULL : PQ_STRING, .s = cap, .len = strlen(cap)},
            {.type = PQ_INT64, .i = 200 + (int64_t)(h % 1800)},
            {.type = i % 97 == 0 ? PQ_NULL : PQ_INT64, .i = 150 + (int64_t)(h % 1500)},
            {.type = PQ_DOUBLE, .d = 0.28 + (double)(h % 10000) / 50000.0},
        };
        fprintf(tf, "%s\t%s\t%lld\t%lld\t%.17g\n", url, v[1].type == PQ_NULL ? "" : cap,
                (long long)v[2].i, (long long)v[3].i, v[4].d);
        if (pq_writer_append(w, v, &err) != 0) {
            fprintf(stderr, "bench_parquet: %s\n", err.msg);
            return 1;
        }
    }
    if (pq_writer_close(w, &err) != 0) {
        fprintf(stderr, "bench_parquet: %s\n", err.msg);
        return 1;
    }
    double wsec = now() - t0;
    fclose(tf);
    struct stat st;
    stat(path, &st);

    double best = 0, best_logical = 0;
    uint64_t bytes = 0, nrows = 0;
    for (int run = 0; run < 3; run++) {
        pq_reader *r = NULL;
        if (pq_open(path, NULL, &r, &err) != 0) {
            fprintf(stderr, "bench_parquet: %s\n", err.msg);
            return 1;
        }
        pq_value v[5];
        uint64_t b = 0, n = 0, sum = 0, lb = 0;
        double c0 = thread_cpu();
        for (int g = 0; g < pq_num_row_groups(r); g++) {
            if (pq_read_row_group(r, g, &err) < 0) {
                fprintf(stderr, "bench_parquet: %s\n", err.msg);
                return 1;
            }
            b += pq_decoded_bytes(r);
            while (pq_next_row(r, v)) {
                n++;
                sum += v[0].len + v[1].len + (uint64_t)v[2].i;
                lb += v[0].len + v[1].len + 24;
            }
        }
        double c = thread_cpu() - c0;
        pq_close(r);
        if (n != (uint64_t)rows || sum == 0) {
            fprintf(stderr, "bench_parquet: read %llu rows of %ld\n", (unsigned long long)n, rows);
            return 1;
        }
        double mbs = (double)b / 1e6 / c;
        if (mbs > best) {
            best = mbs;
            best_logical = (double)lb / 1e6 / c;
        }
        bytes = b;
        nrows = n;
    }
    printf("parquet bench on %s, %s (shared machine: wall times noisy, rate uses thread CPU "
           "time)\n",
           cpu, date);
    printf("  file: %ld rows, %.1f MB snappy, %.1f MB uncompressed column data; written in "
           "%.2f s (%.0f rows/s, fsync included)\n",
           rows, (double)st.st_size / 1e6, (double)bytes / 1e6, wsec, (double)rows / wsec);
    printf("  decode, 1 thread: %.0f MB/s of uncompressed column data per core (anchor: >= "
           "%.0f MB/s) %s; %llu rows\n",
           best, ANCHOR_MBS, best >= ANCHOR_MBS ? "OK" : "BELOW ANCHOR", (unsigned long long)nrows);
    printf("  the same as values handed out (string bytes + 8 per number): %.0f MB/s\n",
           best_logical);
    printf("  peak RSS of this process: %zu MB (a row group at a time)\n", wp_peak_rss_kb() / 1024);
    /* `witpipe add` of the Parquet file beside the same rows as TSV (the
     * floor: the catalog insert), when the binary is there. */
    const char *bin = getenv("WITPIPE_BIN");
    double tw = 0, tc = 0, pw = 0, pc = 0;
    long long tn = -1, pn = -1;
    int add_ok = 1;
    int measured = bin != NULL && access(bin, X_OK) == 0;
    /* two runs each, alternating; the lower CPU time of each kept */
    for (int run = 0; run < 2 && measured; run++) {
        double w1, c1, w2, c2;
        if (time_add(bin, dir, "tsv", tsv, &w1, &c1, &tn) != 0 ||
            time_add(bin, dir, "pq", path, &w2, &c2, &pn) != 0) {
            measured = 0;
            break;
        }
        if (run == 0 || c1 < tc) {
            tc = c1;
            tw = w1;
        }
        if (run == 0 || c2 < pc) {
            pc = c2;
            pw = w2;
        }
    }
    if (measured) {
        printf("  witpipe add, TSV (the floor): %.2f s CPU, %.2f s wall, %lld pairs\n", tc, tw, tn);
        printf("  witpipe add, Parquet:         %.2f s CPU, %.2f s wall, %lld pairs (%.2fx the "
               "TSV CPU time; target <= 1) %s\n",
               pc, pw, pn, tc > 0 ? pc / tc : 0.0,
               pn == tn && pc <= tc ? "OK"
               : pn != tn           ? "PAIRS DIFFER"
                                    : "SLOWER THAN TSV");
        printf("  Parquet decoding of all the rows alone: %.2f s CPU\n",
               (double)bytes / 1e6 / best);
        add_ok = pn == tn && pc <= tc;
    } else {
        printf("  (no WITPIPE_BIN, or an add failed: add not measured)\n");
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        unlink(path);
    return best >= ANCHOR_MBS && add_ok ? 0 : 1;
}
