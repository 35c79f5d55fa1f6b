/*
 * tests/unit/test_emb.c: the embeddings module (emb/emb.h): shards written
 * by emb_write_shard read back exactly (float16 rounding aside), rows and
 * pair ids across several shards, files written by numpy.save (float16 and
 * float32, format 1.0 and 2.0, as clip-retrieval writes them) read to the
 * values numpy wrote, and malformed headers, truncated data and disagreeing
 * shards refused with an error naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emb/emb.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static int setup(void **state)
{
    dir = tl_mkdtemp();
    return dir == NULL;
}

static int teardown(void **state)
{
    tl_rmtree(dir);
    return 0;
}

static void sub(char *out, const char *name)
{
    snprintf(out, 1024, "%s/%s", dir, name);
}

/* value of row r, column j in the synthetic shards */
static float val(int64_t r, int j)
{
    return (float)sin(0.37 * (double)r + 0.11 * j) * 3.0f;
}

static void write_synth(const char *d, int64_t no, int64_t first, int rows, int dim, int text)
{
    uint16_t *img = malloc((size_t)rows * dim * 2), *txt = malloc((size_t)rows * dim * 2);
    emb_row *meta = calloc((size_t)rows + 1, sizeof *meta);
    wp_err err = {0};
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < dim; j++) {
            img[(size_t)r * dim + j] = wp_f32_to_f16(val(first + r, j));
            txt[(size_t)r * dim + j] = wp_f32_to_f16(-val(first + r, j));
        }
        meta[r].pair_id = 1000 + 3 * (first + r);
        snprintf(meta[r].uid, sizeof meta[r].uid, "%032llx", (unsigned long long)(first + r));
        meta[r].clip_score = 0.25f;
    }
    if (emb_write_shard(d, no, rows, dim, img, text ? txt : NULL, meta, &err) != 0)
        fail_msg("emb_write_shard: %s", err.msg);
    free(img);
    free(txt);
    free(meta);
}

static void round_trip_across_shards(void **state)
{
    char d[1024];
    emb_set *s = NULL;
    wp_err err = {0};
    const int dim = 24;

    sub(d, "rt");
    write_synth(d, 0, 0, 7, dim, 1);
    write_synth(d, 1, 7, 0, dim, 1); /* an empty shard is allowed */
    write_synth(d, 2, 7, 5, dim, 1);
    write_synth(d, 10, 12, 9, dim, 1); /* numbers need not be contiguous */
    if (emb_open(d, &s, &err) != 0)
        fail_msg("emb_open: %s", err.msg);
    assert_int_equal(emb_dim(s), dim);
    assert_int_equal(emb_rows(s), 21);
    assert_true(emb_has_text(s));
    float *all = malloc(21 * dim * sizeof(float)), *t = malloc(21 * dim * sizeof(float));
    assert_int_equal(emb_read(s, EMB_IMAGE, 0, 21, all, &err), 0);
    assert_int_equal(emb_read(s, EMB_TEXT, 0, 21, t, &err), 0);
    for (int r = 0; r < 21; r++) {
        for (int j = 0; j < dim; j++) {
            assert_true(fabsf(all[r * dim + j] - val(r, j)) <= 2e-3f);
            assert_true(all[r * dim + j] == -t[r * dim + j]);
        }
        assert_int_equal(emb_pair_id(s, r), 1000 + 3 * r);
        char want[33];
        snprintf(want, sizeof want, "%032llx", (unsigned long long)r);
        assert_string_equal(emb_uid(s, r), want);
        assert_int_equal(emb_find_pair(s, 1000 + 3 * r), r);
    }
    assert_int_equal(emb_find_pair(s, 1001), -1);
    assert_int_equal(emb_find_pair(s, 5), -1);
    assert_int_equal(emb_pair_id(s, 21), 0);
    /* a read spanning three shards equals the same rows of the full read */
    float part[10 * 24];
    assert_int_equal(emb_read(s, EMB_IMAGE, 5, 10, part, &err), 0);
    assert_memory_equal(part, all + 5 * dim, sizeof part);
    /* out of range */
    assert_int_equal(emb_read(s, EMB_IMAGE, 15, 7, part, &err), WP_EINVAL);
    assert_int_equal(emb_read(s, EMB_IMAGE, -1, 1, part, &err), WP_EINVAL);
    emb_close(s);
    free(all);
    free(t);
}

static void header_is_numpy_format(void **state)
{
    wp_buf b = {0};
    emb_npy h;
    wp_err err = {0};
    assert_int_equal(emb_npy_header(&b, 123456, 768, 1), 0);
    assert_int_equal(b.len % 64, 0);
    assert_memory_equal(b.data, "\x93NUMPY\x01\x00", 8);
    assert_int_equal(b.data[b.len - 1], '\n');
    assert_non_null(strstr(b.data + 10, "'shape': (123456, 768)"));
    /* parse its own header (with data present) */
    char *f = calloc(1, b.len + (size_t)123456 * 768 * 2);
    memcpy(f, b.data, b.len);
    assert_int_equal(emb_npy_parse(f, b.len + (size_t)123456 * 768 * 2, &h, &err), 0);
    assert_int_equal(h.rows, 123456);
    assert_int_equal(h.cols, 768);
    assert_int_equal(h.itemsize, 2);
    assert_int_equal(h.data_offset, b.len);
    /* one byte short of the data */
    assert_int_equal(emb_npy_parse(f, b.len + (size_t)123456 * 768 * 2 - 1, &h, &err), EMB_EFORMAT);
    assert_non_null(strstr(err.msg, "cut short"));
    free(f);
    wp_buf_free(&b);
}

/* A header dict d (version 1.0) followed by data bytes. */
static int parse_dict(const char *d, size_t data, wp_err *err)
{
    size_t n = strlen(d), total = 10 + n + data;
    unsigned char *p = calloc(1, total + 1);
    emb_npy h;
    memcpy(p, "\x93NUMPY\x01\x00", 8);
    p[8] = (unsigned char)(n & 0xff);
    p[9] = (unsigned char)(n >> 8);
    memcpy(p + 10, d, n);
    int rc = emb_npy_parse(p, total, &h, err);
    free(p);
    return rc;
}

static void malformed_headers_refused(void **state)
{
    wp_err err = {0};
    static const struct {
        const char *dict;
        const char *msg;
    } bad[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n", "not supported"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }\n", "not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }\n", "more than 2"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, }\n", "lacks 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }\n", "values"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 99999), }\n", "values"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }\n",
         "bad 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 4), }\n", "cut short"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}\n", "unknown key"},
        {"{'descr': '<f4 'fortran_order': False}\n", "not supported"},
        {"{'descr: '<f4'}", "expected"},
        {"[1, 2]", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)", "expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_dict(bad[i].dict, 64, &err);
        if (rc != EMB_EFORMAT || strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("case %zu (%s): rc %d, message '%s' (want '%s')", i, bad[i].dict, rc, err.msg,
                     bad[i].msg);
    }
    /* well-formed variants numpy may write: no trailing comma, spaces, key order */
    assert_int_equal(
        parse_dict("{'shape': (2, 4), 'fortran_order': False, 'descr': '<f4'}   \n", 32, &err), 0);
    assert_int_equal(
        parse_dict("{\"descr\":\"<f2\",\"fortran_order\":False,\"shape\":(0,)}", 0, &err), 0);
    /* magic, version, header length past the end */
    unsigned char junk[16] = "\x93NUMPX\x01\x00\x04\x00{}}}";
    emb_npy h;
    assert_int_equal(emb_npy_parse(junk, sizeof junk, &h, &err), EMB_EFORMAT);
    memcpy(junk, "\x93NUMPY\x04\x00", 8);
    assert_int_equal(emb_npy_parse(junk, sizeof junk, &h, &err), EMB_EFORMAT);
    assert_non_null(strstr(err.msg, "version 4.0"));
    memcpy(junk, "\x93NUMPY\x01\x00\xff\x00", 10);
    assert_int_equal(emb_npy_parse(junk, sizeof junk, &h, &err), EMB_EFORMAT);
    assert_non_null(strstr(err.msg, "past the end"));
}

/* numpy.save output, as clip-retrieval writes it. */
static void reads_what_numpy_wrote(void **state)
{
    char d[1024], cmd[4096];
    emb_set *s = NULL;
    wp_err err = {0};

    sub(d, "np");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' <<'EOF'\n"
             "import os, sys, numpy as np\n"
             "d = sys.argv[1]\n"
             "for s in ('img_emb', 'text_emb'): os.makedirs(os.path.join(d, s))\n"
             "rng = np.random.default_rng(7)\n"
             "a = rng.standard_normal((5, 16)).astype(np.float32)\n"
             "b = rng.standard_normal((3, 16)).astype(np.float16)\n"
             "np.save(os.path.join(d, 'img_emb/img_emb_0.npy'), a)\n"
             "np.save(os.path.join(d, 'img_emb/img_emb_1.npy'), b)\n"
             "np.save(os.path.join(d, 'text_emb/text_emb_0.npy'), -a)\n"
             "with open(os.path.join(d, 'text_emb/text_emb_1.npy'), 'wb') as f:\n"
             "    np.lib.format.write_array(f, -b, version=(2, 0))\n"
             "np.concatenate([a, b.astype(np.float32)]).tofile(os.path.join(d, 'want.f32'))\n"
             "EOF",
             d);
    if (system(cmd) != 0)
        fail_msg("python3-numpy is needed (make deps installs it): %s", cmd);
    if (emb_open(d, &s, &err) != 0)
        fail_msg("emb_open: %s", err.msg);
    assert_int_equal(emb_rows(s), 8);
    assert_int_equal(emb_dim(s), 16);
    assert_true(emb_has_text(s));
    assert_int_equal(emb_pair_id(s, 0), 0); /* no witpipe metadata */
    char wp[1024];
    size_t len = 0;
    snprintf(wp, sizeof wp, "%s/want.f32", d);
    float *want = (float *)tl_slurp(wp, &len);
    assert_int_equal(len, 8 * 16 * sizeof(float));
    float got[8 * 16], txt[8 * 16];
    assert_int_equal(emb_read(s, EMB_IMAGE, 0, 8, got, &err), 0);
    assert_int_equal(emb_read(s, EMB_TEXT, 0, 8, txt, &err), 0);
    for (int i = 0; i < 8 * 16; i++) {
        assert_true(got[i] == want[i]); /* exact: f32 copied, f16 widened */
        assert_true(txt[i] == -want[i]);
    }
    emb_close(s);
    free(want);
}

static void bad_sets_refused(void **state)
{
    char d[1024], p[1100];
    emb_set *s = NULL;
    wp_err err = {0};

    /* no shard at all */
    sub(d, "empty");
    mkdir(d, 0755);
    assert_int_equal(emb_open(d, &s, &err), WP_ENOENT);
    /* dimensions disagree between shards */
    sub(d, "dims");
    write_synth(d, 0, 0, 3, 8, 1);
    write_synth(d, 1, 3, 3, 16, 1);
    assert_int_equal(emb_open(d, &s, &err), EMB_EMISMATCH);
    assert_non_null(strstr(err.msg, "img_emb_1.npy"));
    /* text rows disagree with image rows */
    sub(d, "rows");
    write_synth(d, 0, 0, 3, 8, 1);
    snprintf(p, sizeof p, "%s/text_emb/text_emb_0.npy", d);
    {
        wp_buf b = {0};
        emb_npy_header(&b, 2, 8, 1);
        for (int i = 0; i < 16; i++)
            wp_buf_append(&b, "\0\0", 2);
        tl_write(p, b.data, b.len);
        wp_buf_free(&b);
    }
    assert_int_equal(emb_open(d, &s, &err), EMB_EMISMATCH);
    assert_non_null(strstr(err.msg, "text_emb_0.npy"));
    /* a truncated shard names the file */
    sub(d, "trunc");
    write_synth(d, 0, 0, 4, 8, 0);
    snprintf(p, sizeof p, "%s/img_emb/img_emb_0.npy", d);
    assert_int_equal(truncate(p, 64 + 4 * 8 * 2 - 3), 0);
    assert_int_equal(emb_open(d, &s, &err), EMB_EFORMAT);
    assert_non_null(strstr(err.msg, "img_emb_0.npy"));
    /* no text shards: readable, but text reads are refused */
    sub(d, "notext");
    write_synth(d, 0, 0, 4, 8, 0);
    assert_int_equal(emb_open(d, &s, &err), 0);
    assert_false(emb_has_text(s));
    float f[8];
    assert_int_equal(emb_read(s, EMB_TEXT, 0, 1, f, &err), WP_EINVAL);
    emb_close(s);
    /* a metadata line with a row past the shard, named with its line */
    sub(d, "meta");
    write_synth(d, 0, 0, 2, 8, 0);
    snprintf(p, sizeof p, "%s/metadata/metadata_0.jsonl", d);
    const char *m = "{\"row\":0,\"pair_id\":1,\"uid\":\"0123456789abcdef0123456789abcdef\"}\n"
                    "{\"row\":2,\"pair_id\":2,\"uid\":\"0123456789abcdef0123456789abcdef\"}\n";
    tl_write(p, m, strlen(m));
    assert_int_equal(emb_open(d, &s, &err), EMB_EFORMAT);
    assert_non_null(strstr(err.msg, "metadata_0.jsonl:2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_is_numpy_format),
        cmocka_unit_test(malformed_headers_refused),
        cmocka_unit_test_setup_teardown(round_trip_across_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(reads_what_numpy_wrote, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_sets_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
