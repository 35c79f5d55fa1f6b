/*
 * crawl/robots.c: the Robots Exclusion Protocol, RFC 9309.
 *
 * Parsing keeps only what applies to us: the rules of every group whose
 * user-agent line names our product token (merged, section 2.2.1), or else
 * of every "*" group. Patterns are stored percent-decoded so that an
 * encoded and a literal spelling of the same octets match (section 2.2.2),
 * with '*' and '$' recognised only where written literally (section
 * 2.2.3: "%2A" is a star character, not a wildcard).
 *
 * Matching is bounded for hostile files: each rule is compiled once per
 * host into literal segments with their KMP tables, so one rule costs one
 * pass over the path (no backtracking); rules are sorted by precedence and
 * the first match decides; a rule needing an octet the path lacks is
 * dismissed without reading the path; and the work for one path is capped
 * (CRAWL_ROBOTS_MATCH_BUDGET comparisons), past which the path counts as
 * disallowed.
 */
#include "crawl.h"
#include "net/net.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ROBOTS_LIT_MAX NET_URL_MAX /* literal octets a rule can have and still match a URL */

/* A compiled rule: the pattern split at its '*' into literal segments
 * (decoded octets, back to back in lit; segment i is lit[seg[i]..seg[i+1])),
 * each with its KMP failure function, so that a match is one left-to-right
 * pass over the path: the first segment at the start, every later one at
 * its leftmost place after the one before (greedy is exact for patterns
 * whose only wildcard is '*'), and with '$' the last one at the end. */
typedef struct rule {
    unsigned char *lit; /* decoded literal octets of all segments */
    uint16_t *fail;     /* KMP failure function, indexed like lit */
    uint32_t *seg;      /* nseg + 1 offsets into lit */
    size_t nseg;        /* segments: the number of '*' runs + 1 */
    int anchored;       /* ended in '$': must match to the end */
    size_t specificity; /* octets of the pattern as written */
    int allow;
    uint64_t bytes[4]; /* the set of octets in lit: a path lacking one cannot match */
} rule;

struct crawl_robots {
    int mode;    /* 0: rules, 1: allow all, -1: disallow all */
    rule *rules; /* sorted by specificity, longest first, Allow first on ties */
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

static void rule_free(rule *ru)
{
    free(ru->lit);
    free(ru->fail);
    free(ru->seg);
}

/* Compiles v[0..n) into ru. Returns 0, WP_ENOMEM, or WP_ELIMIT for a
 * pattern with more literal octets than any URL can have (it can never
 * match, so it is not kept). */
static int compile_rule(rule *ru, const char *v, size_t n, int allow)
{
    size_t k = 0, ns = 0;

    memset(ru, 0, sizeof *ru);
    ru->allow = allow;
    ru->specificity = n;
    if (n > 0 && v[n - 1] == '$') {
        ru->anchored = 1;
        n--;
    }
    /* Section 2.2.3: '*' and '$' are special only where written literally;
     * "%2A" is a star octet. */
    for (size_t i = 0; i < n; i++)
        if (v[i] == '*')
            ns++;
    ru->lit = malloc(n + 1);
    ru->fail = malloc((n + 1) * sizeof *ru->fail);
    ru->seg = malloc((ns + 2) * sizeof *ru->seg);
    if (ru->lit == NULL || ru->fail == NULL || ru->seg == NULL) {
        rule_free(ru);
        return WP_ENOMEM;
    }
    ru->seg[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '*') {
            /* "**" is "*": no empty segment between two stars. */
            if (ru->nseg > 0 && ru->seg[ru->nseg] == k)
                continue;
            ru->seg[++ru->nseg] = (uint32_t)k;
        } else if (v[i] == '%' && i + 2 < n && wp_hex_digit((unsigned char)v[i + 1]) >= 0 &&
                   wp_hex_digit((unsigned char)v[i + 2]) >= 0) {
            ru->lit[k++] = (unsigned char)(wp_hex_digit((unsigned char)v[i + 1]) * 16 +
                                           wp_hex_digit((unsigned char)v[i + 2]));
            i += 2;
        } else {
            ru->lit[k++] = (unsigned char)v[i];
        }
        if (k > ROBOTS_LIT_MAX) {
            rule_free(ru);
            return WP_ELIMIT;
        }
    }
    ru->seg[++ru->nseg] = (uint32_t)k;
    /* KMP failure function of each segment; the octet set of all. */
    for (size_t s = 0; s < ru->nseg; s++) {
        const unsigned char *p = ru->lit + ru->seg[s];
        uint16_t *f = ru->fail + ru->seg[s];
        size_t m = ru->seg[s + 1] - ru->seg[s], j = 0;
        if (m > 0)
            f[0] = 0;
        for (size_t i = 1; i < m; i++) {
            while (j > 0 && p[i] != p[j])
                j = f[j - 1];
            if (p[i] == p[j])
                j++;
            f[i] = (uint16_t)j;
        }
    }
    for (size_t i = 0; i < k; i++)
        ru->bytes[ru->lit[i] >> 6] |= UINT64_C(1) << (ru->lit[i] & 63);
    return 0;
}

static int add_rule(crawl_robots *r, const char *v, size_t n, int allow)
{
    int rc;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rule *p = realloc(r->rules, cap * sizeof *p);
        if (p == NULL)
            return WP_ENOMEM;
        r->rules = p;
        r->cap = cap;
    }
    rc = compile_rule(&r->rules[r->n], v, n, allow);
    if (rc == WP_ELIMIT)
        return 0; /* matches no URL */
    if (rc != 0)
        return rc;
    r->n++;
    return 0;
}

/* The leftmost place at or after from where segment s of ru occurs in
 * t[0..n), by KMP: at most 2 * (n - from) octet comparisons, added to
 * *steps. Returns the place, or -1. */
static long find_segment(const rule *ru, size_t s, const unsigned char *t, size_t n, size_t from,
                         uint64_t *steps)
{
    const unsigned char *p = ru->lit + ru->seg[s];
    const uint16_t *f = ru->fail + ru->seg[s];
    size_t m = ru->seg[s + 1] - ru->seg[s], j = 0;
    if (m == 0)
        return (long)from;
    for (size_t i = from; i < n; i++) {
        (*steps)++;
        while (j > 0 && t[i] != p[j]) {
            j = f[j - 1];
            (*steps)++;
        }
        if (t[i] == p[j] && ++j == m)
            return (long)(i + 1 - m);
    }
    return -1;
}

/* 1 if ru matches the decoded path t[0..n) (section 2.2.3: an
 * unanchored pattern matches a prefix of it). One pass: O(n + pattern)
 * comparisons, counted in *steps. */
static int match_rule(const rule *ru, const unsigned char *t, size_t n, uint64_t *steps)
{
    size_t pos, m0 = ru->seg[1], last = ru->nseg - 1;

    if (ru->seg[ru->nseg] > n)
        return 0; /* more literal octets than the path has */
    /* The first segment at the start. */
    for (size_t i = 0; i < m0; i++) {
        (*steps)++;
        if (t[i] != ru->lit[i])
            return 0;
    }
    if (ru->nseg == 1)
        return !ru->anchored || m0 == n;
    pos = m0;
    for (size_t s = 1; s < ru->nseg; s++) {
        size_t m = ru->seg[s + 1] - ru->seg[s];
        if (s == last && ru->anchored) {
            /* '$': the last segment ends the path, after the others. */
            if (n - pos < m)
                return 0;
            (*steps) += m;
            return memcmp(t + n - m, ru->lit + ru->seg[s], m) == 0;
        }
        long at = find_segment(ru, s, t, n, pos, steps);
        if (at < 0)
            return 0;
        pos = (size_t)at + m;
    }
    return 1;
}

/* Longest first; on equal length Allow first (section 2.2.2: "the most
 * specific match found MUST be used ... if an allow rule and a disallow
 * rule are equivalent, then the allow rule SHOULD be used"), so the
 * first rule that matches decides. */
static int by_precedence(const void *a, const void *b)
{
    const rule *x = a, *y = b;
    if (x->specificity != y->specificity)
        return x->specificity > y->specificity ? -1 : 1;
    return y->allow - x->allow;
}

int crawl_robots_match(const char *pattern, size_t plen, const char *path)
{
    rule ru;
    size_t n = strlen(path);
    unsigned char *d = malloc(n + 1);
    uint64_t steps = 0;
    int m = 0;
    if (d == NULL)
        return 0;
    if (compile_rule(&ru, pattern, plen, 0) == 0) {
        m = match_rule(&ru, d, decode_path(path, n, d), &steps);
        rule_free(&ru);
    }
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
            rule_free(&r->rules[i]);
        free(r->rules);
        r->rules = star->rules;
        r->n = star->n;
        r->cap = star->cap;
        r->delay = star->delay;
        star->rules = NULL;
        star->n = 0;
    }
    crawl_robots_free(star);
    /* Compiled once per host: sorted so that a lookup stops at the first
     * rule that matches. */
    if (r->n > 1)
        qsort(r->rules, r->n, sizeof *r->rules, by_precedence);
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
        rule_free(&r->rules[i]);
    free(r->rules);
    free(r);
}

int crawl_robots_allowed_counted(const crawl_robots *r, const char *path, uint64_t *steps)
{
    size_t n = strlen(path), dn;
    unsigned char stack[1024], *d = stack;
    uint64_t set[4] = {0}, spent = 0;
    int verdict = 1;

    if (r->mode != 0) {
        verdict = r->mode > 0;
        goto out;
    }
    /* Section 2.2.2: /robots.txt is always allowed. */
    if (strcmp(path, "/robots.txt") == 0)
        goto out;
    if (n >= sizeof stack && (d = malloc(n + 1)) == NULL) {
        verdict = 0;
        goto out;
    }
    dn = decode_path(path, n, d);
    spent = dn;
    for (size_t i = 0; i < dn; i++)
        set[d[i] >> 6] |= UINT64_C(1) << (d[i] & 63);
    for (size_t i = 0; i < r->n; i++) {
        const rule *ru = &r->rules[i];
        spent++;
        /* An octet the path lacks: no match, without reading the path. */
        if ((ru->bytes[0] & ~set[0]) | (ru->bytes[1] & ~set[1]) | (ru->bytes[2] & ~set[2]) |
            (ru->bytes[3] & ~set[3]))
            continue;
        if (spent > CRAWL_ROBOTS_MATCH_BUDGET) {
            /* The work spent on one path is bounded: a file whose rules
             * cost more is read as disallowing the path, the polite side
             * of the verdict. */
            verdict = 0;
            break;
        }
        if (match_rule(ru, d, dn, &spent)) {
            /* The rules are in order of precedence: the first decides. */
            verdict = ru->allow;
            break;
        }
    }
    if (d != stack)
        free(d);
out:
    if (steps != NULL)
        *steps = spent;
    return verdict;
}

int crawl_robots_allowed(const crawl_robots *r, const char *path)
{
    return crawl_robots_allowed_counted(r, path, NULL);
}

double crawl_robots_delay(const crawl_robots *r)
{
    return r->delay;
}
