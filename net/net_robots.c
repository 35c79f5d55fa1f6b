/*
 * net/net_robots.c: the one parser of robots directives in witpipe, for the
 * X-Robots-Tag response header (fetch: images; crawl: pages in WARC, WAT and
 * live) and the content of <meta name="robots"> / <meta name="witpipe">.
 *
 * Neither has an RFC. The grammar followed is Google's "Robots meta tag,
 * data-nosnippet, and X-Robots-Tag specifications"
 * (https://developers.google.com/search/docs/crawling-indexing/robots-meta-tag)
 * plus the noai / noimageai directives of img2dataset and spawning.ai:
 *  - a comma-separated list of case-insensitive directives;
 *  - "botname: directives" scopes the directives after it, up to the next
 *    botname or the end of the field line, to that robot;
 *  - a few directives carry a value after a colon ("unavailable_after:
 *    DATE", "max-snippet: N", ...) and must not be read as a bot name;
 *  - a header may come as several field lines, each with its own scope.
 * Why a separate module: fetch and crawl each had a parser, and they
 * disagreed on exactly these cases.
 */
#include "net.h"

#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#define DATE_MAX 96 /* longest unavailable_after value read */

/* Google: "max-snippet: [number]", "max-image-preview: [setting]",
 * "max-video-preview: [number]", "unavailable_after: [date/time]" are the
 * rules that take a value. */
static const char *const valued_directives[] = {"unavailable_after", "max-snippet",
                                                "max-image-preview", "max-video-preview", NULL};

/* Google's rules: noindex ("do not show this page, media, or resource in
 * search results"), nofollow ("do not follow the links on this page"), none
 * ("equivalent to noindex, nofollow"), noimageindex ("do not index images
 * on this page"), unavailable_after; noai / noimageai: "no AI training" on
 * the page / its images (img2dataset, spawning.ai). Names compare
 * case-insensitively (Google: "Both the name and the specified values are
 * not case sensitive"). */
static const struct {
    const char *name;
    unsigned flag;
} directive_names[] = {
    {"noai", NET_ROBOTS_NOAI},
    {"noimageai", NET_ROBOTS_NOIMAGEAI},
    {"noindex", NET_ROBOTS_NOINDEX},
    {"noimageindex", NET_ROBOTS_NOIMAGEINDEX},
    {"nofollow", NET_ROBOTS_NOFOLLOW},
    {"none", NET_ROBOTS_NONE},
    {"unavailable_after", NET_ROBOTS_EXPIRED},
};

static int eq_ci(const char *a, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(a, word, n) == 0;
}

static int is_valued_directive(const char *s, size_t n)
{
    for (int i = 0; valued_directives[i] != NULL; i++)
        if (eq_ci(s, n, valued_directives[i]))
            return 1;
    return 0;
}

/* A robot name: a letter, then letters, digits, '-' or '_' (user-agent
 * product tokens such as "Googlebot-Image", "GPTBot", "witpipe"). */
static int is_bot_name(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* 1 if s[0..n) equals one of the comma-separated words in list
 * (case-insensitive, spaces around words ignored). */
static int in_list(const char *list, const char *s, size_t n)
{
    const char *p = list;
    if (list == NULL || n == 0)
        return 0;
    while (*p) {
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *a = p, *b = q;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if ((size_t)(b - a) == n && strncasecmp(a, s, n) == 0)
            return 1;
        p = *q ? q + 1 : q;
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* ISO 8601 as Google's examples write it: YYYY-MM-DD, optionally followed
 * by T (or a space) hh:mm[:ss[.fff]] and Z or +hh:mm / -hh:mm / +hhmm (no
 * zone: UTC). Returns 1 and *t, or 0. */
static int parse_iso8601(const char *s, int64_t *t)
{
    int y, mo, d, h = 0, mi = 0, se = 0, zh = 0, zm = 0, sign = 0;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    s += 10;
    if (*s == 'T' || *s == 't' || (*s == ' ' && isdigit((unsigned char)s[1]))) {
        if (!digits(s + 1, 2, &h) || s[3] != ':' || !digits(s + 4, 2, &mi) || h > 24 || mi > 59)
            return 0;
        s += 6;
        if (*s == ':') {
            if (!digits(s + 1, 2, &se) || se > 60)
                return 0;
            s += 3;
            if (*s == '.' || *s == ',')
                for (s++; isdigit((unsigned char)*s);)
                    s++;
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            sign = *s == '-' ? -1 : 1;
            if (!digits(s + 1, 2, &zh))
                return 0;
            s += 3;
            if (*s == ':')
                s++;
            if (digits(s, 2, &zm))
                s += 2;
        }
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s != '\0')
        return 0;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (zh * 3600 + zm * 60);
    return 1;
}

/* The unavailable_after value v[0..n): ISO 8601, else any date libcurl's
 * curl_getdate reads (RFC 1123 / RFC 850 / asctime, the HTTP-date forms of
 * RFC 9110 section 5.6.7, with named zones such as PST). Returns 1 and *t,
 * or 0 for a value that is not a date. */
static int parse_date(const char *v, size_t n, int64_t *t)
{
    char buf[DATE_MAX];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (parse_iso8601(buf, t))
        return 1;
    time_t c = curl_getdate(buf, NULL);
    if (c == (time_t)-1)
        return 0;
    *t = (int64_t)c;
    return 1;
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && isspace((unsigned char)**a))
        (*a)++;
    while (*b > *a && isspace((unsigned char)(*b)[-1]))
        (*b)--;
}

/* 1 if v[0..b), spaces aside, is a day name: "Wed", "wednesday". */
static int is_day_name(const char *v, const char *b)
{
    static const char days[] = "montuewedthufrisatsun";
    trim(&v, &b);
    size_t n = (size_t)(b - v);
    if (n < 3 || n > 9)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)v[i]))
            return 0;
    for (int d = 0; d < 7; d++)
        if (strncasecmp(v, days + 3 * d, 3) == 0)
            return 1;
    return 0;
}

/* The plain directives in a[0..b): words split on white space as well as
 * commas (a tolerance: "noindex nofollow" is common in the wild). */
static unsigned plain_words(const char *a, const char *b)
{
    unsigned f = 0;
    while (a < b) {
        while (a < b && isspace((unsigned char)*a))
            a++;
        const char *w = a;
        while (a < b && !isspace((unsigned char)*a))
            a++;
        for (size_t i = 0; i < sizeof directive_names / sizeof directive_names[0]; i++)
            if (directive_names[i].flag != NET_ROBOTS_EXPIRED &&
                eq_ci(w, (size_t)(a - w), directive_names[i].name))
                f |= directive_names[i].flag;
        /* "all" (Google: "no restrictions ... no effect if explicitly
         * listed") and unknown words change nothing. */
    }
    return f;
}

/* One field line p[0..end). */
static unsigned parse_line(const char *p, const char *end, const char *tokens, int64_t now)
{
    unsigned flags = 0;
    int ours = 1; /* Google: "Directives specified without a user-agent are valid for all
                   * crawlers" */
    while (p < end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        const char *a = p, *b = q != NULL ? q : end, *colon;
        p = q != NULL ? q + 1 : end;
        trim(&a, &b);
        colon = memchr(a, ':', (size_t)(b - a));
        if (colon != NULL) {
            const char *ne = colon;
            while (ne > a && isspace((unsigned char)ne[-1]))
                ne--;
            if (is_bot_name(a, (size_t)(ne - a)) && !is_valued_directive(a, (size_t)(ne - a))) {
                /* Google: "X-Robots-Tag: googlebot: nofollow"; the name
                 * scopes what follows, up to the next name. */
                ours = in_list(tokens, a, (size_t)(ne - a));
                a = colon + 1;
                trim(&a, &b);
                colon = memchr(a, ':', (size_t)(b - a));
            }
        }
        if (colon != NULL) {
            const char *ne = colon, *v = colon + 1;
            while (ne > a && isspace((unsigned char)ne[-1]))
                ne--;
            if (!eq_ci(a, (size_t)(ne - a), "unavailable_after"))
                continue; /* max-snippet and the like: nothing to opt out */
            /* RFC 850 and RFC 1123 dates start "Wednesday," / "Wed,"
             * (RFC 9110 section 5.6.7): a value that is only a day name
             * ended at a comma of the date, whose rest is the next list
             * element. */
            if (is_day_name(v, b) && p < end) {
                q = memchr(p, ',', (size_t)(end - p));
                b = q != NULL ? q : end;
                p = q != NULL ? q + 1 : end;
            }
            trim(&v, &b);
            int64_t t;
            /* Google: "Do not show this page in search results after the
             * specified date/time"; past that date the page is gone for
             * indexing, which we read as noindex. A future date (or one we
             * cannot read) changes nothing. */
            if (ours && parse_date(v, (size_t)(b - v), &t) && t <= now)
                flags |= NET_ROBOTS_EXPIRED;
            continue;
        }
        if (ours)
            flags |= plain_words(a, b);
    }
    return flags;
}

unsigned net_robots_parse(const char *value, const char *tokens, int64_t now)
{
    unsigned flags = 0;
    if (value == NULL)
        return 0;
    /* RFC 9110 section 5.3 lets a recipient join field lines into one
     * comma-separated list, but a "botname:" scope would then run into the
     * next line: Google's examples give each bot its own X-Robots-Tag line,
     * so lines (joined here by '\n') are read apart. */
    for (const char *p = value; *p;) {
        const char *e = strchr(p, '\n');
        if (e == NULL)
            e = p + strlen(p);
        flags |= parse_line(p, e, tokens, now);
        p = *e ? e + 1 : e;
    }
    return flags;
}

const char *net_robots_flag_name(unsigned flag)
{
    for (size_t i = 0; i < sizeof directive_names / sizeof directive_names[0]; i++)
        if (directive_names[i].flag == flag)
            return directive_names[i].name;
    return NULL;
}

int net_robots_optout(unsigned flags, const char *directives, char hit[NET_DIRECTIVE_MAX])
{
    /* The order in which a hit is reported when several apply. */
    static const unsigned order[] = {NET_ROBOTS_NOAI,    NET_ROBOTS_NOIMAGEAI,
                                     NET_ROBOTS_NOINDEX, NET_ROBOTS_NOIMAGEINDEX,
                                     NET_ROBOTS_NONE,    NET_ROBOTS_EXPIRED};
    if (directives == NULL)
        return 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *name = net_robots_flag_name(order[i]);
        /* none and an expired unavailable_after are noindex. */
        const char *listed =
            order[i] == NET_ROBOTS_NONE || order[i] == NET_ROBOTS_EXPIRED ? "noindex" : name;
        if ((flags & order[i]) && in_list(directives, listed, strlen(listed))) {
            snprintf(hit, NET_DIRECTIVE_MAX, "%s", name);
            return 1;
        }
    }
    return 0;
}

int net_robots_tag_optout(const char *value, const char *tokens, const char *directives,
                          char hit[NET_DIRECTIVE_MAX])
{
    return net_robots_optout(net_robots_parse(value, tokens, wp_unix_time()), directives, hit);
}

int net_robots_meta_name(const char *name, const char *tokens)
{
    if (name == NULL)
        return 0;
    while (isspace((unsigned char)*name))
        name++;
    size_t n = strlen(name);
    while (n > 0 && isspace((unsigned char)name[n - 1]))
        n--;
    /* Google: name="robots" speaks to all crawlers, a crawler's own name
     * to it alone. */
    return eq_ci(name, n, "robots") || in_list(tokens, name, n);
}
