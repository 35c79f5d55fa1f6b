/*
 * clip/hub.c: `witpipe model pull`: a CLIP model folder from a Hugging
 * Face style hub into the local model cache, one file at a time with the
 * libcurl easy interface, resumable and verified (see clip/hub.h).
 */
#include "clip/clip.h"
#include "net/net.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HUB_URL_MAX       4096
#define HUB_HEADER_MAX    512 /* longest header value kept */
#define HUB_ERRBODY_MAX   512
#define HUB_REDIRECTS_MAX 10
#define HUB_USER_AGENT    "witpipe/" WP_VERSION

/* The files a CLIP needs, in the order they are fetched; weights come last
 * so that a broken repository fails before the big download. */
static const char *const hub_small_files[] = {
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "bpe_simple_vocab_16e6.txt.gz",
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void hub_curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- names and paths ---------------------------------------------------- */

/* A repository id is one or two path segments of [A-Za-z0-9._-], neither
 * empty nor "." / "..". */
static int repo_valid(const char *repo)
{
    size_t n = strlen(repo);
    if (n == 0 || n > CLIP_HUB_REPO_MAX)
        return 0;
    int slashes = 0;
    const char *seg = repo;
    for (const char *p = repo;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t sl = (size_t)(p - seg);
            if (sl == 0 || (sl == 1 && seg[0] == '.') ||
                (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*p == '\0')
                break;
            if (++slashes > 1)
                return 0;
            seg = p + 1;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return 0;
    }
    return 1;
}

int clip_hub_cache_root(char out[WP_PATH_MAX], wp_err *err)
{
    const char *hf = getenv("HF_HOME");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (hf != NULL && hf[0] != '\0')
        n = snprintf(out, WP_PATH_MAX, "%s/witpipe/models", hf);
    else if (xdg != NULL && xdg[0] != '\0')
        n = snprintf(out, WP_PATH_MAX, "%s/witpipe/models", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, WP_PATH_MAX, "%s/.cache/witpipe/models", home);
    else
        return wp_err_set(err, WP_EINVAL,
                          "model cache: neither HF_HOME, XDG_CACHE_HOME nor HOME is set");
    if (n < 0 || n >= WP_PATH_MAX)
        return wp_err_set(err, WP_ELIMIT, "model cache: path longer than %d bytes", WP_PATH_MAX);
    return 0;
}

/* ---- one HTTP transfer ---------------------------------------------------- */

typedef struct xfer {
    /* what the caller sets */
    FILE *f;      /* body goes here (resume: opened for appending) */
    int64_t have; /* bytes already in f when asking for a range */
    wp_buf *mem;  /* or here (API answers); limit mem_max */
    size_t mem_max;
    const clip_hub_opts *o;
    const net_acl *allow; /* addresses the guard lets through: the endpoint's */
    int blocked;          /* the guard refused an address (redirect target) */
    char blocked_detail[96];
    /* what the headers said */
    int hop;                          /* responses seen (redirects included) */
    char linked_etag[HUB_HEADER_MAX]; /* X-Linked-Etag (any hop) */
    int64_t linked_size;              /* X-Linked-Size (any hop), -1 */
    char first_etag[HUB_HEADER_MAX];  /* ETag of the first response */
    int64_t content_length;           /* of the last response, -1 */
    int64_t range_start, range_total; /* Content-Range of the last response, -1 */
    /* the body */
    long status;    /* status of the response whose body arrived */
    int body_open;  /* the first body byte was seen and f set up */
    int64_t got;    /* body bytes received */
    int write_fail; /* the file write failed (errno) */
    char errbody[HUB_ERRBODY_MAX];
    size_t errbody_len;
    /* progress */
    int64_t done_before; /* bytes of earlier files, for the progress line */
    int64_t total_hint;
    double last_report;
} xfer;

static void trim_value(const char *v, size_t n, char *out, size_t cap)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return 1;
}

static int64_t parse_i64(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return -1;
    return (int64_t)v;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    const char *v;
    size_t vn;
    char val[HUB_HEADER_MAX];
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        x->hop++;
        x->content_length = -1;
        x->range_start = x->range_total = -1;
        return n;
    }
    if (header_is(buf, n, "X-Linked-Etag", &v, &vn)) {
        trim_value(v, vn, x->linked_etag, sizeof x->linked_etag);
    } else if (header_is(buf, n, "X-Linked-Size", &v, &vn)) {
        trim_value(v, vn, val, sizeof val);
        x->linked_size = parse_i64(val);
    } else if (header_is(buf, n, "ETag", &v, &vn)) {
        if (x->hop == 1)
            trim_value(v, vn, x->first_etag, sizeof x->first_etag);
    } else if (header_is(buf, n, "Content-Length", &v, &vn)) {
        trim_value(v, vn, val, sizeof val);
        x->content_length = parse_i64(val);
    } else if (header_is(buf, n, "Content-Range", &v, &vn)) {
        /* RFC 9110 section 14.4: bytes first-last/complete */
        trim_value(v, vn, val, sizeof val);
        long long a, b, t;
        if (sscanf(val, "bytes %lld-%lld/%lld", &a, &b, &t) == 3 && a >= 0 && t > 0) {
            x->range_start = a;
            x->range_total = t;
        } else if (sscanf(val, "bytes */%lld", &t) == 1 && t >= 0) {
            x->range_total = t; /* with 416: the complete length */
        }
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->body_open) {
        x->body_open = 1;
        if (x->f != NULL && x->status == 206) {
            /* a resumed range must start where the file ends */
            if (x->range_start != x->have)
                return 0;
        } else if (x->f != NULL && x->status == 200) {
            /* the server sent the whole file: start over */
            if (fflush(x->f) != 0 || ftruncate(fileno(x->f), 0) != 0 ||
                fseeko(x->f, 0, SEEK_SET) != 0) {
                x->write_fail = errno ? errno : EIO;
                return 0;
            }
            x->have = 0;
        }
    }
    if (x->status != 200 && x->status != 206) {
        size_t room = sizeof x->errbody - 1 - x->errbody_len;
        size_t k = n < room ? n : room;
        memcpy(x->errbody + x->errbody_len, buf, k);
        x->errbody_len += k;
        x->errbody[x->errbody_len] = '\0';
        return n;
    }
    if (x->mem != NULL) {
        if (x->mem->len + n > x->mem_max || wp_buf_append(x->mem, buf, n) != 0)
            return 0;
    } else if (x->f != NULL) {
        if (fwrite(buf, 1, n, x->f) != n) {
            x->write_fail = errno ? errno : EIO;
            return 0;
        }
    }
    x->got += (int64_t)n;
    return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = ud;
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    if (wp_stop_requested())
        return 1;
    if (x->o->rep != NULL && x->mem == NULL) {
        double now = wp_now();
        if (now - x->last_report >= 0.2) {
            x->last_report = now;
            wp_progress p = {.stage = "pull",
                             .unit = "bytes",
                             .done = (uint64_t)(x->done_before + x->have + dlnow),
                             .total = (uint64_t)(x->total_hint > 0 ? x->total_hint : 0),
                             .bytes = (uint64_t)(x->done_before + x->have + dlnow)};
            wp_report_progress(x->o->rep, &p);
        }
    }
    return 0;
}

/* Status of the response whose headers just completed: set before any body
 * byte arrives through the header callback's final empty line. */
static size_t on_header_status(char *buf, size_t size, size_t nitems, void *ud);

typedef struct xfer_ctx {
    xfer *x;
    CURL *h;
} xfer_ctx;

static size_t on_header_status(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_ctx *c = ud;
    size_t n = size * nitems;
    if (n <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
        c->x->status = code;
    }
    return on_header(buf, size, nitems, c->x);
}

/* The SSRF guard of the hub client (the same verdict as net/'s engine,
 * net_addr_check): every address curl connects to, redirect hops
 * included, must be public unless it is one of the endpoint's own (the
 * user chose the endpoint, e.g. a mirror on the local network; a redirect
 * may not lead anywhere else that is not public). */
static curl_socket_t hub_open_socket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *addr)
{
    xfer *x = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    int cls = net_addr_check(x->allow, &addr->addr);
    if (cls != NET_ADDR_PUBLIC) {
        x->blocked = 1;
        snprintf(x->blocked_detail, sizeof x->blocked_detail, "blocked_address: a %s address",
                 net_addr_class_name(cls));
        return CURL_SOCKET_BAD; /* refused before any packet is sent; curl tries the next */
    }
    /* An address passed: a failure from here on is not the guard's, as in
     * net/'s engine (a dual-stack name whose other address was refused). */
    x->blocked = 0;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static int set_common(CURL *h, const clip_hub_opts *o, struct curl_slist **hdrs, wp_err *err)
{
    const char *token = o->token != NULL ? o->token : getenv("HF_TOKEN");
    if (token != NULL && token[0] != '\0') {
        char auth[HUB_HEADER_MAX];
        int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        if (n < 0 || (size_t)n >= sizeof auth)
            return wp_err_set(err, WP_ELIMIT, "hub: token longer than %d bytes", HUB_HEADER_MAX);
        struct curl_slist *l = curl_slist_append(*hdrs, auth);
        if (l == NULL)
            return wp_err_set(err, WP_ENOMEM, "hub: out of memory");
        *hdrs = l;
    }
    long ct = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
    long stall = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
    /* curl sends the Authorization header above only to the host it was
     * set for, never to the CDN a redirect leads to. */
    if (curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)HUB_REDIRECTS_MAX) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, ct) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, HUB_USER_AGENT) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, hub_open_socket) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK) /* the guard must see the peer */
        return wp_err_set(err, CLIP_HUB_EHTTP, "hub: libcurl refused an option");
    return 0;
}

/* Runs one GET of url into x. Returns the CURLcode; x->status holds the
 * final status. */
static CURLcode run_get(const char *url, xfer *x, wp_err *err, int *rc)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    CURLcode cc = CURLE_FAILED_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    *rc = 0;
    if (h == NULL) {
        *rc = wp_err_set(err, WP_ENOMEM, "%s: cannot start libcurl", url);
        return cc;
    }
    xfer_ctx c = {x, h};
    x->hop = 0;
    x->linked_etag[0] = x->first_etag[0] = '\0';
    x->linked_size = x->content_length = x->range_start = x->range_total = -1;
    x->status = 0;
    x->body_open = 0;
    x->got = 0;
    x->write_fail = 0;
    x->errbody_len = 0;
    x->errbody[0] = '\0';
    x->blocked = 0;
    x->blocked_detail[0] = '\0';
    char range[64];
    if ((*rc = set_common(h, x->o, &hdrs, err)) != 0)
        goto out;
    if (x->f != NULL && x->have > 0) {
        /* RFC 9110 section 14.1.2: bytes=first- asks for the rest */
        snprintf(range, sizeof range, "%lld-", (long long)x->have);
        if (curl_easy_setopt(h, CURLOPT_RANGE, range) != CURLE_OK) {
            *rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: libcurl refused a range", url);
            goto out;
        }
    }
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_status) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &c) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
        *rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: libcurl refused an option", url);
        goto out;
    }
    cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (code != 0)
        x->status = code;
    if (cc != CURLE_OK && x->blocked) {
        char *eff = NULL;
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
        wp_err_set(err, CLIP_HUB_EHTTP, "%s: %s (redirected to %s)", url, x->blocked_detail,
                   eff ? eff : "?");
    } else if (cc != CURLE_OK) {
        wp_err_set(err, CLIP_HUB_EHTTP, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return cc;
}

/* ---- the file list --------------------------------------------------------- */

static int url_join(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int url_join(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, HUB_URL_MAX, fmt, ap);
    va_end(ap);
    return (n < 0 || n >= HUB_URL_MAX) ? -1 : 0;
}

/* The top-level files of the repository at the revision, as a JSON array
 * of names (caller json_decref's). */
static int list_files(const char *endpoint, const char *repo, const char *rev_esc,
                      const clip_hub_opts *o, const net_acl *allow, json_t **names, wp_err *err)
{
    char url[HUB_URL_MAX];
    wp_buf body = {0};
    json_t *root = NULL;
    int rc;
    *names = NULL;
    if (url_join(url, "%s/api/models/%s/revision/%s", endpoint, repo, rev_esc) != 0)
        return wp_err_set(err, WP_ELIMIT, "hub: URL longer than %d bytes", HUB_URL_MAX);
    xfer x = {.mem = &body, .mem_max = CLIP_HUB_API_MAX, .o = o, .allow = allow};
    CURLcode cc = run_get(url, &x, err, &rc);
    if (rc != 0)
        goto out;
    if (cc != CURLE_OK) {
        rc = CLIP_HUB_EHTTP;
        goto out;
    }
    if (x.status != 200) {
        rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: HTTP %ld%s", url, x.status,
                        x.status == 401 || x.status == 403 || x.status == 404
                            ? " (no such repository or revision, or it needs a token: HF_TOKEN)"
                            : "");
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
    json_t *sib = root ? json_object_get(root, "siblings") : NULL;
    if (!json_is_array(sib)) {
        rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: answer has no \"siblings\" list%s%s", url,
                        root ? "" : ": ", root ? "" : jerr.text);
        goto out;
    }
    *names = json_array();
    if (*names == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "hub: out of memory");
        goto out;
    }
    size_t i;
    json_t *s;
    json_array_foreach(sib, i, s)
    {
        const char *f = json_string_value(json_object_get(s, "rfilename"));
        if (f != NULL && json_array_append_new(*names, json_string(f)) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "hub: out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    if (rc != 0) {
        json_decref(*names);
        *names = NULL;
    }
    json_decref(root);
    wp_buf_free(&body);
    return rc;
}

static int has_name(json_t *names, const char *f)
{
    size_t i;
    json_t *s;
    json_array_foreach(names, i, s)
    {
        if (strcmp(json_string_value(s), f) == 0)
            return 1;
    }
    return 0;
}

/* ---- one file ---------------------------------------------------------------- */

/* The SHA-256 an ETag value carries ("hex", W/"hex"), or NULL. */
static const char *etag_sha256(const char *etag, char out[WP_SHA256_HEX + 1])
{
    const char *p = etag;
    if (strncmp(p, "W/", 2) == 0)
        p += 2;
    if (*p == '"')
        p++;
    size_t n = 0;
    while (isxdigit((unsigned char)p[n]) && n <= WP_SHA256_HEX)
        n++;
    if (n != WP_SHA256_HEX || (p[n] != '"' && p[n] != '\0'))
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    return out;
}

static int file_sha256(const char *path, char hex[WP_SHA256_HEX + 1], wp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return wp_err_set(err, WP_EIO, "%s: cannot open: %s", path, strerror(errno));
    wp_sha256 *h = wp_sha256_new();
    int rc = 0;
    if (h == NULL) {
        fclose(f);
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (wp_sha256_update(h, buf, n) != 0) {
            rc = wp_err_set(err, WP_EIO, "%s: hashing failed", path);
            break;
        }
    if (rc == 0 && ferror(f))
        rc = wp_err_set(err, WP_EIO, "%s: read error", path);
    uint8_t d[WP_SHA256_LEN];
    if (rc == 0 && wp_sha256_final(h, d) != 0)
        rc = wp_err_set(err, WP_EIO, "%s: hashing failed", path);
    if (rc == 0)
        wp_hex(d, WP_SHA256_LEN, hex);
    wp_sha256_free(h);
    fclose(f);
    return rc;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Downloads url into dest (via dest.part), resuming and verifying.
 * *received gets the bytes that came over the wire. */
static int fetch_file(const char *url, const char *dest, const clip_hub_opts *o,
                      const net_acl *allow, int64_t done_before, int64_t *received, wp_err *err)
{
    char part[WP_PATH_MAX];
    int n = snprintf(part, sizeof part, "%s.part", dest);
    if (n < 0 || (size_t)n >= sizeof part)
        return wp_err_set(err, WP_ELIMIT, "%s: path too long", dest);
    int attempts = o->attempts > 0 ? o->attempts : 5;
    int rc = CLIP_HUB_EHTTP;
    *received = 0;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0)
            sleep_s(attempt < 4 ? 0.25 * (1 << attempt) : 4.0);
        if (wp_stop_requested())
            return wp_err_set(err, WP_ESTOP, "%s: stopped (partial download kept)", url);
        FILE *f = fopen(part, "ab");
        if (f == NULL)
            return wp_err_set(err, WP_EIO, "%s: cannot open: %s", part, strerror(errno));
        xfer x = {.f = f, .o = o, .allow = allow, .done_before = done_before};
        x.have = file_size(part);
        if (x.have < 0)
            x.have = 0;
        int crc;
        CURLcode cc = run_get(url, &x, err, &crc);
        int close_fail = fclose(f) != 0;
        *received += x.got;
        if (crc != 0)
            return crc;
        if (x.write_fail || close_fail)
            return wp_err_set(err, WP_EIO, "%s: write failed: %s", part,
                              strerror(x.write_fail ? x.write_fail : errno));
        if (cc == CURLE_ABORTED_BY_CALLBACK && wp_stop_requested())
            return wp_err_set(err, WP_ESTOP, "%s: stopped (partial download kept)", url);

        int64_t expect = x.linked_size;
        if (expect < 0 && (x.status == 206 || x.status == 416))
            expect = x.range_total;
        if (expect < 0 && x.status == 200)
            expect = x.content_length;
        char shabuf[WP_SHA256_HEX + 1];
        const char *sha = etag_sha256(x.linked_etag, shabuf);
        if (sha == NULL)
            sha = etag_sha256(x.first_etag, shabuf);

        if (x.status == 416) {
            /* RFC 9110 section 15.5.17: the range starts at or past the end;
             * the .part may already be whole, else start over */
            if (!(x.have > 0 && expect == x.have)) {
                unlink(part);
                rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: HTTP 416 for a resumed download", url);
                continue;
            }
        } else if (cc != CURLE_OK) {
            rc = CLIP_HUB_EHTTP; /* err set by run_get; the .part is kept to resume */
            if (cc == CURLE_WRITE_ERROR && x.status == 206) {
                unlink(part); /* a range that does not fit the .part */
                wp_err_set(err, CLIP_HUB_EHTTP, "%s: range answer does not continue %s", url, part);
            }
            continue;
        } else if (x.status != 200 && x.status != 206) {
            rc = wp_err_set(err, CLIP_HUB_EHTTP, "%s: HTTP %ld", url, x.status);
            if (x.status == 408 || x.status == 429 || x.status >= 500)
                continue;
            if (file_size(part) == 0)
                unlink(part);
            return rc;
        }
        if (expect < 0 && sha == NULL) {
            /* nothing to check the body against: a truncated or swapped
             * file would be saved as if verified */
            unlink(part);
            return wp_err_set(err, CLIP_HUB_EVERIFY,
                              "%s: the hub announced neither a size nor a SHA-256; refusing "
                              "an unverifiable download",
                              url);
        }
        int64_t size = file_size(part);
        if (expect >= 0 && size != expect) {
            if (size > expect)
                unlink(part);
            rc = wp_err_set(err, CLIP_HUB_EVERIFY, "%s: %lld bytes, the hub announced %lld", url,
                            (long long)size, (long long)expect);
            continue;
        }
        if (sha != NULL) {
            char got[WP_SHA256_HEX + 1];
            if ((rc = file_sha256(part, got, err)) != 0)
                return rc;
            if (strcmp(got, sha) != 0) {
                unlink(part);
                rc = wp_err_set(err, CLIP_HUB_EVERIFY, "%s: SHA-256 %s, the hub announced %s", url,
                                got, sha);
                continue;
            }
        }
        if (rename(part, dest) != 0)
            return wp_err_set(err, WP_EIO, "%s: cannot rename into place: %s", dest,
                              strerror(errno));
        return 0;
    }
    if (file_size(part) == 0)
        unlink(part); /* nothing worth resuming */
    return rc;
}

/* Adds the addresses of the endpoint's host to allow: the user named that
 * host, so it may be private (a mirror) or loopback (tests); every other
 * address a redirect leads to must be public. A name that does not resolve
 * adds nothing (the transfer then fails with the resolver's error). */
static int allow_endpoint(const char *endpoint, net_acl *allow, wp_err *err)
{
    CURLU *u = curl_url();
    char *host = NULL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = 0;

    if (u == NULL)
        return wp_err_set(err, WP_ENOMEM, "hub: out of memory");
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = wp_err_set(err, WP_EINVAL, "hub: endpoint '%s' is not a URL", endpoint);
        goto out;
    }
    /* an IPv6 literal comes back bracketed; strip for the resolver */
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    if (getaddrinfo(h, NULL, &hints, &res) != 0)
        goto out;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        char txt[INET6_ADDRSTRLEN];
        const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            inet_ntop(a->ai_family, p, txt, sizeof txt) == NULL)
            continue;
        if ((rc = net_acl_add(allow, txt, err)) != 0)
            goto out;
    }
out:
    if (res != NULL)
        freeaddrinfo(res);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* ---- the whole pull ------------------------------------------------------------ */

int clip_hub_pull(const char *repo, const clip_hub_opts *opts, clip_hub_result *res, wp_err *err)
{
    clip_hub_opts o = opts ? *opts : (clip_hub_opts){0};
    clip_hub_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    if (!repo_valid(repo))
        return wp_err_set(err, WP_EINVAL, "'%s' is not a repository name (org/name)", repo);
    const char *rev = o.revision && o.revision[0] ? o.revision : "main";
    const char *endpoint = o.endpoint;
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = getenv("HF_ENDPOINT");
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = CLIP_HUB_ENDPOINT;
    char ep[HUB_URL_MAX];
    size_t el = strlen(endpoint);
    if (el >= sizeof ep)
        return wp_err_set(err, WP_ELIMIT, "hub: endpoint longer than %d bytes", HUB_URL_MAX);
    memcpy(ep, endpoint, el + 1);
    while (el > 0 && ep[el - 1] == '/')
        ep[--el] = '\0';
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return wp_err_set(err, WP_EINVAL, "hub: endpoint '%s' is not an http(s) URL", ep);

    pthread_once(&curl_once, hub_curl_init);
    if (curl_init_rc != CURLE_OK)
        return wp_err_set(err, CLIP_HUB_EHTTP, "hub: libcurl failed to start");

    char root[WP_PATH_MAX];
    int rc;
    if (o.cache != NULL && o.cache[0] != '\0') {
        if (strlen(o.cache) >= sizeof root)
            return wp_err_set(err, WP_ELIMIT, "model cache: path too long");
        strcpy(root, o.cache);
    } else if ((rc = clip_hub_cache_root(root, err)) != 0) {
        return rc;
    }
    char sub[CLIP_HUB_REPO_MAX + HUB_HEADER_MAX];
    if (strcmp(rev, "main") == 0) {
        snprintf(sub, sizeof sub, "%s", repo);
    } else {
        int n = snprintf(sub, sizeof sub, "%s@%s", repo, rev);
        if (n < 0 || (size_t)n >= sizeof sub)
            return wp_err_set(err, WP_ELIMIT, "hub: revision too long");
        for (char *p = sub + strlen(repo) + 1; *p; p++)
            if (*p == '/' || *p == '\\')
                *p = '_';
        if (strstr(sub + strlen(repo), "..") != NULL)
            return wp_err_set(err, WP_EINVAL, "hub: revision '%s' is not allowed", rev);
    }
    if ((rc = wp_path_join(res->dir, root, sub, err)) != 0)
        return rc;

    char *rev_esc = curl_easy_escape(NULL, rev, 0);
    json_t *names = NULL;
    net_acl *allow = NULL;
    if (rev_esc == NULL)
        return wp_err_set(err, WP_ENOMEM, "hub: out of memory");
    if ((allow = net_acl_new()) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "hub: out of memory");
        goto out;
    }
    if ((rc = allow_endpoint(ep, allow, err)) != 0)
        goto out;
    if ((rc = list_files(ep, repo, rev_esc, &o, allow, &names, err)) != 0)
        goto out;

    /* Which weights: the transformers layout if it is complete, else the
     * open_clip one. */
    const char *weights = NULL;
    if (has_name(names, "config.json") && has_name(names, "model.safetensors"))
        weights = "model.safetensors";
    else if (has_name(names, "open_clip_model.safetensors"))
        weights = "open_clip_model.safetensors";
    if (weights == NULL) {
        rc = wp_err_set(err, CLIP_HUB_ENOFILES,
                        "%s@%s: no model.safetensors (with config.json) or "
                        "open_clip_model.safetensors",
                        repo, rev);
        goto out;
    }
    if ((rc = wp_mkdir_p(res->dir, err)) != 0)
        goto out;

    /* Only the chosen layout's config, so that the folder is unambiguous to
     * the model loader. */
    const char *want[sizeof hub_small_files / sizeof hub_small_files[0] + 2];
    int nwant = 0;
    int hf = strcmp(weights, "model.safetensors") == 0;
    if (hf || has_name(names, "open_clip_config.json"))
        want[nwant++] = hf ? "config.json" : "open_clip_config.json";
    for (size_t i = 0; i < sizeof hub_small_files / sizeof hub_small_files[0]; i++)
        if (has_name(names, hub_small_files[i]))
            want[nwant++] = hub_small_files[i];
    want[nwant++] = weights;
    if (!(has_name(names, "vocab.json") && has_name(names, "merges.txt")) &&
        !has_name(names, "bpe_simple_vocab_16e6.txt.gz") && !has_name(names, "tokenizer.json"))
        wp_report_event(o.rep, WP_LOG_WARN, "no_tokenizer",
                        "%s@%s: no vocab.json + merges.txt, tokenizer.json or "
                        "bpe_simple_vocab_16e6.txt.gz in the "
                        "repository; copy the OpenAI BPE vocabulary into %s",
                        repo, rev, res->dir);

    for (int i = 0; i < nwant; i++) {
        char dest[WP_PATH_MAX], url[HUB_URL_MAX];
        if ((rc = wp_path_join(dest, res->dir, want[i], err)) != 0)
            goto out;
        if (wp_file_exists(dest)) {
            res->kept++;
            continue;
        }
        if (url_join(url, "%s/%s/resolve/%s/%s", ep, repo, rev_esc, want[i]) != 0) {
            rc = wp_err_set(err, WP_ELIMIT, "hub: URL longer than %d bytes", HUB_URL_MAX);
            goto out;
        }
        int64_t got = 0;
        rc = fetch_file(url, dest, &o, allow, res->bytes, &got, err);
        res->bytes += got;
        if (rc != 0)
            goto out;
        res->fetched++;
        wp_report_event(o.rep, WP_LOG_INFO, "pulled", "%s (%lld bytes)", dest,
                        (long long)file_size(dest));
    }
    rc = wp_fsync_dir(res->dir, err);
out:
    net_acl_free(allow);
    json_decref(names);
    curl_free(rev_esc);
    return rc;
}
