// C work functions for the tests and benchmarks of the pmap Go binding (see ctestfn.go).
// Not static: Go takes their addresses (C.ctest_square as a value).

#include "ctestfn.h"
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// item -> item * item.
int32_t ctest_square(void *ctx, void *ws, void *item, void **out) {
  (void)ctx; (void)ws;
  uintptr_t x = (uintptr_t)item;
  *out = (void *)(x * x);
  return 0;
}

// Fails odd items with code 7; even ones map to item + 1.
int32_t ctest_fail_odd(void *ctx, void *ws, void *item, void **out) {
  (void)ctx; (void)ws;
  uintptr_t x = (uintptr_t)item;
  if (x % 2 == 1) return 7;
  *out = (void *)(x + 1);
  return 0;
}

// Burns `*(uint64_t *)ctx` iterations of arithmetic, then returns item * 3. With a known
// iteration count this is a C function of a chosen cost (sub-microsecond to 10 µs).
int32_t ctest_spin(void *ctx, void *ws, void *item, void **out) {
  (void)ws;
  uint64_t iters = *(const uint64_t *)ctx;
  uint64_t acc = (uint64_t)(uintptr_t)item;
  for (uint64_t i = 0; i < iters; i++) {
    acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
    __asm__ volatile("" : "+r"(acc));
  }
  *out = (void *)((uintptr_t)item * 3 + (acc & 0));
  return 0;
}

// Waits until the gate opens (or 5 s pass), then returns item. Counts the calls.
static atomic_int gate_open;
static atomic_long gated_calls;
int32_t ctest_gated(void *ctx, void *ws, void *item, void **out) {
  (void)ctx; (void)ws;
  atomic_fetch_add(&gated_calls, 1);
  struct timespec ts = {0, 100000};
  for (int i = 0; i < 50000 && !atomic_load(&gate_open); i++) nanosleep(&ts, NULL);
  *out = item;
  return 0;
}
void ctest_set_gate(int open) { atomic_store(&gate_open, open); }
long ctest_gated_calls(void) { return atomic_load(&gated_calls); }
void ctest_reset_gated_calls(void) { atomic_store(&gated_calls, 0); }

// Worker state: init returns a counter of items run by that worker; exit adds it to the
// totals and frees it.
static atomic_long inits, exits, items_by_state;
void *ctest_counting_init(void *ctx, uint32_t worker) {
  (void)ctx; (void)worker;
  atomic_fetch_add(&inits, 1);
  return calloc(1, sizeof(long));
}
void ctest_counting_exit(void *ctx, uint32_t worker, void *state) {
  (void)ctx; (void)worker;
  atomic_fetch_add(&exits, 1);
  atomic_fetch_add(&items_by_state, *(long *)state);
  free(state);
}
int32_t ctest_counting_work(void *ctx, void *ws, void *item, void **out) {
  (void)ctx;
  *(long *)ws += 1;
  *out = item;
  return 0;
}
long ctest_inits(void) { return atomic_load(&inits); }
long ctest_exits(void) { return atomic_load(&exits); }
long ctest_items_by_state(void) { return atomic_load(&items_by_state); }

uint64_t *ctest_new_iters(uint64_t n) {
  uint64_t *p = malloc(sizeof *p);
  *p = n;
  return p;
}
void ctest_free_iters(uint64_t *p) { free(p); }

// The plain C call of a work function, for the one-cgo-call-per-item baseline.
uintptr_t ctest_call_spin(uint64_t *iters, uintptr_t item) {
  void *out = NULL;
  ctest_spin(iters, NULL, (void *)item, &out);
  return (uintptr_t)out;
}
