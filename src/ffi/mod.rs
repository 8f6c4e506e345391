//! The C ABI: the only place where the application's raw pointers are touched.
//!
//! - `entry.rs` generates, from the one function table, an `extern "C"` entry point
//!   per function and the static 2.40 and 3.0 function lists.
//! - `boundary.rs` is the job every entry point does: catch panics, run a plain Rust
//!   handler returning `Result`, map the error to its `CK_RV`; and the module state
//!   (initialised or not, fork generation).
//! - `args.rs` turns pointers into references and slices, checking NULL, length and
//!   alignment (`CKR_ARGUMENTS_BAD` otherwise).
//! - `decode.rs` turns templates and mechanisms into the typed views of `abi`
//!   (`Template`, `MechanismSummary`) for policy and audit; `fuzzing.rs` is the
//!   libFuzzer entry over it (feature `fuzzing`).
//! - One handler file per specification chapter group: `general.rs` (§5.4),
//!   `slots_sessions.rs` (§5.5-5.6), `objects.rs` (§5.7), `crypto.rs` (§5.8-5.15).
//! - `output.rs`: where the backend writes a data call's output (the caller's
//!   buffer, or in `required` audit mode Keywarden's, copied out once recorded).
//! - `exports.rs` holds the only exported symbols.
//!
//! Conventions are written down in `docs/abi-conventions.md`.
#![deny(clippy::undocumented_unsafe_blocks)]

mod args;
mod boundary;
mod crypto;
mod decode;
mod entry;
mod exports;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod general;
mod objects;
mod output;
mod report;
mod slots_sessions;

/// Every handler, named exactly as its C function, for the generated entry points.
mod handlers {
    pub(super) use super::crypto::*;
    pub(super) use super::general::*;
    pub(super) use super::objects::*;
    pub(super) use super::slots_sessions::*;
}
