//! The record stage of a call's path, the gateway's side of the audit trail: which calls are recorded, and what each
//! record says (docs/audit.md, "What the gateway records").
//!
//! The engine (`crate::audit`) writes, chains and seals records; this file decides
//! when to build one and fills in what only the gateway knows: the session's slot
//! and token, the caller's identity (enforce mode), the key's label and `CKA_ID`,
//! the decoded mechanism, byte counts and durations. Records are built *after* the
//! front end's argument checks, from typed facts only (lengths, handles, names):
//! nothing here can see a PIN, key material or data.
//!
//! Cost: calls that are not recorded (information, search, attribute reads,
//! random) pay one `match` on the function; an operation pays a map insert at its
//! `*Init` and one record at its end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use pkcs11_sys::*;

mod context;
mod reloads;

pub(super) use context::Context;
use context::NamedFacts;
pub(super) use reloads::{reload_event, reload_observer};

use super::Call;
use crate::abi::MechanismSummary;
use crate::audit::{
    AuditConfig, AuditLog, AuditResult, Ended, ModuleEvent, ModuleWhat, OpEvent, OpKind, OpTracker,
    ReloadWhat,
};
use crate::backend::Backend;
use crate::config::{AuditLevel, Config, PolicyMode};
use crate::error::{Error, RefusalDetail, Result};
use crate::fasthash::FastHash;
use crate::functions::{Effect, FunctionId as F, RecordKind};

/// What the front end knows about a data call's buffers: lengths, never contents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Io {
    /// Bytes the caller handed in.
    pub in_len: u64,
    /// The output length the call wrote (or, for a size query, needs).
    pub out_len: u64,
    /// The output buffer was NULL: the caller asked for the length only (§5.2).
    pub size_query: bool,
    /// `C_SessionCancel`'s flags: which operations it cancels.
    pub flags: CK_FLAGS,
}

/// How a call of `f` is recorded at `level`.
const fn recording_at(f: F, level: AuditLevel) -> Recording {
    match (f.record_kind(), level) {
        (RecordKind::Quiet, _) | (_, AuditLevel::Off) => Recording::Never,
        (RecordKind::Data | RecordKind::Init | RecordKind::Session, AuditLevel::Security) => {
            Recording::IfFailed
        }
        (RecordKind::Data, AuditLevel::All) => Recording::InOperation,
        (RecordKind::Call | RecordKind::Init | RecordKind::Session, _) => Recording::Always,
    }
}

/// How a call is recorded at the trail's level (`Recorder::recording`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recording {
    /// Not at all.
    Never,
    /// Only when it fails (level `security`).
    IfFailed,
    /// In its operation's record, written when the operation ends.
    InOperation,
    /// One record of its own (an `*Init` that succeeds starts its operation's).
    Always,
}

/// What is known before the forward of a recorded call.
// Lives on the caller's stack for one call; boxing the large variant would
// allocate on every recorded call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Pending {
    /// A data call: its operation's record and clock began at the `*Init`, so
    /// nothing (not even a clock read) is taken here.
    Data,
    /// Any other recorded call: when it began, and the record so far (context,
    /// key, mechanism); `None` for a login, whose identity is the one after it.
    Call {
        started: Instant,
        event: Option<OpEvent>,
    },
    /// Level `security`: an operation's call or a session's opening or closing,
    /// recorded only if it fails (nothing is read or timed before the forward).
    IfFailed,
}

/// The audit side of one running gateway.
#[derive(Debug)]
pub(super) struct Recorder {
    log: Arc<AuditLog>,
    /// Which calls are recorded (`[audit] level`).
    level: AuditLevel,
    /// `recording_at` for every function at `level`, indexed by `FunctionId`.
    recordings: [Recording; F::ALL.len()],
    ops: OpTracker,
    backend: Arc<dyn Backend>,
    /// What the record's context reads: the gateway's session table and facts
    /// cache, and in enforce mode the policy (roles) and lifecycle (versions).
    ctx: Context,
    /// Shared label and id strings per handle, with the facts they came from.
    names: RwLock<HashMap<(CK_SLOT_ID, CK_OBJECT_HANDLE), NamedFacts, FastHash>>,
}

impl Recorder {
    /// Opens the trail (`[audit]`, required in every configuration) and records the
    /// module's start and the configuration and policy it read. The token sealer
    /// needs the initialised backend.
    pub(super) fn open(
        config: &Config,
        backend: &Arc<dyn Backend>,
        ctx: Context,
    ) -> Result<Recorder> {
        let sealer = crate::audit::sealer_for(config, backend)?;
        let log = AuditLog::open(AuditConfig::from_section(&config.audit)?, sealer)?;
        let mut start = ModuleEvent::new(ModuleWhat::Start);
        start.backend = Some(config.backend.module.display().to_string());
        start.detail = Some(match &config.policy.mode {
            PolicyMode::Transparent => "policy transparent (allow all, recorded)".to_owned(),
            PolicyMode::Enforce { .. } => "policy enforce".to_owned(),
        });
        log.append(start)?;
        log.append(reload_event(
            ReloadWhat::Config,
            &Config::path_from_env(),
            None,
        ))?;
        if let PolicyMode::Enforce { file } = &config.policy.mode {
            log.append(reload_event(ReloadWhat::Policy, file, None))?;
        }
        Ok(Recorder {
            log: Arc::new(log),
            level: config.audit.level,
            recordings: std::array::from_fn(|i| recording_at(F::ALL[i], config.audit.level)),
            ops: OpTracker::new(),
            backend: Arc::clone(backend),
            ctx,
            names: RwLock::new(HashMap::default()),
        })
    }

    /// How a call of `f` is recorded at this level: the one table of
    /// [`Recorder::before`] and [`Recorder::records_success`], computed once.
    #[inline(always)]
    fn recording(&self, f: F) -> Recording {
        self.recordings[f as usize]
    }

    /// Whether a successful call of `f` writes a record at this level: only then
    /// must `required` mode hold the call's output back until the record is
    /// durable (`ffi::output`).
    pub(super) fn records_success(&self, f: F) -> bool {
        matches!(
            self.recording(f),
            Recording::InOperation | Recording::Always
        )
    }

    /// The trail, for the policy's reload observer.
    pub(super) fn log(&self) -> &Arc<AuditLog> {
        &self.log
    }

    fn append(&self, event: impl Into<crate::audit::Event>) -> Result<()> {
        self.log.append(event).map_err(Error::from)
    }

    /// Appends the record in `slot`, taken out of it straight into the writer's
    /// message; an empty slot appends nothing.
    fn append_taken(&self, slot: &mut Option<OpEvent>) -> Result<()> {
        self.log.append_op(slot).map_err(Error::from)
    }

    /// An administrative record of the module (`lifecycle_audit.rs`: the store's
    /// binding to this trail).
    pub(super) fn admin(&self, event: crate::audit::AdminEvent) -> Result<()> {
        self.append(event)
    }

    /// `C_Finalize`: operations still under way end with `CKR_SESSION_CLOSED`, a
    /// stop record, then the writer seals, syncs and stops (before the backend is
    /// finalised: a token sealer needs it).
    pub(super) fn stop(&self) -> AuditResult<()> {
        let mut first_error = None;
        for op in self.ops.close_slot(None, F::C_Finalize) {
            if let Err(e) = self.log.append(op) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.log.append(ModuleEvent::new(ModuleWhat::Stop)) {
            first_error.get_or_insert(e);
        }
        let shutdown = self.log.shutdown();
        match first_error {
            Some(e) => Err(e),
            None => shutdown,
        }
    }

    /// Writes what is queued (process exit in `buffered` mode).
    pub(super) fn flush(&self) -> AuditResult<()> {
        self.log.flush()
    }

    /// A module error (a caught panic, an internal error) worth an auditor's eye.
    pub(super) fn module_error(&self, function: F, detail: &str) {
        let mut m = ModuleEvent::new(ModuleWhat::Error);
        m.detail = Some(format!("{}: {detail}", function.name()));
        if let Err(e) = self.log.append(m) {
            log::error!("audit: could not record a module error: {e}");
        }
    }

    /// A refusal, whatever stage made it: logged with its rule, operation and
    /// reason, and recorded with its rule (for a refused named login with the
    /// identity it tried). Key facts come from the cache only (the refusal may be
    /// about an object whose facts cannot be read). In `required` mode a refusal
    /// whose record cannot be written is `Error::Audit`, as any lost record is.
    #[cold]
    fn refused(&self, call: &Call, rv: CK_RV, rule: String, detail: Box<RefusalDetail>) -> Error {
        log::info!(
            "{}: refused by rule {rule} ({}): {}; session {:?}, object {:?}, mechanism {:?}",
            call.function.name(),
            detail.op.unwrap_or("-"),
            detail.reason,
            call.session,
            call.object,
            call.mechanism,
        );
        if self.level != AuditLevel::Off {
            let mut ev = self.context(call, rv, false).denied(rule.as_str());
            if let Some(name) = &detail.tried {
                ev = ev.with_identity(name.as_str(), None);
            }
            if let Err(e) = self.append(ev) {
                log::error!("{}: audit record not written: {e}", call.function.name());
                return e;
            }
        }
        Error::Refused { rv, rule, detail }
    }

    /// Before the forward: sets `pending` (the caller's stack slot, so no record
    /// under construction is moved between frames) to what the record stage will
    /// need. For calls and `*Init`s recorded on their own that is the time and the
    /// record's context as it is before the call — the key of a `C_DestroyObject`
    /// must be named before it is gone; a call that is not recorded, or only if it
    /// fails, costs one table look-up here.
    #[inline(always)]
    pub(super) fn before(
        &self,
        call: &Call,
        mechanism: Option<&MechanismSummary>,
        pending: &mut Option<Pending>,
    ) {
        *pending = match self.recording(call.function) {
            Recording::Never => None,
            Recording::IfFailed => Some(Pending::IfFailed),
            Recording::InOperation => Some(Pending::Data),
            Recording::Always => return self.before_call(call, mechanism, pending),
        };
    }

    #[inline(never)]
    fn before_call(
        &self,
        call: &Call,
        mechanism: Option<&MechanismSummary>,
        pending: &mut Option<Pending>,
    ) {
        // `pending` is a fresh `None` per call, so this branch is never taken;
        // with it the write below has no old value to drop.
        if pending.is_some() {
            *pending = None;
        }
        let slot = pending.get_or_insert_with(|| Pending::Call {
            started: Instant::now(),
            event: None,
        });
        // A login's identity is the one after the call.
        if matches!(call.function, F::C_Login | F::C_LoginUser) {
            return;
        }
        if let Pending::Call { event, .. } = slot {
            // Built in the caller's slot: the record is not moved until it is sent.
            let ev = event.insert(OpEvent::from_call(call, CKR_OK));
            self.fill_context(ev, call, true);
            if let Some(m) = mechanism {
                ev.set_mechanism(m);
            }
        }
    }

    /// The record stage, at the end of every call's path: a refusal (of any
    /// call, recorded or not) is logged and recorded here; an allowed call's
    /// record says what the backend answered and what the call ended. In
    /// `required` mode a record that could not be written turns the call's result
    /// into `Error::Audit`. A success that writes nothing (not recorded, or only
    /// if it fails) returns at once.
    #[inline(always)]
    pub(super) fn after(
        &self,
        call: &Call,
        pending: &mut Option<Pending>,
        io: Io,
        result: Result<()>,
    ) -> Result<()> {
        if result.is_ok() && matches!(pending, None | Some(Pending::IfFailed)) {
            return result;
        }
        self.after_recorded(call, pending, io, result)
    }

    /// The record is completed where `before` left it, in the caller's `pending`,
    /// and taken out of it once, into the writer's message.
    #[inline(never)]
    fn after_recorded(
        &self,
        call: &Call,
        pending: &mut Option<Pending>,
        io: Io,
        result: Result<()>,
    ) -> Result<()> {
        let result = match result {
            Err(Error::Refused { rv, rule, detail }) => {
                return Err(self.refused(call, rv, rule, detail))
            }
            other => other,
        };
        let Some(pending) = pending else {
            return result;
        };
        let rv = match &result {
            Ok(()) => CKR_OK,
            Err(Error::Audit(_)) => return result,
            Err(e) => e.rv(),
        };
        let written = self.record(call, pending, io, rv);
        match written {
            Ok(()) => result,
            Err(e) => {
                log::error!("{}: audit record not written: {e}", call.function.name());
                Err(e)
            }
        }
    }

    fn record(&self, call: &Call, pending: &mut Pending, io: Io, rv: CK_RV) -> Result<()> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let (started, event) = match pending {
            Pending::Call { started, event } => (*started, event),
            Pending::IfFailed => return self.record_if_failed(call, io, rv),
            Pending::Data => {
                // The signature a verification checks is not data.
                let in_len = if call.function == F::C_VerifyFinal {
                    0
                } else {
                    io.in_len
                };
                let mut ended = Ended::default();
                #[allow(clippy::useless_conversion)]
                self.ops.data_into(
                    u64::from(session),
                    call.function,
                    rv,
                    (in_len, io.out_len, io.size_query),
                    &mut ended,
                );
                return ended.try_each(|op| self.append_taken(op));
            }
        };
        if call.function.record_kind() != RecordKind::Init {
            return self.record_call(call, started, event, io, rv);
        }
        match OpKind::from_init(call.function) {
            Some(op_kind) if rv == CKR_OK => {
                let ev = event.take().unwrap_or_else(|| OpEvent::from_call(call, rv));
                #[allow(clippy::useless_conversion)]
                let stale = self.ops.begin(u64::from(session), op_kind, ev, started);
                stale.map_or(Ok(()), |op| self.append(op))
            }
            _ => {
                let ev = event.get_or_insert_with(|| OpEvent::from_call(call, rv));
                ev.rv = crate::audit::Rv(rv);
                ev.set_duration(started.elapsed());
                self.append_taken(event)
            }
        }
    }

    fn record_call(
        &self,
        call: &Call,
        started: Instant,
        event: &mut Option<OpEvent>,
        io: Io,
        rv: CK_RV,
    ) -> Result<()> {
        // A §5.2 length query (or a too-small buffer) is asked again: the real call
        // is the one recorded.
        if io.size_query && rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL {
            return Ok(());
        }
        let ev = match event {
            Some(ev) => ev,
            None => event.insert(self.context(call, rv, false)),
        };
        ev.rv = crate::audit::Rv(rv);
        ev.bytes_in = io.in_len;
        ev.bytes_out = io.out_len;
        ev.set_duration(started.elapsed());
        // `C_OpenSession`'s record names the session it opened: the handle exists
        // only after the call (the gateway passes it in `call`).
        if ev.session.is_none() {
            #[allow(clippy::useless_conversion)]
            let opened = call.session.map(u64::from);
            ev.session = opened;
        }
        let ended = match rv {
            CKR_OK => self.ended(call, &io),
            _ => Vec::new(),
        };
        self.append_taken(event)?;
        // Most calls end no operation: no iterator is made for them.
        if ended.is_empty() {
            return Ok(());
        }
        ended.into_iter().try_for_each(|op| self.append(op))
    }

    /// Level `security`: a failed operation call or session change is one record
    /// (its key, when cached); a successful one only updates the session table.
    fn record_if_failed(&self, call: &Call, io: Io, rv: CK_RV) -> Result<()> {
        // A success never gets here (`after` returns first: no operation is tracked
        // at this level, so nothing it ends is recorded); a too-small buffer is asked
        // again.
        if rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL {
            return Ok(());
        }
        let mut ev = self.context(call, rv, false);
        ev.bytes_in = io.in_len;
        ev.bytes_out = io.out_len;
        self.append(ev)
    }

    /// The operations a successful call ended: those of a closed session or slot,
    /// and those `C_SessionCancel` cancelled (v3.0 §5.6). The session table and
    /// the facts cache are the gateway's to follow (`follow.rs`).
    fn ended(&self, call: &Call, io: &Io) -> Vec<OpEvent> {
        // CK_ULONG is u64 here but 32 bits wide on other targets.
        #[allow(clippy::useless_conversion)]
        match (call.function.effect(), call.session, call.slot) {
            (Effect::EndsSession, Some(session), _) => {
                self.ops.close_session(u64::from(session), call.function)
            }
            (Effect::EndsSlot, _, Some(slot)) => {
                self.ops.close_slot(Some(u64::from(slot)), call.function)
            }
            (Effect::Cancels, Some(session), _) => cancelled(io.flags)
                .filter_map(|k| {
                    self.ops
                        .abandon(u64::from(session), k, call.function, CKR_FUNCTION_CANCELED)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The operations `C_SessionCancel`'s flags name (v3.0 §5.6).
fn cancelled(flags: CK_FLAGS) -> impl Iterator<Item = OpKind> {
    OpKind::CANCEL_FLAGS
        .into_iter()
        .filter(move |(f, _)| flags & *f != 0)
        .map(|(_, k)| k)
}
