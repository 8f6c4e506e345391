//! Enforce mode: the module's own key lifecycle changes as audit records
//! (docs/audit.md, "What the module records"): the registration of a key generated
//! through it (`register.rs`) and an automatic rotation (`lifecycle.rs`,
//! `when_due = "rotate"`), written like the CLI's (`src/cli/admin_audit.rs`), with
//! the caller as actor. In `required` mode a record that cannot be written fails
//! the call that made the change (`Error::Audit`): the change itself is made by
//! then, as with the CLI.

use pkcs11_sys::CK_INVALID_HANDLE;

use super::{Call, Enforcer};
use crate::audit::{LifecycleEvent, Outcome, ProcessInfo};
use crate::error::Result;
use crate::store::KeyState;

/// A lifecycle record of `action` on version `version` (`CKA_ID` `id`) of `label`.
pub(super) fn event(action: &str, label: &str, id: &[u8], version: Option<u32>) -> LifecycleEvent {
    LifecycleEvent {
        action: action.to_owned(),
        actor: None,
        key_label: Some(label.to_owned()),
        key_id: Some(id.to_vec()),
        key_version: version,
        from_state: None,
        to_state: None,
        outcome: Outcome::Ok,
        detail: None,
    }
}

/// A change from `from` to `to`.
pub(super) fn states(
    mut ev: LifecycleEvent,
    from: Option<KeyState>,
    to: KeyState,
) -> LifecycleEvent {
    ev.from_state = from.map(|s| s.to_string());
    ev.to_state = Some(to.to_string());
    ev
}

impl Enforcer {
    /// Who made the change: the named identity of the calling session, else the
    /// OS user (as the CLI names itself).
    fn actor(&self, call: &Call) -> Option<String> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let named = self
            .sessions
            .subject(&self.policy(), session)
            .and_then(|(_, s)| s.principal().identity.as_ref().map(|i| i.name.clone()));
        named.or_else(|| {
            let me = ProcessInfo::current();
            Some(me.user.unwrap_or_else(|| format!("uid {}", me.uid)))
        })
    }

    /// Appends a lifecycle record made by `call`, with its actor.
    pub(super) fn record_lifecycle(&self, call: &Call, mut ev: LifecycleEvent) -> Result<()> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        ev.actor = self.actor(call);
        audit.lifecycle(ev).inspect_err(|e| {
            log::error!(
                "{}: lifecycle audit record not written: {e}",
                call.function.name()
            );
        })
    }
}
