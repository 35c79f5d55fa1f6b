/*
 * common/mem.c: the process's memory budget (--max-memory; see wp.h).
 */
#include "wp.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MEM_BASE       ((int64_t)1 << 30)   /* the process itself: catalog, buffers */
#define MEM_PER_WORKER ((int64_t)512 << 20) /* each worker's share */

static _Atomic int64_t mem_set;

int64_t wp_mem_default(int workers)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t b = MEM_BASE + MEM_PER_WORKER * (workers > 2 ? workers : 2);
    if (pages > 0 && psize > 0) {
        int64_t half = (int64_t)pages * psize / 2;
        if (half > ((int64_t)2 << 30) && b > half)
            b = half;
        else if (half <= ((int64_t)2 << 30) && b > ((int64_t)2 << 30))
            b = (int64_t)2 << 30;
    }
    return b;
}

void wp_mem_set(int64_t bytes)
{
    atomic_store(&mem_set, bytes > 0 ? bytes : 0);
}

int wp_mem_is_set(void)
{
    return atomic_load(&mem_set) > 0;
}

int64_t wp_mem_budget(int workers)
{
    int64_t b = atomic_load(&mem_set);
    return b > 0 ? b : wp_mem_default(workers);
}

int wp_mem_parse(const char *s, int64_t *out, wp_err *err)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        goto bad;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        goto bad;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        goto bad;
    }
    if (*end != '\0') {
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end != '\0')
            goto bad;
    }
    if (v > (unsigned long long)INT64_MAX >> shift)
        goto bad;
    *out = (int64_t)(v << shift);
    return 0;
bad:
    return wp_err_set(err, WP_EINVAL, "'%s' is not a size (digits, then K, M, G or T)", s ? s : "");
}
