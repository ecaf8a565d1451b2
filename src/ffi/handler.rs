//! The core's `Handler` over C function pointers and `void *` items.

use std::ffi::c_void;
use std::ptr;

use super::types::{
    pmap_drop_fn, pmap_result, pmap_source_fn, pmap_worker_exit_fn, pmap_worker_init_fn,
};
use crate::handler::{Handler, Outcome, Pulled, Source};

/// A C pointer the pool carries between threads without looking inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CPtr(pub *mut c_void);

// SAFETY: pmap never dereferences these pointers; it only hands them back to the caller's
// callbacks or to `pmap_next`, and the C contract makes the caller responsible for the
// pointee being usable from the pool's threads.
unsafe impl Send for CPtr {}

impl CPtr {
    /// The raw pointer. A method (not `.0`) so closures capture the whole `Send` wrapper.
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

pub(crate) type WorkFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, *mut *mut c_void) -> i32;

/// The callbacks and context of one C pool.
pub(crate) struct CHandler {
    pub work: WorkFn,
    pub ctx: CPtr,
    pub init: pmap_worker_init_fn,
    pub exit: pmap_worker_exit_fn,
    pub on_drop: pmap_drop_fn,
}

// SAFETY: the contract documents `ctx` as shared by every callback on every pool thread;
// by passing it the caller promises it is safe to use from them. The function pointers
// themselves are plain code addresses.
unsafe impl Sync for CHandler {}

impl Handler for CHandler {
    type Item = CPtr;
    type Output = CPtr;
    type State = CPtr;

    fn init(&self, worker: u32) -> CPtr {
        match self.init {
            // SAFETY: a C callback the caller registered, called as its typedef documents.
            Some(init) => CPtr(unsafe { init(self.ctx.0, worker) }),
            None => CPtr(ptr::null_mut()),
        }
    }

    fn work(&self, state: &mut CPtr, item: &mut CPtr) -> Result<CPtr, i32> {
        let mut out = ptr::null_mut();
        // SAFETY: a C callback the caller registered; `out` is a valid local for it to write.
        let code = unsafe { (self.work)(self.ctx.0, state.0, item.0, &mut out) };
        if code == 0 { Ok(CPtr(out)) } else { Err(code) }
    }

    fn exit(&self, worker: u32, state: CPtr) {
        if let Some(exit) = self.exit {
            // SAFETY: a C callback the caller registered, called as its typedef documents.
            unsafe { exit(self.ctx.0, worker, state.0) }
        }
    }

    fn drop_unreturned(&self, outcome: Outcome<CPtr, CPtr>) {
        if let Some(on_drop) = self.on_drop {
            let result = to_c_result(outcome);
            // SAFETY: a C callback the caller registered; `result` outlives the call.
            unsafe { on_drop(self.ctx.0, &result) }
        }
    }
}

/// The C view of an outcome.
pub(crate) fn to_c_result(o: Outcome<CPtr, CPtr>) -> pmap_result {
    pmap_result {
        index: o.index,
        item: o.item.map_or(ptr::null_mut(), |p| p.0),
        value: o.value.map_or(ptr::null_mut(), |p| p.0),
        status: o.status as i32,
        error: o.error,
        worker: o.worker,
    }
}

/// A core `Source` that calls a C source function.
pub(crate) fn c_source(source: pmap_source_fn, ctx: CPtr) -> Option<Source<CPtr>> {
    let source = source?;
    Some(Box::new(move || {
        let mut item = ptr::null_mut();
        // SAFETY: a C callback the caller registered; only the feeder thread calls it, one
        // call at a time, as documented; `item` is a valid local for it to write.
        match unsafe { source(ctx.get(), &mut item) } {
            1 => Pulled::Item(CPtr(item)),
            0 => Pulled::End,
            code => Pulled::Failed(code),
        }
    }))
}
