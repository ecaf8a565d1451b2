/* OpenMP `parallel for schedule(dynamic[, chunk])`: a bulk loop over a known count that
 * writes into an array, checked afterwards. Not streaming (memory grows with n, no
 * results before the end): an upper bound on what a scheduler can do with this work. */
#include <omp.h>
#include <stdlib.h>

#include "driver.h"

void timer_start(void);
void timer_stop(void);

const char *run_omp(const bench_params *p, bench_check *c) {
    uintptr_t *out = malloc(p->n * sizeof *out);
    if (!out) return "out of memory";
    int threads = p->workers ? (int)p->workers : omp_get_max_threads();
    omp_set_schedule(omp_sched_dynamic, p->chunk ? (int)p->chunk : 1);
    work_fn fn = p->fn;
    long long n = (long long)p->n;
    timer_start();
#pragma omp parallel for schedule(runtime) num_threads(threads)
    for (long long i = 0; i < n; i++) out[i] = fn((uintptr_t)i + 1);
    for (uint64_t i = 0; i < p->n; i++) check_one(c, i, (uintptr_t)i + 1, out[i]);
    timer_stop();
    free(out);
    return NULL;
}
