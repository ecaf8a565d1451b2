/* See work.h. */
#define _GNU_SOURCE
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double g_iters_per_us = 0.0;
static uint64_t g_spin_ns = 0;       /* for "spin:<ns>" */
static uint64_t g_sleep_ns = 0;      /* for "sleep:<ns>" */
volatile uint64_t work_sink;         /* spin results land here (rarely) */

void work_set_calibration(double iters_per_us) { g_iters_per_us = iters_per_us; }
double work_calibration(void) { return g_iters_per_us; }

/* One dependent multiply-add per iteration: a fixed number of cycles, no memory traffic,
 * nothing shared between threads, so two cores spin at the same rate as one. */
static uint64_t spin_iters(uint64_t iters, uint64_t acc) {
    for (uint64_t i = 0; i < iters; i++) {
        acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
        __asm__ volatile("" : "+r"(acc));
    }
    return acc;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double work_calibrate(void) {
    const uint64_t iters = 20000000; /* ~10-30 ms */
    double best = 0.0;
    spin_iters(iters / 4, 1);        /* wake the core up */
    for (int t = 0; t < 9; t++) {
        uint64_t t0 = now_ns();
        uint64_t acc = spin_iters(iters, t);
        uint64_t dt = now_ns() - t0;
        if (acc == 42) work_sink = acc;
        double rate = (double)iters / ((double)dt / 1000.0);
        if (rate > best) best = rate;
    }
    return best;
}

void work_spin_ns(uint64_t ns) {
    uint64_t iters = (uint64_t)((double)ns * g_iters_per_us / 1000.0 + 0.5);
    uint64_t acc = spin_iters(iters, ns);
    if (acc == 42) work_sink = acc;  /* practically never; keeps the loop observable */
}

static uintptr_t w_trivial(uintptr_t x) { return x; }

static uintptr_t w_spin(uintptr_t x) {
    work_spin_ns(g_spin_ns);
    return x;
}

/* splitmix64: a fixed, well-mixed cost class per item. */
static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t work_skew_cost_ns(uintptr_t x) {
    uint64_t r = mix(x) % 100;
    if (r < 90) return 1000;
    if (r < 99) return 10000;
    return 1000000;
}

static uintptr_t w_skew(uintptr_t x) {
    work_spin_ns(work_skew_cost_ns(x));
    return x;
}

static uintptr_t w_sleep(uintptr_t x) {
    struct timespec ts = {(time_t)(g_sleep_ns / 1000000000ull), (long)(g_sleep_ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return x;
}

work_fn work_select(const char *name, double *mean_ns) {
    *mean_ns = 0.0;
    if (strcmp(name, "trivial") == 0) return w_trivial;
    if (strncmp(name, "spin:", 5) == 0) {
        g_spin_ns = strtoull(name + 5, NULL, 10);
        *mean_ns = (double)g_spin_ns;
        return w_spin;
    }
    if (strcmp(name, "skew") == 0) {
        *mean_ns = 0.90 * 1000 + 0.09 * 10000 + 0.01 * 1000000;
        return w_skew;
    }
    if (strncmp(name, "sleep:", 6) == 0) {
        g_sleep_ns = strtoull(name + 6, NULL, 10);
        *mean_ns = (double)g_sleep_ns;
        return w_sleep;
    }
    return NULL;
}
