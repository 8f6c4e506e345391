//! Transparent mode's lifecycle (docs/lifecycle.md, "Gateway integration"): no
//! access policy, but a managed key is used only as its state in the store
//! permits, and its versions stay closed, exactly as in enforce mode.
//!
//! Transparent means "no policy file", not "no lifecycle": the store is required in
//! both modes, and a key an administrator compromised, suspended or deactivated
//! with `keywarden keys` is refused here with the same codes and the same audit
//! records (rules `lifecycle.*`) as under the enforcer. What transparent mode does
//! not have is what the policy file defines: cryptoperiods (so no expiry and no
//! `when_due`: a deactivated version processes with no end), `unmanaged_keys`
//! (always `"allow"`), auto-registration and automatic rotation.
//!
//! Cost: a call of another class than `KeyUse`/`KeyManagement` (digest, random,
//! search, attribute reads, sessions) pays one comparison of its class, which
//! `decide` reads anyway (a search one atomic load more); a key use pays the watcher's
//! check (a clock read and an atomic load) and, while the store manages no key
//! at all, one more atomic load. Only when some version is live are the object's
//! facts (the gateway's one cache, which the audit record reads anyway), the token
//! serial and one index look-up added: never a store query.

use pkcs11_sys::*;

use super::create::CreateArgs;
use super::enforce::lifecycle_refusal;
use super::facts_cache::FactsError;
use super::lifecycle::lifecycle_view;
use super::{Call, Gateway};
use crate::abi::Template;
use crate::error::Result;
use crate::lifecycle::{check_use, LcRefusal, View};
use crate::policy::{CreationKind, KeyFacts, Op};

impl Gateway {
    /// The lifecycle decision of a call in transparent mode: key-using operations
    /// (every `*Init` with a key, `C_DigestKey`, `C_WrapKey` on both keys,
    /// `C_UnwrapKey`, `C_DeriveKey`) on a managed key are checked against its
    /// state. Destroy, copy and attribute edits use no key value: the state
    /// permits them (a destroyed version has no objects left), and copies and
    /// edits get the version checks in [`Gateway::guard_create`] and
    /// [`Gateway::guard_edit`].
    /// `decide` calls it for the `KeyUse` and `KeyManagement` classes only, and
    /// keeps it out of line: the other calls' path stays as short as it was.
    #[inline(never)]
    pub(super) fn guard_key_use(&self, call: &Call) -> Result<()> {
        match Op::for_function(call.function) {
            Some(op) if op.uses_key_value() => self.guard_uses(call, op),
            _ => Ok(()),
        }
    }

    #[inline]
    fn guard_uses(&self, call: &Call, op: Op) -> Result<()> {
        let lc = &self.lifecycle;
        lc.refresh().map_err(|r| lifecycle_refusal(Some(op), r))?;
        if !lc.has_managed() {
            return Ok(());
        }
        // `other` is the key `C_WrapKey` wraps: exported.
        for (object, op) in [(call.object, op), (call.other, Op::Export)] {
            if let Some(o) = object {
                self.guard_object(call, op, o)?;
            }
        }
        Ok(())
    }

    /// The slot of the call's session and the lifecycle view of its token; a
    /// session this module did not open is refused as the token would answer it.
    fn guard_view(&self, call: &Call, op: Op) -> Result<(CK_SLOT_ID, View)> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let Some(slot) = self.sessions.slot_of(session) else {
            let r = LcRefusal {
                rule: "lifecycle.token",
                rv: CKR_SESSION_HANDLE_INVALID,
                reason: "session not opened through Keywarden".into(),
            };
            return Err(lifecycle_refusal(Some(op), r));
        };
        let view = lifecycle_view(&self.lifecycle, &self.sessions, &*self.backend, slot)
            .map_err(|r| lifecycle_refusal(Some(op), r))?;
        Ok((slot, view))
    }

    /// The facts of `object` from the gateway's cache (read once per handle).
    fn guard_facts(
        &self,
        call: &Call,
        op: Op,
        slot: CK_SLOT_ID,
        object: CK_OBJECT_HANDLE,
    ) -> Result<std::sync::Arc<KeyFacts>> {
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        self.facts
            .get(&*self.backend, slot, session, object)
            .map_err(|FactsError(rv)| {
                let r = LcRefusal {
                    rule: "lifecycle.token",
                    rv: super::facts_cache::facts_error_rv(op, rv),
                    reason: format!(
                        "the object's attributes could not be read ({})",
                        crate::abi::rv_name(rv)
                    ),
                };
                lifecycle_refusal(Some(op), r)
            })
    }

    fn guard_object(&self, call: &Call, op: Op, object: CK_OBJECT_HANDLE) -> Result<()> {
        let (slot, view) = self.guard_view(call, op)?;
        let facts = self.guard_facts(call, op, slot, object)?;
        let now = self.lifecycle.now();
        match check_use(view.lookup(&facts), &facts, op, now, None) {
            Ok(Some(u)) => {
                self.lifecycle.record_use(u.version.id, now);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(r) => Err(lifecycle_refusal(Some(op), r)),
        }
    }

    /// The version check of a creation in transparent mode (`versions.rs`): the
    /// front end decodes templates while the store manages some key
    /// ([`Gateway::enforcing`]).
    pub(super) fn guard_create(&self, call: &Call, args: &CreateArgs<'_, '_>) -> Result<()> {
        let op = args.kind.access_op();
        self.lifecycle
            .refresh()
            .map_err(|r| lifecycle_refusal(Some(op), r))?;
        if !self.lifecycle.has_managed() {
            return Ok(());
        }
        let (slot, view) = self.guard_view(call, op)?;
        let source = match (args.kind, call.object) {
            (CreationKind::Copy, Some(o)) => Some(self.guard_facts(call, Op::Copy, slot, o)?),
            _ => None,
        };
        super::versions::on_create(&view, args, source.as_deref())
            .map_err(|r| lifecycle_refusal(Some(op), r))
    }

    /// The version check of `C_SetAttributeValue` in transparent mode.
    pub(super) fn guard_edit(&self, call: &Call, template: &Template<'_>) -> Result<()> {
        let op = Op::SetAttribute;
        if !(template.contains(CKA_ID) || template.contains(CKA_LABEL)) {
            return Ok(());
        }
        self.lifecycle
            .refresh()
            .map_err(|r| lifecycle_refusal(Some(op), r))?;
        let (slot, view) = self.guard_view(call, op)?;
        let object = call.object.unwrap_or(CK_INVALID_HANDLE);
        let facts = self.guard_facts(call, op, slot, object)?;
        super::versions::on_edit(|| Ok(view), &facts, template)
            .map_err(|r| lifecycle_refusal(Some(op), r))
    }

    /// Forgets what an edit may have changed (even a failed one: §5.7 allows
    /// partial application).
    pub(super) fn guard_edited(&self, call: &Call) {
        let slot = call.session.and_then(|s| self.sessions.slot_of(s));
        if let (Some(slot), Some(object)) = (slot, call.object) {
            self.facts.forget(slot, object);
        }
    }

    /// `C_FindObjectsInit` in transparent mode: a search without `CKA_ID` hides
    /// superseded versions, as in enforce mode; while no version is superseded
    /// there is nothing to hide and the search is not followed. The index is the
    /// one of the last key use's store check (a search does not check the store:
    /// hiding is a convenience, every use is checked).
    #[inline]
    pub(super) fn guard_search_started(&self, session: CK_SESSION_HANDLE, by_id: bool) {
        let hide = !by_id && self.lifecycle.has_managed() && self.lifecycle.hides_anything();
        self.lifecycle.search_started(session, hide);
    }

    /// Whether `object` is shown by a search that hides superseded versions (an
    /// object whose facts cannot be read is shown: transparent mode has no
    /// visibility policy, and every use is still checked).
    pub(super) fn guard_visible(
        &self,
        view: Option<&View>,
        slot: CK_SLOT_ID,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> bool {
        let Some(v) = view else { return true };
        self.facts
            .get(&*self.backend, slot, session, object)
            .map_or(true, |f| v.lookup(&f).is_none_or(|m| m.current))
    }
}
