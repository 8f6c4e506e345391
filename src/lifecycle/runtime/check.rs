//! The lifecycle check of one operation, as the gateway makes it after policy
//! allowed the call (policy decides who, this whether the key may be used at all).

use pkcs11_sys::{CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKR_KEY_FUNCTION_NOT_PERMITTED};

use super::{LcRefusal, ManagedObject};
use crate::lifecycle::{due, key_facts, permits, processing, schedule, Due};
use crate::policy::{Cryptoperiod, KeyFacts, Op, Policy, UnmanagedKeys, WhenDue};
use crate::store::{KeyState, KeyVersion, ManagedKey, UnixTime};

/// A permitted use of a managed version.
pub(crate) struct PermittedUse<'v> {
    pub(crate) version: &'v KeyVersion,
    pub(crate) key: &'v ManagedKey,
    /// Past its originator period with `when_due = "rotate"`, used to protect: the
    /// caller rotates it ([`super::LifecycleRuntime::auto_rotate`]).
    pub(crate) due_rotate: bool,
}

/// The lifecycle check of one operation: the managed version's state
/// ([`permits`] with the key's cryptoperiod), or `unmanaged_keys` for an object no
/// live version holds, then the cryptoperiod's `when_due`. `Ok(None)` for an
/// unmanaged object. `policy` is `None` in transparent mode: no cryptoperiods
/// (they are the policy file's) and `unmanaged_keys = "allow"`.
///
/// An active version past its originator-usage period is treated as `when_due`
/// says: `warn` — used as before (`keys list --due` reports it); `deactivate` —
/// refused for protecting (sign, encrypt, wrap, derive, ...) and allowed to
/// process until its recipient period ends, as if deactivated (the store is left
/// to `keys rotate --due`); `rotate` — the caller rotates it
/// ([`PermittedUse::due_rotate`]).
pub(crate) fn check_use<'v>(
    managed: Option<ManagedObject<'v>>,
    facts: &KeyFacts,
    op: Op,
    now: UnixTime,
    policy: Option<&Policy>,
) -> Result<Option<PermittedUse<'v>>, LcRefusal> {
    let Some(m) = managed else {
        let setting = policy.map_or(UnmanagedKeys::Allow, Policy::unmanaged_keys);
        return unmanaged(setting, facts, op).map(|()| None);
    };
    let version = m.version;
    // The policy facts of the key are built (an allocation) only when the policy
    // has cryptoperiods at all.
    let period = match policy {
        Some(p) if !p.cryptoperiods().is_empty() => p.cryptoperiod_for(&key_facts(m.key, version)),
        _ => None,
    };
    permits(version, op, now, period).map_err(|r| LcRefusal {
        rule: "lifecycle.state",
        rv: r.rv,
        reason: r.reason,
    })?;
    let due_rotate = match (version.state, op.uses_key_value(), period) {
        (KeyState::Active, true, Some(period)) => when_due(version, period, op, now)?,
        _ => false,
    };
    Ok(Some(PermittedUse {
        version,
        key: m.key,
        due_rotate,
    }))
}

/// The cryptoperiod's `when_due` on a key-using operation of an active version:
/// a refusal under `deactivate`, `true` when the caller is to rotate it.
fn when_due(
    version: &KeyVersion,
    period: &Cryptoperiod,
    op: Op,
    now: UnixTime,
) -> Result<bool, LcRefusal> {
    match due(version, period, now) {
        Due::Now {
            since,
            action: WhenDue::Deactivate,
        } => {
            let end = schedule(version, period).recipient_end;
            if !processing(op) || now >= end {
                return Err(LcRefusal {
                    rule: "lifecycle.cryptoperiod",
                    rv: CKR_KEY_FUNCTION_NOT_PERMITTED,
                    reason: format!(
                        "version {} is past its originator-usage period ({} ended at {since}; when_due = \"deactivate\"): {}",
                        version.version,
                        period.name,
                        if now >= end {
                            "its recipient period ended too".to_owned()
                        } else {
                            format!("no {}", op.name())
                        }
                    ),
                });
            }
            Ok(false)
        }
        Due::Now {
            action: WhenDue::Rotate,
            ..
        } => Ok(!processing(op)),
        _ => Ok(false),
    }
}

/// `[settings] unmanaged_keys` on a key-using operation.
fn unmanaged(setting: UnmanagedKeys, facts: &KeyFacts, op: Op) -> Result<(), LcRefusal> {
    let is_key = matches!(
        facts.class,
        Some(CKO_PRIVATE_KEY | CKO_PUBLIC_KEY | CKO_SECRET_KEY)
    );
    let allowed = !op.uses_key_value()
        || !is_key
        || match setting {
            UnmanagedKeys::Allow => true,
            UnmanagedKeys::Processing => processing(op),
            UnmanagedKeys::Deny => false,
        };
    if allowed {
        return Ok(());
    }
    Err(LcRefusal {
        rule: "lifecycle.unmanaged",
        rv: CKR_KEY_FUNCTION_NOT_PERMITTED,
        reason: format!(
            "the key is not managed (unmanaged_keys = \"{}\"): no {}; `keywarden keys adopt` brings it under management",
            setting.as_str(),
            op.name()
        ),
    })
}
