//! A worker thread: init, then run tasks until the queue disconnects, then exit.

use std::time::Instant;

use crate::chunk::Task;
use crate::handler::{Handler, Outcome};
use crate::shared::Shared;
use crate::sync::AbortOnPanic;
use crate::threads::OwnerGuard;

pub(crate) fn run<H: Handler>(shared: &Shared<H>, id: u32) {
    let _abort = AbortOnPanic;
    let _inside = OwnerGuard::enter(shared.addr());
    let mut state = shared.handler.init(id);
    // Reused across rounds so nothing allocates in steady state.
    let mut tasks: Vec<Task<H::Item>> = Vec::new();
    // End of the previous round: the start of the next one when no wait came between, so
    // a busy worker reads the clock once per round rather than twice.
    let mut last_end = Instant::now();
    loop {
        let started = match shared.work_rx.try_recv() {
            Ok(task) => {
                tasks.push(task);
                last_end
            }
            Err(_) => match shared.work_rx.recv() {
                Ok(task) => {
                    tasks.push(task);
                    Instant::now()
                }
                Err(_) => break,
            },
        };
        // Single submits arrive as one-item tasks. Take more that are already queued, up
        // to one task's worth of items, so their outcomes are published under one lock
        // (a waiting consumer can still take each one as soon as it is finished). Only
        // queued work is taken, so this never waits, and the round stays about as long as
        // one task the sizer would have made.
        let budget = shared.sizer.task_len();
        let mut items = tasks[0].len();
        while items < budget {
            match shared.work_rx.try_recv() {
                Ok(task) => {
                    items += task.len();
                    tasks.push(task);
                }
                Err(_) => break,
            }
        }
        // Left asleep while the queue was long, a consumer or the feeder may be needed now.
        if shared.work_rx.is_empty() {
            shared.queue_drained();
        }
        let mut ran = 0;
        for task in tasks.drain(..) {
            task.for_each(|index, mut item| {
                // Checked before every item: an item may start after `cancel` only if this
                // worker read the flag just before it was set, so at most one per worker.
                if shared.is_cancelled() {
                    shared.finish(id, Outcome::cancelled(index, item));
                    return;
                }
                ran += 1;
                let result = shared.handler.work(&mut state, &mut item);
                if result.is_err() {
                    shared.item_failed();
                }
                shared.finish(id, Outcome::ran(index, item, id, result));
            });
        }
        last_end = Instant::now();
        let ns = last_end.saturating_duration_since(started).as_nanos() as u64;
        shared.add_busy(ns);
        shared.sizer.record(ran, ns);
        shared.publish(id);
    }
    shared.handler.exit(id, state);
}
