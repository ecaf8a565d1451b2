//! The pipeline's state machine: everything behind the pool's one state lock, and every
//! operation on it. `Pool` (the public API), the workers and the feeder all go through
//! here. See `src/DESIGN.md` for the states and the invariants.

use std::iter::Peekable;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::chunk::Sizer;
use crate::collector::{Collector, Taken, Window, take_in_order};
use crate::config::Resolved;
use crate::handler::{Finished, Handler, Outcome, Pulled};
use crate::membarrier::HandshakeFence;
use crate::outbox::{Outbox, handshake_fence};
use crate::pool::Error;
use crate::queue::WorkQueue;
use crate::ring::Cursor;
use crate::spin::{Backoff, SPIN_LIMIT, pool_spin_limit, spin_until};
use crate::stats::{Outcomes, Stats, Tally};
use crate::status::{ItemStatus, Status};
use crate::stored::Stored;
use crate::sync::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Padded, fence, lock,
    set_if_changed, wait_timer,
};
use crate::threads::{self, OwnerGuard};
use crate::wait::Deadline;

/// Longest a consumer sleeps while finished results may be held back for a batch: as long
/// as a batch's worth of work (`TARGET_WAKE_NS`), so the timer does not cut batches short.
const DEFERRAL_LIMIT: Duration = Duration::from_millis(2);

/// Longest the feeder or a producer sleeps for room, which may be held back for a batch:
/// long enough that streaming never hits it (a 1 ms bound woke the feeder early often
/// enough on an oversubscribed machine to cost 7–13% of trivial throughput in source
/// mode), short enough that a consumer waiting for the next item is not left stuck. Every
/// such sleep is bounded, not only those begun while room is batched: a filler that went
/// to sleep while room still came a slot at a time (before any item was measured) must
/// not sleep on once the pool learns that items are cheap and starts to batch.
const ROOM_DEFERRAL_LIMIT: Duration = Duration::from_millis(20);

/// The poller's first timer; it doubles while the poller finds nothing to do, and past
/// `POLL_LAST` the poller gives up its role and sleeps until woken, so a stalled pool
/// stops polling within about 13 ms.
const POLL_FIRST: Duration = Duration::from_micros(100);
const POLL_LAST: Duration = Duration::from_micros(6400);

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
fn capped(limit: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(limit.map_or(cap, |d| d.min(cap)))
}

/// Sleep on `cv` until notified or `limit` passes (`None`: until notified).
fn park<'a, T>(
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

/// The state of pool `H`, and the guard that proves its lock is held.
type StateOf<H> = State<<H as Handler>::Item, <H as Handler>::Output>;
type Guard<'a, H> = MutexGuard<'a, StateOf<H>>;
type FinishedOf<H> = Finished<<H as Handler>::Item, <H as Handler>::Output>;
/// A worker's place in the ordered window (`Shared::finish`).
pub(crate) type OutcomeCursor<'a, H> =
    Cursor<'a, Stored<<H as Handler>::Item, <H as Handler>::Output>>;

/// Everything behind the state lock.
struct State<I, O> {
    /// Indices given out so far; the next item gets this one.
    submitted: u64,
    closed: bool,
    cancelled: bool,
    /// `free` is waiting for every accepted item to have an outcome.
    freeing: bool,
    collector: Collector<I, O>,
    /// Accepted items no worker has taken yet. Indices are given out in order, so the
    /// queue holds consecutive indices starting at `queue_first`.
    queue: WorkQueue<I>,
    queue_first: u64,
    /// Workers asleep on `work` and not yet signalled: a signalled worker counts as awake
    /// from the notify on, so a burst of submits makes one notify per sleeper, not per item.
    idle_workers: usize,
    /// Notifies sent on `work` and not yet consumed by a waking worker.
    work_signals: usize,
    /// A sleeping worker wakes on a timer (see `next_round`), so a few queued items may
    /// wait for a task's worth to gather instead of waking a worker each.
    poller: bool,
    /// Set by `free` once everything is settled: workers exit when they see it.
    shutdown: bool,
    /// Indices the feeder reserved but has not queued yet (so `stats` can leave them out).
    feeder_unsent: u64,
    /// Index of the item at the front of the feeder's inbox.
    inbox_first: u64,
    /// Consumers waiting in `next` (asleep, or spinning first).
    consumers: Sleepers,
    /// Producers waiting for room.
    producers: Sleepers,
    /// The feeder, waiting on `feeder_room`.
    feeder: Sleepers,
    /// Outcomes stored in the collector under this lock so far (delivered ones included),
    /// by status. An ordered pool's workers count theirs in their `Tally` instead.
    outcomes: Outcomes,
    /// The outcomes an unordered pool handed back, by status: `stats` never reports
    /// fewer, even while a worker's count of an outcome it just stored is on its way. (An
    /// ordered pool's consumers count theirs in `Delivery::taker`.)
    delivered_outcomes: Outcomes,
    /// How each kind of waiter's recent spins went (`spin_instead_of_park`).
    worker_spins: Box<[Backoff]>,
    consumer_spins: Backoff,
    feeder_spins: Backoff,
}

/// The threads waiting on one condvar, and how many of them were notified and have not
/// woken yet. A notify is a system call even when nobody sleeps, and a waiter stays
/// counted until it runs again, so without this every state change in between would
/// notify it again (once per item with the feeder asleep and `pmap_next` per result).
/// A notified waiter counts as awake; every waiter leaving its wait, for whatever
/// reason, takes one notification off, so `signalled <= waiting` always holds and a
/// waiter never stays counted as notified while none is on its way.
#[derive(Default)]
struct Sleepers {
    waiting: u32,
    signalled: u32,
}

impl Sleepers {
    fn enter(&mut self) {
        self.waiting += 1;
    }

    fn leave(&mut self) {
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
enum Spinner {
    Worker(u32),
    Consumer,
    Feeder,
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

/// The part of a pool its threads share. Lives in a `Box` owned by [`Pool`], which joins
/// every thread before dropping it; threads reach it through [`SharedRef`].
pub(crate) struct Shared<H: Handler> {
    pub(crate) handler: H,
    capacity: usize,
    fail_fast: bool,
    workers: usize,
    ordered: bool,
    /// Longest a worker, or the feeder, spins before it parks (`spin::pool_spin_limit`).
    pool_spin_limit: Duration,
    state: Padded<Mutex<StateOf<H>>>,
    /// Consumers wait here for a ready outcome or for the end.
    ready: Condvar,
    /// Producers wait here for a free slot, close or cancel.
    room: Condvar,
    /// The feeder waits here for room worth refilling, close or cancel.
    feeder_room: Condvar,
    /// `free` waits here until every accepted item has an outcome.
    settled: Condvar,
    /// Idle workers wait here for work or shutdown.
    work: Condvar,
    /// Mirror of `State::cancelled` that workers and callbacks read without the lock.
    cancelled: Padded<AtomicBool>,
    /// Fork generation the pool was created in.
    born_in: u64,
    started: Instant,
    /// Decides how many items go into one task.
    pub(crate) sizer: Padded<Sizer>,
    /// One per worker of an unordered pool: finished outcomes not yet published to the
    /// collector.
    outboxes: Box<[Padded<Outbox<FinishedOf<H>>>]>,
    /// An ordered pool's outcomes, each in its index's slot (`ring.rs`): workers store
    /// theirs there at once, without the lock. Unused (and never allocated) when unordered.
    window: Window<H::Item, H::Output>,
    /// One per worker: what it stored into `window`, and its time in the work function.
    tallies: Box<[Padded<Tally>]>,
    /// Mirror of `State::consumers_waiting` for the outbox handshake.
    consumers_waiting: Padded<AtomicUsize>,
    /// Set by close and cancel: the feeder must not call the source again.
    stop_pulling: AtomicBool,
    /// Mirror of `!State::has_room`, kept where admission and delivery change it, so a
    /// submit that may not wait fails on a full pool without taking the lock (the
    /// one-thread submit-then-drain pattern makes that call once per item).
    full: Padded<AtomicBool>,
    /// Items the feeder pulled, on their way to the queue a task at a time (one lock per
    /// task rather than per item). A worker about to sleep takes them itself.
    inbox: Padded<Outbox<H::Item>>,
    /// A worker sleeps with no timer to come back for the inbox: the feeder must move each
    /// item to the queue at once. A Dekker-style handshake: the feeder pushes, fences
    /// (`inbox_fence.light`), then reads this; a worker about to sleep sets it, fences
    /// (`inbox_fence.heavy`), then looks into the inbox.
    inbox_unwatched: AtomicBool,
    inbox_fence: HandshakeFence,
    /// What spinning threads watch instead of their condvars (`spin.rs`).
    hints: Padded<Hints>,
    /// What has been handed back: the delivered count, and an ordered pool's consumers'
    /// own lock.
    delivery: Delivery,
    /// While a producer or the feeder waits for room and has not been notified: the
    /// delivered count at which a wake-up's worth of room is free (`watch_room`), else
    /// `u64::MAX`. An ordered pool's consumer, which delivers without the state lock,
    /// takes the lock to wake them only once it gets there.
    room_watch: Padded<AtomicU64>,
}

/// The consumers' side of a pool. An ordered pool's consumers take from the ring under
/// `taker`, not the state lock: a lock shared with the workers and the feeder cost the
/// consuming thread a cache miss per line of state it touched, per result, and most of
/// `pmap_next`'s time in source mode. Lock order: `taker` before the state lock.
struct Delivery {
    /// Held while an ordered pool's consumer reads the ring (so it is the only taker);
    /// guards the outcomes handed back so far, by status.
    taker: Padded<Mutex<Outcomes>>,
    /// Outcomes handed back. In an ordered pool it is also the index of the next one to
    /// hand back, written under `taker`; an unordered pool writes it under the state lock.
    /// Read anywhere: slots free up as it grows. (On a line of its own: the workers' and
    /// the feeder's reads would otherwise take the taker lock's line from the consumer.)
    delivered: Padded<AtomicU64>,
}

/// For each kind of sleeper, whether it would be notified now: refreshed wherever wake-ups
/// are decided (`wakes`), watched by a thread of that kind that spins before it parks.
/// Only hints: a spinner takes the lock to act, so a stale value costs it a look or a park.
/// A spinner clears its hint under the lock before it lets go (it has just seen that
/// nothing is there), so it never spins on a hint left over from before.
#[derive(Default)]
struct Hints {
    /// Worth a worker's trip: what would wake a sleeping worker, leaving out the poller,
    /// whose part a spinner plays (once its spin ends it takes whatever is queued).
    work: AtomicBool,
    /// What would wake a waiting consumer.
    results: AtomicBool,
    /// What would wake the waiting feeder.
    room: AtomicBool,
}

impl Hints {
    fn set(hint: &AtomicBool, value: bool) {
        set_if_changed(hint, value, Ordering::Relaxed);
    }
}

/// An ordered pool's consumer taking from the ring, holding `Delivery::taker`. Dropping
/// it, also when the consumer's sink panics, counts what it took as delivered and wakes
/// whoever that concerns (`delivered_moved`; the lock order allows the state lock under
/// the taker lock), then lets the taker lock go.
struct Taking<'a, H: Handler> {
    shared: &'a Shared<H>,
    handed_back: MutexGuard<'a, Outcomes>,
    taken: Taken,
}

impl<H: Handler> Drop for Taking<'_, H> {
    fn drop(&mut self) {
        if self.taken.got > 0 {
            self.shared.delivered_moved(self.taken.next);
        }
    }
}

/// A pointer to [`Shared`] that a pool thread may carry.
pub(crate) struct SharedRef<H: Handler>(*const Shared<H>);

// SAFETY: `Shared` is `Sync` (its mutable parts sit behind a Mutex or atomics and the
// handler is `Sync`), and the pointee outlives every thread holding a `SharedRef`:
// `Pool` joins all its threads before the `Box<Shared>` is dropped.
unsafe impl<H: Handler> Send for SharedRef<H> {}

impl<H: Handler> SharedRef<H> {
    /// The caller (`Pool`) must join the thread that receives this before dropping `shared`.
    pub(crate) fn new(shared: &Shared<H>) -> Self {
        SharedRef(shared)
    }

    pub(crate) fn get(&self) -> &Shared<H> {
        // SAFETY: see the `Send` impl: the pointee lives until after this thread is joined.
        unsafe { &*self.0 }
    }
}

impl<H: Handler> Shared<H> {
    /// `feeder`: the pool pulls from a source on a feeder thread.
    pub(crate) fn new(handler: H, cfg: &Resolved, feeder: bool) -> Self {
        let sizer = Sizer::new(cfg.capacity, cfg.workers);
        #[cfg(loom)]
        let sizer = match cfg.fixed_sizing {
            Some((task_len, wake_batch)) => sizer.fixed(task_len, wake_batch),
            None => sizer,
        };
        // A worker's outbox holds at most one round, the inbox one reservation.
        let max_round = sizer.max_task_len();
        Shared {
            handler,
            capacity: cfg.capacity,
            fail_fast: cfg.fail_fast,
            workers: cfg.workers,
            ordered: cfg.ordered,
            pool_spin_limit: pool_spin_limit(feeder),
            state: Padded(Mutex::new(State {
                submitted: 0,
                closed: false,
                cancelled: false,
                freeing: false,
                collector: Collector::new(cfg.ordered, cfg.capacity),
                queue: WorkQueue::with_capacity(cfg.capacity.min(1024)),
                queue_first: 0,
                idle_workers: 0,
                work_signals: 0,
                poller: false,
                shutdown: false,
                feeder_unsent: 0,
                inbox_first: 0,
                consumers: Sleepers::default(),
                producers: Sleepers::default(),
                feeder: Sleepers::default(),
                outcomes: Outcomes::default(),
                delivered_outcomes: Outcomes::default(),
                worker_spins: (0..cfg.workers).map(|_| Backoff::default()).collect(),
                consumer_spins: Backoff::default(),
                feeder_spins: Backoff::default(),
            })),
            ready: Condvar::new(),
            room: Condvar::new(),
            feeder_room: Condvar::new(),
            settled: Condvar::new(),
            work: Condvar::new(),
            cancelled: Padded(AtomicBool::new(false)),
            born_in: threads::fork_generation(),
            started: Instant::now(),
            sizer: Padded(sizer),
            outboxes: (0..cfg.workers)
                .map(|_| Padded(Outbox::new(if cfg.ordered { 1 } else { max_round })))
                .collect(),
            window: Window::new(if cfg.ordered { cfg.capacity } else { 1 }),
            tallies: (0..cfg.workers).map(|_| Padded(Tally::new())).collect(),
            consumers_waiting: Padded(AtomicUsize::new(0)),
            stop_pulling: AtomicBool::new(false),
            full: Padded(AtomicBool::new(false)),
            inbox: Padded(Outbox::new(max_round)),
            inbox_unwatched: AtomicBool::new(false),
            inbox_fence: HandshakeFence::new(feeder),
            hints: Padded(Hints::default()),
            delivery: Delivery {
                taker: Padded(Mutex::new(Outcomes::default())),
                delivered: Padded(AtomicU64::new(0)),
            },
            room_watch: Padded(AtomicU64::new(u64::MAX)),
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Fork generation the pool was created in.
    pub(crate) fn born_in(&self) -> u64 {
        self.born_in
    }

    /// Admit items from `items`, waiting for room until `deadline`. See `Pool::submit_many`.
    #[inline]
    pub(crate) fn submit_many<It>(
        &self,
        items: &mut Peekable<It>,
        mut deadline: Deadline,
    ) -> (usize, Result<(), Error>)
    where
        It: Iterator<Item = H::Item>,
    {
        if matches!(deadline, Deadline::Now) && self.refuses_at_once() {
            return (0, Err(Error::timeout()));
        }
        let mut accepted = 0;
        let mut st = lock(&self.state);
        loop {
            if st.cancelled {
                return (
                    accepted,
                    Err(Error::new(Status::Cancelled, "the pool is cancelled")),
                );
            }
            if st.closed {
                return (
                    accepted,
                    Err(Error::new(Status::Closed, "the input is closed")),
                );
            }
            let first = st.submitted;
            while self.has_room(&st) {
                let Some(item) = items.next() else {
                    break;
                };
                self.admit_locked(&mut st, item);
                accepted += 1;
            }
            self.reserve_window(first, st.submitted - first);
            self.update_full(&st);
            if items.peek().is_none() {
                self.unlock_and_wake_workers(st);
                return (accepted, Ok(()));
            }
            // What was queued must reach the workers before this thread waits for room.
            self.wake_locked(&mut st);
            st = match self.wait_producer(st, &mut deadline) {
                Ok(st) => st,
                Err(e) => return (accepted, Err(e)),
            };
        }
    }

    /// `submit_many`'s common case for a single item: an open pool with room. Without the
    /// iterator and the loop around it; the item comes back when it has to take the
    /// long way (no room, closed, cancelled).
    #[inline]
    pub(crate) fn admit_one(&self, item: H::Item) -> Result<(), H::Item> {
        let mut st = lock(&self.state);
        if st.cancelled || st.closed || !self.has_room(&st) {
            return Err(item);
        }
        let index = st.submitted;
        self.admit_locked(&mut st, item);
        self.reserve_window(index, 1);
        self.update_full(&st);
        self.unlock_and_wake_workers(st);
        Ok(())
    }

    /// Give `item` the next index and queue it (the caller holds the lock and saw room).
    #[inline]
    fn admit_locked(&self, st: &mut StateOf<H>, item: H::Item) {
        let index = st.submitted;
        st.submitted += 1;
        self.enqueue_locked(st, index, item);
    }

    /// A submit that may not wait is refused without the lock: the window was full a
    /// moment ago, and the pool is not closed or cancelled (what the locked path would
    /// say).
    #[inline]
    pub(crate) fn refuses_at_once(&self) -> bool {
        self.full.load(Ordering::Acquire) && !self.stop_pulling.load(Ordering::Acquire)
    }

    /// Hand up to `max` ready outcomes to `sink`, waiting until `deadline` for the first.
    #[inline]
    pub(crate) fn next_into(
        &self,
        max: usize,
        mut deadline: Deadline,
        mut sink: impl FnMut(Outcome<H::Item, H::Output>),
    ) -> Result<usize, Error> {
        if self.ordered {
            return self.next_in_order(max, deadline, sink);
        }
        let mut st = lock(&self.state);
        loop {
            let mut got = 0;
            while got < max {
                let Some(outcome) = st.collector.pop_ready() else {
                    break;
                };
                st.delivered_outcomes.count(outcome.status());
                sink(outcome.into());
                got += 1;
            }
            if got > 0 {
                let delivered = &self.delivery.delivered;
                let now = delivered.load(Ordering::Relaxed) + got as u64;
                delivered.store(now, Ordering::Release);
                self.update_full(&st);
                self.unlock_and_wake(st);
                return Ok(got);
            }
            if self.is_done(&st) {
                return Err(Error::new(Status::Done, "every item has been handed back"));
            }
            st = self.wait_consumer(st, &mut deadline)?;
        }
    }

    /// `next_into` for an ordered pool: its consumers take from the ring under their own
    /// lock (`Delivery`), and take the state lock only to wait, or to wake somebody.
    #[inline]
    fn next_in_order(
        &self,
        max: usize,
        mut deadline: Deadline,
        mut sink: impl FnMut(Outcome<H::Item, H::Output>),
    ) -> Result<usize, Error> {
        loop {
            let got = if max == 1 {
                // `pmap_next`: the outcome is handed on after the taker lock is let go.
                self.take_one(&mut sink) as usize
            } else {
                self.take_ready(max, &mut sink)
            };
            if got > 0 {
                return Ok(got);
            }
            let mut st = lock(&self.state);
            if self.is_done(&st) {
                return Err(Error::new(Status::Done, "every item has been handed back"));
            }
            if st.feeder.waiting > 0 || st.producers.waiting > 0 {
                // This consumer ran dry: room the waiters were left without while results
                // were ready (`room_due`) is due now, and its deliveries alone would not
                // have woken them (`delivered_moved`).
                self.wake_locked(&mut st);
            }
            drop(self.wait_consumer(st, &mut deadline)?);
        }
    }

    /// Take the next outcome of an ordered pool if it is ready: `take_ready` for one, on
    /// the straight path a consumer taking one result per call runs every time. With a
    /// trivial work function that consumer sets the pace of the whole pool, and its
    /// instructions are what it spends: the guard, the closures and the outcome's
    /// conversions between them were 108 of `pmap_next`'s 264 (BENCHMARKS.md, run 17).
    #[inline(always)]
    fn take_one(&self, sink: impl FnOnce(Outcome<H::Item, H::Output>)) -> bool {
        let mut handed_back = lock(&self.delivery.taker);
        // Written only under the taker lock, which this consumer holds.
        let head = self.delivery.delivered.load(Ordering::Relaxed);
        // SAFETY: the taker lock makes this the only taker, and `head` is the index after
        // the last outcome handed back.
        let Some(stored) = (unsafe { self.window.take_if_full(head) }) else {
            return false;
        };
        handed_back.count(stored.status());
        // Nothing between the take and here can panic.
        self.delivered_moved(head + 1);
        drop(handed_back);
        sink(stored.into_outcome(head));
        true
    }

    /// Take up to `max` ready outcomes of an ordered pool, in order, handing each to `sink`.
    #[inline]
    fn take_ready(&self, max: usize, sink: &mut impl FnMut(Outcome<H::Item, H::Output>)) -> usize {
        let handed_back = lock(&self.delivery.taker);
        // Written only under the taker lock, which this consumer holds.
        let head = self.delivery.delivered.load(Ordering::Relaxed);
        let mut taking = Taking {
            shared: self,
            handed_back,
            taken: Taken::from(head),
        };
        // Counted under the taker lock as they are taken.
        let counts = &mut *taking.handed_back;
        // SAFETY: the taker lock makes this the only taker, and `head` is the index after
        // the last outcome handed back.
        unsafe {
            take_in_order(
                &self.window,
                &mut taking.taken,
                counts,
                max,
                |index, stored| {
                    sink(stored.into_outcome(index));
                },
            );
        };
        taking.taken.got
    }

    /// An ordered pool's consumer has just handed back every outcome before `delivered`,
    /// without the state lock: publish the count, clear `full` (it freed a slot), and
    /// take the lock if somebody may be due a wake-up now. Its half of three handshakes,
    /// each a store, a fence and a load on both sides (the consumer stores the count):
    /// with a waiter for room (`watch_room`), with a consumer about to sleep, which might
    /// be waiting for the end (`wait_consumer`), and with admission setting `full`
    /// (`update_full`).
    #[inline]
    fn delivered_moved(&self, delivered: u64) {
        // Release: whoever reads the count, and then reuses the slots it frees, comes
        // after this consumer's reads of them.
        self.delivery.delivered.store(delivered, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.full.load(Ordering::Relaxed) {
            // Should admission fill the slot meanwhile, `full` reads false while the
            // window is full: a refusal without the lock becomes a refusal with it.
            self.full.store(false, Ordering::Release);
        }
        if delivered >= self.room_watch.load(Ordering::Relaxed)
            || self.consumers_waiting.load(Ordering::Relaxed) > 0
        {
            self.wake_for_delivery();
        }
    }

    /// `delivered_moved`'s rare path, out of line.
    #[cold]
    fn wake_for_delivery(&self) {
        self.unlock_and_wake(lock(&self.state));
    }

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
            busy_ns: self.tallies.iter().map(|t| t.busy_ns()).sum(),
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

    /// Every outcome stored so far, by status: under the lock, plus the workers' tallies.
    fn stored_outcomes(&self, st: &StateOf<H>) -> Outcomes {
        let mut all = st.outcomes;
        if self.ordered {
            for tally in self.tallies.iter() {
                all.add(tally.read());
            }
        }
        all
    }

    /// Every index given out has an outcome stored (so the feeder holds no reservation
    /// and no worker will store another).
    fn is_settled(&self, st: &StateOf<H>) -> bool {
        self.stored_outcomes(st).total() == st.submitted
    }

    /// Make sure the ring has slots for the indices just given out (ordered pools).
    fn reserve_window(&self, first: u64, count: u64) {
        if self.ordered {
            self.window.reserve(first, count);
        }
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Queue `item` under `index`, the one after the last queued (admission gives indices
    /// out in order). The caller holds a slot for it.
    fn enqueue_locked(&self, st: &mut StateOf<H>, index: u64, item: H::Item) {
        if st.queue.is_empty() {
            st.queue_first = index;
        }
        debug_assert_eq!(st.queue_first + st.queue.len() as u64, index);
        st.queue.push_back(item);
    }

    /// A worker's turn at the lock between rounds: publish the outcomes of its last round,
    /// then take the next one (up to a task's worth of queued items, into `round`),
    /// sleeping while there is none worth a round. Returns the index of the first item
    /// taken, or `None` when the pool shuts down.
    ///
    /// Fewer than a task's worth are taken only when they are worth a round
    /// (`worth_a_round`: somebody waits on the pool, or the input has ended) or once the
    /// worker has slept: woken by its poller's timer or by a notify. Otherwise a short
    /// queue waits for more, at most as long as the poller's timer (DESIGN.md, "Tasks":
    /// taking whatever was queued cost a round through the lock per few items while a
    /// thread submitted one by one).
    pub(crate) fn next_round(&self, worker: u32, round: &mut Vec<H::Item>) -> Option<u64> {
        let mut st = lock(&self.state);
        self.publish_locked(&mut st, worker);
        // This worker's timer while it is the poller.
        let mut poll: Option<Duration> = None;
        // A worker takes the poller's role at most once per call, so a stalled pool
        // (a source blocked for input, a long item in flight) stops polling.
        let mut polled = false;
        // At most one spin per call: after it, the worker parks.
        let mut spun = false;
        // Woken (by a timer or a notify) during this call: whatever is queued is worth a
        // round now.
        let mut slept = false;
        loop {
            // Even behind a queue: one too short for a round stays put, and the pulled
            // items behind it must not wait in the inbox while this worker sleeps.
            self.move_inbox_locked(&mut st);
            let leaving = !st.queue.is_empty() || st.shutdown;
            if leaving && poll.take().is_some() {
                // The feeder may have filled the inbox since the poller last looked:
                // a role left behind would make it hold pulled items for a timer that
                // nobody runs (`update_inbox_watch`).
                st.poller = false;
                self.update_inbox_watch(&st);
            }
            if !st.queue.is_empty() && (slept || self.worth_a_round(&st)) {
                let n = self.sizer.task_len().min(st.queue.len());
                let first = st.queue_first;
                st.queue.take_front(n, round);
                st.queue_first += n as u64;
                self.unlock_and_wake(st);
                return Some(first);
            }
            if st.shutdown {
                return None;
            }
            // Rare path: whoever the published outcomes concern is woken under the lock.
            self.wake_locked(&mut st);
            if !spun {
                // Work may be only microseconds away, closer than a park and a wake-up.
                spun = true;
                let spinner = Spinner::Worker(worker);
                let spin = self.spin_instead_of_park(st, &self.hints.work, None, spinner);
                st = spin.0;
                if spin.1 {
                    continue;
                }
            }
            // While items are in flight, more may be queued without waking anyone (see
            // `wakes`): the first worker to sleep keeps a timer for them.
            if !polled && !st.poller && self.slots_taken(&st) > 0 {
                poll = Some(POLL_FIRST);
                polled = true;
                st.poller = true;
            }
            st.idle_workers += 1;
            self.update_inbox_watch(&st);
            // Asleep with no timer for the inbox: after the barrier, either the feeder's
            // next push sees the flag or the look below sees the push. Should the kernel
            // fail to issue it, this worker comes back on a timer instead.
            let mut timer = poll;
            if self.inbox_unwatched.load(Ordering::Relaxed) && !self.inbox_fence.heavy() {
                timer = Some(POLL_LAST);
            }
            if !self.inbox.is_empty() {
                // The feeder pushed before it could see this worker go to sleep.
                st.idle_workers -= 1;
                self.update_inbox_watch(&st);
                continue;
            }
            st = match timer {
                None => self.work.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(t) => wait_timer(&self.work, &self.state, st, t),
            };
            slept = true;
            if st.work_signals > 0 {
                st.work_signals -= 1; // the notifier already counted us awake
            } else {
                st.idle_workers -= 1; // a timeout or a spurious wake-up
            }
            if let Some(t) = poll {
                // Poll less often, and at last stop (with work to do, the loop's top
                // gives the role up).
                poll = (t < POLL_LAST).then(|| t * 2);
                st.poller = poll.is_some();
            }
            self.update_inbox_watch(&st);
        }
    }

    /// Whether a thread about to park should spin first: items are cheap (several to a
    /// task), and the input is open with items in flight, so whoever submits or consumes
    /// them is active.
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

    /// Spin on `hint` (for at most `limit`, or the spin limit) instead of parking, if the
    /// spinner's record allows and items are cheap. `hint` must be false in the state `st`
    /// shows: the caller has just looked and found nothing. Returns the guard, and whether
    /// a spin happened: then the caller looks again instead of parking.
    fn spin_instead_of_park<'a>(
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
        st.backoff(spinner).record(found);
        (st, true)
    }

    /// Slots taken: indices given out (to accepted items, or reserved by the feeder for
    /// items it is pulling) and not yet handed back.
    fn slots_taken(&self, st: &StateOf<H>) -> u64 {
        st.submitted - self.delivery.delivered.load(Ordering::Acquire)
    }

    fn has_room(&self, st: &StateOf<H>) -> bool {
        self.slots_taken(st) < self.capacity as u64
    }

    /// No item will ever come out of `next` again.
    fn is_done(&self, st: &StateOf<H>) -> bool {
        (st.closed || st.cancelled) && self.slots_taken(st) == 0
    }

    /// Refresh the `full` mirror after admission or delivery changed the slots taken.
    /// Setting it is admission's half of a handshake with an ordered pool's consumer,
    /// which frees slots without the state lock (`delivered_moved`): either the consumer
    /// sees the mirror set, or the look after the fence sees the slots it freed.
    fn update_full(&self, st: &StateOf<H>) {
        let full = !self.has_room(st);
        set_if_changed(&self.full, full, Ordering::Release);
        if full && self.ordered {
            fence(Ordering::SeqCst);
            if self.has_room(st) {
                self.full.store(false, Ordering::Release);
            }
        }
    }

    /// Set `room_watch` for the producers and the feeder waiting for room: the delivered
    /// count at which a wake-up's worth is free (`room_due`), while one of them waits and
    /// has not been notified. Keeping it is the waiters' half of the handshake with an
    /// ordered pool's consumer (`delivered_moved`): a waiter sets it, fences, then looks
    /// at the room once more before it sleeps. (Room that becomes due before that, once
    /// the workers run dry, is theirs and the consumer's to notice under the lock.)
    fn watch_room(&self, st: &StateOf<H>) {
        if !self.ordered {
            // Its consumers deliver under the state lock, and wake waiters from there.
            return;
        }
        let unnotified = |s: &Sleepers| s.signalled < s.waiting;
        let at = if unnotified(&st.feeder) || unnotified(&st.producers) {
            let batch = self.sizer.wake_batch() as u64;
            (st.submitted + batch).saturating_sub(self.capacity as u64)
        } else {
            u64::MAX
        };
        if self.room_watch.load(Ordering::Relaxed) != at {
            self.room_watch.store(at, Ordering::Relaxed);
        }
    }

    /// A producer or the feeder, counted waiting under the lock, is about to sleep for
    /// room: watch for it (`watch_room`), then look again. Returns whether room is due
    /// already, so it must not sleep.
    fn watch_room_before_sleep(&self, st: &mut StateOf<H>) -> bool {
        if !self.ordered {
            return false;
        }
        self.watch_room(st);
        fence(Ordering::SeqCst);
        self.room_due(st)
    }

    /// Pick up to `wanted` sleeping workers to wake, counting them awake from now on.
    fn signal_workers_locked(&self, st: &mut StateOf<H>, wanted: usize) -> usize {
        let n = wanted.min(st.idle_workers);
        st.idle_workers -= n;
        st.work_signals += n;
        self.update_inbox_watch(st);
        n
    }

    /// Whether the feeder must move pulled items to the queue at once: a worker sleeps and
    /// no poller's timer would bring it back for the inbox.
    fn update_inbox_watch(&self, st: &StateOf<H>) {
        let unwatched = st.idle_workers > 0 && !st.poller;
        set_if_changed(&self.inbox_unwatched, unwatched, Ordering::SeqCst);
    }

    /// Move the feeder's inbox to the queue (cancelled outcomes after a cancel).
    fn move_inbox_locked(&self, st: &mut StateOf<H>) {
        let first = st.inbox_first;
        let moved = if st.cancelled {
            let mut index = first;
            // SAFETY: takers hold the state lock (the caller does).
            unsafe {
                self.inbox.take_all(|item| {
                    self.count_and_insert(st, Finished::cancelled(index, item));
                    index += 1;
                })
            }
        } else {
            let queued = st.queue.len();
            // SAFETY: takers hold the state lock (the caller does).
            let moved = unsafe { self.inbox.move_all(&mut st.queue) };
            // Queued indices are consecutive: the moved ones follow those already queued.
            if moved > 0 && queued == 0 {
                st.queue_first = first;
            }
            debug_assert!(moved == 0 || st.queue_first + queued as u64 == first);
            moved
        };
        st.inbox_first = first + moved as u64;
        st.feeder_unsent -= moved as u64;
    }

    /// A caller is about to wait on the pool: every queued item should start now rather
    /// than when a task's worth has gathered. (One that gives up at once needs no kick:
    /// the poller's timer bounds how long a few queued items can wait.)
    fn kick_workers_locked(&self, st: &mut StateOf<H>) {
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

    /// A worker finished an item: leave the outcome in its outbox, and publish before the
    /// round ends if a consumer is waiting and a wake-up's worth has gathered (the
    /// worker's half of the outbox handshake; see `wait_consumer` for the consumer's).
    /// `cursor` is the worker's own, for the ring of an ordered pool.
    pub(crate) fn finish<'a>(
        &'a self,
        worker: u32,
        outcome: FinishedOf<H>,
        cursor: &mut OutcomeCursor<'a, H>,
    ) {
        let held = if self.ordered {
            let status = outcome.status();
            let (index, stored) = (outcome.index, Stored::new(outcome.fate));
            self.store_in_window(worker, index, stored, status, cursor)
        } else {
            self.push_to_outbox(worker, outcome)
        };
        self.after_finishing(worker, held);
    }

    /// `finish` for an item that ran, the per-item path of every worker. An ordered pool
    /// stores the outcome straight into its slot, never building the `Finished` that
    /// `finish` takes apart again: a worker's instructions per trivial item went from
    /// 144 to 103.
    #[inline]
    pub(crate) fn finish_ran<'a>(
        &'a self,
        worker: u32,
        index: u64,
        item: H::Item,
        result: Result<H::Output, i32>,
        cursor: &mut OutcomeCursor<'a, H>,
    ) {
        if !self.ordered {
            return self.finish(worker, Finished::ran(index, item, worker, result), cursor);
        }
        let status = if result.is_ok() {
            ItemStatus::Ok
        } else {
            ItemStatus::Failed
        };
        let stored = Stored::ran(item, result, worker);
        let held = self.store_in_window(worker, index, stored, status, cursor);
        self.after_finishing(worker, held);
    }

    /// Store an ordered pool's outcome in its slot and count it; returns how many this
    /// worker has stored since it last published.
    #[inline]
    fn store_in_window<'a>(
        &'a self,
        worker: u32,
        index: u64,
        stored: Stored<H::Item, H::Output>,
        status: ItemStatus,
        cursor: &mut OutcomeCursor<'a, H>,
    ) -> usize {
        // SAFETY: this worker took the index from the queue and stores its one outcome.
        unsafe { self.window.put_at(cursor, index, stored) };
        self.tallies[worker as usize].count(status)
    }

    /// After a worker stored an outcome, `held` of them unpublished.
    #[inline]
    fn after_finishing(&self, worker: u32, held: usize) {
        // Below a wake-up's worth a waiting consumer changes nothing here, so the fence
        // is skipped: with cheap items that is nearly every push.
        if held >= self.sizer.wake_batch() {
            handshake_fence();
            if self.consumers_waiting.load(Ordering::SeqCst) > 0 {
                self.publish(worker);
            }
        }
    }

    /// Leave an unordered pool's outcome in the worker's outbox; returns how many wait there.
    fn push_to_outbox(&self, worker: u32, outcome: FinishedOf<H>) -> usize {
        let outbox = &self.outboxes[worker as usize];
        match outbox.push(outcome) {
            Ok(held) => held,
            Err(outcome) => {
                // Only if the sizer's bound on a round were broken: publish to make room.
                self.publish(worker);
                outbox
                    .push(outcome)
                    .ok()
                    .expect("a published outbox has room")
            }
        }
    }

    /// Make a worker's finished outcomes count for whoever waits: wake them if due.
    pub(crate) fn publish(&self, worker: u32) {
        if self.outboxes[worker as usize].is_empty() && !self.ordered {
            return;
        }
        let mut st = lock(&self.state);
        self.publish_locked(&mut st, worker);
        self.unlock_and_wake(st);
    }

    /// Move a worker's outbox into the collector (unordered); an ordered pool's outcomes
    /// are in the ring already, and taking the lock is what publishes them.
    fn publish_locked(&self, st: &mut StateOf<H>, worker: u32) {
        if self.ordered {
            self.tallies[worker as usize].published();
            return;
        }
        // SAFETY: takers hold the state lock (the caller does).
        unsafe {
            self.outboxes[worker as usize].take_all(|o| {
                self.count_and_insert(st, o);
            })
        };
    }

    /// Look for results finished since the last look: take every worker's unpublished
    /// outcomes into the collector (unordered), or see whether the head's outcome has
    /// been stored (ordered). Returns how many are ready to hand back.
    fn steal_locked(&self, st: &mut StateOf<H>) -> usize {
        if self.ordered {
            // The consumer's half of the handshake: after announcing its wait, it reads
            // the slots (the worker stores a slot, fences, then reads the waiting count).
            handshake_fence();
            return self.ready_len(st);
        }
        self.outboxes
            .iter()
            .map(|outbox| {
                // SAFETY: takers hold the state lock (the caller does).
                unsafe {
                    outbox.take_all(|o| {
                        self.count_and_insert(st, o);
                    })
                }
            })
            .sum()
    }

    /// A worker saw an item fail: a fail-fast pool stops the rest now.
    pub(crate) fn item_failed(&self) {
        if self.fail_fast && !self.is_cancelled() {
            let mut st = lock(&self.state);
            self.cancel_locked(&mut st);
        }
    }

    /// Count and store an outcome under the lock. Returns whether the item failed.
    fn count_and_insert(&self, st: &mut StateOf<H>, outcome: FinishedOf<H>) -> bool {
        let status = outcome.status();
        st.outcomes.count(status);
        st.collector.insert(&self.window, outcome);
        matches!(status, ItemStatus::Failed | ItemStatus::SourceFailed)
    }

    fn store_locked(&self, st: &mut StateOf<H>, outcome: FinishedOf<H>) {
        if self.count_and_insert(st, outcome) && self.fail_fast {
            self.cancel_locked(st);
        }
        self.wake_locked(st);
    }

    fn close_locked(&self, st: &mut StateOf<H>) {
        st.closed = true;
        self.stop_pulling.store(true, Ordering::Release);
        self.wake_locked(st);
    }

    fn cancel_locked(&self, st: &mut StateOf<H>) {
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

    /// Wake whoever should make progress now, while holding the lock. For the rare paths
    /// (close, cancel, the feeder's end); hot paths use `unlock_and_wake`.
    fn wake_locked(&self, st: &mut StateOf<H>) {
        self.wakes(st).apply(self);
    }

    /// Release the lock, then wake whoever should make progress: a thread woken while the
    /// lock is still held would only block on it again.
    #[inline(always)]
    fn unlock_and_wake(&self, mut st: Guard<'_, H>) {
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
    fn unlock_and_wake_workers(&self, mut st: Guard<'_, H>) {
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

    /// Whether the free slots are worth waking a producer or the feeder for: a wake-up's
    /// worth, or any once the workers have run dry and the consumers are about to. While
    /// a consumer still has a wake-up's worth of results to take, it is the bottleneck,
    /// and a refill per slot it frees would wake the filler once per item.
    fn room_due(&self, st: &mut StateOf<H>) -> bool {
        let in_flight = self.slots_taken(st);
        let room = self.capacity as u64 - in_flight;
        let batch = self.sizer.wake_batch();
        if room >= batch as u64 {
            return true;
        }
        room > 0 && st.queue.is_empty() && self.ready_len(st) < batch
    }

    /// How many results `next` could hand out in a row now.
    fn ready_len(&self, st: &mut StateOf<H>) -> usize {
        let head = self.delivery.delivered.load(Ordering::Acquire);
        st.collector.ready_len(&self.window, head, st.submitted)
    }

    /// Whether the queued items are worth a worker's round now: a task's worth, or any
    /// once somebody is blocked on the pool or the input has ended (the busy workers may
    /// be stuck in long items, and nothing more may come).
    fn worth_a_round(&self, st: &StateOf<H>) -> bool {
        st.queue.len() >= self.sizer.task_len()
            || st.consumers.waiting > 0
            || st.producers.waiting > 0
            || st.feeder.waiting > 0
            || st.closed
            || st.cancelled
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

    /// A producer found no room: wait until woken or the deadline passes.
    fn wait_producer<'a>(
        &'a self,
        mut st: Guard<'a, H>,
        deadline: &mut Deadline,
    ) -> Result<Guard<'a, H>, Error> {
        let limit = self.wait_limit(deadline)?;
        self.kick_workers_locked(&mut st);
        // Room comes in batches (`room_due`), and a batch may never come: the consumer may
        // be waiting for this producer's next item, or may have stopped taking.
        let limit = capped(limit, ROOM_DEFERRAL_LIMIT);
        st.producers.enter();
        if !self.watch_room_before_sleep(&mut st) {
            st = park(&self.room, st, limit);
        }
        st.producers.leave();
        self.watch_room(&st);
        Ok(st)
    }

    /// A consumer found nothing ready. It takes any outcomes still in workers' outboxes,
    /// and sleeps only when there were none. Its waiting count stays announced from
    /// before the last look into the outboxes until it wakes (its half of the handshake).
    ///
    /// While results may be held back for a batch (cheap items in flight), it sleeps at
    /// most `DEFERRAL_LIMIT`: if every worker is then stuck in a slow item, nobody would
    /// publish or wake it, and the finished results must not wait for those items.
    fn wait_consumer<'a>(
        &'a self,
        mut st: Guard<'a, H>,
        deadline: &mut Deadline,
    ) -> Result<Guard<'a, H>, Error> {
        if self.steal_locked(&mut st) > 0 {
            return Ok(st);
        }
        let mut limit = self.wait_limit(deadline)?;
        self.kick_workers_locked(&mut st);
        if self.wakes_batched(&st) {
            limit = capped(limit, DEFERRAL_LIMIT);
        }
        st.consumers.enter();
        self.consumers_waiting
            .store(st.consumers.waiting as usize, Ordering::SeqCst);
        // Another consumer of an ordered pool may hand back the last outcome meanwhile,
        // without the state lock: after the fence in `steal_locked`, either this look sees
        // it, or that consumer sees this one waiting and takes the lock to wake it.
        let mut look_again = self.steal_locked(&mut st) > 0 || self.is_done(&st);
        if !look_again {
            // Announced: workers publish for this consumer as for a sleeping one.
            let hint = &self.hints.results;
            (st, look_again) = self.spin_instead_of_park(st, hint, limit, Spinner::Consumer);
        }
        if !look_again {
            st = park(&self.ready, st, limit);
        }
        st.consumers.leave();
        self.consumers_waiting
            .store(st.consumers.waiting as usize, Ordering::SeqCst);
        Ok(st)
    }

    /// Whether `wakes` may hold a wake-up back for a batch now (cheap items in flight): a
    /// thread that sleeps then bounds its sleep, as the batch may never come.
    fn wakes_batched(&self, st: &StateOf<H>) -> bool {
        self.slots_taken(st) > 0 && self.sizer.wake_batch() > 1
    }

    /// How long a call may sleep now: `None` = forever. Refuses to wait past the deadline
    /// or from inside one of this pool's own callbacks.
    fn wait_limit(&self, deadline: &mut Deadline) -> Result<Option<Duration>, Error> {
        let Some(limit) = deadline.remaining() else {
            return Err(Error::timeout());
        };
        if threads::is_owned_by(self.addr()) {
            let msg = "this call would wait on the pool from inside one of its own callbacks";
            return Err(Error::new(Status::Invalid, msg));
        }
        Ok(limit)
    }

    /// The feeder's admission: reserve slots, and their indices, for the next pulls.
    /// Returns the first index and how many, or `None` when it must stop pulling.
    pub(crate) fn reserve_for_feeder(&self) -> Option<(u64, usize)> {
        let mut st = lock(&self.state);
        loop {
            if st.cancelled || st.closed {
                return None;
            }
            if self.has_room(&st) {
                let room = (self.capacity as u64 - self.slots_taken(&st)) as usize;
                // The longest a task can be, not the current task length: with items of a
                // few µs a reservation of one task made the feeder run (and take a core
                // from a worker) every few µs. Pulled items still reach the queue a task
                // at a time (`push_pulled`).
                let len = room.min(self.sizer.max_task_len());
                let first = st.submitted;
                st.submitted += len as u64;
                self.reserve_window(first, len as u64);
                st.feeder_unsent = len as u64;
                st.inbox_first = first;
                return Some((first, len));
            }
            // Room comes in batches (`room_due`), and a batch may never come: the consumer
            // may be waiting for what this source call would bring.
            let limit = Some(ROOM_DEFERRAL_LIMIT);
            st.feeder.enter();
            if !self.watch_room_before_sleep(&mut st) {
                let hint = &self.hints.room;
                let spun;
                (st, spun) = self.spin_instead_of_park(st, hint, limit, Spinner::Feeder);
                if !spun {
                    st = park(&self.feeder_room, st, limit);
                }
            }
            st.feeder.leave();
            self.watch_room(&st);
        }
    }

    /// Whether the feeder must not call the source again (closed or cancelled).
    pub(crate) fn must_stop_pulling(&self) -> bool {
        self.stop_pulling.load(Ordering::Acquire)
    }

    /// Hand over one pulled item (it gets the next reserved index). It goes to the inbox,
    /// which moves to the queue once it holds a task's worth, or at once when no worker
    /// would come for it: the next source call may block for a long time, and items
    /// already pulled must not wait for it.
    ///
    /// Inline, with the hand-over out of line: it runs once per pulled item, and with the
    /// locking paths inlined it saved and restored a frame's worth of registers per item.
    #[inline]
    pub(crate) fn push_pulled(&self, item: H::Item) {
        let held = match self.inbox.push(item) {
            Ok(held) => held,
            Err(item) => self.push_into_emptied_inbox(item),
        };
        let unwatched = || {
            self.inbox_fence.light();
            self.inbox_unwatched.load(Ordering::Relaxed)
        };
        if held >= self.sizer.task_len() || unwatched() {
            self.hand_over_inbox();
        }
    }

    /// Move the feeder's inbox to the queue, and wake workers for it.
    #[inline(never)]
    fn hand_over_inbox(&self) {
        let mut st = lock(&self.state);
        self.move_inbox_locked(&mut st);
        self.unlock_and_wake_workers(st);
    }

    /// `push_pulled` into a full inbox: only if a reservation outgrew the sizer's bound.
    /// Moves the inbox first; returns how many wait in it then.
    #[cold]
    #[inline(never)]
    fn push_into_emptied_inbox(&self, item: H::Item) -> usize {
        self.hand_over_inbox();
        self.inbox
            .push(item)
            .ok()
            .expect("an emptied inbox has room")
    }

    /// End of a reservation: `unused` reserved indices were never pulled, and the input
    /// ended with `end`, if it did. Returns whether to keep pulling.
    pub(crate) fn finish_reservation(&self, unused: usize, end: Option<Pulled<H::Item>>) -> bool {
        let mut st = lock(&self.state);
        self.move_inbox_locked(&mut st);
        // Only the feeder gives out indices in source mode, so the unused ones are the last.
        st.submitted -= unused as u64;
        st.feeder_unsent = 0;
        let more = match end {
            None | Some(Pulled::Item(_)) => !(st.cancelled || st.closed),
            Some(Pulled::End) => {
                self.close_locked(&mut st);
                false
            }
            Some(Pulled::Failed(code)) => {
                let index = st.submitted;
                st.submitted += 1;
                self.reserve_window(index, 1);
                st.closed = true;
                self.stop_pulling.store(true, Ordering::Release);
                self.store_locked(&mut st, Finished::source_failed(index, code));
                false
            }
        };
        self.wake_locked(&mut st);
        more
    }

    /// Time spent in the work function, for stats.
    /// Count `ns` of work by `worker`: in its own counters, since a shared one took a
    /// line from the other workers after every round.
    pub(crate) fn add_busy(&self, worker: u32, ns: u64) {
        self.tallies[worker as usize].add_busy(ns);
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
