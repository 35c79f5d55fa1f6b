/*
 * common/buf.c: a growable byte buffer that always ends in a NUL.
 */
#include "wp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wp_buf_grow(wp_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX - b->len - 1)
        return WP_ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return WP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int wp_buf_puts(wp_buf *b, const char *s)
{
    return wp_buf_append(b, s, strlen(s));
}

int wp_buf_printf(wp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WP_EINVAL;
    if (wp_buf_reserve(b, (size_t)n) != 0)
        return WP_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void wp_buf_reset(wp_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void wp_buf_free(wp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *wp_buf_steal(wp_buf *b)
{
    char *p;
    if (b->data == NULL && wp_buf_reserve(b, 0) != 0)
        return NULL;
    p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
