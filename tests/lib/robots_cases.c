/*
 * tests/lib/robots_cases.c: reads tests/data/robots_cases.tsv (see
 * robots_cases.h) into cases, flag words mapped by net_robots_flag_name.
 */
#include "tests/lib/robots_cases.h"

#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE "tests/data/robots_cases.tsv"

/* The NET_ROBOTS_* bit named word, or 0. */
static unsigned flag_of(const char *word)
{
    for (int i = 0; i < 32; i++) {
        const char *name = net_robots_flag_name(1u << i);
        if (name != NULL && strcmp(name, word) == 0)
            return 1u << i;
    }
    return 0;
}

/* Fills c from one table line (no newline); 0 or -1. */
static int parse_case(char *s, int lineno, tl_robots_case *c)
{
    char *tab = strchr(s, '\t'), *w, *save = NULL;
    size_t k = 0;
    memset(c, 0, sizeof *c);
    c->line = lineno;
    c->lines = 1;
    if (tab == NULL) {
        fprintf(stderr, "%s:%d: no tab\n", TABLE, lineno);
        return -1;
    }
    *tab = '\0';
    for (const char *p = s; *p; p++) {
        if (k + 2 >= sizeof c->value) {
            fprintf(stderr, "%s:%d: value too long\n", TABLE, lineno);
            return -1;
        }
        if (p[0] == '\\' && p[1] == 'n') {
            c->value[k++] = '\n';
            c->lines++;
            p++;
        } else {
            c->value[k++] = *p;
        }
    }
    c->value[k] = '\0';
    for (w = strtok_r(tab + 1, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        unsigned f = flag_of(w);
        if (strcmp(w, "-") == 0)
            continue;
        if (f == 0) {
            fprintf(stderr, "%s:%d: unknown flag '%s'\n", TABLE, lineno, w);
            return -1;
        }
        c->flags |= f;
    }
    c->opt_out = (c->flags & NET_ROBOTS_OPT_OUT) != 0;
    return 0;
}

int tl_robots_cases(tl_robots_case **out)
{
    FILE *f = fopen(TABLE, "r");
    char line[2 * TL_ROBOTS_VALUE_MAX];
    tl_robots_case *v = NULL;
    int n = 0, cap = 0, lineno = 0;
    *out = NULL;
    if (f == NULL) {
        perror(TABLE);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t k = strlen(line);
        lineno++;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
            line[--k] = '\0';
        if (k == 0 || line[0] == '#')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            tl_robots_case *p = realloc(v, (size_t)cap * sizeof *p);
            if (p == NULL)
                goto fail;
            v = p;
        }
        if (parse_case(line, lineno, &v[n]) != 0)
            goto fail;
        n++;
    }
    fclose(f);
    *out = v;
    return n;
fail:
    fclose(f);
    free(v);
    return -1;
}
