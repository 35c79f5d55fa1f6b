/*
 * tests/unit/test_audit.c: the audit's building blocks: nPMI on
 * hand-worked examples, Wilson intervals, bootstrap intervals that cover
 * the true nPMI at about the stated rate on simulated data, the lexicon
 * matcher (case, punctuation, multi-word terms, each group once per
 * caption, malformed files), base64 and registrable domains; and the
 * catalog side: pending tables reported absent until they exist, and the
 * audit cursor's merge of decisions, CLIP scores and languages per pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit_int.h"
#include "catalog/catalog.h"
#include "common/wp.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/wp_test_audit_%d", (int)getpid());
    wp_mkdir_p(root, NULL);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_npmi_hand_worked(void **state)
{
    (void)state;
    /* 100 captions, x in 20, y in 10, both in 5: p(x,y) = 0.05,
     * p(x)p(y) = 0.02, pmi = ln 2.5 = 0.916291, -ln 0.05 = 2.995732,
     * npmi = 0.305865 */
    assert_true(fabs(aud_npmi(5, 20, 10, 100) - 0.305865) < 1e-6);
    /* independent: p(x,y) = 0.1 = 0.5 * 0.2 */
    assert_true(fabs(aud_npmi(10, 50, 20, 100)) < 1e-12);
    /* never together, always together, undefined */
    assert_true(aud_npmi(0, 20, 10, 100) == -1.0);
    assert_true(aud_npmi(100, 100, 100, 100) == 1.0);
    assert_true(isnan(aud_npmi(0, 0, 10, 100)));
    /* x always with y and y only with x: complete association, npmi 1 */
    assert_true(fabs(aud_npmi(10, 10, 10, 100) - 1.0) < 1e-12);
    /* below independence is negative: 2 together, 4 expected */
    assert_true(aud_npmi(2, 20, 20, 100) < 0);
}

static void test_wilson_known_values(void **state)
{
    double lo, hi;
    (void)state;
    /* 5 of 10: 0.2366 .. 0.7634 (Wilson 1927, z = 1.96) */
    aud_wilson(5, 10, &lo, &hi);
    assert_true(fabs(lo - 0.236593) < 1e-5 && fabs(hi - 0.763407) < 1e-5);
    aud_wilson(0, 20, &lo, &hi);
    assert_true(lo == 0 && fabs(hi - 0.161125) < 1e-5);
    aud_wilson(0, 0, &lo, &hi);
    assert_true(isnan(lo) && isnan(hi));
}

/* Simulated captions: x with probability 0.3; y with probability 0.4 when
 * x, 0.2 otherwise. True nPMI from the probabilities; the 95% interval
 * should cover it in about 95% of samples. */
static void test_bootstrap_covers_true_npmi(void **state)
{
    (void)state;
    const double px = 0.3, pyx = 0.4, pynx = 0.2;
    double pxy = px * pyx, py = px * pyx + (1 - px) * pynx;
    double truth = log(pxy / (px * py)) / -log(pxy);
    int trials = 120, covered = 0, n = 1500;
    aud_rng r;
    aud_rng_seed(&r, 7);
    for (int t = 0; t < trials; t++) {
        aud_cooc *c = aud_cooc_new(1, 1);
        uint16_t zero = 0;
        double *np, *lo, *hi;
        assert_non_null(c);
        for (int d = 0; d < n; d++) {
            int x = aud_rng_uniform(&r) < px;
            int y = aud_rng_uniform(&r) < (x ? pyx : pynx);
            assert_int_equal(aud_cooc_add(c, &zero, x, &zero, y), 0);
        }
        assert_int_equal(aud_cooc_npmi(c, 200, (uint64_t)t, &np, &lo, &hi, NULL, NULL), 0);
        assert_true(lo[0] <= np[0] && np[0] <= hi[0]);
        covered += lo[0] <= truth && truth <= hi[0];
        free(np);
        free(lo);
        free(hi);
        aud_cooc_free(c);
    }
    /* 95% nominal; with 120 trials a correct interval lands in [0.88, 0.99]
     * far more often than not, a broken one (too narrow, off-centre) not */
    print_message("bootstrap coverage %d/%d (truth %.4f)\n", covered, trials, truth);
    assert_in_range(covered, (int)(0.88 * trials), (int)(0.995 * trials));
}

static void test_poisson_mean(void **state)
{
    aud_rng r;
    double s1 = 0, s50 = 0;
    (void)state;
    aud_rng_seed(&r, 1);
    for (int i = 0; i < 100000; i++) {
        s1 += aud_rng_poisson(&r, 1.0);
        s50 += aud_rng_poisson(&r, 50.0);
    }
    assert_true(fabs(s1 / 100000 - 1.0) < 0.02);
    assert_true(fabs(s50 / 100000 - 50.0) < 0.2);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_lexicon_matching(void **state)
{
    char p1[400], p2[400];
    aud_matcher *m = aud_matcher_new();
    aud_hits h;
    wp_err err = {0};
    (void)state;
    snprintf(p1, sizeof p1, "%s/g.tsv", root);
    snprintf(p2, sizeof p2, "%s/o.tsv", root);
    write_file(p1, "# comment\n\nfemale\twoman\nfemale\twomen\nmale\tman\nnonbinary\tnon-binary\n"
                   "female\tWoman\n");
    write_file(p2, "police officer\tpolice officer\nnurse\tnurse\nnurse\tnurses\n");
    assert_non_null(m);
    assert_int_equal(aud_matcher_load(m, "gender", p1, 0, &err), 0);
    assert_int_equal(aud_matcher_load(m, "occupation", p2, 1, &err), 0);
    assert_int_equal(aud_matcher_lex(m, 0)->ngroups, 3);
    assert_int_equal(aud_matcher_lex(m, 0)->nterms, 4); /* "Woman" = "woman" */
    const char *t = "A WOMAN, two women and a Police-Officer; nurses. Non binary man!";
    assert_int_equal(aud_match(m, t, strlen(t), &h), 0);
    assert_int_equal(h.n[0], 3); /* female once, nonbinary, male */
    assert_int_equal(h.g[0][0], 0);
    assert_int_equal(h.g[0][1], 2);
    assert_int_equal(h.g[0][2], 1);
    assert_int_equal(h.n[1], 2);
    /* no partial words: "womanly", "manager", "nursery" */
    t = "womanly manager in a nursery";
    aud_match(m, t, strlen(t), &h);
    assert_int_equal(h.n[0] + h.n[1], 0);
    /* possessives split at the apostrophe */
    t = "the man's hat";
    aud_match(m, t, strlen(t), &h);
    assert_int_equal(h.n[0], 1);
    aud_matcher_free(m);

    /* malformed: no tab, and a term of five words */
    m = aud_matcher_new();
    write_file(p1, "female woman\n");
    assert_int_equal(aud_matcher_load(m, "bad", p1, 0, &err), AUD_ELEXICON);
    assert_non_null(strstr(err.msg, ":1:"));
    write_file(p1, "a\tone two three four five\n");
    assert_int_equal(aud_matcher_load(m, "bad", p1, 0, &err), AUD_ELEXICON);
    snprintf(p1, sizeof p1, "%s/missing.tsv", root);
    assert_int_equal(aud_matcher_load(m, "bad", p1, 0, &err), AUD_ELEXICON);
    aud_matcher_free(m);
}

static void test_shipped_lexicons_load(void **state)
{
    static const char *const names[] = {"gender", "age", "identity", "occupation", "adjective"};
    aud_matcher *m = aud_matcher_new();
    wp_err err = {0};
    char p[300];
    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "audit/lexicon/%s.tsv", names[i]);
        assert_int_equal(aud_matcher_load(m, names[i], p, i >= 3, &err), 0);
        assert_true(aud_matcher_lex(m, i)->nterms > 5);
    }
    aud_matcher_free(m);
    aud_probe_set *ps = NULL;
    assert_int_equal(aud_probes_load("audit/labels/probes.txt", &ps, &err), 0);
    aud_probes_free(ps);
}

static void test_base64_and_domains(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char d[256];
    (void)state;
    for (int i = 0; i < 7; i++) { /* RFC 4648 section 10 */
        wp_buf b = {0};
        assert_int_equal(aud_base64(in[i], strlen(in[i]), &b), 0);
        assert_string_equal(b.data ? b.data : "", want[i]);
        wp_buf_free(&b);
    }
    aud_url_domain("https://a.b.Example.co.uk/x?y", d, sizeof d);
    assert_string_equal(d, "example.co.uk");
    aud_url_domain("http://user@Img.Example.com:8080/p.jpg", d, sizeof d);
    assert_string_equal(d, "example.com");
    aud_url_domain("file:///tmp/x.jpg", d, sizeof d);
    assert_string_equal(d, "(local file)");
    aud_url_domain("http://127.0.0.1:9/a", d, sizeof d);
    assert_string_equal(d, "127.0.0.1");
    assert_int_equal(aud_utf8_chars("h\xc3\xa9llo", 6), 5);
}

static void sql(const char *dir, const char *stmt)
{
    char path[400];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_pending_tables_and_cursor(void **state)
{
    char dir[300];
    cat *c = NULL;
    wp_err err = {0};
    cat_audit_tables t;
    cat_audit_cursor *cur = NULL;
    cat_audit_pair p;
    (void)state;
    snprintf(dir, sizeof dir, "%s/corpus", root);
    assert_int_equal(cat_open(dir, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_begin(c, &err), 0);
    for (int i = 0; i < 4; i++) {
        char url[64], text[64];
        cat_pair_in in = {0};
        snprintf(url, sizeof url, "http://x.example.com/%d.jpg", i);
        snprintf(text, sizeof text, "caption %d", i);
        in.url = url;
        in.url_len = strlen(url);
        in.text = text;
        in.text_len = strlen(text);
        assert_int_equal(cat_pair_add(c, &in, NULL, NULL, NULL, &err), 0);
    }
    assert_int_equal(cat_commit(c, &err), 0);
    assert_int_equal(cat_audit_probe_pending_tables(c, &t, &err), 0);
    /* balance's tables may exist (its migration) but hold no query list */
    assert_int_equal(t.lang + t.tags + t.queries + t.verdicts, 0);
    cat_close(c);
    /* decisions of two stages on pair 2, one on pair 4; a CLIP score for
     * pair 3; a pair_lang table without its conf column is still absent */
    sql(dir, "INSERT INTO decisions VALUES (2, 'filter', 'drop', 'min_words', 0.5, NULL);"
             "INSERT INTO decisions VALUES (2, 'dedup', 'keep', NULL, NULL, NULL);"
             "INSERT INTO decisions VALUES (4, 'balance', 'drop', 'over_cap', NULL, NULL);"
             "INSERT INTO embeddings VALUES (3, 'm', 0, 0, 0.25);"
             "INSERT INTO embeddings VALUES (3, 'other', 0, 0, 0.75);"
             "DROP TABLE IF EXISTS pair_lang; CREATE TABLE pair_lang (pair_id INTEGER PRIMARY KEY, "
             "lang TEXT);");
    assert_int_equal(cat_open(dir, CAT_READONLY, &c, &err), 0);
    assert_int_equal(cat_audit_probe_pending_tables(c, &t, &err), 0);
    assert_int_equal(t.lang, 0);
    cat_close(c);
    sql(dir, "DROP TABLE pair_lang; CREATE TABLE pair_lang (pair_id INTEGER PRIMARY KEY, lang "
             "TEXT NOT NULL, conf REAL NOT NULL, reliable INTEGER NOT NULL);"
             "INSERT INTO pair_lang VALUES (1, 'en', 0.9, 1), (4, 'de', 0.5, 0);");
    assert_int_equal(cat_open(dir, CAT_READONLY, &c, &err), 0);
    assert_int_equal(cat_audit_probe_pending_tables(c, &t, &err), 0);
    assert_int_equal(t.lang, 1);
    assert_int_equal(t.queries, 0);
    assert_int_equal(cat_audit_cursor_open(c, "m", &cur, &err), 0);
    for (int i = 1; i <= 4; i++) {
        assert_int_equal(cat_audit_cursor_next(cur, &p, &err), 1);
        assert_int_equal(p.pair_id, i);
        assert_string_equal(p.state, "pending");
        if (i == 1) {
            assert_string_equal(p.lang, "en");
            assert_true(fabs(p.lang_conf - 0.9) < 1e-12);
        }
        if (i == 2) {
            assert_int_equal(p.ndec, 2);
            assert_string_equal(p.dec[0].stage, "dedup"); /* in stage name order */
            assert_string_equal(p.dec[1].stage, "filter");
            assert_string_equal(p.dec[1].reason, "min_words");
            assert_true(fabs(p.dec[1].score - 0.5) < 1e-12);
            assert_null(p.lang);
        }
        if (i == 3)
            assert_true(fabs(p.clip_score - 0.25) < 1e-12);
        else
            assert_true(isnan(p.clip_score));
        if (i == 4) {
            assert_int_equal(p.ndec, 1);
            assert_string_equal(p.dec[0].reason, "over_cap");
            assert_string_equal(p.lang, "de");
        }
    }
    assert_int_equal(cat_audit_cursor_next(cur, &p, &err), 0);
    cat_audit_cursor_close(cur);
    cat_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npmi_hand_worked),
        cmocka_unit_test(test_wilson_known_values),
        cmocka_unit_test(test_bootstrap_covers_true_npmi),
        cmocka_unit_test(test_poisson_mean),
        cmocka_unit_test(test_lexicon_matching),
        cmocka_unit_test(test_shipped_lexicons_load),
        cmocka_unit_test(test_base64_and_domains),
        cmocka_unit_test(test_pending_tables_and_cursor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
