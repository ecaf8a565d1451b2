//! Everything the header declares besides functions. cbindgen reads this file.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// Opaque handle to a pool. Created by `pmap_new`, destroyed by `pmap_free`.
pub struct pmap_pool {
    _private: [u8; 0],
}

/// Status of a call: one of the `PMAP_*` values below.
pub type pmap_status = i32;

/// Success.
pub const PMAP_OK: pmap_status = 0;
/// `pmap_next`: input closed (or pool cancelled) and every item handed back. Returned
/// again by every later call.
pub const PMAP_DONE: pmap_status = 1;
/// The timeout expired before the call could complete (`0` = do not wait).
pub const PMAP_TIMEOUT: pmap_status = 2;
/// `pmap_submit`: the input was closed with `pmap_close`.
pub const PMAP_CLOSED: pmap_status = 3;
/// `pmap_submit`: the pool was cancelled (by `pmap_cancel` or `fail_fast`).
pub const PMAP_CANCELLED: pmap_status = 4;
/// Bad argument, or a call not allowed here; `pmap_last_error()` says which.
pub const PMAP_INVALID: pmap_status = 5;
/// The operating system refused a resource (e.g. threads); nothing leaked.
pub const PMAP_SYSTEM: pmap_status = 6;
/// A bug inside pmap was caught; the process is intact. Please report it.
pub const PMAP_INTERNAL: pmap_status = 7;
/// The pool was created before `fork()`; in the child only `pmap_free` works.
pub const PMAP_FORKED: pmap_status = 8;

/// Item status: the work function returned 0; `value` holds its output.
pub const PMAP_ITEM_OK: i32 = 0;
/// Item status: the work function returned the non-zero code in `error`.
pub const PMAP_ITEM_FAILED: i32 = 1;
/// Item status: the item never ran because the pool was cancelled.
pub const PMAP_ITEM_CANCELLED: i32 = 2;
/// Item status: the source failed at this index; `item` is NULL, the code is in `error`.
pub const PMAP_ITEM_SOURCE_FAILED: i32 = 3;
/* 4 is reserved for PMAP_ITEM_TIMED_OUT. */

/// `pmap_result.worker` of an item that never ran.
pub const PMAP_NO_WORKER: u32 = u32::MAX;

/// The work function: maps one item.
///
/// Runs on a worker thread, concurrently with itself on other workers. `ctx` is
/// `pmap_options.ctx`; `worker_state` is what `worker_init` returned on this thread (or
/// NULL). Return 0 and store the output in `*result`, or return a non-zero error code
/// (then `*result` is ignored). `item` stays owned by the caller and comes back in the
/// result. May call `pmap_is_cancelled`, `pmap_cancel`, and non-blocking calls on its
/// own pool; blocking calls on its own pool return `PMAP_INVALID`.
pub type pmap_work_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        worker_state: *mut c_void,
        item: *mut c_void,
        result: *mut *mut c_void,
    ) -> i32,
>;

/// Runs once on each worker thread when the pool starts, before that worker takes any
/// item. Returns the worker's state, passed to `work` and `worker_exit` on that thread.
pub type pmap_worker_init_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, worker_id: u32) -> *mut c_void>;

/// Runs once on each worker thread when the pool is freed, after every `on_drop` call.
pub type pmap_worker_exit_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, worker_id: u32, worker_state: *mut c_void)>;

/// The pull source: store the next item in `*item` and return 1, return 0 at the end of
/// input, or a negative error code. Called only from the pool's feeder thread, one call
/// at a time, so it need not be thread-safe. Any other return value counts as an error.
pub type pmap_source_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, item: *mut *mut c_void) -> i32>;

/// Called by `pmap_free`, on the thread calling `pmap_free`, once for every item that
/// was accepted but never handed back by `pmap_next`, so the caller can free `item` (and
/// `value`, when the status is `PMAP_ITEM_OK`). `result` is valid only during the call.
pub type pmap_drop_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, result: *const pmap_result)>;

/// Options for `pmap_new`. Fill with `pmap_options_init`, then set what you need.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct pmap_options {
    /// `sizeof(pmap_options)`, set by `pmap_options_init`; lets the struct grow.
    pub struct_size: u32,
    /// Worker threads; 0 = the CPUs this process may use (affinity and cgroups respected).
    pub workers: u32,
    /// Most items in flight (submitted, not yet handed back); 0 = max(4096, 256 × workers).
    pub capacity: u32,
    /// Hand results back in submission order (default true).
    pub ordered: bool,
    /// After the first failed item, the pool cancels itself (default false).
    pub fail_fast: bool,
    /// The work function (required).
    pub work: pmap_work_fn,
    /// Passed to every callback; shared by all threads, so it must be thread-safe.
    pub ctx: *mut c_void,
    /// Optional per-worker constructor.
    pub worker_init: pmap_worker_init_fn,
    /// Optional per-worker destructor.
    pub worker_exit: pmap_worker_exit_fn,
    /// Optional pull source; when set, `pmap_submit` is refused.
    pub source: pmap_source_fn,
    /// Optional release hook for items never handed back (see `pmap_free`).
    pub on_drop: pmap_drop_fn,
    /// Optional thread-name prefix (`pmap-<name>-<id>`); copied by `pmap_new`.
    pub name: *const c_char,
}

/// One item handed back by `pmap_next`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pmap_result {
    /// Position in the input: 0, 1, 2 … in submission order.
    pub index: u64,
    /// The item as submitted (NULL for a source failure); the caller owns it again.
    pub item: *mut c_void,
    /// The work function's output when `status == PMAP_ITEM_OK`, else NULL.
    pub value: *mut c_void,
    /// One of the `PMAP_ITEM_*` values.
    pub status: i32,
    /// The work function's or the source's code when failed; 0 otherwise.
    pub error: i32,
    /// Worker that ran the item (0 … workers−1), or `PMAP_NO_WORKER`.
    pub worker: u32,
}

/// Counters of a pool, consistent with each other at the moment read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct pmap_stats {
    /// Items accepted (a source failure counts as one).
    pub submitted: u64,
    /// Items whose work function returned 0.
    pub succeeded: u64,
    /// Items whose work function failed, plus source failures.
    pub failed: u64,
    /// Items that never ran because the pool was cancelled.
    pub cancelled: u64,
    /// Accepted and not yet handed back by `pmap_next`.
    pub in_flight: u64,
    /// Worker threads.
    pub workers: u32,
    /// Nanoseconds since `pmap_new`.
    pub elapsed_ns: u64,
    /// Nanoseconds spent inside the work function, summed over workers.
    pub busy_ns: u64,
}
