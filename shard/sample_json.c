/*
 * shard/sample_json.c: one pair's metadata as JSON, the same object for a
 * shard's KEY.json member (schemas/sample.schema.json) and a row of
 * `witpipe export` (schemas/export_row.schema.json: no "key", plus "kept"
 * and "dropped_by"), so the two cannot drift apart.
 *
 * Written with wp_json straight onto the caller's buffer (once per sample:
 * no tree is built). Captions and URLs with invalid UTF-8 (which add never
 * stores, but other stages might) come out repaired rather than lost: the
 * writer's policy.
 */
#include "shard/shard.h"
#include "shard/shard_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void opt_int(wp_json *j, const char *key, int64_t v)
{
    if (v < 0)
        wp_json_null(j, key);
    else
        wp_json_int(j, key, v);
}

/* Decisions and scores arrive interleaved, one callback per row; each goes
 * to its own object, written into its own buffer and placed whole. */
struct dec_acc {
    wp_buf db, sb;
    wp_json dec, scores;
};

static void on_decision(void *ud, const char *stage, const char *decision, const char *reason,
                        double score)
{
    struct dec_acc *d = ud;
    if (stage == NULL) {
        wp_json_real(&d->scores, decision ? decision : "", score);
        return;
    }
    wp_json_obj_begin(&d->dec, stage);
    wp_json_str(&d->dec, "decision", decision);
    wp_json_str(&d->dec, "reason", reason);
    if (isnan(score))
        wp_json_null(&d->dec, "score");
    else
        wp_json_real(&d->dec, "score", score);
    wp_json_obj_end(&d->dec);
}

int shard_sample_json(cat_shard_cursor *cur, const cat_sample *s, int export_row, wp_buf *out,
                      wp_err *err)
{
    struct dec_acc d = {0};
    json_t *extra = NULL;
    wp_json j;
    int rc = 0;

    wp_json_init(&d.dec, &d.db);
    wp_json_init(&d.scores, &d.sb);
    wp_json_obj_begin(&d.dec, NULL);
    wp_json_obj_begin(&d.scores, NULL);
    if ((rc = cat_shard_decisions(cur, s->pair_id, on_decision, &d, err)) != 0)
        goto out;
    wp_json_obj_end(&d.dec);
    wp_json_obj_end(&d.scores);
    if (wp_json_finish(&d.dec) != 0 || wp_json_finish(&d.scores) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }

    wp_buf_reset(out);
    wp_json_init(&j, out);
    wp_json_obj_begin(&j, NULL);
    if (!export_row)
        wp_json_str(&j, "key", s->uid);
    wp_json_str(&j, "uid", s->uid);
    wp_json_str(&j, "url", s->url ? s->url : "");
    wp_json_strn(&j, "caption", s->text ? s->text : "", s->text ? s->text_len : 0);
    opt_int(&j, "width", s->width);
    opt_int(&j, "height", s->height);
    opt_int(&j, "original_width", s->orig_width);
    opt_int(&j, "original_height", s->orig_height);
    opt_int(&j, "bytes", s->bytes);
    opt_int(&j, "original_bytes", s->orig_bytes);
    wp_json_str(&j, "format", s->format);
    wp_json_str(&j, "original_format", s->orig_format);
    wp_json_str(&j, "sha256", s->sha256);
    wp_json_str(&j, "original_sha256", s->orig_sha256);
    wp_json_str(&j, "state", s->state);
    wp_json_str(&j, "error_class", s->error_class);
    wp_json_obj_begin(&j, "source");
    wp_json_str(&j, "kind", s->source_kind);
    wp_json_str(&j, "location", s->source_location);
    wp_json_str(&j, "origin", s->origin);
    wp_json_obj_end(&j);
    /* pairs.extra is JSON this writer wrote; it is parsed all the same, so
     * a damaged catalog value comes out as a string, never as broken
     * JSON. */
    if (s->extra != NULL && (extra = json_loads(s->extra, JSON_DECODE_ANY, NULL)) != NULL)
        wp_json_tree(&j, "extra", extra, 0);
    else
        wp_json_str(&j, "extra", s->extra);
    wp_json_raw(&j, "decisions", d.db.data);
    wp_json_raw(&j, "clip_score", d.sb.data);
    if (export_row) {
        wp_json_bool(&j, "kept", s->selected);
        wp_json_str(&j, "dropped_by", s->drop);
    }
    wp_json_obj_end(&j);
    if (wp_json_finish(&j) != 0)
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
out:
    json_decref(extra);
    wp_buf_free(&d.db);
    wp_buf_free(&d.sb);
    return rc;
}
