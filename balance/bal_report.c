/*
 * balance/bal_report.c: what a balance run leaves behind: decisions and
 * per-entry counts in the catalog, the JSON report
 * (schemas/balance_report.schema.json) and the sorted count curve before
 * and after balancing as an SVG (log-log: rank against count, t marked).
 */
#include "bal_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int bal_write(cat *c, const bal_pairs *P, const bal_result *R, const qry_list *l, const bal_opts *o,
              int64_t version, const wp_reporter *rep, bal_stats *st, wp_err *err)
{
    wp_progress pr = {.stage = "balance", .total = (uint64_t)st->pairs_decided};
    size_t done = 0;
    int rc = 0, open = 0;
    for (size_t i = 0; i < P->n; i++) {
        const char *reason;
        size_t len;
        char buf[QRY_ENTRY_MAX + 1];
        if (!bal_in_part(P->uid + i * WP_UID_LEN, o->part_i, o->part_n))
            continue;
        if (!open) {
            if (wp_stop_requested())
                return wp_err_set(err, WP_ESTOP, "stopped");
            if ((rc = cat_begin(c, err)) != 0)
                return rc;
            open = 1;
        }
        if (R->why[i] == WHY_ONE_TEXT) {
            reason = "one_text_per_image";
        } else if (R->why[i] == WHY_UNMATCHED) {
            reason = "unmatched";
        } else {
            const char *e = qry_list_entry(l, R->best[i], &len);
            memcpy(buf, e, len);
            buf[len] = '\0';
            reason = buf;
        }
        if ((rc = cat_bal_decide(c, P->pair_id[i], R->keep[i], reason, R->score[i], o->run_id,
                                 err)) != 0)
            goto fail;
        if (++done % 50000 == 0) {
            if ((rc = cat_commit(c, err)) != 0)
                goto fail;
            open = 0;
            pr.done = done;
            wp_report_progress(rep, &pr);
        }
    }
    if (!open && (rc = cat_begin(c, err)) != 0)
        return rc;
    open = 1;
    for (size_t e = 0; e < R->nentries; e++)
        if ((rc = cat_qry_set_count(c, version, (int64_t)e, R->count[e], R->kept[e], err)) != 0)
            goto fail;
    if ((rc = cat_commit(c, err)) != 0)
        goto fail;
    pr.done = done;
    wp_report_progress(rep, &pr);
    return 0;
fail:
    if (open)
        cat_rollback(c);
    return rc;
}

static json_t *top_json(const bal_entry_count *t, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "entry", json_string(t[i].entry));
        json_object_set_new(o, "count", json_integer(t[i].count));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *bal_stats_json(const bal_opts *o, const bal_stats *st)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "mode", json_string(o->mode == BAL_MODE_CAP ? "cap" : "metaclip"));
    json_object_set_new(j, "rule", json_string(bal_rule_key(o->rule, o->match_flags)));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "t", json_integer(st->t));
    json_object_set_new(j, "tail_fraction",
                        o->tail_fraction > 0 ? json_real(o->tail_fraction) : json_null());
    json_object_set_new(j, "per_language", json_boolean(o->per_language));
    json_object_set_new(j, "list_version", json_integer(st->list_version));
    json_object_set_new(j, "part",
                        o->part_n > 1 ? json_sprintf("%d/%d", o->part_i, o->part_n) : json_null());
    json_object_set_new(j, "pairs_matched_now", json_integer(st->pairs_matched_now));
    json_object_set_new(j, "pairs", json_integer(st->pairs));
    json_object_set_new(j, "pairs_matched", json_integer(st->pairs_matched));
    json_object_set_new(j, "pairs_decided", json_integer(st->pairs_decided));
    json_object_set_new(j, "kept", json_integer(st->kept));
    json_object_set_new(j, "dropped", json_integer(st->dropped));
    json_object_set_new(j, "dropped_unmatched", json_integer(st->dropped_unmatched));
    json_object_set_new(j, "dropped_one_text", json_integer(st->dropped_one_text));
    json_object_set_new(j, "entries", json_integer(st->entries));
    json_object_set_new(j, "entries_matched", json_integer(st->entries_matched));
    json_object_set_new(j, "head_entries", json_integer(st->head_entries));
    json_object_set_new(j, "matches_before", json_integer(st->matches_before));
    json_object_set_new(j, "matches_after", json_integer(st->matches_after));
    json_object_set_new(j, "head_share_before", json_real(st->head_share_before));
    json_object_set_new(j, "head_share_after", json_real(st->head_share_after));
    json_object_set_new(j, "entropy_before", json_real(st->entropy_before));
    json_object_set_new(j, "entropy_after", json_real(st->entropy_after));
    json_object_set_new(j, "top_before", top_json(st->top_before, st->ntop_before));
    json_object_set_new(j, "top_after", top_json(st->top_after, st->ntop_after));
    return j;
}

char *bal_stats_to_json(const bal_opts *o, const bal_stats *st)
{
    json_t *j = bal_stats_json(o, st);
    char *s = wp_json_tree_text(j, 0);
    json_decref(j);
    return s;
}

static int i64_desc(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a > b ? -1 : a < b;
}

/* the counts > 0 of v, largest first; *m = how many */
static int64_t *sorted_counts(const int64_t *v, size_t n, size_t *m)
{
    int64_t *s = malloc((n ? n : 1) * sizeof *s);
    size_t k = 0;
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0)
            s[k++] = v[i];
    qsort(s, k, sizeof *s, i64_desc);
    *m = k;
    return s;
}

int bal_report_json(const char *path, const bal_opts *o, const bal_stats *st, const bal_result *R,
                    const qry_list *l, wp_err *err)
{
    json_t *j = bal_stats_json(o, st), *cb, *ca;
    size_t nb = 0, na = 0;
    int64_t *b = sorted_counts(R->kc, R->nk, &nb), *a = sorted_counts(R->kk, R->nk, &na);
    char *s = NULL;
    int rc;
    (void)l;
    if (j == NULL || b == NULL || a == NULL)
        goto oom;
    /* the curves, thinned to at most ~1000 log-spaced ranks each */
    cb = json_array();
    ca = json_array();
    json_object_set_new(j, "curve_before", cb);
    json_object_set_new(j, "curve_after", ca);
    for (int w = 0; w < 2; w++) {
        const int64_t *v = w ? a : b;
        size_t n = w ? na : nb, last = (size_t)-1;
        json_t *arr = w ? ca : cb;
        for (int q = 0; q <= 1000 && n > 0; q++) {
            size_t r = (size_t)floor(pow((double)n, q / 1000.0)) - 1;
            if (r >= n)
                r = n - 1;
            if (r == last)
                continue;
            last = r;
            json_t *pt = json_array();
            json_array_append_new(pt, json_integer((json_int_t)r + 1));
            json_array_append_new(pt, json_integer(v[r]));
            json_array_append_new(arr, pt);
        }
    }
    s = wp_json_tree_text(j, WP_JSON_INDENT(2));
    if (s == NULL)
        goto oom;
    rc = wp_write_file_atomic(path, s, strlen(s), err);
    free(s);
    free(a);
    free(b);
    json_decref(j);
    return rc;
oom:
    free(a);
    free(b);
    json_decref(j);
    return wp_err_set(err, WP_ENOMEM, "out of memory writing %s", path);
}

/* ---- the SVG ---------------------------------------------------------------- */

#define W  900
#define H  560
#define ML 90
#define MR 30
#define MT 50
#define MB 70

static double lx(double r, double rmax)
{
    return ML + (W - ML - MR) * (rmax > 1 ? log10(r) / log10(rmax) : 0);
}

static double ly(double c, double cmax)
{
    return H - MB - (H - MT - MB) * (cmax > 1 ? log10(c) / log10(cmax) : 0);
}

static int polyline(wp_buf *b, const int64_t *v, size_t n, double rmax, double cmax,
                    const char *color, const char *dash)
{
    size_t last = (size_t)-1;
    if (n == 0)
        return 0;
    if (wp_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"",
                      color, dash) != 0)
        return WP_ENOMEM;
    for (int q = 0; q <= 2000; q++) {
        size_t r = (size_t)floor(pow((double)n, q / 2000.0)) - 1;
        if (r >= n)
            r = n - 1;
        if (r == last)
            continue;
        last = r;
        if (wp_buf_printf(b, "%.1f,%.1f ", lx((double)r + 1, rmax), ly((double)v[r], cmax)) != 0)
            return WP_ENOMEM;
    }
    return wp_buf_puts(b, "\"/>\n");
}

int bal_curve_svg(const char *path, const bal_result *R, const bal_stats *st, wp_err *err)
{
    size_t nb = 0, na = 0;
    int64_t *b = sorted_counts(R->kc, R->nk, &nb), *a = sorted_counts(R->kk, R->nk, &na);
    wp_buf s = {0};
    double rmax, cmax;
    int rc = WP_ENOMEM;
    if (b == NULL || a == NULL)
        goto out;
    rmax = (double)(nb > na ? nb : na);
    cmax = (double)(nb ? b[0] : 1);
    if (na && a[0] > cmax)
        cmax = (double)a[0];
    if (rmax < 10)
        rmax = 10;
    if (cmax < 10)
        cmax = 10;
    rmax = pow(10, ceil(log10(rmax)));
    cmax = pow(10, ceil(log10(cmax)));
    if (wp_buf_printf(&s,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
                      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                      "<text x=\"%d\" y=\"30\" font-size=\"20\" text-anchor=\"middle\">"
                      "Matches per entry, sorted: before and after balancing (t = %lld)</text>\n",
                      W, H, W, H, W / 2, (long long)st->t) != 0)
        goto out;
    /* grid and ticks at powers of ten */
    for (double r = 1; r <= rmax * 1.0001; r *= 10) {
        double x = lx(r, rmax);
        if (wp_buf_printf(&s,
                          "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\">"
                          "%.0f</text>\n",
                          x, MT, x, H - MB, x, H - MB + 22, r) != 0)
            goto out;
    }
    for (double c = 1; c <= cmax * 1.0001; c *= 10) {
        double y = ly(c, cmax);
        if (wp_buf_printf(&s,
                          "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%d\" y=\"%.1f\" font-size=\"15\" text-anchor=\"end\">"
                          "%.0f</text>\n",
                          ML, y, W - MR, y, ML - 8, y + 5, c) != 0)
            goto out;
    }
    if (wp_buf_printf(&s,
                      "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                      "stroke=\"#333\"/>\n"
                      "<text x=\"%d\" y=\"%d\" font-size=\"16\" text-anchor=\"middle\">entry rank "
                      "(largest first, log scale)</text>\n"
                      "<text x=\"22\" y=\"%d\" font-size=\"16\" text-anchor=\"middle\" "
                      "transform=\"rotate(-90 22 %d)\">pairs matching the entry (log "
                      "scale)</text>\n",
                      ML, MT, W - ML - MR, H - MT - MB, (ML + W - MR) / 2, H - 20,
                      (MT + H - MB) / 2, (MT + H - MB) / 2) != 0)
        goto out;
    if (st->t >= 1 && (double)st->t <= cmax) {
        double y = ly((double)st->t, cmax);
        if (wp_buf_printf(&s,
                          "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#888\" "
                          "stroke-dasharray=\"3,4\"/>\n<text x=\"%d\" y=\"%.1f\" font-size=\"14\" "
                          "fill=\"#555\" text-anchor=\"end\">t = %lld</text>\n",
                          ML, y, W - MR, y, W - MR - 6, y - 6, (long long)st->t) != 0)
            goto out;
    }
    if (polyline(&s, b, nb, rmax, cmax, "#d62728", "") != 0 ||
        polyline(&s, a, na, rmax, cmax, "#1f77b4", " stroke-dasharray=\"8,5\"") != 0)
        goto out;
    if (wp_buf_printf(
            &s,
            "<rect x=\"%d\" y=\"%d\" width=\"250\" height=\"58\" fill=\"white\" stroke=\"#999\"/>\n"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#d62728\" "
            "stroke-width=\"2.5\"/>"
            "<text x=\"%d\" y=\"%d\" font-size=\"15\">before (%zu entries)</text>\n"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2.5\" "
            "stroke-dasharray=\"8,5\"/><text x=\"%d\" y=\"%d\" font-size=\"15\">after (%zu "
            "entries)</text>\n</svg>\n",
            W - MR - 260, MT + 10, W - MR - 250, MT + 30, W - MR - 215, MT + 30, W - MR - 205,
            MT + 35, nb, W - MR - 250, MT + 52, W - MR - 215, MT + 52, W - MR - 205, MT + 57,
            na) != 0)
        goto out;
    rc = wp_write_file_atomic(path, s.data, s.len, err);
    free(a);
    free(b);
    wp_buf_free(&s);
    return rc;
out:
    free(a);
    free(b);
    wp_buf_free(&s);
    return wp_err_set(err, WP_ENOMEM, "out of memory drawing %s", path);
}
