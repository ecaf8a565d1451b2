//! Reading a caller's `pmap_options`, whatever header version it was compiled against.

use std::ffi::CStr;
use std::mem::size_of;

use super::handler::{CHandler, CPtr, c_source};
use super::types::pmap_options;
use crate::config::Config;
use crate::handler::Source;

/// Size of the first released `pmap_options` layout; smaller is never valid.
pub(crate) const FIRST_LAYOUT_SIZE: usize = size_of::<pmap_options>();

/// Largest `struct_size` accepted: beyond this it is garbage, not a newer header.
const MAX_STRUCT_SIZE: usize = 4096;

/// The defaults `pmap_options_init` writes.
pub(crate) fn defaults() -> pmap_options {
    pmap_options {
        struct_size: FIRST_LAYOUT_SIZE as u32,
        workers: 0,
        capacity: 0,
        ordered: true,
        fail_fast: false,
        work: None,
        ctx: std::ptr::null_mut(),
        worker_init: None,
        worker_exit: None,
        source: None,
        on_drop: None,
        name: std::ptr::null(),
    }
}

/// What `pmap_new` needs, read from the caller's options.
pub(crate) struct Parsed {
    pub config: Config,
    pub handler: CHandler,
    pub source: Option<Source<CPtr>>,
}

/// Read and check `opts`.
///
/// # Safety
/// `opts` must be non-NULL and point to at least `opts->struct_size` readable bytes.
pub(crate) unsafe fn parse(opts: *const pmap_options) -> Result<Parsed, String> {
    // SAFETY: `struct_size` is the first field of every layout; the caller guarantees at
    // least that much is readable.
    let size = unsafe { opts.cast::<u32>().read_unaligned() } as usize;
    if size < FIRST_LAYOUT_SIZE {
        return Err(format!(
            "opts->struct_size is {size}, smaller than any released layout \
             ({FIRST_LAYOUT_SIZE}); call pmap_options_init first"
        ));
    }
    if size > MAX_STRUCT_SIZE {
        return Err(format!("opts->struct_size is {size}: not a pmap_options"));
    }
    // A newer header may add fields; accept them only when left zero (their defaults).
    // SAFETY: the caller guarantees `size` readable bytes; we read [FIRST_LAYOUT_SIZE, size).
    let tail = unsafe {
        std::slice::from_raw_parts(
            opts.cast::<u8>().add(FIRST_LAYOUT_SIZE),
            size - FIRST_LAYOUT_SIZE,
        )
    };
    if tail.iter().any(|&b| b != 0) {
        return Err(format!(
            "opts->struct_size is {size}: the options set fields this library \
             (version {}) does not know",
            env!("CARGO_PKG_VERSION")
        ));
    }
    // SAFETY: at least FIRST_LAYOUT_SIZE bytes are readable (checked above).
    let o: pmap_options = unsafe { opts.read_unaligned() };
    let Some(work) = o.work else {
        return Err("opts->work is NULL: a work function is required".into());
    };
    let name = if o.name.is_null() {
        None
    } else {
        // SAFETY: a non-NULL name must be a NUL-terminated string (documented).
        let name = unsafe { CStr::from_ptr(o.name) };
        Some(name.to_string_lossy().into_owned())
    };
    let ctx = CPtr(o.ctx);
    Ok(Parsed {
        config: Config {
            workers: o.workers as usize,
            capacity: o.capacity as usize,
            ordered: o.ordered,
            fail_fast: o.fail_fast,
            name,
            #[cfg(loom)]
            fixed_sizing: None,
        },
        handler: CHandler {
            work,
            ctx,
            init: o.worker_init,
            exit: o.worker_exit,
            on_drop: o.on_drop,
        },
        source: c_source(o.source, ctx),
    })
}
