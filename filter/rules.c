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

/* A rule's value, left out when the rule is off (negative or NaN). */
static void put_i(wp_json *j, const char *k, int64_t v)
{
    if (v >= 0)
        wp_json_int(j, k, v);
}

static void put_d(wp_json *j, const char *k, double v)
{
    if (!isnan(v))
        wp_json_real(j, k, v);
}

int flt_rules_json(const flt_rules *r, wp_buf *o)
{
    static const char *const modes[] = {"own", "max", "mean"};
    wp_json j;
    wp_json_init(&j, o);
    wp_json_obj_begin(&j, NULL);
    put_i(&j, "min_chars", r->min_chars);
    put_i(&j, "max_chars", r->max_chars);
    put_i(&j, "min_words", r->min_words);
    put_i(&j, "max_repeat", r->max_repeat);
    if (r->boilerplate)
        put_i(&j, "boilerplate", 1);
    if (r->text_dup)
        put_i(&j, "text_dup", 1);
    if (r->nlangs > 0) {
        wp_json_arr_begin(&j, "lang");
        for (int i = 0; i < r->nlangs; i++)
            wp_json_str(&j, NULL, r->langs[i]);
        wp_json_arr_end(&j);
    }
    put_d(&j, "min_lang_conf", r->min_lang_conf);
    put_i(&j, "min_side", r->min_side);
    put_d(&j, "max_aspect", r->max_aspect);
    put_i(&j, "min_bytes", r->min_bytes);
    put_i(&j, "min_pixels", r->min_pixels);
    put_d(&j, "min_clip_score", r->min_clip_score);
    put_d(&j, "clip_top_pct", r->clip_top_pct);
    if (flt_rules_use_clip(r)) {
        wp_json_str(&j, "model", r->model);
        wp_json_str(&j, "clip_score_text", modes[r->clip_text % 3]);
    }
    if (r->ntags > 0) {
        wp_json_arr_begin(&j, "drop_tag");
        for (int i = 0; i < r->ntags; i++)
            wp_json_str(&j, NULL, r->drop_tags[i]);
        wp_json_arr_end(&j);
    }
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}
