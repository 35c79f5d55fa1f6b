/*
 * parquet/pq_enc.c: Parquet's value encodings and page codecs.
 *
 * Decoders for the RLE / bit-packed hybrid (levels, dictionary indices,
 * booleans), DELTA_BINARY_PACKED, PLAIN / DELTA_LENGTH / DELTA byte arrays
 * and BYTE_STREAM_SPLIT, each on a bounded byte range with every count
 * checked before use; and the codecs (snappy, gzip with concatenated
 * members, zstd, brotli, LZ4 raw and Hadoop-framed) that must produce
 * exactly the page's stated uncompressed size.
 */
#include "parquet/pq_int.h"

#include <brotli/decode.h>
#include <lz4.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define FAIL(msg)                                                                                  \
    do {                                                                                           \
        *why = (msg);                                                                              \
        return -1;                                                                                 \
    } while (0)

static int varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *p = *pp;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Unpacks n (<= 8 * groups) values of width bw from p, LSB first. */
static void unpack(const uint8_t *p, size_t nbytes, int bw, uint32_t *out, size_t n)
{
    uint64_t acc = 0;
    int bits = 0;
    size_t i = 0, k = 0;
    uint32_t mask = bw == 32 ? 0xffffffffu : ((1u << bw) - 1);
    if (bw == 0) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    while (k < n) {
        while (bits < bw && i < nbytes) {
            acc |= (uint64_t)p[i++] << bits;
            bits += 8;
        }
        if (bits < bw)
            break;
        out[k++] = (uint32_t)acc & mask;
        acc >>= bw;
        bits -= bw;
    }
    for (; k < n; k++)
        out[k] = 0;
}

int pq_rle_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n, const char **why)
{
    const uint8_t *end = p + len;
    size_t k = 0;
    if (bw < 0 || bw > 32)
        FAIL("bit width above 32");
    int vbytes = (bw + 7) / 8;
    while (k < n) {
        uint64_t h;
        if (varint(&p, end, &h) != 0)
            FAIL("RLE run header past the end of the page");
        if ((h & 1) == 0) {
            uint64_t run = h >> 1;
            if (run == 0)
                FAIL("empty RLE run");
            if ((size_t)(end - p) < (size_t)vbytes)
                FAIL("RLE run value past the end of the page");
            uint32_t v = 0;
            for (int i = 0; i < vbytes; i++)
                v |= (uint32_t)p[i] << (8 * i);
            p += vbytes;
            if (bw < 32 && (v >> bw) != 0)
                FAIL("RLE run value wider than its bit width");
            size_t take = run < n - k ? (size_t)run : n - k;
            for (size_t i = 0; i < take; i++)
                out[k + i] = v;
            k += take;
        } else {
            uint64_t groups = h >> 1;
            if (groups == 0)
                FAIL("empty bit-packed run");
            if (groups > (uint64_t)(len + 1) * 8)
                FAIL("bit-packed run longer than the page");
            uint64_t vals = groups * 8;
            uint64_t bytes = groups * (uint64_t)bw;
            size_t avail = (size_t)(end - p);
            size_t take = vals < n - k ? (size_t)vals : n - k;
            size_t have = bytes < avail ? (size_t)bytes : avail;
            /* Values past the bytes present: a truncated last run. */
            if ((uint64_t)have * 8 < (uint64_t)take * (uint64_t)bw)
                FAIL("bit-packed run past the end of the page");
            unpack(p, have, bw, out + k, take);
            p += have;
            k += take;
        }
    }
    return 0;
}

int pq_delta_decode(const uint8_t *p, size_t len, int bits32, int64_t *out, size_t max,
                    size_t *count, size_t *used, const char **why)
{
    const uint8_t *start = p, *end = p + len;
    uint64_t block, nmini, total, u;
    uint32_t tmp[1024];

    if (varint(&p, end, &block) || varint(&p, end, &nmini) || varint(&p, end, &total) ||
        varint(&p, end, &u))
        FAIL("truncated DELTA_BINARY_PACKED header");
    if (block == 0 || block % 128 != 0 || block > 65536 || nmini == 0 || block % nmini != 0 ||
        (block / nmini) % 32 != 0 || block / nmini > 1024)
        FAIL("bad DELTA_BINARY_PACKED block size");
    if (total > max)
        FAIL("DELTA_BINARY_PACKED holds more values than the page");
    uint64_t per_mini = block / nmini;
    uint64_t cur = (u >> 1) ^ -(u & 1);
    size_t k = 0;
    *count = (size_t)total;
    if (total > 0) {
        out[k++] = bits32 ? (int64_t)(int32_t)(uint32_t)cur : (int64_t)cur;
    }
    while (k < total) {
        uint64_t zmin;
        if (varint(&p, end, &zmin) != 0)
            FAIL("truncated DELTA_BINARY_PACKED block");
        uint64_t min_delta = (zmin >> 1) ^ -(zmin & 1);
        if ((uint64_t)(end - p) < nmini)
            FAIL("truncated DELTA_BINARY_PACKED bit widths");
        const uint8_t *widths = p;
        p += nmini;
        for (uint64_t m = 0; m < nmini && k < total; m++) {
            int bw = widths[m];
            if (bw > (bits32 ? 32 : 64))
                FAIL("DELTA_BINARY_PACKED bit width above the type's");
            uint64_t nbytes = per_mini * (uint64_t)bw / 8;
            if ((uint64_t)(end - p) < nbytes)
                FAIL("DELTA_BINARY_PACKED miniblock past the end of the page");
            size_t take = total - k < per_mini ? (size_t)(total - k) : (size_t)per_mini;
            if (bw <= 32) {
                unpack(p, (size_t)nbytes, bw, tmp, take);
                for (size_t i = 0; i < take; i++) {
                    cur += min_delta + tmp[i];
                    out[k++] = bits32 ? (int64_t)(int32_t)(uint32_t)cur : (int64_t)cur;
                }
            } else {
                /* Wide deltas: read bit by bit through a 128-bit window. */
                uint64_t bitpos = 0;
                for (size_t i = 0; i < take; i++) {
                    uint64_t v = 0;
                    for (int b = 0; b < bw; b++, bitpos++)
                        v |= (uint64_t)((p[bitpos >> 3] >> (bitpos & 7)) & 1) << b;
                    cur += min_delta + v;
                    out[k++] = bits32 ? (int64_t)(int32_t)(uint32_t)cur : (int64_t)cur;
                }
            }
            p += nbytes;
        }
    }
    *used = (size_t)(p - start);
    return 0;
}

int pq_bss_decode(const uint8_t *p, size_t len, int k, uint8_t *out, size_t n, const char **why)
{
    if (k <= 0 || (uint64_t)n * (uint64_t)k > len)
        FAIL("BYTE_STREAM_SPLIT data shorter than its values");
    for (int s = 0; s < k; s++) {
        const uint8_t *src = p + (size_t)s * n;
        for (size_t i = 0; i < n; i++)
            out[i * (size_t)k + (size_t)s] = src[i];
    }
    return 0;
}

int pq_plain_ba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, size_t *used,
                       const char **why)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (len - off < 4)
            FAIL("PLAIN byte array length past the end of the page");
        uint32_t l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        off += 4;
        if (l > len - off)
            FAIL("PLAIN byte array past the end of the page");
        out[i].p = (const char *)p + off;
        out[i].len = l;
        off += l;
    }
    if (used != NULL)
        *used = off;
    return 0;
}

int pq_dlba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, int64_t *tmp,
                   const char **why)
{
    size_t cnt, used;
    if (pq_delta_decode(p, len, 1, tmp, n, &cnt, &used, why) != 0)
        return -1;
    if (cnt != n)
        FAIL("DELTA_LENGTH_BYTE_ARRAY length count differs from the page's");
    size_t off = used;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] < 0 || (uint64_t)tmp[i] > len - off)
            FAIL("DELTA_LENGTH_BYTE_ARRAY value past the end of the page");
        out[i].p = (const char *)p + off;
        out[i].len = (uint32_t)tmp[i];
        off += (size_t)tmp[i];
    }
    return 0;
}

int pq_dba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, int64_t *tmp, wp_arena *a,
                  const char **why)
{
    size_t cnt, used;
    if (pq_delta_decode(p, len, 1, tmp, n, &cnt, &used, why) != 0)
        return -1;
    if (cnt != n)
        FAIL("DELTA_BYTE_ARRAY prefix count differs from the page's");
    /* The suffixes are a DELTA_LENGTH_BYTE_ARRAY; decode into out, then
     * build each value from the previous one's prefix. */
    int64_t *pre = malloc((n ? n : 1) * sizeof *pre);
    if (pre == NULL)
        FAIL("out of memory");
    memcpy(pre, tmp, n * sizeof *pre);
    int rc = pq_dlba_decode(p + used, len - used, out, n, tmp, why);
    const char *prev = "";
    size_t prev_len = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (pre[i] < 0 || (uint64_t)pre[i] > prev_len) {
            *why = "DELTA_BYTE_ARRAY prefix longer than the previous value";
            rc = -1;
            break;
        }
        size_t l = (size_t)pre[i] + out[i].len;
        if (l > UINT32_MAX) {
            *why = "DELTA_BYTE_ARRAY value too long";
            rc = -1;
            break;
        }
        char *s = wp_arena_alloc(a, l ? l : 1);
        if (s == NULL) {
            *why = "out of memory";
            rc = -1;
            break;
        }
        memcpy(s, prev, (size_t)pre[i]);
        if (out[i].len)
            memcpy(s + pre[i], out[i].p, out[i].len);
        out[i].p = s;
        out[i].len = (uint32_t)l;
        prev = s;
        prev_len = l;
    }
    free(pre);
    return rc;
}

/* ---- codecs ------------------------------------------------------------- */

const char *pq_codec_name(int codec)
{
    static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                        "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
    return codec >= 0 && codec < 8 ? names[codec] : "unknown";
}

const char *pq_encoding_name(int enc)
{
    static const char *const names[] = {
        "PLAIN",          "GROUP_VAR_INT",       "PLAIN_DICTIONARY",        "RLE",
        "BIT_PACKED",     "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
        "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
    return enc >= 0 && enc < 10 ? names[enc] : "unknown";
}

uint32_t pq_crc32(const uint8_t *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

static int gunzip(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, const char **why)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        FAIL("zlib init failed");
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int rc = 0;
    for (;;) {
        int zr = inflate(&z, Z_FINISH);
        if (zr == Z_STREAM_END) {
            /* Concatenated members: go on while input is left. */
            if (z.avail_in == 0)
                break;
            if (inflateReset(&z) != Z_OK) {
                *why = "zlib reset failed";
                rc = -1;
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_out == 0 && z.avail_in > 0) {
            *why = "gzip data inflates past the page's stated size";
        } else {
            *why = "corrupt gzip data";
        }
        rc = -1;
        break;
    }
    if (rc == 0 && (size_t)(z.next_out - dst) != cap) {
        *why = "gzip data inflates to a size other than the page's";
        rc = -1;
    }
    inflateEnd(&z);
    return rc;
}

static int rd_be32(const uint8_t *p)
{
    return (int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* Hadoop's LZ4 framing: blocks of [BE32 raw size][BE32 compressed size]
 * [LZ4 block]. Returns 0 when the whole input parsed and produced cap. */
static int lz4_hadoop(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t in = 0, out = 0;
    while (in < n) {
        if (n - in < 8)
            return -1;
        uint32_t raw = (uint32_t)rd_be32(src + in), comp = (uint32_t)rd_be32(src + in + 4);
        in += 8;
        if (comp > n - in || raw > cap - out || comp > INT32_MAX)
            return -1;
        int got =
            LZ4_decompress_safe((const char *)src + in, (char *)dst + out, (int)comp, (int)raw);
        if (got < 0 || (uint32_t)got != raw)
            return -1;
        in += comp;
        out += raw;
    }
    return out == cap ? 0 : -1;
}

int pq_decompress(int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                  const char **why)
{
    switch (codec) {
    case PQ_UNCOMPRESSED:
        if (n != cap) {
            *why = "uncompressed page whose sizes differ";
            return PQ_ECODEC;
        }
        if (n)
            memcpy(dst, src, n);
        return 0;
    case PQ_SNAPPY: {
        size_t want;
        if (snappy_uncompressed_length((const char *)src, n, &want) != SNAPPY_OK || want != cap) {
            *why = "snappy data of the wrong size";
            return PQ_ECODEC;
        }
        size_t got = cap;
        if (cap == 0)
            return 0;
        if (snappy_uncompress((const char *)src, n, (char *)dst, &got) != SNAPPY_OK || got != cap) {
            *why = "corrupt snappy data";
            return PQ_ECODEC;
        }
        return 0;
    }
    case PQ_GZIP:
        if (n > UINT32_MAX || cap > UINT32_MAX) {
            *why = "gzip page too large";
            return PQ_ECODEC;
        }
        return gunzip(src, n, dst, cap, why) == 0 ? 0 : PQ_ECODEC;
    case PQ_ZSTD: {
        size_t got = ZSTD_decompress(dst, cap, src, n);
        if (ZSTD_isError(got) || got != cap) {
            *why = ZSTD_isError(got) ? "corrupt zstd data" : "zstd data of the wrong size";
            return PQ_ECODEC;
        }
        return 0;
    }
    case PQ_BROTLI: {
        size_t got = cap;
        if (BrotliDecoderDecompress(n, src, &got, dst) != BROTLI_DECODER_RESULT_SUCCESS ||
            got != cap) {
            *why = "corrupt brotli data, or of the wrong size";
            return PQ_ECODEC;
        }
        return 0;
    }
    case PQ_LZ4:
        /* Hadoop framing first; some writers put a bare LZ4 block here. */
        if (lz4_hadoop(src, n, dst, cap) == 0)
            return 0;
        /* fall through */
    case PQ_LZ4_RAW: {
        if (n > INT32_MAX || cap > INT32_MAX) {
            *why = "LZ4 page too large";
            return PQ_ECODEC;
        }
        int got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)cap);
        if (got < 0 || (size_t)got != cap) {
            *why = "corrupt LZ4 data, or of the wrong size";
            return PQ_ECODEC;
        }
        return 0;
    }
    case 3:
        *why = "codec LZO is not supported";
        return PQ_EUNSUPPORTED;
    default:
        *why = "unknown codec";
        return PQ_EUNSUPPORTED;
    }
}

int pq_compress(int codec, int level, const uint8_t *src, size_t n, wp_buf *out)
{
    out->len = 0;
    switch (codec) {
    case PQ_UNCOMPRESSED:
        return wp_buf_append(out, src, n);
    case PQ_SNAPPY: {
        size_t cap = snappy_max_compressed_length(n);
        if (wp_buf_reserve(out, cap) != 0)
            return WP_ENOMEM;
        size_t got = cap;
        if (snappy_compress((const char *)src, n, out->data, &got) != SNAPPY_OK)
            return PQ_ECODEC;
        out->len = got;
        return 0;
    }
    case PQ_ZSTD: {
        size_t cap = ZSTD_compressBound(n);
        if (wp_buf_reserve(out, cap) != 0)
            return WP_ENOMEM;
        size_t got = ZSTD_compress(out->data, cap, src, n, level ? level : 3);
        if (ZSTD_isError(got))
            return PQ_ECODEC;
        out->len = got;
        return 0;
    }
    case PQ_GZIP: {
        if (n > UINT32_MAX / 2)
            return PQ_ECODEC;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, level ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return PQ_ECODEC;
        size_t cap = deflateBound(&z, (uLong)n) + 32;
        if (wp_buf_reserve(out, cap) != 0) {
            deflateEnd(&z);
            return WP_ENOMEM;
        }
        z.next_in = (Bytef *)src;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)out->data;
        z.avail_out = (uInt)cap;
        int zr = deflate(&z, Z_FINISH);
        out->len = z.total_out;
        deflateEnd(&z);
        return zr == Z_STREAM_END ? 0 : PQ_ECODEC;
    }
    default:
        return WP_EINVAL;
    }
}
