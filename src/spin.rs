//! Brief spinning before a thread parks, where it pays.
//!
//! Parking and waking a thread costs microseconds of CPU on both sides and tens of
//! microseconds of latency on a busy machine. With cheap items a worker often finds the
//! queue empty for only a few microseconds (the caller is between two batches), and then
//! a park costs more than the gap. So a worker about to park first watches for work for
//! at most [`SPIN_LIMIT`] (a worker fed by a feeder thread, and the feeder itself:
//! [`FED_SPIN_LIMIT`]), yielding its core between looks (on an oversubscribed machine the
//! thread that would bring the work may be waiting for that core). Whether it paid is
//! remembered: after a spin that found nothing, the next ones are skipped, twice as many
//! each time, so a pool whose gaps are long parks at once again and spends at most one
//! failed spin per [`MAX_SKIP`] parks.

use std::time::Duration;

/// Longest a thread watches for work before it parks: about what a park and a wake-up
/// cost together, so a spin that fails costs at most about as much as the park it delays.
pub(crate) const SPIN_LIMIT: Duration = Duration::from_micros(10);

/// Longest the threads on either side of a feeder spin: its pool's workers, and the
/// feeder itself. The feeder hands work over a task at a time from a stream of source
/// calls, and the gaps between its hand-overs outlast [`SPIN_LIMIT`] often enough that
/// the workers park, their cores go idle, and on a virtual machine waking an idle core
/// costs tens of microseconds. The feeder waits for room the same way: a window's room
/// comes back in batches, and a parked feeder then starts each refill late.
const FED_SPIN_LIMIT: Duration = Duration::from_micros(60);

/// Longest a worker spins through a stall of an ordered window, on a core nobody else
/// of the pool wants: the window is full and its head item still runs, so the next work
/// comes when that item ends. On the 2-core virtual machine a worker parked there and
/// woken at the end of the stall was now and then left waiting milliseconds for the
/// core the other worker held while its own core idled, and a run of skewed items with
/// one or two such stalls lost 10–20% (BENCHMARKS.md, run 18). The stalls behind that
/// mix's 1 ms items end within the limit.
pub(crate) const STALL_SPIN_LIMIT: Duration = Duration::from_millis(1);

/// How long a pool's workers, and its feeder if it has one, may spin: longer with a feeder.
pub(crate) fn pool_spin_limit(feeder: bool) -> Duration {
    if feeder { FED_SPIN_LIMIT } else { SPIN_LIMIT }
}

/// Most parks skipped without a spin after spins kept failing.
const MAX_SKIP: u32 = 64;

/// How one thread's recent spins went.
#[derive(Default)]
pub(crate) struct Backoff {
    /// Parks still to skip a spin before.
    skip: u32,
    /// Parks to skip after the next failed spin.
    penalty: u32,
}

impl Backoff {
    /// Whether to spin before this park.
    pub(crate) fn should_spin(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// Fold in how a spin went.
    pub(crate) fn record(&mut self, found: bool) {
        if found {
            self.penalty = 0;
        } else {
            self.penalty = (self.penalty * 2).clamp(1, MAX_SKIP);
            self.skip = self.penalty;
        }
    }
}

/// Watch `ready` for up to `limit`; returns whether it became true.
#[cfg(not(loom))]
pub(crate) fn spin_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..16 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return ready();
        }
        // Let a thread waiting for this core run: it may be the one bringing the work.
        std::thread::yield_now();
    }
}

/// Loom models no time: a spin is one look after other threads may have run, so the
/// models reach both outcomes of a spin (the thread then looks again, or parks).
#[cfg(loom)]
pub(crate) fn spin_until(_limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    loom::thread::yield_now();
    ready()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn failed_spins_back_off_doubling_and_a_success_resets() {
        let mut b = Backoff::default();
        assert!(b.should_spin());
        b.record(false);
        assert!(!b.should_spin(), "one park skipped after the first failure");
        assert!(b.should_spin());
        b.record(false);
        assert!(!b.should_spin());
        assert!(!b.should_spin());
        assert!(b.should_spin(), "two skipped after the second");
        b.record(true);
        assert!(b.should_spin());
        b.record(false);
        assert!(!b.should_spin(), "back to one after a success");
        assert!(b.should_spin());
    }

    #[test]
    fn skips_are_capped() {
        let mut b = Backoff::default();
        for _ in 0..20 {
            while !b.should_spin() {}
            b.record(false);
        }
        let skipped = std::iter::from_fn(|| (!b.should_spin()).then_some(())).count();
        assert_eq!(skipped, MAX_SKIP as usize);
    }

    #[test]
    fn spin_until_sees_a_condition_that_turns_true() {
        let mut looks = 0;
        assert!(spin_until(Duration::from_secs(5), || {
            looks += 1;
            looks > 100
        }));
    }

    #[test]
    fn spin_until_gives_up_after_the_limit() {
        let start = Instant::now();
        assert!(!spin_until(Duration::from_micros(200), || false));
        assert!(start.elapsed() >= Duration::from_micros(200));
    }
}
