//! The synchronisation primitives the pipeline uses, in one place. Normal builds use std
//! and crossbeam-channel; `--cfg loom` builds swap in loom's primitives and a small
//! Mutex+Condvar channel (loom cannot see inside crossbeam), so the model checker
//! explores the real pipeline protocol (tests/loom.rs).

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

/// The work queue: crossbeam's unbounded MPMC channel.
#[cfg(not(loom))]
pub(crate) mod channel {
    pub(crate) use crossbeam_channel::{Receiver, Sender, unbounded};
}

/// The work queue under loom: the same interface over a Mutex and a Condvar.
#[cfg(loom)]
pub(crate) mod channel {
    use std::collections::VecDeque;

    use loom::sync::{Arc, Condvar, Mutex};

    struct Chan<T> {
        state: Mutex<(VecDeque<T>, usize)>,
        ready: Condvar,
    }

    pub(crate) struct Sender<T>(Arc<Chan<T>>);
    pub(crate) struct Receiver<T>(Arc<Chan<T>>);

    /// The channel is disconnected: every sender is gone (and, for `recv`, it is empty).
    #[derive(Debug)]
    pub(crate) struct Disconnected;

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new((VecDeque::new(), 1)),
            ready: Condvar::new(),
        });
        (Sender(chan.clone()), Receiver(chan))
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, item: T) -> Result<(), Disconnected> {
            self.0.state.lock().unwrap().0.push_back(item);
            self.0.ready.notify_one();
            Ok(())
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            self.0.state.lock().unwrap().1 += 1;
            Sender(self.0.clone())
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut st = self.0.state.lock().unwrap();
            st.1 -= 1;
            if st.1 == 0 {
                self.0.ready.notify_all();
            }
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn recv(&self) -> Result<T, Disconnected> {
            let mut st = self.0.state.lock().unwrap();
            loop {
                if let Some(item) = st.0.pop_front() {
                    return Ok(item);
                }
                if st.1 == 0 {
                    return Err(Disconnected);
                }
                st = self.0.ready.wait(st).unwrap();
            }
        }

        pub(crate) fn try_recv(&self) -> Result<T, Disconnected> {
            self.0
                .state
                .lock()
                .unwrap()
                .0
                .pop_front()
                .ok_or(Disconnected)
        }
    }
}
