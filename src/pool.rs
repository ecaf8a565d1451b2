//! The pool: admission, the work queue, the collector and shutdown, over one state lock.
//!
//! See `src/DESIGN.md` for the pipeline and its states. In short:
//!
//! * **Admission** (`submit`, the feeder) takes a slot while fewer than `capacity` items
//!   are in flight, gives the item the next index and puts it on the work queue. Only
//!   `next` frees a slot, so at most `capacity` items exist anywhere in the pipeline.
//! * **Workers** take tasks from the queue, run them (or mark them cancelled when the
//!   pool is cancelled) and store the outcome in the collector.
//! * **Consumers** (`next`) take ready outcomes from the collector.
//! * **Cancel** moves every queued task straight to the collector as cancelled, so the
//!   outcome of a cancelled item never waits for a busy worker.
//! * **Free** cancels, waits until every accepted item has an outcome, hands those never
//!   taken to `Handler::drop_unreturned`, disconnects the queue and joins every thread.

use std::borrow::Cow;
use std::iter::Peekable;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::chunk::{Sizer, Task};
use crate::collector::Collector;
use crate::config::{Config, Resolved};
use crate::handler::{Handler, Outcome, Pulled, Source};
use crate::outbox::Outbox;
use crate::stats::{Outcomes, Stats};
use crate::status::{ItemStatus, Status};
use crate::sync::{Condvar, Mutex, MutexGuard, Padded, lock};
use crate::threads::{self, OwnerGuard};
use crate::wait::{Deadline, Wait};
use crate::{feeder, worker};

/// Why a call did not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: Cow<'static, str>,
}

impl Error {
    pub(crate) fn new(status: Status, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// An item `submit` did not accept, handed back with the reason.
#[derive(Debug)]
pub struct Rejected<I> {
    pub item: I,
    pub error: Error,
}

/// The state of pool `H`, and the guard that proves its lock is held.
type StateOf<H> = State<<H as Handler>::Item, <H as Handler>::Output>;
type Guard<'a, H> = MutexGuard<'a, StateOf<H>>;
type OutcomeOf<H> = Outcome<<H as Handler>::Item, <H as Handler>::Output>;

/// Everything behind the state lock.
struct State<I, O> {
    /// Indices given out so far; the next item gets this one.
    submitted: u64,
    /// Outcomes handed back by `next`.
    delivered: u64,
    /// Outcomes stored in the collector so far (delivered ones included).
    produced: u64,
    closed: bool,
    cancelled: bool,
    /// `free` is waiting for every accepted item to have an outcome.
    freeing: bool,
    collector: Collector<I, O>,
    /// Dropped by `free` so idle workers see the queue disconnect and exit.
    work_tx: Option<Sender<Task<I>>>,
    consumers_waiting: u32,
    producers_waiting: u32,
    outcomes: Outcomes,
}

impl<I, O> State<I, O> {
    /// Slots taken: indices given out (to accepted items, or reserved by the feeder for
    /// items it is pulling) and not yet handed back.
    fn slots_taken(&self) -> u64 {
        self.submitted - self.delivered
    }

    fn has_room(&self, capacity: usize) -> bool {
        self.slots_taken() < capacity as u64
    }

    /// No item will ever come out of `next` again.
    fn is_done(&self) -> bool {
        (self.closed || self.cancelled) && self.slots_taken() == 0
    }

    /// Every index given out has an outcome (so the feeder holds no reservation).
    fn is_settled(&self) -> bool {
        self.produced == self.submitted
    }
}

/// The part of a pool its threads share. Lives in a `Box` owned by [`Pool`], which joins
/// every thread before dropping it; threads reach it through [`SharedRef`].
pub(crate) struct Shared<H: Handler> {
    pub(crate) handler: H,
    capacity: usize,
    fail_fast: bool,
    workers: usize,
    state: Padded<Mutex<StateOf<H>>>,
    /// Consumers wait here for a ready outcome or for the end.
    ready: Condvar,
    /// Producers and the feeder wait here for a free slot, close or cancel.
    room: Condvar,
    /// `free` waits here until every accepted item has an outcome.
    settled: Condvar,
    /// Mirror of `State::cancelled` that workers and callbacks read without the lock.
    cancelled: Padded<AtomicBool>,
    /// Workers take tasks here. Dropped by hand in `shutdown`, never in a forked child.
    pub(crate) work_rx: ManuallyDrop<Receiver<Task<H::Item>>>,
    /// Fork generation the pool was created in.
    born_in: u64,
    started: Instant,
    busy_ns: Padded<AtomicU64>,
    /// Decides how many items go into one task.
    pub(crate) sizer: Padded<Sizer>,
    /// One per worker: finished outcomes not yet published to the collector.
    outboxes: Box<[Padded<Outbox<OutcomeOf<H>>>]>,
    /// Mirror of `State::consumers_waiting` for the outbox handshake.
    consumers_waiting: Padded<AtomicUsize>,
    /// Set by close and cancel: the feeder must not call the source again.
    stop_pulling: AtomicBool,
    /// Indices the feeder reserved but has not sent yet (so `stats` can leave them out).
    feeder_unsent: AtomicU64,
}

/// A pointer to [`Shared`] that a pool thread may carry.
pub(crate) struct SharedRef<H: Handler>(*const Shared<H>);

// SAFETY: `Shared` is `Sync` (its mutable parts sit behind a Mutex or atomics and the
// handler is `Sync`), and the pointee outlives every thread holding a `SharedRef`:
// `Pool` joins all its threads before the `Box<Shared>` is dropped.
unsafe impl<H: Handler> Send for SharedRef<H> {}

impl<H: Handler> SharedRef<H> {
    pub(crate) fn get(&self) -> &Shared<H> {
        // SAFETY: see the `Send` impl: the pointee lives until after this thread is joined.
        unsafe { &*self.0 }
    }
}

/// A streaming parallel map: submit items (or give it a source), take outcomes.
///
/// Every method takes `&self`: any number of threads may submit and consume at once.
/// Dropping the pool is `free`: it cancels, hands unreturned outcomes to
/// [`Handler::drop_unreturned`], and joins every thread.
pub struct Pool<H: Handler> {
    /// Dropped by hand in `Drop`, after every thread that points into it is joined.
    shared: ManuallyDrop<Box<Shared<H>>>,
    threads: Vec<JoinHandle<()>>,
    source_mode: bool,
}

impl<H: Handler> Pool<H> {
    /// A pool whose input comes from `submit`.
    pub fn new(handler: H, config: &Config) -> Result<Self, Error> {
        Self::start(handler, config, None)
    }

    /// A pool whose input comes from `source`, pulled by the pool's own feeder thread.
    pub fn with_source(
        handler: H,
        config: &Config,
        source: Source<H::Item>,
    ) -> Result<Self, Error> {
        Self::start(handler, config, Some(source))
    }

    fn start(handler: H, config: &Config, source: Option<Source<H::Item>>) -> Result<Self, Error> {
        let cfg: Resolved = config
            .resolve()
            .map_err(|m| Error::new(Status::Invalid, m))?;
        let (work_tx, work_rx) = crossbeam_channel::unbounded();
        let shared = Box::new(Shared {
            handler,
            capacity: cfg.capacity,
            fail_fast: cfg.fail_fast,
            workers: cfg.workers,
            state: Padded(Mutex::new(State {
                submitted: 0,
                delivered: 0,
                produced: 0,
                closed: false,
                cancelled: false,
                freeing: false,
                collector: Collector::new(cfg.ordered, cfg.capacity),
                work_tx: Some(work_tx),
                consumers_waiting: 0,
                producers_waiting: 0,
                outcomes: Outcomes::default(),
            })),
            ready: Condvar::new(),
            room: Condvar::new(),
            settled: Condvar::new(),
            cancelled: Padded(AtomicBool::new(false)),
            work_rx: ManuallyDrop::new(work_rx),
            born_in: threads::fork_generation(),
            started: Instant::now(),
            busy_ns: Padded(AtomicU64::new(0)),
            sizer: Padded(Sizer::new(cfg.capacity, cfg.workers)),
            outboxes: (0..cfg.workers).map(|_| Padded(Outbox::new())).collect(),
            consumers_waiting: Padded(AtomicUsize::new(0)),
            stop_pulling: AtomicBool::new(false),
            feeder_unsent: AtomicU64::new(0),
        });
        let mut pool = Pool {
            shared: ManuallyDrop::new(shared),
            threads: Vec::with_capacity(cfg.workers + 1),
            source_mode: source.is_some(),
        };
        let prefix = match &cfg.name {
            Some(name) => format!("pmap-{name}-"),
            None => "pmap-".to_string(),
        };
        for id in 0..cfg.workers as u32 {
            let shared = pool.shared_ref();
            let spawned = threads::spawn_blocking_signals(format!("{prefix}{id}"), move || {
                worker::run(shared.get(), id)
            });
            pool.adopt(spawned)?;
        }
        if let Some(source) = source {
            let shared = pool.shared_ref();
            let spawned = threads::spawn_blocking_signals(format!("{prefix}feed"), move || {
                feeder::run(shared.get(), source)
            });
            pool.adopt(spawned)?;
        }
        Ok(pool)
    }

    fn shared_ref(&self) -> SharedRef<H> {
        SharedRef(&**self.shared)
    }

    /// Keep a started thread; on failure the pool is dropped, which stops the started ones.
    fn adopt(&mut self, spawned: std::io::Result<JoinHandle<()>>) -> Result<(), Error> {
        match spawned {
            Ok(handle) => {
                self.threads.push(handle);
                Ok(())
            }
            Err(e) => Err(Error::new(
                Status::System,
                format!("could not start a pool thread: {e}"),
            )),
        }
    }

    /// Submit one item, waiting for room as `wait` allows. On refusal the item comes back.
    pub fn submit(&self, item: H::Item, wait: Wait) -> Result<(), Rejected<H::Item>> {
        let mut items = std::iter::once(item).peekable();
        match self.submit_many(&mut items, wait) {
            (_, Ok(())) => Ok(()),
            (_, Err(error)) => Err(Rejected {
                item: items.next().expect("a refused item stays in the iterator"),
                error,
            }),
        }
    }

    /// Submit items from `items` in order, as many as fit before `wait` runs out.
    ///
    /// Returns how many were accepted; items not accepted stay in the iterator. The
    /// status is `Ok` only when the iterator was emptied.
    pub fn submit_many<It>(
        &self,
        items: &mut Peekable<It>,
        wait: Wait,
    ) -> (usize, Result<(), Error>)
    where
        It: Iterator<Item = H::Item>,
    {
        if let Err(e) = self.check_fork() {
            return (0, Err(e));
        }
        if self.source_mode {
            let msg = "pmap_submit is not allowed on a pool with a source";
            return (0, Err(Error::new(Status::Invalid, msg)));
        }
        let shared = &**self.shared;
        let deadline = wait.deadline();
        let mut accepted = 0;
        let mut st = lock(&shared.state);
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
            while st.has_room(shared.capacity) {
                let room = (shared.capacity as u64 - st.slots_taken()) as usize;
                let len = room.min(shared.sizer.task_len());
                let Some(first) = items.next() else {
                    return (accepted, Ok(()));
                };
                let task = if len == 1 || items.peek().is_none() {
                    Task::One {
                        index: st.submitted,
                        item: first,
                    }
                } else {
                    let mut batch = Vec::with_capacity(len);
                    batch.push(first);
                    batch.extend(items.by_ref().take(len - 1));
                    Task::new(st.submitted, batch)
                };
                accepted += task.len();
                shared.enqueue_locked(&mut st, task);
            }
            if items.peek().is_none() {
                return (accepted, Ok(()));
            }
            st = match shared.wait_producer(st, deadline) {
                Ok(st) => st,
                Err(e) => return (accepted, Err(e)),
            };
        }
    }

    /// End of input. Idempotent.
    pub fn close(&self) -> Result<(), Error> {
        self.check_fork()?;
        let mut st = lock(&self.shared.state);
        self.shared.close_locked(&mut st);
        Ok(())
    }

    /// Take the next outcome: in index order when ordered, as finished otherwise.
    ///
    /// `Err` with `Status::Done` once the input is closed (or the pool cancelled) and
    /// every item has been handed back; `Status::Timeout` when `wait` ran out.
    pub fn next(&self, wait: Wait) -> Result<Outcome<H::Item, H::Output>, Error> {
        let mut out = Vec::with_capacity(1);
        self.next_many(&mut out, 1, wait)?;
        Ok(out.pop().expect("next_many returned one outcome"))
    }

    /// Wait (as `wait` allows) for the first ready outcome, then append whatever else is
    /// ready, up to `max` in all, to `out`. Returns how many were appended.
    pub fn next_many(
        &self,
        out: &mut Vec<Outcome<H::Item, H::Output>>,
        max: usize,
        wait: Wait,
    ) -> Result<usize, Error> {
        self.next_into(max, wait, |outcome| out.push(outcome))
    }

    /// [`Pool::next_many`] handing each outcome to `sink` (called under the state lock,
    /// so it must be quick and must not call back into the pool).
    pub fn next_into(
        &self,
        max: usize,
        wait: Wait,
        mut sink: impl FnMut(Outcome<H::Item, H::Output>),
    ) -> Result<usize, Error> {
        self.check_fork()?;
        if max == 0 {
            return Err(Error::new(Status::Invalid, "max must be at least 1"));
        }
        let shared = &**self.shared;
        let deadline = wait.deadline();
        let mut st = lock(&shared.state);
        loop {
            let mut got = 0;
            while got < max {
                match st.collector.pop_ready() {
                    Some(outcome) => sink(outcome),
                    None => break,
                }
                got += 1;
            }
            if got > 0 {
                st.delivered += got as u64;
                shared.wake_locked(&st);
                return Ok(got);
            }
            if st.is_done() {
                return Err(Error::new(Status::Done, "every item has been handed back"));
            }
            st = shared.wait_consumer(st, deadline)?;
        }
    }

    /// Stop: no new item starts, items not started come back cancelled. Idempotent.
    pub fn cancel(&self) -> Result<(), Error> {
        self.check_fork()?;
        let mut st = lock(&self.shared.state);
        self.shared.cancel_locked(&mut st);
        Ok(())
    }

    /// Whether the pool has been cancelled (by `cancel`, fail-fast or free).
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire)
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.check_fork()?;
        let shared = &**self.shared;
        let st = lock(&shared.state);
        let submitted = st.submitted - shared.feeder_unsent.load(Ordering::Relaxed);
        Ok(Stats {
            submitted,
            succeeded: st.outcomes.succeeded,
            failed: st.outcomes.failed,
            cancelled: st.outcomes.cancelled,
            in_flight: submitted - st.delivered,
            workers: shared.workers as u32,
            elapsed_ns: shared.started.elapsed().as_nanos() as u64,
            busy_ns: shared.busy_ns.load(Ordering::Relaxed),
        })
    }

    /// Worker threads of this pool.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// Most items in flight.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether the calling thread is one of this pool's threads or inside its callbacks,
    /// where a call that waits on the pool could never return.
    pub fn is_current_thread_inside(&self) -> bool {
        threads::is_owned_by(self.shared.addr())
    }

    /// Whether this pool was inherited from a parent process through `fork()`.
    pub fn is_forked(&self) -> bool {
        threads::fork_generation() != self.shared.born_in
    }

    fn check_fork(&self) -> Result<(), Error> {
        if self.is_forked() {
            let msg = "the pool was created before fork(); in the child only pmap_free is allowed";
            return Err(Error::new(Status::Forked, msg));
        }
        Ok(())
    }

    /// Cancel, wait for running items, hand back unreturned outcomes, join every thread.
    fn shutdown(&mut self) {
        if self.is_forked() {
            // The threads do not exist in this process: nothing to stop, nothing to join,
            // no callback may run. Forgetting the handles avoids detaching phantom threads,
            // and the queue's endpoints are leaked because a thread that vanished in the
            // fork may have held the channel's internal locks.
            for handle in self.threads.drain(..) {
                std::mem::forget(handle);
            }
            let st = self
                .shared
                .state
                .0
                .get_mut()
                .unwrap_or_else(|p| p.into_inner());
            std::mem::forget(st.work_tx.take());
            return;
        }
        let shared = &**self.shared;
        let leftovers = {
            let mut st = lock(&shared.state);
            shared.cancel_locked(&mut st);
            st.freeing = true;
            while !st.is_settled() {
                st = shared.settled.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            let leftovers = st.collector.take_all();
            st.delivered += leftovers.len() as u64;
            leftovers
        };
        {
            let _inside = OwnerGuard::enter(shared.addr());
            for outcome in leftovers {
                shared.handler.drop_unreturned(outcome);
            }
        }
        // Disconnect the (empty) queue: each worker runs its exit hook and returns.
        drop(lock(&shared.state).work_tx.take());
        for handle in self.threads.drain(..) {
            // Pool threads abort on panic, so a join error cannot happen.
            let _ = handle.join();
        }
        // SAFETY: every thread that used the receiver has been joined; it is not used again.
        unsafe { ManuallyDrop::drop(&mut self.shared.work_rx) };
    }
}

impl<H: Handler> Drop for Pool<H> {
    fn drop(&mut self) {
        if self.is_current_thread_inside() && !self.is_forked() {
            // Joining from one of our own threads would wait for itself forever. The
            // C layer refuses this case before it gets here; from Rust, leak instead
            // (the threads keep their `Shared` alive because it is never freed).
            self.shared.cancelled.store(true, Ordering::Release);
            for handle in self.threads.drain(..) {
                std::mem::forget(handle);
            }
            return;
        }
        self.shutdown();
        // SAFETY: every thread holding a `SharedRef` was joined by `shutdown` (or does not
        // exist in this forked child), and `shared` is not used after this point.
        unsafe { ManuallyDrop::drop(&mut self.shared) };
    }
}

impl<H: Handler> Shared<H> {
    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Queue `task`, whose indices start at `st.submitted`. The caller checked for room.
    fn enqueue_locked(&self, st: &mut StateOf<H>, task: Task<H::Item>) {
        st.submitted += task.len() as u64;
        let tx = st
            .work_tx
            .as_ref()
            .expect("the queue stays connected until free");
        // The queue is unbounded (admission bounds it) and we hold a receiver: cannot fail.
        let _ = tx.send(task);
    }

    /// A worker finished an item: leave the outcome in its outbox, and publish at once
    /// if a consumer is waiting (the worker's half of the outbox handshake).
    pub(crate) fn finish(&self, worker: u32, outcome: Outcome<H::Item, H::Output>) {
        self.outboxes[worker as usize].push(outcome);
        if self.consumers_waiting.load(Ordering::SeqCst) > 0 {
            self.publish(worker);
        }
    }

    /// Move a worker's outbox into the collector.
    pub(crate) fn publish(&self, worker: u32) {
        if self.outboxes[worker as usize].is_empty() {
            return;
        }
        let mut st = lock(&self.state);
        self.outboxes[worker as usize].take_all(|o| {
            self.count_and_insert(&mut st, o);
        });
        self.wake_locked(&st);
    }

    /// Take every worker's unpublished outcomes into the collector; returns how many.
    fn steal_locked(&self, st: &mut StateOf<H>) -> usize {
        self.outboxes
            .iter()
            .map(|outbox| {
                outbox.take_all(|o| {
                    self.count_and_insert(st, o);
                })
            })
            .sum()
    }

    /// A worker saw an item fail in a fail-fast pool: stop the rest now.
    pub(crate) fn fail_fast_triggered(&self) -> bool {
        if self.fail_fast && !self.is_cancelled() {
            let mut st = lock(&self.state);
            self.cancel_locked(&mut st);
        }
        self.fail_fast
    }

    fn count_and_insert(&self, st: &mut StateOf<H>, outcome: Outcome<H::Item, H::Output>) -> bool {
        let failed = match outcome.status {
            ItemStatus::Ok => {
                st.outcomes.succeeded += 1;
                false
            }
            ItemStatus::Failed | ItemStatus::SourceFailed => {
                st.outcomes.failed += 1;
                true
            }
            ItemStatus::Cancelled => {
                st.outcomes.cancelled += 1;
                false
            }
        };
        st.produced += 1;
        st.collector.insert(outcome);
        failed
    }

    fn store_locked(&self, st: &mut StateOf<H>, outcome: Outcome<H::Item, H::Output>) {
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
        // Queued tasks never start: they get their outcome now, not when a worker frees up.
        while let Ok(task) = self.work_rx.try_recv() {
            task.for_each(|index, item| {
                self.count_and_insert(st, Outcome::cancelled(index, item));
            });
        }
        self.wake_locked(st);
    }

    /// Wake whoever can now make progress. Cheap when nobody waits.
    fn wake_locked(&self, st: &StateOf<H>) {
        if st.consumers_waiting > 0 {
            if st.is_done() {
                self.ready.notify_all();
            } else if st.collector.has_ready() {
                self.ready.notify_one();
            }
        }
        if st.producers_waiting > 0 {
            if st.closed || st.cancelled {
                self.room.notify_all();
            } else if st.has_room(self.capacity) {
                self.room.notify_one();
            }
        }
        if st.freeing && st.is_settled() {
            self.settled.notify_all();
        }
    }

    /// A producer found no room: wait until woken or the deadline passes.
    fn wait_producer<'a>(
        &'a self,
        st: Guard<'a, H>,
        deadline: Deadline,
    ) -> Result<Guard<'a, H>, Error> {
        self.wait_on(&self.room, st, deadline, |st| &mut st.producers_waiting)
    }

    /// A consumer found nothing ready. It takes any outcomes still in workers' outboxes,
    /// and sleeps only when there were none. Its waiting count stays announced from
    /// before the last look into the outboxes until it wakes (its half of the handshake).
    fn wait_consumer<'a>(
        &'a self,
        mut st: Guard<'a, H>,
        deadline: Deadline,
    ) -> Result<Guard<'a, H>, Error> {
        if self.steal_locked(&mut st) > 0 {
            return Ok(st);
        }
        let limit = self.wait_limit(deadline)?;
        st.consumers_waiting += 1;
        self.consumers_waiting
            .store(st.consumers_waiting as usize, Ordering::SeqCst);
        if self.steal_locked(&mut st) == 0 {
            st = match limit {
                None => self.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    self.ready
                        .wait_timeout(st, d)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        st.consumers_waiting -= 1;
        self.consumers_waiting
            .store(st.consumers_waiting as usize, Ordering::SeqCst);
        Ok(st)
    }

    /// How long a call may sleep now: `None` = forever. Refuses to wait past the deadline
    /// or from inside one of this pool's own callbacks.
    fn wait_limit(&self, deadline: Deadline) -> Result<Option<Duration>, Error> {
        let limit = match deadline {
            Deadline::Now => None,
            Deadline::Never => Some(None),
            Deadline::At(at) => at.checked_duration_since(Instant::now()).map(Some),
        };
        let Some(limit) = limit else {
            return Err(Error::new(Status::Timeout, "the timeout expired"));
        };
        if threads::is_owned_by(self.addr()) {
            let msg = "this call would wait on the pool from inside one of its own callbacks";
            return Err(Error::new(Status::Invalid, msg));
        }
        Ok(limit)
    }

    fn wait_on<'a>(
        &'a self,
        cv: &Condvar,
        mut st: Guard<'a, H>,
        deadline: Deadline,
        waiters: fn(&mut StateOf<H>) -> &mut u32,
    ) -> Result<Guard<'a, H>, Error> {
        let limit = self.wait_limit(deadline)?;
        *waiters(&mut st) += 1;
        st = match limit {
            None => cv.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(d) => cv.wait_timeout(st, d).unwrap_or_else(|p| p.into_inner()).0,
        };
        *waiters(&mut st) -= 1;
        Ok(st)
    }

    /// The feeder's own handle on the work queue.
    pub(crate) fn feeder_sender(&self) -> Sender<Task<H::Item>> {
        let st = lock(&self.state);
        st.work_tx
            .clone()
            .expect("the queue is connected while the feeder runs")
    }

    /// The feeder's admission: reserve slots, and their indices, for the next pulls.
    /// Returns the first index and how many, or `None` when it must stop pulling.
    pub(crate) fn reserve_for_feeder(&self) -> Option<(u64, usize)> {
        let mut st = lock(&self.state);
        loop {
            if st.cancelled || st.closed {
                return None;
            }
            if st.has_room(self.capacity) {
                let room = (self.capacity as u64 - st.slots_taken()) as usize;
                let len = room.min(self.sizer.task_len());
                let first = st.submitted;
                st.submitted += len as u64;
                self.feeder_unsent.store(len as u64, Ordering::Relaxed);
                return Some((first, len));
            }
            st.producers_waiting += 1;
            st = self.room.wait(st).unwrap_or_else(|p| p.into_inner());
            st.producers_waiting -= 1;
        }
    }

    /// Whether the feeder must not call the source again (closed or cancelled).
    pub(crate) fn must_stop_pulling(&self) -> bool {
        self.stop_pulling.load(Ordering::Acquire)
    }

    /// Queue one pulled item under an index the feeder reserved. No lock: the item must
    /// reach the workers now, even if the next source call blocks for a long time.
    pub(crate) fn send_pulled(&self, tx: &Sender<Task<H::Item>>, index: u64, item: H::Item) {
        // Unbounded queue, and `Shared` holds a receiver: cannot fail.
        let _ = tx.send(Task::One { index, item });
        self.feeder_unsent.fetch_sub(1, Ordering::Relaxed);
    }

    /// End of a reservation: `unused` reserved indices were never pulled, and the input
    /// ended with `end`, if it did. Returns whether to keep pulling.
    pub(crate) fn finish_reservation(&self, unused: usize, end: Option<Pulled<H::Item>>) -> bool {
        let mut st = lock(&self.state);
        // Only the feeder gives out indices in source mode, so the unused ones are the last.
        st.submitted -= unused as u64;
        self.feeder_unsent.store(0, Ordering::Relaxed);
        let more = match end {
            None | Some(Pulled::Item(_)) => !(st.cancelled || st.closed),
            Some(Pulled::End) => {
                self.close_locked(&mut st);
                false
            }
            Some(Pulled::Failed(code)) => {
                let index = st.submitted;
                st.submitted += 1;
                st.closed = true;
                self.stop_pulling.store(true, Ordering::Release);
                self.store_locked(&mut st, Outcome::source_failed(index, code));
                false
            }
        };
        self.wake_locked(&st);
        more
    }

    /// Time spent in the work function, for stats.
    pub(crate) fn add_busy(&self, ns: u64) {
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
    }
}
