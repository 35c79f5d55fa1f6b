/*
 * audit/audit.h: the `audit` stage: a bias audit and a datasheet of a
 * corpus, from whatever stages have run. It reads the catalog (never
 * writes it), the image store (gallery thumbnails) and, with a model, the
 * embeddings `witpipe encode` wrote (never recomputed), and writes three
 * files to an output folder:
 *
 *   report.json   every figure (schemas/audit_report.schema.json)
 *   report.html   one self-contained page (inline SVG charts, inline
 *                 thumbnails, no network), rendered from report.json
 *   datasheet.md  Datasheets for Datasets' seven sections, filled with what
 *                 the catalog knows; blanks marked for what only people know
 *
 * Caption-side figures use the editable lexicons in audit/lexicon/, the
 * image-side probes the editable label file audit/labels/probes.txt.
 */
#ifndef AUDIT_H
#define AUDIT_H

#include "common/wp.h"

#include <stdint.h>

struct cat;
struct st_store;

enum aud_status {
    AUD_ELEXICON = -1600, /* a lexicon file is missing or malformed */
    AUD_ELABELS = -1601,  /* the probe label file is missing or malformed */
    AUD_ENOEMB = -1602,   /* --model given but the corpus has no embeddings for it */
};

#define AUD_GALLERY_DEFAULT   6   /* thumbnails per gallery row */
#define AUD_BOOTSTRAP_DEFAULT 200 /* bootstrap replicates for nPMI intervals */

typedef struct aud_opts {
    const char *outdir;      /* created if missing */
    const char *lexicon_dir; /* gender.tsv, age.tsv, identity.tsv, occupation.tsv, adjective.tsv */
    const char *labels_dir;  /* probes.txt, sensitive_queries.txt, unsafe_tags.txt */
    const char *model_dir;   /* CLIP model folder for image-side probes, or NULL */
    const char *model_name;  /* its folder under DIR/embeddings (NULL: from model_dir) */
    int gallery;             /* thumbnails per gallery row; 0 = no gallery */
    int bootstrap;           /* replicates (>= 20) */
    int per_image;           /* also write per_image.jsonl with inferred attributes */
    uint64_t seed;           /* gallery sampling and bootstrap */
    int min_cooc;            /* smallest co-occurrence count reported (default 5) */
} aud_opts;

/* What the run wrote, for the command's summary line. */
typedef struct aud_summary {
    int64_t pairs, fetched, selected;
    int probes_run; /* the image-side probes ran */
    char report_json[WP_PATH_MAX], report_html[WP_PATH_MAX], datasheet[WP_PATH_MAX];
} aud_summary;

/* Runs the audit of c's corpus (store st, may be NULL: no thumbnails) and
 * writes the three files (each atomically) to o->outdir. Returns 0, or
 * AUD_ELEXICON, AUD_ELABELS, AUD_ENOEMB, CAT_ESQL, the clip/emb modules'
 * errors, WP_EIO, WP_ENOMEM, WP_ESTOP with err filled. */
int aud_run(struct cat *c, struct st_store *st, const aud_opts *o, const wp_reporter *rep,
            aud_summary *sum, wp_err *err);

#endif /* AUDIT_H */
