/*
 * audit/html.c: report.html from the report tree. One self-contained page:
 * CSS inline, charts as inline SVG (horizontal bars: readable labels of any
 * length, no axes to misread), gallery thumbnails as data: URIs, nothing
 * fetched from anywhere (no scripts, fonts, images or links to load).
 * Every number shown comes from report.json. Printable: figures and tables
 * do not break across pages, the navigation bar is hidden in print.
 */
#include "audit_int.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73",
                                      "#CC79A7", "#56B4E9", "#D55E00"};

typedef struct out {
    wp_buf *b;
    int fail;
} out;

static void put(out *o, const char *s)
{
    if (wp_buf_puts(o->b, s) != 0)
        o->fail = 1;
}

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        o->fail = 1;
    else
        put(o, tmp);
}

static void esc(out *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            put(o, "&lt;");
            break;
        case '>':
            put(o, "&gt;");
            break;
        case '&':
            put(o, "&amp;");
            break;
        case '"':
            put(o, "&quot;");
            break;
        default:
            if (wp_buf_putc(o->b, *s) != 0)
                o->fail = 1;
        }
    }
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long num(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* 1234567 -> "1,234,567" */
static void put_int(out *o, long long v)
{
    char d[32], r[48];
    int n = snprintf(d, sizeof d, "%lld", v < 0 ? -v : v), k = 0;
    if (v < 0)
        r[k++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            r[k++] = ',';
        r[k++] = d[i];
    }
    r[k] = '\0';
    put(o, r);
}

static void put_pct(out *o, const json_t *v)
{
    if (!json_is_number(v))
        put(o, "&ndash;");
    else
        putf(o, "%.1f%%", 100 * json_number_value(v));
}

/* ---- charts: the pieces every chart shares ---------------------------- */

/* The largest value over ns series of nl values each (0 when all are
 * empty or negative). */
static double series_max(const json_t *const *series, int ns, int nl)
{
    double max = 0;
    for (int s = 0; s < ns; s++)
        for (int i = 0; i < nl; i++) {
            double v = json_number_value(json_array_get(series[s], (size_t)i));
            if (v > max)
                max = v;
        }
    return max;
}

/* A chart's figure, caption and svg element of W x H (labelled by title
 * for screen readers), then its legend at x0 when there is more than one
 * series (or always, with force). */
static void chart_open(out *o, const char *title, int W, int H, const char *const *snames, int ns,
                       int x0, int force)
{
    put(o, "<figure><figcaption>");
    esc(o, title);
    put(o, "</figcaption>");
    putf(o,
         "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
         "aria-label=\"",
         W, H, W, H);
    esc(o, title);
    put(o, "\">");
    if (ns > 1 || force)
        for (int s = 0; s < ns; s++) {
            putf(o, "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/>", x0 + s * 150,
                 palette[s % 6]);
            putf(o, "<text x=\"%d\" y=\"16\" class=\"lg\">", x0 + s * 150 + 16);
            esc(o, snames[s]);
            put(o, "</text>");
        }
}

/* Closes what chart_open opened, with the note (if any) under the chart. */
static void chart_close(out *o, const char *note)
{
    put(o, "</svg>");
    if (note && *note) {
        put(o, "<p class=\"note\">");
        esc(o, note);
        put(o, "</p>");
    }
    put(o, "</figure>\n");
}

/* A horizontal bar chart: one row per label, one bar per series. */
static void hbars_pct(out *o, const char *title, const char *note, const json_t *labels,
                      const char *const *snames, const json_t *const *series, int ns,
                      double pct_base);

static void hbars(out *o, const char *title, const char *note, const json_t *labels,
                  const char *const *snames, const json_t *const *series, int ns)
{
    hbars_pct(o, title, note, labels, snames, series, ns, 0);
}

/* The same; pct_base > 0 adds "(x% of pct_base)" after each value. */
static void hbars_pct(out *o, const char *title, const char *note, const json_t *labels,
                      const char *const *snames, const json_t *const *series, int ns,
                      double pct_base)
{
    int nl = (int)json_array_size(labels);
    double max = series_max(series, ns, nl);
    int row_h = 8 + 14 * ns, W = 760, L = 230, R = pct_base > 0 ? 130 : 90, top = ns > 1 ? 26 : 6;
    int H = top + nl * row_h + 6;
    chart_open(o, title, W, H, snames, ns, L, 0);
    for (int i = 0; i < nl; i++) {
        int y = top + i * row_h;
        putf(o, "<text x=\"%d\" y=\"%d\" class=\"lb\" text-anchor=\"end\">", L - 8,
             y + row_h / 2 + 4);
        esc(o, json_string_value(json_array_get(labels, (size_t)i)));
        put(o, "</text>");
        for (int s = 0; s < ns; s++) {
            const json_t *jv = json_array_get(series[s], (size_t)i);
            double v = json_number_value(jv);
            double w = max > 0 ? (W - L - R) * v / max : 0;
            int by = y + 4 + s * 14;
            putf(o, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"12\" fill=\"%s\"/>", L, by,
                 w < 0 ? 0 : w, palette[s % 6]);
            if (v == 0 && ns > 1)
                continue; /* an empty bar needs no label */
            putf(o, "<text x=\"%.1f\" y=\"%d\" class=\"v\">", L + (w < 0 ? 0 : w) + 4, by + 10);
            if (json_is_integer(jv))
                put_int(o, (long long)json_integer_value(jv));
            else
                putf(o, "%.3g", v);
            if (pct_base > 0)
                putf(o, " (%.1f%%)", 100 * v / pct_base);
            put(o, "</text>");
        }
    }
    chart_close(o, note);
}

static void needs(out *o, const json_t *sec, const char *what)
{
    put(o, "<p class=\"na\"><b>Not available:</b> ");
    esc(o, what);
    put(o, ". Run <code>");
    esc(o, str(sec, "needs"));
    put(o, "</code> first, then audit again.</p>\n");
}

static void limits_box(out *o, const json_t *r, int from, int to)
{
    const json_t *lim = json_object_get(r, "limits");
    put(o, "<div class=\"limits\"><b>Read with care.</b><ul>");
    for (int i = from; i <= to && i < (int)json_array_size(lim); i++) {
        put(o, "<li>");
        esc(o, json_string_value(json_array_get(lim, (size_t)i)));
        put(o, "</li>");
    }
    put(o, "</ul></div>\n");
}

static void funnel(out *o, const json_t *r)
{
    const json_t *f = json_object_get(r, "funnel"), *steps = json_object_get(f, "steps");
    const json_t *sh = json_object_get(f, "in_shards");
    json_t *labels = json_array(), *vals = json_array();
    size_t i;
    const json_t *st;
    put(o, "<section id=\"funnel\"><h2>Funnel</h2>\n<p>Pairs that reach each step, in pipeline "
           "order; each stage's drops are read from the catalog's decisions, whatever stages "
           "have run.</p>\n");
    json_array_foreach(steps, i, st)
    {
        json_array_append_new(labels, json_string(str(st, "name")));
        json_array_append_new(vals, json_integer(num(st, "count")));
    }
    if (json_is_true(json_object_get(sh, "available"))) {
        json_array_append_new(labels, json_string("in shards"));
        json_array_append_new(vals, json_integer(num(sh, "count")));
    }
    const json_t *series[1] = {vals};
    hbars_pct(o, "Funnel: pairs at each step", "Percentages are of all candidate pairs.", labels,
              NULL, series, 1, (double)num(json_array_get(steps, 0), "count"));
    json_decref(labels);
    json_decref(vals);
    put(o, "<table><thead><tr><th>step</th><th class=\"n\">pairs</th><th class=\"n\">removed "
           "here</th><th>why (pairs)</th></tr></thead><tbody>\n");
    json_array_foreach(steps, i, st)
    {
        const json_t *rs = json_object_get(st, "reasons"), *rr;
        size_t k;
        put(o, "<tr><td>");
        esc(o, str(st, "name"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(st, "count"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(st, "dropped"));
        put(o, "</td><td>");
        json_array_foreach(rs, k, rr)
        {
            if (k > 0)
                put(o, ", ");
            esc(o, str(rr, "reason"));
            put(o, " (");
            put_int(o, num(rr, "count"));
            put(o, ")");
        }
        put(o, "</td></tr>\n");
    }
    put(o, "<tr><td>in shards</td><td class=\"n\">");
    if (json_is_true(json_object_get(sh, "available"))) {
        put_int(o, num(sh, "count"));
        put(o, "</td><td></td><td>");
        put_int(o, num(sh, "shards"));
        put(o, " shards in ");
        esc(o, str(sh, "output"));
    } else
        put(o, "&ndash;</td><td></td><td>no shards yet (<code>witpipe shard</code>)");
    put(o, "</td></tr>\n</tbody></table></section>\n");
}

/* Grouped columns (a histogram per series), compact: bins along x. */
static void vbars(out *o, const char *title, const char *note, const json_t *labels,
                  const char *const *snames, const json_t *const *series, int ns)
{
    int nl = (int)json_array_size(labels);
    double max = series_max(series, ns, nl);
    int W = 760, L = 10, top = 30, ch = 130, bottom = 34, H = top + ch + bottom;
    double gw = nl > 0 ? (double)(W - 2 * L) / nl : 0, bw = (gw - 10) / (ns > 0 ? ns : 1);
    chart_open(o, title, W, H, snames, ns, L, 1);
    putf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>", L, top + ch, W - L,
         top + ch);
    for (int i = 0; i < nl; i++) {
        double gx = L + i * gw + 5;
        for (int s = 0; s < ns; s++) {
            const json_t *jv = json_array_get(series[s], (size_t)i);
            double v = json_number_value(jv), hh = max > 0 ? (ch - 14) * v / max : 0;
            double x = gx + s * bw;
            putf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>", x,
                 top + ch - hh, bw - 1, hh, palette[s % 6]);
            if (v != 0) {
                putf(o, "<text x=\"%.1f\" y=\"%.1f\" class=\"v sm\" text-anchor=\"middle\">",
                     x + bw / 2, top + ch - hh - 3);
                put_int(o, (long long)v);
                put(o, "</text>");
            }
        }
        putf(o, "<text x=\"%.1f\" y=\"%d\" class=\"lb\" text-anchor=\"middle\">",
             gx + (gw - 10) / 2, top + ch + 16);
        esc(o, json_string_value(json_array_get(labels, (size_t)i)));
        put(o, "</text>");
    }
    chart_close(o, note);
}

static void histo(out *o, const json_t *h, const char *note)
{
    static const char *const subs[3] = {"candidates", "fetched", "selected"};
    const json_t *c = json_object_get(h, "counts");
    const json_t *series[3] = {json_object_get(c, subs[0]), json_object_get(c, subs[1]),
                               json_object_get(c, subs[2])};
    char title[256];
    snprintf(title, sizeof title, "%s (%s)", str(h, "title"), str(h, "unit"));
    vbars(o, title, note, json_object_get(h, "bins"), subs, series, 3);
}

static void top_table(out *o, const json_t *rows, const char *key, const char *head)
{
    static const char *const subs[3] = {"candidates", "fetched", "selected"};
    size_t i;
    const json_t *e;
    putf(o,
         "<table><thead><tr><th>%s</th><th class=\"n\">candidates</th><th "
         "class=\"n\">fetched</th><th class=\"n\">selected</th></tr></thead><tbody>\n",
         head);
    json_array_foreach(rows, i, e)
    {
        put(o, "<tr><td>");
        esc(o, str(e, key));
        put(o, "</td>");
        for (int s = 0; s < 3; s++) {
            put(o, "<td class=\"n\">");
            put_int(o, num(e, subs[s]));
            put(o, "</td>");
        }
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
}

static void composition(out *o, const json_t *r)
{
    const json_t *c = json_object_get(r, "composition");
    const json_t *d = json_object_get(c, "domains"), *l = json_object_get(c, "languages"),
                 *q = json_object_get(c, "queries");
    put(o, "<section id=\"composition\"><h2>Composition</h2>\n<p>Three subsets throughout: "
           "<b>candidates</b> (every pair), <b>fetched</b> (image stored), <b>selected</b> "
           "(fetched and dropped by no stage).</p>\n");
    histo(o, json_object_get(c, "caption_chars"), NULL);
    histo(o, json_object_get(c, "image_short_side"),
          "Pairs whose image size is unknown (not fetched) are not counted.");
    histo(o, json_object_get(c, "aspect"), NULL);
    put(o, "<h3>Top registrable domains</h3>\n<p>Distinct domains: ");
    put_int(o, num(json_object_get(d, "distinct"), "candidates"));
    put(o, " among candidates, ");
    put_int(o, num(json_object_get(d, "distinct"), "selected"));
    put(o, " among selected. Share of the top 10 domains: ");
    put_pct(o, json_object_get(json_object_get(d, "top10_share"), "candidates"));
    put(o, " of candidates, ");
    put_pct(o, json_object_get(json_object_get(d, "top10_share"), "selected"));
    put(o, " of selected.</p>\n");
    top_table(o, json_object_get(d, "top"), "domain", "domain");
    put(o, "<h3>Languages</h3>\n");
    if (!json_is_true(json_object_get(l, "available")))
        needs(o, l, "Per-pair language");
    else
        top_table(o, json_object_get(l, "top"), "lang", "language");
    put(o, "<h3>Query coverage</h3>\n");
    if (!json_is_true(json_object_get(q, "available")))
        needs(o, q, "Query coverage (entries matched per pair)");
    else {
        static const char *const subs[3] = {"candidates", "fetched", "selected"};
        put(o, "<table><thead><tr><th></th><th class=\"n\">candidates</th><th "
               "class=\"n\">fetched</th><th class=\"n\">selected</th></tr></thead><tbody>\n");
        static const char *const rows[5] = {"matched_entries", "pairs_matched", "top10_share",
                                            "top1pct_share", "entropy_bits"};
        static const char *const names[5] = {"entries matched", "pairs matching an entry",
                                             "share of matches in the top 10 entries (head)",
                                             "share of matches in the top 1% of entries",
                                             "entropy of matches over entries (bits)"};
        for (int k = 0; k < 5; k++) {
            const json_t *x = json_object_get(q, rows[k]);
            putf(o, "<tr><td>%s</td>", names[k]);
            for (int s = 0; s < 3; s++) {
                const json_t *v = json_object_get(x, subs[s]);
                put(o, "<td class=\"n\">");
                if (k == 2 || k == 3)
                    put_pct(o, v);
                else if (json_is_integer(v))
                    put_int(o, (long long)json_integer_value(v));
                else if (json_is_number(v))
                    putf(o, "%.2f", json_number_value(v));
                else
                    put(o, "&ndash;");
                put(o, "</td>");
            }
            put(o, "</tr>\n");
        }
        put(o, "</tbody></table>\n");
        put(o,
            "<h3>Per-query skew</h3><p>Queries whose selected pairs' captions lean most "
            "toward one gender group, against that group's share over all selected "
            "captions with a gender term.</p>\n<table><thead><tr><th>query</th><th>group</th><th "
            "class=\"n\">share (95% CI)</th><th class=\"n\">overall</th><th "
            "class=\"n\">captions</th></tr></thead><tbody>\n");
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(q, "skew"), i, e)
        {
            put(o, "<tr><td>");
            esc(o, str(e, "query"));
            put(o, "</td><td>");
            esc(o, str(e, "group"));
            put(o, "</td><td class=\"n\">");
            put_pct(o, json_object_get(e, "share"));
            put(o, " (");
            put_pct(o, json_object_get(e, "share_lo"));
            put(o, "&ndash;");
            put_pct(o, json_object_get(e, "share_hi"));
            put(o, ")</td><td class=\"n\">");
            put_pct(o, json_object_get(e, "overall_share"));
            put(o, "</td><td class=\"n\">");
            put_int(o, num(e, "mentions"));
            put(o, "</td></tr>\n");
        }
        put(o, "</tbody></table>\n");
    }
    put(o, "</section>\n");
}

static void gallery(out *o, const json_t *r)
{
    const json_t *g = json_object_get(r, "gallery"), *row;
    size_t i;
    put(o, "<section id=\"gallery\"><h2>Gallery</h2>\n");
    if (!json_is_true(json_object_get(g, "enabled"))) {
        put(o, "<p class=\"na\">Left out (<code>--no-gallery</code>).</p></section>\n");
        return;
    }
    putf(o,
         "<p>A seeded random sample (seed %lld) of up to %lld pairs kept, and of each drop "
         "reason, so you can see what each step removed. Scores are the CLIP score (or the "
         "dropping stage's score) where one exists.</p>\n",
         num(g, "seed"), num(g, "per_row"));
    json_array_foreach(json_object_get(g, "rows"), i, row)
    {
        size_t k;
        const json_t *it;
        put(o, "<div class=\"grow\"><h4>");
        esc(o, str(row, "label"));
        put(o, " <span class=\"muted\">(");
        put_int(o, num(row, "pairs"));
        put(o, num(row, "pairs") == 1 ? " pair)" : " pairs)");
        put(o, "</span></h4><div class=\"cells\">");
        json_array_foreach(json_object_get(row, "items"), k, it)
        {
            const char *th = json_string_value(json_object_get(it, "thumb"));
            put(o, "<div class=\"cell\">");
            if (th) {
                put(o, "<img alt=\"\" src=\"");
                put(o, th);
                put(o, "\">");
            } else
                put(o, "<div class=\"noimg\">no image</div>");
            put(o, "<p>");
            esc(o, str(it, "caption"));
            put(o, "</p>");
            if (json_is_number(json_object_get(it, "score")))
                putf(o, "<p class=\"muted\">score %.3f</p>",
                     json_number_value(json_object_get(it, "score")));
            put(o, "</div>");
        }
        put(o, "</div></div>\n");
    }
    put(o, "</section>\n");
}

static void demographics(out *o, const json_t *r)
{
    const json_t *d = json_object_get(r, "demographics");
    const json_t *cps = json_object_get(d, "checkpoints"), *groups = json_object_get(d, "groups");
    const json_t *caps = json_object_get(d, "captions"), *g, *lx;
    size_t i, k;
    int ncp = (int)json_array_size(cps);
    put(o, "<section id=\"demographics\"><h2>Caption-side demographics</h2>\n<p>Captions "
           "mentioning each group's terms (lexicons below, editable), at each step of the "
           "funnel: a change along a row is a shift caused by that step.</p>\n");
    limits_box(o, r, 0, 1);
    put(o, "<table><thead><tr><th>lexicon</th><th>group</th>");
    for (int c = 0; c < ncp; c++) {
        put(o, "<th class=\"n\">");
        esc(o, json_string_value(json_array_get(cps, (size_t)c)));
        put(o, "</th>");
    }
    put(o, "</tr></thead><tbody>\n<tr><td colspan=\"2\"><i>captions</i></td>");
    for (int c = 0; c < ncp; c++) {
        put(o, "<td class=\"n\">");
        put_int(o, (long long)json_integer_value(json_array_get(caps, (size_t)c)));
        put(o, "</td>");
    }
    put(o, "</tr>\n");
    json_array_foreach(groups, i, g)
    {
        put(o, "<tr><td>");
        esc(o, str(g, "lexicon"));
        put(o, "</td><td>");
        esc(o, str(g, "group"));
        put(o, "</td>");
        for (int c = 0; c < ncp; c++) {
            put(o, "<td class=\"n\">");
            put_int(o, (long long)json_integer_value(
                           json_array_get(json_object_get(g, "captions"), (size_t)c)));
            put(o, " <span class=\"muted\">");
            put_pct(o, json_array_get(json_object_get(g, "share"), (size_t)c));
            put(o, "</span></td>");
        }
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
    /* chart: the groups some caption mentions, first vs last checkpoint, in % */
    {
        json_t *labels = json_array(), *first = json_array(), *last = json_array();
        json_array_foreach(groups, i, g)
        {
            char lab[160];
            const json_t *a0 = json_array_get(json_object_get(g, "share"), 0);
            const json_t *a1 = json_array_get(json_object_get(g, "share"), (size_t)ncp - 1);
            double v0 = json_is_number(a0) ? 100 * json_number_value(a0) : 0;
            double v1 = json_is_number(a1) ? 100 * json_number_value(a1) : 0;
            if (v0 == 0 && v1 == 0)
                continue;
            snprintf(lab, sizeof lab, "%s: %s", str(g, "lexicon"), str(g, "group"));
            json_array_append_new(labels, json_string(lab));
            json_array_append_new(first, json_real(v0));
            json_array_append_new(last, json_real(v1));
        }
        const char *names[2] = {"candidates",
                                json_string_value(json_array_get(cps, (size_t)ncp - 1))};
        const json_t *series[2] = {first, last};
        if (json_array_size(labels) > 0)
            hbars(o, "Captions mentioning each group (% of captions): candidates vs the last step",
                  "Groups no caption mentions are left out of the chart (see the table).", labels,
                  names, series, 2);
        json_decref(labels);
        json_decref(first);
        json_decref(last);
    }
    put(o, "<h3>Strongest associations (normalised PMI, 95% bootstrap CI)</h3>\n<p>nPMI runs from "
           "&minus;1 (never together) through 0 (independent) to 1 (always together). Positive: "
           "seen together at least ");
    put_int(o, num(d, "min_cooccurrence"));
    put(o, " times; negative: expected at least that often if independent. ");
    put_int(o, num(d, "bootstrap_replicates"));
    put(o, " bootstrap replicates over captions.</p>\n");
    const json_t *as;
    json_array_foreach(json_object_get(d, "associations"), i, as)
    {
        const json_t *items = json_object_get(as, "items"), *it;
        if (json_array_size(items) == 0)
            continue;
        put(o, "<h4>");
        esc(o, str(as, "group_lexicon"));
        put(o, " &times; ");
        esc(o, str(as, "attribute_lexicon"));
        put(o, " <span class=\"muted\">(");
        esc(o, str(as, "subset"));
        put(o, ", ");
        put_int(o, num(as, "documents"));
        put(o, " captions)</span></h4>\n<table "
               "class=\"assoc\"><thead><tr><th>group</th><th>term</th><th>together than "
               "chance</th><th class=\"n\">nPMI</th><th class=\"n\">95% CI</th><th>interval "
               "on &minus;1 &hellip; 0 &hellip; +1</th><th "
               "class=\"n\">together</th><th class=\"n\">group</th><th "
               "class=\"n\">term</th></tr></thead><tbody>\n");
        json_array_foreach(items, k, it)
        {
            double v = json_number_value(json_object_get(it, "npmi"));
            double lo = json_number_value(json_object_get(it, "ci_lo"));
            double hi = json_number_value(json_object_get(it, "ci_hi"));
            put(o, "<tr><td>");
            esc(o, str(it, "group"));
            put(o, "</td><td>");
            esc(o, str(it, "attribute"));
            put(o, strcmp(str(it, "direction"), "positive") == 0 ? "</td><td>more often"
                                                                 : "</td><td>less often");
            putf(o, "</td><td class=\"n\">%+.3f</td><td class=\"n\">%+.3f &ndash; %+.3f</td>", v,
                 lo, hi);
            /* a small interval plot over [-1, 1] */
            putf(o,
                 "<td><svg width=\"160\" height=\"14\" viewBox=\"0 0 160 14\" role=\"img\" "
                 "aria-label=\"interval\"><line x1=\"80\" y1=\"0\" x2=\"80\" y2=\"14\" "
                 "stroke=\"#999\"/><line x1=\"%.1f\" y1=\"7\" x2=\"%.1f\" y2=\"7\" "
                 "stroke=\"%s\" stroke-width=\"3\"/><circle cx=\"%.1f\" cy=\"7\" r=\"3.5\" "
                 "fill=\"%s\"/></svg></td>",
                 80 + 80 * (isnan(lo) ? v : lo), 80 + 80 * (isnan(hi) ? v : hi),
                 v >= 0 ? palette[0] : palette[5], 80 + 80 * v, v >= 0 ? palette[0] : palette[5]);
            put(o, "<td class=\"n\">");
            put_int(o, num(it, "n_xy"));
            put(o, "</td><td class=\"n\">");
            put_int(o, num(it, "n_x"));
            put(o, "</td><td class=\"n\">");
            put_int(o, num(it, "n_y"));
            put(o, "</td></tr>\n");
        }
        put(o, "</tbody></table>\n");
    }
    put(o, "<h3>Lexicons</h3><table><thead><tr><th>lexicon</th><th>kind</th><th "
           "class=\"n\">terms</th><th>groups</th><th>file (sha256)</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(d, "lexicons"), i, lx)
    {
        put(o, "<tr><td>");
        esc(o, str(lx, "name"));
        put(o, "</td><td>");
        esc(o, str(lx, "kind"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(lx, "terms"));
        putf(o, "</td><td>%zu</td><td class=\"small\">",
             json_array_size(json_object_get(lx, "groups")));
        esc(o, str(lx, "file"));
        put(o, " (");
        putf(o, "%.12s", str(lx, "sha256"));
        put(o, "&hellip;)</td></tr>\n");
    }
    put(o, "</tbody></table></section>\n");
}

static void share_cell(out *o, const json_t *x, const char *p)
{
    char k[64];
    put(o, "<td class=\"n\">");
    snprintf(k, sizeof k, "%s_share", p);
    put_pct(o, json_object_get(x, k));
    put(o, " <span class=\"muted\">(");
    snprintf(k, sizeof k, "%s_lo", p);
    put_pct(o, json_object_get(x, k));
    put(o, "&ndash;");
    snprintf(k, sizeof k, "%s_hi", p);
    put_pct(o, json_object_get(x, k));
    put(o, ")</span></td>");
}

static void probes(out *o, const json_t *r)
{
    const json_t *p = json_object_get(r, "probes"), *a, *x;
    size_t i, k;
    put(o, "<section id=\"probes\"><h2>Image-side probes (zero-shot CLIP)</h2>\n");
    limits_box(o, r, 2, 3);
    if (!json_is_true(json_object_get(p, "available"))) {
        needs(o, p, "The image-side probes");
        put(o, "</section>\n");
        return;
    }
    put(o, "<p>Model: <code>");
    esc(o, str(p, "model"));
    put(o, "</code>; image embeddings reused from <code>witpipe encode</code> (");
    put_int(o, num(json_object_get(p, "embedded"), "fetched"));
    put(o, " fetched pairs embedded, ");
    put_int(o, num(p, "without_embedding"));
    put(o, " without an embedding). Perceived person: ");
    put_pct(o, json_object_get(json_object_get(json_object_get(p, "person"), "fetched"),
                               "person_share"));
    put(o, " of fetched, ");
    put_pct(o, json_object_get(json_object_get(json_object_get(p, "person"), "selected"),
                               "person_share"));
    put(o, " of selected images.</p>\n");
    json_array_foreach(json_object_get(p, "attributes"), i, a)
    {
        static const char *const subs[2] = {"fetched", "selected"};
        const json_t *c = json_object_get(a, "counts");
        const json_t *series[2] = {json_object_get(c, subs[0]), json_object_get(c, subs[1])};
        char title[128];
        snprintf(title, sizeof title, "Perceived %s of person images (zero-shot)", str(a, "probe"));
        hbars(o, title, NULL, json_object_get(a, "classes"), subs, series, 2);
    }
    const json_t *d = json_object_get(p, "denigration");
    put(o, "<h3>Denigration probe (CLIP paper, section 7.1)</h3>\n<p>Share of person images "
           "assigned to a crime label (");
    json_array_foreach(json_object_get(d, "crime_labels"), i, x)
    {
        if (i)
            put(o, ", ");
        esc(o, json_string_value(x));
    }
    put(o, ") or a non-human label (");
    json_array_foreach(json_object_get(d, "nonhuman_labels"), i, x)
    {
        if (i)
            put(o, ", ");
        esc(o, json_string_value(x));
    }
    put(o, ") when these are added to the race labels; then with a '");
    esc(o, str(d, "child_label"));
    put(o, "' label added too. Wilson 95% intervals.</p>\n<table><thead><tr><th>perceived "
           "group</th><th "
           "class=\"n\">images</th><th class=\"n\">crime</th><th class=\"n\">non-human</th><th "
           "class=\"n\">crime, child added</th><th class=\"n\">non-human, child added</th><th "
           "class=\"n\">child</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(d, "rows"), i, x)
    {
        put(o, "<tr><td>");
        esc(o, str(x, "group"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(x, "n"));
        put(o, "</td>");
        share_cell(o, x, "crime");
        share_cell(o, x, "nonhuman");
        share_cell(o, x, "crime_with_child");
        share_cell(o, x, "nonhuman_with_child");
        share_cell(o, x, "child_with_child");
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
    const json_t *f = json_object_get(p, "disparity");
    put(o, "<h3>Filter disparity</h3>\n<p>For each perceived group and each caption gender "
           "group: its CLIP scores and the share of its pairs each step removed. Unequal shares "
           "mean a step changes who is in the corpus.</p>\n<table><thead><tr><th>group</th><th "
           "class=\"n\">pairs</th><th class=\"n\">CLIP score p25 / median / p75</th>");
    json_array_foreach(json_object_get(f, "steps"), i, x)
    {
        put(o, "<th class=\"n\">");
        esc(o, json_string_value(x));
        put(o, "</th>");
    }
    put(o, "</tr></thead><tbody>\n");
    json_array_foreach(json_object_get(f, "rows"), i, x)
    {
        const json_t *cs = json_object_get(x, "clip_score"), *y;
        put(o, "<tr><td>");
        esc(o, str(x, "group"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(x, "n"));
        put(o, "</td><td class=\"n\">");
        if (json_is_number(json_object_get(cs, "median")))
            putf(o, "%.3f / %.3f / %.3f", json_number_value(json_object_get(cs, "p25")),
                 json_number_value(json_object_get(cs, "median")),
                 json_number_value(json_object_get(cs, "p75")));
        else
            put(o, "&ndash;");
        put(o, "</td>");
        json_array_foreach(json_object_get(x, "removed"), k, y)
        {
            put(o, "<td class=\"n\">");
            put_pct(o, json_object_get(y, "removed_share"));
            put(o, "</td>");
        }
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table></section>\n");
}

static void sensitive(out *o, const json_t *r)
{
    const json_t *s = json_object_get(r, "sensitive_queries"), *x;
    size_t i;
    put(o, "<section id=\"sensitive\"><h2>Sensitive queries</h2>\n<p>For the demographic and "
           "identity query entries listed in <code>audit/labels/sensitive_queries.txt</code>: "
           "the share of their fetched pairs that <code>witpipe filter</code> tagged with an "
           "unsafe content label.</p>\n");
    if (!json_is_true(json_object_get(s, "available"))) {
        needs(o, s, "Content tags of query entries");
        put(o, "</section>\n");
        return;
    }
    put(o, "<table><thead><tr><th>query</th><th class=\"n\">fetched pairs</th><th "
           "class=\"n\">tagged</th><th class=\"n\">unsafe (95% CI)</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(s, "rows"), i, x)
    {
        put(o, "<tr><td>");
        esc(o, str(x, "query"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(x, "pairs_fetched"));
        put(o, "</td><td class=\"n\">");
        put_int(o, num(x, "tagged"));
        put(o, "</td>");
        put(o, "<td class=\"n\">");
        put_pct(o, json_object_get(x, "share"));
        put(o, " <span class=\"muted\">(");
        put_pct(o, json_object_get(x, "share_lo"));
        put(o, "&ndash;");
        put_pct(o, json_object_get(x, "share_hi"));
        put(o, ")</span></td>");
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table></section>\n");
}

static void runs(out *o, const json_t *r)
{
    const json_t *x;
    size_t i;
    put(o, "<section id=\"runs\"><h2>Stage "
           "runs</h2>\n<table><thead><tr><th>#</th><th>stage</th><th>status</th><th>started "
           "(UTC)</th><th>parameters</th><th>counts</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(r, "runs"), i, x)
    {
        char when[64] = "";
        time_t t = (time_t)num(x, "started_at");
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        char *pj = wp_json_tree_text(json_object_get(x, "params"), 0);
        char *cj = wp_json_tree_text(json_object_get(x, "counts"), 0);
        putf(o, "<tr><td>%lld</td><td>", num(x, "id"));
        esc(o, str(x, "stage"));
        put(o, "</td><td>");
        esc(o, str(x, "status"));
        putf(o, "</td><td>%s</td><td class=\"small\">", when);
        esc(o, pj ? pj : "");
        put(o, "</td><td class=\"small\">");
        esc(o, cj ? cj : "");
        put(o, "</td></tr>\n");
        free(pj);
        free(cj);
    }
    put(o, "</tbody></table></section>\n");
}

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d1d1f;margin:0;background:#fff}"
    "main{max-width:1000px;margin:0 auto;padding:8px 24px 48px}"
    "header{background:#0b3d5c;color:#fff;padding:18px 24px}"
    "header h1{margin:0 0 4px;font-size:22px}header p{margin:0;opacity:.85}"
    "nav{position:sticky;top:0;background:#f2f5f8;border-bottom:1px solid #d7dde3;padding:6px 24px;"
    "font-size:13px;z-index:1}nav a{margin-right:14px;color:#0b3d5c;text-decoration:none}"
    "h2{border-bottom:2px solid #0b3d5c;padding-bottom:3px;margin-top:34px;font-size:19px}"
    "h3{font-size:16px;margin:22px 0 6px}h4{font-size:14px;margin:14px 0 4px}"
    ".cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}"
    ".card{flex:1 1 150px;border:1px solid #d7dde3;border-radius:6px;padding:8px 12px}"
    ".card b{display:block;font-size:22px}.card span{color:#555;font-size:12px}"
    "table{border-collapse:collapse;margin:8px 0 14px;font-size:13px;width:100%}"
    "th,td{border-bottom:1px solid #e3e7eb;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f5f8;font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}"
    ".muted{color:#667;font-weight:normal}.small{font-size:11px;word-break:break-all}"
    "figure{margin:10px 0 16px;break-inside:avoid}figcaption{font-weight:600;margin-bottom:4px}"
    "svg.chart{max-width:100%;height:auto}svg text{font:12px system-ui,'DejaVu "
    "Sans',sans-serif;fill:#1d1d1f}"
    "svg text.v{fill:#333}svg text.sm{font-size:10px}.note{color:#555;font-size:12px;margin:2px 0}"
    ".limits{border-left:4px solid #D55E00;background:#fff6ef;padding:6px 12px;margin:10px "
    "0;font-size:13px}"
    ".limits ul{margin:4px 0;padding-left:18px}"
    ".na{background:#f4f4f4;border:1px dashed #aaa;padding:8px 12px;border-radius:4px}"
    ".grow{break-inside:avoid}.cells{display:flex;gap:10px;flex-wrap:wrap}"
    ".cell{width:140px;font-size:11px}.cell img{width:128px;height:128px;object-fit:contain;"
    "display:block;background:#f4f4f4;border:1px solid #ccc}.cell p{margin:2px "
    "0;overflow-wrap:anywhere}"
    ".noimg{width:128px;height:128px;border:1px dashed #bbb;color:#888;display:flex;"
    "align-items:center;justify-content:center}"
    "table.assoc td{vertical-align:middle}code{background:#f2f5f8;padding:0 3px;border-radius:3px}"
    "@media print{nav{display:none}header{background:#fff;color:#000;border-bottom:2px solid #000}"
    "h2{break-after:avoid}table,tr{break-inside:avoid}}";

int aud_render_html(const json_t *r, wp_buf *b)
{
    out o = {b, 0};
    const json_t *corp = json_object_get(r, "corpus"), *f = json_object_get(r, "funnel");
    const json_t *sh = json_object_get(f, "in_shards");
    char when[64] = "";
    time_t t = (time_t)num(r, "generated_at");
    struct tm tm;
    size_t nsteps = json_array_size(json_object_get(f, "steps"));
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    wp_buf_reset(b);
    put(&o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src "
            "data:; style-src 'unsafe-inline'\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>witpipe "
            "audit: ");
    esc(&o, str(corp, "dir"));
    putf(&o, "</title><style>%s</style></head><body>\n", css);
    put(&o, "<header><h1>Corpus audit</h1><p>");
    esc(&o, str(corp, "dir"));
    putf(&o, " &middot; generated %s by witpipe ", when);
    esc(&o, str(r, "witpipe_version"));
    put(&o, "</p></header>\n<nav><a href=\"#funnel\">Funnel</a><a "
            "href=\"#composition\">Composition</a><a href=\"#gallery\">Gallery</a><a "
            "href=\"#demographics\">Caption demographics</a><a href=\"#probes\">Image probes</a><a "
            "href=\"#sensitive\">Sensitive queries</a><a href=\"#runs\">Stage "
            "runs</a></nav>\n<main>\n");
    put(&o, "<div class=\"cards\"><div class=\"card\"><b>");
    put_int(&o, num(corp, "pairs"));
    put(&o, "</b><span>candidate pairs</span></div><div class=\"card\"><b>");
    put_int(&o, nsteps > 1 ? num(json_array_get(json_object_get(f, "steps"), 1), "count") : 0);
    put(&o, "</b><span>fetched</span></div><div class=\"card\"><b>");
    put_int(&o, num(f, "selected"));
    put(&o, "</b><span>selected (no stage dropped them)</span></div><div class=\"card\"><b>");
    if (json_is_true(json_object_get(sh, "available")))
        put_int(&o, num(sh, "count"));
    else
        put(&o, "&ndash;");
    put(&o, "</b><span>in shards</span></div><div class=\"card\"><b>");
    put_int(&o, (long long)json_array_size(json_object_get(corp, "sources")));
    put(&o, "</b><span>sources</span></div></div>\n");
    funnel(&o, r);
    composition(&o, r);
    gallery(&o, r);
    demographics(&o, r);
    probes(&o, r);
    sensitive(&o, r);
    runs(&o, r);
    put(&o, "<section id=\"about\"><h2>About this report</h2>\n");
    limits_box(&o, r, 0, 99);
    put(&o, "<p>Every figure here is in <code>report.json</code> beside this file "
            "(schema: <code>schemas/audit_report.schema.json</code>); <code>datasheet.md</code> "
            "holds the datasheet.</p></section>\n</main></body></html>\n");
    return o.fail ? WP_ENOMEM : 0;
}
