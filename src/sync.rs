//! The synchronisation primitives the pipeline uses, in one place. Normal builds use std;
//! `--cfg loom` builds swap in loom's primitives, so the model checker explores the real
//! pipeline protocol (tests/loom.rs).

use std::sync::PoisonError;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Lock, ignoring poison: state updates never panic halfway (a panic inside pmap's own
/// threads aborts the process), so a poisoned lock still guards consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
