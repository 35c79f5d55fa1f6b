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

/* 1 when a Links entry's path names an image attribute ("IMG@/..."). */
static int is_img_path(const char *path)
{
    return path != NULL && strncasecmp(path, "IMG@/", 5) == 0;
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
    if (url == NULL || !is_img_path(path))
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
static int wat_page_full(const char *json, size_t len, const crawl_opts *o, size_t tree_max,
                         wp_arena *arena, crawl_page **out, wp_err *err)
{
    static const char *const k_uri[] = {"Envelope", "WARC-Header-Metadata", "WARC-Target-URI"};
    static const char *const k_html[] = {"Envelope", "Payload-Metadata", "HTTP-Response-Metadata",
                                         "HTML-Metadata"};
    static const char *const k_hdrs[] = {"Envelope", "Payload-Metadata", "HTTP-Response-Metadata",
                                         "Headers"};
    json_error_t jerr;
    json_t *root, *html, *links, *head, *metas;
    size_t used0 = wp_arena_used(arena);
    crawl_page *pg;
    wp_buf tmp = {0};
    const char *uri, *base = NULL, *xr;
    int oom = 0, rc = 0;
    size_t n;

    *out = NULL;
    /* A tree costs several times the record's bytes: only records the
     * targeted reader could not read and that are small enough. */
    if (tree_max > CRAWL_WAT_FULL_MAX)
        tree_max = CRAWL_WAT_FULL_MAX;
    if (len > tree_max)
        return wp_err_set(err, WP_ELIMIT,
                          "record of %zu bytes is not in the usual layout and too large "
                          "(over %zu bytes%s) to parse whole; skipped",
                          len, tree_max,
                          tree_max < CRAWL_WAT_FULL_MAX ? " under --max-memory" : "");
    /* Duplicate member names are refused: which one counts is not defined
     * (RFC 8259 section 4), and the targeted reader takes the first. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
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
            if (name != NULL && content != NULL && net_robots_meta_name(name, o->token))
                crawl_robots_directives(content, o, &pg->noai, &pg->noindex, &pg->nofollow);
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
                    crawl_robots_directives(xr, o, &pg->noai, &pg->noindex, &pg->nofollow);
                for (size_t j = 0; json_is_array(v) && j < json_array_size(v); j++)
                    if ((xr = json_string_value(json_array_get(v, j))) != NULL)
                        crawl_robots_directives(xr, o, &pg->noai, &pg->noindex, &pg->nofollow);
            }
    }
    n = json_is_array(links) ? json_array_size(links) : 0;
    pg->images = wp_arena_calloc(arena, (n == 0              ? 1
                                         : n < o->max_images ? n
                                                             : o->max_images) *
                                            sizeof *pg->images);
    if (pg->images == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(links, i);
        const char *lp = str_of(l, "path");
        if (pg->n_images >= o->max_images || wp_arena_used(arena) - used0 > CRAWL_PAGE_OUT_MAX) {
            pg->drops[CRAWL_DROP_OVER_CAP] += is_img_path(lp);
            continue;
        }
        if (add_link(pg, lp, str_of(l, "url"), str_of(l, "alt"), str_of(l, "title"), base, o, arena,
                     &tmp, &oom) < 0)
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

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++) {
        int d = wp_hex_digit((unsigned char)p[k]);
        if (d < 0)
            return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
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
            if (wp_utf8_append(out, v) != 0)
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

/* The member name in the JSON string p[ks-1 .. ke): as written, or
 * decoded into tmp when it holds escapes (so "pa\u0074h" is "path", as a
 * JSON parser reads it). Sets *len; NULL when the escapes are broken. */
static const char *key_text(const char *p, size_t ks, size_t ke, wp_buf *tmp, size_t *len)
{
    if (memchr(p + ks, '\\', ke - 1 - ks) == NULL) {
        *len = ke - 1 - ks;
        return p + ks;
    }
    if (decode_string(p, ks - 1, ke, tmp) != ke)
        return NULL;
    *len = tmp->len;
    return tmp->data;
}

static int key_is(const char *k, size_t kl, const char *name)
{
    return kl == strlen(name) && memcmp(k, name, kl) == 0;
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
        size_t kl;
        const char *k = key_text(p, ks, ke, tmp, &kl);
        if (k == NULL)
            return n;
        if (key_is(k, kl, "path"))
            slot = &f->path;
        else if (key_is(k, kl, "url"))
            slot = &f->url;
        else if (key_is(k, kl, "alt"))
            slot = &f->alt;
        else if (key_is(k, kl, "title"))
            slot = &f->title;
        else if (key_is(k, kl, "name"))
            slot = &f->name;
        else if (key_is(k, kl, "content"))
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

/* Index after the JSON value at p[i], or n when it is broken. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_string(p, i, n);
    if (p[i] == '{' || p[i] == '[')
        return skip_compound(p, i, n);
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n' &&
           p[i] != '\r' && p[i] != '\t')
        i++;
    return i;
}

/* After an array element that ended at p[*i]: moves *i to the next
 * element or to the closing ']'. Returns 0, or -1 when neither ',' nor
 * ']' follows. */
static int array_advance(const char *p, size_t *i, size_t n)
{
    size_t j = skip_ws(p, *i, n);
    if (j < n && p[j] == ',')
        j = skip_ws(p, j + 1, n);
    else if (j < n && p[j] != ']')
        return -1;
    *i = j;
    return 0;
}

/* Walks the members of the object at p[*i] == '{'. Each call moves to the
 * next member: returns 1 with its name in *k, *kl (possibly in tmp) and
 * *v at its value, 0 at the closing brace, -1 when the object is broken.
 * The caller sets *i past the value before the next call. */
static int next_member(const char *p, size_t *i, size_t n, const char **k, size_t *kl, size_t *v,
                       wp_buf *tmp)
{
    size_t j = *i, ke;
    if (j < n && p[j] == '{')
        j = skip_ws(p, j + 1, n);
    else if (j < n && p[j] == ',')
        j = skip_ws(p, j + 1, n);
    else if (j < n && p[j] == '}')
        return 0;
    else
        return -1;
    if (j < n && p[j] == '}' && p[*i] == '{')
        return 0;
    if (j >= n || p[j] != '"' || (ke = skip_string(p, j, n)) >= n)
        return -1;
    if ((*k = key_text(p, j + 1, ke, tmp, kl)) == NULL)
        return -1;
    j = skip_ws(p, ke, n);
    if (j >= n || p[j] != ':')
        return -1;
    *v = skip_ws(p, j + 1, n);
    return *v < n ? 1 : -1;
}

/* The value of the first member named key of the object at p[i] (n when
 * p[i] is not an object or key is absent); *bad set when it is broken. */
static size_t member(const char *p, size_t i, size_t n, const char *key, wp_buf *tmp, int *bad)
{
    const char *k;
    size_t kl, v;
    int r;
    if (i >= n || p[i] != '{')
        return n;
    while ((r = next_member(p, &i, n, &k, &kl, &v, tmp)) == 1) {
        if (key_is(k, kl, key))
            return v;
        i = skip_ws(p, skip_value(p, v, n), n);
    }
    if (r < 0)
        *bad = 1;
    return n;
}

/* Applies every X-Robots-Tag in the Headers object at p[i] == '{' (names
 * compared case-insensitively, RFC 9110 section 5.1). Returns FAST_OK, or
 * FAST_FALLBACK for a value that is not a plain string or a broken
 * object. */
static int robots_headers(const char *p, size_t i, size_t n, crawl_page *pg, const crawl_opts *o,
                          wp_arena *arena, wp_buf *tmp)
{
    const char *k;
    size_t kl, v;
    int r, bad = 0;
    while ((r = next_member(p, &i, n, &k, &kl, &v, tmp)) == 1) {
        if (kl == 12 && strncasecmp(k, "X-Robots-Tag", 12) == 0) {
            const char *xr = string_at(p, v, n, arena, tmp, &bad);
            if (xr == NULL || bad)
                return FAST_FALLBACK;
            crawl_robots_directives(xr, o, &pg->noai, &pg->noindex, &pg->nofollow);
        }
        i = skip_ws(p, skip_value(p, v, n), n);
    }
    return r == 0 ? FAST_OK : FAST_FALLBACK;
}

/* Head: Base (resolved into *base), Title and robots Metas. Returns
 * FAST_OK, FAST_FALLBACK when something is not as expected, or
 * WP_ENOMEM. */
static int read_head(const char *p, size_t i, size_t n, crawl_page *pg, const char **base,
                     const crawl_opts *o, wp_arena *arena, wp_buf *tmp, int *oom)
{
    int bad = 0;
    size_t bv = member(p, i, n, "Base", tmp, &bad), tv = member(p, i, n, "Title", tmp, &bad);
    size_t m = member(p, i, n, "Metas", tmp, &bad);
    const char *hb = string_at(p, bv, n, arena, tmp, &bad), *rb = NULL;
    if (bad)
        return FAST_FALLBACK;
    if (hb != NULL) {
        int r = crawl_url_resolve(*base, hb, strlen(hb), arena, &rb);
        if (r < 0)
            return WP_ENOMEM;
        if (r == 0)
            *base = rb;
    }
    pg->title = clean(string_at(p, tv, n, arena, tmp, &bad), o, arena, tmp, NULL, oom);
    if (bad)
        return FAST_FALLBACK;
    if (m < n && p[m] == '[') {
        m = skip_ws(p, m + 1, n);
        while (m < n && p[m] != ']') {
            if (p[m] == '{') {
                link_fields f;
                m = read_link(p, m, n, &f, arena, tmp);
                if (f.name != NULL && f.content != NULL && net_robots_meta_name(f.name, o->token))
                    crawl_robots_directives(f.content, o, &pg->noai, &pg->noindex, &pg->nofollow);
            } else {
                m = skip_value(p, m, n);
            }
            if (array_advance(p, &m, n) != 0)
                return FAST_FALLBACK;
        }
        if (m >= n)
            return FAST_FALLBACK;
    }
    return FAST_OK;
}

/* 1 when the link object at p[i] == '{' may be an image: its first member
 * is "path" with a value starting "IMG@/" in any case (as add_link takes it),
 * or the layout is not the usual one and the whole object must be read. */
static int maybe_image(const char *p, size_t i, size_t n)
{
    size_t j = skip_ws(p, i + 1, n), e;
    if (j + 6 > n || memcmp(p + j, "\"path\"", 6) != 0)
        return 1;
    j = skip_ws(p, j + 6, n);
    if (j >= n || p[j] != ':')
        return 1;
    j = skip_ws(p, j + 1, n);
    if (j + 6 <= n && p[j] == '"' && (p[j + 1] | 0x20) == 'i' &&
        strncasecmp(p + j + 1, "IMG@/", 5) == 0)
        return 1;
    if (j >= n || p[j] != '"' || (e = skip_string(p, j, n)) >= n)
        return 1;
    return memchr(p + j + 1, '\\', e - j - 1) != NULL; /* escaped: decode to know */
}

/* Common Crawl writes each record as one JSON object of a fixed layout:
 * Envelope.WARC-Header-Metadata.WARC-Target-URI for the page, and
 * Envelope.Payload-Metadata.HTTP-Response-Metadata with Headers and then
 * HTML-Metadata {Head, Links}. Instead of building the whole tree (most of
 * it A@/href links we do not want) we walk exactly that path member by
 * member, read Head, Headers and each IMG@ link object, and skip every
 * other value at memchr speed. For any record the reference accepts, the
 * walk reads what it reads (members by name, escapes decoded; the
 * reference refuses duplicate names, where the walk would take the
 * first). A broken structure, a value of an unexpected type or Links
 * before Head goes to the full parse instead. */
static int wat_page_fast(const char *p, size_t n, const crawl_opts *o, wp_arena *arena,
                         crawl_page **out, wp_buf *tmp, wp_err *err)
{
    size_t b = skip_ws(p, 0, n), e = n, env, hm, rm, hd, i, v, kl;
    int bad = 0, oom = 0, r, seen_links = 0, seen_head = 0;
    const char *uri, *base = NULL, *k;
    crawl_page *pg;
    size_t cap = 16, used0 = wp_arena_used(arena);

    while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\n' || p[e - 1] == '\r' || p[e - 1] == '\t'))
        e--;
    if (b >= e || p[b] != '{' || p[e - 1] != '}')
        return wp_err_set(err, WP_EFORMAT,
                          "broken JSON: the record is not one object "
                          "(truncated?)");
    n = e;
    env = member(p, b, n, "Envelope", tmp, &bad);
    uri = string_at(p,
                    member(p, member(p, env, n, "WARC-Header-Metadata", tmp, &bad), n,
                           "WARC-Target-URI", tmp, &bad),
                    n, arena, tmp, &bad);
    rm = member(p, member(p, env, n, "Payload-Metadata", tmp, &bad), n, "HTTP-Response-Metadata",
                tmp, &bad);
    hm = member(p, rm, n, "HTML-Metadata", tmp, &bad);
    if (bad)
        return FAST_FALLBACK;
    if (uri == NULL || hm >= n || p[hm] != '{') {
        *out = NULL; /* request, warcinfo, non-HTML: nothing for us */
        return FAST_OK;
    }
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
    hd = member(p, rm, n, "Headers", tmp, &bad);
    if (bad)
        return FAST_FALLBACK;
    if (hd < n && p[hd] == '{' && robots_headers(p, hd, n, pg, o, arena, tmp) != FAST_OK)
        return FAST_FALLBACK;
    if ((pg->images = wp_arena_calloc(arena, cap * sizeof *pg->images)) == NULL)
        goto nomem;
    i = hm;
    while ((r = next_member(p, &i, n, &k, &kl, &v, tmp)) == 1) {
        size_t ve;
        if (key_is(k, kl, "Head")) {
            if (seen_head++ || seen_links) /* links resolve against Head.Base */
                return FAST_FALLBACK;
            if (p[v] == '{') {
                int hr = read_head(p, v, n, pg, &base, o, arena, tmp, &oom);
                if (hr == WP_ENOMEM)
                    goto nomem;
                if (hr != FAST_OK)
                    return FAST_FALLBACK;
            }
            ve = skip_value(p, v, n);
        } else if (key_is(k, kl, "Links") && p[v] == '[') {
            if (seen_links++)
                return FAST_FALLBACK;
            ve = skip_ws(p, v + 1, n);
            while (ve < n && p[ve] != ']') {
                if (p[ve] == '{' && (pg->n_images >= o->max_images ||
                                     wp_arena_used(arena) - used0 > CRAWL_PAGE_OUT_MAX)) {
                    /* Past the caps: entries are counted, not read. */
                    size_t pv = member(p, ve, n, "path", tmp, &bad);
                    if (bad)
                        return FAST_FALLBACK;
                    if (pv < n && p[pv] == '"') {
                        if (decode_string(p, pv, n, tmp) >= n)
                            return FAST_FALLBACK;
                        pg->drops[CRAWL_DROP_OVER_CAP] +=
                            tmp->len >= 5 && strncasecmp(tmp->data, "IMG@/", 5) == 0;
                    }
                    ve = skip_value(p, ve, n);
                } else if (p[ve] == '{' && maybe_image(p, ve, n)) {
                    link_fields lf;
                    if (pg->n_images == cap) {
                        crawl_image *ni = wp_arena_calloc(arena, 2 * cap * sizeof *ni);
                        if (ni == NULL)
                            goto nomem;
                        memcpy(ni, pg->images, cap * sizeof *ni);
                        pg->images = ni;
                        cap *= 2;
                    }
                    ve = read_link(p, ve, n, &lf, arena, tmp);
                    if (ve < n && add_link(pg, lf.path, lf.url, lf.alt, lf.title, base, o, arena,
                                           tmp, &oom) < 0)
                        goto nomem;
                } else {
                    ve = skip_value(p, ve, n);
                }
                if (array_advance(p, &ve, n) != 0)
                    return FAST_FALLBACK;
            }
            if (ve < n)
                ve++;
        } else {
            if (key_is(k, kl, "Links"))
                seen_links++;
            ve = skip_value(p, v, n);
        }
        if (ve >= n)
            return FAST_FALLBACK;
        i = skip_ws(p, ve, n);
    }
    if (r < 0)
        return FAST_FALLBACK;
    pg->base = base;
    if (oom)
        return wp_err_set(err, WP_ENOMEM, "out of memory decoding WAT metadata");
    *out = pg;
    return FAST_OK;
nomem:
    return wp_err_set(err, WP_ENOMEM, "out of memory decoding WAT metadata");
}

int crawl_wat_page(const char *json, size_t len, const crawl_opts *o, size_t tree_max,
                   wp_arena *arena, crawl_page **out, wp_err *err)
{
    wp_buf tmp = {0};
    int rc = o->no_prefilter ? FAST_FALLBACK : wat_page_fast(json, len, o, arena, out, &tmp, err);
    wp_buf_free(&tmp);
    if (rc == FAST_FALLBACK)
        rc = wat_page_full(json, len, o, tree_max, arena, out, err);
    return rc;
}
