//! A hand-off buffer one thread fills and another may empty at any time: a worker's
//! finished outcomes on their way to the collector, and the feeder's pulled items on
//! their way to the work queue (`Shared::inbox`).
//!
//! A worker publishes its outcomes to the collector once per round, under the state lock.
//! Between publications they wait here, where a consumer that found nothing ready can
//! take them ("steal") before it goes to sleep, so a finished result never waits for a
//! slow item that its worker started afterwards.
//!
//! It is a ring of slots with two counters, so a push costs one plain store and no lock
//! (a lock per item was a quarter of the CPU time with cheap items): the filler writes a
//! slot, then advances `pushed`; a taker reads the slots below `pushed`, then advances
//! `taken`. There is one filler, and takers are serialised by the pool's state lock.
//!
//! The hand-off is a Dekker-style handshake: the filler pushes, issues a `SeqCst` fence
//! ([`handshake_fence`]), then reads the other side's "waiting" flag or count; the other
//! side stores that (`SeqCst`), then reads `pushed` (`SeqCst`). At least one of them sees
//! the other, so either the filler hands over or the other side takes. The fence is the
//! filler's to issue, and only where seeing a waiter would change what it does: a
//! `SeqCst` store on every push was 7% of all CPU time with cheap items.

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;

use crate::queue::WorkQueue;
use crate::sync::{AtomicUsize, RaceCell, fence};

/// The filler's half of the handshake, between its push and its read of the other side's
/// flag (see the module docs).
pub(crate) fn handshake_fence() {
    fence(Ordering::SeqCst);
}

pub(crate) struct Outbox<T> {
    slots: Box<[RaceCell<MaybeUninit<T>>]>,
    /// Items pushed so far. Written only by the filler.
    pushed: AtomicUsize,
    /// Items taken so far. Written only by takers.
    taken: AtomicUsize,
}

// SAFETY: the items move between threads, so `T: Send` is required. The slots are shared
// by the protocol above: a slot in `taken..pushed` is only read, by the one taker at a
// time, and a slot outside it is only written, by the one filler; the counters' release
// and acquire orderings order each write before the read of the same slot and each read
// before the next write.
unsafe impl<T: Send> Sync for Outbox<T> {}
// SAFETY: owning the outbox owns the items in it; `T: Send` lets them move with it.
unsafe impl<T: Send> Send for Outbox<T> {}

impl<T> Outbox<T> {
    /// An outbox for at least `capacity` items between two takes (a power of two, so a
    /// slot is found with a mask: a division per push showed in profiles).
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            slots: (0..capacity.max(1).next_power_of_two())
                .map(|_| RaceCell::new(MaybeUninit::uninit()))
                .collect(),
            pushed: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
        }
    }

    /// Called only by the filler (one thread per outbox). Returns how many items wait here
    /// now, or gives the item back when the outbox is full: the filler must then have it
    /// emptied (under the state lock) and push again.
    pub(crate) fn push(&self, item: T) -> Result<usize, T> {
        let pushed = self.pushed.load(Ordering::Relaxed);
        // Acquire: the taker's reads of the slots it took are done before we reuse one.
        let taken = self.taken.load(Ordering::Acquire);
        let held = pushed.wrapping_sub(taken);
        if held == self.slots.len() {
            return Err(item);
        }
        self.slots[pushed & (self.slots.len() - 1)].with_mut(|slot| {
            // SAFETY: the slot is outside `taken..pushed`, so no taker reads it, and only
            // this thread (the one filler) writes slots.
            unsafe { slot.write(MaybeUninit::new(item)) };
        });
        // Release: the slot's contents reach the taker that acquires this count. A filler
        // in the handshake follows with `handshake_fence`.
        self.pushed.store(pushed.wrapping_add(1), Ordering::Release);
        Ok(held + 1)
    }

    /// Whether anything waits here (part of the handshake: read after announcing a wait).
    pub(crate) fn is_empty(&self) -> bool {
        self.pushed.load(Ordering::SeqCst) == self.taken.load(Ordering::Relaxed)
    }

    /// Hand every waiting item to `f`, in push order; returns how many.
    ///
    /// # Safety
    /// No other thread may take from this outbox at the same time. Callers hold the pool's
    /// state lock, which every taker holds; the lock order is always state, then outbox.
    pub(crate) unsafe fn take_all(&self, mut f: impl FnMut(T)) -> usize {
        // The caller excludes other takers, so `taken` only changes here.
        let start = self.taken.load(Ordering::Relaxed);
        // Acquire (SeqCst for the handshake): the filler's writes to these slots are seen.
        let end = self.pushed.load(Ordering::SeqCst);
        let mut at = start;
        while at != end {
            let item = self.slots[at & (self.slots.len() - 1)].with_mut(|slot| {
                // SAFETY: `at` lies in `taken..pushed`: the filler wrote this slot before
                // advancing `pushed` (acquired above) and will not write it again until
                // `taken` passes it; no other taker runs (the caller's contract), and the
                // store below marks it read before anyone could read it again.
                unsafe { (*slot).assume_init_read() }
            });
            at = at.wrapping_add(1);
            // Per item, so an unwinding `f` cannot leave an item to be read twice.
            self.taken.store(at, Ordering::Release);
            f(item);
        }
        end.wrapping_sub(start)
    }

    /// Move every waiting item to the back of `queue`, in push order; returns how many.
    /// The feeder's inbox holds up to a task's worth: moved one by one (a release store of
    /// `taken` and a closure call each) that cost about 4.5 ns per item, all of it under
    /// the state lock the consumers need.
    ///
    /// # Safety
    /// As for [`Outbox::take_all`]: no other thread may take from this outbox meanwhile.
    pub(crate) unsafe fn move_all(&self, queue: &mut WorkQueue<T>) -> usize {
        let start = self.taken.load(Ordering::Relaxed);
        // Acquire (SeqCst for the handshake): the filler's writes to these slots are seen.
        let end = self.pushed.load(Ordering::SeqCst);
        let n = end.wrapping_sub(start);
        if n == 0 {
            return 0;
        }
        // `extend` makes room (the only step that can fail) before it reads any slot: an
        // item can neither be read twice nor lost.
        let mask = self.slots.len() - 1;
        queue.extend((0..n).map(|k| {
            self.slots[start.wrapping_add(k) & mask].with_mut(|slot| {
                // SAFETY: `start + k` lies in `taken..pushed`: the filler wrote this slot
                // before advancing `pushed` (acquired above) and will not write it again
                // until `taken` passes it; no other taker runs (the caller's contract), and
                // the store below marks all `n` read; nothing between can unwind.
                unsafe { (*slot).assume_init_read() }
            })
        }));
        // Release: our reads of these slots happen before the filler reuses them.
        self.taken.store(end, Ordering::Release);
        n
    }
}

impl<T> Drop for Outbox<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can take or push.
        unsafe { self.take_all(drop) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(o: &Outbox<i32>) -> Vec<i32> {
        let mut got = Vec::new();
        // SAFETY: the test is the only taker.
        unsafe { o.take_all(|x| got.push(x)) };
        got
    }

    fn move_all<T>(o: &Outbox<T>, q: &mut WorkQueue<T>) -> usize {
        // SAFETY: the test is the only taker.
        unsafe { o.move_all(q) }
    }

    #[test]
    fn take_all_empties_in_push_order() {
        let o = Outbox::new(4);
        assert!(o.is_empty());
        assert_eq!(o.push(1), Ok(1));
        assert_eq!(o.push(2), Ok(2));
        assert!(!o.is_empty());
        assert_eq!(take(&o), vec![1, 2]);
        assert!(o.is_empty());
        assert_eq!(take(&o), Vec::<i32>::new());
    }

    #[test]
    fn a_full_outbox_gives_the_item_back_and_wraps_after_a_take() {
        // Room for 3 rounds up to 4 slots.
        let o = Outbox::new(3);
        for i in 0..4 {
            assert_eq!(o.push(i), Ok(i as usize + 1));
        }
        assert_eq!(o.push(9), Err(9));
        assert_eq!(take(&o), vec![0, 1, 2, 3]);
        for i in 4..7 {
            o.push(i).unwrap();
        }
        assert_eq!(take(&o), vec![4, 5, 6]);
    }

    #[test]
    fn move_all_appends_in_push_order_across_the_wrap() {
        let o = Outbox::new(4);
        let mut q = WorkQueue::with_capacity(1);
        let mut out = Vec::new();
        assert_eq!(move_all(&o, &mut q), 0);
        for round in 0..5 {
            // Three at a time through four slots: the taken range wraps.
            for k in 0..3 {
                o.push(round * 3 + k).unwrap();
            }
            assert_eq!(move_all(&o, &mut q), 3);
            assert!(o.is_empty());
            o.push(100 + round).unwrap();
            assert_eq!(take(&o), vec![100 + round], "take_all resumes after a move");
        }
        q.take_front(q.len(), &mut out);
        assert_eq!(out, (0..15).collect::<Vec<_>>());
    }

    #[test]
    fn moved_items_are_owned_by_the_queue() {
        let item = std::sync::Arc::new(());
        let o = Outbox::new(2);
        let mut q = WorkQueue::with_capacity(1);
        o.push(item.clone()).unwrap();
        o.push(item.clone()).unwrap();
        assert_eq!(move_all(&o, &mut q), 2);
        drop(o);
        assert_eq!(
            std::sync::Arc::strong_count(&item),
            3,
            "the outbox forgot them"
        );
        drop(q);
        assert_eq!(
            std::sync::Arc::strong_count(&item),
            1,
            "the queue dropped them"
        );
    }

    #[test]
    fn items_left_at_drop_are_dropped() {
        let item = std::sync::Arc::new(());
        let o = Outbox::new(2);
        o.push(item.clone()).unwrap();
        drop(o);
        assert_eq!(std::sync::Arc::strong_count(&item), 1);
    }

    #[test]
    fn concurrent_filler_and_taker_pass_every_item_once() {
        const ITEMS: u32 = if cfg!(miri) { 300 } else { 100_000 };
        let o = std::sync::Arc::new(Outbox::new(8));
        let taker_lock = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let filler = {
            let o = o.clone();
            let lock = taker_lock.clone();
            std::thread::spawn(move || {
                for i in 0..ITEMS {
                    let mut item = i;
                    loop {
                        match o.push(item) {
                            Ok(_) => break,
                            Err(back) => {
                                item = back;
                                let mut got = lock.lock().unwrap();
                                // SAFETY: takers hold `lock`.
                                unsafe { o.take_all(|x| got.push(x)) };
                            }
                        }
                    }
                }
            })
        };
        let mut queue = WorkQueue::with_capacity(8);
        let mut turn = 0u32;
        while !filler.is_finished() {
            let mut got = taker_lock.lock().unwrap();
            // Both ways of taking, in turn; the queue hands its items on in order.
            turn += 1;
            if turn % 2 == 0 {
                // SAFETY: takers hold `lock`.
                unsafe { o.take_all(|x| got.push(x)) };
            } else {
                // SAFETY: takers hold `lock`.
                unsafe { o.move_all(&mut queue) };
                let mut moved = Vec::new();
                queue.take_front(queue.len(), &mut moved);
                got.extend(moved);
            }
        }
        filler.join().unwrap();
        let mut got = taker_lock.lock().unwrap();
        // SAFETY: takers hold `lock`.
        unsafe { o.take_all(|x| got.push(x)) };
        assert_eq!(*got, (0..ITEMS).collect::<Vec<_>>());
    }
}
