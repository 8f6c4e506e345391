//! The gateway: the path of one PKCS#11 call through Keywarden.
//!
//! identify the caller → resolve the object → policy and lifecycle decision →
//! forward to the backend → audit record.
//!
//! A front end (the C ABI in `ffi`, later an out-of-process server) describes each
//! call with a [`Call`] and hands over a closure that performs the forward on the
//! [`Backend`] with its own, already-validated arguments. The gateway never sees a
//! raw pointer. With the `transparent` profile there is no access policy: a call
//! is forwarded unless it uses a managed key its lifecycle state forbids
//! (`lifecycle_guard.rs`), and a call that uses no key costs the descriptor, one
//! branch and one closure call.

mod attributes;
mod create;
mod decision_memo;
mod enforce;
mod facts_cache;
mod find;
mod follow;
mod lifecycle;
mod lifecycle_audit;
mod lifecycle_guard;
mod named;
mod recorder;
mod register;
mod seal_key;
mod session_calls;
mod session_table;
#[cfg(test)]
mod tests;
mod unsupported;
mod versions;

use std::sync::Arc;

use pkcs11_sys::*;

pub use crate::call::Call;
pub use create::{unwrap_bits_hint, Additions, CreateArgs, NewObjects};
pub use enforce::Enforcer;
pub use recorder::Io;

use crate::backend::{Backend, InitOutcome, LoadedModule};
use crate::config::{Config, PolicyMode};
use crate::error::{check_rv, Error, Result};
use crate::functions::{FnClass, FunctionId};
use facts_cache::FactsCache;
use recorder::Recorder;
use session_table::SessionTable;

/// The classes whose calls a policy decides before forwarding: where a refusal
/// could hide the token's "not supported".
const fn decided_by_policy(f: FunctionId) -> bool {
    matches!(
        f.class(),
        FnClass::KeyUse | FnClass::KeyManagement | FnClass::Object | FnClass::Admin
    )
}

/// The module's start line in its own log.
fn log_start(config: &Config, init_outcome: InitOutcome) {
    log::info!(
        "keywarden {} started over {} ({}), policy {}",
        crate::VERSION,
        config.backend.module.display(),
        match init_outcome {
            InitOutcome::Initialized => "initialised by keywarden",
            InitOutcome::AlreadyInitialized => "already initialised by the application",
        },
        match &config.policy.mode {
            PolicyMode::Transparent => "transparent".to_owned(),
            PolicyMode::Enforce { file } => format!("enforced from {}", file.display()),
        }
    );
}

/// The engine behind one initialised module instance.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    backend: Arc<dyn Backend>,
    init_outcome: InitOutcome,
    /// `Some` in enforce mode only: transparent mode's path is one branch on it.
    enforcer: Option<Enforcer>,
    /// States and usage of managed keys, in both policy modes (the store is
    /// required in both): the enforcer's in enforce mode, `lifecycle_guard.rs`'s
    /// in transparent mode.
    lifecycle: Arc<crate::lifecycle::LifecycleRuntime>,
    /// The audit trail: on in both policy modes (`[audit]` is required).
    audit: Arc<Recorder>,
    /// The one session table (both modes): each session's slot and token, each
    /// slot's login state and subject.
    sessions: Arc<SessionTable>,
    /// The one cache of objects' facts (both modes): decisions, lifecycle checks
    /// and records read it.
    facts: Arc<FactsCache>,
    /// With `[audit] seal_token`: the seal key's objects are refused to callers.
    seal_guard: Option<seal_key::SealGuard>,
    /// Enforce mode: the functions the backend lacks (`unsupported.rs`).
    unsupported: unsupported::Unsupported,
    /// The caller waits for its record (`required`, `written`; read once: a data
    /// call asks per call).
    audit_waits: bool,
}

impl Gateway {
    /// Loads and initialises the backend named by `config`. In enforce mode the
    /// policy file is opened first: an unusable file fails `C_Initialize` before
    /// the backend is touched (fail closed). Then the audit trail is opened (after
    /// the backend: a token sealer uses it); an unusable trail fails
    /// `C_Initialize` too.
    pub fn start(config: Config) -> Result<Gateway> {
        Gateway::start_from(config, |c| {
            Ok(Arc::new(LoadedModule::load(&c.backend.module)?))
        })
    }

    /// [`Gateway::start`] over a backend of the caller's (the unit tests' double):
    /// `config.backend.module` is then only named in the start record.
    pub fn start_with(config: Config, backend: Arc<dyn Backend>) -> Result<Gateway> {
        Gateway::start_from(config, |_| Ok(backend))
    }

    /// The start: `backend` is called once the store and the policy are open.
    fn start_from(
        config: Config,
        backend: impl FnOnce(&Config) -> Result<Arc<dyn Backend>>,
    ) -> Result<Gateway> {
        let clock = crate::lifecycle::clock_from_env(config.policy.clock_override)?;
        let lifecycle = Arc::new(crate::lifecycle::LifecycleRuntime::open(
            &config.store,
            clock,
        )?);
        let enforcing = matches!(config.policy.mode, PolicyMode::Enforce { .. });
        let sessions = Arc::new(SessionTable::new(observe_process(enforcing)));
        let facts = Arc::new(FactsCache::default());
        let mut enforcer = match &config.policy.mode {
            PolicyMode::Transparent => None,
            PolicyMode::Enforce { file } => Some(Enforcer::open(
                file,
                &config,
                Arc::clone(&lifecycle),
                Arc::clone(&sessions),
                Arc::clone(&facts),
            )?),
        };
        let backend = backend(&config)?;
        let init_outcome = backend.initialize()?;
        let context = recorder::Context {
            sessions: Arc::clone(&sessions),
            facts: Arc::clone(&facts),
            policy: enforcer.as_ref().map(|e| Arc::clone(e.policy_handle())),
            versions: enforcer.as_ref().map(|_| Arc::clone(&lifecycle)),
        };
        let (audit, seal_guard) =
            Gateway::open_audit(&config, &backend, context, enforcer.as_mut())?;
        let unsupported = match &enforcer {
            Some(_) => unsupported::Unsupported::of(&*backend),
            None => unsupported::Unsupported::default(),
        };
        log_start(&config, init_outcome);
        Ok(Gateway {
            config,
            backend,
            init_outcome,
            enforcer,
            audit_waits: audit.log().mode().caller_waits(),
            lifecycle,
            audit,
            sessions,
            facts,
            seal_guard,
            unsupported,
        })
    }

    /// The audit side of the start, over the initialised backend: the recorder,
    /// the seal key's guard, and in enforce mode the store bound to the trail's
    /// chain. A failure stops what was started and finalises the backend
    /// (`C_Initialize` fails: no `C_Finalize` will follow).
    fn open_audit(
        config: &Config,
        backend: &Arc<dyn Backend>,
        context: recorder::Context,
        enforcer: Option<&mut Enforcer>,
    ) -> Result<(Arc<Recorder>, Option<seal_key::SealGuard>)> {
        let audit = match Recorder::open(config, backend, context) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                // C_Initialize fails: no C_Finalize will follow.
                let _ = backend.finalize();
                return Err(e);
            }
        };
        // The sealer found the seal token: so does this (a failure is a bug there).
        let seal_guard = match seal_key::SealGuard::start(config, &**backend) {
            Ok(g) => g,
            Err(e) => {
                let _ = audit.stop();
                let _ = backend.finalize();
                return Err(e);
            }
        };
        if let Some(e) = enforcer {
            if let Err(err) = lifecycle_audit::bind_store(&audit, config, e.lifecycle.store()) {
                let _ = audit.stop();
                let _ = backend.finalize();
                return Err(err);
            }
            e.attach_trail(audit.log());
        }
        Ok((audit, seal_guard))
    }

    /// `C_Finalize`: records the end of operations under way and the stop, seals
    /// and syncs the trail, then finalises the backend if this gateway initialised
    /// it (enforce mode: after writing the pending usage counters). Not left to
    /// `Drop`: the front end keeps a retired gateway for a while.
    ///
    /// In `required` audit mode a stop (or ended-operation) record that could not
    /// be written fails `C_Finalize` with the audit error's code, like any other
    /// call whose record is lost; the module is finalised all the same. In
    /// `buffered` mode it is logged and counted, as every buffered write failure is.
    /// A failed final seal loses no record: it is logged, counted, and shows in
    /// `audit verify` as an unsealed tail.
    pub fn stop(&self) -> Result<()> {
        self.lifecycle.stop();
        let audited = self.audit.stop();
        if let Err(e) = &audited {
            log::error!("audit trail at C_Finalize: {e}");
        }
        self.backend.finalize()?;
        match audited {
            Err(e) if self.audit.log().mode().caller_waits() => Err(Error::from(e)),
            _ => Ok(()),
        }
    }

    /// Writes the audit records still queued (`buffered` mode; process exit).
    pub fn flush_audit(&self) {
        if let Err(e) = self.audit.flush() {
            log::error!("audit trail flush: {e}");
        }
    }

    /// Records one of Keywarden's own errors (a caught panic) in the trail.
    pub fn record_module_error(&self, function: FunctionId, detail: &str) {
        self.audit.module_error(function, detail);
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `start` initialised the backend or found it already initialised.
    pub fn init_outcome(&self) -> InitOutcome {
        self.init_outcome
    }

    /// True when a successful `f` is recorded in an audit mode the caller waits in
    /// (`required`, `written`): a call whose record cannot be written fails, and its
    /// output must not reach the caller (`ffi::output`). At level `security` an operation's success writes no
    /// record, so its output needs no holding back.
    #[inline]
    pub fn holds_output(&self, f: FunctionId) -> bool {
        self.audit_waits && self.audit.records_success(f)
    }

    /// True when the backend offers the PKCS#11 3.0 interface.
    pub fn backend_has_v3_0(&self) -> bool {
        self.backend.has_v3_0()
    }

    /// Runs `body` (a call's decision and forward) between the audit trail's
    /// `before` and `after` (src/gateway/recorder/): one `match` for calls that are
    /// not recorded.
    #[inline]
    fn recorded(&self, call: &Call, body: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut pending = None;
        self.audit.before(call, None, &mut pending);
        let result = body();
        self.audit.after(call, &mut pending, Io::default(), result)
    }

    /// One call's path. `forward` performs the backend call and returns its `CK_RV`,
    /// which comes back unchanged as `Err(Error::Backend(rv))` when it is not `CKR_OK`.
    #[inline]
    pub fn call(&self, call: Call, forward: impl FnOnce(&dyn Backend) -> CK_RV) -> Result<()> {
        self.recorded(&call, || self.forward(&call, forward))
    }

    /// A call with buffers (data calls of an operation, `C_WrapKey`): `io` says
    /// what the front end knows before the call (input length, size query);
    /// `forward` also returns the output length the backend wrote.
    #[inline]
    pub fn call_io(
        &self,
        call: Call,
        io: Io,
        forward: impl FnOnce(&dyn Backend) -> (CK_RV, CK_ULONG),
    ) -> Result<()> {
        let mut pending = None;
        self.audit.before(&call, None, &mut pending);
        let mut out_len: CK_ULONG = 0;
        let result = self.forward(&call, |b| {
            let (rv, n) = forward(b);
            out_len = n;
            rv
        });
        // CK_ULONG is u64 here but 32 bits wide on other targets.
        #[allow(clippy::useless_conversion)]
        let io = Io {
            out_len: u64::from(out_len),
            ..io
        };
        self.audit.after(&call, &mut pending, io, result)
    }

    /// A `*Init`: `mechanism` is the decoded mechanism (types and lengths), when it
    /// could be decoded, for the operation's record.
    #[inline]
    pub fn op_init(
        &self,
        call: Call,
        mechanism: Option<&crate::abi::MechanismSummary>,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        let mut pending = None;
        self.audit.before(&call, mechanism, &mut pending);
        let result = self.forward(&call, forward);
        self.audit.after(&call, &mut pending, Io::default(), result)
    }

    /// `C_SessionCancel` (v3.0): the operations its `flags` name end here.
    pub fn session_cancel(
        &self,
        call: Call,
        flags: CK_FLAGS,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        let mut pending = None;
        self.audit.before(&call, None, &mut pending);
        let result = self.forward(&call, forward);
        let io = Io {
            flags,
            ..Io::default()
        };
        self.audit.after(&call, &mut pending, io, result)
    }

    /// A call's path without its audit record, for a data call Keywarden refused
    /// on its arguments and hands to the token as it came (`ffi::boundary`).
    pub fn forward_unrecorded(
        &self,
        call: &Call,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.settle(call, self.forward(call, forward))
    }

    /// The record stage of a call that writes no record of its own: only a
    /// refusal is recorded (`Recorder::after`).
    #[inline]
    fn settle(&self, call: &Call, result: Result<()>) -> Result<()> {
        self.audit.after(call, &mut None, Io::default(), result)
    }

    /// Decide, forward, follow up: a call's path without its audit record.
    #[inline]
    fn forward(&self, call: &Call, forward: impl FnOnce(&dyn Backend) -> CK_RV) -> Result<()> {
        self.decide(call)?;
        let result = check_rv(forward(&*self.backend));
        if result.is_ok() {
            self.follow_objects(call);
        }
        result
    }

    /// The policy and lifecycle decision. Every function has a class in the one
    /// function table; an unclassified one is refused before it reaches the token.
    #[inline]
    fn decide(&self, call: &Call) -> Result<()> {
        let class = call.function.class();
        // Transparent mode without a seal key: only a function that can use a key
        // (or an unclassified one) has anything to decide.
        if self.enforcer.is_none()
            && self.seal_guard.is_none()
            && !matches!(
                class,
                FnClass::KeyUse | FnClass::KeyManagement | FnClass::Unclassified
            )
        {
            return Ok(());
        }
        self.decide_classified(call, class)
    }

    #[inline(never)]
    fn decide_classified(&self, call: &Call, class: FnClass) -> Result<()> {
        if class == FnClass::Unclassified {
            return Err(Error::FunctionNotSupported);
        }
        if let Some(g) = &self.seal_guard {
            if let Some((op, r)) = g.check(&*self.backend, &self.sessions, &self.facts, call) {
                return Err(enforce::lifecycle_refusal(Some(op), r));
            }
        }
        match &self.enforcer {
            // Transparent: only the functions that can use a key ask the lifecycle.
            None if matches!(class, FnClass::KeyUse | FnClass::KeyManagement) => {
                self.guard_key_use(call)
            }
            None => Ok(()),
            // The token's own answer for a function it lacks, whatever the policy.
            Some(_)
                if decided_by_policy(call.function)
                    && self.unsupported.lacks(&*self.backend, call) =>
            {
                Err(Error::FunctionNotSupported)
            }
            Some(e) => e.before(&*self.backend, call),
        }
    }

    /// A call whose template or array count is larger than any the call can
    /// carry (`ffi::args::MAX_TEMPLATE`): never walked nor forwarded. The token's
    /// own answer for an invalid session or object handle comes first, as it
    /// would directly (each is asked with a read-only call); otherwise
    /// `CKR_ARGUMENTS_BAD` (docs/abi-conventions.md, "Counts and lengths").
    #[cold]
    pub fn absurd_count(&self, call: &Call) -> Error {
        if let Some(session) = call.session {
            let mut info = CK_SESSION_INFO::default();
            let rv = self.backend.get_session_info(session, &mut info);
            if rv != CKR_OK {
                return Error::Backend(rv);
            }
            if let Some(object) = call.object {
                let mut class = [CK_ATTRIBUTE {
                    type_: CKA_CLASS,
                    pValue: std::ptr::null_mut(),
                    ulValueLen: 0,
                }];
                let rv = self
                    .backend
                    .get_attribute_value(session, object, Some(&mut class));
                if rv == CKR_OBJECT_HANDLE_INVALID {
                    return Error::Backend(call.function.invalid_object_rv());
                }
            }
        }
        Error::ArgumentsBad("count larger than any template")
    }
}

/// The calling process's facts, observed once at `C_Initialize` for the session
/// table's subjects. In enforce mode a nested user namespace is worth a warning:
/// there the facts are the process's own choice.
fn observe_process(enforcing: bool) -> crate::identity::ProcessFacts {
    let process = crate::identity::ProcessFacts::observe();
    if enforcing && process.namespaced {
        log::warn!(
            "this process runs in a nested user namespace: its uid, groups, executable \
             and host are its own choice there, and the policy matches none of them"
        );
    }
    process
}
