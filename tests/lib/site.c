/*
 * tests/lib/site.c: the static fixture web site for crawl tests (see
 * site.h). Thread per connection; files are sent from their descriptors.
 */
#include "site.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SITE_PATHS_MAX 1024
#define SITE_PATH_LEN  512

struct tl_site {
    struct MHD_Daemon *d;
    char root[1024];
    int port;
    pthread_mutex_t mu;
    struct {
        char path[SITE_PATH_LEN];
        long hits;
    } paths[SITE_PATHS_MAX];
    int npaths;
};

static void count(tl_site *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->npaths; i++)
        if (strcmp(s->paths[i].path, path) == 0) {
            s->paths[i].hits++;
            goto out;
        }
    if (s->npaths < SITE_PATHS_MAX) {
        snprintf(s->paths[s->npaths].path, SITE_PATH_LEN, "%s", path);
        s->paths[s->npaths++].hits = 1;
    }
out:
    pthread_mutex_unlock(&s->mu);
}

long tl_site_hits(tl_site *s, const char *path)
{
    long n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->npaths; i++)
        if (strcmp(s->paths[i].path, path) == 0)
            n = s->paths[i].hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

long tl_site_requests(tl_site *s)
{
    long n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->npaths; i++)
        n += s->paths[i].hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Reads a small sibling file (PATH.suffix) into out; 1 if it exists. */
static int sidecar(const char *file, const char *suffix, char *out, size_t n)
{
    char p[2048];
    FILE *f;
    size_t k;
    snprintf(p, sizeof p, "%s%s", file, suffix);
    if ((f = fopen(p, "rb")) == NULL)
        return 0;
    k = fread(out, 1, n - 1, f);
    fclose(f);
    while (k > 0 && (out[k - 1] == '\n' || out[k - 1] == '\r'))
        k--;
    out[k] = '\0';
    return 1;
}

static const char *ctype_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL || strchr(dot, '/') != NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html";
    if (strcmp(dot, ".txt") == 0)
        return "text/plain";
    if (strcmp(dot, ".jpg") == 0)
        return "image/jpeg";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    return "application/octet-stream";
}

/* The generated big page: a few images up front, then filler. */
struct big {
    uint64_t n;
};

static ssize_t big_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    static const char head[] = "<html><head><title>Big</title></head><body>"
                               "<img src=\"/img/big-first.jpg\" alt=\"in a huge page\">";
    static const char fill[] = "<p>filler filler filler filler filler filler filler</p>\n";
    struct big *b = cls;
    size_t k = 0;
    if (pos >= b->n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    while (k < max && pos + k < b->n) {
        uint64_t at = pos + k;
        char c =
            at < sizeof head - 1 ? head[at] : fill[(at - (sizeof head - 1)) % (sizeof fill - 1)];
        buf[k++] = c;
    }
    return (ssize_t)k;
}

static enum MHD_Result answer(struct MHD_Connection *c, struct MHD_Response *r, int code)
{
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    tl_site *s = cls;
    char file[2048], side[1024];
    struct MHD_Response *r;
    struct stat st;
    int code = 200, fd;
    (void)method;
    (void)version;
    (void)upload;
    if (*state == NULL) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    count(s, url);
    if (strstr(url, "..") != NULL)
        return answer(c, MHD_create_response_from_buffer(3, (void *)"bad", MHD_RESPMEM_PERSISTENT),
                      400);
    snprintf(file, sizeof file, "%s%s", s->root, url);
    if (stat(file, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s%s%sindex.html", s->root, url,
                 url[strlen(url) - 1] == '/' ? "" : "/");
    if (sidecar(file, ".location", side, sizeof side)) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r != NULL)
            MHD_add_response_header(r, "Location", side);
        return answer(c, r, 302);
    }
    if (sidecar(file, ".bigmb", side, sizeof side)) {
        struct big *b = malloc(sizeof *b);
        if (b == NULL)
            return MHD_NO;
        b->n = (uint64_t)atol(side) << 20;
        r = MHD_create_response_from_callback(b->n, 64 * 1024, big_read, b, free);
        if (r != NULL)
            MHD_add_response_header(r, "Content-Type", "text/html");
        return answer(c, r, 200);
    }
    if (sidecar(file, ".delayms", side, sizeof side))
        usleep((useconds_t)atoi(side) * 1000);
    if (sidecar(file, ".status", side, sizeof side))
        code = atoi(side);
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return answer(
            c, MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT),
            code != 200 ? code : 404);
    }
    r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (r == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            sidecar(file, ".ct", side, sizeof side) ? side : ctype_of(file));
    if (sidecar(file, ".xrobots", side, sizeof side))
        for (char *v = side, *nl; v != NULL; v = nl ? nl + 1 : NULL) {
            if ((nl = strchr(v, '\n')) != NULL)
                *nl = '\0';
            MHD_add_response_header(r, "X-Robots-Tag", v);
        }
    return answer(c, r, code);
}

tl_site *tl_site_start(const char *root)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    tl_site *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    snprintf(s->root, sizeof s->root, "%s", root);
    pthread_mutex_init(&s->mu, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_POLL,
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (s->d == NULL) {
        fprintf(stderr, "site: MHD_start_daemon failed\n");
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

int tl_site_port(const tl_site *s)
{
    return s->port;
}

void tl_site_stop(tl_site *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
