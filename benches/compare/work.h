/* The work functions every contender of the comparison harness runs.
 *
 * Compiled once (work.c, -O2) and linked into the one bench_compare binary; every contender
 * (serial loop, pmap, oneTBB, OpenMP) calls them through the same function pointer, so
 * they all pay the same call and the same work.
 *
 * An item is an integer x >= 1 (the input index + 1) carried in a pointer-sized value. Every
 * work function returns x itself, so a driver checks completeness and order by comparing
 * each output with the index it expects; the spin loops' own result goes to a sink that
 * the compiler cannot drop.
 */
#ifndef PMAP_BENCH_WORK_H
#define PMAP_BENCH_WORK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uintptr_t (*work_fn)(uintptr_t x);

/* Spin-loop iterations per microsecond on this machine, as bench_calibrate measured it. */
void work_set_calibration(double iters_per_us);
double work_calibration(void);

/* Measure the spin rate against CLOCK_MONOTONIC: the fastest of several trials of a few
 * milliseconds each, so a busy machine makes the calibration at worst a little short. */
double work_calibrate(void);

/* Spin for about `ns` nanoseconds of this thread's CPU (no clock reads in the loop). */
void work_spin_ns(uint64_t ns);

/* Select the work by name: "trivial", "spin:<ns>", "skew" (90% 1 us, 9% 10 us, 1% 1 ms,
 * chosen by a hash of x, so every contender gets the same cost for the same item), or
 * "sleep:<ns>" (nanosleep: blocking, no CPU). Returns NULL for an unknown name.
 * `mean_ns` receives the nominal mean cost per item (0 for trivial). */
work_fn work_select(const char *name, double *mean_ns);

/* Nominal cost class of item x under "skew", in nanoseconds. */
uint64_t work_skew_cost_ns(uintptr_t x);

#ifdef __cplusplus
}
#endif

#endif
