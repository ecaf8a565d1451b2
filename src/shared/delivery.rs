//! Delivery: `next` hands outcomes back, from the ordered ring under the consumers' own
//! lock or from the unordered collector under the state lock, and waits for them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::collector::{Taken, take_in_order};
use crate::handler::{Handler, Outcome};
use crate::outbox::handshake_fence;
use crate::pool::Error;
use crate::stats::Outcomes;
use crate::status::Status;
use crate::sync::{MutexGuard, fence, lock};
use crate::wait::Deadline;

use super::waking::{Spinner, capped, park};
use super::{Guard, Shared, StateOf};

/// Longest a consumer sleeps while finished results may be held back for a batch: as long
/// as a batch's worth of work (`TARGET_WAKE_NS`), so the timer does not cut batches short.
const DEFERRAL_LIMIT: Duration = Duration::from_millis(2);

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

impl<H: Handler> Shared<H> {
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
    pub(super) fn delivered_moved(&self, delivered: u64) {
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

    /// How many results `next` could hand out in a row now.
    pub(super) fn ready_len(&self, st: &mut StateOf<H>) -> usize {
        let head = self.delivery.delivered.load(Ordering::Acquire);
        st.collector.ready_len(&self.window, head, st.submitted)
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

    /// A consumer found nothing ready. It takes any outcomes still in workers' outboxes,
    /// and sleeps only when there were none. Its waiting count stays announced from
    /// before the last look into the outboxes until it wakes (its half of the handshake).
    ///
    /// While results may be held back for a batch (cheap items in flight), it sleeps at
    /// most `DEFERRAL_LIMIT`: if every worker is then stuck in a slow item, nobody would
    /// publish or wake it, and the finished results must not wait for those items.
    pub(super) fn wait_consumer<'a>(
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
}
