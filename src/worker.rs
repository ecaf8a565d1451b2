//! A worker thread: init, then take tasks until the queue disconnects, then exit.

use std::time::Instant;

use crate::handler::{Handler, Outcome};
use crate::pool::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, id: u32) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    let mut state = shared.handler.init(id);
    while let Ok(task) = shared.work_rx.recv() {
        // Checked after taking the task: a task taken before `cancel` may still start,
        // which bounds post-cancel starts by the number of workers.
        let outcome = if shared.is_cancelled() {
            Outcome::cancelled(task.index, task.item)
        } else {
            let mut item = task.item;
            let started = Instant::now();
            let result = shared.handler.work(&mut state, &mut item);
            shared.add_busy(started.elapsed().as_nanos() as u64);
            Outcome::ran(task.index, item, id, result)
        };
        shared.store(outcome);
    }
    shared.handler.exit(id, state);
}
