/*
 * tests/unit/test_tokenizer.c: the CLIP tokenizer (clip/tokenizer.h).
 *
 * The reference: ../shared/golden/clip/tokenizer_cases.json, 94 captions
 * with the ids OpenAI's SimpleTokenizer (with the real ftfy) gives them,
 * untruncated (ids) and cut to 77 (ids77). Both vocabulary layouts must give
 * identical ids. Then the individual ftfy fixes and html.unescape rules, on
 * inputs whose expected output follows from ftfy's documented behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/wp.h"
#include "clip/tok_int.h"
#include "tests/lib/testlib.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load_cases(void)
{
    if (tl_shared_dir("CLIP tokenizer golden cases") == NULL)
        return NULL;
    const char *path = tl_shared_path("golden/clip/tokenizer_cases.json");
    if (path == NULL)
        return NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
    return root;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Runs every golden case through t; prints each failing case in full and
 * returns the number of failures. */
static int run_cases(clip_tok *t, json_t *cases, const char *label)
{
    int failed = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t tlen = json_string_length(json_object_get(c, "text"));
        json_t *want = json_object_get(c, "ids");
        json_t *want77 = json_object_get(c, "ids77");
        assert_non_null(text);
        assert_true(json_is_array(want) && json_is_array(want77));

        int32_t *ids = NULL;
        size_t n = 0;
        wp_err err = {0};
        assert_int_equal(clip_tok_encode(t, text, tlen, &ids, &n, &err), 0);
        int32_t row[CLIP_TOK_CTX];
        int k = clip_tok_encode_ctx(t, text, tlen, row, CLIP_TOK_CTX, &err);
        assert_true(k >= 2);

        int ok = n == json_array_size(want);
        for (size_t j = 0; ok && j < n; j++)
            ok = ids[j] == json_integer_value(json_array_get(want, j));
        int ok77 = (size_t)k == json_array_size(want77);
        for (size_t j = 0; ok77 && j < (size_t)k; j++)
            ok77 = row[j] == json_integer_value(json_array_get(want77, j));
        for (size_t j = (size_t)k; ok77 && j < CLIP_TOK_CTX; j++)
            ok77 = row[j] == 0;
        if (!ok || !ok77) {
            failed++;
            wp_buf clean = {0};
            clip_tok_clean(text, tlen, &clean, NULL);
            fprintf(stderr, "FAIL [%s] case %zu: text '%s'\n    cleaned '%s'\n", label, i, text,
                    clean.data ? clean.data : "");
            wp_buf_free(&clean);
            int32_t exp[1024];
            size_t ne = json_array_size(want) < 1024 ? json_array_size(want) : 1024;
            for (size_t j = 0; j < ne; j++)
                exp[j] = (int32_t)json_integer_value(json_array_get(want, j));
            print_ids("want", exp, ne);
            print_ids("got ", ids, n);
            if (!ok77)
                print_ids("got77", row, (size_t)k);
        }
        free(ids);
    }
    return failed;
}

static void golden_with(clip_tok *t, const char *label)
{
    json_t *cases = load_cases();
    if (cases == NULL) {
        clip_tok_free(t);
        skip();
    }
    assert_int_equal(json_array_size(cases), 94);
    int failed = run_cases(t, cases, label);
    /* A second pass runs from the word cache and must agree. */
    failed += run_cases(t, cases, label);
    json_decref(cases);
    clip_tok_free(t);
    assert_int_equal(failed, 0);
}

static void test_golden_openai_vocab(void **state)
{
    if (tl_shared_dir("CLIP BPE vocabulary") == NULL)
        skip();
    clip_tok *t = NULL;
    wp_err err = {0};
    int rc = clip_tok_open_bpe_gz(tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &t, &err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    golden_with(t, "bpe_simple_vocab_16e6.txt.gz");
}

static void test_golden_hf_vocab(void **state)
{
    if (tl_shared_dir("CLIP HF tokenizer files") == NULL)
        skip();
    clip_tok *t = NULL;
    wp_err err = {0};
    int rc = clip_tok_open_dir(tl_shared_path("golden/clip/hf_vit_quickgelu_f32/model"), &t, &err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    golden_with(t, "vocab.json+merges.txt");
}

/* A tokenizer.json built here from the HF folder's vocab.json and
 * merges.txt (merges written as ["a", "b"] pairs, the newer form) gives
 * the golden ids too. */
static void test_golden_tokenizer_json(void **state)
{
    if (tl_shared_dir("CLIP HF tokenizer files") == NULL)
        skip();
    json_t *vocab = json_load_file(
        tl_shared_path("golden/clip/hf_vit_quickgelu_f32/model/vocab.json"), 0, NULL);
    assert_non_null(vocab);
    size_t len = 0;
    char *merges =
        tl_slurp(tl_shared_path("golden/clip/hf_vit_quickgelu_f32/model/merges.txt"), &len);
    assert_non_null(merges);
    json_t *arr = json_array();
    char *save = NULL;
    int line = 0;
    for (char *l = strtok_r(merges, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (line++ == 0 && strncmp(l, "#version", 8) == 0)
            continue;
        char *sp = strchr(l, ' ');
        assert_non_null(sp);
        *sp = '\0';
        json_array_append_new(arr, json_pack("[ss]", l, sp + 1));
    }
    free(merges);
    json_t *root =
        json_pack("{s:{s:s, s:o, s:o}}", "model", "type", "BPE", "vocab", vocab, "merges", arr);
    char *dir = tl_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    clip_tok *t = NULL;
    wp_err err = {0};
    int rc = clip_tok_open_dir(dir, &t, &err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    tl_rmtree(dir);
    golden_with(t, "tokenizer.json");
}

static void test_open_dir_errors(void **state)
{
    char *dir = tl_mkdtemp();
    clip_tok *t = NULL;
    wp_err err = {0};
    assert_int_equal(clip_tok_open_dir(dir, &t, &err), WP_ENOENT);
    assert_null(t);
    assert_non_null(strstr(err.msg, dir));
    /* a merges.txt naming tokens the vocabulary lacks */
    char vj[512], mt[512];
    snprintf(vj, sizeof vj, "%s/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/merges.txt", dir);
    const char *vocab = "{\"a\": 0}";
    assert_int_equal(tl_write(vj, vocab, strlen(vocab)), 0);
    assert_int_equal(tl_write(mt, "#version: 0.2\nx y\n", 18), 0);
    assert_int_equal(clip_tok_open_dir(dir, &t, &err), CLIP_TOK_EVOCAB);
    assert_null(t);
    assert_int_equal(tl_write(vj, "{not json", 9), 0);
    assert_int_equal(clip_tok_open_dir(dir, &t, &err), CLIP_TOK_EVOCAB);
    assert_non_null(strstr(err.msg, "vocab.json"));
    tl_rmtree(dir);
}

/* ---- the cleaning steps ---------------------------------------------- */

static void expect(int (*fn)(const char *, size_t, wp_buf *, wp_err *), const char *in,
                   const char *want)
{
    wp_buf out = {0};
    assert_int_equal(fn(in, strlen(in), &out, NULL), 0);
    if (strcmp(out.data ? out.data : "", want) != 0)
        fprintf(stderr, "input '%s': got '%s', want '%s'\n", in, out.data, want);
    assert_string_equal(out.data ? out.data : "", want);
    wp_buf_free(&out);
}

static void test_ftfy_mojibake(void **state)
{
    /* UTF-8 read as Latin-1 / Windows-1252 */
    expect(clip_tok_fix_encoding, "cafÃ© Ã©tÃ©", "café été");
    expect(clip_tok_fix_encoding, "sÃ³", "só");
    /* Windows-1252 punctuation mojibake (â€œ ... â€\x9d) */
    expect(clip_tok_fix_encoding, "â€œquotedâ€\xc2\x9d", "\xe2\x80\x9cquoted\xe2\x80\x9d");
    /* a no-break space turned into a plain space: restore_byte_a0 */
    expect(clip_tok_fix_encoding, "voilÃ le travail", "voilà le travail");
    /* Windows-1251 mojibake of Cyrillic */
    expect(clip_tok_fix_encoding, "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "привет");
    /* double mojibake is undone step by step */
    expect(clip_tok_fix_encoding, "cafÃƒÂ©", "café");
    /* text that is not mojibake is left alone */
    expect(clip_tok_fix_encoding, "Café crème brûlée naïve", "Café crème brûlée naïve");
    expect(clip_tok_fix_encoding, "½ ¼ ¾ ² ³", "½ ¼ ¾ ² ³");
    expect(clip_tok_fix_encoding, "«guillemets» „quotes“", "«guillemets» „quotes“");
    expect(clip_tok_fix_encoding, "plain ascii", "plain ascii");
    /* mojibake embedded in otherwise sound text: decode_inconsistent_utf8 */
    expect(clip_tok_fix_encoding, "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ ✓", "привет ✓");
    /* looks bad, but no code page explains it: left as it is */
    expect(clip_tok_fix_encoding, "µé", "µé");
    /* a C1 control Windows-1252 leaves undefined stays (and the loop ends) */
    expect(clip_tok_fix_encoding, "ä\xc2\x9d", "ä\xc2\x9d");
    expect(clip_tok_fix_encoding, "\xc2\x85", "…");
    /* C1 controls become their Windows-1252 characters */
    expect(clip_tok_fix_encoding, "\xc2\x93hi\xc2\x94 \xe2\x9c\x93",
           "\xe2\x80\x9chi\xe2\x80\x9d \xe2\x9c\x93");
}

static void test_ftfy_is_bad(void **state)
{
    const char *bad[] = {"cafÃ©", "â€œ", "Ã ", "Ã¡", "×²", "√±", "вЂ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!clip_tok_is_bad(bad[i], strlen(bad[i])))
            fprintf(stderr, "not bad: '%s'\n", bad[i]);
        assert_true(clip_tok_is_bad(bad[i], strlen(bad[i])));
    }
    const char *good[] = {"café",          "naïve résumé", "Ωmega µ micro ° degree ™ ® ©",
                          "Box ░▒▓█ ■□▪▫", "Ελληνικά",     "Фотография",
                          "¡¿Qué pasa?!"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (clip_tok_is_bad(good[i], strlen(good[i])))
            fprintf(stderr, "bad: '%s'\n", good[i]);
        assert_false(clip_tok_is_bad(good[i], strlen(good[i])));
    }
}

static void test_ftfy_simple_fixes(void **state)
{
    /* uncurl_quotes */
    expect(clip_tok_ftfy, "\xe2\x80\x9chere\xe2\x80\x99s a test\xe2\x80\x9d", "\"here's a test\"");
    /* fix_latin_ligatures, including the Serbian digraphs */
    expect(clip_tok_ftfy, "ﬂuﬃeﬆ ǅ", "fluffiest Dž");
    /* fix_character_width, U+3000 too */
    expect(clip_tok_ftfy, "ＬＯＵＤ　ＮＯＩＳＥＳ", "LOUD NOISES");
    expect(clip_tok_ftfy, "Ｕﾀｰﾝ", "Uターン");
    /* fix_line_breaks */
    expect(clip_tok_ftfy,
           "a\r\nb\rc\xe2\x80\xa8"
           "d",
           "a\nb\nc\nd");
    /* remove_terminal_escapes, remove_control_chars (BOM, BEL) */
    expect(clip_tok_ftfy, "\x1b[36;44mblue\x1b[0m\x07", "blue");
    expect(clip_tok_ftfy,
           "\xef\xbb\xbf"
           "BOM",
           "BOM");
    /* NFC */
    expect(clip_tok_ftfy, "e\xcc\x81", "\xc3\xa9");
    /* HTML entities: ftfy decodes them, also all-caps ones, unless the line
     * has a '<' */
    expect(clip_tok_ftfy, "P&EACUTE;REZ &amp;amp; &lt;3", "PÉREZ & <3");
    expect(clip_tok_ftfy, "<b>&amp;</b>", "<b>&amp;</b>");
    expect(clip_tok_ftfy, "this&not that", "this&not that");
    expect(clip_tok_ftfy, "&#x2019;s &#8220;", "'s \"");
    /* ftfy's own docstring examples */
    expect(clip_tok_ftfy, "âœ” No problems", "✔ No problems");
    expect(clip_tok_ftfy, "&macr;\\_(ã\xc2\x83\xc2\x84)_/&macr;", "¯\\_(ツ)_/¯");
    expect(clip_tok_ftfy, "Broken text&hellip; it&#x2019;s ﬂubberiﬁc!",
           "Broken text… it's flubberific!");
}

static void test_html_unescape(void **state)
{
    expect(clip_tok_html_unescape, "&amp; &lt;&gt; &quot;&#39;", "& <> \"'");
    /* legacy names without ';', longest prefix */
    expect(clip_tok_html_unescape, "&ampx &copy2021 &notit;", "&x ©2021 ¬it;");
    /* numeric: C1 range remapped, surrogates and too-large to U+FFFD,
     * noncharacters dropped */
    expect(clip_tok_html_unescape, "&#150;&#xD800;&#99999999999;&#xFFFF;x",
           "–\xef\xbf\xbd\xef\xbf\xbdx");
    expect(clip_tok_html_unescape, "a & b &# &#x; &unknown;", "a & b &# &#x; &unknown;");
    expect(clip_tok_html_unescape, "&NotEqualTilde;", "\xe2\x89\x82\xcc\xb8");
}

static void test_clean_pipeline(void **state)
{
    expect(clip_tok_clean, "  Tom &amp;amp; JERRY\t\n ", "tom & jerry");
    /* whitespace_clean collapses Python's \s, including NBSP and U+3000 */
    expect(clip_tok_clean,
           "a\xc2\xa0 b\xe3\x80\x80\x1c"
           "c",
           "a b c");
    /* str.lower(): dotted capital I and the final sigma */
    expect(clip_tok_clean, "İ ΟΔΟΣ ΣΑ", "i\xcc\x87 οδο\xcf\x82 \xcf\x83α");
}

static void test_encode_ctx_truncation(void **state)
{
    if (tl_shared_dir("CLIP BPE vocabulary") == NULL)
        skip();
    clip_tok *t = NULL;
    assert_int_equal(
        clip_tok_open_bpe_gz(tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &t, NULL), 0);
    int32_t row[8];
    /* "a photo of a cat": sot + 5 words + eot = 7 ids */
    assert_int_equal(clip_tok_encode_ctx(t, "a photo of a cat", 16, row, 8, NULL), 7);
    assert_int_equal(row[0], CLIP_TOK_SOT);
    assert_int_equal(row[6], CLIP_TOK_EOT);
    assert_int_equal(row[7], 0);
    assert_int_equal(clip_tok_encode_ctx(t, "a photo of a cat", 16, row, 4, NULL), 4);
    assert_int_equal(row[3], CLIP_TOK_EOT);
    assert_int_equal(clip_tok_encode_ctx(t, "x", 1, row, 1, NULL), WP_EINVAL);
    /* U+0345 matches none of the pattern's classes under IGNORECASE (its case
     * variants are letters, itself is not): the regex skips it */
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(clip_tok_encode(t,
                                     "a\xcd\x85"
                                     "b",
                                     4, &a, &na, NULL),
                     0);
    assert_int_equal(clip_tok_encode(t, "a b", 3, &b, &nb, NULL), 0);
    assert_int_equal(na, 4);
    assert_int_equal(nb, 4);
    assert_memory_equal(a, b, 4 * sizeof *a);
    free(a);
    free(b);
    /* the special tokens are recognised in the text, as OpenAI's does */
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(clip_tok_encode(t, "<|endoftext|>", 13, &ids, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], CLIP_TOK_EOT);
    free(ids);
    clip_tok_free(t);
}

/* The token rows the model goldens were computed from
 * (inputs/tokens.i32, [13 x 77] zero padded, captions in manifest.json
 * inputs_texts), through the tokenizer each model folder carries. */
static void test_golden_token_rows_per_model_folder(void **state)
{
    if (tl_shared_dir("CLIP model token rows") == NULL)
        skip();
    json_error_t jerr;
    json_t *man = json_load_file(tl_shared_path("golden/clip/manifest.json"), 0, &jerr);
    assert_non_null(man);
    json_t *texts = json_object_get(man, "inputs_texts");
    assert_int_equal(json_array_size(texts), 13);
    size_t len = 0;
    int32_t *rows = (int32_t *)tl_slurp(tl_shared_path("golden/clip/inputs/tokens.i32"), &len);
    assert_non_null(rows);
    assert_int_equal(len, 13 * CLIP_TOK_CTX * sizeof(int32_t));
    static const char *const folders[] = {"hf_vit_quickgelu_f32", "hf_vit_gelu_f16",
                                          "oc_vit_quickgelu_f32", "oc_rn_bf16"};
    for (size_t f = 0; f < 4; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "golden/clip/%s/model", folders[f]);
        clip_tok *t = NULL;
        wp_err err = {0};
        int rc = clip_tok_open_dir(tl_shared_path(rel), &t, &err);
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", folders[f], err.msg);
        assert_int_equal(rc, 0);
        for (size_t i = 0; i < 13; i++) {
            const char *text = json_string_value(json_array_get(texts, i));
            int32_t row[CLIP_TOK_CTX];
            assert_true(clip_tok_encode_ctx(t, text, strlen(text), row, CLIP_TOK_CTX, NULL) >= 2);
            if (memcmp(row, rows + i * CLIP_TOK_CTX, sizeof row) != 0) {
                fprintf(stderr, "FAIL %s row %zu '%s'\n", folders[f], i, text);
                print_ids("want", rows + i * CLIP_TOK_CTX, CLIP_TOK_CTX);
                print_ids("got ", row, CLIP_TOK_CTX);
            }
            assert_memory_equal(row, rows + i * CLIP_TOK_CTX, sizeof row);
        }
        clip_tok_free(t);
    }
    free(rows);
    json_decref(man);
}

typedef struct thread_job {
    clip_tok *t;
    json_t *cases;
    int failures;
} thread_job;

static void *thread_encode(void *arg)
{
    thread_job *j = arg;
    for (int rep = 0; rep < 3; rep++) {
        size_t i;
        json_t *c;
        json_array_foreach(j->cases, i, c)
        {
            json_t *text = json_object_get(c, "text"), *want = json_object_get(c, "ids");
            int32_t *ids = NULL;
            size_t n = 0;
            if (clip_tok_encode(j->t, json_string_value(text), json_string_length(text), &ids, &n,
                                NULL) != 0) {
                j->failures++;
                continue;
            }
            int ok = n == json_array_size(want);
            for (size_t k = 0; ok && k < n; k++)
                ok = ids[k] == json_integer_value(json_array_get(want, k));
            j->failures += !ok;
            free(ids);
        }
    }
    return NULL;
}

/* One tokenizer shared by threads (as the encode stage's workers do): the
 * word cache is shared, results must not change. */
static void test_threads_share_one_tokenizer(void **state)
{
    json_t *cases = load_cases();
    if (cases == NULL)
        skip();
    clip_tok *t = NULL;
    assert_int_equal(
        clip_tok_open_bpe_gz(tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &t, NULL), 0);
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){t, cases, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_encode, &jobs[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        failures += jobs[i].failures;
    }
    clip_tok_free(t);
    json_decref(cases);
    assert_int_equal(failures, 0);
}

/* Long words take an O(n log n) merge path; it must give what the
 * quadratic transcription of simple_tokenizer.py gives, word for word. */
static void test_bpe_long_word_path(void **state)
{
    if (tl_shared_dir("CLIP BPE vocabulary") == NULL)
        skip();
    clip_tok *t = NULL;
    assert_int_equal(
        clip_tok_open_bpe_gz(tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz"), &t, NULL), 0);
    static const char *const alphabets[] = {
        "abcdefghijklmnopqrstuvwxyz", "ab",      "a", "etaoinshr", "\xc3\xa9\xc3\xa8\xc5\x93",
        "\xe6\x97\xa5\xe6\x9c\xac",   "!?.,;:-_"};
    char w[4096];
    uint32_t x = 12345;
    int checked = 0;
    for (int round = 0; round < 60; round++) {
        const char *al = alphabets[round % 7];
        size_t alen = strlen(al);
        size_t n = 1 + (size_t)(round * 67) % 4000;
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            w[i] = al[(x >> 16) % alen];
        }
        assert_int_equal(clip_tok_bpe_paths_agree(t, w, n), 1);
        checked++;
    }
    assert_int_equal(checked, 60);
    clip_tok_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_openai_vocab),
        cmocka_unit_test(test_golden_hf_vocab),
        cmocka_unit_test(test_golden_tokenizer_json),
        cmocka_unit_test(test_open_dir_errors),
        cmocka_unit_test(test_ftfy_mojibake),
        cmocka_unit_test(test_ftfy_is_bad),
        cmocka_unit_test(test_ftfy_simple_fixes),
        cmocka_unit_test(test_html_unescape),
        cmocka_unit_test(test_clean_pipeline),
        cmocka_unit_test(test_encode_ctx_truncation),
        cmocka_unit_test(test_golden_token_rows_per_model_folder),
        cmocka_unit_test(test_bpe_long_word_path),
        cmocka_unit_test(test_threads_share_one_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
