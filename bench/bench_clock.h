/*
 * bench/bench_clock.h: timing shared by the C benchmarks: wall clock, the
 * OpenMP team's CPU time, and how busy other processes kept the CPUs, so
 * that figures taken on a shared machine can be judged (header only: each
 * benchmark source file is its own program).
 */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds used so far by the OpenMP team's threads, each reading its
 * own clock (the process-wide clock lags for threads running on other CPUs,
 * by up to a scheduler tick each). Time that other processes hold the CPUs
 * does not count, so flop / (cpu / threads) estimates the rate on an idle
 * machine; spinning OpenMP workers do count, which is fair. */
static inline double cpu_now(int nthr)
{
    double s = 0;
#pragma omp parallel num_threads(nthr) reduction(+ : s)
    {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        s += (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    return s;
}

/* Share of all CPUs' time spent by other processes between two samples. */
typedef struct {
    long long total, busy, self;
} cpu_sample;

static inline cpu_sample sample(void)
{
    cpu_sample s = {0, 0, 0};
    long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            for (int i = 0; i < 8; i++)
                s.total += v[i];
            s.busy = s.total - v[3] - v[4];
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[2048];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        long long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) == 2)
            s.self = ut + st;
        fclose(f);
    }
    return s;
}

static inline double others_pct(cpu_sample a, cpu_sample b)
{
    long long dt = b.total - a.total;
    if (dt <= 0)
        return 0;
    double o = (double)((b.busy - a.busy) - (b.self - a.self)) / (double)dt * 100.0;
    return o < 0 ? 0 : o;
}

#endif /* BENCH_CLOCK_H */
