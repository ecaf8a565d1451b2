//! Status codes returned by every call, and per-item statuses carried in results.
//!
//! The numbers are part of the ABI: they are spelled out and never reused. A retired
//! value stays here as a comment so nobody hands it out again.

use std::ffi::CStr;

/// Outcome of a `pmap_*` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The call did what it was asked.
    Ok = 0,
    /// Input is closed (or the pool cancelled) and every item has been handed back.
    Done = 1,
    /// Nothing could be done before the timeout ran out.
    Timeout = 2,
    /// The input was closed with `pmap_close`; no more items are accepted.
    Closed = 3,
    /// The pool was cancelled; no more items are accepted.
    Cancelled = 4,
    /// Bad arguments or a call that is not allowed in this state; see `pmap_last_error`.
    Invalid = 5,
    /// The operating system refused a resource (threads).
    System = 6,
    /// A bug inside pmap was caught at the boundary; the process is still intact.
    Internal = 7,
    /// The pool was created in a parent process; in this forked child only `pmap_free` works.
    Forked = 8,
}

impl Status {
    /// The stable, human-readable description of a raw status value (never NULL).
    pub fn describe(code: i32) -> &'static CStr {
        match code {
            0 => c"PMAP_OK: success",
            1 => c"PMAP_DONE: input closed or pool cancelled, and every item has been handed back",
            2 => c"PMAP_TIMEOUT: the timeout expired before the call could complete",
            3 => c"PMAP_CLOSED: input is closed; no more items are accepted",
            4 => c"PMAP_CANCELLED: the pool is cancelled; no more items are accepted",
            5 => c"PMAP_INVALID: invalid argument or call not allowed in this state",
            6 => c"PMAP_SYSTEM: the operating system refused a resource",
            7 => c"PMAP_INTERNAL: internal error in pmap (caught; the process is intact)",
            8 => c"PMAP_FORKED: the pool belongs to the parent process; only pmap_free works",
            _ => c"PMAP_UNKNOWN: not a pmap status code",
        }
    }

    /// The name of this status (`PMAP_OK`, `PMAP_DONE`, …).
    pub fn name(self) -> &'static str {
        let text = Status::describe(self as i32)
            .to_str()
            .unwrap_or("PMAP_UNKNOWN");
        text.split(':').next().unwrap_or(text)
    }
}

/// The per-item outcome carried in a result (`pmap_result.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemStatus {
    /// The work function returned 0; `value` holds its output.
    Ok = 0,
    /// The work function returned a non-zero code, found in `error`.
    Failed = 1,
    /// The item never ran: the pool was cancelled first.
    Cancelled = 2,
    /// The source reported an error at this index; `item` is NULL, the code is in `error`.
    SourceFailed = 3,
    // 4 is reserved for PMAP_ITEM_TIMED_OUT.
}
