/*
 * crawl/url.c: resolving attribute URLs against the page (or <base href>)
 * and normalising them with libcurl's URL API, so one image or page has
 * one spelling: fragment removed, host lower-cased, default port removed,
 * dot segments removed, percent-encoding normalised (RFC 3986 section
 * 6.2.2: hex digits upper case, unreserved characters decoded).
 */
#include "crawl_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 8192 /* longer image/page URLs are dropped as bad_url */

static int is_unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 section 6.2.2.1-2 on a path or query; returns NULL when out of
 * memory. The result is malloc'ed. Hex digits are written in lower case,
 * the case libcurl itself writes (and would turn ours into), so that the
 * result is stable. */
static char *pct_normalize(const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *q = o;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 < n && wp_hex_digit((unsigned char)s[i + 1]) >= 0 &&
                wp_hex_digit((unsigned char)s[i + 2]) >= 0) {
                int v = wp_hex_digit((unsigned char)s[i + 1]) * 16 +
                        wp_hex_digit((unsigned char)s[i + 2]);
                if (is_unreserved(v)) {
                    *q++ = (char)v;
                } else {
                    *q++ = '%';
                    *q++ = hex[v >> 4];
                    *q++ = hex[v & 15];
                }
                i += 2;
            } else {
                *q++ = '%';
                *q++ = '2';
                *q++ = '5';
            }
        } else {
            *q++ = (char)c;
        }
    }
    *q = '\0';
    return o;
}

/* Trims and escapes what browsers escape before parsing: ASCII tab and
 * newline removed anywhere (WHATWG URL), spaces, quotes, angle brackets
 * and non-ASCII bytes percent-encoded, backslashes turned into slashes.
 * Writes into o (size URL_MAX); returns the length or -1 if too long. */
static long pre_escape(const char *s, size_t n, char *o)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t q = 0;
    while (n > 0 && (unsigned char)*s <= ' ')
        s++, n--;
    while (n > 0 && (unsigned char)s[n - 1] <= ' ')
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t' || c == '\n' || c == '\r')
            continue;
        if (q + 4 >= URL_MAX)
            return -1;
        if (c <= ' ' || c >= 0x7F || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' ||
            c == '}' || c == '|' || c == '^') {
            o[q++] = '%';
            o[q++] = hex[c >> 4];
            o[q++] = hex[c & 15];
        } else {
            o[q++] = c == '\\' ? '/' : (char)c;
        }
    }
    o[q] = '\0';
    return (long)q;
}

/* The scheme of s (lower-cased into out, size 16) if it starts with one. */
static int scheme_of(const char *s, char *out)
{
    size_t i = 0;
    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (s[i] && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
        if (i >= 15)
            return 0;
        out[i] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    if (s[i] != ':')
        return 0;
    out[i] = '\0';
    return 1;
}

static int set_part_normalized(CURLU *h, CURLUPart part)
{
    char *v = NULL, *nv;
    CURLUcode uc = curl_url_get(h, part, &v, 0);
    if (uc == CURLUE_NO_QUERY || uc == CURLUE_NO_FRAGMENT)
        return 0;
    if (uc != CURLUE_OK)
        return CRAWL_DROP_BAD_URL;
    nv = pct_normalize(v);
    curl_free(v);
    if (nv == NULL)
        return WP_ENOMEM;
    uc = curl_url_set(h, part, nv, 0);
    free(nv);
    return uc == CURLUE_OK ? 0 : CRAWL_DROP_BAD_URL;
}

static int url_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/?", c) != NULL;
}

/* 1 if s (already pre-escaped) is an absolute URL that libcurl's round
 * trip would return unchanged: http(s), a lower-case host without port or
 * userinfo, a path, no dot segments, no percent-escapes to normalise, no
 * fragment. Most image URLs on real pages are like that, and skipping
 * libcurl for them halves the cost of a page's URLs. test_extract.c checks
 * the answers against the libcurl path. */
static int already_normal(const char *s, size_t n)
{
    size_t i, hs;
    char prev = 0;
    if (n > 7 && memcmp(s, "http://", 7) == 0)
        i = 7;
    else if (n > 8 && memcmp(s, "https://", 8) == 0)
        i = 8;
    else
        return 0;
    hs = i;
    while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
                     s[i] == '.'))
        i++;
    if (i == hs || i == n || s[i] != '/' || s[hs] == '.' || s[i - 1] == '.')
        return 0;
    for (int in_query = 0; i < n; i++) {
        char c = s[i];
        if (!url_char_ok(c))
            return 0;
        if (c == '?')
            in_query = 1;
        if (!in_query && c == '.' && prev == '/') {
            char d = i + 1 < n ? s[i + 1] : 0;
            if (d == 0 || d == '/' || d == '?' ||
                (d == '.' && (i + 2 == n || s[i + 2] == '/' || s[i + 2] == '?')))
                return 0;
        }
        prev = c;
    }
    return prev != '?';
}

static const char *path_start(const char *url);

/* The simple relative references ("/a/b.jpg", "b.jpg", "sub/c.jpg?x")
 * against a normal base: the result is the base's origin or directory
 * followed by the reference, if that is already normal (which also
 * refuses dot segments, so "../x" goes the long way). Writes into cand
 * (size URL_MAX) and returns its length, or 0. */
static size_t simple_relative(const char *base, const char *esc, size_t n, char *cand)
{
    char sc[16];
    size_t blen = strlen(base), plen = 0;
    const char *bp, *q, *slash;
    if (n == 0 || blen >= URL_MAX / 2 || n >= URL_MAX / 2 || scheme_of(esc, sc))
        return 0;
    bp = path_start(base);
    if (esc[0] == '/' && esc[1] != '/') {
        plen = (size_t)(bp - base);
    } else if (isalnum((unsigned char)esc[0]) || esc[0] == '_' || esc[0] == '-') {
        q = bp + strcspn(bp, "?#");
        for (slash = q; slash > bp && slash[-1] != '/'; slash--)
            ;
        if (slash == bp)
            return 0;
        plen = (size_t)(slash - base);
    } else {
        return 0;
    }
    memcpy(cand, base, plen);
    memcpy(cand + plen, esc, n);
    cand[plen + n] = '\0';
    return already_normal(cand, plen + n) ? plen + n : 0;
}

int crawl_url_resolve(const char *base, const char *ref, size_t ref_len, wp_arena *arena,
                      const char **out)
{
    char esc[URL_MAX], cand[URL_MAX];
    long n;
    size_t k;
    *out = NULL;
    if ((n = pre_escape(ref, ref_len, esc)) <= 0)
        return CRAWL_DROP_BAD_URL;
    if (already_normal(esc, (size_t)n)) {
        if ((*out = wp_arena_strndup(arena, esc, (size_t)n)) == NULL)
            return WP_ENOMEM;
        return 0;
    }
    if (base != NULL && (k = simple_relative(base, esc, (size_t)n, cand)) > 0) {
        if ((*out = wp_arena_strndup(arena, cand, k)) == NULL)
            return WP_ENOMEM;
        return 0;
    }
    return crawl_url_resolve_slow(base, ref, ref_len, arena, out);
}

int crawl_url_resolve_slow(const char *base, const char *ref, size_t ref_len, wp_arena *arena,
                           const char **out)
{
    char esc[URL_MAX], scheme[16];
    char *v = NULL;
    CURLU *h = NULL;
    long n;
    int rc = CRAWL_DROP_BAD_URL;

    *out = NULL;
    if ((n = pre_escape(ref, ref_len, esc)) <= 0)
        return CRAWL_DROP_BAD_URL;
    if (scheme_of(esc, scheme)) {
        if (strcmp(scheme, "data") == 0)
            return CRAWL_DROP_DATA_URI;
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
            return CRAWL_DROP_SCHEME;
    } else if (base == NULL) {
        return CRAWL_DROP_BAD_URL;
    }
    if ((h = curl_url()) == NULL)
        return WP_ENOMEM;
    if (base != NULL && curl_url_set(h, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto out;
    /* With a URL already in the handle, setting a relative one resolves it
     * (RFC 3986 section 5.2) and removes dot segments. */
    if (curl_url_set(h, CURLUPART_URL, esc, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(h, CURLUPART_SCHEME, &v, 0) != CURLUE_OK)
        goto out;
    if (strcmp(v, "http") != 0 && strcmp(v, "https") != 0) {
        rc = CRAWL_DROP_SCHEME;
        goto out;
    }
    curl_free(v);
    v = NULL;
    if (curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(h, CURLUPART_HOST, &v, 0) != CURLUE_OK || v[0] == '\0')
        goto out;
    for (char *p = v; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (curl_url_set(h, CURLUPART_HOST, v, 0) != CURLUE_OK)
        goto out;
    curl_free(v);
    v = NULL;
    if ((rc = set_part_normalized(h, CURLUPART_PATH)) != 0 ||
        (rc = set_part_normalized(h, CURLUPART_QUERY)) != 0)
        goto out;
    rc = CRAWL_DROP_BAD_URL;
    if (curl_url_get(h, CURLUPART_URL, &v, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    if (strlen(v) >= URL_MAX)
        goto out;
    if ((*out = wp_arena_strdup(arena, v)) == NULL) {
        rc = WP_ENOMEM;
        goto out;
    }
    rc = 0;
out:
    curl_free(v);
    curl_url_cleanup(h);
    return rc;
}

int crawl_url_normalize(const char *url, wp_arena *arena, const char **out)
{
    return crawl_url_resolve(NULL, url, strlen(url), arena, out);
}

/* Start of the path (after scheme://authority) of an absolute URL. */
static const char *path_start(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return url + strlen(url);
    p += 3;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    return p;
}

int crawl_url_skip_ext(const crawl_opts *o, const char *url)
{
    const char *p = path_start(url), *end = p, *dot = NULL;
    while (*end && *end != '?' && *end != '#')
        end++;
    for (const char *q = p; q < end; q++) {
        if (*q == '/')
            dot = NULL;
        else if (*q == '.')
            dot = q;
    }
    if (dot == NULL)
        return 0;
    dot++;
    for (int i = 0; i < o->n_skip_ext; i++) {
        size_t k = strlen(o->skip_ext[i]);
        if ((size_t)(end - dot) == k && strncasecmp(dot, o->skip_ext[i], k) == 0)
            return 1;
    }
    return 0;
}

int crawl_url_origin(const char *url, char *out, size_t n)
{
    const char *p = path_start(url);
    size_t k = (size_t)(p - url);
    if (strstr(url, "://") == NULL || k + 1 > n)
        return WP_EINVAL;
    memcpy(out, url, k);
    out[k] = '\0';
    return 0;
}

const char *crawl_url_path_query(const char *url, wp_arena *arena)
{
    const char *p = path_start(url);
    size_t n = strcspn(p, "#");
    if (n == 0)
        return "/";
    if (*p == '?') {
        char *s = wp_arena_alloc(arena, n + 2);
        if (s == NULL)
            return NULL;
        s[0] = '/';
        memcpy(s + 1, p, n);
        s[n + 1] = '\0';
        return s;
    }
    return wp_arena_strndup(arena, p, n);
}

/* The host of an absolute URL, lower case, into out (size n). */
static int host_of(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://"), *e;
    size_t k;
    if (p == NULL)
        return -1;
    p += 3;
    e = path_start(url);
    /* Skip userinfo. */
    for (const char *q = p; q < e; q++)
        if (*q == '@')
            p = q + 1;
    if (*p == '[') {
        const char *r = memchr(p, ']', (size_t)(e - p));
        k = r ? (size_t)(r - p + 1) : (size_t)(e - p);
    } else {
        const char *c = memchr(p, ':', (size_t)(e - p));
        k = c ? (size_t)(c - p) : (size_t)(e - p);
    }
    if (k == 0 || k + 1 > n)
        return -1;
    for (size_t i = 0; i < k; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[k] = '\0';
    return 0;
}

/* 1 if host (lower case) is an IP literal: an IPv6 literal in brackets,
 * or a name whose last label is a number (the WHATWG URL parser reads it
 * as IPv4; no top-level domain is numeric). The public suffix list knows
 * nothing of addresses: it would make 127.0.0.1 and 10.0.0.1 one "0.1". */
static int is_ip_literal(const char *host)
{
    const char *last;
    size_t k = strlen(host);
    if (host[0] == '[')
        return 1;
    if (k > 0 && host[k - 1] == '.')
        k--;
    last = host + k;
    while (last > host && last[-1] != '.')
        last--;
    if (last == host + k)
        return 0;
    if (host + k - last > 2 && last[0] == '0' && last[1] == 'x') { /* hex, as 0x7f */
        for (const char *c = last + 2; c < host + k; c++)
            if (!isxdigit((unsigned char)*c))
                return 0;
        return 1;
    }
    for (const char *c = last; c < host + k; c++)
        if (!isdigit((unsigned char)*c))
            return 0;
    return 1;
}

int crawl_url_site(const char *url, char *out, size_t n)
{
    char host[256];
    const psl_ctx_t *psl = psl_builtin();
    const char *rd = NULL;
    if (host_of(url, host, sizeof host) != 0)
        return WP_EINVAL;
    if (psl != NULL && !is_ip_literal(host))
        rd = psl_registrable_domain(psl, host);
    if (rd == NULL)
        rd = host;
    if (strlen(rd) + 1 > n)
        return WP_EINVAL;
    memcpy(out, rd, strlen(rd) + 1);
    return 0;
}

uint64_t crawl_url_site_key(const char *url)
{
    char site[256];
    if (crawl_url_site(url, site, sizeof site) != 0)
        return wp_fnv1a64(url, strlen(url));
    return wp_fnv1a64(site, strlen(site));
}

int crawl_same_site(const char *url_a, const char *url_b)
{
    char sa[256], sb[256];
    if (crawl_url_site(url_a, sa, sizeof sa) != 0 || crawl_url_site(url_b, sb, sizeof sb) != 0)
        return 0;
    return strcmp(sa, sb) == 0;
}
