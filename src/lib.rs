//! Keywarden: a PKCS#11 module that forwards every call to a real token and adds
//! key-management policy, lifecycle and audit on the way.
//!
//! Layers, top to bottom (see `docs/architecture.md`; `tests/layers.rs` checks them):
//! front ends (`ffi`, the C ABI; `cli`, the admin command; `service`, the socket of
//! `keywarden serve`) → `gateway` (one call's path) → engines (`policy`,
//! `lifecycle`, `audit`) → `backend`, `store`, `identity` → `config`, `error`, `abi`
//! and the small utilities.
//!
//! Only `ffi` (raw pointers from the application) and `backend` (the dlopen'ed real
//! module) may contain `unsafe`; every block carries a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod abi;
pub mod audit;
#[allow(unsafe_code)]
pub mod backend;
pub mod call;
pub mod cli;
pub mod coarse_clock;
pub mod config;
pub mod error;
pub mod fasthash;
#[allow(unsafe_code)]
mod ffi;
pub mod fsguard;
pub mod functions;
mod functions_table;
pub mod gateway;
pub mod identity;
pub mod lifecycle;
pub mod logging;
pub mod pin_file;
pub mod policy;
pub mod service;
pub mod store;
pub mod wire;

pub use error::{Error, Result};

/// The fuzzing entry over the argument decoders (`tests/fuzz`), only with the
/// `fuzzing` feature: it builds raw PKCS#11 structs, which needs `ffi`'s `unsafe`.
#[cfg(feature = "fuzzing")]
pub use ffi::fuzzing;

/// The Keywarden version reported by the CLI and by `keywarden_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
