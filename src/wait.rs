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
            Wait::For(d) => Deadline::After(d),
        }
    }
}

/// How long a call may still wait. A limit becomes a point in time the first time the
/// call has to wait (`fix`), so a call that completes at once, the common case, never
/// reads the clock; what it did before it first had to wait is not waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    Now,
    /// A limit not yet fixed to a point in time.
    After(Duration),
    At(Instant),
    Never,
}

impl Deadline {
    /// How long the call may still wait: `None` when it may not (any more), `Some(None)`
    /// for as long as it takes. A limit is fixed to a point in time here, the first time.
    pub(crate) fn remaining(&mut self) -> Option<Option<Duration>> {
        match *self {
            Deadline::Now => None,
            Deadline::Never => Some(None),
            Deadline::At(at) => at.checked_duration_since(Instant::now()).map(Some),
            Deadline::After(d) => {
                // A limit so large that it overflows `Instant` is the same as forever.
                *self = Instant::now()
                    .checked_add(d)
                    .map_or(Deadline::Never, Deadline::At);
                Some((*self != Deadline::Never).then_some(d))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_starts_counting_when_first_asked_for() {
        let mut d = Wait::from_nanos(50_000_000).deadline();
        assert_eq!(
            d,
            Deadline::After(Duration::from_millis(50)),
            "no clock read yet"
        );
        std::thread::sleep(Duration::from_millis(60));
        let left = d
            .remaining()
            .expect("fixed only now: the sleep before does not count");
        assert_eq!(left, Some(Duration::from_millis(50)));
        assert!(matches!(d, Deadline::At(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(d.remaining(), None, "fixed once: the limit has run out");
    }

    #[test]
    fn never_and_forever_need_no_clock() {
        assert_eq!(Wait::from_nanos(0).deadline().remaining(), None);
        assert_eq!(Wait::from_nanos(-1).deadline().remaining(), Some(None));
        let mut huge = Wait::For(Duration::MAX).deadline();
        assert_eq!(
            huge.remaining(),
            Some(None),
            "past what Instant holds: forever"
        );
        assert_eq!(huge, Deadline::Never);
    }
}
