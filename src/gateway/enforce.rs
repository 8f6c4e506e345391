//! Enforce mode: the policy decisions of docs/policy.md, "Enforcement points".
//!
//! The gateway holds `Option<Enforcer>`; transparent mode has none, and its path
//! is one branch. A decision is a value: an allowed call goes on, a refused one is
//! an `Error::Refused` built by [`refusal`] (or [`lifecycle_refusal`]) with its
//! rule, code and reason. Nothing here logs or records a refusal: the gateway's
//! record stage does, once, where the call's path ends (`Recorder::after`).

use std::sync::Arc;

use pkcs11_sys::*;

use super::decision_memo::{Basis, DecisionMemo, Kept};
use super::facts_cache::{FactsCache, FactsError};
use super::session_table::SessionTable;
use super::Call;
use crate::backend::Backend;
use crate::error::{Error, RefusalDetail, Result};
use crate::functions::{Decide, FunctionId as F};
use crate::lifecycle::{LcRefusal, LifecycleRuntime, View};
use crate::policy::{Decision, KeyFacts, Login, Op, Policy, PolicyHandle, Request, Subject};

/// The functions whose allowed decisions a session keeps: the `*Init`s (the
/// recording kind that starts an operation), which applications repeat with the
/// same key. The rarer key uses (destroy, copy, wrap, unwrap, derive, digest-key)
/// are decided afresh every time.
fn keeps_decision(f: F) -> bool {
    f.record_kind() == crate::functions::RecordKind::Init
}

/// A refusal as the one error every stage returns: rule, code and reason.
pub(super) fn refusal(op: Option<Op>, d: &Decision, tried: Option<&str>) -> Error {
    Error::Refused {
        rv: d.rv,
        rule: d.rule.to_string(),
        detail: Box::new(RefusalDetail {
            op: op.map(Op::name),
            reason: d.reason.to_string(),
            tried: tried.map(str::to_owned),
        }),
    }
}

/// A lifecycle refusal (state, unmanaged key, store, seal key) as the same error.
pub(super) fn lifecycle_refusal(op: Option<Op>, r: LcRefusal) -> Error {
    Error::Refused {
        rv: r.rv,
        rule: r.rule.to_owned(),
        detail: Box::new(RefusalDetail {
            op: op.map(Op::name),
            reason: r.reason,
            tried: None,
        }),
    }
}

/// A refusal that is not a policy rule's (facts unreadable, unknown session).
fn builtin_refusal(op: Option<Op>, rv: CK_RV, why: String) -> Error {
    let d = Decision {
        allow: false,
        rule: crate::policy::RuleRef::Builtin("default-deny"),
        reason: why.into(),
        rv,
    };
    refusal(op, &d, None)
}

/// The policy and what its decisions read: the gateway's session table and facts
/// cache (shared, one of each), the lifecycle, and the decision memo.
#[derive(Debug)]
pub struct Enforcer {
    policy: Arc<PolicyHandle>,
    /// The credential store of named identities.
    pub(super) store: crate::config::StoreConfig,
    /// `[backend] pin_file`, the token PIN named logins use.
    pub(super) pin_file: Option<std::path::PathBuf>,
    /// `[backend] so_pin_file`, the token SO PIN named SO logins use.
    pub(super) so_pin_file: Option<std::path::PathBuf>,
    pub(super) sessions: Arc<SessionTable>,
    pub(super) facts: Arc<FactsCache>,
    /// States, rotation and usage of managed keys (docs/lifecycle.md): the
    /// gateway's, shared.
    pub(super) lifecycle: Arc<LifecycleRuntime>,
    /// The audit engine's trail, for the lifecycle changes the enforcer makes
    /// (registration, automatic rotation) as it makes them (set by `Gateway::start`).
    pub(super) trail: Option<Arc<crate::audit::AuditLog>>,
    /// Each session's last allowed key-use decision.
    pub(super) memo: DecisionMemo,
}

impl Enforcer {
    /// Opens the policy file (an unusable file fails `C_Initialize`). The policy
    /// runs on the lifecycle's clock.
    pub(super) fn open(
        file: &std::path::Path,
        config: &crate::config::Config,
        lifecycle: Arc<LifecycleRuntime>,
        sessions: Arc<SessionTable>,
        facts: Arc<FactsCache>,
    ) -> Result<Enforcer> {
        let policy = PolicyHandle::open(file, Arc::clone(&lifecycle.clock)).map_err(|e| {
            Error::Config(format!(
                "policy.mode = \"enforce\": {}",
                e.to_string().replace('\n', " ")
            ))
        })?;
        Ok(Enforcer {
            policy: Arc::new(policy),
            store: config.store.clone(),
            pin_file: config.backend.pin_file.clone(),
            so_pin_file: config.backend.so_pin_file.clone(),
            sessions,
            facts,
            lifecycle,
            trail: None,
            memo: DecisionMemo::default(),
        })
    }

    /// Records policy reloads and the enforcer's lifecycle changes in `trail`.
    pub(super) fn attach_trail(&mut self, trail: &Arc<crate::audit::AuditLog>) {
        self.policy
            .set_observer(super::recorder::reload_observer(Arc::clone(trail)));
        self.trail = Some(Arc::clone(trail));
    }

    /// The policy handle (the recorder names a session's roles with it).
    pub(super) fn policy_handle(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    /// The active policy (reloaded when its file changed).
    pub(super) fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// The subject of the call's session; an unknown session is refused as the
    /// backend would (it was not opened through this module instance).
    pub(super) fn subject_of(
        &self,
        p: &Policy,
        call: &Call,
        op: Option<Op>,
    ) -> Result<(CK_SLOT_ID, Arc<Subject>)> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        self.sessions.subject(p, session).ok_or_else(|| {
            builtin_refusal(
                op,
                CKR_SESSION_HANDLE_INVALID,
                "session not opened through Keywarden".into(),
            )
        })
    }

    /// Facts of an object, or a refusal: a handle the token does not know is
    /// answered as the token would; any other failure refuses with the operation's
    /// code (never allow on an error).
    pub(super) fn facts_of(
        &self,
        backend: &dyn Backend,
        call: &Call,
        op: Op,
        slot: CK_SLOT_ID,
        object: CK_OBJECT_HANDLE,
    ) -> Result<Arc<KeyFacts>> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        self.facts
            .get(backend, slot, session, object)
            .map_err(|FactsError(rv)| {
                let code = super::facts_cache::facts_error_rv(op, rv);
                builtin_refusal(
                    Some(op),
                    code,
                    format!(
                        "the object's attributes could not be read ({})",
                        crate::abi::rv_name(rv)
                    ),
                )
            })
    }

    /// Decides one key use (or an administrative operation when `object` is None).
    pub(super) fn decide_key(
        &self,
        backend: &dyn Backend,
        call: &Call,
        op: Op,
        object: Option<CK_OBJECT_HANDLE>,
    ) -> Result<()> {
        let p = self.policy();
        let (slot, subject) = self.subject_of(&p, call, Some(op))?;
        let Some(o) = object else {
            let d = p.decide(&Request {
                subject: &subject,
                op,
                key: None,
                mechanism: call.mechanism,
            });
            return if d.allow {
                Ok(())
            } else {
                Err(refusal(Some(op), &d, None))
            };
        };
        let facts = self.facts_of(backend, call, op, slot, o)?;
        // Policy, then the lifecycle state (docs/lifecycle.md): policy decides who,
        // the state whether the key may be used at all.
        let view = super::lifecycle::lifecycle_view(&self.lifecycle, &self.sessions, backend, slot)
            .map_err(|r| lifecycle_refusal(Some(op), r))?;
        // A `*Init` repeating the session's last one on an unchanged basis: its
        // kept decision (decision_memo.rs).
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let basis = Basis {
            policy: &p,
            subject: &subject,
            facts: &facts,
            index: &view.index,
            serial: &view.serial,
            object: o,
            op,
            mechanism: call.mechanism,
            second: self.lifecycle.now(),
        };
        let memoised = keeps_decision(call.function);
        if memoised {
            if let Some(counts) = self.memo.reuse(session, &basis) {
                if let Some(version) = counts {
                    self.lifecycle.record_use(version, basis.second);
                }
                return Ok(());
            }
        }
        let managed = view.lookup(&facts);
        let enriched = View::enrich(Arc::clone(&facts), managed.as_ref());
        let d = p.decide(&Request {
            subject: &subject,
            op,
            key: Some(&enriched),
            mechanism: call.mechanism,
        });
        if !d.allow {
            return Err(refusal(Some(op), &d, None));
        }
        let kept = self.lifecycle_check(backend, call, op, slot, &view, managed, &enriched, &p)?;
        // Kept only when decided within one second of the clock (the policy read
        // it too).
        if let (true, Kept::May { counts }) = (memoised, kept) {
            if self.lifecycle.now() == basis.second {
                self.memo.keep(session, &basis, counts);
            }
        }
        Ok(())
    }

    /// An administrative operation on a slot (`C_InitToken`): the slot's login.
    fn decide_slot_admin(&self, call: &Call, op: Op) -> Result<()> {
        let p = self.policy();
        let slot = call.slot.unwrap_or(CK_ULONG::MAX);
        let subject = self.sessions.slot_subject(&p, slot);
        let d = p.decide(&Request {
            subject: &subject,
            op,
            key: None,
            mechanism: None,
        });
        if d.allow {
            Ok(())
        } else {
            Err(refusal(Some(op), &d, None))
        }
    }

    /// `C_Login(CKU_SO)`: decided as `so-login` for the caller as it would be once
    /// logged in as SO (rules name `login = "so"` principals).
    pub(super) fn decide_so_login(
        &self,
        identity: Option<crate::policy::NamedIdentity>,
    ) -> Result<()> {
        let p = self.policy();
        let subject = p.resolve(&self.sessions.principal(Login::So, identity));
        let d = p.decide(&Request {
            subject: &subject,
            op: Op::SoLogin,
            key: None,
            mechanism: None,
        });
        if d.allow {
            Ok(())
        } else {
            Err(refusal(Some(Op::SoLogin), &d, None))
        }
    }

    /// The decision before forwarding a call described by its descriptor alone,
    /// as the function table's `decide` column says: key use at `*Init`,
    /// `C_DigestKey`, `C_DestroyObject`, `C_CopyObject`'s source, `C_WrapKey`
    /// (wrapping key and wrapped key), `C_UnwrapKey`, `C_DeriveKey` (copy, unwrap
    /// and derive: the key they act on here; the new object is decided in
    /// `Gateway::create`), and the administrative functions. Calls that carry data
    /// of an authorised operation only forward.
    pub(super) fn before(&self, backend: &dyn Backend, call: &Call) -> Result<()> {
        let object = call.object.unwrap_or(CK_INVALID_HANDLE);
        let op = || {
            Op::for_function(call.function).ok_or_else(|| {
                Error::Internal(format!("{} has no operation", call.function.name()))
            })
        };
        match call.function.decide() {
            Decide::Nothing | Decide::Template => Ok(()),
            Decide::Key => self.decide_key(backend, call, op()?, Some(object)),
            Decide::Keys => {
                self.decide_key(backend, call, op()?, Some(object))?;
                let wrapped = call.other.unwrap_or(CK_INVALID_HANDLE);
                self.decide_key(backend, call, Op::Export, Some(wrapped))
            }
            Decide::Session => self.decide_key(backend, call, op()?, None),
            Decide::Slot => self.decide_slot_admin(call, op()?),
        }
    }
}
