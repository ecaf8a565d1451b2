//! The feeder thread of a pool in source mode: pulls input while there is room.

use crate::handler::{Handler, Source};
use crate::pool::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, mut source: Source<H::Item>) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    // A slot is reserved before each pull, so a pulled item always has room and the
    // source is never asked for more than the window can hold.
    while shared.reserve_for_feeder() {
        let pulled = source();
        if !shared.feed(pulled) {
            break;
        }
    }
}
