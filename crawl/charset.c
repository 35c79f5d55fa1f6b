/*
 * crawl/charset.c: turning a page's bytes into valid UTF-8 before parsing.
 *
 * The encoding is chosen as browsers choose it (WHATWG "encoding sniffing",
 * simplified): byte order mark, then the HTTP charset, then a <meta> in the
 * first 1024 bytes, else windows-1252. ISO-8859-1 and US-ASCII labels mean
 * windows-1252 (WHATWG Encoding, section 4.2), decoded with our own table
 * so that the bytes 0x80-0x9F become the characters people typed. Other
 * charsets go through iconv. The parser then sees only UTF-8 and is told
 * to ignore any <meta charset> it meets.
 */
#include "crawl_int.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#define PRESCAN_BYTES 1024 /* WHATWG: the meta prescan looks this far */

/* WHATWG windows-1252 index for 0x80..0x9F (the rest is Latin-1). */
static const unsigned short cp1252_hi[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static const char *const utf8_labels[] = {"utf-8",         "utf8",          "unicode-1-1-utf-8",
                                          "unicode11utf8", "unicode20utf8", "x-unicode20utf8"};
static const char *const cp1252_labels[] = {
    "windows-1252", "cp1252", "x-cp1252",   "iso-8859-1",  "iso8859-1",      "iso_8859-1",
    "iso88591",     "latin1", "l1",         "us-ascii",    "ascii",          "ansi_x3.4-1968",
    "cp819",        "ibm819", "iso-ir-100", "csisolatin1", "iso_8859-1:1987"};

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Copies the charset=... value found in s[0..n) into out (size
 * CRAWL_CHARSET_MAX, lower case). Returns 1 if one was found. */
static int charset_param(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i + 7 <= n; i++) {
        size_t j, k = 0;
        if (strncasecmp(s + i, "charset", 7) != 0)
            continue;
        j = i + 7;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != '=')
            continue;
        j++;
        while (j < n && (isspace((unsigned char)s[j]) || s[j] == '"' || s[j] == '\''))
            j++;
        while (j < n && k + 1 < CRAWL_CHARSET_MAX &&
               (isalnum((unsigned char)s[j]) || strchr("-_.:", s[j]) != NULL))
            out[k++] = (char)tolower((unsigned char)s[j++]);
        out[k] = '\0';
        return k > 0;
    }
    return 0;
}

/* The <meta> prescan: charset="x" or http-equiv=content-type with a
 * content="...charset=x". Returns 1 and the label if one was found. */
static int meta_prescan(const char *p, size_t n, char *out)
{
    size_t lim = n < PRESCAN_BYTES ? n : PRESCAN_BYTES;
    for (size_t i = 0; i + 5 < lim; i++) {
        size_t j;
        int http_equiv_ct = 0, got_content = 0;
        char content_cs[CRAWL_CHARSET_MAX] = "";
        if (p[i] != '<' || strncasecmp(p + i + 1, "meta", 4) != 0 ||
            !(isspace((unsigned char)p[i + 5]) || p[i + 5] == '/'))
            continue;
        j = i + 5;
        while (j < n && p[j] != '>') {
            size_t ns, ne, vs, ve;
            while (j < n && (isspace((unsigned char)p[j]) || p[j] == '/'))
                j++;
            ns = j;
            while (j < n && !isspace((unsigned char)p[j]) && p[j] != '=' && p[j] != '>')
                j++;
            ne = j;
            vs = ve = j;
            while (j < n && isspace((unsigned char)p[j]))
                j++;
            if (j < n && p[j] == '=') {
                j++;
                while (j < n && isspace((unsigned char)p[j]))
                    j++;
                if (j < n && (p[j] == '"' || p[j] == '\'')) {
                    char q = p[j++];
                    vs = j;
                    while (j < n && p[j] != q)
                        j++;
                    ve = j;
                    if (j < n)
                        j++;
                } else {
                    vs = j;
                    while (j < n && !isspace((unsigned char)p[j]) && p[j] != '>')
                        j++;
                    ve = j;
                }
            }
            if (ne == ns) {
                if (j < n && p[j] != '>')
                    j++;
                continue;
            }
            if (ne - ns == 7 && strncasecmp(p + ns, "charset", 7) == 0 && ve > vs) {
                size_t k = 0;
                while (vs < ve && isspace((unsigned char)p[vs]))
                    vs++;
                while (vs < ve && k + 1 < CRAWL_CHARSET_MAX && !isspace((unsigned char)p[vs]))
                    out[k++] = (char)tolower((unsigned char)p[vs++]);
                out[k] = '\0';
                if (k > 0)
                    return 1;
            } else if (ne - ns == 10 && strncasecmp(p + ns, "http-equiv", 10) == 0) {
                http_equiv_ct = ve - vs == 12 && strncasecmp(p + vs, "content-type", 12) == 0;
            } else if (ne - ns == 7 && strncasecmp(p + ns, "content", 7) == 0) {
                got_content = charset_param(p + vs, ve - vs, content_cs);
            }
        }
        if (http_equiv_ct && got_content) {
            memcpy(out, content_cs, CRAWL_CHARSET_MAX);
            return 1;
        }
        i = j;
    }
    return 0;
}

static int from_cp1252(const unsigned char *p, size_t n, wp_buf *o)
{
    size_t i = 0;
    if (wp_buf_reserve(o, n + n / 2) != 0)
        return WP_ENOMEM;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] < 0x80 && p[run] != 0)
            run++;
        if (run > i && wp_buf_append(o, p + i, run - i) != 0)
            return WP_ENOMEM;
        i = run;
        if (i >= n)
            break;
        unsigned c = p[i++];
        unsigned cp = c == 0 ? 0xFFFD : c < 0xA0 ? cp1252_hi[c - 0x80] : c;
        if (wp_utf8_append(o, cp) != 0)
            return WP_ENOMEM;
    }
    return 0;
}

/* UTF-8 input: repaired if needed (U+FFFD), NULs replaced. */
static int from_utf8(const char *p, size_t n, wp_buf *o)
{
    if (wp_utf8_valid(p, n)) {
        if (wp_buf_append(o, p, n) != 0)
            return WP_ENOMEM;
    } else if (wp_utf8_repair(p, n, o) < 0) {
        return WP_ENOMEM;
    }
    return 0;
}

static int from_iconv(iconv_t cd, const char *p, size_t n, wp_buf *o)
{
    char *in = (char *)p;
    size_t inleft = n;
    while (inleft > 0) {
        char *outp;
        size_t outleft, r;
        if (wp_buf_reserve(o, inleft * 2 + 16) != 0)
            return WP_ENOMEM;
        outp = o->data + o->len;
        outleft = o->cap - o->len - 1;
        r = iconv(cd, &in, &inleft, &outp, &outleft);
        o->len = (size_t)(outp - o->data);
        o->data[o->len] = '\0';
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG)
            continue;
        /* EILSEQ: one undecodable byte; EINVAL: truncated at the end. */
        if (wp_buf_append(o, "\xEF\xBF\xBD", 3) != 0)
            return WP_ENOMEM;
        if (errno == EINVAL)
            break;
        in++;
        inleft--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    return 0;
}

/* NULs would end strings inside the parser; HTML turns them into U+FFFD. */
static int replace_nuls(wp_buf *o)
{
    wp_buf t = {0};
    const char *p = o->data, *end = o->data + o->len, *z;
    if (o->len == 0 || memchr(p, 0, o->len) == NULL)
        return 0;
    while ((z = memchr(p, 0, (size_t)(end - p))) != NULL) {
        if (wp_buf_append(&t, p, (size_t)(z - p)) != 0 || wp_buf_append(&t, "\xEF\xBF\xBD", 3)) {
            wp_buf_free(&t);
            return WP_ENOMEM;
        }
        p = z + 1;
    }
    if (wp_buf_append(&t, p, (size_t)(end - p)) != 0) {
        wp_buf_free(&t);
        return WP_ENOMEM;
    }
    wp_buf_free(o);
    *o = t;
    return 0;
}

int crawl_to_utf8(const char *p, size_t n, const char *http_ct, wp_buf *out,
                  char label[CRAWL_CHARSET_MAX])
{
    const unsigned char *u = (const unsigned char *)p;
    char cs[CRAWL_CHARSET_MAX] = "";
    const char *from = NULL;
    int rc = 0, from_meta = 0;

    wp_buf_reset(out);
    if (n >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
        snprintf(label, CRAWL_CHARSET_MAX, "utf-8");
        rc = from_utf8(p + 3, n - 3, out);
        goto done;
    }
    if (n >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE))) {
        from = u[0] == 0xFE ? "utf-16be" : "utf-16le";
        p += 2;
        n -= 2;
    } else if (http_ct != NULL && charset_param(http_ct, strlen(http_ct), cs)) {
        from = cs;
    } else if (meta_prescan(p, n, cs)) {
        from = cs;
        from_meta = 1;
    }
    if (from != NULL && from_meta && strncasecmp(from, "utf-16", 6) == 0)
        from = "utf-8"; /* WHATWG: a meta cannot declare UTF-16 */
    if (from == NULL || in_list(from, cp1252_labels, sizeof cp1252_labels / sizeof *cp1252_labels))
        goto cp1252;
    if (in_list(from, utf8_labels, sizeof utf8_labels / sizeof *utf8_labels)) {
        snprintf(label, CRAWL_CHARSET_MAX, "utf-8");
        rc = from_utf8(p, n, out);
        goto done;
    }
    {
        iconv_t cd = iconv_open("UTF-8", from);
        if (cd == (iconv_t)-1)
            goto cp1252; /* unknown label: browsers fall back too */
        snprintf(label, CRAWL_CHARSET_MAX, "%s", from);
        rc = from_iconv(cd, p, n, out);
        iconv_close(cd);
        if (rc == 0 && !wp_utf8_valid(out->data, out->len)) {
            wp_buf t = {0};
            if (wp_utf8_repair(out->data, out->len, &t) < 0) {
                wp_buf_free(&t);
                return WP_ENOMEM;
            }
            wp_buf_free(out);
            *out = t;
        }
        goto done;
    }
cp1252:
    snprintf(label, CRAWL_CHARSET_MAX, "windows-1252");
    rc = from_cp1252(u, n, out);
done:
    if (rc == 0 && out->data == NULL)
        rc = wp_buf_reserve(out, 0);
    if (rc == 0)
        rc = replace_nuls(out);
    return rc;
}

/* The whole page is in *out: cuts its tags to caps (tmp is scratch). */
static int cap_whole(wp_buf *out, wp_buf *tmp, crawl_tag_caps *caps)
{
    int rc;
    if (caps == NULL)
        return 0;
    rc = crawl_cap_tags(out->data ? out->data : "", out->len, caps, tmp);
    if (rc == 1) {
        wp_buf t = *out;
        *out = *tmp;
        *tmp = t;
        rc = 0;
    }
    return rc;
}

int crawl_decode_html(const char *p, size_t n, const char *http_ct, int prefilter,
                      crawl_tag_caps *caps, wp_buf *out, wp_buf *tmp, char label[CRAWL_CHARSET_MAX])
{
    const unsigned char *u = (const unsigned char *)p;
    const char *p0 = p;
    size_t n0 = n;
    char cs[CRAWL_CHARSET_MAX] = "";
    int utf8 = 0, rc;
    /* What the prefilter counted before giving up is counted again by the
     * whole-page pass. */
    uint64_t dropped0 = caps != NULL ? caps->attrs_dropped : 0;

    if (!prefilter) {
        if ((rc = crawl_to_utf8(p, n, http_ct, out, label)) != 0)
            return rc;
        return cap_whole(out, tmp, caps);
    }
    /* The same choice as crawl_to_utf8, to know whether the bytes are
     * UTF-8 already (then the prefilter can run on them directly). */
    if (n >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
        utf8 = 1;
        p += 3;
        n -= 3;
    } else if (n >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE))) {
        utf8 = 0;
    } else if (http_ct != NULL && charset_param(http_ct, strlen(http_ct), cs)) {
        utf8 = in_list(cs, utf8_labels, sizeof utf8_labels / sizeof *utf8_labels);
    } else if (meta_prescan(p, n, cs)) {
        utf8 = in_list(cs, utf8_labels, sizeof utf8_labels / sizeof *utf8_labels) ||
               strncasecmp(cs, "utf-16", 6) == 0;
    }
    if (!utf8) {
        if ((rc = crawl_to_utf8(p, n, http_ct, tmp, label)) != 0)
            return rc;
        rc = crawl_prefilter(tmp->data, tmp->len, (prefilter & CRAWL_PF_LINKS) != 0, caps, out);
        if (rc == 1) {
            /* Unpredictable construct: the whole (decoded) page. */
            wp_buf t = *out;
            *out = *tmp;
            *tmp = t;
            if (caps != NULL)
                caps->attrs_dropped = dropped0;
            return cap_whole(out, tmp, caps);
        }
        if (rc != 0)
            return rc;
        return out->data == NULL ? wp_buf_reserve(out, 0) : 0;
    }
    snprintf(label, CRAWL_CHARSET_MAX, "utf-8");
    rc = crawl_prefilter(p, n, (prefilter & CRAWL_PF_LINKS) != 0, caps, tmp);
    if (rc == 1) {
        if (caps != NULL)
            caps->attrs_dropped = dropped0;
        if ((rc = crawl_to_utf8(p0, n0, http_ct, out, label)) != 0)
            return rc;
        return cap_whole(out, tmp, caps);
    }
    if (rc != 0)
        return rc;
    wp_buf_reset(out);
    if ((rc = from_utf8(tmp->data ? tmp->data : "", tmp->len, out)) != 0)
        return rc;
    if (out->data == NULL && (rc = wp_buf_reserve(out, 0)) != 0)
        return rc;
    return replace_nuls(out);
}
