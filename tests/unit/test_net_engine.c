/*
 * tests/unit/test_net_engine.c: the request engine against the fixture
 * server on 127.0.0.1: success, status classes, retries (5xx, 429 and 503
 * with Retry-After, the delay checked in the server's log, resets), low-speed abort, size caps
 * (with and without Content-Length, gzip bomb), redirects (chain, loop, to a blocked address),
 * X-Robots-Tag, content sniffing, per-host caps, abort.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/net.h"
#include "tests/lib/httpd.h"
#include "tests/lib/testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXR 512

struct got {
    int done;
    char cls[64];
    char opt_out[NET_DIRECTIVE_MAX];
    char ct[NET_CT_MAX];
    int status, attempts, redirects;
    char redirect_url[512];
    size_t body_len;
    char *body;
};

struct fx {
    tl_httpd *h;
    const char *root;
    char base[64];
    net_acl *acl;
    struct got got[MAXR];
};

static void on_done(void *cb_ud, net_result *r)
{
    struct fx *f = cb_ud;
    struct got *g = &f->got[(intptr_t)r->ud];
    g->done++;
    snprintf(g->cls, sizeof g->cls, "%s", r->error_class ? r->error_class : "ok");
    snprintf(g->opt_out, sizeof g->opt_out, "%s", r->opt_out);
    snprintf(g->ct, sizeof g->ct, "%s", r->content_type);
    g->status = r->http_status;
    g->attempts = r->attempts;
    g->redirects = r->redirects;
    snprintf(g->redirect_url, sizeof g->redirect_url, "%s", r->redirect_url ? r->redirect_url : "");
    g->body_len = r->body.len;
    free(g->body);
    g->body = r->body.len ? wp_buf_steal(&r->body) : NULL;
}

static const char *sniff_html(void *cb_ud, void *ud, const void *p, size_t n)
{
    return n >= 5 && memcmp(p, "<!DOC", 5) == 0 ? "not_an_image" : NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *shared = tl_shared_dir("test images for the fixture server");
    if (f == NULL)
        return -1;
    *state = f;
    if (shared == NULL)
        return 0;
    f->root = tl_shared_path("testdata/images");
    static char root[1024];
    snprintf(root, sizeof root, "%s", f->root);
    f->root = root;
    f->h = tl_httpd_start(root);
    if (f->h == NULL)
        return -1;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", tl_httpd_port(f->h));
    f->acl = net_acl_new();
    return net_acl_add(f->acl, "127.0.0.1/32", NULL);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tl_httpd_stop(f->h);
    net_acl_free(f->acl);
    for (int i = 0; i < MAXR; i++)
        free(f->got[i].body);
    free(f);
    return 0;
}

static void reset_got(struct fx *f)
{
    for (int i = 0; i < MAXR; i++) {
        free(f->got[i].body);
        memset(&f->got[i], 0, sizeof f->got[i]);
    }
}

static void base_opts(struct fx *f, net_opts *o)
{
    net_opts_init(o);
    o->allow = f->acl;
    o->backoff_base_s = 0.05;
    o->retries = 2;
    o->low_speed_bytes = 100;
    o->low_speed_time_s = 1;
    o->total_timeout_ms = 20000;
}

/* Runs the given paths to completion; got[i] is the result of paths[i]. */
static void run_paths(struct fx *f, const net_opts *o, const char **paths, int n, int flags)
{
    net_engine *e = NULL;
    wp_err err = {0};
    char url[1024];
    reset_got(f);
    assert_int_equal(net_new(o, on_done, sniff_html, f, &e, &err), 0);
    for (int i = 0; i < n; i++) {
        if (strncmp(paths[i], "http", 4) == 0)
            snprintf(url, sizeof url, "%s", paths[i]);
        else
            snprintf(url, sizeof url, "%s%s", f->base, paths[i]);
        assert_int_equal(net_submit(e, url, flags, (void *)(intptr_t)i, &err), 0);
    }
    while (net_pending(e) > 0)
        assert_int_equal(net_run(e, 100, &err), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(f->got[i].done, 1);
    net_free(e);
}

#define NEED_SERVER(f)                                                                             \
    do {                                                                                           \
        if ((f)->h == NULL)                                                                        \
            skip();                                                                                \
    } while (0)

static void test_ok_body_matches_file(void **state)
{
    struct fx *f = *state;
    net_opts o;
    char path[1200];
    size_t n;
    NEED_SERVER(f);
    base_opts(f, &o);
    const char *paths[] = {"/img/chelsea.jpg", "/img/chelsea.webp?ct=text/html"};
    run_paths(f, &o, paths, 2, 0);
    snprintf(path, sizeof path, "%s/chelsea.jpg", f->root);
    char *want = tl_slurp(path, &n);
    assert_string_equal(f->got[0].cls, "ok");
    assert_int_equal(f->got[0].status, 200);
    assert_string_equal(f->got[0].ct, "image/jpeg");
    assert_int_equal(f->got[0].body_len, n);
    assert_memory_equal(f->got[0].body, want, n);
    free(want);
    assert_string_equal(f->got[1].cls, "ok");
    assert_string_equal(f->got[1].ct, "text/html");
}

static void test_status_classes_and_retries(void **state)
{
    struct fx *f = *state;
    net_opts o;
    NEED_SERVER(f);
    base_opts(f, &o);
    const char *paths[] = {
        "/status?code=404",
        "/status?code=503",
        "/flaky?key=s500&n=1&code=500",
        "/flaky?key=s429&n=1&code=429&ra=1",
        "/flaky?key=s403&n=1&code=403",
        "/reset?key=r1&n=1",
        "/reset?key=rall&n=-1",
        "/status?code=304",
        "http://127.0.0.1:1/nothing-listens-here",
    };
    run_paths(f, &o, paths, 9, 0);
    assert_string_equal(f->got[0].cls, "http_4xx");
    assert_int_equal(f->got[0].status, 404);
    assert_int_equal(f->got[0].attempts, 1); /* 4xx is never retried */
    assert_string_equal(f->got[1].cls, "http_5xx");
    assert_int_equal(f->got[1].attempts, 3); /* 1 + retries */
    assert_string_equal(f->got[2].cls, "ok");
    assert_int_equal(f->got[2].attempts, 2);
    assert_string_equal(f->got[3].cls, "ok"); /* 429, Retry-After honoured, then 200 */
    assert_int_equal(f->got[3].attempts, 2);
    assert_string_equal(f->got[4].cls, "http_4xx");
    assert_int_equal(f->got[4].attempts, 1);
    assert_string_equal(f->got[5].cls, "ok"); /* reset mid-body, retried */
    assert_int_equal(f->got[5].attempts, 2);
    assert_string_equal(f->got[6].cls, "reset");
    assert_int_equal(f->got[6].attempts, 3);
    assert_string_equal(f->got[7].cls, "http_3xx"); /* a 3xx that is not a redirect */
    assert_int_equal(f->got[7].status, 304);
    assert_string_equal(f->got[8].cls, "connect"); /* refused: not retried */
    assert_int_equal(f->got[8].attempts, 1);
}

static void test_retry_after_too_long_gives_up(void **state)
{
    struct fx *f = *state;
    net_opts o;
    NEED_SERVER(f);
    base_opts(f, &o);
    o.retry_after_max_s = 5;
    const char *paths[] = {"/flaky?key=long429&n=1&code=429&ra=3600"};
    run_paths(f, &o, paths, 1, 0);
    assert_string_equal(f->got[0].cls, "http_4xx");
    assert_int_equal(f->got[0].status, 429);
    assert_int_equal(f->got[0].attempts, 1);
}

/* Retry-After on a 429 and on a 503 sets the earliest retry: the server's
 * own log shows the second request at least that long after the first
 * (the backoff alone would retry within 0.1 s here). A lower bound only:
 * a busy machine can make the gap longer, never shorter. */
static void test_retry_after_delays_the_retry(void **state)
{
    struct fx *f = *state;
    net_opts o;
    double t0, t1;
    NEED_SERVER(f);
    base_opts(f, &o);
    const char *p429[] = {"/flaky?key=ra429&n=1&code=429&ra=2"};
    run_paths(f, &o, p429, 1, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_int_equal(f->got[0].attempts, 2);
    assert_int_equal(tl_httpd_key_log(f->h, "ra429", &t0, &t1), 2);
    printf("429 with Retry-After: 2: retried after %.3f s\n", t1 - t0);
    assert_true(t1 - t0 >= 2.0);
    const char *p503[] = {"/flaky?key=ra503&n=1&code=503&ra=1"};
    run_paths(f, &o, p503, 1, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_int_equal(f->got[0].attempts, 2);
    assert_int_equal(tl_httpd_key_log(f->h, "ra503", &t0, &t1), 2);
    printf("503 with Retry-After: 1: retried after %.3f s\n", t1 - t0);
    assert_true(t1 - t0 >= 1.0);
    /* Without Retry-After the backoff alone sets the delay: at least half
     * the 0.05 s base (full jitter). */
    const char *p5[] = {"/flaky?key=ra500&n=1&code=503"};
    run_paths(f, &o, p5, 1, 0);
    assert_int_equal(tl_httpd_key_log(f->h, "ra500", &t0, &t1), 2);
    assert_true(t1 - t0 >= 0.025);
}

/* A 429 is about the host: with one connection per host, the next URL of
 * that host waits out the Retry-After too (the server's log shows it
 * arriving at least that long after the 429'd request). */
static void test_429_pauses_the_whole_host(void **state)
{
    struct fx *f = *state;
    net_opts o;
    double a0, a1, b0, b1;
    NEED_SERVER(f);
    base_opts(f, &o);
    o.per_host = 1;
    const char *paths[] = {"/flaky?key=host429&n=1&code=429&ra=2",
                           "/flaky?key=host_next&n=0&code=500"};
    run_paths(f, &o, paths, 2, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_string_equal(f->got[1].cls, "ok");
    assert_int_equal(f->got[1].attempts, 1);
    assert_int_equal(tl_httpd_key_log(f->h, "host429", &a0, &a1), 2);
    assert_int_equal(tl_httpd_key_log(f->h, "host_next", &b0, &b1), 1);
    printf("429 at %.3f, next URL of the host at %+.3f s\n", a0, b0 - a0);
    assert_true(b0 - a0 >= 2.0);
}

static void test_size_caps_and_slow_bodies(void **state)
{
    struct fx *f = *state;
    net_opts o;
    NEED_SERVER(f);
    base_opts(f, &o);
    o.max_bytes = 100000;
    const char *paths[] = {
        "/big?n=200000&cl=1", "/big?n=200000&cl=0",         "/gzbomb?n=50000000",
        "/big?n=99000&cl=0",  "/trickle?n=50&delay_ms=300",
    };
    run_paths(f, &o, paths, 5, NET_REQ_NO_RETRY);
    assert_string_equal(f->got[0].cls, "too_large");
    assert_string_equal(f->got[1].cls, "too_large");
    assert_string_equal(f->got[2].cls, "too_large");
    assert_string_equal(f->got[3].cls, "ok");
    assert_int_equal(f->got[3].body_len, 99000);
    assert_string_equal(f->got[4].cls, "timeout");
}

static void test_redirects(void **state)
{
    struct fx *f = *state;
    net_opts o;
    char to[256];
    NEED_SERVER(f);
    base_opts(f, &o);
    snprintf(to, sizeof to, "/redirect?to=http://127.0.0.2:%d/img/chelsea.jpg",
             tl_httpd_port(f->h));
    const char *paths[] = {"/redir?n=3&file=chelsea.jpg", "/loop", to,
                           "/redirect?to=ftp://127.0.0.1/x", "/redir?n=6"};
    long before;
    tl_httpd_stats st;
    run_paths(f, &o, paths, 5, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_int_equal(f->got[0].redirects, 3);
    assert_string_equal(f->got[1].cls, "too_many_redirects");
    assert_string_equal(f->got[2].cls, "blocked_address");
    assert_string_equal(f->got[3].cls, "bad_scheme");
    assert_string_equal(f->got[4].cls, "too_many_redirects");
    /* The guard without an allow list refuses 127.0.0.1 itself, and nothing
     * reaches the server. */
    tl_httpd_get_stats(f->h, &st);
    before = st.requests;
    o.allow = NULL;
    const char *direct[] = {"/img/chelsea.jpg", "http://0x7f.0.0.1:1/img/chelsea.jpg"};
    run_paths(f, &o, direct, 2, 0);
    assert_string_equal(f->got[0].cls, "blocked_address");
    assert_string_equal(f->got[1].cls, "blocked_address");
    tl_httpd_get_stats(f->h, &st);
    assert_int_equal(st.requests, before);
}

/* A name with two addresses: the guard refuses 127.0.0.2 (not in the
 * allow list), curl goes on to 127.0.0.1 (allowed) and the image arrives:
 * ok, not blocked_address. blocked_address only when every address was
 * refused; a refused one followed by an allowed one that cannot be reached
 * is a connect failure. */
/* A port on 127.0.0.1 where nothing listens (bound, then let go). */
static int unused_port(void)
{
    struct sockaddr_in sa;
    socklen_t n = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &n) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_dual_stack_refused_then_allowed_is_ok(void **state)
{
    struct fx *f = *state;
    net_opts o;
    char pin[5][128], url[6][160];
    int port, dead;
    NEED_SERVER(f);
    port = tl_httpd_port(f->h);
    dead = unused_port();
    assert_true(dead > 0);
    snprintf(pin[0], sizeof pin[0], "two.test:%d:127.0.0.2,127.0.0.1", port);
    snprintf(pin[1], sizeof pin[1], "first.test:%d:127.0.0.1,127.0.0.2", port);
    snprintf(pin[2], sizeof pin[2], "refused.test:%d:127.0.0.2,127.0.0.3", port);
    snprintf(pin[3], sizeof pin[3], "dead.test:%d:127.0.0.2,127.0.0.1", dead);
    snprintf(pin[4], sizeof pin[4], "hop.test:%d:127.0.0.2,127.0.0.1", port);
    const char *resolve[] = {pin[0], pin[1], pin[2], pin[3], pin[4], NULL};
    snprintf(url[0], sizeof url[0], "http://two.test:%d/img/chelsea.jpg", port);
    snprintf(url[1], sizeof url[1], "http://first.test:%d/img/chelsea.jpg", port);
    snprintf(url[2], sizeof url[2], "http://refused.test:%d/img/chelsea.jpg", port);
    snprintf(url[3], sizeof url[3], "http://dead.test:%d/img/chelsea.jpg", dead);
    /* A redirect to a two-address name, and one to a name whose every
     * address is refused (after a first hop that connected). */
    snprintf(url[4], sizeof url[4], "/redirect?to=http://hop.test:%d/img/chelsea.jpg", port);
    snprintf(url[5], sizeof url[5], "/redirect?to=http://refused.test:%d/img/chelsea.jpg", port);
    base_opts(f, &o);
    o.resolve = resolve;
    o.retries = 0;
    const char *paths[] = {url[0], url[1], url[2], url[3], url[4], url[5]};
    run_paths(f, &o, paths, 6, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_int_equal(f->got[0].status, 200);
    assert_true(f->got[0].body_len > 1000);
    assert_string_equal(f->got[1].cls, "ok");
    assert_string_equal(f->got[2].cls, "blocked_address");
    assert_string_equal(f->got[3].cls, "connect");
    assert_string_equal(f->got[4].cls, "ok");
    assert_int_equal(f->got[4].redirects, 1);
    assert_string_equal(f->got[5].cls, "blocked_address");
}

/* NET_REQ_NO_FOLLOW: the first 3xx ends the request, its Location made
 * absolute, and the server is asked nothing more. */
static void test_no_follow_hands_back_the_target(void **state)
{
    struct fx *f = *state;
    net_opts o;
    char want[256];
    tl_httpd_stats st;
    long before;
    NEED_SERVER(f);
    base_opts(f, &o);
    const char *paths[] = {"/redir?n=3&file=chelsea.jpg", "/redirect?to=http://a.example/x",
                           "/img/chelsea.jpg"};
    tl_httpd_get_stats(f->h, &st);
    before = st.requests;
    run_paths(f, &o, paths, 3, NET_REQ_NO_FOLLOW);
    assert_string_equal(f->got[0].cls, "http_3xx");
    assert_int_equal(f->got[0].status, 302);
    assert_int_equal(f->got[0].redirects, 0);
    assert_int_equal(f->got[0].attempts, 1); /* never retried */
    assert_int_equal(f->got[0].body_len, 0);
    snprintf(want, sizeof want, "%s/redir?n=2&file=chelsea.jpg", f->base);
    assert_string_equal(f->got[0].redirect_url, want);
    assert_string_equal(f->got[1].redirect_url, "http://a.example/x");
    assert_string_equal(f->got[2].cls, "ok");
    assert_string_equal(f->got[2].redirect_url, "");
    tl_httpd_get_stats(f->h, &st);
    assert_int_equal(st.requests - before, 3);
    /* Without the flag the same chain is followed to the image. */
    run_paths(f, &o, paths, 1, 0);
    assert_string_equal(f->got[0].cls, "ok");
    assert_string_equal(f->got[0].redirect_url, "");
}

static void test_robots_tag_and_sniff(void **state)
{
    struct fx *f = *state;
    net_opts o;
    NEED_SERVER(f);
    base_opts(f, &o);
    o.robot_tokens = "witpipe,mytoken";
    const char *paths[] = {"/xrobots?v=noai", "/xrobots?v=otherbot:%20noai",
                           "/xrobots?v=mytoken:%20noimageindex", "/html", "/xrobots?v=noarchive"};
    run_paths(f, &o, paths, 5, 0);
    assert_string_equal(f->got[0].cls, "opt_out");
    assert_string_equal(f->got[0].opt_out, "noai");
    assert_int_equal(f->got[0].body_len, 0);
    assert_string_equal(f->got[1].cls, "ok");
    assert_string_equal(f->got[2].cls, "opt_out");
    assert_string_equal(f->got[2].opt_out, "noimageindex");
    assert_string_equal(f->got[3].cls, "not_an_image");
    assert_string_equal(f->got[4].cls, "ok");
    /* NET_REQ_NO_OPTOUT (pages, robots.txt) ignores the header. */
    run_paths(f, &o, paths, 1, NET_REQ_NO_OPTOUT);
    assert_string_equal(f->got[0].cls, "ok");
}

static void test_per_host_cap_from_server_log(void **state)
{
    struct fx *f = *state;
    net_opts o;
    static const char *paths[300];
    char host[64];
    NEED_SERVER(f);
    base_opts(f, &o);
    o.parallel = 32;
    o.per_host = 3;
    for (int i = 0; i < 300; i++)
        paths[i] = "/slow?ms=5&file=tiny_48.jpg";
    run_paths(f, &o, paths, 300, 0);
    for (int i = 0; i < 300; i++)
        assert_string_equal(f->got[i].cls, "ok");
    snprintf(host, sizeof host, "127.0.0.1:%d", tl_httpd_port(f->h));
    int seen = tl_httpd_host_max_active(f->h, host);
    assert_true(seen >= 1);
    assert_true(seen <= 3);
}

/* With a gap between request starts far longer than a response takes, the
 * server never sees two requests of the host at once, although --per-host
 * would allow four. */
static void test_host_delay_serialises_a_host(void **state)
{
    struct fx *f = *state;
    net_opts o;
    char host[64];
    NEED_SERVER(f);
    base_opts(f, &o);
    o.per_host = 4;
    o.host_delay_s = 1.0;
    const char *paths[] = {"/slow?ms=200&file=tiny_48.jpg&d=1", "/slow?ms=200&file=tiny_48.jpg&d=2",
                           "/slow?ms=200&file=tiny_48.jpg&d=3"};
    tl_httpd_stop(f->h); /* a fresh server, so its log holds only these */
    f->h = tl_httpd_start(f->root);
    assert_non_null(f->h);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", tl_httpd_port(f->h));
    run_paths(f, &o, paths, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_string_equal(f->got[i].cls, "ok");
    snprintf(host, sizeof host, "127.0.0.1:%d", tl_httpd_port(f->h));
    assert_int_equal(tl_httpd_host_max_active(f->h, host), 1);
}

static void test_abort_all_calls_back_each(void **state)
{
    struct fx *f = *state;
    net_opts o;
    net_engine *e = NULL;
    char url[256];
    NEED_SERVER(f);
    base_opts(f, &o);
    o.per_host = 2;
    reset_got(f);
    assert_int_equal(net_new(&o, on_done, NULL, f, &e, NULL), 0);
    snprintf(url, sizeof url, "%s/slow?ms=2000", f->base);
    for (int i = 0; i < 10; i++)
        assert_int_equal(net_submit(e, url, 0, (void *)(intptr_t)i, NULL), 0);
    assert_int_equal(net_run(e, 50, NULL), 0);
    assert_int_equal(net_active(e), 2);
    net_abort_all(e);
    assert_int_equal(net_pending(e), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(f->got[i].done, 1);
        assert_string_equal(f->got[i].cls, "aborted");
    }
    net_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_body_matches_file),
        cmocka_unit_test(test_status_classes_and_retries),
        cmocka_unit_test(test_retry_after_too_long_gives_up),
        cmocka_unit_test(test_retry_after_delays_the_retry),
        cmocka_unit_test(test_429_pauses_the_whole_host),
        cmocka_unit_test(test_size_caps_and_slow_bodies),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_dual_stack_refused_then_allowed_is_ok),
        cmocka_unit_test(test_no_follow_hands_back_the_target),
        cmocka_unit_test(test_robots_tag_and_sniff),
        cmocka_unit_test(test_per_host_cap_from_server_log),
        cmocka_unit_test(test_host_delay_serialises_a_host),
        cmocka_unit_test(test_abort_all_calls_back_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
