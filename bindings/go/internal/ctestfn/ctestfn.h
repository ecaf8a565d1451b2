// C work functions for the tests and benchmarks of the pmap Go binding.
#ifndef CTESTFN_H
#define CTESTFN_H

#include <stdint.h>

int32_t ctest_square(void *ctx, void *ws, void *item, void **out);
int32_t ctest_fail_odd(void *ctx, void *ws, void *item, void **out);
int32_t ctest_spin(void *ctx, void *ws, void *item, void **out);
int32_t ctest_gated(void *ctx, void *ws, void *item, void **out);
void ctest_set_gate(int open);
long ctest_gated_calls(void);
void ctest_reset_gated_calls(void);
void *ctest_counting_init(void *ctx, uint32_t worker);
void ctest_counting_exit(void *ctx, uint32_t worker, void *state);
int32_t ctest_counting_work(void *ctx, void *ws, void *item, void **out);
long ctest_inits(void);
long ctest_exits(void);
long ctest_items_by_state(void);
uint64_t *ctest_new_iters(uint64_t n);
void ctest_free_iters(uint64_t *p);
uintptr_t ctest_call_spin(uint64_t *iters, uintptr_t item);

#endif
