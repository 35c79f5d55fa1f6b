/*
 * store/store.c: append-only image staging files (see store.h).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_READ_FDS 64 /* read descriptors kept open */

struct st_store {
    char dir[WP_PATH_MAX];
    int64_t cur_file; /* number of the file appends go to */
    int cur_fd;
    int64_t cur_size;
    int dirty;
    int dir_dirty;        /* a data file was created: its directory entry must be synced */
    int64_t dir_syncs;    /* how often the directory was fsynced (for tests) */
    pthread_mutex_t lock; /* guards the read descriptor cache */
    struct {
        int64_t file;
        int fd;
    } rfd[ST_READ_FDS];
    int nrfd;
};

static int file_path(const st_store *s, int64_t n, char *out, wp_err *err)
{
    int k = snprintf(out, WP_PATH_MAX, "%s/%06lld.dat", s->dir, (long long)n);
    if (k < 0 || k >= WP_PATH_MAX)
        return wp_err_set(err, WP_ELIMIT, "%s: path too long", s->dir);
    return 0;
}

static int open_append(st_store *s, int64_t n, wp_err *err)
{
    char path[WP_PATH_MAX];
    struct stat st;
    int rc;

    if ((rc = file_path(s, n, path, err)) != 0)
        return rc;
    /* O_EXCL first, to know whether the name is new: a new file's directory
     * entry is durable only once the directory itself is fsynced (POSIX
     * fsync(2): syncing a file does not sync the entry naming it) */
    s->cur_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (s->cur_fd >= 0)
        s->dir_dirty = 1;
    else if (errno == EEXIST)
        s->cur_fd = open(path, O_WRONLY | O_CLOEXEC);
    if (s->cur_fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(s->cur_fd, &st) != 0)
        return wp_err_set(err, WP_EIO, "%s: cannot stat: %s", path, strerror(errno));
    s->cur_file = n;
    s->cur_size = st.st_size;
    return 0;
}

int st_open(const char *corpus_dir, st_store **out, wp_err *err)
{
    st_store *s;
    DIR *d;
    struct dirent *e;
    int64_t last = 0;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    s->cur_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    if ((rc = wp_path_join(s->dir, corpus_dir, "store", err)) != 0 ||
        (rc = wp_mkdir_p(s->dir, err)) != 0)
        goto fail;
    d = opendir(s->dir);
    if (d == NULL) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot list: %s", s->dir, strerror(errno));
        goto fail;
    }
    while ((e = readdir(d)) != NULL) {
        char *end;
        long long n = strtoll(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".dat") == 0 && n > last)
            last = n;
    }
    closedir(d);
    if ((rc = open_append(s, last > 0 ? last : 1, err)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    st_close(s);
    return rc;
}

int st_sync(st_store *s, wp_err *err)
{
    int rc;
    if (s->dirty) {
        if (fdatasync(s->cur_fd) != 0)
            return wp_err_set(err, WP_EIO, "%s/%06lld.dat: fdatasync failed: %s", s->dir,
                              (long long)s->cur_file, strerror(errno));
        s->dirty = 0;
    }
    if (s->dir_dirty) {
        if ((rc = wp_fsync_dir(s->dir, err)) != 0)
            return rc;
        s->dir_dirty = 0;
        s->dir_syncs++;
    }
    return 0;
}

void st_close(st_store *s)
{
    if (s == NULL)
        return;
    if (s->cur_fd >= 0) {
        st_sync(s, NULL);
        close(s->cur_fd);
    }
    for (int i = 0; i < s->nrfd; i++)
        close(s->rfd[i].fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int st_append(st_store *s, const void *data, size_t n, int64_t *file, int64_t *offset, wp_err *err)
{
    const char *p = data;
    int64_t off;
    size_t left = n;
    int rc;

    if (s->cur_size > 0 && s->cur_size + (int64_t)n > ST_FILE_MAX) {
        /* The old file must be durable before appends move on, since a later
         * st_sync only syncs the current file. */
        if ((rc = st_sync(s, err)) != 0)
            return rc;
        close(s->cur_fd);
        s->cur_fd = -1;
        if ((rc = open_append(s, s->cur_file + 1, err)) != 0)
            return rc;
    }
    off = s->cur_size;
    while (left > 0) {
        ssize_t w = pwrite(s->cur_fd, p, left, off + (int64_t)(n - left));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return wp_err_set(err, WP_EIO, "%s/%06lld.dat: write failed: %s", s->dir,
                              (long long)s->cur_file, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    s->cur_size += (int64_t)n;
    s->dirty = 1;
    *file = s->cur_file;
    *offset = off;
    return 0;
}

static int read_fd(st_store *s, int64_t file, int *fd, wp_err *err)
{
    char path[WP_PATH_MAX];
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->nrfd; i++) {
        if (s->rfd[i].file == file) {
            *fd = s->rfd[i].fd;
            goto out;
        }
    }
    if ((rc = file_path(s, file, path, err)) != 0)
        goto out;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        rc = wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
        goto out;
    }
    if (s->nrfd == ST_READ_FDS) {
        /* Cache full: other threads may be inside pread on cached fds, so
         * none is evicted; this one is handed back uncached for the caller
         * to close after use. */
        rc = 1;
        goto out;
    }
    s->rfd[s->nrfd].file = file;
    s->rfd[s->nrfd].fd = *fd;
    s->nrfd++;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int st_read(st_store *s, int64_t file, int64_t offset, void *buf, size_t n, wp_err *err)
{
    char *p = buf;
    size_t got = 0;
    int fd, rc, temp;

    rc = read_fd(s, file, &fd, err);
    if (rc < 0)
        return rc;
    temp = rc == 1; /* descriptor cache full: this fd is ours to close */
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, offset + (int64_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = wp_err_set(err, WP_EIO, "%s/%06lld.dat: read at %lld failed: %s", s->dir,
                            (long long)file, (long long)offset, strerror(errno));
            goto out;
        }
        if (r == 0) {
            rc = wp_err_set(err, ST_ECORRUPT, "%s/%06lld.dat: short read at %lld (%zu of %zu)",
                            s->dir, (long long)file, (long long)offset, got, n);
            goto out;
        }
        got += (size_t)r;
    }
    rc = 0;
out:
    if (temp)
        close(fd);
    return rc;
}

int st_read_verified(st_store *s, int64_t file, int64_t offset, void *buf, size_t n,
                     const char *sha256_hex, wp_err *err)
{
    uint8_t md[WP_SHA256_LEN];
    char hex[WP_SHA256_HEX + 1];
    int rc = st_read(s, file, offset, buf, n, err);
    if (rc != 0)
        return rc;
    if (wp_sha256_buf(buf, n, md) != 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    wp_hex(md, sizeof md, hex);
    if (sha256_hex != NULL && strcmp(hex, sha256_hex) != 0)
        return wp_err_set(err, ST_ECORRUPT, "%s/%06lld.dat: bytes at %lld do not match sha256 %s",
                          s->dir, (long long)file, (long long)offset, sha256_hex);
    return 0;
}

int64_t st_dir_syncs(const st_store *s)
{
    return s->dir_syncs;
}

static int file_cmp(const void *a, const void *b)
{
    const st_file *x = a, *y = b;
    return (x->num > y->num) - (x->num < y->num);
}

int st_list(st_store *s, st_file **out, size_t *n, wp_err *err)
{
    DIR *d;
    struct dirent *e;
    st_file *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    d = opendir(s->dir);
    if (d == NULL)
        return wp_err_set(err, WP_EIO, "%s: cannot list: %s", s->dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char *end, path[WP_PATH_MAX];
        struct stat st;
        long long num = strtoll(e->d_name, &end, 10);
        if (end == e->d_name || strcmp(end, ".dat") != 0 || num <= 0)
            continue;
        if ((rc = file_path(s, num, path, err)) != 0)
            goto out;
        if (stat(path, &st) != 0) {
            rc = wp_err_set(err, WP_EIO, "%s: cannot stat: %s", path, strerror(errno));
            goto out;
        }
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            st_file *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
            cap = nc;
        }
        v[len].num = num;
        v[len].size = st.st_size;
        len++;
    }
out:
    closedir(d);
    if (rc != 0) {
        free(v);
        return rc;
    }
    if (len > 1)
        qsort(v, len, sizeof *v, file_cmp);
    *out = v;
    *n = len;
    return 0;
}

int st_rotate(st_store *s, wp_err *err)
{
    st_file *files = NULL;
    size_t n = 0;
    int64_t next = s->cur_file + 1;
    int rc;

    if ((rc = st_sync(s, err)) != 0 || (rc = st_list(s, &files, &n, err)) != 0)
        return rc;
    if (n > 0 && files[n - 1].num >= next)
        next = files[n - 1].num + 1;
    free(files);
    close(s->cur_fd);
    s->cur_fd = -1;
    return open_append(s, next, err);
}

int st_remove(st_store *s, int64_t file, wp_err *err)
{
    char path[WP_PATH_MAX];
    int rc;

    if (file == s->cur_file)
        return wp_err_set(err, WP_EINVAL, "%s/%06lld.dat: is the file appends go to", s->dir,
                          (long long)file);
    if ((rc = file_path(s, file, path, err)) != 0)
        return rc;
    /* drop a cached read descriptor first; st_remove runs with no reader
     * active (the caller's compaction is the store's only user) */
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->nrfd; i++) {
        if (s->rfd[i].file == file) {
            close(s->rfd[i].fd);
            s->rfd[i] = s->rfd[--s->nrfd];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (unlink(path) != 0 && errno != ENOENT)
        return wp_err_set(err, WP_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return wp_fsync_dir(s->dir, err);
}

int64_t st_current_file(const st_store *s)
{
    return s->cur_file;
}

int st_truncate(st_store *s, int64_t file, int64_t size, wp_err *err)
{
    char path[WP_PATH_MAX];
    int fd, rc;

    if ((rc = file_path(s, file, path, err)) != 0)
        return rc;
    if (file == s->cur_file && (rc = st_sync(s, err)) != 0)
        return rc;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (ftruncate(fd, size) != 0 || fsync(fd) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot truncate to %lld: %s", path, (long long)size,
                        strerror(errno));
        close(fd);
        return rc;
    }
    close(fd);
    if (file == s->cur_file)
        s->cur_size = size;
    return 0;
}
