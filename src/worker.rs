//! A worker thread: init, then run tasks until the queue disconnects, then exit.

use std::time::Instant;

use crate::handler::{Handler, Outcome};
use crate::pool::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, id: u32) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    let mut state = shared.handler.init(id);
    // Reused across tasks so storing outcomes allocates nothing in steady state.
    let mut outcomes = Vec::new();
    while let Ok(task) = shared.work_rx.recv() {
        let started = Instant::now();
        let mut ran = 0;
        task.for_each(|index, mut item| {
            // Checked before every item: an item may start after `cancel` only if this
            // worker read the flag just before it was set, so at most one per worker.
            if shared.is_cancelled() {
                outcomes.push(Outcome::cancelled(index, item));
                return;
            }
            ran += 1;
            let result = shared.handler.work(&mut state, &mut item);
            if result.is_err() {
                shared.fail_fast_triggered();
            }
            outcomes.push(Outcome::ran(index, item, id, result));
        });
        let ns = started.elapsed().as_nanos() as u64;
        shared.add_busy(ns);
        shared.sizer.record(ran, ns);
        shared.store_all(&mut outcomes);
    }
    shared.handler.exit(id, state);
}
