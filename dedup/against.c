/*
 * dedup/against.c: the images of an evaluation set (--against), read one
 * at a time: a folder of image files, a folder of WebDataset tar shards
 * (witpipe shard's own output: the image members of every .tar in it, the
 * shards' sidecar files ignored), one .tar shard, or a list file naming
 * image files and/or .tar shards (one a line, # comments, relative to the
 * list's folder). Tar shards are read with libarchive, compressed or not;
 * an image member is one whose name ends in .jpg, .jpeg, .png or .webp.
 */
#include "dedup/dd_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define TAR_BLOCK 65536 /* libarchive's read block */

typedef struct entries {
    char **v;
    size_t n, cap;
} entries;

static void entries_free(entries *E)
{
    for (size_t i = 0; i < E->n; i++)
        free(E->v[i]);
    free(E->v);
    memset(E, 0, sizeof *E);
}

static int entries_push(entries *E, const char *p)
{
    if (E->n == E->cap) {
        size_t cap = E->cap ? E->cap * 2 : 64;
        char **v = realloc(E->v, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        E->v = v;
        E->cap = cap;
    }
    if ((E->v[E->n] = strdup(p)) == NULL)
        return WP_ENOMEM;
    E->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A WebDataset shard, by name: .tar, optionally compressed. */
static int is_tar(const char *name)
{
    return ends_with(name, ".tar") || ends_with(name, ".tar.gz") || ends_with(name, ".tgz") ||
           ends_with(name, ".tar.zst") || ends_with(name, ".tar.xz");
}

static int is_image_member(const char *name)
{
    return ends_with(name, ".jpg") || ends_with(name, ".jpeg") || ends_with(name, ".png") ||
           ends_with(name, ".webp");
}

/* The paths of a folder's regular files in name order; when any is a tar
 * shard, only the shards (the rest are their sidecars). */
static int list_folder(const char *loc, entries *E, wp_err *err)
{
    DIR *d = opendir(loc);
    struct dirent *e;
    int rc = 0, tars = 0;

    if (d == NULL)
        return wp_err_set(err, DD_EAGAINST, "%s: cannot list", loc);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char p[WP_PATH_MAX];
        struct stat fs;
        if (e->d_name[0] == '.' || wp_path_join(p, loc, e->d_name, NULL) != 0 ||
            stat(p, &fs) != 0 || !S_ISREG(fs.st_mode))
            continue;
        tars += is_tar(e->d_name);
        if (entries_push(E, p) != 0)
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    closedir(d);
    if (rc != 0)
        return rc;
    if (tars > 0) {
        size_t k = 0;
        for (size_t i = 0; i < E->n; i++) {
            if (is_tar(E->v[i]))
                E->v[k++] = E->v[i];
            else
                free(E->v[i]);
        }
        E->n = k;
    }
    if (E->n > 1)
        qsort(E->v, E->n, sizeof *E->v, cmp_str);
    return 0;
}

/* The paths a list file names, relative to its folder. */
static int list_file(const char *loc, entries *E, wp_err *err)
{
    char dir[WP_PATH_MAX];
    wp_buf text = {0};
    int rc;

    snprintf(dir, sizeof dir, "%s", loc);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if ((rc = wp_read_file(loc, (size_t)1 << 30, &text, err)) != 0)
        return rc;
    /* The file's bytes are not a C string: lines are cut by length (a last
     * line without a newline ends at the end; a NUL ends its line). */
    if (wp_buf_append(&text, "", 1) != 0) {
        wp_buf_free(&text);
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    char *end = text.data + text.len - 1;
    int lineno = 0;
    for (char *line = text.data, *next; rc == 0 && line < end; line = next) {
        char p[WP_PATH_MAX];
        lineno++;
        next = memchr(line, '\n', (size_t)(end - line));
        if (next)
            *next++ = '\0';
        else
            next = end;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if ((line[0] == '/' ? strlen(line) >= sizeof p : wp_path_join(p, dir, line, NULL) != 0)) {
            rc = wp_err_set(err, DD_EAGAINST, "%s:%d: a path too long (%zu bytes)", loc, lineno,
                            len);
            break;
        }
        if (line[0] == '/')
            snprintf(p, sizeof p, "%s", line);
        if (entries_push(E, p) != 0)
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    wp_buf_free(&text);
    return rc;
}

/* Every image member of one tar shard, in archive order. An unreadable
 * shard is a warning (the set's other images still count); a member over
 * max_bytes is skipped with one. */
static int each_in_tar(const char *path, size_t max_bytes, dd_eval_fn fn, void *ud,
                       const wp_reporter *rep, wp_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    wp_buf b = {0};
    int rc = 0, ar;

    if (a == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_filter_all(a);
    if (archive_read_open_filename(a, path, TAR_BLOCK) != ARCHIVE_OK) {
        wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", path,
                        archive_error_string(a) ? archive_error_string(a) : "cannot open");
        goto out;
    }
    while (rc == 0 && (ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        la_int64_t size = archive_entry_size(e);
        char label[WP_PATH_MAX + 256];
        if (archive_entry_filetype(e) != AE_IFREG || name == NULL || !is_image_member(name))
            continue;
        snprintf(label, sizeof label, "%s:%s", path, name);
        if (size < 0 || (uint64_t)size > max_bytes) {
            wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: %lld bytes", label,
                            (long long)size);
            continue;
        }
        wp_buf_reset(&b);
        if (wp_buf_reserve(&b, (size_t)size + 1) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory for %s", label);
            break;
        }
        la_ssize_t got = archive_read_data(a, b.data, (size_t)size);
        if (got != (la_ssize_t)size) {
            wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", label,
                            archive_error_string(a) ? archive_error_string(a) : "short read");
            if (got < 0)
                break; /* the archive is broken from here on */
            continue;
        }
        b.len = (size_t)size;
        rc = fn(ud, label, b.data, b.len, err);
    }
    if (rc == 0 && ar != ARCHIVE_EOF && ar != ARCHIVE_OK)
        wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", path,
                        archive_error_string(a) ? archive_error_string(a) : "cannot read");
out:
    archive_read_free(a);
    wp_buf_free(&b);
    return rc;
}

int dd_eval_each(const char *loc, size_t max_bytes, dd_eval_fn fn, void *ud, const wp_reporter *rep,
                 wp_err *err)
{
    struct stat st;
    entries E = {0};
    wp_buf b = {0};
    int rc;

    if (stat(loc, &st) != 0)
        return wp_err_set(err, DD_EAGAINST, "%s: no such evaluation set", loc);
    if (S_ISDIR(st.st_mode))
        rc = list_folder(loc, &E, err);
    else if (!S_ISREG(st.st_mode))
        return wp_err_set(err, DD_EAGAINST,
                          "%s: not a folder, a .tar shard or a list file (a regular file)", loc);
    else if (is_tar(loc))
        rc = entries_push(&E, loc) != 0 ? wp_err_set(err, WP_ENOMEM, "out of memory") : 0;
    else
        rc = list_file(loc, &E, err);
    for (size_t i = 0; rc == 0 && i < E.n; i++) {
        wp_err e = {0};
        struct stat fs;
        /* A list may name anything: only regular files are read (links
         * followed), never a FIFO or device that would block or not end. */
        if (stat(E.v[i], &fs) != 0) {
            wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: cannot open: %s", E.v[i],
                            strerror(errno));
            continue;
        }
        if (!S_ISREG(fs.st_mode)) {
            wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip",
                            "%s: not a regular file; skipped", E.v[i]);
            continue;
        }
        if (is_tar(E.v[i])) {
            rc = each_in_tar(E.v[i], max_bytes, fn, ud, rep, err);
            continue;
        }
        if (wp_read_file(E.v[i], max_bytes, &b, &e) != 0) {
            wp_report_event(rep, WP_LOG_WARN, "dedup_against_skip", "%s: %s", E.v[i], e.msg);
            continue;
        }
        rc = fn(ud, E.v[i], b.data, b.len, err);
    }
    entries_free(&E);
    wp_buf_free(&b);
    return rc;
}

void dd_eval_name(const char *loc, char *out, size_t cap)
{
    char tmp[WP_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", loc);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    const char *b = strrchr(tmp, '/');
    b = b ? b + 1 : tmp;
    snprintf(out, cap, "%s", b);
    /* a shard's or a list file's extension goes (eval.tar.gz, eval.txt) */
    static const char *const tar_ext[] = {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz"};
    for (size_t i = 0; i < sizeof tar_ext / sizeof tar_ext[0]; i++)
        if (ends_with(out, tar_ext[i]) && strlen(out) > strlen(tar_ext[i])) {
            out[strlen(out) - strlen(tar_ext[i])] = '\0';
            return;
        }
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}
