/*
 * emb/emb.c: writing a shard of embeddings, and reading a model's folder of
 * them through mmap (see emb.h for the layout).
 *
 * The reader maps each .npy file read-only and keeps, per shard, the row
 * offset in the whole set; metadata lines are parsed once at open into a
 * row -> (pair id, uid) table and a pair id -> row index sorted for binary
 * search. Nothing is copied from the arrays until emb_read converts the
 * rows asked for (float16 through wp_f16_convert).
 */
#include "emb/emb.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EMB_META_MAX ((size_t)1 << 30) /* largest metadata file read */

/* ---- naming ------------------------------------------------------------ */

void emb_model_name(const char *model_dir, const char *given, char *out, size_t cap)
{
    if (cap == 0)
        return;
    if (given != NULL && given[0] != '\0') {
        snprintf(out, cap, "%s", given);
    } else {
        char tmp[WP_PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", model_dir ? model_dir : "");
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/')
            tmp[--n] = '\0';
        char *base = strrchr(tmp, '/');
        base = base ? base + 1 : tmp;
        if (strcmp(base, "model") == 0 && base > tmp + 1) {
            base[-1] = '\0';
            char *p = strrchr(tmp, '/');
            base = p ? p + 1 : tmp;
        }
        snprintf(out, cap, "%s", base[0] ? base : "model");
    }
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              (*p == '.' && p != out) || *p == '_' || *p == '-'))
            *p = '_';
}

/* ---- writing ----------------------------------------------------------- */

static int write_npy(const char *path, const uint16_t *data, int rows, int dim, wp_err *err)
{
    wp_buf b = {0};
    int rc;

    if (emb_npy_header(&b, rows, dim, 1) != 0 ||
        wp_buf_append(&b, data, (size_t)rows * dim * sizeof *data) != 0) {
        wp_buf_free(&b);
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
    }
    rc = wp_write_file_atomic(path, b.data, b.len, err);
    wp_buf_free(&b);
    return rc;
}

int emb_write_shard(const char *dir, int64_t no, int rows, int dim, const uint16_t *img,
                    const uint16_t *txt, const emb_row *meta, wp_err *err)
{
    static const char *const subdirs[] = {"img_emb", "text_emb", "metadata"};
    char path[WP_PATH_MAX], name[64];
    wp_buf m = {0};
    int rc;

    if (rows < 0 || dim < 1 || dim > EMB_DIM_MAX || no < 0)
        return wp_err_set(err, WP_EINVAL, "emb_write_shard: %d rows of %d values, shard %lld", rows,
                          dim, (long long)no);
    for (int i = 0; i < 3; i++)
        if ((rc = wp_path_join(path, dir, subdirs[i], err)) != 0 ||
            (rc = wp_mkdir_p(path, err)) != 0)
            return rc;
    snprintf(name, sizeof name, "img_emb/img_emb_%lld.npy", (long long)no);
    if ((rc = wp_path_join(path, dir, name, err)) != 0 ||
        (rc = write_npy(path, img, rows, dim, err)) != 0)
        return rc;
    if (txt != NULL) {
        snprintf(name, sizeof name, "text_emb/text_emb_%lld.npy", (long long)no);
        if ((rc = wp_path_join(path, dir, name, err)) != 0 ||
            (rc = write_npy(path, txt, rows, dim, err)) != 0)
            return rc;
    }
    snprintf(name, sizeof name, "metadata/metadata_%lld.jsonl", (long long)no);
    if ((rc = wp_path_join(path, dir, name, err)) != 0)
        return rc;
    for (int r = 0; r < rows; r++) {
        wp_json j;
        wp_json_init(&j, &m);
        wp_json_obj_begin(&j, NULL);
        wp_json_int(&j, "row", r);
        wp_json_int(&j, "pair_id", meta[r].pair_id);
        wp_json_str(&j, "uid", meta[r].uid);
        /* 7 digits: a float32 score, without float-to-double noise */
        wp_json_real_prec(&j, "clip_score", (double)meta[r].clip_score, 7);
        wp_json_obj_end(&j);
        if (wp_json_finish(&j) != 0 || wp_buf_putc(&m, '\n') != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
            goto out;
        }
    }
    rc = wp_write_file_atomic(path, m.data ? m.data : "", m.len, err);
out:
    wp_buf_free(&m);
    return rc;
}

/* ---- reading ----------------------------------------------------------- */

typedef struct map {
    void *base;
    size_t len;
    emb_npy h;
} map;

typedef struct shard {
    int64_t no;
    int64_t first; /* row of the set where this shard starts */
    map img, txt;  /* txt.base NULL when absent */
} shard;

typedef struct idx {
    int64_t pair_id, row;
} idx;

struct emb_set {
    shard *sh;
    int nsh;
    int dim;
    int has_text;
    int64_t rows;
    int64_t *pair; /* per row; 0 unknown */
    char (*uid)[33];
    idx *by_pair; /* sorted by pair id */
    int64_t nby;
};

static int map_npy(const char *path, map *m, wp_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = 0;

    memset(m, 0, sizeof *m);
    if (fd < 0)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = wp_err_set(err, WP_EIO, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size == 0) {
        rc = wp_err_set(err, EMB_EFORMAT, "%s: empty file", path);
        goto out;
    }
    m->len = (size_t)st.st_size;
    m->base = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) {
        m->base = NULL;
        rc = wp_err_set(err, WP_EIO, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = emb_npy_parse(m->base, m->len, &m->h, err)) != 0) {
        wp_err_prefix(err, "%s", path);
        munmap(m->base, m->len);
        m->base = NULL;
    }
out:
    close(fd);
    return rc;
}

static void unmap(map *m)
{
    if (m->base != NULL)
        munmap(m->base, m->len);
    m->base = NULL;
}

void emb_close(emb_set *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->nsh; i++) {
        unmap(&s->sh[i].img);
        unmap(&s->sh[i].txt);
    }
    free(s->sh);
    free(s->pair);
    free(s->uid);
    free(s->by_pair);
    free(s);
}

/* Shard numbers of img_emb/img_emb_N.npy, sorted. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_shards(const char *dir, int64_t **out, int *n, wp_err *err)
{
    char path[WP_PATH_MAX];
    DIR *d;
    struct dirent *e;
    int64_t *v = NULL;
    int cap = 0, rc;

    *n = 0;
    if ((rc = wp_path_join(path, dir, "img_emb", err)) != 0)
        return rc;
    if ((d = opendir(path)) == NULL)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path,
                          strerror(errno));
    while ((e = readdir(d)) != NULL) {
        long long no;
        int used = 0;
        if (sscanf(e->d_name, "img_emb_%lld.npy%n", &no, &used) != 1 || no < 0 ||
            e->d_name[used] != '\0' || used == 0)
            continue;
        if (*n == cap) {
            int nc = cap ? cap * 2 : 16;
            int64_t *nv = realloc(v, (size_t)nc * sizeof *nv);
            if (nv == NULL) {
                closedir(d);
                free(v);
                return wp_err_set(err, WP_ENOMEM, "out of memory listing %s", path);
            }
            v = nv;
            cap = nc;
        }
        v[(*n)++] = no;
    }
    closedir(d);
    if (*n == 0) {
        free(v);
        return wp_err_set(err, WP_ENOENT, "%s: no img_emb_N.npy shard", path);
    }
    qsort(v, (size_t)*n, sizeof *v, cmp_i64);
    *out = v;
    return 0;
}

/* Reads witpipe's metadata_N.jsonl for shard sh into the row tables. A
 * missing file leaves the rows unknown; a malformed one is an error. */
static int read_meta(emb_set *s, const char *dir, const shard *sh, wp_err *err)
{
    char path[WP_PATH_MAX], name[64];
    wp_buf b = {0};
    int rc;
    int64_t line = 0, nrows = sh->img.h.rows;
    const char *p, *end;

    snprintf(name, sizeof name, "metadata/metadata_%lld.jsonl", (long long)sh->no);
    if ((rc = wp_path_join(path, dir, name, err)) != 0)
        return rc;
    if (!wp_file_exists(path))
        return 0;
    if ((rc = wp_read_file(path, EMB_META_MAX, &b, err)) != 0)
        return rc;
    p = b.data ? b.data : "";
    end = p + b.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_error_t je;
        json_t *o;
        json_int_t row = -1, pid = 0;
        const char *uid = NULL;

        line++;
        if (len == 0) {
            p += 1;
            continue;
        }
        o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
        if (o == NULL ||
            json_unpack(o, "{s:I, s:I, s:s}", "row", &row, "pair_id", &pid, "uid", &uid) != 0) {
            json_decref(o);
            rc = wp_err_set(err, EMB_EFORMAT, "%s:%lld: not a metadata line (row, pair_id, uid)",
                            path, (long long)line);
            goto out;
        }
        if (row < 0 || row >= nrows || strlen(uid) != 32 || strspn(uid, "0123456789abcdef") != 32 ||
            pid < 0) {
            json_decref(o);
            rc = wp_err_set(err, EMB_EFORMAT,
                            "%s:%lld: row %lld / uid / pair id out of range for %lld rows", path,
                            (long long)line, (long long)row, (long long)nrows);
            goto out;
        }
        s->pair[sh->first + row] = pid;
        memcpy(s->uid[sh->first + row], uid, 33);
        json_decref(o);
        p += len + (nl ? 1 : 0);
    }
out:
    wp_buf_free(&b);
    return rc;
}

static int cmp_idx(const void *a, const void *b)
{
    const idx *x = a, *y = b;
    if (x->pair_id != y->pair_id)
        return x->pair_id < y->pair_id ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

int emb_open(const char *dir, emb_set **out, wp_err *err)
{
    emb_set *s = calloc(1, sizeof *s);
    int64_t *nos = NULL;
    int n = 0, rc;
    char path[WP_PATH_MAX], name[64];

    *out = NULL;
    if (s == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = list_shards(dir, &nos, &n, err)) != 0)
        goto fail;
    if ((s->sh = calloc((size_t)n, sizeof *s->sh)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto fail;
    }
    s->has_text = 1;
    for (int i = 0; i < n; i++) {
        shard *sh = &s->sh[i];
        sh->no = nos[i];
        snprintf(name, sizeof name, "img_emb/img_emb_%lld.npy", (long long)sh->no);
        if ((rc = wp_path_join(path, dir, name, err)) != 0 ||
            (rc = map_npy(path, &sh->img, err)) != 0)
            goto fail;
        s->nsh = i + 1;
        if (sh->img.h.rows > 0) {
            if (s->dim == 0)
                s->dim = sh->img.h.cols;
            if (sh->img.h.cols != s->dim) {
                rc = wp_err_set(err, EMB_EMISMATCH, "%s: rows of %d values, earlier shards %d",
                                path, sh->img.h.cols, s->dim);
                goto fail;
            }
        }
        snprintf(name, sizeof name, "text_emb/text_emb_%lld.npy", (long long)sh->no);
        if ((rc = wp_path_join(path, dir, name, err)) != 0)
            goto fail;
        rc = map_npy(path, &sh->txt, err);
        if (rc == WP_ENOENT) {
            s->has_text = 0;
            rc = 0;
        } else if (rc != 0) {
            goto fail;
        } else if (sh->txt.h.rows != sh->img.h.rows ||
                   (sh->txt.h.rows > 0 && sh->txt.h.cols != sh->img.h.cols)) {
            rc = wp_err_set(err, EMB_EMISMATCH, "%s: %lld x %d, its img_emb shard %lld x %d", path,
                            (long long)sh->txt.h.rows, sh->txt.h.cols, (long long)sh->img.h.rows,
                            sh->img.h.cols);
            goto fail;
        }
        sh->first = s->rows;
        s->rows += sh->img.h.rows;
    }
    s->pair = calloc((size_t)s->rows + 1, sizeof *s->pair);
    s->uid = calloc((size_t)s->rows + 1, sizeof *s->uid);
    if (s->pair == NULL || s->uid == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for %lld rows", (long long)s->rows);
        goto fail;
    }
    for (int i = 0; i < s->nsh; i++)
        if ((rc = read_meta(s, dir, &s->sh[i], err)) != 0)
            goto fail;
    s->by_pair = malloc(((size_t)s->rows + 1) * sizeof *s->by_pair);
    if (s->by_pair == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory for %lld rows", (long long)s->rows);
        goto fail;
    }
    for (int64_t r = 0; r < s->rows; r++)
        if (s->pair[r] > 0)
            s->by_pair[s->nby++] = (idx){s->pair[r], r};
    qsort(s->by_pair, (size_t)s->nby, sizeof *s->by_pair, cmp_idx);
    free(nos);
    *out = s;
    return 0;
fail:
    free(nos);
    emb_close(s);
    return rc;
}

int emb_dim(const emb_set *s)
{
    return s->dim;
}

int64_t emb_rows(const emb_set *s)
{
    return s->rows;
}

int emb_has_text(const emb_set *s)
{
    return s->has_text;
}

int64_t emb_pair_id(const emb_set *s, int64_t row)
{
    return row >= 0 && row < s->rows ? s->pair[row] : 0;
}

const char *emb_uid(const emb_set *s, int64_t row)
{
    return row >= 0 && row < s->rows ? s->uid[row] : "";
}

int64_t emb_find_pair(const emb_set *s, int64_t pair_id)
{
    int64_t lo = 0, hi = s->nby;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->by_pair[mid].pair_id < pair_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nby && s->by_pair[lo].pair_id == pair_id ? s->by_pair[lo].row : -1;
}

/* The shard holding row (binary search on first). */
static const shard *shard_of(const emb_set *s, int64_t row)
{
    int lo = 0, hi = s->nsh - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->sh[mid].first <= row)
            lo = mid;
        else
            hi = mid - 1;
    }
    return &s->sh[lo];
}

int emb_read(const emb_set *s, int kind, int64_t row, int64_t n, float *out, wp_err *err)
{
    if (row < 0 || n < 0 || row > s->rows - n)
        return wp_err_set(err, WP_EINVAL, "rows %lld..%lld of %lld", (long long)row,
                          (long long)(row + n), (long long)s->rows);
    if (kind == EMB_TEXT && !s->has_text)
        return wp_err_set(err, WP_EINVAL, "these embeddings have no text_emb shards");
    while (n > 0) {
        const shard *sh = shard_of(s, row);
        const map *m = kind == EMB_TEXT ? &sh->txt : &sh->img;
        int64_t in = row - sh->first, take = m->h.rows - in;
        const char *src;
        if (take > n)
            take = n;
        src = (const char *)m->base + m->h.data_offset + (size_t)in * s->dim * m->h.itemsize;
        if (m->h.itemsize == 2)
            wp_f16_convert(src, out, (size_t)take * s->dim);
        else
            memcpy(out, src, (size_t)take * s->dim * sizeof(float));
        out += (size_t)take * s->dim;
        row += take;
        n -= take;
    }
    return 0;
}

/* 1 when name is a leftover: a .tmp.PID file, or prefix_N.ext with N >= first. */
static int is_leftover(const char *name, const char *prefix, int64_t first)
{
    size_t n = strlen(prefix);
    char *end;
    long long no;

    if (strstr(name, ".tmp.") != NULL)
        return 1;
    if (strncmp(name, prefix, n) != 0 || name[n] != '_' || name[n + 1] < '0' || name[n + 1] > '9')
        return 0;
    no = strtoll(name + n + 1, &end, 10);
    return no >= first && (strcmp(end, ".npy") == 0 || strcmp(end, ".jsonl") == 0);
}

int emb_remove_leftovers(const char *dir, int64_t first, int64_t *removed, wp_err *err)
{
    static const char *const subdirs[] = {"img_emb", "text_emb", "metadata"};
    char sub[WP_PATH_MAX], path[WP_PATH_MAX];
    int64_t k = 0;
    int rc = 0;

    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs && rc == 0; i++) {
        DIR *d;
        struct dirent *e;
        if ((rc = wp_path_join(sub, dir, subdirs[i], err)) != 0)
            break;
        d = opendir(sub);
        if (d == NULL) {
            if (errno == ENOENT)
                continue;
            rc = wp_err_set(err, WP_EIO, "%s: cannot list: %s", sub, strerror(errno));
            break;
        }
        while ((e = readdir(d)) != NULL) {
            if (!is_leftover(e->d_name, subdirs[i], first))
                continue;
            if ((rc = wp_path_join(path, sub, e->d_name, err)) != 0)
                break;
            if (unlink(path) != 0 && errno != ENOENT) {
                rc = wp_err_set(err, WP_EIO, "%s: cannot remove: %s", path, strerror(errno));
                break;
            }
            k++;
        }
        closedir(d);
    }
    if (removed != NULL)
        *removed = k;
    return rc;
}
