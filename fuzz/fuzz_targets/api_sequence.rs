//! Fuzz target: a random sequence of C API calls on one pool, with an exactly-once ledger.
//!
//! The first bytes choose the pool (workers 1-4, capacity 1-16, ordered, fail_fast, source
//! mode); every later byte is one call: submit / submit_many (timeout 0 or 1 ms), next /
//! next_many (timeout 0 or 1 ms), close, cancel, stats, is_cancelled, a burst of submits,
//! or pmap_free with whatever is outstanding. Item bytes choose the work: a short spin or
//! sleep, a failure, a cancel from inside the callback, or pmap_free from inside the callback
//! (which must be refused with PMAP_INVALID). At the end the pool is closed, drained and freed
//! (unless it was already freed). Any violated assertion aborts, which libFuzzer reports:
//! every accepted item comes back exactly once (pmap_next or on_drop), an item reported
//! cancelled never ran, ordered pools hand back 0, 1, 2 ..., in flight never exceeds
//! capacity, stats add up, every status is one the API documents for that call.
#![no_main]

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use pmap::ffi::api::*;
use pmap::ffi::types::*;

const MAX_ITEMS: usize = 512;

struct Item {
    id: usize,
    behaviour: u8,
}

struct Ctx {
    pool: AtomicPtr<pmap_pool>,
    worked: Vec<AtomicU32>,
    returned: Vec<AtomicU32>,
    source_next: AtomicU64,
    source_len: u64,
    source_fail_at: u64,
}

fn fail(msg: &str) -> ! {
    eprintln!("api_sequence: {msg}");
    std::process::abort();
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            fail(&format!($($arg)*));
        }
    };
}

/// # Safety
/// Called by pmap with this target's ctx and items.
unsafe extern "C" fn work(
    ctx: *mut c_void,
    _state: *mut c_void,
    item: *mut c_void,
    out: *mut *mut c_void,
) -> i32 {
    // SAFETY: ctx is the run's Ctx and item a live Box<Item>; both outlive the call.
    let (cx, it) = unsafe { (&*ctx.cast::<Ctx>(), &*item.cast::<Item>()) };
    let before = cx.worked[it.id].fetch_add(1, Ordering::SeqCst);
    ensure!(before == 0, "item {} passed to work twice", it.id);
    let pool = cx.pool.load(Ordering::Acquire);
    match it.behaviour % 16 {
        0..=7 => {
            let mut x = it.id as u64;
            for _ in 0..(u32::from(it.behaviour) * 8) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        8..=9 => std::thread::sleep(std::time::Duration::from_micros(u64::from(it.behaviour))),
        10 if !pool.is_null() => {
            // SAFETY: the pool is live while its callbacks run.
            ensure!(
                unsafe { pmap_cancel(pool) } == PMAP_OK,
                "cancel inside work"
            );
        }
        11 if !pool.is_null() => {
            // Freeing the pool from its own callback must be refused (a blocking next could
            // legally succeed here when a result is ready, so it is not asserted).
            // SAFETY: the pool is live while its callbacks run.
            let st = unsafe { pmap_free(pool) };
            ensure!(st == PMAP_INVALID, "pmap_free inside work returned {st}");
        }
        12..=13 => return 100 + i32::from(it.behaviour),
        _ => {}
    }
    // SAFETY: out is valid for the call; the consumer frees the Box.
    unsafe { *out = Box::into_raw(Box::new(it.id as u64 + 7)).cast() };
    0
}

/// # Safety
/// Called by pmap's feeder with this target's ctx.
unsafe extern "C" fn source(ctx: *mut c_void, out: *mut *mut c_void) -> i32 {
    // SAFETY: ctx is the run's Ctx.
    let cx = unsafe { &*ctx.cast::<Ctx>() };
    let id = cx.source_next.fetch_add(1, Ordering::SeqCst);
    if id == cx.source_fail_at {
        return -5;
    }
    if id >= cx.source_len {
        return 0;
    }
    let behaviour = (id as u8).wrapping_mul(37);
    // SAFETY: out is valid for the call.
    unsafe {
        *out = Box::into_raw(Box::new(Item {
            id: id as usize,
            behaviour,
        }))
        .cast()
    };
    1
}

fn settle(cx: &Ctx, r: &pmap_result) {
    if r.status == PMAP_ITEM_SOURCE_FAILED {
        ensure!(
            r.item.is_null() && r.value.is_null() && r.error == -5,
            "source failure"
        );
        return;
    }
    ensure!(
        !r.item.is_null(),
        "result without an item, status {}",
        r.status
    );
    // SAFETY: every item is a Box<Item> made here and handed back once (checked below).
    let it = unsafe { Box::from_raw(r.item.cast::<Item>()) };
    let before = cx.returned[it.id].fetch_add(1, Ordering::SeqCst);
    ensure!(before == 0, "item {} handed back twice", it.id);
    let worked = cx.worked[it.id].load(Ordering::SeqCst);
    match r.status {
        PMAP_ITEM_OK => {
            ensure!(worked == 1 && !r.value.is_null(), "OK item {}", it.id);
            // SAFETY: the value of an OK item is the Box<u64> made by `work`.
            let v = unsafe { Box::from_raw(r.value.cast::<u64>()) };
            ensure!(*v == it.id as u64 + 7, "wrong value for {}", it.id);
        }
        PMAP_ITEM_FAILED => {
            ensure!(worked == 1 && r.value.is_null(), "failed item {}", it.id);
            ensure!(
                r.error == 100 + i32::from(it.behaviour),
                "error code {}",
                r.error
            );
        }
        PMAP_ITEM_CANCELLED => {
            ensure!(worked == 0, "item {} reported cancelled but ran", it.id);
            ensure!(
                r.value.is_null() && r.worker == PMAP_NO_WORKER,
                "cancelled item"
            );
        }
        s => fail(&format!("unknown item status {s}")),
    }
}

/// # Safety
/// Called by pmap_free with this target's ctx and a valid result.
unsafe extern "C" fn on_drop(ctx: *mut c_void, r: *const pmap_result) {
    // SAFETY: as documented for pmap_drop_fn.
    let (cx, r) = unsafe { (&*ctx.cast::<Ctx>(), &*r) };
    settle(cx, r);
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

struct Driver<'a> {
    cx: &'a Ctx,
    pool: *mut pmap_pool,
    capacity: u64,
    ordered: bool,
    source_mode: bool,
    next_id: usize,
    accepted: u64,
    taken: u64,
    expect_index: u64,
}

impl Driver<'_> {
    fn submit(&mut self, behaviour: u8, wait: bool) {
        if self.next_id >= MAX_ITEMS {
            return;
        }
        let id = self.next_id;
        let it = Box::into_raw(Box::new(Item { id, behaviour })).cast::<c_void>();
        let timeout = if wait { 1_000_000 } else { 0 };
        // SAFETY: the pool is live; the item is ours until accepted.
        let st = unsafe { pmap_submit(self.pool, it, timeout) };
        self.next_id += 1;
        match st {
            PMAP_OK => self.accepted += 1,
            PMAP_TIMEOUT | PMAP_CLOSED | PMAP_CANCELLED | PMAP_INVALID => {
                ensure!(st != PMAP_INVALID || self.source_mode, "submit INVALID");
                ensure!(
                    !self.source_mode || st == PMAP_INVALID,
                    "submit in source mode: {st}"
                );
                // SAFETY: refused, so still ours; it never reached a callback.
                drop(unsafe { Box::from_raw(it.cast::<Item>()) });
            }
            s => fail(&format!("submit returned {s}")),
        }
    }

    fn submit_many(&mut self, n: usize, seed: u8) {
        let n = n.min(MAX_ITEMS - self.next_id);
        if n == 0 {
            return;
        }
        let first = self.next_id;
        let items: Vec<*mut c_void> = (0..n)
            .map(|k| {
                let behaviour = seed.wrapping_add(k as u8).wrapping_mul(13);
                Box::into_raw(Box::new(Item {
                    id: first + k,
                    behaviour,
                }))
                .cast()
            })
            .collect();
        self.next_id += n;
        let mut acc = usize::MAX;
        // SAFETY: the pool is live; `items` holds n pointers; `acc` is writable.
        let st = unsafe { pmap_submit_many(self.pool, items.as_ptr(), n, &mut acc, 0) };
        ensure!(acc <= n, "accepted {acc} of {n}");
        ensure!(
            (st == PMAP_OK) == (acc == n),
            "submit_many {st} with {acc} of {n}"
        );
        self.accepted += acc as u64;
        for &it in &items[acc..] {
            // SAFETY: refused, so still ours.
            drop(unsafe { Box::from_raw(it.cast::<Item>()) });
        }
    }

    fn take(&mut self, r: &pmap_result) {
        if self.ordered {
            ensure!(
                r.index == self.expect_index,
                "ordered: got index {}",
                r.index
            );
            self.expect_index += 1;
        }
        settle(self.cx, r);
        self.taken += 1;
    }

    fn next(&mut self, max: usize, wait: bool) -> i32 {
        let timeout = if wait { 1_000_000 } else { 0 };
        if max <= 1 {
            let mut r = empty_result();
            // SAFETY: the pool is live; `r` is writable.
            let st = unsafe { pmap_next(self.pool, &mut r, timeout) };
            if st == PMAP_OK {
                self.take(&r);
            }
            st
        } else {
            let mut rs: Vec<pmap_result> = (0..max).map(|_| empty_result()).collect();
            let mut got = usize::MAX;
            // SAFETY: the pool is live; `rs` has room for max results.
            let st = unsafe { pmap_next_many(self.pool, rs.as_mut_ptr(), max, &mut got, timeout) };
            ensure!(
                if st == PMAP_OK {
                    got >= 1 && got <= max
                } else {
                    got == 0
                },
                "got {got}"
            );
            for r in &rs[..got] {
                self.take(r);
            }
            st
        }
    }

    fn check_stats(&self) {
        let mut s = pmap_stats::default();
        // SAFETY: the pool is live; `s` is writable.
        ensure!(
            unsafe { pmap_stats_get(self.pool, &mut s) } == PMAP_OK,
            "stats"
        );
        ensure!(
            s.in_flight <= self.capacity,
            "stats in_flight {} > {}",
            s.in_flight,
            self.capacity
        );
        ensure!(
            s.succeeded + s.failed + s.cancelled <= s.submitted,
            "stats sum"
        );
        if !self.source_mode {
            ensure!(
                s.submitted == self.accepted,
                "stats submitted {}",
                s.submitted
            );
            ensure!(
                self.accepted - self.taken <= self.capacity,
                "in flight above capacity"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let workers = 1 + u32::from(data[0] % 4);
    let capacity = 1 + u32::from(data[1] % 16);
    let ordered = data[2] & 1 != 0;
    let fail_fast = data[2] & 2 != 0;
    let source_mode = data[2] & 4 != 0;
    let cx = Ctx {
        pool: AtomicPtr::new(ptr::null_mut()),
        worked: (0..MAX_ITEMS).map(|_| AtomicU32::new(0)).collect(),
        returned: (0..MAX_ITEMS).map(|_| AtomicU32::new(0)).collect(),
        source_next: AtomicU64::new(0),
        source_len: u64::from(data[3]),
        source_fail_at: if data[2] & 8 != 0 {
            u64::from(data[3] / 2)
        } else {
            u64::MAX
        },
    };
    let mut o = std::mem::MaybeUninit::<pmap_options>::uninit();
    // SAFETY: pmap_options_init fills the whole struct.
    let mut o = unsafe {
        pmap_options_init(o.as_mut_ptr());
        o.assume_init()
    };
    o.work = Some(work);
    o.ctx = ptr::from_ref(&cx).cast_mut().cast();
    o.workers = workers;
    o.capacity = capacity;
    o.ordered = ordered;
    o.fail_fast = fail_fast;
    o.on_drop = Some(on_drop);
    if source_mode {
        o.source = Some(source);
    }
    let mut pool = ptr::null_mut();
    // SAFETY: o is initialised; pool is a valid out-pointer.
    ensure!(unsafe { pmap_new(&o, &mut pool) } == PMAP_OK, "pmap_new");
    cx.pool.store(pool, Ordering::Release);
    let mut d = Driver {
        cx: &cx,
        pool,
        capacity: u64::from(capacity),
        ordered,
        source_mode,
        next_id: 0,
        accepted: 0,
        taken: 0,
        expect_index: 0,
    };
    let mut freed = false;
    for &op in &data[4..] {
        match op % 16 {
            0..=3 => d.submit(op / 16, false),
            4 => d.submit(op / 16, true),
            5 => d.submit_many(usize::from(op / 16) + 1, op),
            6 | 7 => {
                let st = d.next(1, false);
                ensure!(
                    matches!(st, PMAP_OK | PMAP_TIMEOUT | PMAP_DONE),
                    "next {st}"
                );
            }
            8 => {
                let st = d.next(usize::from(op / 16) + 2, op & 0x80 != 0);
                ensure!(
                    matches!(st, PMAP_OK | PMAP_TIMEOUT | PMAP_DONE),
                    "next_many {st}"
                );
            }
            9 => {
                // SAFETY: the pool is live.
                ensure!(unsafe { pmap_close(pool) } == PMAP_OK, "close");
            }
            10 => {
                // SAFETY: the pool is live.
                ensure!(unsafe { pmap_cancel(pool) } == PMAP_OK, "cancel");
                // SAFETY: as above.
                ensure!(
                    unsafe { pmap_is_cancelled(pool) },
                    "not cancelled after cancel"
                );
            }
            11 => d.check_stats(),
            12 => {
                for k in 0..(op / 16) {
                    d.submit(k.wrapping_mul(29), false);
                }
            }
            13 if op / 16 == 15 => {
                // pmap_free with whatever is outstanding: on_drop settles the rest.
                // SAFETY: the pool is live and no other thread uses it.
                ensure!(unsafe { pmap_free(pool) } == PMAP_OK, "free");
                freed = true;
                break;
            }
            _ => {
                // SAFETY: the pool is live.
                let _ = unsafe { pmap_is_cancelled(pool) };
            }
        }
    }
    if !freed {
        d.check_stats();
        // SAFETY: the pool is live.
        ensure!(unsafe { pmap_close(pool) } == PMAP_OK, "final close");
        loop {
            let mut r = empty_result();
            // SAFETY: the pool is live; `r` is writable. Closed, so this ends with DONE.
            match unsafe { pmap_next(pool, &mut r, -1) } {
                PMAP_OK => d.take(&r),
                PMAP_DONE => break,
                s => fail(&format!("final next {s}")),
            }
        }
        if !source_mode {
            ensure!(
                d.taken == d.accepted,
                "taken {} of {} accepted",
                d.taken,
                d.accepted
            );
        }
        // SAFETY: the pool is live and unused elsewhere.
        ensure!(unsafe { pmap_free(pool) } == PMAP_OK, "final free");
    }
    // Every item that reached the pool came back exactly once (checked as they came); none
    // came back that was never accepted, and in submit mode the counts match.
    let back: u32 = cx.returned.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    let expected = if source_mode {
        let calls = cx.source_next.load(Ordering::SeqCst);
        calls.min(cx.source_len).min(cx.source_fail_at)
    } else {
        d.accepted
    };
    ensure!(
        u64::from(back) == expected,
        "{back} came back for {expected} accepted"
    );
});
