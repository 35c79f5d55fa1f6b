/*
 * tests/unit/test_crawl_live.c: `witpipe crawl --seeds` against fixture
 * sites served on 127.0.0.1 (tests/lib/site.c), and `wget --warc-file`
 * over the same site fed to `witpipe crawl --warc`, whose pairs must equal
 * the live crawl's.
 *
 * Site A has every extraction case (relative and base-href URLs, srcset,
 * lazy attributes, picture, figcaption, entities, a windows-1252 page, a
 * page with a broken charset, 10000 nested tables, a 50 MB page, nav icons
 * on every page, meta robots noai and nofollow, a redirect loop, links out
 * of scope) and RFC 9309's example robots.txt. Site B answers robots.txt
 * with 503, site C has none (404) and a noindex page, site D has a robots.txt
 * larger than 500 KiB. Site F redirects: into a robots.txt-disallowed path,
 * to another origin whose robots.txt refuses everything, out of scope, in
 * a chain longer than five hops, to itself, and to a plain page. Site R
 * serves one page per case of the shared robots table
 * (tests/data/robots_cases.tsv) with that X-Robots-Tag. Four more sites,
 * reached as 127.0.0.1, localhost, a.localhost and b.localhost (all on
 * 127.0.0.1), are crawled whole and in 1, 2 and 3 parts (--part I/N, by
 * site).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/net.h"
#include "tests/lib/robots_cases.h"
#include "tests/lib/site.h"
#include "tests/lib/testlib.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256];
static tl_site *site_a, *site_b, *site_c, *site_d, *site_e, *site_f;

static void put(const char *site, const char *rel, const char *data, size_t len)
{
    char path[1024], *slash;
    snprintf(path, sizeof path, "%s/%s/%s", root, site, rel);
    for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    assert_int_equal(tl_write(path, data, len), 0);
}

static void puts_(const char *site, const char *rel, const char *text)
{
    put(site, rel, text, strlen(text));
}

#define NAV "<nav><a href=\"/\"><img src=\"/icons/home.png\" alt=\"Home\"></a></nav>"

static void build_site_a(void)
{
    puts_("a", "robots.txt",
          "User-Agent: *\n"
          "Disallow: *.gif$\n"
          "Disallow: /example/\n"
          "Disallow: /private/\n"
          "Allow: /publications/\n"
          "\n"
          "User-Agent: foobot\n"
          "Disallow:/\n"
          "Allow:/example/page.html\n");
    puts_("a", "index.html",
          "<html><head><title>Fixture site</title></head><body>" NAV
          "<a href=\"base.html\">base</a> <a href=\"srcset.html\">srcset</a>"
          "<a href=\"lazy.html\">lazy</a> <a href=\"figure.html\">figure</a>"
          "<a href=\"entities.html\">entities</a> <a href=\"cp1252.html\">cp1252</a>"
          "<a href=\"broken-charset.html\">broken</a> <a href=\"deep.html\">deep</a>"
          "<a href=\"big.html\">big</a> <a href=\"loop.html\">loop</a>"
          "<a href=\"noai.html\">noai</a> <a href=\"nofollow.html\">nofollow</a>"
          "<a href=\"/example/page.html\">disallowed</a> <a href=\"/private/secret.html\">x</a>"
          "<a href=\"/publications/pub.html#frag\">pub</a>"
          "<a href=\"http://out-of-scope.invalid/page.html\">elsewhere</a>"
          "<a href=\"HTTP://127.0.0.1:PORT/base.html\">same page, other spelling</a>"
          "<img src=\"/img/index.jpg\" alt=\"Index picture\"></body></html>");
    puts_("a", "base.html",
          "<html><head><title>Base</title><base href=\"sub/dir/\"></head><body>" NAV
          "<img src=\"rel.jpg\" alt=\"Relative to base\">"
          "<img src=\"/abs.jpg\" alt=\"Absolute path\">"
          "<img src=\"../up.jpg\" alt=\"Dot dot\"></body></html>");
    puts_("a", "srcset.html",
          "<html><body>" NAV
          "<img src=\"small.jpg\" srcset=\"small.jpg 300w, large.jpg 1200w, mid.jpg 600w\" "
          "alt=\"Largest candidate\">"
          "<picture><source srcset=\"pic-2x.webp 2x, pic-1x.webp 1x\">"
          "<img src=\"pic.jpg\" alt=\"Picture element\"></picture></body></html>");
    puts_("a", "lazy.html",
          "<html><body>" NAV
          "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" data-src=\"/lazy1.jpg\" "
          "alt=\"Lazy data-src\">"
          "<img src=\"/blank.png\" data-original=\"/lazy2.jpg\" alt=\"Lazy data-original\">"
          "<img data-srcset=\"/lz-s.jpg 100w, /lz-l.jpg 900w\" alt=\"Lazy srcset\">"
          "<img src=\"/pixel.jpg\" width=\"1\" height=\"1\" alt=\"tracking\">"
          "<img src=\"/logo.svg\" alt=\"Vector logo\">"
          "<img src=\"data:image/png;base64,AAAA\" alt=\"Inline\"></body></html>");
    puts_("a", "figure.html",
          "<html><body>" NAV
          "<figure><img src=\"/fig.jpg\" alt=\"Figure alt\" title=\"Figure title\">"
          "<figcaption>A <em>captioned</em> figure</figcaption></figure></body></html>");
    puts_("a", "entities.html",
          "<html><head><meta charset=\"utf-8\"></head><body>" NAV
          "<img src=\"/ent.jpg\" alt=\"Caf&eacute; &amp; cr&#232;me&nbsp;br&#xFB;l&eacute;e\t\n"
          "  \xE2\x80\x8B!\"></body></html>");
    {
        const char cp[] = "<html><body>" NAV "<img src=\"/cp.jpg\" alt=\"\x93Smart\x94 quotes "
                          "\x96 caf\xE9\"></body></html>";
        put("a", "cp1252.html", cp, sizeof cp - 1);
        const char bc[] = "<html><head><meta charset=\"x-nonexistent-9\"></head><body>" NAV
                          "<img src=\"/bc.jpg\" alt=\"Na\xEFve fallback\"></body></html>";
        put("a", "broken-charset.html", bc, sizeof bc - 1);
    }
    {
        size_t cap = 10000 * 34 + 4096, n = 0;
        char *deep = malloc(cap);
        assert_non_null(deep);
        n += (size_t)snprintf(deep + n, cap - n, "<html><body>" NAV);
        for (int i = 0; i < 10000; i++)
            n += (size_t)snprintf(deep + n, cap - n, "<table><tr><td>");
        n += (size_t)snprintf(deep + n, cap - n, "<img src=\"/deep.jpg\" alt=\"Deep inside\">");
        for (int i = 0; i < 10000; i++)
            n += (size_t)snprintf(deep + n, cap - n, "</td></tr></table>");
        put("a", "deep.html", deep, n);
        free(deep);
    }
    puts_("a", "big.html.bigmb", "50");
    puts_("a", "loop.html.location", "/loop.html");
    puts_("a", "noai.html",
          "<html><head><meta name=\"robots\" content=\"noai\"></head><body>" NAV
          "<img src=\"/optout.jpg\" alt=\"Opted out\"></body></html>");
    puts_("a", "nofollow.html",
          "<html><head><meta name=\"robots\" content=\"nofollow\"></head><body>" NAV
          "<img src=\"/nf.jpg\" alt=\"On a nofollow page\">"
          "<a href=\"/only-from-nofollow.html\">x</a></body></html>");
    puts_("a", "only-from-nofollow.html", "<img src=\"/never.jpg\" alt=\"Never\">");
    puts_("a", "example/page.html", "<img src=\"/ex.jpg\" alt=\"Disallowed\">");
    puts_("a", "private/secret.html", "<img src=\"/secret.jpg\" alt=\"Secret\">");
    puts_("a", "publications/pub.html",
          "<html><body>" NAV "<img src=\"p.jpg\" alt=\"Publication\"></body></html>");
}

static void build_other_sites(void)
{
    puts_("b", "robots.txt", "User-agent: *\nAllow: /\n");
    puts_("b", "robots.txt.status", "503");
    puts_("b", "index.html", "<img src=\"/b.jpg\" alt=\"B image\">");
    puts_("c", "index.html", "<img src=\"/c.jpg\" alt=\"C image\"><a href=\"noindex.html\">n</a>");
    puts_("c", "noindex.html",
          "<meta name=\"robots\" content=\"noindex\">"
          "<img src=\"/hidden.jpg\" alt=\"Not indexed\">"
          "<a href=\"after.html\">after</a>");
    puts_("c", "after.html", "<img src=\"/after.jpg\" alt=\"After noindex\">");
    {
        size_t n = 600 * 1024, off = 0;
        char *big = malloc(n + 256);
        assert_non_null(big);
        off += (size_t)sprintf(big, "User-agent: *\nDisallow: /blocked/\nCrawl-delay: 0.05\n");
        while (off < n) {
            memcpy(big + off, "# padding padding padding padding padding padding padding\n", 58);
            off += 58;
        }
        off += (size_t)sprintf(big + off, "Disallow: /late/\n");
        put("d", "robots.txt", big, off);
        free(big);
    }
    puts_("d", "index.html", "<a href=\"/blocked/x.html\">x</a><a href=\"/late/y.html\">y</a>");
    puts_("d", "blocked/x.html", "<img src=\"/x.jpg\" alt=\"Blocked\">");
    puts_("d", "late/y.html", "<img src=\"/y.jpg\" alt=\"Beyond 500 KiB\">");
    /* E: a slow site for the kill -9 test: a chain of 12 pages. */
    for (int i = 0; i < 12; i++) {
        char name[64], html[256];
        snprintf(name, sizeof name, "p%d.html", i);
        snprintf(html, sizeof html,
                 "<img src=\"/e%d.jpg\" alt=\"Slow %d\"><a href=\"p%d.html\">n</a>", i, i, i + 1);
        puts_("e", name, html);
        snprintf(name, sizeof name, "p%d.html.delayms", i);
        puts_("e", name, "150");
    }
}

static void build_site_f(void)
{
    puts_("f", "robots.txt", "User-agent: *\nDisallow: /private/\n");
    puts_("f", "index.html",
          "<html><body><img src=\"/f.jpg\" alt=\"F home\">"
          "<a href=\"go-private.html\">1</a><a href=\"moved.html\">2</a>"
          "<a href=\"chain1.html\">3</a><a href=\"self.html\">4</a>"
          "<a href=\"away.html\">5</a><a href=\"to-b.html\">6</a></body></html>");
    puts_("f", "go-private.html.location", "/private/secret.html");
    puts_("f", "private/secret.html", "<img src=\"/s.jpg\" alt=\"Behind a redirect\">");
    puts_("f", "moved.html.location", "/moved-here.html");
    puts_("f", "moved-here.html", "<img src=\"/moved.jpg\" alt=\"Moved here\">");
    for (int i = 1; i <= 7; i++) {
        char name[64], to[64];
        snprintf(name, sizeof name, "chain%d.html.location", i);
        snprintf(to, sizeof to, "chain%d.html", i + 1); /* relative Location */
        puts_("f", name, to);
    }
    puts_("f", "chain8.html", "<img src=\"/end.jpg\" alt=\"End of chain\">");
    puts_("f", "self.html.location", "/self.html");
    puts_("f", "away.html.location", "http://out-of-scope.invalid/x.html");
    /* to-b.html.location is written once B's port is known. */
}

/* The port is only known once A runs: index.html links to itself with an
 * upper-case scheme to check normalisation. */
static void fix_index_port(void)
{
    char path[1024];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/a/index.html", root);
    char *s = tl_slurp(path, &n), *p;
    assert_non_null(s);
    p = strstr(s, "PORT");
    assert_non_null(p);
    char port[8];
    snprintf(port, sizeof port, "%d", tl_site_port(site_a));
    char *out = malloc(n + 16);
    size_t k = (size_t)(p - s);
    memcpy(out, s, k);
    memcpy(out + k, port, strlen(port));
    memcpy(out + k + strlen(port), p + 4, n - k - 4);
    assert_int_equal(tl_write(path, out, n - 4 + strlen(port)), 0);
    free(out);
    free(s);
}

static int setup(void **state)
{
    char *d = tl_mkdtemp();
    if (d == NULL)
        return -1;
    snprintf(root, sizeof root, "%s", d);
    build_site_a();
    build_other_sites();
    build_site_f();
    char p[1024];
    snprintf(p, sizeof p, "%s/a", root);
    site_a = tl_site_start(p);
    snprintf(p, sizeof p, "%s/b", root);
    site_b = tl_site_start(p);
    snprintf(p, sizeof p, "%s/c", root);
    site_c = tl_site_start(p);
    snprintf(p, sizeof p, "%s/d", root);
    site_d = tl_site_start(p);
    snprintf(p, sizeof p, "%s/e", root);
    site_e = tl_site_start(p);
    snprintf(p, sizeof p, "%s/f", root);
    site_f = tl_site_start(p);
    if (!site_a || !site_b || !site_c || !site_d || !site_e || !site_f)
        return -1;
    fix_index_port();
    char to_b[128];
    snprintf(to_b, sizeof to_b, "http://127.0.0.1:%d/from-f.html", tl_site_port(site_b));
    puts_("f", "to-b.html.location", to_b);
    puts_("b", "from-f.html", "<img src=\"/fb.jpg\" alt=\"B via F\">");
    return 0;
}

static int teardown(void **state)
{
    tl_site_stop(site_a);
    tl_site_stop(site_b);
    tl_site_stop(site_c);
    tl_site_stop(site_d);
    tl_site_stop(site_e);
    tl_site_stop(site_f);
    tl_rmtree(root);
    return 0;
}

/* Rows of sql (first column) as "value\n" lines in its order (malloc'ed). */
static char *rows(const char *corpus, const char *sql)
{
    char db[1024];
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    size_t cap = 1 << 12, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    snprintf(db, sizeof db, "%s/catalog.db", corpus);
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("bad SQL %s: %s", sql, sqlite3_errmsg(h));
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        size_t k = strlen(v);
        if (n + k + 2 > cap) {
            cap = 2 * (n + k + 2);
            out = realloc(out, cap);
            assert_non_null(out);
        }
        memcpy(out + n, v, k);
        out[n + k] = '\n';
        n += k + 1;
        out[n] = '\0';
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

/* All pairs as sorted "url\ttext\n" lines (malloc'ed). */
static char *pair_list(const char *corpus)
{
    return rows(corpus, "SELECT i.url || char(9) || p.text FROM pairs p JOIN images i "
                        "ON i.id = p.image_id ORDER BY 1");
}

static int has_pair(const char *list, const char *url_path, const char *text)
{
    char needle[1024];
    snprintf(needle, sizeof needle, ":%d%s\t%s\n", tl_site_port(site_a), url_path, text);
    return strstr(list, needle) != NULL;
}

static void new_corpus(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
    assert_int_equal(tl_sh("'%s' init '%s' >/dev/null 2>&1", tl_witpipe_bin(), out), 0);
}

static void crawl_seeds(const char *corpus, const char *seeds, const char *extra)
{
    char seedfile[1024];
    snprintf(seedfile, sizeof seedfile, "%s.seeds", corpus);
    assert_int_equal(tl_write(seedfile, seeds, strlen(seeds)), 0);
    assert_int_equal(tl_sh("'%s' -C '%s' -q crawl --seeds '%s' --allow-net 127.0.0.1 --delay 0 "
                           "--retries 0 --timeout 20 --max-depth 3 %s",
                           tl_witpipe_bin(), corpus, seedfile, extra ? extra : ""),
                     0);
}

static void test_live_crawl_of_the_fixture_sites(void **state)
{
    char corpus[1024], seeds[1024];
    int pa = tl_site_port(site_a);
    new_corpus(corpus, sizeof corpus, "live");
    snprintf(seeds, sizeof seeds,
             "# fixture sites\nhttp://127.0.0.1:%d/\nhttp://127.0.0.1:%d/\n"
             "http://127.0.0.1:%d/\nhttp://127.0.0.1:%d/\n",
             pa, tl_site_port(site_b), tl_site_port(site_c), tl_site_port(site_d));
    crawl_seeds(corpus, seeds, NULL);
    char *pairs = pair_list(corpus);
    /* Extraction cases. */
    assert_true(has_pair(pairs, "/img/index.jpg", "Index picture"));
    assert_true(has_pair(pairs, "/sub/dir/rel.jpg", "Relative to base"));
    assert_true(has_pair(pairs, "/abs.jpg", "Absolute path"));
    assert_true(has_pair(pairs, "/sub/up.jpg", "Dot dot"));
    assert_true(has_pair(pairs, "/large.jpg", "Largest candidate"));
    assert_true(has_pair(pairs, "/pic-2x.webp", "Picture element"));
    assert_true(has_pair(pairs, "/lazy1.jpg", "Lazy data-src"));
    assert_true(has_pair(pairs, "/lazy2.jpg", "Lazy data-original"));
    assert_true(has_pair(pairs, "/lz-l.jpg", "Lazy srcset"));
    assert_true(has_pair(pairs, "/fig.jpg", "Figure alt"));
    assert_true(has_pair(pairs, "/ent.jpg",
                         "Caf\xC3\xA9 & cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
                         "e !"));
    assert_true(has_pair(pairs, "/cp.jpg",
                         "\xE2\x80\x9CSmart\xE2\x80\x9D quotes \xE2\x80\x93 caf\xC3\xA9"));
    assert_true(has_pair(pairs, "/bc.jpg", "Na\xC3\xAFve fallback"));
    assert_true(has_pair(pairs, "/deep.jpg", "Deep inside"));
    assert_true(has_pair(pairs, "/nf.jpg", "On a nofollow page"));
    assert_true(has_pair(pairs, "/publications/p.jpg", "Publication"));
    /* Dropped: pixel, svg, data URIs, opted out, robots, nofollow, big. */
    assert_null(strstr(pairs, "tracking"));
    assert_null(strstr(pairs, "Vector logo"));
    assert_null(strstr(pairs, "Inline"));
    assert_null(strstr(pairs, "Opted out"));
    assert_null(strstr(pairs, "Disallowed"));
    assert_null(strstr(pairs, "Secret"));
    assert_null(strstr(pairs, "Never"));
    assert_null(strstr(pairs, "in a huge page"));
    /* Other sites: 503 robots.txt disallows all, 404 allows all, noindex
     * gives no pairs but its links are followed, robots.txt past 500 KiB is
     * not read. */
    assert_null(strstr(pairs, "B image"));
    assert_non_null(strstr(pairs, "C image"));
    assert_null(strstr(pairs, "Not indexed"));
    assert_non_null(strstr(pairs, "After noindex"));
    assert_null(strstr(pairs, "Blocked"));
    assert_non_null(strstr(pairs, "Beyond 500 KiB"));
    free(pairs);
    /* The nav icon: one pair, seen on many pages. */
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE text = 'Home'"), 1);
    assert_true(tl_q_int(corpus, "SELECT count(*) FROM pair_seen s JOIN pairs p ON p.id = "
                                 "s.pair_id WHERE p.text = 'Home'") >= 8);
    /* What the servers saw. */
    assert_int_equal(tl_site_hits(site_b, "/"), 0);
    assert_int_equal(tl_site_hits(site_b, "/robots.txt"), 1);
    assert_int_equal(tl_site_hits(site_a, "/private/secret.html"), 0);
    assert_int_equal(tl_site_hits(site_a, "/example/page.html"), 0);
    assert_int_equal(tl_site_hits(site_a, "/only-from-nofollow.html"), 0);
    assert_int_equal(tl_site_hits(site_a, "/base.html"), 1); /* two spellings, one fetch */
    assert_int_equal(tl_site_hits(site_a, "/robots.txt"), 1);
    assert_int_equal(tl_site_hits(site_d, "/blocked/x.html"), 0);
    assert_int_equal(tl_site_hits(site_d, "/late/y.html"), 1);
    /* Page states. */
    /* A redirect to itself: fetched once, the target already known. */
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%/loop.html' "
                                      "AND state = 'redirect' AND http_status = 302"),
                     1);
    assert_int_equal(tl_site_hits(site_a, "/loop.html"), 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%/big.html' "
                                      "AND state = 'error' AND error_class = 'too_large'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%.invalid%'"), 0);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE error_class = 'robots'"),
                     4);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'pending'"), 0);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM robots"), 4);
    /* A second run resumes: nothing left, nothing fetched again. */
    long before = tl_site_hits(site_a, "/");
    crawl_seeds(corpus, seeds, NULL);
    assert_int_equal(tl_site_hits(site_a, "/"), before);
    assert_int_equal(tl_site_hits(site_a, "/robots.txt"), 1); /* cached in the catalog */
}

static int64_t f_page(const char *corpus, const char *path, const char *what)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM pages WHERE url = 'http://127.0.0.1:%d%s'", what,
             tl_site_port(site_f), path);
    return tl_q_int(corpus, sql);
}

/* Pages are fetched without following redirects: each target joins the
 * frontier, so robots.txt, scope and the hop limit apply to it. */
static void test_redirects_are_vetted_like_links(void **state)
{
    char corpus[1024], seeds[256];
    long b_robots = tl_site_hits(site_b, "/robots.txt");
    snprintf(seeds, sizeof seeds, "http://127.0.0.1:%d/\n", tl_site_port(site_f));
    new_corpus(corpus, sizeof corpus, "redirects");
    crawl_seeds(corpus, seeds, NULL);
    char *pairs = pair_list(corpus);
    /* Into a disallowed path: the target is refused by robots.txt, and the
     * server never sees a request for it. */
    assert_int_equal(tl_site_hits(site_f, "/private/secret.html"), 0);
    assert_null(strstr(pairs, "Behind a redirect"));
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE "
                                      "'%/go-private.html' AND state = 'redirect'"),
                     1);
    assert_int_equal(f_page(corpus, "/private/secret.html", "count(*)"), 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE "
                                      "'%/private/secret.html' AND error_class = 'robots'"),
                     1);
    /* Another origin: its robots.txt (503 = disallow all) is consulted
     * first, so the target is not fetched. */
    assert_true(tl_site_hits(site_b, "/robots.txt") >= b_robots);
    assert_int_equal(tl_site_hits(site_b, "/from-f.html"), 0);
    assert_null(strstr(pairs, "B via F"));
    /* A plain move: the target is crawled, one hop recorded. */
    assert_non_null(strstr(pairs, "/moved.jpg\tMoved here"));
    assert_int_equal(f_page(corpus, "/moved.html", "http_status"), 302);
    assert_int_equal(f_page(corpus, "/moved-here.html", "redirects"), 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE origin LIKE "
                                      "'%/moved-here.html' AND text = 'Moved here'"),
                     1);
    /* A chain: five hops are followed, the sixth is refused. */
    assert_int_equal(f_page(corpus, "/chain6.html", "redirects"), 5);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%/chain6.html' "
                                      "AND state = 'error' AND error_class = 'too_many_redirects'"),
                     1);
    assert_int_equal(tl_site_hits(site_f, "/chain6.html"), 1);
    assert_int_equal(tl_site_hits(site_f, "/chain7.html"), 0);
    assert_null(strstr(pairs, "End of chain"));
    /* To itself: fetched once. Out of scope: recorded, never queued. */
    assert_int_equal(tl_site_hits(site_f, "/self.html"), 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%/away.html' "
                                      "AND state = 'redirect' AND error_class = 'out_of_scope'"),
                     1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%.invalid%'"), 0);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'pending'"), 0);
    assert_non_null(strstr(pairs, "F home"));
    free(pairs);
}

static void test_max_pages_and_depth(void **state)
{
    char corpus[1024], seeds[256];
    snprintf(seeds, sizeof seeds, "http://127.0.0.1:%d/\n", tl_site_port(site_a));
    new_corpus(corpus, sizeof corpus, "limited");
    crawl_seeds(corpus, seeds, "--max-pages 3");
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state != 'pending'"), 3);
    new_corpus(corpus, sizeof corpus, "shallow");
    crawl_seeds(corpus, seeds, "--max-depth 0");
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages"), 1);
    new_corpus(corpus, sizeof corpus, "excluded");
    crawl_seeds(corpus, seeds, "--exclude lazy --include .html --include 127.0.0.1");
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%lazy%'"), 0);
    assert_true(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE url LIKE '%figure.html'") == 1);
}

/* kill -9 in the middle of a crawl, then the same command again: every
 * page ends up fetched, none twice except the one in flight at the kill,
 * and every pair is there. */
static void test_kill_9_and_resume(void **state)
{
    char corpus[1024], seeds[256], seedfile[1100];
    new_corpus(corpus, sizeof corpus, "killed");
    snprintf(seeds, sizeof seeds, "http://127.0.0.1:%d/p0.html\n", tl_site_port(site_e));
    snprintf(seedfile, sizeof seedfile, "%s.seeds", corpus);
    assert_int_equal(tl_write(seedfile, seeds, strlen(seeds)), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(tl_witpipe_bin(), "witpipe", "-C", corpus, "-q", "crawl", "--seeds", seedfile,
              "--allow-net", "127.0.0.1", "--delay", "0", "--retries", "0", "--max-depth", "20",
              (char *)NULL);
        _exit(127);
    }
    /* Wait (up to 60 s) until some pages are committed, then kill -9. */
    int64_t done = 0;
    for (int i = 0; i < 600 && done < 4; i++) {
        usleep(100 * 1000);
        char db[1100];
        snprintf(db, sizeof db, "%s/catalog.db", corpus);
        struct stat st;
        if (stat(db, &st) == 0)
            done = tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'ok'");
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_true(done >= 4);
    int64_t before = tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'ok'");
    assert_true(before < 12);
    /* Pages are taken in order (a chain), so the committed ones are a
     * prefix p0..p(before-1): those must never be fetched again. */
    char committed[64];
    snprintf(committed, sizeof committed, "%%/p%d.html", (int)before - 1);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pages WHERE state = 'ok' AND url LIKE '%s'",
             committed);
    assert_int_equal(tl_q_int(corpus, sql), 1);
    /* The same command again finishes the crawl. */
    assert_int_equal(tl_sh("'%s' -C '%s' -q crawl --seeds '%s' --allow-net 127.0.0.1 --delay 0 "
                           "--retries 0 --max-depth 20",
                           tl_witpipe_bin(), corpus, seedfile),
                     0);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'ok'"), 12);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs WHERE text LIKE 'Slow %'"), 12);
    long total = 0;
    for (int i = 0; i < 12; i++) {
        char path[64];
        snprintf(path, sizeof path, "/p%d.html", i);
        long h = tl_site_hits(site_e, path);
        if (i < before)
            assert_int_equal(h, 1); /* committed before the kill: not again */
        else
            assert_true(h >= 1 && h <= 2); /* in the uncommitted window: maybe again */
        total += h;
    }
    assert_true(total <= 12 + (12 - before));
}

/* wget --warc-file over site A, then crawl --warc: the same pairs as the
 * live crawl of site A. */
static void test_wget_warc_equals_live_crawl(void **state)
{
    char live[1024], fromwarc[1024], seeds[256], warc[1024];
    int pa = tl_site_port(site_a);
    if (tl_sh("wget --version >/dev/null 2>&1") != 0) {
        printf("SKIP: !!! wget not installed: WARC equality not tested !!!\n");
        skip();
    }
    snprintf(seeds, sizeof seeds, "http://127.0.0.1:%d/\n", pa);
    new_corpus(live, sizeof live, "live-a");
    crawl_seeds(live, seeds, NULL);
    snprintf(warc, sizeof warc, "%s/site", root);
    /* Recursive, robots.txt honoured, never off 127.0.0.1 (no -H), no
     * proxy; images rejected by suffix so only pages are fetched. */
    tl_sh("cd '%s' && wget -q -r -l 3 -e robots=on --no-proxy --tries=1 --timeout=20 "
          "--no-warc-cdx --warc-file='%s' -nd -P '%s/dl' --delete-after "
          "-R '*.jpg,*.png,*.gif,*.svg,*.webp' 'http://127.0.0.1:%d/' >/dev/null 2>&1",
          root, warc, root, pa);
    snprintf(warc, sizeof warc, "%s/site.warc.gz", root);
    struct stat st;
    assert_int_equal(stat(warc, &st), 0);
    new_corpus(fromwarc, sizeof fromwarc, "from-warc");
    assert_int_equal(tl_sh("'%s' -C '%s' -q crawl --warc '%s'", tl_witpipe_bin(), fromwarc, warc),
                     0);
    char *a = pair_list(live), *b = pair_list(fromwarc);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "live:\n%s\nwarc:\n%s\n", a, b);
    assert_string_equal(a, b);
    assert_true(strlen(a) > 0);
    assert_true(tl_q_int(fromwarc, "SELECT count(*) FROM pairs") >= 15);
    free(a);
    free(b);
}

/* The shared table of robots cases through the live crawl: page N of a
 * fresh site answers with case N's X-Robots-Tag lines and shows one image
 * and one link. Its image becomes a pair exactly when the case does not
 * opt out, and its link is followed exactly when the case has no nofollow
 * (an opted-out page is never read at all). */
static void test_x_robots_tag_table_live(void **state)
{
    tl_robots_case *cases = NULL;
    int n = tl_robots_cases(&cases);
    char corpus[1024], seeds[256], rel[64], html[512], dir[1024];
    wp_buf index = {0};
    assert_true(n > 0);
    assert_int_equal(wp_buf_puts(&index, "<html><body>"), 0);
    for (int i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "case%d.html", i);
        assert_int_equal(wp_buf_printf(&index, "<a href=\"/%s\">%d</a>", rel, i), 0);
        snprintf(html, sizeof html,
                 "<html><body><img src=\"/r%d.jpg\" alt=\"Robots case %d\">"
                 "<a href=\"/followed%d.html\">on</a></body></html>",
                 i, i, i);
        puts_("r", rel, html);
        snprintf(rel, sizeof rel, "case%d.html.xrobots", i);
        puts_("r", rel, cases[i].value);
        snprintf(rel, sizeof rel, "followed%d.html", i);
        snprintf(html, sizeof html, "<img src=\"/f%d.jpg\" alt=\"Followed %d\">", i, i);
        puts_("r", rel, html);
    }
    assert_int_equal(wp_buf_puts(&index, "</body></html>"), 0);
    puts_("r", "index.html", index.data);
    wp_buf_free(&index);
    snprintf(dir, sizeof dir, "%s/r", root);
    tl_site *site = tl_site_start(dir);
    assert_non_null(site);
    snprintf(seeds, sizeof seeds, "http://127.0.0.1:%d/\n", tl_site_port(site));
    new_corpus(corpus, sizeof corpus, "robots-table");
    crawl_seeds(corpus, seeds, NULL);
    char *pairs = pair_list(corpus);
    for (int i = 0; i < n; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\tRobots case %d\n", i);
        if ((strstr(pairs, needle) == NULL) != cases[i].opt_out)
            fail_msg("robots_cases.tsv:%d '%s': live pair %s", cases[i].line, cases[i].value,
                     strstr(pairs, needle) ? "kept" : "dropped");
        snprintf(rel, sizeof rel, "/followed%d.html", i);
        int want = !cases[i].opt_out && !(cases[i].flags & NET_ROBOTS_ANY_NOFOLLOW);
        if ((tl_site_hits(site, rel) > 0) != want)
            fail_msg("robots_cases.tsv:%d '%s': link followed %ld times", cases[i].line,
                     cases[i].value, tl_site_hits(site, rel));
    }
    free(pairs);
    tl_site_stop(site);
    free(cases);
}

/* ---- --part I/N: a live crawl split by site ---------------------------- */

/* Four fixture sites on 127.0.0.1 reached by four host names, so that
 * their sites (registrable domain, else host) differ: 127.0.0.1 and
 * localhost have none (their host is the site), a.localhost and
 * b.localhost are registrable under the unknown TLD "localhost". Their
 * parts under the rule, FNV-1a 64 of the site mod N, + 1, worked out
 * apart from witpipe: */
static const char *const part_host[4] = {"127.0.0.1", "localhost", "a.localhost", "b.localhost"};
static const int part_of[4][4] = {/* [N][site] */
                                  {0, 0, 0, 0},
                                  {1, 1, 1, 1},
                                  {1, 1, 2, 1},
                                  {3, 2, 2, 1}};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of text sorted (in place; text is cut into its lines). */
static char *sorted_lines(char *text)
{
    char **v = NULL, *out, *save = NULL;
    size_t n = 0, len = 0;
    for (char *t = strtok_r(text, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save)) {
        v = realloc(v, (n + 1) * sizeof *v);
        assert_non_null(v);
        v[n++] = t;
        len += strlen(t) + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    out = calloc(1, len + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        strcat(out, v[i]);
        strcat(out, "\n");
    }
    free(v);
    return out;
}

/* The index in part_host of the host of url (http://HOST:PORT/...). */
static int host_index(const char *url)
{
    const char *h = strstr(url, "://");
    assert_non_null(h);
    h += 3;
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(part_host[i]);
        if (strncmp(h, part_host[i], k) == 0 && h[k] == ':')
            return i;
    }
    fail_msg("a page of no fixture site: %s", url);
    return -1;
}

static void check_part_params_and_links(const char *corpus, int i, int n, int64_t links)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE stage = 'crawl' AND status = 'done' AND "
             "json_extract(params, '$.part') = '%d/%d' AND "
             "json_extract(counts, '$.links_other_part') = %lld",
             i, n, (long long)links);
    assert_int_equal(tl_q_int(corpus, sql), 1);
}

/* Split in N = 1, 2, 3 parts, the crawl of four sites that link to each
 * other finds what one process finds, each page and pair in exactly one
 * part, every part fetching only its own sites (the servers' counts), less
 * exactly the documented cost: a.localhost's link to b.localhost's
 * orphan.html, the only way to that page, crosses parts for N = 2 and 3,
 * so no part fetches it, and it is counted in links_other_part. */
static void test_part_splits_the_crawl_by_site(void **state)
{
    tl_site *srv[4];
    char sroot[4][1024], seeds[1024] = "", corpus[1024];
    size_t off = 0;
    for (int s = 0; s < 4; s++) {
        snprintf(sroot[s], sizeof sroot[s], "%s/ps%d", root, s);
        mkdir(sroot[s], 0755);
    }
    for (int s = 0; s < 4; s++) {
        srv[s] = tl_site_start(sroot[s]);
        assert_non_null(srv[s]);
    }
    for (int s = 0; s < 4; s++) {
        char site[16], html[1024], next[256] = "", orphan[256] = "";
        int nx = (s + 1) % 4;
        snprintf(site, sizeof site, "ps%d", s);
        puts_(site, "robots.txt", "User-agent: *\nDisallow: /private/\n");
        snprintf(next, sizeof next, "<a href=\"http://%s:%d/\">next site</a>", part_host[nx],
                 tl_site_port(srv[nx]));
        if (s == 2) /* a.localhost -> b.localhost/orphan.html, linked from nowhere else */
            snprintf(orphan, sizeof orphan, "<a href=\"http://%s:%d/orphan.html\">orphan</a>",
                     part_host[3], tl_site_port(srv[3]));
        snprintf(html, sizeof html,
                 "<img src=\"/home.jpg\" alt=\"Home of site %d\"><a href=\"one.html\">1</a>"
                 "<a href=\"two.html\">2</a><a href=\"private/x.html\">p</a>%s%s",
                 s, next, orphan);
        puts_(site, "index.html", html);
        snprintf(html, sizeof html,
                 "<img src=\"/one.jpg\" alt=\"One of site %d\"><a href=\"deep/three.html\">3</a>",
                 s);
        puts_(site, "one.html", html);
        snprintf(html, sizeof html, "<img src=\"/two.jpg\" alt=\"Two of site %d\">", s);
        puts_(site, "two.html", html);
        snprintf(html, sizeof html, "<img src=\"/three.jpg\" alt=\"Three of site %d\">", s);
        puts_(site, "deep/three.html", html);
        puts_(site, "private/x.html", "<img src=\"/x.jpg\" alt=\"Private\">");
        snprintf(html, sizeof html, "<img src=\"/orphan.jpg\" alt=\"Orphan of site %d\">", s);
        puts_(site, "orphan.html", html);
        off += (size_t)snprintf(seeds + off, sizeof seeds - off, "http://%s:%d/\n", part_host[s],
                                tl_site_port(srv[s]));
    }

    /* One process: every site's 4 pages, and the orphan. */
    long single_req[4];
    new_corpus(corpus, sizeof corpus, "parts-single");
    crawl_seeds(corpus, seeds, NULL);
    for (int s = 0; s < 4; s++)
        single_req[s] = tl_site_requests(srv[s]);
    char *single_pages = rows(corpus, "SELECT url || ' ' || state || ' ' || depth FROM pages "
                                      "ORDER BY 1");
    char *single_pairs = rows(corpus, "SELECT uid FROM pairs ORDER BY 1");
    char *orphan_pair = rows(corpus, "SELECT p.uid FROM pairs p JOIN images i ON i.id = "
                                     "p.image_id WHERE i.url LIKE '%/orphan.jpg'");
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'ok'"), 4 * 4 + 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pairs"), 4 * 4 + 1);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE error_class = 'robots'"),
                     4);
    assert_int_equal(strlen(orphan_pair), 33); /* one uid */
    check_part_params_and_links(corpus, 1, 1, 0);
    assert_int_equal(tl_site_hits(srv[3], "/orphan.html"), 1);
    for (int s = 0; s < 4; s++)
        assert_int_equal(single_req[s], s == 3 ? 5 + 1 : 5); /* robots.txt and 4 pages */

    for (int n = 1; n <= 3; n++) {
        size_t cap = 1 << 14;
        char *all_pages = calloc(1, cap), *all_pairs = calloc(1, cap);
        int orphan_lost = n > 1 && part_of[n][2] != part_of[n][3];
        int64_t links_total = 0, links_expected = 0;
        assert_non_null(all_pages);
        assert_non_null(all_pairs);
        for (int s = 0; s < 4; s++) { /* the in-scope links that cross parts */
            links_expected += part_of[n][s] != part_of[n][(s + 1) % 4];
            if (s == 2)
                links_expected += part_of[n][2] != part_of[n][3];
        }
        for (int i = 1; i <= n; i++) {
            long before[4];
            char pname[64];
            for (int s = 0; s < 4; s++)
                before[s] = tl_site_requests(srv[s]);
            snprintf(pname, sizeof pname, "parts-%d-of-%d", i, n);
            new_corpus(corpus, sizeof corpus, pname);
            snprintf(pname, sizeof pname, "--part %d/%d", i, n);
            crawl_seeds(corpus, seeds, pname);
            /* The servers: a part asks only its own sites, everything they
             * were asked in one process (robots.txt included). */
            for (int s = 0; s < 4; s++) {
                long got = tl_site_requests(srv[s]) - before[s];
                long want = part_of[n][s] != i      ? 0
                            : s == 3 && orphan_lost ? single_req[3] - 1
                                                    : single_req[s];
                if (got != want)
                    fail_msg("N=%d part %d: site %s asked %ld times, want %ld", n, i, part_host[s],
                             got, want);
            }
            /* The catalog: pages of its sites only. */
            char *urls = rows(corpus, "SELECT url FROM pages ORDER BY 1");
            char *save = NULL;
            for (char *u = strtok_r(urls, "\n", &save); u; u = strtok_r(NULL, "\n", &save))
                assert_int_equal(part_of[n][host_index(u)], i);
            free(urls);
            char *pg = rows(corpus, "SELECT url || ' ' || state || ' ' || depth FROM pages");
            char *pr = rows(corpus, "SELECT uid FROM pairs");
            assert_true(strlen(all_pages) + strlen(pg) < cap &&
                        strlen(all_pairs) + strlen(pr) < cap);
            strcat(all_pages, pg);
            strcat(all_pairs, pr);
            free(pg);
            free(pr);
            int64_t links = tl_q_int(corpus, "SELECT json_extract(counts, '$.links_other_part') "
                                             "FROM runs WHERE stage = 'crawl'");
            check_part_params_and_links(corpus, i, n, links);
            links_total += links;
        }
        assert_int_equal(links_total, links_expected);
        /* Union = the single run's, no page or pair twice: the sorted
         * concatenation equals the single run's sorted list, less the
         * orphan where it crossed parts. */
        char *want_pages = strdup(single_pages), *want_pairs = strdup(single_pairs);
        assert_non_null(want_pages);
        assert_non_null(want_pairs);
        if (orphan_lost) {
            char *o = strstr(want_pages, "/orphan.html ok 1\n");
            char *ls = o, *pp = strstr(want_pairs, orphan_pair);
            assert_non_null(o);
            assert_non_null(pp);
            while (ls > want_pages && ls[-1] != '\n')
                ls--;
            memmove(ls, o + strlen("/orphan.html ok 1\n"),
                    strlen(o + strlen("/orphan.html ok 1\n")) + 1);
            memmove(pp, pp + strlen(orphan_pair), strlen(pp + strlen(orphan_pair)) + 1);
        }
        char *got_pages = sorted_lines(all_pages), *got_pairs = sorted_lines(all_pairs);
        char *exp_pages = sorted_lines(want_pages), *exp_pairs = sorted_lines(want_pairs);
        assert_string_equal(got_pages, exp_pages);
        assert_string_equal(got_pairs, exp_pairs);
        if (n > 1)
            assert_true(orphan_lost && links_total >= 2);
        free(got_pages);
        free(got_pairs);
        free(exp_pages);
        free(exp_pairs);
        free(want_pages);
        free(want_pairs);
        free(all_pages);
        free(all_pairs);
    }
    /* A part run in a catalog where a run of the whole left pages of
     * every site pending: those of other parts' sites are set skipped
     * (other_part), never fetched. b.localhost is part 1 of 3. */
    long before[4];
    new_corpus(corpus, sizeof corpus, "parts-mixed");
    crawl_seeds(corpus, seeds, "--max-pages 4");
    assert_true(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'pending'") > 4);
    for (int s = 0; s < 4; s++)
        before[s] = tl_site_requests(srv[s]);
    crawl_seeds(corpus, seeds, "--part 1/3");
    for (int s = 0; s < 3; s++)
        assert_int_equal(tl_site_requests(srv[s]), before[s]);
    assert_int_equal(tl_q_int(corpus, "SELECT count(*) FROM pages WHERE state = 'pending'"), 0);
    char *skipped = rows(corpus, "SELECT url FROM pages WHERE error_class = 'other_part'");
    char *save = NULL;
    int n_skipped = 0;
    for (char *u = strtok_r(skipped, "\n", &save); u; u = strtok_r(NULL, "\n", &save), n_skipped++)
        assert_int_not_equal(part_of[3][host_index(u)], 1);
    assert_true(n_skipped > 0);
    free(skipped);
    free(single_pages);
    free(single_pairs);
    free(orphan_pair);
    for (int s = 0; s < 4; s++)
        tl_site_stop(srv[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_crawl_of_the_fixture_sites),
        cmocka_unit_test(test_redirects_are_vetted_like_links),
        cmocka_unit_test(test_max_pages_and_depth),
        cmocka_unit_test(test_kill_9_and_resume),
        cmocka_unit_test(test_wget_warc_equals_live_crawl),
        cmocka_unit_test(test_x_robots_tag_table_live),
        cmocka_unit_test(test_part_splits_the_crawl_by_site),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
