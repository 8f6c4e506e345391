//! `keywarden keys reconcile`, and the clean-up `keys rotate` runs first: the token
//! objects of rotations this store recorded as in flight that never committed
//! (`lifecycle::reconcile`; docs/lifecycle.md, "Rotation"). Objects no intent of
//! this store names are never listed or removed, so stores sharing a token leave
//! each other's keys alone.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::rotate::rotate_err;
use super::{hex, Ctx};
use crate::audit::LifecycleEvent;
use crate::cli::admin_audit::CliAudit;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Orphan, TokenOps};

/// Exit status of `keys reconcile` without `--yes` and without a terminal to ask
/// on, when there is something to remove: listed, nothing removed.
const EXIT_NOT_CONFIRMED: u8 = 1;

/// `keys reconcile [--dry-run] [--yes]`; `au` is `None` for a dry run.
pub(super) fn run(cx: &Ctx, au: Option<&CliAudit>, yes: bool) -> Result<ExitCode> {
    let token = cx.token()?;
    let _lock = cx.lock()?;
    let found = lifecycle::reconcile(&cx.store, &token, true).map_err(rotate_err)?;
    report(None, &found);
    let Some(au) = au else {
        return Ok(ExitCode::SUCCESS);
    };
    if found.is_empty() {
        println!("nothing to reconcile on token {}", token.serial());
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm(&found)? {
        eprintln!("keywarden: nothing removed");
        return Ok(ExitCode::from(EXIT_NOT_CONFIRMED));
    }
    let removed = lifecycle::reconcile(&cx.store, &token, false).map_err(rotate_err)?;
    report(Some(au), &removed);
    Ok(if removed.iter().all(|o| o.removed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The clean-up before a rotation: this store's own dead intents, removed without
/// asking (they are provably the objects of its own interrupted rotations).
pub(super) fn before_rotation(cx: &Ctx, au: &CliAudit, token: &dyn TokenOps) -> Result<()> {
    let removed = lifecycle::reconcile(&cx.store, token, false).map_err(rotate_err)?;
    report(Some(au), &removed);
    Ok(())
}

fn confirm(found: &[Orphan]) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "keywarden: removing {} interrupted rotation(s) needs --yes when stdin is not a terminal",
            found.len()
        );
        return Ok(false);
    }
    eprint!("Destroy these objects? This cannot be undone. [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Config(format!("stdin: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Prints what reconciliation found; `au` records what it removed.
fn report(au: Option<&CliAudit>, orphans: &[Orphan]) {
    for o in orphans {
        if let (Some(au), true) = (au, o.removed) {
            let mut ev = LifecycleEvent::new("reconcile", Some(&o.label));
            ev.key_id = Some(o.cka_id.clone());
            ev.to_state = Some("removed".into());
            ev.detail = Some(format!(
                "{} orphaned object(s) of an interrupted rotation removed",
                o.objects
            ));
            au.lifecycle(ev);
        }
        eprintln!(
            "keywarden: {} orphaned object(s) of an interrupted rotation ({:?}, CKA_ID {}, started {}){}",
            o.objects,
            o.label,
            hex(&o.cka_id),
            crate::cli::format_utc(o.started_at),
            if o.removed { ": removed" } else { "" }
        );
    }
}
