/*
 * tests/unit/test_hub.c: `model pull` (clip/hub.h) against the mock hub of
 * tests/lib/mockhub.h on 127.0.0.1: both checkpoint layouts, the redirect of
 * large files to a CDN, resuming a cut download (in the same run and from a
 * .part left by an earlier one), SHA-256 verification, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/wp.h"
#include "clip/clip.h"
#include "tests/lib/mockhub.h"
#include "tests/lib/testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPO    "acme/tiny-clip"
#define BIG_LEN (300 * 1024 + 17)

static unsigned char *big_blob(unsigned seed)
{
    unsigned char *p = malloc(BIG_LEN);
    assert_non_null(p);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < BIG_LEN; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

typedef struct fixture {
    tl_mockhub *hub;
    char *cache;
    char endpoint[64];
    unsigned char *weights;
    clip_hub_opts o;
} fixture;

static const char cfg[] = "{\"model_type\": \"clip\", \"projection_dim\": 32}";
static const char vocab[] = "{\"a\": 0, \"b\": 1}";
static const char merges[] = "#version: 0.2\na b\n";
static const char pre[] = "{\"crop_size\": 224}";

static void fixture_start(fixture *f, int weights_flags, int cut)
{
    memset(f, 0, sizeof *f);
    f->hub = tl_mockhub_start(REPO);
    assert_non_null(f->hub);
    f->weights = big_blob(7);
    assert_int_equal(tl_mockhub_add(f->hub, "config.json", cfg, strlen(cfg), 0, 0), 0);
    assert_int_equal(tl_mockhub_add(f->hub, "vocab.json", vocab, strlen(vocab), 0, 0), 0);
    assert_int_equal(tl_mockhub_add(f->hub, "merges.txt", merges, strlen(merges), 0, 0), 0);
    assert_int_equal(tl_mockhub_add(f->hub, "preprocessor_config.json", pre, strlen(pre), 0, 0), 0);
    assert_int_equal(
        tl_mockhub_add(f->hub, "model.safetensors", f->weights, BIG_LEN, weights_flags, cut), 0);
    /* files a CLIP does not need are not fetched, nor the other layout's */
    assert_int_equal(tl_mockhub_add(f->hub, "pytorch_model.bin", "x", 1, TL_MOCKHUB_LFS, 0), 0);
    assert_int_equal(tl_mockhub_add(f->hub, "open_clip_config.json", "{}", 2, 0, 0), 0);
    assert_int_equal(
        tl_mockhub_add(f->hub, "open_clip_model.safetensors", "oc", 2, TL_MOCKHUB_LFS, 0), 0);
    snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%d/", tl_mockhub_port(f->hub));
    f->cache = strdup(tl_mkdtemp());
    f->o = (clip_hub_opts){.endpoint = f->endpoint,
                           .cache = f->cache,
                           .connect_timeout_s = 5,
                           .stall_timeout_s = 5,
                           .attempts = 3};
}

static void fixture_stop(fixture *f)
{
    tl_mockhub_stop(f->hub);
    tl_rmtree(f->cache);
    free(f->cache);
    free(f->weights);
}

static void assert_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = 0;
    char *got = tl_slurp(path, &n);
    if (got == NULL)
        fprintf(stderr, "missing: %s\n", path);
    assert_non_null(got);
    assert_int_equal(n, len);
    assert_memory_equal(got, data, len);
    free(got);
    snprintf(path, sizeof path, "%s/%s.part", dir, name);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_pull_hf_layout_with_cut_download(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS, 1); /* the first CDN answer is cut half way */
    clip_hub_result res;
    wp_err err = {0};
    int rc = clip_hub_pull(REPO, &f.o, &res, &err);
    if (rc != 0)
        fprintf(stderr, "pull: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char want_dir[WP_PATH_MAX];
    snprintf(want_dir, sizeof want_dir, "%s/%s", f.cache, REPO);
    assert_string_equal(res.dir, want_dir);
    assert_int_equal(res.fetched, 5);
    assert_int_equal(res.kept, 0);
    assert_file(res.dir, "config.json", cfg, strlen(cfg));
    assert_file(res.dir, "vocab.json", vocab, strlen(vocab));
    assert_file(res.dir, "merges.txt", merges, strlen(merges));
    assert_file(res.dir, "preprocessor_config.json", pre, strlen(pre));
    assert_file(res.dir, "model.safetensors", f.weights, BIG_LEN);
    char path[WP_PATH_MAX];
    static const char *const unwanted[] = {"pytorch_model.bin", "open_clip_config.json",
                                           "open_clip_model.safetensors"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", res.dir, unwanted[i]);
        assert_int_equal(access(path, F_OK), -1);
    }

    /* the weights went through the redirect; the second try resumed */
    int ranged = 0;
    assert_int_equal(tl_mockhub_requests(f.hub, "/" REPO "/resolve/main/model.safetensors", NULL),
                     2);
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", &ranged), 2);
    assert_int_equal(ranged, 1);
    /* received: the cut half, then the rest */
    assert_true(res.bytes < (int64_t)(BIG_LEN + 1000) + (int64_t)BIG_LEN / 2 + 1);

    /* a second pull finds everything in place and asks only for the list */
    clip_hub_result again;
    assert_int_equal(clip_hub_pull(REPO, &f.o, &again, &err), 0);
    assert_int_equal(again.fetched, 0);
    assert_int_equal(again.kept, 5);
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", NULL), 2);
    fixture_stop(&f);
}

/* Leaves REPO's NAME.part in the cache holding data[0..n), as a stopped
 * pull would. */
static void leave_part(const fixture *f, const char *name, const void *data, size_t n)
{
    char dir[WP_PATH_MAX], part[WP_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", f->cache, REPO);
    assert_int_equal(wp_mkdir_p(dir, NULL), 0);
    snprintf(part, sizeof part, "%s/%s.part", dir, name);
    assert_int_equal(tl_write(part, data, n), 0);
}

static void test_pull_resumes_part_from_earlier_run(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS, 0);
    leave_part(&f, "model.safetensors", f.weights, 1000);
    clip_hub_result res;
    wp_err err = {0};
    assert_int_equal(clip_hub_pull(REPO, &f.o, &res, &err), 0);
    assert_file(res.dir, "model.safetensors", f.weights, BIG_LEN);
    int ranged = 0;
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", &ranged), 1);
    assert_int_equal(ranged, 1);
    fixture_stop(&f);
}

/* A .part that already holds the whole file: the hub answers the range
 * with 416, and the file is verified and put in place as it is. */
static void test_pull_complete_part_is_verified_not_refetched(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS, 0);
    leave_part(&f, "model.safetensors", f.weights, BIG_LEN);
    leave_part(&f, "config.json", cfg, strlen(cfg)); /* a plain file, too */
    clip_hub_result res;
    wp_err err = {0};
    int rc = clip_hub_pull(REPO, &f.o, &res, &err);
    if (rc != 0)
        fprintf(stderr, "pull: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_file(res.dir, "model.safetensors", f.weights, BIG_LEN);
    assert_file(res.dir, "config.json", cfg, strlen(cfg));
    int ranged = 0;
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", &ranged), 1);
    assert_int_equal(ranged, 1);
    assert_true(res.bytes < 4096); /* only the small files came over the wire */
    fixture_stop(&f);
}

static void test_pull_rejects_corrupt_download(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS | TL_MOCKHUB_CORRUPT, 0);
    clip_hub_result res;
    wp_err err = {0};
    assert_int_equal(clip_hub_pull(REPO, &f.o, &res, &err), CLIP_HUB_EVERIFY);
    assert_non_null(strstr(err.msg, "SHA-256"));
    assert_non_null(strstr(err.msg, "model.safetensors"));
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", res.dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/model.safetensors.part", res.dir);
    assert_int_equal(access(path, F_OK), -1);
    /* every attempt was made */
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", NULL), 3);
    fixture_stop(&f);
}

static void test_pull_open_clip_layout_and_revision(void **state)
{
    tl_mockhub *hub = tl_mockhub_start("acme/oc");
    assert_non_null(hub);
    unsigned char *w = big_blob(3);
    const char occfg[] = "{\"model_cfg\": {}}";
    const unsigned char gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tl_mockhub_add(hub, "open_clip_config.json", occfg, strlen(occfg), 0, 0), 0);
    assert_int_equal(
        tl_mockhub_add(hub, "open_clip_model.safetensors", w, BIG_LEN, TL_MOCKHUB_LFS, 0), 0);
    assert_int_equal(tl_mockhub_add(hub, "bpe_simple_vocab_16e6.txt.gz", gz, sizeof gz, 0, 0), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", tl_mockhub_port(hub));
    char *cache = strdup(tl_mkdtemp());
    clip_hub_opts o = {.endpoint = ep, .cache = cache, .revision = "refs/pr/1", .attempts = 2};
    clip_hub_result res;
    wp_err err = {0};
    int rc = clip_hub_pull("acme/oc", &o, &res, &err);
    if (rc != 0)
        fprintf(stderr, "pull: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char want[WP_PATH_MAX];
    snprintf(want, sizeof want, "%s/acme/oc@refs_pr_1", cache);
    assert_string_equal(res.dir, want);
    assert_int_equal(res.fetched, 3);
    assert_file(res.dir, "open_clip_model.safetensors", w, BIG_LEN);
    assert_file(res.dir, "bpe_simple_vocab_16e6.txt.gz", gz, sizeof gz);
    /* the revision reached the hub (the server sees it URL-decoded) */
    assert_int_equal(tl_mockhub_requests(hub, "/api/models/acme/oc/revision/refs/pr/1", NULL), 1);
    tl_mockhub_stop(hub);
    tl_rmtree(cache);
    free(cache);
    free(w);
}

static void test_pull_errors(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS, 0);
    clip_hub_result res;
    wp_err err = {0};
    /* not a repository name */
    assert_int_equal(clip_hub_pull("../etc", &f.o, &res, &err), WP_EINVAL);
    assert_int_equal(clip_hub_pull("a/b/c", &f.o, &res, &err), WP_EINVAL);
    assert_int_equal(clip_hub_pull("", &f.o, &res, &err), WP_EINVAL);
    /* a repository the hub does not have */
    assert_int_equal(clip_hub_pull("acme/missing", &f.o, &res, &err), CLIP_HUB_EHTTP);
    assert_non_null(strstr(err.msg, "404"));
    /* a hub nobody listens on */
    clip_hub_opts dead = f.o;
    dead.endpoint = "http://127.0.0.1:1";
    dead.attempts = 1;
    assert_int_equal(clip_hub_pull(REPO, &dead, &res, &err), CLIP_HUB_EHTTP);
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
    dead.endpoint = "ftp://127.0.0.1";
    assert_int_equal(clip_hub_pull(REPO, &dead, &res, &err), WP_EINVAL);
    fixture_stop(&f);

    /* a repository without safetensors weights */
    tl_mockhub *hub = tl_mockhub_start("acme/old");
    assert_non_null(hub);
    assert_int_equal(tl_mockhub_add(hub, "config.json", cfg, strlen(cfg), 0, 0), 0);
    assert_int_equal(tl_mockhub_add(hub, "pytorch_model.bin", "x", 1, 0, 0), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", tl_mockhub_port(hub));
    char *cache = strdup(tl_mkdtemp());
    clip_hub_opts o = {.endpoint = ep, .cache = cache};
    assert_int_equal(clip_hub_pull("acme/old", &o, &res, &err), CLIP_HUB_ENOFILES);
    tl_mockhub_stop(hub);
    tl_rmtree(cache);
    free(cache);
}

/* A redirect may not lead to a non-public address that is not the
 * endpoint's own: the weights' 302 points at 127.0.0.2, which the guard
 * refuses before connecting. */
static void test_pull_redirect_is_guarded(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_LFS | TL_MOCKHUB_AWAY, 0);
    clip_hub_result res;
    wp_err err = {0};
    f.o.attempts = 1;
    assert_int_equal(clip_hub_pull(REPO, &f.o, &res, &err), CLIP_HUB_EHTTP);
    if (strstr(err.msg, "blocked_address: a loopback address") == NULL ||
        strstr(err.msg, "127.0.0.2") == NULL)
        fail_msg("error '%s' does not name the blocked redirect", err.msg);
    assert_int_equal(tl_mockhub_requests(f.hub, "/cdn/model.safetensors", NULL), 0);
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", res.dir);
    assert_int_equal(access(path, F_OK), -1);
    /* the same repository without the redirect away pulls fine: the
     * endpoint's own loopback address is allowed */
    fixture_stop(&f);
    fixture_start(&f, TL_MOCKHUB_LFS, 0);
    assert_int_equal(clip_hub_pull(REPO, &f.o, &res, &err), 0);
    fixture_stop(&f);
}

/* A body with neither a size nor a hash announced is not saved. */
static void test_pull_unverifiable_refused(void **state)
{
    fixture f;
    fixture_start(&f, TL_MOCKHUB_BARE, 0);
    clip_hub_result res;
    wp_err err = {0};
    assert_int_equal(clip_hub_pull(REPO, &f.o, &res, &err), CLIP_HUB_EVERIFY);
    assert_non_null(strstr(err.msg, "unverifiable"));
    assert_non_null(strstr(err.msg, "model.safetensors"));
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", res.dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/model.safetensors.part", res.dir);
    assert_int_equal(access(path, F_OK), -1);
    fixture_stop(&f);
}

static void test_cache_root_default(void **state)
{
    char root[WP_PATH_MAX];
    char *old_hf = getenv("HF_HOME") ? strdup(getenv("HF_HOME")) : NULL;
    setenv("HF_HOME", "/tmp/hfhome", 1);
    assert_int_equal(clip_hub_cache_root(root, NULL), 0);
    assert_string_equal(root, "/tmp/hfhome/witpipe/models");
    unsetenv("HF_HOME");
    char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    unsetenv("XDG_CACHE_HOME");
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/u", 1);
    assert_int_equal(clip_hub_cache_root(root, NULL), 0);
    assert_string_equal(root, "/home/u/.cache/witpipe/models");
    if (old_home) {
        setenv("HOME", old_home, 1);
        free(old_home);
    }
    if (old_xdg) {
        setenv("XDG_CACHE_HOME", old_xdg, 1);
        free(old_xdg);
    }
    if (old_hf) {
        setenv("HF_HOME", old_hf, 1);
        free(old_hf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_hf_layout_with_cut_download),
        cmocka_unit_test(test_pull_resumes_part_from_earlier_run),
        cmocka_unit_test(test_pull_complete_part_is_verified_not_refetched),
        cmocka_unit_test(test_pull_rejects_corrupt_download),
        cmocka_unit_test(test_pull_open_clip_layout_and_revision),
        cmocka_unit_test(test_pull_errors),
        cmocka_unit_test(test_pull_redirect_is_guarded),
        cmocka_unit_test(test_pull_unverifiable_refused),
        cmocka_unit_test(test_cache_root_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
