/*
 * crawl/wat.c: Common Crawl WAT metadata records to pages.
 *
 * A WAT file is a WARC file whose metadata records hold JSON describing
 * each crawled response. The images are the entries of
 * Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata.Links
 * whose path is "IMG@/src" (or another image attribute: data-src,
 * srcset...), each with its alt and title; the page URL is
 * Envelope.WARC-Header-Metadata.WARC-Target-URI, and relative URLs resolve
 * against HTML-Metadata.Head.Base when present. Texts go through the same
 * cleaning as extracted HTML (with character references decoded, since
 * some producers leave them in).
 */
#include "crawl_int.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

static json_t *path_get(json_t *o, const char *const *keys, int n)
{
    for (int i = 0; i < n && o != NULL; i++)
        o = json_is_object(o) ? json_object_get(o, keys[i]) : NULL;
    return o;
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A cleaned copy (entities decoded) of s in the arena; NULL when absent. */
static const char *clean(const char *s, const crawl_opts *o, wp_arena *a, wp_buf *tmp, int *refused,
                         int *oom)
{
    return crawl_clean_dup(s, s ? strlen(s) : 0, CRAWL_CLEAN_ENTITIES, o, a, tmp, refused, oom);
}

/* Adds the image of one Links entry (if it is an IMG@ entry with a usable
 * URL) to pg->images[pg->n_images], which must have room. Returns 0 or
 * WP_ENOMEM. */
static int add_link(crawl_page *pg, const char *path, const char *url, const char *alt,
                    const char *title, const char *base, const crawl_opts *o, wp_arena *arena,
                    wp_buf *tmp, int *oom)
{
    const char *attr, *ref = url, *u = NULL;
    crawl_image *im = &pg->images[pg->n_images];
    int r, sn = 0;
    if (path == NULL || url == NULL || strncasecmp(path, "IMG@/", 5) != 0)
        return 0;
    attr = path + 5;
    memset(im, 0, sizeof *im);
    im->width = im->height = -1;
    if (strcasecmp(attr, "srcset") == 0 || strcasecmp(attr, "data-srcset") == 0) {
        ref = crawl_srcset_best(url, arena, &sn, NULL);
        im->srcset_n = sn;
        if (ref == NULL) {
            pg->drops[CRAWL_DROP_BAD_URL]++;
            return 0;
        }
    }
    r = crawl_url_resolve(base, ref, strlen(ref), arena, &u);
    if (r < 0)
        return r;
    if (r > 0) {
        pg->drops[r]++;
        return 0;
    }
    if (crawl_url_skip_ext(o, u)) {
        pg->drops[CRAWL_DROP_SKIP_EXT]++;
        return 0;
    }
    im->url = u;
    if ((im->attr = wp_arena_strdup(arena, attr)) == NULL)
        return WP_ENOMEM;
    im->alt = clean(alt, o, arena, tmp, &im->refused[CRAWL_TEXT_ALT], oom);
    im->title = clean(title, o, arena, tmp, &im->refused[CRAWL_TEXT_TITLE], oom);
    pg->n_images++;
    return 0;
}

/* The reference decoder: the whole record through jansson. Used when the
 * fast path below cannot be sure of the layout. */
static int wat_page_full(const char *json, size_t len, const crawl_opts *o, wp_arena *arena,
                         crawl_page **out, wp_err *err)
{
    static const char *const k_uri[] = {"Envelope", "WARC-Header-Metadata", "WARC-Target-URI"};
    static const char *const k_html[] = {"Envelope", "Payload-Metadata", "HTTP-Response-Metadata",
                                         "HTML-Metadata"};
    static const char *const k_hdrs[] = {"Envelope", "Payload-Metadata", "HTTP-Response-Metadata",
                                         "Headers"};
    json_error_t jerr;
    json_t *root, *html, *links, *head, *metas;
    crawl_page *pg;
    wp_buf tmp = {0};
    const char *uri, *base = NULL, *xr;
    int oom = 0, rc = 0;
    size_t n;

    *out = NULL;
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL)
        return wp_err_set(err, WP_EFORMAT, "broken JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    uri = json_string_value(path_get(root, k_uri, 3));
    html = path_get(root, k_html, 4);
    if (uri == NULL || !json_is_object(html))
        goto out; /* request, warcinfo, non-HTML: nothing for us */
    links = json_object_get(html, "Links");
    head = json_object_get(html, "Head");
    if ((pg = wp_arena_calloc(arena, sizeof *pg)) == NULL)
        goto nomem;
    if ((pg->url = wp_arena_strdup(arena, uri)) == NULL)
        goto nomem;
    pg->charset = "utf-8";
    if (crawl_url_normalize(uri, arena, &base) < 0)
        goto nomem;
    if (base == NULL) {
        pg->n_images = 0;
        *out = pg;
        goto out; /* not an http(s) page */
    }
    {
        const char *hb = str_of(head, "Base");
        const char *b = NULL;
        if (hb != NULL) {
            int r = crawl_url_resolve(base, hb, strlen(hb), arena, &b);
            if (r < 0)
                goto nomem;
            if (r == 0)
                base = b;
        }
    }
    pg->base = base;
    pg->title = clean(str_of(head, "Title"), o, arena, &tmp, NULL, &oom);
    metas = json_object_get(head, "Metas");
    if (json_is_array(metas)) {
        json_t *m;
        size_t i;
        json_array_foreach(metas, i, m)
        {
            const char *name = str_of(m, "name"), *content = str_of(m, "content");
            if (name != NULL && content != NULL &&
                (strcasecmp(name, "robots") == 0 || strcasecmp(name, o->token) == 0))
                crawl_robots_directives(content, o, 0, &pg->noai, &pg->noindex, &pg->nofollow);
        }
    }
    {
        /* Field names are case-insensitive (RFC 9110 section 5.1); HTTP/2
         * servers send them in lower case. */
        json_t *hdrs = path_get(root, k_hdrs, 4), *v;
        const char *key;
        if (json_is_object(hdrs))
            json_object_foreach(hdrs, key, v)
            {
                if (strcasecmp(key, "X-Robots-Tag") != 0)
                    continue;
                if ((xr = json_string_value(v)) != NULL)
                    crawl_robots_directives(xr, o, 1, &pg->noai, &pg->noindex, &pg->nofollow);
                for (size_t j = 0; json_is_array(v) && j < json_array_size(v); j++)
                    if ((xr = json_string_value(json_array_get(v, j))) != NULL)
                        crawl_robots_directives(xr, o, 1, &pg->noai, &pg->noindex, &pg->nofollow);
            }
    }
    n = json_is_array(links) ? json_array_size(links) : 0;
    pg->images = wp_arena_calloc(arena, (n ? n : 1) * sizeof *pg->images);
    if (pg->images == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(links, i);
        if (add_link(pg, str_of(l, "path"), str_of(l, "url"), str_of(l, "alt"), str_of(l, "title"),
                     base, o, arena, &tmp, &oom) < 0)
            goto nomem;
    }
    if (oom)
        goto nomem;
    *out = pg;
    goto out;
nomem:
    rc = wp_err_set(err, WP_ENOMEM, "out of memory decoding WAT metadata");
out:
    json_decref(root);
    wp_buf_free(&tmp);
    return rc;
}

/* ---- the fast path ---------------------------------------------------- */

/* Index after the JSON string starting at p[i] == '"', or n if unterminated. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    i++;
    while (i < n) {
        const char *q = memchr(p + i, '"', n - i);
        size_t k, bs = 0;
        if (q == NULL)
            return n;
        k = (size_t)(q - p);
        while (k - bs > i && p[k - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return k + 1;
        i = k + 1;
    }
    return n;
}

/* Index after the object/array starting at p[i], or n if unbalanced. */
static size_t skip_compound(const char *p, size_t i, size_t n)
{
    int depth = 0;
    while (i < n) {
        char c = p[i];
        if (c == '"') {
            i = skip_string(p, i, n);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return n;
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* The value position of the first "key": at or after from, or n. */
static size_t find_value(const char *p, size_t from, size_t n, const char *quoted_key)
{
    size_t k = strlen(quoted_key);
    const char *hit = from < n ? memmem(p + from, n - from, quoted_key, k) : NULL;
    size_t i;
    if (hit == NULL)
        return n;
    i = skip_ws(p, (size_t)(hit - p) + k, n);
    if (i >= n || p[i] != ':')
        return n;
    return skip_ws(p, i + 1, n);
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

static int put_cp(wp_buf *b, unsigned cp)
{
    char e[4];
    size_t k;
    if (cp < 0x80) {
        e[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        e[0] = (char)(0xC0 | (cp >> 6));
        e[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        e[0] = (char)(0xE0 | (cp >> 12));
        e[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        e[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        e[0] = (char)(0xF0 | (cp >> 18));
        e[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        e[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        e[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    return wp_buf_append(b, e, k);
}

/* Decodes the JSON string at p[i] == '"' (RFC 8259 section 7) into out
 * (replacing its contents). Returns the index after it, or n when it is
 * broken. Lone surrogates become U+FFFD; bytes are passed through (text
 * cleaning repairs invalid UTF-8 later). */
static size_t decode_string(const char *p, size_t i, size_t n, wp_buf *out)
{
    wp_buf_reset(out);
    i++;
    while (i < n) {
        size_t r = i;
        while (r < n && p[r] != '"' && p[r] != '\\')
            r++;
        if (r > i && wp_buf_append(out, p + i, r - i) != 0)
            return n;
        if (r >= n)
            return n;
        if (p[r] == '"') {
            if (out->data == NULL && wp_buf_reserve(out, 0) != 0)
                return n;
            return r + 1;
        }
        if (r + 1 >= n)
            return n;
        char c = p[r + 1], e = 0;
        i = r + 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            e = c;
            break;
        case 'b':
            e = '\b';
            break;
        case 'f':
            e = '\f';
            break;
        case 'n':
            e = '\n';
            break;
        case 'r':
            e = '\r';
            break;
        case 't':
            e = '\t';
            break;
        case 'u': {
            unsigned v, lo;
            if (i + 4 > n || hex4(p + i, &v) != 0)
                return n;
            i += 4;
            if (v >= 0xD800 && v <= 0xDBFF && i + 6 <= n && p[i] == '\\' && p[i + 1] == 'u' &&
                hex4(p + i + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (v >= 0xD800 && v <= 0xDFFF) {
                v = 0xFFFD;
            }
            if (put_cp(out, v) != 0)
                return n;
            continue;
        }
        default:
            return n;
        }
        if (wp_buf_putc(out, e) != 0)
            return n;
    }
    return n;
}

/* Decodes the JSON string at p[i] into the arena: NULL if there is no
 * string there (or out of memory: *oom), *bad set if it is broken. */
static const char *string_at(const char *p, size_t i, size_t n, wp_arena *a, wp_buf *tmp, int *bad)
{
    if (i >= n || p[i] != '"')
        return NULL;
    if (decode_string(p, i, n, tmp) >= n) {
        *bad = 1;
        return NULL;
    }
    return wp_arena_strndup(a, tmp->data, tmp->len);
}

/* One Links entry: a flat object whose string values we want. */
typedef struct link_fields {
    const char *path, *url, *alt, *title;
    const char *name, *content; /* for Head.Metas entries */
} link_fields;

/* Reads the object at p[i] == '{' into f (strings in the arena; other
 * members skipped). Returns the index after it, or n when it is broken. */
static size_t read_link(const char *p, size_t i, size_t n, link_fields *f, wp_arena *a, wp_buf *tmp)
{
    memset(f, 0, sizeof *f);
    i = skip_ws(p, i + 1, n);
    if (i < n && p[i] == '}')
        return i + 1;
    while (i < n) {
        size_t ks, ke;
        const char **slot = NULL;
        if (p[i] != '"')
            return n;
        ks = i + 1;
        ke = skip_string(p, i, n);
        if (ke >= n)
            return n;
        size_t kl = ke - 1 - ks;
        if (kl == 4 && memcmp(p + ks, "path", 4) == 0)
            slot = &f->path;
        else if (kl == 3 && memcmp(p + ks, "url", 3) == 0)
            slot = &f->url;
        else if (kl == 3 && memcmp(p + ks, "alt", 3) == 0)
            slot = &f->alt;
        else if (kl == 5 && memcmp(p + ks, "title", 5) == 0)
            slot = &f->title;
        else if (kl == 4 && memcmp(p + ks, "name", 4) == 0)
            slot = &f->name;
        else if (kl == 7 && memcmp(p + ks, "content", 7) == 0)
            slot = &f->content;
        i = skip_ws(p, ke, n);
        if (i >= n || p[i] != ':')
            return n;
        i = skip_ws(p, i + 1, n);
        if (i >= n)
            return n;
        if (p[i] == '"') {
            size_t ve = decode_string(p, i, n, tmp);
            if (ve >= n)
                return n;
            if (slot != NULL && (*slot = wp_arena_strndup(a, tmp->data, tmp->len)) == NULL)
                return n;
            i = ve;
        } else if (p[i] == '{' || p[i] == '[') {
            i = skip_compound(p, i, n);
        } else {
            while (i < n && p[i] != ',' && p[i] != '}')
                i++;
        }
        i = skip_ws(p, i, n);
        if (i < n && p[i] == '}')
            return i + 1;
        if (i >= n || p[i] != ',')
            return n;
        i = skip_ws(p, i + 1, n);
    }
    return n;
}

enum { FAST_OK = 0, FAST_FALLBACK = 1 };

/* Applies every X-Robots-Tag in the Headers object at p[i] == '{' (names
 * compared case-insensitively, RFC 9110 section 5.1). Returns FAST_OK,
 * FAST_FALLBACK for a value that is not a plain string, or WP_EFORMAT
 * when the object is broken. */
static int robots_headers(const char *p, size_t i, size_t n, crawl_page *pg, const crawl_opts *o,
                          wp_arena *arena, wp_buf *tmp)
{
    i = skip_ws(p, i + 1, n);
    while (i < n && p[i] != '}') {
        size_t ks = i + 1, ke, v;
        int bad = 0;
        if (p[i] != '"' || (ke = skip_string(p, i, n)) >= n)
            return WP_EFORMAT;
        v = skip_ws(p, ke, n);
        if (v >= n || p[v] != ':')
            return WP_EFORMAT;
        v = skip_ws(p, v + 1, n);
        if (v >= n || p[v] != '"')
            return FAST_FALLBACK;
        if (ke - 1 - ks == 12 && strncasecmp(p + ks, "X-Robots-Tag", 12) == 0) {
            const char *xr = string_at(p, v, n, arena, tmp, &bad);
            if (bad)
                return WP_EFORMAT;
            if (xr != NULL)
                crawl_robots_directives(xr, o, 1, &pg->noai, &pg->noindex, &pg->nofollow);
        }
        i = skip_ws(p, skip_string(p, v, n), n);
        if (i < n && p[i] == ',')
            i = skip_ws(p, i + 1, n);
    }
    return i < n ? FAST_OK : WP_EFORMAT;
}

/* Common Crawl writes each record as one JSON object whose keys are
 * unique enough to be found directly, and each link object starts with
 * "path". So instead of building the whole tree (most of it A@/href
 * links we do not want) we find the few values we need, parse the Head
 * object and each IMG@ link object with jansson, and skip the rest at
 * memchr/memmem speed. Anything unexpected falls back to the full parse. */
static int wat_page_fast(const char *p, size_t n, const crawl_opts *o, wp_arena *arena,
                         crawl_page **out, wp_buf *tmp, wp_err *err)
{
    size_t b = skip_ws(p, 0, n), e = n, hm, i;
    int bad = 0, oom = 0;
    const char *uri, *base = NULL;
    crawl_page *pg;
    size_t cap = 16;

    while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\n' || p[e - 1] == '\r' || p[e - 1] == '\t'))
        e--;
    if (b >= e || p[b] != '{' || p[e - 1] != '}')
        return wp_err_set(err, WP_EFORMAT,
                          "broken JSON: the record is not one object "
                          "(truncated?)");
    n = e;
    uri = string_at(p, find_value(p, b, n, "\"WARC-Target-URI\""), n, arena, tmp, &bad);
    if (bad)
        return wp_err_set(err, WP_EFORMAT, "broken JSON: bad WARC-Target-URI string");
    hm = find_value(p, b, n, "\"HTML-Metadata\"");
    if (uri == NULL || hm >= n) {
        *out = NULL;
        return FAST_OK;
    }
    if (p[hm] != '{')
        return FAST_FALLBACK;
    if ((pg = wp_arena_calloc(arena, sizeof *pg)) == NULL)
        goto nomem;
    pg->url = uri;
    pg->charset = "utf-8";
    if (crawl_url_normalize(uri, arena, &base) < 0)
        goto nomem;
    if (base == NULL) {
        *out = pg; /* not an http(s) page */
        return FAST_OK;
    }
    i = find_value(p, hm, n, "\"Head\"");
    if (i < n && p[i] == '{') {
        /* Head is small but jansson's set-up per call costs more than the
         * whole targeted read: Title, Base and Metas are found directly. */
        size_t he = skip_compound(p, i, n), m;
        if (he >= n)
            return wp_err_set(err, WP_EFORMAT, "broken JSON: unbalanced Head object");
        const char *hb = string_at(p, find_value(p, i, he, "\"Base\""), he, arena, tmp, &bad);
        const char *rb = NULL;
        if (hb != NULL) {
            int r = crawl_url_resolve(base, hb, strlen(hb), arena, &rb);
            if (r < 0)
                goto nomem;
            if (r == 0)
                base = rb;
        }
        pg->title = clean(string_at(p, find_value(p, i, he, "\"Title\""), he, arena, tmp, &bad), o,
                          arena, tmp, NULL, &oom);
        m = find_value(p, i, he, "\"Metas\"");
        if (m < he && p[m] == '[') {
            m = skip_ws(p, m + 1, he);
            while (m < he && p[m] == '{') {
                link_fields f;
                m = read_link(p, m, he, &f, arena, tmp);
                if (m >= he) {
                    bad = 1;
                    break;
                }
                if (f.name != NULL && f.content != NULL &&
                    (strcasecmp(f.name, "robots") == 0 || strcasecmp(f.name, o->token) == 0))
                    crawl_robots_directives(f.content, o, 0, &pg->noai, &pg->noindex,
                                            &pg->nofollow);
                m = skip_ws(p, m, he);
                if (m < he && p[m] == ',')
                    m = skip_ws(p, m + 1, he);
            }
        }
        if (bad)
            return wp_err_set(err, WP_EFORMAT, "broken JSON in Head");
    }
    pg->base = base;
    {
        /* The response headers come before HTML-Metadata in Common Crawl's
         * layout; anything else goes to the full parse. */
        size_t rm = find_value(p, b, hm, "\"HTTP-Response-Metadata\"");
        size_t hd = rm < hm ? find_value(p, rm, hm, "\"Headers\"") : hm;
        if (hd >= hm || p[hd] != '{')
            return FAST_FALLBACK;
        int r = robots_headers(p, hd, hm, pg, o, arena, tmp);
        if (r == FAST_FALLBACK)
            return FAST_FALLBACK;
        if (r != 0)
            return wp_err_set(err, WP_EFORMAT, "broken JSON in Headers");
    }
    if ((pg->images = wp_arena_calloc(arena, cap * sizeof *pg->images)) == NULL)
        goto nomem;
    for (i = hm; i < n;) {
        const char *hit = memmem(p + i, n - i, "\"IMG@/", 6);
        size_t h, k, s, oe;
        if (hit == NULL)
            break;
        h = (size_t)(hit - p);
        i = h + 6;
        /* Must be the value of "path", the object's first key. */
        k = h;
        while (k > b &&
               (p[k - 1] == ' ' || p[k - 1] == '\n' || p[k - 1] == '\r' || p[k - 1] == '\t'))
            k--;
        if (k == b || p[k - 1] != ':')
            continue; /* inside some other string */
        k--;
        while (k > b &&
               (p[k - 1] == ' ' || p[k - 1] == '\n' || p[k - 1] == '\r' || p[k - 1] == '\t'))
            k--;
        if (k < b + 6 || memcmp(p + k - 6, "\"path\"", 6) != 0)
            continue;
        s = k - 6;
        while (s > b &&
               (p[s - 1] == ' ' || p[s - 1] == '\n' || p[s - 1] == '\r' || p[s - 1] == '\t'))
            s--;
        if (s == b || p[s - 1] != '{') {
            return FAST_FALLBACK;
        }
        s--;
        oe = skip_compound(p, s, n);
        if (oe >= n) {
            return wp_err_set(err, WP_EFORMAT, "broken JSON: unbalanced link object");
        }
        link_fields lf;
        if (read_link(p, s, n, &lf, arena, tmp) >= n) {
            return wp_err_set(err, WP_EFORMAT, "broken JSON in a link object");
        }
        i = oe;
        if (pg->n_images == cap) {
            crawl_image *ni = wp_arena_calloc(arena, 2 * cap * sizeof *ni);
            if (ni == NULL)
                goto nomem;
            memcpy(ni, pg->images, cap * sizeof *ni);
            pg->images = ni;
            cap *= 2;
        }
        if (add_link(pg, lf.path, lf.url, lf.alt, lf.title, base, o, arena, tmp, &oom) < 0)
            goto nomem;
    }
    if (oom)
        return wp_err_set(err, WP_ENOMEM, "out of memory decoding WAT metadata");
    *out = pg;
    return FAST_OK;
nomem:
    return wp_err_set(err, WP_ENOMEM, "out of memory decoding WAT metadata");
}

int crawl_wat_page(const char *json, size_t len, const crawl_opts *o, wp_arena *arena,
                   crawl_page **out, wp_err *err)
{
    wp_buf tmp = {0};
    int rc = o->no_prefilter ? FAST_FALLBACK : wat_page_fast(json, len, o, arena, out, &tmp, err);
    wp_buf_free(&tmp);
    if (rc == FAST_FALLBACK)
        rc = wat_page_full(json, len, o, arena, out, err);
    return rc;
}
