//! An outcome as the ordered window keeps it, laid out flat.
//!
//! A worker writes each outcome into its slot and a consumer reads it on another core,
//! so with cheap items the cache lines a slot spans are much of an item's cost. The
//! slot's position is its index, so the index is not stored, and the fate's fields sit
//! side by side instead of in nested enums: for pointer-sized items and outputs a slot
//! (this and its full flag) is 32 bytes, two to a line and never across two, where a slot
//! holding a [`Finished`] was 48.

use std::mem::{ManuallyDrop, MaybeUninit};

use crate::config::MAX_WORKERS;
use crate::handler::{Fate, NO_WORKER, Outcome};
use crate::status::ItemStatus;

// Every worker id fits the stored field.
const _: () = assert!(MAX_WORKERS <= u16::MAX as usize + 1);

#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    /// `item` and `output` are set.
    Ok,
    /// `item` is set; `code` is the work function's.
    Failed,
    /// `item` is set.
    Cancelled,
    /// Neither is set; `code` is the source's.
    SourceFailed,
}

pub(crate) struct Stored<I, O> {
    item: MaybeUninit<I>,
    output: MaybeUninit<O>,
    code: i32,
    worker: u16,
    kind: Kind,
}

impl<I, O> Stored<I, O> {
    /// The outcome of an item that ran: `new` for that fate, the one a worker stores per
    /// item, built without the `Fate`.
    #[inline]
    pub(crate) fn ran(item: I, result: Result<O, i32>, worker: u32) -> Self {
        let (output, code, kind) = match result {
            Ok(output) => (MaybeUninit::new(output), 0, Kind::Ok),
            Err(code) => (MaybeUninit::uninit(), code, Kind::Failed),
        };
        Stored {
            item: MaybeUninit::new(item),
            output,
            code,
            // Lossless: worker ids are below MAX_WORKERS (asserted above).
            worker: worker as u16,
            kind,
        }
    }

    pub(crate) fn new(fate: Fate<I, O>) -> Self {
        let (item, output, code, worker, kind) = match fate {
            Fate::Ran {
                item,
                result,
                worker,
            } => return Stored::ran(item, result, worker),
            Fate::Cancelled(item) => (
                MaybeUninit::new(item),
                MaybeUninit::uninit(),
                0,
                0,
                Kind::Cancelled,
            ),
            Fate::SourceFailed(code) => (
                MaybeUninit::uninit(),
                MaybeUninit::uninit(),
                code,
                0,
                Kind::SourceFailed,
            ),
        };
        Stored {
            item,
            output,
            code,
            // Lossless: worker ids are below MAX_WORKERS (asserted above).
            worker: worker as u16,
            kind,
        }
    }

    pub(crate) fn status(&self) -> ItemStatus {
        match self.kind {
            Kind::Ok => ItemStatus::Ok,
            Kind::Failed => ItemStatus::Failed,
            Kind::Cancelled => ItemStatus::Cancelled,
            Kind::SourceFailed => ItemStatus::SourceFailed,
        }
    }

    /// The outcome of item `index`, which this is, as a consumer receives it: straight to
    /// an [`Outcome`], without building the [`Fate`] between (`pmap_next` does this once
    /// per call).
    #[inline]
    pub(crate) fn into_outcome(self, index: u64) -> Outcome<I, O> {
        // The fields move out below; `Drop` must not drop them again.
        let this = ManuallyDrop::new(self);
        let worker = u32::from(this.worker);
        // SAFETY: `kind` says which fields `new` set, and each set field is read once,
        // from a value that is not dropped.
        let (item, value, status, error, worker) = unsafe {
            match this.kind {
                Kind::Ok => (
                    Some(this.item.assume_init_read()),
                    Some(this.output.assume_init_read()),
                    ItemStatus::Ok,
                    0,
                    worker,
                ),
                Kind::Failed => (
                    Some(this.item.assume_init_read()),
                    None,
                    ItemStatus::Failed,
                    this.code,
                    worker,
                ),
                Kind::Cancelled => (
                    Some(this.item.assume_init_read()),
                    None,
                    ItemStatus::Cancelled,
                    0,
                    NO_WORKER,
                ),
                Kind::SourceFailed => (None, None, ItemStatus::SourceFailed, this.code, NO_WORKER),
            }
        };
        Outcome {
            index,
            item,
            value,
            status,
            error,
            worker,
        }
    }
}

impl<I, O> Drop for Stored<I, O> {
    fn drop(&mut self) {
        // SAFETY: `kind` says which fields `new` set; they are dropped once, here
        // (`into_outcome` moves them out of a value that is never dropped).
        unsafe {
            match self.kind {
                Kind::Ok => {
                    self.item.assume_init_drop();
                    self.output.assume_init_drop();
                }
                Kind::Failed | Kind::Cancelled => self.item.assume_init_drop(),
                Kind::SourceFailed => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Finished;
    use std::rc::Rc;

    #[test]
    fn a_slot_of_pointer_sized_outcomes_is_half_a_cache_line() {
        type P = *mut u8;
        assert_eq!(std::mem::size_of::<Stored<P, P>>(), 24);
        assert_eq!(crate::ring::slot_size::<Stored<P, P>>(), 32);
    }

    #[test]
    fn every_fate_comes_back_as_it_went_in() {
        let back = |f: Finished<u8, u16>| {
            let index = f.index;
            Stored::new(f.fate).into_outcome(index)
        };
        let o = back(Finished::ran(7, 1, MAX_WORKERS as u32 - 1, Ok(10)));
        assert_eq!(
            (o.item, o.value, o.status, o.worker),
            (Some(1), Some(10), ItemStatus::Ok, MAX_WORKERS as u32 - 1)
        );
        assert_eq!(o.index, 7);
        let o = back(Finished::ran(8, 2, 3, Err(-5)));
        assert_eq!(
            (o.item, o.value, o.status, o.error, o.worker),
            (Some(2), None, ItemStatus::Failed, -5, 3)
        );
        let o = back(Finished::cancelled(9, 4));
        assert_eq!((o.item, o.status), (Some(4), ItemStatus::Cancelled));
        let o = back(Finished::source_failed(10, -2));
        assert_eq!(
            (o.item, o.status, o.error),
            (None, ItemStatus::SourceFailed, -2)
        );
        assert_eq!(o.index, 10);
    }

    /// The one-step conversion `pmap_next` uses says what the two steps say.
    #[test]
    fn into_outcome_matches_the_outcome_of_the_fate() {
        let fates = || {
            [
                Finished::<u8, u16>::ran(7, 1, MAX_WORKERS as u32 - 1, Ok(10)),
                Finished::ran(8, 2, 3, Err(-5)),
                Finished::cancelled(9, 4),
                Finished::source_failed(10, -2),
            ]
        };
        for (direct, two_steps) in fates().into_iter().zip(fates()) {
            let index = direct.index;
            let got = Stored::new(direct.fate).into_outcome(index);
            let want = Outcome::from(two_steps);
            let fields =
                |o: &Outcome<u8, u16>| (o.index, o.item, o.value, o.status, o.error, o.worker);
            assert_eq!(fields(&got), fields(&want), "index {index}");
        }
    }

    #[test]
    fn status_matches_the_fate() {
        for f in [
            Finished::<u8, u8>::ran(0, 1, 0, Ok(2)),
            Finished::ran(0, 1, 0, Err(3)),
            Finished::cancelled(0, 1),
            Finished::source_failed(0, 4),
        ] {
            let want = f.status();
            assert_eq!(Stored::new(f.fate).status(), want);
        }
    }

    /// Items and outputs are dropped exactly once, whether the stored outcome is taken
    /// back or dropped where it lies.
    #[test]
    fn each_value_is_dropped_once() {
        let item = Rc::new(());
        let output = Rc::new(());
        let fates = || {
            [
                Fate::Ran {
                    item: item.clone(),
                    result: Ok(output.clone()),
                    worker: 1,
                },
                Fate::Ran {
                    item: item.clone(),
                    result: Err(-1),
                    worker: 1,
                },
                Fate::Cancelled(item.clone()),
                Fate::SourceFailed(-2),
            ]
        };
        let dropped: Vec<_> = fates().into_iter().map(Stored::new).collect();
        let handed_back: Vec<_> = fates()
            .into_iter()
            .map(|f| Stored::new(f).into_outcome(0))
            .collect();
        assert_eq!((Rc::strong_count(&item), Rc::strong_count(&output)), (7, 3));
        drop(dropped);
        assert_eq!((Rc::strong_count(&item), Rc::strong_count(&output)), (4, 2));
        drop(handed_back);
        assert_eq!((Rc::strong_count(&item), Rc::strong_count(&output)), (1, 1));
    }
}
