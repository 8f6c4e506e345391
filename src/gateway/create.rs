//! Enforce mode: creation, attribute edits and reads of secret attributes
//! (docs/policy.md, "Creation policy" and "Enforcement points"); transparent
//! mode: the version checks of creations and edits (`lifecycle_guard.rs`).
//!
//! The front end decodes templates in enforce mode, and in transparent mode while
//! the store manages some key ([`Gateway::enforcing`]), and hands them over typed;
//! otherwise the transparent path never reaches this file.

use super::enforce::refusal;
use pkcs11_sys::*;

use super::{Call, Enforcer, Gateway};
use crate::abi::Template;
use crate::backend::Backend;
use crate::error::{check_rv, Result};
use crate::policy::{CreateDecision, Creation, CreationKind, Op, Policy};

/// The new objects a creation made: one, or a key pair's (public, private).
pub type NewObjects = [Option<CK_OBJECT_HANDLE>; 2];

/// What the gateway adds to the application's template(s) in enforce mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Additions<'a> {
    /// Boolean attributes policy forces on the new private or secret key.
    pub flags: &'a [(CK_ATTRIBUTE_TYPE, bool)],
    /// A `CKA_ID` for the private, secret or only template (auto-registration,
    /// when it has none).
    pub id: Option<&'a [u8]>,
    /// A `CKA_ID` for `C_GenerateKeyPair`'s public template.
    pub public_id: Option<&'a [u8]>,
    /// `CKA_START_DATE` (a `CK_DATE`, "YYYYMMDD") for every template that does not
    /// set one (auto-registration: the version's activation day).
    pub start_date: Option<&'a [u8]>,
}

impl<'a> Additions<'a> {
    /// What goes on a key pair's public template.
    pub fn for_public(&self) -> Additions<'a> {
        Additions {
            flags: &[],
            id: self.public_id,
            public_id: None,
            start_date: self.start_date,
        }
    }
}

/// A creation call, as the front end decoded it.
pub struct CreateArgs<'a, 't> {
    /// Which function.
    pub kind: CreationKind,
    /// The template of the (secret, private, created or copied) object.
    pub template: &'a Template<'t>,
    /// `C_GenerateKeyPair`'s public template.
    pub public_template: Option<&'a Template<'t>>,
    /// The new key's size in bits when the call itself fixes it though the token
    /// may not record it (`C_UnwrapKey` with `CKM_AES_KEY_WRAP`: RFC 3394 output
    /// is the key plus 8 bytes). Used by `verify_after` only when the created key
    /// does not state its size.
    pub bits_hint: Option<u32>,
}

/// The size `C_UnwrapKey` fixes for the unwrapped key, where the mechanism makes it
/// exact (see [`CreateArgs::bits_hint`]).
pub fn unwrap_bits_hint(mechanism: CK_MECHANISM_TYPE, wrapped_len: usize) -> Option<u32> {
    match mechanism {
        CKM_AES_KEY_WRAP => wrapped_len
            .checked_sub(8)
            .and_then(|n| u32::try_from(n.saturating_mul(8)).ok()),
        _ => None,
    }
}

impl Gateway {
    /// True when the front end must decode templates for [`Gateway::create`] and
    /// [`Gateway::set_attributes`]: in enforce mode, and in transparent mode while
    /// the store manages some key (the version checks need the template; an
    /// atomic load, current as of the last key use's store check).
    #[inline]
    pub fn enforcing(&self) -> bool {
        self.enforcer.is_some() || self.lifecycle.has_managed()
    }

    /// A creation in enforce mode: the key-use decision on the source/base/
    /// unwrapping key (`decide`), then `decide_create` on the template(s).
    /// `forward` gets the attributes policy forces on the new private or secret
    /// key (to append to that template) and returns the backend's code and the new
    /// handles. With `verify_after` the created key's real facts are checked and
    /// the key destroyed on refusal.
    pub fn create(
        &self,
        call: Call,
        args: &CreateArgs<'_, '_>,
        forward: impl FnOnce(&dyn Backend, &Additions<'_>) -> (CK_RV, NewObjects),
    ) -> Result<()> {
        self.recorded_create(&call, || self.create_unrecorded(call, args, forward))
    }

    /// A creation in transparent mode (the front end decodes no template there):
    /// forward, and the record names the new object.
    pub fn create_plain(
        &self,
        call: Call,
        forward: impl FnOnce(&dyn Backend) -> (CK_RV, NewObjects),
    ) -> Result<()> {
        self.recorded_create(&call, || {
            let mut created = [None, None];
            self.forward(&call, |b| {
                let (rv, new) = forward(b);
                created = new;
                rv
            })?;
            self.forget_created(&call, &created);
            Ok(created)
        })
    }

    /// [`Gateway::recorded`] for a creating call: after a success the pending
    /// record is given the new object's label, `CKA_ID` and version (docs/audit.md).
    fn recorded_create(
        &self,
        call: &Call,
        body: impl FnOnce() -> Result<NewObjects>,
    ) -> Result<()> {
        let mut pending = None;
        self.audit.before(call, None, &mut pending);
        let result = body().map(|created| {
            self.audit.name_created(call, pending.as_mut(), &created);
        });
        self.audit
            .after(call, &mut pending, super::Io::default(), result)
    }

    /// A handle may be reused once its object is gone: facts cached for an old
    /// object never describe a new one (the enforce path does the same as it goes).
    fn forget_created(&self, call: &Call, created: &NewObjects) {
        if let Some(slot) = call.session.and_then(|s| self.sessions.slot_of(s)) {
            for h in created.iter().flatten() {
                self.facts.forget(slot, *h);
            }
        }
    }

    fn create_unrecorded(
        &self,
        call: Call,
        args: &CreateArgs<'_, '_>,
        forward: impl FnOnce(&dyn Backend, &Additions<'_>) -> (CK_RV, NewObjects),
    ) -> Result<NewObjects> {
        self.decide(&call)?;
        let Some(e) = &self.enforcer else {
            return self.create_transparent(&call, args, forward);
        };
        let p = e.policy();
        let op = args.kind.access_op();
        let (slot, cd) = self.decide_creation(e, &p, &call, args)?;
        // Auto-registration (docs/lifecycle.md): a token key generated with a
        // label gets a CKA_ID if it has none, and generation and registration run
        // under the rotation lock, so `reconcile` never takes it for an orphan.
        let registration = e.registration_plan(&*self.backend, &call, args, slot)?;
        let mut hold = match &registration {
            Some(r) => Some(e.registration_lock(&*self.backend, op, slot, r)?),
            None => None,
        };
        let add = Additions {
            flags: &cd.force,
            id: registration.as_ref().and_then(|r| r.private_add()),
            public_id: registration.as_ref().and_then(|r| r.public_add()),
            start_date: registration.as_ref().map(|r| r.start_date()),
        };
        let (rv, created) = forward(&*self.backend, &add);
        check_rv(rv)?;
        for h in created.iter().flatten() {
            e.facts.forget(slot, *h);
        }
        if cd.verify_after {
            self.verify_created(e, &p, &call, args, slot, &created)?;
        }
        if let (Some(r), Some(h)) = (registration, hold.as_mut()) {
            e.register(&*self.backend, &call, slot, &created, r, h, &cd, &p)?;
        }
        Ok(created)
    }

    /// A creation in transparent mode: the version checks, then forward.
    fn create_transparent(
        &self,
        call: &Call,
        args: &CreateArgs<'_, '_>,
        forward: impl FnOnce(&dyn Backend, &Additions<'_>) -> (CK_RV, NewObjects),
    ) -> Result<NewObjects> {
        self.guard_create(call, args)?;
        let (rv, created) = forward(&*self.backend, &Additions::default());
        check_rv(rv)?;
        self.forget_created(call, &created);
        Ok(created)
    }

    /// Creation policy on the templates (and a copy's source), then the version
    /// checks: the slot and the decision, or the refusal.
    fn decide_creation(
        &self,
        e: &Enforcer,
        p: &Policy,
        call: &Call,
        args: &CreateArgs<'_, '_>,
    ) -> Result<(CK_SLOT_ID, CreateDecision)> {
        let op = args.kind.access_op();
        let (slot, subject) = e.subject_of(p, call, Some(op))?;
        let source = match (args.kind, call.object) {
            (CreationKind::Copy, Some(o)) => {
                Some(e.facts_of(&*self.backend, call, Op::Copy, slot, o)?)
            }
            _ => None,
        };
        let cd = p.decide_create(
            &subject,
            &Creation {
                kind: args.kind,
                mechanism: call.mechanism,
                template: args.template,
                public_template: args.public_template,
                source: source.as_deref(),
            },
        );
        if !cd.decision.allow {
            return Err(refusal(Some(op), &cd.decision, None));
        }
        // No object leaves a managed key's version, and none joins one (versions.rs).
        e.keep_versions_on_create(&*self.backend, slot, args, source.as_deref())?;
        Ok((slot, cd))
    }

    /// Policy's check of each new key's own facts (`verify_after`); a key that
    /// breaks it is destroyed with the rest of the creation's objects.
    fn verify_created(
        &self,
        e: &Enforcer,
        p: &Policy,
        call: &Call,
        args: &CreateArgs<'_, '_>,
        slot: CK_SLOT_ID,
        created: &NewObjects,
    ) -> Result<()> {
        let op = args.kind.access_op();
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        for h in created.iter().flatten() {
            let checked = e
                .facts_of(&*self.backend, call, op, slot, *h)
                .and_then(|facts| {
                    let d = match (facts.bits, args.bits_hint) {
                        (None, Some(bits)) => {
                            let mut f = (*facts).clone();
                            f.bits = Some(bits);
                            p.check_new_key(&f)
                        }
                        _ => p.check_new_key(&facts),
                    };
                    if d.allow {
                        Ok(())
                    } else {
                        Err(refusal(Some(op), &d, None))
                    }
                });
            if let Err(err) = checked {
                // The key exists but breaks policy: it must not survive.
                for h in created.iter().flatten() {
                    let _ = self.backend.destroy_object(session, *h);
                    e.facts.forget(slot, *h);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// `C_SetAttributeValue` in enforce mode: `decide_set_attributes` on the
    /// object's facts, then forward; the cached facts are dropped after.
    pub fn set_attributes(
        &self,
        call: Call,
        template: &Template<'_>,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.recorded(&call, || {
            self.set_attributes_unrecorded(call, template, forward)
        })
    }

    fn set_attributes_unrecorded(
        &self,
        call: Call,
        template: &Template<'_>,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        if let Some(e) = &self.enforcer {
            let p = e.policy();
            let op = Op::SetAttribute;
            let (slot, subject) = e.subject_of(&p, &call, Some(op))?;
            let object = call.object.unwrap_or(CK_INVALID_HANDLE);
            let facts = e.facts_of(&*self.backend, &call, op, slot, object)?;
            let d = p.decide_set_attributes(&subject, &facts, template);
            if !d.allow {
                return Err(refusal(Some(op), &d, None));
            }
            e.keep_versions_on_edit(&*self.backend, slot, &facts, template)?;
            let rv = forward(&*self.backend);
            // Even a failed edit may have changed some attributes (§5.7 allows
            // partial application): forget the facts either way.
            e.facts.forget(slot, object);
            return check_rv(rv);
        }
        self.guard_edit(&call, template)?;
        let rv = forward(&*self.backend);
        self.guard_edited(&call);
        check_rv(rv)
    }
}
