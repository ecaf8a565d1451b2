//! Counters of a pool, read as one consistent snapshot.

use std::sync::atomic::Ordering;

use crate::status::ItemStatus;
use crate::sync::{AtomicU64, AtomicUsize};

/// A snapshot of a pool's counters.
///
/// `succeeded + failed + cancelled` counts the items that have an outcome so far; once
/// the pool is done it equals `submitted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Items accepted (a source failure counts as one).
    pub submitted: u64,
    /// Items whose work function returned success.
    pub succeeded: u64,
    /// Items whose work function failed, plus source failures.
    pub failed: u64,
    /// Items that never ran because the pool was cancelled.
    pub cancelled: u64,
    /// Accepted and not yet handed back by `next`.
    pub in_flight: u64,
    /// Worker threads.
    pub workers: u32,
    /// Nanoseconds since the pool was created.
    pub elapsed_ns: u64,
    /// Nanoseconds spent inside the work function, summed over workers.
    pub busy_ns: u64,
}

/// Per-status outcome counters, kept under the pool's state lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcomes {
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl Outcomes {
    /// Count one outcome of `status`.
    pub(crate) fn count(&mut self, status: ItemStatus) {
        match status {
            ItemStatus::Ok => self.succeeded += 1,
            ItemStatus::Failed | ItemStatus::SourceFailed => self.failed += 1,
            ItemStatus::Cancelled => self.cancelled += 1,
        }
    }

    /// Add `other`'s counts to these.
    pub(crate) fn add(&mut self, other: Outcomes) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
    }

    pub(crate) fn total(&self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }
}

/// One worker's own counters, written by that worker alone: the outcomes it stored into
/// an ordered pool's ring (without the state lock), and its time in the work function.
/// Each outcome count is stored (release) after the outcome it counts, so whoever reads a
/// count (acquire) finds those outcomes in the ring.
pub(crate) struct Tally {
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    /// Stored since the worker last took the state lock (its wake-up decisions).
    unpublished: AtomicUsize,
    busy_ns: AtomicU64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Tally {
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            unpublished: AtomicUsize::new(0),
            busy_ns: AtomicU64::new(0),
        }
    }

    /// Count `ns` of work (only the owning worker calls this).
    pub(crate) fn add_busy(&self, ns: u64) {
        let busy = self.busy_ns.load(Ordering::Relaxed);
        self.busy_ns.store(busy + ns, Ordering::Relaxed);
    }

    pub(crate) fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed)
    }

    /// Count an outcome just stored; returns how many are unpublished now. Only the
    /// owning worker calls this, so a load and a store replace a read-modify-write.
    pub(crate) fn count(&self, status: ItemStatus) -> usize {
        let counter = match status {
            ItemStatus::Ok => &self.succeeded,
            ItemStatus::Failed | ItemStatus::SourceFailed => &self.failed,
            ItemStatus::Cancelled => &self.cancelled,
        };
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
        let unpublished = self.unpublished.load(Ordering::Relaxed) + 1;
        self.unpublished.store(unpublished, Ordering::Relaxed);
        unpublished
    }

    /// The worker took the state lock: whoever waits has been considered.
    pub(crate) fn published(&self) {
        if self.unpublished.load(Ordering::Relaxed) > 0 {
            self.unpublished.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Outcomes {
        Outcomes {
            succeeded: self.succeeded.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            cancelled: self.cancelled.load(Ordering::Acquire),
        }
    }
}
