//! Criterion benchmarks of pmap beside the serial loop and the Rust peers (rayon
//! `par_bridge`, pariter `parallel_map`), all in one process.
//!
//! ```sh
//! cargo bench --bench pmap                   # every group (about 10 minutes)
//! cargo bench --bench pmap -- overhead       # one group (a criterion filter)
//! ```
//!
//! Every contender maps the items `1..=n` with the same work function and checks what
//! comes back (in order for the ordered ones). One iteration is one whole map, start to
//! end: pmap creates and frees its pool, pariter spawns its threads, rayon uses its
//! global pool (or a pool built once per group for the worker-count sweep).
//!
//! pmap runs through its C ABI (`pmap_submit`, `pmap_submit_many`, `pmap_next`,
//! `pmap_next_many`, a `source` callback: what a C caller pays), and in the overhead
//! group also through the Rust core (`pmap::Pool`).
//!
//! Work: trivial (the identity), or a spin loop calibrated once against the clock at
//! start (1 µs, or the skewed mix of 90% 1 µs, 9% 10 µs, 1% 1 ms). The C-level peers
//! (oneTBB, OpenMP) are in `benches/compare` (`scripts/bench_compare.sh`).

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pariter::IteratorExt;
use pmap::ffi::api::{
    pmap_close, pmap_free, pmap_new, pmap_next, pmap_next_many, pmap_options_init, pmap_submit,
    pmap_submit_many,
};
use pmap::ffi::types::{
    PMAP_DONE, PMAP_ITEM_OK, PMAP_OK, PMAP_TIMEOUT, pmap_options, pmap_pool, pmap_result,
};
use pmap::{Config, Handler, Pool, Pulled, Wait};
use rayon::prelude::*;

// ---------------------------------------------------------------------------------------
// Work

/// Spin-loop iterations per microsecond, measured once.
fn spin_rate() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        let iters = 4_000_000;
        spin(iters / 4, 1);
        (0..7)
            .map(|t| {
                let start = Instant::now();
                black_box(spin(iters, t));
                iters as f64 / (start.elapsed().as_nanos() as f64 / 1000.0)
            })
            .fold(0.0, f64::max)
    })
}

/// One dependent multiply-add per iteration: fixed cost, no memory traffic.
#[inline(never)]
fn spin(iters: u64, mut acc: u64) -> u64 {
    for _ in 0..iters {
        acc = black_box(
            acc.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
    acc
}

fn iters_for(ns: u64) -> u64 {
    (ns as f64 * spin_rate() / 1000.0).round() as u64
}

/// What each item costs. Every variant returns its input, so outputs can be checked.
#[derive(Clone, Copy, Debug)]
enum Work {
    Trivial,
    /// Spin this many iterations.
    Spin(u64),
    /// 90% / 9% / 1% of items spin these many iterations, chosen by a hash of the item.
    Skew([u64; 3]),
}

impl Work {
    fn spin_ns(ns: u64) -> Work {
        Work::Spin(iters_for(ns))
    }

    fn skew() -> Work {
        Work::Skew([iters_for(1_000), iters_for(10_000), iters_for(1_000_000)])
    }

    #[inline]
    fn run(self, x: usize) -> usize {
        match self {
            Work::Trivial => x,
            Work::Spin(iters) => {
                black_box(spin(iters, x as u64));
                x
            }
            Work::Skew(costs) => {
                let class = match mix(x as u64) % 100 {
                    0..90 => 0,
                    90..99 => 1,
                    _ => 2,
                };
                black_box(spin(costs[class], x as u64));
                x
            }
        }
    }
}

/// splitmix64, as in `benches/compare/work.c`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Completeness and order of the outputs of one map.
struct Check {
    n: u64,
    got: u64,
    sum: u64,
    ordered: bool,
}

impl Check {
    fn new(n: u64, ordered: bool) -> Self {
        Check {
            n,
            got: 0,
            sum: 0,
            ordered,
        }
    }

    #[inline]
    fn take(&mut self, index: u64, item: usize, value: usize) {
        assert_eq!(item, value, "an output does not match its input");
        if self.ordered {
            assert_eq!(index, self.got, "an output came back out of order");
        }
        self.got += 1;
        self.sum = self.sum.wrapping_add(value as u64);
    }

    fn finish(self) {
        assert_eq!(self.got, self.n, "not every output came back");
        assert_eq!(self.sum, self.n * (self.n + 1) / 2, "an output is missing");
    }
}

// ---------------------------------------------------------------------------------------
// pmap through the C ABI

/// How the caller talks to the pool.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// README pattern 1: `pmap_submit(timeout 0)`; when full, one blocking `pmap_next`.
    Single,
    /// `pmap_submit_many` of 256 with timeout 0; when not all fit, `pmap_next_many(256)`.
    Batch,
    /// A `source` callback feeds the pool; the caller takes results with `pmap_next`.
    Source,
    /// The same, taking results with `pmap_next_many(256)`.
    SourceBatch,
}

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::Single => "c-single",
            Style::Batch => "c-batch",
            Style::Source => "c-source",
            Style::SourceBatch => "c-source-batch",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Opts {
    workers: u32,
    capacity: u32,
    ordered: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            workers: 0,
            capacity: 0,
            ordered: true,
        }
    }
}

const BATCH: usize = 256;

/// Shared by the workers (`work`, read only) and the feeder (`next`, its own counter).
struct CCtx {
    work: Work,
    next: AtomicU64,
    n: u64,
}

unsafe extern "C" fn c_work(
    ctx: *mut c_void,
    _state: *mut c_void,
    item: *mut c_void,
    result: *mut *mut c_void,
) -> i32 {
    // SAFETY: `ctx` is the `CCtx` that outlives the pool (freed after `pmap_free`), and
    // `result` is the out-pointer pmap passes for this call.
    unsafe {
        let ctx = &*(ctx as *const CCtx);
        *result = ctx.work.run(item as usize) as *mut c_void;
    }
    0
}

unsafe extern "C" fn c_source(ctx: *mut c_void, item: *mut *mut c_void) -> i32 {
    // SAFETY: as in `c_work`; only the feeder thread calls this.
    unsafe {
        let ctx = &*(ctx as *const CCtx);
        let i = ctx.next.load(Ordering::Relaxed);
        if i >= ctx.n {
            return 0;
        }
        ctx.next.store(i + 1, Ordering::Relaxed);
        *item = (i + 1) as usize as *mut c_void;
    }
    1
}

/// One whole map through the C ABI.
fn c_map(style: Style, work: Work, n: u64, o: Opts) {
    let ctx = Box::new(CCtx {
        work,
        next: AtomicU64::new(0),
        n,
    });
    let source = matches!(style, Style::Source | Style::SourceBatch);
    let mut opts: pmap_options;
    let mut pool: *mut pmap_pool = ptr::null_mut();
    // SAFETY: every pointer handed to pmap is valid for the call; `ctx` outlives the pool.
    unsafe {
        opts = std::mem::zeroed();
        pmap_options_init(&mut opts);
        opts.work = Some(c_work);
        opts.ctx = &*ctx as *const CCtx as *mut c_void;
        opts.workers = o.workers;
        opts.capacity = o.capacity;
        opts.ordered = o.ordered;
        if source {
            opts.source = Some(c_source);
        }
        assert_eq!(pmap_new(&opts, &mut pool), PMAP_OK);
    }
    let mut check = Check::new(n, o.ordered);
    let mut res = vec![empty_result(); BATCH];
    let take = |check: &mut Check, r: &pmap_result| {
        assert_eq!(r.status, PMAP_ITEM_OK);
        check.take(r.index, r.item as usize, r.value as usize);
    };
    // SAFETY: `pool` is live until `pmap_free` below; the buffers outlive each call.
    unsafe {
        match style {
            Style::Single => {
                let mut r = empty_result();
                let mut i = 0;
                while i < n {
                    match pmap_submit(pool, (i + 1) as usize as *mut c_void, 0) {
                        PMAP_OK => i += 1,
                        PMAP_TIMEOUT => {
                            assert_eq!(pmap_next(pool, &mut r, -1), PMAP_OK);
                            take(&mut check, &r);
                        }
                        s => panic!("pmap_submit: {s}"),
                    }
                }
            }
            Style::Batch => {
                let mut items: Vec<*mut c_void> = Vec::with_capacity(BATCH);
                let mut i = 0;
                while i < n {
                    items.clear();
                    let end = (i + BATCH as u64).min(n);
                    items.extend((i + 1..=end).map(|x| x as usize as *mut c_void));
                    i = end;
                    let mut off = 0;
                    while off < items.len() {
                        let mut acc = 0;
                        let s = pmap_submit_many(
                            pool,
                            items.as_ptr().add(off),
                            items.len() - off,
                            &mut acc,
                            0,
                        );
                        off += acc;
                        match s {
                            PMAP_OK => {}
                            PMAP_TIMEOUT => {
                                let mut got = 0;
                                let s = pmap_next_many(pool, res.as_mut_ptr(), BATCH, &mut got, -1);
                                assert_eq!(s, PMAP_OK);
                                res[..got].iter().for_each(|r| take(&mut check, r));
                            }
                            s => panic!("pmap_submit_many: {s}"),
                        }
                    }
                }
            }
            Style::Source | Style::SourceBatch => {}
        }
        if !source {
            assert_eq!(pmap_close(pool), PMAP_OK);
        }
        let max = if matches!(style, Style::Batch | Style::SourceBatch) {
            BATCH
        } else {
            1
        };
        loop {
            let mut got = 0;
            let s = if max == 1 {
                let s = pmap_next(pool, res.as_mut_ptr(), -1);
                got = usize::from(s == PMAP_OK);
                s
            } else {
                pmap_next_many(pool, res.as_mut_ptr(), max, &mut got, -1)
            };
            match s {
                PMAP_OK => res[..got].iter().for_each(|r| take(&mut check, r)),
                PMAP_DONE => break,
                s => panic!("pmap_next: {s}"),
            }
        }
        assert_eq!(pmap_free(pool), PMAP_OK);
    }
    check.finish();
}

fn empty_result() -> pmap_result {
    pmap_result {
        index: 0,
        item: ptr::null_mut(),
        value: ptr::null_mut(),
        status: 0,
        error: 0,
        worker: 0,
    }
}

// ---------------------------------------------------------------------------------------
// pmap through the Rust core

struct RustWork(Work);

impl Handler for RustWork {
    type Item = usize;
    type Output = usize;
    type State = ();

    fn init(&self, _worker: u32) {}

    fn work(&self, _state: &mut (), item: &mut usize) -> Result<usize, i32> {
        Ok(self.0.run(*item))
    }

    fn exit(&self, _worker: u32, _state: ()) {}
}

fn rust_config(o: Opts) -> Config {
    let mut c = Config::new();
    c.workers = o.workers as usize;
    c.capacity = o.capacity as usize;
    c.ordered = o.ordered;
    c
}

/// `Pool::submit_many` (no wait) of 256, draining with `next_into(256)` when full.
fn rust_batch(work: Work, n: u64, o: Opts) {
    let pool = Pool::new(RustWork(work), &rust_config(o)).expect("pool");
    let mut check = Check::new(n, o.ordered);
    let mut i = 0;
    let drain = |check: &mut Check| {
        pool.next_into(BATCH, Wait::Forever, |out| {
            check.take(out.index, out.item.unwrap(), out.value.unwrap())
        })
    };
    while i < n {
        let end = (i + BATCH as u64).min(n);
        let mut items = (i as usize + 1..=end as usize).peekable();
        i = end;
        loop {
            match pool.submit_many(&mut items, Wait::Never) {
                (_, Ok(())) => break,
                (_, Err(e)) if e.status == pmap::Status::Timeout => {
                    drain(&mut check).expect("next");
                }
                (_, Err(e)) => panic!("submit_many: {e}"),
            }
        }
    }
    pool.close().unwrap();
    while drain(&mut check).is_ok() {}
    drop(pool);
    check.finish();
}

/// `Pool::with_source`, draining with `next_into(256)`.
fn rust_source(work: Work, n: u64, o: Opts) {
    let mut i = 0usize;
    let source = Box::new(move || {
        if i as u64 >= n {
            return Pulled::End;
        }
        i += 1;
        Pulled::Item(i)
    });
    let pool = Pool::with_source(RustWork(work), &rust_config(o), source).expect("pool");
    let mut check = Check::new(n, o.ordered);
    while pool
        .next_into(BATCH, Wait::Forever, |out| {
            check.take(out.index, out.item.unwrap(), out.value.unwrap())
        })
        .is_ok()
    {}
    drop(pool);
    check.finish();
}

// ---------------------------------------------------------------------------------------
// Peers

fn serial(work: Work, n: u64) {
    let mut check = Check::new(n, true);
    for x in 1..=n as usize {
        check.take(x as u64 - 1, x, work.run(black_box(x)));
    }
    check.finish();
}

/// rayon's streaming bridge: items pulled from a sequential iterator under a mutex;
/// unordered only (results summed).
fn rayon_bridge(work: Work, n: u64) {
    let sum: u64 = (1..=n as usize)
        .par_bridge()
        .map(|x| {
            let v = work.run(x);
            assert_eq!(v, x);
            v as u64
        })
        .sum();
    assert_eq!(sum, n * (n + 1) / 2);
}

/// rayon's indexed, non-streaming `par_iter` into a Vec: an upper bound, like OpenMP.
fn rayon_collect(work: Work, n: u64) {
    let out: Vec<usize> = (1..=n as usize)
        .into_par_iter()
        .map(|x| work.run(x))
        .collect();
    let mut check = Check::new(n, true);
    for (i, v) in out.into_iter().enumerate() {
        check.take(i as u64, i + 1, v);
    }
    check.finish();
}

/// pariter's ordered `parallel_map` (threads spawned per map; `buffer` items in flight,
/// 0 = its default of 2 x threads).
fn pariter_map(work: Work, n: u64, threads: usize, buffer: usize) {
    let mut check = Check::new(n, true);
    let it = (1..=n as usize).parallel_map_custom(
        |o| {
            let o = o.threads(threads);
            if buffer > 0 { o.buffer_size(buffer) } else { o }
        },
        move |x| work.run(x),
    );
    for (i, v) in it.enumerate() {
        check.take(i as u64, i + 1, v);
    }
    check.finish();
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------
// Groups

/// Modest measurement: the suite is for comparisons, not for nanosecond resolution.
fn configure() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Per-item cost of every call style on trivial work, beside the peers.
fn overhead(c: &mut Criterion) {
    let n = 200_000;
    let w = Work::Trivial;
    let mut g = c.benchmark_group("overhead-trivial");
    g.throughput(Throughput::Elements(n));
    g.bench_function("serial", |b| b.iter(|| serial(w, n)));
    for style in [
        Style::Single,
        Style::Batch,
        Style::Source,
        Style::SourceBatch,
    ] {
        g.bench_function(style.name(), |b| {
            b.iter(|| c_map(style, w, n, Opts::default()))
        });
    }
    g.bench_function("rust-batch", |b| {
        b.iter(|| rust_batch(w, n, Opts::default()))
    });
    g.bench_function("rust-source", |b| {
        b.iter(|| rust_source(w, n, Opts::default()))
    });
    g.bench_function("rayon-par_bridge", |b| b.iter(|| rayon_bridge(w, n)));
    g.bench_function("rayon-collect", |b| b.iter(|| rayon_collect(w, n)));
    g.bench_function("pariter", |b| b.iter(|| pariter_map(w, n, cpus(), 0)));
    g.finish();
}

/// Ordered against unordered on uniform 1 µs work.
fn ordering(c: &mut Criterion) {
    let n = 20_000;
    let w = Work::spin_ns(1_000);
    let mut g = c.benchmark_group("ordering-1us");
    g.throughput(Throughput::Elements(n));
    g.bench_function("serial", |b| b.iter(|| serial(w, n)));
    for style in [Style::Single, Style::Batch, Style::SourceBatch] {
        for ordered in [true, false] {
            let o = Opts {
                ordered,
                ..Opts::default()
            };
            let id = format!(
                "{}/{}",
                style.name(),
                if ordered { "ordered" } else { "unordered" }
            );
            g.bench_function(id, |b| b.iter(|| c_map(style, w, n, o)));
        }
    }
    g.bench_function("pariter/ordered", |b| {
        b.iter(|| pariter_map(w, n, cpus(), 0))
    });
    g.bench_function("rayon-par_bridge/unordered", |b| {
        b.iter(|| rayon_bridge(w, n))
    });
    g.finish();
}

/// Scaling with the number of worker threads, 1 µs work.
fn workers(c: &mut Criterion) {
    let n = 20_000;
    let w = Work::spin_ns(1_000);
    let mut g = c.benchmark_group("workers-1us");
    g.throughput(Throughput::Elements(n));
    g.bench_function("serial", |b| b.iter(|| serial(w, n)));
    for t in [1usize, 2, 4, 8] {
        let o = Opts {
            workers: t as u32,
            ..Opts::default()
        };
        g.bench_with_input(BenchmarkId::new("c-batch", t), &t, |b, _| {
            b.iter(|| c_map(Style::Batch, w, n, o))
        });
        g.bench_with_input(BenchmarkId::new("c-source-batch", t), &t, |b, _| {
            b.iter(|| c_map(Style::SourceBatch, w, n, o))
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("rayon pool");
        g.bench_with_input(BenchmarkId::new("rayon-par_bridge", t), &t, |b, _| {
            b.iter(|| pool.install(|| rayon_bridge(w, n)))
        });
        g.bench_with_input(BenchmarkId::new("pariter", t), &t, |b, &t| {
            b.iter(|| pariter_map(w, n, t, 0))
        });
    }
    g.finish();
}

/// The in-flight window on skewed work (90% 1 µs, 9% 10 µs, 1% 1 ms), ordered.
fn capacity(c: &mut Criterion) {
    let n = 5_000;
    let w = Work::skew();
    let mut g = c.benchmark_group("capacity-skew");
    g.throughput(Throughput::Elements(n));
    g.bench_function("serial", |b| b.iter(|| serial(w, n)));
    for cap in [8u32, 32, 128, 256, 1024, 4096] {
        let o = Opts {
            capacity: cap,
            ..Opts::default()
        };
        g.bench_with_input(BenchmarkId::new("c-batch", cap), &cap, |b, _| {
            b.iter(|| c_map(Style::Batch, w, n, o))
        });
        g.bench_with_input(BenchmarkId::new("pariter-buffer", cap), &cap, |b, &cap| {
            b.iter(|| pariter_map(w, n, cpus(), cap as usize))
        });
    }
    g.finish();
}

/// Skewed work with the defaults and at capacity 256, every call style, and the peers.
fn skew(c: &mut Criterion) {
    let n = 5_000;
    let w = Work::skew();
    let mut g = c.benchmark_group("skew");
    g.throughput(Throughput::Elements(n));
    g.bench_function("serial", |b| b.iter(|| serial(w, n)));
    for (cap, cap_name) in [(256u32, "256"), (0, "default")] {
        let o = Opts {
            capacity: cap,
            ..Opts::default()
        };
        for style in [Style::Single, Style::Batch, Style::SourceBatch] {
            let id = format!("{}/capacity={cap_name}", style.name());
            g.bench_function(id, |b| b.iter(|| c_map(style, w, n, o)));
        }
    }
    g.bench_function("pariter/buffer=default", |b| {
        b.iter(|| pariter_map(w, n, cpus(), 0))
    });
    g.bench_function("pariter/buffer=256", |b| {
        b.iter(|| pariter_map(w, n, cpus(), 256))
    });
    g.bench_function("rayon-par_bridge", |b| b.iter(|| rayon_bridge(w, n)));
    g.bench_function("rayon-collect", |b| b.iter(|| rayon_collect(w, n)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = overhead, ordering, workers, capacity, skew
}
criterion_main!(benches);
