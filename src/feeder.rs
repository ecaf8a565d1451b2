//! The feeder thread of a pool in source mode: pulls input while there is room.

use crate::handler::{Handler, Pulled, Source};
use crate::shared::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

// Not inlined: scripts/bench_instructions.sh counts a thread's instructions by this name.
#[inline(never)]
pub(crate) fn run<H: Handler>(shared: &Shared<H>, mut source: Source<H::Item>) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    // Slots (with their indices) are reserved a batch at a time, under one lock, before
    // pulling, so the source is never asked for more than the window can hold. Pulled
    // items reach the workers a task at a time, or at once when a worker waits for them:
    // a source that blocks waiting for input must not hold back the items it returned.
    while let Some((_first, reserved)) = shared.reserve_for_feeder() {
        let mut sent = 0;
        let mut end = None;
        while sent < reserved && !shared.must_stop_pulling() {
            match source() {
                Pulled::Item(item) => {
                    shared.push_pulled(item);
                    sent += 1;
                }
                other => {
                    end = Some(other);
                    break;
                }
            }
        }
        if !shared.finish_reservation(reserved - sent, end) {
            return;
        }
    }
}
