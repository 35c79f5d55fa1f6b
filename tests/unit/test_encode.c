/*
 * tests/unit/test_encode.c: the encode stage end to end on a small corpus
 * built through the catalog and store APIs with the golden tiny CLIP
 * (../shared/golden/clip/hf_vit_quickgelu_f32): .npy shards and metadata
 * written, embeddings equal to the reference features, clip_score the
 * image-text cosine, undecodable images dropped once, resumption, and the
 * `witpipe encode` command on the same corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "clip/clip.h"
#include "encode/encode.h"
#include "clip/safetensors.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E          32
#define MODEL_NAME "hf_vit_quickgelu_f32"

static char corpus[1024];
static char model_dir[1024];

/* Adds a pair whose image bytes are data (stored ok), or pending if data
 * is NULL. */
static int64_t add_pair(cat *c, st_store *st, const char *url, const char *text, const void *data,
                        size_t n)
{
    cat_pair_in p = {0};
    int64_t pair_id = 0, image_id = 0;
    int is_new = 0;
    wp_err err = {0};
    p.url = url;
    p.url_len = strlen(url);
    p.text = text;
    p.text_len = strlen(text);
    assert_int_equal(cat_pair_add(c, &p, &pair_id, &image_id, &is_new, &err), 0);
    if (data != NULL && is_new) {
        cat_image_result r = cat_image_result_init(image_id);
        uint8_t sha[WP_SHA256_LEN];
        char hex[WP_SHA256_HEX + 1];
        int64_t f, off;
        assert_int_equal(st_append(st, data, n, &f, &off, &err), 0);
        assert_int_equal(st_sync(st, &err), 0);
        assert_int_equal(wp_sha256_buf(data, n, sha), 0);
        wp_hex(sha, WP_SHA256_LEN, hex);
        r.state = "ok";
        r.format = "jpeg";
        r.bytes = (int64_t)n;
        r.sha256 = hex;
        r.store_file = f;
        r.store_offset = off;
        r.width = r.height = 1;
        assert_int_equal(cat_image_set_result(c, &r, &err), 0);
    }
    return pair_id;
}

static char *image_bytes(const char *name, size_t *n)
{
    char rel[256];
    snprintf(rel, sizeof rel, "testdata/images/%s", name);
    const char *p = tl_shared_path(rel);
    char *d = p ? tl_slurp(p, n) : NULL;
    assert_non_null(d);
    return d;
}

/* Reads a float16 .npy [rows, E] into floats; returns rows. */
static int read_npy(const char *path, float **out)
{
    size_t len = 0;
    unsigned char *d = (unsigned char *)tl_slurp(path, &len);
    assert_non_null(d);
    assert_memory_equal(d, "\x93NUMPY\x01\x00", 8);
    size_t hl = d[8] | (d[9] << 8);
    assert_int_equal((10 + hl) % 64, 0);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "%.*s", (int)hl, (char *)d + 10);
    assert_non_null(strstr(hdr, "'descr': '<f2'"));
    int rows = -1, cols = -1;
    const char *sh = strstr(hdr, "'shape': (");
    assert_non_null(sh);
    assert_int_equal(sscanf(sh, "'shape': (%d, %d)", &rows, &cols), 2);
    assert_int_equal(cols, E);
    assert_int_equal(len, 10 + hl + (size_t)rows * cols * 2);
    *out = malloc((size_t)rows * cols * sizeof **out);
    for (int i = 0; i < rows * cols; i++) {
        const unsigned char *p = d + 10 + hl + 2 * i;
        (*out)[i] = wp_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
    }
    free(d);
    return rows;
}

static float *load_expected(const char *what, int rows)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/clip/" MODEL_NAME "/expected/%s", what);
    size_t len = 0;
    float *d = (float *)tl_slurp(tl_shared_path(rel), &len);
    assert_non_null(d);
    assert_int_equal(len, (size_t)rows * E * 4);
    for (int i = 0; i < rows; i++)
        clip_l2_normalize(d + (size_t)i * E, E);
    return d;
}

/* metadata line for uid in shard no: row and clip_score; -1 if absent. */
static int find_row(int no, const char *uid, double *score)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/embeddings/" MODEL_NAME "/metadata/metadata_%d.jsonl", corpus,
             no);
    size_t len = 0;
    char *d = tl_slurp(path, &len);
    if (d == NULL)
        return -1;
    int row = -1;
    char *save = NULL;
    for (char *l = strtok_r(d, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        assert_non_null(j);
        if (strcmp(json_string_value(json_object_get(j, "uid")), uid) == 0) {
            row = (int)json_integer_value(json_object_get(j, "row"));
            *score = json_number_value(json_object_get(j, "clip_score"));
        }
        json_decref(j);
    }
    free(d);
    return row;
}

static void count_stat(void *ud, const char *section, const char *key, int64_t count)
{
    if (strcmp(section, "decisions") == 0 &&
        strcmp(key, "encode:" MODEL_NAME "/drop/decode_error") == 0)
        *(int64_t *)ud = count;
}

static void test_encode_corpus(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoint and test images");
    if (shared == NULL) {
        skip();
        return;
    }
    snprintf(model_dir, sizeof model_dir, "%s/golden/clip/" MODEL_NAME "/model", shared);
    snprintf(corpus, sizeof corpus, "%s/corpus", tl_mkdtemp());
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(st_open(corpus, &st, &err), 0);

    size_t na, nc, nr;
    char *astro = image_bytes("astronaut.jpg", &na);
    char *chel = image_bytes("chelsea.jpg", &nc);
    char *rock = image_bytes("rocket.jpg", &nr);
    /* golden inputs_texts[0], [1], [2], [4] */
    add_pair(c, st, "http://x/astronaut.jpg", "a photo of a cat", astro, na);
    add_pair(c, st, "http://x/astronaut.jpg",
             "A photo of an astronaut in a white space suit holding a helmet", astro, na);
    add_pair(c, st, "http://x/chelsea.jpg", "Chelsea the tabby cat sitting on a wooden floor", chel,
             nc);
    add_pair(c, st, "http://x/broken.jpg", "not an image at all", "<html>nope</html>", 17);
    add_pair(c, st, "http://x/pending.jpg", "never fetched", NULL, 0);
    add_pair(c, st, "http://x/rocket.jpg",
             "Saturn V rocket on the launch pad at Kennedy Space Center", rock, nr);
    assert_int_equal(cat_encode_count_todo(c, MODEL_NAME), 5);

    enc_run_opts o = {0};
    enc_run_counts k;
    o.model_dir = model_dir;
    o.batch = 2;
    o.shard_rows = 3;
    o.decode_threads = 3; /* more threads than images per batch, too */
    int rc = enc_run(c, st, &o, NULL, &k, &err);
    if (rc != 0)
        fail_msg("enc_run: %s", err.msg);
    assert_int_equal(k.pairs, 4);
    assert_int_equal(k.failed, 1);
    assert_int_equal(k.shards, 2);
    assert_int_equal(cat_encode_count(c, MODEL_NAME), 4);
    assert_int_equal(cat_encode_count_todo(c, MODEL_NAME), 0);
    int64_t drops = 0;
    assert_int_equal(cat_stats(c, count_stat, &drops, &err), 0);
    assert_int_equal(drops, 1);

    /* shard 0 has 3 rows, shard 1 has 1 */
    char path[1200];
    float *img0, *txt0, *img1, *txt1;
    snprintf(path, sizeof path, "%s/embeddings/" MODEL_NAME "/img_emb/img_emb_0.npy", corpus);
    assert_int_equal(read_npy(path, &img0), 3);
    snprintf(path, sizeof path, "%s/embeddings/" MODEL_NAME "/text_emb/text_emb_0.npy", corpus);
    assert_int_equal(read_npy(path, &txt0), 3);
    snprintf(path, sizeof path, "%s/embeddings/" MODEL_NAME "/img_emb/img_emb_1.npy", corpus);
    assert_int_equal(read_npy(path, &img1), 1);
    snprintf(path, sizeof path, "%s/embeddings/" MODEL_NAME "/text_emb/text_emb_1.npy", corpus);
    assert_int_equal(read_npy(path, &txt1), 1);

    /* the astronaut/"a photo of a cat" pair matches the reference features
     * (image 0, text 0) up to float16 and preprocessing rounding */
    float *ei = load_expected("image_features.f32", 14);
    float *et = load_expected("text_features.f32", 13);
    char uid[WP_UID_HEX + 1];
    const char *cap = "a photo of a cat";
    wp_pair_uid("http://x/astronaut.jpg", 22, cap, strlen(cap), uid);
    double score = 0;
    int row = find_row(0, uid, &score);
    assert_true(row >= 0 && row < 3);
    assert_true(clip_cosine(img0 + row * E, ei, E) > 0.999f);
    assert_true(clip_cosine(txt0 + row * E, et, E) > 0.9999f);
    double want = clip_cosine(ei, et, E);
    assert_true(fabs(score - want) < 2e-3);
    /* the rocket pair is alone in shard 1 */
    cap = "Saturn V rocket on the launch pad at Kennedy Space Center";
    wp_pair_uid("http://x/rocket.jpg", 19, cap, strlen(cap), uid);
    assert_int_equal(find_row(1, uid, &score), 0);
    assert_true(clip_cosine(img1, ei + 12 * E, E) > 0.999f);
    assert_true(clip_cosine(txt1, et + 4 * E, E) > 0.9999f);
    assert_true(fabs(score - clip_cosine(img1, txt1, E)) < 2e-3);

    /* a second run finds nothing to do; a new pair goes to shard 2 */
    rc = enc_run(c, st, &o, NULL, &k, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(k.pairs, 0);
    assert_int_equal(k.failed, 0);
    add_pair(c, st, "http://x/chelsea.jpg", "a photo of a cat", chel, nc);
    rc = enc_run(c, st, &o, NULL, &k, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(k.pairs, 1);
    assert_int_equal(cat_encode_count(c, MODEL_NAME), 5);
    wp_pair_uid("http://x/chelsea.jpg", 20, "a photo of a cat", 16, uid);
    assert_int_equal(find_row(2, uid, &score), 0);

    /* the command line, on one more pair */
    add_pair(c, st, "http://x/rocket.jpg", "a photo of a cat", rock, nr);
    st_close(st);
    cat_close(c);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s -q -C %s encode --model %s --batch 4 --precision bf16 --decode-threads 2",
             tl_witpipe_bin(), corpus, model_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cat_open(corpus, 0, &c, &err), 0);
    assert_int_equal(cat_encode_count(c, MODEL_NAME), 6);
    cat_close(c);
    snprintf(cmd, sizeof cmd, "%s -q -C %s encode --batch 4 2>/dev/null", tl_witpipe_bin(), corpus);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2); /* --model missing: usage */

    free(img0);
    free(txt0);
    free(img1);
    free(txt1);
    free(ei);
    free(et);
    free(astro);
    free(chel);
    free(rock);
}

/* encode reads stored bytes through the sha256 check: an image whose
 * store bytes changed after fetch (one flipped byte in the middle of a
 * JPEG, which still decodes to plausible pixels) is not embedded; it gets
 * an encode drop decision with reason store_error. */
static void test_encode_verifies_store_bytes(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoint and test images");
    if (shared == NULL) {
        skip();
        return;
    }
    snprintf(model_dir, sizeof model_dir, "%s/golden/clip/" MODEL_NAME "/model", shared);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/corpus", tl_mkdtemp());
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(dir, CAT_CREATE, &c, &err), 0);
    assert_int_equal(st_open(dir, &st, &err), 0);
    size_t na, nc;
    char *astro = image_bytes("astronaut.jpg", &na);
    char *chel = image_bytes("chelsea.jpg", &nc);
    add_pair(c, st, "http://x/astronaut.jpg", "kept", astro, na);
    add_pair(c, st, "http://x/chelsea.jpg", "changed on disk", chel, nc);
    assert_int_equal(st_sync(st, &err), 0);
    /* chelsea's bytes follow astronaut's in the first store file */
    char path[1200];
    snprintf(path, sizeof path, "%s/store/000001.dat", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    long at = (long)(na + nc / 2);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(ch ^ 0x01, f);
    fclose(f);

    enc_run_opts o = {0};
    enc_run_counts k;
    o.model_dir = model_dir;
    o.batch = 4;
    o.shard_rows = 10;
    assert_int_equal(enc_run(c, st, &o, NULL, &k, &err), 0);
    assert_int_equal(k.pairs, 1);
    assert_int_equal(k.failed, 1);
    st_close(st);
    cat_close(c);
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT p.text, d.reason FROM decisions d JOIN pairs p "
                                        "ON p.id = d.pair_id WHERE d.decision = 'drop'",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "changed on disk");
    assert_string_equal((const char *)sqlite3_column_text(q, 1), "store_error");
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(astro);
    free(chel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_corpus),
        cmocka_unit_test(test_encode_verifies_store_bytes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (corpus[0] != '\0') {
        char *slash = strrchr(corpus, '/');
        *slash = '\0';
        tl_rmtree(corpus);
    }
    return rc;
}
