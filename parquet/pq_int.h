/*
 * parquet/pq_int.h: the parts of the Parquet reader and writer shared by
 * its files, the unit tests and the fuzz targets (not for other modules):
 * the Thrift compact protocol, the decoded footer, the value decoders and
 * the codecs.
 *
 * Every decoder here works on a bounded byte range and checks each length,
 * count and offset against it before use; none prints or allocates beyond
 * what its caller hands it, except where it says so.
 */
#ifndef PQ_INT_H
#define PQ_INT_H

#include "parquet/parquet.h"

#include <stddef.h>
#include <stdint.h>

/* ---- Thrift compact protocol -------------------------------------------- */

#define PQ_THRIFT_DEPTH 32 /* nesting of structs, lists and maps accepted */

enum pq_ttype {
    TT_STOP = 0,
    TT_TRUE = 1,
    TT_FALSE = 2,
    TT_BYTE = 3,
    TT_I16 = 4,
    TT_I32 = 5,
    TT_I64 = 6,
    TT_DOUBLE = 7,
    TT_BINARY = 8,
    TT_LIST = 9,
    TT_SET = 10,
    TT_MAP = 11,
    TT_STRUCT = 12,
};

/* A read cursor. bad is set by the first error and sticks: readers then
 * return zeros, so decoding code checks it once per structure. */
typedef struct pq_tin {
    const uint8_t *p, *end;
    int depth;
    int bad;
    const char *why; /* the first error, static text */
} pq_tin;

uint64_t pq_t_varint(pq_tin *t);
int64_t pq_t_zigzag(pq_tin *t);
/* Reads a field header: returns the type (TT_STOP at the end of a struct)
 * and sets *id from the delta against *last (updated). Boolean fields carry
 * their value in the type (TT_TRUE / TT_FALSE). */
int pq_t_field(pq_tin *t, int *last, int *id);
/* A list or set header: element type and count (count checked against the
 * bytes left: every element takes at least one byte). */
int pq_t_list(pq_tin *t, int *etype);
/* A binary / string: pointer into the input and length (checked). */
const uint8_t *pq_t_binary(pq_tin *t, size_t *len);
/* Skips a value of the given type (depth-capped). */
void pq_t_skip(pq_tin *t, int type);
void pq_t_fail(pq_tin *t, const char *why);

/* Writing: appends to a wp_buf; errors (out of memory) stick in *bad. */
typedef struct pq_tout {
    wp_buf *b;
    int last[PQ_THRIFT_DEPTH];
    int depth;
    int bad;
} pq_tout;

void pq_to_varint(pq_tout *o, uint64_t v);
void pq_to_field(pq_tout *o, int id, int type);
void pq_to_i32(pq_tout *o, int id, int32_t v);
void pq_to_i64(pq_tout *o, int id, int64_t v);
void pq_to_bool(pq_tout *o, int id, int v);
void pq_to_binary(pq_tout *o, int id, const void *p, size_t n);
void pq_to_list(pq_tout *o, int id, int etype, size_t n);
void pq_to_struct_begin(pq_tout *o, int id); /* id 0: a list element */
void pq_to_struct_end(pq_tout *o);           /* writes STOP */

/* ---- the footer ---------------------------------------------------------- */

enum pq_phys {
    PQ_T_BOOLEAN = 0,
    PQ_T_INT32 = 1,
    PQ_T_INT64 = 2,
    PQ_T_INT96 = 3,
    PQ_T_FLOAT = 4,
    PQ_T_DOUBLE = 5,
    PQ_T_BYTE_ARRAY = 6,
    PQ_T_FLBA = 7,
};

enum pq_encoding {
    PQ_E_PLAIN = 0,
    PQ_E_PLAIN_DICTIONARY = 2,
    PQ_E_RLE = 3,
    PQ_E_BIT_PACKED = 4,
    PQ_E_DELTA_BINARY_PACKED = 5,
    PQ_E_DELTA_LENGTH_BYTE_ARRAY = 6,
    PQ_E_DELTA_BYTE_ARRAY = 7,
    PQ_E_RLE_DICTIONARY = 8,
    PQ_E_BYTE_STREAM_SPLIT = 9,
};

/* One SchemaElement. name points into the footer copy (NUL-terminated). */
typedef struct pq_schema_el {
    char *name;
    int type; /* physical type, -1 for a group */
    int type_length;
    int repetition; /* 0 required, 1 optional, 2 repeated, -1 absent */
    int num_children;
    int converted;            /* ConvertedType, -1 absent */
    int logical;              /* LogicalType union field id, 0 absent */
    int int_bits, int_signed; /* LogicalType INTEGER */
} pq_schema_el;

typedef struct pq_chunk {
    int type; /* physical type */
    int codec;
    int64_t num_values;
    int64_t total_uncompressed;
    int64_t total_compressed;
    int64_t data_page_offset;
    int64_t dict_page_offset; /* -1 if absent */
    int has_meta;             /* the ColumnMetaData was present */
    int external;             /* file_path set: data in another file */
} pq_chunk;

typedef struct pq_rowgroup {
    int64_t num_rows;
    int ncols;
    pq_chunk *cols;
} pq_rowgroup;

typedef struct pq_meta {
    int64_t num_rows;
    int nschema;
    pq_schema_el *schema;
    int nrg;
    pq_rowgroup *rgs;
    char *created_by;
} pq_meta;

/* Decodes a FileMetaData from buf[0..n) into m, allocating from arena a
 * (strings are copied, so buf may go away). Returns 0, or PQ_EFORMAT with err
 * saying what was wrong and at which byte, WP_ENOMEM. Does not validate the
 * offsets against a file size (pq_open does). */
int pq_meta_decode(const uint8_t *buf, size_t n, wp_arena *a, pq_meta *m, wp_err *err);

typedef struct pq_page_header {
    int type; /* 0 data v1, 1 index, 2 dictionary, 3 data v2 */
    int32_t uncompressed_size;
    int32_t compressed_size;
    int has_crc;
    uint32_t crc;
    int32_t num_values;
    int encoding;
    int def_encoding;
    /* v2 */
    int32_t num_nulls, num_rows;
    int32_t def_bytes, rep_bytes;
    int is_compressed;
} pq_page_header;

/* Decodes a PageHeader from buf[0..n): returns its length in bytes (> 0),
 * or PQ_EFORMAT with a reason in *why (static text). */
int pq_page_header_decode(const uint8_t *buf, size_t n, pq_page_header *h, const char **why);

/* ---- value decoders (return 0 or -1 with *why set) ---------------------- */

/* RLE / bit-packed hybrid: n values of bit width bw (0..32) from p[0..len).
 * A truncated last bit-packed run is read as far as its bytes go. */
int pq_rle_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n, const char **why);
/* DELTA_BINARY_PACKED: up to max values into out (64-bit wrapping
 * arithmetic; 32-bit columns wrap to 32 bits when 'bits32'). Sets *count
 * to the number of values the header declares and *used to the bytes the
 * encoding took. */
int pq_delta_decode(const uint8_t *p, size_t len, int bits32, int64_t *out, size_t max,
                    size_t *count, size_t *used, const char **why);
/* BYTE_STREAM_SPLIT: n values of width k bytes, re-interleaved into out. */
int pq_bss_decode(const uint8_t *p, size_t len, int k, uint8_t *out, size_t n, const char **why);

/* A string value as decoded: pointer and length. */
typedef struct pq_str {
    const char *p;
    uint32_t len;
} pq_str;

/* PLAIN BYTE_ARRAY: n values; pointers into p. */
int pq_plain_ba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, size_t *used,
                       const char **why);
/* DELTA_LENGTH_BYTE_ARRAY: n values; pointers into p. tmp has room for n
 * int64 lengths. */
int pq_dlba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, int64_t *tmp,
                   const char **why);
/* DELTA_BYTE_ARRAY: n values, built in arena a. tmp has room for n int64. */
int pq_dba_decode(const uint8_t *p, size_t len, pq_str *out, size_t n, int64_t *tmp, wp_arena *a,
                  const char **why);

/* ---- codecs --------------------------------------------------------------- */

/* Decompresses src[0..n) with codec into dst, which must come out exactly
 * cap bytes. Returns 0, PQ_EUNSUPPORTED (an unknown codec or LZO) or
 * PQ_ECODEC, with a reason in *why. */
int pq_decompress(int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                  const char **why);
/* Compresses src[0..n) into out (replacing it). Returns 0, WP_EINVAL (codec
 * not writable), PQ_ECODEC, WP_ENOMEM. */
int pq_compress(int codec, int level, const uint8_t *src, size_t n, wp_buf *out);

const char *pq_codec_name(int codec);
const char *pq_encoding_name(int enc);

/* CRC-32 (zlib's polynomial) of p[0..n). */
uint32_t pq_crc32(const uint8_t *p, size_t n);

#endif /* PQ_INT_H */
