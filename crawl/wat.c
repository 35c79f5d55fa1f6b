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

static const char *clean(const char *s, const crawl_opts *o, wp_arena *a, wp_buf *tmp, int *refused,
                         int *oom)
{
    int rc;
    if (s == NULL)
        return NULL;
    rc = crawl_clean_text(s, strlen(s), CRAWL_CLEAN_ENTITIES, o, tmp);
    if (rc < 0) {
        *oom = 1;
        return NULL;
    }
    if (rc > 0) {
        if (refused)
            *refused = rc + 1;
        return NULL;
    }
    if (tmp->len == 0)
        return NULL;
    const char *r = wp_arena_strndup(a, tmp->data, tmp->len);
    if (r == NULL)
        *oom = 1;
    return r;
}

int crawl_wat_page(const char *json, size_t len, const crawl_opts *o, wp_arena *arena,
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
    xr = str_of(path_get(root, k_hdrs, 4), "X-Robots-Tag");
    if (xr != NULL)
        crawl_robots_directives(xr, o, 1, &pg->noai, &pg->noindex, &pg->nofollow);
    n = json_is_array(links) ? json_array_size(links) : 0;
    pg->images = wp_arena_calloc(arena, (n ? n : 1) * sizeof *pg->images);
    if (pg->images == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(links, i);
        const char *path = str_of(l, "path"), *url = str_of(l, "url");
        const char *attr, *ref = url, *u = NULL;
        crawl_image *im = &pg->images[pg->n_images];
        int r, sn = 0;
        if (path == NULL || url == NULL || strncasecmp(path, "IMG@/", 5) != 0)
            continue;
        attr = path + 5;
        memset(im, 0, sizeof *im);
        im->width = im->height = -1;
        if (strcasecmp(attr, "srcset") == 0 || strcasecmp(attr, "data-srcset") == 0) {
            ref = crawl_srcset_best(url, arena, &sn, NULL);
            im->srcset_n = sn;
            if (ref == NULL) {
                pg->drops[CRAWL_DROP_BAD_URL]++;
                continue;
            }
        }
        r = crawl_url_resolve(base, ref, strlen(ref), arena, &u);
        if (r < 0)
            goto nomem;
        if (r > 0) {
            pg->drops[r]++;
            continue;
        }
        if (crawl_url_skip_ext(o, u)) {
            pg->drops[CRAWL_DROP_SKIP_EXT]++;
            continue;
        }
        im->url = u;
        if ((im->attr = wp_arena_strdup(arena, attr)) == NULL)
            goto nomem;
        im->alt = clean(str_of(l, "alt"), o, arena, &tmp, &im->refused[CRAWL_TEXT_ALT], &oom);
        im->title = clean(str_of(l, "title"), o, arena, &tmp, &im->refused[CRAWL_TEXT_TITLE], &oom);
        pg->n_images++;
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
