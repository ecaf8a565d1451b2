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

impl<I, O> Outcome<I, O> {
    pub(crate) fn cancelled(index: u64, item: I) -> Self {
        Outcome {
            index,
            item: Some(item),
            value: None,
            status: ItemStatus::Cancelled,
            error: 0,
            worker: NO_WORKER,
        }
    }

    pub(crate) fn source_failed(index: u64, code: i32) -> Self {
        Outcome {
            index,
            item: None,
            value: None,
            status: ItemStatus::SourceFailed,
            error: code,
            worker: NO_WORKER,
        }
    }

    pub(crate) fn ran(index: u64, item: I, worker: u32, result: Result<O, i32>) -> Self {
        let (value, status, error) = match result {
            Ok(v) => (Some(v), ItemStatus::Ok, 0),
            Err(code) => (None, ItemStatus::Failed, code),
        };
        Outcome {
            index,
            item: Some(item),
            value,
            status,
            error,
            worker,
        }
    }
}
