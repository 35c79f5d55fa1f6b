/*
 * tests/unit/test_clip_golden.c: the built-in CLIP against the float64
 * PyTorch reference outputs in ../shared/golden/clip (four tiny checkpoints:
 * HF quick_gelu f32, HF gelu f16, OpenAI ViT f32, OpenAI ModifiedResNet
 * bf16), the bf16 precision mode against f32, and the safetensors loader's
 * refusal of malformed files with an error naming the tensor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clip/clip.h"
#include "kern/kern.h"
#include "clip/safetensors.h"
#include "tests/lib/testlib.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#define N_IMAGES 14
#define N_TEXTS  13
#define CTX      77
#define IMG      224

static float *load_f32(const char *rel, size_t count)
{
    size_t len = 0;
    const char *p = tl_shared_path(rel);
    char *d = p ? tl_slurp(p, &len) : NULL;
    if (d == NULL || len != count * 4) {
        free(d);
        return NULL;
    }
    return (float *)d;
}

/* Max abs error relative to the reference vector's max abs, and cosine. */
static void check_features(const char *what, const float *got, const float *want, int n, int dim,
                           double tol_rel, double tol_cos)
{
    for (int i = 0; i < n; i++) {
        const float *g = got + (size_t)i * dim, *w = want + (size_t)i * dim;
        double mx = 0, err = 0;
        for (int j = 0; j < dim; j++) {
            if (fabs(w[j]) > mx)
                mx = fabs(w[j]);
            if (fabs(g[j] - w[j]) > err)
                err = fabs(g[j] - w[j]);
        }
        double cos = clip_cosine(g, w, dim);
        if (err / mx > tol_rel || cos < 1.0 - tol_cos)
            fail_msg("%s row %d: max abs err %.3g (rel %.3g), cosine %.9f", what, i, err, err / mx,
                     cos);
    }
}

typedef struct golden {
    const char *name;
} golden;

/* Loads model NAME at precision prec and computes features for the golden
 * inputs. Returns 0, or -1 after printing SKIP when ../shared is absent. */
static int run_model(const char *name, int prec, clip_model **mout, float **img, float **txt)
{
    char rel[256];
    wp_err err = {0};
    clip_open_opts o = {prec};
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    if (shared == NULL)
        return -1;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden/clip/%s/model", shared, name);
    clip_model *m = NULL;
    int rc = clip_model_open(dir, &o, &m, &err);
    if (rc != 0)
        fail_msg("%s: %s", name, err.msg);
    int E = clip_model_arch(m)->embed_dim;
    float *px = load_f32("golden/clip/inputs/pixels.f32", (size_t)N_IMAGES * 3 * IMG * IMG);
    snprintf(rel, sizeof rel, "%s/golden/clip/inputs/tokens.i32", shared);
    size_t tl = 0;
    int32_t *tok = (int32_t *)tl_slurp(rel, &tl);
    assert_non_null(px);
    assert_non_null(tok);
    assert_int_equal(tl, (size_t)N_TEXTS * CTX * 4);
    *img = calloc((size_t)N_IMAGES * E, sizeof **img);
    *txt = calloc((size_t)N_TEXTS * E, sizeof **txt);
    clip_ws *ws = clip_ws_new();
    assert_non_null(ws);
    /* two batches of different sizes through one workspace */
    rc = clip_encode_images(m, ws, px, 5, *img, &err);
    if (rc == 0)
        rc = clip_encode_images(m, ws, px + (size_t)5 * 3 * IMG * IMG, N_IMAGES - 5,
                                *img + (size_t)5 * E, &err);
    if (rc != 0)
        fail_msg("%s images: %s", name, err.msg);
    rc = clip_encode_texts(m, ws, tok, N_TEXTS, CTX, *txt, &err);
    if (rc != 0)
        fail_msg("%s texts: %s", name, err.msg);
    /* equal-length texts take the batched attention path: the same text
     * four times gives four copies of its features */
    {
        int32_t same[4 * CTX];
        float four[4 * 64];
        assert_true(E <= 64);
        for (int i = 0; i < 4; i++)
            memcpy(same + i * CTX, tok + (N_TEXTS - 1) * CTX, CTX * sizeof *same);
        assert_int_equal(clip_encode_texts(m, ws, same, 4, CTX, four, &err), 0);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < E; j++)
                assert_true(fabsf(four[i * E + j] - (*txt)[(N_TEXTS - 1) * E + j]) <=
                            1e-4f * (1.0f + fabsf(four[i * E + j])));
    }
    clip_ws_free(ws);
    free(px);
    free(tok);
    *mout = m;
    return 0;
}

static void golden_check(const char *name)
{
    clip_model *m;
    float *img, *txt;
    char rel[256];

    if (run_model(name, KN_F32, &m, &img, &txt) != 0) {
        skip();
        return;
    }
    int E = clip_model_arch(m)->embed_dim;
    assert_int_equal(E, 32);
    snprintf(rel, sizeof rel, "golden/clip/%s/expected/image_features.f32", name);
    float *wi = load_f32(rel, (size_t)N_IMAGES * E);
    snprintf(rel, sizeof rel, "golden/clip/%s/expected/text_features.f32", name);
    float *wt = load_f32(rel, (size_t)N_TEXTS * E);
    snprintf(rel, sizeof rel, "golden/clip/%s/expected/cosine.f32", name);
    float *wc = load_f32(rel, (size_t)N_IMAGES * N_TEXTS);
    assert_non_null(wi);
    assert_non_null(wt);
    assert_non_null(wc);
    check_features("image", img, wi, N_IMAGES, E, 1e-3, 1e-5);
    check_features("text", txt, wt, N_TEXTS, E, 1e-3, 1e-5);
    for (int i = 0; i < N_IMAGES; i++)
        for (int j = 0; j < N_TEXTS; j++) {
            float c = clip_cosine(img + (size_t)i * E, txt + (size_t)j * E, E);
            if (fabsf(c - wc[i * N_TEXTS + j]) > 1e-5f)
                fail_msg("%s cosine[%d][%d] = %.7f, expected %.7f", name, i, j, c,
                         wc[i * N_TEXTS + j]);
        }
    /* logit scale as in the manifest */
    json_error_t je;
    json_t *man = json_load_file(tl_shared_path("golden/clip/manifest.json"), 0, &je);
    assert_non_null(man);
    double ls = json_number_value(
        json_object_get(json_object_get(json_object_get(man, "models"), name), "logit_scale"));
    assert_true(fabs(clip_model_logit_scale(m) - ls) < 1e-3 * ls);
    json_decref(man);
    free(wi);
    free(wt);
    free(wc);
    free(img);
    free(txt);
    clip_model_free(m);
}

static void test_golden_hf_vit_quickgelu_f32(void **state)
{
    golden_check("hf_vit_quickgelu_f32");
}

static void test_golden_hf_vit_gelu_f16(void **state)
{
    golden_check("hf_vit_gelu_f16");
}

static void test_golden_oc_vit_quickgelu_f32(void **state)
{
    golden_check("oc_vit_quickgelu_f32");
}

static void test_golden_oc_rn_bf16(void **state)
{
    golden_check("oc_rn_bf16");
}

/* The architecture read from each layout's config and shapes; the info
 * JSON names the kernel path and AMX's availability. */
static void test_arch_inferred(void **state)
{
    wp_err err = {0};
    clip_model *m = NULL;
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    char dir[1024];
    if (shared == NULL) {
        skip();
        return;
    }
    snprintf(dir, sizeof dir, "%s/golden/clip/oc_rn_bf16/model", shared);
    assert_int_equal(clip_model_open(dir, NULL, &m, &err), 0);
    const clip_arch *a = clip_model_arch(m);
    assert_int_equal(a->vision, CLIP_VISION_RESNET);
    assert_int_equal(a->layout, CLIP_LAYOUT_OPENAI);
    assert_int_equal(a->v_width, 16);
    assert_int_equal(a->v_heads, 8);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a->rn_layers[i], 1);
    assert_int_equal(a->t_heads, 2);
    assert_string_equal(clip_model_dtype(m), "BF16");
    clip_model_free(m);
    snprintf(dir, sizeof dir, "%s/golden/clip/hf_vit_gelu_f16/model", shared);
    assert_int_equal(clip_model_open(dir, NULL, &m, &err), 0);
    a = clip_model_arch(m);
    assert_int_equal(a->layout, CLIP_LAYOUT_HF);
    assert_int_equal(a->v_patch, 16);
    assert_int_equal(a->v_heads, 4);
    assert_int_equal(a->v_layers, 2);
    assert_int_equal(a->v_act, KN_ACT_GELU);
    assert_int_equal(a->eos_id, 49407);
    assert_string_equal(clip_model_dtype(m), "F16");
    wp_buf b = {0};
    assert_int_equal(clip_model_info_json(m, &b), 0);
    json_error_t je;
    json_t *j = json_loads(b.data, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "layout")), "huggingface");
    assert_true(json_integer_value(json_object_get(j, "parameters")) > 1000000);
    /* the kernel path in use, the paths the CPU has, and AMX's standing */
    const char *kern = json_string_value(json_object_get(j, "kernel"));
    assert_non_null(kern);
    assert_true(!strncmp(kern, kn_init(), strlen(kn_init())));
    assert_non_null(strstr(kern, "cpu has: "));
    assert_true(strstr(kern, "amx-bf16 available") != NULL ||
                strstr(kern, "amx-bf16 unavailable: ") != NULL);
    json_decref(j);
    wp_buf_free(&b);
    clip_model_free(m);
}

/* Model info's precision and precision_why of tower ("vision", "text"). */
static void tower_prec(const clip_model *m, const char *tower, char *prec, char *why, size_t len)
{
    wp_buf b = {0};
    json_error_t je;
    assert_int_equal(clip_model_info_json(m, &b), 0);
    json_t *j = json_loads(b.data, 0, &je);
    assert_non_null(j);
    json_t *t = json_object_get(j, tower);
    const char *p = json_string_value(json_object_get(t, "precision"));
    const char *w = json_string_value(json_object_get(t, "precision_why"));
    assert_non_null(p);
    assert_non_null(w);
    snprintf(prec, len, "%s", p);
    snprintf(why, len, "%s", w);
    json_decref(j);
    wp_buf_free(&b);
}

/* --precision bf16: features close to f32, CLIP scores within 0.005. */
static void bf16_check(const char *name, float score_tol)
{
    clip_model *m32, *m16;
    float *i32, *t32, *i16, *t16;
    if (run_model(name, KN_F32, &m32, &i32, &t32) != 0) {
        skip();
        return;
    }
    assert_int_equal(run_model(name, KN_BF16, &m16, &i16, &t16), 0);
    int E = clip_model_arch(m32)->embed_dim;
    float ls = clip_model_logit_scale(m32);
    for (int i = 0; i < N_IMAGES; i++) {
        float c = clip_cosine(i32 + (size_t)i * E, i16 + (size_t)i * E, E);
        if (c < 0.999f)
            fail_msg("%s image %d: bf16 vs f32 cosine %.5f", name, i, c);
    }
    for (int j = 0; j < N_TEXTS; j++) {
        float c = clip_cosine(t32 + (size_t)j * E, t16 + (size_t)j * E, E);
        if (c < 0.999f)
            fail_msg("%s text %d: bf16 vs f32 cosine %.5f", name, j, c);
    }
    /* CLIP score: the image-text cosine (the clip_score the encode stage
     * stores) */
    for (int i = 0; i < N_IMAGES; i++)
        for (int j = 0; j < N_TEXTS; j++) {
            float a = clip_cosine(i32 + (size_t)i * E, t32 + (size_t)j * E, E);
            float b = clip_cosine(i16 + (size_t)i * E, t16 + (size_t)j * E, E);
            if (fabsf(a - b) > score_tol)
                fail_msg("%s score[%d][%d]: f32 %.5f bf16 %.5f", name, i, j, a, b);
        }
    assert_true(ls > 0);
    free(i32);
    free(t32);
    free(i16);
    free(t16);
    clip_model_free(m32);
    clip_model_free(m16);
}

static void test_bf16_close_to_f32_hf_vit(void **state)
{
    bf16_check("hf_vit_quickgelu_f32", 0.005f);
}

static void test_bf16_close_to_f32_hf_vit_gelu(void **state)
{
    bf16_check("hf_vit_gelu_f16", 0.005f);
}

static void test_bf16_close_to_f32_oc_vit(void **state)
{
    bf16_check("oc_vit_quickgelu_f32", 0.005f);
}

/* --precision bf16 with split bf16 forced (kn_force_bf16x3, whatever the
 * rule says here): on a path with a native bf16 tile (avx512-bf16 here;
 * amx-bf16 under tests/kern_avx512_emul.sh) the text tower, and a
 * ModifiedResNet's convolutions and attention pool, run three bf16
 * products. The accuracy rule holds with a wide margin: features at cosine
 * >= 0.99999 to f32 and the split towers' own share of any CLIP score
 * within 0.0005, a tenth of the rule's 0.005 (plain bf16 text moved scores
 * by 0.0044-0.0080, a plain bf16 ResNet by 0.0075); the whole score,
 * with a ViT image tower in plain bf16, within 0.005. */
static void x3_check(const char *name)
{
    clip_model *m32, *mx;
    float *i32, *t32, *ix, *tx;
    char prec[400], why[400];
    if (run_model(name, KN_F32, &m32, &i32, &t32) != 0) {
        skip();
        return;
    }
    kn_force_bf16x3(1);
    assert_int_equal(run_model(name, KN_BF16, &mx, &ix, &tx), 0);
    kn_force_bf16x3(0);
    int E = clip_model_arch(m32)->embed_dim;
    int vit = clip_model_arch(m32)->vision == CLIP_VISION_VIT;
    tower_prec(mx, "text", prec, why, sizeof prec);
    assert_string_equal(prec, "bf16x3");
    assert_non_null(strstr(why, "split bf16"));
    tower_prec(mx, "vision", prec, why, sizeof prec);
    assert_string_equal(prec, vit ? "bf16" : "bf16x3");
    double worst = 0.0, worst_split = 0.0, cmin = 1.0;
    for (int j = 0; j < N_TEXTS; j++) {
        double c = clip_cosine(t32 + (size_t)j * E, tx + (size_t)j * E, E);
        cmin = c < cmin ? c : cmin;
    }
    for (int i = 0; i < N_IMAGES && !vit; i++) {
        double c = clip_cosine(i32 + (size_t)i * E, ix + (size_t)i * E, E);
        cmin = c < cmin ? c : cmin;
    }
    for (int i = 0; i < N_IMAGES; i++)
        for (int j = 0; j < N_TEXTS; j++) {
            const float *img = ix + (size_t)i * E, *txt = tx + (size_t)j * E;
            double a = clip_cosine(i32 + (size_t)i * E, t32 + (size_t)j * E, E);
            double b = clip_cosine(img, txt, E);
            /* the split towers' share: the same score with them f32 */
            double c = clip_cosine(vit ? img : i32 + (size_t)i * E, t32 + (size_t)j * E, E);
            worst = fabs(a - b) > worst ? fabs(a - b) : worst;
            worst_split = fabs(b - c) > worst_split ? fabs(b - c) : worst_split;
        }
    printf("%s on %s, split bf16: 1 - min cosine to f32 %.1e (split towers), worst score "
           "delta %.2e (of it the split towers' %.2e)\n",
           name, kn_init(), 1.0 - cmin, worst, worst_split);
    if (cmin < 0.99999)
        fail_msg("%s: split bf16 feature cosine %.7f to f32", name, cmin);
    if (worst_split > 0.0005)
        fail_msg("%s: split bf16 moved scores by %.5f", name, worst_split);
    if (worst > 0.005)
        fail_msg("%s: bf16 moved scores by %.5f", name, worst);
    free(i32);
    free(t32);
    free(ix);
    free(tx);
    clip_model_free(m32);
    clip_model_free(mx);
}

static void test_bf16x3_hf_vit_quickgelu(void **state)
{
    x3_check("hf_vit_quickgelu_f32");
}

static void test_bf16x3_hf_vit_gelu(void **state)
{
    x3_check("hf_vit_gelu_f16");
}

static void test_bf16x3_oc_vit(void **state)
{
    x3_check("oc_vit_quickgelu_f32");
}

static void test_bf16x3_oc_rn(void **state)
{
    x3_check("oc_rn_bf16");
}

/* A ModifiedResNet asked for bf16 runs split bf16 where kn_bf16x3_worth
 * says it pays (AMX), else float32 (plain bf16 rounding through its
 * BN-folded convolutions moved the tiny golden RN's scores by ~0.0075):
 * then the features equal the float32 ones exactly, and model info says
 * f32 for both towers, and why. */
static void test_bf16_resnet_follows_split_rule(void **state)
{
    clip_model *m32, *m16;
    float *i32, *t32, *i16, *t16;
    char prec[400], why[400];
    if (run_model("oc_rn_bf16", KN_F32, &m32, &i32, &t32) != 0) {
        skip();
        return;
    }
    assert_int_equal(run_model("oc_rn_bf16", KN_BF16, &m16, &i16, &t16), 0);
    int E = clip_model_arch(m32)->embed_dim;
    const char *want = kn_bf16x3_worth() ? "bf16x3" : "f32";
    tower_prec(m16, "vision", prec, why, sizeof prec);
    assert_string_equal(prec, want);
    assert_non_null(strstr(why, "bf16 requested: plain bf16 breaks the accuracy rule"));
    tower_prec(m16, "text", prec, why, sizeof prec);
    assert_string_equal(prec, want);
    tower_prec(m32, "text", prec, why, sizeof prec);
    assert_string_equal(prec, "f32");
    assert_string_equal(why, "f32 requested");
    if (!kn_bf16x3_worth()) {
        assert_non_null(strstr(why, "f32"));
        assert_memory_equal(i32, i16, sizeof(float) * (size_t)N_IMAGES * (size_t)E);
        assert_memory_equal(t32, t16, sizeof(float) * (size_t)N_TEXTS * (size_t)E);
    }
    free(i32);
    free(t32);
    free(i16);
    free(t16);
    clip_model_free(m32);
    clip_model_free(m16);
}

/* ---- malformed safetensors ------------------------------------------- */

static char *tmpdir;

static int setup_tmp(void **state)
{
    tmpdir = tl_mkdtemp();
    return tmpdir ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    tl_rmtree(tmpdir);
    return 0;
}

/* Writes a safetensors file: header json, then nbytes of data. */
static const char *write_st(const char *name, const char *json, size_t nbytes,
                            int64_t hlen_override)
{
    static char path[1024];
    size_t jl = strlen(json);
    uint64_t hl = hlen_override >= 0 ? (uint64_t)hlen_override : jl;
    size_t total = 8 + jl + nbytes;
    unsigned char *b = calloc(1, total);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + 8, json, jl);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    assert_int_equal(tl_write(path, b, total), 0);
    free(b);
    return path;
}

static void expect_error(const char *path, const char *needle)
{
    clip_st *st = NULL;
    wp_err err = {0};
    int rc = clip_st_open(path, &st, &err);
    assert_int_equal(rc, CLIP_EFORMAT);
    assert_null(st);
    if (strstr(err.msg, needle) == NULL || strstr(err.msg, path) == NULL)
        fail_msg("error '%s' lacks '%s' or the path", err.msg, needle);
}

static void test_st_bad_header_length(void **state)
{
    const char *p = write_st("len.safetensors", "{}", 0, 1000000);
    expect_error(p, "header length");
    p = write_st("short.safetensors", "", 0, 0);
    expect_error(p, "header length");
}

static void test_st_overlapping_offsets(void **state)
{
    const char *p =
        write_st("ovl.safetensors",
                 "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, -1);
    expect_error(p, "overlap");
    expect_error(p, "'b.weight'");
}

static void test_st_out_of_bounds(void **state)
{
    const char *p =
        write_st("oob.safetensors",
                 "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1);
    expect_error(p, "'big'");
    expect_error(p, "out of bounds");
}

static void test_st_dtype_shape_mismatch(void **state)
{
    const char *p =
        write_st("mis.safetensors",
                 "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 12, -1);
    expect_error(p, "'w'");
    expect_error(p, "needs 6 bytes");
    p = write_st("dt.safetensors",
                 "{\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3, -1);
    expect_error(p, "'q'");
    expect_error(p, "unsupported dtype");
}

static void test_st_truncated_file(void **state)
{
    const char *json = "{\"t\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}";
    /* whole header but only half the data */
    const char *p = write_st("trunc.safetensors", json, 16, -1);
    expect_error(p, "'t'");
    expect_error(p, "truncated");
    /* header cut short: the length field promises more than there is */
    p = write_st("trunc2.safetensors", "{\"t\":{\"dty", 0, 200);
    expect_error(p, "header length");
}

/* Hostile headers cost bounded memory: a header over CLIP_ST_HEADER_MAX is
 * refused from its length field alone, and one listing more tensors than
 * CLIP_ST_TENSORS_MAX (here 20,000 empty ones, 1.3 MB) is refused before
 * any per-tensor table is allocated. Peak RSS stays far below what the
 * 1.7M-tensor header of the hardening issue cost (2.3 GB). */
static void test_st_header_bounds(void **state)
{
    wp_buf j = {0};
    assert_int_equal(wp_buf_putc(&j, '{'), 0);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(wp_buf_printf(&j,
                                       "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],"
                                       "\"data_offsets\":[0,0]}",
                                       i ? "," : "", i),
                         0);
    assert_int_equal(wp_buf_putc(&j, '}'), 0);
    assert_true(j.len < CLIP_ST_HEADER_MAX);
    const char *p = write_st("many.safetensors", j.data, 0, -1);
    expect_error(p, "20000 tensors");
    wp_buf_free(&j);
    p = write_st("huge.safetensors", "{}", 0, (int64_t)CLIP_ST_HEADER_MAX + 1);
    expect_error(p, "header length");
    /* 16384 empty tensors are still accepted */
    wp_buf k = {0};
    wp_buf_putc(&k, '{');
    for (int i = 0; i < CLIP_ST_TENSORS_MAX; i++)
        wp_buf_printf(&k, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                      i ? "," : "", i);
    wp_buf_putc(&k, '}');
    p = write_st("max.safetensors", k.data, 0, -1);
    clip_st *st = NULL;
    wp_err err = {0};
    int rc = clip_st_open(p, &st, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(clip_st_count(st), CLIP_ST_TENSORS_MAX);
    clip_st_close(st);
    wp_buf_free(&k);
}

static void test_st_bad_json(void **state)
{
    const char *p = write_st("json.safetensors", "{\"t\": [1,", 0, -1);
    expect_error(p, "header JSON");
}

/* clip_st_open_mem applies the same checks to bytes in memory, naming the
 * given name, and reads tensors straight from the caller's buffer. */
static void test_st_open_mem(void **state)
{
    static const char json[] = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    unsigned char b[8 + sizeof json - 1 + 4] = {0};
    clip_st *st = NULL;
    wp_err err = {0};
    float out[2];

    b[0] = sizeof json - 1;
    memcpy(b + 8, json, sizeof json - 1);
    unsigned char *d = b + 8 + sizeof json - 1;
    d[0] = 0x80; /* bf16 0x3f80 = 1.0 */
    d[1] = 0x3f;
    d[3] = 0xc0; /* bf16 0xc000 = -2.0 */
    assert_int_equal(clip_st_open_mem(b, sizeof b, "mem:a", &st, &err), 0);
    assert_int_equal(clip_st_count(st), 1);
    assert_int_equal(clip_st_read_f32(st, clip_st_find(st, "a"), out, &err), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    clip_st_close(st);
    /* one data byte short: refused, naming the tensor and the given name */
    assert_int_equal(clip_st_open_mem(b, sizeof b - 1, "mem:a", &st, &err), CLIP_EFORMAT);
    assert_null(st);
    assert_non_null(strstr(err.msg, "mem:a"));
    assert_non_null(strstr(err.msg, "'a'"));
    assert_int_equal(clip_st_open_mem(b, 7, "mem:short", &st, &err), CLIP_EFORMAT);
    assert_non_null(strstr(err.msg, "too short"));
}

/* Valid file: scalars, F16/BF16 conversion, __metadata__ skipped, I64
 * accepted by the reader but refused as weights, naming the tensor. */
static void test_st_valid_and_convert(void **state)
{
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                       "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
                       "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[12,20]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[20,20]}}";
    size_t jl = strlen(json);
    unsigned char b[8 + 1024] = {0};
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    unsigned char *d = b + 8 + jl;
    float s = 2.5f;
    memcpy(d, &s, 4);
    d[4] = 0x00, d[5] = 0x3c;   /* f16 1.0 */
    d[6] = 0x01, d[7] = 0x80;   /* f16 -smallest subnormal */
    d[8] = 0x80, d[9] = 0x3f;   /* bf16 1.0 */
    d[10] = 0xc0, d[11] = 0xff; /* bf16 NaN */
    char path[1024];
    snprintf(path, sizeof path, "%s/ok.safetensors", tmpdir);
    assert_int_equal(tl_write(path, b, 8 + jl + 20), 0);
    clip_st *st = NULL;
    wp_err err = {0};
    assert_int_equal(clip_st_open(path, &st, &err), 0);
    assert_int_equal(clip_st_count(st), 5);
    assert_null(clip_st_find(st, "__metadata__"));
    float out[4];
    const clip_st_tensor *t = clip_st_find(st, "s");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(clip_st_read_f32(st, t, out, &err), 0);
    assert_true(out[0] == 2.5f);
    assert_int_equal(clip_st_read_f32(st, clip_st_find(st, "h"), out, &err), 0);
    assert_true(out[0] == 1.0f);
    assert_true(out[1] == -ldexpf(1.0f, -24));
    assert_int_equal(clip_st_read_f32(st, clip_st_find(st, "b"), out, &err), 0);
    assert_true(out[0] == 1.0f);
    assert_true(isnan(out[1]));
    assert_int_equal(clip_st_read_f32(st, clip_st_find(st, "n"), out, &err), CLIP_EFORMAT);
    assert_non_null(strstr(err.msg, "'n'"));
    assert_non_null(strstr(err.msg, "I64"));
    clip_st_close(st);
    /* every half: F16C (when present) and portable agree bit for bit */
    {
        uint16_t *all = malloc(65536 * sizeof *all);
        float *a = malloc(65536 * sizeof *a);
        assert_non_null(all);
        assert_non_null(a);
        for (int i = 0; i < 65536; i++)
            all[i] = (uint16_t)i;
        wp_f16_convert(all, a, 65536);
        for (int i = 0; i < 65536; i++) {
            float f = wp_f16_to_f32((uint16_t)i);
            if (memcmp(&f, &a[i], 4) != 0 && !(isnan(f) && isnan(a[i])))
                fail_msg("half 0x%04x: %g vs %g", i, f, a[i]);
        }
        free(all);
        free(a);
    }
    /* half conversions round-trip */
    for (int i = 0; i < 65536; i++) {
        float f = wp_f16_to_f32((uint16_t)i);
        if (!isnan(f))
            assert_int_equal(wp_f32_to_f16(f), i);
    }
}

/* A model directory missing a tensor: the error names it and the file. */
static void test_model_missing_tensor(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    if (shared == NULL) {
        skip();
        return;
    }
    char src[1024], dir[1024], path[1200];
    snprintf(src, sizeof src,
             "%s/golden/clip/oc_vit_quickgelu_f32/model/open_clip_model.safetensors", shared);
    size_t len = 0;
    unsigned char *d = (unsigned char *)tl_slurp(src, &len);
    assert_non_null(d);
    /* rename ln_final.weight to xn_final.weight in the header (same length) */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | d[i];
    char *hdr = (char *)d + 8;
    char *at = NULL;
    for (size_t i = 0; i + 15 < hl; i++)
        if (memcmp(hdr + i, "\"ln_final.weight\"", 17) == 0) {
            at = hdr + i;
            break;
        }
    assert_non_null(at);
    at[1] = 'x';
    snprintf(dir, sizeof dir, "%s/m1", tmpdir);
    assert_int_equal(wp_mkdir_p(dir, NULL), 0);
    snprintf(path, sizeof path, "%s/open_clip_model.safetensors", dir);
    assert_int_equal(tl_write(path, d, len), 0);
    clip_model *m = NULL;
    wp_err err = {0};
    int rc = clip_model_open(dir, NULL, &m, &err);
    assert_int_equal(rc, CLIP_EMODEL);
    assert_non_null(strstr(err.msg, "'ln_final.weight'"));
    assert_non_null(strstr(err.msg, "missing"));
    /* and a tensor of the wrong shape: token_embedding now [49408, 32] but
     * positional_embedding claims [7, 352] (same bytes) */
    at[1] = 'l';
    for (size_t i = 0; i + 30 < hl; i++)
        if (memcmp(hdr + i, "\"positional_embedding\":{\"dtype\":\"F32\",\"shape\":[77,32]", 53) ==
            0) {
            memcpy(hdr + i + 46, "[7,352]", 7);
            break;
        }
    assert_int_equal(tl_write(path, d, len), 0);
    rc = clip_model_open(dir, NULL, &m, &err);
    if (rc != CLIP_EMODEL || strstr(err.msg, "'positional_embedding'") == NULL)
        fail_msg("rc %d: %s", rc, err.msg);
    free(d);
}

/* Writes tmpdir/sub/open_clip_model.safetensors from a tiny checkpoint seed
 * of the fuzzer (tests/fuzz/corpus/model, header only: zero data), with
 * tensor's shape replaced by shape_json and its bytes by none when tensor
 * is not NULL. Returns the directory (static). */
static const char *model_from_seed(const char *seed, const char *sub, const char *tensor,
                                   const char *shape_json)
{
    static char dir[1024];
    char path[1200];
    size_t len = 0;
    json_error_t je;

    snprintf(path, sizeof path, "tests/fuzz/corpus/model/%s", seed);
    char *txt = tl_slurp(path, &len);
    assert_non_null(txt);
    json_t *h = json_loadb(txt, strnlen(txt, len), 0, &je), *v;
    free(txt);
    assert_non_null(h);
    if (tensor != NULL) {
        json_t *t = json_object_get(h, tensor);
        assert_non_null(t);
        json_int_t b = json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
        assert_int_equal(json_object_set_new(t, "shape", json_loads(shape_json, 0, &je)), 0);
        assert_int_equal(json_object_set_new(t, "data_offsets", json_pack("[I,I]", b, b)), 0);
    }
    uint64_t dlen = 0;
    const char *key;
    json_object_foreach(h, key, v)
    {
        json_int_t e = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
        if ((uint64_t)e > dlen)
            dlen = (uint64_t)e;
    }
    char *hdr = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    assert_non_null(hdr);
    size_t hl = strlen(hdr);
    unsigned char *file = calloc(1, 8 + hl + dlen);
    assert_non_null(file);
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, hdr, hl);
    free(hdr);
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    assert_int_equal(wp_mkdir_p(dir, NULL), 0);
    snprintf(path, sizeof path, "%s/open_clip_model.safetensors", dir);
    assert_int_equal(tl_write(path, file, 8 + hl + dlen), 0);
    free(file);
    return dir;
}

/* Found by fuzzing (tests/fuzz/regress/model): a zero-sized tensor has no
 * data backing its other dimensions, so [67108864, 0, 1, 1] made the
 * ResNet width 2^26 and width * 32 overflowed int (UBSan), and a ViT patch
 * of 2^31 + 2 overflowed grid * patch. Such shapes are refused, naming the
 * tensor, before any size is computed from them. */
static void test_model_zero_sized_dims_refused(void **state)
{
    static const struct {
        const char *seed, *tensor, *shape;
    } cases[] = {
        {"openai_resnet", "visual.layer1.0.conv1.weight", "[67108864, 0, 1, 1]"},
        {"openai_vit_noconfig", "visual.conv1.weight", "[8, 3, 0, 2147483650]"},
        {"openai_vit_noconfig", "visual.positional_embedding", "[4294967297, 0]"},
        {"openai_vit_noconfig", "token_embedding.weight", "[0, 8]"},
    };
    clip_model *m = NULL;
    wp_err err = {0};
    /* the seeds themselves load */
    assert_int_equal(
        clip_model_open(model_from_seed("openai_resnet", "rn", NULL, NULL), NULL, &m, &err), 0);
    clip_model_free(m);
    assert_int_equal(
        clip_model_open(model_from_seed("openai_vit_noconfig", "vit", NULL, NULL), NULL, &m, &err),
        0);
    clip_model_free(m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "zero%zu", i);
        const char *dir = model_from_seed(cases[i].seed, sub, cases[i].tensor, cases[i].shape);
        m = NULL;
        int rc = clip_model_open(dir, NULL, &m, &err);
        assert_null(m);
        if (rc != CLIP_EMODEL || strstr(err.msg, cases[i].tensor) == NULL ||
            strstr(err.msg, "dimension") == NULL)
            fail_msg("%s %s: rc %d: %s", cases[i].tensor, cases[i].shape, rc, err.msg);
    }
}

/* Without open_clip_config.json the architecture is inferred from the
 * tensor shapes as OpenAI's build_model does (heads = width / 64 for the
 * vision towers, QuickGELU): image features still match the reference. */
static void test_openai_layout_without_config(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    static const char *const names[] = {"oc_vit_quickgelu_f32", "oc_rn_bf16"};
    if (shared == NULL) {
        skip();
        return;
    }
    float *px = load_f32("golden/clip/inputs/pixels.f32", (size_t)N_IMAGES * 3 * IMG * IMG);
    assert_non_null(px);
    for (int k = 0; k < 2; k++) {
        char src0[1024], src[PATH_MAX], dir[1024], link[1200], rel[256];
        snprintf(src0, sizeof src0, "%s/golden/clip/%s/model/open_clip_model.safetensors", shared,
                 names[k]);
        assert_non_null(realpath(src0, src)); /* the link must not be relative */
        snprintf(dir, sizeof dir, "%s/noconfig%d", tmpdir, k);
        assert_int_equal(wp_mkdir_p(dir, NULL), 0);
        snprintf(link, sizeof link, "%s/open_clip_model.safetensors", dir);
        assert_int_equal(symlink(src, link), 0);
        clip_model *m = NULL;
        wp_err err = {0};
        if (clip_model_open(dir, NULL, &m, &err) != 0)
            fail_msg("%s: %s", names[k], err.msg);
        const clip_arch *a = clip_model_arch(m);
        assert_int_equal(a->v_act, KN_ACT_QUICKGELU);
        assert_int_equal(a->image_size, 224);
        assert_int_equal(a->embed_dim, 32);
        assert_int_equal(a->t_ctx, 77);
        if (k == 0) {
            assert_int_equal(a->v_heads, 2);
            assert_int_equal(a->v_patch, 32);
            assert_int_equal(a->v_layers, 2);
        } else {
            assert_int_equal(a->v_heads, 8);
        }
        float *img = calloc((size_t)N_IMAGES * 32, sizeof *img);
        clip_ws *ws = clip_ws_new();
        assert_int_equal(clip_encode_images(m, ws, px, N_IMAGES, img, &err), 0);
        snprintf(rel, sizeof rel, "golden/clip/%s/expected/image_features.f32", names[k]);
        float *wi = load_f32(rel, (size_t)N_IMAGES * 32);
        assert_non_null(wi);
        check_features(names[k], img, wi, N_IMAGES, 32, 1e-3, 1e-5);
        free(wi);
        free(img);
        clip_ws_free(ws);
        clip_model_free(m);
    }
    free(px);
}

/* A checkpoint with a tensor the architecture does not use (here open_clip
 * layer scale) is refused, naming the tensor, instead of silently giving
 * wrong embeddings; buffers such as position_ids are fine. */
static void test_model_unknown_tensor_refused(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    static const char *const extra[] = {"transformer.resblocks.0.ls_1.gamma", "text.position_ids"};
    if (shared == NULL) {
        skip();
        return;
    }
    char src[1024];
    snprintf(src, sizeof src,
             "%s/golden/clip/oc_vit_quickgelu_f32/model/open_clip_model.safetensors", shared);
    size_t len = 0;
    unsigned char *d = (unsigned char *)tl_slurp(src, &len);
    assert_non_null(d);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | d[i];
    size_t data_len = len - 8 - hl;
    for (int k = 0; k < 2; k++) {
        json_error_t je;
        json_t *h = json_loadb((const char *)d + 8, hl, 0, &je);
        assert_non_null(h);
        json_t *e = json_pack("{s:s, s:[i], s:[I, I]}", "dtype", "F32", "shape", 32, "data_offsets",
                              (json_int_t)data_len, (json_int_t)data_len + 128);
        assert_non_null(e);
        json_object_set_new(h, extra[k], e);
        char *hs = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        size_t nl = strlen(hs), total = 8 + nl + data_len + 128;
        unsigned char *f = calloc(1, total);
        assert_non_null(f);
        for (int i = 0; i < 8; i++)
            f[i] = (unsigned char)((uint64_t)nl >> (8 * i));
        memcpy(f + 8, hs, nl);
        memcpy(f + 8 + nl, d + 8 + hl, data_len);
        free(hs);
        char dir[1024], path[1200];
        snprintf(dir, sizeof dir, "%s/extra%d", tmpdir, k);
        assert_int_equal(wp_mkdir_p(dir, NULL), 0);
        snprintf(path, sizeof path, "%s/open_clip_model.safetensors", dir);
        assert_int_equal(tl_write(path, f, total), 0);
        free(f);
        clip_model *m = NULL;
        wp_err err = {0};
        int rc = clip_model_open(dir, NULL, &m, &err);
        if (k == 0) {
            assert_int_equal(rc, CLIP_EUNSUP);
            assert_non_null(strstr(err.msg, "'transformer.resblocks.0.ls_1.gamma'"));
        } else {
            if (rc != 0)
                fail_msg("position_ids refused: %s", err.msg);
            clip_model_free(m);
        }
    }
    free(d);
}

int main(void)
{
    /* tests/kern_avx512_emul.sh runs these on one kernel path (amx-bf16 on
     * the tile emulation) */
    const char *path = getenv("WITPIPE_TEST_KERN_PATH");
    if (path != NULL && kn_force_path(path) != 0) {
        fprintf(stderr, "test_clip_golden: kernel path %s not available\n", path);
        return 1;
    }
    if (path != NULL)
        printf("kernel path forced: %s\n", kn_init());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_hf_vit_quickgelu_f32),
        cmocka_unit_test(test_golden_hf_vit_gelu_f16),
        cmocka_unit_test(test_golden_oc_vit_quickgelu_f32),
        cmocka_unit_test(test_golden_oc_rn_bf16),
        cmocka_unit_test(test_arch_inferred),
        cmocka_unit_test(test_bf16_close_to_f32_hf_vit),
        cmocka_unit_test(test_bf16_close_to_f32_hf_vit_gelu),
        cmocka_unit_test(test_bf16_close_to_f32_oc_vit),
        cmocka_unit_test(test_bf16_resnet_follows_split_rule),
        cmocka_unit_test(test_bf16x3_hf_vit_quickgelu),
        cmocka_unit_test(test_bf16x3_hf_vit_gelu),
        cmocka_unit_test(test_bf16x3_oc_vit),
        cmocka_unit_test(test_bf16x3_oc_rn),
        cmocka_unit_test(test_st_bad_header_length),
        cmocka_unit_test(test_st_overlapping_offsets),
        cmocka_unit_test(test_st_out_of_bounds),
        cmocka_unit_test(test_st_dtype_shape_mismatch),
        cmocka_unit_test(test_st_truncated_file),
        cmocka_unit_test(test_st_header_bounds),
        cmocka_unit_test(test_st_bad_json),
        cmocka_unit_test(test_st_open_mem),
        cmocka_unit_test(test_st_valid_and_convert),
        cmocka_unit_test(test_model_missing_tensor),
        cmocka_unit_test(test_openai_layout_without_config),
        cmocka_unit_test(test_model_unknown_tensor_refused),
        cmocka_unit_test(test_model_zero_sized_dims_refused),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
