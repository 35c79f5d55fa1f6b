/*
 * tests/unit/test_filter.c: the filter stage: text measures, the
 * boilerplate list and its pattern language, CLD2 on captions of 14
 * languages and on short captions (low confidence), presets equal to the
 * rules they stand for, every rule at and around its boundary on a crafted
 * catalog, --clip-top's exact count and ties, re-running with another
 * threshold, resuming a stopped run, the errors for missing scores, and
 * the explain record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/wp.h"
#include "filter/filter.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char corpus[300];

static int setup(void **state)
{
    tl_scratch_corpus(corpus, sizeof corpus);
    return 0;
}

static int teardown(void **state)
{
    tl_scratch_corpus_rm(corpus);
    return 0;
}

/* ---- text measures ------------------------------------------------------ */

static void test_text_chars(void **state)
{
    assert_int_equal(flt_text_chars("", 0), 0);
    assert_int_equal(flt_text_chars("  abc  ", 7), 3);
    assert_int_equal(flt_text_chars("a b", 3), 3);
    /* code points, not bytes: 6 characters, 9 bytes */
    assert_int_equal(flt_text_chars("h\xc3\xa9llo\xe2\x82\xac", 9), 6);
    assert_int_equal(flt_text_chars("\xe7\x8c\xab\xe7\x8c\xab", 6), 2);
    /* U+3000 ideographic space is white space */
    assert_int_equal(flt_text_chars("\xe3\x80\x80x\xe3\x80\x80", 7), 1);
}

static void test_text_words(void **state)
{
    assert_int_equal(flt_text_words("", 0), 0);
    assert_int_equal(flt_text_words("   ", 3), 0);
    assert_int_equal(flt_text_words("one", 3), 1);
    assert_int_equal(flt_text_words(" one  two\tthree\n", 16), 3);
    /* no-break space (U+00A0) splits, as Python's str.split() does */
    assert_int_equal(flt_text_words("a\xc2\xa0"
                                    "b",
                                    4),
                     2);
    /* CJK without spaces is one word for split() */
    assert_int_equal(flt_text_words("\xe4\xb8\x80\xe5\x8f\xaa\xe9\xbb\x91\xe7\x8c\xab", 12), 1);
}

static void test_text_measure_equals_separate(void **state)
{
    static const char *const cs[] = {"",
                                     "  ",
                                     "a",
                                     " one  two\tthree\n",
                                     "h\xc3\xa9llo \xe2\x82\xac",
                                     "a\xc2\xa0"
                                     "b ",
                                     "\xe3\x80\x80x\xe3\x80\x80 y"};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t ch, w;
        flt_text_measure(cs[i], strlen(cs[i]), &ch, &w);
        assert_int_equal(ch, flt_text_chars(cs[i], strlen(cs[i])));
        assert_int_equal(w, flt_text_words(cs[i], strlen(cs[i])));
    }
}

static void test_text_repeat(void **state)
{
    assert_int_equal(flt_text_repeat("buy", 3), 0);
    assert_int_equal(flt_text_repeat("buy buy", 7), 2);
    assert_int_equal(flt_text_repeat("Buy BUY buy", 11), 3);
    assert_int_equal(flt_text_repeat("buy buy sell", 12), 0);
    assert_int_equal(flt_text_repeat("buy buyer", 9), 0);
    assert_int_equal(flt_text_repeat("", 0), 0);
}

/* ---- boilerplate -------------------------------------------------------- */

static int bmatch(const flt_boiler *b, const char *s)
{
    return flt_boiler_match(b, s, strlen(s)) != 0;
}

static void test_boilerplate_shipped(void **state)
{
    flt_boiler *b = NULL;
    wp_err err = {0};
    static const char *const yes[] = {
        "IMG_1234.JPG",
        "IMG_20190101_123456",
        "img-0042",
        "DSC01234",
        "DSCN0042.jpg",
        "P1010001.JPG",
        "my_photo-2.jpg",
        "banner.png",
        "http://example.com/a.jpg",
        "https://x.y/z",
        "www.example.com",
        "image",
        " Photo. ",
        "thumbnail",
        "LOGO",
        "Click to enlarge",
        "[click to enlarge]",
        "Prev",
        "Next",
        "- next -",
        "untitled",
        "no image available",
        "Screenshot_2020-01-01",
    };
    static const char *const no[] = {
        "a photo of a cat",
        "click to enlarge the map of Paris",
        "https://example.com is my favourite site",
        "Image of the day: the Crab Nebula",
        "the logo of the Olympic games on a flag",
        "next to the river",
        "imagination",
        "photography",
        "",
    };
    assert_int_equal(flt_boiler_default(&b, &err), 0);
    assert_true(flt_boiler_count(b) > 30);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!bmatch(b, yes[i]))
            fail_msg("boilerplate list misses '%s'", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (bmatch(b, no[i]))
            fail_msg("boilerplate list wrongly matches '%s'", no[i]);
    }
    flt_boiler_free(b);
}

static void test_boilerplate_patterns(void **state)
{
    static const char list[] = "# comment\n"
                               "\n"
                               "size #x#\n"
                               "  a*z  \n"
                               "100\\%\n"
                               "v%.txt\n"
                               "url: +\n";
    flt_boiler *b = NULL;
    wp_err err = {0};
    assert_int_equal(flt_boiler_parse(list, strlen(list), "t", &b, &err), 0);
    assert_int_equal(flt_boiler_count(b), 5);
    assert_int_equal(flt_boiler_match(b, "size 800x600", 12), 3);
    assert_false(bmatch(b, "size x600"));   /* '#' needs a digit */
    assert_false(bmatch(b, "size 80x60y")); /* the whole caption must match */
    assert_int_equal(flt_boiler_match(b, "AZ", 2), 4);
    assert_true(bmatch(b, "a to z"));
    assert_true(bmatch(b, "100%"));
    assert_false(bmatch(b, "1000"));
    assert_true(bmatch(b, "v.txt"));
    assert_true(bmatch(b, "v1_a-b.txt"));
    assert_false(bmatch(b, "v a.txt")); /* '%' takes no blank */
    assert_true(bmatch(b, "url: x"));
    assert_false(bmatch(b, "url: x y")); /* '+' takes no blank */
    assert_false(bmatch(b, "url:"));
    flt_boiler_free(b);
    /* a pattern ending in a lone backslash is refused, naming the line */
    assert_int_equal(flt_boiler_parse("ok\nbad\\\n", 8, "list.txt", &b, &err), FLT_ELIST);
    assert_non_null(strstr(err.msg, "list.txt:2"));
    assert_null(b);
}

/* ---- language ---------------------------------------------------------- */

static void test_lang_known_languages(void **state)
{
    static const struct {
        const char *code, *text;
    } cases[] = {
        {"en", "A black cat sleeping on a wooden chair in the garden"},
        {"de", "Eine schwarze Katze schläft auf einem Holzstuhl im Garten"},
        {"fr", "Un chat noir dort sur une chaise en bois dans le jardin"},
        {"es", "Un gato negro duerme en una silla de madera en el jardín"},
        {"it", "Un gatto nero dorme su una sedia di legno in giardino"},
        {"nl", "Een zwarte kat slaapt op een houten stoel in de tuin"},
        {"pt", "Um gato preto dorme numa cadeira de madeira no jardim"},
        {"ru", "Чёрная кошка спит на деревянном стуле в саду"},
        {"pl", "Czarny kot śpi na drewnianym krześle w ogrodzie"},
        {"tr", "Kara bir kedi bahçedeki tahta sandalyede uyuyor"},
        {"ar", "قطة سوداء تنام على كرسي خشبي في الحديقة"},
        {"zh", "一只黑猫睡在花园里的木椅上"},
        {"ja", "庭の木の椅子で黒い猫が寝ています"},
        {"ko", "정원의 나무 의자에서 검은 고양이가 자고 있다"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        flt_lang l;
        flt_lang_detect(cases[i].text, strlen(cases[i].text), &l);
        if (strcmp(l.code, cases[i].code) != 0 || l.conf < 0.9)
            fail_msg("'%s': %s with %.3f, expected %s with >= 0.9", cases[i].text, l.code, l.conf,
                     cases[i].code);
    }
}

static void test_lang_short_is_low_confidence(void **state)
{
    /* A word or two: whatever CLD2 guesses ("die" -> Afrikaans, "gato" ->
     * Kinyarwanda in best-effort mode), the confidence stays low. */
    static const char *const shorts[] = {"die", "cat",  "Bon",  "gato",  "Paris", "猫",
                                         "OK",  "東京", "logo", "Katze", "rouge", "chat noir"};
    flt_lang l;
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        flt_lang_detect(shorts[i], strlen(shorts[i]), &l);
        if (l.conf >= 0.3)
            fail_msg("'%s': %s with confidence %.3f (expected < 0.3)", shorts[i], l.code, l.conf);
    }
    flt_lang_detect("", 0, &l);
    assert_string_equal(l.code, "un");
    assert_true(l.conf == 0);
    flt_lang_detect("12345 67890", 11, &l);
    assert_string_equal(l.code, "un");
    assert_true(l.conf == 0);
}

/* ---- presets ----------------------------------------------------------- */

static void rules_json(const flt_rules *r, wp_buf *b)
{
    wp_buf_reset(b);
    assert_int_equal(flt_rules_json(r, b), 0);
}

static void test_presets_equal_explicit_rules(void **state)
{
    flt_rules p, e;
    wp_buf a = {0}, b = {0};
    wp_err err = {0};

    flt_rules_init(&p);
    assert_int_equal(flt_preset_apply(&p, "datacomp-basic", &err), 0);
    flt_rules_init(&e);
    assert_int_equal(flt_rules_set_langs(&e, "en", &err), 0);
    e.min_words = 3;
    e.min_chars = 6;
    e.min_side = 200;
    e.max_aspect = 3;
    rules_json(&p, &a);
    rules_json(&e, &b);
    assert_string_equal(a.data, b.data);

    flt_rules_init(&p);
    assert_int_equal(flt_preset_apply(&p, "laion", &err), 0);
    flt_rules_init(&e);
    e.min_clip_score = 0.28;
    assert_int_equal(flt_rules_set_langs(&e, "en", &err), 0);
    rules_json(&p, &a);
    rules_json(&e, &b);
    assert_string_equal(a.data, b.data);

    flt_rules_init(&p);
    assert_int_equal(flt_preset_apply(&p, "datacomp-clip30", &err), 0);
    flt_rules_init(&e);
    e.clip_top_pct = 30;
    rules_json(&p, &a);
    rules_json(&e, &b);
    assert_string_equal(a.data, b.data);

    /* explicit wins: --min-side 100 --lang de with the basic preset */
    flt_rules_init(&p);
    p.min_side = 100;
    assert_int_equal(flt_rules_set_langs(&p, "de", &err), 0);
    assert_int_equal(flt_preset_apply(&p, "datacomp-basic", &err), 0);
    assert_int_equal(p.min_side, 100);
    assert_int_equal(p.nlangs, 1);
    assert_string_equal(p.langs[0], "de");
    assert_int_equal(p.min_words, 3);
    /* a threshold given explicitly replaces the preset's CLIP rule */
    flt_rules_init(&p);
    p.clip_top_pct = 50;
    assert_int_equal(flt_preset_apply(&p, "laion", &err), 0);
    assert_true(isnan(p.min_clip_score));
    assert_int_equal(flt_preset_apply(&p, "nope", &err), FLT_EPRESET);
    wp_buf_free(&a);
    wp_buf_free(&b);
}

/* ---- a crafted catalog -------------------------------------------------- */

typedef struct craft {
    const char *text;
    int w, h;
    int64_t bytes;
    double score; /* NAN: no embedding */
} craft;

/* Adds each pair with its image stored ok at the given size; scores for
 * model "m". Returns the open catalog; pair ids are 1..n in order. */
static cat *make_catalog(const craft *cs, int n)
{
    cat *c = NULL;
    wp_err err = {0};
    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_begin(c, &err), 0);
    for (int i = 0; i < n; i++) {
        char url[64];
        cat_pair_in in = {0};
        int64_t pid, iid;
        cat_image_result r;
        snprintf(url, sizeof url, "http://example.com/%d.jpg", i);
        in.url = url;
        in.url_len = strlen(url);
        in.text = cs[i].text;
        in.text_len = strlen(cs[i].text);
        in.run_id = -1;
        in.source_id = -1;
        assert_int_equal(cat_pair_add(c, &in, &pid, &iid, NULL, &err), 0);
        assert_int_equal(pid, i + 1);
        r = cat_image_result_init(iid);
        r.state = "ok";
        r.format = r.orig_format = "jpeg";
        r.orig_width = r.width = cs[i].w;
        r.orig_height = r.height = cs[i].h;
        r.orig_bytes = r.bytes = cs[i].bytes;
        assert_int_equal(cat_image_set_result(c, &r, &err), 0);
        if (!isnan(cs[i].score))
            assert_int_equal(cat_encode_add(c, pid, "m", 0, i, cs[i].score, &err), 0);
    }
    assert_int_equal(cat_commit(c, &err), 0);
    return c;
}

/* The filter decisions as a string: one char per pair, 'k' or 'd', and the
 * reasons. */
static void decisions(cat *c, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    char path[400];
    size_t k = 0;
    (void)c;
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT decision FROM decisions WHERE stage = 'filter' "
                                        "ORDER BY pair_id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW && k + 1 < cap)
        out[k++] = ((const char *)sqlite3_column_text(s, 0))[0];
    out[k] = '\0';
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static int run_rules(cat *c, flt_rules *r, int dry, flt_report *rep, int64_t run_id)
{
    flt_opts o = {0};
    wp_buf pj = {0};
    wp_err err = {0};
    int rc = flt_prepare(c, r, &err);
    if (rc != 0)
        return rc;
    assert_int_equal(flt_rules_json(r, &pj), 0);
    o.rules = r;
    o.dry_run = dry;
    o.run_id = run_id;
    o.params_json = pj.data;
    o.batch = 3; /* several batches even on a small catalog */
    rc = flt_run(c, &o, NULL, rep, &err);
    wp_buf_free(&pj);
    return rc;
}

/* Runs one rule set for real and checks the keep/drop string. */
static void expect(cat *c, flt_rules *r, const char *want)
{
    flt_report rep, dry;
    char got[128];
    int64_t nd = 0;
    assert_int_equal(run_rules(c, r, 1, &dry, 0), 0);
    assert_int_equal(run_rules(c, r, 0, &rep, 0), 0);
    decisions(c, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("decisions %s, expected %s", got, want);
    for (const char *p = want; *p; p++)
        nd += *p == 'd';
    /* the dry run counted what the real run did */
    assert_int_equal(dry.dropped, nd);
    assert_int_equal(rep.dropped, nd);
}

static void test_rules_at_boundaries(void **state)
{
    static const craft cs[] = {
        /* 1 */ {"abcde", 199, 600, 4999, 0.279},
        /* 2 */ {"abcdef", 200, 600, 5000, 0.28},
        /* 3 */ {"abc defg", 201, 603, 5001, 0.281},
        /* 4 */ {"one two three", 300, 900, 100000, NAN},
        /* 5 */ {"ha ha ha", 100, 100, 10, -0.5},
        /* 6 */ {"a photo of a black cat on a chair", 0, 0, 0, 0.9},
    };
    cat *c = make_catalog(cs, 6);
    flt_rules r;

    flt_rules_init(&r);
    r.min_chars = 6; /* fewer than 6 drop */
    expect(c, &r, "dkkkkk");
    flt_rules_init(&r);
    r.max_chars = 8;
    expect(c, &r, "kkkdkd");
    flt_rules_init(&r);
    r.min_words = 3;
    expect(c, &r, "dddkkk");
    flt_rules_init(&r);
    r.max_repeat = 2;
    expect(c, &r, "kkkkdk");
    r.max_repeat = 3;
    expect(c, &r, "kkkkkk");
    flt_rules_init(&r);
    r.min_side = 200;
    expect(c, &r, "dkkkdd");
    flt_rules_init(&r);
    r.max_aspect = 3.0; /* 600/200 = 3 kept; 600/199 and 603/201 (= 3) */
    expect(c, &r, "dkkkkd");
    flt_rules_init(&r);
    r.min_bytes = 5000;
    expect(c, &r, "dkkkdd");
    flt_rules_init(&r);
    r.min_pixels = 200 * 600;
    expect(c, &r, "dkkkdd");
    flt_rules_init(&r);
    r.min_clip_score = 0.28; /* pair 4 has no score: no_clip_score */
    expect(c, &r, "dkkddk");
    cat_close(c);
}

static void test_language_rules_and_recorded(void **state)
{
    static const craft cs[] = {
        {"A black cat sleeping on a wooden chair in the garden", 300, 300, 9000, NAN},
        {"Eine schwarze Katze schläft auf einem Holzstuhl im Garten", 300, 300, 9000, NAN},
        {"一只黑猫睡在花园里的木椅上", 300, 300, 9000, NAN},
        {"cat", 300, 300, 9000, NAN},
    };
    cat *c = make_catalog(cs, 4);
    flt_rules r;
    sqlite3 *db;
    sqlite3_stmt *s;
    char path[400];
    int n = 0;

    flt_rules_init(&r);
    assert_int_equal(flt_rules_set_langs(&r, "en,zh", NULL), 0);
    expect(c, &r, "kdkk"); /* "cat" is a low-confidence guess of English */
    flt_rules_init(&r);
    r.min_lang_conf = 0.5;
    expect(c, &r, "kkkd");
    /* every pair's language and confidence is in the catalog */
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT lang, conf FROM pair_lang ORDER BY pair_id", -1, &s, NULL),
        SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        static const char *const want[] = {"en", "de", "zh", NULL};
        if (want[n] != NULL)
            assert_string_equal((const char *)sqlite3_column_text(s, 0), want[n]);
        if (n < 3)
            assert_true(sqlite3_column_double(s, 1) > 0.9);
        else
            assert_true(sqlite3_column_double(s, 1) < 0.3);
        n++;
    }
    assert_int_equal(n, 4);
    sqlite3_finalize(s);
    sqlite3_close(db);
    cat_close(c);
}

static void test_boilerplate_and_text_dup_rules(void **state)
{
    static const craft cs[] = {
        {"IMG_1234.JPG", 300, 300, 9000, NAN},
        {"a photo of a black cat", 300, 300, 9000, NAN},
        {"Click to enlarge", 300, 300, 9000, NAN},
        {"a photo of a black cat", 301, 300, 9000, NAN},
    };
    cat *c = make_catalog(cs, 4);
    flt_rules r;
    sqlite3 *db;
    char path[400];

    flt_rules_init(&r);
    r.boilerplate = 1;
    expect(c, &r, "dkdk");
    /* dedup --text-dup flagged pair 4 */
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO decisions(pair_id, stage, decision, reason) "
                                  "VALUES (4, 'dedup-text', 'keep', 'caption_shared')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    flt_rules_init(&r);
    r.text_dup = 1;
    expect(c, &r, "kkkd");
    cat_close(c);
}

static void test_clip_top_exact_with_ties(void **state)
{
    /* 10 scored pairs; the 3rd and 4th best tie at 0.5 */
    static const craft cs[] = {
        {"p1", 300, 300, 1, 0.1},   {"p2", 300, 300, 1, 0.5}, {"p3", 300, 300, 1, 0.9},
        {"p4", 300, 300, 1, 0.5},   {"p5", 300, 300, 1, 0.2}, {"p6", 300, 300, 1, 0.7},
        {"p7", 300, 300, 1, 0.3},   {"p8", 300, 300, 1, 0.4}, {"p9", 300, 300, 1, 0.0},
        {"p10", 300, 300, 1, -0.1},
    };
    cat *c = make_catalog(cs, 10);
    flt_rules r;
    flt_report rep;

    flt_rules_init(&r);
    r.clip_top_pct = 30; /* 3 of 10: 0.9, 0.7 and the earlier 0.5 (pair 2) */
    expect(c, &r, "dkkddkdddd");
    assert_int_equal(run_rules(c, &r, 1, &rep, 0), 0);
    assert_int_equal(rep.top_keep, 3);
    assert_true(rep.clip_threshold == 0.5);
    r.clip_top_pct = 40; /* both 0.5s */
    expect(c, &r, "dkkkdkdddd");
    r.clip_top_pct = 0;
    expect(c, &r, "dddddddddd");
    r.clip_top_pct = 100;
    expect(c, &r, "kkkkkkkkkk");
    r.clip_top_pct = 25; /* round(2.5) = 3 */
    expect(c, &r, "dkkddkdddd");
    cat_close(c);
}

typedef struct ranked {
    double s;
    int64_t id;
} ranked;

static int rank_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void test_clip_top_matches_a_full_sort(void **state)
{
    /* 1500 pairs whose scores take 7 values (ties everywhere): the kept set
     * is the first round(N*P/100) of a sort by (score desc, id asc) */
    enum { N = 1500 };
    static craft cs[N];
    static char names[N][12];
    static ranked r[N];
    static const double pcts[] = {0.1, 1, 13.3, 30, 50, 77.7, 99.9};
    char *got = malloc(N + 1), *want = malloc(N + 1);
    uint64_t x = 42;
    cat *c;
    flt_rules rules;

    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(names[i], sizeof names[i], "p%d", i);
        cs[i] = (craft){names[i], 300, 300, 1, (double)((x >> 33) % 7) / 10.0};
        r[i] = (ranked){cs[i].score, i + 1};
    }
    qsort(r, N, sizeof r[0], rank_cmp);
    c = make_catalog(cs, N);
    for (size_t t = 0; t < sizeof pcts / sizeof pcts[0]; t++) {
        int64_t k = (int64_t)floor(N * pcts[t] / 100.0 + 0.5);
        flt_report rep;
        memset(want, 'd', N);
        want[N] = '\0';
        for (int64_t i = 0; i < k; i++)
            want[r[i].id - 1] = 'k';
        flt_rules_init(&rules);
        rules.clip_top_pct = pcts[t];
        assert_int_equal(run_rules(c, &rules, 0, &rep, 0), 0);
        decisions(c, got, N + 1);
        assert_string_equal(got, want);
        assert_int_equal(rep.top_keep, k);
    }
    free(got);
    free(want);
    cat_close(c);
}

static void test_rerun_moves_exactly_the_pairs_between(void **state)
{
    static const craft cs[] = {
        {"p1", 300, 300, 1, 0.10}, {"p2", 300, 300, 1, 0.25}, {"p3", 300, 300, 1, 0.29},
        {"p4", 300, 300, 1, 0.30}, {"p5", 300, 300, 1, 0.35}, {"p6", 300, 300, 1, 0.31},
    };
    cat *c = make_catalog(cs, 6);
    flt_rules r;
    char a[32], b[32];
    int moved = 0;

    flt_rules_init(&r);
    r.min_clip_score = 0.2;
    expect(c, &r, "dkkkkk");
    decisions(c, a, sizeof a);
    r.min_clip_score = 0.3;
    expect(c, &r, "dddkkk");
    decisions(c, b, sizeof b);
    for (int i = 0; i < 6; i++) {
        if (a[i] != b[i]) {
            /* only pairs with a score in [0.2, 0.3) moved */
            assert_true(cs[i].score >= 0.2 && cs[i].score < 0.3);
            moved++;
        }
    }
    assert_int_equal(moved, 2);
    cat_close(c);
}

static void test_stopped_run_resumes(void **state)
{
    craft cs[10];
    char names[10][8];
    cat *c;
    flt_rules r;
    flt_report rep;
    wp_buf pj = {0};
    char got[32];

    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], i % 3 ? "ab cd %d" : "x%d", i);
        cs[i] = (craft){names[i], 300, 300, 1, NAN};
    }
    c = make_catalog(cs, 10);
    flt_rules_init(&r);
    r.min_words = 2;
    assert_int_equal(flt_rules_json(&r, &pj), 0);
    wp_request_stop(); /* stops after the first batch of 3; flt_run records the run stopped */
    assert_int_equal(run_rules(c, &r, 0, &rep, 0), WP_ESTOP);
    wp_clear_stop();
    assert_int_equal(rep.pairs, 3);
    decisions(c, got, sizeof got);
    assert_string_equal(got, "dkk");
    /* the same rules resume after pair 3 */
    assert_int_equal(run_rules(c, &r, 0, &rep, 0), 0);
    assert_int_equal(rep.resumed_after, 3);
    assert_int_equal(rep.pairs, 7);
    decisions(c, got, sizeof got);
    assert_string_equal(got, "dkkdkkdkkd");
    /* after a finished run, the same rules start afresh */
    assert_int_equal(run_rules(c, &r, 0, &rep, 0), 0);
    assert_int_equal(rep.resumed_after, 0);
    assert_int_equal(rep.pairs, 10);
    wp_buf_free(&pj);
    cat_close(c);
}

static void test_clip_rules_need_scores(void **state)
{
    static const craft cs[] = {{"p1", 300, 300, 1, NAN}, {"p2", 300, 300, 1, NAN}};
    cat *c = make_catalog(cs, 2);
    flt_rules r;
    wp_err err = {0};

    flt_rules_init(&r);
    r.min_clip_score = 0.28;
    assert_int_equal(flt_prepare(c, &r, &err), FLT_ENOSCORES);
    assert_non_null(strstr(err.msg, "witpipe encode"));
    assert_int_equal(cat_encode_add(c, 1, "a", 0, 0, 0.3, &err), 0);
    assert_int_equal(cat_encode_add(c, 1, "b", 0, 0, 0.3, &err), 0);
    assert_int_equal(flt_prepare(c, &r, &err), FLT_EMODEL);
    assert_non_null(strstr(err.msg, "--model"));
    snprintf(r.model, sizeof r.model, "c");
    assert_int_equal(flt_prepare(c, &r, &err), FLT_ENOSCORES);
    snprintf(r.model, sizeof r.model, "b");
    assert_int_equal(flt_prepare(c, &r, &err), 0);
    cat_close(c);
}

static void test_clip_score_text_max(void **state)
{
    /* two captions of one image: with max, the better caption's score
     * applies to both */
    cat *c = NULL;
    wp_err err = {0};
    flt_rules r;
    cat_pair_in in = {0};
    int64_t p1, p2, iid;
    cat_image_result ir;

    assert_int_equal(cat_open(corpus, CAT_CREATE, &c, &err), 0);
    in.url = "http://example.com/a.jpg";
    in.url_len = strlen(in.url);
    in.text = "good caption";
    in.text_len = strlen(in.text);
    in.run_id = in.source_id = -1;
    assert_int_equal(cat_pair_add(c, &in, &p1, &iid, NULL, &err), 0);
    in.text = "bad";
    in.text_len = 3;
    assert_int_equal(cat_pair_add(c, &in, &p2, &iid, NULL, &err), 0);
    ir = cat_image_result_init(iid);
    ir.state = "ok";
    assert_int_equal(cat_image_set_result(c, &ir, &err), 0);
    assert_int_equal(cat_encode_add(c, p1, "m", 0, 0, 0.4, &err), 0);
    assert_int_equal(cat_encode_add(c, p2, "m", 0, 1, 0.1, &err), 0);
    flt_rules_init(&r);
    r.min_clip_score = 0.3;
    expect(c, &r, "kd");
    r.clip_text = FLT_CLIP_MAX;
    expect(c, &r, "kk");
    r.clip_text = FLT_CLIP_MEAN; /* 0.25 */
    expect(c, &r, "dd");
    cat_close(c);
}

static void test_verdicts_and_explain(void **state)
{
    static const craft cs[] = {
        {"IMG_1.jpg", 100, 100, 10, 0.1},
        {"a photo of a black cat on a chair", 300, 300, 9000, 0.5},
    };
    cat *c = make_catalog(cs, 2);
    flt_rules r;
    flt_report rep;
    wp_buf out = {0};
    wp_err err = {0};
    sqlite3 *db;
    sqlite3_stmt *s;
    char path[400], uid[WP_UID_HEX + 1];

    flt_rules_init(&r);
    r.boilerplate = 1;
    r.min_side = 200;
    r.min_clip_score = 0.28;
    assert_int_equal(run_rules(c, &r, 0, &rep, 0), 0);
    assert_int_equal(rep.alone[FLT_R_BOILERPLATE], 1);
    assert_int_equal(rep.alone[FLT_R_MIN_SIDE], 1);
    assert_int_equal(rep.alone[FLT_R_MIN_CLIP_SCORE], 1);
    assert_int_equal(rep.first[FLT_R_BOILERPLATE], 1);
    assert_int_equal(rep.dropped, 1);
    snprintf(path, sizeof path, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT d.reason, d.score, v.rules, p.uid FROM decisions d "
                                        "JOIN filter_verdicts v USING (pair_id) JOIN pairs p "
                                        "ON p.id = d.pair_id WHERE d.stage = 'filter'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "boilerplate");
    assert_true(sqlite3_column_double(s, 1) == 0.1);
    assert_string_equal((const char *)sqlite3_column_text(s, 2),
                        "[\"boilerplate\",\"min_side\",\"min_clip_score\"]");
    snprintf(uid, sizeof uid, "%s", (const char *)sqlite3_column_text(s, 3));
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_int_equal(cat_pair_explain(c, uid, &out, &err), 0);
    assert_non_null(strstr(out.data, "\"reason\":\"boilerplate\""));
    assert_non_null(strstr(out.data, "\"filter_rules\":[\"boilerplate\",\"min_side\""));
    assert_non_null(strstr(out.data, "\"model\":\"m\""));
    wp_buf_reset(&out);
    uid[8] = '\0'; /* a unique prefix names the pair too */
    assert_int_equal(cat_pair_explain(c, uid, &out, &err), 0);
    assert_int_equal(cat_pair_explain(c, "00000000", &out, &err), WP_ENOENT);
    assert_int_equal(cat_pair_explain(c, "xyz", &out, &err), WP_EINVAL);
    wp_buf_free(&out);
    cat_close(c);
}

static void test_labels_parse(void **state)
{
    flt_labels *l = NULL;
    wp_err err = {0};
    assert_int_equal(flt_labels_parse(flt_content_labels_txt, strlen(flt_content_labels_txt),
                                      "shipped", &l, &err),
                     0);
    assert_true(flt_labels_count(l) >= 10);
    assert_string_equal(flt_labels_tag(l, 0), "safe");
    flt_labels_free(l);
    assert_int_equal(flt_labels_parse("a|x\nb\ty\n", 8, "t", &l, &err), 0);
    assert_string_equal(flt_labels_prompt(l, 1), "y");
    flt_labels_free(l);
    assert_int_equal(flt_labels_parse("a|x\nno separator\n", 17, "t", &l, &err), FLT_ELIST);
    assert_non_null(strstr(err.msg, "t:2"));
    assert_int_equal(flt_labels_parse("a|x\na|y\n", 8, "t", &l, &err), FLT_ELIST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_chars),
        cmocka_unit_test(test_text_words),
        cmocka_unit_test(test_text_measure_equals_separate),
        cmocka_unit_test(test_text_repeat),
        cmocka_unit_test(test_boilerplate_shipped),
        cmocka_unit_test(test_boilerplate_patterns),
        cmocka_unit_test(test_lang_known_languages),
        cmocka_unit_test(test_lang_short_is_low_confidence),
        cmocka_unit_test(test_presets_equal_explicit_rules),
        cmocka_unit_test_setup_teardown(test_rules_at_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_language_rules_and_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boilerplate_and_text_dup_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clip_top_exact_with_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clip_top_matches_a_full_sort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rerun_moves_exactly_the_pairs_between, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stopped_run_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clip_rules_need_scores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clip_score_text_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdicts_and_explain, setup, teardown),
        cmocka_unit_test(test_labels_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
