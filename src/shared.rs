//! The pipeline's state machine: everything behind the pool's one state lock, and every
//! operation on it. `Pool` (the public API), the workers and the feeder all go through
//! here. See `src/DESIGN.md` for the states and the invariants.
//!
//! This file holds the state and what every part reads; each part of the protocol has a
//! file of its own below `shared/`: `admission` (submits), `delivery` (`next`),
//! `rounds` (the workers), `feeding` (the source's feeder), `waking` (who sleeps, who
//! is woken, who spins) and `lifecycle` (close, cancel, stats, free).

mod admission;
mod delivery;
mod feeding;
mod lifecycle;
mod rounds;
mod waking;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::chunk::Sizer;
use crate::collector::{Collector, Window};
use crate::config::{Resolved, available_cpus};
use crate::handler::{Finished, Handler};
use crate::membarrier::HandshakeFence;
use crate::outbox::Outbox;
use crate::queue::WorkQueue;
use crate::ring::Cursor;
use crate::spin::{Backoff, pool_spin_limit};
use crate::stats::{Outcomes, Tally};
use crate::status::ItemStatus;
use crate::stored::Stored;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Padded};
use crate::threads;

use waking::{Hints, Sleepers};

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
    /// A worker is spinning through a stall of the window (`spin_through_stall`), how
    /// such spins went, and how long they took in all.
    stall_spinner: bool,
    stall_spins: Backoff,
    stall_spun_ns: u64,
    /// Consumers, and the feeder, spinning before they park: awake, on a core.
    consumers_spinning: u32,
    feeder_spinning: bool,
    consumer_spins: Backoff,
    feeder_spins: Backoff,
}

/// The part of a pool its threads share. Lives in a `Box` owned by [`Pool`], which joins
/// every thread before dropping it; threads reach it through [`SharedRef`].
pub(crate) struct Shared<H: Handler> {
    pub(crate) handler: H,
    capacity: usize,
    fail_fast: bool,
    workers: usize,
    ordered: bool,
    /// The pool pulls from a source on a feeder thread.
    fed: bool,
    /// CPUs this process may run on, when the pool was made.
    cpus: usize,
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
            fed: feeder,
            cpus: available_cpus(),
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
                stall_spinner: false,
                stall_spins: Backoff::default(),
                stall_spun_ns: 0,
                consumers_spinning: 0,
                feeder_spinning: false,
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

    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
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

    /// Make sure the ring has slots for the indices just given out (ordered pools).
    fn reserve_window(&self, first: u64, count: u64) {
        if self.ordered {
            self.window.reserve(first, count);
        }
    }

    /// Time the workers spent in the work function so far.
    fn busy_ns(&self) -> u64 {
        self.tallies.iter().map(|t| t.busy_ns()).sum()
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

    /// Count and store an outcome under the lock. Returns whether the item failed.
    fn count_and_insert(&self, st: &mut StateOf<H>, outcome: FinishedOf<H>) -> bool {
        let status = outcome.status();
        st.outcomes.count(status);
        st.collector.insert(&self.window, outcome);
        matches!(status, ItemStatus::Failed | ItemStatus::SourceFailed)
    }
}
