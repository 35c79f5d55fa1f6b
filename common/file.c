/*
 * common/file.c: directories, durable whole-file writes and bounded reads.
 *
 * Durability matters because the catalog may only point at bytes that are
 * already on disk: every "publish a file" goes write, fsync, rename, fsync
 * the directory.
 */
#include "wp.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int wp_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int wp_path_join(char *out, const char *dir, const char *name, wp_err *err)
{
    int n = snprintf(out, WP_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= WP_PATH_MAX)
        return wp_err_set(err, WP_ELIMIT, "%s/%s: path longer than %d bytes", dir, name,
                          WP_PATH_MAX - 1);
    return 0;
}

int wp_mkdir_p(const char *path, wp_err *err)
{
    char tmp[WP_PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof tmp)
        return wp_err_set(err, WP_EINVAL, "bad directory name '%s'", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return wp_err_set(err, WP_EIO, "%s: cannot create directory: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    return 0;
}

int wp_fsync_dir(const char *dir, wp_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return wp_err_set(err, WP_EIO, "%s: fsync failed: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

int wp_fd_reserve(int64_t need, const char *what, wp_err *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return wp_err_set(err, WP_EIO, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < need) {
        /* the soft limit may be raised up to the hard one without privilege */
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY || (int64_t)rl.rlim_max >= need ? (rlim_t)need
                                                                                     : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < need)
        return wp_err_set(err, WP_ELIMIT,
                          "%s needs about %lld open files but the limit is %llu (hard limit "
                          "%llu): raise it with `ulimit -n %lld` or ask for less parallelism",
                          what, (long long)need, (unsigned long long)rl.rlim_cur,
                          (unsigned long long)rl.rlim_max, (long long)need);
    return 0;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int wp_write_file_atomic(const char *path, const void *data, size_t n, wp_err *err)
{
    char tmp[WP_PATH_MAX];
    char dir[WP_PATH_MAX];
    const char *slash;
    int fd, rc = 0;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return wp_err_set(err, WP_ELIMIT, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    if (write_all(fd, data, n) != 0 || fsync(fd) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return wp_err_set(err, WP_EIO, "%s: close failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    slash = strrchr(path, '/');
    if (slash == NULL)
        return wp_fsync_dir(".", err);
    if (slash == path)
        return wp_fsync_dir("/", err);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return wp_fsync_dir(dir, err);
}

int wp_read_file(const char *path, size_t max, wp_buf *out, wp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char chunk[65536];

    wp_buf_reset(out);
    if (fd < 0)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return wp_err_set(err, WP_EIO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        if (out->len + (size_t)r > max) {
            close(fd);
            return wp_err_set(err, WP_ELIMIT, "%s: larger than %zu bytes", path, max);
        }
        if (wp_buf_append(out, chunk, (size_t)r) != 0) {
            close(fd);
            return wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
        }
    }
    close(fd);
    if (out->data == NULL && wp_buf_reserve(out, 0) != 0)
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
    return 0;
}
