/*
 * dedup/report.c: the picture of what dedup grouped: one self-contained
 * HTML file (no external files: every thumbnail is a base64 JPEG data URI)
 * showing the largest groups, each as a strip of its members' thumbnails
 * with their captions, the kept pair first and marked.
 */
#include "catalog/catalog.h"
#include "dedup/dd_int.h"
#include "image/image.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define THUMB        120 /* thumbnail height (and width bound), pixels */
#define SHOW_MEMBERS 12  /* members shown per group */
#define CAPTION_MAX  160 /* caption bytes shown */

static int b64(wp_buf *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (wp_buf_reserve(out, (n + 2) / 3 * 4 + 1) != 0)
        return WP_ENOMEM;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        wp_buf_append(out, q, 4);
    }
    return 0;
}

static int html_text(wp_buf *out, const char *s, size_t n)
{
    n = wp_utf8_floor(s, strlen(s), n);
    for (size_t i = 0; i < n; i++) {
        int rc;
        switch (s[i]) {
        case '<':
            rc = wp_buf_puts(out, "&lt;");
            break;
        case '>':
            rc = wp_buf_puts(out, "&gt;");
            break;
        case '&':
            rc = wp_buf_puts(out, "&amp;");
            break;
        case '"':
            rc = wp_buf_puts(out, "&quot;");
            break;
        default:
            rc = wp_buf_putc(out, s[i]);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A JPEG thumbnail of a stored image as a data URI appended to out; an
 * image that cannot be read appends nothing and returns 1. */
static int thumb(struct cat *c, st_store *st, int64_t image_id, wp_buf *bytes, wp_buf *jpg,
                 wp_buf *out)
{
    cat_image_loc loc;
    img_decode_opts o = {.apply_exif = 1, .alpha = IMG_ALPHA_WHITE, .max_pixels = 1 << 28};
    img_image im = {0}, small = {0};
    wp_err e = {0};
    int rc = 1;

    if (cat_image_location(c, image_id, &loc, &e) != 0 || loc.bytes <= 0 ||
        loc.bytes > ((int64_t)64 << 20))
        return 1;
    wp_buf_reset(bytes);
    if (wp_buf_reserve(bytes, (size_t)loc.bytes) != 0)
        return WP_ENOMEM;
    if (st_read_verified(st, loc.store_file, loc.store_offset, bytes->data, (size_t)loc.bytes,
                         loc.sha256[0] ? loc.sha256 : NULL, &e) != 0)
        return 1;
    o.min_width = o.min_height = THUMB;
    if (img_decode(bytes->data, (size_t)loc.bytes, &o, &im, &e) != 0)
        return 1;
    int w = im.width, h = im.height;
    if (h > THUMB || w > THUMB) {
        double s = (double)THUMB / (w > h ? w : h);
        w = (int)(w * s + 0.5);
        h = (int)(h * s + 0.5);
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
        if (img_resize_bicubic(&im, w, h, &small, &e) != 0)
            goto out;
    }
    if (img_encode_jpeg(small.pixels ? &small : &im, 80, jpg, &e) != 0)
        goto out;
    rc = wp_buf_puts(out, "data:image/jpeg;base64,");
    if (rc == 0)
        rc = b64(out, (const unsigned char *)jpg->data, jpg->len);
out:
    img_free(&im);
    img_free(&small);
    return rc;
}

int dd_report_html(struct cat *c, struct st_store *st, const dd_group *groups, size_t ngroups,
                   const char *path, wp_err *err)
{
    static const char *const kinds[] = {"kept", "exact", "near", "semantic", "contaminated"};
    wp_buf out = {0}, text = {0}, bytes = {0}, jpg = {0};
    int rc = 0;

#define PUT(call)                                                                                  \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            rc = wp_err_set(err, WP_ENOMEM, "report: out of memory");                              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

    PUT(wp_buf_puts(&out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                          "<title>witpipe dedup: largest groups</title><style>"
                          "body{font:14px sans-serif;margin:16px;background:#fafafa}"
                          "h2{font-size:15px;margin:18px 0 6px}"
                          ".strip{display:flex;flex-wrap:wrap;gap:8px}"
                          ".m{width:130px;background:#fff;border:1px solid #ccc;padding:4px}"
                          ".m.keep{border:3px solid #2a7}"
                          ".m img{display:block;max-width:120px;max-height:120px;margin:auto}"
                          ".c{font-size:11px;margin-top:4px;word-wrap:break-word}"
                          ".id{color:#777;font-size:10px}</style></head><body>\n"));
    PUT(wp_buf_printf(&out, "<h1>witpipe dedup: the %zu largest groups</h1>\n", ngroups));
    for (size_t g = 0; g < ngroups; g++) {
        const dd_group *gr = &groups[g];
        PUT(wp_buf_printf(
            &out, "<h2>group %zu: %s, %zu pairs, kept pair %lld</h2>\n<div class=\"strip\">", g + 1,
            kinds[gr->kind], gr->n, (long long)gr->keeper));
        for (size_t k = 0; k < gr->n && k < SHOW_MEMBERS; k++) {
            int64_t image_id = 0;
            wp_err e = {0};
            int have = cat_dedup_pair_text(c, gr->members[k], &text, &image_id, &e) == 0;
            PUT(wp_buf_printf(&out, "<div class=\"m%s\">", k == 0 ? " keep" : ""));
            if (have) {
                size_t at = out.len;
                PUT(wp_buf_puts(&out, "<img alt=\"\" src=\""));
                int t = thumb(c, st, image_id, &bytes, &jpg, &out);
                if (t < 0)
                    PUT(t);
                if (t > 0) {
                    out.len = at; /* no image: leave the tag out */
                    out.data[at] = '\0';
                } else {
                    PUT(wp_buf_puts(&out, "\">"));
                }
            }
            PUT(wp_buf_printf(&out, "<div class=\"id\">pair %lld%s</div><div class=\"c\">",
                              (long long)gr->members[k], k == 0 ? " (kept)" : ""));
            if (have)
                PUT(html_text(&out, text.data, CAPTION_MAX));
            PUT(wp_buf_puts(&out, "</div></div>"));
        }
        if (gr->n > SHOW_MEMBERS)
            PUT(wp_buf_printf(&out, "<div class=\"m\">and %zu more</div>", gr->n - SHOW_MEMBERS));
        PUT(wp_buf_puts(&out, "</div>\n"));
    }
    PUT(wp_buf_puts(&out, "</body></html>\n"));
#undef PUT
    rc = wp_write_file_atomic(path, out.data, out.len, err);
out:
    wp_buf_free(&out);
    wp_buf_free(&text);
    wp_buf_free(&bytes);
    wp_buf_free(&jpg);
    return rc;
}
