//! What several integration tests share.
#![allow(dead_code, reason = "each test binary uses only some of these")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pmap::{Handler, Outcome, Pool, Status, Wait};

/// Doubles each item, and counts the outcomes a freed pool hands to `drop_unreturned`.
#[derive(Default)]
pub struct Double {
    pub dropped: Arc<AtomicUsize>,
}

impl Handler for Double {
    type Item = u64;
    type Output = u64;
    type State = ();

    fn init(&self, _worker: u32) {}

    fn work(&self, _state: &mut (), item: &mut u64) -> Result<u64, i32> {
        Ok(*item * 2)
    }

    fn exit(&self, _worker: u32, _state: ()) {}

    fn drop_unreturned(&self, _outcome: Outcome<u64, u64>) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (by polling `stats`, which is not a wait on the pool) until `n` items succeeded;
/// fails after 30 s.
pub fn wait_for_succeeded(pool: &Pool<Double>, n: u64) {
    let start = Instant::now();
    while pool.stats().unwrap().succeeded < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fewer than {n} items finished within 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// README pattern 1: submit `item` without waiting; while the window is full, hand the
/// next result (waiting for it) to `take`, and try again.
pub fn submit_draining<H: Handler>(
    pool: &Pool<H>,
    mut item: H::Item,
    mut take: impl FnMut(Outcome<H::Item, H::Output>),
) {
    loop {
        match pool.submit(item, Wait::Never) {
            Ok(()) => return,
            Err(rejected) => {
                assert_eq!(rejected.error.status, Status::Timeout);
                item = rejected.item;
                take(pool.next(Wait::Forever).unwrap());
            }
        }
    }
}
