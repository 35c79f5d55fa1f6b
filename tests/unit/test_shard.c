/*
 * tests/unit/test_shard.c: WebDataset shards: members and their order,
 * fixed tar headers, the per-sample JSON, manifest and per-shard stats,
 * byte-identical re-runs, resuming after a lost shard and a leftover .tmp,
 * seeded shuffles, the byte cap, corrupt store bytes, and a catalog that
 * changed under finished shards, the defaults (DIR/shards) and the run row
 * the stage records. Shards are read back with libarchive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/wp.h"
#include "shard/shard.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPAIRS 9

static char root[256], corpus[300];

/* A corpus of NPAIRS pairs: pair i has an image of 1000 + 300*i bytes
 * ("format" jpeg), except pair 3 whose image failed (state error,
 * http_4xx) and pair 5 which a stage dropped. Pair 1 has a keep decision
 * with a score. */
static void make_corpus(int npairs)
{
    cat *c = NULL;
    st_store *s = NULL;
    wp_err err = {0};
    char path[400];
    sqlite3 *db;

    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(st_open(corpus, &s, &err), 0);
    assert_int_equal(cat_begin(c, &err), 0);
    for (int i = 0; i < npairs; i++) {
        char url[64], text[64], sha[WP_SHA256_HEX + 1];
        uint8_t md[WP_SHA256_LEN];
        size_t n = 1000 + 300 * (size_t)i;
        char *img = malloc(n);
        cat_pair_in p = {0};
        cat_image_result r;
        int64_t pid, iid, f, o;
        int is_new;
        for (size_t k = 0; k < n; k++)
            img[k] = (char)(k * 7 + (size_t)i);
        snprintf(url, sizeof url, "http://h/%d.jpg", i);
        snprintf(text, sizeof text, "caption %d \xC3\xA9", i);
        p.url = url;
        p.url_len = strlen(url);
        p.text = text;
        p.text_len = strlen(text);
        p.origin = "list.tsv:1";
        p.extra_json = "{\"lang\":\"fr\"}";
        assert_int_equal(cat_pair_add(c, &p, &pid, &iid, &is_new, &err), 0);
        r = cat_image_result_init(iid);
        if (i == 3) {
            r.state = "error";
            r.error_class = "http_4xx";
        } else {
            assert_int_equal(st_append(s, img, n, &f, &o, &err), 0);
            assert_int_equal(wp_sha256_buf(img, n, md), 0);
            wp_hex(md, sizeof md, sha);
            r.state = "ok";
            r.format = r.orig_format = "jpeg";
            r.width = r.orig_width = 10 + i;
            r.height = r.orig_height = 20 + i;
            r.bytes = r.orig_bytes = (int64_t)n;
            r.sha256 = r.orig_sha256 = sha;
            r.store_file = f;
            r.store_offset = o;
        }
        assert_int_equal(cat_image_set_result(c, &r, &err), 0);
        free(img);
    }
    assert_int_equal(st_sync(s, &err), 0);
    assert_int_equal(cat_commit(c, &err), 0);
    st_close(s);
    cat_close(c);
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO decisions(pair_id, stage, decision, reason, score) "
                                  "VALUES (6, 'filter', 'drop', 'too_small', NULL), "
                                  "(2, 'clip', 'keep', NULL, 0.25)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

static int setup(void **state)
{
    snprintf(root, sizeof root, "%s", tl_mkdtemp());
    snprintf(corpus, sizeof corpus, "%s/c", root);
    make_corpus(NPAIRS);
    return 0;
}

static int teardown(void **state)
{
    tl_rmtree(root);
    return 0;
}

static int run_shard(const char *out, int64_t per, int64_t max_bytes, int shuffle, uint64_t seed,
                     shard_stats *st, wp_err *err)
{
    cat *c = NULL;
    st_store *s = NULL;
    shard_opts o = {0};
    int rc;
    assert_int_equal(cat_open(corpus, 0, &c, err), 0);
    assert_int_equal(st_open(corpus, &s, err), 0);
    o.output = out;
    o.per_shard = per;
    o.max_bytes = max_bytes;
    o.shuffle = shuffle;
    o.seed = seed;
    rc = shard_run(c, s, &o, NULL, st, err);
    st_close(s);
    cat_close(c);
    return rc;
}

static const char *out_path(const char *sub, const char *name)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/%s%s%s", root, sub, name ? "/" : "", name ? name : "");
    return p;
}

typedef struct member {
    char name[128];
    int64_t size;
    char *data;
} member;

/* Reads every member of a tar; returns how many (at most max). */
static int read_tar(const char *path, member *m, int max)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int n = 0;
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(n < max);
        snprintf(m[n].name, sizeof m[n].name, "%s", archive_entry_pathname(e));
        m[n].size = archive_entry_size(e);
        assert_int_equal(archive_entry_mtime(e), 0);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        assert_int_equal(archive_entry_perm(e), 0644);
        assert_int_equal(archive_entry_filetype(e), AE_IFREG);
        m[n].data = malloc((size_t)m[n].size + 1);
        assert_int_equal(archive_read_data(a, m[n].data, (size_t)m[n].size), m[n].size);
        m[n].data[m[n].size] = '\0';
        n++;
    }
    archive_read_free(a);
    return n;
}

static void free_members(member *m, int n)
{
    for (int i = 0; i < n; i++)
        free(m[i].data);
}

static void file_sha(const char *path, char out[WP_SHA256_HEX + 1])
{
    size_t n = 0;
    char *d = tl_slurp(path, &n);
    uint8_t md[WP_SHA256_LEN];
    assert_non_null(d);
    assert_int_equal(wp_sha256_buf(d, n, md), 0);
    wp_hex(md, sizeof md, out);
    free(d);
}

static void test_members_json_manifest_stats(void **state)
{
    shard_stats st;
    wp_err err = {0};
    member m[32];
    int total_samples = 0, total_pairs = 0;
    json_t *man;

    assert_int_equal(run_shard(out_path("a", NULL), 3, 0, 0, 0, &st, &err), 0);
    assert_int_equal(st.samples, NPAIRS - 2);
    assert_int_equal(st.excluded, 2);
    assert_int_equal(st.shards, 3); /* 7 samples, 3 per shard */
    assert_int_equal(st.written, 3);
    man = json_load_file(out_path("a", "manifest.json"), 0, NULL);
    assert_non_null(man);
    assert_int_equal(json_array_size(json_object_get(man, "shards")), 3);
    assert_string_equal(json_string_value(json_object_get(man, "shard_pattern")),
                        "{00000..00002}.tar");
    for (int k = 0; k < 3; k++) {
        char name[32], sha[WP_SHA256_HEX + 1];
        json_t *e = json_array_get(json_object_get(man, "shards"), (size_t)k);
        json_t *stats;
        struct stat sb;
        int n;
        snprintf(name, sizeof name, "%05d.tar", k);
        assert_string_equal(json_string_value(json_object_get(e, "name")), name);
        file_sha(out_path("a", name), sha);
        assert_string_equal(json_string_value(json_object_get(e, "sha256")), sha);
        assert_int_equal(stat(out_path("a", name), &sb), 0);
        assert_int_equal(json_integer_value(json_object_get(e, "bytes")), sb.st_size);
        n = read_tar(out_path("a", name), m, 32);
        assert_int_equal(n, 3 * json_integer_value(json_object_get(e, "samples")));
        for (int i = 0; i < n; i += 3) {
            /* KEY.jpg, KEY.txt, KEY.json, adjacent; the key has no dot. */
            const char *dot = strchr(m[i].name, '.');
            size_t kl = (size_t)(dot - m[i].name);
            json_t *j;
            assert_int_equal(kl, WP_UID_HEX);
            assert_string_equal(dot, ".jpg");
            assert_memory_equal(m[i + 1].name, m[i].name, kl);
            assert_string_equal(m[i + 1].name + kl, ".txt");
            assert_memory_equal(m[i + 2].name, m[i].name, kl);
            assert_string_equal(m[i + 2].name + kl, ".json");
            j = json_loads(m[i + 2].data, 0, NULL);
            assert_non_null(j);
            assert_string_equal(json_string_value(json_object_get(j, "caption")), m[i + 1].data);
            assert_int_equal(json_integer_value(json_object_get(j, "bytes")), m[i].size);
            {
                char sha2[WP_SHA256_HEX + 1];
                uint8_t md[WP_SHA256_LEN];
                wp_sha256_buf(m[i].data, (size_t)m[i].size, md);
                wp_hex(md, sizeof md, sha2);
                assert_string_equal(json_string_value(json_object_get(j, "sha256")), sha2);
            }
            assert_memory_equal(json_string_value(json_object_get(j, "key")), m[i].name, kl);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(j, "extra"), "lang")), "fr");
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(j, "source"), "origin")),
                "list.tsv:1");
            if (strcmp(json_string_value(json_object_get(j, "url")), "http://h/1.jpg") == 0) {
                json_t *d = json_object_get(json_object_get(j, "decisions"), "clip");
                assert_string_equal(json_string_value(json_object_get(d, "decision")), "keep");
                assert_true(json_real_value(json_object_get(d, "score")) == 0.25);
            }
            /* Dropped and failed pairs never ship. */
            assert_string_not_equal(json_string_value(json_object_get(j, "url")), "http://h/3.jpg");
            assert_string_not_equal(json_string_value(json_object_get(j, "url")), "http://h/5.jpg");
            json_decref(j);
        }
        free_members(m, n);
        snprintf(name, sizeof name, "%05d_stats.json", k);
        stats = json_load_file(out_path("a", name), 0, NULL);
        assert_non_null(stats);
        total_samples += (int)json_integer_value(json_object_get(stats, "samples"));
        total_pairs += (int)json_integer_value(json_object_get(stats, "pairs"));
        if (k == 0) {
            /* The failed pair follows the first shard's last sample, the
             * dropped one the second's: each counts where it fell. */
            assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(stats, "by_error_class"), "http_4xx")),
                             1);
            assert_int_equal(json_integer_value(json_object_get(stats, "pairs")), 4);
        }
        if (k == 1) {
            assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "dropped"),
                                                                "filter/too_small")),
                             1);
        }
        json_decref(stats);
    }
    assert_int_equal(total_samples, NPAIRS - 2);
    assert_int_equal(total_pairs, NPAIRS);
    json_decref(man);
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *da = tl_slurp(a, &na), *db = tl_slurp(b, &nb);
    int same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

static void test_rerun_is_identical_and_resumes(void **state)
{
    shard_stats st;
    wp_err err = {0};
    char a[600], b[600];

    assert_int_equal(run_shard(out_path("a", NULL), 2, 0, 0, 0, &st, &err), 0);
    assert_int_equal(run_shard(out_path("b", NULL), 2, 0, 0, 0, &st, &err), 0);
    assert_int_equal(st.shards, 4);
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "%05d.tar", k);
        snprintf(a, sizeof a, "%s", out_path("a", name));
        snprintf(b, sizeof b, "%s", out_path("b", name));
        assert_true(same_file(a, b));
    }
    /* A lost shard and the .tmp of a crashed run. */
    assert_int_equal(unlink(out_path("a", "00001.tar")), 0);
    assert_int_equal(tl_write(out_path("a", "00002.tar.tmp"), "junk", 4), 0);
    assert_int_equal(run_shard(out_path("a", NULL), 2, 0, 0, 0, &st, &err), 0);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.skipped, 3);
    assert_false(wp_file_exists(out_path("a", "00002.tar.tmp")));
    snprintf(a, sizeof a, "%s", out_path("a", "00001.tar"));
    snprintf(b, sizeof b, "%s", out_path("b", "00001.tar"));
    assert_true(same_file(a, b));
    snprintf(a, sizeof a, "%s", out_path("a", "manifest.json"));
    snprintf(b, sizeof b, "%s", out_path("b", "manifest.json"));
    assert_true(same_file(a, b));
}

/* The keys of all samples, in shard order, concatenated. */
static void keys_of(const char *sub, int shards, char *out, size_t n)
{
    member m[64];
    out[0] = '\0';
    for (int k = 0; k < shards; k++) {
        char name[32];
        int c;
        snprintf(name, sizeof name, "%05d.tar", k);
        c = read_tar(out_path(sub, name), m, 64);
        for (int i = 0; i < c; i += 3)
            strncat(out, m[i].name, n - strlen(out) - 1);
        free_members(m, c);
    }
}

static void test_shuffle_is_seeded(void **state)
{
    shard_stats st;
    wp_err err = {0};
    char k1[2048], k2[2048], k3[2048], k4[2048];
    assert_int_equal(run_shard(out_path("s1", NULL), 100, 0, 1, 7, &st, &err), 0);
    assert_int_equal(run_shard(out_path("s2", NULL), 100, 0, 1, 7, &st, &err), 0);
    assert_int_equal(run_shard(out_path("s3", NULL), 100, 0, 1, 8, &st, &err), 0);
    assert_int_equal(run_shard(out_path("s4", NULL), 100, 0, 0, 0, &st, &err), 0);
    keys_of("s1", 1, k1, sizeof k1);
    keys_of("s2", 1, k2, sizeof k2);
    keys_of("s3", 1, k3, sizeof k3);
    keys_of("s4", 1, k4, sizeof k4);
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_string_not_equal(k1, k4);
    assert_int_equal(strlen(k1), strlen(k4)); /* the same samples */
}

static void test_byte_cap(void **state)
{
    shard_stats st;
    wp_err err = {0};
    const int64_t cap = 10 * 1024;
    int64_t sum = 0;
    assert_int_equal(run_shard(out_path("m", NULL), 1000, cap, 0, 0, &st, &err), 0);
    assert_true(st.shards > 2);
    for (int k = 0; k < st.shards; k++) {
        char name[32];
        struct stat sb;
        member m[16];
        int n;
        snprintf(name, sizeof name, "%05d.tar", k);
        assert_int_equal(stat(out_path("m", name), &sb), 0);
        n = read_tar(out_path("m", name), m, 16);
        /* Over the cap only when one sample alone is bigger. */
        assert_true(sb.st_size <= cap || n == 3);
        sum += n / 3;
        free_members(m, n);
    }
    assert_int_equal(sum, NPAIRS - 2);
}

/* The cap counts the tar's two closing blocks: three samples of B member
 * bytes make a B + 1024 byte shard, so a cap of exactly that holds the
 * three, and one byte less holds two. */
static void test_byte_cap_exact_at_the_boundary(void **state)
{
    shard_stats st;
    wp_err err = {0};
    member m[64];
    struct stat sb;
    int64_t b3 = 0;
    int n;
    assert_int_equal(run_shard(out_path("all", NULL), 1000, 0, 0, 0, &st, &err), 0);
    n = read_tar(out_path("all", "00000.tar"), m, 64);
    assert_true(n >= 12);
    for (int i = 0; i < 9; i++)
        b3 += 512 + (m[i].size + 511) / 512 * 512;
    free_members(m, n);
    assert_int_equal(run_shard(out_path("fit", NULL), 1000, b3 + 1024, 0, 0, &st, &err), 0);
    assert_int_equal(stat(out_path("fit", "00000.tar"), &sb), 0);
    assert_int_equal(sb.st_size, b3 + 1024);
    n = read_tar(out_path("fit", "00000.tar"), m, 64);
    assert_int_equal(n, 9);
    free_members(m, n);
    assert_int_equal(run_shard(out_path("tight", NULL), 1000, b3 + 1023, 0, 0, &st, &err), 0);
    assert_int_equal(stat(out_path("tight", "00000.tar"), &sb), 0);
    assert_true(sb.st_size <= b3 + 1023);
    n = read_tar(out_path("tight", "00000.tar"), m, 64);
    assert_int_equal(n, 6);
    free_members(m, n);
}

static void test_corrupt_store_fails_without_shard(void **state)
{
    shard_stats st;
    wp_err err = {0};
    char path[600];
    int fd;
    snprintf(path, sizeof path, "%s/store/000001.dat", corpus);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\xFF\xFE", 2, 10), 2); /* inside the first image */
    close(fd);
    assert_int_equal(run_shard(out_path("x", NULL), 3, 0, 0, 0, &st, &err), ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "do not match"));
    assert_false(wp_file_exists(out_path("x", "00000.tar")));
    assert_false(wp_file_exists(out_path("x", "00000.tar.tmp")));
}

/* A large image takes the path where its hash is checked beside the
 * write: corruption must still stop the shard from being published. */
static void test_corrupt_large_image_fails_without_shard(void **state)
{
    cat *c = NULL;
    st_store *s = NULL;
    wp_err err = {0};
    shard_stats st;
    cat_pair_in p = {0};
    cat_image_result r;
    size_t n = 300 * 1024;
    char *img = malloc(n), sha[WP_SHA256_HEX + 1], path[600];
    uint8_t md[WP_SHA256_LEN];
    int64_t pid, iid, f, o;
    int is_new, fd;

    for (size_t k = 0; k < n; k++)
        img[k] = (char)(k * 13 + 5);
    assert_int_equal(cat_open(corpus, 0, &c, &err), 0);
    assert_int_equal(st_open(corpus, &s, &err), 0);
    p.url = "http://h/big.jpg";
    p.url_len = strlen(p.url);
    p.text = "big";
    p.text_len = 3;
    assert_int_equal(cat_pair_add(c, &p, &pid, &iid, &is_new, &err), 0);
    assert_int_equal(st_append(s, img, n, &f, &o, &err), 0);
    assert_int_equal(st_sync(s, &err), 0);
    wp_sha256_buf(img, n, md);
    wp_hex(md, sizeof md, sha);
    r = cat_image_result_init(iid);
    r.state = "ok";
    r.format = "jpeg";
    r.bytes = (int64_t)n;
    r.sha256 = sha;
    r.store_file = f;
    r.store_offset = o;
    assert_int_equal(cat_image_set_result(c, &r, &err), 0);
    st_close(s);
    cat_close(c);
    free(img);
    /* Intact, it ships. */
    assert_int_equal(run_shard(out_path("ok", NULL), 100, 0, 0, 0, &st, &err), 0);
    assert_int_equal(st.samples, NPAIRS - 2 + 1);
    snprintf(path, sizeof path, "%s/store/%06lld.dat", corpus, (long long)f);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x00\x01", 2, o + 200000), 2);
    close(fd);
    assert_int_equal(run_shard(out_path("bad", NULL), 100, 0, 0, 0, &st, &err), ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "http://h/big.jpg"));
    assert_false(wp_file_exists(out_path("bad", "00000.tar")));
    assert_false(wp_file_exists(out_path("bad", "00000.tar.tmp")));
}

static void test_changed_catalog_is_detected(void **state)
{
    shard_stats st;
    wp_err err = {0};
    assert_int_equal(run_shard(out_path("a", NULL), 5, 0, 0, 0, &st, &err), 0);
    assert_int_equal(st.shards, 2);
    /* Pair 2 dropped after the fact: the first shard no longer matches. */
    {
        char path[400];
        sqlite3 *db;
        snprintf(path, sizeof path, "%s/catalog.db", corpus);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO decisions(pair_id, stage, decision) "
                                      "VALUES (2, 'dedup', 'drop')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(run_shard(out_path("a", NULL), 5, 0, 0, 0, &st, &err), SHARD_ECHANGED);
    assert_non_null(strstr(err.msg, "00000.tar"));
}

static void test_defaults_and_the_run_row(void **state)
{
    cat *c = NULL;
    st_store *s = NULL;
    shard_opts o;
    shard_stats st;
    wp_err err = {0};
    char first[WP_PATH_MAX];

    shard_opts_init(&o);
    assert_null(o.output);
    assert_int_equal(o.per_shard, SHARD_PER_DEFAULT);
    assert_int_equal(o.max_bytes, 0);
    assert_int_equal(o.shuffle, 0);
    assert_int_equal(cat_open(corpus, 0, &c, &err), 0);
    assert_int_equal(st_open(corpus, &s, &err), 0);
    /* No output given: DIR/shards. */
    assert_int_equal(shard_run(c, s, &o, NULL, &st, &err), 0);
    st_close(s);
    cat_close(c);
    snprintf(first, sizeof first, "%s/shards/00000.tar", corpus);
    assert_true(wp_file_exists(first));
    assert_int_equal(tl_q_int(corpus,
                              "SELECT count(*) FROM runs WHERE stage = 'shard' AND status = 'done' "
                              "AND ended_at IS NOT NULL AND error IS NULL"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT json_extract(counts, '$.samples') FROM runs"),
                     st.samples);
    assert_int_equal(tl_q_int(corpus, "SELECT json_extract(params, '$.per_shard') FROM runs"),
                     SHARD_PER_DEFAULT);
    /* The shard rows point at the run. */
    assert_int_equal(
        tl_q_int(corpus, "SELECT count(*) FROM shards WHERE run_id = (SELECT id FROM runs)"),
        st.shards);
}

static void test_member_bytes(void **state)
{
    assert_int_equal(shard_member_bytes(0), 512);
    assert_int_equal(shard_member_bytes(1), 1024);
    assert_int_equal(shard_member_bytes(512), 1024);
    assert_int_equal(shard_member_bytes(513), 1536);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_bytes),
        cmocka_unit_test_setup_teardown(test_members_json_manifest_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rerun_is_identical_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shuffle_is_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_cap_exact_at_the_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_store_fails_without_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_large_image_fails_without_shard, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_changed_catalog_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_the_run_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
