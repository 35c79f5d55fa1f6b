/*
 * clip/tokenizer.c: CLIP's byte-level BPE (OpenAI simple_tokenizer.py):
 * vocabulary loading from either layout, the pre-tokenizer regex done with
 * a generated table of character classes, and the merge loop over
 * vocabulary ids.
 *
 * Symbols are vocabulary ids from the start: byte b is the id of
 * bytes_to_unicode()[b] (or of that character + "</w>" at the end of a
 * word), and a merge (a, b) is looked up in an open-addressing table keyed
 * by the pair of ids, giving its rank and the merged id. Results per word
 * are cached (bounded; the cache restarts when full).
 */
#include "clip/tok_int.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PAIR_SLOTS      (1u << 17) /* power of two, > 2 x CLIP_TOK_MERGES */
#define STR_SLOTS       (1u << 17) /* vocabulary strings while loading */
#define CACHE_SLOTS     (CLIP_TOK_CACHE_MAX * 2)
#define WORD_MAX_CACHED 256 /* longer words are not cached */

int clip_tok_clean_u32(const char *text, size_t n, clip_tok_u32 *out);

typedef struct pair_slot {
    uint64_t key; /* (a << 32 | b) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} pair_slot;

typedef struct cache_slot {
    const char *word; /* in the cache arena; NULL = empty */
    uint32_t len;
    uint32_t n_ids;
    const int32_t *ids;
} cache_slot;

struct clip_tok {
    int32_t byte_id[256];  /* id of bytes_to_unicode()[b] */
    int32_t byte_wid[256]; /* ... followed by "</w>" */
    int32_t sot, eot;
    pair_slot *pairs;
    pthread_mutex_t lock;
    cache_slot *cache;
    size_t cache_n;
    wp_arena *cache_arena;
};

/* ---- bytes_to_unicode --------------------------------------------------- */

/* OpenAI's bytes_to_unicode(): printable Latin-1 bytes map to themselves,
 * the other 68 to U+0100 upwards in byte order. order[] lists the bytes in
 * the order their characters open the vocabulary. */
static void byte_chars(uint32_t ch[256], uint8_t order[256])
{
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable =
            (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) {
            ch[b] = (uint32_t)b;
            order[k++] = (uint8_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        int printable =
            (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) {
            ch[b] = 256u + (uint32_t)extra++;
            order[k++] = (uint8_t)b;
        }
    }
}

/* ---- vocabulary strings while loading ----------------------------------- */

typedef struct str_map {
    const char **key;
    uint32_t *klen;
    int32_t *id;
    wp_arena *arena;
} str_map;

static int str_map_init(str_map *m)
{
    m->key = calloc(STR_SLOTS, sizeof *m->key);
    m->klen = calloc(STR_SLOTS, sizeof *m->klen);
    m->id = calloc(STR_SLOTS, sizeof *m->id);
    m->arena = wp_arena_new(1 << 20);
    return (m->key && m->klen && m->id && m->arena) ? 0 : WP_ENOMEM;
}

static void str_map_free(str_map *m)
{
    free(m->key);
    free(m->klen);
    free(m->id);
    wp_arena_free(m->arena);
}

static size_t str_slot(const str_map *m, const char *s, size_t n)
{
    size_t h = (size_t)wp_fnv1a64(s, n) & (STR_SLOTS - 1);
    while (m->key[h] != NULL && !(m->klen[h] == n && memcmp(m->key[h], s, n) == 0))
        h = (h + 1) & (STR_SLOTS - 1);
    return h;
}

/* Returns 0, 1 if s was already there (first id kept), WP_ELIMIT or WP_ENOMEM. */
static int str_map_put(str_map *m, const char *s, size_t n, int32_t id, size_t *count)
{
    if (*count >= STR_SLOTS / 2)
        return WP_ELIMIT;
    size_t h = str_slot(m, s, n);
    if (m->key[h] != NULL)
        return 1;
    char *k = wp_arena_strndup(m->arena, s, n);
    if (k == NULL)
        return WP_ENOMEM;
    m->key[h] = k;
    m->klen[h] = (uint32_t)n;
    m->id[h] = id;
    (*count)++;
    return 0;
}

static int32_t str_map_get(const str_map *m, const char *s, size_t n)
{
    size_t h = str_slot(m, s, n);
    return m->key[h] != NULL ? m->id[h] : -1;
}

/* ---- merge table -------------------------------------------------------- */

static pair_slot *pair_find(pair_slot *t, int32_t a, int32_t b)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 47) & (PAIR_SLOTS - 1);
    while (t[h].key != 0 && t[h].key != key)
        h = (h + 1) & (PAIR_SLOTS - 1);
    return &t[h]; /* the pair's slot, or the empty slot where it would go */
}

static int32_t pair_rank(const clip_tok *t, int32_t a, int32_t b, int32_t *merged)
{
    pair_slot *s = pair_find(t->pairs, a, b);
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    if (s->key != key)
        return -1;
    *merged = s->merged;
    return s->rank;
}

/* ---- building a tokenizer ------------------------------------------------ */

static clip_tok *tok_alloc(void)
{
    clip_tok *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->pairs = calloc(PAIR_SLOTS, sizeof *t->pairs);
    t->cache = calloc(CACHE_SLOTS, sizeof *t->cache);
    t->cache_arena = wp_arena_new(1 << 20);
    if (t->pairs == NULL || t->cache == NULL || t->cache_arena == NULL ||
        pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->pairs);
        free(t->cache);
        wp_arena_free(t->cache_arena);
        free(t);
        return NULL;
    }
    return t;
}

void clip_tok_free(clip_tok *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->pairs);
    free(t->cache);
    wp_arena_free(t->cache_arena);
    free(t);
}

/* Fills the byte ids, the special ids and the merge table from the vocabulary
 * map and the merge lines (text, "a b" per line, the first line skipped if it
 * starts with "#version"). */
static int tok_finish(clip_tok *t, const str_map *vocab, const char *merges, size_t mlen,
                      const char *where, wp_err *err)
{
    uint32_t ch[256];
    uint8_t order[256];
    byte_chars(ch, order);
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n = wp_utf8_put(ch[b], s);
        t->byte_id[b] = str_map_get(vocab, s, n);
        memcpy(s + n, "</w>", 4);
        t->byte_wid[b] = str_map_get(vocab, s, n + 4);
        if (t->byte_id[b] < 0 || t->byte_wid[b] < 0)
            return wp_err_set(err, CLIP_TOK_EVOCAB, "%s: no token for byte 0x%02X", where, b);
    }
    t->sot = str_map_get(vocab, "<|startoftext|>", 15);
    t->eot = str_map_get(vocab, "<|endoftext|>", 13);
    if (t->sot < 0 || t->eot < 0)
        return wp_err_set(err, CLIP_TOK_EVOCAB, "%s: no <|startoftext|> / <|endoftext|> token",
                          where);

    const char *p = merges, *end = merges + mlen;
    int line = 0, rank = 0;
    char buf[1024];
    while (p < end && rank < CLIP_TOK_MERGES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        size_t n = (size_t)(le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        const char *lp = p;
        p = nl ? nl + 1 : end;
        if (line == 1 && n >= 8 && memcmp(lp, "#version", 8) == 0)
            continue;
        if (n == 0)
            continue;
        const char *sp = memchr(lp, ' ', n);
        if (sp == NULL || sp == lp || sp == lp + n - 1 || n >= sizeof buf)
            return wp_err_set(err, CLIP_TOK_EVOCAB, "%s:%d: not a merge line", where, line);
        size_t na = (size_t)(sp - lp), nb = n - na - 1;
        memcpy(buf, lp, na);
        memcpy(buf + na, sp + 1, nb);
        int32_t a = str_map_get(vocab, lp, na);
        int32_t b = str_map_get(vocab, sp + 1, nb);
        int32_t m = str_map_get(vocab, buf, na + nb);
        if (a < 0 || b < 0 || m < 0)
            return wp_err_set(err, CLIP_TOK_EVOCAB, "%s:%d: merge of unknown tokens '%.*s'", where,
                              line, (int)n, lp);
        pair_slot *s = pair_find(t->pairs, a, b);
        uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
        /* a repeated merge takes its last rank, as dict(zip(merges, ...)) does */
        s->key = key;
        s->rank = rank;
        s->merged = m;
        rank++;
    }
    return 0;
}

/* Reads a whole gzip (or plain) file. */
static int read_gz(const char *path, wp_buf *out, wp_err *err)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: cannot open: %s", path,
                          strerror(errno ? errno : EIO));
    int rc = 0;
    char chunk[1 << 16];
    for (;;) {
        int n = gzread(f, chunk, sizeof chunk);
        if (n < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            rc = wp_err_set(err, CLIP_TOK_EVOCAB, "%s: gzip error: %s", path, msg);
            break;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > CLIP_TOK_FILE_MAX) {
            rc = wp_err_set(err, WP_ELIMIT, "%s: larger than %u bytes", path, CLIP_TOK_FILE_MAX);
            break;
        }
        if (wp_buf_append(out, chunk, (size_t)n) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
            break;
        }
    }
    gzclose(f);
    return rc;
}

int clip_tok_open_bpe_gz(const char *path, clip_tok **out, wp_err *err)
{
    *out = NULL;
    wp_buf text = {0};
    str_map vocab = {0};
    clip_tok *t = NULL;
    int rc = read_gz(path, &text, err);
    if (rc != 0)
        goto out;
    if (str_map_init(&vocab) != 0 || (t = tok_alloc()) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* The vocabulary as simple_tokenizer.py builds it: the 256 byte
     * characters, the same with "</w>", one token per merge, then the two
     * special tokens. */
    uint32_t ch[256];
    uint8_t order[256];
    byte_chars(ch, order);
    size_t count = 0;
    int32_t id = 0;
    char s[16];
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 256; i++) {
            size_t n = wp_utf8_put(ch[order[i]], s);
            if (w) {
                memcpy(s + n, "</w>", 4);
                n += 4;
            }
            if ((rc = str_map_put(&vocab, s, n, id++, &count)) < 0)
                goto nomem;
        }
    const char *p = text.data, *end = text.data + text.len;
    int line = 0, merges = 0;
    const char *mstart = NULL;
    wp_buf joined = {0};
    while (p < end && merges < CLIP_TOK_MERGES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *lp = p;
        p = nl ? nl + 1 : end;
        if (line++ == 0) /* the "#version" line */
            continue;
        if (mstart == NULL)
            mstart = lp;
        const char *sp = memchr(lp, ' ', (size_t)(le - lp));
        if (sp == NULL) {
            wp_buf_free(&joined);
            rc = wp_err_set(err, CLIP_TOK_EVOCAB, "%s:%d: not a merge line", path, line);
            goto out;
        }
        joined.len = 0;
        if (wp_buf_append(&joined, lp, (size_t)(sp - lp)) != 0 ||
            wp_buf_append(&joined, sp + 1, (size_t)(le - sp - 1)) != 0) {
            wp_buf_free(&joined);
            goto nomem;
        }
        if ((rc = str_map_put(&vocab, joined.data, joined.len, id++, &count)) < 0) {
            wp_buf_free(&joined);
            goto nomem;
        }
        merges++;
    }
    wp_buf_free(&joined);
    if (merges < CLIP_TOK_MERGES) {
        rc = wp_err_set(err, CLIP_TOK_EVOCAB, "%s: %d merges, CLIP has %d", path, merges,
                        CLIP_TOK_MERGES);
        goto out;
    }
    if ((rc = str_map_put(&vocab, "<|startoftext|>", 15, id++, &count)) < 0 ||
        (rc = str_map_put(&vocab, "<|endoftext|>", 13, id++, &count)) < 0)
        goto nomem;
    rc = tok_finish(t, &vocab, mstart, (size_t)(end - mstart), path, err);
    goto out;
nomem:
    rc = wp_err_set(err, rc == WP_ELIMIT ? WP_ELIMIT : WP_ENOMEM, "%s: %s", path,
                    rc == WP_ELIMIT ? "too many tokens" : "out of memory");
out:
    wp_buf_free(&text);
    str_map_free(&vocab);
    if (rc == 0)
        *out = t;
    else
        clip_tok_free(t);
    return rc;
}

/* Fills vocab from a JSON object of token -> id. */
static int vocab_from_json(json_t *obj, str_map *vocab, const char *where, wp_err *err)
{
    size_t count = 0;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= CLIP_TOK_VOCAB * 4)
            return wp_err_set(err, CLIP_TOK_EVOCAB, "%s: token '%s' has no valid id", where, key);
        int rc = str_map_put(vocab, key, strlen(key), (int32_t)json_integer_value(val), &count);
        if (rc < 0)
            return wp_err_set(err, rc, "%s: %s", where,
                              rc == WP_ELIMIT ? "too many tokens" : "out of memory");
    }
    return 0;
}

int clip_tok_open_hf(const char *vocab_json, const char *merges_txt, clip_tok **out, wp_err *err)
{
    *out = NULL;
    wp_buf merges = {0};
    str_map vocab = {0};
    clip_tok *t = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    int rc = wp_read_file(merges_txt, CLIP_TOK_FILE_MAX, &merges, err);
    if (rc != 0)
        goto out;
    root = json_load_file(vocab_json, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        rc = wp_err_set(err, wp_file_exists(vocab_json) ? CLIP_TOK_EVOCAB : WP_ENOENT, "%s:%d: %s",
                        vocab_json, root ? 1 : jerr.line, root ? "not a JSON object" : jerr.text);
        goto out;
    }
    if (str_map_init(&vocab) != 0 || (t = tok_alloc()) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", vocab_json);
        goto out;
    }
    if ((rc = vocab_from_json(root, &vocab, vocab_json, err)) != 0)
        goto out;
    rc = tok_finish(t, &vocab, merges.data, merges.len, merges_txt, err);
out:
    json_decref(root);
    wp_buf_free(&merges);
    str_map_free(&vocab);
    if (rc == 0)
        *out = t;
    else
        clip_tok_free(t);
    return rc;
}

int clip_tok_open_hf_json(const char *tokenizer_json, clip_tok **out, wp_err *err)
{
    *out = NULL;
    wp_buf merges = {0};
    str_map vocab = {0};
    clip_tok *t = NULL;
    json_error_t jerr;
    int rc;
    json_t *root = json_load_file(tokenizer_json, 0, &jerr);
    json_t *model = root ? json_object_get(root, "model") : NULL;
    json_t *jv = model ? json_object_get(model, "vocab") : NULL;
    json_t *jm = model ? json_object_get(model, "merges") : NULL;
    if (root == NULL) {
        rc = wp_err_set(err, wp_file_exists(tokenizer_json) ? CLIP_TOK_EVOCAB : WP_ENOENT,
                        "%s:%d: %s", tokenizer_json, jerr.line, jerr.text);
        goto out;
    }
    if (!json_is_object(jv) || !json_is_array(jm)) {
        rc = wp_err_set(err, CLIP_TOK_EVOCAB, "%s: no BPE model (model.vocab, model.merges)",
                        tokenizer_json);
        goto out;
    }
    if (str_map_init(&vocab) != 0 || (t = tok_alloc()) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", tokenizer_json);
        goto out;
    }
    if ((rc = vocab_from_json(jv, &vocab, tokenizer_json, err)) != 0)
        goto out;
    /* merges are "a b" strings, or ["a", "b"] pairs in newer files: both
     * become merges.txt lines */
    size_t i;
    json_t *m;
    json_array_foreach(jm, i, m)
    {
        int bad = 0;
        if (json_is_string(m)) {
            bad = wp_buf_append(&merges, json_string_value(m), json_string_length(m)) != 0;
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            bad = wp_buf_puts(&merges, json_string_value(json_array_get(m, 0))) != 0 ||
                  wp_buf_putc(&merges, ' ') != 0 ||
                  wp_buf_puts(&merges, json_string_value(json_array_get(m, 1))) != 0;
        } else {
            rc = wp_err_set(err, CLIP_TOK_EVOCAB, "%s: model.merges[%zu] is not a merge",
                            tokenizer_json, i);
            goto out;
        }
        if (bad || wp_buf_putc(&merges, '\n') != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: out of memory", tokenizer_json);
            goto out;
        }
    }
    rc = tok_finish(t, &vocab, merges.data ? merges.data : "", merges.len, tokenizer_json, err);
out:
    json_decref(root);
    wp_buf_free(&merges);
    str_map_free(&vocab);
    if (rc == 0)
        *out = t;
    else
        clip_tok_free(t);
    return rc;
}

int clip_tok_open_dir(const char *dir, clip_tok **out, wp_err *err)
{
    char vj[WP_PATH_MAX], mt[WP_PATH_MAX], gz[WP_PATH_MAX], tj[WP_PATH_MAX];
    int rc;
    *out = NULL;
    if ((rc = wp_path_join(vj, dir, "vocab.json", err)) != 0 ||
        (rc = wp_path_join(mt, dir, "merges.txt", err)) != 0 ||
        (rc = wp_path_join(gz, dir, "bpe_simple_vocab_16e6.txt.gz", err)) != 0 ||
        (rc = wp_path_join(tj, dir, "tokenizer.json", err)) != 0)
        return rc;
    if (wp_file_exists(vj) && wp_file_exists(mt))
        return clip_tok_open_hf(vj, mt, out, err);
    if (wp_file_exists(gz))
        return clip_tok_open_bpe_gz(gz, out, err);
    if (wp_file_exists(tj))
        return clip_tok_open_hf_json(tj, out, err);
    return wp_err_set(err, WP_ENOENT,
                      "%s: no tokenizer (vocab.json + merges.txt, bpe_simple_vocab_16e6.txt.gz "
                      "or tokenizer.json)",
                      dir);
}

/* ---- BPE ---------------------------------------------------------------- */

/* simple_tokenizer.py's bpe(): merges the lowest-ranked adjacent pair, all
 * its occurrences left to right, until no pair has a rank. sym holds the
 * word's initial ids and receives the result; returns the new length.
 * Quadratic: for short words. */
static size_t bpe_merge_short(const clip_tok *t, int32_t *sym, size_t n)
{
    while (n > 1) {
        int32_t best = -1, first = 0, second = 0, merged = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t m;
            int32_t r = pair_rank(t, sym[i], sym[i + 1], &m);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                first = sym[i];
                second = sym[i + 1];
                merged = m;
            }
        }
        if (best < 0)
            break;
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (sym[i] == first && i + 1 < n && sym[i + 1] == second) {
                sym[o++] = merged;
                i += 2;
            } else {
                sym[o++] = sym[i++];
            }
        }
        n = o;
    }
    return n;
}

/* A candidate merge: the pair starting at symbol pos, of rank rank. */
typedef struct bpe_cand {
    int32_t rank;
    uint32_t pos;
} bpe_cand;

static int cand_less(bpe_cand a, bpe_cand b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n)
{
    bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c]))
            c++;
        if (!cand_less(h[c], last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

#define BPE_NONE UINT32_MAX

/* The same result as bpe_merge_short in O(n log n), for long words: the
 * symbols form a linked list, candidate pairs sit in a heap ordered by
 * (rank, position), and all occurrences of the lowest-ranked pair are taken
 * as one batch, left to right, before any pair the batch creates, exactly
 * as Python's pass over the word does. Returns the new length, or
 * (size_t)-1 when out of memory. */
static size_t bpe_merge_long(const clip_tok *t, int32_t *sym, size_t n)
{
    uint32_t *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    bpe_cand *heap = malloc(3 * n * sizeof *heap), *batch = malloc(n * sizeof *batch);
    size_t hn = 0, out = (size_t)-1;
    if (next == NULL || prev == NULL || heap == NULL || batch == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (uint32_t)(i + 1) : BPE_NONE;
        prev[i] = i > 0 ? (uint32_t)(i - 1) : BPE_NONE;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t m, r = pair_rank(t, sym[i], sym[i + 1], &m);
        if (r >= 0)
            heap_push(heap, &hn, (bpe_cand){r, (uint32_t)i});
    }
    while (hn > 0) {
        /* the batch: every candidate of the lowest rank, by position */
        size_t bn = 0;
        int32_t rank = heap[0].rank;
        while (hn > 0 && heap[0].rank == rank)
            batch[bn++] = heap_pop(heap, &hn);
        for (size_t k = 0; k < bn; k++) {
            uint32_t p = batch[k].pos, q;
            int32_t merged;
            if (sym[p] < 0 || (q = next[p]) == BPE_NONE ||
                pair_rank(t, sym[p], sym[q], &merged) != rank)
                continue; /* consumed or changed by an earlier merge */
            sym[p] = merged;
            sym[q] = -1;
            next[p] = next[q];
            if (next[q] != BPE_NONE)
                prev[next[q]] = p;
            /* the pairs the merge creates wait for later batches: their
             * rank differs from this one (a merged token is longer than
             * either part) */
            int32_t m, r;
            if (prev[p] != BPE_NONE && (r = pair_rank(t, sym[prev[p]], sym[p], &m)) >= 0)
                heap_push(heap, &hn, (bpe_cand){r, prev[p]});
            if (next[p] != BPE_NONE && (r = pair_rank(t, sym[p], sym[next[p]], &m)) >= 0)
                heap_push(heap, &hn, (bpe_cand){r, p});
        }
    }
    out = 0;
    for (uint32_t i = 0; i != BPE_NONE; i = next[i])
        sym[out++] = sym[i];
done:
    free(next);
    free(prev);
    free(heap);
    free(batch);
    return out;
}

#define BPE_LONG_WORD 128 /* words longer than this take the heap path */

static size_t bpe_merge(const clip_tok *t, int32_t *sym, size_t n)
{
    return n > BPE_LONG_WORD ? bpe_merge_long(t, sym, n) : bpe_merge_short(t, sym, n);
}

int clip_tok_bpe_paths_agree(const clip_tok *t, const char *w, size_t n)
{
    int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    int agree = -1;
    if (a != NULL && b != NULL) {
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = i + 1 < n ? t->byte_id[(uint8_t)w[i]] : t->byte_wid[(uint8_t)w[i]];
        size_t na = bpe_merge_short(t, a, n), nb = bpe_merge_long(t, b, n);
        agree = na == nb && memcmp(a, b, na * sizeof *a) == 0;
    }
    free(a);
    free(b);
    return agree;
}

typedef struct id_vec {
    int32_t *v;
    size_t n, cap;
} id_vec;

static int ids_push(id_vec *a, const int32_t *p, size_t n)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 32;
        while (cap < a->n + n)
            cap *= 2;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return WP_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    memcpy(a->v + a->n, p, n * sizeof *p);
    a->n += n;
    return 0;
}

/* Looks word up in the cache; on a hit appends its ids to out. 1 hit, 0 miss. */
static int cache_get(clip_tok *t, const char *w, size_t n, id_vec *out, int *rc)
{
    *rc = 0;
    if (n > WORD_MAX_CACHED)
        return 0;
    size_t h = (size_t)wp_fnv1a64(w, n) & (CACHE_SLOTS - 1);
    int hit = 0;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        cache_slot *s = &t->cache[h];
        if (s->word == NULL)
            break;
        if (s->len == n && memcmp(s->word, w, n) == 0) {
            *rc = ids_push(out, s->ids, s->n_ids);
            hit = 1;
            break;
        }
        h = (h + 1) & (CACHE_SLOTS - 1);
    }
    pthread_mutex_unlock(&t->lock);
    return hit;
}

static void cache_put(clip_tok *t, const char *w, size_t n, const int32_t *ids, size_t n_ids)
{
    if (n > WORD_MAX_CACHED)
        return;
    pthread_mutex_lock(&t->lock);
    if (t->cache_n >= CLIP_TOK_CACHE_MAX) {
        memset(t->cache, 0, CACHE_SLOTS * sizeof *t->cache);
        wp_arena_reset(t->cache_arena);
        t->cache_n = 0;
    }
    size_t h = (size_t)wp_fnv1a64(w, n) & (CACHE_SLOTS - 1);
    while (t->cache[h].word != NULL) {
        if (t->cache[h].len == n && memcmp(t->cache[h].word, w, n) == 0)
            goto out; /* another thread got there first */
        h = (h + 1) & (CACHE_SLOTS - 1);
    }
    char *wk = wp_arena_strndup(t->cache_arena, w, n);
    int32_t *ik = wp_arena_alloc(t->cache_arena, n_ids * sizeof *ik);
    if (wk == NULL || ik == NULL)
        goto out; /* caching is optional */
    memcpy(ik, ids, n_ids * sizeof *ik);
    t->cache[h] = (cache_slot){wk, (uint32_t)n, (uint32_t)n_ids, ik};
    t->cache_n++;
out:
    pthread_mutex_unlock(&t->lock);
}

/* Appends the BPE ids of one pre-token (UTF-8 bytes) to out. */
static int bpe_word(clip_tok *t, const char *w, size_t n, id_vec *out)
{
    int rc;
    if (cache_get(t, w, n, out, &rc))
        return rc;
    int32_t small[64];
    int32_t *sym = n <= 64 ? small : malloc(n * sizeof *sym);
    if (sym == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        sym[i] = i + 1 < n ? t->byte_id[(uint8_t)w[i]] : t->byte_wid[(uint8_t)w[i]];
    size_t m = bpe_merge(t, sym, n);
    rc = m == (size_t)-1 ? WP_ENOMEM : ids_push(out, sym, m);
    if (rc == 0)
        cache_put(t, w, n, sym, m);
    if (sym != small)
        free(sym);
    return rc;
}

/* ---- the pre-tokenizer ---------------------------------------------------- */

/* Case-insensitive match of one code point against a lower-case ASCII letter,
 * as the `regex` module's IGNORECASE does (simple case folding). */
static int fold_eq(uint32_t c, char a)
{
    if (c == (uint32_t)a)
        return 1;
    if (a >= 'a' && a <= 'z' && c == (uint32_t)(a - 32))
        return 1;
    return (a == 's' && c == 0x17F) || (a == 'k' && c == 0x212A);
}

static size_t match_lit(const uint32_t *t, size_t n, size_t i, const char *lit)
{
    size_t k = 0;
    for (; lit[k] != '\0'; k++)
        if (i + k >= n || !fold_eq(t[i + k], lit[k]))
            return 0;
    return k;
}

/* The regex module's `\s` (White_Space); after whitespace_clean only ' ' is
 * left, but keep the full set so the function stands on its own. */
static int is_S(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The class CLIP's pattern gives c (CLIP_TOK_PRE_*), from the table generated
 * with the regex module itself, so that letters and numbers of every script
 * fall where they do in Python. */
static int pre_class(uint32_t c)
{
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            return CLIP_TOK_PRE_LETTER;
        if (c >= '0' && c <= '9')
            return CLIP_TOK_PRE_NUMBER;
        return is_S(c) ? CLIP_TOK_PRE_SPACE : CLIP_TOK_PRE_PUNCT;
    }
    size_t lo = 0, hi = clip_tok_pre_ranges_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (clip_tok_pre_ranges[mid].hi < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < clip_tok_pre_ranges_n && clip_tok_pre_ranges[lo].lo <= c)
        return (int)clip_tok_pre_ranges[lo].cls;
    return is_S(c) ? CLIP_TOK_PRE_SPACE : CLIP_TOK_PRE_PUNCT;
}

/* The length of the pre-token at i (0: none starts here), and whether it is
 * a special token (*special = its id). The alternatives in the pattern's
 * order: <|startoftext|>, <|endoftext|>, 's 't 're 've 'm 'll 'd,
 * [\p{L}]+, [\p{N}], [^\s\p{L}\p{N}]+. */
static size_t pretoken_at(const clip_tok *tk, const uint32_t *t, size_t n, size_t i,
                          int32_t *special)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t m;
    *special = -1;
    if (t[i] == '<') {
        if ((m = match_lit(t, n, i, "<|startoftext|>")) != 0) {
            *special = tk->sot;
            return m;
        }
        if ((m = match_lit(t, n, i, "<|endoftext|>")) != 0) {
            *special = tk->eot;
            return m;
        }
    }
    if (t[i] == '\'')
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++)
            if ((m = match_lit(t, n, i, contractions[k])) != 0)
                return m;
    int cls = pre_class(t[i]);
    if (cls == CLIP_TOK_PRE_LETTER) {
        size_t k = i;
        while (k < n && pre_class(t[k]) == CLIP_TOK_PRE_LETTER)
            k++;
        return k - i;
    }
    if (cls == CLIP_TOK_PRE_NUMBER)
        return 1;
    size_t k = i;
    while (k < n && pre_class(t[k]) == CLIP_TOK_PRE_PUNCT)
        k++;
    return k - i; /* 0 for a space or a code point no alternative matches */
}

/* Tokenizes the cleaned text into out (without SOT/EOT), stopping once out
 * holds at least limit ids (0: no limit). */
static int encode_body(clip_tok *t, const char *text, size_t n, id_vec *out, size_t limit,
                       wp_err *err)
{
    clip_tok_u32 clean = {0};
    wp_buf word = {0};
    int rc = clip_tok_clean_u32(text, n, &clean);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < clean.n;) {
        if (limit > 0 && out->n >= limit)
            break;
        int32_t special;
        size_t m = pretoken_at(t, clean.v, clean.n, i, &special);
        if (m == 0) {
            i++;
            continue;
        }
        if (special >= 0) {
            rc = ids_push(out, &special, 1);
        } else {
            word.len = 0;
            rc = clip_tok_u32_to_utf8(clean.v + i, m, &word);
            if (rc == 0)
                rc = bpe_word(t, word.data, word.len, out);
        }
        if (rc != 0)
            goto out;
        i += m;
    }
out:
    if (rc != 0)
        wp_err_set(err, rc, "tokenizer: out of memory");
    clip_tok_u32_free(&clean);
    wp_buf_free(&word);
    return rc;
}

int clip_tok_encode(clip_tok *t, const char *text, size_t n, int32_t **ids, size_t *n_ids,
                    wp_err *err)
{
    id_vec v = {0};
    *ids = NULL;
    *n_ids = 0;
    int rc = ids_push(&v, &t->sot, 1);
    if (rc == 0)
        rc = encode_body(t, text, n, &v, 0, err);
    if (rc == 0)
        rc = ids_push(&v, &t->eot, 1);
    if (rc != 0) {
        free(v.v);
        return wp_err_set(err, rc, "tokenizer: out of memory");
    }
    *ids = v.v;
    *n_ids = v.n;
    return 0;
}

int clip_tok_encode_ctx(clip_tok *t, const char *text, size_t n, int32_t *row, int ctx, wp_err *err)
{
    if (ctx < 2)
        return wp_err_set(err, WP_EINVAL, "tokenizer: context %d is shorter than 2", ctx);
    id_vec v = {0};
    int rc = ids_push(&v, &t->sot, 1);
    if (rc == 0)
        rc = encode_body(t, text, n, &v, (size_t)ctx, err);
    if (rc == 0)
        rc = ids_push(&v, &t->eot, 1);
    if (rc != 0) {
        free(v.v);
        return wp_err_set(err, rc, "tokenizer: out of memory");
    }
    size_t k = v.n < (size_t)ctx ? v.n : (size_t)ctx;
    memcpy(row, v.v, k * sizeof *row);
    row[k - 1] = t->eot;
    for (size_t i = k; i < (size_t)ctx; i++)
        row[i] = 0;
    free(v.v);
    return (int)k;
}
