//! Reliability tests through the C ABI, small enough for Miri (RELIABILITY.md, "Miri").
//!
//! Each test drives `pmap::ffi::api` with Rust `extern "C"` callbacks standing in for C
//! ones, and payloads made with `Box::into_raw`, so Miri's leak check proves that every item
//! and value is released (an item never handed back leaks) and its UB checks prove that none
//! is released twice or used after it was handed back. Sizes scale with `cfg!(miri)`; the
//! same tests run natively in `cargo test`.
//!
//! Run under Miri (nightly; scripts/reliability.sh does this in its nightly tier):
//! `MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=0..4" cargo +nightly miri test --test rel_miri`

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use pmap::ffi::api::*;
use pmap::ffi::types::*;

/// Items per test: tiny under Miri (every step is interpreted), larger natively.
const N: usize = if cfg!(miri) { 12 } else { 4000 };

struct Item {
    id: usize,
    fail: bool,
    park: bool,
}

/// Shared with every callback through `ctx`.
struct Ctx {
    /// The pool, once `pmap_new` returned (a source may run before that).
    pool: AtomicPtr<pmap_pool>,
    worked: Vec<AtomicU32>,
    returned: Vec<AtomicU32>,
    gate_open: Mutex<bool>,
    gate_cv: Condvar,
    parked: Mutex<usize>,
    parked_cv: Condvar,
    cancel_at: Option<usize>,
    source_next: AtomicUsize,
    source_len: usize,
    reentry_checks: AtomicU32,
}

impl Ctx {
    fn new(n: usize) -> Box<Ctx> {
        Box::new(Ctx {
            pool: AtomicPtr::new(ptr::null_mut()),
            worked: (0..n).map(|_| AtomicU32::new(0)).collect(),
            returned: (0..n).map(|_| AtomicU32::new(0)).collect(),
            gate_open: Mutex::new(false),
            gate_cv: Condvar::new(),
            parked: Mutex::new(0),
            parked_cv: Condvar::new(),
            cancel_at: None,
            source_next: AtomicUsize::new(0),
            source_len: n,
            reentry_checks: AtomicU32::new(0),
        })
    }

    fn as_ctx(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast()
    }

    fn publish(&self, pool: *mut pmap_pool) {
        self.pool.store(pool, Ordering::Release);
    }

    fn pool(&self) -> *mut pmap_pool {
        loop {
            let p = self.pool.load(Ordering::Acquire);
            if !p.is_null() {
                return p;
            }
            std::thread::yield_now();
        }
    }

    fn park(&self) {
        *self.parked.lock().unwrap() += 1;
        self.parked_cv.notify_all();
        let mut open = self.gate_open.lock().unwrap();
        while !*open {
            open = self.gate_cv.wait(open).unwrap();
        }
    }

    fn wait_parked(&self, n: usize) {
        let mut p = self.parked.lock().unwrap();
        while *p < n {
            p = self.parked_cv.wait(p).unwrap();
        }
    }

    fn open_gate(&self) {
        *self.gate_open.lock().unwrap() = true;
        self.gate_cv.notify_all();
    }
}

/// # Safety
/// `ctx` is a live `Ctx`, `item` a live `Box<Item>` lent to the pool, `out` writable.
unsafe extern "C" fn work(
    ctx: *mut c_void,
    _state: *mut c_void,
    item: *mut c_void,
    out: *mut *mut c_void,
) -> i32 {
    // SAFETY: the pool passes back the ctx and item this test gave it; both outlive the call.
    let (cx, it) = unsafe { (&*ctx.cast::<Ctx>(), &*item.cast::<Item>()) };
    let before = cx.worked[it.id].fetch_add(1, Ordering::SeqCst);
    assert_eq!(before, 0, "item {} passed to work twice", it.id);
    if it.park {
        cx.park();
    }
    if cx.cancel_at == Some(it.id) {
        // SAFETY: the pool is live while its callbacks run.
        assert_eq!(unsafe { pmap_cancel(cx.pool()) }, PMAP_OK);
    }
    if it.fail {
        return 40 + (it.id % 7) as i32;
    }
    // SAFETY: `out` is valid for this call; the consumer frees the Box.
    unsafe { *out = Box::into_raw(Box::new(it.id * 3 + 1)).cast() };
    0
}

/// Account for a handed-back result and release what it owns.
fn settle(cx: &Ctx, r: &pmap_result) -> i32 {
    assert!(!r.item.is_null());
    // SAFETY: every item is a Box<Item> made by these tests, handed back exactly once
    // (a second hand-back would be a double free, which Miri reports).
    let it = unsafe { Box::from_raw(r.item.cast::<Item>()) };
    let before = cx.returned[it.id].fetch_add(1, Ordering::SeqCst);
    assert_eq!(before, 0, "item {} handed back twice", it.id);
    match r.status {
        PMAP_ITEM_OK => {
            assert!(!it.fail);
            // SAFETY: a successful item's value is the Box<usize> made by `work`.
            let v = unsafe { Box::from_raw(r.value.cast::<usize>()) };
            assert_eq!(*v, it.id * 3 + 1);
        }
        PMAP_ITEM_FAILED => {
            assert!(it.fail && r.value.is_null());
            assert_eq!(r.error, 40 + (it.id % 7) as i32);
        }
        PMAP_ITEM_CANCELLED => {
            assert!(r.value.is_null());
            assert_eq!(r.worker, PMAP_NO_WORKER);
            assert_eq!(
                cx.worked[it.id].load(Ordering::SeqCst),
                0,
                "cancelled item {} ran",
                it.id
            );
        }
        s => panic!("unexpected status {s}"),
    }
    r.status
}

/// # Safety
/// `ctx` is a live `Ctx`; `r` is valid during the call.
unsafe extern "C" fn on_drop(ctx: *mut c_void, r: *const pmap_result) {
    // SAFETY: as documented for `pmap_drop_fn`.
    let (cx, r) = unsafe { (&*ctx.cast::<Ctx>(), &*r) };
    // A panic must not unwind into the library: abort loudly instead.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| settle(cx, r))).is_err() {
        std::process::abort();
    }
}

fn item(id: usize, fail: bool, park: bool) -> *mut c_void {
    Box::into_raw(Box::new(Item { id, fail, park })).cast()
}

fn options(cx: &Ctx, workers: u32, capacity: u32, ordered: bool) -> pmap_options {
    let mut o = std::mem::MaybeUninit::<pmap_options>::uninit();
    // SAFETY: pmap_options_init fills the whole struct.
    let mut o = unsafe {
        pmap_options_init(o.as_mut_ptr());
        o.assume_init()
    };
    o.work = Some(work);
    o.ctx = cx.as_ctx();
    o.workers = workers;
    o.capacity = capacity;
    o.ordered = ordered;
    o.on_drop = Some(on_drop);
    o
}

fn new_pool(o: &pmap_options) -> *mut pmap_pool {
    let mut pool = ptr::null_mut();
    // SAFETY: `o` is initialised; `pool` is a valid out-pointer.
    assert_eq!(unsafe { pmap_new(o, &mut pool) }, PMAP_OK);
    pool
}

fn empty_result() -> pmap_result {
    pmap_result {
        index: 0,
        item: ptr::null_mut(),
        value: ptr::null_mut(),
        status: -1,
        error: 0,
        worker: 0,
    }
}

fn stats(pool: *mut pmap_pool) -> pmap_stats {
    let mut s = pmap_stats::default();
    // SAFETY: the pool is live; `s` is writable.
    assert_eq!(unsafe { pmap_stats_get(pool, &mut s) }, PMAP_OK);
    s
}

/// One thread submits (timeout 0) and drains when full; ordered results, some failures.
#[test]
fn ordered_single_thread_exactly_once() {
    let cx = Ctx::new(N);
    let pool = new_pool(&options(&cx, 2, 4, true));
    cx.publish(pool);
    let mut r = empty_result();
    let (mut next_id, mut expect) = (0usize, 0u64);
    while (expect as usize) < N {
        if next_id < N {
            let it = item(next_id, next_id % 5 == 3, false);
            // SAFETY: the pool is live; the item is ours until handed back.
            match unsafe { pmap_submit(pool, it, 0) } {
                PMAP_OK => {
                    next_id += 1;
                    continue;
                }
                PMAP_TIMEOUT => {
                    // SAFETY: refused, so still ours.
                    drop(unsafe { Box::from_raw(it.cast::<Item>()) });
                }
                s => panic!("submit: {s}"),
            }
        }
        // SAFETY: the pool is live; `r` is writable.
        assert_eq!(unsafe { pmap_next(pool, &mut r, -1) }, PMAP_OK);
        assert_eq!(r.index, expect, "ordered results skipped an index");
        expect += 1;
        settle(&cx, &r);
    }
    // SAFETY: the pool is live.
    assert_eq!(unsafe { pmap_close(pool) }, PMAP_OK);
    // SAFETY: as above.
    assert_eq!(unsafe { pmap_next(pool, &mut r, -1) }, PMAP_DONE);
    let s = stats(pool);
    assert_eq!(s.submitted, N as u64);
    assert_eq!(s.succeeded + s.failed, N as u64);
    assert_eq!(s.in_flight, 0);
    // SAFETY: the pool is live and unused by any other thread.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
    for id in 0..N {
        assert_eq!(cx.returned[id].load(Ordering::SeqCst), 1);
    }
}

/// Two producer threads and two consumer threads share an unordered pool.
#[test]
fn producers_and_consumers_share_a_pool() {
    let per = N / 2;
    let cx = Ctx::new(2 * per);
    let pool = new_pool(&options(&cx, 2, 3, false));
    cx.publish(pool);
    let taken = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for p in 0..2 {
            let cx = &cx;
            s.spawn(move || {
                for k in 0..per {
                    let id = p * per + k;
                    // SAFETY: the pool is live until the scope ends; the item is ours.
                    assert_eq!(
                        unsafe { pmap_submit(cx.pool(), item(id, id % 7 == 0, false), -1) },
                        PMAP_OK
                    );
                }
            });
        }
        for _ in 0..2 {
            let (cx, taken) = (&cx, &taken);
            s.spawn(move || {
                let mut r = [empty_result(), empty_result()];
                loop {
                    let mut got = 0usize;
                    // SAFETY: the pool is live; `r` has room for 2 results.
                    let st = unsafe { pmap_next_many(cx.pool(), r.as_mut_ptr(), 2, &mut got, -1) };
                    if st == PMAP_DONE {
                        break;
                    }
                    assert_eq!(st, PMAP_OK);
                    for res in &r[..got] {
                        settle(cx, res);
                    }
                    if taken.fetch_add(got, Ordering::SeqCst) + got == 2 * per {
                        // SAFETY: the pool is live.
                        assert_eq!(unsafe { pmap_close(cx.pool()) }, PMAP_OK);
                    }
                }
            });
        }
    });
    assert_eq!(stats(pool).submitted, 2 * per as u64);
    // SAFETY: every thread that used the pool has been joined.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
    for id in 0..2 * per {
        assert_eq!(cx.returned[id].load(Ordering::SeqCst), 1, "item {id}");
    }
}

/// libuv's pattern: park every worker, queue K, cancel: exactly K cancelled, none ran.
#[test]
fn deterministic_cancel() {
    const W: usize = 2;
    let k = if cfg!(miri) { 4 } else { 64 };
    let cx = Ctx::new(W + k);
    let pool = new_pool(&options(&cx, W as u32, (W + k) as u32, false));
    cx.publish(pool);
    for id in 0..W {
        // SAFETY: the pool is live; the item is lent to it.
        assert_eq!(
            unsafe { pmap_submit(pool, item(id, false, true), -1) },
            PMAP_OK
        );
        cx.wait_parked(id + 1);
    }
    for id in W..W + k {
        // SAFETY: as above.
        assert_eq!(
            unsafe { pmap_submit(pool, item(id, false, false), -1) },
            PMAP_OK
        );
    }
    // SAFETY: the pool is live.
    assert_eq!(unsafe { pmap_cancel(pool) }, PMAP_OK);
    let mut r = empty_result();
    for _ in 0..k {
        // SAFETY: the pool is live; `r` is writable.
        assert_eq!(unsafe { pmap_next(pool, &mut r, -1) }, PMAP_OK);
        assert_eq!(settle(&cx, &r), PMAP_ITEM_CANCELLED, "index {}", r.index);
    }
    cx.open_gate();
    let mut ok = 0;
    // SAFETY: as above.
    while unsafe { pmap_next(pool, &mut r, -1) } == PMAP_OK {
        assert_eq!(settle(&cx, &r), PMAP_ITEM_OK);
        ok += 1;
    }
    assert_eq!(ok, W);
    let s = stats(pool);
    assert_eq!((s.succeeded, s.cancelled), (W as u64, k as u64));
    // SAFETY: the pool is live and unused elsewhere.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
}

/// `pmap_free` with items queued, running and finished: each reaches `on_drop` once.
#[test]
fn free_with_items_outstanding() {
    let cx = Ctx::new(N);
    let pool = new_pool(&options(&cx, 2, N as u32, true));
    cx.publish(pool);
    for id in 0..N {
        // SAFETY: the pool is live; the item is lent to it.
        assert_eq!(
            unsafe { pmap_submit(pool, item(id, id % 4 == 1, false), -1) },
            PMAP_OK
        );
    }
    let mut r = empty_result();
    for _ in 0..N / 3 {
        // SAFETY: the pool is live; `r` is writable.
        assert_eq!(unsafe { pmap_next(pool, &mut r, -1) }, PMAP_OK);
        settle(&cx, &r);
    }
    // SAFETY: the pool is live and unused elsewhere; on_drop releases the rest.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
    for id in 0..N {
        assert_eq!(cx.returned[id].load(Ordering::SeqCst), 1, "item {id}");
    }
}

/// A work callback cancels its own pool; calls that would wait from inside are refused.
#[test]
fn cancel_from_inside_a_callback() {
    let mut cx = Ctx::new(N);
    cx.cancel_at = Some(N / 2);
    let pool = new_pool(&options(&cx, 2, 4, false));
    cx.publish(pool);
    let mut accepted = 0;
    let mut r = empty_result();
    let mut taken = 0;
    for id in 0..N {
        let it = item(id, false, false);
        loop {
            // SAFETY: the pool is live; the item is ours until accepted.
            match unsafe { pmap_submit(pool, it, 0) } {
                PMAP_OK => {
                    accepted += 1;
                    break;
                }
                PMAP_TIMEOUT => {
                    // SAFETY: as above; `r` is writable.
                    if unsafe { pmap_next(pool, &mut r, -1) } == PMAP_OK {
                        settle(&cx, &r);
                        taken += 1;
                    }
                }
                PMAP_CANCELLED => {
                    // SAFETY: refused, so still ours.
                    drop(unsafe { Box::from_raw(it.cast::<Item>()) });
                    break;
                }
                s => panic!("submit: {s}"),
            }
        }
    }
    // SAFETY: the pool is live; `r` is writable.
    while unsafe { pmap_next(pool, &mut r, -1) } == PMAP_OK {
        settle(&cx, &r);
        taken += 1;
    }
    assert_eq!(taken, accepted);
    // SAFETY: the pool is live.
    assert!(unsafe { pmap_is_cancelled(pool) } || accepted == N);
    // SAFETY: the pool is live and unused elsewhere.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
}

/// # Safety
/// `ctx` is a live `Ctx`; `out` is writable.
unsafe extern "C" fn source(ctx: *mut c_void, out: *mut *mut c_void) -> i32 {
    // SAFETY: the pool passes back this test's ctx.
    let cx = unsafe { &*ctx.cast::<Ctx>() };
    let id = cx.source_next.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        // The feeder thread counts as inside the pool: a waiting call is refused.
        let mut r = empty_result();
        // SAFETY: the pool is live while its feeder runs.
        assert_eq!(unsafe { pmap_next(cx.pool(), &mut r, -1) }, PMAP_INVALID);
        cx.reentry_checks.fetch_add(1, Ordering::SeqCst);
    }
    if id >= cx.source_len {
        return 0;
    }
    // SAFETY: `out` is valid for this call.
    unsafe { *out = item(id, id % 6 == 5, false) };
    1
}

/// Source mode: the pool's feeder pulls every item; results come back in order.
#[test]
fn source_mode_drains_in_order() {
    let cx = Ctx::new(N);
    let mut o = options(&cx, 2, 4, true);
    o.source = Some(source);
    let pool = new_pool(&o);
    cx.publish(pool);
    let mut r = empty_result();
    let mut expect = 0;
    // SAFETY: the pool is live; `r` is writable.
    while unsafe { pmap_next(pool, &mut r, -1) } == PMAP_OK {
        assert_eq!(r.index, expect);
        expect += 1;
        settle(&cx, &r);
    }
    assert_eq!(expect, N as u64);
    assert_eq!(cx.reentry_checks.load(Ordering::SeqCst), 1);
    // SAFETY: the pool is live and unused elsewhere.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
}

/// # Safety
/// Any arguments: it reads none.
unsafe extern "C" fn source_empty(_ctx: *mut c_void, _out: *mut *mut c_void) -> i32 {
    0
}

/// Regression: a source pool freed (or cancelled, or closed) right after `pmap_new`. This
/// aborted the process ("the queue is connected while the feeder runs") when `pmap_free`
/// ran before the feeder thread had started (RELIABILITY.md, "Bugs found").
#[test]
fn source_pool_freed_at_once() {
    let rounds = if cfg!(miri) { 3 } else { 300 };
    for round in 0..rounds {
        let cx = Ctx::new(4);
        let mut o = options(&cx, 1, 4, true);
        o.source = Some(source_empty);
        let pool = new_pool(&o);
        cx.publish(pool);
        match round % 3 {
            // SAFETY: the pool is live.
            1 => assert_eq!(unsafe { pmap_cancel(pool) }, PMAP_OK),
            // SAFETY: the pool is live.
            2 => assert_eq!(unsafe { pmap_close(pool) }, PMAP_OK),
            _ => {}
        }
        // SAFETY: the pool is live and unused elsewhere.
        assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);
    }
}
