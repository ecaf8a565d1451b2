//! The collector: where finished items wait until a consumer takes them.
//!
//! Ordered mode reads the pool's ring (`ring.rs`), where slot `i` holds item `i`'s outcome:
//! every item there is in flight, and admission never lets more than `capacity` items be
//! in flight, so the ring never needs more than `capacity` slots: a slow head item stalls
//! admission upstream instead of growing this buffer. Unordered mode is a plain FIFO of
//! finished items. The collector's own state is only touched under the pool's state lock;
//! an ordered pool's consumers take from the ring outside it (`take_in_order`, under the
//! pool's taker lock), and the pool's delivered count says how far they got.

use std::collections::VecDeque;

use crate::handler::{Finished, Outcome};
use crate::ring::Ring;
use crate::stats::Outcomes;
use crate::stored::Stored;

/// Where ordered outcomes wait: slot `i` of the pool's [`Ring`] holds item `i`'s, flat
/// (`stored.rs`).
pub(crate) type Window<I, O> = Ring<Stored<I, O>>;

pub(crate) enum Collector<I, O> {
    Ordered {
        /// Items from the head (the next to hand back) to `ready_end` are known to have
        /// finished: what a consumer can take in a row. Each slot is looked at once while
        /// it is not yet known full.
        ready_end: u64,
    },
    Unordered(VecDeque<Finished<I, O>>),
}

impl<I, O> Collector<I, O> {
    pub(crate) fn new(ordered: bool, capacity: usize) -> Self {
        if ordered {
            Collector::Ordered { ready_end: 0 }
        } else {
            // Reserve a modest start; the queue grows to at most `capacity` on its own.
            Collector::Unordered(VecDeque::with_capacity(capacity.min(1024)))
        }
    }

    /// Store a finished item whose index the caller owns (under the state lock). Workers
    /// of an ordered pool store theirs into `window` directly, without the lock.
    pub(crate) fn insert(&mut self, window: &Window<I, O>, outcome: Finished<I, O>) {
        match self {
            Collector::Ordered { .. } => {
                // SAFETY: the caller owns the index: it is in flight with no outcome yet.
                unsafe { window.put(outcome.index, Stored::new(outcome.fate)) };
            }
            Collector::Unordered(queue) => queue.push_back(outcome),
        }
    }

    /// Take the next finished item of an unordered pool. (An ordered pool's consumers
    /// read the ring: `take_in_order`.)
    pub(crate) fn pop_ready(&mut self) -> Option<Finished<I, O>> {
        match self {
            Collector::Ordered { .. } => None,
            Collector::Unordered(queue) => queue.pop_front(),
        }
    }

    /// How many results a consumer could take in a row from `head` (ordered: the next
    /// index to hand back); `end` (the next index to give out) bounds the scan. While a
    /// consumer is taking, this may count outcomes it has taken since `head` was read: at
    /// worst a needless wake-up.
    pub(crate) fn ready_len(&mut self, window: &Window<I, O>, head: u64, end: u64) -> usize {
        match self {
            Collector::Ordered { ready_end } => {
                *ready_end = (*ready_end).max(head);
                if *ready_end < end {
                    *ready_end += window.count_full(*ready_end, end - *ready_end);
                }
                (*ready_end - head) as usize
            }
            Collector::Unordered(queue) => queue.len(),
        }
    }

    /// Remove every stored result, ready or not, of the items from `head` (ordered: the
    /// next to hand back) to `end` (the next to give out), when the pool is freed. The
    /// caller is the only taker (it holds the pool's taker lock).
    pub(crate) fn take_all(
        &mut self,
        window: &Window<I, O>,
        head: u64,
        end: u64,
    ) -> Vec<Outcome<I, O>> {
        match self {
            Collector::Ordered { ready_end } => {
                let mut all = Vec::new();
                for index in head..end {
                    if window.is_full(index) {
                        // SAFETY: in flight and seen full; taken by the only taker.
                        let stored = unsafe { window.take(index) };
                        all.push(stored.into_outcome(index));
                    }
                }
                *ready_end = end;
                all
            }
            Collector::Unordered(queue) => queue.drain(..).map(Outcome::from).collect(),
        }
    }
}

/// How far a consumer got in one look at the ring: the next index to take, and how many
/// it took on the way (each counted before it is handed on, so a consumer whose hand-off
/// panics still knows what left the ring).
pub(crate) struct Taken {
    pub next: u64,
    pub got: usize,
}

impl Taken {
    /// A look starting at index `next`.
    pub(crate) fn from(next: u64) -> Self {
        Taken { next, got: 0 }
    }
}

/// Take up to `max` more outcomes from `window` in index order, from `taken.next` on,
/// while they are stored, counting each in `counts` by status and handing it to `f`.
///
/// # Safety
/// The caller is the only taker (it holds the pool's taker lock, or is freeing the pool),
/// and `taken.next` is the index after the last outcome handed back.
pub(crate) unsafe fn take_in_order<I, O>(
    window: &Window<I, O>,
    taken: &mut Taken,
    counts: &mut Outcomes,
    max: usize,
    mut f: impl FnMut(u64, Stored<I, O>),
) {
    let next = taken.next;
    let hand_back = |index: u64, stored: Stored<I, O>| {
        // Counted before `f`, so a guard that counts them delivered sees this one.
        taken.next = index + 1;
        taken.got += 1;
        counts.count(stored.status());
        f(index, stored);
    };
    // SAFETY: from the index after the last handed back on (each in flight, or not yet
    // admitted), taken by the only taker: the caller's promise. (A single outcome,
    // `pmap_next`, takes the pool's own straight path, `take_one`.)
    unsafe { window.take_while_full(next, max, hand_back) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ItemStatus;

    fn done(index: u64) -> Finished<u64, u64> {
        Finished::ran(index, index, 0, Ok(index * 10))
    }

    /// The indices of every result ready in a row, taken as a consumer does from `head`,
    /// which moves past them.
    fn pop_all(c: &mut Collector<u64, u64>, w: &Window<u64, u64>, head: &mut u64) -> Vec<u64> {
        if let Collector::Unordered(_) = c {
            return std::iter::from_fn(|| c.pop_ready())
                .map(|o| o.index)
                .collect();
        }
        let mut taken = Taken::from(*head);
        let mut got = Vec::new();
        let mut counts = Outcomes::default();
        // SAFETY: the test is the only taker, and `head` follows the last one taken.
        unsafe {
            take_in_order(w, &mut taken, &mut counts, usize::MAX, |index, _| {
                got.push(index);
            });
        };
        *head = taken.next;
        got
    }

    fn window(capacity: usize) -> Window<u64, u64> {
        let w = Window::new(capacity);
        w.reserve(0, capacity as u64);
        w
    }

    #[test]
    fn ordered_releases_only_the_head() {
        let w = window(8);
        let mut c = Collector::new(true, 8);
        let mut head = 0;
        c.insert(&w, done(2));
        c.insert(&w, done(1));
        assert_eq!(c.ready_len(&w, head, 3), 0);
        assert!(
            pop_all(&mut c, &w, &mut head).is_empty(),
            "1 and 2 wait for 0"
        );
        c.insert(&w, done(0));
        assert_eq!(
            c.ready_len(&w, head, 3),
            3,
            "the gap closed: 0, 1 and 2 are ready in a row"
        );
        let got = pop_all(&mut c, &w, &mut head);
        assert_eq!(got, vec![0, 1, 2]);
        c.insert(&w, done(3));
        assert_eq!(
            c.ready_len(&w, head, 4),
            1,
            "the next head is ready at once"
        );
        c.insert(&w, done(5));
        assert_eq!(c.ready_len(&w, head, 6), 1, "5 waits behind the gap at 4");
        assert_eq!(pop_all(&mut c, &w, &mut head), vec![3]);
        assert_eq!(
            c.ready_len(&w, head, 6),
            0,
            "taken, and the head moved: nothing ready"
        );
    }

    #[test]
    fn a_take_stops_at_max_and_counts_statuses() {
        let w = window(8);
        let mut c = Collector::new(true, 8);
        c.insert(&w, done(0));
        c.insert(&w, Finished::cancelled(1, 1));
        c.insert(&w, done(2));
        let mut taken = Taken::from(0);
        let mut got = Vec::new();
        let mut counts = Outcomes::default();
        // SAFETY: the test is the only taker, from the head.
        unsafe { take_in_order(&w, &mut taken, &mut counts, 2, |index, _| got.push(index)) };
        assert_eq!((taken.got, taken.next, got), (2, 2, vec![0, 1]));
        assert_eq!((counts.succeeded, counts.cancelled), (1, 1));
        assert_eq!(c.ready_len(&w, taken.next, 3), 1, "2 is still there");
    }

    #[test]
    fn ordered_slots_are_reused_after_the_head_passes() {
        let w = window(4);
        let mut c = Collector::new(true, 4);
        // Items 1..4 finish while 0 is slow: the window spans exactly 4 slots.
        for i in 1..4 {
            c.insert(&w, done(i));
        }
        c.insert(&w, done(0));
        let mut head = 0;
        assert_eq!(pop_all(&mut c, &w, &mut head), vec![0, 1, 2, 3]);
        // Items 4..8 take the same four slots.
        for i in (4..8).rev() {
            c.insert(&w, done(i));
        }
        let got = pop_all(&mut c, &w, &mut head);
        assert_eq!(got, vec![4, 5, 6, 7]);
    }

    #[test]
    fn the_scan_stops_at_the_items_in_flight() {
        // Every slot full: the scan must not wrap round to the head again.
        let w = window(4);
        let mut c = Collector::new(true, 4);
        for i in 0..4 {
            c.insert(&w, done(i));
        }
        assert_eq!(c.ready_len(&w, 0, 4), 4);
    }

    #[test]
    fn unordered_is_fifo_of_completion() {
        let w = Window::new(1);
        let mut c = Collector::new(false, 4);
        for i in [3, 0, 2] {
            c.insert(&w, done(i));
        }
        let got = pop_all(&mut c, &w, &mut 0);
        assert_eq!(got, vec![3, 0, 2]);
    }

    #[test]
    fn take_all_returns_every_stored_result_including_gaps() {
        let w = window(8);
        let mut c = Collector::new(true, 8);
        c.insert(&w, done(1));
        c.insert(&w, Finished::cancelled(3, 3));
        let all = c.take_all(&w, 0, 4);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].status, ItemStatus::Cancelled);
        assert_eq!(c.ready_len(&w, 4, 4), 0);
    }
}
