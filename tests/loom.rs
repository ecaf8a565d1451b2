//! Model checks of the pipeline protocol with loom: every interleaving of the pool's
//! threads (up to the preemption bound) keeps items exactly-once, ordered, bounded, and
//! free of deadlock. Run with:
//!
//! ```sh
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom
//! ```
//!
//! The models drive the real `Pool` (admission, worker rounds, outboxes, collector,
//! cancel, free, the feeder); only the primitives underneath are loom's (src/sync.rs).
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use pmap::{Config, Handler, ItemStatus, Outcome, Pool, Pulled, Status, Wait};

/// Bookkeeping per item: how often it ran, and how often it came back through
/// `drop_unreturned`. Plain std atomics: loom does not need to explore the ledger.
#[derive(Clone)]
struct Ledger {
    ran: Arc<Vec<AtomicUsize>>,
    dropped: Arc<Vec<AtomicUsize>>,
}

impl Ledger {
    fn new(n: usize) -> Self {
        Ledger {
            ran: Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()),
            dropped: Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()),
        }
    }

    /// Check one outcome handed back by `next` against the ledger.
    fn check_delivered(&self, o: &Outcome<u64, u64>) {
        let ran = self.ran[o.index as usize].load(Ordering::SeqCst);
        match o.status {
            ItemStatus::Ok => assert_eq!((ran, o.value), (1, Some(o.index * 10))),
            ItemStatus::Cancelled => assert_eq!(ran, 0, "a cancelled item ran"),
            s => panic!("unexpected status {s:?}"),
        }
        assert_eq!(o.item, Some(o.index));
    }
}

impl Handler for Ledger {
    type Item = u64;
    type Output = u64;
    type State = ();

    fn init(&self, _worker: u32) {}

    fn work(&self, _state: &mut (), item: &mut u64) -> Result<u64, i32> {
        self.ran[*item as usize].fetch_add(1, Ordering::SeqCst);
        Ok(*item * 10)
    }

    fn exit(&self, _worker: u32, _state: ()) {}

    fn drop_unreturned(&self, outcome: Outcome<u64, u64>) {
        self.dropped[outcome.index as usize].fetch_add(1, Ordering::SeqCst);
    }
}

fn config(workers: usize, capacity: usize) -> Config {
    Config {
        workers,
        capacity,
        ..Config::new()
    }
}

/// A source of the items 0..n, then the end of input, and how often it was called.
fn counting_source(n: usize) -> (pmap::Source<u64>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source = Box::new(move || {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        if i < n {
            Pulled::Item(i as u64)
        } else {
            Pulled::End
        }
    });
    (source, calls)
}

/// Drain until `Done`, checking order and the ledger; returns the indices seen.
fn drain(pool: &Pool<Ledger>, ledger: &Ledger) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        match pool.next(Wait::Forever) {
            Ok(o) => {
                ledger.check_delivered(&o);
                seen.push(o.index);
            }
            Err(e) => {
                assert_eq!(e.status, Status::Done);
                return seen;
            }
        }
    }
}

/// One thread submits with timeout 0 and drains on Timeout, then closes and drains.
#[test]
fn submit_close_drain() {
    loom::model(|| {
        let ledger = Ledger::new(3);
        let pool = Pool::new(ledger.clone(), &config(1, 2)).unwrap();
        let mut seen = Vec::new();
        for i in 0..3 {
            let mut item = i;
            loop {
                match pool.submit(item, Wait::Never) {
                    Ok(()) => break,
                    Err(r) => {
                        assert_eq!(r.error.status, Status::Timeout);
                        item = r.item;
                        let o = pool.next(Wait::Forever).unwrap();
                        ledger.check_delivered(&o);
                        seen.push(o.index);
                    }
                }
            }
        }
        pool.close().unwrap();
        seen.extend(drain(&pool, &ledger));
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
    });
}

/// Another thread cancels while the consumer drains: each item comes back exactly once,
/// either run or cancelled (never both), in order, and the drain ends with Done.
#[test]
fn cancel_during_drain() {
    loom::model(|| {
        let ledger = Ledger::new(2);
        let pool = Arc::new(Pool::new(ledger.clone(), &config(1, 2)).unwrap());
        pool.submit(0, Wait::Never).unwrap();
        pool.submit(1, Wait::Never).unwrap();
        let canceller = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.cancel().unwrap())
        };
        let seen = drain(&pool, &ledger);
        canceller.join().unwrap();
        assert_eq!(seen, vec![0, 1]);
        assert_eq!(
            pool.submit(2, Wait::Never).unwrap_err().error.status,
            Status::Cancelled
        );
    });
}

/// Free (drop) with items queued or running: every item comes back exactly once through
/// `drop_unreturned`, and none that was cancelled ran.
#[test]
fn free_with_items_in_flight() {
    loom::model(|| {
        let ledger = Ledger::new(2);
        let pool = Pool::new(ledger.clone(), &config(1, 2)).unwrap();
        pool.submit(0, Wait::Never).unwrap();
        pool.submit(1, Wait::Never).unwrap();
        drop(pool);
        for i in 0..2 {
            assert_eq!(
                ledger.dropped[i].load(Ordering::SeqCst),
                1,
                "item {i} dropped once"
            );
            assert!(ledger.ran[i].load(Ordering::SeqCst) <= 1);
        }
    });
}

/// Ordered, two workers, three items through a window of two: whichever worker finishes
/// first, the consumer sees 0, 1, 2 with no gap, a full window refuses more, and
/// in-flight never exceeds capacity at any observation. (One thread submits and consumes,
/// which keeps the model to three threads.)
#[test]
fn bound_under_ordered_head_of_line() {
    loom::model(|| {
        let ledger = Ledger::new(3);
        let pool = Pool::new(ledger.clone(), &config(2, 2)).unwrap();
        let mut seen = Vec::new();
        pool.submit(0, Wait::Never).unwrap();
        pool.submit(1, Wait::Never).unwrap();
        let full = pool.submit(2, Wait::Never).unwrap_err();
        assert_eq!(full.error.status, Status::Timeout);
        assert_eq!(pool.stats().unwrap().in_flight, 2);
        let o = pool.next(Wait::Forever).unwrap();
        ledger.check_delivered(&o);
        seen.push(o.index);
        pool.submit(full.item, Wait::Never).unwrap();
        assert!(pool.stats().unwrap().in_flight <= 2);
        pool.close().unwrap();
        seen.extend(drain(&pool, &ledger));
        assert_eq!(seen, vec![0, 1, 2]);
    });
}

/// A work function that makes a blocking `next` on its own pool gets `Invalid` instead
/// of deadlocking, and the pool goes on.
#[test]
fn reentrant_blocking_call_is_refused() {
    struct Reentrant {
        pool: Arc<AtomicPtr<Pool<Reentrant>>>,
        answers: Arc<AtomicUsize>,
    }
    impl Handler for Reentrant {
        type Item = u64;
        type Output = u64;
        type State = ();
        fn init(&self, _worker: u32) {}
        fn work(&self, _state: &mut (), item: &mut u64) -> Result<u64, i32> {
            let pool = self.pool.load(Ordering::SeqCst);
            // SAFETY: the pointer is set before any item is submitted and the pool outlives
            // every work call (it joins its workers before it is dropped).
            let pool = unsafe { &*pool };
            let err = pool.next(Wait::Forever).unwrap_err();
            assert_eq!(err.status, Status::Invalid);
            self.answers.fetch_add(1, Ordering::SeqCst);
            Ok(*item)
        }
        fn exit(&self, _worker: u32, _state: ()) {}
    }
    loom::model(|| {
        let slot = Arc::new(AtomicPtr::new(std::ptr::null_mut()));
        let answers = Arc::new(AtomicUsize::new(0));
        let handler = Reentrant {
            pool: slot.clone(),
            answers: answers.clone(),
        };
        let pool = Pool::new(handler, &config(1, 1)).unwrap();
        slot.store(&pool as *const _ as *mut _, Ordering::SeqCst);
        pool.submit(7, Wait::Never).unwrap();
        pool.close().unwrap();
        let o = pool.next(Wait::Forever).unwrap();
        assert_eq!((o.index, o.status), (0, ItemStatus::Ok));
        assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
        assert_eq!(answers.load(Ordering::SeqCst), 1);
    });
}

/// Source mode with a cancel racing the feeder: every pulled item comes back exactly
/// once and the drain ends with Done once the feeder has stopped.
#[test]
fn source_with_cancel() {
    loom::model(|| {
        let ledger = Ledger::new(2);
        let (source, calls) = counting_source(2);
        let pool = Arc::new(Pool::with_source(ledger.clone(), &config(1, 2), source).unwrap());
        let canceller = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.cancel().unwrap())
        };
        let seen = drain(&pool, &ledger);
        canceller.join().unwrap();
        let pulled = calls.load(Ordering::SeqCst).min(2);
        assert_eq!(seen, (0..pulled as u64).collect::<Vec<_>>());
    });
}

/// A config whose tasks carry `task_len` items and whose consumers are woken for
/// `wake_batch` results: measured sizing starts at one item and depends on the clock, so
/// without this the models would never see a round of several items.
fn batched(workers: usize, capacity: usize, task_len: usize, wake_batch: usize) -> Config {
    Config {
        fixed_sizing: Some((task_len, wake_batch)),
        ..config(workers, capacity)
    }
}

/// Tasks of two from a source: pulled items wait in the feeder's inbox until a task's
/// worth has gathered, unless a worker goes to sleep first (the inbox handshake); the
/// worker's outbox is published mid-round for a waiting consumer. Every item comes back
/// once, in order, and the drain ends.
#[test]
fn source_in_tasks() {
    loom::model(|| {
        let ledger = Ledger::new(3);
        let (source, _) = counting_source(3);
        let pool = Pool::with_source(ledger.clone(), &batched(1, 4, 2, 2), source).unwrap();
        assert_eq!(drain(&pool, &ledger), vec![0, 1, 2]);
    });
}

/// Tasks of two from a producer thread that blocks for room (five items, four slots),
/// while the main thread drains: the same guarantees with the queue fed by `submit`.
#[test]
fn submit_in_tasks() {
    loom::model(|| {
        let ledger = Ledger::new(5);
        let pool = Arc::new(Pool::new(ledger.clone(), &batched(1, 4, 2, 2)).unwrap());
        let producer = {
            let pool = pool.clone();
            loom::thread::spawn(move || {
                for i in 0..5 {
                    if pool.submit(i, Wait::Forever).is_err() {
                        panic!("submit {i} refused");
                    }
                }
                pool.close().unwrap();
            })
        };
        assert_eq!(drain(&pool, &ledger), vec![0, 1, 2, 3, 4]);
        producer.join().unwrap();
    });
}

/// Cancel while a worker is inside a round of two (four items, tasks of two): items
/// already taken into the round but not started come back cancelled when the worker gets
/// to them, queued ones at once; each item comes back exactly once, in order, a cancelled
/// one never ran, and the drain ends with Done.
#[test]
fn cancel_in_tasks() {
    loom::model(|| {
        let ledger = Ledger::new(4);
        let pool = Arc::new(Pool::new(ledger.clone(), &batched(1, 4, 2, 2)).unwrap());
        for i in 0..4 {
            pool.submit(i, Wait::Never).unwrap();
        }
        let canceller = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.cancel().unwrap())
        };
        let seen = drain(&pool, &ledger);
        canceller.join().unwrap();
        assert_eq!(seen, vec![0, 1, 2, 3]);
    });
}

/// A live source: it returns an item only after the consumer has taken the one before,
/// so the pool must never hold a pulled item back while the source waits (tasks and
/// reservations of two, the poller's timer firing whenever it is set). Three items, so the
/// last one starts a reservation it cannot fill: a pool that held it in the inbox until a
/// task's worth had gathered would deadlock here.
#[test]
fn live_source() {
    use loom::sync::{Condvar, Mutex};
    loom::model(|| {
        let ledger = Ledger::new(3);
        let taken = Arc::new((Mutex::new(0u64), Condvar::new()));
        let source = {
            let taken = taken.clone();
            let mut next = 0u64;
            Box::new(move || {
                let (m, cv) = &*taken;
                let mut t = m.lock().unwrap();
                while *t < next {
                    t = cv.wait(t).unwrap();
                }
                next += 1;
                if next <= 3 {
                    Pulled::Item(next - 1)
                } else {
                    Pulled::End
                }
            })
        };
        let pool = Pool::with_source(ledger.clone(), &batched(1, 4, 2, 2), source).unwrap();
        for i in 0..3 {
            let o = pool.next(Wait::Forever).unwrap();
            ledger.check_delivered(&o);
            assert_eq!(o.index, i);
            let (m, cv) = &*taken;
            *m.lock().unwrap() += 1;
            cv.notify_all();
        }
        assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
    });
}

/// Two consumers drain one ordered pool at once, one a batch at a time, the other one by
/// one, each reading the ring under the consumers' taker lock rather than the state lock:
/// each item must still come back exactly once, each consumer's share in index order, and
/// both must see `Done` (the one that hands back the last item wakes the other, which may
/// be about to sleep, without having held the state lock while taking it).
#[test]
fn two_consumers() {
    loom::model(|| {
        let ledger = Ledger::new(2);
        let pool = Arc::new(Pool::new(ledger.clone(), &config(1, 2)).unwrap());
        pool.submit(0, Wait::Never).unwrap();
        pool.submit(1, Wait::Never).unwrap();
        pool.close().unwrap();
        let other = {
            let (pool, ledger) = (pool.clone(), ledger.clone());
            loom::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let mut batch = Vec::new();
                    match pool.next_many(&mut batch, 2, Wait::Forever) {
                        Ok(_) => batch.iter().for_each(|o| {
                            ledger.check_delivered(o);
                            seen.push(o.index);
                        }),
                        Err(e) => {
                            assert_eq!(e.status, Status::Done);
                            return seen;
                        }
                    }
                }
            })
        };
        let mine = drain(&pool, &ledger);
        let theirs = other.join().unwrap();
        for share in [&mine, &theirs] {
            assert!(
                share.windows(2).all(|w| w[0] < w[1]),
                "out of order: {share:?}"
            );
        }
        let mut all = [mine, theirs].concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1], "every item exactly once");
    });
}
