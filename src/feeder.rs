//! The feeder thread of a pool in source mode: pulls input while there is room.

use crate::handler::{Handler, Pulled, Source};
use crate::pool::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, mut source: Source<H::Item>) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    // Slots are reserved before pulling, so a pulled item always has room and the source
    // is never asked for more than the window can hold. The number reserved follows the
    // task size, so cheap items travel in batches.
    loop {
        let reserved = shared.reserve_for_feeder();
        if reserved == 0 {
            return;
        }
        let mut items = Vec::with_capacity(reserved);
        let mut end = None;
        while items.len() < reserved {
            match source() {
                Pulled::Item(item) => items.push(item),
                other => {
                    end = Some(other);
                    break;
                }
            }
        }
        if !shared.feed(items, end) {
            return;
        }
    }
}
