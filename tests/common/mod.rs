//! What several integration tests share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pmap::Handler;

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

    fn drop_unreturned(&self, _outcome: pmap::Outcome<u64, u64>) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}
