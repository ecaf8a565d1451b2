//! The ordered pool's reorder buffer: a ring of slots indexed by sequence number, which a
//! worker fills in place, without the state lock, the moment an item finishes.
//!
//! Slot `i mod len` belongs to item `i` from admission until a consumer takes its outcome.
//! Admission never lets more than `capacity` items be in flight and `len` is at least
//! `capacity`, so two live items never share a slot. The owner of an index (the worker
//! that took it, or whoever cancels it under the state lock) writes the slot once and
//! then marks it full (release); a consumer (the only taker: it holds the pool's taker
//! lock) sees it full (acquire), reads it, marks it empty, and then publishes the
//! delivered count (release). The slot is reused only after that, when admission has read
//! the count (acquire) and given out a new index, which orders the read before the reuse.
//!
//! Before, finished outcomes went to a per-worker outbox and were moved into a separate
//! window under the lock: two extra copies per item, and a critical section as long as a
//! round. Here the data never moves until it is handed back.
//!
//! Large windows (up to 2^30 items) must not cost their whole size up front, so the ring
//! is a table of segments, each allocated under the state lock the first time admission
//! reaches it, and never moved afterwards. Segments double in length (1024 slots, then
//! 2048, 4096 …), so a pool whose window is mostly empty holds about twice the slots it
//! has used, whatever its capacity.

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::sync::{AtomicBool, AtomicU64, RaceCell};

/// Slots in the first segment (a small ring is one segment); segment `k` has twice
/// as many as segment `k - 1`.
const FIRST_SEGMENT: usize = 1024;

struct Slot<T> {
    full: AtomicBool,
    value: RaceCell<MaybeUninit<T>>,
}

/// How many bytes a slot holding a `T` takes (the tests check the layout).
#[cfg(test)]
pub(crate) fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// Where a writer of consecutive indices is in a ring: the slots from index `next` to
/// the end of their segment, or none yet.
pub(crate) struct Cursor<'a, T> {
    next: u64,
    slots: &'a [Slot<T>],
}

impl<T> Default for Cursor<'_, T> {
    fn default() -> Self {
        Cursor {
            next: 0,
            slots: &[],
        }
    }
}

/// A run of slots that never moves once allocated.
type Segment<T> = Box<[Slot<T>]>;

pub(crate) struct Ring<T> {
    segments: Box<[OnceLock<Segment<T>>]>,
    /// `len - 1`; `len` is a power of two.
    mask: u64,
    /// log2 of the first segment's length.
    first_bits: u32,
    /// Positions `0 .. reserved` have their segments (`len` once every one has). Indices
    /// are given out in order, so admission rarely gets past this one comparison, and a
    /// position past it has no slot yet.
    reserved: AtomicU64,
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
        let first = FIRST_SEGMENT.min(len);
        // Segments 0..=k cover `first * (2^(k+1) - 1)` slots; the last is cut to fit.
        let segments = (len / first).trailing_zeros() as usize + 1;
        Ring {
            segments: (0..segments).map(|_| OnceLock::new()).collect(),
            mask: len as u64 - 1,
            first_bits: first.trailing_zeros(),
            reserved: AtomicU64::new(0),
        }
    }

    /// The segment holding ring position `pos`, and that segment's first position.
    #[inline]
    fn locate(&self, pos: u64) -> (usize, u64) {
        if pos >> self.first_bits == 0 {
            // The whole ring of a default-sized pool: no arithmetic on the hot path.
            return (0, 0);
        }
        let k = 63 - ((pos >> self.first_bits) + 1).leading_zeros();
        (k as usize, ((1u64 << k) - 1) << self.first_bits)
    }

    /// The length of segment `k`, which starts at `start`.
    fn segment_len(&self, k: usize, start: u64) -> u64 {
        (1u64 << (k as u32 + self.first_bits)).min(self.mask + 1 - start)
    }

    /// Make sure the slots of indices `first .. first + count` exist. Called under the
    /// state lock when those indices are given out (in order, so each range starts
    /// within the reserved prefix and extends it).
    #[inline]
    pub(crate) fn reserve(&self, first: u64, count: u64) {
        // Only under the state lock: relaxed is enough.
        let reserved = self.reserved.load(Ordering::Relaxed);
        if count == 0 || first + count <= reserved || reserved == self.mask + 1 {
            return;
        }
        self.reserve_segments(first, count, reserved);
    }

    /// `reserve` past the slots that exist so far: allocate the segments it reaches.
    #[cold]
    fn reserve_segments(&self, first: u64, count: u64, reserved: u64) {
        let len = self.mask + 1;
        // Every segment the range touches, at most all of them once.
        let mut at = first;
        let end = first + count.min(len);
        while at < end {
            let pos = at & self.mask;
            let (k, start) = self.locate(pos);
            let seg_len = self.segment_len(k, start);
            self.segments[k].get_or_init(|| {
                (0..seg_len)
                    .map(|_| Slot {
                        full: AtomicBool::new(false),
                        value: RaceCell::new(MaybeUninit::uninit()),
                    })
                    .collect()
            });
            at += start + seg_len - pos;
        }
        debug_assert!(first <= reserved, "indices are reserved in order");
        // Release: a consumer reads slots holding no state lock (`try_slot`).
        self.reserved
            .store((first + count).min(len), Ordering::Release);
    }

    /// The slot of `index`, if admission ever reached its segment.
    fn try_slot(&self, index: u64) -> Option<&Slot<T>> {
        let pos = index & self.mask;
        // Acquire, paired with `reserve`: a consumer may read outside the state lock, and
        // must find the slots of a segment it sees initialised. (The segment's own
        // `OnceLock` orders that too, but loom cannot see it.)
        if pos >= self.reserved.load(Ordering::Acquire) {
            return None;
        }
        let (k, start) = self.locate(pos);
        let seg = self.segments[k].get()?;
        Some(&seg[(pos - start) as usize])
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
        // SAFETY: the caller's promise, passed on.
        unsafe { Self::put_into(self.slot(index), index, value) }
    }

    /// `put` through a writer's `cursor`: a run of consecutive indices (a worker's round)
    /// looks its segment up once, not once per slot.
    ///
    /// # Safety
    /// As for `put`.
    #[inline]
    pub(crate) unsafe fn put_at<'a>(&'a self, cursor: &mut Cursor<'a, T>, index: u64, value: T) {
        if cursor.next != index || cursor.slots.is_empty() {
            cursor.slots = self.run_from(index);
            cursor.next = index;
        }
        let (slot, rest) = cursor
            .slots
            .split_first()
            .expect("admission reserved this index's segment");
        cursor.slots = rest;
        cursor.next = index + 1;
        // SAFETY: the caller's promise, passed on; `slot` is `index`'s (`run_from`).
        unsafe { Self::put_into(slot, index, value) }
    }

    /// # Safety
    /// `slot` is `index`'s, and the caller owns `index` (see `put`).
    #[inline]
    unsafe fn put_into(slot: &Slot<T>, index: u64, value: T) {
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

    /// Whether `index`'s outcome is stored. False for an index not in flight: its slot was
    /// emptied when the outcome of the index `len` before it was taken, or never allocated.
    pub(crate) fn is_full(&self, index: u64) -> bool {
        self.try_slot(index)
            .is_some_and(|slot| slot.full.load(Ordering::Acquire))
    }

    /// The slots of `index` and the indices after it, up to the end of its segment or of
    /// the slots that exist so far: a run of consecutive indices walked with one lookup.
    fn run_from(&self, index: u64) -> &[Slot<T>] {
        let pos = index & self.mask;
        // Acquire: as in `try_slot`.
        let reserved = self.reserved.load(Ordering::Acquire);
        if pos >= reserved {
            return &[];
        }
        let (k, start) = self.locate(pos);
        let Some(seg) = self.segments[k].get() else {
            return &[];
        };
        let end = usize::try_from(reserved - start).map_or(seg.len(), |e| e.min(seg.len()));
        &seg[(pos - start) as usize..end]
    }

    /// How many outcomes are stored in a row from `index` on, counting at most `limit`:
    /// `is_full` over a run, with one lookup per segment instead of one per slot (a
    /// fifth of a worker's instructions with cheap items went to that lookup).
    pub(crate) fn count_full(&self, index: u64, limit: u64) -> u64 {
        // Acquire: pairs with the writer's release, as in `is_full`.
        self.walk(index, limit, |_, slot| slot.full.load(Ordering::Acquire))
    }

    /// Hand the slots of `index` and the indices after it, at most `limit`, to `visit` in
    /// order, a segment's run at a time, until `visit` returns false or the slots that
    /// exist so far end. Returns how many `visit` accepted.
    #[inline]
    fn walk(&self, index: u64, limit: u64, mut visit: impl FnMut(u64, &Slot<T>) -> bool) -> u64 {
        let mut n = 0;
        while n < limit {
            let run = self.run_from(index + n);
            let run = &run[..run
                .len()
                .min(usize::try_from(limit - n).unwrap_or(usize::MAX))];
            if run.is_empty() {
                break;
            }
            for slot in run {
                if !visit(index + n, slot) {
                    return n;
                }
                n += 1;
            }
        }
        n
    }

    /// Take the outcome of `index`.
    ///
    /// # Safety
    /// `is_full(index)` was seen true, the index is in flight, and the caller is the only
    /// taker (see the module docs).
    pub(crate) unsafe fn take(&self, index: u64) -> T {
        // SAFETY: the caller's promise, passed on.
        unsafe { Self::take_from(self.slot(index)) }
    }

    /// Take the outcome of `index` if it is stored: `is_full` and `take` with one lookup
    /// of the slot (a consumer handing outcomes back one by one does this per call).
    ///
    /// # Safety
    /// The index is in flight or past the last one admitted, and the caller is the only
    /// taker (see the module docs).
    pub(crate) unsafe fn take_if_full(&self, index: u64) -> Option<T> {
        let slot = self.try_slot(index)?;
        // Acquire: pairs with the writer's release, as in `is_full`.
        if !slot.full.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: seen full, and the caller's promise covers the rest.
        Some(unsafe { Self::take_from(slot) })
    }

    /// Take the outcomes stored in a row from `index` on, at most `max`, handing each to
    /// `f` with its index; returns how many. One lookup per segment, not per slot: walking
    /// runs took `pmap_next_many` from 76 to 42 instructions per trivial item.
    ///
    /// # Safety
    /// Each index it reaches is in flight or past the last one admitted, and the caller
    /// is the only taker (see the module docs).
    pub(crate) unsafe fn take_while_full(
        &self,
        index: u64,
        max: usize,
        mut f: impl FnMut(u64, T),
    ) -> usize {
        let limit = u64::try_from(max).unwrap_or(u64::MAX);
        let taken = self.walk(index, limit, |at, slot| {
            // Acquire: pairs with the writer's release, as in `is_full`.
            if !slot.full.load(Ordering::Acquire) {
                return false;
            }
            // SAFETY: seen full, and the caller's promise covers the rest.
            f(at, unsafe { Self::take_from(slot) });
            true
        });
        // At most `max`, which is a `usize`.
        taken as usize
    }

    /// # Safety
    /// `slot` is full, its index in flight, and the caller its only taker.
    unsafe fn take_from(slot: &Slot<T>) -> T {
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

    fn allocated(r: &Ring<u64>) -> Vec<usize> {
        r.segments
            .iter()
            .map(|s| s.get().map_or(0, |seg| seg.len()))
            .collect()
    }

    #[test]
    fn slots_wrap_by_index_and_segments_appear_on_reserve() {
        let r: Ring<u64> = Ring::new(3000);
        assert_eq!(r.mask, 4095);
        assert_eq!(
            allocated(&r),
            vec![0, 0, 0],
            "1024 + 2048 + 1024 (cut to fit)"
        );
        r.reserve(0, 1001);
        assert_eq!(allocated(&r), vec![1024, 0, 0]);
        // SAFETY: the test owns every index.
        unsafe { r.put(1000, 7) };
        assert!(r.is_full(1000) && !r.is_full(999));
        assert!(
            !r.is_full(1001),
            "its segment exists, but it is not reserved yet: not full"
        );
        r.reserve(1001, 2000);
        assert_eq!(allocated(&r), vec![1024, 2048, 0]);
        assert!(!r.is_full(3500), "never reserved: no segment, not full");
        // SAFETY: the test owns every index.
        unsafe { r.put(3000, 8) };
        r.reserve(3001, 1097); // the rest of the ring, then the first two slots again
        assert_eq!(allocated(&r), vec![1024, 2048, 1024]);
        // SAFETY: seen full, only taker.
        assert_eq!(unsafe { r.take(1000) }, 7);
        assert!(!r.is_full(1000));
        // SAFETY: index 1000 + 4096 maps to the slot just emptied.
        unsafe { r.put(1000 + 4096, 9) };
        // SAFETY: just stored, only taker.
        assert_eq!(unsafe { r.take(5096) }, 9);
        // SAFETY: stored above, only taker.
        assert_eq!(unsafe { r.take(3000) }, 8);
    }

    #[test]
    fn every_position_has_one_slot() {
        for capacity in [1, 5, 1024, 1025, 5000, 1 << 16] {
            let r: Ring<u64> = Ring::new(capacity);
            let len = r.mask + 1;
            r.reserve(0, len);
            assert_eq!(
                allocated(&r).iter().sum::<usize>() as u64,
                len,
                "capacity {capacity}"
            );
            for pos in 0..len {
                // SAFETY: the test owns every index, each stored once.
                unsafe { r.put(pos, pos) };
            }
            for pos in 0..len {
                // SAFETY: stored above, only taker.
                assert_eq!(unsafe { r.take(pos) }, pos, "capacity {capacity}");
            }
        }
    }

    /// `count_full` agrees with `is_full` slot by slot, across segment boundaries, the
    /// ring's wrap, the end of what is reserved, and its limit.
    #[test]
    fn count_full_counts_the_stored_run() {
        let r: Ring<u64> = Ring::new(4096);
        r.reserve(0, 3100);
        let slow = |from: u64, limit: u64| {
            (from..from + limit).take_while(|&i| r.is_full(i)).count() as u64
        };
        // Stored: 1000..3050 (across the 1024 and 3072 segment boundaries), and 3060.
        for i in (1000..3050).chain([3060]) {
            // SAFETY: the test owns every index, each stored once.
            unsafe { r.put(i, i) };
        }
        for (from, limit) in [
            (1000, 5000),
            (1000, 24),
            (1023, 2),
            (1500, 2000),
            (3049, 9),
            (3050, 100),
            (3060, 100),
            (999, 10),
        ] {
            assert_eq!(
                r.count_full(from, limit),
                slow(from, limit),
                "from {from}, limit {limit}"
            );
        }
        assert_eq!(r.count_full(1000, 5000), 2050);
        assert_eq!(r.count_full(3060, 100), 1, "stops where reservation ends");
        // Wrap: the rest of the ring and the first slots again, as indices 4096 + k.
        r.reserve(3100, 1000);
        for i in (3050..3060).chain(3061..4096 + 4) {
            // SAFETY: as above; 4096.. map to slots 0.. , never stored before.
            unsafe { r.put(i, i) };
        }
        assert_eq!(
            r.count_full(1000, 10_000),
            3100,
            "1000 .. 4096 + 4, across the wrap"
        );
        assert_eq!(r.count_full(4090, 10), 10);
    }

    /// `take_while_full` takes the stored run in order, as `take` slot by slot would:
    /// across segment boundaries and the ring's wrap, up to its limit, never past a gap.
    #[test]
    fn take_while_full_takes_the_stored_run_in_order() {
        let r: Ring<u64> = Ring::new(4096);
        r.reserve(0, 4096);
        // Stored: 1000 .. 4096 + 10 (both segment boundaries and the wrap), and past the
        // gap at 4096 + 10, 4096 + 11.
        for i in (1000..4096 + 10).chain([4096 + 11]) {
            // SAFETY: the test owns every index, each stored once.
            unsafe { r.put(i, i * 10) };
        }
        let mut got = Vec::new();
        let mut take = |from: u64, max: usize| {
            got.clear();
            // SAFETY: the only taker, from indices stored above or past them.
            let n = unsafe { r.take_while_full(from, max, |i, v| got.push((i, v))) };
            assert_eq!(n, got.len());
            got.clone()
        };
        let expect = |range: std::ops::Range<u64>| range.map(|i| (i, i * 10)).collect::<Vec<_>>();
        assert_eq!(take(1000, 24), expect(1000..1024), "up to the limit");
        assert_eq!(
            take(1024, usize::MAX),
            expect(1024..4096 + 10),
            "up to the gap"
        );
        assert_eq!(take(4096 + 10, 5), vec![], "the first one is missing");
        assert!(
            !r.is_full(1000) && !r.is_full(4096 + 9),
            "taken slots are empty"
        );
        assert!(r.is_full(4096 + 11), "past the gap, still stored");
    }

    /// Outcomes stored through a cursor land where `put` would put them: runs across
    /// segment boundaries and the wrap, jumps back and forth, and a run that outgrows the
    /// slots reserved when the cursor looked its segment up.
    #[test]
    fn a_cursor_stores_each_index_in_its_own_slot() {
        let r: Ring<u64> = Ring::new(4096);
        r.reserve(0, 1001);
        let mut cursor = Cursor::default();
        for i in [999, 1000] {
            // SAFETY: the test owns every index, each stored once.
            unsafe { r.put_at(&mut cursor, i, i) };
        }
        r.reserve(1001, 4096 - 1001);
        let order = (1001..1030)
            .chain(3070..3074)
            .chain(5..7)
            .chain(4090..4096 + 3)
            .chain(7..9);
        for i in order.clone() {
            // SAFETY: as above.
            unsafe { r.put_at(&mut cursor, i, i) };
        }
        for i in [999, 1000].into_iter().chain(order) {
            assert!(r.is_full(i), "index {i}");
            // SAFETY: stored above, only taker.
            assert_eq!(unsafe { r.take(i) }, i);
        }
        assert_eq!(r.count_full(0, 4096), 0, "nothing was stored anywhere else");
    }

    #[test]
    fn huge_rings_allocate_what_is_used() {
        let r: Ring<u64> = Ring::new(1 << 30);
        assert_eq!(r.segments.len(), 21);
        r.reserve(0, 10);
        assert_eq!(allocated(&r).iter().sum::<usize>(), 1024);
        r.reserve(10, 5000);
        assert_eq!(allocated(&r).iter().sum::<usize>(), 1024 + 2048 + 4096);
        let small: Ring<u64> = Ring::new(10);
        assert_eq!(small.segments.len(), 1);
        small.reserve(0, 16);
        assert_eq!(allocated(&small), vec![16]);
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

    /// Each value is dropped once: by whoever took it, or by the ring if nobody did,
    /// whatever laps the slots went through.
    #[test]
    fn each_value_is_dropped_once_taken_or_not() {
        use std::cell::Cell;
        use std::rc::Rc;
        struct Counted(Rc<Cell<u32>>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops: Vec<Rc<Cell<u32>>> = (0..40).map(|_| Rc::new(Cell::new(0))).collect();
        let r = Ring::new(16);
        r.reserve(0, 16);
        let put = |i: u64| {
            // SAFETY: the test owns every index, each stored once, a lap after the last
            // value in its slot was taken.
            unsafe { r.put(i, Counted(drops[i as usize].clone())) }
        };
        (0..16).for_each(put);
        // SAFETY: the only taker, in index order (and below).
        assert_eq!(unsafe { r.take_while_full(0, 10, |_, v| drop(v)) }, 10);
        r.reserve(16, 10);
        (16..26).for_each(put);
        // SAFETY: as above.
        assert_eq!(unsafe { r.take_while_full(10, 12, |_, v| drop(v)) }, 12);
        // SAFETY: as above.
        assert_eq!(unsafe { r.take_if_full(22) }.map(drop), Some(()));
        // 23, 24 and 25 are left in the ring; 26 .. 40 were never stored.
        drop(r);
        let counts: Vec<u32> = drops.iter().map(|d| d.get()).collect();
        let expected: Vec<u32> = (0..40).map(|i| u32::from(i < 26)).collect();
        assert_eq!(counts, expected);
    }
}
