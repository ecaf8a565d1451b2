//! Pool configuration for the Rust core: defaults, limits and validation.
//!
//! The C layer (`ffi::options`) translates `pmap_options` into a [`Config`]; both paths
//! meet in [`Config::resolve`], so a bad value gets the same message from C and Rust.

use std::borrow::Cow;

/// Most worker threads one pool may start. Far above any sane value; it exists so a
/// garbage count (say an uninitialised field) is refused instead of exhausting the OS.
pub const MAX_WORKERS: usize = 4096;

/// Most items one pool may hold in flight. Bounded so `capacity` can never overflow the
/// index arithmetic, and so a garbage value is refused rather than trusted.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Items in flight per worker when the caller leaves `capacity` at 0.
///
/// Measured (see README "Choosing capacity"): in ordered mode a slow item at the head
/// stalls delivery, and the other workers keep busy only while the window has room; and
/// cheap items travel in tasks of up to `capacity / (2 × workers)`, so a small window
/// means more thread hand-offs per item.
pub const DEFAULT_ITEMS_PER_WORKER: usize = 256;

/// Smallest default window, so few-worker pools still ride out ordinary skew and batch
/// cheap items well: every thread sleeps about once per window, and with four threads on
/// two cores (source mode) a window of 1024 spent half of a trivial item's time on
/// context switches (README "Choosing capacity").
pub const DEFAULT_MIN_CAPACITY: usize = 4096;

/// What the caller asks for. Zero means "choose for me" in `workers` and `capacity`.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Worker threads; 0 = the CPUs this process may use.
    pub workers: usize,
    /// Most items in flight; 0 = [`default_capacity`].
    pub capacity: usize,
    /// Hand results back in submission order.
    pub ordered: bool,
    /// Cancel the pool after the first failed item.
    pub fail_fast: bool,
    /// Prefix of thread names (`pmap-<name>-<id>`).
    pub name: Option<String>,
    /// Loom models only: fix the task length and wake batch, which are otherwise worked
    /// out from measured (wall-clock) item cost, and a model run must be deterministic.
    #[cfg(loom)]
    pub fixed_sizing: Option<(usize, usize)>,
}

/// A [`Config`] with every choice made and checked.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub workers: usize,
    pub capacity: usize,
    pub ordered: bool,
    pub fail_fast: bool,
    pub name: Option<String>,
    #[cfg(loom)]
    pub fixed_sizing: Option<(usize, usize)>,
}

/// The default window for `workers` threads: `max(4096, 256 × workers)`.
pub fn default_capacity(workers: usize) -> usize {
    (workers * DEFAULT_ITEMS_PER_WORKER).clamp(DEFAULT_MIN_CAPACITY, MAX_CAPACITY)
}

/// CPUs this process may run on (affinity mask and cgroup quota respected).
pub fn available_cpus() -> usize {
    num_cpus::get().max(1)
}

impl Config {
    /// Options with the documented defaults (ordered, no fail-fast, automatic sizes).
    pub fn new() -> Self {
        Config {
            ordered: true,
            ..Config::default()
        }
    }

    /// Fill in automatic values and refuse impossible ones.
    pub fn resolve(&self) -> Result<Resolved, Cow<'static, str>> {
        let workers = match self.workers {
            0 => available_cpus(),
            n if n > MAX_WORKERS => {
                return Err(format!("workers = {n} is above the limit of {MAX_WORKERS}").into());
            }
            n => n,
        };
        let capacity = match self.capacity {
            0 => default_capacity(workers),
            n if n > MAX_CAPACITY => {
                return Err(format!("capacity = {n} is above the limit of {MAX_CAPACITY}").into());
            }
            n => n,
        };
        if let Some(name) = &self.name {
            if name.contains('\0') {
                return Err("name contains a NUL byte".into());
            }
        }
        Ok(Resolved {
            workers,
            capacity,
            ordered: self.ordered,
            fail_fast: self.fail_fast,
            name: self.name.clone(),
            #[cfg(loom)]
            fixed_sizing: self.fixed_sizing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_automatic() {
        let r = Config::new().resolve().unwrap();
        assert_eq!(r.workers, available_cpus());
        assert_eq!(r.capacity, default_capacity(r.workers));
        assert!(r.ordered);
    }

    #[test]
    fn default_capacity_has_a_floor_and_scales() {
        assert_eq!(default_capacity(1), DEFAULT_MIN_CAPACITY);
        assert_eq!(default_capacity(16), 16 * DEFAULT_ITEMS_PER_WORKER);
    }

    #[test]
    fn absurd_values_are_refused_with_a_message() {
        let mut c = Config::new();
        c.workers = MAX_WORKERS + 1;
        assert!(c.resolve().unwrap_err().contains("workers"));
        let mut c = Config::new();
        c.capacity = MAX_CAPACITY + 1;
        assert!(c.resolve().unwrap_err().contains("capacity"));
    }
}
