/*
 * filter/filter.h: the `witpipe filter` stage: text, language, image,
 * CLIP-score and content-tag rules over the catalog, the field's presets,
 * and a dry run that only counts.
 *
 * A run scans every pair once, in pair id order, in batches (one catalog
 * transaction per batch). Each rule gives a verdict per pair; the pair's
 * decision (stage 'filter') is drop when any rule drops it, with the first
 * failing rule (in the order of enum flt_rule) as reason and the pair's
 * CLIP score (if any) as score. Every failing rule is kept too
 * (filter_verdicts), so the audit can show what each rule alone removes.
 * A new run replaces the stage's decisions; a stopped or killed run with
 * the same rules resumes after the last batch it committed.
 *
 * Languages are detected with CLD2 once per pair and kept (pair_lang), for
 * the audit and the balancer as well as for --lang.
 *
 * Image rules read what fetch recorded about the image as served
 * (orig_width, orig_height, orig_bytes): nothing is decoded again. A pair
 * whose image has no recorded size (not fetched, or failed) passes the
 * image rules; shard leaves such pairs out anyway.
 */
#ifndef FILTER_H
#define FILTER_H

#include "catalog/catalog.h"
#include "common/wp.h"

#include <stdint.h>

enum flt_status {
    FLT_ENOSCORES = -1400, /* a CLIP-score rule, but no scores: run witpipe encode first */
    FLT_EMODEL = -1401,    /* several models scored and none named, or the named one has none */
    FLT_ELIST = -1402,     /* a bad line in a boilerplate or label file */
    FLT_EPRESET = -1403,   /* an unknown preset name */
    FLT_ERULE = -1404,     /* a rule's value is out of range or the rules contradict */
};

/* The rules, in the order that names a dropped pair's reason. */
enum flt_rule {
    FLT_R_MIN_CHARS,
    FLT_R_MAX_CHARS,
    FLT_R_MIN_WORDS,
    FLT_R_MAX_REPEAT,
    FLT_R_BOILERPLATE,
    FLT_R_TEXT_DUP,
    FLT_R_LANG,
    FLT_R_MIN_LANG_CONF,
    FLT_R_MIN_SIDE,
    FLT_R_MAX_ASPECT,
    FLT_R_MIN_BYTES,
    FLT_R_MIN_PIXELS,
    FLT_R_NO_CLIP_SCORE,
    FLT_R_MIN_CLIP_SCORE,
    FLT_R_CLIP_TOP,
    FLT_R_DROP_TAG,
    FLT_R_COUNT
};

/* The rule's name as reasons, verdicts and reports spell it ("min_words"). */
const char *flt_rule_name(int rule);

/* Which caption's CLIP score applies to a pair whose image has several. */
enum flt_clip_text {
    FLT_CLIP_OWN = 0,  /* each pair its own caption's score (default) */
    FLT_CLIP_MAX = 1,  /* the image's best-scoring caption, for all its pairs */
    FLT_CLIP_MEAN = 2, /* the mean over the image's captions */
};

#define FLT_LANGS_MAX 32

/* The rules of one run. Integer rules are off when < 0, real ones when NaN
 * (flt_rules_init sets everything off). A pair is dropped by:
 *   min_chars   fewer code points than this (after trimming white space)
 *   max_chars   more code points than this
 *   min_words   fewer white-space separated words (Python's str.split())
 *   max_repeat  a caption of one word repeated more than this many times
 *   boilerplate its normalised caption matching a line of the list
 *   text_dup    a dedup decision with reason 'text_dup' (dedup --text-dup)
 *   langs       a detected language not in the list ("en", "zh"...)
 *   min_lang_conf  a language confidence below this
 *   min_side    orig shorter side below this (px)
 *   max_aspect  orig longer/shorter side above this
 *   min_bytes   orig bytes below this
 *   min_pixels  orig width*height below this
 *   min_clip_score  a CLIP score below this (pairs without one: no_clip_score)
 *   clip_top_pct    not among the top P percent of scored pairs
 *   drop_tags   a content tag in this list */
typedef struct flt_rules {
    int64_t min_chars, max_chars, min_words, max_repeat;
    int boilerplate;
    int text_dup;
    int nlangs;
    char langs[FLT_LANGS_MAX][16];
    double min_lang_conf;
    int64_t min_side, min_bytes, min_pixels;
    double max_aspect;
    double min_clip_score;
    double clip_top_pct;
    char model[160]; /* "" : the only model with scores */
    int clip_text;   /* enum flt_clip_text */
    int ntags;
    char drop_tags[8][32];
} flt_rules;

void flt_rules_init(flt_rules *r);
/* 1 if any CLIP-score rule is on. */
int flt_rules_use_clip(const flt_rules *r);
/* Parses "en,de" into r->langs. Returns 0 or FLT_ERULE (empty item, too
 * many, too long). */
int flt_rules_set_langs(flt_rules *r, const char *list, wp_err *err);
int flt_rules_set_tags(flt_rules *r, const char *list, wp_err *err);
/* The rules as one JSON object (appended to out): what runs record as
 * params and what a resume compares. 0 or WP_ENOMEM. */
int flt_rules_json(const flt_rules *r, wp_buf *out);

/* Presets. Each sets the rules it stands for where r has them off, so an
 * explicit rule given with a preset wins. Returns 0 or FLT_EPRESET.
 *   datacomp-basic   DataComp (Gadre et al. 2023) "basic filtering": English
 *                    (fastText there, CLD2 here), more than 2 words and
 *                    more than 5 characters, shorter side >= 200 px,
 *                    aspect ratio <= 3:
 *                    --lang en --min-words 3 --min-chars 6 --min-side 200
 *                    --max-aspect 3
 *   laion            LAION-5B (Schuhmann et al. 2022), English subset:
 *                    ViT-B/32 CLIP score >= 0.28, English:
 *                    --min-clip-score 0.28 --lang en
 *   datacomp-clip30  DataComp "CLIP score" baseline: the top 30% by
 *                    CLIP score (L/14 there): --clip-top 30 */
int flt_preset_apply(flt_rules *r, const char *name, wp_err *err);
/* The preset names, NULL-terminated. */
extern const char *const flt_preset_names[];

/* ---- text measures (filter/text.c) ----------------------------------- */

/* Code points of text[0..n) after trimming white space at both ends. */
int64_t flt_text_chars(const char *text, size_t n);
/* Words as Python's str.split() counts them (Unicode white space). */
int64_t flt_text_words(const char *text, size_t n);
/* Both of the above in one pass. Cannot fail. */
void flt_text_measure(const char *text, size_t n, int64_t *chars, int64_t *words);
/* When the caption is one word repeated (case-insensitively, ASCII),
 * the number of times; else 0 (also for a single word). */
int64_t flt_text_repeat(const char *text, size_t n);

/* ---- boilerplate (filter/boilerplate.c) ------------------------------
 * A list of patterns, one a line ('#' starts a comment), each matched
 * against the whole normalised caption: ASCII letters lowercased, white
 * space runs made one blank, white space and the punctuation . , : ; ! ? "
 * ' ( ) [ ] | - _ * trimmed from both ends. In a pattern:
 *   #   one or more digits
 *   %   zero or more of a-z 0-9 _ -      (a file name's stem)
 *   +   one or more characters other than a blank
 *   *   zero or more characters of any kind
 *   \x  the character x itself
 * and any other character stands for itself. A caption that normalises
 * to nothing is never boilerplate (--min-chars handles it). The shipped
 * list is filter/boilerplate.txt (built into the binary). */
typedef struct flt_boiler flt_boiler;

/* Parses a list from text. Returns 0 and *out (free with flt_boiler_free),
 * FLT_ELIST naming the line of a bad pattern, or WP_ENOMEM. name is used
 * in messages. */
int flt_boiler_parse(const char *text, size_t n, const char *name, flt_boiler **out, wp_err *err);
/* The shipped list. */
int flt_boiler_default(flt_boiler **out, wp_err *err);
/* Reads a list from a file (WP_ENOENT, WP_EIO, FLT_ELIST). */
int flt_boiler_load(const char *path, flt_boiler **out, wp_err *err);
void flt_boiler_free(flt_boiler *b);
int flt_boiler_count(const flt_boiler *b);
/* 1-based line of the first pattern the caption matches, or 0. */
int flt_boiler_match(const flt_boiler *b, const char *text, size_t n);
/* The shipped lists' text (filter/boilerplate.txt, content_labels.txt). */
extern const char flt_boilerplate_txt[];
extern const char flt_content_labels_txt[];

/* ---- language (filter/lang.c, CLD2) ----------------------------------- */

typedef struct flt_lang {
    char code[16]; /* ISO 639-1 (en, de, zh, ja...), zh-Hant, or "un" */
    double conf;   /* see flt_lang_detect */
    int reliable;  /* CLD2's is_reliable (of the first, strict pass) */
    int percent;   /* CLD2's percent of text in the top language */
    int text_bytes;
} flt_lang;

/* Detects the language of a caption (UTF-8). CLD2 first runs as is; when
 * that cannot name a language (short text) it runs again in best-effort
 * mode and its guess is kept with a halved confidence. conf =
 *   percent/100 * (reliable ? 1 : 0.5) * min(1, text_bytes / 32)
 * (* 0.5 for a best-effort guess), so a caption of a word or two never
 * gets a high confidence. Empty or letterless text: "un", 0. Cannot fail. */
void flt_lang_detect(const char *text, size_t n, flt_lang *out);

/* ---- content tags (filter/tags.c) --------------------------------------
 * A label file has one "TAG<TAB or '|'>PROMPT" a line ('#' comments): the
 * tag (unsafe, watermark, safe, ...) and a prompt CLIP compares the image
 * with. A pair's tag is the tag of the prompt closest to its image; margin
 * is that cosine minus the closest prompt of any other tag. A zero-shot
 * approximation, not a trained detector. */
typedef struct flt_labels flt_labels;
int flt_labels_parse(const char *text, size_t n, const char *name, flt_labels **out, wp_err *err);
int flt_labels_count(const flt_labels *l);
const char *flt_labels_tag(const flt_labels *l, int i);
const char *flt_labels_prompt(const flt_labels *l, int i);
void flt_labels_free(flt_labels *l);

typedef struct flt_tag_opts {
    const char *model_dir;   /* CLIP model folder */
    const char *labels_file; /* NULL: the shipped filter/content_labels.txt */
    const char *model_name;  /* stored with each tag; NULL: the folder's name */
    int batch;               /* images per forward pass; 0: 32 */
    int64_t limit;           /* tag at most this many images; <= 0: all */
} flt_tag_opts;

/* Tags every pair whose image is stored ok and has no content tag from
 * this model yet: the image is read from the store, preprocessed and
 * embedded, and compared with the label prompts. Returns 0 and *tagged,
 * FLT_ELIST, the clip and store errors, WP_ESTOP. */
int flt_tag_run(cat *c, const flt_tag_opts *o, const wp_reporter *rep, int64_t *tagged,
                wp_err *err);

/* ---- running ----------------------------------------------------------- */

#define FLT_HIST_BINS 40 /* CLIP-score histogram: [lo, hi) in 40 bins */

typedef struct flt_report {
    int64_t pairs, pairs_bytes; /* pairs scanned; their images' stored bytes */
    int64_t alone[FLT_R_COUNT]; /* pairs each rule alone drops */
    int64_t alone_bytes[FLT_R_COUNT];
    int64_t first[FLT_R_COUNT]; /* pairs whose reason is this rule */
    int64_t dropped, dropped_bytes;
    int64_t lang_detected; /* pairs whose language was detected in this run */
    int64_t resumed_after; /* > 0: the run resumed after this pair id */
    int active[FLT_R_COUNT];
    char model[160];       /* the model whose scores were used, or "" */
    int64_t scored;        /* pairs with a CLIP score */
    double clip_threshold; /* the threshold applied (NaN: none) */
    int64_t top_keep;      /* --clip-top: pairs kept */
    double hist_lo, hist_hi;
    int64_t hist[FLT_HIST_BINS];
} flt_report;

typedef struct flt_opts {
    const flt_rules *rules;
    const flt_boiler *boiler; /* the list for the boilerplate rule (NULL: shipped) */
    int dry_run;              /* count only: nothing written */
    int batch;                /* pairs per transaction; 0: 50000 */
    int64_t run_id;
    const char *params_json; /* as recorded for the run (resume key) */
    int no_lang_detect;      /* do not detect missing languages (unless --lang needs them) */
    wp_part part;            /* --part I/N: only pairs whose uid is in the part (recorded in
                              * the run's params, so a resume keeps to its part) */
} flt_opts;

/* Checks the rules against the catalog before a run: resolves the model of
 * CLIP-score rules (r->model "" and exactly one model scored: that one).
 * Returns 0, FLT_ENOSCORES (no scores at all: run witpipe encode),
 * FLT_EMODEL (several models and none named, or the named one has no
 * scores; the message lists them), FLT_ERULE, CAT_ESQL. */
int flt_prepare(cat *c, flt_rules *r, wp_err *err);

/* Runs the rules over the catalog (after flt_prepare). Returns 0 and fills rep, or
 * FLT_ENOSCORES / FLT_EMODEL (CLIP rules without usable scores), CAT_ESQL,
 * WP_ENOMEM, WP_ESTOP (Ctrl-C: committed batches are kept and a run with
 * the same rules resumes after them). */
int flt_run(cat *c, const flt_opts *o, const wp_reporter *reporter, flt_report *rep, wp_err *err);

/* The report as JSON (schemas/filter_report.schema.json), appended to out. */
int flt_report_json(const flt_report *rep, const flt_rules *r, int dry_run, wp_buf *out);

#endif /* FILTER_H */
