/* What every contender of bench_compare receives and reports. */
#ifndef PMAP_BENCH_DRIVER_H
#define PMAP_BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "work.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bench_params {
    work_fn fn;        /* the work, called through this pointer by every contender */
    uint64_t n;        /* items: inputs 1..n */
    int ordered;       /* 1: outputs must come back in input order */
    uint32_t workers;  /* threads; 0 = the library's default (all CPUs) */
    uint32_t capacity; /* pmap: most items in flight; 0 = pmap's default */
    uint32_t tokens;   /* oneTBB: max live tokens; 0 = 4 x threads */
    uint32_t chunk;    /* OpenMP: schedule(dynamic, chunk); 0 = 1, the OpenMP default */
    uint32_t batch;    /* pmap batch calls: items per call */
} bench_params;

/* Completeness and order: each driver feeds every output here, in the order it got it. */
typedef struct bench_check {
    uint64_t n, got, expect; /* expect: next index (0-based) in ordered mode */
    int ordered;
    uint8_t *seen;           /* unordered mode: one byte per index */
    const char *error;       /* first problem, or NULL */
} bench_check;

void check_init(bench_check *c, uint64_t n, int ordered);
/* `index` is the 0-based index the library reports (UINT64_MAX when it reports none),
 * `item` and `value` what came back; both must be index + 1. */
static inline void check_one(bench_check *c, uint64_t index, uintptr_t item, uintptr_t value) {
    uint64_t i = (index == UINT64_MAX) ? (uint64_t)item - 1 : index;
    c->got++;
    if (item != value || (uint64_t)item != i + 1 || i >= c->n) {
        if (!c->error) c->error = "an output does not match its input";
        return;
    }
    if (c->ordered) {
        if (i != c->expect && !c->error) c->error = "an output came back out of order";
        c->expect = i + 1;
    } else {
        if (c->seen[i] && !c->error) c->error = "an output came back twice";
        c->seen[i] = 1;
    }
}
/* NULL when all n outputs came back (in order when ordered), else what went wrong. */
const char *check_finish(bench_check *c);

/* Contenders. Each runs the whole map once and returns NULL or an error message. */
const char *run_serial(const bench_params *p, bench_check *c);
const char *run_pmap(const char *style, const bench_params *p, bench_check *c);
const char *run_tbb(const bench_params *p, bench_check *c);
const char *run_omp(const bench_params *p, bench_check *c);

#ifdef __cplusplus
}
#endif

#endif
