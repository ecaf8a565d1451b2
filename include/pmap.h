/*
 * pmap: a streaming, bounded, cancellable parallel map.
 *
 * Generated from the Rust sources by cbindgen (see build.rs); do not edit.
 * Meaning of every call: README.md and ../shared/API.md. Conventions, in brief:
 *  - every call returns a pmap_status; out-parameters are written only on PMAP_OK
 *    (except *accepted and *got, always written);
 *  - timeouts are in nanoseconds: < 0 waits forever, 0 never waits;
 *  - every call may come from any thread; the pool owns nothing of yours except what you
 *    lend it (items until they come back from pmap_next or on_drop);
 *  - no call ever unwinds or aborts on bad input; details in pmap_last_error().
 */

#ifndef PMAP_H
#define PMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Version of this header; compare with pmap_version() at run time. */
#define PMAP_VERSION_MAJOR 0
#define PMAP_VERSION_MINOR 1
#define PMAP_VERSION_PATCH 0
#define PMAP_VERSION_STRING "0.1.0"


/**
 * Item status: the work function returned 0; `value` holds its output.
 */
#define PMAP_ITEM_OK 0

/**
 * Item status: the work function returned the non-zero code in `error`.
 */
#define PMAP_ITEM_FAILED 1

/**
 * Item status: the item never ran because the pool was cancelled.
 */
#define PMAP_ITEM_CANCELLED 2

/**
 * Item status: the source failed at this index; `item` is NULL, the code is in `error`.
 */
#define PMAP_ITEM_SOURCE_FAILED 3

/**
 * `pmap_result.worker` of an item that never ran.
 */
#define PMAP_NO_WORKER UINT32_MAX

/**
 * Opaque handle to a pool. Created by `pmap_new`, destroyed by `pmap_free`.
 */
typedef struct pmap_pool pmap_pool;

/**
 * The work function: maps one item.
 *
 * Runs on a worker thread, concurrently with itself on other workers. `ctx` is
 * `pmap_options.ctx`; `worker_state` is what `worker_init` returned on this thread (or
 * NULL). Return 0 and store the output in `*result`, or return a non-zero error code
 * (then `*result` is ignored). `item` stays owned by the caller and comes back in the
 * result. May call `pmap_is_cancelled`, `pmap_cancel`, and non-blocking calls on its
 * own pool; blocking calls on its own pool return `PMAP_INVALID`.
 */
typedef int32_t (*pmap_work_fn)(void *ctx, void *worker_state, void *item, void **result);

/**
 * Runs once on each worker thread when the pool starts, before that worker takes any
 * item. Returns the worker's state, passed to `work` and `worker_exit` on that thread.
 */
typedef void *(*pmap_worker_init_fn)(void *ctx, uint32_t worker_id);

/**
 * Runs once on each worker thread when the pool is freed, after every `on_drop` call.
 */
typedef void (*pmap_worker_exit_fn)(void *ctx, uint32_t worker_id, void *worker_state);

/**
 * The pull source: store the next item in `*item` and return 1, return 0 at the end of
 * input, or a negative error code. Called only from the pool's feeder thread, one call
 * at a time, so it need not be thread-safe. Any other return value counts as an error.
 */
typedef int32_t (*pmap_source_fn)(void *ctx, void **item);

/**
 * One item handed back by `pmap_next`.
 */
typedef struct pmap_result {
  /**
   * Position in the input: 0, 1, 2 … in submission order.
   */
  uint64_t index;
  /**
   * The item as submitted (NULL for a source failure); the caller owns it again.
   */
  void *item;
  /**
   * The work function's output when `status == PMAP_ITEM_OK`, else NULL.
   */
  void *value;
  /**
   * One of the `PMAP_ITEM_*` values.
   */
  int32_t status;
  /**
   * The work function's or the source's code when failed; 0 otherwise.
   */
  int32_t error;
  /**
   * Worker that ran the item (0 … workers−1), or `PMAP_NO_WORKER`.
   */
  uint32_t worker;
} pmap_result;

/**
 * Called by `pmap_free`, on the thread calling `pmap_free`, once for every item that
 * was accepted but never handed back by `pmap_next`, so the caller can free `item` (and
 * `value`, when the status is `PMAP_ITEM_OK`). `result` is valid only during the call.
 */
typedef void (*pmap_drop_fn)(void *ctx, const struct pmap_result *result);

/**
 * Options for `pmap_new`. Fill with `pmap_options_init`, then set what you need.
 */
typedef struct pmap_options {
  /**
   * `sizeof(pmap_options)`, set by `pmap_options_init`; lets the struct grow.
   */
  uint32_t struct_size;
  /**
   * Worker threads; 0 = the CPUs this process may use (affinity and cgroups respected).
   */
  uint32_t workers;
  /**
   * Most items in flight (submitted, not yet handed back); 0 = max(4096, 256 × workers).
   */
  uint32_t capacity;
  /**
   * Hand results back in submission order (default true).
   */
  bool ordered;
  /**
   * After the first failed item, the pool cancels itself (default false).
   */
  bool fail_fast;
  /**
   * The work function (required).
   */
  pmap_work_fn work;
  /**
   * Passed to every callback; shared by all threads, so it must be thread-safe.
   */
  void *ctx;
  /**
   * Optional per-worker constructor.
   */
  pmap_worker_init_fn worker_init;
  /**
   * Optional per-worker destructor.
   */
  pmap_worker_exit_fn worker_exit;
  /**
   * Optional pull source; when set, `pmap_submit` is refused.
   */
  pmap_source_fn source;
  /**
   * Optional release hook for items never handed back (see `pmap_free`).
   */
  pmap_drop_fn on_drop;
  /**
   * Optional thread-name prefix (`pmap-<name>-<id>`); copied by `pmap_new`.
   */
  const char *name;
} pmap_options;

/**
 * Status of a call: one of the `PMAP_*` values below.
 */
typedef int32_t pmap_status;

/**
 * Counters of a pool, consistent with each other at the moment read.
 */
typedef struct pmap_stats {
  /**
   * Items accepted (a source failure counts as one).
   */
  uint64_t submitted;
  /**
   * Items whose work function returned 0.
   */
  uint64_t succeeded;
  /**
   * Items whose work function failed, plus source failures.
   */
  uint64_t failed;
  /**
   * Items that never ran because the pool was cancelled.
   */
  uint64_t cancelled;
  /**
   * Accepted and not yet handed back by `pmap_next`.
   */
  uint64_t in_flight;
  /**
   * Worker threads.
   */
  uint32_t workers;
  /**
   * Nanoseconds since `pmap_new`.
   */
  uint64_t elapsed_ns;
  /**
   * Nanoseconds spent inside the work function, summed over workers.
   */
  uint64_t busy_ns;
} pmap_stats;

/**
 * Success.
 */
#define PMAP_OK 0

/**
 * `pmap_next`: input closed (or pool cancelled) and every item handed back. Returned
 * again by every later call.
 */
#define PMAP_DONE 1

/**
 * The timeout expired before the call could complete (`0` = do not wait).
 */
#define PMAP_TIMEOUT 2

/**
 * `pmap_submit`: the input was closed with `pmap_close`.
 */
#define PMAP_CLOSED 3

/**
 * `pmap_submit`: the pool was cancelled (by `pmap_cancel` or `fail_fast`).
 */
#define PMAP_CANCELLED 4

/**
 * Bad argument, or a call not allowed here; `pmap_last_error()` says which.
 */
#define PMAP_INVALID 5

/**
 * The operating system refused a resource (e.g. threads); nothing leaked.
 */
#define PMAP_SYSTEM 6

/**
 * A bug inside pmap was caught; the process is intact. Please report it.
 */
#define PMAP_INTERNAL 7

/**
 * The pool was created before `fork()`; in the child only `pmap_free` works.
 */
#define PMAP_FORKED 8

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Fill `opts` with the defaults: `struct_size = sizeof(pmap_options)`, `workers = 0` (one
 * per CPU), `capacity = 0` (the default window), `ordered = true`, `fail_fast = false`,
 * every pointer NULL.
 *
 * Parameters: `opts`, the struct to fill; NULL is ignored.
 * Thread: any.
 *
 * # Safety
 * `opts` is NULL or points to a writable `pmap_options`.
 */
void pmap_options_init(struct pmap_options *opts);

/**
 * Create a pool and start its worker threads (and its feeder thread when `opts->source`
 * is set).
 *
 * Parameters: `opts`, initialised with `pmap_options_init` (read during the call only;
 * `name` is copied); `out`, where the new pool is stored.
 * Returns: `PMAP_OK` (and `*out` set); `PMAP_INVALID` for NULL arguments or bad options
 * (no work function, a `struct_size` from no known layout, more than 4096 workers or
 * 2^30 capacity); `PMAP_SYSTEM` when threads could not be started (nothing leaks).
 * `*out` is written only on `PMAP_OK`.
 * Ownership: the caller owns the pool and must release it with `pmap_free`.
 * Thread: any.
 *
 * # Safety
 * `opts` is NULL or points to `opts->struct_size` readable bytes; `out` is NULL or writable.
 */
pmap_status pmap_new(const struct pmap_options *opts, struct pmap_pool **out);

/**
 * Submit one item, waiting up to `timeout_ns` for room.
 *
 * Parameters: `item`, any pointer (NULL allowed), lent to the pool until it comes back
 * from `pmap_next` or `on_drop`; `timeout_ns`: `< 0` waits forever, `0` never waits.
 * Returns: `PMAP_OK` (accepted, it gets the next index); `PMAP_TIMEOUT` (`capacity` items
 * in flight the whole time); `PMAP_CLOSED`; `PMAP_CANCELLED`; `PMAP_INVALID` (NULL pool,
 * a pool with a `source`, or a wait from inside the pool's own callback); `PMAP_FORKED`.
 * On any status but `PMAP_OK` the caller still owns `item`.
 * Thread: any; several producers may submit at once. Deadlock potential: only
 * `pmap_next` makes room, so a thread that both submits and consumes must submit with
 * timeout 0 and drain on `PMAP_TIMEOUT`.
 *
 * # Safety
 * `pool` is NULL or a live pool from `pmap_new`.
 */
pmap_status pmap_submit(struct pmap_pool *pool, void *item, int64_t timeout_ns);

/**
 * Submit `items[0..n)` in order, accepting as long a prefix as fits within `timeout_ns`.
 *
 * Parameters: `items`, `n` pointers (may be NULL when `n == 0`); `accepted`, where the
 * number accepted is stored (always written when the call gets that far).
 * Returns: `PMAP_OK` when all `n` were accepted; otherwise the status that stopped it
 * (`PMAP_TIMEOUT`, `PMAP_CLOSED`, `PMAP_CANCELLED`, …) with `*accepted < n`. Items
 * `items[*accepted..n)` stay with the caller.
 * Thread: any.
 *
 * # Safety
 * `pool` is NULL or live; `items` points to `n` pointers; `accepted` is NULL or writable.
 */
pmap_status pmap_submit_many(struct pmap_pool *pool,
                             void *const *items,
                             size_t n,
                             size_t *accepted,
                             int64_t timeout_ns);

/**
 * End of input: later submits return `PMAP_CLOSED`, and `pmap_next` returns `PMAP_DONE`
 * once every accepted item has been handed back. In source mode, stops the feeder from
 * pulling more. Idempotent.
 *
 * Returns: `PMAP_OK`; `PMAP_INVALID` (NULL pool); `PMAP_FORKED`.
 * Thread: any, including inside a callback.
 *
 * # Safety
 * `pool` is NULL or a live pool from `pmap_new`.
 */
pmap_status pmap_close(struct pmap_pool *pool);

/**
 * Take the next result, waiting up to `timeout_ns` (like `sqlite3_step`).
 *
 * Parameters: `out`, written only on `PMAP_OK`.
 * Returns: `PMAP_OK` (ordered pools return indices 0, 1, 2 … with no gap; unordered ones
 * as items finish); `PMAP_DONE` when the input is closed (or the pool cancelled) and
 * every item has been handed back, and again on every later call; `PMAP_TIMEOUT`;
 * `PMAP_INVALID` (NULL argument, or a wait from inside the pool's own callback);
 * `PMAP_FORKED`.
 * Ownership: `out->item` and `out->value` belong to the caller from now on.
 * Thread: any; several consumers may call at once (each result goes to one of them).
 *
 * # Safety
 * `pool` is NULL or live; `out` is NULL or writable.
 */
pmap_status pmap_next(struct pmap_pool *pool, struct pmap_result *out, int64_t timeout_ns);

/**
 * Take up to `max` results: waits (up to `timeout_ns`) for the first, then takes
 * whatever else is ready without waiting.
 *
 * Parameters: `out`, room for `max` results (`out[0..*got)` written on `PMAP_OK`);
 * `got`, always written (0 unless `PMAP_OK`).
 * Returns: as `pmap_next`; `PMAP_INVALID` also when `max == 0`.
 * Thread: any.
 *
 * # Safety
 * `pool` is NULL or live; `out` has room for `max` results; `got` is NULL or writable.
 */
pmap_status pmap_next_many(struct pmap_pool *pool,
                           struct pmap_result *out,
                           size_t max,
                           size_t *got,
                           int64_t timeout_ns);

/**
 * Stop the pool (like `sqlite3_interrupt`): no new item starts; items not started come
 * back from `pmap_next` with `PMAP_ITEM_CANCELLED` and are never passed to `work`; items
 * already running finish and come back normally. Later submits return
 * `PMAP_CANCELLED`; `pmap_next` returns `PMAP_DONE` once every item has been handed
 * back. Idempotent.
 *
 * Returns: `PMAP_OK`; `PMAP_INVALID` (NULL pool); `PMAP_FORKED`.
 * Thread: any, including inside a callback of this pool; never waits for work.
 *
 * # Safety
 * `pool` is NULL or a live pool from `pmap_new`.
 */
pmap_status pmap_cancel(struct pmap_pool *pool);

/**
 * Release a pool: cancels it, waits for running items to finish, calls `on_drop` (on
 * this thread) for every item not yet handed back, runs `worker_exit` on every worker,
 * joins every thread and frees everything. In a forked child it only frees memory: no
 * callback runs and no thread is joined.
 *
 * Parameters: `pool`, from `pmap_new`; NULL is a harmless no-op. Must not be used again
 * after `PMAP_OK` (use after free is undefined behaviour).
 * Returns: `PMAP_OK`; `PMAP_INVALID` when called from inside one of this pool's own
 * callbacks (the pool is left intact).
 * Thread: any thread other than the pool's own; no other call on this pool may be in
 * progress or start.
 *
 * # Safety
 * `pool` is NULL or a live pool from `pmap_new`, not used by any other call now or later.
 */
pmap_status pmap_free(struct pmap_pool *pool);

/**
 * Read the pool's counters.
 *
 * Parameters: `out`, written only on `PMAP_OK`.
 * Returns: `PMAP_OK`; `PMAP_INVALID` (NULL argument); `PMAP_FORKED`.
 * Thread: any.
 *
 * # Safety
 * `pool` is NULL or live; `out` is NULL or writable.
 */
pmap_status pmap_stats_get(const struct pmap_pool *pool, struct pmap_stats *out);

/**
 * Whether the pool has been cancelled (by `pmap_cancel`, `fail_fast` or `pmap_free`).
 * A long work function may poll it to stop early. NULL gives false.
 *
 * Thread: any, including inside callbacks; never blocks.
 *
 * # Safety
 * `pool` is NULL or a live pool from `pmap_new`.
 */
bool pmap_is_cancelled(const struct pmap_pool *pool);

/**
 * A static, human-readable description of a status code (never NULL; unknown codes
 * give a "PMAP_UNKNOWN" string).
 *
 * Thread: any.
 */
const char *pmap_status_str(pmap_status status);

/**
 * The message of this thread's last failed call ("" if none), e.g.
 * "pmap_new: PMAP_INVALID: opts->work is NULL: a work function is required".
 *
 * Ownership: the string belongs to pmap; it stays valid until this thread's next failed
 * call. Thread: any (each thread has its own message).
 */
const char *pmap_last_error(void);

/**
 * The library version, e.g. "0.1.0" (matches `PMAP_VERSION_STRING` when the header and
 * the library agree). Static; never NULL.
 *
 * Thread: any.
 */
const char *pmap_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PMAP_H */
