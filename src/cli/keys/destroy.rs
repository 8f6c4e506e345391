//! `keys destroy`: the token objects of retired versions, the store's record kept
//! as a tombstone.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::{facts, version_event, Ctx};
use crate::audit::LifecycleEvent;
use crate::cli::admin_audit::CliAudit;
use crate::error::{Error, Result};
use crate::lifecycle::TokenOps;
use crate::store::{KeyState, KeyVersion, Store, StoreError};

pub(super) fn destroy(
    cx: &Ctx,
    au: &CliAudit,
    label: &str,
    version: Option<u32>,
    yes: bool,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let key = cx.key(label)?;
    let versions = cx.store.versions(key.id)?;
    let targets: Vec<&KeyVersion> = match version {
        Some(n) => versions.iter().filter(|v| v.version == n).collect(),
        None => versions
            .iter()
            .filter(|v| v.state != KeyState::Destroyed)
            .collect(),
    };
    if targets.is_empty() {
        return Err(StoreError::NotFound(format!("a version of {label:?} to destroy")).into());
    }
    if let Some(live) = targets
        .iter()
        .find(|v| matches!(v.state, KeyState::Active | KeyState::Suspended))
    {
        return Err(Error::Config(format!(
            "{label:?} version {} is {}: deactivate or compromise it first, or name another \
             version with --version",
            live.version, live.state
        )));
    }
    if let Some(p) = &cx.policy {
        if targets.iter().any(|v| p.backup_required(&facts(&key, v))) {
            return Err(Error::Config(format!(
                "policy marks {label:?} as needing a backup first (keyset backup_required); \
                 back it up and clear the flag before destroying"
            )));
        }
    }
    if !yes && !confirm(label, &targets)? {
        eprintln!("keywarden: not destroyed");
        return Ok(ExitCode::FAILURE);
    }
    let token = cx.token()?;
    for v in targets {
        // Token first: a crash after it leaves a record whose objects are gone (the
        // next destroy only writes the tombstone), never a tombstone with live objects.
        let removed = token
            .destroy(&v.cka_id)
            .map_err(|e| Error::Config(e.to_string()))?;
        let why = reason.unwrap_or("destroyed by keywarden keys destroy");
        cx.store
            .set_state(v.id, KeyState::Destroyed, Some(why), cx.now)?;
        au.lifecycle(LifecycleEvent {
            from_state: Some(v.state.to_string()),
            to_state: Some(KeyState::Destroyed.to_string()),
            detail: Some(format!("{removed} token object(s) removed: {why}")),
            ..version_event("destroy", label, v)
        });
        println!(
            "destroyed {label} version {}: {removed} object(s) removed, tombstone kept",
            v.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(label: &str, targets: &[&KeyVersion]) -> Result<bool> {
    let list: Vec<String> = targets.iter().map(|v| v.version.to_string()).collect();
    if !std::io::stdin().is_terminal() {
        return Err(Error::Config(format!(
            "destroying {label:?} version(s) {} needs --yes when stdin is not a terminal",
            list.join(", ")
        )));
    }
    eprint!(
        "Destroy the token objects of {label:?} version(s) {}? This cannot be undone. Type the label to confirm: ",
        list.join(", ")
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Config(format!("stdin: {e}")))?;
    Ok(answer.trim_end_matches(['\r', '\n']) == label)
}
