//! Records of the files the module reads: the configuration and the policy at
//! start, and each policy reload (or refused edit) after.

use std::sync::Arc;

use crate::audit::{AuditLog, Outcome, ReloadEvent, ReloadWhat};

fn sha256_of(path: &std::path::Path) -> Option<String> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).ok()?;
    Some(crate::audit::to_hex(&sha2::Sha256::digest(&bytes)))
}

/// A reload record for a file that was read (or refused).
pub(in crate::gateway) fn reload_event(
    what: ReloadWhat,
    path: &std::path::Path,
    detail: Option<String>,
) -> ReloadEvent {
    ReloadEvent {
        what,
        path: path.display().to_string(),
        sha256: sha256_of(path),
        outcome: if detail.is_none() {
            Outcome::Ok
        } else {
            Outcome::Error
        },
        detail,
    }
}

/// The policy handle's observer: a record per reload, and per refused edit.
pub(in crate::gateway) fn reload_observer(log: Arc<AuditLog>) -> crate::policy::ReloadObserver {
    Box::new(move |path, reload| {
        let detail = match reload {
            crate::policy::Reload::Failed(why) => Some(why.clone()),
            _ => None,
        };
        if let Err(e) = log.append(reload_event(ReloadWhat::Policy, path, detail)) {
            log::error!("audit: policy reload not recorded: {e}");
        }
    })
}
