/*
 * clip/safetensors.c: mmap'ed safetensors reader with a fully validated
 * header (see safetensors.h), and the half/bfloat16 conversions.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * mapping tensor names to {dtype, shape, data_offsets: [begin, end]}
 * (offsets relative to the byte after the header), then the data.
 */
#include "clip/safetensors.h"
#include "clip/clip.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct clip_st {
    char path[WP_PATH_MAX];
    const uint8_t *map;
    size_t map_len;
    const uint8_t *data; /* start of the data section */
    uint64_t data_len;
    clip_st_tensor *t;
    uint8_t *used; /* per tensor, set by clip_st_mark_used */
    int n;
    int mapped; /* map is ours to munmap (clip_st_open), not the caller's */
};

static const struct {
    const char *name;
    int dtype;
    int size;
} dtypes[] = {
    {"F32", CLIP_DT_F32, 4},   {"F16", CLIP_DT_F16, 2}, {"BF16", CLIP_DT_BF16, 2},
    {"F64", CLIP_DT_F64, 8},   {"I64", CLIP_DT_I64, 8}, {"I32", CLIP_DT_I32, 4},
    {"I16", CLIP_DT_I16, 2},   {"I8", CLIP_DT_I8, 1},   {"U8", CLIP_DT_U8, 1},
    {"BOOL", CLIP_DT_BOOL, 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *clip_st_dtype_name(int dtype)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].name;
    return "?";
}

static int dtype_size(int dtype)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].size;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const clip_st_tensor *x = *(const clip_st_tensor *const *)a;
    const clip_st_tensor *y = *(const clip_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Fills t from one header entry; CLIP_EFORMAT naming the tensor on error. */
static int parse_entry(const char *path, const char *name, json_t *v, uint64_t data_len,
                       clip_st_tensor *t, wp_err *err)
{
    json_t *jd, *js, *jo;
    const char *ds;
    size_t i;

    if (strlen(name) >= CLIP_ST_NAME_MAX)
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor name '%.64s...' longer than %d bytes",
                          path, name, CLIP_ST_NAME_MAX - 1);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!json_is_object(v))
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': header entry is not an object", path,
                          name);
    jd = json_object_get(v, "dtype");
    js = json_object_get(v, "shape");
    jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': missing or non-string dtype", path,
                          name);
    ds = json_string_value(jd);
    t->dtype = -1;
    for (i = 0; i < N_DTYPES; i++)
        if (strcmp(ds, dtypes[i].name) == 0)
            t->dtype = dtypes[i].dtype;
    if (t->dtype < 0)
        return wp_err_set(err, CLIP_EFORMAT,
                          "%s: tensor '%s': unsupported dtype '%.32s' (F32, F16, BF16 expected)",
                          path, name, ds);
    if (!json_is_array(js))
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': missing or non-array shape", path,
                          name);
    if (json_array_size(js) > CLIP_ST_NDIM_MAX)
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d)", path,
                          name, json_array_size(js), CLIP_ST_NDIM_MAX);
    t->ndim = (int)json_array_size(js);
    uint64_t numel = 1;
    for (i = 0; i < json_array_size(js); i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return wp_err_set(err, CLIP_EFORMAT,
                              "%s: tensor '%s': shape entry %zu is not a non-negative integer",
                              path, name, i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        if (dim != 0 && numel > (UINT64_MAX >> 4) / dim)
            return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': shape too large", path, name);
        numel *= dim;
        t->shape[i] = (int64_t)dim;
    }
    t->numel = (int64_t)numel;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return wp_err_set(err, CLIP_EFORMAT,
                          "%s: tensor '%s': data_offsets must be an array of two integers", path,
                          name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b)
        return wp_err_set(err, CLIP_EFORMAT, "%s: tensor '%s': bad data_offsets [%lld, %lld]", path,
                          name, (long long)b, (long long)e);
    if ((uint64_t)e > data_len)
        return wp_err_set(err, CLIP_EFORMAT,
                          "%s: tensor '%s': data_offsets [%lld, %lld] out of bounds (data "
                          "section is %llu bytes; file truncated?)",
                          path, name, (long long)b, (long long)e, (unsigned long long)data_len);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    if (numel * (uint64_t)dtype_size(t->dtype) != t->end - t->begin)
        return wp_err_set(err, CLIP_EFORMAT,
                          "%s: tensor '%s': %s shape with %llu elements needs %llu bytes but "
                          "data_offsets span %llu",
                          path, name, ds, (unsigned long long)numel,
                          (unsigned long long)(numel * (uint64_t)dtype_size(t->dtype)),
                          (unsigned long long)(t->end - t->begin));
    return 0;
}

/* Validates the header of st->map[0..map_len) and fills st's tensor table.
 * Returns 0, CLIP_EFORMAT or WP_ENOMEM with err naming st->path. */
static int st_parse(clip_st *st, wp_err *err)
{
    const char *path = st->path;
    clip_st_tensor **order = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    uint64_t hlen = 0;
    int rc = 0;

    if (st->map_len < 8) {
        rc = wp_err_set(err, CLIP_EFORMAT,
                        "%s: %zu bytes, too short for a safetensors header length", path,
                        st->map_len);
        goto out;
    }
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | st->map[i];
    if (hlen < 2 || hlen > CLIP_ST_HEADER_MAX || hlen > st->map_len - 8) {
        rc = wp_err_set(err, CLIP_EFORMAT,
                        "%s: byte 0: header length %llu is not sane (file is %zu bytes, "
                        "limit %llu)",
                        path, (unsigned long long)hlen, st->map_len,
                        (unsigned long long)CLIP_ST_HEADER_MAX);
        goto out;
    }
    st->data = st->map + 8 + hlen;
    st->data_len = st->map_len - 8 - hlen;
    root = json_loadb((const char *)st->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = wp_err_set(err, CLIP_EFORMAT, "%s: header JSON, byte %d: %s", path, 8 + jerr.position,
                        jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = wp_err_set(err, CLIP_EFORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    if (json_object_size(root) > CLIP_ST_TENSORS_MAX + 1) { /* + __metadata__ */
        rc = wp_err_set(err, CLIP_EFORMAT, "%s: header lists %zu tensors (at most %d accepted)",
                        path, json_object_size(root), CLIP_ST_TENSORS_MAX);
        goto out;
    }
    st->t = calloc(json_object_size(root) + 1, sizeof *st->t);
    st->used = calloc(json_object_size(root) + 1, 1);
    order = calloc(json_object_size(root) + 1, sizeof *order);
    if (st->t == NULL || st->used == NULL || order == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        rc = parse_entry(path, key, v, st->data_len, &st->t[st->n], err);
        if (rc != 0)
            goto out;
        order[st->n] = &st->t[st->n];
        st->n++;
    }
    /* Overlap check in offset order; empty tensors occupy nothing. */
    qsort(order, (size_t)st->n, sizeof *order, cmp_begin);
    const clip_st_tensor *prev = NULL;
    for (int i = 0; i < st->n; i++) {
        if (order[i]->begin == order[i]->end)
            continue;
        if (prev != NULL && order[i]->begin < prev->end) {
            rc = wp_err_set(err, CLIP_EFORMAT,
                            "%s: tensor '%s': bytes [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                            path, order[i]->name, (unsigned long long)order[i]->begin,
                            (unsigned long long)order[i]->end, prev->name,
                            (unsigned long long)prev->begin, (unsigned long long)prev->end);
            goto out;
        }
        prev = order[i];
    }
out:
    json_decref(root);
    free(order);
    return rc;
}

int clip_st_open(const char *path, clip_st **out, wp_err *err)
{
    clip_st *st = NULL;
    struct stat sb;
    int fd = -1, rc = 0;

    *out = NULL;
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    snprintf(st->path, sizeof st->path, "%s", path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (sb.st_size < 8) {
        rc = wp_err_set(err, CLIP_EFORMAT,
                        "%s: %lld bytes, too short for a safetensors header length", path,
                        (long long)sb.st_size);
        goto out;
    }
    st->map_len = (size_t)sb.st_size;
    st->map = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        rc = wp_err_set(err, WP_EIO, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    st->mapped = 1;
    if ((rc = st_parse(st, err)) != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    if (fd >= 0)
        close(fd);
    clip_st_close(st);
    return rc;
}

int clip_st_open_mem(const void *data, size_t n, const char *name, clip_st **out, wp_err *err)
{
    clip_st *st = calloc(1, sizeof *st);
    int rc;

    *out = NULL;
    if (st == NULL)
        return wp_err_set(err, WP_ENOMEM, "%s: out of memory", name);
    snprintf(st->path, sizeof st->path, "%s", name);
    st->map = data;
    st->map_len = n;
    if ((rc = st_parse(st, err)) != 0) {
        clip_st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void clip_st_close(clip_st *st)
{
    if (st == NULL)
        return;
    if (st->mapped)
        munmap((void *)st->map, st->map_len);
    free(st->t);
    free(st->used);
    free(st);
}

const char *clip_st_path(const clip_st *st)
{
    return st->path;
}

int clip_st_count(const clip_st *st)
{
    return st->n;
}

const clip_st_tensor *clip_st_at(const clip_st *st, int i)
{
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

void clip_st_mark_used(clip_st *st, const clip_st_tensor *t)
{
    st->used[t - st->t] = 1;
}

int clip_st_used(const clip_st *st, int i)
{
    return i >= 0 && i < st->n && st->used[i];
}

const clip_st_tensor *clip_st_find(const clip_st *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0)
            return &st->t[i];
    return NULL;
}

int clip_st_read_f32(const clip_st *st, const clip_st_tensor *t, float *out, wp_err *err)
{
    const uint8_t *p = st->data + t->begin;
    int64_t n = t->numel;

    switch (t->dtype) {
    case CLIP_DT_F32:
        memcpy(out, p, (size_t)n * 4);
        return 0;
    case CLIP_DT_F16:
        wp_f16_convert(p, out, (size_t)n);
        return 0;
    case CLIP_DT_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = wp_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    default:
        return wp_err_set(err, CLIP_EFORMAT,
                          "%s: tensor '%s': dtype %s is not supported for weights (F32, F16, "
                          "BF16 expected)",
                          st->path, t->name, clip_st_dtype_name(t->dtype));
    }
}
