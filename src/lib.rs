//! pmap: a streaming, bounded, cancellable parallel map, shipped as a C ABI.
//!
//! The Rust core is [`Pool`], generic over a [`Handler`]; the C API in [`ffi`] is a thin
//! layer that runs a `Pool` over C function pointers and `void *` items. See
//! `src/DESIGN.md` for how the pipeline works and what bounds its memory.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod chunk;
mod collector;
pub mod config;
mod feeder;
pub mod ffi;
pub mod handler;
mod membarrier;
mod outbox;
mod pool;
mod queue;
mod ring;
mod shared;
mod spin;
pub mod stats;
pub mod status;
mod stored;
mod sync;
mod threads;
pub mod wait;
mod worker;

pub use config::Config;
pub use handler::{Handler, NO_WORKER, Outcome, Pulled, Source};
pub use pool::{Error, Pool, Rejected};
pub use stats::Stats;
pub use status::{ItemStatus, Status};
pub use wait::Wait;
