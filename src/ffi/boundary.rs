//! The edge of the ABI: panic containment, pointer checks and `pmap_last_error`.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::io::Write;

use crate::pool::Error;
use crate::status::Status;

/// Runs an export's body; a panic becomes `$default` and a `pmap_last_error` message.
///
/// Every export wraps its body (not itself) so cbindgen sees each function as written.
macro_rules! ffi_boundary {
    ($name:literal, $default:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| {
            $crate::ffi::boundary::fault_point($name);
            $body
        })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::boundary::record_panic($name, payload.as_ref());
                $default
            }
        }
    };
}

/// `&mut T` from an out-pointer argument, or return `PMAP_INVALID`.
macro_rules! try_mut {
    ($fn_name:literal, $ptr:ident) => {{
        if $ptr.is_null() {
            return $crate::ffi::boundary::invalid($fn_name, concat!(stringify!($ptr), " is NULL"));
        }
        // SAFETY: non-NULL was checked above; the caller promises it points to writable
        // memory of the right type for the duration of the call.
        unsafe { &mut *$ptr }
    }};
}

/// This thread's last error, as plain data: a `PMAP_TIMEOUT` is routine on hot paths
/// (a polled submit into a full window), and a thread-local with a destructor cost about
/// 70 instructions per access where this costs a few. The text is formatted only when
/// `pmap_last_error` asks for it.
#[derive(Clone, Copy)]
struct LastError {
    fn_name: &'static str,
    status: Status,
    /// The message, unless it was built at run time (then it is in `LAST_TEXT`).
    message: Option<&'static str>,
    /// Counts the errors recorded on this thread; 0 = none yet.
    seq: u64,
}

/// The formatted message, and a message built at run time: the rare paths.
struct LastText {
    /// The formatted, NUL-terminated message of error `text_seq`; reused to avoid
    /// allocating.
    text: Vec<u8>,
    text_seq: u64,
    /// The message of the last error whose message was built at run time.
    owned: String,
}

thread_local! {
    static LAST_ERROR: Cell<LastError> = const {
        Cell::new(LastError { fn_name: "", status: Status::Ok, message: Some(""), seq: 0 })
    };
    static LAST_TEXT: RefCell<LastText> = const {
        RefCell::new(LastText { text: Vec::new(), text_seq: 0, owned: String::new() })
    };
}

/// Record `"<fn>: <STATUS>: <message>"` as this thread's last error.
#[inline]
pub(crate) fn record(fn_name: &'static str, status: Status, message: Cow<'static, str>) {
    match message {
        Cow::Borrowed(message) => record_static(fn_name, status, message),
        Cow::Owned(message) => record_owned(fn_name, status, message),
    }
}

/// `record` for a message fixed at compile time: a polled submit into a full window
/// makes this call once per item, and the same failure again changes nothing.
#[inline]
fn record_static(fn_name: &'static str, status: Status, message: &'static str) {
    let last = LAST_ERROR.get();
    let same = last.status == status
        && std::ptr::eq(last.fn_name, fn_name)
        && last.message.is_some_and(|m| std::ptr::eq(m, message));
    if !same {
        set_last(fn_name, status, Some(message), last.seq);
    }
}

/// `record` for a message built at run time.
#[cold]
fn record_owned(fn_name: &'static str, status: Status, message: String) {
    // `try_with`: a call failing in another thread-local's destructor, after this
    // one's, must still get its status back rather than a panic.
    let message = match LAST_TEXT.try_with(|t| t.borrow_mut().owned = message) {
        Ok(()) => None,
        Err(_) => Some("(the message was lost: the thread is exiting)"),
    };
    set_last(fn_name, status, message, LAST_ERROR.get().seq);
}

fn set_last(fn_name: &'static str, status: Status, message: Option<&'static str>, seq: u64) {
    LAST_ERROR.set(LastError {
        fn_name,
        status,
        message,
        seq: seq + 1,
    });
}

/// Record `err` and return its status as the C status code.
#[inline]
pub(crate) fn fail(fn_name: &'static str, err: &Error) -> i32 {
    if err.status != Status::Done {
        record(fn_name, err.status, err.message.clone());
    }
    err.status as i32
}

/// Record an invalid-argument message and return `PMAP_INVALID`.
pub(crate) fn invalid(fn_name: &'static str, message: impl Into<Cow<'static, str>>) -> i32 {
    record(fn_name, Status::Invalid, message.into());
    Status::Invalid as i32
}

pub(crate) fn record_panic(fn_name: &'static str, payload: &(dyn Any + Send)) {
    let detail = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let message = format!("internal panic caught: {detail}");
    record(fn_name, Status::Internal, message.into());
}

/// This thread's last error as a C string, or "" when there was none.
pub(crate) fn last_error_ptr() -> *const c_char {
    let last = LAST_ERROR.get();
    if last.seq == 0 {
        return c"".as_ptr();
    }
    let text = LAST_TEXT.try_with(|t| {
        let mut t = t.borrow_mut();
        if t.text_seq != last.seq {
            let LastText { text, owned, .. } = &mut *t;
            let message = last.message.unwrap_or(owned);
            text.clear();
            let _ = write!(text, "{}: {}: {message}", last.fn_name, last.status.name());
            // An interior NUL would cut the message short, never overrun it.
            text.push(0);
            t.text_seq = last.seq;
        }
        // The buffer lives as long as the thread and only changes when this thread asks
        // again after another failing call, as documented for `pmap_last_error`.
        t.text.as_ptr().cast()
    });
    // Asked from another thread-local's destructor, after this one's.
    text.unwrap_or(c"".as_ptr())
}

/// With the `fault-injection` feature, panics inside the export named by the environment
/// variable `PMAP_FAULT_PANIC` (read once), so tests can prove every boundary holds.
#[cfg(feature = "fault-injection")]
pub(crate) fn fault_point(fn_name: &str) {
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var("PMAP_FAULT_PANIC").ok());
    if target.as_deref() == Some(fn_name) {
        panic!("fault injected in {fn_name}");
    }
}

/// Without the `fault-injection` feature this compiles to nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn fault_point(_fn_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: `last_error_ptr` returns a NUL-terminated string that stays valid until
        // this thread records and asks again.
        let text = unsafe { CStr::from_ptr(last_error_ptr()) };
        text.to_str().expect("UTF-8").to_owned()
    }

    #[test]
    fn each_failure_replaces_the_last_error_text() {
        // A thread of its own: the record is per thread.
        std::thread::spawn(|| {
            assert_eq!(last(), "");
            let timeout = "the timeout expired";
            record("pmap_submit", Status::Timeout, Cow::Borrowed(timeout));
            assert_eq!(last(), "pmap_submit: PMAP_TIMEOUT: the timeout expired");
            // The same failure again leaves the text as it is.
            record("pmap_submit", Status::Timeout, Cow::Borrowed(timeout));
            assert_eq!(last(), "pmap_submit: PMAP_TIMEOUT: the timeout expired");
            record("pmap_next", Status::Timeout, Cow::Borrowed(timeout));
            assert_eq!(last(), "pmap_next: PMAP_TIMEOUT: the timeout expired");
            record(
                "pmap_new",
                Status::Invalid,
                Cow::Owned(format!("workers: {}", 7)),
            );
            assert_eq!(last(), "pmap_new: PMAP_INVALID: workers: 7");
            record(
                "pmap_new",
                Status::Invalid,
                Cow::Owned("capacity: 0".to_owned()),
            );
            assert_eq!(last(), "pmap_new: PMAP_INVALID: capacity: 0");
            // A static message after a run-time one, though it was recorded before.
            record("pmap_next", Status::Timeout, Cow::Borrowed(timeout));
            assert_eq!(last(), "pmap_next: PMAP_TIMEOUT: the timeout expired");
        })
        .join()
        .expect("the test thread");
    }
}
