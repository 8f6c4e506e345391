//! The lifecycle engine: what each SP 800-57 state permits, when a version
//! is due under its cryptoperiod, rotation orchestrated between a token and the
//! store, and the lifecycle state of a running module. The decisions are pure over
//! typed inputs and an explicit `now`, and the token is behind [`TokenOps`], so they
//! run in unit tests without one; `runtime` holds what the module keeps between
//! calls.
//!
//! - this file: [`permits`] (the per-operation state check the gateway calls on
//!   the hot path) and [`due`] / [`schedule`];
//! - `token`: [`TokenOps`], what rotation, adoption and destruction need of a token;
//! - `shape`: [`KeyShape`], [`COPIED_FLAGS`] and [`KeyShape::generation`], what
//!   "the same key again" is for every [`TokenOps`];
//! - `backend_token`: `BackendToken`, [`TokenOps`] over the loaded backend (the
//!   module's automatic rotation);
//! - `rotate`: [`rotate`], [`reconcile`], [`RotationLock`], [`new_cka_id`];
//! - `index`: [`LifecycleIndex`], the gateway's cached view (lookups by `CKA_ID`,
//!   label-search hiding, the per-operation check);
//! - `runtime`: `LifecycleRuntime`, the lifecycle state of one running module (the
//!   store, the index kept current, usage counters, search
//!   visibility, the per-operation `check_use` and automatic rotation), which the
//!   gateway holds.

mod backend_token;
mod index;
mod rotate;
mod runtime;
mod shape;
mod token;

#[cfg(test)]
mod tests;

pub use backend_token::ck_date;
use backend_token::BackendToken;
pub use index::{current_version, key_facts, LifecycleIndex};
pub use rotate::{
    is_rotation_id, new_cka_id, reconcile, rotate, Orphan, RotateError, RotateOutcome,
    RotationLock, FAULT_ENV, LOCK_FILE, ROTATION_ID_MAGIC,
};
pub(crate) use runtime::{
    check_use, clock_from_env, AutoRotation, LcRefusal, LifecycleRuntime, ManagedObject, View,
    ROTATE_RETRY,
};
pub use shape::{Generation, KeyGen, KeyShape, TemplateAttr, COPIED_FLAGS};
pub use token::{TokenError, TokenObject, TokenOps};

use pkcs11_sys::{CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_HANDLE_INVALID, CK_RV};

use crate::policy::{Cryptoperiod, Op, WhenDue};
use crate::store::{KeyState, KeyVersion, UnixTime};

/// Why the lifecycle refuses an operation: the code to return and words for the
/// audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `CKR_KEY_FUNCTION_NOT_PERMITTED`, or `CKR_KEY_HANDLE_INVALID` for a destroyed
    /// version (its objects are gone; a stale handle must not look usable).
    pub rv: CK_RV,
    /// Human-readable reason.
    pub reason: String,
}

/// The "processing" side of SP 800-57 (§5.3.4): operations that consume data
/// protected earlier, allowed during the recipient-usage period.
fn processing(op: Op) -> bool {
    matches!(op, Op::Verify | Op::Decrypt | Op::Unwrap)
}

/// Whether the lifecycle state of `version` permits `op` at `now` — the check the
/// gateway makes before forwarding any operation on a managed key's object, after
/// policy allowed it (policy decides *who*, this decides *whether the key is in a
/// state to be used at all*).
///
/// - pre-activation, suspended: nothing;
/// - active: everything (policy decides);
/// - deactivated: verify, decrypt, unwrap until the end of the recipient-usage period
///   (`activated_at + period.recipient_secs`; with no cryptoperiod, no end);
/// - compromised: nothing, except verify when the cryptoperiod says
///   `forensic_verify = true`;
/// - destroyed: nothing.
///
/// Operations that do not use the key (see `Op::uses_key_value`; the state of a key says
/// nothing about who may relabel it) pass in every state but
/// destroyed.
pub fn permits(
    version: &KeyVersion,
    op: Op,
    now: UnixTime,
    period: Option<&Cryptoperiod>,
) -> Result<(), Refusal> {
    let refuse = |rv: CK_RV, why: String| {
        Err(Refusal {
            rv,
            reason: format!("version {} is {}: {why}", version.version, version.state),
        })
    };
    if version.state == KeyState::Destroyed {
        return refuse(CKR_KEY_HANDLE_INVALID, "its objects were destroyed".into());
    }
    if !op.uses_key_value() {
        return Ok(());
    }
    let op_name = op.name();
    match version.state {
        KeyState::Active => Ok(()),
        KeyState::PreActivation | KeyState::Suspended => refuse(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            format!("no {op_name} in this state"),
        ),
        KeyState::Deactivated => {
            if !processing(op) {
                return refuse(
                    CKR_KEY_FUNCTION_NOT_PERMITTED,
                    format!("only verify, decrypt and unwrap, not {op_name}"),
                );
            }
            match recipient_end(version, period) {
                Some(end) if now >= end => refuse(
                    CKR_KEY_FUNCTION_NOT_PERMITTED,
                    format!("its recipient-usage period ended at {end}"),
                ),
                _ => Ok(()),
            }
        }
        KeyState::Compromised => {
            if op == Op::Verify && period.is_some_and(|p| p.forensic_verify) {
                Ok(())
            } else {
                refuse(
                    CKR_KEY_FUNCTION_NOT_PERMITTED,
                    format!("no {op_name} (forensic verify only where policy allows it)"),
                )
            }
        }
        KeyState::Destroyed => refuse(CKR_KEY_HANDLE_INVALID, "its objects were destroyed".into()),
    }
}

fn recipient_end(version: &KeyVersion, period: Option<&Cryptoperiod>) -> Option<UnixTime> {
    let p = period?;
    // A version never activated has no usage period to run out; use its creation.
    let start = version.activated_at.unwrap_or(version.created_at);
    Some(start.saturating_add(p.recipient_secs))
}

/// When a version's periods end (absent without a cryptoperiod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// End of the originator-usage period: the version is due from then on.
    pub originator_end: UnixTime,
    /// End of the recipient-usage period: deactivated versions stop processing.
    pub recipient_end: UnixTime,
}

/// A version's period ends under a cryptoperiod, counted from its activation (its
/// creation if it was never activated).
pub fn schedule(version: &KeyVersion, period: &Cryptoperiod) -> Schedule {
    let start = version.activated_at.unwrap_or(version.created_at);
    Schedule {
        originator_end: start.saturating_add(period.originator_secs),
        recipient_end: start.saturating_add(period.recipient_secs),
    }
}

/// Whether a version needs action now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Only active (or suspended) versions fall due; others never do.
    NotApplicable,
    /// Due at this time.
    At(UnixTime),
    /// Due since this time; the policy says what to do.
    Now {
        /// When the originator-usage period ended.
        since: UnixTime,
        /// `warn`, `rotate` or `deactivate`.
        action: WhenDue,
    },
}

/// Whether `version` is due under `period` at `now`. Only the version in use (active
/// or suspended) falls due: deactivated ones already have a successor.
pub fn due(version: &KeyVersion, period: &Cryptoperiod, now: UnixTime) -> Due {
    if !matches!(version.state, KeyState::Active | KeyState::Suspended) {
        return Due::NotApplicable;
    }
    let end = schedule(version, period).originator_end;
    if now >= end {
        Due::Now {
            since: end,
            action: period.when_due,
        }
    } else {
        Due::At(end)
    }
}
