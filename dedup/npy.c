/*
 * dedup/npy.c: reading the float16 .npy embedding shards `encode` writes
 * (DIR/embeddings/MODEL/img_emb/img_emb_N.npy, C order, rows x dim).
 *
 * A stand-in: the embeddings module (emb/, mmap of the clip-retrieval
 * layout) replaces it when it is merged; dedup_run.c is its only caller.
 */
#include "dedup/dedup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_HEADER_MAX 65536
#define CHUNK_VALUES   (1 << 16)

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    float f;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13; /* inf, nan */
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Parses "(rows, cols)" after 'shape' in a header dict. */
static int parse_shape(const char *hdr, int64_t *rows, int64_t *cols)
{
    const char *p = strstr(hdr, "'shape'");
    char *end;
    if (p == NULL || (p = strchr(p, '(')) == NULL)
        return -1;
    errno = 0;
    *rows = strtoll(p + 1, &end, 10);
    if (errno || end == p + 1 || *end != ',')
        return -1;
    p = end + 1;
    *cols = strtoll(p, &end, 10);
    if (errno || end == p)
        return -1;
    while (*end == ' ' || *end == ',')
        end++;
    return *end == ')' ? 0 : -1;
}

int dd_npy_read_f16(const char *path, float **out, int64_t *rows, int *cols, wp_err *err)
{
    unsigned char pre[12];
    char *hdr = NULL;
    uint16_t *chunk = NULL;
    float *data = NULL;
    size_t hlen;
    int64_t r = 0, c = 0;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (f == NULL)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: %s", path,
                          strerror(errno));
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 ||
        pre[6] > 3) {
        rc = wp_err_set(err, DD_EFORMAT, "%s: not a .npy file", path);
        goto out;
    }
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) {
            rc = wp_err_set(err, DD_EFORMAT, "%s: header cut short", path);
            goto out;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen == 0 || hlen > NPY_HEADER_MAX || (hdr = malloc(hlen + 1)) == NULL) {
        rc = wp_err_set(err, hlen > NPY_HEADER_MAX ? DD_EFORMAT : WP_ENOMEM,
                        "%s: header of %zu bytes", path, hlen);
        goto out;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        rc = wp_err_set(err, DD_EFORMAT, "%s: header cut short", path);
        goto out;
    }
    hdr[hlen] = '\0';
    if (strstr(hdr, "'descr': '<f2'") == NULL || strstr(hdr, "'fortran_order': False") == NULL ||
        parse_shape(hdr, &r, &c) != 0 || r < 0 || c < 1 || c > 65536 ||
        r > (int64_t)(SIZE_MAX / sizeof(float)) / c) {
        rc = wp_err_set(err, DD_EFORMAT, "%s: not a C-order 2-D float16 array: %.200s", path, hdr);
        goto out;
    }
    data = malloc((size_t)(r * c > 0 ? r * c : 1) * sizeof *data);
    chunk = malloc(CHUNK_VALUES * sizeof *chunk);
    if (data == NULL || chunk == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory for %lld x %lld", path, (long long)r,
                        (long long)c);
        goto out;
    }
    for (size_t at = 0, total = (size_t)(r * c); at < total;) {
        size_t want = total - at < CHUNK_VALUES ? total - at : CHUNK_VALUES;
        if (fread(chunk, sizeof *chunk, want, f) != want) {
            rc = wp_err_set(err, ferror(f) ? WP_EIO : DD_EFORMAT, "%s: data cut short", path);
            goto out;
        }
        for (size_t k = 0; k < want; k++) {
            /* the file is little-endian */
            const unsigned char *b = (const unsigned char *)&chunk[k];
            data[at + k] = f16_to_f32((uint16_t)(b[0] | b[1] << 8));
        }
        at += want;
    }
    *out = data;
    data = NULL;
    *rows = r;
    *cols = (int)c;
out:
    free(data);
    free(chunk);
    free(hdr);
    fclose(f);
    return rc;
}
