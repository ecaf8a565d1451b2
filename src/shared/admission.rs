//! Admission: submits take indices and slots, queue the items, and wait for room.

use std::iter::Peekable;
use std::sync::atomic::Ordering;

use crate::handler::Handler;
use crate::pool::Error;
use crate::status::Status;
use crate::sync::{fence, lock, set_if_changed};
use crate::wait::Deadline;

use super::waking::{ROOM_DEFERRAL_LIMIT, Sleepers, capped, park};
use super::{Guard, Shared, StateOf};

impl<H: Handler> Shared<H> {
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

    /// Queue `item` under `index`, the one after the last queued (admission gives indices
    /// out in order). The caller holds a slot for it.
    fn enqueue_locked(&self, st: &mut StateOf<H>, index: u64, item: H::Item) {
        if st.queue.is_empty() {
            st.queue_first = index;
        }
        debug_assert_eq!(st.queue_first + st.queue.len() as u64, index);
        st.queue.push_back(item);
    }

    /// Refresh the `full` mirror after admission or delivery changed the slots taken.
    /// Setting it is admission's half of a handshake with an ordered pool's consumer,
    /// which frees slots without the state lock (`delivered_moved`): either the consumer
    /// sees the mirror set, or the look after the fence sees the slots it freed.
    pub(super) fn update_full(&self, st: &StateOf<H>) {
        let full = !self.has_room(st);
        set_if_changed(&self.full, full, Ordering::Release);
        if full && self.ordered {
            fence(Ordering::SeqCst);
            if self.has_room(st) {
                self.full.store(false, Ordering::Release);
            }
        }
    }

    /// Whether the free slots are worth waking a producer or the feeder for: a wake-up's
    /// worth, or any once the workers have run dry and the consumers are about to. While
    /// a consumer still has a wake-up's worth of results to take, it is the bottleneck,
    /// and a refill per slot it frees would wake the filler once per item.
    pub(super) fn room_due(&self, st: &mut StateOf<H>) -> bool {
        let in_flight = self.slots_taken(st);
        let room = self.capacity as u64 - in_flight;
        let batch = self.sizer.wake_batch();
        if room >= batch as u64 {
            return true;
        }
        room > 0 && st.queue.is_empty() && self.ready_len(st) < batch
    }

    /// Set `room_watch` for the producers and the feeder waiting for room: the delivered
    /// count at which a wake-up's worth is free (`room_due`), while one of them waits and
    /// has not been notified. Keeping it is the waiters' half of the handshake with an
    /// ordered pool's consumer (`delivered_moved`): a waiter sets it, fences, then looks
    /// at the room once more before it sleeps. (Room that becomes due before that, once
    /// the workers run dry, is theirs and the consumer's to notice under the lock.)
    pub(super) fn watch_room(&self, st: &StateOf<H>) {
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
    pub(super) fn watch_room_before_sleep(&self, st: &mut StateOf<H>) -> bool {
        if !self.ordered {
            return false;
        }
        self.watch_room(st);
        fence(Ordering::SeqCst);
        self.room_due(st)
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
}
