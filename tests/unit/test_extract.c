/*
 * tests/unit/test_extract.c: HTML extraction (crawl/extract.c), charset
 * decoding, text cleaning, URL resolution/normalisation and the pair sink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "crawl/crawl.h"
#include "crawl/crawl_int.h"
#include "tests/lib/robots_cases.h"
#include "tests/lib/testlib.h"

#include <libxml/HTMLparser.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static wp_arena *arena;
static crawl_opts opts;

static int setup(void **state)
{
    arena = wp_arena_new(1 << 16);
    crawl_opts_init(&opts);
    return arena ? 0 : -1;
}

static int teardown(void **state)
{
    wp_arena_free(arena);
    return 0;
}

static crawl_page *extract_ct(const char *html, size_t len, const char *url, const char *ct)
{
    crawl_page *p = NULL;
    wp_err err = {0};
    int rc = crawl_extract(html, len, url, ct, NULL, &opts, arena, &p, &err);
    if (rc != 0)
        fprintf(stderr, "extract: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

static crawl_page *extract(const char *html, const char *url)
{
    return extract_ct(html, strlen(html), url, NULL);
}

static const crawl_image *find_img(const crawl_page *p, const char *url)
{
    for (size_t i = 0; i < p->n_images; i++)
        if (strcmp(p->images[i].url, url) == 0)
            return &p->images[i];
    for (size_t i = 0; i < p->n_images; i++)
        fprintf(stderr, "  have image %s\n", p->images[i].url);
    fail_msg("no image %s", url);
    return NULL;
}

static void test_relative_and_base_href(void **state)
{
    crawl_page *p = extract("<html><head><title>T</title></head><body>"
                            "<img src=\"a.jpg\" alt=\"before base\">"
                            "<base href=\"../static/\">"
                            "<img src=\"  b.jpg\n \" alt=\"b\">"
                            "<img src=\"/root.png\" alt=\"root\">"
                            "<img src=\"//cdn.example.org/x.jpg\" alt=\"proto-relative\">"
                            "<img src=\"sub/./c/../d.jpg?x=1#frag\" alt=\"dots\">"
                            "</body></html>",
                            "http://example.com/dir/page.html");
    assert_string_equal(p->base, "http://example.com/static/");
    assert_int_equal(p->n_images, 5);
    /* <base> applies to the whole document, also to images before it. */
    assert_string_equal(find_img(p, "http://example.com/static/a.jpg")->alt, "before base");
    assert_string_equal(find_img(p, "http://example.com/static/b.jpg")->alt, "b");
    find_img(p, "http://example.com/root.png");
    find_img(p, "http://cdn.example.org/x.jpg");
    find_img(p, "http://example.com/static/sub/d.jpg?x=1");
}

static void test_srcset_takes_largest(void **state)
{
    crawl_page *p =
        extract("<img src=\"small.jpg\" srcset=\"s.jpg 320w, l.jpg 1024w,m.jpg 640w\" alt=\"w\">"
                "<img src=\"one.jpg\" srcset=\"two.jpg 2x, three.jpg 3x\" alt=\"x\">"
                "<img srcset=\"a,b.jpg 100w, c.jpg 50w\" alt=\"comma in url\">",
                "https://ex.com/");
    assert_int_equal(p->n_images, 3);
    const crawl_image *w = find_img(p, "https://ex.com/l.jpg");
    assert_string_equal(w->attr, "srcset");
    assert_int_equal(w->srcset_n, 3);
    assert_string_equal(find_img(p, "https://ex.com/three.jpg")->alt, "x");
    find_img(p, "https://ex.com/a,b.jpg");
    int n = 0;
    double sc = 0;
    const char *b = crawl_srcset_best("  ", arena, &n, &sc);
    assert_null(b);
    assert_int_equal(n, 0);
}

static void test_lazy_attributes_and_picture(void **state)
{
    crawl_page *p = extract(
        "<img src=\"data:image/gif;base64,R0lGOD\" data-src=\"/real1.jpg\" alt=\"lazy1\">"
        "<img src=\"placeholder.png\" data-original=\"real2.jpg\" alt=\"lazy2\">"
        "<img data-srcset=\"r3a.jpg 100w, r3b.jpg 900w\" alt=\"lazy3\">"
        "<picture><source srcset=\"p-big.webp 1600w, p-small.webp 400w\" type=\"image/webp\">"
        "<source srcset=\"p-mid.jpg 800w\"><img src=\"p-fallback.jpg\" alt=\"pic\"></picture>"
        "<img src=\"after.jpg\" alt=\"after picture\">",
        "http://ex.com/a/");
    assert_int_equal(p->n_images, 5);
    assert_string_equal(find_img(p, "http://ex.com/real1.jpg")->attr, "data-src");
    assert_string_equal(find_img(p, "http://ex.com/a/real2.jpg")->attr, "data-original");
    assert_string_equal(find_img(p, "http://ex.com/a/r3b.jpg")->attr, "data-srcset");
    const crawl_image *pic = find_img(p, "http://ex.com/a/p-big.webp");
    assert_string_equal(pic->attr, "source");
    assert_string_equal(pic->alt, "pic");
    /* The <picture>'s sources do not leak into the next image. */
    assert_string_equal(find_img(p, "http://ex.com/a/after.jpg")->attr, "src");
}

static void test_figcaption_title_lang(void **state)
{
    crawl_page *p = extract(
        "<!DOCTYPE html><html lang=\"de-CH\"><head><title>  Page\n Title </title></head><body>"
        "<figure><img src=\"f1.jpg\" alt=\"alt one\" title=\"tip one\">"
        "<figcaption>A <b>bold</b>\n caption</figcaption></figure>"
        "<figure><figcaption>Caption first</figcaption><p><img src=\"f2.jpg\"></p></figure>"
        "<img src=\"nofig.jpg\" alt=\"outside\"></body></html>",
        "http://ex.com/");
    assert_string_equal(p->title, "Page Title");
    assert_string_equal(p->lang, "de-CH");
    const crawl_image *f1 = find_img(p, "http://ex.com/f1.jpg");
    assert_string_equal(f1->figcaption, "A bold caption");
    assert_string_equal(f1->title, "tip one");
    const crawl_image *f2 = find_img(p, "http://ex.com/f2.jpg");
    assert_string_equal(f2->figcaption, "Caption first");
    assert_null(f2->alt);
    assert_null(find_img(p, "http://ex.com/nofig.jpg")->figcaption);
}

static void test_entities_and_cleaning(void **state)
{
    crawl_page *p = extract(
        "<img src=\"e.jpg\" alt=\"Fish &amp; Chips&nbsp;&#x263A; &lt;3\t\n"
        "  end&#1;\">"
        "<meta charset=utf-8><img src=\"z.jpg\" alt=\"zero\xE2\x80\x8Bwidth \xC2\x85next\">",
        "http://ex.com/");
    assert_string_equal(find_img(p, "http://ex.com/e.jpg")->alt,
                        "Fish & Chips \xE2\x98\xBA <3 end");
    assert_string_equal(find_img(p, "http://ex.com/z.jpg")->alt, "zerowidth next");

    wp_buf out = {0};
    crawl_opts o;
    crawl_opts_init(&o);
    assert_int_equal(crawl_clean_text("a&amp;b &#233;&eacute; &bogus; &#xD800;", 38,
                                      CRAWL_CLEAN_ENTITIES, &o, &out),
                     0);
    assert_string_equal(out.data, "a&b \xC3\xA9\xC3\xA9 &bogus; \xEF\xBF\xBD");
    /* Invalid UTF-8: repaired by default, refused with --bad-utf8 drop. */
    assert_int_equal(crawl_clean_text("ok\xFF\xFEgo", 6, 0, &o, &out), 0);
    assert_string_equal(out.data, "ok\xEF\xBF\xBD\xEF\xBF\xBDgo");
    o.bad_utf8_drop = 1;
    assert_int_equal(crawl_clean_text("ok\xFFgo", 5, 0, &o, &out), CRAWL_DROP_BAD_UTF8);
    /* Over-long text: cut at a character boundary, or refused. */
    o.bad_utf8_drop = 0;
    o.max_text = 6;
    assert_int_equal(crawl_clean_text("abcd\xC3\xA9\xC3\xA9", 8, 0, &o, &out), 0);
    assert_string_equal(out.data, "abcd\xC3\xA9");
    assert_int_equal(crawl_clean_text("abcde\xC3\xA9", 7, 0, &o, &out), 0);
    assert_string_equal(out.data, "abcde");
    assert_int_equal(crawl_clean_text("ab cdefgh", 9, 0, &o, &out), 0);
    assert_string_equal(out.data, "ab cde");
    o.long_text_drop = 1;
    assert_int_equal(crawl_clean_text("abcdefgh", 8, 0, &o, &out), CRAWL_DROP_TOO_LONG);
    wp_buf_free(&out);
}

static void test_windows_1252_and_charsets(void **state)
{
    /* No declaration at all: windows-1252, so 0x93/0x94 are curly quotes. */
    const char cp[] = "<img src=\"q.jpg\" alt=\"\x93quoted\x94 caf\xE9 \x80\">";
    crawl_page *p = extract_ct(cp, sizeof cp - 1, "http://ex.com/", NULL);
    assert_string_equal(p->charset, "windows-1252");
    assert_string_equal(find_img(p, "http://ex.com/q.jpg")->alt,
                        "\xE2\x80\x9Cquoted\xE2\x80\x9D caf\xC3\xA9 \xE2\x82\xAC");
    /* iso-8859-1 in HTTP means windows-1252 too (WHATWG). */
    p = extract_ct(cp, sizeof cp - 1, "http://ex.com/", "text/html; charset=ISO-8859-1");
    assert_string_equal(p->charset, "windows-1252");
    /* <meta charset> of a real charset, through iconv; the parser must not
     * decode the (already converted) bytes a second time. */
    const char koi[] = "<html><head><meta charset=\"koi8-r\"></head>"
                       "<body><img src=\"k.jpg\" alt=\"\xF0\xD2\xC9\xD7\xC5\xD4\"></body></html>";
    p = extract_ct(koi, sizeof koi - 1, "http://ex.com/", NULL);
    assert_string_equal(p->charset, "koi8-r");
    assert_string_equal(find_img(p, "http://ex.com/k.jpg")->alt,
                        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
    /* http-equiv form; the HTTP header wins over the meta. */
    const char he[] = "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
                      "<img src=\"u.jpg\" alt=\"\xC3\xA9t\xC3\xA9\">";
    p = extract_ct(he, sizeof he - 1, "http://ex.com/", NULL);
    assert_string_equal(p->charset, "utf-8");
    assert_string_equal(find_img(p, "http://ex.com/u.jpg")->alt, "\xC3\xA9t\xC3\xA9");
    p = extract_ct(he, sizeof he - 1, "http://ex.com/", "text/html;charset=windows-1252");
    assert_string_equal(find_img(p, "http://ex.com/u.jpg")->alt,
                        "\xC3\x83\xC2\xA9t\xC3\x83\xC2\xA9");
    /* A broken (unknown) charset falls back to windows-1252. */
    const char bad[] = "<meta charset=\"x-no-such-charset\"><img src=\"b.jpg\" alt=\"na\xEFve\">";
    p = extract_ct(bad, sizeof bad - 1, "http://ex.com/", NULL);
    assert_string_equal(p->charset, "windows-1252");
    assert_string_equal(find_img(p, "http://ex.com/b.jpg")->alt, "na\xC3\xAFve");
    /* Declared UTF-8 with invalid bytes: repaired, the result is valid. */
    const char inv[] = "<meta charset=utf-8><img src=\"i.jpg\" alt=\"a\xC3\x28z\">";
    p = extract_ct(inv, sizeof inv - 1, "http://ex.com/", NULL);
    assert_string_equal(find_img(p, "http://ex.com/i.jpg")->alt, "a\xEF\xBF\xBD(z");
    /* UTF-16LE with a BOM. */
    const char *ascii = "<img src=\"w.jpg\" alt=\"wide\">";
    size_t n = strlen(ascii);
    char *u16 = malloc(2 * n + 2);
    u16[0] = (char)0xFF;
    u16[1] = (char)0xFE;
    for (size_t i = 0; i < n; i++) {
        u16[2 + 2 * i] = ascii[i];
        u16[3 + 2 * i] = 0;
    }
    p = extract_ct(u16, 2 * n + 2, "http://ex.com/", NULL);
    assert_string_equal(find_img(p, "http://ex.com/w.jpg")->alt, "wide");
    free(u16);
}

static void test_drops_are_counted(void **state)
{
    crawl_page *p = extract("<img src=\"data:image/png;base64,AAAA\" alt=\"d\">"
                            "<img src=\"javascript:void(0)\" alt=\"js\">"
                            "<img src=\"ftp://ex.com/f.jpg\" alt=\"ftp\">"
                            "<img src=\"/pixel.jpg\" width=\"1\" height=\"1\" alt=\"px\">"
                            "<img src=\"/px2.jpg\" width=2 height=\"2\">"
                            "<img src=\"/logo.SVG\" alt=\"svg\">"
                            "<img src=\"/anim.gif?x=1\" alt=\"gif\">"
                            "<img src=\"http://[::1\" alt=\"broken\">"
                            "<img alt=\"no src\">"
                            "<img src=\"/ok.jpg\" width=\"1\" height=\"300\" alt=\"thin\">",
                            "http://ex.com/");
    assert_int_equal(p->n_images, 1);
    find_img(p, "http://ex.com/ok.jpg");
    assert_int_equal(p->drops[CRAWL_DROP_DATA_URI], 1);
    assert_int_equal(p->drops[CRAWL_DROP_SCHEME], 2);
    assert_int_equal(p->drops[CRAWL_DROP_PIXEL], 2);
    assert_int_equal(p->drops[CRAWL_DROP_SKIP_EXT], 2);
    assert_int_equal(p->drops[CRAWL_DROP_BAD_URL], 2);
    /* --skip-ext "" keeps them. */
    wp_err err = {0};
    assert_int_equal(crawl_opts_skip_ext(&opts, "", &err), 0);
    p = extract("<img src=\"/logo.svg\" alt=\"svg\">", "http://ex.com/");
    assert_int_equal(p->n_images, 1);
    assert_int_equal(crawl_opts_skip_ext(&opts, "svg, .GIF", &err), 0);
    assert_int_equal(crawl_url_skip_ext(&opts, "http://a.b/x.gif"), 1);
    assert_int_equal(crawl_url_skip_ext(&opts, "http://a.b/gif/x"), 0);
    assert_int_equal(crawl_url_skip_ext(&opts, "http://a.gif/"), 0);
}

static void test_meta_robots(void **state)
{
    crawl_page *p = extract("<meta name=\"robots\" content=\"index, NoAI\"><img src=a.jpg alt=a>",
                            "http://ex.com/");
    assert_int_equal(p->noai, 1);
    assert_int_equal(p->noindex, 0);
    p = extract("<meta name=\"WitPipe\" content=\"noimageai\"><img src=a.jpg alt=a>",
                "http://ex.com/");
    assert_int_equal(p->noai, 1);
    p = extract("<meta name=\"otherbot\" content=\"noai,noindex\"><img src=a.jpg alt=a>",
                "http://ex.com/");
    assert_int_equal(p->noai, 0);
    assert_int_equal(p->noindex, 0);
    p = extract("<meta name=robots content=none><a href=/x>x</a>", "http://ex.com/");
    assert_int_equal(p->noindex, 1);
    assert_int_equal(p->nofollow, 1);
    crawl_page *q = NULL;
    wp_err err = {0};
    const char *h = "<img src=a.jpg alt=a>";
    assert_int_equal(crawl_extract(h, strlen(h), "http://ex.com/", NULL, "witpipe: noai", &opts,
                                   arena, &q, &err),
                     0);
    assert_int_equal(q->noai, 1);
    assert_int_equal(crawl_extract(h, strlen(h), "http://ex.com/", NULL, "otherbot: noai", &opts,
                                   arena, &q, &err),
                     0);
    assert_int_equal(q->noai, 0);
}

static void test_links_and_nofollow(void **state)
{
    opts.collect_links = 1;
    crawl_page *p = extract("<a href=\"b.html#top\">b</a><a href=\"mailto:x@y\">m</a>"
                            "<a href=\"/c.html\" rel=\"nofollow\">c</a>"
                            "<map><area href=\"HTTP://EX.com:80/d.html\"></map>",
                            "http://ex.com/a/");
    assert_int_equal(p->n_links, 2);
    assert_string_equal(p->links[0], "http://ex.com/a/b.html");
    assert_string_equal(p->links[1], "http://ex.com/d.html");
    p = extract("<meta name=robots content=nofollow><a href=b.html>b</a>", "http://ex.com/");
    assert_int_equal(p->n_links, 0);
    opts.collect_links = 0;
}

static void test_url_normalisation(void **state)
{
    const char *u = NULL;
    assert_int_equal(
        crawl_url_normalize("HTTP://Ex.COM:80/a/../b/%7euser/%2f%41?q=%aa%2D#frag", arena, &u), 0);
    assert_string_equal(u, "http://ex.com/b/~user/%2fA?q=%aa-");
    assert_int_equal(crawl_url_normalize("https://ex.com:443", arena, &u), 0);
    assert_string_equal(u, "https://ex.com/");
    assert_int_equal(crawl_url_normalize("https://ex.com:8443/x y", arena, &u), 0);
    assert_string_equal(u, "https://ex.com:8443/x%20y");
    assert_int_equal(crawl_url_normalize("relative/x.jpg", arena, &u), CRAWL_DROP_BAD_URL);
    assert_int_equal(crawl_url_normalize("DATA:text/plain,x", arena, &u), CRAWL_DROP_DATA_URI);
    assert_int_equal(crawl_url_resolve("http://ex.com/a/b", "?q=1", 4, arena, &u), 0);
    assert_string_equal(u, "http://ex.com/a/b?q=1");
    assert_int_equal(crawl_url_resolve("http://ex.com/a/b", "\\img\\c.jpg", 10, arena, &u), 0);
    assert_string_equal(u, "http://ex.com/img/c.jpg");
    assert_int_equal(crawl_url_resolve("http://ex.com/", "caf\xC3\xA9.jpg", 9, arena, &u), 0);
    assert_string_equal(u, "http://ex.com/caf%c3%a9.jpg");
    char origin[64];
    assert_int_equal(crawl_url_origin("http://ex.com:8080/a?b", origin, sizeof origin), 0);
    assert_string_equal(origin, "http://ex.com:8080");
    assert_string_equal(crawl_url_path_query("http://ex.com?x=1", arena), "/?x=1");
    assert_string_equal(crawl_url_path_query("http://ex.com", arena), "/");
    assert_int_equal(crawl_same_site("http://a.example.co.uk/", "https://b.example.co.uk/x"), 1);
    assert_int_equal(crawl_same_site("http://a.example.co.uk/", "http://other.co.uk/"), 0);
    assert_int_equal(crawl_same_site("http://127.0.0.1:5/", "http://127.0.0.1:6/"), 1);
}

/* The live crawl's site (its scope and its --part key): the registrable
 * domain, else the host; IP literals by host, since the public suffix list
 * would give 127.0.0.1 and 10.0.0.1 one registrable domain "0.1". */
static void test_url_site_and_part_key(void **state)
{
    char site[256];
    static const char *const cases[][2] = {
        {"http://www.Example.co.uk:8080/x", "example.co.uk"},
        {"https://user@a.b.example.com/", "example.com"},
        {"http://127.0.0.1:5/", "127.0.0.1"},
        {"http://10.0.0.1/", "10.0.0.1"},
        {"http://[::1]:80/", "[::1]"},
        {"http://0x7f.0.0.1/", "0x7f.0.0.1"},
        {"http://localhost:9/", "localhost"},
        {"http://a.localhost:9/", "a.localhost"},
        {"http://co.uk/", "co.uk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(crawl_url_site(cases[i][0], site, sizeof site), 0);
        assert_string_equal(site, cases[i][1]);
        assert_true(crawl_url_site_key(cases[i][0]) ==
                    wp_fnv1a64(cases[i][1], strlen(cases[i][1])));
    }
    assert_int_equal(crawl_url_site("mailto:x", site, sizeof site), WP_EINVAL);
    assert_int_equal(crawl_url_site("http://example.com/", site, 4), WP_EINVAL);
    /* A site that is its host gets fetch's host key (one FNV-1a). */
    assert_true(crawl_url_site_key("http://LocalHost:1/a") ==
                wp_part_key_host("http://localhost:2/b", 19));
    assert_true(crawl_url_site_key("http://[::1]:8/") == wp_part_key_host("http://[::1]:8/", 15));
    assert_int_equal(crawl_same_site("http://127.0.0.1/", "http://10.0.0.1/"), 0);
    assert_int_equal(crawl_same_site("http://localhost:1/", "http://a.localhost:1/"), 0);
    assert_int_equal(crawl_same_site("http://x.a.localhost/", "http://a.localhost:1/"), 1);
}

static void test_deep_nesting_and_junk(void **state)
{
    wp_buf b = {0};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(wp_buf_puts(&b, "<table><tr><td>"), 0);
    assert_int_equal(wp_buf_puts(&b, "<img src=\"deep.jpg\" alt=\"deep\">"), 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(wp_buf_puts(&b, "</td></tr></table>"), 0);
    crawl_page *p = extract_ct(b.data, b.len, "http://ex.com/", NULL);
    assert_string_equal(find_img(p, "http://ex.com/deep.jpg")->alt, "deep");
    /* Binary junk with NULs and an unterminated tag. */
    const char junk[] = "\x00\x01\xFF<img src=\"j.jpg\" alt=\"j\x00k\"><img src=\"x";
    p = extract_ct(junk, sizeof junk - 1, "http://ex.com/", NULL);
    assert_true(wp_utf8_valid(find_img(p, "http://ex.com/j.jpg")->alt,
                              strlen(find_img(p, "http://ex.com/j.jpg")->alt)));
    wp_buf_free(&b);
}

static void test_opts_parsing(void **state)
{
    crawl_opts o;
    wp_err err = {0};
    crawl_opts_init(&o);
    assert_int_equal(crawl_opts_text_from(&o, "figcaption, alt", &err), 0);
    assert_int_equal(o.n_text_from, 2);
    assert_int_equal(o.text_from[0], CRAWL_TEXT_FIGCAPTION);
    assert_int_equal(o.text_from[1], CRAWL_TEXT_ALT);
    assert_int_equal(crawl_opts_text_from(&o, "alt,caption", &err), WP_EINVAL);
    assert_int_equal(crawl_opts_text_from(&o, "alt,alt", &err), WP_EINVAL);
    assert_int_equal(crawl_opts_text_from(&o, "", &err), WP_EINVAL);
}

static void same_str(const char *a, const char *b, const char *what)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        fail_msg("%s differs: '%s' vs '%s'", what, a ? a : "(null)", b ? b : "(null)");
}

/* The prefilter must not change what is extracted. */
static void check_prefilter_same_links(const char *html, size_t len, int links)
{
    crawl_page *a = NULL, *b = NULL;
    wp_err err = {0};
    crawl_opts o1, o2;
    crawl_opts_init(&o1);
    o1.collect_links = links;
    o2 = o1;
    o2.no_prefilter = 1;
    assert_int_equal(
        crawl_extract(html, len, "http://ex.com/d/p.html", NULL, NULL, &o1, arena, &a, &err), 0);
    assert_int_equal(
        crawl_extract(html, len, "http://ex.com/d/p.html", NULL, NULL, &o2, arena, &b, &err), 0);
    same_str(a->title, b->title, "title");
    same_str(a->lang, b->lang, "lang");
    same_str(a->base, b->base, "base");
    same_str(a->charset, b->charset, "charset");
    assert_int_equal(a->noai, b->noai);
    assert_int_equal(a->noindex, b->noindex);
    assert_int_equal(a->nofollow, b->nofollow);
    assert_int_equal(a->n_images, b->n_images);
    for (size_t i = 0; i < a->n_images; i++) {
        same_str(a->images[i].url, b->images[i].url, "url");
        same_str(a->images[i].attr, b->images[i].attr, "attr");
        same_str(a->images[i].alt, b->images[i].alt, "alt");
        same_str(a->images[i].title, b->images[i].title, "img title");
        same_str(a->images[i].figcaption, b->images[i].figcaption, "figcaption");
        assert_int_equal(a->images[i].width, b->images[i].width);
        assert_int_equal(a->images[i].height, b->images[i].height);
        assert_int_equal(a->images[i].srcset_n, b->images[i].srcset_n);
    }
    assert_int_equal(a->n_links, b->n_links);
    for (size_t i = 0; i < a->n_links; i++)
        same_str(a->links[i], b->links[i], "link");
    for (int i = 0; i < CRAWL_DROP_N; i++)
        assert_int_equal(a->drops[i], b->drops[i]);
}

static void check_prefilter_same(const char *html, size_t len)
{
    check_prefilter_same_links(html, len, 1);
    check_prefilter_same_links(html, len, 0);
}

static void test_prefilter_changes_nothing(void **state)
{
    static const char *const pages[] = {
        "<!DOCTYPE html><html lang=fr><head><title>T &amp; <b>x</b></title>"
        "<style>p{color:red} img{x:1} </style><script>var s='<img src=no.jpg alt=no>';"
        "if (a<b && c>d) {}</script><SCRIPT type=x>document.write(\"<img src=w.jpg>\")</SCRIPT >"
        "</head><body><!-- <img src=comment.jpg alt=c> <script> -->"
        "<p>text with a < b and <3 and a > c</p>"
        "<img alt=\"a > b <script>\" src=\"q.jpg\"><img src=u.jpg alt=unquoted>"
        "<figure><img src=f.jpg><figcaption>Cap &eacute; <i>it</i> <!-- hidden --> end"
        "</figcaption></figure><a href=\"x.html\" title='it\\'s'>x</a>"
        "<![CDATA[ <img src=cdata.jpg> ]]><img src=after-cdata.jpg alt=ok></body></html>",
        "<html><body><img src=a.jpg alt=a><!-- never closed <img src=b.jpg alt=b>",
        "<html><body><script>never closed <img src=s.jpg alt=s>",
        "<html><head><meta name=robots content=\"noai, nofollow\"><base href=/b/></head>"
        "<body><img src=r.jpg alt='x' width=1 height=1><img srcset='s 1x, t 2x' alt=t>"
        "<picture><source srcset=p.webp><img src=pp.jpg alt=pic></picture></body></html>",
        "<img src=\"x.jpg\" alt=\"unterminated quote><img src=y.jpg alt=y>",
        "<title>First</title><svg><title>svg title</title></svg><title>Second</title>"
        "<img src=z.jpg alt=z><textarea><img src=ta.jpg alt=ta></textarea>",
        "<figure><figure><img src=n1.jpg><figcaption>inner</figcaption></figure>"
        "<img src=n2.jpg><figcaption>outer <img src=n3.jpg alt=inside></figcaption></figure>",
        "\xEF\xBB\xBF<title>bom \xC3\xA9</title><img src=\"\xC3\xA9.jpg\" alt=\"\xFF bad\">",
        "<meta charset=windows-1252><title>\x93q\x94</title><img src=w.jpg alt=\"caf\xE9\">",
        "< img src=notatag.jpg><img/src=slash.jpg/alt=slash><img\nsrc=nl.jpg\nalt=nl>",
        "<div class=\"x>y\" data-a='<img src=fake.jpg>'><figure id=f><p style=\"a:b\">"
        "<img src=p.jpg alt=inp></p></div><img src=out.jpg alt=out><figcaption>late</figcaption>"
        "<table border=1><tr><td><figure><img "
        "src=t.jpg></td></tr></table><figcaption>c</figcaption>"
        "<br/><hr class=x/><a href=l.html rel=nofollow>l</a><a href=m.html>m</a>",
        /* found by fuzzing: libxml2 ends a tag name at a non-ASCII byte */
        "<img\xb4\xca\x8f srcset='ked.jpg 2x' alt=a><div\xe9 class=x><img src=b.jpg alt=b>",
        /* ... and skips a bogus attribute to the next blank, quotes or not */
        "<img src~a.j w\"X-Y\"\xcdQ=b s\n<img src~a srcset='0:0Z\r\nW-R: pg alt=x><figure>"
        "<img src=b srcset='c 2x'><figcaptio x='>'><figcaption>t</figcaption></figure>"
        "</figure x='>'><img src=e.jpg alt=e><!DOCTYPE x \"a>b\"><img src=f.jpg alt=f>"
        "<!bogus x='>'><img src=g.jpg alt=g><!x <img src='>' alt=q><img src=h.jpg alt=h>",
        /* an end tag named "." swallows everything up to the next '>' */
        "</.<img src=}>x</_ <img src=i.jpg alt=i><img src=j.jpg alt=j></3<img src=k.jpg alt=k>",
        /* a doctype's quotes hide '>' only in its SYSTEM/PUBLIC literals */
        "<picture><source srcset=x.webp><!DOCTYPE\"><i s=\">\"><img alt=d></picture>"
        "<!DOCTYPE html PUBLIC \"a>b\" 'c>d' junk \"<img src=j.jpg alt=j>\"><img src=k.jpg alt=k>"
        "<!doctype x system '<img src=l.jpg alt=l>' \"<img src=m.jpg alt=m>\"><img src=n.jpg>"
        "<!DOCTYPE h\xC3\xA9 SYSTEM \"a>b\"><img src=o.jpg alt=o>",
        /* an end tag at the start of a script body is parsed as one (here it
         * closes the head, and the script with it); "</scriptx>" does not end
         * the script, and after it the body goes on */
        "<head><script></head><img src=s1.jpg alt=s1></script><img src=s2.jpg alt=s2>"
        "<script></x><img src=s3.jpg alt=s3></script><style></ p><img src=s4.jpg></style>"
        "<script></scriptx><img src=s5.jpg alt=s5></script><img src=s6.jpg alt=s6>",
        /* processing instructions end at the first '>' */
        "<?php echo \"<img src=pi.jpg alt=pi>\"; ?><img src=l.jpg alt=l><?<img src=m.jpg alt=m>"
        "<figure><img src=n.jpg><figcaption>a <? b > c <!x> d < e</figcaption></figure>",
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        check_prefilter_same(pages[i], strlen(pages[i]));
    /* A NUL, and a processing instruction whose target is not ASCII (the
     * prefilter then hands libxml2 the whole page). */
    static const char nul[] =
        "<?\x00<img src=/ alt=nul><?\xc3\xa9 <img src='>' alt=q><img src=o.jpg alt=o>";
    check_prefilter_same(nul, sizeof nul - 1);
    /* Every page of the other extraction tests, too. */
    wp_buf b = {0};
    for (int i = 0; i < 3000; i++)
        assert_int_equal(wp_buf_puts(&b, "<table><tr><td><p>x</p>"), 0);
    assert_int_equal(wp_buf_puts(&b, "<img src=deep.jpg alt=deep>"), 0);
    check_prefilter_same(b.data, b.len);
    wp_buf_free(&b);
}

/* Text is dropped by the prefilter, but not what it does to the tree:
 * character data that is not all blanks (or is 1000 blanks in a row)
 * while <head> is open makes libxml2 open body and a <p> there, so a
 * <picture> after it stays open past "</head>" and its <source> is the
 * image's URL; otherwise "</head>" closes the picture and the image has
 * no URL. First what libxml2 does (no prefilter), then that the
 * prefilter reproduces it. */
static void test_prefilter_keeps_what_text_does_to_the_tree(void **state)
{
#define PIC "<picture><source srcset=p.webp></head><img alt=i></picture>"
    static const struct {
        const char *pre; /* after "<head>" */
        int body;        /* 1: libxml2 opens body at the text */
    } cases[] = {
        {"<script>var s='<img>';</script>text", 1},
        {"&#32;", 1},                /* a valid character reference */
        {"&#0;", 0},                 /* an invalid one is dropped */
        {" &#0;", 1},                /* blanks ending at '&' are text */
        {"&amp;", 1},                /* an entity */
        {"\n \t\r", 0},              /* blanks ending at '<' */
        {"\x01\x0c\xEF\xBF\xBE", 0}, /* not XML characters */
        {"\xC2\xA0", 1},             /* U+00A0 is not a blank */
        {"</ x", 1},                 /* "</" without a name is dropped */
        {"</ ", 0},                  /* ... and so is only that */
        {"<!-- a --> <?b ?> <!-- c -->", 0},
        {"<? b ?>", 1}, /* no PI target: only "<?" is dropped */
        {"< ", 0},      /* a lone '<' is text, but no paragraph */
        {"<!x>", 1},
    };
    wp_err err = {0};
    crawl_opts o;
    crawl_opts_init(&o);
    o.no_prefilter = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char page[256];
        crawl_page *pg = NULL;
        snprintf(page, sizeof page, "\xEF\xBB\xBF<head>%s" PIC, cases[i].pre);
        assert_int_equal(crawl_extract(page, strlen(page), "http://ex.com/d/p.html", NULL, NULL, &o,
                                       arena, &pg, &err),
                         0);
        if (pg->n_images != (size_t)cases[i].body)
            fail_msg("case %zu: libxml2 found %zu images", i, pg->n_images);
        if (cases[i].body)
            assert_string_equal(pg->images[0].url, "http://ex.com/d/p.webp");
        check_prefilter_same(page, strlen(page));
    }
    /* libxml2 hands text over 1000 bytes at a time: a full piece of
     * blanks counts as text (C0 controls are dropped uncounted). */
    static const struct {
        const char *before, *blank, *after;
        int count, body;
    } runs[] = {
        {"<head>", " ", "", 999, 0},
        {"<head>", " ", "", 1000, 1},
        {"<head>", "\r\n", "", 500, 1},
        {"<head>", " ", "\x01", 999, 0},
        {"<head>", " \x01", "", 999, 0},
        {"<head>", " \x01", " ", 999, 1},
        /* blanks before the content are skipped, not counted... */
        {"<!DOCTYPE html><!-- c -->", "\n", "<head>", 1200, 0},
        /* ... but a second doctype is content */
        {"<!DOCTYPE html><!DOCTYPE html>", "\n", "<head>", 1000, 1},
        {"\x01", " ", "<head>", 1000, 1},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        wp_buf b = {0};
        crawl_page *pg = NULL;
        assert_int_equal(wp_buf_puts(&b, "\xEF\xBB\xBF"), 0);
        assert_int_equal(wp_buf_puts(&b, runs[i].before), 0);
        for (int k = 0; k < runs[i].count; k++)
            assert_int_equal(wp_buf_puts(&b, runs[i].blank), 0);
        assert_int_equal(wp_buf_puts(&b, runs[i].after), 0);
        assert_int_equal(wp_buf_puts(&b, PIC), 0);
        assert_int_equal(crawl_extract(b.data, b.len, "http://ex.com/d/p.html", NULL, NULL, &o,
                                       arena, &pg, &err),
                         0);
        if (pg->n_images != (size_t)runs[i].body)
            fail_msg("run %zu: libxml2 found %zu images", i, pg->n_images);
        check_prefilter_same(b.data, b.len);
        wp_buf_free(&b);
    }
#undef PIC
}

/* A doctype in the middle of the content is parsed in the middle of one
 * step of libxml2's content loop, which then goes on without looking for
 * an end tag: right after it, "</b <img ...>" is a '<' and text, and the
 * image is found; after anything else (even a blank, a comment or a PI,
 * which the prefilter drops) "</b" is an end tag that swallows everything
 * up to the next '>', the image too. A doctype before the content is the
 * document's own, and after it "</b" is an end tag. First what libxml2
 * does (no prefilter), then that the prefilter reproduces it. */
static void test_prefilter_reads_on_after_a_doctype_in_content(void **state)
{
    static const struct {
        const char *pre, *between;
        int found; /* 1: the image is found */
    } cases[] = {
        {"<p>x", "", 1},
        {"<p>x", "\n", 0},
        {"<p>x", "<!-- c -->", 0},
        {"<p>x", "<?pi x?>", 0},
        {"<p>x", "<?", 0},           /* no PI target: "<?" alone */
        {"<p>x", "< ", 0},           /* a lone '<', then a blank */
        {"<p>x", "</ ", 0},          /* "</" without a name */
        {"<p>x", "<!DOCTYPE y>", 0}, /* not a doctype there: text */
        {"<p>x", "text", 0},
        {"<p>x", "<b>", 0},
        {"<head>", "\n", 0},
        {"<!DOCTYPE a>", "", 1}, /* the second doctype is content */
        {"<!DOCTYPE a>\n", " ", 0},
        {"", "", 0}, /* the document's doctype */
        {"", "\n", 0},
    };
    wp_err err = {0};
    crawl_opts o;
    crawl_opts_init(&o);
    o.no_prefilter = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char page[256];
        crawl_page *pg = NULL;
        snprintf(page, sizeof page, "%s<!DOCTYPE html>%s</b <img src=i.jpg alt=i>", cases[i].pre,
                 cases[i].between);
        assert_int_equal(crawl_extract(page, strlen(page), "http://ex.com/d/p.html", NULL, NULL, &o,
                                       arena, &pg, &err),
                         0);
        if (pg->n_images != (size_t)cases[i].found)
            fail_msg("case %zu: libxml2 found %zu images", i, pg->n_images);
        check_prefilter_same(page, strlen(page));
    }
}

/* The text of a <title> or <figcaption> is what libxml2 puts in it: an
 * end tag closes only its own element, and not past a <div> or <table>
 * opened inside it (htmlAutoCloseOnClose: their end priority is higher);
 * a '<' before a comment, a PI or a nameless "</" stays apart from what
 * follows them. Comments end at "-->" or "--!>". First what libxml2 does
 * (no prefilter), then that the prefilter reproduces it. */
static void test_prefilter_keeps_title_and_caption_text(void **state)
{
    static const struct {
        const char *page;
        const char *title;   /* NULL: none */
        const char *caption; /* of the first image; NULL: no image */
        size_t n_images;
    } cases[] = {
        {"<title>a</figcaption>b</title>c", "ab", NULL, 0},
        {"<title>a<div>b</title>c", "abc", NULL, 0},
        {"<figure><img src=x.jpg><figcaption>a<div>b</figcaption>c</figure>", NULL, "abc", 1},
        {"<figure><img src=x.jpg><figcaption>a<table>b</figcaption>c</table>d</figure>", NULL,
         "abcd", 1},
        {"<figure><img src=x.jpg><figcaption>a<div/>b</figcaption>c</figure>", NULL, "ab", 1},
        {"<figure><figcaption>a</title>b</figcaption><img src=x.jpg></figure>", NULL, "ab", 1},
        {"<title>a<", "a<", NULL, 0},
        {"<title>a<<!---->p", "a<p", NULL, 0},
        {"\xEF\xBB\xBF<title>a<?</\xC3\xA9</title>", "a\xC3\xA9", NULL, 0},
        {"<!-- <img src=c.jpg> --!><img src=a.jpg alt=a><!----!><img src=b.jpg>", NULL, NULL, 2},
        {"<!-- a -- b --><img src=a.jpg><!-- --x--><img src=b.jpg>--><img src=d.jpg>", NULL, NULL,
         3},
        /* Script and style bodies are never text, in a title or a caption
         * (libxml2 2.9 gives them to characters() without a cdataBlock
         * handler). */
        {"<title>a<script>var t = 1;</script>b</title>", "ab", NULL, 0},
        {"<figure><img src=x.jpg><figcaption>Cap<script>x()</script><style>p{}</style>tion"
         "</figcaption></figure>",
         NULL, "Caption", 1},
    };
    wp_err err = {0};
    crawl_opts o;
    crawl_opts_init(&o);
    o.no_prefilter = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *page = cases[i].page;
        crawl_page *pg = NULL;
        assert_int_equal(crawl_extract(page, strlen(page), "http://ex.com/d/p.html", NULL, NULL, &o,
                                       arena, &pg, &err),
                         0);
        if (pg->n_images != cases[i].n_images)
            fail_msg("case %zu: libxml2 found %zu images", i, pg->n_images);
        same_str(pg->title, cases[i].title, "title");
        if (cases[i].caption != NULL)
            same_str(pg->images[0].figcaption, cases[i].caption, "figcaption");
        check_prefilter_same(page, strlen(page));
    }
}

static void test_url_fast_path_matches_curl(void **state)
{
    static const char *const urls[] = {
        "http://ex.com/a.jpg",
        "https://ex.com/a/b/c.jpg?x=1&y=2",
        "http://ex.com/",
        "http://ex.com",
        "http://Ex.com/a",
        "http://ex.com:80/a",
        "http://ex.com:8080/a",
        "http://ex.com/a/../b",
        "http://ex.com/a/./b",
        "http://ex.com/a/.",
        "http://ex.com/a/..",
        "http://ex.com/.hidden/x",
        "http://ex.com/a..b/c",
        "http://ex.com/a?../b",
        "http://ex.com/a#frag",
        "http://ex.com/a?",
        "http://ex.com/%7Euser",
        "http://ex.com/%2f",
        "http://ex.com/a b",
        "http://ex.com/caf\xC3\xA9",
        "http://user@ex.com/a",
        "http://ex.com./a",
        "http://.ex.com/a",
        "http://ex.com/a;b=c,d!$&'()*+:@~_-",
        "http://127.0.0.1/x",
        "http://ex.com//double//slash",
        "http://ex.com/a?q=a/./b",
        "https://img.site1.example/media/123.jpg?w=1280",
        "http://ex.com/[x]",
        "HTTP://ex.com/a",
        "http://xn--bcher-kva.example/a",
        "http://ex.com/a\\b",
        "http://ex.com/a\"b",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        const char *fast = NULL, *slow = NULL;
        size_t n = strlen(urls[i]);
        int rf = crawl_url_resolve("http://base.example/dir/", urls[i], n, arena, &fast);
        int rs = crawl_url_resolve_slow("http://base.example/dir/", urls[i], n, arena, &slow);
        if (rf != rs || (fast == NULL) != (slow == NULL) || (fast && strcmp(fast, slow) != 0))
            fail_msg("%s: fast %d '%s' vs curl %d '%s'", urls[i], rf, fast ? fast : "", rs,
                     slow ? slow : "");
    }
}

static void test_sink_stores_pair_once_with_sightings(void **state)
{
    char *dir = tl_mkdtemp();
    cat *c = NULL;
    wp_err err = {0};
    int64_t src = 0;
    crawl_opts o;
    crawl_opts_init(&o);
    assert_int_equal(crawl_opts_text_from(&o, "alt,figcaption", &err), 0);
    assert_non_null(dir);
    assert_int_equal(cat_open(dir, CAT_CREATE, &c, &err), 0);
    assert_int_equal(cat_source_get_or_add(c, "warc", "x.warc", NULL, &src, &err), 0);
    crawl_sink *s = crawl_sink_new(c, &o, 0);
    assert_non_null(s);
    const char *pages[3] = {"http://ex.com/1", "http://ex.com/2", "http://ex.com/3"};
    assert_int_equal(cat_begin(c, &err), 0);
    for (int i = 0; i < 3; i++) {
        char html[512];
        crawl_page *p = NULL;
        snprintf(html, sizeof html,
                 "<img src=/home.png alt=Home><img src=/home.png alt=Home>"
                 "<figure><img src=/p%d.jpg><figcaption>cap %d</figcaption></figure>"
                 "<img src=/none.jpg>%s",
                 i, i, i == 2 ? "<meta name=robots content=noai>" : "");
        assert_int_equal(
            crawl_extract(html, strlen(html), pages[i], NULL, NULL, &o, arena, &p, &err), 0);
        assert_int_equal(crawl_sink_page(s, p, src, &err), 0);
    }
    assert_int_equal(cat_commit(c, &err), 0);
    crawl_counts *k = crawl_sink_counts(s);
    assert_int_equal(k->pairs_new, 3); /* Home once, p0, p1 */
    assert_int_equal(k->pairs_seen, 1);
    assert_int_equal(k->drops[CRAWL_DROP_DUP_ON_PAGE], 2);
    assert_int_equal(k->drops[CRAWL_DROP_NO_TEXT], 2);
    assert_int_equal(k->pages_opt_out, 1);
    assert_int_equal(k->drops[CRAWL_DROP_OPT_OUT], 4);
    crawl_sink_free(s);
    cat_close(c);
    assert_int_equal(tl_q_int(dir, "SELECT count(*) FROM pairs"), 3);
    assert_int_equal(tl_q_int(dir,
                              "SELECT count(*) FROM pair_seen p JOIN pairs q ON q.id = p.pair_id "
                              "WHERE q.text = 'Home' AND p.origin = 'http://ex.com/2' "
                              "AND q.origin = 'http://ex.com/1'"),
                     1);
    assert_int_equal(tl_q_int(dir, "SELECT count(*) FROM pairs WHERE text = 'cap 1' AND "
                                   "json_extract(extra, '$.text_from') = 'figcaption' AND "
                                   "json_extract(extra, '$.figcaption') = 'cap 1'"),
                     1);
    tl_rmtree(dir);
}

/* 32 MiB of zeros as brotli (27 bytes), made with
 * `head -c 32M /dev/zero | brotli -c`. */
static const unsigned char br_bomb[] = {0xcf, 0xff, 0xff, 0x7f, 0xf8, 0x27, 0x00, 0xe2, 0xb1,
                                        0x40, 0x20, 0xf7, 0xfe, 0x9f, 0xff, 0xff, 0xff, 0xf0,
                                        0x4f, 0x00, 0xc4, 0x61, 0x01, 0x80, 0xee, 0xfd, 0xff};

/* A deflate stream of zeros, zlib-wrapped, inflating to n bytes. */
static void zlib_zeros(size_t n, wp_buf *out)
{
    static char zero[1 << 16];
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit(&z, 9), Z_OK);
    while (n > 0 || z.avail_in > 0) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        z.next_in = (Bytef *)zero;
        z.avail_in = (uInt)k;
        n -= k;
        do {
            assert_int_equal(wp_buf_reserve(out, 1 << 16), 0);
            z.next_out = (Bytef *)out->data + out->len;
            z.avail_out = 1 << 16;
            assert_int_not_equal(deflate(&z, n == 0 ? Z_FINISH : Z_NO_FLUSH), Z_STREAM_ERROR);
            out->len = (size_t)((char *)z.next_out - out->data);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
}

/* A brotli bomb stops one byte past --max-page with WP_ELIMIT, as a gzip
 * bomb does, without growing its buffer to the bomb's size. */
static void test_brotli_bomb_stops_at_the_cap(void **state)
{
    const size_t max = 1 << 20;
    const char *hdr[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n"};
    for (int k = 0; k < 2; k++) {
        wp_buf block = {0}, t1 = {0}, t2 = {0};
        crawl_http_head h;
        const char *body = NULL;
        size_t len = 0;
        assert_int_equal(wp_buf_puts(&block, hdr[k]), 0);
        if (k == 0)
            assert_int_equal(wp_buf_append(&block, br_bomb, sizeof br_bomb), 0);
        else
            zlib_zeros(16 * max, &block);
        assert_int_equal(crawl_http_split(block.data, block.len, &h), 0);
        assert_int_equal(crawl_http_body(&h, max, &t1, &t2, &body, &len), WP_ELIMIT);
        if (k == 0) {
            assert_int_equal(t2.len, max + 1);
            assert_true(t2.cap <= 4 * max);
            /* Under the cap the same bytes decode: the stream itself is valid. */
            assert_int_equal(crawl_http_body(&h, 64 * max, &t1, &t2, &body, &len), 0);
            assert_int_equal(len, 32 * max);
            assert_true(body[0] == 0 && body[len - 1] == 0);
        }
        wp_buf_free(&block);
        wp_buf_free(&t1);
        wp_buf_free(&t2);
    }
}

/* ---- resource budgets (docs/security.md) ------------------------------ */

/* The attributes of each start tag of html[0..n) as libxml2's SAX parser
 * hands them over: the most any tag got, and the tags seen. */
typedef struct attr_count {
    size_t max_atts, tags;
} attr_count;

static void count_atts(void *ud, const xmlChar *name, const xmlChar **atts)
{
    attr_count *c = ud;
    size_t k = 0;
    (void)name;
    for (; atts != NULL && atts[2 * k] != NULL; k++)
        ;
    if (k > c->max_atts)
        c->max_atts = k;
    c->tags++;
}

static attr_count libxml2_atts(const char *html, size_t n)
{
    htmlSAXHandler sax;
    attr_count c = {0, 0};
    htmlDocPtr d;
    memset(&sax, 0, sizeof sax);
    sax.startElement = count_atts;
    sax.initialized = 1;
    d = htmlSAXParseDoc((const xmlChar *)html, "utf-8", &sax, &c);
    (void)n;
    if (d != NULL)
        xmlFreeDoc(d);
    return c;
}

/* One <img> with 80000 attributes (the duplicate-attribute check would
 * compare each with all before it: 3.2e9 comparisons), once with distinct
 * names and once all the same name: every way into libxml2 (prefilter,
 * prefilter unsure, no prefilter, a non-UTF-8 page) hands it at most
 * --max-attrs, the drop is counted, and the attributes before the cap
 * still count. */
static void test_attributes_capped_before_libxml2(void **state)
{
    const int n_attrs = 80000;
    for (int same = 0; same < 2; same++) {
        for (int way = 0; way < 4; way++) {
            wp_buf page = {0}, out = {0}, tmp = {0};
            crawl_tag_caps caps = {.max_attrs = opts.max_attrs, .max_tag = CRAWL_MAX_TAG_BYTES};
            char label[CRAWL_CHARSET_MAX];
            /* way 1: a doctype the prefilter cannot read (parse whole). */
            assert_int_equal(wp_buf_puts(&page, way == 1 ? "<!DOCTYPE h\xc3\xa9>" : ""), 0);
            assert_int_equal(wp_buf_puts(&page, "<html><body><img src=/a.jpg alt=first"), 0);
            for (int i = 0; i < n_attrs; i++)
                assert_int_equal(
                    same ? wp_buf_puts(&page, " x=1") : wp_buf_printf(&page, " a%d=1", i), 0);
            assert_int_equal(wp_buf_puts(&page, "><img src=/b.jpg alt=second></body></html>"), 0);
            const char *ct =
                way == 3 ? "text/html; charset=iso-8859-1" : "text/html; charset=utf-8";
            assert_int_equal(crawl_decode_html(page.data, page.len, ct, way == 2 ? 0 : CRAWL_PF_ON,
                                               &caps, &out, &tmp, label),
                             0);
            attr_count c = libxml2_atts(out.data, out.len);
            assert_true(c.max_atts <= (size_t)opts.max_attrs);
            assert_true(c.tags >= 4);
            assert_int_equal(caps.attrs_dropped, (uint64_t)(n_attrs + 2 - opts.max_attrs));
            /* Through extraction: both images, the count on the page. */
            opts.no_prefilter = way == 2;
            wp_arena_reset(arena);
            crawl_page *p = extract_ct(page.data, page.len, "http://ex.com/", ct);
            opts.no_prefilter = 0;
            assert_int_equal(p->n_images, 2);
            assert_string_equal(find_img(p, "http://ex.com/a.jpg")->alt, "first");
            assert_string_equal(find_img(p, "http://ex.com/b.jpg")->alt, "second");
            assert_int_equal(p->attrs_capped, (uint64_t)(n_attrs + 2 - opts.max_attrs));
            wp_buf_free(&page);
            wp_buf_free(&out);
            wp_buf_free(&tmp);
        }
    }
    /* A tag under the caps is passed byte for byte. */
    {
        wp_buf out = {0};
        crawl_tag_caps caps = {.max_attrs = 3, .max_tag = CRAWL_MAX_TAG_BYTES};
        const char *ok = "<img src=a alt='x > y' b=c>";
        assert_int_equal(crawl_prefilter(ok, strlen(ok), 0, &caps, &out), 0);
        assert_string_equal(out.data, ok);
        caps.max_attrs = 2;
        assert_int_equal(crawl_prefilter(ok, strlen(ok), 0, &caps, &out), 0);
        assert_string_equal(out.data, "<img src=a alt='x > y'>");
        assert_int_equal(caps.attrs_dropped, 1);
        /* And by bytes: a 2 MiB value is dropped whole, with what follows. */
        wp_buf big = {0};
        caps.max_attrs = 64;
        caps.attrs_dropped = 0;
        assert_int_equal(wp_buf_puts(&big, "<img src=a data-x=\""), 0);
        for (int i = 0; i < (2 << 20) / 8; i++)
            assert_int_equal(wp_buf_puts(&big, "xxxxxxxx"), 0);
        assert_int_equal(wp_buf_puts(&big, "\" alt=z />"), 0);
        assert_int_equal(crawl_prefilter(big.data, big.len, 0, &caps, &out), 0);
        assert_string_equal(out.data, "<img src=a/>");
        assert_int_equal(caps.attrs_dropped, 2);
        wp_buf_free(&big);
        wp_buf_free(&out);
    }
}

/* 20k <img> in one <figure> with a 2000-character caption: the caption is
 * cleaned once and shared (one copy, not 20k), the images past
 * --max-images are counted, not read. */
static void test_images_capped_and_caption_shared(void **state)
{
    wp_buf page = {0};
    const int n = 20000;
    assert_int_equal(wp_buf_puts(&page, "<html><body><figure><figcaption>"), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(wp_buf_puts(&page, "caption .."), 0);
    assert_int_equal(wp_buf_puts(&page, "</figcaption>"), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(wp_buf_printf(&page, "<img src=/i/%d.jpg>", i), 0);
    assert_int_equal(wp_buf_puts(&page, "</figure></body></html>"), 0);
    opts.max_images = 5000;
    size_t used0 = wp_arena_used(arena);
    crawl_page *p = extract_ct(page.data, page.len, "http://ex.com/", NULL);
    assert_int_equal(p->n_images, 5000);
    assert_int_equal(p->drops[CRAWL_DROP_OVER_CAP], n - 5000);
    assert_non_null(p->images[0].figcaption);
    assert_int_equal(strlen(p->images[0].figcaption), 2000);
    for (size_t i = 1; i < p->n_images; i++)
        assert_ptr_equal(p->images[i].figcaption, p->images[0].figcaption);
    /* 5000 images of ~100 bytes each and one caption, not 5000 captions. */
    assert_true(wp_arena_used(arena) - used0 < (size_t)5000 * 400);
    /* The same cap on a WAT record, both readers. */
    for (int full = 0; full < 2; full++) {
        wp_buf j = {0};
        wp_err err = {0};
        crawl_page *w = NULL;
        assert_int_equal(wp_buf_puts(&j,
                                     "{\"Envelope\":{\"WARC-Header-Metadata\":{\"WARC-Target-URI\":"
                                     "\"http://ex.com/\"},\"Payload-Metadata\":{\"HTTP-Response-"
                                     "Metadata\":{\"HTML-Metadata\":{\"Head\":{},\"Links\":["),
                         0);
        for (int i = 0; i < 12000; i++)
            assert_int_equal(
                wp_buf_printf(&j, "%s{\"path\":\"%s\",\"url\":\"/i/%d.jpg\",\"alt\":\"a\"}",
                              i ? "," : "", i % 2 ? "A@/href" : "IMG@/src", i),
                0);
        assert_int_equal(wp_buf_puts(&j, "]}}}}}"), 0);
        opts.no_prefilter = full;
        assert_int_equal(crawl_wat_page(j.data, j.len, &opts, CRAWL_WAT_FULL_MAX, arena, &w, &err),
                         0);
        opts.no_prefilter = 0;
        assert_non_null(w);
        assert_int_equal(w->n_images, 5000);
        assert_int_equal(w->drops[CRAWL_DROP_OVER_CAP], 1000);
        wp_buf_free(&j);
    }
    opts.max_images = CRAWL_DEFAULT_MAX_IMAGES;
    wp_buf_free(&page);
}

/* Appends s[0..n) as one gzip member. */
static void gz_member(wp_buf *out, const char *s, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    assert_int_equal(wp_buf_reserve(out, deflateBound(&z, n) + 64), 0);
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)(out->cap - out->len - 1);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len += z.total_out;
    deflateEnd(&z);
}

/* Appends record k of the damaged-stretch tests ("hello" at
 * http://ex.com/k) as one gzip member. */
static void gz_hello(wp_buf *f, int k)
{
    char rec[256];
    int len = snprintf(rec, sizeof rec,
                       "WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: http://ex.com/%d\r\n"
                       "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n",
                       k);
    gz_member(f, rec, (size_t)len);
}

/* A run of bad gzip member headers (1f 8b 08 with reserved flag bits), and
 * a run of members whose header is fine and whose data is not: each run is
 * skipped in one pass over the bytes, without reading the file again, and
 * reported once with its offset range. */
static void test_bad_gzip_stretch_is_one_event_read_once(void **state)
{
    char *dir = tl_mkdtemp(), path[512];
    wp_buf f = {0};
    int64_t good[3], bad[2];
    for (int k = 0; k < 3; k++) {
        good[k] = (int64_t)f.len;
        gz_hello(&f, k);
        if (k == 0) {
            bad[0] = (int64_t)f.len;
            for (int i = 0; i < 65536; i++)
                assert_int_equal(wp_buf_append(&f, "\x1f\x8b\x08\xff", 4), 0);
        } else if (k == 1) {
            static const char m[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff";
            bad[1] = (int64_t)f.len;
            for (int i = 0; i < 20000; i++)
                assert_int_equal(wp_buf_append(&f, m, sizeof m - 1), 0);
        }
    }
    snprintf(path, sizeof path, "%s/bad.warc.gz", dir);
    assert_int_equal(tl_write(path, f.data, f.len), 0);

    warc_reader *r = NULL;
    warc_record *rec_out = malloc(sizeof *rec_out);
    wp_err err = {0};
    int got[8], n = 0, rc;
    char msgs[2][WP_ERR_MAX];
    int nmsg = 0;
    assert_non_null(rec_out);
    assert_int_equal(warc_open(path, 0, 0, 1 << 20, &r, &err), 0);
    while ((rc = warc_next(r, rec_out, &err)) != WARC_END && n < 8) {
        assert_true(rc >= 0);
        got[n++] = rc;
        if (rc == WARC_CORRUPT && nmsg < 2)
            snprintf(msgs[nmsg++], WP_ERR_MAX, "%s", err.msg);
        if (rc == WARC_RECORD)
            assert_int_equal(rec_out->offset, good[(n - 1) / 2]);
    }
    assert_int_equal(n, 5);
    int want[5] = {WARC_RECORD, WARC_CORRUPT, WARC_RECORD, WARC_CORRUPT, WARC_RECORD};
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], want[i]);
    for (int i = 0; i < 2; i++) {
        char range[96];
        snprintf(range, sizeof range, "bytes %lld-%lld skipped", (long long)bad[i],
                 (long long)good[i + 1]);
        if (strstr(msgs[i], range) == NULL)
            fail_msg("event %d: '%s' lacks '%s'", i, msgs[i], range);
    }
    assert_non_null(strstr(msgs[0], "bad gzip member header"));
    assert_non_null(strstr(msgs[0], "65536 damaged spots in a row"));
    assert_non_null(strstr(msgs[1], "corrupt gzip data"));
    assert_non_null(strstr(msgs[1], "20000 damaged spots in a row"));
    /* Each byte read once (the old reader re-read 256 KiB per bad header). */
    assert_true(warc_bytes_read(r) <= (uint64_t)f.len);
    warc_close(r);
    free(rec_out);
    wp_buf_free(&f);
    tl_rmtree(dir);
}

/* Members whose header is fine and whose data decodes a little (stored
 * blocks, 300 KiB: past one input buffer, so zlib hands out bytes before
 * it sees the bad block after them) and then fails: after a bad header they
 * join its damaged stretch, one event for all of them, none of their bytes
 * read as records. */
static void test_crafted_gzip_members_join_one_stretch(void **state)
{
    char *dir = tl_mkdtemp(), path[512];
    wp_buf f = {0};
    int64_t good[2], bad = 0;
    enum { MEMBERS = 6, BLOCKS = 5, BLOCK = 60000 };
    char *data = malloc(BLOCK);
    assert_non_null(data);
    memset(data, 'x', BLOCK);
    for (int k = 0; k < 2; k++) {
        good[k] = (int64_t)f.len;
        gz_hello(&f, k);
        if (k == 1)
            break;
        bad = (int64_t)f.len;
        assert_int_equal(wp_buf_append(&f, "\x1f\x8b\x08\xff", 4), 0); /* a bad header */
        for (int m = 0; m < MEMBERS; m++) {
            static const char hdr[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";
            assert_int_equal(wp_buf_append(&f, hdr, sizeof hdr - 1), 0);
            for (int b = 0; b < BLOCKS; b++) {
                /* a stored block, not the last: LEN, NLEN, the bytes */
                unsigned char sh[5] = {0, BLOCK & 0xff, BLOCK >> 8, (unsigned char)~(BLOCK & 0xff),
                                       (unsigned char)~(BLOCK >> 8)};
                assert_int_equal(wp_buf_append(&f, sh, sizeof sh), 0);
                assert_int_equal(wp_buf_append(&f, data, BLOCK), 0);
            }
            assert_int_equal(wp_buf_append(&f, "\x06", 1), 0); /* block type 3: invalid */
        }
    }
    snprintf(path, sizeof path, "%s/crafted.warc.gz", dir);
    assert_int_equal(tl_write(path, f.data, f.len), 0);

    warc_reader *r = NULL;
    warc_record *rec_out = malloc(sizeof *rec_out);
    wp_err err = {0};
    int got[16], n = 0, rc;
    char msg[WP_ERR_MAX] = "", range[96];
    assert_non_null(rec_out);
    assert_int_equal(warc_open(path, 0, 0, 1 << 20, &r, &err), 0);
    while ((rc = warc_next(r, rec_out, &err)) != WARC_END && n < 16) {
        assert_true(rc >= 0);
        got[n++] = rc;
        if (rc == WARC_CORRUPT)
            snprintf(msg, sizeof msg, "%s", err.msg);
        if (rc == WARC_RECORD)
            assert_int_equal(rec_out->offset, good[n == 1 ? 0 : 1]);
    }
    assert_int_equal(n, 3);
    assert_int_equal(got[0], WARC_RECORD);
    assert_int_equal(got[1], WARC_CORRUPT);
    assert_int_equal(got[2], WARC_RECORD);
    snprintf(range, sizeof range, "%d damaged spots in a row (bytes %lld-%lld skipped)",
             1 + MEMBERS, (long long)bad, (long long)good[1]);
    if (strstr(msg, range) == NULL)
        fail_msg("'%s' lacks '%s'", msg, range);
    /* each failing member is read again from just after its start (a
     * truncated one may hide the next member), in 256 KiB reads: linear */
    assert_true(warc_bytes_read(r) <= 2 * (uint64_t)f.len + (MEMBERS + 1) * (256u << 10));
    warc_close(r);
    free(rec_out);
    free(data);
    wp_buf_free(&f);
    tl_rmtree(dir);
}

/* The shared table of robots cases (tests/data/robots_cases.tsv) through
 * the crawl's archive path: each value as X-Robots-Tag field lines of an
 * HTTP response block (as a WARC response record stores it), split by
 * crawl_http_split and extracted; and, for one-line values, as the content
 * of <meta name="robots"> and <meta name="witpipe"> (a meta for another
 * bot changes nothing). A page opts out (its images dropped by the sink)
 * exactly when the table says so. */
static void test_robots_table_on_the_crawl_paths(void **state)
{
    tl_robots_case *cases = NULL;
    int n = tl_robots_cases(&cases);
    static const char body[] = "<img src=a.jpg alt=a><a href=b.html>b</a>";
    assert_true(n > 0);
    opts.collect_links = 1;
    for (int i = 0; i < n; i++) {
        const tl_robots_case *c = &cases[i];
        char block[4096], html[2048];
        size_t k =
            (size_t)snprintf(block, sizeof block, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n");
        for (const char *v = c->value; v != NULL;) {
            const char *nl = strchr(v, '\n');
            k += (size_t)snprintf(block + k, sizeof block - k, "%s: %.*s\r\n",
                                  i % 2 ? "x-robots-tag" : "X-Robots-Tag",
                                  (int)(nl ? (size_t)(nl - v) : strlen(v)), v);
            v = nl ? nl + 1 : NULL;
        }
        k += (size_t)snprintf(block + k, sizeof block - k, "\r\n%s", body);
        crawl_http_head h;
        crawl_page *p = NULL;
        wp_err err = {0};
        assert_int_equal(crawl_http_split(block, k, &h), 0);
        assert_int_equal(crawl_extract(h.body, h.body_len, "http://ex.com/", h.ct,
                                       h.xrobots[0] ? h.xrobots : NULL, &opts, arena, &p, &err),
                         0);
        if ((p->noai || p->noindex) != c->opt_out)
            fail_msg("robots_cases.tsv:%d '%s': WARC header noai=%d noindex=%d", c->line, c->value,
                     p->noai, p->noindex);
        assert_int_equal(p->nofollow, (c->flags & NET_ROBOTS_ANY_NOFOLLOW) != 0);
        assert_int_equal(p->n_links, p->nofollow ? 0 : 1);
        if (c->lines > 1)
            continue;
        static const char *const names[] = {"robots", "WitPipe", "googlebot"};
        for (int j = 0; j < 3; j++) {
            snprintf(html, sizeof html, "<meta name=\"%s\" content=\"%s\">%s", names[j], c->value,
                     body);
            p = extract(html, "http://ex.com/");
            int want = j < 2 ? c->opt_out : 0;
            if ((p->noai || p->noindex) != want)
                fail_msg("robots_cases.tsv:%d '%s': <meta name=%s> noai=%d noindex=%d", c->line,
                         c->value, names[j], p->noai, p->noindex);
        }
    }
    opts.collect_links = 0;
    free(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relative_and_base_href, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srcset_takes_largest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_attributes_and_picture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_figcaption_title_lang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entities_and_cleaning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_1252_and_charsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_robots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_robots_table_on_the_crawl_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_and_nofollow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_normalisation, setup, teardown),
        cmocka_unit_test(test_url_site_and_part_key),
        cmocka_unit_test_setup_teardown(test_deep_nesting_and_junk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opts_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefilter_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefilter_keeps_what_text_does_to_the_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prefilter_reads_on_after_a_doctype_in_content, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prefilter_keeps_title_and_caption_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_url_fast_path_matches_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_stores_pair_once_with_sightings, setup, teardown),
        cmocka_unit_test(test_brotli_bomb_stops_at_the_cap),
        cmocka_unit_test_setup_teardown(test_attributes_capped_before_libxml2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_capped_and_caption_shared, setup, teardown),
        cmocka_unit_test(test_bad_gzip_stretch_is_one_event_read_once),
        cmocka_unit_test(test_crafted_gzip_members_join_one_stretch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
