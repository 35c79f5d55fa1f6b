/*
 * tests/unit/test_fuzz_corpus.c: replays every checked-in fuzz input
 * (tests/fuzz/corpus/NAME/ seeds and tests/fuzz/regress/NAME/ reproducers of
 * bugs the fuzzers found) through the same per-input checks the libFuzzer
 * targets run (tests/fuzz/fuzz_targets.h). CI builds no libFuzzer, so this
 * is how the corpora run there, in the normal and the ASan + UBSan build.
 * The model seeds must also load: they are tiny CLIP checkpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/fuzz/fuzz_targets.h"
#include "tests/lib/testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*one_fn)(const uint8_t *data, size_t size);

static clip_tok *vocab_tok;

/* The target: fn, or the tokenizer's check with tok when fn is NULL. */
struct target {
    one_fn fn;
    clip_tok *tok;
};

static int check_one(const uint8_t *data, size_t len, void *ud)
{
    const struct target *t = ud;
    return t->fn != NULL ? t->fn(data, len) : fuzz_tokenizer_one(t->tok, data, len);
}

/* Runs the target on every file of tests/fuzz/{corpus,regress}/name,
 * failing with the file and the violated check's line; returns how many
 * ran. */
static int replay(const char *name, one_fn fn, clip_tok *tok)
{
    struct target t = {fn, tok};
    return tl_replay_corpus(name, check_one, &t, "tests/fuzz/fuzz_targets.h");
}

static void test_image_corpus(void **state)
{
    assert_true(replay("image", fuzz_image_one, NULL) >= 5);
}

static void test_add_corpus(void **state)
{
    assert_true(replay("add", fuzz_add_one, NULL) >= 8);
}

static void test_safetensors_corpus(void **state)
{
    assert_true(replay("safetensors", fuzz_safetensors_one, NULL) >= 6);
}

static void test_robots_tag_corpus(void **state)
{
    assert_true(replay("robots_tag", fuzz_robots_tag_one, NULL) >= 5);
}

static void test_crawl_corpus(void **state)
{
    assert_true(replay("crawl", fuzz_crawl_one, NULL) >= 8);
}

static void test_addr_corpus(void **state)
{
    assert_true(replay("addr", fuzz_addr_one, NULL) >= 10);
}

static void test_against_corpus(void **state)
{
    assert_true(replay("against", fuzz_against_one, NULL) >= 8);
}

static void test_npy_corpus(void **state)
{
    assert_true(replay("npy", fuzz_npy_one, NULL) >= 5);
}

static void test_queries_corpus(void **state)
{
    assert_true(replay("queries", fuzz_queries_one, NULL) >= 9);
}

static char *model_dir;

static int model_one(const uint8_t *data, size_t size)
{
    return fuzz_model_one(model_dir, data, size);
}

static void test_model_corpus(void **state)
{
    char name[1024];
    model_dir = tl_mkdtemp();
    assert_non_null(model_dir);
    assert_true(replay("model", model_one, NULL) >= 5);
    /* The seeds are models that load, so that the fuzzer starts inside the
     * loader rather than at its first refusal. */
    static const char *const seeds[] = {"hf_vit", "openai_vit_noconfig", "openai_vit_config",
                                        "openai_resnet", "openai_resnet_config"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        size_t len = 0;
        snprintf(name, sizeof name, "tests/fuzz/corpus/model/%s", seeds[i]);
        char *d = tl_slurp(name, &len);
        assert_non_null(d);
        assert_int_equal(fuzz_model_one(model_dir, (const uint8_t *)d, len), 0);
        free(d);
        clip_model *m = NULL;
        wp_err err = {0};
        if (clip_model_open(model_dir, NULL, &m, &err) != 0)
            fail_msg("%s: %s", seeds[i], err.msg);
        assert_int_equal(clip_model_arch(m)->embed_dim, 4);
        clip_model_free(m);
    }
    tl_rmtree(model_dir);
}

static void test_tokenizer_clean_corpus(void **state)
{
    assert_true(replay("tokenizer", NULL, NULL) >= 5);
}

static void test_tokenizer_bpe_corpus(void **state)
{
    const char *path = tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz");
    if (path == NULL)
        skip();
    if (vocab_tok == NULL)
        assert_int_equal(clip_tok_open_bpe_gz(path, &vocab_tok, NULL), 0);
    assert_true(replay("tokenizer", NULL, vocab_tok) >= 5);
}

/* The checks themselves can fail: inputs that break a contract are caught
 * (a record reader that returned them would fail the replay). */
static void test_checks_catch_violations(void **state)
{
    add_opts o;
    const char *name;
    add_record rec;

    fuzz_add_opts(0, &o, &name);
    memset(&rec, 0, sizeof rec);
    rec.line = 1;
    rec.url = "ftp://x/";
    rec.url_len = strlen(rec.url);
    rec.text = "";
    rec.text_missing = 1;
    assert_int_not_equal(fuzz_add_check_record(&o, &rec), 0); /* not http(s) */
    rec.url = "http://x/ y";
    rec.url_len = strlen(rec.url);
    assert_int_not_equal(fuzz_add_check_record(&o, &rec), 0); /* space in URL */
    rec.url = "http://x/y";
    rec.url_len = strlen(rec.url);
    assert_int_equal(fuzz_add_check_record(&o, &rec), 0);
    rec.text_missing = 0;
    assert_int_not_equal(fuzz_add_check_record(&o, &rec), 0); /* empty yet not missing */
    assert_int_equal(fuzz_in_list("noai, NoIndex ,x", "noindex", 7), 1);
    assert_int_equal(fuzz_in_list("noai,noindexx", "noindex", 7), 0);
}

static int teardown_all(void **state)
{
    clip_tok_free(vocab_tok);
    vocab_tok = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_corpus),
        cmocka_unit_test(test_add_corpus),
        cmocka_unit_test(test_safetensors_corpus),
        cmocka_unit_test(test_robots_tag_corpus),
        cmocka_unit_test(test_addr_corpus),
        cmocka_unit_test(test_crawl_corpus),
        cmocka_unit_test(test_npy_corpus),
        cmocka_unit_test(test_against_corpus),
        cmocka_unit_test(test_queries_corpus),
        cmocka_unit_test(test_model_corpus),
        cmocka_unit_test(test_tokenizer_clean_corpus),
        cmocka_unit_test(test_tokenizer_bpe_corpus),
        cmocka_unit_test(test_checks_catch_violations),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
