//! Starting pool threads the way an embedding process needs them: named, with
//! asynchronous signals blocked from their first instruction, known to belong to their
//! pool (so reentrant blocking calls can be refused), and aware of `fork()`.

use std::cell::Cell;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Signals a thread receives because of what it did itself; never blocked.
#[cfg(not(any(loom, miri)))]
const SYNCHRONOUS: [libc::c_int; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGABRT,
];

/// Spawn a thread that starts with every asynchronous signal blocked.
///
/// The mask is set on the calling thread around `spawn`, so the new thread inherits it
/// before it runs a single instruction: there is no window in which a signal meant for
/// the host program's own threads could land on ours.
#[cfg(not(loom))]
pub(crate) fn spawn_blocking_signals<F>(name: String, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    // Miri cannot emulate signal masks; nothing it checks depends on them.
    #[cfg(not(miri))]
    let _restore = BlockAsyncSignals::new()?;
    std::thread::Builder::new().name(name).spawn(body)
}

/// Under loom, threads are the model checker's; signals play no part in the model.
#[cfg(loom)]
pub(crate) fn spawn_blocking_signals<F>(_name: String, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    Ok(loom::thread::spawn(body))
}

#[cfg(loom)]
pub(crate) use loom::thread::JoinHandle;
#[cfg(not(loom))]
pub(crate) use std::thread::JoinHandle;

/// Blocks asynchronous signals on this thread until dropped, then restores the old mask.
#[cfg(not(any(loom, miri)))]
struct BlockAsyncSignals {
    old: libc::sigset_t,
}

#[cfg(not(any(loom, miri)))]
impl BlockAsyncSignals {
    fn new() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigfillset/sigdelset initialise it fully, and
        // pthread_sigmask only reads `set` and writes `old`, both valid locals.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            for sig in SYNCHRONOUS {
                libc::sigdelset(&mut set, sig);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(BlockAsyncSignals { old })
        }
    }
}

#[cfg(not(any(loom, miri)))]
impl Drop for BlockAsyncSignals {
    fn drop(&mut self) {
        // SAFETY: `old` was filled by pthread_sigmask in `new`; restoring it is always valid.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// Address of the pool whose thread (or callback) this is; 0 when none.
    static OWNER: Cell<usize> = const { Cell::new(0) };
}

#[cfg(loom)]
loom::thread_local! {
    static OWNER: Cell<usize> = Cell::new(0);
}

/// Marks the current thread as running code on behalf of pool `owner` until dropped.
pub(crate) struct OwnerGuard {
    previous: usize,
}

impl OwnerGuard {
    pub(crate) fn enter(owner: usize) -> Self {
        OwnerGuard {
            previous: OWNER.with(|o| o.replace(owner)),
        }
    }
}

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        OWNER.with(|o| o.set(self.previous));
    }
}

/// Whether the current thread is inside pool `owner` (one of its threads or callbacks).
pub(crate) fn is_owned_by(owner: usize) -> bool {
    OWNER.with(|o| o.get()) == owner
}

/// Bumped in every child process right after `fork()`.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current fork generation; registers the `fork()` hook on first use.
///
/// A pool remembers the generation it was born in; a different value later means the
/// caller is a forked child in which the pool's threads do not exist.
pub(crate) fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn` that only touches an atomic, so
        // it is async-signal-safe as a child handler must be; NULL prepare/parent are allowed.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        // Only ENOMEM is possible; without the hook a forked child would misbehave, and
        // refusing to start pools over it would be worse than the rare failure.
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Blocked async signals of the calling thread, for tests.
#[cfg(all(test, not(miri)))]
pub(crate) fn current_thread_blocks(sig: libc::c_int) -> bool {
    // SAFETY: querying the mask with a NULL `set` only writes `cur`, a valid local.
    unsafe {
        let mut cur: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
        libc::sigismember(&cur, sig) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(miri))]
    fn spawned_threads_block_async_signals_and_the_caller_is_restored() {
        assert!(!current_thread_blocks(libc::SIGALRM));
        let h = spawn_blocking_signals("pmap-test".into(), || {
            assert!(current_thread_blocks(libc::SIGALRM));
            assert!(current_thread_blocks(libc::SIGINT));
            assert!(!current_thread_blocks(libc::SIGSEGV));
        })
        .unwrap();
        h.join().unwrap();
        assert!(!current_thread_blocks(libc::SIGALRM));
    }

    #[test]
    fn owner_guard_nests_and_restores() {
        assert!(!is_owned_by(7));
        {
            let _a = OwnerGuard::enter(7);
            assert!(is_owned_by(7));
            {
                let _b = OwnerGuard::enter(9);
                assert!(is_owned_by(9) && !is_owned_by(7));
            }
            assert!(is_owned_by(7));
        }
        assert!(!is_owned_by(7));
    }
}
