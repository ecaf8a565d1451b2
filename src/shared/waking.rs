//! Who sleeps, who is woken, and who spins first: every wake-up decision is made here,
//! under the state lock, and applied after it is let go.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::handler::Handler;
use crate::pool::Error;
use crate::spin::{Backoff, SPIN_LIMIT, STALL_SPIN_LIMIT, spin_until};
use crate::status::Status;
use crate::sync::{AtomicBool, Condvar, MutexGuard, lock, set_if_changed};
use crate::threads;
use crate::wait::Deadline;

use super::{Guard, Shared, State, StateOf};

/// Items cheaper than this end a stall of the window within an ordinary spin: a worker
/// does not spin through stalls for them. (Spinning through the stalls of trivial items,
/// which last microseconds, slowed the batch calls by 5–10%: the stall spinner came back
/// for short rounds, through the lock the consumer needed.)
const STALL_ITEM_NS: u64 = 1_000;

/// Spins through stalls take at most about 1/`STALL_SPIN_SHARE` of the time the workers
/// spend working: where stalls come often and last long (a window far too small for
/// the skew, 128 for the mix of BENCHMARKS.md), they cost 10% more CPU and saved
/// nothing.
const STALL_SPIN_SHARE: u64 = 50;

/// Longest the feeder or a producer sleeps for room, which may be held back for a batch:
/// long enough that streaming never hits it (a 1 ms bound woke the feeder early often
/// enough on an oversubscribed machine to cost 7–13% of trivial throughput in source
/// mode), short enough that a consumer waiting for the next item is not left stuck. Every
/// such sleep is bounded, not only those begun while room is batched: a filler that went
/// to sleep while room still came a slot at a time (before any item was measured) must
/// not sleep on once the pool learns that items are cheap and starts to batch.
pub(super) const ROOM_DEFERRAL_LIMIT: Duration = Duration::from_millis(20);

/// Which condvars to notify, decided under the state lock.
#[derive(Default)]
struct Wakes {
    consumers: Notify,
    producers: Notify,
    feeder: bool,
    /// How many sleeping workers to wake.
    workers: usize,
    settled: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Notify {
    #[default]
    Nobody,
    One,
    All,
}

impl Wakes {
    fn apply<H: Handler>(self, shared: &Shared<H>) {
        notify(&shared.ready, self.consumers);
        notify(&shared.room, self.producers);
        if self.feeder {
            shared.feeder_room.notify_one();
        }
        for _ in 0..self.workers {
            shared.work.notify_one();
        }
        if self.settled {
            shared.settled.notify_all();
        }
    }
}

fn notify(cv: &Condvar, who: Notify) {
    match who {
        Notify::Nobody => {}
        Notify::One => cv.notify_one(),
        Notify::All => cv.notify_all(),
    }
}

/// A sleep of at most `limit` (`None`: unbounded) cut to at most `cap`.
pub(super) fn capped(limit: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(limit.map_or(cap, |d| d.min(cap)))
}

/// Sleep on `cv` until notified or `limit` passes (`None`: until notified).
pub(super) fn park<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    limit: Option<Duration>,
) -> MutexGuard<'a, T> {
    match limit {
        None => cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
        Some(d) => {
            cv.wait_timeout(guard, d)
                .unwrap_or_else(|p| p.into_inner())
                .0
        }
    }
}

/// The threads waiting on one condvar, and how many of them were notified and have not
/// woken yet. A notify is a system call even when nobody sleeps, and a waiter stays
/// counted until it runs again, so without this every state change in between would
/// notify it again (once per item with the feeder asleep and `pmap_next` per result).
/// A notified waiter counts as awake; every waiter leaving its wait, for whatever
/// reason, takes one notification off, so `signalled <= waiting` always holds and a
/// waiter never stays counted as notified while none is on its way.
#[derive(Default)]
pub(super) struct Sleepers {
    pub(super) waiting: u32,
    pub(super) signalled: u32,
}

impl Sleepers {
    pub(super) fn enter(&mut self) {
        self.waiting += 1;
    }

    pub(super) fn leave(&mut self) {
        self.waiting -= 1;
        self.signalled = self.signalled.saturating_sub(1);
    }

    /// Whom to notify for `wanted`, counting them notified from now on.
    fn signal(&mut self, wanted: Notify) -> Notify {
        if self.signalled == self.waiting {
            return Notify::Nobody;
        }
        match wanted {
            Notify::Nobody => {}
            Notify::One => self.signalled += 1,
            Notify::All => self.signalled = self.waiting,
        }
        wanted
    }
}

/// Who is about to park, for its spin record.
#[derive(Clone, Copy)]
pub(super) enum Spinner {
    Worker(u32),
    Consumer,
    Feeder,
}

/// Count a consumer's or the feeder's spin in (`starts`), or out, of the state
/// `stall_to_spin_through` reads: a spinning thread holds a core.
fn count_spinner<I, O>(st: &mut State<I, O>, spinner: Spinner, starts: bool) {
    match spinner {
        Spinner::Worker(_) => {}
        Spinner::Consumer if starts => st.consumers_spinning += 1,
        Spinner::Consumer => st.consumers_spinning -= 1,
        Spinner::Feeder => st.feeder_spinning = starts,
    }
}

impl<I, O> State<I, O> {
    fn backoff(&mut self, spinner: Spinner) -> &mut Backoff {
        match spinner {
            Spinner::Worker(id) => &mut self.worker_spins[id as usize],
            Spinner::Consumer => &mut self.consumer_spins,
            Spinner::Feeder => &mut self.feeder_spins,
        }
    }
}

/// For each kind of sleeper, whether it would be notified now: refreshed wherever wake-ups
/// are decided (`wakes`), watched by a thread of that kind that spins before it parks.
/// Only hints: a spinner takes the lock to act, so a stale value costs it a look or a park.
/// A spinner clears its hint under the lock before it lets go (it has just seen that
/// nothing is there), so it never spins on a hint left over from before.
#[derive(Default)]
pub(super) struct Hints {
    /// Worth a worker's trip: what would wake a sleeping worker, leaving out the poller,
    /// whose part a spinner plays (once its spin ends it takes whatever is queued).
    pub(super) work: AtomicBool,
    /// What would wake a waiting consumer.
    pub(super) results: AtomicBool,
    /// What would wake the waiting feeder.
    pub(super) room: AtomicBool,
}

impl Hints {
    pub(super) fn set(hint: &AtomicBool, value: bool) {
        set_if_changed(hint, value, Ordering::Relaxed);
    }
}

impl<H: Handler> Shared<H> {
    /// Wake whoever should make progress now, while holding the lock. For the rare paths
    /// (close, cancel, the feeder's end); hot paths use `unlock_and_wake`.
    pub(super) fn wake_locked(&self, st: &mut StateOf<H>) {
        self.wakes(st).apply(self);
    }

    /// Release the lock, then wake whoever should make progress: a thread woken while the
    /// lock is still held would only block on it again.
    #[inline(always)]
    pub(super) fn unlock_and_wake(&self, mut st: Guard<'_, H>) {
        if st.consumers.waiting == 0 && st.producers.waiting == 0 && !st.freeing {
            // What `wakes` comes to when only workers and the feeder may sleep: the hot
            // paths (a submit, a `next`) nearly always find it so, and the whole decision
            // is then a few loads. (In source mode the feeder waits for room most of the
            // time, and the full decision after each `pmap_next` was a quarter of its
            // instructions.)
            let workers = self.worker_wakes(&mut st);
            let mut feeder = false;
            if st.feeder.waiting > 0 {
                feeder = self.feeder_wake(&mut st);
                self.watch_room(&st);
            }
            drop(st);
            for _ in 0..workers {
                self.work.notify_one();
            }
            if feeder {
                self.feeder_room.notify_one();
            }
            return;
        }
        self.unlock_and_wake_all(st);
    }

    /// `unlock_and_wake` after items were only queued (admitted, or moved in from the
    /// feeder's inbox): that can make sleeping workers worth waking, and nobody else. It
    /// takes room rather than freeing it, stores no result, and leaves the queue
    /// non-empty, so no producer, feeder or consumer becomes due. (A consumer that is due
    /// because the workers stored a wake-up's worth meanwhile is woken by the worker that
    /// publishes them, at the latest when its round ends.) Deciding the rest cost a scan
    /// of the result ring per submit whenever a consumer waited: a tenth of the CPU time
    /// of a producer thread beside a consumer.
    #[inline(always)]
    pub(super) fn unlock_and_wake_workers(&self, mut st: Guard<'_, H>) {
        let workers = self.worker_wakes(&mut st);
        drop(st);
        for _ in 0..workers {
            self.work.notify_one();
        }
    }

    /// `unlock_and_wake` when somebody besides the workers waits.
    #[inline(never)]
    fn unlock_and_wake_all(&self, mut st: Guard<'_, H>) {
        let wakes = self.wakes(&mut st);
        drop(st);
        wakes.apply(self);
    }

    /// Who to wake, given the state. Cheap when nobody waits.
    ///
    /// Waking a thread costs microseconds of CPU, more than a cheap item's work, so a
    /// waiting consumer is woken for a batch of ready results (`Sizer::wake_batch`, about
    /// 2 ms of work; one result when items are slow), or for any result once the work
    /// queue is empty: then nothing else is coming soon, and the consumer may be the one
    /// who refills the queue. The feeder and blocked producers likewise wait for a batch
    /// of free slots, or any free slot once the queue is empty and the consumers are short
    /// of results (`room_due`).
    fn wakes(&self, st: &mut StateOf<H>) -> Wakes {
        let mut w = Wakes {
            workers: self.worker_wakes(st),
            ..Wakes::default()
        };
        if st.consumers.waiting > 0 {
            let mut due = Notify::Nobody;
            if self.is_done(st) {
                due = Notify::All;
            } else {
                let ready = self.ready_len(st);
                if ready > 0 && (ready >= self.sizer.wake_batch() || st.queue.is_empty()) {
                    due = Notify::One;
                }
            }
            Hints::set(&self.hints.results, due != Notify::Nobody);
            w.consumers = st.consumers.signal(due);
        }
        let ending = st.closed || st.cancelled;
        if st.producers.waiting > 0 {
            let mut due = Notify::Nobody;
            if ending {
                due = Notify::All;
            } else if self.room_due(st) {
                due = Notify::One;
            }
            w.producers = st.producers.signal(due);
        }
        if st.feeder.waiting > 0 {
            w.feeder = self.feeder_wake(st);
        }
        self.watch_room(st);
        w.settled = st.freeing && self.is_settled(st);
        w
    }

    /// Whether to wake the waiting feeder: room worth refilling (`room_due`), or the end.
    /// Sets its spinning hint to match.
    #[inline]
    fn feeder_wake(&self, st: &mut StateOf<H>) -> bool {
        let due = st.closed || st.cancelled || self.room_due(st);
        Hints::set(&self.hints.room, due);
        due && st.feeder.signal(Notify::One) == Notify::One
    }

    /// How many sleeping workers to wake for the queued items (see `wakes`), and the
    /// spinning workers' hint.
    #[inline]
    fn worker_wakes(&self, st: &mut StateOf<H>) -> usize {
        let mut work = false;
        let mut wake = 0;
        if !st.queue.is_empty() {
            // A sleeping worker is woken for a round's worth of queued items
            // (`worth_a_round`), so cheap items do not cost a wake-up each. Fewer wait
            // only while the poller's timer bounds the wait.
            work = self.worth_a_round(st);
            if work || !st.poller {
                wake = self.signal_for_queue_locked(st);
            }
        }
        Hints::set(&self.hints.work, work);
        wake
    }

    /// Pick up to `wanted` sleeping workers to wake, counting them awake from now on.
    fn signal_workers_locked(&self, st: &mut StateOf<H>, wanted: usize) -> usize {
        let n = wanted.min(st.idle_workers);
        st.idle_workers -= n;
        st.work_signals += n;
        self.update_inbox_watch(st);
        n
    }

    /// A caller is about to wait on the pool: every queued item should start now rather
    /// than when a task's worth has gathered. (One that gives up at once needs no kick:
    /// the poller's timer bounds how long a few queued items can wait.)
    pub(super) fn kick_workers_locked(&self, st: &mut StateOf<H>) {
        for _ in 0..self.signal_for_queue_locked(st) {
            self.work.notify_one();
        }
    }

    /// Pick sleeping workers for the queued items: one per task's worth, at least one.
    fn signal_for_queue_locked(&self, st: &mut StateOf<H>) -> usize {
        // Checked first: with every worker awake (the usual case on a submit) this skips
        // a division per call.
        if st.queue.is_empty() || st.idle_workers == 0 {
            return 0;
        }
        let wanted = (st.queue.len() / self.sizer.task_len()).max(1);
        self.signal_workers_locked(st, wanted)
    }

    /// Whether a thread about to park should spin first: items are cheap (several to a
    /// task), and the input is open with items in flight, so whoever submits or consumes
    /// them is active. (A stall of the window has a spin of its own: `spin_through_stall`.)
    ///
    /// A consumer waits for a wake-up's worth of results, so it spins only when the
    /// workers finish that many within a spin: with skew or 1 µs items its wait is
    /// longer, and on an oversubscribed machine its spin would hold a core a worker needs
    /// (a yield only helps a thread queued on the same core).
    fn worth_spinning(&self, st: &StateOf<H>, spinner: Spinner) -> bool {
        let active =
            !st.closed && !st.cancelled && self.slots_taken(st) > 0 && self.sizer.task_len() > 1;
        match spinner {
            Spinner::Consumer => {
                let batch_ns = self.sizer.wake_batch() as u64 * self.sizer.item_ns();
                active && batch_ns <= self.workers as u64 * SPIN_LIMIT.as_nanos() as u64
            }
            Spinner::Worker(_) | Spinner::Feeder => active,
        }
    }

    /// A worker about to park finds an ordered pool's window full, nothing queued and the
    /// head's item still running: the pool waits for that item, the consumer for its
    /// result. The stall ends with the consumer freeing room and the producer or the
    /// feeder refilling the queue, and a worker spinning through it takes the refill
    /// without a wake-up of its own. One worker at a time, and only while the pool's
    /// other threads leave a core free: the workers awake, a consumer that is not asleep,
    /// a feeder that is not asleep (a thread of the caller's that is neither is not
    /// counted). A spin on a core somebody else wanted slowed cheap items by 5–20%.
    /// Returns the stalled head's index.
    fn stall_to_spin_through(&self, st: &StateOf<H>) -> Option<u64> {
        if !self.ordered
            || st.stall_spinner
            || st.closed
            || st.cancelled
            || !st.queue.is_empty()
            || self.has_room(st)
            || !self.items_worth_a_stall_spin()
        {
            return None;
        }
        let head = self.delivery.delivered.load(Ordering::Acquire);
        if self.window.is_full(head) {
            // Not a stall: the consumer is due its results.
            return None;
        }
        // This worker is awake and about to sleep: not counted.
        let other_workers = self.workers.saturating_sub(st.idle_workers + 1);
        let consumer = st.consumers.waiting == 0 || st.consumers_spinning > 0;
        let feeder = self.fed && (st.feeder.waiting == 0 || st.feeder_spinning);
        (other_workers + usize::from(consumer) + usize::from(feeder) < self.cpus).then_some(head)
    }

    /// Spin on `hint` (for at most `limit`, or the spin limit) instead of parking, if the
    /// spinner's record allows and items are cheap. `hint` must be false in the state `st`
    /// shows: the caller has just looked and found nothing. Returns the guard, and whether
    /// a spin happened: then the caller looks again instead of parking.
    pub(super) fn spin_instead_of_park<'a>(
        &'a self,
        mut st: Guard<'a, H>,
        hint: &AtomicBool,
        limit: Option<Duration>,
        spinner: Spinner,
    ) -> (Guard<'a, H>, bool) {
        if !self.worth_spinning(&st, spinner) || !st.backoff(spinner).should_spin() {
            return (st, false);
        }
        Hints::set(hint, false);
        count_spinner(&mut st, spinner, true);
        drop(st);
        let cap = match spinner {
            Spinner::Worker(_) | Spinner::Feeder => self.pool_spin_limit,
            Spinner::Consumer => SPIN_LIMIT,
        };
        let limit = limit.map_or(cap, |d| d.min(cap));
        // Close and cancel end every spin: what the spinner waits for may never come.
        let found = spin_until(limit, || {
            hint.load(Ordering::Relaxed) || self.stop_pulling.load(Ordering::Relaxed)
        });
        st = lock(&self.state);
        count_spinner(&mut st, spinner, false);
        st.backoff(spinner).record(found);
        (st, true)
    }

    /// Items cost at least `STALL_ITEM_NS`. (Loom models have no clock to measure them
    /// by: they take every stall.)
    fn items_worth_a_stall_spin(&self) -> bool {
        cfg!(loom) || self.sizer.item_ns() >= STALL_ITEM_NS
    }

    /// Spins through stalls have taken at most 1/`STALL_SPIN_SHARE` of the workers' busy
    /// time so far. (Loom models: both are clock readings, so no budget.)
    fn within_stall_spin_budget(&self, st: &StateOf<H>) -> bool {
        cfg!(loom) || st.stall_spun_ns <= self.busy_ns() / STALL_SPIN_SHARE
    }

    /// Spin through a stall of the window (`stall_to_spin_through`) instead of parking,
    /// if the record of such spins and their budget allow: until work worth a round is
    /// queued, the head's result is taken (the stall is over, and the refill is on its
    /// way), close or cancel, or `STALL_SPIN_LIMIT`. Returns the guard, and whether it
    /// spun.
    pub(super) fn spin_through_stall<'a>(&'a self, mut st: Guard<'a, H>) -> (Guard<'a, H>, bool) {
        let Some(head) = self.stall_to_spin_through(&st) else {
            return (st, false);
        };
        if !self.within_stall_spin_budget(&st) || !st.stall_spins.should_spin() {
            return (st, false);
        }
        Hints::set(&self.hints.work, false);
        st.stall_spinner = true;
        drop(st);
        let started = Instant::now();
        // The stall is over once the consumer has taken the stalled head's result (not
        // once the `full` mirror clears: it may read false through a whole stall).
        let delivered = &self.delivery.delivered;
        let found = spin_until(STALL_SPIN_LIMIT, || {
            self.hints.work.load(Ordering::Relaxed)
                || self.stop_pulling.load(Ordering::Relaxed)
                || delivered.load(Ordering::Relaxed) != head
        });
        st = lock(&self.state);
        st.stall_spinner = false;
        st.stall_spun_ns += started.elapsed().as_nanos() as u64;
        st.stall_spins.record(found);
        (st, true)
    }

    /// How long a call may sleep now: `None` = forever. Refuses to wait past the deadline
    /// or from inside one of this pool's own callbacks.
    pub(super) fn wait_limit(&self, deadline: &mut Deadline) -> Result<Option<Duration>, Error> {
        let Some(limit) = deadline.remaining() else {
            return Err(Error::timeout());
        };
        if threads::is_owned_by(self.addr()) {
            let msg = "this call would wait on the pool from inside one of its own callbacks";
            return Err(Error::new(Status::Invalid, msg));
        }
        Ok(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_waiter_is_notified_once_until_it_leaves() {
        let mut s = Sleepers::default();
        assert_eq!(s.signal(Notify::One), Notify::Nobody, "nobody waits");
        s.enter();
        s.enter();
        assert_eq!(s.signal(Notify::One), Notify::One);
        assert_eq!(s.signal(Notify::One), Notify::One, "the second waiter");
        assert_eq!(
            s.signal(Notify::One),
            Notify::Nobody,
            "both are on their way: no third notify"
        );
        s.leave();
        assert_eq!(
            s.signal(Notify::One),
            Notify::Nobody,
            "one is still on its way"
        );
        s.enter();
        assert_eq!(s.signal(Notify::All), Notify::All, "a new waiter");
        assert_eq!((s.waiting, s.signalled), (2, 2));
    }

    #[test]
    fn a_waiter_leaving_unnotified_takes_a_notification_off() {
        // A timed-out waiter may leave before the one that was notified: the count of
        // notifications on their way never exceeds the waiters left.
        let mut s = Sleepers::default();
        s.enter();
        s.enter();
        assert_eq!(s.signal(Notify::One), Notify::One);
        s.leave();
        assert_eq!((s.waiting, s.signalled), (1, 0));
        assert_eq!(
            s.signal(Notify::One),
            Notify::One,
            "the one left is notified again rather than never"
        );
        s.leave();
        assert_eq!((s.waiting, s.signalled), (0, 0));
    }
}
