/*
 * common/wp.h: the small library every witpipe module builds on.
 *
 * Error reports (wp_err), arenas for per-page and per-batch memory, growable
 * byte buffers, SHA-256 and the pair uid, hex, clocks, durable file writes,
 * UTF-8 helpers, the JSON writer (and witpipe's JSON policy), and the
 * reporter through which library code hands progress and events to the
 * command layer (library code never prints).
 *
 * Conventions used across witpipe:
 *  - A function that can fail returns 0 on success or a negative, module
 *    specific error code, and fills the caller's wp_err (which may be NULL)
 *    with the same code and a one-line message naming the location.
 *  - Whoever receives a pointer from a function named *_new or *_open owns
 *    it and frees it with the matching *_free or *_close.
 */
#ifndef WP_H
#define WP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WP_VERSION "0.1.0"

/* ---- errors ---------------------------------------------------------- */

#define WP_ERR_MAX 512 /* longest error message kept, with its NUL */

/* Status codes: 0 is success, negative is an error. Each module owns one
 * range of 100 and declares its codes in its public header with its own
 * prefix; WP_ codes (-1..-99) are shared by all. A code is never reused for
 * another meaning, so a number in a log names one failure.
 *
 *   -1 .. -99      common (WP_)        -900          fetch (FETCH_)
 *   -100           catalog (CAT_)      -1000         kern (KN_)
 *   -200           store (ST_)         -1100         emb: embeddings files (EMB_)
 *   -300           image (IMG_)        -1200         encode stage (ENC_)
 *   -400           net (NET_)          -1300         dedup (DEDUP_)
 *   -500           shard (SHARD_)      -1400         filter (FILTER_)
 *   -600 .. -699   clip (CLIP_: model -600, tokenizer -650, hub -660)
 *   -700           crawl (CRAWL_)      -1500         queries + balance (QRY_, BAL_)
 *   -800           add (ADD_)          -1600         audit (AUDIT_)
 *   -1700          run, merge, slurm (RUN_, MRG_)  -1800  parquet (PQ_)
 *   -1900 .. -9999 free
 * tests/unit/test_common.c (test_status_codes_unique_and_in_range) includes
 * every module's public header and checks, from a list written in the test,
 * that no two public codes are equal and that each lies in its module's
 * range: a new code in a public header must be added to that list. */
enum wp_status {
    WP_OK = 0,
    WP_ENOMEM = -1,  /* an allocation failed */
    WP_EIO = -2,     /* a read, write, fsync or rename failed */
    WP_EINVAL = -3,  /* bad argument or bad input */
    WP_ELIMIT = -4,  /* a named maximum was exceeded */
    WP_ESTOP = -5,   /* the run was asked to stop (Ctrl-C) */
    WP_ENOENT = -6,  /* a file or record does not exist */
    WP_EFORMAT = -7, /* input is not in the expected format */
};

typedef struct wp_err {
    int code;
    char msg[WP_ERR_MAX];
} wp_err;

/* Fills e (if not NULL) with code and a printf-style message; returns code so
 * that `return wp_err_set(err, WP_EIO, "...")` reads naturally. Cannot fail;
 * an over-long message is truncated. */
int wp_err_set(wp_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int wp_err_vset(wp_err *e, int code, const char *fmt, va_list ap);
/* Prepends "prefix: " to e's message, keeping its code; returns the code. */
int wp_err_prefix(wp_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wp_err_clear(wp_err *e);

/* ---- arenas ---------------------------------------------------------- */

/* A bump allocator for memory that dies together (one page, one batch).
 * wp_arena_new returns NULL when out of memory. wp_arena_alloc returns
 * 16-byte aligned memory or NULL; it never returns memory of an earlier
 * block after wp_arena_reset, which keeps the first block and frees the
 * rest. */
typedef struct wp_arena wp_arena;
wp_arena *wp_arena_new(size_t block_size);
void *wp_arena_alloc(wp_arena *a, size_t n);
void *wp_arena_calloc(wp_arena *a, size_t n);
char *wp_arena_strndup(wp_arena *a, const char *s, size_t n);
char *wp_arena_strdup(wp_arena *a, const char *s);
/* printf into the arena; NULL when out of memory or fmt is bad. */
char *wp_arena_sprintf(wp_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t wp_arena_used(const wp_arena *a);
void wp_arena_reset(wp_arena *a);
void wp_arena_free(wp_arena *a);

/* ---- growable buffers ------------------------------------------------ */

/* A byte buffer that always keeps a NUL after its data (so data can be used
 * as a C string when it holds text). A zeroed wp_buf is an empty buffer.
 * Appends return 0 or WP_ENOMEM, leaving the buffer unchanged on failure. */
typedef struct wp_buf {
    char *data;
    size_t len;
    size_t cap;
} wp_buf;

/* The slow half of wp_buf_reserve: reallocates. */
int wp_buf_grow(wp_buf *b, size_t extra);

/* Makes room for extra more bytes (and the NUL). Returns 0 or WP_ENOMEM.
 * Inline: text cleaning and JSON building append a few bytes at a time,
 * and the common case is a comparison. */
static inline int wp_buf_reserve(wp_buf *b, size_t extra)
{
    return b->cap > b->len && extra < b->cap - b->len ? 0 : wp_buf_grow(b, extra);
}

static inline int wp_buf_append(wp_buf *b, const void *p, size_t n)
{
    if (wp_buf_reserve(b, n) != 0)
        return WP_ENOMEM;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int wp_buf_putc(wp_buf *b, int c)
{
    if (wp_buf_reserve(b, 1) != 0)
        return WP_ENOMEM;
    b->data[b->len++] = (char)c;
    b->data[b->len] = '\0';
    return 0;
}

int wp_buf_puts(wp_buf *b, const char *s);
int wp_buf_printf(wp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wp_buf_reset(wp_buf *b); /* len = 0, memory kept */
void wp_buf_free(wp_buf *b);  /* memory released, buffer zeroed */
/* Hands the buffer's memory to the caller (who frees it with free()); the
 * buffer is left empty. Returns an empty string, never NULL, unless out of
 * memory. */
char *wp_buf_steal(wp_buf *b);

/* ---- hashing --------------------------------------------------------- */

#define WP_SHA256_LEN 32
#define WP_SHA256_HEX (2 * WP_SHA256_LEN)
#define WP_UID_LEN    16 /* a pair uid is the first 16 bytes of a SHA-256 */
#define WP_UID_HEX    (2 * WP_UID_LEN)

typedef struct wp_sha256 wp_sha256;
/* Incremental SHA-256 (OpenSSL's EVP). _new returns NULL when out of memory;
 * _update and _final return 0 or WP_EINVAL if the library refused. */
wp_sha256 *wp_sha256_new(void);
int wp_sha256_update(wp_sha256 *h, const void *p, size_t n);
int wp_sha256_final(wp_sha256 *h, uint8_t out[WP_SHA256_LEN]);
void wp_sha256_free(wp_sha256 *h);
/* One-shot SHA-256; returns 0 or WP_ENOMEM. */
int wp_sha256_buf(const void *p, size_t n, uint8_t out[WP_SHA256_LEN]);
/* Writes 2n lowercase hex digits and a NUL to out. Cannot fail. */
void wp_hex(const uint8_t *p, size_t n, char *out);
/* The value (0..15) of one hex digit, either case (a byte or a code point),
 * or -1 for anything else. The one hex decoder: use it, not a copy. */
int wp_hex_digit(uint32_t c);
/* Decodes 2n hex digits (either case) into n bytes of out. Returns 0, or
 * WP_EINVAL at the first non-digit (out then partly written). */
int wp_unhex(const char *hex, size_t n, uint8_t *out);

/* The stable uid of an (image URL, text) pair: hex of the first 16 bytes of
 * SHA-256(url || 0x00 || text). The same pair from any source gets the same
 * uid. Returns 0 or WP_ENOMEM. */
int wp_pair_uid(const char *url, size_t url_len, const char *text, size_t text_len,
                char out[WP_UID_HEX + 1]);

/* 64-bit FNV-1a, for hash tables and deterministic partitioning; cannot fail. */
uint64_t wp_fnv1a64(const void *p, size_t n);

/* splitmix64's finaliser: every input bit moves every output bit (seeded
 * shuffles and draws that must not change between versions). */
static inline uint64_t wp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The next value of the splitmix64 sequence whose state is *s (advanced). */
static inline uint64_t wp_splitmix64(uint64_t *s)
{
    return wp_mix64(*s += 0x9e3779b97f4a7c15ULL);
}

/* ---- parts: --part I/N (common/part.c, docs/scale-out.md) ------------ */

/* Part i of n (1-based). n <= 1 means the whole work: every item is in it.
 * The one rule every stage uses: an item with key k belongs to part
 * (k mod n) + 1, where k is the stage's partition key (wp_part_key_*). */
typedef struct wp_part {
    int i, n;
} wp_part;

#define WP_PART_ALL ((wp_part){1, 1})

/* Parses "I/N" (1 <= I <= N <= 1000000) into *p. Returns 0 or WP_EINVAL
 * (p unchanged). */
int wp_part_parse(const char *s, wp_part *p);
/* 1 when p is the whole work (n <= 1). */
int wp_part_all(const wp_part *p);
/* 1 when key k belongs to part p. */
int wp_part_has(const wp_part *p, uint64_t k);
/* The key of a pair uid: its first 8 bytes, big-endian (a uid is already
 * a hash, so its prefix spreads evenly). */
uint64_t wp_part_key_uid(const uint8_t uid[WP_UID_LEN]);
/* The same from the uid's hex form; a string that is not 16+ hex digits
 * gets the FNV-1a of its bytes. */
uint64_t wp_part_key_hex(const char *hex);
/* The key of an URL's host: FNV-1a of the lowercased host (userinfo and
 * port left out; an URL without "//" hashes as a whole), so every URL of one
 * host is in the same part. */
uint64_t wp_part_key_host(const char *url, size_t len);
/* Items numbered 0..total-1 cut into n contiguous ranges: part p takes
 * [*lo, *hi) = [floor((i-1) total / n), floor(i total / n)). */
void wp_part_range(const wp_part *p, int64_t total, int64_t *lo, int64_t *hi);

/* ---- clocks ---------------------------------------------------------- */

double wp_now(void);         /* monotonic seconds */
int64_t wp_unix_time(void);  /* wall clock, whole seconds since 1970 */
double wp_cpu_time(void);    /* CPU seconds used by this process */
size_t wp_peak_rss_kb(void); /* peak resident set size, 0 if unknown */

/* ---- files ----------------------------------------------------------- */

#define WP_PATH_MAX 4096

/* mkdir -p; existing directories are fine. Returns 0 or WP_EIO. */
int wp_mkdir_p(const char *path, wp_err *err);
/* Writes data to path durably: a temporary file in the same directory is
 * written, fsync'ed and renamed over path, then the directory is fsync'ed.
 * A crash leaves either the old file or the new one, never a mix. */
int wp_write_file_atomic(const char *path, const void *data, size_t n, wp_err *err);
/* Reads a whole file into out (replacing its contents). Fails with WP_ELIMIT
 * if it is larger than max bytes, WP_ENOENT if missing, WP_EIO otherwise. */
int wp_read_file(const char *path, size_t max, wp_buf *out, wp_err *err);
int wp_fsync_dir(const char *dir, wp_err *err);
/* Joins dir and name into out (size WP_PATH_MAX); WP_ELIMIT if too long. */
int wp_path_join(char *out, const char *dir, const char *name, wp_err *err);
int wp_file_exists(const char *path);
/* Makes sure the process may hold need open files: raises the soft
 * RLIMIT_NOFILE up to the hard limit when needed. Returns 0, or WP_ELIMIT
 * with a message naming what (e.g. "fetch --parallel 512") and the ulimit
 * to ask for, so a run fails at start instead of midway with EMFILE. */
int wp_fd_reserve(int64_t need, const char *what, wp_err *err);

/* ---- memory budget (common/mem.c) -------------------------------------- */

/* The process's memory budget, --max-memory (docs/security.md, "Resource
 * budgets"). Unless set, a stage running `workers` threads gets
 * wp_mem_default(workers): 1 GiB plus 512 MiB per worker, counting at least
 * two workers (2 GiB on a 2-core machine, well inside 24 GB), and at most
 * half the physical memory when that is more than 2 GiB. Stages split it
 * among what grows with their input (fetch, encode: half for decoded
 * pixels, image/budget.c; encode: its batch) and refuse to start, naming
 * the option to change, when it is too low for one unit of work. */
#define WP_MEM_MIN ((int64_t)64 << 20) /* the smallest --max-memory accepted */
int64_t wp_mem_default(int workers);
/* Sets the budget in bytes (0: back to the default). */
void wp_mem_set(int64_t bytes);
/* The budget for a stage of `workers` threads: what wp_mem_set gave, else
 * wp_mem_default(workers). */
int64_t wp_mem_budget(int workers);
/* 1 when --max-memory was given (wp_mem_set with bytes > 0). */
int wp_mem_is_set(void);
/* Parses a size: digits with an optional K, M, G or T suffix (powers of
 * 1024; KiB, MB... accepted). Returns 0 and *out, or WP_EINVAL. */
int wp_mem_parse(const char *s, int64_t *out, wp_err *err);

/* ---- UTF-8 ----------------------------------------------------------- */

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int wp_utf8_valid(const char *s, size_t n);
/* Decodes the character at s (at most n bytes) into *cp and returns its
 * length (1..4), or 0 when s starts with an invalid sequence or n is 0. */
size_t wp_utf8_get(const char *s, size_t n, uint32_t *cp);
/* Appends s[0..n) to out with every invalid sequence replaced by U+FFFD.
 * Returns the number of replacements, or WP_ENOMEM. */
long wp_utf8_repair(const char *s, size_t n, wp_buf *out);
/* The largest m <= max such that s[0..m) ends on a character boundary of the
 * valid UTF-8 string s of length n. Cannot fail. */
size_t wp_utf8_floor(const char *s, size_t n, size_t max);
/* Writes code point cp as UTF-8 (1 to 4 bytes) to out and returns the
 * length; a surrogate or a value above U+10FFFF is written as U+FFFD, so the
 * result is always valid. The one UTF-8 encoder: use it, not a copy. */
size_t wp_utf8_put(uint32_t cp, char out[4]);
/* wp_utf8_put onto b. Returns 0 or WP_ENOMEM. */
int wp_utf8_append(wp_buf *b, uint32_t cp);
/* The length of s[0..n) without a character cut short at its end (a lead
 * byte and fewer continuation bytes than it announces). Cannot fail. */
size_t wp_utf8_uncut(const char *s, size_t n);
/* vsnprintf into out[0..n) (n > 0) that, when the text does not fit, cuts
 * it before the character that does not fit whole instead of inside it.
 * The one way witpipe formats a message into a fixed buffer (wp_err,
 * events, CLI messages). Returns the length written. */
size_t wp_vformat(char *out, size_t n, const char *fmt, va_list ap);
/* Output hygiene, the one policy for text shown on a terminal: appends
 * s[0..n) to out as valid UTF-8 (an invalid sequence becomes U+FFFD, as in
 * wp_utf8_repair) in which no control character remains: C0 and DEL are
 * written as the visible text \xHH and C1 (U+0080..U+009F) as \u00HH, so
 * no escape sequence from input rows reaches the terminal. Tab is kept.
 * Returns 0 or WP_ENOMEM. JSON output needs no such pass: wp_json escapes
 * and repairs. */
int wp_utf8_printable(const char *s, size_t n, wp_buf *out);

/* ---- JSON writing ---------------------------------------------------- */

/* Policy: witpipe writes every JSON text (catalog columns such as
 * pairs.extra and runs.params / runs.counts, shard sample and manifest
 * files, --log-json lines, CLI --json output) with this writer, and reads
 * JSON with jansson. No json_dumps, no printf-built JSON: the writer places
 * commas, escapes strings per RFC 8259 section 7 ('"', '\\' and control
 * characters; nothing else), writes only valid UTF-8 (each invalid input
 * sequence becomes U+FFFD, as wp_utf8_repair), writes NaN and infinities as
 * null and reals in a short form that reads back exactly: between 1e-5 and
 * 1e15 the fewest decimals that do (0.1, 0.00001), elsewhere the shortest
 * %g (with ".0" when integral, so they read back as reals). Its bytes are jansson's for the
 * same calls (JSON_COMPACT, or JSON_INDENT(n) after wp_json_set_indent;
 * keys in call order as JSON_PRESERVE_ORDER), except reals: jansson's
 * default writes 17 digits (0.1 as 0.10000000000000001), which
 * wp_json_real_prec(j, key, v, 17) reproduces.
 *
 *     wp_buf b = {0};
 *     wp_json j;
 *     wp_json_init(&j, &b);
 *     wp_json_obj_begin(&j, NULL);
 *     wp_json_str(&j, "alt", alt);
 *     wp_json_int(&j, "width", 640);
 *     wp_json_obj_end(&j);
 *     if (wp_json_finish(&j) != 0) ... (b.data holds {"alt":"...","width":640})
 *
 * Every call takes the member's key inside an object and NULL elsewhere,
 * and returns the writer's sticky status: 0, WP_ENOMEM, WP_EINVAL (a key
 * where none belongs or none where one does, an unbalanced end, a second
 * top-level value) or WP_ELIMIT (nesting past WP_JSON_DEPTH). After an error
 * every call does nothing and returns it, so a caller may check only
 * wp_json_finish. The text is appended to the caller's buffer. */
#define WP_JSON_DEPTH 32

typedef struct wp_json {
    wp_buf *b;
    int status;
    int depth;
    int done;                         /* a complete top-level value was written */
    int indent;                       /* spaces per level, 0: compact */
    int ascii;                        /* escape every non-ASCII character */
    unsigned char obj[WP_JSON_DEPTH]; /* 1: object, 0: array, per level */
    uint32_t count[WP_JSON_DEPTH];    /* values written at that level */
} wp_json;

void wp_json_init(wp_json *j, wp_buf *b); /* appends to b; cannot fail */
/* Pretty layout: each member on its own line, indented n spaces a level
 * (0, the default, is compact; at most 16). Call before the first value. */
void wp_json_set_indent(wp_json *j, int n);
/* ASCII-only output: every character above U+007F written as \uXXXX (a
 * UTF-16 surrogate pair above U+FFFF), as Python's json.dump does by
 * default. Call before the first value. */
void wp_json_set_ascii(wp_json *j, int on);
int wp_json_obj_begin(wp_json *j, const char *key);
int wp_json_obj_end(wp_json *j);
int wp_json_arr_begin(wp_json *j, const char *key);
int wp_json_arr_end(wp_json *j);
/* A string (NULL writes null); _strn takes n bytes, NULs included (\u0000). */
int wp_json_str(wp_json *j, const char *key, const char *s);
int wp_json_strn(wp_json *j, const char *key, const char *s, size_t n);
int wp_json_int(wp_json *j, const char *key, int64_t v);
int wp_json_uint(wp_json *j, const char *key, uint64_t v);
int wp_json_real(wp_json *j, const char *key, double v);
/* A real with "%.<digits>g" (jansson's JSON_REAL_PRECISION(digits)). */
int wp_json_real_prec(wp_json *j, const char *key, double v, int digits);
int wp_json_bool(wp_json *j, const char *key, int v);
int wp_json_null(wp_json *j, const char *key);
/* A value already written as JSON by this writer (copied verbatim; NULL or
 * "" writes null). */
int wp_json_raw(wp_json *j, const char *key, const char *json);
/* 0 when exactly one complete value was written, else the status (WP_EINVAL
 * for an unclosed object or array, or nothing written). */
int wp_json_finish(wp_json *j);

/* jansson trees. A few outputs are a jansson tree first, because the same
 * tree is also read (the audit renders report.html from its report.json
 * tree; `run` merges a parsed config). They are written through this writer
 * all the same, so every JSON byte witpipe emits follows the one policy
 * above: jansson holds values, wp_json writes them.
 *
 * Flags: WP_JSON_SORT_KEYS writes object members in strcmp order of their
 * keys (else in the tree's insertion order); WP_JSON_PREC(d) writes reals
 * with d significant digits (else the shortest exact form). For
 * wp_json_tree_text also WP_JSON_INDENT(n) and WP_JSON_ASCII (for
 * wp_json_tree those are the writer's own settings). */
#define WP_JSON_INDENT(n) ((n)&0x1F)
#define WP_JSON_SORT_KEYS 0x100
#define WP_JSON_ASCII     0x200
#define WP_JSON_PREC(d)   (((d)&0x1F) << 10)
struct json_t;
/* Writes jansson value v (NULL writes null) as one value, the member key
 * inside an object (NULL elsewhere). Returns the writer's sticky status. */
int wp_json_tree(wp_json *j, const char *key, const struct json_t *v, int flags);
/* v as a NUL-terminated text the caller frees, or NULL when out of memory
 * or nested deeper than WP_JSON_DEPTH. */
char *wp_json_tree_text(const struct json_t *v, int flags);

/* ---- reporting ------------------------------------------------------- */

typedef enum wp_level { WP_LOG_DEBUG, WP_LOG_INFO, WP_LOG_WARN, WP_LOG_ERROR } wp_level;

/* Counters a long stage hands to its reporter. total is 0 when unknown. */
typedef struct wp_progress {
    const char *stage;
    uint64_t done;
    uint64_t total;
    uint64_t errors;
    uint64_t bytes;
    /* What done and total count, for display: NULL for items (images,
     * pairs, pages), or "bytes" when the stage can only measure its input
     * (a compressed list), shown in MB. */
    const char *unit;
} wp_progress;

/* Library code reports through this; the command layer decides how to show
 * it (TTY progress line, JSON lines, or nothing). Any member may be NULL. */
typedef struct wp_reporter {
    void (*progress)(void *ud, const wp_progress *p);
    /* kind is a short machine-readable word ("bad_row", "http_error");
     * msg is one line, with the location (file:line, URL) in it. */
    void (*event)(void *ud, wp_level level, const char *kind, const char *msg);
    void *ud;
} wp_reporter;

void wp_report_progress(const wp_reporter *r, const wp_progress *p);
void wp_report_event(const wp_reporter *r, wp_level level, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- decision reasons (common/reason.c) ------------------------------- */

/* The length of the part of a decision reason that says its kind, for
 * counts: a reason naming a group by its keeper's pair id (dedup's
 * "near:ID" and "semantic:ID") counts as "near" / "semantic"; any other
 * reason ("exact", "contaminated:SET", a filter's) is its own kind, whole.
 * reason NULL: 0. */
size_t wp_reason_kind_len(const char *reason);

/* ---- stopping -------------------------------------------------------- */

/* Set from a signal handler (Ctrl-C): long loops poll wp_stop_requested()
 * and wind down, saving what they have done. Async-signal-safe. */
void wp_request_stop(void);
int wp_stop_requested(void);
void wp_clear_stop(void);

/* ---- half floats (common/half.c) --------------------------------------- */

/* IEEE half / bfloat16 to float, exact (subnormals, inf, NaN kept). */
float wp_f16_to_f32(uint16_t h);
float wp_bf16_to_f32(uint16_t h);
uint16_t wp_f32_to_f16(float f); /* round to nearest even */
/* n little-endian halves at src to floats: F16C when the CPU has it, else
 * portable; both exact. */
void wp_f16_convert(const void *src, float *dst, size_t n);
void wp_f16_convert_f16c(const void *src, float *dst, size_t n); /* F16C only */

#endif /* WP_H */
