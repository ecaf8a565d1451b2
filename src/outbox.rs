//! A hand-off buffer one thread fills and another may empty at any time: a worker's
//! finished outcomes on their way to the collector, and the feeder's pulled items on
//! their way to the work queue (`Shared::inbox`).
//!
//! A worker publishes its outcomes to the collector once per round, under the state lock.
//! Between publications they wait here, where a consumer that found nothing ready can
//! take them ("steal") before it goes to sleep, so a finished result never waits for a
//! slow item that its worker started afterwards.
//!
//! The hand-off is a Dekker-style handshake on two sequentially consistent atomics: the
//! filler stores `len` after pushing and then reads the other side's "waiting" flag or
//! count; the other side stores that, then reads `len`. At least one of them sees the
//! other, so either the filler hands over or the other side takes.

use std::sync::atomic::Ordering;

use crate::sync::{AtomicUsize, Mutex, lock};

pub(crate) struct Outbox<T> {
    items: Mutex<Vec<T>>,
    /// Mirror of `items.len()`, readable without the lock.
    len: AtomicUsize,
}

impl<T> Outbox<T> {
    pub(crate) fn new() -> Self {
        Outbox {
            items: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Called only by the owning worker. The lock is uncontended unless a consumer steals.
    /// Returns how many items wait here now.
    pub(crate) fn push(&self, item: T) -> usize {
        let mut items = lock(&self.items);
        items.push(item);
        let len = items.len();
        self.len.store(len, Ordering::SeqCst);
        len
    }

    /// Whether anything waits here (part of the handshake: read after announcing a wait).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Hand every waiting item to `f`; returns how many. Callers hold the state lock, and
    /// the lock order is always state, then outbox.
    pub(crate) fn take_all(&self, mut f: impl FnMut(T)) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut items = lock(&self.items);
        self.len.store(0, Ordering::SeqCst);
        let n = items.len();
        for item in items.drain(..) {
            f(item);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_all_empties_in_push_order() {
        let o = Outbox::new();
        assert!(o.is_empty());
        assert_eq!(o.push(1), 1);
        assert_eq!(o.push(2), 2);
        assert!(!o.is_empty());
        let mut got = Vec::new();
        assert_eq!(o.take_all(|x| got.push(x)), 2);
        assert_eq!(got, vec![1, 2]);
        assert!(o.is_empty());
        assert_eq!(o.take_all(|_: i32| unreachable!()), 0);
    }
}
