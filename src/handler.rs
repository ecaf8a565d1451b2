//! What a pool runs: the [`Handler`] trait, the source of input, and the outcome of an item.

use crate::status::ItemStatus;

/// `worker` value of an outcome whose item never ran.
pub const NO_WORKER: u32 = u32::MAX;

/// The map a pool runs. One handler is shared by every worker thread.
pub trait Handler: Send + Sync + 'static {
    /// An input item, lent to the pool and handed back with its outcome.
    type Item: Send + 'static;
    /// What `work` produces for an item that succeeds.
    type Output: Send + 'static;
    /// Per-worker state; created, used and destroyed on that worker's own thread.
    type State: 'static;

    /// Runs once on each worker thread before it takes any item.
    fn init(&self, worker: u32) -> Self::State;
    /// Runs the map on one item. `Err(code)` marks the item failed with `code`.
    fn work(&self, state: &mut Self::State, item: &mut Self::Item) -> Result<Self::Output, i32>;
    /// Runs once on each worker thread when the pool stops.
    fn exit(&self, worker: u32, state: Self::State);
    /// Receives, in `Pool::free`, every outcome that was never handed back.
    fn drop_unreturned(&self, outcome: Outcome<Self::Item, Self::Output>) {
        drop(outcome);
    }
}

/// One step of a pull source.
#[derive(Debug)]
pub enum Pulled<I> {
    /// The next input item.
    Item(I),
    /// The input has ended.
    End,
    /// The source failed with this code; the input ends here.
    Failed(i32),
}

/// A pull source, called only from the pool's own feeder thread.
pub type Source<I> = Box<dyn FnMut() -> Pulled<I> + Send + 'static>;

/// An item handed back: with its output, its error, or marked not processed.
#[derive(Debug)]
pub struct Outcome<I, O> {
    /// Position in the input: 0, 1, 2 … in submission order.
    pub index: u64,
    /// The item as submitted; `None` only for a source failure.
    pub item: Option<I>,
    /// The output, present exactly when `status` is `ItemStatus::Ok`.
    pub value: Option<O>,
    pub status: ItemStatus,
    /// The work function's or source's code when failed; 0 otherwise.
    pub error: i32,
    /// The worker that ran the item, or [`NO_WORKER`].
    pub worker: u32,
}

/// An outcome as the pipeline carries it between threads: the compact form of
/// [`Outcome`] (40 bytes for pointer-sized items and outputs, against 56), because with
/// cheap items the outcome's trip between cores is much of an item's cost.
#[derive(Debug)]
pub(crate) struct Finished<I, O> {
    pub index: u64,
    pub fate: Fate<I, O>,
}

/// What became of an item: it ran (with its output or error code), it was cancelled
/// before it started, or the source failed at its index (there is no item).
#[derive(Debug)]
pub(crate) enum Fate<I, O> {
    Ran {
        item: I,
        result: Result<O, i32>,
        worker: u32,
    },
    Cancelled(I),
    SourceFailed(i32),
}

impl<I, O> Finished<I, O> {
    pub(crate) fn cancelled(index: u64, item: I) -> Self {
        Finished {
            index,
            fate: Fate::Cancelled(item),
        }
    }

    pub(crate) fn source_failed(index: u64, code: i32) -> Self {
        Finished {
            index,
            fate: Fate::SourceFailed(code),
        }
    }

    pub(crate) fn ran(index: u64, item: I, worker: u32, result: Result<O, i32>) -> Self {
        Finished {
            index,
            fate: Fate::Ran {
                item,
                result,
                worker,
            },
        }
    }

    pub(crate) fn status(&self) -> ItemStatus {
        match self.fate {
            Fate::Ran { result: Ok(_), .. } => ItemStatus::Ok,
            Fate::Ran { result: Err(_), .. } => ItemStatus::Failed,
            Fate::Cancelled(_) => ItemStatus::Cancelled,
            Fate::SourceFailed(_) => ItemStatus::SourceFailed,
        }
    }
}

impl<I, O> From<Finished<I, O>> for Outcome<I, O> {
    fn from(f: Finished<I, O>) -> Self {
        let (item, value, status, error, worker) = match f.fate {
            Fate::Ran {
                item,
                result: Ok(value),
                worker,
            } => (Some(item), Some(value), ItemStatus::Ok, 0, worker),
            Fate::Ran {
                item,
                result: Err(code),
                worker,
            } => (Some(item), None, ItemStatus::Failed, code, worker),
            Fate::Cancelled(item) => (Some(item), None, ItemStatus::Cancelled, 0, NO_WORKER),
            Fate::SourceFailed(code) => (None, None, ItemStatus::SourceFailed, code, NO_WORKER),
        };
        Outcome {
            index: f.index,
            item,
            value,
            status,
            error,
            worker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_is_compact_for_pointer_sized_items() {
        type P = *mut u8;
        assert_eq!(std::mem::size_of::<Outcome<P, P>>(), 56);
        assert_eq!(std::mem::size_of::<Finished<P, P>>(), 40);
        assert_eq!(std::mem::size_of::<Option<Finished<P, P>>>(), 40);
    }

    #[test]
    fn every_fate_converts_to_the_outcome_it_stands_for() {
        let o: Outcome<u8, u16> = Finished::ran(7, 1, 3, Ok(10)).into();
        assert_eq!(
            (o.index, o.item, o.value, o.status, o.error, o.worker),
            (7, Some(1), Some(10), ItemStatus::Ok, 0, 3)
        );
        let o: Outcome<u8, u16> = Finished::ran(8, 2, 1, Err(-5)).into();
        assert_eq!(
            (o.item, o.value, o.status, o.error, o.worker),
            (Some(2), None, ItemStatus::Failed, -5, 1)
        );
        let f = Finished::<u8, u16>::cancelled(9, 4);
        assert_eq!(f.status(), ItemStatus::Cancelled);
        let o: Outcome<u8, u16> = f.into();
        assert_eq!(
            (o.index, o.item, o.value, o.status, o.error, o.worker),
            (9, Some(4), None, ItemStatus::Cancelled, 0, NO_WORKER)
        );
        let f = Finished::<u8, u16>::source_failed(10, -2);
        assert_eq!(f.status(), ItemStatus::SourceFailed);
        let o: Outcome<u8, u16> = f.into();
        assert_eq!(
            (o.item, o.value, o.status, o.error, o.worker),
            (None, None, ItemStatus::SourceFailed, -2, NO_WORKER)
        );
    }
}
