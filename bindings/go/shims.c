// C shims of the Go binding; see shims.h. Kept apart from the //export trampolines
// (callbacks.go): a cgo file with //export may only declare C functions in its preamble.

#include "shims.h"

#include <stdlib.h>
#include <string.h>

#include "_cgo_export.h"

_Static_assert(sizeof(uintptr_t) == sizeof(void *), "uintptr_t and void * differ in size");
_Static_assert(sizeof(pmapgo_result) == sizeof(pmap_result), "pmapgo_result layout");
_Static_assert(offsetof(pmapgo_result, item) == offsetof(pmap_result, item), "item offset");
_Static_assert(offsetof(pmapgo_result, value) == offsetof(pmap_result, value), "value offset");
_Static_assert(offsetof(pmapgo_result, status) == offsetof(pmap_result, status), "status");
_Static_assert(offsetof(pmapgo_result, worker) == offsetof(pmap_result, worker), "worker");

// ---- Go-callback pools -------------------------------------------------------------

// Runs on a pool worker thread; the trampoline never lets a Go panic out.
static int32_t go_work(void *ctx, void *worker_state, void *item, void **result) {
  (void)worker_state;
  *result = NULL;
  return pmapgoWork((uintptr_t)ctx, (uintptr_t)item);
}

// Runs inside pmap_free, on the thread that frees, for every item never handed back.
static void go_drop(void *ctx, const pmap_result *r) {
  pmapgoDrop((uintptr_t)ctx, (uintptr_t)r->item);
}

static void set_message(char *msg, size_t cap, const char *text) {
  if (msg == NULL || cap == 0) return;
  strncpy(msg, text, cap - 1);
  msg[cap - 1] = '\0';
}

// pmap_last_error is per thread: copy it before Go can move to another thread.
static void copy_message(char *msg, size_t cap) { set_message(msg, cap, pmap_last_error()); }

static void fill_options(pmap_options *o, const pmapgo_config *cfg) {
  pmap_options_init(o);
  o->workers = cfg->workers;
  o->capacity = cfg->capacity;
  o->ordered = cfg->ordered;
  o->fail_fast = cfg->fail_fast;
  o->name = cfg->name;
}

pmap_status pmapgo_new_go(const pmapgo_config *cfg, uintptr_t ctx, pmap_pool **out, char *msg,
                          size_t msg_cap) {
  pmap_options o;
  fill_options(&o, cfg);
  o.work = go_work;
  o.on_drop = go_drop;
  o.ctx = (void *)ctx;
  pmap_status st = pmap_new(&o, out);
  if (st != PMAP_OK) copy_message(msg, msg_cap);
  return st;
}

// ---- C-function pools --------------------------------------------------------------

// Runs the user's work function over one chunk on a worker thread. Returns the first
// failing item's code, so the pool counts the chunk as failed and fail_fast can act.
static int32_t chunk_run(void *ctx, void *worker_state, void *item, void **result) {
  pmapgo_cfunc *cf = ctx;
  pmapgo_chunk *c = item;
  int32_t first = 0;
  size_t i = 0, ok = 0, failed = 0;
  *result = NULL;
  for (; i < c->n; i++) {
    // Cancel stops a chunk between items: the rest come back cancelled, as whole
    // pool items do.
    if (pmap_is_cancelled(cf->pool)) break;
    void *out = NULL;
    int32_t code = cf->work(cf->ctx, worker_state, (void *)c->items[i], &out);
    c->codes[i] = code;
    if (code == 0) {
      c->values[i] = (uintptr_t)out;
      c->status[i] = PMAP_ITEM_OK;
      ok++;
    } else {
      c->values[i] = 0;
      c->status[i] = PMAP_ITEM_FAILED;
      failed++;
      if (first == 0) first = code;
      // fail_fast acts per item, as it would if every item were its own pool item.
      if (cf->fail_fast) pmap_cancel(cf->pool);
    }
  }
  c->ok = ok;
  c->failed = failed;
  for (; i < c->n; i++) {
    c->values[i] = 0;
    c->codes[i] = 0;
    c->status[i] = PMAP_ITEM_CANCELLED;
  }
  return first;
}

static void *chunk_init(void *ctx, uint32_t worker_id) {
  pmapgo_cfunc *cf = ctx;
  return cf->init(cf->ctx, worker_id);
}

static void chunk_exit(void *ctx, uint32_t worker_id, void *worker_state) {
  pmapgo_cfunc *cf = ctx;
  cf->exit(cf->ctx, worker_id, worker_state);
}

pmap_status pmapgo_new_c(const pmapgo_config *cfg, void *work, void *ctx, void *init, void *exit,
                         pmap_pool **out, pmapgo_cfunc **cf_out, char *msg, size_t msg_cap) {
  if (work == NULL) {
    set_message(msg, msg_cap, "pmap_new: PMAP_INVALID: CFunc.Work is nil: a C work function is required");
    return PMAP_INVALID;
  }
  pmapgo_cfunc *cf = calloc(1, sizeof *cf);
  if (cf == NULL) {
    set_message(msg, msg_cap, "pmap_new: PMAP_SYSTEM: out of memory");
    return PMAP_SYSTEM;
  }
  // The C function pointers reach Go as void * (cgo has no portable function-pointer
  // type across packages); POSIX guarantees the round trip.
  cf->work = (pmap_work_fn)work;
  cf->ctx = ctx;
  cf->init = (pmap_worker_init_fn)init;
  cf->exit = (pmap_worker_exit_fn)exit;
  cf->fail_fast = cfg->fail_fast;
  pmap_options o;
  fill_options(&o, cfg);
  o.work = chunk_run;
  o.ctx = cf;
  o.worker_init = init != NULL ? chunk_init : NULL;
  o.worker_exit = exit != NULL ? chunk_exit : NULL;
  pmap_status st = pmap_new(&o, out);
  if (st != PMAP_OK) {
    copy_message(msg, msg_cap);
    free(cf);
    return st;
  }
  // Set before any submit: workers read it only for items, which reach them through the
  // pool's queue after this store.
  cf->pool = *out;
  *cf_out = cf;
  return st;
}

void pmapgo_cfunc_free(pmapgo_cfunc *cf) { free(cf); }

pmapgo_chunk *pmapgo_chunk_new(uintptr_t slot, size_t cap) {
  if (cap == 0) cap = 1;
  size_t words = sizeof(uintptr_t) * cap;
  size_t size = sizeof(pmapgo_chunk) + 2 * words + sizeof(int32_t) * cap + cap;
  char *mem = malloc(size);
  if (mem == NULL) return NULL;
  pmapgo_chunk *c = (pmapgo_chunk *)mem;
  c->slot = slot;
  c->n = 0;
  c->cap = cap;
  c->ok = 0;
  c->failed = 0;
  c->items = (uintptr_t *)(mem + sizeof(pmapgo_chunk));
  c->values = c->items + cap;
  c->codes = (int32_t *)(c->values + cap);
  c->status = (uint8_t *)(c->codes + cap);
  return c;
}

void pmapgo_chunk_free(pmapgo_chunk *c) { free(c); }

// ---- casts -------------------------------------------------------------------------

pmap_status pmapgo_submit(pmap_pool *pool, uintptr_t item, int64_t timeout_ns) {
  return pmap_submit(pool, (void *)item, timeout_ns);
}

pmap_status pmapgo_submit_many(pmap_pool *pool, const uintptr_t *items, size_t n,
                               size_t *accepted, int64_t timeout_ns) {
  // uintptr_t and void * have the same size and representation on every platform Go
  // supports (asserted above), so the array is read as is.
  return pmap_submit_many(pool, (void *const *)items, n, accepted, timeout_ns);
}

pmap_status pmapgo_submit_chunks(pmap_pool *pool, pmapgo_chunk *const *chunks, size_t n,
                                 size_t *accepted, int64_t timeout_ns) {
  return pmap_submit_many(pool, (void *const *)chunks, n, accepted, timeout_ns);
}

pmap_status pmapgo_next_many(pmap_pool *pool, pmapgo_result *out, size_t max, size_t *got,
                             int64_t timeout_ns) {
  return pmap_next_many(pool, (pmap_result *)out, max, got, timeout_ns);
}

pmap_status pmapgo_next_chunks(pmap_pool *pool, pmapgo_result *out, size_t max, size_t *got,
                               int64_t timeout_ns) {
  pmap_status st = pmap_next_many(pool, (pmap_result *)out, max, got, timeout_ns);
  for (size_t i = 0; i < *got; i++) {
    out[i].item = ((pmapgo_chunk *)out[i].item)->slot;
  }
  return st;
}
