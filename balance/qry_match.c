/*
 * balance/qry_match.c: MetaCLIP's substring rule for all entries in one
 * pass over each caption.
 *
 * The caption is rewritten first (MetaCLIP's spacing; optional lowercase)
 * into the scratch buffer. Then two indexes of our own, chosen by
 * measurement (bench/bench_balance.sh, 500k entries, 2M captions):
 *
 *  - Entries whose pattern is padded on both sides (all of them under
 *    MetaCLIP's rule) are matched a word at a time: " e " occurs in the
 *    spaced caption exactly when e, split at every space, is a run of the
 *    caption's space-separated tokens. One hash probe per caption token
 *    (prefetched) plus a trie over token ids for multi-word entries: about
 *    7x the byte automaton's speed there, whose ~4M states do not fit in
 *    cache and cost a cache miss per byte.
 *  - The others (MetaCLIP 2 entries ending in CJK, Thai... or punctuation
 *    on a side, so not aligned to spaces) go through an Aho-Corasick
 *    automaton over bytes. Hyperscan was not used: Debian's libhyperscan is
 *    x86-only and compiling 500k literals takes minutes and gigabytes.
 *
 * Automaton layout. The trie is built from the patterns sorted bytewise
 * (each new pattern only extends the last branch, so building needs no
 * searching), then renumbered breadth-first. In BFS order the children of
 * every state are consecutive ids, so a state needs only the id of its
 * first child, its child count, one label byte per state, its failure link
 * and the first state of its failure chain where an entry ends, packed in
 * 16 bytes; a single child's label is kept in the state itself. States with
 * many children get a 256-entry table instead of a scan. The root's table
 * is complete (a missing child is the root itself), so the matching loop
 * never follows a failure link out of the root.
 *
 * Both indexes are read-only once built: any number of threads match at
 * once, each with its own qry_scratch.
 */
#include "balance.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define DENSE_MIN 6 /* states with more children than this get a 256-entry table */
#define NONE      0xffffffffu

typedef struct ac_state {
    uint32_t first; /* first child (BFS id); first of s+1 ends the range */
    uint32_t fail;
    uint32_t out;  /* entry id + 1 ending here, 0 = none */
    uint32_t dict; /* next state on the failure chain with an entry, 0 = none */
} ac_state;

/* What the matching loop reads per byte: 16 bytes, one cache line access.
 * info: INFO_DENSE | table index, or the child count (<= DENSE_MIN) with,
 * for a single child, its label in bits 8-15 (no label read at all). */
typedef struct ac_hot {
    uint32_t first, fail;
    uint32_t rep; /* first state on the failure chain (itself included) with an entry, 0 = none */
    uint32_t info;
} ac_hot;
#define INFO_DENSE 0x80000000u

/* The token index. An entry whose pattern is padded on both sides,
 * " e ", occurs in the spaced caption exactly when e split at every space
 * is a run of consecutive tokens of the caption, a token being the bytes
 * between two consecutive spaces (empty tokens included). So those
 * entries are matched a word at a time: each caption token is looked up
 * once in a hash table of the tokens entries use, and a trie over token
 * ids (depth-1 nodes are the token ids themselves, deeper edges in a hash
 * table keyed by (node, token)) follows multi-word entries. This does one
 * hash probe per word instead of one automaton step per byte (measured by
 * bench/bench_balance.sh: the byte automaton's states do not fit in cache
 * at 500k entries). Entries padded on one side only (MetaCLIP 2's rule
 * next to CJK, Thai... and punctuation) stay in the byte automaton. */
/* A vocabulary slot holds what a lookup compares, so that a probe touches
 * one cache line: the first 8 bytes of the token (zero padded; the whole
 * token for most words) and, for longer ones, where the rest is. */
typedef struct tok_slot {
    uint64_t head;
    uint32_t id1; /* token id + 1, 0 = empty */
    uint32_t len;
    uint32_t off; /* in pool */
    uint32_t h32;
} tok_slot;

typedef struct edge_slot {
    uint64_t key; /* node << 32 | token id */
    uint32_t child;
} edge_slot;

typedef struct tok_index {
    size_t ntok, nslots; /* vocabulary */
    tok_slot *slots;
    uint32_t *off, *len; /* token id -> bytes in pool */
    wp_buf pool;
    size_t nnodes, nodecap; /* node 0 unused; nodes 1..ntok are the tokens */
    uint32_t *out;          /* entry id + 1 ending at the node, 0 = none */
    uint8_t *kids;          /* the node has edges */
    size_t nedges, nedgeslots;
    edge_slot *edges;
    size_t tokcap;
} tok_index;

struct qry_matcher {
    int rule, flags;
    uint32_t nstates, nentries;
    ac_hot *hot;      /* nstates */
    uint32_t *out;    /* out[s]: entry id + 1 ending at s, 0 = none */
    uint32_t *dict;   /* dict[s]: next state on the failure chain with an entry */
    ac_state *st;     /* while building: nstates + 1 (the extra one closes the last range) */
    uint8_t *label;   /* label[s]: the byte on the edge into s */
    uint32_t *dense;  /* dense[s]: table index or NONE */
    uint32_t *tables; /* 256 per dense state: child id, or NONE (the root: 0) */
    uint32_t *same;   /* same[e]: next entry id + 1 with the same pattern, 0 = none */
    size_t ntables;
    tok_index tok; /* the entries padded on both sides, by tokens */
    size_t nac;    /* entries in the automaton */
};

struct qry_scratch {
    wp_buf text;
    uint32_t *hits;
    size_t nhits, cap;
    uint32_t *tids; /* token ids of the caption */
    uint64_t *th;   /* their hashes */
    size_t tcap;
};

/* ---- the rule ------------------------------------------------------------ */

static int is_wrap_punct(unsigned char c)
{
    return c == ',' || c == '.' || c == ';' || c == ':' || c == '?' || c == '!' || c == '`';
}

/* MetaCLIP 2: no padding next to these characters. */
static int no_pad_char(int32_t cp)
{
    utf8proc_category_t cat;
    if ((cp >= 0x0E00 && cp <= 0x0E7F) ||   /* Thai */
        (cp >= 0x0E80 && cp <= 0x0EFF) ||   /* Lao */
        (cp >= 0x0F00 && cp <= 0x0FFF) ||   /* Tibetan */
        (cp >= 0x1000 && cp <= 0x109F) ||   /* Myanmar */
        (cp >= 0xA9E0 && cp <= 0xA9FF) ||   /* Myanmar Extended-B */
        (cp >= 0xAA60 && cp <= 0xAA7F) ||   /* Myanmar Extended-A */
        (cp >= 0x1780 && cp <= 0x17FF) ||   /* Khmer */
        (cp >= 0x19E0 && cp <= 0x19FF) ||   /* Khmer symbols */
        (cp >= 0x1100 && cp <= 0x11FF) ||   /* Hangul Jamo */
        (cp >= 0x2E80 && cp <= 0x2FDF) ||   /* CJK radicals, Kangxi */
        (cp >= 0x3000 && cp <= 0x303F) ||   /* CJK symbols and punctuation */
        (cp >= 0x3040 && cp <= 0x30FF) ||   /* Hiragana, Katakana */
        (cp >= 0x3100 && cp <= 0x31FF) ||   /* Bopomofo, Hangul compat., Kanbun, Katakana ext. */
        (cp >= 0x3200 && cp <= 0x4DBF) ||   /* enclosed CJK, compatibility, Ext. A */
        (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK Unified Ideographs */
        (cp >= 0xAC00 && cp <= 0xD7AF) ||   /* Hangul syllables */
        (cp >= 0xF900 && cp <= 0xFAFF) ||   /* CJK compatibility ideographs */
        (cp >= 0xFF00 && cp <= 0xFFEF) ||   /* half- and fullwidth forms */
        (cp >= 0x20000 && cp <= 0x3FFFF)) { /* CJK Ext. B and later, planes 2-3 */
        return 1;
    }
    cat = utf8proc_category(cp);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* Appends s[0..n), lowercased per code point when fold. */
static int put_text(wp_buf *b, const char *s, size_t n, int fold)
{
    size_t i = 0;
    if (!fold)
        return wp_buf_append(b, s, n);
    if (wp_buf_reserve(b, n + 4) != 0)
        return WP_ENOMEM;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (wp_buf_putc(b, c >= 'A' && c <= 'Z' ? c + 32 : c) != 0)
                return WP_ENOMEM;
            i++;
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k =
                utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0) {
                if (wp_buf_putc(b, c) != 0)
                    return WP_ENOMEM;
                i++;
            } else {
                utf8proc_uint8_t enc[4];
                utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), enc);
                if (wp_buf_append(b, enc, (size_t)m) != 0)
                    return WP_ENOMEM;
                i += (size_t)k;
            }
        }
    }
    return 0;
}

int qry_pattern(const char *e, size_t n, int rule, int flags, wp_buf *out)
{
    int lpad = 1, rpad = 1;
    if (rule == QRY_RULE_METACLIP2 && n > 0) {
        utf8proc_int32_t cp;
        size_t j = n - 1;
        if (utf8proc_iterate((const utf8proc_uint8_t *)e, (utf8proc_ssize_t)n, &cp) > 0 &&
            no_pad_char(cp))
            lpad = 0;
        while (j > 0 && ((unsigned char)e[j] & 0xC0) == 0x80)
            j--;
        if (utf8proc_iterate((const utf8proc_uint8_t *)e + j, (utf8proc_ssize_t)(n - j), &cp) > 0 &&
            no_pad_char(cp))
            rpad = 0;
    }
    if ((lpad && wp_buf_putc(out, ' ') != 0) ||
        put_text(out, e, n, (flags & QRY_IGNORE_CASE) != 0) != 0 ||
        (rpad && wp_buf_putc(out, ' ') != 0))
        return WP_ENOMEM;
    return 0;
}

/* MetaCLIP's spacing() in one pass: the successive replacements only ever
 * add spaces around their own character, so they commute. */
static int spaced(const char *t, size_t n, int fold, wp_buf *b)
{
    char *o;
    wp_buf_reset(b);
    if (fold) {
        wp_buf tmp = {0};
        int rc;
        if (put_text(&tmp, t, n, 1) != 0) {
            wp_buf_free(&tmp);
            return WP_ENOMEM;
        }
        rc = spaced(tmp.data ? tmp.data : "", tmp.len, 0, b);
        wp_buf_free(&tmp);
        return rc;
    }
    if (n > (SIZE_MAX - 8) / 3 || wp_buf_reserve(b, 3 * n + 2) != 0)
        return WP_ENOMEM;
    o = b->data;
    *o++ = ' ';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= '`' && is_wrap_punct(c)) {
            o[0] = ' ';
            o[1] = (char)c;
            o[2] = ' ';
            o += 3;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            *o++ = ' ';
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = ' ';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* ---- building ------------------------------------------------------------ */

typedef struct pat {
    const char *s;
    uint32_t len, entry;
} pat;

static int pat_cmp(const void *a, const void *b)
{
    const pat *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

static inline uint32_t go(const qry_matcher *m, uint32_t s, uint8_t c)
{
    uint32_t a = m->st[s].first, b = m->st[s + 1].first;
    if (m->dense[s] != NONE)
        return m->tables[(size_t)m->dense[s] * 256 + c];
    for (uint32_t i = a; i < b; i++) {
        if (m->label[i] == c)
            return i;
        if (m->label[i] > c)
            break;
    }
    return NONE;
}

static inline uint32_t go_hot(const qry_matcher *m, uint32_t s, uint8_t c)
{
    const ac_hot *h = &m->hot[s];
    uint32_t info = h->info, n;
    if (info & INFO_DENSE)
        return m->tables[(size_t)(info & ~INFO_DENSE) * 256 + c];
    n = info & 0xff;
    if (n == 1)
        return ((info >> 8) & 0xff) == c ? h->first : NONE;
    for (uint32_t i = h->first; i < h->first + n; i++) {
        if (m->label[i] == c)
            return i;
        if (m->label[i] > c)
            break;
    }
    return NONE;
}

/* ---- the token index ------------------------------------------------------- */

static inline uint64_t tok_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h;
}

static inline uint64_t edge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t tok_head(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n < 8 ? n : 8);
    return w;
}

/* Token id of p[0..n) with hash h, or NONE. */
static inline uint32_t tok_find_h(const tok_index *t, const uint8_t *p, size_t n, uint64_t h)
{
    size_t i = (size_t)h & (t->nslots - 1);
    uint32_t h32 = (uint32_t)(h >> 32);
    uint64_t head;
    if (t->nslots == 0)
        return NONE;
    head = tok_head(p, n);
    for (;; i = (i + 1) & (t->nslots - 1)) {
        const tok_slot *sl = &t->slots[i];
        if (sl->id1 == 0)
            return NONE;
        if (sl->h32 == h32 && sl->len == n && sl->head == head &&
            (n <= 8 || memcmp(t->pool.data + sl->off + 8, p + 8, n - 8) == 0))
            return sl->id1 - 1;
    }
}

static inline uint32_t tok_find(const tok_index *t, const uint8_t *p, size_t n)
{
    return tok_find_h(t, p, n, tok_hash(p, n));
}

static void tok_slot_set(tok_slot *sl, const tok_index *t, uint32_t id, uint64_t h)
{
    sl->id1 = id + 1;
    sl->len = t->len[id];
    sl->off = t->off[id];
    sl->head = tok_head((const uint8_t *)t->pool.data + t->off[id], t->len[id]);
    sl->h32 = (uint32_t)(h >> 32);
}

static inline uint32_t edge_find(const tok_index *t, uint32_t node, uint32_t tok)
{
    uint64_t k = (uint64_t)node << 32 | tok;
    size_t i = (size_t)edge_hash(k) & (t->nedgeslots - 1);
    for (;; i = (i + 1) & (t->nedgeslots - 1)) {
        const edge_slot *e = &t->edges[i];
        if (e->child == 0)
            return 0;
        if (e->key == k)
            return e->child;
    }
}

static int tok_grow_slots(tok_index *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 1024;
    tok_slot *sl = calloc(ns, sizeof *sl);
    if (sl == NULL)
        return WP_ENOMEM;
    for (size_t id = 0; id < t->ntok; id++) {
        uint64_t h = tok_hash((const uint8_t *)t->pool.data + t->off[id], t->len[id]);
        size_t i = (size_t)h & (ns - 1);
        while (sl[i].id1 != 0)
            i = (i + 1) & (ns - 1);
        tok_slot_set(&sl[i], t, (uint32_t)id, h);
    }
    free(t->slots);
    t->slots = sl;
    t->nslots = ns;
    return 0;
}

static int node_new(tok_index *t, uint32_t *id)
{
    if (t->nnodes == t->nodecap) {
        size_t nc = t->nodecap ? t->nodecap * 2 : 4096;
        uint32_t *o = realloc(t->out, nc * sizeof *o);
        uint8_t *k;
        if (o == NULL)
            return WP_ENOMEM;
        t->out = o;
        k = realloc(t->kids, nc);
        if (k == NULL)
            return WP_ENOMEM;
        t->kids = k;
        t->nodecap = nc;
    }
    t->out[t->nnodes] = 0;
    t->kids[t->nnodes] = 0;
    *id = (uint32_t)t->nnodes++;
    return 0;
}

/* The token id of p[0..n), added (with its depth-1 node) when new. */
static int tok_add(tok_index *t, const uint8_t *p, size_t n, uint32_t *id)
{
    uint32_t f = tok_find(t, p, n);
    uint64_t h;
    size_t i;
    if (f != NONE) {
        *id = f;
        return 0;
    }
    if ((t->ntok + 1) * 3 > t->nslots * 2 && tok_grow_slots(t) != 0)
        return WP_ENOMEM;
    if (t->ntok == t->tokcap) {
        size_t nc = t->tokcap ? t->tokcap * 2 : 4096;
        uint32_t *o = realloc(t->off, nc * sizeof *o), *l;
        if (o == NULL)
            return WP_ENOMEM;
        t->off = o;
        l = realloc(t->len, nc * sizeof *l);
        if (l == NULL)
            return WP_ENOMEM;
        t->len = l;
        t->tokcap = nc;
    }
    t->off[t->ntok] = (uint32_t)t->pool.len;
    t->len[t->ntok] = (uint32_t)n;
    if (wp_buf_append(&t->pool, p, n) != 0)
        return WP_ENOMEM;
    h = tok_hash(p, n);
    i = (size_t)h & (t->nslots - 1);
    while (t->slots[i].id1 != 0)
        i = (i + 1) & (t->nslots - 1);
    tok_slot_set(&t->slots[i], t, (uint32_t)t->ntok, h);
    *id = (uint32_t)t->ntok++;
    return 0;
}

static int edge_grow(tok_index *t)
{
    size_t ns = t->nedgeslots ? t->nedgeslots * 2 : 1024;
    edge_slot *e = calloc(ns, sizeof *e);
    if (e == NULL)
        return WP_ENOMEM;
    for (size_t j = 0; j < t->nedgeslots; j++) {
        size_t i;
        if (t->edges[j].child == 0)
            continue;
        i = (size_t)edge_hash(t->edges[j].key) & (ns - 1);
        while (e[i].child != 0)
            i = (i + 1) & (ns - 1);
        e[i] = t->edges[j];
    }
    free(t->edges);
    t->edges = e;
    t->nedgeslots = ns;
    return 0;
}

static int edge_add(tok_index *t, uint32_t node, uint32_t tok, uint32_t *child)
{
    uint64_t k = (uint64_t)node << 32 | tok;
    size_t i;
    uint32_t c;
    if (t->nedgeslots > 0 && (c = edge_find(t, node, tok)) != 0) {
        *child = c;
        return 0;
    }
    if ((t->nedges + 1) * 2 > t->nedgeslots && edge_grow(t) != 0)
        return WP_ENOMEM;
    if (node_new(t, &c) != 0)
        return WP_ENOMEM;
    i = (size_t)edge_hash(k) & (t->nedgeslots - 1);
    while (t->edges[i].child != 0)
        i = (i + 1) & (t->nedgeslots - 1);
    t->edges[i].key = k;
    t->edges[i].child = c;
    t->nedges++;
    t->kids[node] = 1;
    *child = c;
    return 0;
}

/* Adds entry e whose pattern is " inner " (inner = p[0..n)): with
 * vocab_only its tokens, else (once every entry's tokens are in, so that
 * nodes 1..ntok are the tokens) its path of nodes and its end. */
static int tok_add_entry(tok_index *t, uint32_t *same, const uint8_t *p, size_t n, uint32_t e,
                         int vocab_only)
{
    size_t a = 0;
    uint32_t node = 0;
    for (;;) {
        const uint8_t *sp = memchr(p + a, ' ', n - a);
        size_t b = sp ? (size_t)(sp - p) : n;
        uint32_t id;
        if (vocab_only) {
            if (tok_add(t, p + a, b - a, &id) != 0)
                return WP_ENOMEM;
        } else {
            id = tok_find(t, p + a, b - a);
            if (node == 0)
                node = id + 1;
            else if (edge_add(t, node, id, &node) != 0)
                return WP_ENOMEM;
        }
        if (sp == NULL)
            break;
        a = b + 1;
    }
    if (vocab_only)
        return 0;
    if (t->out[node] == 0) {
        t->out[node] = e + 1;
    } else {
        uint32_t x = t->out[node] - 1;
        while (same[x] != 0)
            x = same[x] - 1;
        same[x] = e + 1;
    }
    return 0;
}

/* Nodes 0 (unused) and 1..ntok (the tokens). */
static int tok_nodes_init(tok_index *t)
{
    uint32_t id;
    for (size_t i = 0; i <= t->ntok; i++)
        if (node_new(t, &id) != 0)
            return WP_ENOMEM;
    return 0;
}

static void tok_free(tok_index *t)
{
    free(t->slots);
    free(t->off);
    free(t->len);
    wp_buf_free(&t->pool);
    free(t->out);
    free(t->kids);
    free(t->edges);
}

static size_t tok_bytes(const tok_index *t)
{
    return t->nslots * sizeof(tok_slot) + t->tokcap * 8 + t->pool.cap + t->nodecap * 5 +
           t->nedgeslots * sizeof(edge_slot);
}

int qry_matcher_new(const qry_list *l, int rule, int flags, qry_matcher **out, wp_err *err)
{
    size_t n = qry_list_count(l), total = 1;
    pat *pats = NULL;
    wp_buf pb = {0};
    /* the build trie: first-child / next-sibling, in insertion order */
    uint32_t *fc = NULL, *ns = NULL, *lc = NULL, *tout = NULL, *path = NULL, *queue = NULL,
             *newid = NULL;
    uint8_t *tlab = NULL;
    size_t nn = 1, prevlen = 0;
    const char *prev = NULL;
    qry_matcher *m = NULL;
    size_t *offs = NULL;
    int rc = WP_ENOMEM;

    *out = NULL;
    if (n >= 0x7fffffff)
        return wp_err_set(err, QRY_ETOOMANY, "query list too long (%zu entries)", n);
    m = calloc(1, sizeof *m);
    pats = malloc((n ? n : 1) * sizeof *pats);
    offs = malloc((n ? n : 1) * sizeof *offs);
    if (m == NULL || pats == NULL || offs == NULL)
        goto fail;
    m->rule = rule;
    m->flags = flags;
    m->nentries = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *e = qry_list_entry(l, i, &len);
        offs[i] = pb.len;
        if (qry_pattern(e, len, rule, flags, &pb) != 0)
            goto fail;
        pats[i].len = (uint32_t)(pb.len - offs[i]);
        pats[i].entry = (uint32_t)i;
        total += pats[i].len;
    }
    for (size_t i = 0; i < n; i++)
        pats[i].s = pb.data + offs[i];
    m->same = calloc(n ? n : 1, sizeof *m->same);
    if (m->same == NULL)
        goto fail;
    {
        /* entries padded on both sides go to the token index */
        size_t k = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1 && tok_nodes_init(&m->tok) != 0)
                goto fail;
            for (size_t i = 0; i < n; i++) {
                const pat *p = &pats[i];
                if (!(flags & QRY_FORCE_AC) && p->len >= 2 && p->s[0] == ' ' &&
                    p->s[p->len - 1] == ' ') {
                    if (tok_add_entry(&m->tok, m->same, (const uint8_t *)p->s + 1, p->len - 2,
                                      p->entry, pass == 0) != 0)
                        goto fail;
                } else if (pass == 1) {
                    pats[k++] = *p;
                }
            }
        }
        n = k;
        m->nac = k;
    }
    qsort(pats, n, sizeof *pats, pat_cmp);
    if (total >= 0xfffffff0u) {
        rc = wp_err_set(err, QRY_ETOOMANY, "query list too large for the matcher");
        goto fail_set;
    }
    fc = malloc(total * sizeof *fc);
    ns = malloc(total * sizeof *ns);
    lc = malloc(total * sizeof *lc);
    tout = calloc(total, sizeof *tout);
    tlab = calloc(total, 1);
    path = malloc((QRY_ENTRY_MAX * 4 + 8) * sizeof *path);
    if (!fc || !ns || !lc || !tout || !tlab || !path)
        goto fail;
    fc[0] = ns[0] = lc[0] = NONE;
    path[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const pat *p = &pats[i];
        size_t k = 0;
        if (p->len > QRY_ENTRY_MAX * 4 + 4)
            continue; /* cannot happen: entries are at most QRY_ENTRY_MAX bytes */
        if (prev != NULL)
            while (k < p->len && k < prevlen && p->s[k] == prev[k])
                k++;
        for (size_t d = k; d < p->len; d++) {
            uint32_t parent = path[d], id = (uint32_t)nn++;
            fc[id] = ns[id] = lc[id] = NONE;
            tlab[id] = (uint8_t)p->s[d];
            if (fc[parent] == NONE)
                fc[parent] = id;
            else
                ns[lc[parent]] = id;
            lc[parent] = id;
            path[d + 1] = id;
        }
        if (p->len == 0)
            continue;
        {
            uint32_t s = path[p->len];
            if (tout[s] == 0) {
                tout[s] = p->entry + 1;
            } else { /* same pattern as an earlier entry (after case folding) */
                uint32_t e = tout[s] - 1;
                while (m->same[e] != 0)
                    e = m->same[e] - 1;
                m->same[e] = p->entry + 1;
            }
        }
        prev = p->s;
        prevlen = p->len;
    }
    free(lc);
    lc = NULL;
    /* breadth-first renumbering */
    m->nstates = (uint32_t)nn;
    m->st = calloc(nn + 1, sizeof *m->st);
    m->label = calloc(nn, 1);
    m->dense = malloc(nn * sizeof *m->dense);
    queue = malloc(nn * sizeof *queue);
    newid = malloc(nn * sizeof *newid);
    if (!m->st || !m->label || !m->dense || !queue || !newid)
        goto fail;
    {
        size_t head = 0, tail = 1, ndense = 0;
        queue[0] = 0;
        newid[0] = 0;
        while (head < tail) {
            uint32_t old = queue[head], id = (uint32_t)head, nch = 0;
            m->st[id].first = (uint32_t)tail;
            m->st[id].out = tout[old];
            for (uint32_t ch = fc[old]; ch != NONE; ch = ns[ch]) {
                newid[ch] = (uint32_t)tail;
                m->label[tail] = tlab[ch];
                queue[tail++] = ch;
                nch++;
            }
            m->dense[id] = (id == 0 || nch > DENSE_MIN) ? (uint32_t)ndense++ : NONE;
            head++;
        }
        m->st[nn].first = (uint32_t)nn;
        m->ntables = ndense;
        m->tables = malloc(ndense * 256 * sizeof *m->tables);
        if (m->tables == NULL)
            goto fail;
        memset(m->tables, 0xff, ndense * 256 * sizeof *m->tables);
        for (size_t s = 0; s < nn; s++) {
            if (m->dense[s] == NONE)
                continue;
            for (uint32_t i = m->st[s].first; i < m->st[s + 1].first; i++)
                m->tables[(size_t)m->dense[s] * 256 + m->label[i]] = i;
        }
    }
    free(fc);
    free(ns);
    free(tout);
    free(tlab);
    free(queue);
    free(newid);
    fc = ns = tout = queue = newid = NULL;
    tlab = NULL;
    /* failure links and dictionary links, in BFS order */
    for (uint32_t s = 0; s < m->nstates; s++) {
        for (uint32_t ch = m->st[s].first; ch < m->st[s + 1].first; ch++) {
            uint32_t f;
            if (s == 0) {
                f = 0;
            } else {
                uint32_t x = m->st[s].fail;
                for (;;) {
                    uint32_t t = go(m, x, m->label[ch]);
                    if (t != NONE) {
                        f = t;
                        break;
                    }
                    if (x == 0) {
                        f = 0;
                        break;
                    }
                    x = m->st[x].fail;
                }
            }
            m->st[ch].fail = f;
            m->st[ch].dict = m->st[f].out ? f : m->st[f].dict;
        }
    }
    /* the root's table is complete: no child means stay at the root */
    for (int c = 0; c < 256; c++)
        if (m->tables[c] == NONE)
            m->tables[c] = 0;
    /* pack what the matching loop reads */
    m->hot = malloc((size_t)m->nstates * sizeof *m->hot);
    m->out = malloc((size_t)m->nstates * sizeof *m->out);
    m->dict = malloc((size_t)m->nstates * sizeof *m->dict);
    if (!m->hot || !m->out || !m->dict)
        goto fail;
    for (uint32_t s = 0; s < m->nstates; s++) {
        uint32_t n = m->st[s + 1].first - m->st[s].first;
        ac_hot *h = &m->hot[s];
        h->first = m->st[s].first;
        h->fail = m->st[s].fail;
        h->rep = m->st[s].out ? s : m->st[s].dict;
        if (m->dense[s] != NONE)
            h->info = INFO_DENSE | m->dense[s];
        else
            h->info = n | (n == 1 ? (uint32_t)m->label[h->first] << 8 : 0);
        m->out[s] = m->st[s].out;
        m->dict[s] = m->st[s].dict;
    }
    free(m->st);
    free(m->dense);
    m->st = NULL;
    m->dense = NULL;
    free(pats);
    free(offs);
    free(path);
    wp_buf_free(&pb);
    *out = m;
    return 0;
fail:
    rc = wp_err_set(err, WP_ENOMEM, "out of memory building the query matcher");
fail_set:
    free(fc);
    free(ns);
    free(lc);
    free(tout);
    free(tlab);
    free(path);
    free(queue);
    free(newid);
    free(pats);
    free(offs);
    wp_buf_free(&pb);
    qry_matcher_free(m);
    return rc;
}

void qry_matcher_free(qry_matcher *m)
{
    if (m == NULL)
        return;
    free(m->st);
    free(m->hot);
    free(m->out);
    free(m->dict);
    free(m->label);
    free(m->dense);
    free(m->tables);
    free(m->same);
    tok_free(&m->tok);
    free(m);
}

size_t qry_matcher_states(const qry_matcher *m)
{
    return m->nstates + (m->tok.nnodes ? m->tok.nnodes - 1 : 0);
}

size_t qry_matcher_bytes(const qry_matcher *m)
{
    return sizeof *m + (size_t)m->nstates * (sizeof(ac_hot) + 2 * sizeof(uint32_t) + 1) +
           m->ntables * 256 * sizeof(uint32_t) + (size_t)m->nentries * sizeof(uint32_t) +
           tok_bytes(&m->tok);
}

/* ---- matching ------------------------------------------------------------ */

qry_scratch *qry_scratch_new(void)
{
    return calloc(1, sizeof(qry_scratch));
}

void qry_scratch_free(qry_scratch *s)
{
    if (s == NULL)
        return;
    wp_buf_free(&s->text);
    free(s->hits);
    free(s->tids);
    free(s->th);
    free(s);
}

static int hit(const qry_matcher *m, qry_scratch *s, uint32_t e1)
{
    for (uint32_t e = e1; e != 0; e = m->same[e - 1]) {
        if (s->nhits == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 64;
            uint32_t *nh = realloc(s->hits, nc * sizeof *nh);
            if (nh == NULL)
                return WP_ENOMEM;
            s->hits = nh;
            s->cap = nc;
        }
        s->hits[s->nhits++] = e - 1;
    }
    return 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The entries of the token index found in the spaced caption s->text. */
static int tok_match(const qry_matcher *m, qry_scratch *s)
{
    const tok_index *t = &m->tok;
    const uint8_t *p = (const uint8_t *)s->text.data, *end = p + s->text.len, *q;
    size_t nt = 0;
    /* tokens: the bytes between consecutive spaces (the text starts and
     * ends with one) */
    if (s->tcap < s->text.len + 1) {
        uint32_t *nv = realloc(s->tids, (s->text.len + 1) * sizeof *nv);
        uint64_t *nh;
        if (nv == NULL)
            return WP_ENOMEM;
        s->tids = nv;
        nh = realloc(s->th, (s->text.len + 1) * sizeof *nh);
        if (nh == NULL)
            return WP_ENOMEM;
        s->th = nh;
        s->tcap = s->text.len + 1;
    }
    /* first every token's hash, prefetching its slot; then the lookups,
     * whose cache misses then overlap */
    q = p + 1;
    while (q < end) {
        const uint8_t *sp = memchr(q, ' ', (size_t)(end - q));
        uint64_t h;
        if (sp == NULL)
            break;
        h = tok_hash(q, (size_t)(sp - q));
        __builtin_prefetch(&t->slots[(size_t)h & (t->nslots - 1)]);
        s->tids[nt] = (uint32_t)(q - p);
        s->th[nt++] = h;
        q = sp + 1;
    }
    for (size_t k = 0; k < nt; k++) {
        const uint8_t *a = p + s->tids[k];
        const uint8_t *b = k + 1 < nt ? p + s->tids[k + 1] - 1 : end - 1;
        s->tids[k] = tok_find_h(t, a, (size_t)(b - a), s->th[k]);
    }
    for (size_t a = 0; a < nt; a++) {
        uint32_t node;
        if (s->tids[a] == NONE)
            continue;
        node = s->tids[a] + 1;
        if (t->out[node] != 0 && hit(m, s, t->out[node]) != 0)
            return WP_ENOMEM;
        for (size_t b = a + 1; b < nt && t->kids[node] && s->tids[b] != NONE; b++) {
            node = edge_find(t, node, s->tids[b]);
            if (node == 0)
                break;
            if (t->out[node] != 0 && hit(m, s, t->out[node]) != 0)
                return WP_ENOMEM;
        }
    }
    return 0;
}

int qry_match(const qry_matcher *m, const char *text, size_t len, qry_scratch *s,
              const uint32_t **ids)
{
    const ac_hot *hot = m->hot;
    const uint8_t *p, *end;
    uint32_t cur = 0;
    size_t k = 0;

    s->nhits = 0;
    *ids = NULL;
    if (spaced(text, len, (m->flags & QRY_IGNORE_CASE) != 0, &s->text) != 0)
        return WP_ENOMEM;
    p = (const uint8_t *)s->text.data;
    end = p + s->text.len;
    if (m->tok.ntok > 0 && tok_match(m, s) != 0)
        return WP_ENOMEM;
    if (m->nac == 0)
        end = p;
    for (; p < end; p++) {
        uint8_t c = *p;
        for (;;) {
            uint32_t t;
            if (cur == 0) {
                cur = m->tables[c];
                break;
            }
            t = go_hot(m, cur, c);
            if (t != NONE) {
                cur = t;
                break;
            }
            cur = hot[cur].fail;
        }
        if (hot[cur].rep != 0)
            for (uint32_t d = hot[cur].rep; d != 0; d = m->dict[d])
                if (hit(m, s, m->out[d]) != 0)
                    return WP_ENOMEM;
    }
    if (s->nhits > 1) {
        if (s->nhits <= 32) {
            for (size_t i = 1; i < s->nhits; i++) {
                uint32_t v = s->hits[i];
                size_t j = i;
                while (j > 0 && s->hits[j - 1] > v) {
                    s->hits[j] = s->hits[j - 1];
                    j--;
                }
                s->hits[j] = v;
            }
        } else {
            qsort(s->hits, s->nhits, sizeof *s->hits, u32_cmp);
        }
        for (size_t i = 0; i < s->nhits; i++)
            if (k == 0 || s->hits[i] != s->hits[k - 1])
                s->hits[k++] = s->hits[i];
    } else {
        k = s->nhits;
    }
    *ids = s->hits;
    return (int)k;
}
