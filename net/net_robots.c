/*
 * net/net_robots.c: X-Robots-Tag opt-out decisions.
 *
 * The header has no RFC; its de facto grammar (Google, Bing, and the
 * noai/noimageai directives of img2dataset and spawning.ai) is a comma
 * separated list of directives, optionally preceded by "robotname:" which
 * scopes the directives after it to that robot. Directives that take a
 * value ("unavailable_after: DATE", "max-image-preview: large") must not be
 * mistaken for a robot name.
 */
#include "net.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define ROBOT_NAME_MAX 64

static const char *const valued_directives[] = {"unavailable_after", "max-snippet",
                                                "max-image-preview", "max-video-preview", NULL};

static int is_valued_directive(const char *s, size_t n)
{
    for (int i = 0; valued_directives[i] != NULL; i++)
        if (strlen(valued_directives[i]) == n && strncasecmp(valued_directives[i], s, n) == 0)
            return 1;
    return 0;
}

/* 1 if s[0..n) equals one of the comma-separated words in list. */
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

int net_robots_tag_optout(const char *value, const char *tokens, const char *directives,
                          char hit[NET_DIRECTIVE_MAX])
{
    const char *p = value;
    int scoped_to_us = 1; /* unscoped directives apply to every robot */

    if (value == NULL || directives == NULL || directives[0] == '\0')
        return 0;
    while (*p) {
        const char *q = p, *a, *b, *colon;
        while (*q && *q != ',')
            q++;
        a = p;
        b = q;
        p = *q ? q + 1 : q;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (a == b)
            continue;
        colon = memchr(a, ':', (size_t)(b - a));
        if (colon != NULL && !is_valued_directive(a, (size_t)(colon - a))) {
            /* "robot: directive" starts a new scope. */
            const char *ne = colon;
            while (ne > a && isspace((unsigned char)ne[-1]))
                ne--;
            scoped_to_us = in_list(tokens, a, (size_t)(ne - a));
            a = colon + 1;
            while (a < b && isspace((unsigned char)*a))
                a++;
            if (a == b)
                continue;
        } else if (colon != NULL) {
            continue; /* a valued directive never opts out */
        }
        if (scoped_to_us && in_list(directives, a, (size_t)(b - a))) {
            size_t n = (size_t)(b - a);
            if (n >= NET_DIRECTIVE_MAX)
                n = NET_DIRECTIVE_MAX - 1;
            for (size_t i = 0; i < n; i++)
                hit[i] = (char)tolower((unsigned char)a[i]);
            hit[n] = '\0';
            return 1;
        }
    }
    return 0;
}
