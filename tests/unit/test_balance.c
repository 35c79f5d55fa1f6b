/*
 * tests/unit/test_balance.c: the query list and the matcher of balance/
 * against a naive implementation written here (MetaCLIP's spacing as
 * successive replacements, then a memmem per entry), on random captions
 * and entries over a small alphabet that makes overlaps, prefixes and
 * suffixes frequent; list loading; the draw, the keep probability and the
 * tail-fraction t against brute force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "balance/balance.h"
#include "common/wp.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* MetaCLIP's spacing as the Python code does it: replace, replace, ... */
static char *replace_all(const char *s, char c, const char *with)
{
    size_t n = strlen(s), wl = strlen(with), k = 0;
    char *o = malloc(n * wl + 1);
    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == c) {
            memcpy(o + k, with, wl);
            k += wl;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

static char *naive_spacing(const char *text, int lower)
{
    static const char puncts[] = ",.;:?!`";
    char *t = malloc(strlen(text) + 3), *u;
    assert_non_null(t);
    sprintf(t, " %s ", text);
    for (int i = 0; puncts[i]; i++) {
        char with[4] = {' ', puncts[i], ' ', 0};
        u = replace_all(t, puncts[i], with);
        free(t);
        t = u;
    }
    for (const char *c = "\t\n\r"; *c; c++) {
        u = replace_all(t, *c, " ");
        free(t);
        t = u;
    }
    if (lower)
        for (char *p = t; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
    return t;
}

static const char *const ATOMS[] = {"a", "b",  "ab", " ",  " ",  ",",  ".",  ";",   ":",
                                    "?", "!",  "`",  "\t", "\n", "\r", "-",  "A",   "B",
                                    "é", "猫", "。", "「", "」", "ไ",  "()", "\xc3"};
#define NATOMS (sizeof ATOMS / sizeof ATOMS[0])

static void gen(char *out, size_t max_atoms, int no_ctl)
{
    size_t n = rnd() % (max_atoms + 1);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *a = ATOMS[rnd() % NATOMS];
        if (no_ctl && (a[0] == '\t' || a[0] == '\n' || a[0] == '\r'))
            a = "a";
        strcat(out, a);
    }
}

static void check_against_naive(int rule, int flags, int nentries, int ncaps, size_t cap_atoms)
{
    qry_list *l = qry_list_new();
    qry_matcher *m = NULL;
    qry_scratch *s = qry_scratch_new();
    wp_err err = {0};
    char buf[4096];
    int total = 0;

    assert_non_null(l);
    assert_non_null(s);
    for (int i = 0; i < nentries; i++) {
        gen(buf, 4, 1);
        assert_int_equal(qry_list_add(l, buf, strlen(buf), NULL), 0);
    }
    assert_int_equal(qry_matcher_new(l, rule, flags, &m, &err), 0);
    for (int c = 0; c < ncaps; c++) {
        const uint32_t *ids;
        int k, j = 0;
        char *sp;
        gen(buf, cap_atoms, 0);
        k = qry_match(m, buf, strlen(buf), s, &ids);
        assert_true(k >= 0);
        sp = naive_spacing(buf, flags & QRY_IGNORE_CASE);
        for (size_t e = 0; e < qry_list_count(l); e++) {
            size_t len;
            const char *ent = qry_list_entry(l, e, &len);
            wp_buf pat = {0};
            int want;
            assert_int_equal(qry_pattern(ent, len, rule, flags, &pat), 0);
            want = memmem(sp, strlen(sp), pat.data, pat.len) != NULL;
            wp_buf_free(&pat);
            if (want) {
                if (j >= k || ids[j] != e)
                    fail_msg("caption '%s': entry %zu '%s' should match", buf, e, ent);
                j++;
                total++;
            }
        }
        if (j != k)
            fail_msg("caption '%s': %d matches, naive %d", buf, k, j);
        free(sp);
    }
    assert_true(total > ncaps / 4); /* not vacuous */
    qry_matcher_free(m);
    qry_scratch_free(s);
    qry_list_free(l);
}

static void test_match_metaclip(void **state)
{
    check_against_naive(QRY_RULE_METACLIP, 0, 200, 3000, 30);
}

static void test_match_metaclip2(void **state)
{
    check_against_naive(QRY_RULE_METACLIP2, 0, 200, 3000, 30);
}

static void test_match_ignore_case(void **state)
{
    check_against_naive(QRY_RULE_METACLIP, QRY_IGNORE_CASE, 200, 2000, 30);
}

static void test_match_long_captions(void **state)
{
    check_against_naive(QRY_RULE_METACLIP, 0, 60, 30, 1000);
}

/* the same checks with every entry in the byte automaton (no token index) */
static void test_match_automaton_only(void **state)
{
    check_against_naive(QRY_RULE_METACLIP, QRY_FORCE_AC, 200, 2000, 30);
    check_against_naive(QRY_RULE_METACLIP2, QRY_FORCE_AC, 200, 2000, 30);
    check_against_naive(QRY_RULE_METACLIP, QRY_FORCE_AC | QRY_IGNORE_CASE, 200, 1000, 30);
}

static void test_match_empty_list(void **state)
{
    qry_list *l = qry_list_new();
    qry_matcher *m = NULL;
    qry_scratch *s = qry_scratch_new();
    const uint32_t *ids;
    wp_err err = {0};
    assert_int_equal(qry_matcher_new(l, QRY_RULE_METACLIP, 0, &m, &err), 0);
    assert_int_equal(qry_match(m, "a b c", 5, s, &ids), 0);
    assert_int_equal(qry_match(m, "", 0, s, &ids), 0);
    qry_matcher_free(m);
    qry_scratch_free(s);
    qry_list_free(l);
}

static void test_same_pattern_after_folding(void **state)
{
    /* "Cat" and "cat" are one pattern under --ignore-case: both match */
    qry_list *l = qry_list_new();
    qry_matcher *m = NULL;
    qry_scratch *s = qry_scratch_new();
    const uint32_t *ids;
    wp_err err = {0};
    assert_int_equal(qry_list_add(l, "Cat", 3, NULL), 0);
    assert_int_equal(qry_list_add(l, "cat", 3, NULL), 0);
    assert_int_equal(qry_list_add(l, "CAT", 3, NULL), 0);
    assert_int_equal(qry_matcher_new(l, QRY_RULE_METACLIP, QRY_IGNORE_CASE, &m, &err), 0);
    assert_int_equal(qry_match(m, "a cAt.", 6, s, &ids), 3);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 2);
    qry_matcher_free(m);
    assert_int_equal(qry_matcher_new(l, QRY_RULE_METACLIP, 0, &m, &err), 0);
    assert_int_equal(qry_match(m, "a cAt.", 6, s, &ids), 0);
    assert_int_equal(qry_match(m, "CAT", 3, s, &ids), 1);
    assert_int_equal(ids[0], 2);
    qry_matcher_free(m);
    qry_scratch_free(s);
    qry_list_free(l);
}

static void test_list_load(void **state)
{
    char *dir = tl_mkdtemp();
    char path[WP_PATH_MAX];
    char longline[400];
    qry_list *l = NULL;
    qry_load_stats st = {0};
    wp_err err = {0};
    wp_buf b = {0};
    size_t len;

    memset(longline, 'x', 300);
    longline[300] = '\0';
    snprintf(path, sizeof path, "%s/l.txt", dir);
    wp_buf_printf(&b, "cat\r\n\nblack cat\ncat\n%s\nbad\xff\n a b \nlast", longline);
    assert_int_equal(tl_write(path, b.data, b.len), 0);
    assert_int_equal(qry_list_load(path, &l, &st, &err), 0);
    assert_int_equal(qry_list_count(l), 4);
    assert_string_equal(qry_list_entry(l, 0, &len), "cat");
    assert_string_equal(qry_list_entry(l, 1, &len), "black cat");
    assert_string_equal(qry_list_entry(l, 2, &len), " a b ");
    assert_string_equal(qry_list_entry(l, 3, &len), "last");
    assert_int_equal(st.read, 8);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.empty, 1);
    assert_int_equal(st.too_long, 1);
    assert_int_equal(st.bad_utf8, 1);
    qry_list_free(l);
    /* MetaCLIP's metadata.json */
    snprintf(path, sizeof path, "%s/m.json", dir);
    {
        static const char js[] = " [\"a\\nb\", \"c\", \"c\", \"\\u732b\"]";
        assert_int_equal(tl_write(path, js, strlen(js)), 0);
    }
    memset(&st, 0, sizeof st);
    assert_int_equal(qry_list_load(path, &l, &st, &err), 0);
    assert_int_equal(qry_list_count(l), 3);
    assert_string_equal(qry_list_entry(l, 0, &len), "a\nb");
    assert_string_equal(qry_list_entry(l, 2, &len), "猫");
    /* written back and read again: the same list */
    {
        qry_list *l2 = NULL;
        char h1[WP_SHA256_HEX + 1], h2[WP_SHA256_HEX + 1];
        snprintf(path, sizeof path, "%s/out.txt", dir);
        assert_int_equal(qry_list_write(l, path, &err), 0);
        assert_int_equal(qry_list_load(path, &l2, NULL, &err), 0);
        assert_int_equal(qry_list_sha256(l, h1), 0);
        assert_int_equal(qry_list_sha256(l2, h2), 0);
        assert_string_equal(h1, h2);
        qry_list_free(l2);
    }
    qry_list_free(l);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    assert_int_equal(tl_write(path, "[\"a\", 3]", 8), 0);
    assert_int_equal(qry_list_load(path, &l, NULL, &err), WP_EFORMAT);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(qry_list_load(path, &l, NULL, &err), WP_ENOENT);
    wp_buf_free(&b);
    tl_rmtree(dir);
}

static void test_t_for_tail_brute_force(void **state)
{
    for (int it = 0; it < 200; it++) {
        size_t n = 1 + rnd() % 50;
        int64_t c[50], total = 0, maxc = 0, t;
        double f = (double)(1 + rnd() % 100) / 100.0;
        for (size_t i = 0; i < n; i++) {
            c[i] = (int64_t)(rnd() % 40);
            total += c[i];
            if (c[i] > maxc)
                maxc = c[i];
        }
        t = bal_t_for_tail(c, n, f);
        if (total == 0) {
            assert_int_equal(t, 1);
            continue;
        }
        /* the smallest t with sum(c < t) >= f * total */
        for (int64_t tt = 1; tt <= maxc + 1; tt++) {
            int64_t tail = 0;
            for (size_t i = 0; i < n; i++)
                if (c[i] < tt)
                    tail += c[i];
            if ((double)tail >= f * (double)total) {
                assert_int_equal(t, tt);
                break;
            }
        }
    }
}

static void test_keep_prob(void **state)
{
    int64_t counts[4] = {10, 40, 40, 5};
    uint32_t a[] = {0}, b[] = {1}, ab[] = {1, 2}, d[] = {3, 1};
    assert_true(fabs(bal_keep_prob(counts, a, 1, 20) - 1.0) < 1e-12);
    assert_true(fabs(bal_keep_prob(counts, b, 1, 20) - 0.5) < 1e-12);
    assert_true(fabs(bal_keep_prob(counts, ab, 2, 20) - 0.75) < 1e-12);
    assert_true(fabs(bal_keep_prob(counts, d, 2, 20) - 1.0) < 1e-12);
    assert_true(fabs(bal_keep_prob(counts, ab, 0, 20)) < 1e-12);
}

static void test_draw_uniform_and_keyed(void **state)
{
    int bins[10] = {0};
    int n = 200000, same = 0;
    double chi = 0;
    uint8_t uid[WP_UID_LEN];
    for (int i = 0; i < n; i++) {
        double u, v;
        char hex[WP_UID_HEX + 1];
        snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)rnd(),
                 (unsigned long long)rnd());
        assert_int_equal(bal_uid_parse(hex, uid), 0);
        u = bal_draw(42, 0, uid);
        assert_true(u >= 0 && u < 1);
        bins[(int)(u * 10)]++;
        /* keyed by (seed, stream, uid) alone: repeatable, and another
         * seed or stream gives another draw */
        assert_true(bal_draw(42, 0, uid) == u);
        v = bal_draw(43, 0, uid);
        same += v == u || bal_draw(42, 1, uid) == u;
    }
    for (int i = 0; i < 10; i++)
        chi += (bins[i] - n / 10.0) * (bins[i] - n / 10.0) / (n / 10.0);
    assert_true(chi < 40.0); /* 9 degrees of freedom: p < 1e-5 */
    assert_int_equal(same, 0);
    assert_int_equal(bal_uid_parse("zz", uid), WP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_metaclip),
        cmocka_unit_test(test_match_metaclip2),
        cmocka_unit_test(test_match_ignore_case),
        cmocka_unit_test(test_match_long_captions),
        cmocka_unit_test(test_match_automaton_only),
        cmocka_unit_test(test_match_empty_list),
        cmocka_unit_test(test_same_pattern_after_folding),
        cmocka_unit_test(test_list_load),
        cmocka_unit_test(test_t_for_tail_brute_force),
        cmocka_unit_test(test_keep_prob),
        cmocka_unit_test(test_draw_uniform_and_keyed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
