//! The ordered pool's reorder buffer: a ring of slots indexed by sequence number, which a
//! worker fills in place, without the state lock, the moment an item finishes.
//!
//! Slot `i mod len` belongs to item `i` from admission until a consumer takes its outcome.
//! Admission never lets more than `capacity` items be in flight and `len` is at least
//! `capacity`, so two live items never share a slot. The owner of an index (the worker
//! that took it, or whoever cancels it under the state lock) writes the slot once and
//! then marks it full (release); a consumer, under the state lock, sees it full (acquire),
//! reads it and marks it empty. The slot is reused only after the index is delivered and
//! a new one admitted, both under the state lock, which orders the read before the reuse.
//!
//! Before, finished outcomes went to a per-worker outbox and were moved into a separate
//! window under the lock: two extra copies per item, and a critical section as long as a
//! round. Here the data never moves until it is handed back.
//!
//! Large windows (up to 2^30 items) must not cost their whole size up front, so the ring
//! is a table of segments, each allocated under the state lock the first time admission
//! reaches it, and never moved afterwards.

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::sync::{AtomicBool, RaceCell};

/// Slots per segment, at least (a whole small ring is one segment).
const MIN_SEGMENT: usize = 1024;
/// Most segments: large rings use larger segments instead of a larger table.
const MAX_SEGMENTS: usize = 1024;

struct Slot<T> {
    full: AtomicBool,
    value: RaceCell<MaybeUninit<T>>,
}

/// A run of slots that never moves once allocated.
type Segment<T> = Box<[Slot<T>]>;

pub(crate) struct Ring<T> {
    segments: Box<[OnceLock<Segment<T>>]>,
    /// `len - 1`; `len` is a power of two.
    mask: u64,
    seg_bits: u32,
}

// SAFETY: values move between threads (`T: Send`). A slot's value is accessed only by
// the one owner of its index (see the module docs): the writer before its release store
// of `full`, the taker after its acquire load of it, and never both at once.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: owning the ring owns the values in it; `T: Send` lets them move with it.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    /// A ring for at most `capacity` items in flight.
    pub(crate) fn new(capacity: usize) -> Self {
        let len = capacity.max(1).next_power_of_two();
        let seg_len = (len / MAX_SEGMENTS).max(MIN_SEGMENT).min(len);
        Ring {
            segments: (0..len / seg_len).map(|_| OnceLock::new()).collect(),
            mask: len as u64 - 1,
            seg_bits: seg_len.trailing_zeros(),
        }
    }

    /// Make sure the slots of indices `first .. first + count` exist. Called under the
    /// state lock when those indices are given out, so anyone who later learns one of
    /// them (through the lock) finds its segment.
    pub(crate) fn reserve(&self, first: u64, count: u64) {
        if count == 0 {
            return;
        }
        let len = self.mask + 1;
        let seg_len = 1u64 << self.seg_bits;
        // Every segment the range touches, at most all of them once.
        let mut at = first;
        let end = first + count.min(len);
        while at < end {
            let seg = ((at & self.mask) >> self.seg_bits) as usize;
            self.segments[seg].get_or_init(|| {
                (0..seg_len)
                    .map(|_| Slot {
                        full: AtomicBool::new(false),
                        value: RaceCell::new(MaybeUninit::uninit()),
                    })
                    .collect()
            });
            at = (at | (seg_len - 1)) + 1;
        }
    }

    /// The slot of `index`, if admission ever reached its segment.
    fn try_slot(&self, index: u64) -> Option<&Slot<T>> {
        let pos = index & self.mask;
        let seg = self.segments[(pos >> self.seg_bits) as usize].get()?;
        Some(&seg[(pos & ((1u64 << self.seg_bits) - 1)) as usize])
    }

    fn slot(&self, index: u64) -> &Slot<T> {
        self.try_slot(index)
            .expect("admission reserved this index's segment")
    }

    /// Store the outcome of `index`.
    ///
    /// # Safety
    /// The caller owns `index`: it was admitted (and `reserve`d), has no outcome yet, and
    /// no other thread stores one for it.
    pub(crate) unsafe fn put(&self, index: u64, value: T) {
        let slot = self.slot(index);
        debug_assert!(
            !slot.full.load(Ordering::Relaxed),
            "index {index} stored twice"
        );
        slot.value.with_mut(|v| {
            // SAFETY: the caller owns the index; the slot's previous value was taken
            // before this index could be admitted (module docs), so nobody reads it.
            unsafe { v.write(MaybeUninit::new(value)) };
        });
        slot.full.store(true, Ordering::Release);
    }

    /// Whether `index`'s outcome is stored. False for an index not in flight: its slot
    /// was emptied when the outcome before it was taken, or never allocated.
    pub(crate) fn is_full(&self, index: u64) -> bool {
        self.try_slot(index)
            .is_some_and(|slot| slot.full.load(Ordering::Acquire))
    }

    /// Take the outcome of `index`.
    ///
    /// # Safety
    /// `is_full(index)` was seen true, the index is in flight, and the caller holds the
    /// state lock (so no other taker runs).
    pub(crate) unsafe fn take(&self, index: u64) -> T {
        let slot = self.slot(index);
        let value = slot.value.with_mut(|v| {
            // SAFETY: full, so written and not yet taken; takers are serialised.
            unsafe { (*v).assume_init_read() }
        });
        slot.full.store(false, Ordering::Relaxed);
        value
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        for seg in self.segments.iter_mut() {
            if let Some(seg) = seg.get_mut() {
                for slot in seg.iter_mut() {
                    if slot.full.load(Ordering::Relaxed) {
                        // SAFETY: `&mut self`: nobody else accesses the slot; full means
                        // a value was written and not taken.
                        slot.value.with_mut(|v| unsafe { (*v).assume_init_drop() });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_wrap_by_index_and_segments_appear_on_reserve() {
        let r: Ring<u64> = Ring::new(3000);
        assert_eq!(r.mask, 4095);
        assert_eq!(r.segments.len(), 4);
        r.reserve(1000, 24);
        assert!(r.segments[0].get().is_some() && r.segments[1].get().is_none());
        // SAFETY: the test owns every index.
        unsafe {
            r.put(1000, 7);
            r.put(1023, 8);
        }
        r.reserve(4095, 2); // the last slot, then the first again
        assert!(r.segments[3].get().is_some());
        assert!(r.is_full(1000) && !r.is_full(1001));
        // SAFETY: seen full, only taker.
        assert_eq!(unsafe { r.take(1000) }, 7);
        assert!(!r.is_full(1000));
        // SAFETY: index 1000 + 4096 maps to the slot just emptied.
        unsafe { r.put(1000 + 4096, 9) };
        // SAFETY: just stored, only taker.
        assert_eq!(unsafe { r.take(5096) }, 9);
    }

    #[test]
    fn huge_rings_use_few_large_segments() {
        let r: Ring<u8> = Ring::new(1 << 30);
        assert_eq!(r.segments.len(), MAX_SEGMENTS);
        assert!(r.segments.iter().all(|s| s.get().is_none()));
        let small: Ring<u8> = Ring::new(10);
        assert_eq!(small.segments.len(), 1);
        assert_eq!(small.seg_bits, 4);
    }

    #[test]
    fn values_left_at_drop_are_dropped() {
        let item = std::sync::Arc::new(());
        let r = Ring::new(4);
        r.reserve(0, 1);
        // SAFETY: the test owns index 0.
        unsafe { r.put(0, item.clone()) };
        drop(r);
        assert_eq!(std::sync::Arc::strong_count(&item), 1);
    }
}
