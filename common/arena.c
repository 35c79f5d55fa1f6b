/*
 * common/arena.c: bump allocation for memory that lives and dies together,
 * such as everything extracted from one HTML page or one encode batch.
 *
 * Blocks form a singly linked list; reset keeps the first block so a loop
 * that resets per item reaches a steady state with no malloc at all.
 */
#include "wp.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct wp_arena {
    struct block *head; /* current block (newest) */
    struct block *first;
    size_t block_size;
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

wp_arena *wp_arena_new(size_t block_size)
{
    wp_arena *a = malloc(sizeof *a);
    if (a == NULL)
        return NULL;
    if (block_size < 256)
        block_size = 256;
    a->block_size = block_size;
    a->first = a->head = block_new(block_size);
    if (a->first == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void *wp_arena_alloc(wp_arena *a, size_t n)
{
    size_t off = (a->head->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0)
        n = 1;
    if (off > a->head->size || n > a->head->size - off) {
        size_t size = n > a->block_size ? n : a->block_size;
        struct block *b = block_new(size);
        if (b == NULL)
            return NULL;
        /* New blocks go after the first so reset can keep just the first. */
        b->next = a->head;
        a->head = b;
        off = 0;
    }
    a->head->used = off + n;
    return a->head->data + off;
}

void *wp_arena_calloc(wp_arena *a, size_t n)
{
    void *p = wp_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *wp_arena_strndup(wp_arena *a, const char *s, size_t n)
{
    char *p = wp_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *wp_arena_strdup(wp_arena *a, const char *s)
{
    return wp_arena_strndup(a, s, strlen(s));
}

char *wp_arena_sprintf(wp_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (p = wp_arena_alloc(a, (size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t wp_arena_used(const wp_arena *a)
{
    size_t n = 0;
    for (const struct block *b = a->head; b != NULL; b = b->next)
        n += b->used;
    return n;
}

void wp_arena_reset(wp_arena *a)
{
    struct block *b = a->head;
    while (b != a->first) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
}

void wp_arena_free(wp_arena *a)
{
    if (a == NULL)
        return;
    wp_arena_reset(a);
    free(a->first);
    free(a);
}
