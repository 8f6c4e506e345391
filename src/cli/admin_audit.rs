//! The CLI's own audit records: key lifecycle changes (`keys rotate`, `suspend`, …)
//! and other administrative changes (`users add`, …, `init`) go to the trail the
//! configuration's `[audit]` section names, the same chain the module writes.
//!
//! The trail is opened **before** anything changes, so a trail that cannot be
//! opened stops the command with nothing changed: an auditor expects no change
//! without its record. After the change, each record is appended; in `required`
//! mode a record that cannot be written is reported and the command exits non-zero
//! (the change itself is made by then; the message says it went unrecorded). In `buffered` mode the records are flushed
//! when the command ends, and a failure is reported the same way.
//!
//! The store and the trail belong together ([`audit::bind`]): a command that
//! changes the store opens the trail with [`CliAudit::open_bound`], which refuses a
//! trail of another chain than the store's (nothing is changed) and binds a store
//! that knows none yet, recording that (`audit.bind`).
//!
//! Seals: a software seal key (`seal_key_file`) seals the CLI's records at exit.
//! With `seal_token` the CLI writes chain-linked records only (it holds no token
//! session to sign with); the module's next seal covers them, since a seal signs
//! the chain head and with it every record before.

use std::cell::RefCell;
use std::process::ExitCode;

use crate::audit::{
    self, AdminEvent, AuditConfig, AuditLog, Event, LifecycleEvent, Outcome, ProcessInfo,
};
use crate::config::{AuditMode, Config};
use crate::error::{Error, Result};

/// An open trail for one CLI command.
pub(crate) struct CliAudit {
    log: AuditLog,
    dir: std::path::PathBuf,
    actor: Option<String>,
    mode: AuditMode,
    /// The first append error, reported at the end.
    failed: RefCell<Option<String>>,
}

impl CliAudit {
    /// Opens the configured trail. An error here means nothing was changed.
    pub(crate) fn open(config: &Config) -> Result<CliAudit> {
        let dir = config.audit.dir.display().to_string();
        let unusable = |e: audit::AuditError| {
            Error::Config(format!(
                "audit trail {dir} cannot be written ({e}); nothing was changed"
            ))
        };
        let settings = AuditConfig::from_section(&config.audit).map_err(unusable)?;
        // seal_token: chain only here (see the module comment).
        let sealer = match config.audit.seal_token {
            Some(_) => None,
            None => audit::sealer_from_section(&config.audit).map_err(unusable)?,
        };
        let log = AuditLog::open(settings, sealer).map_err(unusable)?;
        Ok(CliAudit {
            log,
            dir: config.audit.dir.clone(),
            actor: Some(ProcessInfo::current().actor_name()),
            mode: config.audit.mode,
            failed: RefCell::new(None),
        })
    }

    /// [`CliAudit::open`], then checks that `store` records its changes in this
    /// trail (binding a store that knows no chain yet; `replace`: rebinding one
    /// bound to another chain, `init --force`). An error means nothing was changed.
    pub(crate) fn open_bound(
        config: &Config,
        store: &dyn crate::store::Store,
        replace: bool,
    ) -> Result<CliAudit> {
        let au = CliAudit::open(config)?;
        au.bind(config, store, replace)?;
        Ok(au)
    }

    /// The check of [`CliAudit::open_bound`] on an open trail.
    pub(crate) fn bind(
        &self,
        config: &Config,
        store: &dyn crate::store::Store,
        replace: bool,
    ) -> Result<()> {
        let au = self;
        let store_dir = &config.store.dir;
        // Buffered mode: this command's records so far reach the trail (and name
        // its chain) before the chain is read.
        au.log.flush().map_err(Error::from)?;
        let began = std::cell::Cell::new(false);
        let binding = audit::bind(&au.dir, store_dir, store, replace, || {
            // A new trail: its first record says what it is for.
            au.admin(
                "audit.bind",
                Some(&store_dir.display().to_string()),
                Ok(Some(
                    "store bound to the audit chain this record begins".into(),
                )),
            );
            began.set(true);
            au.log.flush().map_err(Error::from)
        })?;
        if let (audit::Binding::Adopted { chain, previous }, false) = (binding, began.get()) {
            let detail = match previous {
                Some(p) => format!("store rebound from audit chain {p} to {chain}"),
                None => format!("store bound to audit chain {chain}"),
            };
            au.admin(
                "audit.bind",
                Some(&store_dir.display().to_string()),
                Ok(Some(detail)),
            );
        }
        Ok(())
    }

    /// Who ran the command, as records name it.
    pub(crate) fn actor(&self) -> Option<String> {
        self.actor.clone()
    }

    /// Appends one record; a failure is remembered for [`CliAudit::finish`] and
    /// reported at once.
    pub(crate) fn record(&self, event: impl Into<Event>) {
        if let Err(e) = self.log.append(event) {
            eprintln!("keywarden: audit record not written: {e}");
            self.failed.borrow_mut().get_or_insert(e.to_string());
        }
    }

    /// A key lifecycle record with the actor filled in.
    pub(crate) fn lifecycle(&self, mut event: LifecycleEvent) {
        event.actor = self.actor();
        self.record(event);
    }

    /// An administrative record.
    pub(crate) fn admin(
        &self,
        action: &str,
        target: Option<&str>,
        outcome: std::result::Result<Option<String>, String>,
    ) {
        let (outcome, detail) = match outcome {
            Ok(d) => (Outcome::Ok, d),
            Err(e) => (Outcome::Error, Some(e)),
        };
        self.record(AdminEvent {
            action: action.to_owned(),
            actor: self.actor(),
            target: target.map(str::to_owned),
            outcome,
            detail,
        });
    }

    /// Flushes (and seals, with a software key) and stops the writer; turns a
    /// record that could not be written into an error after `result`'s output.
    pub(crate) fn finish(self, result: Result<ExitCode>) -> Result<ExitCode> {
        let closed = self.log.shutdown();
        let failed = self
            .failed
            .into_inner()
            .or_else(|| closed.err().map(|e| e.to_string()));
        match failed {
            None => result,
            Some(e) => {
                if let Err(err) = &result {
                    eprintln!("keywarden: {err}");
                }
                let when = self.mode.name();
                Err(Error::Config(format!(
                    "this command's audit record could not be written ({e}; audit mode \
                     {when}); any change it made is missing from the trail"
                )))
            }
        }
    }
}
