/*
 * emb/emb.h: CLIP embeddings on disk, in clip-retrieval's layout. The
 * encode stage writes them; dedup, filter, balance and audit read them
 * (memory-mapped) instead of running the model again.
 *
 * One model's folder, DIR/embeddings/NAME/, holds shards N = 0, 1, ...:
 *
 *   img_emb/img_emb_N.npy       rows x dim image embeddings, C order
 *   text_emb/text_emb_N.npy     the same rows' caption embeddings
 *   metadata/metadata_N.jsonl   line r describes row r:
 *                               {"row":r,"pair_id":P,"uid":"32 hex","clip_score":S}
 *                               (schemas/encode_metadata.schema.json)
 *
 * witpipe writes float16 ('<f2', NumPy format 1.0). The reader also takes
 * what clip-retrieval (or any numpy.save) writes: '<f2' or '<f4', format
 * versions 1.0 to 3.0. Embeddings are stored un-normalised, as the model
 * returns them. A shard whose metadata is missing or is not witpipe's
 * jsonl (clip-retrieval writes parquet) is still readable by row; its rows
 * have pair id 0 and no uid.
 *
 * Every file is written whole to FILE.tmp, fsynced and renamed, so a
 * reader never sees a partial shard; the encode stage commits a shard's
 * rows to the catalog only after its three files are in place.
 */
#ifndef EMB_H
#define EMB_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

enum emb_status {
    EMB_EFORMAT = -1100,   /* a .npy or metadata file is malformed or truncated */
    EMB_EMISMATCH = -1101, /* shards disagree (dimension, row counts, dtype) */
};

enum emb_kind {
    EMB_IMAGE = 0,
    EMB_TEXT = 1,
};

#define EMB_NPY_HEADER_MAX (64u << 10) /* longest .npy header accepted */
#define EMB_DIM_MAX        16384       /* widest embedding accepted */

/* The folder name under DIR/embeddings for a model: given when it is set
 * and not empty, else model_dir's last component ("model" folders take
 * their parent's name), then with every character outside [A-Za-z0-9._-]
 * (and a leading '.') made '_', so the name is a safe folder and JSON
 * string. Every stage that finds a model's embeddings names them so.
 * Cannot fail; out gets at most cap bytes. */
void emb_model_name(const char *model_dir, const char *given, char *out, size_t cap);

/* ---- writing ----------------------------------------------------------- */

/* What a metadata line says about one row. */
typedef struct emb_row {
    int64_t pair_id;
    char uid[33]; /* 32 lower-case hex digits and a NUL */
    float clip_score;
} emb_row;

/* Writes shard no of the folder dir (created with its three subfolders if
 * missing): rows x dim float16 image and text embeddings (img, txt; txt may
 * be NULL to write no text file) and the rows' metadata. Each file goes
 * through wp_write_file_atomic. Returns 0, or WP_EINVAL (rows < 0, dim out
 * of range), WP_ENOMEM, WP_EIO with err naming the file. */
int emb_write_shard(const char *dir, int64_t no, int rows, int dim, const uint16_t *img,
                    const uint16_t *txt, const emb_row *meta, wp_err *err);

/* Removes what a killed writer left in the folder dir: the .tmp.PID files
 * of an unfinished wp_write_file_atomic, and the files of shards numbered
 * from first on (written, but never recorded in the catalog: the next run
 * writes them again). The caller holds the corpus lock. A missing folder is
 * no error. Returns 0 and *removed (may be NULL), or WP_EIO. */
int emb_remove_leftovers(const char *dir, int64_t first, int64_t *removed, wp_err *err);

/* Appends a NumPy format 1.0 header for a C-order rows x cols array of
 * '<f2' (f16 != 0) or '<f4' to b, padded so the data starts at a multiple
 * of 64 bytes. 0 or WP_ENOMEM. */
int emb_npy_header(wp_buf *b, int64_t rows, int cols, int f16);

/* ---- reading ----------------------------------------------------------- */

/* A parsed .npy header. */
typedef struct emb_npy {
    int64_t rows;
    int cols;
    int itemsize;       /* 2 ('<f2') or 4 ('<f4') */
    size_t data_offset; /* where the array starts in the file */
} emb_npy;

/* Parses the header of a .npy file of n bytes at p: magic, version 1.0 to
 * 3.0, a dict with 'descr' '<f2' or '<f4', 'fortran_order' False and a
 * 2-d 'shape' (a 1-d shape (0,) is read as 0 rows); checks that the data
 * fits in n bytes. Returns 0, or EMB_EFORMAT with err saying what is wrong
 * (the caller prefixes the file name). Never reads past p + n. */
int emb_npy_parse(const void *p, size_t n, emb_npy *out, wp_err *err);

typedef struct emb_set emb_set;

/* Opens the model folder dir and maps every shard. Returns 0 and *out
 * (free with emb_close), or WP_ENOENT (no img_emb shard), EMB_EFORMAT,
 * EMB_EMISMATCH, WP_EIO, WP_ENOMEM, with err naming the file (and line for
 * metadata). */
int emb_open(const char *dir, emb_set **out, wp_err *err);
void emb_close(emb_set *s);

int emb_dim(const emb_set *s);
int64_t emb_rows(const emb_set *s); /* rows over all shards, in shard order */
int emb_has_text(const emb_set *s); /* 1 if every shard has text embeddings */

/* The pair id / uid of a row: 0 / "" when the shard has no witpipe
 * metadata or row is out of range. */
int64_t emb_pair_id(const emb_set *s, int64_t row);
const char *emb_uid(const emb_set *s, int64_t row);
/* The row holding pair_id, or -1. O(log rows). */
int64_t emb_find_pair(const emb_set *s, int64_t pair_id);

/* Copies n rows from row of kind (EMB_IMAGE or EMB_TEXT) as float32 into
 * out (n x dim floats). Returns 0, or WP_EINVAL (range, or no text) with
 * err set. Rows may span shards. */
int emb_read(const emb_set *s, int kind, int64_t row, int64_t n, float *out, wp_err *err);

#endif /* EMB_H */
