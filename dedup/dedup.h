/*
 * dedup/dedup.h: the `dedup` stage: exact, near-duplicate (perceptual hash)
 * and semantic (SemDeDup) deduplication of a corpus's pairs, and
 * decontamination against evaluation sets.
 *
 * The pieces are usable on their own, without a catalog:
 *  - dd_phash_*: a 64-bit DCT perceptual hash (grayscale 32x32 with PIL's
 *    bicubic, 2-D DCT-II, the 8x8 low-frequency block compared with its
 *    median, bit 63 = coefficient (0,0), row-major), as imagehash.phash
 *    computes it, of the whole image and of its centre (5% cut from each
 *    side): the pHash alone does not survive a 5% crop, the pair does.
 *    The stage calls two images near-duplicates when their whole and
 *    their centre hashes are both within the radius, or one's whole is
 *    within it of the other's centre (a crop); one hash alone within it
 *    is not enough (two shots of one scene can be that close).
 *  - dd_mih_join: every pair of 64-bit hashes within a Hamming radius, by
 *    multi-index hashing (4 substrings of 16 bits; two hashes within r
 *    differ by at most r/4 bits in one of them), never all pairs.
 *  - dd_kmeans / dd_semdedup: spherical k-means over unit rows (the GEMM
 *    kernels of kern/) and SemDeDup's greedy pruning inside each cluster.
 *  - embeddings come from `encode` through the emb/ module (emb/emb.h).
 * dd_run is the stage: it reads the catalog, records its decisions (stage
 * "dedup") and writes the picture of the largest groups.
 */
#ifndef DEDUP_H
#define DEDUP_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

enum dd_status {
    DD_EFORMAT = -1300, /* an embeddings file that is not a float16 2-D .npy */
    DD_EMODEL = -1301,  /* --semantic without embeddings (or model) to read */
    DD_EAGAINST = -1302 /* an evaluation set that cannot be read */
};

/* ---- perceptual hash (dedup/phash.c) ---------------------------------- */

struct img_image; /* image/image.h */

/* The hash of a decoded image (channels 1 or 3; RGB goes to L as PIL's
 * convert("L") does). Returns 0, WP_EINVAL or WP_ENOMEM. */
int dd_phash_image(const struct img_image *im, uint64_t *out, wp_err *err);
/* Decodes JPEG/PNG/WebP bytes (a JPEG straight to gray at the smallest
 * DCT scale that still gives DD_PHASH_DECODE px a side, EXIF orientation
 * applied) and hashes them: *full the whole image, *inner (may be NULL)
 * the box DD_PHASH_CROP of its width and height in from each side
 * (fractional pixels), so that a copy cropped by about that much matches
 * the original's inner hash. Returns 0 or the image module's decode
 * errors. */
#define DD_PHASH_DECODE 32
/* The definition above, as recorded beside stored hashes (image_phash.
 * version): 1 was an RGB decode at >= 64 px with a whole-pixel centre
 * cut. A stored hash of another version is computed again. */
#define DD_PHASH_VERSION 2
#define DD_PHASH_CROP    0.05
int dd_phash_bytes(const void *data, size_t n, uint64_t *full, uint64_t *inner, wp_err *err);
/* Hamming distance of two hashes. */
static inline int dd_hamming(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}

/* ---- multi-index hashing (dedup/mih.c) -------------------------------- */

#define DD_RADIUS_MAX 32

/* One pair found: indices into the input (i < j) and their distance. */
typedef struct dd_pair {
    uint32_t i, j;
    uint32_t dist;
} dd_pair;

/* Every unordered pair (i, j), i < j, of h[0..n) with Hamming distance <=
 * radius (0..DD_RADIUS_MAX), each exactly once, sorted by (i, j), in a
 * malloc'ed array the caller frees (*out NULL when none). Memory: about
 * 24 bytes per hash plus the pairs. Uses OpenMP threads. Returns 0,
 * WP_EINVAL (radius, n > 2^32-1) or WP_ENOMEM. */
int dd_mih_join(const uint64_t *h, size_t n, int radius, dd_pair **out, size_t *npairs,
                wp_err *err);

/* Connected components of n items joined by pairs: comp[k] = the smallest
 * index of k's component. Cannot fail. */
void dd_components(size_t n, const dd_pair *pairs, size_t npairs, uint32_t *comp);

/* ---- SemDeDup (dedup/semdedup.c) -------------------------------------- */

/* Spherical k-means of the n unit rows of X (n x d, row-major). Centroids
 * start at init (k x d, unit rows) or, when init is NULL, at k distinct
 * rows picked with seed; then iters rounds of: assign each row to the
 * centroid of highest cosine (kern/'s GEMM), centroid = the normalised sum of
 * its rows (an empty cluster takes the row farthest from its centroid).
 * C (k x d) receives the unit centroids, assign (n) each row's cluster
 * after a last assignment to them, *objective (may be NULL) the sum over
 * rows of 1 - cosine to that centroid. Returns 0, WP_EINVAL (k < 1,
 * k > n, d < 1) or WP_ENOMEM. */
int dd_kmeans(const float *X, size_t n, int d, int k, int iters, uint64_t seed, const float *init,
              float *C, int32_t *assign, double *objective, wp_err *err);

/* SemDeDup over the clusters of dd_kmeans: within each cluster rows are
 * visited farthest from the centroid first (ties by row), and a row is
 * dropped when its cosine to a row already kept in the cluster exceeds
 * 1 - eps. For each of the neps values eps[e], keep_of[e*n + r] = -1 when
 * row r is kept, else the row it duplicates (a kept row). keep_of is
 * caller-allocated (neps * n). Returns 0 or WP_ENOMEM. */
int dd_semdedup(const float *X, size_t n, int d, const float *C, int k, const int32_t *assign,
                const double *eps, int neps, int64_t *keep_of, wp_err *err);

/* ---- embeddings files (dedup/npy.c; replaced by emb/ at merge) -------- */

/* ---- the stage (dedup/dedup_run.c) ------------------------------------ */

struct cat;
struct st_store;

#define DD_AGAINST_MAX 16
#define DD_EPS_MAX     16

typedef struct dd_opts {
    int exact, near, semantic; /* kinds to run (the CLI's default: exact + near) */
    int radius;                /* pHash Hamming radius (default 6) */
    int clusters;              /* k-means clusters; 0 = about sqrt(N) */
    int iters;                 /* k-means rounds (default 20) */
    double eps[DD_EPS_MAX];    /* SemDeDup eps values; decisions use eps[0] */
    int neps;
    const char *model; /* embeddings model name (DIR/embeddings/MODEL); NULL = the only one */
    const char *against[DD_AGAINST_MAX]; /* evaluation sets: image folders or path lists */
    int nagainst;
    int against_radius;     /* pHash radius against them (default 6); < 0: no pHash check */
    double against_eps;     /* also drop at image cosine > 1 - this to one of them; 0 = off */
    const char *clip_model; /* the CLIP model folder for against_eps (the corpus's model) */
    int dry_run;            /* decide and count, record nothing */
    const char *report;     /* HTML picture of the largest groups; NULL = none */
    int report_groups;      /* how many groups it shows (default 20) */
    int threads;            /* pHash threads; 0 = one per core */
    int batch;              /* images hashed per catalog transaction (default 1024) */
    int batch_delay_ms;     /* pause after each batch (tests: a run slow enough to kill) */
    int text_dup;           /* flag captions of more than N images, and images of more than N
                             * captions (stage "dedup-text"); 0 = off */
    wp_part part;           /* --part I/N: only hash the stored images whose sha256 is in
                             * the part (wp_part_key_hex) and decide nothing; a run without
                             * a part after the merge decides (docs/scale-out.md) */
} dd_opts;

/* dd_opts with the defaults above. */
dd_opts dd_opts_default(void);

typedef struct dd_counts {
    int64_t pairs;      /* pairs with a stored image considered */
    int64_t hashed;     /* images hashed in this run (the rest were in the catalog) */
    int64_t unreadable; /* images whose bytes could not be read or decoded */
    int64_t exact, near, semantic, contaminated; /* pairs dropped, by reason */
    int64_t near_groups, exact_groups, semantic_groups;
    int64_t text_shared, text_many;      /* pairs flagged by text_dup */
    int64_t sem_drop_by_eps[DD_EPS_MAX]; /* SemDeDup drops per eps (dry-run report) */
} dd_counts;

/* Called for each pair the run drops (or would drop, with dry_run), in
 * pair id order, after the decisions are made. reason as in the catalog:
 * "exact", "near:G", "semantic:G", "contaminated:SET" (G = the pair id of
 * the group's keeper). */
typedef void (*dd_drop_fn)(void *ud, int64_t pair_id, const char *reason);

/* With opts->part set (n > 1) the run only hashes its part's images (the
 * hashes are kept in the catalog and merged with it), records its run
 * (params "part") and returns; counts->hashed says how many.
 *
 * Runs the stage: hashes the stored images that have no hash yet (saved
 * in the catalog as it goes, so a killed run resumes), decides, and, unless
 * dry_run, replaces every earlier "dedup" decision with the new ones in one
 * transaction, records the run (stage "dedup", counts as JSON) and writes
 * opts->report. Keeper of a group: the highest CLIP score when scores
 * exist, else the largest original image, else the first pair added.
 * drop_fn may be NULL. Returns 0, WP_ESTOP (stopped while hashing; hashes
 * so far kept), or an error with err filled. */
int dd_run(struct cat *c, struct st_store *s, const dd_opts *opts, const wp_reporter *rep,
           dd_drop_fn drop_fn, void *ud, dd_counts *counts, wp_err *err);

#endif /* DEDUP_H */
