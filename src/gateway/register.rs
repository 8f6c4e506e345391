//! Enforce mode: auto-registration of keys generated through the module
//! (docs/lifecycle.md, "Gateway integration").
//!
//! `C_GenerateKey` and `C_GenerateKeyPair` of a token key with a label register it
//! as version 1, active, of a new managed key: a `CKA_ID` (`lifecycle::new_cka_id`)
//! is added to the template(s) that have none, and generation and registration run
//! under [`RotationLock`]. A drawn `CKA_ID` is recorded as in flight
//! (`Store::begin_pending`) before the generation and the intent is cleared with the
//! registration, so a process that dies in between leaves objects `keys reconcile`
//! knows to be ours (an application-chosen `CKA_ID` is not: its objects are never
//! removed by Keywarden, and a crash there leaves an unmanaged key). If the
//! registration fails the new objects are destroyed and the call fails
//! (`CKR_GENERAL_ERROR`): a key that should be managed never exists unmanaged.
//!
//! Imported (`C_CreateObject`), unwrapped, derived and copied keys are not
//! registered: their value did not originate on the token through Keywarden, and
//! bringing such a key under management (with its own cryptoperiod) is an
//! administrator's decision, `keywarden keys adopt`.

use super::enforce::lifecycle_refusal;
use pkcs11_sys::*;

use super::create::{CreateArgs, NewObjects};
use super::lifecycle::{lifecycle_view, token_serial};
use super::{Call, Enforcer};
use crate::audit::{LifecycleEvent, Outcome};
use crate::backend::Backend;
use crate::error::Result;
use crate::lifecycle::{LcRefusal, RotationLock};
use crate::policy::{CreateDecision, CreationKind, Op, Policy};
use crate::store::{KeyState, NewKey, NewVersion, PendingRotation, SqliteStore, Store};

/// A registration decided before the generation.
pub(super) struct Registration {
    label: String,
    id: Vec<u8>,
    /// The `CKA_ID` was drawn here (not the application's): recorded as in flight.
    drawn: bool,
    add_private: bool,
    add_public: bool,
    /// `CKA_START_DATE` of the new objects: the day of activation (UTC).
    start_date: Vec<u8>,
}

impl Registration {
    /// The `CKA_ID` to append to the private, secret or only template.
    pub(super) fn private_add(&self) -> Option<&[u8]> {
        self.add_private.then_some(self.id.as_slice())
    }

    /// The `CKA_START_DATE` for templates that set none.
    pub(super) fn start_date(&self) -> &[u8] {
        &self.start_date
    }

    /// The `CKA_ID` to append to a key pair's public template.
    pub(super) fn public_add(&self) -> Option<&[u8]> {
        self.add_public.then_some(self.id.as_slice())
    }
}

impl Enforcer {
    /// Whether this creation registers a key, and with which `CKA_ID`.
    pub(super) fn registration_plan(
        &self,
        backend: &dyn Backend,
        call: &Call,
        args: &CreateArgs<'_, '_>,
        slot: CK_SLOT_ID,
    ) -> Result<Option<Registration>> {
        let pair = match args.kind {
            CreationKind::Generate => false,
            CreationKind::GenerateKeyPair => true,
            _ => return Ok(None),
        };
        // Session objects die with their session: nothing to manage.
        if args.template.token() != Some(true) {
            return Ok(None);
        }
        let label = args
            .template
            .label()
            .or_else(|| args.public_template.and_then(|t| t.label()))
            .filter(|l| !l.is_empty());
        let Some(label) = label else {
            return Ok(None);
        };
        let label = String::from_utf8_lossy(label).into_owned();
        let private_id = args.template.id().filter(|i| !i.is_empty());
        let public_id = args
            .public_template
            .and_then(|t| t.id())
            .filter(|i| !i.is_empty());
        let id = match private_id.or(public_id) {
            Some(id) => id.to_vec(),
            None => crate::lifecycle::new_cka_id().map_err(|e| {
                lifecycle_refusal(
                    Some(Op::Generate),
                    LcRefusal::store(format!("no CKA_ID could be drawn: {e}")),
                )
            })?,
        };
        // An application-chosen CKA_ID a live version already holds was refused
        // before (versions.rs); should one get here, it is not registered.
        if private_id.or(public_id).is_some() {
            let view = lifecycle_view(&self.lifecycle, &self.sessions, backend, slot)
                .map_err(|r| lifecycle_refusal(Some(Op::Generate), r))?;
            if view.index.version(&view.serial, &id).is_some() {
                log::warn!(
                    "{}: CKA_ID of a managed version reused; the new key is not registered",
                    call.function.name()
                );
                return Ok(None);
            }
        }
        Ok(Some(Registration {
            label,
            drawn: private_id.or(public_id).is_none(),
            add_private: private_id.is_none(),
            add_public: pair && public_id.is_none(),
            id,
            start_date: crate::lifecycle::ck_date(self.lifecycle.now()),
        }))
    }

    /// The rotation lock, held across generation and registration, and the intent
    /// of a drawn `CKA_ID` written under it (cleared when the hold is dropped
    /// without [`RegistrationHold::keep`]: the generation failed, or the
    /// registration did and destroyed the objects).
    pub(super) fn registration_lock(
        &self,
        backend: &dyn Backend,
        op: Op,
        slot: CK_SLOT_ID,
        r: &Registration,
    ) -> Result<RegistrationHold<'_>> {
        let lock = RotationLock::acquire(&self.lifecycle.dir).map_err(|e| {
            lifecycle_refusal(
                Some(op),
                LcRefusal::store(format!("the rotation lock could not be taken: {e}")),
            )
        })?;
        let mut hold = RegistrationHold {
            _lock: lock,
            store: self.lifecycle.store(),
            intent: None,
        };
        if r.drawn {
            let serial = token_serial(&self.sessions, backend, slot)
                .map_err(|e| lifecycle_refusal(Some(op), e))?;
            let intent = PendingRotation {
                token_serial: serial.to_string(),
                cka_id: r.id.clone(),
                label: r.label.clone(),
                started_at: self.lifecycle.now(),
            };
            self.lifecycle.store().begin_pending(&intent).map_err(|e| {
                lifecycle_refusal(
                    Some(op),
                    LcRefusal::store(format!("the new key could not be recorded: {e}")),
                )
            })?;
            hold.intent = Some(intent);
        }
        Ok(hold)
    }

    /// Records the key just generated: a managed key (owner and classification
    /// from policy), its version 1 active. On failure the new objects are
    /// destroyed.
    #[allow(clippy::too_many_arguments)] // one creation's inputs
    pub(super) fn register(
        &self,
        backend: &dyn Backend,
        call: &Call,
        slot: CK_SLOT_ID,
        created: &NewObjects,
        r: Registration,
        hold: &mut RegistrationHold<'_>,
        cd: &CreateDecision,
        policy: &Policy,
    ) -> Result<()> {
        let key = match created {
            [_, Some(private)] => *private,
            [Some(only), None] => *only,
            [None, None] => return Ok(()),
        };
        if let Err(e) = self.write_registration(backend, call, slot, key, &r, cd, policy) {
            return Err(self.undo_registration(backend, call, slot, created, &r, hold, e));
        }
        // `add_version` cleared the intent with the registration.
        hold.keep();
        self.announce_registration(call, &r)
    }

    /// The store's part of a registration: the managed key (owner, classification
    /// and cryptoperiod from policy) and its version 1, active.
    #[allow(clippy::too_many_arguments)] // one creation's inputs
    fn write_registration(
        &self,
        backend: &dyn Backend,
        call: &Call,
        slot: CK_SLOT_ID,
        key: CK_OBJECT_HANDLE,
        r: &Registration,
        cd: &CreateDecision,
        policy: &Policy,
    ) -> Result<()> {
        let op = Op::Generate;
        let facts = self.facts_of(backend, call, op, slot, key)?;
        let serial = token_serial(&self.sessions, backend, slot)
            .map_err(|e| lifecycle_refusal(Some(op), e))?;
        let store = self.lifecycle.store();
        let now = self.lifecycle.now();
        let write = || -> crate::store::StoreResult<()> {
            let k = store.create_key(
                &NewKey {
                    label: r.label.clone(),
                    owner: policy.owner_of(&facts).map(str::to_owned),
                    // The level creation policy gave the key, recorded so
                    // it stays with the key (policy applies the higher of
                    // this and its keyset's level).
                    classification: Some(cd.classification.into()),
                    rotation_rule: policy.cryptoperiod_for(&facts).map(|c| c.name.clone()),
                },
                now,
            )?;
            store.add_version(
                k.id,
                &NewVersion {
                    token_serial: serial.to_string(),
                    cka_id: r.id.clone(),
                    algorithm: facts
                        .key_type
                        .map_or_else(String::new, |t| crate::abi::key_type_name(t).to_string()),
                    size_bits: facts.bits,
                    curve: facts.curve.map(|c| c.name().to_owned()),
                },
                KeyState::Active,
                now,
            )?;
            Ok(())
        };
        write().map_err(|e| {
            lifecycle_refusal(
                Some(op),
                LcRefusal::store(format!("the new key could not be registered: {e}")),
            )
        })
    }

    /// A failed registration: the new objects are destroyed (what cannot be stays
    /// with its intent, for `keys reconcile`), the failure is recorded, and `e`
    /// is returned for the call to fail with.
    #[allow(clippy::too_many_arguments)] // one creation's inputs
    fn undo_registration(
        &self,
        backend: &dyn Backend,
        call: &Call,
        slot: CK_SLOT_ID,
        created: &NewObjects,
        r: &Registration,
        hold: &mut RegistrationHold<'_>,
        e: crate::error::Error,
    ) -> crate::error::Error {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let mut all_gone = true;
        for h in created.iter().flatten() {
            all_gone &= backend.destroy_object(session, *h) == CKR_OK;
            self.facts.forget(slot, *h);
        }
        if !all_gone {
            // What is left is `keys reconcile`'s to remove, by this intent.
            hold.keep();
        }
        let mut ev = LifecycleEvent::new("register", Some(&r.label)).of_key(&r.id, None);
        ev.outcome = Outcome::Error;
        ev.detail = Some("the new key could not be registered; it was destroyed".into());
        // The call fails either way.
        let _ = self.record_lifecycle(call, ev);
        e
    }

    /// A registration that succeeded: logged, reloaded into this process's index
    /// and recorded.
    fn announce_registration(&self, call: &Call, r: &Registration) -> Result<()> {
        log::info!(
            "{}: key {:?} registered as version 1 (CKA_ID {})",
            call.function.name(),
            r.label,
            r.id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        // Seen by this process at once (others within a poll interval).
        self.lifecycle.reload();
        let mut ev = LifecycleEvent::new("register", Some(&r.label))
            .of_key(&r.id, Some(1))
            .states(None, KeyState::Active);
        ev.detail = Some(format!(
            "generated through the module ({})",
            call.function.name()
        ));
        self.record_lifecycle(call, ev)
    }
}

/// The rotation lock of one registration and its intent in the store.
pub(super) struct RegistrationHold<'a> {
    _lock: RotationLock,
    store: &'a SqliteStore,
    intent: Option<PendingRotation>,
}

impl RegistrationHold<'_> {
    /// The intent is not to be cleared on drop: the registration cleared it, or
    /// objects it names are still on the token.
    pub(super) fn keep(&mut self) {
        self.intent = None;
    }
}

impl Drop for RegistrationHold<'_> {
    /// Nothing of the intent's exists on the token (the generation failed, or the
    /// failed registration destroyed it), so the intent goes, before the lock.
    fn drop(&mut self) {
        if let Some(p) = self.intent.take() {
            if let Err(e) = self.store.clear_pending(&p.token_serial, &p.cka_id) {
                log::warn!("a rotation intent stays for `keywarden keys reconcile`: {e}");
            }
        }
    }
}
