//! Every `pmap_*` export. Each body runs inside `ffi_boundary!`; none does more than check
//! arguments, call the core `Pool`, and translate the answer.

use std::ffi::{CStr, c_char, c_void};

use super::boundary::{self, fail, invalid};
use super::handler::{CHandler, CPtr, to_c_result};
use super::options;
use super::types::*;
use crate::pool::Pool;
use crate::status::Status;
use crate::wait::Wait;

type CPool = Pool<CHandler>;

/// The pool behind a `pmap_pool *` argument, or return `PMAP_INVALID` when it is NULL.
macro_rules! try_pool {
    ($fn_name:literal, $ptr:ident) => {{
        if $ptr.is_null() {
            return invalid($fn_name, "pool is NULL");
        }
        as_pool($ptr)
    }};
}

/// The one place a `pmap_pool *` becomes a pool: it is always a `Box<CPool>` from `pmap_new`.
fn as_pool<'a>(pool: *const pmap_pool) -> &'a CPool {
    // SAFETY: the caller passes a non-NULL pointer returned by `pmap_new` and not yet freed
    // (checked for NULL by every caller of this function; the rest is the documented contract).
    unsafe { &*pool.cast::<CPool>() }
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL byte"),
    };

/// Fill `opts` with the defaults: `struct_size = sizeof(pmap_options)`, `workers = 0` (one
/// per CPU), `capacity = 0` (the default window), `ordered = true`, `fail_fast = false`,
/// every pointer NULL.
///
/// Parameters: `opts`, the struct to fill; NULL is ignored.
/// Thread: any.
///
/// # Safety
/// `opts` is NULL or points to a writable `pmap_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_options_init(opts: *mut pmap_options) {
    ffi_boundary!("pmap_options_init", (), {
        if !opts.is_null() {
            // SAFETY: non-NULL; the caller passes a writable `pmap_options`.
            unsafe { opts.write(options::defaults()) };
        }
    })
}

/// Create a pool and start its worker threads (and its feeder thread when `opts->source`
/// is set).
///
/// Parameters: `opts`, initialised with `pmap_options_init` (read during the call only;
/// `name` is copied); `out`, where the new pool is stored.
/// Returns: `PMAP_OK` (and `*out` set); `PMAP_INVALID` for NULL arguments or bad options
/// (no work function, a `struct_size` from no known layout, more than 4096 workers or
/// 2^30 capacity); `PMAP_SYSTEM` when threads could not be started (nothing leaks).
/// `*out` is written only on `PMAP_OK`.
/// Ownership: the caller owns the pool and must release it with `pmap_free`.
/// Thread: any.
///
/// # Safety
/// `opts` is NULL or points to `opts->struct_size` readable bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_new(
    opts: *const pmap_options,
    out: *mut *mut pmap_pool,
) -> pmap_status {
    ffi_boundary!("pmap_new", PMAP_INTERNAL, {
        if opts.is_null() {
            return invalid("pmap_new", "opts is NULL");
        }
        let out = try_mut!("pmap_new", out);
        // SAFETY: `opts` is non-NULL and, per the contract, points to `struct_size` bytes.
        let parsed = match unsafe { options::parse(opts) } {
            Ok(p) => p,
            Err(message) => return invalid("pmap_new", message),
        };
        let started = match parsed.source {
            Some(source) => Pool::with_source(parsed.handler, &parsed.config, source),
            None => Pool::new(parsed.handler, &parsed.config),
        };
        match started {
            Ok(pool) => {
                *out = Box::into_raw(Box::new(pool)).cast::<pmap_pool>();
                PMAP_OK
            }
            Err(e) => fail("pmap_new", &e),
        }
    })
}

/// Submit one item, waiting up to `timeout_ns` for room.
///
/// Parameters: `item`, any pointer (NULL allowed), lent to the pool until it comes back
/// from `pmap_next` or `on_drop`; `timeout_ns`: `< 0` waits forever, `0` never waits.
/// Returns: `PMAP_OK` (accepted, it gets the next index); `PMAP_TIMEOUT` (`capacity` items
/// in flight the whole time); `PMAP_CLOSED`; `PMAP_CANCELLED`; `PMAP_INVALID` (NULL pool,
/// a pool with a `source`, or a wait from inside the pool's own callback); `PMAP_FORKED`.
/// On any status but `PMAP_OK` the caller still owns `item`.
/// Thread: any; several producers may submit at once. Deadlock potential: only
/// `pmap_next` makes room, so a thread that both submits and consumes must submit with
/// timeout 0 and drain on `PMAP_TIMEOUT`.
///
/// # Safety
/// `pool` is NULL or a live pool from `pmap_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_submit(
    pool: *mut pmap_pool,
    item: *mut c_void,
    timeout_ns: i64,
) -> pmap_status {
    ffi_boundary!("pmap_submit", PMAP_INTERNAL, {
        let p = try_pool!("pmap_submit", pool);
        match p.submit(CPtr(item), Wait::from_nanos(timeout_ns)) {
            Ok(()) => PMAP_OK,
            Err(rejected) => fail("pmap_submit", &rejected.error),
        }
    })
}

/// Submit `items[0..n)` in order, accepting as long a prefix as fits within `timeout_ns`.
///
/// Parameters: `items`, `n` pointers (may be NULL when `n == 0`); `accepted`, where the
/// number accepted is stored (always written when the call gets that far).
/// Returns: `PMAP_OK` when all `n` were accepted; otherwise the status that stopped it
/// (`PMAP_TIMEOUT`, `PMAP_CLOSED`, `PMAP_CANCELLED`, …) with `*accepted < n`. Items
/// `items[*accepted..n)` stay with the caller.
/// Thread: any.
///
/// # Safety
/// `pool` is NULL or live; `items` points to `n` pointers; `accepted` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_submit_many(
    pool: *mut pmap_pool,
    items: *const *mut c_void,
    n: usize,
    accepted: *mut usize,
    timeout_ns: i64,
) -> pmap_status {
    ffi_boundary!("pmap_submit_many", PMAP_INTERNAL, {
        let p = try_pool!("pmap_submit_many", pool);
        let accepted = try_mut!("pmap_submit_many", accepted);
        *accepted = 0;
        if items.is_null() && n > 0 {
            return invalid("pmap_submit_many", "items is NULL");
        }
        let items: &[*mut c_void] = if n == 0 {
            &[]
        } else {
            // SAFETY: non-NULL; the caller passes `n` readable pointers.
            unsafe { std::slice::from_raw_parts(items, n) }
        };
        let mut iter = items.iter().map(|&p| CPtr(p)).peekable();
        let (count, result) = p.submit_many(&mut iter, Wait::from_nanos(timeout_ns));
        *accepted = count;
        match result {
            Ok(()) => PMAP_OK,
            Err(e) => fail("pmap_submit_many", &e),
        }
    })
}

/// End of input: later submits return `PMAP_CLOSED`, and `pmap_next` returns `PMAP_DONE`
/// once every accepted item has been handed back. In source mode, stops the feeder from
/// pulling more. Idempotent.
///
/// Returns: `PMAP_OK`; `PMAP_INVALID` (NULL pool); `PMAP_FORKED`.
/// Thread: any, including inside a callback.
///
/// # Safety
/// `pool` is NULL or a live pool from `pmap_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_close(pool: *mut pmap_pool) -> pmap_status {
    ffi_boundary!("pmap_close", PMAP_INTERNAL, {
        let p = try_pool!("pmap_close", pool);
        match p.close() {
            Ok(()) => PMAP_OK,
            Err(e) => fail("pmap_close", &e),
        }
    })
}

/// Take the next result, waiting up to `timeout_ns` (like `sqlite3_step`).
///
/// Parameters: `out`, written only on `PMAP_OK`.
/// Returns: `PMAP_OK` (ordered pools return indices 0, 1, 2 … with no gap; unordered ones
/// as items finish); `PMAP_DONE` when the input is closed (or the pool cancelled) and
/// every item has been handed back, and again on every later call; `PMAP_TIMEOUT`;
/// `PMAP_INVALID` (NULL argument, or a wait from inside the pool's own callback);
/// `PMAP_FORKED`.
/// Ownership: `out->item` and `out->value` belong to the caller from now on.
/// Thread: any; several consumers may call at once (each result goes to one of them).
///
/// # Safety
/// `pool` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_next(
    pool: *mut pmap_pool,
    out: *mut pmap_result,
    timeout_ns: i64,
) -> pmap_status {
    ffi_boundary!("pmap_next", PMAP_INTERNAL, {
        let p = try_pool!("pmap_next", pool);
        let out = try_mut!("pmap_next", out);
        // Written from inside the take: no copy of the outcome on the way out.
        match p.next_into(1, Wait::from_nanos(timeout_ns), |o| *out = to_c_result(o)) {
            Ok(_) => PMAP_OK,
            Err(e) => fail("pmap_next", &e),
        }
    })
}

/// Take up to `max` results: waits (up to `timeout_ns`) for the first, then takes
/// whatever else is ready without waiting.
///
/// Parameters: `out`, room for `max` results (`out[0..*got)` written on `PMAP_OK`);
/// `got`, always written (0 unless `PMAP_OK`).
/// Returns: as `pmap_next`; `PMAP_INVALID` also when `max == 0`.
/// Thread: any.
///
/// # Safety
/// `pool` is NULL or live; `out` has room for `max` results; `got` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_next_many(
    pool: *mut pmap_pool,
    out: *mut pmap_result,
    max: usize,
    got: *mut usize,
    timeout_ns: i64,
) -> pmap_status {
    ffi_boundary!("pmap_next_many", PMAP_INTERNAL, {
        let p = try_pool!("pmap_next_many", pool);
        let got = try_mut!("pmap_next_many", got);
        *got = 0;
        if out.is_null() {
            return invalid("pmap_next_many", "out is NULL");
        }
        let mut written = 0usize;
        let result = p.next_into(max, Wait::from_nanos(timeout_ns), |outcome| {
            // SAFETY: `out` has room for `max` results and the core delivers at most `max`.
            unsafe { out.add(written).write(to_c_result(outcome)) };
            written += 1;
        });
        match result {
            Ok(n) => {
                *got = n;
                PMAP_OK
            }
            Err(e) => fail("pmap_next_many", &e),
        }
    })
}

/// Stop the pool (like `sqlite3_interrupt`): no new item starts; items not started come
/// back from `pmap_next` with `PMAP_ITEM_CANCELLED` and are never passed to `work`; items
/// already running finish and come back normally. Later submits return
/// `PMAP_CANCELLED`; `pmap_next` returns `PMAP_DONE` once every item has been handed
/// back. Idempotent.
///
/// Returns: `PMAP_OK`; `PMAP_INVALID` (NULL pool); `PMAP_FORKED`.
/// Thread: any, including inside a callback of this pool; never waits for work.
///
/// # Safety
/// `pool` is NULL or a live pool from `pmap_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_cancel(pool: *mut pmap_pool) -> pmap_status {
    ffi_boundary!("pmap_cancel", PMAP_INTERNAL, {
        let p = try_pool!("pmap_cancel", pool);
        match p.cancel() {
            Ok(()) => PMAP_OK,
            Err(e) => fail("pmap_cancel", &e),
        }
    })
}

/// Release a pool: cancels it, waits for running items to finish, calls `on_drop` (on
/// this thread) for every item not yet handed back, runs `worker_exit` on every worker,
/// joins every thread and frees everything. In a forked child it only frees memory: no
/// callback runs and no thread is joined.
///
/// Parameters: `pool`, from `pmap_new`; NULL is a harmless no-op. Must not be used again
/// after `PMAP_OK` (use after free is undefined behaviour).
/// Returns: `PMAP_OK`; `PMAP_INVALID` when called from inside one of this pool's own
/// callbacks (the pool is left intact).
/// Thread: any thread other than the pool's own; no other call on this pool may be in
/// progress or start.
///
/// # Safety
/// `pool` is NULL or a live pool from `pmap_new`, not used by any other call now or later.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_free(pool: *mut pmap_pool) -> pmap_status {
    ffi_boundary!("pmap_free", PMAP_INTERNAL, {
        if pool.is_null() {
            return PMAP_OK;
        }
        let p = as_pool(pool);
        if p.is_current_thread_inside() && !p.is_forked() {
            return invalid(
                "pmap_free",
                "called from inside one of the pool's own callbacks",
            );
        }
        // SAFETY: `pool` came from `Box::into_raw` in `pmap_new` and is freed only here.
        drop(unsafe { Box::from_raw(pool.cast::<CPool>()) });
        PMAP_OK
    })
}

/// Read the pool's counters.
///
/// Parameters: `out`, written only on `PMAP_OK`.
/// Returns: `PMAP_OK`; `PMAP_INVALID` (NULL argument); `PMAP_FORKED`.
/// Thread: any.
///
/// # Safety
/// `pool` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_stats_get(
    pool: *const pmap_pool,
    out: *mut pmap_stats,
) -> pmap_status {
    ffi_boundary!("pmap_stats_get", PMAP_INTERNAL, {
        let p = try_pool!("pmap_stats_get", pool);
        let out = try_mut!("pmap_stats_get", out);
        match p.stats() {
            Ok(s) => {
                *out = pmap_stats {
                    submitted: s.submitted,
                    succeeded: s.succeeded,
                    failed: s.failed,
                    cancelled: s.cancelled,
                    in_flight: s.in_flight,
                    workers: s.workers,
                    elapsed_ns: s.elapsed_ns,
                    busy_ns: s.busy_ns,
                };
                PMAP_OK
            }
            Err(e) => fail("pmap_stats_get", &e),
        }
    })
}

/// Whether the pool has been cancelled (by `pmap_cancel`, `fail_fast` or `pmap_free`).
/// A long work function may poll it to stop early. NULL gives false.
///
/// Thread: any, including inside callbacks; never blocks.
///
/// # Safety
/// `pool` is NULL or a live pool from `pmap_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmap_is_cancelled(pool: *const pmap_pool) -> bool {
    ffi_boundary!("pmap_is_cancelled", false, {
        !pool.is_null() && as_pool(pool).is_cancelled()
    })
}

/// A static, human-readable description of a status code (never NULL; unknown codes
/// give a "PMAP_UNKNOWN" string).
///
/// Thread: any.
#[unsafe(no_mangle)]
pub extern "C" fn pmap_status_str(status: pmap_status) -> *const c_char {
    ffi_boundary!("pmap_status_str", c"PMAP_UNKNOWN".as_ptr(), {
        Status::describe(status).as_ptr()
    })
}

/// The message of this thread's last failed call ("" if none), e.g.
/// "pmap_new: PMAP_INVALID: opts->work is NULL: a work function is required".
///
/// Ownership: the string belongs to pmap; it stays valid until this thread's next failed
/// call. Thread: any (each thread has its own message).
#[unsafe(no_mangle)]
pub extern "C" fn pmap_last_error() -> *const c_char {
    ffi_boundary!("pmap_last_error", c"".as_ptr(), {
        boundary::last_error_ptr()
    })
}

/// The library version, e.g. "0.1.0" (matches `PMAP_VERSION_STRING` when the header and
/// the library agree). Static; never NULL.
///
/// Thread: any.
#[unsafe(no_mangle)]
pub extern "C" fn pmap_version() -> *const c_char {
    ffi_boundary!("pmap_version", c"".as_ptr(), { VERSION.as_ptr() })
}
