//! Close, cancel, stats, and the first half of `free`.

use std::sync::atomic::Ordering;

use crate::handler::{Finished, Handler};
use crate::stats::Stats;
use crate::sync::lock;
use crate::threads::OwnerGuard;

use super::{FinishedOf, Shared, StateOf};

impl<H: Handler> Shared<H> {
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        self.close_locked(&mut st);
    }

    pub(crate) fn cancel(&self) {
        let mut st = lock(&self.state);
        self.cancel_locked(&mut st);
    }

    /// Mark cancelled without the lock, for a pool that is being leaked.
    pub(crate) fn cancel_flag_only(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub(super) fn close_locked(&self, st: &mut StateOf<H>) {
        st.closed = true;
        self.stop_pulling.store(true, Ordering::Release);
        self.wake_locked(st);
    }

    pub(super) fn cancel_locked(&self, st: &mut StateOf<H>) {
        if st.cancelled {
            return;
        }
        st.cancelled = true;
        self.cancelled.store(true, Ordering::Release);
        self.stop_pulling.store(true, Ordering::Release);
        // Queued items never start: they get their outcome now, not when a worker frees up.
        let first = st.queue_first;
        for (k, item) in st.queue.take_all().enumerate() {
            self.count_and_insert(st, Finished::cancelled(first + k as u64, item));
        }
        self.wake_locked(st);
    }

    pub(super) fn store_locked(&self, st: &mut StateOf<H>, outcome: FinishedOf<H>) {
        if self.count_and_insert(st, outcome) && self.fail_fast {
            self.cancel_locked(st);
        }
        self.wake_locked(st);
    }

    pub(crate) fn stats(&self) -> Stats {
        // Both locks (in their order), so nothing is handed back while the counts are read.
        let taker = self.ordered.then(|| lock(&self.delivery.taker));
        let st = lock(&self.state);
        let submitted = st.submitted - st.feeder_unsent;
        let stored = self.stored_outcomes(&st);
        let handed_back = taker.map_or(st.delivered_outcomes, |t| *t);
        let delivered = self.delivery.delivered.load(Ordering::Acquire);
        Stats {
            submitted,
            succeeded: stored.succeeded.max(handed_back.succeeded),
            failed: stored.failed.max(handed_back.failed),
            cancelled: stored.cancelled.max(handed_back.cancelled),
            in_flight: submitted - delivered,
            workers: self.workers as u32,
            elapsed_ns: self.started.elapsed().as_nanos() as u64,
            busy_ns: self.busy_ns(),
        }
    }

    /// The first half of `free`: cancel, wait until every accepted item has an outcome,
    /// hand the ones never delivered to the handler (on this thread), then disconnect the
    /// queue so each worker runs its exit hook and returns.
    pub(crate) fn wind_down(&self) {
        let leftovers = {
            let mut st = lock(&self.state);
            self.cancel_locked(&mut st);
            st.freeing = true;
            while !self.is_settled(&st) {
                st = self.settled.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            drop(st);
            // No consumer may be reading the ring while the leftovers are taken.
            let _taker = lock(&self.delivery.taker);
            let mut st = lock(&self.state);
            let delivered = &self.delivery.delivered;
            let head = delivered.load(Ordering::Relaxed);
            let end = st.submitted;
            let leftovers = st.collector.take_all(&self.window, head, end);
            delivered.store(head + leftovers.len() as u64, Ordering::Release);
            leftovers
        };
        {
            let _inside = OwnerGuard::enter(self.addr());
            for outcome in leftovers {
                self.handler.drop_unreturned(outcome);
            }
        }
        lock(&self.state).shutdown = true;
        self.work.notify_all();
    }
}
