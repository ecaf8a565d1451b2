//! The collector: where finished items wait until a consumer takes them.
//!
//! Ordered mode keeps a window indexed by sequence number: slot `i - head` holds item `i`.
//! Every item in the window is in flight, and admission never lets more than `capacity`
//! items be in flight, so the window never spans more than `capacity` slots: a slow head
//! item stalls admission upstream instead of growing this buffer. Unordered mode is a
//! plain FIFO of finished items. Both are only touched under the pool's state lock.

use std::collections::VecDeque;

use crate::handler::Finished;

pub(crate) enum Collector<I, O> {
    Ordered {
        /// Index of the next item to hand back.
        head: u64,
        /// `window[k]` holds item `head + k` once it has finished.
        window: VecDeque<Option<Finished<I, O>>>,
        /// How many slots from the front are filled: what `pop_ready` can hand out in a
        /// row. Each slot is scanned once, when the run reaches it.
        ready: usize,
    },
    Unordered(VecDeque<Finished<I, O>>),
}

impl<I, O> Collector<I, O> {
    pub(crate) fn new(ordered: bool, capacity: usize) -> Self {
        // Reserve a modest start; the window grows to at most `capacity` on its own.
        let start = capacity.min(1024);
        if ordered {
            Collector::Ordered {
                head: 0,
                window: VecDeque::with_capacity(start),
                ready: 0,
            }
        } else {
            Collector::Unordered(VecDeque::with_capacity(start))
        }
    }

    /// Store a finished item. Returns true when it made a result ready to hand back.
    pub(crate) fn insert(&mut self, outcome: Finished<I, O>) -> bool {
        match self {
            Collector::Ordered {
                head,
                window,
                ready,
            } => {
                let pos = usize::try_from(outcome.index - *head)
                    .expect("an item in flight lies inside the window");
                if pos >= window.len() {
                    // Usually pos == len: a worker's round arrives in index order.
                    window.resize_with(pos, || None);
                    window.push_back(Some(outcome));
                } else {
                    debug_assert!(
                        window[pos].is_none(),
                        "index {} stored twice",
                        outcome.index
                    );
                    window[pos] = Some(outcome);
                }
                if pos != *ready {
                    return false;
                }
                while *ready < window.len() && window[*ready].is_some() {
                    *ready += 1;
                }
                true
            }
            Collector::Unordered(queue) => {
                queue.push_back(outcome);
                true
            }
        }
    }

    /// Take the next result a consumer may have, if it is ready.
    pub(crate) fn pop_ready(&mut self) -> Option<Finished<I, O>> {
        match self {
            Collector::Ordered {
                head,
                window,
                ready,
            } => {
                if *ready == 0 {
                    return None;
                }
                *ready -= 1;
                *head += 1;
                window.pop_front().flatten()
            }
            Collector::Unordered(queue) => queue.pop_front(),
        }
    }

    /// How many results `pop_ready` would return in a row.
    pub(crate) fn ready_len(&self) -> usize {
        match self {
            Collector::Ordered { ready, .. } => *ready,
            Collector::Unordered(queue) => queue.len(),
        }
    }

    /// Remove every stored result, ready or not (used when the pool is freed).
    pub(crate) fn take_all(&mut self) -> Vec<Finished<I, O>> {
        match self {
            Collector::Ordered {
                head,
                window,
                ready,
            } => {
                *ready = 0;
                *head += window.len() as u64;
                window.drain(..).flatten().collect()
            }
            Collector::Unordered(queue) => queue.drain(..).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ItemStatus;

    fn done(index: u64) -> Finished<u64, u64> {
        Finished::ran(index, index, 0, Ok(index * 10))
    }

    #[test]
    fn ordered_releases_only_the_head() {
        let mut c = Collector::new(true, 8);
        assert!(!c.insert(done(2)));
        assert!(!c.insert(done(1)));
        assert_eq!(c.ready_len(), 0);
        assert!(c.pop_ready().is_none());
        assert_eq!(c.ready_len(), 0);
        assert!(c.insert(done(0)));
        assert_eq!(
            c.ready_len(),
            3,
            "the gap closed: 0, 1 and 2 are ready in a row"
        );
        let got: Vec<u64> = std::iter::from_fn(|| c.pop_ready())
            .map(|o| o.index)
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(c.insert(done(3)), "the next head is ready at once");
        assert!(!c.insert(done(5)));
        assert_eq!(c.ready_len(), 1, "5 waits behind the gap at 4");
        assert!(c.pop_ready().is_some());
        assert!(c.pop_ready().is_none());
    }

    #[test]
    fn ordered_window_never_exceeds_the_span_in_flight() {
        let mut c = Collector::new(true, 4);
        // Items 1..4 finish while 0 is slow: the window spans exactly 4 slots.
        for i in 1..4 {
            c.insert(done(i));
        }
        if let Collector::Ordered { window, .. } = &c {
            assert_eq!(window.len(), 4);
        }
        c.insert(done(0));
        assert_eq!(std::iter::from_fn(|| c.pop_ready()).count(), 4);
    }

    #[test]
    fn unordered_is_fifo_of_completion() {
        let mut c = Collector::new(false, 4);
        for i in [3, 0, 2] {
            assert!(c.insert(done(i)));
        }
        let got: Vec<u64> = std::iter::from_fn(|| c.pop_ready())
            .map(|o| o.index)
            .collect();
        assert_eq!(got, vec![3, 0, 2]);
    }

    #[test]
    fn take_all_returns_every_stored_result_including_gaps() {
        let mut c = Collector::new(true, 8);
        c.insert(done(1));
        c.insert(Finished::cancelled(3, 3));
        let all = c.take_all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].status(), ItemStatus::Cancelled);
        assert_eq!(c.ready_len(), 0);
    }
}
