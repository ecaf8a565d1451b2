//! The feeder's side: reservations of slots and indices, the inbox of pulled items,
//! and the end of the input.

use std::sync::atomic::Ordering;

use crate::handler::{Finished, Handler, Pulled};
use crate::sync::{lock, set_if_changed};

use super::waking::{ROOM_DEFERRAL_LIMIT, Spinner, park};
use super::{Shared, StateOf};

impl<H: Handler> Shared<H> {
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

    /// Move the feeder's inbox to the queue (cancelled outcomes after a cancel).
    pub(super) fn move_inbox_locked(&self, st: &mut StateOf<H>) {
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

    /// Whether the feeder must move pulled items to the queue at once: a worker sleeps and
    /// no poller's timer would bring it back for the inbox.
    pub(super) fn update_inbox_watch(&self, st: &StateOf<H>) {
        let unwatched = st.idle_workers > 0 && !st.poller;
        set_if_changed(&self.inbox_unwatched, unwatched, Ordering::SeqCst);
    }
}
