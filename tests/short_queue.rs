//! A worker takes fewer than a task's worth of queued items only when somebody waits on
//! the pool, the input has ended, or the worker has slept (woken by the poller's timer or
//! a notify). So a few items queued after many cheap ones, with the input still open and
//! nobody waiting, must still finish: the poller's timer brings a worker back for them.

mod common;

use common::{Double, submit_draining, wait_for_succeeded};
use pmap::{Config, Pool, Status, Wait};

#[test]
fn a_short_queue_finishes_with_nobody_waiting() {
    let config = Config {
        workers: 2,
        ..Config::new()
    };
    let pool = Pool::new(Double::default(), &config).unwrap();
    // Cheap items, one thread submitting and draining: the pool learns that a task should
    // carry many of them.
    let warm_up = 100_000;
    let mut next_index = 0;
    for i in 0..warm_up {
        submit_draining(&pool, i, |outcome| {
            assert_eq!(outcome.index, next_index);
            next_index += 1;
        });
    }
    while next_index < warm_up {
        let outcome = pool.next(Wait::Forever).unwrap();
        assert_eq!(outcome.index, next_index);
        next_index += 1;
    }
    assert_eq!(pool.stats().unwrap().in_flight, 0);

    // Three more, and nobody waits for them: the input stays open.
    for i in 0..3 {
        pool.submit(1000 + i, Wait::Never).unwrap();
    }
    // Fails if the short queue stays put with nobody waiting.
    wait_for_succeeded(&pool, warm_up + 3);
    for i in 0..3 {
        let outcome = pool.next(Wait::Never).unwrap();
        assert_eq!(outcome.index, warm_up + i);
        assert_eq!(outcome.value, Some((1000 + i) * 2));
    }
    pool.close().unwrap();
    assert_eq!(pool.next(Wait::Forever).unwrap_err().status, Status::Done);
}
