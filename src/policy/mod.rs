//! The policy engine: who may do what with which key. Pure Rust over
//! typed facts, testable without a token; the gateway calls it (docs/policy.md,
//! "Enforcement points").
//!
//! - `format`: the TOML file as written (serde, unknown keys refused);
//! - `compile`: file → [`Policy`], names resolved, globs/regexes compiled, rules
//!   bucketed by operation; any error names `file:line:col` (fail closed);
//! - `evaluate`: [`Policy::resolve`] a [`Principal`] once into a [`Subject`], then
//!   [`Policy::decide`] each [`Request`] and [`Policy::may_see`] each found object;
//! - `creation`: the `[creation]` rules and [`Policy::decide_create`] /
//!   [`Policy::decide_set_attributes`];
//! - `cryptoperiod`: `[[cryptoperiod]]`, [`Policy::cryptoperiod_for`] (lifecycle);
//! - `lint`: findings for `keywarden policy check`;
//! - `handle`: [`PolicyHandle`], the active policy, reloaded when the file changes;
//! - `clock`: injected time;
//! - `bridge`: [`Principal::from_process`] and the `store` type conversions.

mod bridge;
mod clock;
mod compile;
mod creation;
mod cryptoperiod;
mod evaluate;
mod format;
mod handle;
mod lint;
mod matchers;
mod model;
pub mod names;
mod parse;
mod subject;

#[cfg(test)]
mod tests;

pub use clock::{injected_now, Clock, LocalTime, ManualClock, SystemClock, NOW_ENV};
pub use compile::Policy;
pub use creation::{CreateDecision, Creation, CreationKind, DEFAULT_KEY_TYPES};
pub use cryptoperiod::{parse_period, Cryptoperiod, UnmanagedKeys, WhenDue};
pub use evaluate::Request;
pub use handle::{PolicyHandle, Reload, ReloadObserver, DEFAULT_CHECK_INTERVAL_MS};
pub use lint::{Finding, FindingKind};
pub use model::{
    is_secret_attribute, Decision, KeyFacts, Level, Login, NamedIdentity, Op, Principal, RuleRef,
};
pub use subject::Subject;

/// The commented baseline policy `keywarden init --profile baseline` writes.
pub const BASELINE_POLICY: &str = include_str!("baseline.toml");
