/*
 * image/budget.c: the process-wide budget of decoded-pixel memory.
 *
 * A small compressed file can decode to hundreds of megabytes (a 315 KB
 * 9000 x 9000 RGBA PNG needs 0.55 GB while it is decoded and converted),
 * and every decoding thread of a stage may meet one at once. Each decode
 * first charges what it will need at most to this budget and waits while
 * other decodes hold it; what it returns stays charged until img_free. A
 * decode that alone needs more than the whole budget is refused
 * (IMG_ETOOBIG) instead of waiting forever. No thread holds a charge while
 * waiting for another, so the waits cannot deadlock.
 */
#include "image/img_int.h"

#include <pthread.h>

static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_freed = PTHREAD_COND_INITIALIZER;
static int64_t budget_cap = IMG_BUDGET_DEFAULT;
static int64_t budget_used, budget_peak;

void img_budget_set(int64_t bytes)
{
    pthread_mutex_lock(&budget_lock);
    budget_cap = bytes;
    budget_peak = budget_used;
    pthread_cond_broadcast(&budget_freed);
    pthread_mutex_unlock(&budget_lock);
}

int64_t img_budget_get(void)
{
    pthread_mutex_lock(&budget_lock);
    int64_t c = budget_cap;
    pthread_mutex_unlock(&budget_lock);
    return c;
}

int64_t img_budget_peak(void)
{
    pthread_mutex_lock(&budget_lock);
    int64_t p = budget_peak;
    pthread_mutex_unlock(&budget_lock);
    return p;
}

int img_budget_acquire(int64_t bytes, const char *what, wp_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&budget_lock);
    if (budget_cap > 0 && bytes > budget_cap) {
        rc = wp_err_set(err, IMG_ETOOBIG,
                        "%s: decoding needs %lld MB, more than the %lld MB decode budget", what,
                        (long long)(bytes >> 20), (long long)(budget_cap >> 20));
    } else {
        while (budget_cap > 0 && budget_used > 0 && budget_used + bytes > budget_cap)
            pthread_cond_wait(&budget_freed, &budget_lock);
        budget_used += bytes;
        if (budget_used > budget_peak)
            budget_peak = budget_used;
    }
    pthread_mutex_unlock(&budget_lock);
    return rc;
}

void img_budget_release(int64_t bytes)
{
    if (bytes <= 0)
        return;
    pthread_mutex_lock(&budget_lock);
    budget_used -= bytes;
    pthread_cond_broadcast(&budget_freed);
    pthread_mutex_unlock(&budget_lock);
}

int64_t img_budget_need(int64_t pixels)
{
    return pixels > 0 ? pixels * IMG_BUDGET_PER_PIXEL : 0;
}
