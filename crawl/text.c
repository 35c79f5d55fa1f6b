/*
 * crawl/text.c: crawl options, drop-reason names and caption cleaning.
 *
 * Captions come from alt/title attributes and <figcaption> text of random
 * pages: they carry tabs, newlines, NBSPs, zero-width and control
 * characters, stray character references and broken UTF-8. Every text that
 * reaches the catalog passes through crawl_clean_text, so the same visible
 * caption always becomes the same bytes (and thus the same pair uid).
 */
#include "crawl_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const drop_names[CRAWL_DROP_N] = {
    "none",    "data_uri", "scheme",   "bad_url", "tracking_pixel", "skip_ext",
    "no_text", "bad_utf8", "too_long", "opt_out", "dup_on_page",    "over_cap",
};

const char *crawl_drop_name(int reason)
{
    if (reason < 0 || reason >= CRAWL_DROP_N)
        return "unknown";
    return drop_names[reason];
}

void crawl_opts_init(crawl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->text_from[0] = CRAWL_TEXT_ALT;
    o->n_text_from = 1;
    o->max_text = CRAWL_DEFAULT_MAX_TEXT;
    o->max_page = CRAWL_DEFAULT_MAX_PAGE;
    snprintf(o->skip_ext[0], CRAWL_EXT_MAX, "svg");
    snprintf(o->skip_ext[1], CRAWL_EXT_MAX, "gif");
    o->n_skip_ext = 2;
    snprintf(o->token, sizeof o->token, "witpipe");
    o->max_images = CRAWL_DEFAULT_MAX_IMAGES;
    o->max_attrs = CRAWL_DEFAULT_MAX_ATTRS;
}

/* Calls fn on each comma-separated, trimmed, non-empty item of list. */
static int each_item(const char *list, int (*fn)(void *, const char *, size_t), void *ud)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        size_t k = n;
        int rc;
        while (k > 0 && isspace((unsigned char)*s))
            s++, k--;
        while (k > 0 && isspace((unsigned char)s[k - 1]))
            k--;
        if (k > 0 && (rc = fn(ud, s, k)) != 0)
            return rc;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int add_text_src(void *ud, const char *s, size_t n)
{
    static const char *const names[CRAWL_TEXT_NSRC] = {"alt", "title", "figcaption"};
    crawl_opts *o = ud;
    for (int i = 0; i < CRAWL_TEXT_NSRC; i++) {
        if (strlen(names[i]) == n && strncasecmp(names[i], s, n) == 0) {
            for (int j = 0; j < o->n_text_from; j++)
                if (o->text_from[j] == i)
                    return WP_EINVAL;
            o->text_from[o->n_text_from++] = i;
            return 0;
        }
    }
    return WP_EINVAL;
}

int crawl_opts_text_from(crawl_opts *o, const char *list, wp_err *err)
{
    o->n_text_from = 0;
    if (each_item(list, add_text_src, o) != 0 || o->n_text_from == 0) {
        o->text_from[0] = CRAWL_TEXT_ALT;
        o->n_text_from = 1;
        return wp_err_set(err, WP_EINVAL,
                          "--text-from '%s': expected a list of alt, title, figcaption", list);
    }
    return 0;
}

static int add_ext(void *ud, const char *s, size_t n)
{
    crawl_opts *o = ud;
    if (*s == '.')
        s++, n--;
    if (n == 0 || n >= CRAWL_EXT_MAX)
        return WP_EINVAL;
    if (o->n_skip_ext >= CRAWL_MAX_SKIP_EXT)
        return WP_ELIMIT;
    for (size_t i = 0; i < n; i++)
        o->skip_ext[o->n_skip_ext][i] = (char)tolower((unsigned char)s[i]);
    o->skip_ext[o->n_skip_ext][n] = '\0';
    o->n_skip_ext++;
    return 0;
}

int crawl_opts_skip_ext(crawl_opts *o, const char *list, wp_err *err)
{
    int rc;
    o->n_skip_ext = 0;
    if ((rc = each_item(list, add_ext, o)) != 0)
        return wp_err_set(err, rc, "--skip-ext '%s': expected up to %d extensions, like svg,gif",
                          list, CRAWL_MAX_SKIP_EXT);
    return 0;
}

/* ---- character references ----------------------------------------- */

/* The references that actually occur in captions; the HTML parser has
 * already decoded the full set for pages, this is for WAT metadata and
 * double-escaped attributes. */
static const struct {
    const char *name;
    unsigned cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},   {"eacute", 0xE9},  {"egrave", 0xE8},
    {"agrave", 0xE0},  {"ccedil", 0xE7},  {"uuml", 0xFC},    {"ouml", 0xF6},    {"auml", 0xE4},
    {"szlig", 0xDF},   {"deg", 0xB0},     {"middot", 0xB7},  {"times", 0xD7},   {"euro", 0x20AC},
};

/* Decodes the reference at s[0] == '&' (n bytes available). Returns the
 * bytes consumed (0: not a reference) and the code point in *cp. */
static size_t decode_ref(const char *s, size_t n, unsigned *cp)
{
    size_t i = 1;
    if (n > 2 && s[1] == '#') {
        unsigned long v = 0;
        int hex = (s[2] == 'x' || s[2] == 'X');
        size_t digits = 0;
        i = hex ? 3 : 2;
        while (i < n && digits < 8 &&
               (hex ? wp_hex_digit((unsigned char)s[i]) >= 0 : isdigit((unsigned char)s[i]))) {
            v = v * (hex ? 16 : 10) + (unsigned long)wp_hex_digit((unsigned char)s[i]);
            i++, digits++;
        }
        if (digits == 0)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        /* HTML: NUL, surrogates and out-of-range become U+FFFD. */
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            v = 0xFFFD;
        *cp = (unsigned)v;
        return i;
    }
    while (i < n && i < 10 && isalnum((unsigned char)s[i]))
        i++;
    if (i == 1 || i >= n || s[i] != ';')
        return 0;
    for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++) {
        if (strlen(entities[k].name) == i - 1 && memcmp(entities[k].name, s + 1, i - 1) == 0) {
            *cp = entities[k].cp;
            return i + 1;
        }
    }
    return 0;
}

/* ---- cleaning ------------------------------------------------------- */

/* Decodes one code point of valid UTF-8 at s; returns its length. */
static size_t next_cp(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((unsigned)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((unsigned)(s[0] & 0x0F) << 12) | ((unsigned)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((unsigned)(s[0] & 0x07) << 18) | ((unsigned)(s[1] & 0x3F) << 12) |
          ((unsigned)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

static int is_space_cp(unsigned cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0x85;
}

/* Removed outright: C0/C1 controls, DEL, zero-width and bidi controls
 * that make equal-looking captions differ, BOM, noncharacters. */
static int is_removed_cp(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xFEFF ||
           (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

int crawl_clean_text(const char *s, size_t n, int flags, const crawl_opts *o, wp_buf *out)
{
    wp_buf fixed = {0};
    const unsigned char *p;
    int pending_space = 0, rc = 0;
    size_t i = 0;

    wp_buf_reset(out);
    if (!wp_utf8_valid(s, n)) {
        if (o->bad_utf8_drop)
            return CRAWL_DROP_BAD_UTF8;
        if (wp_utf8_repair(s, n, &fixed) < 0)
            return WP_ENOMEM;
        s = fixed.data;
        n = fixed.len;
    }
    if (wp_buf_reserve(out, n) != 0) {
        rc = WP_ENOMEM;
        goto out;
    }
    p = (const unsigned char *)s;
    while (i < n) {
        unsigned cp;
        size_t k;
        char enc[4];
        size_t elen;
        if (p[i] == '&' && (flags & CRAWL_CLEAN_ENTITIES) && (k = decode_ref(s + i, n - i, &cp))) {
            i += k;
        } else {
            k = next_cp(p + i, &cp);
            i += k;
        }
        if (is_space_cp(cp)) {
            pending_space = out->len > 0;
            continue;
        }
        if (is_removed_cp(cp))
            continue;
        if (pending_space) {
            if (wp_buf_putc(out, ' ') != 0) {
                rc = WP_ENOMEM;
                goto out;
            }
            pending_space = 0;
        }
        elen = wp_utf8_put(cp, enc);
        if (wp_buf_append(out, enc, elen) != 0) {
            rc = WP_ENOMEM;
            goto out;
        }
    }
    if (o->max_text > 0 && out->len > o->max_text) {
        if (o->long_text_drop) {
            rc = CRAWL_DROP_TOO_LONG;
            goto out;
        }
        out->len = wp_utf8_floor(out->data, out->len, o->max_text);
        while (out->len > 0 && out->data[out->len - 1] == ' ')
            out->len--;
        out->data[out->len] = '\0';
    }
out:
    wp_buf_free(&fixed);
    return rc;
}

/* ---- counts ----------------------------------------------------------- */

int crawl_counts_json(const crawl_counts *c, wp_buf *out)
{
    wp_json j;
    wp_json_init(&j, out);
    wp_json_obj_begin(&j, NULL);
    wp_json_uint(&j, "pages", c->pages);
    wp_json_uint(&j, "pages_opt_out", c->pages_opt_out);
    wp_json_uint(&j, "pages_skipped", c->pages_skipped);
    wp_json_uint(&j, "images", c->images);
    wp_json_uint(&j, "pairs_new", c->pairs_new);
    wp_json_uint(&j, "pairs_seen", c->pairs_seen);
    wp_json_uint(&j, "records", c->records);
    wp_json_uint(&j, "records_skipped", c->records_skipped);
    wp_json_uint(&j, "corrupt", c->corrupt);
    wp_json_uint(&j, "bytes", c->bytes);
    wp_json_uint(&j, "unreadable", c->unreadable);
    wp_json_uint(&j, "pages_capped", c->pages_capped);
    wp_json_uint(&j, "attrs_capped", c->attrs_capped);
    wp_json_uint(&j, "links_other_part", c->links_other_part);
    wp_json_obj_begin(&j, "dropped");
    for (int i = 1; i < CRAWL_DROP_N; i++)
        wp_json_uint(&j, crawl_drop_name(i), c->drops[i]);
    wp_json_obj_end(&j);
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

const char *crawl_clean_dup(const char *s, size_t n, int flags, const crawl_opts *o, wp_arena *a,
                            wp_buf *tmp, int *refused, int *oom)
{
    const char *r;
    int rc;

    if (s == NULL)
        return NULL;
    rc = crawl_clean_text(s, n, flags, o, tmp);
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
    r = wp_arena_strndup(a, tmp->data, tmp->len);
    if (r == NULL)
        *oom = 1;
    return r;
}
