/*
 * shard/shard.h: `witpipe shard`, the corpus as WebDataset tar shards.
 *
 * A sample is three adjacent members KEY.EXT (the stored image bytes,
 * unchanged), KEY.txt (the caption) and KEY.json (its metadata, see
 * schemas/sample.schema.json). KEY is the pair uid: 32 lowercase hex
 * digits, no dots, so WebDataset's "key = name up to the first dot" finds
 * it, and the same pair keeps the same key whatever the shard options.
 *
 * Shards are a pure function of the catalog and the options: samples go in
 * cursor order (pair id, or a seeded hash of the uid), a shard closes when
 * the next sample would pass --per-shard samples or --max-bytes bytes, and
 * every tar header is fixed (ustar, uid/gid 0, no owner names, mode 0644,
 * one mtime). That is what lets a re-run skip the shards already done and
 * write the missing ones byte for byte as a single run would have.
 */
#ifndef SHARD_H
#define SHARD_H

#include "catalog/catalog.h"
#include "common/wp.h"
#include "store/store.h"

#include <stdint.h>

#define SHARD_PER_DEFAULT 10000              /* samples per shard */
#define SHARD_IMAGE_MAX   ((int64_t)1 << 30) /* largest image put in a shard */
#define SHARD_NAME_MAX    64                 /* "00000.tar" and friends */
#define SHARD_TAR_BLOCK   512                /* tar's record unit */
#define SHARD_WRITE_BLOCK 65536              /* libarchive's output block */

enum shard_status {
    SHARD_ECHANGED = -500, /* a shard done earlier no longer matches the catalog */
    SHARD_ETAR = -501,     /* libarchive refused to write */
};

typedef struct shard_opts {
    const char *output; /* output directory (created if missing); NULL: DIR/shards */
    int64_t per_shard;  /* samples per shard; 0: SHARD_PER_DEFAULT */
    int64_t max_bytes;  /* shard size cap in bytes; 0: none */
    int shuffle;        /* order by a hash of seed and uid */
    uint64_t seed;
    int64_t mtime; /* mtime of every member */
    int parquet;   /* also NNNNN.parquet per shard, img2dataset's metadata columns */
    wp_part part;  /* --part I/N: write shards [floor((I-1)S/N), floor(IS/N)) of the S
                    * that one run would write (same names and bytes), no manifest */
} shard_opts;

/* The defaults: DIR/shards, SHARD_PER_DEFAULT samples a shard, no byte
 * cap, catalog order, mtime 0. Cannot fail. */
void shard_opts_init(shard_opts *o);

typedef struct shard_stats {
    int64_t shards;        /* shards in the plan */
    int64_t written;       /* written by this run */
    int64_t skipped;       /* done by an earlier run, left alone */
    int64_t samples;       /* samples in all shards */
    int64_t pairs;         /* pairs looked at */
    int64_t excluded;      /* pairs not shipped (image not ok, or dropped) */
    int64_t bytes;         /* bytes of all shards */
    int64_t bytes_written; /* bytes written by this run */
} shard_stats;

/* Writes the shards of the corpus into o->output, with manifest.json and
 * NNNNN_stats.json beside them (both replaced atomically). Each shard is
 * written as NAME.tmp, fsync'ed and renamed, and only then recorded as
 * done in the catalog. Image bytes are checked against their sha256 as
 * they are read. The run is recorded in the catalog (stage "shard": its
 * options, its counts after every shard, its end). Returns 0, WP_ESTOP
 * (the shard being written is removed), SHARD_ECHANGED, ST_ECORRUPT,
 * WP_EIO, SHARD_ETAR or CAT_ESQL. */
int shard_run(cat *c, st_store *s, const shard_opts *o, const wp_reporter *rep, shard_stats *st,
              wp_err *err);

/* ---- export (shard/export.c) ------------------------------------------ */

enum shard_export_format {
    SHARD_EXPORT_JSONL = 0,   /* one schemas/export_row.schema.json object a line */
    SHARD_EXPORT_TSV = 1,     /* uid, url, caption, sha256, kept, dropped_by, clip_score */
    SHARD_EXPORT_PARQUET = 2, /* the same columns typed, plus sizes (parquet/, snappy or zstd) */
};

typedef struct shard_export_opts {
    const char *path;       /* output file; "-" is not accepted (written atomically) */
    int format;             /* enum shard_export_format */
    int all;                /* every pair; 0: only the pairs shard would ship */
    int zstd;               /* Parquet: zstd instead of snappy */
    int64_t row_group_rows; /* Parquet: rows per row group; 0: 65536 */
} shard_export_opts;

typedef struct shard_export_counts {
    int64_t pairs; /* pairs looked at */
    int64_t rows;  /* rows written */
    int64_t kept;  /* rows of pairs shard would ship */
} shard_export_counts;

/* Writes one row per pair (every pair with o->all, else those shard would
 * ship), in pair id order, streamed with bounded memory, to o->path.tmp,
 * then fsync and rename: the file appears whole or not at all. A JSONL row
 * is the shard's KEY.json object without "key", plus "kept" and
 * "dropped_by"; `witpipe add FILE` reads it back (url, caption) into the
 * same pair uids. TSV has a header line; tabs and line breaks inside a
 * field become spaces (use JSONL for an exact round trip). Parquet has typed
 * columns uid, url, caption, kept, dropped_by, sha256, width, height,
 * original_width, original_height, clip_score (string columns dictionary
 * encoded where it pays) and is read back by `witpipe add`. Returns 0,
 * WP_ESTOP (nothing left behind), WP_EIO, WP_EINVAL or CAT_ESQL. */
int shard_export(cat *c, const shard_export_opts *o, const wp_reporter *rep,
                 shard_export_counts *counts, wp_err *err);

/* The tar bytes one member of n bytes takes: a 512-byte header plus the
 * data rounded up to 512 (ustar). */
int64_t shard_member_bytes(int64_t n);

#endif /* SHARD_H */
