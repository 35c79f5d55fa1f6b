/*
 * tests/unit/test_robots.c: the robots.txt matcher (crawl/robots.c)
 * against the examples of RFC 9309 (sections 2.2.2, 2.2.3, 5.1, 5.2) and
 * its status-code, size and merging rules; and the one robots-directive
 * parser (net/net_robots.c, X-Robots-Tag and <meta name=robots>) against
 * the shared table tests/data/robots_cases.tsv, directly and through the
 * crawl's flag mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crawl/crawl.h"
#include "net/net.h"
#include "tests/lib/robots_cases.h"

#include <stdlib.h>
#include <string.h>

static crawl_robots *parse(const char *txt, const char *token)
{
    crawl_robots *r = crawl_robots_parse(txt, strlen(txt), 200, token);
    assert_non_null(r);
    return r;
}

/* RFC 9309 section 5.1, "Simple Example". */
static const char simple[] = "User-Agent: *\n"
                             "Disallow: *.gif$\n"
                             "Disallow: /example/\n"
                             "Allow: /publications/\n"
                             "\n"
                             "User-Agent: foobot\n"
                             "Disallow:/\n"
                             "Allow:/example/page.html\n"
                             "Allow:/example/allowed.gif\n"
                             "\n"
                             "User-Agent: barbot\n"
                             "User-Agent: bazbot\n"
                             "Disallow: /example/page.html\n"
                             "\n"
                             "User-Agent: quxbot\n"
                             "\n"
                             "EOF\n";

static void test_rfc_5_1_foobot(void **state)
{
    crawl_robots *r = parse(simple, "foobot");
    assert_true(crawl_robots_allowed(r, "/example/page.html"));
    assert_true(crawl_robots_allowed(r, "/example/allowed.gif"));
    assert_false(crawl_robots_allowed(r, "/"));
    assert_false(crawl_robots_allowed(r, "/publications/"));
    assert_false(crawl_robots_allowed(r, "/example/other.html"));
    crawl_robots_free(r);
    /* Product tokens match case-insensitively (section 2.2.1). */
    r = parse(simple, "FooBot");
    assert_false(crawl_robots_allowed(r, "/x"));
    crawl_robots_free(r);
}

static void test_rfc_5_1_barbot_bazbot(void **state)
{
    const char *bots[] = {"barbot", "bazbot"};
    for (int i = 0; i < 2; i++) {
        crawl_robots *r = parse(simple, bots[i]);
        assert_false(crawl_robots_allowed(r, "/example/page.html"));
        assert_true(crawl_robots_allowed(r, "/example/other.html"));
        assert_true(crawl_robots_allowed(r, "/x.gif")); /* the * group does not apply */
        crawl_robots_free(r);
    }
}

static void test_rfc_5_1_quxbot_and_others(void **state)
{
    crawl_robots *r = parse(simple, "quxbot");
    assert_true(crawl_robots_allowed(r, "/example/page.html"));
    assert_true(crawl_robots_allowed(r, "/a.gif"));
    crawl_robots_free(r);
    r = parse(simple, "witpipe");
    assert_false(crawl_robots_allowed(r, "/a.gif"));
    assert_false(crawl_robots_allowed(r, "/dir/b.gif"));
    assert_true(crawl_robots_allowed(r, "/a.gif?x=1")); /* $ anchors the end */
    assert_false(crawl_robots_allowed(r, "/example/x"));
    assert_true(crawl_robots_allowed(r, "/publications/x"));
    assert_true(crawl_robots_allowed(r, "/other"));
    crawl_robots_free(r);
}

/* RFC 9309 section 5.2, "Longest Match". */
static void test_rfc_5_2_longest_match(void **state)
{
    crawl_robots *r = parse("User-Agent: foobot\n"
                            "Allow: /example/page/\n"
                            "Disallow: /example/page/disallowed.gif\n",
                            "foobot");
    assert_true(crawl_robots_allowed(r, "/example/page/"));
    assert_true(crawl_robots_allowed(r, "/example/page/allowed.gif"));
    assert_false(crawl_robots_allowed(r, "/example/page/disallowed.gif"));
    crawl_robots_free(r);
}

/* Section 2.2.2: on equal length, Allow wins; /robots.txt always allowed. */
static void test_allow_wins_ties(void **state)
{
    crawl_robots *r = parse("user-agent: *\ndisallow: /page\nallow: /page\ndisallow: /\n", "x");
    assert_true(crawl_robots_allowed(r, "/page.html"));
    assert_false(crawl_robots_allowed(r, "/other"));
    assert_true(crawl_robots_allowed(r, "/robots.txt"));
    crawl_robots_free(r);
    /* The order of the lines does not matter: Allow first, then the
     * Disallow of the same length, in one group and across merged groups. */
    r = parse("user-agent: *\nallow: /page\ndisallow: /page\n", "x");
    assert_true(crawl_robots_allowed(r, "/page.html"));
    crawl_robots_free(r);
    r = parse("user-agent: x\nallow: /pa*e\nuser-agent: x\ndisallow: /page\n", "x");
    assert_true(crawl_robots_allowed(r, "/page.html"));
    crawl_robots_free(r);
    /* A longer Disallow still beats a shorter Allow that comes first. */
    r = parse("user-agent: *\nallow: /page\ndisallow: /page.\n", "x");
    assert_false(crawl_robots_allowed(r, "/page.html"));
    assert_true(crawl_robots_allowed(r, "/page-2"));
    crawl_robots_free(r);
}

/* Section 2.2.2's percent-encoding table and section 2.2.3's special
 * characters table. */
static void test_rfc_encoding_and_special_chars(void **state)
{
    assert_true(crawl_robots_match("/foo/bar?baz=quz", 16, "/foo/bar?baz=quz"));
    assert_true(crawl_robots_match("/foo/bar/\xE3\x83\x84", 12, "/foo/bar/%E3%83%84"));
    assert_true(crawl_robots_match("/foo/bar/%E3%83%84", 18, "/foo/bar/%e3%83%84"));
    assert_true(crawl_robots_match("/foo/bar/%62%61%7A", 18, "/foo/bar/baz"));
    /* "%2A" and "%24" are the characters, not the wildcard / anchor. */
    assert_true(crawl_robots_match("/path/file-with-a-%2A.html", 26, "/path/file-with-a-*.html"));
    assert_false(crawl_robots_match("/path/file-with-a-%2A.html", 26, "/path/file-with-a-x.html"));
    assert_true(crawl_robots_match("/path/foo-%24", 13, "/path/foo-$"));
    assert_false(crawl_robots_match("/path/foo-%24", 13, "/path/foo-"));
    /* Wildcards. */
    assert_true(crawl_robots_match("/this/*/exactly", 15, "/this/path/exactly"));
    assert_true(crawl_robots_match("/this/path*", 11, "/this/path/x"));
    assert_true(crawl_robots_match("/this/path/exactly$", 19, "/this/path/exactly"));
    assert_false(crawl_robots_match("/this/path/exactly$", 19, "/this/path/exactly/x"));
    assert_true(crawl_robots_match("/*.php$", 7, "/a/b.php"));
    assert_false(crawl_robots_match("/*.php$", 7, "/a/b.php?x"));
    assert_true(crawl_robots_match("/fish*.php", 10, "/fishheads/catfish.php?parameters"));
    assert_false(crawl_robots_match("/fish*.php", 10, "/Fish.PHP"));
    /* A hostile pattern does not take exponential time. */
    char pat[201], path[4001];
    for (int i = 0; i < 200; i += 2)
        pat[i] = '*', pat[i + 1] = 'a';
    pat[200] = '\0';
    memset(path, 'a', 4000);
    path[3999] = 'b';
    path[4000] = '\0';
    assert_true(crawl_robots_match(pat, 200, path));
}

/* Section 2.3.1: 4xx allows all, 5xx and unreachable disallow all. */
static void test_status_codes(void **state)
{
    crawl_robots *r = crawl_robots_parse("User-agent: *\nDisallow: /", 25, 404, "x");
    assert_true(crawl_robots_allowed(r, "/anything"));
    crawl_robots_free(r);
    r = crawl_robots_parse("", 0, 503, "x");
    assert_false(crawl_robots_allowed(r, "/anything"));
    crawl_robots_free(r);
    r = crawl_robots_parse(NULL, 0, 0, "x");
    assert_false(crawl_robots_allowed(r, "/"));
    crawl_robots_free(r);
    r = crawl_robots_parse("", 0, 200, "x");
    assert_true(crawl_robots_allowed(r, "/"));
    crawl_robots_free(r);
}

/* Merged groups, comments, CRLF, BOM, unknown lines, Crawl-delay. */
static void test_merging_and_syntax(void **state)
{
    crawl_robots *r = parse("\xEF\xBB\xBFuser-agent: ExampleBot/1.2 # comment\r\n"
                            "disallow: /foo\r\n"
                            "sitemap: http://x/s.xml\r\n"
                            "disallow: /bar\r\n"
                            "crawl-delay: 2.5\r\n"
                            "\r\n"
                            "user-agent: other\r\n"
                            "disallow: /\r\n"
                            "user-agent: examplebot\r\n"
                            "disallow: /baz # trailing\r\n"
                            "disallow:\r\n",
                            "examplebot");
    assert_false(crawl_robots_allowed(r, "/foo"));
    assert_false(crawl_robots_allowed(r, "/bar/x"));
    assert_false(crawl_robots_allowed(r, "/baz"));
    assert_true(crawl_robots_allowed(r, "/qux"));
    assert_true(crawl_robots_delay(r) > 2.4 && crawl_robots_delay(r) < 2.6);
    crawl_robots_free(r);
    r = parse("user-agent: *\nallow: /\n", "x");
    assert_true(crawl_robots_delay(r) < 0);
    crawl_robots_free(r);
}

/* Section 2.5: only the first 500 KiB are parsed. */
static void test_size_limit(void **state)
{
    size_t n = CRAWL_ROBOTS_MAX_BYTES + 1000;
    char *big = malloc(n + 64);
    const char head[] = "user-agent: *\ndisallow: /early\n";
    assert_non_null(big);
    memset(big, '#', n);
    memcpy(big, head, sizeof head - 1);
    for (size_t i = sizeof head; i < n; i += 80)
        big[i] = '\n';
    memcpy(big + n, "\ndisallow: /late\n", 17);
    crawl_robots *r = crawl_robots_parse(big, n + 17, 200, "x");
    assert_false(crawl_robots_allowed(r, "/early"));
    assert_true(crawl_robots_allowed(r, "/late"));
    crawl_robots_free(r);
    free(big);
}

/* The definition of section 2.2.3, by backtracking: '*' any run of
 * octets, a final '$' the end; without '$' a prefix of the path. */
static int ref_match(const char *p, size_t pn, const char *s, size_t sn)
{
    if (pn == 1 && p[0] == '$')
        return sn == 0;
    if (pn == 0)
        return 1;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sn; k++)
            if (ref_match(p + 1, pn - 1, s + k, sn - k))
                return 1;
        return 0;
    }
    return sn > 0 && p[0] == s[0] && ref_match(p + 1, pn - 1, s + 1, sn - 1);
}

/* The one-pass matcher (segments found greedily by KMP) agrees with the
 * definition on every small pattern and path over a two-letter alphabet. */
static void test_wildcard_match_agrees_with_reference(void **state)
{
    static const char alpha[] = "ab*";
    uint32_t x = 12345;
    for (int iter = 0; iter < 50000; iter++) {
        char pat[12], path[16];
        size_t pn, sn;
        x = x * 1103515245u + 12345u;
        pn = 1 + (x >> 16) % 8;
        pat[0] = '/';
        for (size_t i = 1; i < pn; i++) {
            x = x * 1103515245u + 12345u;
            pat[i] = alpha[(x >> 16) % 3];
        }
        x = x * 1103515245u + 12345u;
        if ((x >> 16) % 3 == 0)
            pat[pn++] = '$';
        pat[pn] = '\0';
        x = x * 1103515245u + 12345u;
        sn = 1 + (x >> 16) % 12;
        path[0] = '/';
        for (size_t i = 1; i < sn; i++) {
            x = x * 1103515245u + 12345u;
            path[i] = alpha[(x >> 16) % 2];
        }
        path[sn] = '\0';
        if (crawl_robots_match(pat, pn, path) != ref_match(pat, pn, path, sn))
            fail_msg("pattern '%s' path '%s': expected %d", pat, path,
                     ref_match(pat, pn, path, sn));
    }
}

/* A 480 KB robots.txt of wildcard rules built to make a backtracking
 * matcher work O(pattern x path) per rule, against long paths: the work
 * per path is counted (octet comparisons), never timed. */
static void test_hostile_wildcards_bounded_work(void **state)
{
    const size_t target = 480 * 1024;
    char *txt = malloc(target + 8192), *path = malloc(8200);
    char rule[64], longest[128];
    size_t len = 0, nrules = 0;
    uint64_t steps = 0;
    assert_non_null(txt);
    assert_non_null(path);
    len += (size_t)sprintf(txt + len, "User-agent: *\nAllow: /\n");
    /* The longest rule: a path it matches is decided by it alone. */
    snprintf(longest, sizeof longest, "/%s",
             "specific/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    len += (size_t)sprintf(txt + len, "Disallow: %s\n", longest);
    while (len < target) {
        /* Rules "/", "*", k times "a", "ba": a backtracking matcher tries
         * the k a's at every place of a path of a's. */
        int k = 10 + (int)(nrules % 31), o = 0;
        o += snprintf(rule + o, sizeof rule - (size_t)o, "/*");
        for (int i = 0; i < k; i++)
            rule[o++] = 'a';
        snprintf(rule + o, sizeof rule - (size_t)o, "ba");
        len += (size_t)sprintf(txt + len, "Disallow: %s\n", rule);
        nrules++;
    }
    assert_true(len < CRAWL_ROBOTS_MAX_BYTES);
    crawl_robots *r = crawl_robots_parse(txt, len, 200, "witpipe");
    assert_non_null(r);

    /* A path of 8000 octets that every rule nearly matches. */
    path[0] = '/';
    memset(path + 1, 'a', 7998);
    path[7999] = 'b';
    path[8000] = '\0';
    int v = crawl_robots_allowed_counted(r, path, &steps);
    /* The work is capped (a backtracking matcher would make about
     * nrules x 8000 x 25 = 2 x 10^9 comparisons here), and a path that
     * costs more than the cap is refused: the polite answer. */
    assert_true(steps <= (uint64_t)CRAWL_ROBOTS_MATCH_BUDGET + 4 * 8000 + nrules + 64);
    assert_false(v);

    /* A 300-octet path: every rule is tried, each in one pass (no rule
     * matches: allowed by "Allow: /"), within nrules x (2 x 300 + 64). */
    path[300] = '\0';
    path[299] = 'b';
    v = crawl_robots_allowed_counted(r, path, &steps);
    assert_true(v);
    assert_true(steps <= (uint64_t)nrules * (2 * 300 + 64) + 300 + 64);
    assert_true(steps >= (uint64_t)nrules * 300); /* they were all read */

    /* The most specific rule first: one comparison of its length decides. */
    snprintf(path, 8200, "%s/and/more", longest);
    v = crawl_robots_allowed_counted(r, path, &steps);
    assert_false(v);
    assert_true(steps <= 2 * strlen(path) + 64);
    /* A rule needing an octet the path lacks is dismissed unread. */
    memset(path + 1, 'c', 7998);
    path[7999] = '\0';
    v = crawl_robots_allowed_counted(r, path, &steps);
    assert_true(v);
    assert_true(steps <= 8000 + nrules + 64);
    crawl_robots_free(r);
    free(txt);
    free(path);
}

/* 2026-01-01T00:00:00Z: the table's past dates are before it, its future
 * ones after it. */
#define TABLE_NOW INT64_C(1767225600)

static const char *flags_str(unsigned f, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < 32; i++)
        if ((f & (1u << i)) && net_robots_flag_name(1u << i) != NULL)
            snprintf(buf + strlen(buf), n - strlen(buf), "%s ", net_robots_flag_name(1u << i));
    return buf;
}

/* Every case of the table through the parser: the flags, the fetch
 * decision with the default directive list, and the decision again with
 * the wall clock (the table's dates are far from any day it runs on). */
static void test_directive_table(void **state)
{
    tl_robots_case *cases = NULL;
    int n = tl_robots_cases(&cases);
    char a[128], b[128], hit[NET_DIRECTIVE_MAX];
    assert_true(n >= 30);
    for (int i = 0; i < n; i++) {
        const tl_robots_case *c = &cases[i];
        unsigned got = net_robots_parse(c->value, TL_ROBOTS_TOKEN, TABLE_NOW);
        if (got != c->flags)
            fail_msg("robots_cases.tsv:%d '%s': got [%s] want [%s]", c->line, c->value,
                     flags_str(got, a, sizeof a), flags_str(c->flags, b, sizeof b));
        hit[0] = '\0';
        int out = net_robots_optout(got, NET_DEFAULT_DIRECTIVES, hit);
        assert_int_equal(out, c->opt_out);
        assert_int_equal(
            net_robots_tag_optout(c->value, TL_ROBOTS_TOKEN, NET_DEFAULT_DIRECTIVES, hit),
            c->opt_out);
        if (out) /* the hit is a directive the value holds, as written */
            assert_non_null(strcasestr(c->value, hit));
        /* A token no case names: a case that names no witpipe scope reads
         * the same for it (scoping is by name, not by position). */
        unsigned other = net_robots_parse(c->value, "nobody", TABLE_NOW);
        if (strstr(c->value, "witpipe") == NULL && strstr(c->value, "WitPipe") == NULL)
            assert_int_equal(other, got);
    }
    free(cases);
}

/* The crawl's page flags come from the same parser: noai for the AI and
 * image directives, noindex for noindex / none / expired, nofollow. */
static void test_crawl_flags_follow_the_table(void **state)
{
    tl_robots_case *cases = NULL;
    int n = tl_robots_cases(&cases);
    crawl_opts o;
    crawl_opts_init(&o);
    assert_string_equal(o.token, TL_ROBOTS_TOKEN);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        const tl_robots_case *c = &cases[i];
        int noai = 0, noindex = 0, nofollow = 0;
        crawl_robots_directives(c->value, &o, &noai, &noindex, &nofollow);
        if ((noai || noindex) != c->opt_out)
            fail_msg("robots_cases.tsv:%d '%s': crawl opt-out %d", c->line, c->value,
                     noai || noindex);
        assert_int_equal(nofollow, (c->flags & NET_ROBOTS_ANY_NOFOLLOW) != 0);
    }
    free(cases);
}

/* The directive list narrows fetch's decision: none and an expired
 * unavailable_after follow noindex. */
static void test_directive_list(void **state)
{
    char hit[NET_DIRECTIVE_MAX];
    assert_int_equal(net_robots_optout(NET_ROBOTS_NONE, "noai,noindex", hit), 1);
    assert_string_equal(hit, "none");
    assert_int_equal(net_robots_optout(NET_ROBOTS_EXPIRED, "noindex", hit), 1);
    assert_string_equal(hit, "unavailable_after");
    assert_int_equal(net_robots_optout(NET_ROBOTS_NONE | NET_ROBOTS_EXPIRED, "noai", hit), 0);
    assert_int_equal(net_robots_optout(NET_ROBOTS_NOFOLLOW, NET_DEFAULT_DIRECTIVES, hit), 0);
    assert_int_equal(net_robots_optout(NET_ROBOTS_NOAI, "", hit), 0);
    assert_int_equal(net_robots_optout(NET_ROBOTS_NOAI | NET_ROBOTS_NOINDEX, "noindex", hit), 1);
    assert_string_equal(hit, "noindex");
    /* The moment itself: a date equal to now has passed. */
    assert_int_equal(net_robots_parse("unavailable_after: 2026-01-01T00:00:00Z", "w", TABLE_NOW),
                     NET_ROBOTS_EXPIRED);
    assert_int_equal(net_robots_parse("unavailable_after: 2026-01-01T00:00:01Z", "w", TABLE_NOW),
                     0);
    assert_int_equal(
        net_robots_parse("unavailable_after: 2026-01-01T01:00:00+02:00", "w", TABLE_NOW),
        NET_ROBOTS_EXPIRED);
    assert_int_equal(net_robots_parse(NULL, "w", TABLE_NOW), 0);
    /* <meta name=...>: robots and our tokens. */
    assert_true(net_robots_meta_name("Robots", "witpipe"));
    assert_true(net_robots_meta_name(" WITPIPE ", "witpipe,mybot"));
    assert_true(net_robots_meta_name("mybot", "witpipe,mybot"));
    assert_false(net_robots_meta_name("googlebot", "witpipe"));
    assert_false(net_robots_meta_name(NULL, "witpipe"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_5_1_foobot),
        cmocka_unit_test(test_rfc_5_1_barbot_bazbot),
        cmocka_unit_test(test_rfc_5_1_quxbot_and_others),
        cmocka_unit_test(test_rfc_5_2_longest_match),
        cmocka_unit_test(test_allow_wins_ties),
        cmocka_unit_test(test_rfc_encoding_and_special_chars),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_merging_and_syntax),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_wildcard_match_agrees_with_reference),
        cmocka_unit_test(test_hostile_wildcards_bounded_work),
        cmocka_unit_test(test_directive_table),
        cmocka_unit_test(test_crawl_flags_follow_the_table),
        cmocka_unit_test(test_directive_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
