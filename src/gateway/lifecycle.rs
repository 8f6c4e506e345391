//! Enforce mode's lifecycle half of a key-use decision (docs/lifecycle.md, "Gateway
//! integration"): the check of `lifecycle::check_use` on the
//! [`LifecycleRuntime`](crate::lifecycle::LifecycleRuntime) the gateway holds (used
//! directly in transparent mode, `lifecycle_guard.rs`), the use counted, and an
//! automatic rotation of a version past due reported and recorded in the audit
//! trail (`lifecycle_audit.rs`); and, for both modes, the lifecycle view of a
//! token with the serial the session table keeps.

use std::sync::Arc;

use super::enforce::lifecycle_refusal;
use pkcs11_sys::CK_SLOT_ID;

use super::decision_memo::Kept;
use super::session_table::SessionTable;
use crate::audit::LifecycleEvent;
use crate::backend::Backend;
use crate::error::Result;
use crate::lifecycle::{
    check_use, AutoRotation, LcRefusal, LifecycleRuntime, ManagedObject, RotateOutcome, View,
    ROTATE_RETRY,
};
use crate::policy::{KeyFacts, Op, Policy};
use crate::store::{KeyState, KeyVersion, ManagedKey, UnixTime};

/// The serial of `slot`'s token as the session table keeps it (read through
/// `Backend::token_serial` when first needed). Fails closed: a serial that cannot
/// be read refuses the call with the backend's code (rule `lifecycle.token`), as a
/// managed key cannot be told apart without it.
pub(super) fn token_serial(
    sessions: &SessionTable,
    backend: &dyn Backend,
    slot: CK_SLOT_ID,
) -> std::result::Result<Arc<str>, LcRefusal> {
    sessions.try_serial(slot, || {
        backend
            .token_serial(slot)
            .map(Arc::from)
            .map_err(|e| LcRefusal {
                rule: "lifecycle.token",
                rv: e.rv(),
                reason: format!("the token's serial number could not be read: {e}"),
            })
    })
}

/// The lifecycle view a key use on `slot`'s token is decided with
/// (`LifecycleRuntime::view`, with the serial of [`token_serial`]).
pub(super) fn lifecycle_view(
    lifecycle: &LifecycleRuntime,
    sessions: &SessionTable,
    backend: &dyn Backend,
    slot: CK_SLOT_ID,
) -> std::result::Result<View, LcRefusal> {
    lifecycle.view(|| token_serial(sessions, backend, slot))
}

/// The lifecycle view a search on `slot`'s token is filtered with
/// (`LifecycleRuntime::view_for_search`); `None` without the token's serial.
pub(super) fn search_view(
    lifecycle: &LifecycleRuntime,
    sessions: &SessionTable,
    backend: &dyn Backend,
    slot: CK_SLOT_ID,
) -> Option<View> {
    lifecycle.view_for_search(token_serial(sessions, backend, slot).ok())
}

impl super::Enforcer {
    /// The lifecycle half of a key-use decision (after policy allowed it): the
    /// state check, automatic rotation of a version past due, and a permitted use
    /// of a managed version counted. Says whether the decision may be kept (not
    /// while a rotation is due: each use must try it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lifecycle_check(
        &self,
        backend: &dyn Backend,
        call: &super::Call,
        op: Op,
        slot: CK_SLOT_ID,
        view: &View,
        managed: Option<ManagedObject<'_>>,
        facts: &KeyFacts,
        policy: &Policy,
    ) -> Result<Kept> {
        let now = self.lifecycle.now();
        match check_use(managed, facts, op, now, Some(policy)) {
            Ok(Some(u)) if op.uses_key_value() => {
                self.lifecycle.record_use(u.version.id, now);
                if u.due_rotate {
                    self.auto_rotate(backend, call, slot, &view.serial, u.key, u.version, now)?;
                    return Ok(Kept::Not);
                }
                Ok(Kept::May {
                    counts: Some(u.version.id),
                })
            }
            Ok(_) => Ok(Kept::May { counts: None }),
            Err(r) => Err(lifecycle_refusal(Some(op), r)),
        }
    }

    /// Automatic rotation at first use after the due date (`when_due = "rotate"`,
    /// `LifecycleRuntime::auto_rotate`), logged, and recorded: the rotation and a
    /// failed attempt are audit records; an error here is only one of those records
    /// not written in `required` mode.
    #[allow(clippy::too_many_arguments)]
    fn auto_rotate(
        &self,
        backend: &dyn Backend,
        call: &super::Call,
        slot: CK_SLOT_ID,
        serial: &str,
        key: &ManagedKey,
        version: &KeyVersion,
        now: UnixTime,
    ) -> Result<()> {
        match self
            .lifecycle
            .auto_rotate(backend, slot, serial, key, version, now)
        {
            AutoRotation::NotTried => Ok(()),
            AutoRotation::Rotated(o) => {
                log::info!(
                    "{}: key {:?} rotated automatically: version {} active, version {} deactivated",
                    call.function.name(),
                    key.label,
                    o.current.version,
                    version.version
                );
                if let Some(w) = &o.warning {
                    log::warn!("{w}");
                }
                self.record_rotation(call, key, version, &o)
            }
            AutoRotation::LostRace => {
                // The process that won records it.
                log::debug!("key {:?}: another process rotated it first", key.label);
                Ok(())
            }
            AutoRotation::Failed(e) => {
                log::warn!(
                    "{}: key {:?} is due for rotation but could not be rotated (retried in {} s): {e}",
                    call.function.name(),
                    key.label,
                    ROTATE_RETRY.as_secs()
                );
                let mut ev = LifecycleEvent::new("rotate", Some(&key.label))
                    .of_key(&version.cka_id, Some(version.version));
                ev.outcome = crate::audit::Outcome::Error;
                ev.detail = Some(format!("automatic: {e}"));
                self.record_lifecycle(call, ev)
            }
        }
    }

    /// The records of an automatic rotation, as `keywarden keys rotate` writes
    /// them: the new version active, the one it replaces deactivated.
    fn record_rotation(
        &self,
        call: &super::Call,
        key: &ManagedKey,
        version: &KeyVersion,
        o: &RotateOutcome,
    ) -> Result<()> {
        let new = &o.current;
        let mut ev = LifecycleEvent::new("rotate", Some(&key.label))
            .of_key(&new.cka_id, Some(new.version))
            .states(None, new.state);
        ev.detail = Some(format!(
            "automatic ({}): replaces version {}: originator-usage period ended (when_due = \"rotate\")",
            call.function.name(),
            version.version
        ));
        self.record_lifecycle(call, ev)?;
        let old = o.previous.as_ref().unwrap_or(version);
        let mut ev = LifecycleEvent::new("deactivate", Some(&key.label))
            .of_key(&old.cka_id, Some(old.version))
            .states(Some(KeyState::Active), KeyState::Deactivated);
        ev.detail = Some(format!("automatic: replaced by version {}", new.version));
        self.record_lifecycle(call, ev)
    }
}
