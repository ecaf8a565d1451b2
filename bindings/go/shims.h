/*
 * C side of the Go binding: casts between Go's integers and C's void pointers, the
 * pmap_options built from Go's settings, and the chunk runner of the C-function path.
 *
 * Go never holds a cgo.Handle, or a pointer it got from C, in a Go pointer type: the
 * values cross as uintptr_t and these shims turn them into void * (and back). That keeps
 * small handle numbers out of pointer slots that the Go runtime checks (checkptr, stack
 * copying) and keeps C pointers out of the garbage collector's sight.
 *
 * Declarations only: this header is also part of the cgo preamble of callbacks.go, which
 * has //export functions and so may not define C functions.
 */
#ifndef PMAPGO_SHIMS_H
#define PMAPGO_SHIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pmap.h"

/* Error codes the Go trampoline returns for an item (pmap_result.error). */
#define PMAPGO_ERR_FN 1       /* the Go function returned an error */
#define PMAPGO_ERR_PANIC 2    /* the Go function panicked */
#define PMAPGO_ERR_INTERNAL 3 /* the binding could not run the item (a bug) */

/* pmap_result with uintptr_t for its two pointers; the same layout (checked in shims.c). */
typedef struct pmapgo_result {
  uint64_t index;
  uintptr_t item;
  uintptr_t value;
  int32_t status;
  int32_t error;
  uint32_t worker;
} pmapgo_result;

/* The pmap_options fields Go sets; the callbacks are filled in by the shims. */
typedef struct pmapgo_config {
  uint32_t workers;
  uint32_t capacity;
  bool ordered;
  bool fail_fast;
  const char *name; /* NULL or a C string, copied by pmap_new */
} pmapgo_config;

/*
 * One chunk of the C-function path: n items run one after the other by a single call of
 * the chunk runner on one worker. One C allocation holds the header and the four arrays;
 * Go fills `items`, C fills `values`, `codes` and `status`.
 */
typedef struct pmapgo_chunk {
  uintptr_t slot;     /* Go's number for this chunk buffer */
  size_t n;           /* items in use */
  size_t cap;         /* room in each array */
  size_t ok;          /* items that succeeded (set by the run) */
  size_t failed;      /* items that failed (set by the run); the rest were cancelled */
  uintptr_t *items;   /* the items, passed to work as void * */
  uintptr_t *values;  /* work's output for items that succeeded, else 0 */
  int32_t *codes;     /* work's return code (0 on success) */
  uint8_t *status;    /* PMAP_ITEM_OK, PMAP_ITEM_FAILED or PMAP_ITEM_CANCELLED */
} pmapgo_chunk;

/* The user's C callbacks, passed as the pool's ctx in the C-function path. */
typedef struct pmapgo_cfunc {
  pmap_work_fn work;
  void *ctx;
  pmap_worker_init_fn init;
  pmap_worker_exit_fn exit;
  bool fail_fast;  /* cancel the pool at the first failed item */
  pmap_pool *pool; /* set before the first submit, for pmap_is_cancelled */
} pmapgo_cfunc;

/* Go-callback pools: work and on_drop call the //export trampolines with ctx = handle. */
pmap_status pmapgo_new_go(const pmapgo_config *cfg, uintptr_t ctx, pmap_pool **out, char *msg,
                          size_t msg_cap);

/*
 * C-function pools: each pool item is a chunk, run by calling `work` (a pmap_work_fn) on
 * its items in turn. `init` and `exit` (pmap_worker_init_fn / pmap_worker_exit_fn) may be
 * NULL. On PMAP_OK, *cf_out holds the callbacks; free it with pmapgo_cfunc_free after
 * pmap_free.
 */
pmap_status pmapgo_new_c(const pmapgo_config *cfg, void *work, void *ctx, void *init, void *exit,
                         pmap_pool **out, pmapgo_cfunc **cf_out, char *msg, size_t msg_cap);
void pmapgo_cfunc_free(pmapgo_cfunc *cf);

pmap_status pmapgo_submit(pmap_pool *pool, uintptr_t item, int64_t timeout_ns);
pmap_status pmapgo_submit_many(pmap_pool *pool, const uintptr_t *items, size_t n,
                               size_t *accepted, int64_t timeout_ns);
pmap_status pmapgo_next_many(pmap_pool *pool, pmapgo_result *out, size_t max, size_t *got,
                             int64_t timeout_ns);

/* pmapgo_next_many for chunk pools: out[i].item is the chunk's slot, not its address. */
pmap_status pmapgo_next_chunks(pmap_pool *pool, pmapgo_result *out, size_t max, size_t *got,
                               int64_t timeout_ns);

/* Allocate a chunk with room for cap items (NULL when out of memory); free it. */
pmapgo_chunk *pmapgo_chunk_new(uintptr_t slot, size_t cap);
void pmapgo_chunk_free(pmapgo_chunk *c);
/* pmap_submit_many for chunk pools: each chunk's address is the item. */
pmap_status pmapgo_submit_chunks(pmap_pool *pool, pmapgo_chunk *const *chunks, size_t n,
                                 size_t *accepted, int64_t timeout_ns);

#endif /* PMAPGO_SHIMS_H */
