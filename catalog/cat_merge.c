/*
 * catalog/cat_merge.c: the SQL of `witpipe merge` (docs/scale-out.md):
 * folding a part catalog into the corpus catalog by content keys, in one
 * transaction, so that a merge killed at any moment leaves the corpus as it
 * was and a rerun gives the same catalog.
 *
 * The part is ATTACHed as schema "p"; row ids of the part are never copied
 * as such: pairs are matched by uid, images by URL, sources by (kind,
 * location), pages by URL, robots by origin, shards by (output, name),
 * decisions by (pair uid, stage), embeddings by (pair uid, model). Runs are
 * copied with new ids (the part's id plus a fixed offset) and point at the
 * merged_parts row. Store files and embedding shards are renumbered through
 * the maps the caller (merge/) gives, after it has copied the files.
 */
#include "cat_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Runs sql (any number of statements) with ?-free text. */
static int mexec(cat *c, const char *sql, wp_err *err, const char *what)
{
    char *msg = NULL;

    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = wp_err_set(err, CAT_ESQL, "%s: %s", what, msg ? msg : "SQLite error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* One int64 from a one-row query with no parameters (0 when NULL). */
static int mquery_i64(cat *c, const char *sql, int64_t *out, wp_err *err, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, what);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = cat_sqlerr(c, err, what);
    }
    sqlite3_finalize(s);
    return rc;
}

int cat_merge_fingerprint(cat *part, char out[WP_SHA256_LEN * 2 + 1], wp_err *err)
{
    static const char runs_sql[] = "SELECT id, stage, params, started_at, status, counts FROM runs "
                                   "ORDER BY id";
    static const char pairs_sql[] =
        "SELECT (SELECT count(*) FROM pairs), (SELECT min(uid) FROM pairs), "
        "(SELECT max(uid) FROM pairs), (SELECT count(*) FROM images WHERE state = 'ok'), "
        "(SELECT total(bytes) FROM images), (SELECT count(*) FROM decisions), "
        "(SELECT count(*) FROM decisions WHERE decision = 'drop'), "
        "(SELECT count(*) FROM embeddings)";
    wp_sha256 *h = wp_sha256_new();
    sqlite3_stmt *s = NULL;
    uint8_t d[WP_SHA256_LEN];
    int rc = 0, k;

    if (h == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if (sqlite3_prepare_v2(part->db, runs_sql, -1, &s, NULL) != SQLITE_OK) {
        rc = cat_sqlerr(part, err, "fingerprint: runs");
        goto out;
    }
    while ((k = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < 6; i++) {
            const unsigned char *t = sqlite3_column_text(s, i);
            int n = sqlite3_column_bytes(s, i);
            if ((t && wp_sha256_update(h, t, (size_t)n) != 0) ||
                wp_sha256_update(h, "\t", 1) != 0) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
        }
        wp_sha256_update(h, "\n", 1);
    }
    if (k != SQLITE_DONE) {
        rc = cat_sqlerr(part, err, "fingerprint: runs");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(part->db, pairs_sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        rc = cat_sqlerr(part, err, "fingerprint: pairs");
        goto out;
    }
    for (int i = 0; i < 8; i++) {
        const unsigned char *t = sqlite3_column_text(s, i);
        if (t)
            wp_sha256_update(h, t, (size_t)sqlite3_column_bytes(s, i));
        wp_sha256_update(h, "\t", 1);
    }
    if (wp_sha256_final(h, d) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    wp_hex(d, sizeof d, out);
out:
    sqlite3_finalize(s);
    wp_sha256_free(h);
    return rc;
}

int cat_merge_find(cat *c, const char *fingerprint, int64_t *merged_at, char *path, size_t path_cap,
                   wp_err *err)
{
    static const char sql[] = "SELECT merged_at, path FROM merged_parts WHERE fingerprint = ?1";
    sqlite3_stmt *s = cat_stmt(c, sql, err);
    int rc;

    if (s == NULL)
        return CAT_ESQL;
    sqlite3_bind_text(s, 1, fingerprint, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 1);
        if (merged_at)
            *merged_at = sqlite3_column_int64(s, 0);
        if (path && path_cap)
            snprintf(path, path_cap, "%s", p ? p : "");
        sqlite3_reset(s);
        return 1;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return cat_sqlerr(c, err, "merged part lookup");
    return 0;
}

int64_t cat_merge_unfinished_runs(cat *part, wp_err *err)
{
    int64_t n = 0;

    if (mquery_i64(part, "SELECT count(*) FROM runs WHERE status != 'done'", &n, err,
                   "unfinished runs") != 0)
        return -1;
    return n;
}

int64_t cat_merge_parts_count(cat *c, wp_err *err)
{
    int64_t n = 0;

    if (mquery_i64(c, "SELECT count(*) FROM merged_parts", &n, err, "merged parts") != 0)
        return -1;
    return n;
}

int cat_merge_store_files(cat *c, int64_t **files, size_t *n, wp_err *err)
{
    static const char sql[] = "SELECT DISTINCT store_file FROM images WHERE store_file IS NOT NULL "
                              "ORDER BY store_file";
    sqlite3_stmt *s = NULL;
    int64_t *v = NULL;
    size_t len = 0, cap = 0;
    int k, rc = 0;

    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "store files");
    while ((k = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
            cap = nc;
        }
        v[len++] = sqlite3_column_int64(s, 0);
    }
    if (k != SQLITE_DONE)
        rc = cat_sqlerr(c, err, "store files");
out:
    sqlite3_finalize(s);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *files = v;
    *n = len;
    return 0;
}

int cat_merge_store_base(cat *c, int64_t *base, wp_err *err)
{
    int64_t m = 0;
    int rc = mquery_i64(c, "SELECT coalesce(max(store_file), 0) FROM images", &m, err,
                        "last store file");
    if (rc == 0)
        *base = m + 1;
    return rc;
}

int cat_merge_emb_shards(cat *c, cat_merge_emb_fn fn, void *ud, wp_err *err)
{
    static const char sql[] = "SELECT DISTINCT model, shard FROM embeddings ORDER BY model, shard";
    sqlite3_stmt *s = NULL;
    int k, rc = 0;

    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "embedding shards");
    while ((k = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = fn(ud, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1))) != 0)
            break;
    }
    if (rc == 0 && k != SQLITE_DONE)
        rc = cat_sqlerr(c, err, "embedding shards");
    sqlite3_finalize(s);
    return rc;
}

/* Fills the temp maps the merge statements join on. */
static int fill_maps(cat *c, const cat_merge_in *in, wp_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if ((rc = mexec(c,
                    "CREATE TEMP TABLE IF NOT EXISTS mrg_store (old INTEGER PRIMARY KEY, new "
                    "INTEGER NOT NULL);"
                    "CREATE TEMP TABLE IF NOT EXISTS mrg_emb (model TEXT, old INTEGER, new "
                    "INTEGER NOT NULL, PRIMARY KEY (model, old));"
                    "DELETE FROM temp.mrg_store; DELETE FROM temp.mrg_emb;",
                    err, "merge maps")) != 0)
        return rc;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO temp.mrg_store VALUES (?1, ?2)", -1, &s, NULL) !=
        SQLITE_OK)
        return cat_sqlerr(c, err, "store map");
    for (size_t i = 0; i < in->nstore; i++) {
        sqlite3_bind_int64(s, 1, in->store_old[i]);
        sqlite3_bind_int64(s, 2, in->store_new[i]);
        if (sqlite3_step(s) != SQLITE_DONE) {
            rc = cat_sqlerr(c, err, "store map");
            goto out;
        }
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO temp.mrg_emb VALUES (?1, ?2, ?3)", -1, &s, NULL) !=
        SQLITE_OK)
        return cat_sqlerr(c, err, "embedding map");
    for (size_t i = 0; i < in->nemb; i++) {
        sqlite3_bind_text(s, 1, in->emb[i].model, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, in->emb[i].old_shard);
        sqlite3_bind_int64(s, 3, in->emb[i].new_shard);
        if (sqlite3_step(s) != SQLITE_DONE) {
            rc = cat_sqlerr(c, err, "embedding map");
            goto out;
        }
        sqlite3_reset(s);
    }
out:
    sqlite3_finalize(s);
    return rc;
}

/* The first (pair, stage) the part decided otherwise than the corpus. */
static int check_decisions(cat *c, const cat_merge_in *in, wp_err *err)
{
    static const char sql[] =
        "SELECT pp.uid, d.stage, d.decision, md.decision FROM p.decisions d "
        "JOIN p.pairs pp ON pp.id = d.pair_id JOIN main.pairs mp ON mp.uid = pp.uid "
        "JOIN main.decisions md ON md.pair_id = mp.id AND md.stage = d.stage "
        "WHERE md.decision != d.decision LIMIT 1";
    sqlite3_stmt *s = NULL;
    int rc = 0, k;

    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return cat_sqlerr(c, err, "decision check");
    k = sqlite3_step(s);
    if (k == SQLITE_ROW)
        rc = wp_err_set(err, CAT_ECONFLICT,
                        "pair %s: part %s decided %s '%s' but the corpus (from an earlier part) "
                        "has '%s': the parts overlap, their partition was broken",
                        (const char *)sqlite3_column_text(s, 0), in->path,
                        (const char *)sqlite3_column_text(s, 1),
                        (const char *)sqlite3_column_text(s, 2),
                        (const char *)sqlite3_column_text(s, 3));
    else if (k != SQLITE_DONE)
        rc = cat_sqlerr(c, err, "decision check");
    sqlite3_finalize(s);
    return rc;
}

/* The statements of one merge, in order; %1$lld is the run id offset and
 * %2$lld the merged_parts id. Images: new URLs are inserted; a known URL
 * takes the part's result when it ranks higher (ok > error > pending) or,
 * between equals that are not pending, finished earlier. */
static const char *const merge_sql[] = {
    /* runs, with new ids */
    "INSERT INTO main.runs (id, stage, params, started_at, ended_at, status, counts, error, "
    "merged_part) SELECT id + %1$lld, stage, params, started_at, ended_at, status, counts, error, "
    "%2$lld FROM p.runs ORDER BY id",
    "INSERT OR IGNORE INTO main.sources (kind, location, params, added_at) "
    "SELECT kind, location, params, added_at FROM p.sources ORDER BY id",
    "CREATE TEMP TABLE mrg_src AS SELECT ps.id AS old, ms.id AS new FROM p.sources ps "
    "JOIN main.sources ms ON ms.kind = ps.kind AND ms.location = ps.location",
    "UPDATE main.images AS m SET state = i.state, error_class = i.error_class, "
    "error_detail = i.error_detail, http_status = i.http_status, attempts = i.attempts, "
    "opt_out = i.opt_out, format = i.format, orig_format = i.orig_format, "
    "orig_width = i.orig_width, orig_height = i.orig_height, orig_bytes = i.orig_bytes, "
    "orig_sha256 = i.orig_sha256, width = i.width, height = i.height, bytes = i.bytes, "
    "sha256 = i.sha256, store_file = (SELECT new FROM temp.mrg_store WHERE old = i.store_file), "
    "store_offset = i.store_offset, fetch_ms = i.fetch_ms, fetched_at = i.fetched_at, "
    "run_id = i.run_id + %1$lld FROM p.images AS i WHERE i.url = m.url AND ("
    "(CASE i.state WHEN 'ok' THEN 2 WHEN 'error' THEN 1 ELSE 0 END) > "
    "(CASE m.state WHEN 'ok' THEN 2 WHEN 'error' THEN 1 ELSE 0 END) OR "
    "(i.state = m.state AND i.state != 'pending' AND coalesce(i.fetched_at, 0) < "
    "coalesce(m.fetched_at, 0)))",
    "INSERT INTO main.images (url, state, error_class, error_detail, http_status, attempts, "
    "opt_out, format, orig_format, orig_width, orig_height, orig_bytes, orig_sha256, width, "
    "height, bytes, sha256, store_file, store_offset, fetch_ms, fetched_at, run_id) "
    "SELECT i.url, i.state, i.error_class, i.error_detail, i.http_status, i.attempts, i.opt_out, "
    "i.format, i.orig_format, i.orig_width, i.orig_height, i.orig_bytes, i.orig_sha256, i.width, "
    "i.height, i.bytes, i.sha256, (SELECT new FROM temp.mrg_store WHERE old = i.store_file), "
    "i.store_offset, i.fetch_ms, i.fetched_at, i.run_id + %1$lld FROM p.images i "
    "WHERE NOT EXISTS (SELECT 1 FROM main.images m WHERE m.url = i.url) ORDER BY i.id",
    "INSERT INTO main.pairs (uid, image_id, text, source_id, origin, extra, added_at, run_id) "
    "SELECT pp.uid, mi.id, pp.text, (SELECT new FROM temp.mrg_src WHERE old = pp.source_id), "
    "pp.origin, pp.extra, pp.added_at, pp.run_id + %1$lld FROM p.pairs pp "
    "JOIN p.images pi ON pi.id = pp.image_id JOIN main.images mi ON mi.url = pi.url "
    "WHERE NOT EXISTS (SELECT 1 FROM main.pairs m WHERE m.uid = pp.uid) ORDER BY pp.id",
    "CREATE TEMP TABLE mrg_pair AS SELECT pp.id AS old, mp.id AS new FROM p.pairs pp "
    "JOIN main.pairs mp ON mp.uid = pp.uid",
    "CREATE UNIQUE INDEX temp.mrg_pair_old ON mrg_pair (old)",
    /* a pair the corpus already had: the part's sighting is one more */
    "INSERT OR IGNORE INTO main.pair_seen (pair_id, source_id, origin) "
    "SELECT mp.id, (SELECT new FROM temp.mrg_src WHERE old = pp.source_id), pp.origin "
    "FROM p.pairs pp JOIN main.pairs mp ON mp.uid = pp.uid "
    "WHERE pp.origin IS NOT NULL AND mp.origin IS NOT pp.origin",
    "INSERT OR IGNORE INTO main.pair_seen (pair_id, source_id, origin) "
    "SELECT m.new, (SELECT new FROM temp.mrg_src WHERE old = s.source_id), s.origin "
    "FROM p.pair_seen s JOIN temp.mrg_pair m ON m.old = s.pair_id",
    "INSERT OR IGNORE INTO main.decisions (pair_id, stage, decision, reason, score, run_id) "
    "SELECT m.new, d.stage, d.decision, d.reason, d.score, d.run_id + %1$lld "
    "FROM p.decisions d JOIN temp.mrg_pair m ON m.old = d.pair_id",
    "INSERT OR IGNORE INTO main.embeddings (pair_id, model, shard, row, clip_score) "
    "SELECT m.new, e.model, x.new, e.row, e.clip_score FROM p.embeddings e "
    "JOIN temp.mrg_pair m ON m.old = e.pair_id "
    "JOIN temp.mrg_emb x ON x.model = e.model AND x.old = e.shard",
    "INSERT OR IGNORE INTO main.pair_lang (pair_id, lang, conf, reliable) "
    "SELECT m.new, l.lang, l.conf, l.reliable FROM p.pair_lang l "
    "JOIN temp.mrg_pair m ON m.old = l.pair_id",
    "INSERT OR IGNORE INTO main.filter_verdicts (pair_id, rules, run_id) "
    "SELECT m.new, v.rules, v.run_id + %1$lld FROM p.filter_verdicts v "
    "JOIN temp.mrg_pair m ON m.old = v.pair_id",
    "INSERT OR IGNORE INTO main.pair_tags (pair_id, kind, label, score, margin, model) "
    "SELECT m.new, t.kind, t.label, t.score, t.margin, t.model FROM p.pair_tags t "
    "JOIN temp.mrg_pair m ON m.old = t.pair_id",
    /* perceptual hashes (a dedup part's work), for the bytes the corpus
     * now holds */
    "INSERT OR IGNORE INTO main.image_phash (image_id, phash, phash_inner, sha256, version) "
    "SELECT mi.id, h.phash, h.phash_inner, h.sha256, h.version FROM p.image_phash h "
    "JOIN p.images pi ON pi.id = h.image_id JOIN main.images mi ON mi.url = pi.url "
    "WHERE h.sha256 IS mi.sha256",
    "INSERT OR IGNORE INTO main.pages (url, depth, state, error_class, http_status, pairs_found, "
    "source_id, fetched_at, redirects) SELECT g.url, g.depth, g.state, g.error_class, "
    "g.http_status, g.pairs_found, (SELECT new FROM temp.mrg_src WHERE old = g.source_id), "
    "g.fetched_at, g.redirects FROM p.pages g ORDER BY g.id",
    "INSERT OR IGNORE INTO main.robots (origin, http_status, body, fetched_at) "
    "SELECT origin, http_status, body, fetched_at FROM p.robots",
    "INSERT OR IGNORE INTO main.shards (output, name, samples, bytes, sha256, done, run_id) "
    "SELECT output, name, samples, bytes, sha256, done, run_id + %1$lld FROM p.shards",
    "DROP TABLE temp.mrg_src",
    "DROP TABLE temp.mrg_pair",
};

int cat_merge_part(cat *c, const cat_merge_in *in, cat_merge_counts *out, wp_err *err)
{
    char sql[2048], *quoted = NULL, *bigsql = NULL;
    int64_t off = 0, part_id = 0, before_pairs = 0, before_images = 0, after = 0;
    int rc = 0, attached = 0;

    memset(out, 0, sizeof *out);
    if (c->in_tx)
        return wp_err_set(err, WP_EINVAL, "merge inside a transaction");
    quoted = sqlite3_mprintf("ATTACH DATABASE %Q AS p", in->catalog_path);
    if (quoted == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = mexec(c, quoted, err, in->catalog_path)) != 0)
        goto out;
    attached = 1;
    if ((rc = fill_maps(c, in, err)) != 0)
        goto out;
    if ((rc = cat_begin(c, err)) != 0)
        goto out;
    rc = cat_merge_find(c, in->fingerprint, NULL, NULL, 0, err);
    if (rc == 1) {
        rc = wp_err_set(err, CAT_EMERGED, "%s: this part is already merged", in->path);
        goto fail;
    }
    if (rc != 0 || (rc = check_decisions(c, in, err)) != 0)
        goto fail;
    if ((rc = mquery_i64(c, "SELECT coalesce(max(id), 0) FROM main.runs", &off, err, "runs")) !=
            0 ||
        (rc = mquery_i64(c, "SELECT count(*) FROM main.pairs", &before_pairs, err, "pairs")) != 0 ||
        (rc = mquery_i64(c, "SELECT count(*) FROM main.images", &before_images, err, "images")) !=
            0)
        goto fail;
    bigsql = sqlite3_mprintf("INSERT INTO merged_parts (fingerprint, path, merged_at) "
                             "VALUES (%Q, %Q, %lld)",
                             in->fingerprint, in->path, (long long)time(NULL));
    if (bigsql == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = mexec(c, bigsql, err, "merged part")) != 0)
        goto fail;
    part_id = sqlite3_last_insert_rowid(c->db);
    for (size_t i = 0; i < sizeof merge_sql / sizeof merge_sql[0]; i++) {
        snprintf(sql, sizeof sql, merge_sql[i], (long long)off, (long long)part_id);
        if ((rc = mexec(c, sql, err, "merge")) != 0)
            goto fail;
    }
    if ((rc = mquery_i64(c, "SELECT count(*) FROM main.pairs", &after, err, "pairs")) != 0)
        goto fail;
    out->pairs_new = after - before_pairs;
    if ((rc = mquery_i64(c, "SELECT count(*) FROM p.pairs", &out->pairs, err, "pairs")) != 0 ||
        (rc = mquery_i64(c, "SELECT count(*) FROM main.images", &after, err, "images")) != 0)
        goto fail;
    out->images_new = after - before_images;
    if ((rc = mquery_i64(c, "SELECT count(*) FROM p.runs", &out->runs, err, "runs")) != 0)
        goto fail;
    sqlite3_free(bigsql);
    {
        wp_buf cb = {0};
        wp_json j;
        wp_json_init(&j, &cb);
        wp_json_obj_begin(&j, NULL);
        wp_json_int(&j, "pairs", out->pairs);
        wp_json_int(&j, "pairs_new", out->pairs_new);
        wp_json_int(&j, "images_new", out->images_new);
        wp_json_int(&j, "runs", out->runs);
        wp_json_obj_end(&j);
        bigsql = wp_json_finish(&j) != 0
                     ? NULL
                     : sqlite3_mprintf("UPDATE merged_parts SET counts = %Q WHERE id = %lld",
                                       cb.data, (long long)part_id);
        wp_buf_free(&cb);
    }
    if (bigsql == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = mexec(c, bigsql, err, "merged part")) != 0)
        goto fail;
    if ((rc = cat_commit(c, err)) != 0)
        goto out;
    goto out;
fail:
    cat_rollback(c);
    mexec(c, "DROP TABLE IF EXISTS temp.mrg_src; DROP TABLE IF EXISTS temp.mrg_pair;", NULL,
          "cleanup");
out:
    if (attached) {
        wp_err ignore = {0};
        mexec(c, "DETACH DATABASE p", &ignore, "detach");
    }
    sqlite3_free(quoted);
    sqlite3_free(bigsql);
    return rc;
}
