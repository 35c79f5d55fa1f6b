/*
 * shard/sample_json.c: one pair's metadata as JSON, the same object for a
 * shard's KEY.json member (schemas/sample.schema.json) and a row of
 * `witpipe export` (schemas/export_row.schema.json: no "key", plus "kept"
 * and "dropped_by"), so the two cannot drift apart.
 */
#include "shard/shard.h"
#include "shard/shard_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *json_opt_int(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *json_opt_str(const char *s)
{
    return s == NULL ? json_null() : json_string(s);
}

/* A caption as a JSON string; invalid UTF-8 (which add never stores, but
 * other stages might) is repaired rather than lost. */
static json_t *json_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j == NULL) {
        wp_buf b = {0};
        if (wp_utf8_repair(s, n, &b) >= 0)
            j = json_stringn(b.data ? b.data : "", b.len);
        wp_buf_free(&b);
    }
    return j ? j : json_string("");
}

struct dec_acc {
    json_t *decisions, *scores;
};

static void on_decision(void *ud, const char *stage, const char *decision, const char *reason,
                        double score)
{
    struct dec_acc *d = ud;
    if (stage == NULL) {
        json_object_set_new(d->scores, decision ? decision : "", json_real(score));
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "decision", json_opt_str(decision));
    json_object_set_new(o, "reason", json_opt_str(reason));
    json_object_set_new(o, "score", isnan(score) ? json_null() : json_real(score));
    json_object_set_new(d->decisions, stage, o);
}

int shard_sample_json(cat_shard_cursor *cur, const cat_sample *s, int export_row, wp_buf *out,
                      wp_err *err)
{
    json_t *j = json_object(), *src = json_object(), *extra = NULL;
    struct dec_acc d = {json_object(), json_object()};
    char *txt = NULL;
    int rc = 0;

    if (j == NULL || src == NULL || d.decisions == NULL || d.scores == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if (!export_row)
        json_object_set_new(j, "key", json_string(s->uid));
    json_object_set_new(j, "uid", json_string(s->uid));
    json_object_set_new(j, "url", json_text(s->url ? s->url : "", s->url ? strlen(s->url) : 0));
    json_object_set_new(j, "caption", json_text(s->text, s->text_len));
    json_object_set_new(j, "width", json_opt_int(s->width));
    json_object_set_new(j, "height", json_opt_int(s->height));
    json_object_set_new(j, "original_width", json_opt_int(s->orig_width));
    json_object_set_new(j, "original_height", json_opt_int(s->orig_height));
    json_object_set_new(j, "bytes", json_opt_int(s->bytes));
    json_object_set_new(j, "original_bytes", json_opt_int(s->orig_bytes));
    json_object_set_new(j, "format", json_opt_str(s->format));
    json_object_set_new(j, "original_format", json_opt_str(s->orig_format));
    json_object_set_new(j, "sha256", json_opt_str(s->sha256));
    json_object_set_new(j, "original_sha256", json_opt_str(s->orig_sha256));
    json_object_set_new(j, "state", json_opt_str(s->state));
    json_object_set_new(j, "error_class", json_opt_str(s->error_class));
    json_object_set_new(src, "kind", json_opt_str(s->source_kind));
    json_object_set_new(src, "location", json_opt_str(s->source_location));
    json_object_set_new(src, "origin", json_opt_str(s->origin));
    json_object_set_new(j, "source", src);
    src = NULL;
    if (s->extra != NULL)
        extra = json_loads(s->extra, 0, NULL);
    json_object_set_new(j, "extra", extra ? extra : s->extra ? json_string(s->extra) : json_null());
    if ((rc = cat_shard_decisions(cur, s->pair_id, on_decision, &d, err)) != 0)
        goto out;
    json_object_set_new(j, "decisions", d.decisions);
    json_object_set_new(j, "clip_score", d.scores);
    d.decisions = d.scores = NULL;
    if (export_row) {
        json_object_set_new(j, "kept", json_boolean(s->selected));
        json_object_set_new(j, "dropped_by", json_opt_str(s->drop));
    }
    txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    wp_buf_reset(out);
    if (txt == NULL || wp_buf_puts(out, txt) != 0)
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
out:
    free(txt);
    json_decref(j);
    json_decref(src);
    json_decref(d.decisions);
    json_decref(d.scores);
    return rc;
}
