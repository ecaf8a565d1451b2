//! An asymmetric fence for a Dekker-style handshake whose one side runs per item and whose
//! other side is rare: the feeder's hand-off of pulled items (`Shared::push_pulled`).
//!
//! After every pulled item the feeder must read whether a worker sleeps with no timer to
//! come back for the inbox; the worker sets that flag, then looks into the inbox. Each
//! side needs a full fence between its store and its load, and the feeder's, once per
//! item, was three quarters of `push_pulled`'s time with a trivial work function.
//!
//! Linux's `membarrier(2)` moves the whole cost to the rare side: the worker's call makes
//! every running thread of the process execute a full barrier (a thread not running
//! passes through one when it is switched back in), so the feeder needs only a compiler
//! fence. This is how liburcu and folly's `asymmetricHeavyBarrier` pair the two sides.
//!
//! Where the call is unavailable (another OS, an old kernel, a seccomp filter, loom and
//! Miri, which cannot model it) both sides use a `SeqCst` fence, as before. The choice is
//! made once per pool, before its threads start, so both sides always agree on it.
//!
//! A sandbox whose seccomp filter kills the process on an unexpected system call (rather
//! than failing it) can opt out with the environment variable `PMAP_NO_MEMBARRIER` set
//! to anything but empty or `0`: then pmap never makes the call.

use std::ffi::OsStr;
use std::sync::atomic::Ordering;

use crate::sync::fence;

/// The environment variable that keeps pmap from calling `membarrier(2)`.
const OPT_OUT_VAR: &str = "PMAP_NO_MEMBARRIER";

/// Whether a value of [`OPT_OUT_VAR`] opts out.
fn opts_out(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Which fences one pool's handshake uses.
pub(crate) struct HandshakeFence {
    asymmetric: bool,
}

impl HandshakeFence {
    /// The asymmetric pair where the kernel provides it and `wanted` (a pool without a
    /// feeder hands nothing over through the inbox, so it need not register). Must run
    /// before the pool's threads start: they read the choice without synchronisation of
    /// their own.
    pub(crate) fn new(wanted: bool) -> Self {
        let allowed = || !opts_out(std::env::var_os(OPT_OUT_VAR).as_deref());
        HandshakeFence {
            asymmetric: wanted && allowed() && sys::register(),
        }
    }

    /// The per-item side, between its store and its load.
    pub(crate) fn light(&self) {
        if self.asymmetric {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side, between its store and its load. Returns false when the barrier
    /// could not be issued (the kernel failed to allocate for it): the caller must then
    /// not rely on the handshake, and comes back on a timer instead.
    #[must_use]
    pub(crate) fn heavy(&self) -> bool {
        if self.asymmetric {
            sys::barrier()
        } else {
            fence(Ordering::SeqCst);
            true
        }
    }
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod sys {
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::threads::fork_generation;

    // From <linux/membarrier.h>.
    const CMD_QUERY: libc::c_int = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    /// One plus the fork generation in which registration succeeded (0: not yet).
    /// A forked child is a new process to the kernel, so it registers again.
    static REGISTERED_IN: AtomicU64 = AtomicU64::new(0);
    /// One plus the fork generation in which registration failed, so a process where
    /// the call is filtered out asks once, not once per pool.
    static REFUSED_IN: AtomicU64 = AtomicU64::new(0);

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes plain integers and touches no user memory.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    /// Register this process for private expedited barriers; whether it may use them.
    pub(super) fn register() -> bool {
        let generation = fork_generation() + 1;
        if REGISTERED_IN.load(Ordering::Acquire) == generation {
            return true;
        }
        if REFUSED_IN.load(Ordering::Relaxed) == generation {
            return false;
        }
        let supported = membarrier(CMD_QUERY);
        let ok = supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED as libc::c_long != 0
            && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
        let record = if ok { &REGISTERED_IN } else { &REFUSED_IN };
        record.store(generation, Ordering::Release);
        ok
    }

    pub(super) fn barrier() -> bool {
        membarrier(CMD_PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod sys {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn barrier() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_out_takes_any_value_but_empty_and_zero() {
        assert!(!opts_out(None));
        assert!(!opts_out(Some(OsStr::new(""))));
        assert!(!opts_out(Some(OsStr::new("0"))));
        assert!(opts_out(Some(OsStr::new("1"))));
        assert!(opts_out(Some(OsStr::new("yes"))));
    }

    #[test]
    fn both_sides_can_be_issued() {
        for wanted in [true, false] {
            let f = HandshakeFence::new(wanted);
            f.light();
            assert!(
                f.heavy(),
                "a registered process can always issue the barrier"
            );
        }
        // Registration is remembered: a second pool asks nothing of the kernel.
        let first = HandshakeFence::new(true).asymmetric;
        assert_eq!(HandshakeFence::new(true).asymmetric, first);
        assert!(!HandshakeFence::new(false).asymmetric);
    }
}
