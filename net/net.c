/*
 * net/net.c: the request engine: libcurl multi, driven by net_run from one
 * thread, with witpipe's own per-host scheduler in front of it (so queued
 * requests cost a few bytes, not a curl handle), retries with backoff, and
 * the SSRF guard in curl's open-socket callback, which sees the resolved
 * address of every connection, including each redirect hop.
 */
#include "net.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOST_BUCKETS    4096
#define HOST_KEY_MAX    300   /* a host name (RFC 1035: at most 253 characters) */
#define ERROR_BODY_MAX  65536 /* error bodies drained (for connection reuse) up to this */
#define HEADER_LINE_MAX 8192  /* longer header lines are ignored */
#define POLL_MAX_MS     1000

typedef struct net_host net_host;

typedef struct net_req {
    struct net_req *next, *prev; /* host queue or delayed list */
    net_engine *e;
    net_host *host;
    char *url;
    void *ud;
    int flags;
    CURL *easy;
    int attempts;
    double first_start, start, not_before;
    /* per attempt */
    wp_buf body;
    int status;
    int discard; /* an error response: drain, do not keep */
    size_t discarded;
    int sniffed;
    const char *abort_class; /* set by a callback that stopped the transfer */
    char opt_out[NET_DIRECTIVE_MAX];
    unsigned robots;               /* NET_ROBOTS_* of this response's X-Robots-Tag lines */
    char xrobots[NET_XROBOTS_MAX]; /* those lines, joined by '\n' */
    char ct[NET_CT_MAX];
    double retry_after; /* seconds, < 0 if absent */
    int blocked;        /* the guard refused an address */
    int refused_run;    /* addresses refused since the last socket opened */
    char blocked_detail[96];
    char errbuf[CURL_ERROR_SIZE];
} net_req;

struct net_host {
    net_host *hnext;         /* hash chain */
    net_host *wnext, *wprev; /* hosts with queued requests */
    int in_wait;
    net_req *qhead, *qtail;
    int nq;
    int active;
    int delayed; /* requests of this host waiting for a retry */
    double next_ok;
    char key[HOST_KEY_MAX];
};

struct net_engine {
    net_opts o;
    char *user_agent, *tokens, *directives;
    net_done_fn done;
    net_sniff_fn sniff;
    void *cb_ud;
    CURLM *multi;
    net_host *buckets[HOST_BUCKETS];
    net_host *wait_head, *wait_tail;
    net_req *delayed; /* retries waiting for their backoff */
    double last_sweep;
    net_req *running;           /* transfers in curl (curl 7.88 cannot list them) */
    struct curl_slist *resolve; /* o.resolve for CURLOPT_RESOLVE, or NULL */
    size_t pending, active;
    unsigned rng;
    net_stats st;
};

static CURLcode g_init_rc = CURLE_FAILED_INIT;

void net_opts_init(net_opts *o)
{
    memset(o, 0, sizeof *o);
    o->parallel = 64;
    o->per_host = 4;
    o->host_delay_s = 0;
    o->connect_timeout_ms = 10000;
    o->total_timeout_ms = 60000;
    o->low_speed_bytes = 1024;
    o->low_speed_time_s = 10;
    o->max_bytes = 20 * 1000 * 1000;
    o->retries = 2;
    o->backoff_base_s = 0.5;
    o->backoff_max_s = 30;
    o->retry_after_max_s = 120;
    o->user_agent = "witpipe/" WP_VERSION " (+https://github.com/witpipe/witpipe)";
    o->robot_tokens = "witpipe";
    o->directives = NULL;
    o->ssrf_guard = 1;
    o->allow = NULL;
}

/* ---- hosts ------------------------------------------------------------ */

/* The politeness key of a URL: its host name, lowercased. Scheme and port
 * do not matter: http and https, or two ports, of one site are one server
 * to be polite to. An URL curl cannot parse gets the key "?"; curl then
 * fails it quickly with bad_url. */
static void host_key(const char *url, char out[HOST_KEY_MAX])
{
    CURLU *u = curl_url();
    char *host = NULL;
    snprintf(out, HOST_KEY_MAX, "?");
    if (u == NULL)
        return;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        snprintf(out, HOST_KEY_MAX, "%s", host);
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    curl_free(host);
    curl_url_cleanup(u);
}

static net_host *host_get(net_engine *e, const char *key)
{
    uint64_t h = wp_fnv1a64(key, strlen(key)) % HOST_BUCKETS;
    for (net_host *x = e->buckets[h]; x != NULL; x = x->hnext)
        if (strcmp(x->key, key) == 0)
            return x;
    net_host *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    snprintf(x->key, sizeof x->key, "%s", key);
    x->hnext = e->buckets[h];
    e->buckets[h] = x;
    return x;
}

/* Frees a host that has nothing queued or running: memory stays
 * proportional to the in-flight window, not to the hosts ever seen. */
static void host_maybe_free(net_engine *e, net_host *x)
{
    if (x->nq > 0 || x->active > 0 || x->delayed > 0 || x->in_wait)
        return;
    /* Keep the entry while its politeness delay is still running. */
    if (x->next_ok > wp_now())
        return;
    uint64_t h = wp_fnv1a64(x->key, strlen(x->key)) % HOST_BUCKETS;
    for (net_host **pp = &e->buckets[h]; *pp != NULL; pp = &(*pp)->hnext)
        if (*pp == x) {
            *pp = x->hnext;
            free(x);
            return;
        }
}

static void wait_add(net_engine *e, net_host *x)
{
    if (x->in_wait)
        return;
    x->in_wait = 1;
    x->wnext = NULL;
    x->wprev = e->wait_tail;
    if (e->wait_tail)
        e->wait_tail->wnext = x;
    else
        e->wait_head = x;
    e->wait_tail = x;
}

static void wait_remove(net_engine *e, net_host *x)
{
    if (!x->in_wait)
        return;
    if (x->wprev)
        x->wprev->wnext = x->wnext;
    else
        e->wait_head = x->wnext;
    if (x->wnext)
        x->wnext->wprev = x->wprev;
    else
        e->wait_tail = x->wprev;
    x->in_wait = 0;
    x->wnext = x->wprev = NULL;
}

static void queue_push(net_engine *e, net_host *x, net_req *r, int front)
{
    r->prev = r->next = NULL;
    if (front) {
        r->next = x->qhead;
        if (x->qhead)
            x->qhead->prev = r;
        else
            x->qtail = r;
        x->qhead = r;
    } else {
        r->prev = x->qtail;
        if (x->qtail)
            x->qtail->next = r;
        else
            x->qhead = r;
        x->qtail = r;
    }
    x->nq++;
    wait_add(e, x);
}

static net_req *queue_pop(net_engine *e, net_host *x)
{
    net_req *r = x->qhead;
    if (r == NULL)
        return NULL;
    x->qhead = r->next;
    if (x->qhead)
        x->qhead->prev = NULL;
    else
        x->qtail = NULL;
    x->nq--;
    r->next = r->prev = NULL;
    if (x->nq == 0)
        wait_remove(e, x);
    return r;
}

/* ---- curl callbacks ----------------------------------------------------- */

static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    net_req *r = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (r->e->o.ssrf_guard) {
        int cls = net_addr_check(r->e->o.allow, &addr->addr);
        if (cls != NET_ADDR_PUBLIC) {
            r->blocked = 1;
            r->refused_run++;
            snprintf(r->blocked_detail, sizeof r->blocked_detail, "%s address",
                     net_addr_class_name(cls));
            return CURL_SOCKET_BAD; /* refused before any packet is sent; curl tries the next */
        }
    }
    /* An address passed: a dual-stack name whose other address was refused
     * is not a blocked request. */
    r->refused_run = 0;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static int starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp(s, prefix, k) == 0;
}

static void header_value(const char *s, size_t n, size_t skip, char *out, size_t outsz)
{
    const char *a = s + skip, *b = s + n;
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == '\r' || b[-1] == '\n' || b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t len = (size_t)(b - a);
    if (len >= outsz)
        len = outsz - 1;
    memcpy(out, a, len);
    out[len] = '\0';
}

static size_t header_cb(char *s, size_t size, size_t nitems, void *ud)
{
    net_req *r = ud;
    net_engine *e = r->e;
    size_t n = size * nitems;
    char val[HEADER_LINE_MAX];

    if (starts_with_ci(s, n, "HTTP/")) {
        /* A new response (redirect hop, 100 Continue): its headers alone
         * decide. */
        r->opt_out[0] = '\0';
        r->robots = 0;
        r->xrobots[0] = '\0';
        r->ct[0] = '\0';
        r->retry_after = -1;
        return n;
    }
    if (n > HEADER_LINE_MAX)
        return n;
    if (starts_with_ci(s, n, "content-type:")) {
        header_value(s, n, 13, r->ct, sizeof r->ct);
    } else if (starts_with_ci(s, n, "x-robots-tag:")) {
        /* RFC 9110 section 5.3: a field may arrive as several field
         * lines. Each is parsed on its own (net_robots_parse: a "bot:"
         * scope ends with its line), the flags OR-ed, the text kept for
         * the caller. */
        size_t have = strlen(r->xrobots);
        header_value(s, n, 13, val, sizeof val);
        r->robots |= net_robots_parse(val, e->tokens, wp_unix_time());
        if (have > 0 && have + 1 < sizeof r->xrobots)
            r->xrobots[have++] = '\n';
        snprintf(r->xrobots + have, sizeof r->xrobots - have, "%s", val);
    } else if (starts_with_ci(s, n, "retry-after:")) {
        /* RFC 9110 section 10.2.3: delay-seconds or an HTTP-date. */
        char *end;
        header_value(s, n, 12, val, sizeof val);
        long v = strtol(val, &end, 10);
        if (end != val && *end == '\0' && v >= 0) {
            r->retry_after = (double)v;
        } else {
            time_t t = curl_getdate(val, NULL);
            if (t != -1)
                r->retry_after = difftime(t, time(NULL)) > 0 ? difftime(t, time(NULL)) : 0;
        }
    } else if (n <= 2 && (s[0] == '\r' || s[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300 && status < 400 && !(r->flags & NET_REQ_NO_FOLLOW))
            return n; /* a redirect hop; curl follows it */
        r->status = (int)status;
        if (status >= 200 && status < 300 && !(r->flags & NET_REQ_NO_OPTOUT) &&
            net_robots_optout(r->robots, e->directives, r->opt_out)) {
            r->abort_class = NET_EC_OPT_OUT; /* decided before any body byte */
            return 0;
        }
        if ((status >= 400 && !(r->flags & NET_REQ_KEEP_ERROR_BODY)) ||
            (status >= 300 && status < 400))
            r->discard = 1; /* a 3xx here is not followed: its body is not wanted */
    }
    return n;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    net_req *r = ud;
    net_engine *e = r->e;
    size_t n = size * nmemb;

    if (r->discard) {
        r->discarded += n;
        return r->discarded > ERROR_BODY_MAX ? 0 : n;
    }
    /* The cap is counted here, on decoded bytes, so neither a missing or
     * lying Content-Length nor a compression bomb gets past it. */
    if ((int64_t)(r->body.len + n) > e->o.max_bytes) {
        r->abort_class = NET_EC_TOO_LARGE;
        return 0;
    }
    if (wp_buf_append(&r->body, p, n) != 0)
        return 0;
    e->st.bytes += n;
    if (!r->sniffed && e->sniff != NULL && r->body.len >= NET_SNIFF_LEN) {
        r->sniffed = 1;
        const char *cls = e->sniff(e->cb_ud, r->ud, r->body.data, r->body.len);
        if (cls != NULL) {
            r->abort_class = cls;
            return 0;
        }
    }
    return n;
}

/* ---- requests ------------------------------------------------------------ */

static void req_reset_attempt(net_req *r)
{
    wp_buf_reset(&r->body);
    r->status = 0;
    r->discard = 0;
    r->discarded = 0;
    r->sniffed = 0;
    r->abort_class = NULL;
    r->opt_out[0] = '\0';
    r->robots = 0;
    r->xrobots[0] = '\0';
    r->ct[0] = '\0';
    r->retry_after = -1;
    r->blocked = 0;
    r->refused_run = 0;
    r->blocked_detail[0] = '\0';
    r->errbuf[0] = '\0';
}

static void req_free(net_req *r)
{
    if (r == NULL)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    wp_buf_free(&r->body);
    free(r->url);
    free(r);
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(h, opt, val) != CURLE_OK)                                             \
            goto fail;                                                                             \
    } while (0)

static int req_start(net_engine *e, net_req *r, wp_err *err)
{
    CURL *h = curl_easy_init();
    const net_opts *o = &e->o;
    if (h == NULL)
        return wp_err_set(err, NET_ECURL, "%s: curl_easy_init failed", r->url);
    req_reset_attempt(r);
    r->easy = h;
    SETOPT(CURLOPT_URL, r->url);
    SETOPT(CURLOPT_PRIVATE, r);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROXY, ""); /* never an environment proxy: the guard checks our peers */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, (r->flags & NET_REQ_NO_FOLLOW) ? 0L : 1L);
    SETOPT(CURLOPT_MAXREDIRS, (long)NET_MAX_REDIRECTS);
    SETOPT(CURLOPT_USERAGENT, e->user_agent);
    SETOPT(CURLOPT_ACCEPT_ENCODING, ""); /* decoded bytes count against the cap */
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
    if (o->low_speed_bytes > 0 && o->low_speed_time_s > 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes);
        SETOPT(CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    }
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SETOPT(CURLOPT_PIPEWAIT, 1L);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    SETOPT(CURLOPT_OPENSOCKETDATA, r);
    if (e->resolve != NULL)
        SETOPT(CURLOPT_RESOLVE, e->resolve);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, r);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, r);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    if (curl_multi_add_handle(e->multi, h) != CURLM_OK)
        goto fail;
    r->attempts++;
    r->start = wp_now();
    if (r->attempts == 1)
        r->first_start = r->start;
    r->prev = NULL;
    r->next = e->running;
    if (e->running)
        e->running->prev = r;
    e->running = r;
    r->host->active++;
    if (r->host->active > e->st.max_host_active)
        e->st.max_host_active = r->host->active;
    e->active++;
    e->st.started++;
    return 0;
fail:
    curl_easy_cleanup(h);
    r->easy = NULL;
    return wp_err_set(err, NET_ECURL, "%s: setting up the transfer failed", r->url);
}

static int is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

static const char *class_of_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return NET_EC_DNS;
    case CURLE_COULDNT_CONNECT:
        return NET_EC_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return NET_EC_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return NET_EC_TOO_LARGE;
    case CURLE_TOO_MANY_REDIRECTS:
        return NET_EC_REDIRECTS;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return NET_EC_SCHEME;
    case CURLE_URL_MALFORMAT:
        return NET_EC_BAD_URL;
    case CURLE_BAD_CONTENT_ENCODING:
        return NET_EC_ENCODING;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return NET_EC_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return NET_EC_TLS;
    default:
        return NET_EC_NETWORK;
    }
}

static const char *class_of_status(int s)
{
    if (s >= 500)
        return NET_EC_HTTP_5XX;
    if (s >= 400)
        return NET_EC_HTTP_4XX;
    return NET_EC_HTTP_3XX;
}

static double backoff(net_engine *e, int attempt)
{
    double d = e->o.backoff_base_s * pow(2.0, attempt - 1);
    if (d > e->o.backoff_max_s)
        d = e->o.backoff_max_s;
    /* Full jitter in [d/2, d): retries from many transfers do not land on
     * a recovering server at the same instant. */
    e->rng = e->rng * 1103515245u + 12345u;
    return d * (0.5 + 0.5 * ((e->rng >> 8) & 0xffff) / 65536.0);
}

static void deliver(net_engine *e, net_req *r, const char *cls, const char *detail_fmt,
                    const char *detail_arg)
{
    net_result res;
    char *eff = NULL;
    long redirects = 0;
    memset(&res, 0, sizeof res);
    res.ud = r->ud;
    res.url = r->url;
    res.error_class = cls;
    res.http_status = r->status;
    res.attempts = r->attempts;
    if (r->easy) {
        curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff);
        curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    }
    res.final_url = eff;
    res.redirects = (int)redirects;
    if (r->easy && (r->flags & NET_REQ_NO_FOLLOW) && r->status >= 300 && r->status < 400) {
        char *loc = NULL;
        /* curl resolves Location against the request URL (RFC 9110
         * section 10.2.2 allows a relative reference). */
        if (curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK)
            res.redirect_url = loc;
    }
    snprintf(res.opt_out, sizeof res.opt_out, "%s", is(cls, NET_EC_OPT_OUT) ? r->opt_out : "");
    snprintf(res.content_type, sizeof res.content_type, "%s", r->ct);
    res.robots = r->robots;
    res.x_robots = r->xrobots;
    if (cls != NULL)
        snprintf(res.detail, sizeof res.detail, "%s: %s%s%s", r->url, detail_fmt,
                 detail_arg && detail_arg[0] ? ": " : "", detail_arg ? detail_arg : "");
    if (cls == NULL || (r->flags & NET_REQ_KEEP_ERROR_BODY)) {
        res.body = r->body;
        memset(&r->body, 0, sizeof r->body);
    }
    res.download_s = r->start > 0 ? wp_now() - r->start : 0;
    res.total_s = r->first_start > 0 ? wp_now() - r->first_start : 0;
    e->st.completed++;
    if (cls == NULL)
        e->st.ok++;
    else
        e->st.failed++;
    e->pending--;
    e->done(e->cb_ud, &res);
    wp_buf_free(&res.body);
}

static void running_unlink(net_engine *e, net_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        e->running = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

/* A finished transfer: decide its class, retry it, or deliver it. */
static void req_finish(net_engine *e, net_req *r, CURLcode code)
{
    const char *cls = NULL;
    const char *why = "";
    char whybuf[CURL_ERROR_SIZE + 32];
    net_host *x = r->host;
    double delay = 0;
    int retry = 0;
    long status = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->status == 0)
        r->status = (int)status; /* e.g. a final 3xx without Location */
    if (r->abort_class != NULL) {
        cls = r->abort_class;
        why = is(cls, NET_EC_OPT_OUT) ? "X-Robots-Tag" : "rejected by content sniffing";
        if (is(cls, NET_EC_TOO_LARGE)) {
            snprintf(whybuf, sizeof whybuf, "body over %lld bytes", (long long)e->o.max_bytes);
            why = whybuf;
        }
    } else if (r->blocked && r->refused_run > 0 && code != CURLE_OK) {
        /* blocked_address only when the transfer failed and no address
         * was opened after the guard's last refusal: every address curl
         * tried for the last connection was refused. A refusal followed by
         * a success on the name's next address is not one. */
        cls = NET_EC_BLOCKED;
        why = r->blocked_detail;
    } else if (r->discard) {
        cls = class_of_status(r->status);
        snprintf(whybuf, sizeof whybuf, "HTTP %d", r->status);
        why = whybuf;
    } else if (code != CURLE_OK) {
        cls = class_of_curl(code);
        snprintf(whybuf, sizeof whybuf, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        why = whybuf;
        if (code == CURLE_FILESIZE_EXCEEDED)
            cls = NET_EC_TOO_LARGE;
    } else if (r->status < 200 || r->status >= 300) {
        cls = class_of_status(r->status);
        snprintf(whybuf, sizeof whybuf, "HTTP %d", r->status);
        why = whybuf;
    } else if (e->sniff != NULL && !r->sniffed && r->body.len > 0) {
        r->sniffed = 1;
        cls = e->sniff(e->cb_ud, r->ud, r->body.data, r->body.len);
        why = "content sniffing";
    }

    if (cls != NULL && !(r->flags & NET_REQ_NO_RETRY) && r->attempts <= e->o.retries) {
        if (is(cls, NET_EC_TIMEOUT) || is(cls, NET_EC_RESET) || is(cls, NET_EC_HTTP_5XX) ||
            r->status == 429) {
            retry = 1;
            delay = backoff(e, r->attempts);
        }
        /* RFC 9110 section 10.2.3: Retry-After on a 429 or a 503. */
        if (retry && (r->status == 429 || r->status == 503) && r->retry_after >= 0) {
            if (r->retry_after > e->o.retry_after_max_s)
                retry = 0; /* the server asks for more patience than we have */
            else if (r->retry_after > delay)
                delay = r->retry_after;
        }
    }

    curl_multi_remove_handle(e->multi, r->easy);
    running_unlink(e, r);
    x->active--;
    e->active--;
    if (retry) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        e->st.retried++;
        r->not_before = wp_now() + delay;
        if (r->status == 429 && x->next_ok < r->not_before)
            x->next_ok = r->not_before; /* 429 is about the host, not the URL */
        x->delayed++;
        r->prev = NULL;
        r->next = e->delayed;
        if (e->delayed)
            e->delayed->prev = r;
        e->delayed = r;
        return;
    }
    deliver(e, r, cls, why, NULL);
    host_maybe_free(e, x);
    req_free(r);
}

/* ---- engine ---------------------------------------------------------------- */

int net_new(const net_opts *o, net_done_fn done, net_sniff_fn sniff, void *cb_ud, net_engine **out,
            wp_err *err)
{
    net_engine *e;
    *out = NULL;
    if (g_init_rc != CURLE_OK)
        g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (g_init_rc != CURLE_OK)
        return wp_err_set(err, NET_ECURL, "curl_global_init failed");
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return wp_err_set(err, WP_ENOMEM, "net_new: out of memory");
    e->o = *o;
    if (e->o.parallel < 1)
        e->o.parallel = 1;
    if (e->o.per_host < 1)
        e->o.per_host = 1;
    e->user_agent = strdup(o->user_agent ? o->user_agent : "witpipe/" WP_VERSION);
    e->tokens = strdup(o->robot_tokens ? o->robot_tokens : "witpipe");
    e->directives = strdup(o->directives ? o->directives : NET_DEFAULT_DIRECTIVES);
    e->done = done;
    e->sniff = sniff;
    e->cb_ud = cb_ud;
    e->rng = (unsigned)getpid() ^ (unsigned)time(NULL);
    e->multi = curl_multi_init();
    if (e->user_agent == NULL || e->tokens == NULL || e->directives == NULL || e->multi == NULL) {
        net_free(e);
        return wp_err_set(err, WP_ENOMEM, "net_new: out of memory");
    }
    for (const char *const *p = o->resolve; p != NULL && *p != NULL; p++) {
        struct curl_slist *l = curl_slist_append(e->resolve, *p);
        if (l == NULL) {
            net_free(e);
            return wp_err_set(err, WP_ENOMEM, "net_new: out of memory");
        }
        e->resolve = l;
    }
    e->o.resolve = NULL; /* borrowed: not kept past net_new */
    /* curl's own per-host cap backs ours up (it also covers redirect hops
     * to other hosts); one multi handle shares DNS cache and connections. */
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->o.per_host);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)e->o.parallel);
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->o.parallel * 2);
    curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    *out = e;
    return 0;
}

void net_abort_all(net_engine *e)
{
    if (e == NULL)
        return;
    while (e->delayed != NULL) {
        net_req *r = e->delayed;
        e->delayed = r->next;
        net_host *x = r->host;
        x->delayed--;
        deliver(e, r, NET_EC_ABORTED, "stopped before completion", NULL);
        host_maybe_free(e, x);
        req_free(r);
    }
    for (int i = 0; i < HOST_BUCKETS; i++) {
        net_host *x = e->buckets[i];
        while (x != NULL) {
            net_host *next = x->hnext;
            net_req *r;
            while ((r = queue_pop(e, x)) != NULL) {
                deliver(e, r, NET_EC_ABORTED, "stopped before completion", NULL);
                req_free(r);
            }
            x = next;
        }
    }
    while (e->running != NULL) {
        net_req *r = e->running;
        running_unlink(e, r);
        curl_multi_remove_handle(e->multi, r->easy);
        r->host->active--;
        e->active--;
        deliver(e, r, NET_EC_ABORTED, "stopped before completion", NULL);
        req_free(r);
    }
    for (int i = 0; i < HOST_BUCKETS; i++) {
        while (e->buckets[i] != NULL) {
            net_host *x = e->buckets[i];
            e->buckets[i] = x->hnext;
            free(x);
        }
    }
    e->wait_head = e->wait_tail = NULL;
}

void net_free(net_engine *e)
{
    if (e == NULL)
        return;
    net_abort_all(e);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    curl_slist_free_all(e->resolve);
    free(e->user_agent);
    free(e->tokens);
    free(e->directives);
    free(e);
}

int net_submit(net_engine *e, const char *url, int flags, void *ud, wp_err *err)
{
    char key[HOST_KEY_MAX];
    net_req *r;
    net_host *x;
    if (strlen(url) > NET_URL_MAX)
        return wp_err_set(err, WP_EINVAL, "URL longer than %d bytes", NET_URL_MAX);
    r = calloc(1, sizeof *r);
    if (r == NULL || (r->url = strdup(url)) == NULL) {
        free(r);
        return wp_err_set(err, WP_ENOMEM, "net_submit: out of memory");
    }
    host_key(url, key);
    x = host_get(e, key);
    if (x == NULL) {
        req_free(r);
        return wp_err_set(err, WP_ENOMEM, "net_submit: out of memory");
    }
    r->e = e;
    r->host = x;
    r->ud = ud;
    r->flags = flags;
    r->retry_after = -1;
    queue_push(e, x, r, 0);
    e->pending++;
    return 0;
}

/* Starts queued requests the limits allow; returns the seconds until the
 * next one could start (a large number when nothing waits). */
static double admit(net_engine *e, wp_err *err)
{
    double now = wp_now(), next = 3600;
    net_req *r, *rn;

    for (r = e->delayed; r != NULL; r = rn) {
        rn = r->next;
        if (r->not_before <= now) {
            if (r->prev)
                r->prev->next = r->next;
            else
                e->delayed = r->next;
            if (r->next)
                r->next->prev = r->prev;
            r->host->delayed--;
            queue_push(e, r->host, r, 1);
        } else if (r->not_before - now < next) {
            next = r->not_before - now;
        }
    }
    if (now - e->last_sweep > 1.0) {
        /* Hosts kept only for their politeness delay expire here. */
        e->last_sweep = now;
        for (int i = 0; i < HOST_BUCKETS; i++) {
            net_host *y = e->buckets[i], *yn;
            for (; y != NULL; y = yn) {
                yn = y->hnext;
                host_maybe_free(e, y);
            }
        }
    }
    net_host *x = e->wait_head, *xn;
    for (; x != NULL && e->active < (size_t)e->o.parallel; x = xn) {
        xn = x->wnext;
        while (x->nq > 0 && x->active < e->o.per_host && e->active < (size_t)e->o.parallel) {
            if (x->next_ok > now) {
                if (x->next_ok - now < next)
                    next = x->next_ok - now;
                break;
            }
            r = queue_pop(e, x);
            if (req_start(e, r, err) != 0) {
                /* Could not even set the transfer up: fail this request. */
                deliver(e, r, NET_EC_NETWORK, err ? err->msg : "setup failed", NULL);
                req_free(r);
                continue;
            }
            if (e->o.host_delay_s > 0)
                x->next_ok = now + e->o.host_delay_s;
        }
        /* Round robin: a host that just started work goes to the back. */
        if (x->in_wait && x != e->wait_tail) {
            wait_remove(e, x);
            wait_add(e, x);
        }
    }
    return next;
}

int net_run(net_engine *e, int timeout_ms, wp_err *err)
{
    int running = 0, left = 0;
    CURLMsg *m;
    double next = admit(e, err);
    long wait = timeout_ms;

    if (next * 1000 < wait)
        wait = (long)(next * 1000) + 1;
    if (wait > POLL_MAX_MS)
        wait = POLL_MAX_MS;
    /* curl_multi_poll also waits (for net_wakeup or the timeout) when no
     * transfer runs, e.g. while only retries are waiting. */
    if (e->active > 0 && curl_multi_perform(e->multi, &running) != CURLM_OK)
        return wp_err_set(err, NET_ECURL, "curl_multi_perform failed");
    if (wait > 0 && curl_multi_poll(e->multi, NULL, 0, (int)wait, NULL) != CURLM_OK)
        return wp_err_set(err, NET_ECURL, "curl_multi_poll failed");
    if (e->active > 0 && curl_multi_perform(e->multi, &running) != CURLM_OK)
        return wp_err_set(err, NET_ECURL, "curl_multi_perform failed");
    while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        net_req *r = NULL;
        CURLcode code = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r != NULL)
            req_finish(e, r, code);
    }
    admit(e, err);
    return 0;
}

void net_wakeup(net_engine *e)
{
    curl_multi_wakeup(e->multi);
}

size_t net_pending(const net_engine *e)
{
    return e->pending;
}

size_t net_active(const net_engine *e)
{
    return e->active;
}

void net_get_stats(const net_engine *e, net_stats *s)
{
    *s = e->st;
}
