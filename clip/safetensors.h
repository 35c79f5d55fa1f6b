/*
 * clip/safetensors.h: the safetensors reader of the built-in CLIP
 * (internal to clip/).
 *
 * The file is mmap'ed and its JSON header checked in full before any tensor
 * is used: sane header length, valid JSON object, every tensor's dtype known,
 * shape consistent with its byte range, ranges inside the data section and
 * not overlapping. "__metadata__" is ignored. Every error names the file and
 * the tensor.
 */
#ifndef CLIP_SAFETENSORS_H
#define CLIP_SAFETENSORS_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

/* The format allows a 100 MB header; real CLIP checkpoints have under
 * 1 MB (ViT-bigG-14: about 1,300 tensors, 170 KB). 4 MB bounds what parsing
 * a hostile header can cost (jansson: tens of bytes per JSON value). */
#define CLIP_ST_HEADER_MAX  ((uint64_t)4 << 20)
#define CLIP_ST_TENSORS_MAX 16384 /* most tensors accepted (ViT-bigG-14: ~1,300) */
#define CLIP_ST_NAME_MAX    256   /* longest tensor name accepted */
#define CLIP_ST_NDIM_MAX    8     /* most dimensions accepted */

enum clip_st_dtype {
    CLIP_DT_F32 = 0,
    CLIP_DT_F16,
    CLIP_DT_BF16,
    CLIP_DT_F64,
    CLIP_DT_I64,
    CLIP_DT_I32,
    CLIP_DT_I16,
    CLIP_DT_I8,
    CLIP_DT_U8,
    CLIP_DT_BOOL,
};

typedef struct clip_st_tensor {
    char name[CLIP_ST_NAME_MAX];
    int dtype; /* enum clip_st_dtype */
    int ndim;  /* 0 for a scalar */
    int64_t shape[CLIP_ST_NDIM_MAX];
    int64_t numel;
    uint64_t begin, end; /* byte range inside the data section */
} clip_st_tensor;

typedef struct clip_st clip_st;

/* Opens and validates path. Returns 0 and *out (free with clip_st_close), or
 * WP_ENOENT, WP_EIO, WP_ENOMEM, CLIP_EFORMAT with err naming file and tensor. */
int clip_st_open(const char *path, clip_st **out, wp_err *err);
/* The same checks on a file held in memory (tests, fuzzing): data[0..n) is
 * borrowed, not copied, and must outlive *out; name stands for the path in
 * messages. */
int clip_st_open_mem(const void *data, size_t n, const char *name, clip_st **out, wp_err *err);
void clip_st_close(clip_st *st);
const char *clip_st_path(const clip_st *st);
int clip_st_count(const clip_st *st);
const clip_st_tensor *clip_st_at(const clip_st *st, int i);
/* The tensor called name, or NULL. */
const clip_st_tensor *clip_st_find(const clip_st *st, const char *name);
const char *clip_st_dtype_name(int dtype);

/* Marks t as consumed by the model builder / asks whether tensor i was. */
void clip_st_mark_used(clip_st *st, const clip_st_tensor *t);
int clip_st_used(const clip_st *st, int i);

/* Converts t to float32 into out (t->numel floats). F32, F16 and BF16 are
 * supported; any other dtype gives CLIP_EFORMAT naming the tensor. */
int clip_st_read_f32(const clip_st *st, const clip_st_tensor *t, float *out, wp_err *err);

#endif /* CLIP_SAFETENSORS_H */
