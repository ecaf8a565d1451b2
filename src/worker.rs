//! A worker thread: init, then run rounds of queued items until shutdown, then exit.

use std::time::Instant;

use crate::handler::{Finished, Handler};
use crate::shared::{OutcomeCursor, Shared};
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

// Not inlined: scripts/bench_instructions.sh counts a thread's instructions by this name.
#[inline(never)]
pub(crate) fn run<H: Handler>(shared: &Shared<H>, id: u32) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    let mut state = shared.handler.init(id);
    // Reused across rounds so nothing allocates in steady state.
    let mut round: Vec<H::Item> = Vec::new();
    // A round's indices are consecutive: their slots are looked up once per round.
    let mut cursor = OutcomeCursor::<H>::default();
    while let Some(first) = shared.next_round(id, &mut round) {
        // Timed from here, not from the end of the last round: a wait for the state lock
        // counted as work makes cheap items look costly while another thread hammers the
        // lock, so tasks shrink and the lock is taken more often still.
        let started = Instant::now();
        let mut ran = 0;
        for (k, mut item) in round.drain(..).enumerate() {
            let index = first + k as u64;
            // Checked before every item: an item may start after `cancel` only if this
            // worker read the flag just before it was set, so at most one per worker.
            if shared.is_cancelled() {
                shared.finish(id, Finished::cancelled(index, item), &mut cursor);
                continue;
            }
            ran += 1;
            let result = shared.handler.work(&mut state, &mut item);
            if result.is_err() {
                shared.item_failed();
            }
            shared.finish_ran(id, index, item, result, &mut cursor);
        }
        let ns = started.elapsed().as_nanos() as u64;
        shared.add_busy(id, ns);
        shared.sizer.record(ran, ns);
    }
    shared.handler.exit(id, state);
}
