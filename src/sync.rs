//! The synchronisation primitives the pipeline uses, in one place. Normal builds use std;
//! `--cfg loom` builds swap in loom's primitives, so the model checker explores the real
//! pipeline protocol (tests/loom.rs).

use std::sync::PoisonError;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// An `UnsafeCell` that loom can watch for data races. Normal builds compile it to a
/// plain `UnsafeCell`; access goes through a raw pointer either way.
pub(crate) struct RaceCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
);

impl<T> RaceCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(loom)]
        return RaceCell(loom::cell::UnsafeCell::new(value));
        #[cfg(not(loom))]
        RaceCell(std::cell::UnsafeCell::new(value))
    }

    /// Run `f` with a pointer to the value; the caller's protocol must rule out a
    /// concurrent access that conflicts with what `f` does through it.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with_mut(f);
        #[cfg(not(loom))]
        f(self.0.get())
    }
}

/// Lock, ignoring poison: state updates never panic halfway (a panic inside pmap's own
/// threads aborts the process), so a poisoned lock still guards consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wait on `cv` until notified or `timer` passes. Loom does not model time (its timed
/// wait never times out), so under loom the timer fires at once instead: the lock is
/// released, other threads may run, and the wait ends. That lets the models reach the
/// paths a timer takes; a real notify in between is no different from a timeout there.
pub(crate) fn wait_timer<'a, T>(
    cv: &Condvar,
    m: &'a Mutex<T>,
    guard: MutexGuard<'a, T>,
    timer: std::time::Duration,
) -> MutexGuard<'a, T> {
    #[cfg(loom)]
    {
        let _ = (cv, timer);
        drop(guard);
        loom::thread::yield_now();
        lock(m)
    }
    #[cfg(not(loom))]
    {
        let _ = m;
        cv.wait_timeout(guard, timer)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

/// Store `value` only if it differs from what `flag` holds (read relaxed): flags that are
/// recomputed on every hand-off but rarely change, so other threads keep their cached
/// copy of the line instead of losing it to a store per call.
pub(crate) fn set_if_changed(flag: &AtomicBool, value: bool, order: std::sync::atomic::Ordering) {
    if flag.load(std::sync::atomic::Ordering::Relaxed) != value {
        flag.store(value, order);
    }
}

/// Aborts the process if dropped during a panic: a pool thread that panicked would
/// leave items that never come back, which is worse than a loud stop.
pub(crate) struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        // Under loom, a panic on a model thread is the checker's report: let it through.
        if std::thread::panicking() && !cfg!(loom) {
            eprintln!("pmap: internal panic on a pool thread; aborting");
            std::process::abort();
        }
    }
}

/// Keeps a value on its own cache lines (128 bytes covers adjacent-line prefetch), so
/// threads writing it do not slow down threads reading its neighbours.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
