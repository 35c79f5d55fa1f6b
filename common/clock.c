/*
 * common/clock.c: monotonic and wall clocks, CPU time and peak memory, for
 * progress lines, run records and benchmarks.
 */
#include "wp.h"

#include <sys/resource.h>
#include <time.h>

double wp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t wp_unix_time(void)
{
    return (int64_t)time(NULL);
}

double wp_cpu_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t wp_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss; /* Linux reports kilobytes */
}
