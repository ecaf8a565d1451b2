//! Counters of a pool, read as one consistent snapshot.

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
