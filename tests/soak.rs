//! Drop-counting soak through the C ABI: random costs, random failures, random cancel
//! and free points, both input styles. Every item must come back exactly once (through
//! `pmap_next` or `on_drop`), no cancelled item may have run, and in-flight never exceeds
//! `capacity`. `PMAP_SOAK_ITEMS` raises the total (default 10^6); the seed is printed on
//! failure and can be replayed with `PMAP_SOAK_SEED`.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pmap::ffi::api::*;
use pmap::ffi::types::*;

/// A tiny deterministic PRNG (xorshift64*), so runs replay from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The payload: its id, its planned behaviour, and a record of what happened to it.
struct Item {
    id: u64,
    spin: u32,
    fail: bool,
}

/// Per-run ledger shared with the callbacks through `ctx`.
struct Ledger {
    returned: Vec<AtomicU32>,
    worked: Vec<AtomicU32>,
    dropped: AtomicU64,
    drop_failures: std::sync::Mutex<Vec<String>>,
    source_next: AtomicU64,
    source_items: u64,
    plan: Vec<(u32, bool)>,
}

unsafe extern "C" fn work(
    ctx: *mut c_void,
    _state: *mut c_void,
    item: *mut c_void,
    out: *mut *mut c_void,
) -> i32 {
    // SAFETY: ctx is the run's Ledger and item a live Box<Item>, both owned by the test.
    let (ledger, item) = unsafe { (&*(ctx as *const Ledger), &*(item as *const Item)) };
    ledger.worked[item.id as usize].fetch_add(1, Ordering::Relaxed);
    let mut acc = item.id;
    for _ in 0..item.spin {
        acc = std::hint::black_box(acc.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    if item.fail {
        return 17;
    }
    // SAFETY: out is valid for the call; the value is a Box the consumer frees.
    unsafe { *out = Box::into_raw(Box::new(acc)) as *mut c_void };
    0
}

unsafe extern "C" fn source(ctx: *mut c_void, out: *mut *mut c_void) -> i32 {
    // SAFETY: ctx is the run's Ledger; out is valid for the call.
    let ledger = unsafe { &*(ctx as *const Ledger) };
    let id = ledger.source_next.fetch_add(1, Ordering::Relaxed);
    if id >= ledger.source_items {
        return 0;
    }
    let (spin, fail) = ledger.plan[id as usize];
    // SAFETY: out is valid for the call.
    unsafe { *out = Box::into_raw(Box::new(Item { id, spin, fail })) as *mut c_void };
    1
}

/// Account for one handed-back result and free what it owns.
fn settle(ledger: &Ledger, r: &pmap_result) {
    assert!(
        !r.item.is_null(),
        "soak sources never fail, so every result has an item"
    );
    // SAFETY: every item is a Box<Item> made by this test and handed back exactly once
    // (the ledger below fails the test otherwise).
    let item = unsafe { Box::from_raw(r.item as *mut Item) };
    let before = ledger.returned[item.id as usize].fetch_add(1, Ordering::Relaxed);
    assert_eq!(before, 0, "item {} handed back twice", item.id);
    match r.status {
        PMAP_ITEM_OK => {
            assert!(!item.fail);
            // SAFETY: a successful item's value is the Box<u64> made by `work`.
            drop(unsafe { Box::from_raw(r.value as *mut u64) });
        }
        PMAP_ITEM_FAILED => {
            assert!(item.fail && r.error == 17 && r.value.is_null());
        }
        PMAP_ITEM_CANCELLED => {
            assert_eq!(r.worker, PMAP_NO_WORKER);
            assert_eq!(
                ledger.worked[item.id as usize].load(Ordering::Relaxed),
                0,
                "cancelled item {} ran",
                item.id
            );
        }
        s => panic!("unexpected item status {s}"),
    }
}

unsafe extern "C" fn on_drop(ctx: *mut c_void, r: *const pmap_result) {
    // SAFETY: ctx is the run's Ledger; r is valid during the call.
    let (ledger, r) = unsafe { (&*(ctx as *const Ledger), &*r) };
    ledger.dropped.fetch_add(1, Ordering::Relaxed);
    // A panic must not unwind into C: record it and fail after pmap_free returns.
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| settle(ledger, r))) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "on_drop check failed".into());
        ledger.drop_failures.lock().unwrap().push(msg);
    }
}

struct Run {
    items: u64,
    workers: u32,
    capacity: u32,
    ordered: bool,
    fail_fast: bool,
    use_source: bool,
    cancel_at: Option<u64>,
    free_at: Option<u64>,
}

fn one_run(rng: &mut Rng, run: &Run) -> u64 {
    let plan: Vec<(u32, bool)> = (0..run.items)
        .map(|_| {
            // Heavy tail: mostly cheap, sometimes 100x.
            let spin = match rng.below(100) {
                0 => 20_000,
                1..=9 => 2_000,
                _ => rng.below(200) as u32,
            };
            (spin, rng.below(50) == 0)
        })
        .collect();
    let ledger = Box::new(Ledger {
        returned: (0..run.items).map(|_| AtomicU32::new(0)).collect(),
        worked: (0..run.items).map(|_| AtomicU32::new(0)).collect(),
        dropped: AtomicU64::new(0),
        drop_failures: std::sync::Mutex::new(Vec::new()),
        source_next: AtomicU64::new(0),
        source_items: run.items,
        plan,
    });
    let mut opts = std::mem::MaybeUninit::<pmap_options>::uninit();
    // SAFETY: pmap_options_init fills the whole struct.
    let mut opts = unsafe {
        pmap_options_init(opts.as_mut_ptr());
        opts.assume_init()
    };
    opts.work = Some(work);
    opts.ctx = &*ledger as *const Ledger as *mut c_void;
    opts.workers = run.workers;
    opts.capacity = run.capacity;
    opts.ordered = run.ordered;
    opts.fail_fast = run.fail_fast;
    opts.on_drop = Some(on_drop);
    if run.use_source {
        opts.source = Some(source);
    }
    let mut pool = ptr::null_mut();
    // SAFETY: opts is initialised; pool is a valid out-pointer.
    assert_eq!(unsafe { pmap_new(&opts, &mut pool) }, PMAP_OK);

    let mut submitted = if run.use_source { 0 } else { u64::MAX };
    let mut next_id = 0u64;
    let mut taken = 0u64;
    let mut expect_index = 0u64;
    let mut in_flight = 0u64;
    let mut freed_early = false;
    // After a refused submit only `pmap_next` can make room, so it may block.
    let mut full = false;
    let mut producing = !run.use_source;
    let mut result = pmap_result {
        index: 0,
        item: ptr::null_mut(),
        value: ptr::null_mut(),
        status: 0,
        error: 0,
        worker: 0,
    };
    loop {
        if Some(taken) == run.cancel_at {
            // SAFETY: pool is live.
            assert_eq!(unsafe { pmap_cancel(pool) }, PMAP_OK);
        }
        if Some(taken) == run.free_at {
            freed_early = true;
            break;
        }
        // Producer side (submit mode only): fill without waiting, then drain.
        if producing && next_id < run.items {
            let (spin, fail) = ledger.plan[next_id as usize];
            let item = Box::into_raw(Box::new(Item {
                id: next_id,
                spin,
                fail,
            })) as *mut c_void;
            // SAFETY: pool is live; item is ours until handed back.
            match unsafe { pmap_submit(pool, item, 0) } {
                PMAP_OK => {
                    full = false;
                    next_id += 1;
                    in_flight += 1;
                    assert!(
                        in_flight <= u64::from(run.capacity),
                        "in flight above capacity"
                    );
                    continue;
                }
                PMAP_TIMEOUT => full = true,
                PMAP_CANCELLED => {
                    // Not accepted: still ours.
                    // SAFETY: the pool refused it, so we still own the Box.
                    drop(unsafe { Box::from_raw(item as *mut Item) });
                    submitted = next_id;
                    producing = false;
                }
                s => panic!("submit returned {s}"),
            }
        }
        if producing && next_id == run.items && submitted == u64::MAX {
            submitted = next_id;
            // SAFETY: pool is live.
            assert_eq!(unsafe { pmap_close(pool) }, PMAP_OK);
        }
        let wait = if submitted == u64::MAX && !full {
            0
        } else {
            -1
        };
        // SAFETY: pool is live; result is a valid out-pointer.
        match unsafe { pmap_next(pool, &mut result, wait) } {
            PMAP_OK => {
                if run.ordered {
                    assert_eq!(
                        result.index, expect_index,
                        "ordered results skipped an index"
                    );
                    expect_index += 1;
                }
                in_flight = in_flight.saturating_sub(1);
                taken += 1;
                settle(&ledger, &result);
            }
            PMAP_TIMEOUT => {}
            PMAP_DONE => break,
            s => panic!("next returned {s}"),
        }
    }
    let mut stats = pmap_stats::default();
    // SAFETY: pool is live; stats is a valid out-pointer.
    assert_eq!(unsafe { pmap_stats_get(pool, &mut stats) }, PMAP_OK);
    // SAFETY: pool is live and no other thread uses it.
    assert_eq!(unsafe { pmap_free(pool) }, PMAP_OK);

    let failures = ledger.drop_failures.lock().unwrap();
    assert!(failures.is_empty(), "on_drop saw: {failures:?}");
    // Every item created was accepted: the feeder reserves a slot before each pull.
    let created = if run.use_source {
        ledger.source_next.load(Ordering::Relaxed).min(run.items)
    } else {
        next_id
    };
    if !freed_early {
        assert_eq!(stats.submitted, created);
        assert_eq!(
            stats.succeeded + stats.failed + stats.cancelled,
            stats.submitted
        );
        assert_eq!(
            ledger.dropped.load(Ordering::Relaxed),
            0,
            "a drained pool has nothing to drop"
        );
    }
    for id in 0..created {
        assert_eq!(
            ledger.returned[id as usize].load(Ordering::Relaxed),
            1,
            "item {id} not handed back exactly once"
        );
        assert!(
            ledger.worked[id as usize].load(Ordering::Relaxed) <= 1,
            "item {id} ran twice"
        );
    }
    for id in created..run.items {
        assert_eq!(
            ledger.returned[id as usize].load(Ordering::Relaxed),
            0,
            "item {id} was never submitted"
        );
    }
    created
}

#[test]
fn soak_exactly_once() {
    let total: u64 = std::env::var("PMAP_SOAK_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("PMAP_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    let mut done = 0u64;
    let mut runs = 0u64;
    while done < total {
        let items = 1 + rng.below(20_000);
        let run = Run {
            items,
            workers: 1 + rng.below(4) as u32,
            capacity: [1, 2, 7, 64, 256][rng.below(5) as usize],
            ordered: rng.below(2) == 0,
            fail_fast: rng.below(4) == 0,
            use_source: rng.below(3) == 0,
            cancel_at: (rng.below(3) == 0).then(|| rng.below(items)),
            free_at: (rng.below(4) == 0).then(|| rng.below(items)),
        };
        let run_seed = rng.0;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one_run(&mut rng, &run)));
        match outcome {
            Ok(_) => {}
            Err(e) => {
                eprintln!("soak failed: PMAP_SOAK_SEED={seed} (run {runs}, rng state {run_seed})");
                std::panic::resume_unwind(e);
            }
        }
        done += items;
        runs += 1;
    }
    eprintln!("soak: {done} items over {runs} runs, seed {seed}");
}
