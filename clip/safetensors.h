/*
 * encode/safetensors.h: the safetensors reader of the built-in CLIP
 * (internal to encode/).
 *
 * The file is mmap'ed and its JSON header checked in full before any tensor
 * is used: sane header length, valid JSON object, every tensor's dtype known,
 * shape consistent with its byte range, ranges inside the data section and
 * not overlapping. "__metadata__" is ignored. Every error names the file and
 * the tensor.
 */
#ifndef ENCODE_SAFETENSORS_H
#define ENCODE_SAFETENSORS_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

#define ENC_ST_HEADER_MAX ((uint64_t)100 << 20) /* the format's own 100 MB cap */
#define ENC_ST_NAME_MAX   256                   /* longest tensor name accepted */
#define ENC_ST_NDIM_MAX   8                     /* most dimensions accepted */

enum enc_st_dtype {
    ENC_DT_F32 = 0,
    ENC_DT_F16,
    ENC_DT_BF16,
    ENC_DT_F64,
    ENC_DT_I64,
    ENC_DT_I32,
    ENC_DT_I16,
    ENC_DT_I8,
    ENC_DT_U8,
    ENC_DT_BOOL,
};

typedef struct enc_st_tensor {
    char name[ENC_ST_NAME_MAX];
    int dtype; /* enum enc_st_dtype */
    int ndim;  /* 0 for a scalar */
    int64_t shape[ENC_ST_NDIM_MAX];
    int64_t numel;
    uint64_t begin, end; /* byte range inside the data section */
} enc_st_tensor;

typedef struct enc_st enc_st;

/* Opens and validates path. Returns 0 and *out (free with enc_st_close), or
 * WP_ENOENT, WP_EIO, WP_ENOMEM, ENC_EFORMAT with err naming file and tensor. */
int enc_st_open(const char *path, enc_st **out, wp_err *err);
/* The same checks on a file held in memory (tests, fuzzing): data[0..n) is
 * borrowed, not copied, and must outlive *out; name stands for the path in
 * messages. */
int enc_st_open_mem(const void *data, size_t n, const char *name, enc_st **out, wp_err *err);
void enc_st_close(enc_st *st);
const char *enc_st_path(const enc_st *st);
int enc_st_count(const enc_st *st);
const enc_st_tensor *enc_st_at(const enc_st *st, int i);
/* The tensor called name, or NULL. */
const enc_st_tensor *enc_st_find(const enc_st *st, const char *name);
const char *enc_st_dtype_name(int dtype);

/* Marks t as consumed by the model builder / asks whether tensor i was. */
void enc_st_mark_used(enc_st *st, const enc_st_tensor *t);
int enc_st_used(const enc_st *st, int i);

/* Converts t to float32 into out (t->numel floats). F32, F16 and BF16 are
 * supported; any other dtype gives ENC_EFORMAT naming the tensor. */
int enc_st_read_f32(const enc_st *st, const enc_st_tensor *t, float *out, wp_err *err);

/* IEEE half / bfloat16 to float, exact (subnormals, inf, NaN kept). */
float enc_f16_to_f32(uint16_t h);
float enc_bf16_to_f32(uint16_t h);
uint16_t enc_f32_to_f16(float f); /* round to nearest even */
/* n little-endian halves at src to floats: F16C when the CPU has it, else
 * portable; both exact. */
void enc_f16_convert(const void *src, float *dst, size_t n);
void enc_f16_convert_f16c(const void *src, float *dst, size_t n); /* F16C only */

#endif /* ENCODE_SAFETENSORS_H */
