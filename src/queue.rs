//! The work queue: accepted items no worker has taken yet, oldest first. It lives behind
//! the pool's state lock.
//!
//! A worker takes a task's worth at a time (up to 1024 items). Moving them one by one out
//! of a `VecDeque` cost about 36 instructions per item, more than a cheap item's own work,
//! so the items are held as `ManuallyDrop` and a take copies them out in at most two
//! blocks (the ring's two halves), then drops the copied-from places, which is free.

use std::collections::VecDeque;
use std::mem::ManuallyDrop;

pub(crate) struct WorkQueue<T> {
    /// Each element owns its item until it is copied out by `take_front` (which then only
    /// forgets it) or moved out by `take_all` or `drop`.
    items: VecDeque<ManuallyDrop<T>>,
}

impl<T> WorkQueue<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        WorkQueue {
            items: VecDeque::with_capacity(capacity),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn push_back(&mut self, item: T) {
        self.items.push_back(ManuallyDrop::new(item));
    }

    /// Append every item of `items`, in order. Room for all of them is made first, before
    /// the first is pulled, so allocation (the one step that can fail) never leaves an
    /// item taken from its source and not stored; the fill is then one pass with no
    /// capacity check per item.
    pub(crate) fn extend(&mut self, items: impl ExactSizeIterator<Item = T>) {
        self.items.reserve(items.len());
        self.items.extend(items.map(ManuallyDrop::new));
    }

    /// Move the `n` oldest items (`n <= len`) to the end of `out`, oldest first.
    pub(crate) fn take_front(&mut self, n: usize, out: &mut Vec<T>) {
        assert!(n <= self.items.len(), "took more than is queued");
        let (front, back) = self.items.as_slices();
        let from_front = n.min(front.len());
        out.reserve(n);
        let at = out.len();
        // SAFETY: `out` has room for `n` more (reserved above), and the sources hold
        // `n` initialised items between them (`n <= len`). `ManuallyDrop<T>` has the
        // layout of `T`. Sources and destination are distinct allocations.
        unsafe {
            let dst = out.as_mut_ptr().add(at);
            std::ptr::copy_nonoverlapping(front.as_ptr().cast::<T>(), dst, from_front);
            std::ptr::copy_nonoverlapping(
                back.as_ptr().cast::<T>(),
                dst.add(from_front),
                n - from_front,
            );
            // The `n` items copied in are initialised now.
            out.set_len(at + n);
        }
        // The copied-from places no longer own their items: dropping a `ManuallyDrop`
        // does nothing, so draining them only moves the queue's head.
        self.items.drain(..n);
    }

    /// Remove every queued item, oldest first. Items the iterator does not yield are
    /// dropped with it.
    pub(crate) fn take_all(&mut self) -> TakeAll<T> {
        TakeAll(std::mem::take(&mut self.items).into_iter())
    }
}

impl<T> Drop for WorkQueue<T> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

/// The items of a queue emptied by `take_all`.
pub(crate) struct TakeAll<T>(std::collections::vec_deque::IntoIter<ManuallyDrop<T>>);

impl<T> Iterator for TakeAll<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.next().map(ManuallyDrop::into_inner)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<T> Drop for TakeAll<T> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Items that count their drops, so a take that copied without forgetting (a double
    /// drop) or forgot without copying (a leak) shows.
    fn counted(n: usize, drops: &Rc<()>) -> Vec<Rc<()>> {
        (0..n).map(|_| Rc::clone(drops)).collect()
    }

    #[test]
    fn takes_come_out_oldest_first_across_the_ring_halves() {
        let mut q = WorkQueue::with_capacity(4);
        let mut out = Vec::new();
        for round in 0..5u64 {
            // Push past the capacity so the ring wraps and `as_slices` has two halves.
            for k in 0..7 {
                q.push_back(round * 10 + k);
            }
            q.take_front(3, &mut out);
            q.take_front(4, &mut out);
        }
        let expected: Vec<u64> = (0..5u64)
            .flat_map(|r| (0..7).map(move |k| r * 10 + k))
            .collect();
        assert_eq!(out, expected);
        assert!(q.is_empty());
    }

    #[test]
    fn every_item_is_dropped_once_whichever_way_it_leaves() {
        let drops = Rc::new(());
        {
            let mut q = WorkQueue::with_capacity(2);
            let mut out = Vec::new();
            for item in counted(9, &drops) {
                q.push_back(item);
            }
            q.take_front(4, &mut out);
            assert_eq!(out.len(), 4);
            assert_eq!(Rc::strong_count(&drops), 10);
            drop(out);
            assert_eq!(Rc::strong_count(&drops), 6);
            let rest: Vec<_> = q.take_all().take(2).collect();
            assert_eq!(rest.len(), 2);
            // `take_all` took the whole queue: the three it did not yield were dropped
            // with its iterator.
            assert_eq!(Rc::strong_count(&drops), 3);
            drop(rest);
            for item in counted(3, &drops) {
                q.push_back(item);
            }
            assert_eq!(q.len(), 3);
        }
        // Dropping the queue drops what it still holds.
        assert_eq!(Rc::strong_count(&drops), 1);
    }
}
