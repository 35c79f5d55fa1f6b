/*
 * tests/lib/mockhub.c: the mock model hub of tests/lib/mockhub.h.
 */
#include "tests/lib/mockhub.h"

#include "common/wp.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MH_FILES_MAX 32
#define MH_PATHS_MAX 64
#define MH_NAME_MAX  128

typedef struct mh_file {
    char name[MH_NAME_MAX];
    unsigned char *data;
    size_t len;
    int flags;
    int cut;
    char sha[WP_SHA256_HEX + 1];
} mh_file;

typedef struct mh_count {
    char path[MH_NAME_MAX * 2];
    int requests, ranged;
} mh_count;

struct tl_mockhub {
    struct MHD_Daemon *d;
    char repo[MH_NAME_MAX];
    mh_file files[MH_FILES_MAX];
    int nfiles;
    mh_count counts[MH_PATHS_MAX];
    int ncounts;
    pthread_mutex_t lock;
};

/* A body that stops half way, which makes libmicrohttpd drop the
 * connection: the client sees a short read. */
typedef struct cut_body {
    const unsigned char *p;
    size_t len, stop;
} cut_body;

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    cut_body *c = cls;
    if (pos >= c->stop)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = c->stop - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, c->p + pos, n);
    return (ssize_t)n;
}

static void cut_free(void *cls)
{
    free(cls);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static void count(tl_mockhub *h, const char *path, int ranged)
{
    pthread_mutex_lock(&h->lock);
    int i;
    for (i = 0; i < h->ncounts; i++)
        if (strcmp(h->counts[i].path, path) == 0)
            break;
    if (i == h->ncounts && h->ncounts < MH_PATHS_MAX) {
        snprintf(h->counts[i].path, sizeof h->counts[i].path, "%s", path);
        h->ncounts++;
    }
    if (i < h->ncounts) {
        h->counts[i].requests++;
        h->counts[i].ranged += ranged;
    }
    pthread_mutex_unlock(&h->lock);
}

static mh_file *find(tl_mockhub *h, const char *name)
{
    for (int i = 0; i < h->nfiles; i++)
        if (strcmp(h->files[i].name, name) == 0)
            return &h->files[i];
    return NULL;
}

/* Serves file f's bytes, honouring "Range: bytes=N-". */
static enum MHD_Result serve_bytes(tl_mockhub *h, struct MHD_Connection *conn, mh_file *f,
                                   const char *etag)
{
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    size_t start = 0;
    if (range != NULL) {
        unsigned long long a;
        if (sscanf(range, "bytes=%llu-", &a) != 1)
            return send_text(conn, 400, "bad range");
        if (a >= f->len) {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%zu", f->len);
            MHD_add_response_header(r, "Content-Range", cr);
            enum MHD_Result ret = MHD_queue_response(conn, 416, r);
            MHD_destroy_response(r);
            return ret;
        }
        start = (size_t)a;
    }
    int cut = 0;
    pthread_mutex_lock(&h->lock);
    if (f->cut > 0) {
        f->cut--;
        cut = 1;
    }
    pthread_mutex_unlock(&h->lock);

    size_t n = f->len - start;
    struct MHD_Response *r;
    if (cut) {
        cut_body *c = malloc(sizeof *c);
        if (c == NULL)
            return MHD_NO;
        c->p = f->data + start;
        c->len = n;
        c->stop = n / 2;
        r = MHD_create_response_from_callback(n, 4096, cut_reader, c, cut_free);
    } else {
        unsigned char *copy = malloc(n ? n : 1);
        if (copy == NULL)
            return MHD_NO;
        memcpy(copy, f->data + start, n);
        if ((f->flags & TL_MOCKHUB_CORRUPT) && n > 0)
            copy[n / 2] ^= 0x5A;
        r = MHD_create_response_from_buffer(n, copy, MHD_RESPMEM_MUST_FREE);
    }
    if (r == NULL)
        return MHD_NO;
    if (etag != NULL)
        MHD_add_response_header(r, "ETag", etag);
    unsigned code = 200;
    if (range != NULL) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", start, f->len - 1, f->len);
        MHD_add_response_header(r, "Content-Range", cr);
        code = 206;
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A body of unknown length (chunked) with no ETag. */
static ssize_t bare_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    mh_file *f = cls;
    if (pos >= f->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = f->len - (size_t)pos < max ? f->len - (size_t)pos : max;
    memcpy(buf, f->data + pos, n);
    return (ssize_t)n;
}

static enum MHD_Result serve_bare(struct MHD_Connection *conn, mh_file *f)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, bare_reader, f, NULL);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
    tl_mockhub *h = cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    if (strcmp(method, "GET") != 0)
        return send_text(conn, 405, "GET only");
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    unsigned long long rs = 0;
    count(h, url, range != NULL && sscanf(range, "bytes=%llu-", &rs) == 1 && rs > 0);

    char prefix[MH_NAME_MAX * 2];
    snprintf(prefix, sizeof prefix, "/api/models/%s/revision/", h->repo);
    if (strncmp(url, prefix, strlen(prefix)) == 0) {
        wp_buf b = {0};
        wp_buf_puts(&b, "{\"id\": \"");
        wp_buf_puts(&b, h->repo);
        wp_buf_puts(&b, "\", \"sha\": \"0123456789abcdef\", \"siblings\": [");
        for (int i = 0; i < h->nfiles; i++)
            wp_buf_printf(&b, "%s{\"rfilename\": \"%s\"}", i ? ", " : "", h->files[i].name);
        wp_buf_puts(&b, ", {\"rfilename\": \"README.md\"}]}");
        enum MHD_Result ret = send_text(conn, 200, b.data);
        wp_buf_free(&b);
        return ret;
    }
    snprintf(prefix, sizeof prefix, "/%s/resolve/", h->repo);
    if (strncmp(url, prefix, strlen(prefix)) == 0) {
        /* REV/FILE; libmicrohttpd has decoded %2F in REV already */
        const char *rest = url + strlen(prefix);
        mh_file *f = NULL;
        size_t rl = strlen(rest);
        for (int i = 0; i < h->nfiles && f == NULL; i++) {
            size_t nl = strlen(h->files[i].name);
            if (rl > nl + 1 && rest[rl - nl - 1] == '/' &&
                strcmp(rest + rl - nl, h->files[i].name) == 0)
                f = &h->files[i];
        }
        if (f == NULL)
            return send_text(conn, 404, "Entry not found");
        char etag[WP_SHA256_HEX + 3];
        snprintf(etag, sizeof etag, "\"%s\"", f->sha);
        if (f->flags & TL_MOCKHUB_LFS) {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            char loc[MH_NAME_MAX * 2], size[32];
            if (f->flags & TL_MOCKHUB_AWAY)
                snprintf(loc, sizeof loc, "http://127.0.0.2:%d/cdn/%s", tl_mockhub_port(h),
                         f->name);
            else
                snprintf(loc, sizeof loc, "/cdn/%s", f->name);
            snprintf(size, sizeof size, "%zu", f->len);
            MHD_add_response_header(r, "Location", loc);
            MHD_add_response_header(r, "X-Linked-Etag", etag);
            MHD_add_response_header(r, "X-Linked-Size", size);
            MHD_add_response_header(r, "ETag", "\"0000000000000000000000000000000000000000\"");
            enum MHD_Result ret = MHD_queue_response(conn, 302, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (f->flags & TL_MOCKHUB_BARE)
            return serve_bare(conn, f);
        return serve_bytes(h, conn, f, etag);
    }
    if (strncmp(url, "/cdn/", 5) == 0) {
        mh_file *f = find(h, url + 5);
        if (f == NULL || !(f->flags & TL_MOCKHUB_LFS))
            return send_text(conn, 404, "no such object");
        return serve_bytes(h, conn, f, "\"cdn-etag-not-a-sha\"");
    }
    return send_text(conn, 404, "not found");
}

tl_mockhub *tl_mockhub_start(const char *repo)
{
    tl_mockhub *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    snprintf(h->repo, sizeof h->repo, "%s", repo);
    pthread_mutex_init(&h->lock, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (h->d == NULL) {
        fprintf(stderr, "mockhub: cannot start libmicrohttpd on 127.0.0.1\n");
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    return h;
}

int tl_mockhub_add(tl_mockhub *h, const char *name, const void *data, size_t len, int flags,
                   int cut)
{
    if (h->nfiles >= MH_FILES_MAX || strlen(name) >= MH_NAME_MAX)
        return -1;
    mh_file *f = &h->files[h->nfiles];
    f->data = malloc(len ? len : 1);
    if (f->data == NULL)
        return -1;
    memcpy(f->data, data, len);
    f->len = len;
    f->flags = flags;
    f->cut = cut;
    snprintf(f->name, sizeof f->name, "%s", name);
    uint8_t d[WP_SHA256_LEN];
    if (wp_sha256_buf(data, len, d) != 0)
        return -1;
    wp_hex(d, WP_SHA256_LEN, f->sha);
    pthread_mutex_lock(&h->lock);
    h->nfiles++;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

int tl_mockhub_port(const tl_mockhub *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

int tl_mockhub_requests(tl_mockhub *h, const char *path, int *ranged)
{
    int n = 0, r = 0;
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < h->ncounts; i++)
        if (strcmp(h->counts[i].path, path) == 0) {
            n = h->counts[i].requests;
            r = h->counts[i].ranged;
        }
    pthread_mutex_unlock(&h->lock);
    if (ranged != NULL)
        *ranged = r;
    return n;
}

void tl_mockhub_stop(tl_mockhub *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    for (int i = 0; i < h->nfiles; i++)
        free(h->files[i].data);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
