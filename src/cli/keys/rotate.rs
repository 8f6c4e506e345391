//! `keys rotate`: one key by label, or every key whose cryptoperiod has ended
//! (warned about, deactivated or rotated as its `when_due` says).

use std::process::ExitCode;

use super::token::CryptokiToken;
use super::{hex, reconcile, version_event, Ctx};
use crate::audit::{LifecycleEvent, Outcome};
use crate::cli::admin_audit::CliAudit;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Due, RotateError, TokenOps};
use crate::policy::WhenDue;
use crate::store::{KeyState, KeyVersion, ManagedKey, Store};

/// Exit status of a rotation that lost a race (another process rotated first).
const EXIT_LOST_RACE: u8 = 3;

pub(super) fn rotate_err(e: RotateError) -> Error {
    match e {
        RotateError::Store(s) => Error::from(s),
        other => Error::Config(other.to_string()),
    }
}

/// The test hook of [`lifecycle::FAULT_ENV`]: die like a crash (no unwinding, no
/// cleanup) between token generation and the store commit.
fn fault_hook() {
    if std::env::var(lifecycle::FAULT_ENV).is_ok_and(|v| v == "rotate-after-generate") {
        std::process::abort();
    }
}

pub(super) fn rotate_one(
    cx: &Ctx,
    au: &CliAudit,
    label: &str,
    expect: Option<u32>,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let key = cx.key(label)?;
    // The lock comes before the token is opened, and the token is closed (dropped
    // first) before the lock is released: the whole rotation, token reads included,
    // is one critical section. SoftHSM's file store answers CKR_GENERAL_ERROR to a
    // process reading a token that another process is writing.
    let _lock = cx.lock()?;
    let token = cx.token()?;
    // Leftovers of this store's rotations that crashed are cleaned before making
    // new objects.
    reconcile::before_rotation(cx, au, &token)?;
    let id = lifecycle::new_cka_id().map_err(|e| Error::Internal(format!("random CKA_ID: {e}")))?;
    let reason = reason.unwrap_or("rotated by keywarden keys rotate");
    match lifecycle::rotate(
        &cx.store,
        &token,
        &key,
        expect,
        &id,
        Some(reason),
        cx.now,
        &mut fault_hook,
    ) {
        Ok(out) => {
            print_rotation(au, label, &out, reason);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ RotateError::LostRace { .. }) => {
            eprintln!("keywarden: {e}");
            let mut ev = LifecycleEvent::new("rotate", Some(label));
            ev.outcome = Outcome::Error;
            ev.detail = Some(e.to_string());
            au.lifecycle(ev);
            Ok(ExitCode::from(EXIT_LOST_RACE))
        }
        Err(e) => Err(rotate_err(e)),
    }
}

/// Reports a rotation and records it: the new version made active, and the
/// previous one deactivated.
fn print_rotation(au: &CliAudit, label: &str, out: &lifecycle::RotateOutcome, reason: &str) {
    au.lifecycle(LifecycleEvent {
        to_state: Some(out.current.state.to_string()),
        detail: Some(match &out.previous {
            Some(p) => format!("replaces version {}: {reason}", p.version),
            None => reason.to_owned(),
        }),
        ..version_event("rotate", label, &out.current)
    });
    if let Some(p) = &out.previous {
        au.lifecycle(LifecycleEvent {
            from_state: Some(KeyState::Active.to_string()),
            to_state: Some(KeyState::Deactivated.to_string()),
            detail: Some(format!(
                "replaced by version {}: {reason}",
                out.current.version
            )),
            ..version_event("deactivate", label, p)
        });
    }
    println!(
        "rotated {label}: version {} (CKA_ID {}) is active{}",
        out.current.version,
        hex(&out.current.cka_id),
        out.previous.as_ref().map_or(String::new(), |p| format!(
            ", version {} deactivated",
            p.version
        ))
    );
    if let Some(w) = &out.warning {
        eprintln!("keywarden: warning: {w}");
    }
}

pub(super) fn rotate_due(cx: &Ctx, au: &CliAudit, reason: Option<&str>) -> Result<ExitCode> {
    // Lock before opening the token: see rotate_one.
    let _lock = cx.lock()?;
    let token = cx.token()?;
    reconcile::before_rotation(cx, au, &token)?;
    let mut failed = false;
    for key in cx.store.list_keys()? {
        let versions = cx.store.versions(key.id)?;
        let Some(v) = versions.iter().find(|v| v.state == KeyState::Active) else {
            continue;
        };
        let Some(period) = cx.cryptoperiod(&key, v) else {
            continue;
        };
        let Due::Now { since, action } = lifecycle::due(v, period, cx.now) else {
            continue;
        };
        let why = format!(
            "cryptoperiod {:?} ended at {}",
            period.name,
            crate::cli::format_utc(since)
        );
        let due = DueVersion {
            key: &key,
            v,
            why: &why,
            reason,
        };
        if let Err(e) = act_on_due(cx, au, &token, &due, action)? {
            eprintln!("keywarden: {}: {e}", key.label);
            let verb = match action {
                WhenDue::Deactivate => "deactivate",
                _ => "rotate",
            };
            au.lifecycle(LifecycleEvent {
                outcome: Outcome::Error,
                detail: Some(e),
                ..version_event(verb, &key.label, v)
            });
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An active version whose cryptoperiod has ended.
struct DueVersion<'a> {
    key: &'a ManagedKey,
    v: &'a KeyVersion,
    /// Which cryptoperiod ended, and when.
    why: &'a str,
    /// `--reason`, recorded instead of `why` when given.
    reason: Option<&'a str>,
}

/// What the cryptoperiod's `when_due` calls for. The inner error is this key's
/// failure, reported and recorded while the other keys go on.
fn act_on_due(
    cx: &Ctx,
    au: &CliAudit,
    token: &CryptokiToken,
    due: &DueVersion<'_>,
    action: WhenDue,
) -> Result<std::result::Result<(), String>> {
    let DueVersion {
        key,
        v,
        why,
        reason,
    } = *due;
    Ok(match action {
        WhenDue::Warn => {
            println!("due {}: {why} (policy: warn)", key.label);
            Ok(())
        }
        WhenDue::Deactivate => cx
            .store
            .set_state(
                v.id,
                KeyState::Deactivated,
                Some(reason.unwrap_or(why)),
                cx.now,
            )
            .map(|_| {
                if let Err(e) = token.set_dates(&v.cka_id, None, Some(cx.now)) {
                    eprintln!(
                        "keywarden: warning: {}: CKA_END_DATE not set: {e}",
                        key.label
                    );
                }
                au.lifecycle(LifecycleEvent {
                    from_state: Some(v.state.to_string()),
                    to_state: Some(KeyState::Deactivated.to_string()),
                    detail: Some(reason.unwrap_or(why).to_owned()),
                    ..version_event("deactivate", &key.label, v)
                });
                println!("deactivated {} version {}: {why}", key.label, v.version);
            })
            .map_err(|e| e.to_string()),
        WhenDue::Rotate => {
            let id = lifecycle::new_cka_id()
                .map_err(|e| Error::Internal(format!("random CKA_ID: {e}")))?;
            lifecycle::rotate(
                &cx.store,
                token,
                key,
                Some(v.version),
                &id,
                Some(reason.unwrap_or(why)),
                cx.now,
                &mut fault_hook,
            )
            .map(|out| print_rotation(au, &key.label, &out, reason.unwrap_or(why)))
            .map_err(|e| e.to_string())
        }
    })
}
