//! The workers' side: a round takes a task from the queue, and each outcome is stored
//! (the ordered ring) or left in the worker's outbox (unordered) and published.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::handler::{Finished, Handler};
use crate::outbox::handshake_fence;
use crate::status::ItemStatus;
use crate::stored::Stored;
use crate::sync::{lock, wait_timer};

use super::waking::Spinner;
use super::{FinishedOf, OutcomeCursor, Shared, StateOf};

/// The poller's first timer; it doubles while the poller finds nothing to do, and past
/// `POLL_LAST` the poller gives up its role and sleeps until woken, so a stalled pool
/// stops polling within about 13 ms.
const POLL_FIRST: Duration = Duration::from_micros(100);
const POLL_LAST: Duration = Duration::from_micros(6400);

impl<H: Handler> Shared<H> {
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
                let stalled;
                (st, stalled) = self.spin_through_stall(st);
                if stalled {
                    // What came meanwhile is worth a round, as after a sleep; if nothing
                    // has come yet, the refill is on its way and a spin may catch it.
                    slept = true;
                    spun = false;
                    continue;
                }
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

    /// Whether the queued items are worth a worker's round now: a task's worth, or any
    /// once somebody is blocked on the pool or the input has ended (the busy workers may
    /// be stuck in long items, and nothing more may come).
    pub(super) fn worth_a_round(&self, st: &StateOf<H>) -> bool {
        st.queue.len() >= self.sizer.task_len()
            || st.consumers.waiting > 0
            || st.producers.waiting > 0
            || st.feeder.waiting > 0
            || st.closed
            || st.cancelled
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

    /// A worker saw an item fail: a fail-fast pool stops the rest now.
    pub(crate) fn item_failed(&self) {
        if self.fail_fast && !self.is_cancelled() {
            let mut st = lock(&self.state);
            self.cancel_locked(&mut st);
        }
    }

    /// Count `ns` of work by `worker`: in its own counters, since a shared one took a
    /// line from the other workers after every round.
    pub(crate) fn add_busy(&self, worker: u32, ns: u64) {
        self.tallies[worker as usize].add_busy(ns);
    }
}
