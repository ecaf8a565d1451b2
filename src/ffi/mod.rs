//! The C ABI: a thin layer that runs a [`Pool`](crate::Pool) over C function pointers.
//!
//! * `types` declares what C sees (options, results, stats, status numbers);
//! * `boundary` is the one place that turns panics into `PMAP_INTERNAL`, checks pointers
//!   and records `pmap_last_error`;
//! * `handler` adapts C callbacks to the core's `Handler`;
//! * `options` reads a caller's `pmap_options` of any size;
//! * `api` holds every `pmap_*` export.

#[macro_use]
mod boundary;
pub mod api;
mod handler;
mod options;
pub mod types;
