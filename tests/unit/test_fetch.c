/*
 * tests/unit/test_fetch.c: the fetch stage end to end in-process: a corpus
 * with candidates for every case the fixture server serves, fetch_run, and
 * each image's recorded state, error class and stored bytes checked; the
 * per-host cap from the server's own log; header filters; stop + resume.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "fetch/fetch.h"
#include "image/image.h"
#include "store/store.h"
#include "tests/lib/httpd.h"
#include "tests/lib/robots_cases.h"
#include "tests/lib/testlib.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCASE_MAX 1200

struct fx {
    tl_httpd *h;
    char root[1024];
    char base[64];
    char dir[1024];
    cat *c;
    st_store *st;
    net_acl *acl;
    wp_arena *arena;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    *state = f;
    if (f == NULL)
        return -1;
    if (tl_shared_dir("test images for fetch") == NULL)
        return 0;
    snprintf(f->root, sizeof f->root, "%s", tl_shared_path("testdata/images"));
    f->h = tl_httpd_start(f->root);
    if (f->h == NULL)
        return -1;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", tl_httpd_port(f->h));
    f->acl = net_acl_new();
    f->arena = wp_arena_new(1 << 16);
    return net_acl_add(f->acl, "127.0.0.1/32", NULL);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tl_httpd_stop(f->h);
    net_acl_free(f->acl);
    wp_arena_free(f->arena);
    free(f);
    return 0;
}

/* A fresh corpus per test. */
static int corpus_open(struct fx *f)
{
    wp_err err = {0};
    snprintf(f->dir, sizeof f->dir, "%s", tl_mkdtemp());
    if (cat_open(f->dir, CAT_CREATE, &f->c, &err) != 0 || st_open(f->dir, &f->st, &err) != 0) {
        print_error("%s\n", err.msg);
        return -1;
    }
    return 0;
}

static void corpus_close(struct fx *f)
{
    st_close(f->st);
    cat_close(f->c);
    f->st = NULL;
    f->c = NULL;
    tl_rmtree(f->dir);
}

static int64_t add_url(struct fx *f, const char *path)
{
    char url[1024];
    cat_pair_in p;
    int64_t img = 0;
    wp_err err = {0};
    if (strncmp(path, "http", 4) == 0)
        snprintf(url, sizeof url, "%s", path);
    else
        snprintf(url, sizeof url, "%s%s", f->base, path);
    memset(&p, 0, sizeof p);
    p.url = url;
    p.url_len = strlen(url);
    p.text = "a caption";
    p.text_len = 9;
    assert_int_equal(cat_pair_add(f->c, &p, NULL, &img, NULL, &err), 0);
    return img;
}

static void opts_for_tests(struct fx *f, fetch_opts *o)
{
    fetch_opts_init(o);
    o->net.allow = f->acl;
    o->net.backoff_base_s = 0.05;
    o->net.low_speed_bytes = 100;
    o->net.low_speed_time_s = 1;
    o->net.max_bytes = 2000000;
    o->workers = 2;
    o->batch = 7; /* several commits per run */
}

static cat_image_result get(struct fx *f, int64_t id)
{
    cat_image_result r;
    wp_err err = {0};
    assert_int_equal(cat_image_get(f->c, id, &r, f->arena, &err), 0);
    return r;
}

static void expect_error(struct fx *f, int64_t id, const char *cls)
{
    cat_image_result r = get(f, id);
    if (r.error_class == NULL || strcmp(r.error_class, cls) != 0)
        print_error("image %lld: want %s, got %s/%s (%s)\n", (long long)id, cls, r.state,
                    r.error_class ? r.error_class : "-", r.error_detail ? r.error_detail : "-");
    assert_string_equal(r.state, "error");
    assert_non_null(r.error_class);
    assert_string_equal(r.error_class, cls);
    assert_int_equal(r.store_file, -1);
}

/* ok, and the stored bytes read back, match their sha256 and decode to the
 * recorded size. */
static cat_image_result expect_ok(struct fx *f, int64_t id)
{
    cat_image_result r = get(f, id);
    wp_err err = {0};
    img_image im = {0};
    img_decode_opts dop = {0};
    if (strcmp(r.state, "ok") != 0)
        print_error("image %lld: want ok, got %s/%s (%s)\n", (long long)id, r.state,
                    r.error_class ? r.error_class : "-", r.error_detail ? r.error_detail : "-");
    assert_string_equal(r.state, "ok");
    assert_null(r.error_class);
    assert_true(r.bytes > 0);
    assert_non_null(r.sha256);
    assert_non_null(r.orig_sha256);
    assert_true(r.orig_bytes > 0);
    uint8_t *buf = malloc((size_t)r.bytes);
    assert_non_null(buf);
    assert_int_equal(
        st_read_verified(f->st, r.store_file, r.store_offset, buf, (size_t)r.bytes, r.sha256, &err),
        0);
    assert_int_equal(img_decode(buf, (size_t)r.bytes, &dop, &im, &err), 0);
    assert_int_equal(im.width, r.width);
    assert_int_equal(im.height, r.height);
    img_free(&im);
    free(buf);
    return r;
}

#define NEED_SERVER(f)                                                                             \
    do {                                                                                           \
        if ((f)->h == NULL)                                                                        \
            skip();                                                                                \
    } while (0)

static void test_every_case_ends_in_expected_state(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    fetch_stats stats;
    wp_err err = {0};
    char path[1024];
    int64_t files[64];
    char names[64][256];
    int nfiles = 0;
    NEED_SERVER(f);
    assert_int_equal(corpus_open(f), 0);

    assert_int_equal(cat_begin(f->c, &err), 0);
    DIR *d = opendir(f->root);
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && nfiles < 64) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "truncated.jpg") == 0 ||
            strstr(de->d_name, ".md") != NULL)
            continue;
        snprintf(names[nfiles], sizeof names[0], "%s", de->d_name);
        snprintf(path, sizeof path, "/img/%s", de->d_name);
        files[nfiles++] = add_url(f, path);
    }
    closedir(d);
    assert_true(nfiles >= 10);
    int64_t s404 = add_url(f, "/status?code=404");
    int64_t f500 = add_url(f, "/flaky?key=f500&n=1&code=500");
    int64_t f429 = add_url(f, "/flaky?key=f429&n=1&code=429&ra=1");
    int64_t trickle = add_url(f, "/trickle?n=5000&delay_ms=400");
    int64_t big_cl = add_url(f, "/big?n=3000000&cl=1");
    int64_t big_nocl = add_url(f, "/big?n=3000000&cl=0");
    int64_t gz = add_url(f, "/gzbomb?n=30000000");
    int64_t wrong_ct = add_url(f, "/img/chelsea.jpg?ct=text/html");
    int64_t html = add_url(f, "/html");
    int64_t trunc = add_url(f, "/img/truncated.jpg");
    int64_t bomb = add_url(f, "/bomb");
    int64_t chain = add_url(f, "/redir?n=3&file=rocket.jpg");
    int64_t loop = add_url(f, "/loop");
    snprintf(path, sizeof path, "/redirect?to=http://127.0.0.2:%d/img/chelsea.jpg",
             tl_httpd_port(f->h));
    int64_t off_net = add_url(f, path);
    int64_t noai = add_url(f, "/xrobots?v=noai");
    int64_t other = add_url(f, "/xrobots?v=otherbot:%20noai&file=astronaut.jpg");
    int64_t reset_all = add_url(f, "/reset?key=rall&n=-1");
    int64_t reset_once = add_url(f, "/reset?key=r1&n=1&file=rocket.jpg");
    int64_t s503 = add_url(f, "/status?code=503");
    assert_int_equal(cat_commit(f->c, &err), 0);

    opts_for_tests(f, &o);
    o.net.retries = 1;
    int rc = fetch_run(f->c, f->st, &o, NULL, &stats, &err);
    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(cat_count_images_pending(f->c), 0);
    assert_int_equal(stats.done, (uint64_t)nfiles + 19);

    for (int i = 0; i < nfiles; i++) {
        cat_image_result r = expect_ok(f, files[i]);
        assert_string_equal(r.format, "jpeg");
        assert_int_equal(r.width, 256); /* border mode pads to a square */
        assert_int_equal(r.height, 256);
        assert_int_equal(r.http_status, 200);
        assert_int_equal(r.attempts, 1);
        snprintf(path, sizeof path, "%s/%s", f->root, names[i]);
        size_t n;
        char *orig = tl_slurp(path, &n);
        uint8_t sha[32];
        char hex[65];
        wp_sha256_buf(orig, n, sha);
        wp_hex(sha, 32, hex);
        assert_string_equal(r.orig_sha256, hex);
        assert_int_equal(r.orig_bytes, (int64_t)n);
        free(orig);
    }
    expect_error(f, s404, "http_4xx");
    assert_int_equal(get(f, s404).http_status, 404);
    assert_int_equal(get(f, s404).attempts, 1);
    assert_int_equal(expect_ok(f, f500).attempts, 2);
    assert_int_equal(expect_ok(f, f429).attempts, 2);
    expect_error(f, trickle, "timeout");
    expect_error(f, big_cl, "too_large");
    expect_error(f, big_nocl, "too_large");
    expect_error(f, gz, "too_large");
    expect_ok(f, wrong_ct);
    expect_error(f, html, "not_an_image");
    expect_error(f, trunc, "corrupt");
    expect_error(f, bomb, "too_many_pixels");
    assert_int_equal(get(f, bomb).orig_width, 30000);
    expect_ok(f, chain);
    expect_error(f, loop, "too_many_redirects");
    expect_error(f, off_net, "blocked_address");
    expect_error(f, noai, "opt_out");
    assert_string_equal(get(f, noai).opt_out, "noai");
    assert_null(expect_ok(f, other).opt_out);
    expect_error(f, reset_all, "reset");
    assert_int_equal(get(f, reset_all).attempts, 2);
    assert_int_equal(expect_ok(f, reset_once).attempts, 2);
    expect_error(f, s503, "http_5xx");
    assert_int_equal(get(f, s503).attempts, 2);
    corpus_close(f);
}

static void test_header_filters_and_no_reencode(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    wp_err err = {0};
    char path[1200];
    NEED_SERVER(f);
    assert_int_equal(corpus_open(f), 0);
    assert_int_equal(cat_begin(f->c, &err), 0);
    int64_t tiny = add_url(f, "/img/tiny_48.jpg");
    int64_t pano = add_url(f, "/img/panorama_4to1.jpg");
    int64_t chel = add_url(f, "/img/chelsea.jpg");
    int64_t rot = add_url(f, "/img/chelsea_exif_rot90.jpg");
    assert_int_equal(cat_commit(f->c, &err), 0);
    opts_for_tests(f, &o);
    o.min_image_size = 100;
    o.max_aspect_ratio = 3;
    o.resize_mode = IMG_RESIZE_NO;
    o.reencode = 0;
    assert_int_equal(fetch_run(f->c, f->st, &o, NULL, NULL, &err), 0);
    expect_error(f, tiny, "too_small");
    expect_error(f, pano, "aspect_ratio");
    cat_image_result r = expect_ok(f, chel);
    /* --no-reencode: the stored bytes are the original ones. */
    assert_string_equal(r.sha256, r.orig_sha256);
    snprintf(path, sizeof path, "%s/chelsea.jpg", f->root);
    size_t n;
    free(tl_slurp(path, &n));
    assert_int_equal(r.bytes, (int64_t)n);
    /* EXIF orientation swaps the recorded sides. */
    cat_image_result rr = get(f, rot);
    assert_string_equal(rr.state, "ok");
    assert_int_equal(rr.orig_width, r.orig_height);
    assert_int_equal(rr.orig_height, r.orig_width);
    corpus_close(f);
}

static void test_per_host_cap_1000_urls(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    fetch_stats stats;
    wp_err err = {0};
    char path[256], host[64];
    int64_t first = 0, last = 0;
    NEED_SERVER(f);
    assert_int_equal(corpus_open(f), 0);
    assert_int_equal(cat_begin(f->c, &err), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "/slow?ms=2&file=tiny_48.jpg&i=%d", i);
        last = add_url(f, path);
        if (i == 0)
            first = last;
    }
    assert_int_equal(cat_commit(f->c, &err), 0);
    opts_for_tests(f, &o);
    o.net.parallel = 64;
    o.net.per_host = 4;
    o.resize_mode = IMG_RESIZE_NO;
    o.batch = 256;
    assert_int_equal(fetch_run(f->c, f->st, &o, NULL, &stats, &err), 0);
    assert_int_equal(stats.ok, 1000);
    expect_ok(f, first);
    expect_ok(f, last);
    snprintf(host, sizeof host, "127.0.0.1:%d", tl_httpd_port(f->h));
    int seen = tl_httpd_host_max_active(f->h, host);
    assert_true(seen >= 1);
    assert_true(seen <= 4);
    assert_true(stats.max_host_active <= 4);
    corpus_close(f);
}

static void test_limit_takes_first_in_id_order(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    fetch_stats stats;
    wp_err err = {0};
    char path[256];
    int64_t ids[10];
    NEED_SERVER(f);
    assert_int_equal(corpus_open(f), 0);
    assert_int_equal(cat_begin(f->c, &err), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "/img/chelsea.jpg?i=%d", i);
        ids[i] = add_url(f, path);
    }
    assert_int_equal(cat_commit(f->c, &err), 0);
    opts_for_tests(f, &o);
    o.limit = 4;
    assert_int_equal(fetch_run(f->c, f->st, &o, NULL, &stats, &err), 0);
    assert_int_equal(stats.done, 4);
    assert_int_equal(cat_count_images_pending(f->c), 6);
    for (int i = 0; i < 10; i++)
        assert_string_equal(get(f, ids[i]).state, i < 4 ? "ok" : "pending");
    corpus_close(f);
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    wp_request_stop();
    return NULL;
}

static void test_stop_then_resume(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    fetch_stats stats;
    wp_err err = {0};
    char path[256];
    pthread_t th;
    NEED_SERVER(f);
    assert_int_equal(corpus_open(f), 0);
    assert_int_equal(cat_begin(f->c, &err), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(path, sizeof path, "/slow?ms=150&file=chelsea.jpg&i=%d", i);
        add_url(f, path);
    }
    assert_int_equal(cat_commit(f->c, &err), 0);
    opts_for_tests(f, &o);
    o.net.per_host = 2;
    wp_clear_stop();
    assert_int_equal(pthread_create(&th, NULL, stop_later, NULL), 0);
    int rc = fetch_run(f->c, f->st, &o, NULL, &stats, &err);
    pthread_join(th, NULL);
    wp_clear_stop();
    assert_int_equal(rc, WP_ESTOP);
    assert_true(stats.stopped);
    int64_t left = cat_count_images_pending(f->c);
    assert_true(left > 0);
    assert_int_equal(left + (int64_t)stats.done, 40);
    /* Everything recorded before the stop is final and intact. */
    assert_int_equal(stats.errors, 0);
    assert_int_equal(fetch_run(f->c, f->st, &o, NULL, &stats, &err), 0);
    assert_int_equal((int64_t)stats.done, left);
    assert_int_equal(cat_count_images_pending(f->c), 0);
    for (int64_t id = 1; id <= 40; id++)
        expect_ok(f, id);
    corpus_close(f);
}

/* Percent-encodes s for a query value into out (size n). */
static void query_escape(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 4 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, n - k, "%%%02X", c);
    }
    out[k] = '\0';
}

/* The shared table of robots cases (tests/data/robots_cases.tsv) through
 * fetch: every value sent as X-Robots-Tag (one field line per table line)
 * on an image; the image is refused with opt_out exactly when the table
 * says the case opts out, and stored otherwise. */
static void test_x_robots_tag_table(void **state)
{
    struct fx *f = *state;
    fetch_opts o;
    fetch_stats stats;
    wp_err err = {0};
    tl_robots_case *cases = NULL;
    int64_t *ids;
    char esc[3 * TL_ROBOTS_VALUE_MAX + 8], path[4 * TL_ROBOTS_VALUE_MAX];
    NEED_SERVER(f);
    int n = tl_robots_cases(&cases);
    assert_true(n > 0);
    ids = calloc((size_t)n, sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(corpus_open(f), 0);
    assert_int_equal(cat_begin(f->c, &err), 0);
    for (int i = 0; i < n; i++) {
        query_escape(cases[i].value, esc, sizeof esc);
        snprintf(path, sizeof path, "/xrobots?case=%d&v=%s", i, esc);
        ids[i] = add_url(f, path);
    }
    assert_int_equal(cat_commit(f->c, &err), 0);
    opts_for_tests(f, &o);
    int rc = fetch_run(f->c, f->st, &o, NULL, &stats, &err);
    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    for (int i = 0; i < n; i++) {
        cat_image_result r = get(f, ids[i]);
        int opted = r.error_class != NULL && strcmp(r.error_class, "opt_out") == 0;
        if (opted != cases[i].opt_out)
            fail_msg("robots_cases.tsv:%d '%s': fetch %s/%s", cases[i].line, cases[i].value,
                     r.state, r.error_class ? r.error_class : "-");
        if (opted) {
            expect_error(f, ids[i], "opt_out");
            assert_non_null(r.opt_out);
            assert_non_null(strcasestr(cases[i].value, r.opt_out));
        } else {
            expect_ok(f, ids[i]);
        }
    }
    corpus_close(f);
    free(ids);
    free(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_case_ends_in_expected_state),
        cmocka_unit_test(test_header_filters_and_no_reencode),
        cmocka_unit_test(test_per_host_cap_1000_urls),
        cmocka_unit_test(test_limit_takes_first_in_id_order),
        cmocka_unit_test(test_stop_then_resume),
        cmocka_unit_test(test_x_robots_tag_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
