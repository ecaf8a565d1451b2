//! How long a call may wait, as the C API expresses it in nanoseconds.

use std::time::{Duration, Instant};

/// A call's patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Do what can be done at once, never block.
    Never,
    /// Block until the call can complete.
    Forever,
    /// Block at most this long.
    For(Duration),
}

impl Wait {
    /// The C convention: `< 0` waits forever, `0` never waits, `> 0` is a limit in ns.
    pub fn from_nanos(ns: i64) -> Wait {
        match ns {
            n if n < 0 => Wait::Forever,
            0 => Wait::Never,
            n => Wait::For(Duration::from_nanos(n as u64)),
        }
    }

    pub(crate) fn deadline(self) -> Deadline {
        match self {
            Wait::Never => Deadline::Now,
            Wait::Forever => Deadline::Never,
            // A limit so large that it overflows `Instant` is the same as forever.
            Wait::For(d) => Instant::now()
                .checked_add(d)
                .map_or(Deadline::Never, Deadline::At),
        }
    }
}

/// A [`Wait`] fixed to a point in time when the call starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    Now,
    At(Instant),
    Never,
}
