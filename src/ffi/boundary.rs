//! The edge of the ABI: panic containment, pointer checks and `pmap_last_error`.

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
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

/// This thread's last error. Recorded cheaply (a `PMAP_TIMEOUT` is routine on hot paths
/// such as a full window) and formatted only when `pmap_last_error` asks for it.
struct LastError {
    fn_name: &'static str,
    status: Status,
    message: Cow<'static, str>,
    /// The formatted, NUL-terminated message; reused to avoid allocating.
    text: Vec<u8>,
    /// `text` matches the fields above.
    formatted: bool,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const {
        RefCell::new(LastError {
            fn_name: "",
            status: Status::Ok,
            message: Cow::Borrowed(""),
            text: Vec::new(),
            formatted: true,
        })
    };
}

/// Record `"<fn>: <STATUS>: <message>"` as this thread's last error.
pub(crate) fn record(fn_name: &'static str, status: Status, message: Cow<'static, str>) {
    LAST_ERROR.with(|cell| {
        let mut last = cell.borrow_mut();
        last.fn_name = fn_name;
        last.status = status;
        last.message = message;
        last.formatted = false;
    });
}

/// Record `err` and return its status as the C status code.
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
    LAST_ERROR.with(|cell| {
        let mut last = cell.borrow_mut();
        if !last.formatted {
            let LastError {
                fn_name,
                status,
                message,
                text,
                ..
            } = &mut *last;
            text.clear();
            let _ = write!(text, "{fn_name}: {}: {message}", status.name());
            // An interior NUL would cut the message short, never overrun it.
            text.push(0);
            last.formatted = true;
        }
        if last.text.is_empty() {
            c"".as_ptr()
        } else {
            // The buffer lives as long as the thread and only changes when this thread
            // asks again after another failing call, as documented for `pmap_last_error`.
            last.text.as_ptr().cast()
        }
    })
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
