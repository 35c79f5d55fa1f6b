/*
 * add/add_files.c: `witpipe add --files DIR` and `--files-list FILE`:
 * local images with captions imported as already-fetched images.
 *
 * What a file is comes from its bytes (img_probe reads the JPEG SOF, PNG
 * IHDR, WebP VP8/VP8L/VP8X header), never from its name; a cheap trailer
 * check (JPEG EOI, PNG IEND, the RIFF size) catches files cut short. The
 * bytes go into the image store unchanged and are synced before the
 * catalog rows that point at them are committed.
 *
 * The folder is walked with directory descriptors (openat, fstatat without
 * following links): only regular files and directories inside it are
 * read. Symbolic links (to files or folders) and FIFOs, sockets and
 * devices are skipped, counted and reported with the reason; every file is
 * opened O_NOFOLLOW | O_NONBLOCK and checked with fstat, so a link or FIFO
 * swapped in after the walk looked is refused too and never blocks.
 */
#include "image/image.h"
#include "add_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILES_BATCH     256 /* images per catalog transaction */
#define FILES_DEPTH_MAX 64  /* directory nesting followed */
#define FILES_URL_MAX   (3 * WP_PATH_MAX + 16)

typedef struct files_ctx {
    cat *c;
    st_store *s;
    cat_run *run;
    int64_t run_id, source_id;
    const wp_reporter *rep;
    add_files_stats *st;
    wp_buf data;         /* the file being imported */
    wp_buf caption;      /* its caption, cleaned */
    char root[PATH_MAX]; /* the folder's absolute path (add_files_dir) */
    /* walk's scratch for the entry at hand */
    char abs[WP_PATH_MAX + PATH_MAX], capname[WP_PATH_MAX], capsub[WP_PATH_MAX];
    int pending; /* rows in the open transaction */
    uint64_t reported;
} files_ctx;

int add_file_url(const char *abs_path, char *out, size_t n, wp_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    const char *pre = "file://";

    if (n < strlen(pre) + 1)
        return wp_err_set(err, WP_ELIMIT, "URL buffer too small");
    memcpy(out, pre, strlen(pre));
    k = strlen(pre);
    for (const unsigned char *p = (const unsigned char *)abs_path; *p; p++) {
        /* RFC 3986 section 2.3: unreserved characters stay as they are. */
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
                    *p == '/';
        if (k + (plain ? 1 : 3) + 1 > n)
            return wp_err_set(err, WP_ELIMIT, "%s: file URL longer than %zu bytes", abs_path, n);
        if (plain) {
            out[k++] = (char)*p;
        } else {
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = '\0';
    return 0;
}

/* Reads a whole file, name relative to dirfd (AT_FDCWD: the working
 * directory), at most max bytes. Opened O_NONBLOCK (a FIFO never blocks)
 * and, with nofollow, O_NOFOLLOW. Returns 0, WP_ELIMIT, WP_EIO, or
 * WP_EINVAL when it is a symbolic link (nofollow) or not a regular file;
 * shown names the file in messages. */
static int read_bounded(int dirfd, const char *name, const char *shown, int nofollow, size_t max,
                        wp_buf *out, wp_err *err)
{
    struct stat sb;
    int fd, rc = 0;
    size_t got = 0;

    wp_buf_reset(out);
    fd = openat(dirfd, name,
                O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0 && nofollow && errno == ELOOP)
        return wp_err_set(err, WP_EINVAL, "%s: symbolic link, not followed", shown);
    if (fd < 0)
        return wp_err_set(err, WP_EIO, "%s: cannot open: %s", shown, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot stat: %s", shown, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = wp_err_set(err, WP_EINVAL, "%s: not a regular file (%s)", shown,
                        S_ISFIFO(sb.st_mode)   ? "FIFO"
                        : S_ISSOCK(sb.st_mode) ? "socket"
                        : S_ISDIR(sb.st_mode)  ? "directory"
                                               : "device");
        goto out;
    }
    if ((uint64_t)sb.st_size > max) {
        rc = wp_err_set(err, WP_ELIMIT, "%s: %lld bytes, more than %zu", shown,
                        (long long)sb.st_size, max);
        goto out;
    }
    if (wp_buf_reserve(out, (size_t)sb.st_size + 1) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t r;
        if (got == out->cap - 1 && wp_buf_reserve(out, 65536) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        r = read(fd, out->data + got, out->cap - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = wp_err_set(err, WP_EIO, "%s: read failed: %s", shown, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > max) {
            rc = wp_err_set(err, WP_ELIMIT, "%s: more than %zu bytes", shown, max);
            goto out;
        }
    }
    out->len = got;
    out->data[got] = '\0';
out:
    close(fd);
    return rc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 when the file ends the way its format says a whole file ends. */
static int complete(int format, const uint8_t *p, size_t n)
{
    if (format == IMG_FMT_JPEG) {
        /* The EOI marker, allowing a little padding after it. */
        size_t from = n > 64 ? n - 64 : 0;
        for (size_t i = n; i-- > from + 1;)
            if (p[i - 1] == 0xFF && p[i] == 0xD9)
                return 1;
        return 0;
    }
    if (format == IMG_FMT_PNG) {
        /* The IEND chunk: length 0, type IEND, CRC AE 42 60 82. */
        static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
        return n >= 12 && memcmp(p + n - 12, iend, 12) == 0;
    }
    if (format == IMG_FMT_WEBP)
        return n >= 12 && (uint64_t)le32(p + 4) + 8 <= n;
    return 1;
}

static int flush(files_ctx *fc, wp_err *err)
{
    int rc;
    if (!cat_in_transaction(fc->c))
        return 0;
    /* The store first: a committed row must never point at bytes that a
     * crash could still lose. */
    if ((rc = st_sync(fc->s, err)) != 0)
        return rc;
    if ((rc = add_report_files(fc->run, fc->st, -1, err)) != 0 ||
        (rc = cat_commit(fc->c, err)) != 0)
        return rc;
    fc->pending = 0;
    return 0;
}

static void file_error(files_ctx *fc, const char *path, const char *cls, const char *detail)
{
    fc->st->errors++;
    if (fc->reported++ < ADD_BAD_REPORT)
        wp_report_event(fc->rep, WP_LOG_WARN, "file_error", "%s: %s: %s", path, cls, detail);
}

/* An entry of the folder that is not read: counted in *count and in
 * skipped, and the first ADD_BAD_REPORT reported with the reason. */
static void skip_entry(files_ctx *fc, uint64_t *count, const char *rel, const char *why)
{
    fc->st->skipped++;
    (*count)++;
    if (fc->reported++ < ADD_BAD_REPORT)
        wp_report_event(fc->rep, WP_LOG_WARN, "file_skipped", "%s: skipped: %s", rel, why);
}

/* Cleans a caption: invalid UTF-8 repaired (U+FFFD), trailing white space
 * and line breaks dropped, at most ADD_TEXT_MAX bytes. */
static int clean_caption(files_ctx *fc, const char *s, size_t n, wp_err *err)
{
    wp_buf_reset(&fc->caption);
    if (wp_utf8_repair(s, n, &fc->caption) < 0)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    while (fc->caption.len > 0 &&
           strchr(" \t\r\n", fc->caption.data[fc->caption.len - 1]) != NULL &&
           fc->caption.data[fc->caption.len - 1] != '\0')
        fc->caption.len--;
    if (fc->caption.len > ADD_TEXT_MAX)
        fc->caption.len = wp_utf8_floor(fc->caption.data, fc->caption.len, ADD_TEXT_MAX);
    /* NULs cannot be in a caption. */
    for (size_t i = 0; i < fc->caption.len; i++)
        if (fc->caption.data[i] == '\0')
            fc->caption.data[i] = ' ';
    fc->caption.data[fc->caption.len] = '\0';
    return 0;
}

/* Imports one file: name relative to dirfd, opened without following a
 * link when nofollow; abs is its absolute path (the URL's). need_image: the
 * file counts only if it is an image (it has no caption); returns 0 having
 * done nothing when it is not one. Returns 0 or a catalog/store error
 * (which ends the run). */
static int import_one(files_ctx *fc, int dirfd, const char *name, int nofollow, const char *abs,
                      const char *origin, int need_image, wp_err *err)
{
    char url[FILES_URL_MAX];
    cat_pair_in in;
    cat_image_result res;
    cat_image_loc loc;
    img_info info;
    wp_err ferr = {0};
    int64_t pair_id = 0, image_id = 0, file = 0, off = 0;
    uint8_t md[WP_SHA256_LEN];
    char sha[WP_SHA256_HEX + 1];
    const char *cls = NULL;
    int is_new = 0, rc, prc = 0;

    rc = read_bounded(dirfd, name, abs, nofollow, ADD_FILE_MAX, &fc->data, &ferr);
    if (rc == WP_ELIMIT)
        cls = "too_large";
    else if (rc != 0)
        cls = "unreadable";
    if (cls == NULL) {
        memset(&info, 0, sizeof info);
        prc = img_probe(fc->data.data, fc->data.len, &info, &ferr);
        if (prc == IMG_ENOTIMAGE)
            cls = "not_an_image";
        else if (prc == IMG_EUNSUPPORTED ||
                 (prc == 0 && info.format != IMG_FMT_JPEG && info.format != IMG_FMT_PNG &&
                  info.format != IMG_FMT_WEBP))
            cls = "unsupported";
        else if (prc == IMG_ETOOBIG)
            cls = "too_large";
        else if (prc != 0)
            cls = "corrupt";
        else if (!complete(info.format, (const uint8_t *)fc->data.data, fc->data.len)) {
            cls = "corrupt";
            wp_err_set(&ferr, IMG_ECORRUPT, "truncated (no end of %s data)",
                       img_format_name(info.format));
        }
        if (prc == IMG_EUNSUPPORTED || (prc == 0 && cls != NULL && strcmp(cls, "unsupported") == 0))
            wp_err_set(&ferr, IMG_EUNSUPPORTED, "%s images are not supported",
                       img_format_name(info.format));
    }
    if (need_image && cls != NULL) {
        fc->st->skipped++; /* not captioned and not an image: not ours */
        return 0;
    }
    fc->st->seen++;
    if (!cat_in_transaction(fc->c) && (rc = cat_begin(fc->c, err)) != 0)
        return rc;
    if ((rc = add_file_url(abs, url, sizeof url, err)) != 0)
        return rc;
    memset(&in, 0, sizeof in);
    in.url = url;
    in.url_len = strlen(url);
    in.text = fc->caption.data ? fc->caption.data : "";
    in.text_len = fc->caption.len;
    in.source_id = fc->source_id;
    in.origin = origin;
    in.run_id = fc->run_id;
    if ((rc = cat_pair_add(fc->c, &in, &pair_id, &image_id, &is_new, err)) != 0)
        return rc;
    if (!is_new) {
        fc->st->already++;
        goto done;
    }
    if (cat_image_location(fc->c, image_id, &loc, NULL) == 0) {
        /* The same image under a new caption: its bytes are stored already. */
        fc->st->imported++;
        goto done;
    }
    res = cat_image_result_init(image_id);
    res.run_id = fc->run_id > 0 ? fc->run_id : -1;
    res.attempts = 1;
    if (cls != NULL) {
        res.state = "error";
        res.error_class = cls;
        res.error_detail = ferr.msg;
        file_error(fc, abs, cls, ferr.msg);
    } else {
        if (wp_sha256_buf(fc->data.data, fc->data.len, md) != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        wp_hex(md, sizeof md, sha);
        if ((rc = st_append(fc->s, fc->data.data, fc->data.len, &file, &off, err)) != 0)
            return rc;
        res.state = "ok";
        res.format = res.orig_format = img_format_name(info.format);
        res.width = res.orig_width = info.width;
        res.height = res.orig_height = info.height;
        res.bytes = res.orig_bytes = (int64_t)fc->data.len;
        res.sha256 = res.orig_sha256 = sha;
        res.store_file = file;
        res.store_offset = off;
        fc->st->imported++;
        fc->st->bytes += fc->data.len;
        if (fc->caption.len == 0)
            fc->st->no_caption++;
    }
    if ((rc = cat_image_set_result(fc->c, &res, err)) != 0)
        return rc;
done:
    if (++fc->pending >= FILES_BATCH) {
        wp_progress p = {0};
        if ((rc = flush(fc, err)) != 0)
            return rc;
        p.stage = "add --files";
        p.done = fc->st->seen;
        p.errors = fc->st->errors;
        p.bytes = fc->st->bytes;
        wp_report_progress(fc->rep, &p);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_txt(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".txt") == 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The names in directory dirfd but the hidden ones, in byte order, into a
 * malloc'ed array the caller frees with free_names. Returns 0, WP_EIO or
 * WP_ENOMEM; shown names the directory in messages. */
static int list_names(int dirfd, const char *shown, char ***out, size_t *nout, wp_err *err)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *d;
    int fd = dup(dirfd), rc = 0;

    *out = NULL;
    *nout = 0;
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot list: %s", shown, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    rewinddir(d);
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **g = realloc(names, nc * sizeof *g);
            if (g == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            names = g;
            cap = nc;
        }
        if ((names[n] = strdup(e->d_name)) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (errno != 0)
        rc = wp_err_set(err, WP_EIO, "%s: cannot list: %s", shown, strerror(errno));
out:
    closedir(d);
    if (rc != 0) {
        free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    *nout = n;
    return 0;
}

/* Walks directory dirfd in byte order of names; rel is its path relative
 * to the root ("" for the root), used as the origin and, under fc->root,
 * as the absolute path. Returns 0 or an error that ends the run. */
static int walk(files_ctx *fc, int dirfd, const char *rel, int depth, wp_err *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = 0;

    if (depth > FILES_DEPTH_MAX)
        return 0;
    if ((rc = list_names(dirfd, rel[0] ? rel : fc->root, &names, &n, err)) != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* sub lives in this frame (it is the child's rel); the others are
         * scratch in fc, rebuilt for each entry, so that 64 levels of
         * nesting cost 4 KiB of stack each. */
        char sub[WP_PATH_MAX];
        char *abs = fc->abs, *capname = fc->capname, *capsub = fc->capsub;
        const char *name = names[i];
        struct stat sb, cb;
        const char *dot;
        int len;
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "%s: stopped", rel[0] ? rel : fc->root);
            break;
        }
        len = rel[0] != '\0' ? snprintf(sub, sizeof sub, "%s/%s", rel, name)
                             : snprintf(sub, sizeof sub, "%s", name);
        if (len < 0 || (size_t)len >= sizeof sub)
            continue;
        snprintf(abs, sizeof fc->abs, "%s/%s", fc->root, sub);
        if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone since it was listed */
        if (ends_txt(name) && !S_ISDIR(sb.st_mode))
            continue; /* a caption: read with its image, which reports it */
        /* Only what is inside the folder: a link may point anywhere. */
        if (S_ISLNK(sb.st_mode)) {
            skip_entry(fc, &fc->st->skipped_links, sub, "symbolic link, not followed");
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            int sfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sfd < 0) {
                file_error(fc, abs, "unreadable", strerror(errno));
                continue;
            }
            rc = walk(fc, sfd, sub, depth + 1, err);
            close(sfd);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) {
            skip_entry(fc, &fc->st->skipped_special, sub,
                       S_ISFIFO(sb.st_mode)   ? "not a regular file (FIFO)"
                       : S_ISSOCK(sb.st_mode) ? "not a regular file (socket)"
                                              : "not a regular file (device)");
            continue;
        }
        /* Its caption: the same name with .txt for the extension. */
        dot = strrchr(name, '.');
        len = snprintf(capname, sizeof fc->capname, "%.*s.txt",
                       (int)(dot ? dot - name : (long)strlen(name)), name);
        if (len < 0 || (size_t)len >= sizeof fc->capname)
            continue;
        snprintf(capsub, sizeof fc->capsub, "%.*s%s", (int)(strlen(sub) - strlen(name)), sub,
                 capname);
        if (fstatat(dirfd, capname, &cb, AT_SYMLINK_NOFOLLOW) == 0) {
            wp_err cerr = {0};
            int crc =
                read_bounded(dirfd, capname, capsub, 1, 4 * (size_t)ADD_TEXT_MAX, &fc->data, &cerr);
            if (crc == WP_EINVAL) {
                /* A caption that is a link or a FIFO: the image is not
                 * imported without it, nor with text from elsewhere. */
                char why[WP_ERR_MAX + 32];
                snprintf(why, sizeof why, "caption %s", cerr.msg);
                skip_entry(fc,
                           S_ISLNK(cb.st_mode) ? &fc->st->skipped_links : &fc->st->skipped_special,
                           sub, why);
                continue;
            }
            if (crc != 0) {
                file_error(fc, capsub, "unreadable", cerr.msg);
                continue;
            }
            if ((rc = clean_caption(fc, fc->data.data, fc->data.len, err)) != 0)
                break;
            rc = import_one(fc, dirfd, name, 1, abs, sub, 0, err);
        } else {
            wp_buf_reset(&fc->caption);
            rc = import_one(fc, dirfd, name, 1, abs, sub, 1, err);
        }
    }
    free_names(names, n);
    return rc;
}

static int begin_files(files_ctx *fc, cat *c, st_store *s, const char *what, cat_run *run,
                       const wp_reporter *rep, add_files_stats *st, wp_err *err)
{
    char abs[PATH_MAX];
    memset(fc, 0, sizeof *fc);
    fc->c = c;
    fc->s = s;
    fc->run = run;
    fc->run_id = run != NULL ? cat_run_id(run) : 0;
    fc->rep = rep;
    fc->st = st;
    if (realpath(what, abs) == NULL)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", what,
                          strerror(errno));
    snprintf(fc->root, sizeof fc->root, "%s", abs);
    return cat_source_get_or_add(c, "files", abs, "{}", &fc->source_id, err);
}

static int end_files(files_ctx *fc, int rc, wp_err *err)
{
    if (rc == 0 || rc == WP_ESTOP) {
        wp_err e2 = {0};
        int frc = flush(fc, rc == 0 ? err : &e2);
        if (rc == 0)
            rc = frc;
    }
    if (cat_in_transaction(fc->c))
        cat_rollback(fc->c);
    wp_buf_free(&fc->data);
    wp_buf_free(&fc->caption);
    return rc;
}

int add_files_dir(cat *c, st_store *s, const char *dir, cat_run *run, const wp_reporter *rep,
                  add_files_stats *st, wp_err *err)
{
    files_ctx fc;
    struct stat sb;
    int rc, dfd;

    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return wp_err_set(err, WP_ENOENT, "%s: not a directory", dir);
    if ((rc = begin_files(&fc, c, s, dir, run, rep, st, err)) != 0)
        return end_files(&fc, rc, err);
    /* The folder named by the user may itself be a link; what is in it is
     * judged from here on. */
    dfd = open(fc.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return end_files(&fc, wp_err_set(err, WP_EIO, "%s: cannot open: %s", dir, strerror(errno)),
                         err);
    rc = walk(&fc, dfd, "", 0, err);
    close(dfd);
    return end_files(&fc, rc, err);
}

int add_files_list(cat *c, st_store *s, const char *list, cat_run *run, const wp_reporter *rep,
                   add_files_stats *st, wp_err *err)
{
    files_ctx fc;
    FILE *f = NULL;
    char *line = NULL, *dcopy = NULL;
    const char *base;
    size_t cap = 0;
    ssize_t n;
    int64_t lineno = 0;
    int rc;

    if ((rc = begin_files(&fc, c, s, list, run, rep, st, err)) != 0)
        return end_files(&fc, rc, err);
    f = fopen(list, "r");
    dcopy = strdup(list);
    if (f == NULL || dcopy == NULL) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot open: %s", list, strerror(errno));
        goto out;
    }
    base = dirname(dcopy);
    while ((n = getline(&line, &cap, f)) >= 0) {
        char path[WP_PATH_MAX], origin[WP_PATH_MAX + 32], abs[PATH_MAX];
        char *tab;
        lineno++;
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "%s: stopped at line %lld", list, (long long)lineno);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if ((size_t)n > ADD_LIST_LINE_MAX) {
            file_error(&fc, list, "bad_line", "line too long");
            continue;
        }
        tab = memchr(line, '\t', (size_t)n);
        if (tab != NULL)
            *tab = '\0';
        if (line[0] == '/')
            snprintf(path, sizeof path, "%s", line);
        else if (wp_path_join(path, base, line, NULL) != 0)
            continue;
        if (tab != NULL)
            rc = clean_caption(&fc, tab + 1, (size_t)(line + n - (tab + 1)), err);
        else
            rc = clean_caption(&fc, "", 0, err);
        if (rc != 0)
            break;
        snprintf(origin, sizeof origin, "%s:%lld", list, (long long)lineno);
        /* A list names its files: links are followed, but only a regular
         * file is read (a FIFO is refused, never waited on). */
        if (realpath(path, abs) == NULL)
            snprintf(abs, sizeof abs, "%s", path);
        if ((rc = import_one(&fc, AT_FDCWD, abs, 0, abs, origin, 0, err)) != 0)
            break;
    }
out:
    if (f != NULL)
        fclose(f);
    free(line);
    free(dcopy);
    return end_files(&fc, rc, err);
}
