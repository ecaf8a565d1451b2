//! The Rust API's `Pool::next_into` hands each outcome to a caller's sink. An ordered pool
//! reads a batch outside its lock while other consumers wait, so a sink that panics must
//! not leave them (or `free`) waiting: what it took counts as handed back, and the pool
//! goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::{Double, wait_for_succeeded};
use pmap::{Config, Pool, Status, Wait};

/// A pool of two workers and 64 slots with items `0..n` submitted and all finished, so a
/// batch taken from it is read outside the lock; and its count of dropped outcomes.
fn pool_with_results(n: u64) -> (Pool<Double>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let config = Config {
        workers: 2,
        capacity: 64,
        ..Config::new()
    };
    let handler = Double {
        dropped: dropped.clone(),
    };
    let pool = Pool::new(handler, &config).unwrap();
    for i in 0..n {
        pool.submit(i, Wait::Forever).unwrap();
    }
    wait_for_succeeded(&pool, n);
    (pool, dropped)
}

#[test]
fn a_panicking_sink_leaves_the_pool_usable() {
    let (pool, dropped) = pool_with_results(40);
    let mut seen = Vec::new();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        pool.next_into(16, Wait::Never, |o| {
            seen.push(o.index);
            if seen.len() == 3 {
                panic!("the caller's sink fails");
            }
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(seen, vec![0, 1, 2]);
    let stats = pool.stats().unwrap();
    assert_eq!(
        stats.in_flight, 37,
        "the three the sink took count as handed back"
    );

    // Another look goes on after them, in order, and finds the end.
    let mut rest = Vec::new();
    pool.next_many(&mut rest, 64, Wait::Never).unwrap();
    let indices: Vec<u64> = rest.iter().map(|o| o.index).collect();
    assert_eq!(indices, (3..40).collect::<Vec<_>>());
    assert!(rest.iter().all(|o| o.value == Some(o.index * 2)));
    pool.close().unwrap();
    assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
    drop(pool);
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "nothing left to drop");
}

#[test]
fn a_pool_freed_after_a_panicking_sink_hands_the_rest_to_drop() {
    let (pool, dropped) = pool_with_results(20);
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        pool.next_into(8, Wait::Never, |_| panic!("the caller's sink fails"))
    }));
    assert!(panicked.is_err());
    // Freeing must not wait for the consumer that panicked.
    drop(pool);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        19,
        "all but the one the sink took"
    );
}
