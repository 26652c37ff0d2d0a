//! Xuncha's core: what a grid worker's phone does offline, shared with the server.
//!
//! - [`checklist`]: the four inspection checklists as data, and evaluating answers.
//! - [`model`]: premises, inspections, findings, geotags.
//! - [`clock`]: the hybrid logical clock that orders ops across devices.
//! - [`op`]: the op log's records; [`merge`] and [`hazard`]: the pure merge rules and the
//!   hazard lifecycle fold.
//! - [`campaign`]: campaigns (专项行动) and their progress.
//! - [`due`]: what a worker should do next (re-inspections, notices, re-checks) and when to
//!   remind them.
//! - [`store`]: the SQLite replica: record changes as ops, apply synced ops, query, digest.
//! - [`sync`]: the sync protocol's messages; with feature `client`, the phone's sync client.
//! - [`workload`]: synthetic op streams for benchmarks and load tests.
//!
//! Layers: `checklist`, `model`, `clock`, `op`, `merge`, `hazard`, `campaign` and `due` do no I/O; only `store`
//! touches the database and only `sync::client` the network.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("xuncha_core");

pub mod calendar;
pub mod campaign;
pub mod checklist;
pub mod clock;
pub mod due;
mod error;
#[cfg(feature = "uniffi")]
pub mod ffi;
pub mod hazard;
pub mod location;
pub mod merge;
pub mod model;
pub mod notice;
pub mod op;
#[cfg(feature = "photo")]
pub mod photo;
pub mod store;
pub mod sync;
pub mod workload;

pub use error::{Error, Result};
