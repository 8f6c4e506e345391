//! The audit trail: typed records, a hash chain shared by every process writing the
//! same directory, seals, JSON Lines files with rotation, syslog forwarding, and the
//! verifier and queries behind `keywarden audit`.
//!
//! Writing: build an [`Event`] (usually an [`OpEvent`]; [`OpTracker`] builds one per
//! multi-part operation) and give it to [`AuditLog::append`]. In `required` mode
//! `append` returns once the record is on disk, or the error that kept it off; in
//! `buffered` mode it returns once the record is queued. See `writer/` for the
//! loss window, `trail/` for files and locking, `chain.rs` for the chain and
//! `seal.rs` for seals.
//!
//! Nothing here formats a PIN, key material or data: record types have no field for
//! them (see `record/`), and the seal key's `Debug` is redacted.

mod binding;
mod chain;
mod context;
mod ecdsa;
mod error;
mod offhost;
mod ops;
mod query;
mod record;
mod render;
mod seal;
mod syslog;
mod token_seal;
mod trail;
mod verify;
mod verify_checks;
mod verify_report;
mod verify_rules;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

pub use crate::config::AuditMode as Mode;
// The target's syntax is the configuration's, checked when the file is read.
pub use crate::config::SyslogTarget;
pub use binding::{bind, chain_id, Binding};
pub use chain::{chain_id_of, HeadCheck, HeadInfo};
pub use chain::{from_hex, to_hex, Digest, Tip, GENESIS};
pub use context::ProcessInfo;
pub use ecdsa::{
    ec_key_id, seal_digest, unwrap_ec_point, EcdsaVerifier, SealPubFile, ECDSA_ALG,
    RETIRED_SEAL_PUB_PREFIX, SEAL_PUB_FILE,
};
pub use error::{AuditError, AuditResult};
pub use offhost::OffHost;
pub use ops::{Ended, OpKind, OpTracker};
pub use query::{
    cef_line, export, header, read_records, text_line, write_record, Filter, Format, Found, Skipped,
};
pub use record::{
    AdminEvent, Decision, Event, GapEvent, KeyRef, LifecycleEvent, Mechanism, ModuleEvent,
    ModuleWhat, NewKey, OpEvent, Outcome, RecordView, ReloadEvent, ReloadWhat, RepairEvent, Rv,
    SealEvent, Timestamp,
};
pub use seal::{HmacSealer, Seal, SealKeys, Sealer, HMAC_ALG};
pub use syslog::format_5424;
pub use token_seal::{TokenSealer, SEAL_KEY_ID, SEAL_KEY_LABEL};
pub use trail::{file_name, list_files, HEAD_FILE};
pub use verify::{verify, verify_with, Expect, Location, Options, Problem, Report};
pub use writer::{Stats, COALESCE, MAX_BATCH, RETRY_CAP, SYNC_EVERY};

use writer::{Msg, Pending, WriterHandle};

/// The audit engine's settings (the `[audit]` section, in engine units).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The trail directory (created if missing).
    pub dir: PathBuf,
    /// `buffered` or `required`.
    pub mode: Mode,
    /// Start a new file before one passes this size.
    pub max_file_bytes: u64,
    /// Seal after this many records of this process…
    pub seal_every_records: u64,
    /// …or this long after the last seal when records are unsealed.
    pub seal_every: Duration,
    /// Syslog forwarding.
    pub syslog: Option<SyslogTarget>,
    /// Where each seal record also goes (the off-host copy of the seals).
    pub seal_syslog: Option<SyslogTarget>,
    /// Bound of the queue to the writer thread (records).
    pub queue_capacity: usize,
    /// `buffered` mode: records kept for a retry while the trail cannot be written;
    /// beyond this they are dropped, counted, and reported by a `gap` record.
    pub retry_capacity: usize,
    /// `buffered` mode: the writer's pause after each write (default [`COALESCE`]),
    /// ended early by a full queue, a flush or a shutdown.
    pub pause: Duration,
    /// Who shares the trail directory besides its owner (`audit.group`).
    pub sharing: crate::fsguard::Sharing,
}

impl AuditConfig {
    /// Defaults: buffered, 64 MiB files, a seal every 1000 records or 60 s, no syslog.
    pub fn new(dir: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            dir: dir.into(),
            mode: Mode::Buffered,
            max_file_bytes: 64 << 20,
            seal_every_records: 1000,
            seal_every: Duration::from_secs(60),
            syslog: None,
            seal_syslog: None,
            queue_capacity: 8192,
            retry_capacity: RETRY_CAP,
            pause: COALESCE,
            sharing: crate::fsguard::Sharing::default(),
        }
    }

    /// From the configuration file's `[audit]` section.
    pub fn from_section(s: &crate::config::AuditSection) -> AuditResult<AuditConfig> {
        Ok(AuditConfig {
            mode: s.mode,
            max_file_bytes: s.rotate_mb.saturating_mul(1 << 20),
            seal_every_records: s.seal_every_records,
            seal_every: Duration::from_secs(s.seal_every_secs),
            syslog: syslog_target(s.syslog.as_deref())?,
            sharing: s.sharing().map_err(|e| AuditError::Config(e.to_string()))?,
            seal_syslog: syslog_target(s.seal_syslog.as_deref())?,
            ..AuditConfig::new(&s.dir)
        })
    }

    fn trail_options(&self) -> trail::TrailOptions {
        trail::TrailOptions {
            dir: self.dir.clone(),
            max_file_bytes: self.max_file_bytes.max(1),
            durable: self.mode.syncs_each_batch(),
            sharing: self.sharing,
            seal_rule: (self.seal_every_records.max(1), self.seal_every.as_secs()),
        }
    }
}

/// A `[audit] syslog`/`seal_syslog` setting, its syntax error as a configuration error.
fn syslog_target(text: Option<&str>) -> AuditResult<Option<SyslogTarget>> {
    text.map(SyslogTarget::parse)
        .transpose()
        .map_err(AuditError::Config)
}

/// The software sealer named by `[audit] seal_key_file`, if any.
pub fn sealer_from_section(
    s: &crate::config::AuditSection,
) -> AuditResult<Option<Arc<dyn Sealer>>> {
    match &s.seal_key_file {
        Some(path) => {
            let sharing = s.sharing().map_err(|e| AuditError::Config(e.to_string()))?;
            Ok(Some(Arc::new(HmacSealer::from_file_checked(
                path, sharing,
            )?)))
        }
        None => Ok(None),
    }
}

/// The sealer the module should use for the configuration's `[audit]` section (a
/// private token key logs in with `audit.seal_pin_file`, else `backend.pin_file`),
/// over the gateway's
/// (initialised) backend: the token key when `seal_token` is set, else the software
/// key when `seal_key_file` is set, else none (chain only).
///
/// Fails closed: with `seal_token` set, a missing token or key is an error (the
/// caller fails `C_Initialize`), never a silent fall-back to weaker sealing — the
/// administrator asked for token seals, and a trail that quietly stops getting
/// them would only be noticed by an auditor much later.
pub fn sealer_for(
    config: &crate::config::Config,
    backend: &Arc<dyn crate::backend::Backend>,
) -> AuditResult<Option<Arc<dyn Sealer>>> {
    let s = &config.audit;
    match &s.seal_token {
        Some(label) => Ok(Some(Arc::new(TokenSealer::new(
            Arc::clone(backend),
            label,
            s.seal_pin_file
                .as_deref()
                .or(config.backend.pin_file.as_deref()),
        )?))),
        None => sealer_from_section(s),
    }
}

/// One process's writer of the trail.
pub struct AuditLog {
    config: AuditConfig,
    sealer: Option<Arc<dyn Sealer>>,
    writer: ArcSwap<WriterHandle>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.config.dir)
            .field("mode", &self.config.mode)
            .field("sealed", &self.sealer.is_some())
            .finish()
    }
}

impl AuditLog {
    /// Opens the trail and starts the writer thread. `sealer` signs the chain head
    /// periodically and at shutdown (none: chain only).
    pub fn open(config: AuditConfig, sealer: Option<Arc<dyn Sealer>>) -> AuditResult<AuditLog> {
        let writer = WriterHandle::spawn(&config, sealer.clone())?;
        Ok(AuditLog {
            config,
            sealer,
            writer: ArcSwap::from_pointee(writer),
        })
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// Records `event`, stamped now. `required`: returns when it is on disk, or the
    /// error that kept it off (the caller must then fail its operation). `buffered`:
    /// returns when it is queued (blocking only while the queue is full).
    pub fn append(&self, event: impl Into<Event>) -> AuditResult<()> {
        let time = Timestamp::now();
        let writer = self.writer.load();
        // The message is built once, around the event, and moved into the queue.
        match self.config.mode {
            Mode::Required | Mode::Written => writer.request(|ack| {
                Msg::Record(Pending {
                    time,
                    event: event.into(),
                    ack: Some(ack),
                })
            }),
            Mode::Buffered => writer.send(Msg::Record(Pending {
                time,
                event: event.into(),
                ack: None,
            })),
        }
    }

    /// [`AuditLog::append`] of the operation record in `slot`, taken out of it
    /// straight into the writer's message (one move, no temporary in between); an
    /// empty slot appends nothing.
    pub fn append_op(&self, slot: &mut Option<OpEvent>) -> AuditResult<()> {
        let time = Timestamp::now();
        let writer = self.writer.load();
        match self.config.mode {
            Mode::Required | Mode::Written => match slot.take() {
                Some(op) => writer.request(|ack| {
                    Msg::Record(Pending {
                        time,
                        event: Event::Op(op),
                        ack: Some(ack),
                    })
                }),
                None => Ok(()),
            },
            Mode::Buffered => match slot.take() {
                Some(op) => writer.send(Msg::Record(Pending {
                    time,
                    event: Event::Op(op),
                    ack: None,
                })),
                None => Ok(()),
            },
        }
    }

    /// Waits until every record appended before this call is written and synced;
    /// in `buffered` mode, an error if some are still waiting for a retry.
    pub fn flush(&self) -> AuditResult<()> {
        self.writer.load().request(Msg::Flush)
    }

    /// Seals (when records are unsealed), syncs and stops the writer. Appends after
    /// this fail with [`AuditError::WriterGone`]. Call at `C_Finalize`.
    pub fn shutdown(&self) -> AuditResult<()> {
        self.writer.load().shutdown()
    }

    /// In a forked child: abandons the parent's writer (its thread does not exist
    /// here, and its queued records are the parent's to write) and starts this
    /// process's own.
    pub fn after_fork_in_child(&self) -> AuditResult<()> {
        let fresh = WriterHandle::spawn(&self.config, self.sealer.clone())?;
        let parents = self.writer.swap(Arc::new(fresh));
        // Dropping it would be harmless (its Drop checks the pid), but the parent's
        // queue may hold records; never touching it is the simplest guarantee that
        // the child writes none of them.
        std::mem::forget(parents);
        Ok(())
    }

    /// Counters of this process's writer.
    pub fn stats(&self) -> Stats {
        self.writer.load().counters.snapshot()
    }
}

#[cfg(test)]
mod tests;
