/*
 * audit/lexicon.c: the caption-side term matcher. Lexicon files (GROUP<TAB>
 * TERM lines) are loaded into one hash table keyed by the term's tokens
 * joined with single spaces; a caption is split into tokens the same way
 * and every n-gram of up to AUD_NGRAM_MAX tokens is looked up. The split
 * is deliberately simple (and documented in audit_int.h) so that a test or
 * a user can recompute every count independently.
 */
#include "audit_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct term {
    char *key;
    int lex, group;
    struct term *next; /* same key in another lexicon */
} term;

struct aud_matcher {
    int nlex;
    aud_lex lex[AUD_LEX_MAX];
    term **tab;
    size_t cap, n;
    /* scratch for one caption */
    uint32_t tstart[AUD_TOKENS_MAX], tlen[AUD_TOKENS_MAX];
    char low[1 << 16];
};

aud_matcher *aud_matcher_new(void)
{
    aud_matcher *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = 1024;
    m->tab = calloc(m->cap, sizeof *m->tab);
    if (m->tab == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void aud_matcher_free(aud_matcher *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        for (term *t = m->tab[i], *nx; t != NULL; t = nx) {
            nx = t->next;
            free(t->key);
            free(t);
        }
    for (int i = 0; i < m->nlex; i++)
        for (int g = 0; g < m->lex[i].ngroups; g++)
            free(m->lex[i].groups[g]);
    free(m->tab);
    free(m);
}

int aud_matcher_nlex(const aud_matcher *m)
{
    return m->nlex;
}

const aud_lex *aud_matcher_lex(const aud_matcher *m, int i)
{
    return i >= 0 && i < m->nlex ? &m->lex[i] : NULL;
}

static int is_tok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Normalises s[0..n) to lower-case tokens joined by single spaces in out;
 * returns the token count. */
static int normalise(const char *s, size_t n, wp_buf *out)
{
    int toks = 0;
    size_t i = 0;
    wp_buf_reset(out);
    while (i < n) {
        while (i < n && !is_tok((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        if (toks > 0 && wp_buf_putc(out, ' ') != 0)
            return -1;
        while (i < n && is_tok((unsigned char)s[i]))
            if (wp_buf_putc(out, lower((unsigned char)s[i++])) != 0)
                return -1;
        toks++;
    }
    return toks;
}

static term **slot(aud_matcher *m, const char *key, size_t len)
{
    size_t h = (size_t)wp_fnv1a64(key, len) & (m->cap - 1);
    term **p = &m->tab[h];
    return p;
}

static term *find(const aud_matcher *m, const char *key, size_t len)
{
    size_t h = (size_t)wp_fnv1a64(key, len) & (m->cap - 1);
    for (term *t = m->tab[h]; t != NULL; t = t->next)
        if (strlen(t->key) == len && memcmp(t->key, key, len) == 0)
            return t;
    return NULL;
}

static int grow(aud_matcher *m)
{
    size_t nc = m->cap * 2;
    term **nt = calloc(nc, sizeof *nt);
    if (nt == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        for (term *t = m->tab[i], *nx; t != NULL; t = nx) {
            nx = t->next;
            size_t h = (size_t)wp_fnv1a64(t->key, strlen(t->key)) & (nc - 1);
            t->next = nt[h];
            nt[h] = t;
        }
    free(m->tab);
    m->tab = nt;
    m->cap = nc;
    return 0;
}

int aud_matcher_load(aud_matcher *m, const char *name, const char *path, int is_attr, wp_err *err)
{
    wp_buf file = {0}, key = {0};
    aud_lex *lx;
    uint8_t dig[WP_SHA256_LEN];
    int rc = 0, line = 0;
    char *p, *end;

    if (m->nlex >= AUD_LEX_MAX)
        return wp_err_set(err, AUD_ELEXICON, "%s: more than %d lexicons", path, AUD_LEX_MAX);
    if ((rc = wp_read_file(path, 16u << 20, &file, err)) != 0) {
        rc = wp_err_set(err, AUD_ELEXICON, "lexicon %s: %s", name, err ? err->msg : "unreadable");
        goto out;
    }
    lx = &m->lex[m->nlex];
    memset(lx, 0, sizeof *lx);
    snprintf(lx->name, sizeof lx->name, "%s", name);
    snprintf(lx->path, sizeof lx->path, "%s", path);
    lx->is_attr = is_attr;
    if (wp_sha256_buf(file.data, file.len, dig) != 0) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    wp_hex(dig, WP_SHA256_LEN, lx->sha256);
    for (p = file.data; p < file.data + file.len; p = end + 1) {
        char *tab, *grp;
        int g, toks;
        term *t;
        end = memchr(p, '\n', (size_t)(file.data + file.len - p));
        if (end == NULL)
            end = file.data + file.len;
        line++;
        *end = '\0';
        if (end > p && end[-1] == '\r')
            end[-1] = '\0';
        while (*p == ' ')
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        tab = strchr(p, '\t');
        if (tab == NULL) {
            rc = wp_err_set(err, AUD_ELEXICON, "%s:%d: expected GROUP<TAB>TERM", path, line);
            goto out;
        }
        *tab = '\0';
        grp = p;
        for (g = 0; g < lx->ngroups; g++)
            if (strcmp(lx->groups[g], grp) == 0)
                break;
        if (g == lx->ngroups) {
            if (lx->ngroups >= AUD_GROUPS_MAX) {
                rc = wp_err_set(err, AUD_ELEXICON, "%s:%d: more than %d groups", path, line,
                                AUD_GROUPS_MAX);
                goto out;
            }
            if ((lx->groups[g] = strdup(grp)) == NULL) {
                rc = wp_err_set(err, WP_ENOMEM, "out of memory");
                goto out;
            }
            lx->ngroups++;
        }
        toks = normalise(tab + 1, strlen(tab + 1), &key);
        if (toks < 0) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        if (toks == 0 || toks > AUD_NGRAM_MAX) {
            rc = wp_err_set(err, AUD_ELEXICON, "%s:%d: a term needs 1 to %d words", path, line,
                            AUD_NGRAM_MAX);
            goto out;
        }
        /* a term listed twice in one lexicon counts for its first group */
        for (t = find(m, key.data, key.len); t != NULL; t = t->next)
            if (t->lex == m->nlex && strcmp(t->key, key.data) == 0)
                break;
        if (t != NULL)
            continue;
        if (m->n * 2 >= m->cap && grow(m) != 0) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        t = calloc(1, sizeof *t);
        if (t == NULL || (t->key = strdup(key.data)) == NULL) {
            free(t);
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto out;
        }
        t->lex = m->nlex;
        t->group = g;
        {
            term **sl = slot(m, key.data, key.len);
            t->next = *sl;
            *sl = t;
        }
        m->n++;
        lx->nterms++;
    }
    if (lx->ngroups == 0) {
        rc = wp_err_set(err, AUD_ELEXICON, "%s: no terms", path);
        goto out;
    }
    m->nlex++;
out:
    if (rc != 0 && m->nlex < AUD_LEX_MAX) {
        aud_lex *bad = &m->lex[m->nlex];
        for (int g = 0; g < bad->ngroups; g++)
            free(bad->groups[g]);
        bad->ngroups = 0;
    }
    wp_buf_free(&file);
    wp_buf_free(&key);
    return rc;
}

static void add_hit(aud_hits *h, int lex, int group)
{
    for (int i = 0; i < h->n[lex]; i++)
        if (h->g[lex][i] == group)
            return;
    if (h->n[lex] < AUD_HITS_MAX)
        h->g[lex][h->n[lex]++] = (uint16_t)group;
}

int aud_match(aud_matcher *m, const char *text, size_t n, aud_hits *h)
{
    int nt = 0;
    size_t i = 0, w = 0;
    memset(h->n, 0, sizeof h->n);
    /* lower-case tokens into low[], separated by single spaces */
    while (i < n && nt < AUD_TOKENS_MAX) {
        while (i < n && !is_tok((unsigned char)text[i]))
            i++;
        if (i >= n)
            break;
        if (nt > 0) {
            if (w + 1 >= sizeof m->low)
                break;
            m->low[w++] = ' ';
        }
        m->tstart[nt] = (uint32_t)w;
        while (i < n && is_tok((unsigned char)text[i]) && w + 1 < sizeof m->low)
            m->low[w++] = (char)lower((unsigned char)text[i++]);
        while (i < n && is_tok((unsigned char)text[i])) /* over-long caption: skip the rest */
            i++;
        m->tlen[nt] = (uint32_t)(w - m->tstart[nt]);
        nt++;
        if (w + 1 >= sizeof m->low)
            break;
    }
    for (int a = 0; a < nt; a++)
        for (int k = 1; k <= AUD_NGRAM_MAX && a + k <= nt; k++) {
            size_t s = m->tstart[a], e = m->tstart[a + k - 1] + m->tlen[a + k - 1];
            for (term *t = find(m, m->low + s, e - s); t != NULL; t = t->next)
                if (strlen(t->key) == e - s && memcmp(t->key, m->low + s, e - s) == 0)
                    add_hit(h, t->lex, t->group);
        }
    return 0;
}
