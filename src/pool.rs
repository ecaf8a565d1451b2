//! The public face of the core: [`Pool`] starts the threads, checks the call against
//! the pool's mode and process (fork), and delegates to the state machine in `shared.rs`.
//! `Drop` is `free`: cancel, hand back what was never delivered, join every thread.
//! See `src/DESIGN.md` for the pipeline.

use std::borrow::Cow;
use std::iter::Peekable;
use std::mem::ManuallyDrop;

use crate::config::{Config, Resolved};
use crate::handler::{Handler, Outcome, Source};
use crate::shared::{Shared, SharedRef};
use crate::stats::Stats;
use crate::status::Status;
use crate::threads::{self, JoinHandle};
use crate::wait::Wait;
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

    /// A wait that ran out (or a call that may not wait and could not proceed).
    pub(crate) fn timeout() -> Self {
        Error::new(Status::Timeout, "the timeout expired")
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
        let shared = Box::new(Shared::new(handler, &cfg, source.is_some()));
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
        SharedRef::new(&self.shared)
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
    #[inline]
    pub fn submit(&self, item: H::Item, wait: Wait) -> Result<(), Rejected<H::Item>> {
        if self.source_mode || self.is_forked() {
            // The long way says why not.
            return self.submit_one(item, wait);
        }
        if wait == Wait::Never && self.shared.refuses_at_once() {
            // The README's one-thread pattern makes this call once per item.
            return Err(Rejected {
                item,
                error: Error::timeout(),
            });
        }
        match self.shared.admit_one(item) {
            Ok(()) => Ok(()),
            Err(item) => self.submit_one(item, wait),
        }
    }

    /// `submit` the long way: what the straight paths above leave (no room, closed,
    /// cancelled, forked, source mode), through `submit_many`.
    #[inline(never)]
    fn submit_one(&self, item: H::Item, wait: Wait) -> Result<(), Rejected<H::Item>> {
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
    #[inline]
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
        self.shared.submit_many(items, wait.deadline())
    }

    /// End of input. Idempotent.
    pub fn close(&self) -> Result<(), Error> {
        self.check_fork()?;
        self.shared.close();
        Ok(())
    }

    /// Take the next outcome: in index order when ordered, as finished otherwise.
    ///
    /// `Err` with `Status::Done` once the input is closed (or the pool cancelled) and
    /// every item has been handed back; `Status::Timeout` when `wait` ran out.
    pub fn next(&self, wait: Wait) -> Result<Outcome<H::Item, H::Output>, Error> {
        let mut got = None;
        self.next_into(1, wait, |outcome| got = Some(outcome))?;
        Ok(got.expect("next_into returned one outcome"))
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

    /// [`Pool::next_many`] handing each outcome to `sink` (called while other consumers
    /// of the pool wait, so it must be quick and must not call back into the pool).
    #[inline]
    pub fn next_into(
        &self,
        max: usize,
        wait: Wait,
        sink: impl FnMut(Outcome<H::Item, H::Output>),
    ) -> Result<usize, Error> {
        self.check_fork()?;
        if max == 0 {
            return Err(Error::new(Status::Invalid, "max must be at least 1"));
        }
        self.shared.next_into(max, wait.deadline(), sink)
    }

    /// Stop: no new item starts, items not started come back cancelled. Idempotent.
    pub fn cancel(&self) -> Result<(), Error> {
        self.check_fork()?;
        self.shared.cancel();
        Ok(())
    }

    /// Whether the pool has been cancelled (by `cancel`, fail-fast or free).
    pub fn is_cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.check_fork()?;
        Ok(self.shared.stats())
    }

    /// Worker threads of this pool.
    pub fn workers(&self) -> usize {
        self.shared.workers()
    }

    /// Most items in flight.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the calling thread is one of this pool's threads or inside its callbacks,
    /// where a call that waits on the pool could never return.
    pub fn is_current_thread_inside(&self) -> bool {
        threads::is_owned_by(self.shared.addr())
    }

    /// Whether this pool was inherited from a parent process through `fork()`.
    pub fn is_forked(&self) -> bool {
        threads::fork_generation() != self.shared.born_in()
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
            // no callback may run, and no lock may be taken (a thread that vanished in the
            // fork may have held one). Forgetting the handles avoids detaching phantom
            // threads; dropping `Shared` afterwards only releases memory.
            for handle in self.threads.drain(..) {
                std::mem::forget(handle);
            }
            return;
        }
        self.shared.wind_down();
        for handle in self.threads.drain(..) {
            // Pool threads abort on panic, so a join error cannot happen.
            let _ = handle.join();
        }
    }
}

impl<H: Handler> Drop for Pool<H> {
    fn drop(&mut self) {
        if self.is_current_thread_inside() && !self.is_forked() {
            // Joining from one of our own threads would wait for itself forever. The
            // C layer refuses this case before it gets here; from Rust, leak instead
            // (the threads keep their `Shared` alive because it is never freed).
            self.shared.cancel_flag_only();
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
