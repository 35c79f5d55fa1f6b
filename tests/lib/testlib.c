/*
 * tests/lib/testlib.c: shared test helpers (see testlib.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "common/wp.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tl_shared_dir(const char *what)
{
    static char dir[4096];
    const char *env = getenv("WITPIPE_SHARED");
    struct stat st;

    snprintf(dir, sizeof dir, "%s", env && *env ? env : "../shared");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stdout,
                "SKIP: !!! reference data missing at %s: %s not tested (set WITPIPE_SHARED) !!!\n",
                dir, what ? what : "golden data");
        return NULL;
    }
    return dir;
}

const char *tl_shared_path(const char *rel)
{
    static char path[4096];
    const char *d = tl_shared_dir(rel);
    if (d == NULL)
        return NULL;
    snprintf(path, sizeof path, "%s/%s", d, rel);
    return path;
}

char *tl_mkdtemp(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/witpipe-t.XXXXXX");
    return mkdtemp(dir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int tl_rmtree(const char *dir)
{
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tl_scratch_corpus(char *path, size_t n)
{
    snprintf(path, n, "%s/c", tl_mkdtemp());
}

void tl_scratch_corpus_rm(const char *path)
{
    char dir[4096];
    char *slash;
    snprintf(dir, sizeof dir, "%s", path);
    if ((slash = strrchr(dir, '/')) != NULL) {
        *slash = '\0';
        tl_rmtree(dir);
    }
}

char *tl_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (buf == NULL)
        goto out;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
out:
    fclose(f);
    return buf;
}

static int byte_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t l = strlen(s), k = strlen(suffix);
    return l >= k && strcmp(s + l - k, suffix) == 0;
}

int tl_list_sorted(const char *dir, const char *suffix, char ***names)
{
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    DIR *d = opendir(dir);

    *names = NULL;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (suffix != NULL && !ends_with(e->d_name, suffix)))
            continue;
        if (n == cap) {
            char **nv = realloc(v, (size_t)(cap ? cap * 2 : 64) * sizeof *v);
            if (nv == NULL)
                goto nomem;
            v = nv;
            cap = cap ? cap * 2 : 64;
        }
        if ((v[n] = strdup(e->d_name)) == NULL)
            goto nomem;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(v, (size_t)n, sizeof *v, byte_order);
    *names = v;
    return n;
nomem:
    closedir(d);
    tl_free_names(v, n);
    return -1;
}

int tl_replay_dir(const char *dir, const char *suffix, tl_check_fn check, void *ud,
                  const char *header)
{
    char **files;
    int total = 0;
    int n = tl_list_sorted(dir, suffix, &files);
    if (n < 0)
        fail_msg("%s: out of memory listing it", dir);
    for (int i = 0; i < n; i++) {
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        char *data = tl_slurp(path, &len);
        if (data == NULL)
            fail_msg("%s: unreadable", path);
        int line = check((const uint8_t *)data, len, ud);
        free(data);
        if (line > 0)
            fail_msg("%s: check at %s:%d failed", path, header, line);
        total += line == 0;
    }
    tl_free_names(files, n);
    return total;
}

int tl_replay_corpus(const char *name, tl_check_fn check, void *ud, const char *header)
{
    char dir[1024];
    int n;
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    n = tl_replay_dir(dir, NULL, check, ud, header);
    snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", name);
    return n + tl_replay_dir(dir, NULL, check, ud, header);
}

void tl_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int64_t tl_q_int(const char *corpus, const char *sql)
{
    return tl_q_int_with(corpus, NULL, sql);
}

int64_t tl_q_int_with(const char *corpus, const char *other, const char *sql)
{
    char path[1024], att[1100];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    if (other != NULL) {
        snprintf(att, sizeof att, "ATTACH '%s/catalog.db' AS b", other);
        if (sqlite3_exec(db, att, NULL, NULL, NULL) != SQLITE_OK)
            fail_msg("%s: %s", att, sqlite3_errmsg(db));
    }
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

int tl_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int tl_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    if (fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

const char *tl_witpipe_bin(void)
{
    const char *b = getenv("WITPIPE_BIN");
    return b && *b ? b : "build/witpipe";
}

double tl_gauss(uint64_t *s)
{
    double u = ((double)(wp_splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(wp_splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}
