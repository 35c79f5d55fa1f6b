/*
 * crawl/extract.c: images, their candidate texts and the page's links from
 * one HTML page, with libxml2's HTML parser in SAX (streaming) mode.
 *
 * SAX rather than a tree: nothing is built that we do not keep, memory is
 * the page plus what we extract, and pathological nesting (10000 nested
 * tables) costs no recursion. Attribute values arrive with character
 * references already decoded. URLs are kept raw while parsing and resolved
 * at the end, because <base href> applies to the whole document wherever
 * it appears.
 */
#include "crawl_int.h"

#include <ctype.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINKS     20000 /* per page; more are ignored */
#define MAX_FIGURES   4096  /* per page; images in more get no figcaption */
#define MAX_FIG_DEPTH 32    /* nested open <figure>s tracked */
#define MAX_RAW_TEXT  16384 /* bytes of <title>/<figcaption> text collected */
#define MAX_ATTR      8192  /* longer attribute values are cut */

typedef struct raw_img {
    const char *src, *srcset, *data_src, *data_srcset, *data_original;
    const char *pic_best; /* best <picture><source srcset> candidate */
    double pic_score;
    int pic_n;
    const char *alt, *title;
    int fig; /* index into figures, -1 when not in a <figure> */
    int width, height;
} raw_img;

typedef struct parse_state {
    const crawl_opts *o;
    wp_arena *a;
    raw_img *imgs;
    size_t n_imgs, cap_imgs;
    const char **links;
    size_t n_links, cap_links;
    wp_buf *figcap; /* one caption buffer per figure */
    size_t n_figs, cap_figs;
    int fig_stack[MAX_FIG_DEPTH];
    int fig_depth;     /* open <figure>s (may exceed MAX_FIG_DEPTH) */
    int in_figcaption; /* figure index receiving text, or -1 */
    int figcaption_depth;
    int in_title, title_done;
    wp_buf title;
    const char *base_raw, *lang;
    int in_picture;
    const char *pic_best;
    double pic_score;
    int pic_n;
    int noai, noindex, nofollow;
    uint64_t over_cap; /* <img> past o->max_images */
    int oom;
} parse_state;

static const char *attr_dup(parse_state *st, const xmlChar *v)
{
    size_t n;
    const char *s;
    if (v == NULL)
        return "";
    n = strlen((const char *)v);
    if (n > MAX_ATTR)
        n = MAX_ATTR;
    s = wp_arena_strndup(st->a, (const char *)v, n);
    if (s == NULL)
        st->oom = 1;
    return s;
}

static int parse_dim(const char *s)
{
    long v = 0;
    int digits = 0;
    if (s == NULL)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    while (isdigit((unsigned char)*s) && digits < 7) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    return digits ? (int)v : -1;
}

/* ---- srcset ----------------------------------------------------------- */

const char *crawl_srcset_best(const char *s, wp_arena *arena, int *n, double *score)
{
    const char *best = NULL;
    size_t best_len = 0;
    double best_score = -1;
    int count = 0;

    /* HTML "parse a srcset attribute", simplified: URL up to whitespace
     * (a trailing comma ends it), then descriptors up to a comma. */
    while (*s) {
        const char *u, *ue;
        double w = -1, x = -1;
        while (isspace((unsigned char)*s) || *s == ',')
            s++;
        if (!*s)
            break;
        u = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        ue = s;
        while (ue > u && ue[-1] == ',')
            ue--;
        if (ue == s || ue < s) {
            /* descriptors follow unless the URL ended with a comma */
            if (ue == s) {
                while (*s && *s != ',') {
                    while (isspace((unsigned char)*s))
                        s++;
                    if (isdigit((unsigned char)*s) || *s == '.') {
                        char *end;
                        double v = strtod(s, &end);
                        if (*end == 'w' || *end == 'W')
                            w = v;
                        else if (*end == 'x' || *end == 'X')
                            x = v;
                        s = end;
                    }
                    while (*s && *s != ',' && !isspace((unsigned char)*s))
                        s++;
                }
            }
        }
        if (ue == u)
            continue;
        count++;
        /* w descriptors dominate: a width beats any density. */
        double sc = w > 0 ? w : (x > 0 ? x : 1.0) * 1e-3;
        if (sc > best_score) {
            best_score = sc;
            best = u;
            best_len = (size_t)(ue - u);
        }
    }
    if (n)
        *n = count;
    if (score)
        *score = best_score;
    if (best == NULL)
        return NULL;
    return wp_arena_strndup(arena, best, best_len);
}

/* ---- robots directives --------------------------------------------- */

void crawl_robots_directives(const char *content, const crawl_opts *o, int *noai, int *noindex,
                             int *nofollow)
{
    /* One parser for fetch and crawl: net/net_robots.c. */
    unsigned f = net_robots_parse(content, o->token, wp_unix_time());
    if (f & (NET_ROBOTS_NOAI | NET_ROBOTS_NOIMAGEAI | NET_ROBOTS_NOIMAGEINDEX))
        *noai = 1;
    if (f & NET_ROBOTS_ANY_NOINDEX)
        *noindex = 1;
    if (f & NET_ROBOTS_ANY_NOFOLLOW)
        *nofollow = 1;
}

/* ---- SAX callbacks ---------------------------------------------------- */

static void sax_ignore(void *ctx, const xmlChar *s, int len)
{
    (void)ctx;
    (void)s;
    (void)len;
}

static const char *get_attr(const xmlChar **atts, const char *name)
{
    if (atts == NULL)
        return NULL;
    for (int i = 0; atts[i] != NULL; i += 2)
        if (strcmp((const char *)atts[i], name) == 0)
            return atts[i + 1] ? (const char *)atts[i + 1] : "";
    return NULL;
}

static const char *opt_dup(parse_state *st, const xmlChar **atts, const char *name)
{
    const char *v = get_attr(atts, name);
    return v ? attr_dup(st, (const xmlChar *)v) : NULL;
}

static void on_img(parse_state *st, const xmlChar **atts)
{
    raw_img *r;
    if (st->n_imgs >= st->o->max_images) {
        st->over_cap++; /* counted, not read */
        return;
    }
    if (st->n_imgs == st->cap_imgs) {
        size_t cap = st->cap_imgs ? st->cap_imgs * 2 : 32;
        raw_img *p = realloc(st->imgs, cap * sizeof *p);
        if (p == NULL) {
            st->oom = 1;
            return;
        }
        st->imgs = p;
        st->cap_imgs = cap;
    }
    r = &st->imgs[st->n_imgs++];
    memset(r, 0, sizeof *r);
    r->src = opt_dup(st, atts, "src");
    r->srcset = opt_dup(st, atts, "srcset");
    r->data_src = opt_dup(st, atts, "data-src");
    r->data_srcset = opt_dup(st, atts, "data-srcset");
    r->data_original = opt_dup(st, atts, "data-original");
    r->alt = opt_dup(st, atts, "alt");
    r->title = opt_dup(st, atts, "title");
    r->width = parse_dim(get_attr(atts, "width"));
    r->height = parse_dim(get_attr(atts, "height"));
    r->fig = -1;
    if (st->fig_depth > 0 && st->fig_depth <= MAX_FIG_DEPTH)
        r->fig = st->fig_stack[st->fig_depth - 1];
    if (st->in_picture) {
        r->pic_best = st->pic_best;
        r->pic_score = st->pic_score;
        r->pic_n = st->pic_n;
    }
}

static void on_link(parse_state *st, const xmlChar **atts)
{
    const char *href = get_attr(atts, "href"), *rel = get_attr(atts, "rel");
    if (href == NULL || st->n_links >= MAX_LINKS || !st->o->collect_links)
        return;
    if (rel != NULL) {
        int na = 0, ni = 0, nf = 0;
        crawl_robots_directives(rel, st->o, &na, &ni, &nf);
        if (nf)
            return;
    }
    if (st->n_links == st->cap_links) {
        size_t cap = st->cap_links ? st->cap_links * 2 : 64;
        const char **p = realloc(st->links, cap * sizeof *p);
        if (p == NULL) {
            st->oom = 1;
            return;
        }
        st->links = p;
        st->cap_links = cap;
    }
    st->links[st->n_links++] = attr_dup(st, (const xmlChar *)href);
}

static void on_figure_open(parse_state *st)
{
    st->fig_depth++;
    if (st->fig_depth > MAX_FIG_DEPTH)
        return;
    if (st->n_figs >= MAX_FIGURES) {
        st->fig_stack[st->fig_depth - 1] = -1;
        return;
    }
    if (st->n_figs == st->cap_figs) {
        size_t cap = st->cap_figs ? st->cap_figs * 2 : 8;
        wp_buf *p = realloc(st->figcap, cap * sizeof *p);
        if (p == NULL) {
            st->oom = 1;
            st->fig_stack[st->fig_depth - 1] = -1;
            return;
        }
        st->figcap = p;
        st->cap_figs = cap;
    }
    memset(&st->figcap[st->n_figs], 0, sizeof st->figcap[0]);
    st->fig_stack[st->fig_depth - 1] = (int)st->n_figs++;
}

static void on_meta(parse_state *st, const xmlChar **atts)
{
    const char *name = get_attr(atts, "name"), *content = get_attr(atts, "content");
    if (name == NULL || content == NULL)
        return;
    /* "robots" speaks to every crawler, our token to us (the same rule as
     * the robots.txt product token). */
    if (net_robots_meta_name(name, st->o->token))
        crawl_robots_directives(content, st->o, &st->noai, &st->noindex, &st->nofollow);
}

static void sax_start(void *ud, const xmlChar *xname, const xmlChar **atts)
{
    parse_state *st = ud;
    const char *name = (const char *)xname;
    switch (name[0]) {
    case 'a':
        if (strcmp(name, "a") == 0 || strcmp(name, "area") == 0)
            on_link(st, atts);
        break;
    case 'b':
        if (strcmp(name, "base") == 0 && st->base_raw == NULL) {
            const char *h = get_attr(atts, "href");
            if (h != NULL)
                st->base_raw = attr_dup(st, (const xmlChar *)h);
        }
        break;
    case 'f':
        if (strcmp(name, "figure") == 0) {
            on_figure_open(st);
        } else if (strcmp(name, "figcaption") == 0 && st->in_figcaption < 0 && st->fig_depth > 0 &&
                   st->fig_depth <= MAX_FIG_DEPTH && st->fig_stack[st->fig_depth - 1] >= 0) {
            st->in_figcaption = st->fig_stack[st->fig_depth - 1];
            st->figcaption_depth = st->fig_depth;
        }
        break;
    case 'h':
        if (strcmp(name, "html") == 0 && st->lang == NULL) {
            const char *l = get_attr(atts, "lang");
            if (l == NULL)
                l = get_attr(atts, "xml:lang");
            if (l != NULL)
                st->lang = attr_dup(st, (const xmlChar *)l);
        }
        break;
    case 'i':
        if (strcmp(name, "img") == 0)
            on_img(st, atts);
        break;
    case 'm':
        if (strcmp(name, "meta") == 0)
            on_meta(st, atts);
        break;
    case 'p':
        if (strcmp(name, "picture") == 0) {
            st->in_picture = 1;
            st->pic_best = NULL;
            st->pic_score = -1;
            st->pic_n = 0;
        }
        break;
    case 's':
        if (strcmp(name, "source") == 0 && st->in_picture) {
            const char *ss = get_attr(atts, "srcset");
            int n = 0;
            double sc = -1;
            const char *best;
            if (ss == NULL)
                ss = get_attr(atts, "data-srcset");
            if (ss == NULL)
                break;
            best = crawl_srcset_best(ss, st->a, &n, &sc);
            st->pic_n += n;
            if (best != NULL && sc > st->pic_score) {
                st->pic_best = best;
                st->pic_score = sc;
            }
        }
        break;
    case 't':
        if (strcmp(name, "title") == 0 && !st->title_done)
            st->in_title = 1;
        break;
    default:
        break;
    }
}

static void sax_end(void *ud, const xmlChar *xname)
{
    parse_state *st = ud;
    const char *name = (const char *)xname;
    if (name[0] == 'f') {
        if (strcmp(name, "figure") == 0 && st->fig_depth > 0) {
            if (st->in_figcaption >= 0 && st->figcaption_depth == st->fig_depth)
                st->in_figcaption = -1;
            st->fig_depth--;
        } else if (strcmp(name, "figcaption") == 0 && st->figcaption_depth == st->fig_depth) {
            st->in_figcaption = -1;
        }
    } else if (name[0] == 't' && strcmp(name, "title") == 0 && st->in_title) {
        st->in_title = 0;
        st->title_done = 1;
    } else if (name[0] == 'p' && strcmp(name, "picture") == 0) {
        st->in_picture = 0;
    }
}

static void sax_text(void *ud, const xmlChar *ch, int len)
{
    parse_state *st = ud;
    wp_buf *b = NULL;
    if (st->in_title)
        b = &st->title;
    else if (st->in_figcaption >= 0)
        b = &st->figcap[st->in_figcaption];
    if (b == NULL || b->len >= MAX_RAW_TEXT)
        return;
    if ((size_t)len > MAX_RAW_TEXT - b->len)
        len = (int)wp_utf8_floor((const char *)ch, (size_t)len, MAX_RAW_TEXT - b->len);
    if (wp_buf_append(b, ch, (size_t)len) != 0)
        st->oom = 1;
}

static void sax_error(void *ud, const char *msg, ...)
{
    (void)ud;
    (void)msg;
}

static void sax_serror(void *ud, xmlErrorPtr e)
{
    (void)ud;
    (void)e;
}

/* ---- after the parse -------------------------------------------------- */

/* Resolves the image's URL from its candidates in order of preference;
 * returns 0 or the first candidate's drop reason. */
static int choose_url(const raw_img *r, const char *base, wp_arena *a, crawl_image *out)
{
    const char *cands[5], *attrs[5];
    int nc = 0, first_rc = -1, n = 0;
    double sc = -1, best_sc = -1;
    const char *best = NULL, *best_attr = NULL;

    const char *b1 = r->srcset ? crawl_srcset_best(r->srcset, a, &n, &sc) : NULL;
    out->srcset_n = n;
    if (b1 != NULL) {
        best = b1;
        best_sc = sc;
        best_attr = "srcset";
    }
    if (r->data_srcset) {
        const char *b2 = crawl_srcset_best(r->data_srcset, a, &n, &sc);
        out->srcset_n += n;
        if (b2 != NULL && sc > best_sc) {
            best = b2;
            best_sc = sc;
            best_attr = "data-srcset";
        }
    }
    if (r->pic_best != NULL && r->pic_score > best_sc) {
        best = r->pic_best;
        best_attr = "source";
    }
    out->srcset_n += r->pic_n;
    if (best != NULL) {
        cands[nc] = best;
        attrs[nc++] = best_attr;
    }
    if (r->data_src) {
        cands[nc] = r->data_src;
        attrs[nc++] = "data-src";
    }
    if (r->data_original) {
        cands[nc] = r->data_original;
        attrs[nc++] = "data-original";
    }
    if (r->src) {
        cands[nc] = r->src;
        attrs[nc++] = "src";
    }
    if (nc == 0)
        return CRAWL_DROP_BAD_URL;
    for (int i = 0; i < nc; i++) {
        const char *u;
        int rc = crawl_url_resolve(base, cands[i], strlen(cands[i]), a, &u);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            out->url = u;
            out->attr = attrs[i];
            return 0;
        }
        if (first_rc < 0)
            first_rc = rc;
    }
    return first_rc;
}

static int finish(parse_state *st, const char *page_url, crawl_page *pg, size_t used0, wp_err *err)
{
    wp_buf tmp = {0};
    int oom = 0, rc = 0;
    const char *base = NULL;
    const char **fig_text = NULL;
    int *fig_refused = NULL;
    unsigned char *fig_done = NULL;

    if (crawl_url_normalize(page_url, st->a, &base) < 0)
        goto nomem;
    if (base == NULL)
        base = page_url;
    if (st->base_raw != NULL) {
        const char *b = NULL;
        int r = crawl_url_resolve(base, st->base_raw, strlen(st->base_raw), st->a, &b);
        if (r < 0)
            goto nomem;
        if (r == 0)
            base = b;
    }
    pg->base = base;
    pg->title = crawl_clean_dup(st->title.data, st->title.len, 0, st->o, st->a, &tmp, NULL, &oom);
    pg->lang = st->lang
                   ? crawl_clean_dup(st->lang, strlen(st->lang), 0, st->o, st->a, &tmp, NULL, &oom)
                   : NULL;
    pg->noai = st->noai;
    pg->noindex = st->noindex;
    pg->nofollow = st->nofollow;
    pg->images = wp_arena_calloc(st->a, (st->n_imgs ? st->n_imgs : 1) * sizeof *pg->images);
    if (pg->images == NULL)
        goto nomem;
    pg->drops[CRAWL_DROP_OVER_CAP] += st->over_cap;
    /* Each figure's caption is cleaned once and shared by its images. */
    if (st->n_figs > 0 &&
        ((fig_text = wp_arena_calloc(st->a, st->n_figs * sizeof *fig_text)) == NULL ||
         (fig_refused = wp_arena_calloc(st->a, st->n_figs * sizeof *fig_refused)) == NULL ||
         (fig_done = wp_arena_calloc(st->a, st->n_figs)) == NULL))
        goto nomem;
    for (size_t i = 0; i < st->n_imgs; i++) {
        const raw_img *r = &st->imgs[i];
        crawl_image *im = &pg->images[pg->n_images];
        /* What one page may add to the batch arena is bounded too: long
         * URLs resolved against a long base add up past the page's size. */
        if (wp_arena_used(st->a) - used0 > CRAWL_PAGE_OUT_MAX) {
            pg->drops[CRAWL_DROP_OVER_CAP] += st->n_imgs - i;
            break;
        }
        memset(im, 0, sizeof *im);
        im->width = r->width;
        im->height = r->height;
        /* Declared 1x1 / 2x2 images are tracking pixels, not pictures. */
        if (r->width >= 0 && r->width <= 2 && r->height >= 0 && r->height <= 2) {
            pg->drops[CRAWL_DROP_PIXEL]++;
            continue;
        }
        rc = choose_url(r, base, st->a, im);
        if (rc < 0)
            goto nomem;
        if (rc > 0) {
            pg->drops[rc]++;
            rc = 0;
            continue;
        }
        if (crawl_url_skip_ext(st->o, im->url)) {
            pg->drops[CRAWL_DROP_SKIP_EXT]++;
            continue;
        }
        im->alt = crawl_clean_dup(r->alt, r->alt ? strlen(r->alt) : 0, 0, st->o, st->a, &tmp,
                                  &im->refused[CRAWL_TEXT_ALT], &oom);
        im->title = crawl_clean_dup(r->title, r->title ? strlen(r->title) : 0, 0, st->o, st->a,
                                    &tmp, &im->refused[CRAWL_TEXT_TITLE], &oom);
        if (r->fig >= 0) {
            if (!fig_done[r->fig]) {
                fig_text[r->fig] =
                    crawl_clean_dup(st->figcap[r->fig].data, st->figcap[r->fig].len, 0, st->o,
                                    st->a, &tmp, &fig_refused[r->fig], &oom);
                fig_done[r->fig] = 1;
            }
            im->figcaption = fig_text[r->fig];
            im->refused[CRAWL_TEXT_FIGCAPTION] = fig_refused[r->fig];
        }
        pg->n_images++;
    }
    if (st->o->collect_links && !st->nofollow && st->n_links > 0) {
        pg->links = wp_arena_alloc(st->a, st->n_links * sizeof *pg->links);
        if (pg->links == NULL)
            goto nomem;
        for (size_t i = 0; i < st->n_links; i++) {
            const char *u;
            int r;
            if (st->links[i] == NULL)
                continue;
            r = crawl_url_resolve(base, st->links[i], strlen(st->links[i]), st->a, &u);
            if (r < 0)
                goto nomem;
            if (r == 0)
                pg->links[pg->n_links++] = u;
        }
    }
    if (oom)
        goto nomem;
    wp_buf_free(&tmp);
    return 0;
nomem:
    wp_buf_free(&tmp);
    return wp_err_set(err, WP_ENOMEM, "%s: out of memory extracting images", page_url);
}

int crawl_extract(const char *html, size_t len, const char *page_url, const char *http_ct,
                  const char *x_robots, const crawl_opts *o, wp_arena *arena, crawl_page **out,
                  wp_err *err)
{
    htmlSAXHandler sax;
    htmlParserCtxtPtr ctxt = NULL;
    parse_state st;
    wp_buf utf8 = {0}, tmp = {0};
    char label[CRAWL_CHARSET_MAX];
    crawl_page *pg;
    crawl_tag_caps caps = {.max_attrs = o->max_attrs, .max_tag = CRAWL_MAX_TAG_BYTES};
    size_t used0 = wp_arena_used(arena);
    int rc = 0;

    *out = NULL;
    memset(&st, 0, sizeof st);
    st.o = o;
    st.a = arena;
    st.in_figcaption = -1;
    pg = wp_arena_calloc(arena, sizeof *pg);
    if (pg == NULL || (pg->url = wp_arena_strdup(arena, page_url)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", page_url);
    if (crawl_decode_html(html, len, http_ct,
                          o->no_prefilter ? 0
                                          : CRAWL_PF_ON | (o->collect_links ? CRAWL_PF_LINKS : 0),
                          &caps, &utf8, &tmp, label) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory decoding the page", page_url);
        goto out;
    }
    if ((pg->charset = wp_arena_strdup(arena, label)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", page_url);
        goto out;
    }
    memset(&sax, 0, sizeof sax);
    sax.startElement = sax_start;
    sax.endElement = sax_end;
    sax.characters = sax_text;
    /* <script>/<style> bodies are not captions: without a cdataBlock
     * handler libxml2 2.9 hands them to characters. */
    sax.cdataBlock = sax_ignore;
    sax.ignorableWhitespace = sax_text;
    sax.warning = sax_error;
    sax.error = sax_error;
    sax.fatalError = sax_error;
    sax.initialized = XML_SAX2_MAGIC;
    sax.serror = sax_serror;
    /* The pull parser on the whole page: the push parser's look-ahead
     * scans cost more than the parse itself on script-heavy pages. */
    ctxt = htmlCreateMemoryParserCtxt(
        utf8.len > 0 ? utf8.data : " ",
        utf8.len > 0 ? (int)(utf8.len > INT32_MAX ? INT32_MAX : utf8.len) : 1);
    if (ctxt == NULL) {
        rc = wp_err_set(err, CRAWL_EPARSE, "%s: cannot create the HTML parser", page_url);
        goto out;
    }
    {
        htmlSAXHandler *h = xmlMalloc(sizeof *h);
        if (h == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", page_url);
            goto out;
        }
        memcpy(h, &sax, sizeof *h);
        if (ctxt->sax != NULL)
            xmlFree(ctxt->sax);
        ctxt->sax = h;
        ctxt->userData = &st;
    }
    /* The bytes are UTF-8 now whatever the page declares: a <meta charset>
     * must not switch the decoder again (HTML_PARSE_IGNORE_ENC). */
    htmlCtxtUseOptions(ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                 HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT);
    xmlSwitchEncoding(ctxt, XML_CHAR_ENCODING_UTF8);
    htmlParseDocument(ctxt);
    if (st.oom) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory parsing the page", page_url);
        goto out;
    }
    if (x_robots != NULL)
        crawl_robots_directives(x_robots, o, &st.noai, &st.noindex, &st.nofollow);
    if ((rc = finish(&st, page_url, pg, used0, err)) != 0)
        goto out;
    pg->attrs_capped = caps.attrs_dropped;
    *out = pg;
out:
    if (ctxt != NULL) {
        if (ctxt->myDoc != NULL)
            xmlFreeDoc(ctxt->myDoc);
        htmlFreeParserCtxt(ctxt);
    }
    for (size_t i = 0; i < st.n_figs; i++)
        wp_buf_free(&st.figcap[i]);
    free(st.figcap);
    free(st.imgs);
    free(st.links);
    wp_buf_free(&st.title);
    wp_buf_free(&utf8);
    wp_buf_free(&tmp);
    return rc;
}
