/*
 * balance/qry_build.c: `witpipe queries build`: a query list made offline,
 * MetaCLIP style, from what the user has: WordNet lemmas (Debian's
 * wordnet-base data.* files, read directly), unigrams and high-PMI bigrams
 * of a text corpus, titles, and the numbers 0-99.
 *
 * Tokens are what MetaCLIP's rule can match: a caption is cut at white
 * space and at each of , . ; : ? ! ` (those characters are tokens of their
 * own and are never counted); a bigram is two tokens with only white space
 * between them. So an entry " a b " built here matches the text it was
 * counted in. Case is kept (the rule is case-sensitive).
 *
 * PMI(a b) = ln(c(a b) * N / (c(a) * c(b))), N the number of tokens read.
 *
 * Memory is bounded: unigram and bigram counts share one open-addressing
 * table of at most table_max slots. When it is 70% full, every item whose
 * count is at most the median count is dropped (the least counted half,
 * recycled; qry_build_stats.evicted counts them). An item seen again later
 * starts from zero, so counts of items that were ever evicted are lower
 * bounds; items frequent enough to become entries are rarely affected.
 * With a table large enough for the corpus vocabulary, counts are exact.
 *
 * Entries are ranked by their corpus count (unigram or bigram count; 0 for
 * WordNet lemmas, titles and numbers not counted), ties kept in source
 * order (WordNet, titles, numbers, unigrams, bigrams), and the first
 * max_entries kept.
 */
#include "balance.h"

#include <archive.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void qry_build_opts_init(qry_build_opts *o)
{
    memset(o, 0, sizeof *o);
    o->wordnet_dir = "/usr/share/wordnet";
    o->min_count = 100;
    o->min_pmi = 3.0;
    o->min_bigram_count = 20;
    o->max_entries = 500000;
    o->table_max = (size_t)1 << 22;
    o->numbers = 1;
}

/* ---- the bounded counter --------------------------------------------------- */

typedef struct slot {
    char *key; /* NULL: empty */
    uint32_t len;
    uint32_t split; /* bigram: length of the first token; unigram: 0 */
    int64_t count;
} slot;

typedef struct counter {
    slot *s;
    size_t n, used;
    int64_t evicted;
} counter;

static uint64_t key_hash(const char *k, size_t n, uint32_t split)
{
    return wp_fnv1a64(k, n) ^ ((uint64_t)split * 0x9e3779b97f4a7c15ULL);
}

static slot *find(counter *c, const char *k, size_t n, uint32_t split)
{
    size_t h = (size_t)key_hash(k, n, split) & (c->n - 1);
    while (c->s[h].key != NULL) {
        if (c->s[h].len == n && c->s[h].split == split && memcmp(c->s[h].key, k, n) == 0)
            return &c->s[h];
        h = (h + 1) & (c->n - 1);
    }
    return &c->s[h];
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Drops every item counted at most the median, then rebuilds the table. */
static int evict(counter *c)
{
    int64_t *v = malloc(c->used * sizeof *v), med;
    slot *old = c->s, *ns;
    size_t k = 0;
    if (v == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        if (old[i].key)
            v[k++] = old[i].count;
    qsort(v, k, sizeof *v, i64_cmp);
    med = v[k / 2];
    free(v);
    ns = calloc(c->n, sizeof *ns);
    if (ns == NULL)
        return WP_ENOMEM;
    c->s = ns;
    c->used = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!old[i].key)
            continue;
        if (old[i].count <= med) {
            free(old[i].key);
            c->evicted++;
            continue;
        }
        *find(c, old[i].key, old[i].len, old[i].split) = old[i];
        c->used++;
    }
    free(old);
    return 0;
}

static int count_add(counter *c, const char *k, size_t n, uint32_t split)
{
    slot *s = find(c, k, n, split);
    if (s->key == NULL) {
        if ((c->used + 1) * 10 > c->n * 7) {
            int rc = evict(c);
            if (rc != 0)
                return rc;
            s = find(c, k, n, split);
        }
        s->key = malloc(n ? n : 1);
        if (s->key == NULL)
            return WP_ENOMEM;
        memcpy(s->key, k, n);
        s->len = (uint32_t)n;
        s->split = split;
        s->count = 0;
        c->used++;
    }
    s->count++;
    return 0;
}

static int64_t count_get(counter *c, const char *k, size_t n, uint32_t split)
{
    slot *s = find(c, k, n, split);
    return s->key ? s->count : 0;
}

static void counter_free(counter *c)
{
    for (size_t i = 0; c->s && i < c->n; i++)
        free(c->s[i].key);
    free(c->s);
}

/* ---- tokens ---------------------------------------------------------------- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_cut(unsigned char c)
{
    return c == ',' || c == '.' || c == ';' || c == ':' || c == '?' || c == '!' || c == '`';
}

typedef struct builder {
    counter cnt;
    int64_t tokens, lines;
    wp_buf bigram;
} builder;

static int count_line(builder *b, const char *t, size_t n)
{
    size_t i = 0, pstart = 0, plen = 0;
    int have_prev = 0, rc;
    b->lines++;
    while (i < n) {
        unsigned char c = (unsigned char)t[i];
        size_t s;
        if (is_space(c)) {
            i++;
            continue;
        }
        if (is_cut(c)) {
            have_prev = 0; /* punctuation breaks bigrams */
            i++;
            continue;
        }
        s = i;
        while (i < n && !is_space((unsigned char)t[i]) && !is_cut((unsigned char)t[i]))
            i++;
        b->tokens++;
        if ((rc = count_add(&b->cnt, t + s, i - s, 0)) != 0)
            return rc;
        if (have_prev) {
            wp_buf_reset(&b->bigram);
            if (wp_buf_append(&b->bigram, t + pstart, plen) != 0 ||
                wp_buf_putc(&b->bigram, ' ') != 0 || wp_buf_append(&b->bigram, t + s, i - s) != 0)
                return WP_ENOMEM;
            if ((rc = count_add(&b->cnt, b->bigram.data, b->bigram.len, (uint32_t)plen)) != 0)
                return rc;
        }
        pstart = s;
        plen = i - s;
        have_prev = 1;
    }
    return 0;
}

static int count_caption(void *ud, const char *t, size_t n)
{
    return count_line(ud, t, n);
}

/* Reads path (plain, gz, zst, bz2, xz: libarchive's raw format) and calls
 * fn on each line. */
static int each_line(const char *path, int (*fn)(void *, const char *, size_t), void *ud,
                     wp_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    wp_buf line = {0};
    char buf[65536];
    la_ssize_t got;
    int rc = 0;
    if (a == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(a, &ae) != ARCHIVE_OK) {
        rc = wp_err_set(err, WP_EIO, "%s: %s", path, archive_error_string(a));
        goto out;
    }
    while ((got = archive_read_data(a, buf, sizeof buf)) > 0) {
        const char *p = buf, *end = buf + got;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            if (wp_buf_append(&line, p, (size_t)(e - p)) != 0) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            if (nl) {
                if ((rc = fn(ud, line.data, line.len)) != 0) {
                    wp_err_set(err, rc, "%s: out of memory counting", path);
                    goto out;
                }
                wp_buf_reset(&line);
            }
            p = nl ? nl + 1 : end;
        }
    }
    if (got < 0) {
        rc = wp_err_set(err, WP_EIO, "%s: %s", path, archive_error_string(a));
        goto out;
    }
    if (line.len > 0 && (rc = fn(ud, line.data, line.len)) != 0)
        wp_err_set(err, rc, "%s: out of memory counting", path);
out:
    archive_read_free(a);
    wp_buf_free(&line);
    return rc;
}

/* ---- candidates ------------------------------------------------------------ */

typedef struct cand {
    char *s;
    size_t len;
    int64_t freq;
    size_t order;
} cand;

typedef struct cands {
    cand *v;
    size_t n, cap;
} cands;

static int cand_add(cands *c, const char *s, size_t len, int64_t freq)
{
    if (len == 0 || len > QRY_ENTRY_MAX)
        return 0;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4096;
        cand *nv = realloc(c->v, nc * sizeof *nv);
        if (nv == NULL)
            return WP_ENOMEM;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n].s = strndup(s, len);
    if (c->v[c->n].s == NULL)
        return WP_ENOMEM;
    c->v[c->n].len = len;
    c->v[c->n].freq = freq;
    c->v[c->n].order = c->n;
    c->n++;
    return 0;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->freq != y->freq)
        return x->freq > y->freq ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The corpus count of an entry: unigram or bigram count, else 0. */
static int64_t freq_of(builder *b, const char *s, size_t n)
{
    const char *sp = memchr(s, ' ', n);
    if (sp == NULL)
        return count_get(&b->cnt, s, n, 0);
    if (memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)) == NULL)
        return count_get(&b->cnt, s, n, (uint32_t)(sp - s));
    return 0;
}

typedef struct wnctx {
    builder *b;
    cands *c;
    int64_t n;
    wp_buf w;
} wnctx;

/* One line of a WordNet data file: offset lex_filenum ss_type w_cnt(hex)
 * then w_cnt pairs (word lex_id); license lines start with spaces. */
static int wordnet_line(void *ud, const char *t, size_t n)
{
    wnctx *w = ud;
    const char *p = t, *end = t + n;
    char *e;
    long cnt;
    if (n == 0 || t[0] == ' ')
        return 0;
    for (int f = 0; f < 3; f++) { /* skip offset, lex_filenum, ss_type */
        while (p < end && *p != ' ')
            p++;
        while (p < end && *p == ' ')
            p++;
    }
    if (p >= end)
        return 0;
    cnt = strtol(p, &e, 16);
    p = e;
    for (long i = 0; i < cnt && p < end; i++) {
        const char *s;
        size_t len;
        while (p < end && *p == ' ')
            p++;
        s = p;
        while (p < end && *p != ' ')
            p++;
        len = (size_t)(p - s);
        /* adjective markers: (a), (p), (ip) */
        if (len > 3 && s[len - 1] == ')') {
            const char *o = memchr(s, '(', len);
            if (o != NULL)
                len = (size_t)(o - s);
        }
        wp_buf_reset(&w->w);
        for (size_t k = 0; k < len; k++)
            if (wp_buf_putc(&w->w, s[k] == '_' ? ' ' : s[k]) != 0)
                return WP_ENOMEM;
        if (w->w.len > 0) {
            if (cand_add(w->c, w->w.data, w->w.len, freq_of(w->b, w->w.data, w->w.len)) != 0)
                return WP_ENOMEM;
            w->n++;
        }
        while (p < end && *p == ' ')
            p++;
        while (p < end && *p != ' ') /* lex_id */
            p++;
    }
    return 0;
}

typedef struct titlectx {
    builder *b;
    cands *c;
    int64_t n;
} titlectx;

static int title_line(void *ud, const char *t, size_t n)
{
    titlectx *tc = ud;
    if (n > 0 && t[n - 1] == '\r')
        n--;
    if (n == 0)
        return 0;
    tc->n++;
    return cand_add(tc->c, t, n, freq_of(tc->b, t, n));
}

int qry_build(const qry_build_opts *o, qry_list **out, qry_build_stats *st, const wp_reporter *rep,
              wp_err *err)
{
    builder b;
    cands c = {0};
    qry_list *l = NULL;
    wp_progress pr = {.stage = "queries build"};
    size_t slots = 1024;
    int rc = 0;

    memset(&b, 0, sizeof b);
    memset(st, 0, sizeof *st);
    *out = NULL;
    while (slots < o->table_max && slots < ((size_t)1 << 40))
        slots <<= 1;
    b.cnt.n = slots;
    b.cnt.s = calloc(slots, sizeof *b.cnt.s);
    if (b.cnt.s == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory (%zu counter slots)", slots);
        goto out;
    }
    /* 1. count the corpus */
    if (o->corpus != NULL) {
        for (size_t i = 0; o->corpus[i] != NULL; i++) {
            if ((rc = each_line(o->corpus[i], count_caption, &b, err)) != 0)
                goto out;
            pr.done = (uint64_t)b.lines;
            wp_report_progress(rep, &pr);
        }
    } else if (o->catalog != NULL) {
        if ((rc = cat_qry_captions(o->catalog, count_caption, &b, err)) != 0)
            goto out;
    }
    st->lines = b.lines;
    st->tokens = b.tokens;
    st->evicted = b.cnt.evicted;
    /* 2. candidates, in source order */
    if (o->wordnet_dir != NULL) {
        static const char *const parts[] = {"data.noun", "data.verb", "data.adj", "data.adv"};
        wnctx w = {.b = &b, .c = &c};
        for (size_t i = 0; i < 4; i++) {
            char path[WP_PATH_MAX];
            if ((rc = wp_path_join(path, o->wordnet_dir, parts[i], err)) != 0)
                goto out;
            if (!wp_file_exists(path)) {
                rc = wp_err_set(err, WP_ENOENT,
                                "%s: no WordNet data (install wordnet-base, give --wordnet DIR "
                                "or --no-wordnet)",
                                path);
                goto out;
            }
            if ((rc = each_line(path, wordnet_line, &w, err)) != 0)
                goto out;
        }
        wp_buf_free(&w.w);
        st->wordnet = w.n;
    }
    if (o->titles != NULL) {
        titlectx tc = {.b = &b, .c = &c};
        for (size_t i = 0; o->titles[i] != NULL; i++)
            if ((rc = each_line(o->titles[i], title_line, &tc, err)) != 0)
                goto out;
        st->titles = tc.n;
    }
    if (o->numbers) {
        for (int k = 0; k < 100; k++) {
            char num[8];
            int len = snprintf(num, sizeof num, "%d", k);
            if (cand_add(&c, num, (size_t)len, freq_of(&b, num, (size_t)len)) != 0)
                goto oom;
        }
        st->numbers = 100;
    }
    for (size_t i = 0; i < b.cnt.n; i++) {
        const slot *s = &b.cnt.s[i];
        if (s->key == NULL)
            continue;
        if (s->split == 0) {
            if (s->count >= o->min_count) {
                if (cand_add(&c, s->key, s->len, s->count) != 0)
                    goto oom;
                st->unigrams++;
            }
        } else if (s->count >= o->min_bigram_count && b.tokens > 0) {
            int64_t ca = count_get(&b.cnt, s->key, s->split, 0);
            int64_t cb = count_get(&b.cnt, s->key + s->split + 1, s->len - s->split - 1, 0);
            double pmi;
            if (ca <= 0 || cb <= 0)
                continue;
            pmi = log((double)s->count * (double)b.tokens / ((double)ca * (double)cb));
            if (pmi >= o->min_pmi) {
                if (cand_add(&c, s->key, s->len, s->count) != 0)
                    goto oom;
                st->bigrams++;
            }
        }
    }
    /* 3. rank and keep */
    qsort(c.v, c.n, sizeof *c.v, cand_cmp);
    if ((l = qry_list_new()) == NULL)
        goto oom;
    for (size_t i = 0; i < c.n && (int64_t)qry_list_count(l) < o->max_entries; i++)
        if (qry_list_add(l, c.v[i].s, c.v[i].len, NULL) != 0)
            goto oom;
    st->entries = (int64_t)qry_list_count(l);
    *out = l;
    l = NULL;
    goto out;
oom:
    rc = wp_err_set(err, WP_ENOMEM, "out of memory building the query list");
out:
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].s);
    free(c.v);
    qry_list_free(l);
    counter_free(&b.cnt);
    wp_buf_free(&b.bigram);
    return rc;
}
