/*
 * filter/rules.c: the filter's rule set: defaults, rule names, the field's
 * presets (each with its source, in filter.h), list options and the rules
 * as JSON (the run's recorded params and the resume key).
 */
#include "filter.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const rule_names[FLT_R_COUNT] = {
    "min_chars",     "max_chars",      "min_words", "max_repeat", "boilerplate", "text_dup",
    "lang",          "min_lang_conf",  "min_side",  "max_aspect", "min_bytes",   "min_pixels",
    "no_clip_score", "min_clip_score", "clip_top",  "drop_tag",
};

const char *flt_rule_name(int rule)
{
    return rule >= 0 && rule < FLT_R_COUNT ? rule_names[rule] : "?";
}

void flt_rules_init(flt_rules *r)
{
    memset(r, 0, sizeof *r);
    r->min_chars = r->max_chars = r->min_words = r->max_repeat = -1;
    r->min_side = r->min_bytes = r->min_pixels = -1;
    r->min_lang_conf = NAN;
    r->max_aspect = NAN;
    r->min_clip_score = NAN;
    r->clip_top_pct = NAN;
    r->clip_text = FLT_CLIP_OWN;
}

int flt_rules_use_clip(const flt_rules *r)
{
    return !isnan(r->min_clip_score) || !isnan(r->clip_top_pct);
}

/* Splits a comma list into fixed slots. */
static int set_list(const char *what, const char *list, char *slots, size_t slot_len, int max,
                    int *n, wp_err *err)
{
    const char *s = list;
    *n = 0;
    while (1) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len > 0 && *s == ' ')
            s++, len--;
        while (len > 0 && s[len - 1] == ' ')
            len--;
        if (len == 0)
            return wp_err_set(err, FLT_ERULE, "%s: empty item in '%s'", what, list);
        if (len >= slot_len)
            return wp_err_set(err, FLT_ERULE, "%s: '%.*s' is too long", what, (int)len, s);
        if (*n >= max)
            return wp_err_set(err, FLT_ERULE, "%s: more than %d items", what, max);
        memcpy(slots + (size_t)*n * slot_len, s, len);
        slots[(size_t)*n * slot_len + len] = '\0';
        (*n)++;
        if (e == NULL)
            break;
        s = e + 1;
    }
    return 0;
}

int flt_rules_set_langs(flt_rules *r, const char *list, wp_err *err)
{
    return set_list("--lang", list, &r->langs[0][0], sizeof r->langs[0], FLT_LANGS_MAX, &r->nlangs,
                    err);
}

int flt_rules_set_tags(flt_rules *r, const char *list, wp_err *err)
{
    return set_list("--drop-tag", list, &r->drop_tags[0][0], sizeof r->drop_tags[0], 8, &r->ntags,
                    err);
}

const char *const flt_preset_names[] = {"datacomp-basic", "laion", "datacomp-clip30", NULL};

int flt_preset_apply(flt_rules *r, const char *name, wp_err *err)
{
    if (strcmp(name, "datacomp-basic") == 0) {
        if (r->nlangs == 0)
            flt_rules_set_langs(r, "en", NULL);
        if (r->min_words < 0)
            r->min_words = 3;
        if (r->min_chars < 0)
            r->min_chars = 6;
        if (r->min_side < 0)
            r->min_side = 200;
        if (isnan(r->max_aspect))
            r->max_aspect = 3.0;
        return 0;
    }
    if (strcmp(name, "laion") == 0) {
        if (isnan(r->min_clip_score) && isnan(r->clip_top_pct))
            r->min_clip_score = 0.28;
        if (r->nlangs == 0)
            flt_rules_set_langs(r, "en", NULL);
        return 0;
    }
    if (strcmp(name, "datacomp-clip30") == 0) {
        if (isnan(r->clip_top_pct) && isnan(r->min_clip_score))
            r->clip_top_pct = 30.0;
        return 0;
    }
    return wp_err_set(err, FLT_EPRESET,
                      "unknown preset '%s' (known: datacomp-basic, laion, datacomp-clip30)", name);
}

static int put_i(wp_buf *o, const char *k, int64_t v, int *first)
{
    if (v < 0)
        return 0;
    int rc = wp_buf_printf(o, "%s\"%s\":%lld", *first ? "" : ",", k, (long long)v);
    *first = 0;
    return rc;
}

static int put_d(wp_buf *o, const char *k, double v, int *first)
{
    if (isnan(v))
        return 0;
    int rc = wp_buf_printf(o, "%s\"%s\":%.17g", *first ? "" : ",", k, v);
    *first = 0;
    return rc;
}

/* Names here are short words from option values: escaped anyway. */
static int put_str(wp_buf *o, const char *s)
{
    int rc = wp_buf_putc(o, '"');
    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = wp_buf_printf(o, "\\%c", c);
        else if (c < 0x20)
            rc = wp_buf_printf(o, "\\u%04x", c);
        else
            rc = wp_buf_putc(o, c);
    }
    return rc ? rc : wp_buf_putc(o, '"');
}

int flt_rules_json(const flt_rules *r, wp_buf *o)
{
    static const char *const modes[] = {"own", "max", "mean"};
    int first = 1, rc = wp_buf_putc(o, '{');
    rc |= put_i(o, "min_chars", r->min_chars, &first);
    rc |= put_i(o, "max_chars", r->max_chars, &first);
    rc |= put_i(o, "min_words", r->min_words, &first);
    rc |= put_i(o, "max_repeat", r->max_repeat, &first);
    if (r->boilerplate)
        rc |= put_i(o, "boilerplate", 1, &first);
    if (r->text_dup)
        rc |= put_i(o, "text_dup", 1, &first);
    if (r->nlangs > 0) {
        rc |= wp_buf_printf(o, "%s\"lang\":[", first ? "" : ",");
        first = 0;
        for (int i = 0; i < r->nlangs; i++) {
            rc |= i ? wp_buf_putc(o, ',') : 0;
            rc |= put_str(o, r->langs[i]);
        }
        rc |= wp_buf_putc(o, ']');
    }
    rc |= put_d(o, "min_lang_conf", r->min_lang_conf, &first);
    rc |= put_i(o, "min_side", r->min_side, &first);
    rc |= put_d(o, "max_aspect", r->max_aspect, &first);
    rc |= put_i(o, "min_bytes", r->min_bytes, &first);
    rc |= put_i(o, "min_pixels", r->min_pixels, &first);
    rc |= put_d(o, "min_clip_score", r->min_clip_score, &first);
    rc |= put_d(o, "clip_top_pct", r->clip_top_pct, &first);
    if (flt_rules_use_clip(r)) {
        rc |= wp_buf_printf(o, "%s\"model\":", first ? "" : ",");
        first = 0;
        rc |= put_str(o, r->model);
        rc |= wp_buf_printf(o, ",\"clip_score_text\":\"%s\"", modes[r->clip_text % 3]);
    }
    if (r->ntags > 0) {
        rc |= wp_buf_printf(o, "%s\"drop_tag\":[", first ? "" : ",");
        first = 0;
        for (int i = 0; i < r->ntags; i++) {
            rc |= i ? wp_buf_putc(o, ',') : 0;
            rc |= put_str(o, r->drop_tags[i]);
        }
        rc |= wp_buf_putc(o, ']');
    }
    rc |= wp_buf_putc(o, '}');
    return rc ? WP_ENOMEM : 0;
}
