//! Enforce mode: the policy decisions of docs/policy.md, "Enforcement points".
//!
//! The gateway holds `Option<Enforcer>`; transparent mode has none, and its path
//! is one branch. Every refusal goes through [`Enforcer::refuse`], the one place
//! where refusals are logged (and where the audit trail will take them).

use std::sync::Arc;

use pkcs11_sys::*;

use super::decision_memo::{Basis, DecisionMemo, Kept};
use super::objects::{FactsCache, FactsError};
use super::sessions::Sessions;
use super::Call;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::functions::FunctionId as F;
use crate::identity::ProcessFacts;
use crate::lifecycle::{LcRefusal, LifecycleRuntime, View};
use crate::policy::{Decision, KeyFacts, Login, Op, Policy, PolicyHandle, Request, Subject};

/// The functions whose allowed decisions a session keeps: the `*Init`s (the
/// recording kind that starts an operation), which applications repeat with the
/// same key. The rarer key uses (destroy, copy, wrap, unwrap, derive, digest-key)
/// are decided afresh every time.
fn keeps_decision(f: F) -> bool {
    super::record::kind(f) == super::record::Kind::Init
}

/// The policy, the session table and the facts cache of one running module.
#[derive(Debug)]
pub struct Enforcer {
    policy: PolicyHandle,
    /// The credential store of named identities.
    pub(super) store: crate::config::StoreConfig,
    /// `[backend] pin_file`, the token PIN named logins use.
    pub(super) pin_file: Option<std::path::PathBuf>,
    /// `[backend] so_pin_file`, the token SO PIN named SO logins use.
    pub(super) so_pin_file: Option<std::path::PathBuf>,
    pub(super) sessions: Sessions,
    pub(super) facts: FactsCache,
    /// States, rotation and usage of managed keys (docs/lifecycle.md): the
    /// gateway's, shared.
    pub(super) lifecycle: Arc<LifecycleRuntime>,
    /// The audit trail, which records every refusal (set by `Gateway::start`).
    pub(super) audit: Option<Arc<super::record::Recorder>>,
    /// Each session's last allowed key-use decision.
    pub(super) memo: DecisionMemo,
}

impl Enforcer {
    /// Opens the policy file (an unusable file fails `C_Initialize`) and observes
    /// the process once. The policy runs on the lifecycle's clock.
    pub(super) fn open(
        file: &std::path::Path,
        config: &crate::config::Config,
        lifecycle: Arc<LifecycleRuntime>,
    ) -> Result<Enforcer> {
        let policy = PolicyHandle::open(file, Arc::clone(&lifecycle.clock)).map_err(|e| {
            Error::Config(format!(
                "policy.mode = \"enforce\": {}",
                e.to_string().replace('\n', " ")
            ))
        })?;
        let process = ProcessFacts::observe();
        if process.namespaced {
            log::warn!(
                "this process runs in a nested user namespace: its uid, groups, executable \
                 and host are its own choice there, and the policy matches none of them"
            );
        }
        Ok(Enforcer {
            policy,
            store: config.store.clone(),
            pin_file: config.backend.pin_file.clone(),
            so_pin_file: config.backend.so_pin_file.clone(),
            sessions: Sessions::new(process),
            facts: FactsCache::default(),
            lifecycle,
            audit: None,
            memo: DecisionMemo::default(),
        })
    }

    /// Records refusals and policy reloads in `audit` from now on.
    pub(super) fn attach_audit(&mut self, audit: &Arc<super::record::Recorder>) {
        self.policy
            .set_observer(super::record::reload_observer(Arc::clone(audit.log())));
        self.audit = Some(Arc::clone(audit));
    }

    /// The active policy (reloaded when its file changed).
    pub(super) fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// The one refusal path: logs the decision with its rule, records it in the
    /// audit trail, and turns it into the error the application sees (in
    /// `required` mode a refusal whose record cannot be written is `Error::Audit`).
    pub(super) fn refuse(&self, call: &Call, op: Option<Op>, d: &Decision) -> Error {
        self.refuse_naming(call, op, d, None)
    }

    /// [`Enforcer::refuse`], with the identity a refused named login tried (it has
    /// no session identity yet, and the auditor needs the name that was tried).
    pub(super) fn refuse_naming(
        &self,
        call: &Call,
        op: Option<Op>,
        d: &Decision,
        tried: Option<&str>,
    ) -> Error {
        log::info!(
            "{}: refused by policy rule {} ({}): {}; session {:?}, object {:?}, mechanism {:?}",
            call.function.name(),
            d.rule,
            op.map_or("-", Op::name),
            d.reason,
            call.session,
            call.object,
            call.mechanism,
        );
        let rule = d.rule.to_string();
        if let Some(audit) = &self.audit {
            if let Err(e) = audit.refused(Some(self), call, d.rv, &rule, tried) {
                return e;
            }
        }
        Error::Refused { rv: d.rv, rule }
    }

    /// A lifecycle refusal (state, unmanaged key, store): through the one path.
    pub(super) fn refuse_lifecycle(&self, call: &Call, op: Option<Op>, r: LcRefusal) -> Error {
        let d = Decision {
            allow: false,
            rule: crate::policy::RuleRef::Builtin(r.rule),
            reason: r.reason.into(),
            rv: r.rv,
        };
        self.refuse(call, op, &d)
    }

    /// A refusal that is not a policy rule's (facts unreadable, unknown session):
    /// still through the one path.
    fn refuse_builtin(&self, call: &Call, op: Option<Op>, rv: CK_RV, why: String) -> Error {
        let d = Decision {
            allow: false,
            rule: crate::policy::RuleRef::Builtin("default-deny"),
            reason: why.into(),
            rv,
        };
        self.refuse(call, op, &d)
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
            self.refuse_builtin(
                call,
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
        backend: &Backend,
        call: &Call,
        op: Op,
        slot: CK_SLOT_ID,
        object: CK_OBJECT_HANDLE,
    ) -> Result<Arc<KeyFacts>> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        self.facts
            .get(backend, slot, session, object)
            .map_err(|FactsError(rv)| {
                let code = super::objects::facts_error_rv(op, rv);
                self.refuse_builtin(
                    call,
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
        backend: &Backend,
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
                Err(self.refuse(call, Some(op), &d))
            };
        };
        let facts = self.facts_of(backend, call, op, slot, o)?;
        // Policy, then the lifecycle state (docs/lifecycle.md): policy decides who,
        // the state whether the key may be used at all.
        let view = self
            .lifecycle
            .view(backend, slot)
            .map_err(|r| self.refuse_lifecycle(call, Some(op), r))?;
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
            return Err(self.refuse(call, Some(op), &d));
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
            Err(self.refuse(call, Some(op), &d))
        }
    }

    /// `C_Login(CKU_SO)`: decided as `so-login` for the caller as it would be once
    /// logged in as SO (rules name `login = "so"` principals).
    pub(super) fn decide_so_login(
        &self,
        call: &Call,
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
            Err(self.refuse(call, Some(Op::SoLogin), &d))
        }
    }

    /// The decision before forwarding a call described by its descriptor alone:
    /// key use at `*Init`, `C_DigestKey`, `C_DestroyObject`, `C_CopyObject`'s
    /// source, `C_WrapKey` (wrapping key and wrapped key), `C_UnwrapKey`,
    /// `C_DeriveKey`, and the administrative functions. Calls that carry data of an
    /// authorised operation only forward.
    pub(super) fn before(&self, backend: &Backend, call: &Call) -> Result<()> {
        match call.function {
            F::C_SignInit
            | F::C_SignRecoverInit
            | F::C_VerifyInit
            | F::C_VerifyRecoverInit
            | F::C_EncryptInit
            | F::C_DecryptInit
            | F::C_DigestKey
            | F::C_DestroyObject
            // Copy, unwrap and derive: the key they act on here; the new object is
            // decided in `Gateway::create`.
            | F::C_CopyObject
            | F::C_UnwrapKey
            | F::C_DeriveKey => {
                let op = Op::for_function(call.function).ok_or_else(|| {
                    Error::Internal(format!("{} has no operation", call.function.name()))
                })?;
                self.decide_key(
                    backend,
                    call,
                    op,
                    Some(call.object.unwrap_or(CK_INVALID_HANDLE)),
                )
            }
            F::C_WrapKey => {
                let wrapping = call.object.unwrap_or(CK_INVALID_HANDLE);
                self.decide_key(backend, call, Op::Wrap, Some(wrapping))?;
                let wrapped = call.other.unwrap_or(CK_INVALID_HANDLE);
                self.decide_key(backend, call, Op::Export, Some(wrapped))
            }
            F::C_InitPIN => self.decide_key(backend, call, Op::InitPin, None),
            F::C_SetPIN => self.decide_key(backend, call, Op::SetPin, None),
            F::C_InitToken => self.decide_slot_admin(call, Op::InitToken),
            _ => Ok(()),
        }
    }

    /// Bookkeeping after a successful forward that changed objects.
    pub(super) fn after_ok(&self, call: &Call) {
        match call.function {
            F::C_DestroyObject | F::C_SetAttributeValue => {
                if let (Some(session), Some(object)) = (call.session, call.object) {
                    if let Some(slot) = self.sessions.slot_of(session) {
                        self.facts.forget(slot, object);
                    }
                }
            }
            // A re-initialised token has none of its old objects (and may have a
            // new serial).
            F::C_InitToken => {
                if let Some(slot) = call.slot {
                    self.facts.forget_slot(slot);
                    self.lifecycle.forget_slot(slot);
                    self.memo.forget_all();
                }
            }
            _ => {}
        }
    }
}
