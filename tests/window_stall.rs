//! A small ordered window behind slow head items: the window fills, nothing is queued and
//! the head's item still runs, so an idle worker may spin through the stall instead of
//! parking (`spin_through_stall`). Every item must come back once and in order, with the
//! caller submitting and draining on one thread (README pattern 1), and with a cancel
//! in the middle of a stall; the drain must end.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::submit_draining;
use pmap::{Config, Handler, Outcome, Pool, Status, Wait};

/// Runs for `item` microseconds (measured by the clock, so the pool learns items cost
/// microseconds), then returns it.
struct Spin;

impl Handler for Spin {
    type Item = u64;
    type Output = u64;
    type State = ();

    fn init(&self, _worker: u32) {}

    fn work(&self, _state: &mut (), item: &mut u64) -> Result<u64, i32> {
        let until = Instant::now() + Duration::from_micros(*item);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        Ok(*item)
    }

    fn exit(&self, _worker: u32, _state: ()) {}

    fn drop_unreturned(&self, _outcome: Outcome<u64, u64>) {}
}

/// Every 16th item takes 600 µs, the rest 20 µs: with a window of 8 each slow one stalls it.
fn cost(i: u64) -> u64 {
    if i % 16 == 5 { 600 } else { 20 }
}

fn pool() -> Pool<Spin> {
    let config = Config {
        workers: 2,
        capacity: 8,
        ..Config::new()
    };
    Pool::new(Spin, &config).unwrap()
}

/// Runs `f` on a thread and fails if it takes more than a minute: a stall that never
/// ends must fail the test, not hang it.
fn within_a_minute(f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let runner = thread::spawn(move || {
        f();
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => runner.join().unwrap(),
        Err(_) if runner.is_finished() => runner.join().unwrap(), // it panicked: re-raise
        Err(_) => panic!("the pool did not finish within a minute"),
    }
}

/// `outcome` must be item `next`, done.
fn check(outcome: &Outcome<u64, u64>, next: &mut u64) {
    assert_eq!(outcome.index, *next);
    assert_eq!(outcome.value, Some(cost(*next)));
    *next += 1;
}

#[test]
fn every_item_comes_back_in_order_through_stalls() {
    within_a_minute(|| {
        let pool = pool();
        let n = 400;
        let mut next = 0;
        for i in 0..n {
            submit_draining(&pool, cost(i), |outcome| check(&outcome, &mut next));
        }
        pool.close().unwrap();
        while next < n {
            check(&pool.next(Wait::Forever).unwrap(), &mut next);
        }
        assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
        let stats = pool.stats().unwrap();
        assert_eq!((stats.succeeded, stats.in_flight), (n, 0));
    });
}

#[test]
fn a_cancel_during_a_stall_ends_the_drain() {
    within_a_minute(|| {
        let pool = pool();
        // Enough fast items for the pool to measure their cost, then a slow head and a
        // window full behind it.
        for i in 0..64u64 {
            let item = if i == 56 { 20_000 } else { 20 };
            submit_draining(&pool, item, |_| {});
        }
        // The 20 ms item is at or near the head now; let the stall begin, then cancel.
        thread::sleep(Duration::from_millis(5));
        pool.cancel().unwrap();
        let mut last = None;
        let end = loop {
            match pool.next(Wait::Forever) {
                Ok(outcome) => {
                    assert!(last.is_none_or(|l| outcome.index == l + 1), "out of order");
                    last = Some(outcome.index);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(end.status, Status::Done);
        assert_eq!(last, Some(63), "every accepted item came back");
    });
}
