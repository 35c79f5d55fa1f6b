/*
 * crawl/robots.c: the Robots Exclusion Protocol, RFC 9309.
 *
 * Parsing keeps only what applies to us: the rules of every group whose
 * user-agent line names our product token (merged, section 2.2.1), or else
 * of every "*" group. Patterns are stored percent-decoded so that an
 * encoded and a literal spelling of the same octets match (section 2.2.2),
 * with '*' and '$' recognised only where written literally (section
 * 2.2.3: "%2A" is a star character, not a wildcard).
 */
#include "crawl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PAT_WILD        0x100 /* a '*' wildcard in a compiled pattern */
#define ROBOTS_MAX_LINE 4096

typedef struct rule {
    short *pat; /* decoded octets and PAT_WILD */
    size_t n;
    int anchored;       /* ended in '$': must match to the end */
    size_t specificity; /* octets of the pattern as written */
    int allow;
} rule;

struct crawl_robots {
    int mode; /* 0: rules, 1: allow all, -1: disallow all */
    rule *rules;
    size_t n, cap;
    double delay;
};

/* Percent-decodes s[0..n) into out (the decoded path); returns its length. */
static size_t decode_path(const char *s, size_t n, unsigned char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && wp_hex_digit((unsigned char)s[i + 1]) >= 0 &&
            wp_hex_digit((unsigned char)s[i + 2]) >= 0) {
            out[k++] = (unsigned char)(wp_hex_digit((unsigned char)s[i + 1]) * 16 +
                                       wp_hex_digit((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[k++] = (unsigned char)s[i];
        }
    }
    return k;
}

static int add_rule(crawl_robots *r, const char *v, size_t n, int allow)
{
    rule *ru;
    size_t k = 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rule *p = realloc(r->rules, cap * sizeof *p);
        if (p == NULL)
            return WP_ENOMEM;
        r->rules = p;
        r->cap = cap;
    }
    ru = &r->rules[r->n];
    memset(ru, 0, sizeof *ru);
    ru->allow = allow;
    ru->specificity = n;
    if (n > 0 && v[n - 1] == '$') {
        ru->anchored = 1;
        n--;
    }
    ru->pat = malloc((n + 1) * sizeof *ru->pat);
    if (ru->pat == NULL)
        return WP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '*') {
            if (k > 0 && ru->pat[k - 1] == PAT_WILD)
                continue; /* "**" is "*" */
            ru->pat[k++] = PAT_WILD;
        } else if (v[i] == '%' && i + 2 < n && wp_hex_digit((unsigned char)v[i + 1]) >= 0 &&
                   wp_hex_digit((unsigned char)v[i + 2]) >= 0) {
            ru->pat[k++] = (short)(wp_hex_digit((unsigned char)v[i + 1]) * 16 +
                                   wp_hex_digit((unsigned char)v[i + 2]));
            i += 2;
        } else {
            ru->pat[k++] = (short)(unsigned char)v[i];
        }
    }
    ru->n = k;
    r->n++;
    return 0;
}

/* Wildcard match of a compiled pattern against decoded octets: the
 * classic two-pointer algorithm, linear in practice and never exponential
 * (a hostile "*a*a*a..." costs O(n*m) at worst). An unanchored pattern
 * matches a prefix of the path. */
static int match_compiled(const short *pat, size_t pn, int anchored, const unsigned char *s,
                          size_t sn)
{
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    while (i < sn) {
        if (p == pn && !anchored)
            return 1;
        if (p < pn && pat[p] == PAT_WILD) {
            star_p = p++;
            star_i = i;
        } else if (p < pn && pat[p] == s[i]) {
            p++;
            i++;
        } else if (star_p != (size_t)-1) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return 0;
        }
    }
    while (p < pn && pat[p] == PAT_WILD)
        p++;
    return p == pn;
}

int crawl_robots_match(const char *pattern, size_t plen, const char *path)
{
    crawl_robots tmp;
    size_t n = strlen(path);
    unsigned char *d = malloc(n + 1);
    int m = 0;
    memset(&tmp, 0, sizeof tmp);
    if (d == NULL)
        return 0;
    if (add_rule(&tmp, pattern, plen, 0) == 0) {
        size_t dn = decode_path(path, n, d);
        m = match_compiled(tmp.rules[0].pat, tmp.rules[0].n, tmp.rules[0].anchored, d, dn);
    }
    for (size_t i = 0; i < tmp.n; i++)
        free(tmp.rules[i].pat);
    free(tmp.rules);
    free(d);
    return m;
}

/* 1 if a user-agent value names token: its product token (the leading
 * [A-Za-z_-] characters, section 2.2.1) compared case-insensitively. */
static int ua_matches(const char *v, size_t n, const char *token)
{
    size_t k = 0;
    while (k < n && (isalpha((unsigned char)v[k]) || v[k] == '_' || v[k] == '-'))
        k++;
    return k > 0 && strlen(token) == k && strncasecmp(v, token, k) == 0;
}

crawl_robots *crawl_robots_parse(const char *body, size_t len, int status, const char *token)
{
    crawl_robots *r = calloc(1, sizeof *r), *star = NULL;
    const char *p = body, *end;
    int in_agents = 0; /* the previous meaningful line was user-agent */
    int group_ours = 0, group_star = 0, have_ours = 0;
    if (r == NULL)
        return NULL;
    r->delay = -1;
    /* Section 2.3.1.3-4: unavailable (4xx) means no restrictions;
     * unreachable (5xx, network error) means complete disallow. */
    if (status >= 400 && status < 500) {
        r->mode = 1;
        return r;
    }
    if (status == 0 || status >= 500) {
        r->mode = -1;
        return r;
    }
    if (status < 200 || status >= 300) {
        r->mode = 1;
        return r;
    }
    if ((star = calloc(1, sizeof *star)) == NULL)
        goto fail;
    star->delay = -1;
    /* Section 2.5: parse at least 500 KiB; we parse exactly that much. */
    if (len > CRAWL_ROBOTS_MAX_BYTES)
        len = CRAWL_ROBOTS_MAX_BYTES;
    end = body + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        const char *ls = p, *le, *colon, *ks, *ke, *vs, *ve;
        while (p < end && *p != '\n' && *p != '\r')
            p++;
        le = p;
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
        for (const char *h = ls; h < le; h++)
            if (*h == '#') {
                le = h;
                break;
            }
        colon = memchr(ls, ':', (size_t)(le - ls));
        if (colon == NULL)
            continue;
        ks = ls;
        ke = colon;
        while (ks < ke && isspace((unsigned char)*ks))
            ks++;
        while (ke > ks && isspace((unsigned char)ke[-1]))
            ke--;
        vs = colon + 1;
        ve = le;
        while (vs < ve && isspace((unsigned char)*vs))
            vs++;
        while (ve > vs && isspace((unsigned char)ve[-1]))
            ve--;
        size_t kn = (size_t)(ke - ks), vn = (size_t)(ve - vs);
        if (kn == 10 && strncasecmp(ks, "user-agent", 10) == 0) {
            if (!in_agents) {
                group_ours = group_star = 0;
                in_agents = 1;
            }
            if (vn == 1 && *vs == '*')
                group_star = 1;
            else if (ua_matches(vs, vn, token))
                group_ours = have_ours = 1;
            continue;
        }
        int is_allow = kn == 5 && strncasecmp(ks, "allow", 5) == 0;
        int is_disallow = kn == 8 && strncasecmp(ks, "disallow", 8) == 0;
        int is_delay = kn == 11 && strncasecmp(ks, "crawl-delay", 11) == 0;
        if (!is_allow && !is_disallow && !is_delay)
            continue; /* sitemap and others do not end a group's agents */
        in_agents = 0;
        if (is_delay) {
            char num[32];
            size_t k = vn < sizeof num - 1 ? vn : sizeof num - 1;
            char *e;
            double d;
            memcpy(num, vs, k);
            num[k] = '\0';
            d = strtod(num, &e);
            if (e != num && d >= 0) {
                if (group_ours && r->delay < 0)
                    r->delay = d;
                if (group_star && star->delay < 0)
                    star->delay = d;
            }
            continue;
        }
        /* An empty Disallow value disallows nothing: no rule. */
        if (vn == 0)
            continue;
        if (group_ours && add_rule(r, vs, vn, is_allow) != 0)
            goto fail;
        if (group_star && add_rule(star, vs, vn, is_allow) != 0)
            goto fail;
    }
    if (!have_ours) {
        /* No group for our token: the "*" groups apply (section 2.2.1). */
        for (size_t i = 0; i < r->n; i++)
            free(r->rules[i].pat);
        free(r->rules);
        r->rules = star->rules;
        r->n = star->n;
        r->cap = star->cap;
        r->delay = star->delay;
        star->rules = NULL;
        star->n = 0;
    }
    crawl_robots_free(star);
    return r;
fail:
    crawl_robots_free(star);
    crawl_robots_free(r);
    return NULL;
}

void crawl_robots_free(crawl_robots *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->rules[i].pat);
    free(r->rules);
    free(r);
}

int crawl_robots_allowed(const crawl_robots *r, const char *path)
{
    size_t n = strlen(path), dn, best = 0;
    unsigned char stack[1024], *d = stack;
    int verdict = 1, found = 0;

    if (r->mode != 0)
        return r->mode > 0;
    /* Section 2.2.2: /robots.txt is always allowed. */
    if (strcmp(path, "/robots.txt") == 0)
        return 1;
    if (n >= sizeof stack && (d = malloc(n + 1)) == NULL)
        return 0;
    dn = decode_path(path, n, d);
    for (size_t i = 0; i < r->n; i++) {
        const rule *ru = &r->rules[i];
        if (!match_compiled(ru->pat, ru->n, ru->anchored, d, dn))
            continue;
        /* The most octets wins; on a tie Allow wins (section 2.2.2). */
        if (!found || ru->specificity > best) {
            verdict = ru->allow;
            best = ru->specificity;
            found = 1;
        } else if (ru->specificity == best && ru->allow) {
            verdict = 1;
        }
    }
    if (d != stack)
        free(d);
    return verdict;
}

double crawl_robots_delay(const crawl_robots *r)
{
    return r->delay;
}
