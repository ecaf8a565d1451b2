//! A worker thread: init, then run rounds of queued items until shutdown, then exit.

use std::time::Instant;

use crate::handler::{Finished, Handler};
use crate::shared::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, id: u32) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    let mut state = shared.handler.init(id);
    // Reused across rounds so nothing allocates in steady state.
    let mut round: Vec<H::Item> = Vec::new();
    // Start of the current round: the end of the previous one unless the worker slept in
    // between, so a busy worker reads the clock once per round.
    let mut started = Instant::now();
    while let Some(first) = shared.next_round(id, &mut round, &mut started) {
        let mut ran = 0;
        for (k, mut item) in round.drain(..).enumerate() {
            let index = first + k as u64;
            // Checked before every item: an item may start after `cancel` only if this
            // worker read the flag just before it was set, so at most one per worker.
            if shared.is_cancelled() {
                shared.finish(id, Finished::cancelled(index, item));
                continue;
            }
            ran += 1;
            let result = shared.handler.work(&mut state, &mut item);
            if result.is_err() {
                shared.item_failed();
            }
            shared.finish(id, Finished::ran(index, item, id, result));
        }
        let ended = Instant::now();
        let ns = ended.saturating_duration_since(started).as_nanos() as u64;
        started = ended;
        shared.add_busy(ns);
        shared.sizer.record(ran, ns);
    }
    shared.handler.exit(id, state);
}
