//! Enforce mode: the module's own key lifecycle changes as audit records
//! (docs/audit.md, "What the module records"): the registration of a key generated
//! through it (`register.rs`) and an automatic rotation (`lifecycle.rs`,
//! `when_due = "rotate"`), written like the CLI's (`src/cli/admin_audit.rs`), with
//! the caller as actor. In `required` mode a record that cannot be written fails
//! the call that made the change (`Error::Audit`): the change itself is made by
//! then, as with the CLI.

use pkcs11_sys::CK_INVALID_HANDLE;

use super::recorder::Recorder;
use super::{Call, Enforcer};
use crate::audit::{AdminEvent, Binding, LifecycleEvent, Outcome, ProcessInfo};
use crate::config::Config;
use crate::error::{Error, Result};

/// At `C_Initialize` (enforce mode, after the start records): the store must record
/// its changes in this trail (`audit::bind`); a store that knows no chain yet adopts
/// this one, recorded as `audit.bind`. A store bound to another chain fails
/// `C_Initialize` (`Error::Config` → `CKR_GENERAL_ERROR`, one line).
pub(super) fn bind_store(
    audit: &Recorder,
    config: &Config,
    store: &dyn crate::store::Store,
) -> Result<()> {
    // Buffered mode: the start records must be on disk for the chain id to be read.
    audit.flush().map_err(Error::from)?;
    let store_dir = &config.store.dir;
    let binding = crate::audit::bind(&config.audit.dir, store_dir, store, false, || Ok(()))?;
    if let Binding::Adopted { chain, .. } = binding {
        audit.admin(AdminEvent {
            action: "audit.bind".into(),
            actor: Some(ProcessInfo::current().actor_name()),
            target: Some(store_dir.display().to_string()),
            outcome: Outcome::Ok,
            detail: Some(format!(
                "store bound to audit chain {chain} (by the module)"
            )),
        })?;
    }
    Ok(())
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
        named.or_else(|| Some(ProcessInfo::current().actor_name()))
    }

    /// Appends a lifecycle record made by `call`, with its actor.
    pub(super) fn record_lifecycle(&self, call: &Call, mut ev: LifecycleEvent) -> Result<()> {
        let Some(trail) = &self.trail else {
            return Ok(());
        };
        ev.actor = self.actor(call);
        trail.append(ev).map_err(Error::from).inspect_err(|e| {
            log::error!(
                "{}: lifecycle audit record not written: {e}",
                call.function.name()
            );
        })
    }
}
