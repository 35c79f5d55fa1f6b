/*
 * tests/fuzz/fuzz_parquet.h: what the Parquet fuzz targets do with one
 * input, shared by the libFuzzer programs (tests/fuzz/fuzz_parquet_*.c,
 * `make fuzz`) and by tests/unit/test_parquet_fuzz.c, which replays the
 * seeds (tests/fuzz/corpus/parquet_*, and the real files of
 * ../shared/testdata/parquet) and reproducers (tests/fuzz/regress/parquet_*)
 * in the normal and the ASan + UBSan build. Kept apart from fuzz_targets.h
 * so that it includes only parquet/.
 *
 * Each fuzz_pq_*_one(data, size) returns 0, or the source line of the
 * first violated check. Error returns of the decoders on bad input are
 * expected, not bugs; what is checked is their documented contract.
 */
#ifndef FUZZ_PARQUET_H
#define FUZZ_PARQUET_H

#include "common/wp.h"
#include "parquet/parquet.h"
#include "parquet/pq_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_PQ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return __LINE__;                                                                       \
    } while (0)

static inline void fuzz_pq_abort_on(int line)
{
    if (line != 0) {
        fprintf(stderr, "fuzz: check at tests/fuzz/fuzz_parquet.h:%d failed\n", line);
        abort();
    }
}

/* The footer: FileMetaData decoding, then the same bytes as a page header.
 * Input: the footer bytes alone (what sits between the data and the
 * length + PAR1 trailer), so the fuzzer works on the Thrift directly. */
static inline int fuzz_pq_footer_one(const uint8_t *data, size_t size)
{
    wp_arena *a = wp_arena_new(4096);
    pq_meta m;
    wp_err err = {0};
    int line = 0;
    if (a == NULL)
        return 0;
    int rc = pq_meta_decode(data, size, a, &m, &err);
    if (rc != 0) {
        if ((rc != PQ_EFORMAT && rc != WP_ENOMEM) || err.msg[0] == '\0')
            line = __LINE__;
    } else {
        /* A decoded footer holds what it promises. */
        if (m.nschema < 1 || m.schema == NULL || m.num_rows < 0 || m.nrg < 0 ||
            (m.nrg > 0 && m.rgs == NULL))
            line = __LINE__;
        for (int i = 0; i < m.nschema && line == 0; i++)
            if (m.schema[i].name == NULL)
                line = __LINE__;
        for (int g = 0; g < m.nrg && line == 0; g++)
            if (m.rgs[g].ncols < 0 || (m.rgs[g].ncols > 0 && m.rgs[g].cols == NULL) ||
                (size_t)m.rgs[g].ncols > size)
                line = __LINE__;
    }
    pq_page_header h;
    const char *why = NULL;
    int hl = pq_page_header_decode(data, size, &h, &why);
    if (line == 0 && hl < 0 && (hl != PQ_EFORMAT || why == NULL))
        line = __LINE__;
    if (line == 0 && hl >= 0 &&
        ((size_t)hl > size || h.compressed_size < 0 || h.uncompressed_size < 0 || h.num_values < 0))
        line = __LINE__;
    wp_arena_free(a);
    return line;
}

/* The page decoders. Byte 0 picks the decoder, byte 1 a parameter (bit
 * width, value width, codec), the rest is the page body. */
static inline int fuzz_pq_page_one(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *p = data + 2;
    size_t len = size - 2;
    size_t n = (size_t)data[1] * 8 + 1; /* values asked for */
    const char *why = NULL;
    int line = 0, rc;
    uint32_t *u32 = calloc(2049, sizeof *u32);
    int64_t *i64 = calloc(2049, sizeof *i64);
    int64_t *tmp = calloc(2049, sizeof *tmp);
    pq_str *sv = calloc(2049, sizeof *sv);
    uint8_t *bytes = malloc(2049 * 16);
    wp_arena *a = wp_arena_new(4096);
    if (!u32 || !i64 || !tmp || !sv || !bytes || !a)
        goto out;
    switch (data[0] % 8) {
    case 0: /* RLE / bit-packed hybrid */
        rc = pq_rle_decode(p, len, data[1] % 33, u32, n, &why);
        if (rc == 0 && data[1] % 33 < 32)
            for (size_t i = 0; i < n; i++)
                if (u32[i] >> (data[1] % 33) != 0)
                    line = __LINE__; /* a value wider than its bit width */
        if (rc != 0 && why == NULL)
            line = __LINE__;
        break;
    case 1: { /* DELTA_BINARY_PACKED, 32 or 64 bit */
        size_t cnt = 0, used = 0;
        rc = pq_delta_decode(p, len, data[1] & 1, i64, 2049, &cnt, &used, &why);
        if (rc == 0 && (cnt > 2049 || used > len))
            line = __LINE__;
        if (rc == 0 && (data[1] & 1))
            for (size_t i = 0; i < cnt; i++)
                if (i64[i] != (int32_t)i64[i])
                    line = __LINE__;
        break;
    }
    case 2: /* PLAIN byte arrays */
    case 3: /* DELTA_LENGTH_BYTE_ARRAY */
    case 4: /* DELTA_BYTE_ARRAY */
        if (data[0] % 8 == 2)
            rc = pq_plain_ba_decode(p, len, sv, n, NULL, &why);
        else if (data[0] % 8 == 3)
            rc = pq_dlba_decode(p, len, sv, n, tmp, &why);
        else
            rc = pq_dba_decode(p, len, sv, n, tmp, a, &why);
        if (rc == 0 && data[0] % 8 != 4)
            for (size_t i = 0; i < n; i++)
                if ((const uint8_t *)sv[i].p < p || (const uint8_t *)sv[i].p + sv[i].len > p + len)
                    line = __LINE__; /* a value outside the page */
        if (rc == 0 && data[0] % 8 == 4)
            for (size_t i = 0; i < n; i++)
                if (sv[i].len > 0 && sv[i].p == NULL)
                    line = __LINE__;
        break;
    case 5: { /* BYTE_STREAM_SPLIT */
        int k = data[1] % 16 + 1;
        size_t cnt = len / (size_t)k;
        rc = pq_bss_decode(p, len, k, bytes, cnt < 2049 ? cnt : 2049, &why);
        if (rc != 0)
            line = __LINE__; /* cnt values of width k always fit */
        break;
    }
    default: { /* a codec, to a size taken from byte 1 */
        static const int codecs[] = {PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_GZIP,    PQ_BROTLI,
                                     PQ_LZ4,          PQ_ZSTD,   PQ_LZ4_RAW, 3};
        size_t cap = (size_t)data[1] * 64;
        rc = pq_decompress(codecs[data[1] % 8], p, len, bytes, cap, &why);
        if (rc != 0 && (why == NULL || (rc != PQ_ECODEC && rc != PQ_EUNSUPPORTED)))
            line = __LINE__;
        break;
    }
    }
out:
    free(u32);
    free(i64);
    free(tmp);
    free(sv);
    free(bytes);
    wp_arena_free(a);
    return line;
}

/* A whole file through the public reader: open, every row group, every
 * row. Errors are negative with one line naming the file; rows come out as
 * many as the row group says, with values of their column's type. */
static inline int fuzz_pq_file_one(const uint8_t *data, size_t size)
{
    pq_read_opts o = {.max_page = 4 << 20, .max_rg_rows = 65536};
    pq_reader *r = NULL;
    wp_err err = {0};
    int line = 0;
    int rc = pq_open_mem(data, size, "fuzz.parquet", &o, &r, &err);
    if (rc != 0) {
        FUZZ_PQ_CHECK(rc < 0 && r == NULL && strstr(err.msg, "fuzz.parquet") != NULL &&
                      strchr(err.msg, '\n') == NULL);
        return 0;
    }
    int nc = pq_num_columns(r);
    pq_value *v = calloc((size_t)(nc ? nc : 1), sizeof *v);
    if (v == NULL) {
        pq_close(r);
        return 0;
    }
    for (int g = 0; g < pq_num_row_groups(r) && line == 0; g++) {
        int64_t want = pq_row_group_rows(r, g);
        memset(&err, 0, sizeof err);
        rc = pq_read_row_group(r, g, &err);
        if (rc < 0) {
            if (strstr(err.msg, "fuzz.parquet") == NULL || strchr(err.msg, '\n') != NULL)
                line = __LINE__;
            continue;
        }
        int64_t rows = 0;
        while (line == 0 && pq_next_row(r, v)) {
            rows++;
            for (int k = 0; k < nc; k++)
                if (v[k].type != PQ_NULL && v[k].type != pq_column_type(r, k))
                    line = __LINE__;
                else if (v[k].type == PQ_NULL && !pq_column_nullable(r, k))
                    line = __LINE__;
        }
        if (line == 0 && (rows != want || want > 65536))
            line = __LINE__;
    }
    free(v);
    pq_close(r);
    return line;
}

#endif /* FUZZ_PARQUET_H */
