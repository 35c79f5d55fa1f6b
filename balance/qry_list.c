/*
 * balance/qry_list.c: the query list: an ordered set of distinct entries
 * (an open-addressing hash set over the entry bytes keeps them distinct),
 * read from a text file (one entry a line) or MetaCLIP's metadata.json (a
 * JSON array of strings, read with jansson), written back as lines.
 */
#include "balance.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct qent {
    const char *s;
    uint32_t len;
} qent;

struct qry_list {
    wp_arena *arena;
    qent *v;
    size_t n, cap;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t nslots;
};

qry_list *qry_list_new(void)
{
    qry_list *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->arena = wp_arena_new(1 << 20);
    if (l->arena == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

void qry_list_free(qry_list *l)
{
    if (l == NULL)
        return;
    wp_arena_free(l->arena);
    free(l->v);
    free(l->slots);
    free(l);
}

size_t qry_list_count(const qry_list *l)
{
    return l->n;
}

const char *qry_list_entry(const qry_list *l, size_t i, size_t *len)
{
    if (len)
        *len = l->v[i].len;
    return l->v[i].s;
}

static int rehash(qry_list *l)
{
    size_t ns = l->nslots ? l->nslots * 2 : 1024;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (sl == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        size_t h = (size_t)wp_fnv1a64(l->v[i].s, l->v[i].len) & (ns - 1);
        while (sl[h] != 0)
            h = (h + 1) & (ns - 1);
        sl[h] = (uint32_t)(i + 1);
    }
    free(l->slots);
    l->slots = sl;
    l->nslots = ns;
    return 0;
}

int qry_list_add(qry_list *l, const char *s, size_t n, qry_load_stats *st)
{
    size_t h;
    char *copy;
    if (st)
        st->read++;
    if (n == 0) {
        if (st)
            st->empty++;
        return 0;
    }
    if (n > QRY_ENTRY_MAX) {
        if (st)
            st->too_long++;
        return 0;
    }
    if (!wp_utf8_valid(s, n)) {
        if (st)
            st->bad_utf8++;
        return 0;
    }
    if (l->n >= 0x7fffffff)
        return QRY_ETOOMANY;
    if ((l->n + 1) * 2 > l->nslots && rehash(l) != 0)
        return WP_ENOMEM;
    h = (size_t)wp_fnv1a64(s, n) & (l->nslots - 1);
    while (l->slots[h] != 0) {
        const qent *e = &l->v[l->slots[h] - 1];
        if (e->len == n && memcmp(e->s, s, n) == 0) {
            if (st)
                st->duplicates++;
            return 0;
        }
        h = (h + 1) & (l->nslots - 1);
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        qent *nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL)
            return WP_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    copy = wp_arena_strndup(l->arena, s, n);
    if (copy == NULL)
        return WP_ENOMEM;
    l->v[l->n].s = copy;
    l->v[l->n].len = (uint32_t)n;
    l->n++;
    l->slots[h] = (uint32_t)l->n;
    if (st)
        st->kept++;
    return 0;
}

static int load_json(const char *path, const wp_buf *b, qry_list *l, qry_load_stats *st,
                     wp_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(b->data, b->len, JSON_ALLOW_NUL, &je);
    size_t i;
    json_t *v;
    int rc = 0;
    if (root == NULL)
        return wp_err_set(err, WP_EFORMAT, "%s:%d: not a JSON array of strings: %s", path, je.line,
                          je.text);
    if (!json_is_array(root)) {
        json_decref(root);
        return wp_err_set(err, WP_EFORMAT, "%s: not a JSON array of strings", path);
    }
    json_array_foreach(root, i, v)
    {
        if (!json_is_string(v)) {
            rc = wp_err_set(err, WP_EFORMAT, "%s: element %zu is not a string", path, i);
            break;
        }
        if (qry_list_add(l, json_string_value(v), json_string_length(v), st) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            break;
        }
    }
    json_decref(root);
    return rc;
}

int qry_list_parse(const char *name, const char *data, size_t len, qry_list **out,
                   qry_load_stats *st, wp_err *err)
{
    const wp_buf b = {(char *)data, len, len};
    qry_list *l = NULL;
    size_t i = 0;
    int rc = 0;

    *out = NULL;
    l = qry_list_new();
    if (l == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i < len && data[i] == '[') {
        rc = load_json(name, &b, l, st, err);
    } else {
        const char *p = data, *end = data + len;
        /* skip a UTF-8 byte order mark */
        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
            p += 3;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            size_t n = (size_t)(e - p);
            if (n > 0 && p[n - 1] == '\r')
                n--;
            if (qry_list_add(l, p, n, st) != 0) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                break;
            }
            p = nl ? nl + 1 : end;
        }
    }
    if (rc == 0) {
        *out = l;
        l = NULL;
    }
    qry_list_free(l);
    return rc;
}

int qry_list_load(const char *path, qry_list **out, qry_load_stats *st, wp_err *err)
{
    wp_buf b = {0};
    int rc;

    *out = NULL;
    if ((rc = wp_read_file(path, (size_t)1 << 34, &b, err)) != 0)
        return rc;
    rc = qry_list_parse(path, b.data ? b.data : "", b.len, out, st, err);
    wp_buf_free(&b);
    return rc;
}

int qry_list_sha256(const qry_list *l, char out[WP_SHA256_HEX + 1])
{
    uint8_t d[WP_SHA256_LEN];
    wp_sha256 *h = wp_sha256_new();
    int rc = 0;
    if (h == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        rc = wp_sha256_update(h, l->v[i].s, l->v[i].len);
        if (rc == 0)
            rc = wp_sha256_update(h, "\n", 1);
    }
    if (rc == 0)
        rc = wp_sha256_final(h, d);
    wp_sha256_free(h);
    if (rc == 0)
        wp_hex(d, sizeof d, out);
    return rc;
}

int qry_list_write(const qry_list *l, const char *path, wp_err *err)
{
    wp_buf b = {0};
    int json = 0, rc;
    for (size_t i = 0; i < l->n && !json; i++)
        json = memchr(l->v[i].s, '\n', l->v[i].len) != NULL ||
               memchr(l->v[i].s, '\r', l->v[i].len) != NULL || (i == 0 && l->v[i].s[0] == '[');
    if (json) {
        /* ASCII escapes, as MetaCLIP's metadata.json (Python's json.dump) */
        wp_json j;
        wp_json_init(&j, &b);
        wp_json_set_ascii(&j, 1);
        wp_json_arr_begin(&j, NULL);
        for (size_t i = 0; i < l->n; i++)
            wp_json_strn(&j, NULL, l->v[i].s, l->v[i].len);
        wp_json_arr_end(&j);
        rc = wp_json_finish(&j) != 0 ? wp_err_set(err, WP_ENOMEM, "out of memory")
                                     : wp_write_file_atomic(path, b.data, b.len, err);
        wp_buf_free(&b);
        return rc;
    }
    for (size_t i = 0; i < l->n; i++)
        if (wp_buf_append(&b, l->v[i].s, l->v[i].len) != 0 || wp_buf_putc(&b, '\n') != 0) {
            wp_buf_free(&b);
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        }
    rc = wp_write_file_atomic(path, b.data ? b.data : "", b.len, err);
    wp_buf_free(&b);
    return rc;
}

static const char *store_get(void *ud, size_t i, size_t *len)
{
    return qry_list_entry(ud, i, len);
}

int qry_store(cat *c, const qry_list *l, const char *source, const char *action, int64_t *version,
              wp_err *err)
{
    char sha[WP_SHA256_HEX + 1];
    cat_run *run = NULL;
    wp_buf params = {0}, counts = {0};
    wp_json j;
    int rc;

    *version = 0;
    wp_json_init(&j, &params);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "action", action);
    wp_json_str(&j, "source", source);
    wp_json_obj_end(&j);
    if (wp_json_finish(&j) != 0 || qry_list_sha256(l, sha) != 0) {
        wp_buf_free(&params);
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    }
    if ((rc = cat_run_begin(c, "queries", params.data, &run, err)) != 0) {
        wp_buf_free(&params);
        return rc;
    }
    rc = cat_qry_put(c, source, sha, params.data, qry_list_count(l), store_get, (void *)l,
                     cat_run_id(run), version, err);
    wp_json_init(&j, &counts);
    wp_json_obj_begin(&j, NULL);
    wp_json_int(&j, "version", *version);
    wp_json_uint(&j, "entries", qry_list_count(l));
    wp_json_str(&j, "sha256", sha);
    wp_json_obj_end(&j);
    rc = cat_run_end(run, rc, wp_json_finish(&j) == 0 ? counts.data : NULL, err);
    wp_buf_free(&counts);
    wp_buf_free(&params);
    return rc;
}
