//! How many items to move at a time, from the measured cost per item.
//!
//! Moving items one at a time costs a lock and often a thread wake-up per item, which
//! dwarfs a cheap work function. So a worker takes a *task*: a run of queued items worth
//! about [`TARGET_TASK_NS`] of work, so per-item overhead is amortised while cancellation
//! and ordered delivery still react within microseconds. It is also capped so that the
//! window of `capacity` items still spreads over every worker. Waiting consumers and the
//! feeder are likewise woken for a batch (`wake_batch`), not for each item.

use std::sync::atomic::Ordering;

use crate::sync::{AtomicU64, AtomicUsize, Padded};

/// Work one task should carry, in nanoseconds.
pub(crate) const TARGET_TASK_NS: u64 = 20_000;

/// Work that should finish between two wake-ups of a waiting consumer, in nanoseconds:
/// waking a thread costs microseconds of CPU on both sides, so with cheap items a consumer
/// is woken for a batch of results rather than for each one. On a machine with no idle
/// core each wake-up also takes a worker's core away: 2 ms instead of 500 µs took 1 µs
/// items 2–5% closer to a bulk loop (BENCHMARKS.md, run 14).
pub(crate) const TARGET_WAKE_NS: u64 = 2_000_000;

/// Upper bound on items per task, whatever the cost.
const MAX_TASK_ITEMS: usize = 1024;

/// The running estimate of work cost per item, shared by all workers.
pub(crate) struct Sizer {
    /// Exponentially weighted mean cost per item in ns; 0 until the first measurement.
    /// Written after every worker round, so it has a line of its own: `task_len` and
    /// `wake_batch` are read per item, and a store beside them took that line from
    /// every other core each round (at 1 µs items, a round is 20 items).
    item_ns: Padded<AtomicU64>,
    /// Most items per task so that `capacity` still covers every worker twice.
    spread_cap: usize,
    /// Most results to gather before waking a consumer: half the window, so the workers
    /// still have the other half to work on while the consumer sleeps. (A quarter cost
    /// nearly twice the consumer wake-ups at 1 µs items; BENCHMARKS.md, run 4.)
    wake_cap: usize,
    /// `task_len` and `wake_batch`, worked out when a measurement comes in: they are read
    /// on every hand-off, measurements arrive once per worker round.
    task_len: AtomicUsize,
    wake_batch: AtomicUsize,
    /// Loom models fix the sizes: measurements come from the wall clock.
    #[cfg(loom)]
    fixed: bool,
}

impl Sizer {
    pub(crate) fn new(capacity: usize, workers: usize) -> Self {
        Sizer {
            item_ns: Padded(AtomicU64::new(0)),
            spread_cap: (capacity / (2 * workers.max(1))).clamp(1, MAX_TASK_ITEMS),
            wake_cap: (capacity / 2).max(1),
            // Unknown cost: one at a time until measured, the safe choice for slow work.
            task_len: AtomicUsize::new(1),
            wake_batch: AtomicUsize::new(1),
            #[cfg(loom)]
            fixed: false,
        }
    }

    /// Loom models only: these sizes from the start, whatever is measured.
    #[cfg(loom)]
    pub(crate) fn fixed(self, task_len: usize, wake_batch: usize) -> Self {
        Sizer {
            task_len: AtomicUsize::new(task_len.clamp(1, self.spread_cap)),
            wake_batch: AtomicUsize::new(wake_batch.clamp(1, self.wake_cap)),
            fixed: true,
            ..self
        }
    }

    /// Items the next task should carry.
    pub(crate) fn task_len(&self) -> usize {
        self.task_len.load(Ordering::Relaxed)
    }

    /// The most items a task (or a feeder reservation) ever carries.
    pub(crate) fn max_task_len(&self) -> usize {
        self.spread_cap
    }

    /// The measured mean cost of an item in ns; 0 until the first measurement.
    pub(crate) fn item_ns(&self) -> u64 {
        self.item_ns.load(Ordering::Relaxed)
    }

    /// Ready results worth waking a waiting consumer for (1: wake it for each).
    pub(crate) fn wake_batch(&self) -> usize {
        self.wake_batch.load(Ordering::Relaxed)
    }

    /// How many items of `item_ns` each take about `target_ns`, between 1 and `cap`.
    fn items_for(item_ns: u64, target_ns: u64, cap: usize) -> usize {
        usize::try_from(target_ns / item_ns.max(1))
            .unwrap_or(usize::MAX)
            .clamp(1, cap)
    }

    /// Fold in a task that ran `items` items in `ns` nanoseconds.
    ///
    /// A task of the current length weighs 1/8; a shorter one less, in proportion to its
    /// items: a round of a few items (taken at the end of the input, or by a worker just
    /// woken with a cold cache) is mostly fixed cost, and must not pull the estimate as
    /// far as a full one.
    pub(crate) fn record(&self, items: usize, ns: u64) {
        #[cfg(loom)]
        if self.fixed {
            return;
        }
        if items == 0 {
            return;
        }
        let sample = (ns / items as u64).max(1);
        let old = self.item_ns.load(Ordering::Relaxed);
        // Races between workers lose a sample at worst; the estimate only steers sizing.
        let new = if old == 0 {
            sample
        } else {
            let full = self.task_len().max(1) as u128;
            let weight = (items as u128).min(full);
            let (old, sample) = (old as u128, sample as u128);
            let new = (old * (8 * full - weight) + sample * weight) / (8 * full);
            u64::try_from(new).unwrap_or(u64::MAX)
        };
        let new = new.max(1);
        self.item_ns.store(new, Ordering::Relaxed);
        let task_len = Self::items_for(new, TARGET_TASK_NS, self.spread_cap);
        let wake_batch = Self::items_for(new, TARGET_WAKE_NS, self.wake_cap);
        // Stored only when they change, for the same reason.
        if self.task_len.load(Ordering::Relaxed) != task_len {
            self.task_len.store(task_len, Ordering::Relaxed);
        }
        if self.wake_batch.load(Ordering::Relaxed) != wake_batch {
            self.wake_batch.store(wake_batch, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_cost_means_one_item_per_task() {
        assert_eq!(Sizer::new(256, 2).task_len(), 1);
        assert_eq!(Sizer::new(256, 2).wake_batch(), 1);
    }

    #[test]
    fn wake_batches_cover_the_target_within_half_the_window() {
        let s = Sizer::new(4096, 2);
        s.record(10, 10_000);
        assert_eq!(s.wake_batch(), 2000, "1 µs items: 2 ms per wake-up");
        s.record(1, 1_000_000_000);
        assert_eq!(
            s.wake_batch(),
            1,
            "slow items wake the consumer for each result"
        );
        let s = Sizer::new(256, 2);
        s.record(1000, 1_000);
        assert_eq!(s.wake_batch(), 128, "half of 256 slots");
    }

    #[test]
    fn cheap_items_batch_up_to_the_spread_cap() {
        let s = Sizer::new(256, 2);
        s.record(100, 1_000);
        assert_eq!(s.task_len(), 64, "256 slots over 2 workers, twice each");
    }

    #[test]
    fn a_short_round_pulls_the_estimate_in_proportion_to_its_items() {
        let s = Sizer::new(4096, 2);
        s.record(1000, 10_000);
        assert_eq!(s.task_len(), 1024, "10 ns items fill the spread cap");
        s.record(1, 100_000);
        assert_eq!(
            s.item_ns(),
            (10 * (8 * 1024 - 1) + 100_000) / (8 * 1024),
            "one item of 1024 weighs 1/8192"
        );
        assert!(s.task_len() > 800, "one slow item leaves tasks long");

        let s = Sizer::new(4096, 2);
        s.record(1000, 10_000);
        s.record(1024, 1024 * 100_000);
        assert_eq!(
            s.item_ns(),
            (7 * 10 + 100_000) / 8,
            "a full task weighs 1/8"
        );
        assert_eq!(s.task_len(), 1);
    }

    #[test]
    fn costly_items_go_one_by_one() {
        let s = Sizer::new(256, 2);
        s.record(1, 1_000_000);
        assert_eq!(s.task_len(), 1);
        let s = Sizer::new(4096, 2);
        s.record(10, 10_000);
        assert_eq!(s.task_len(), 20, "1 µs items: 20 µs per task");
    }
}
