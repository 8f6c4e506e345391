//! What a record says beyond the call's descriptor: the session's slot and token,
//! the caller's named identity and roles (enforce mode), the key's label, `CKA_ID`
//! and managed version, read from the gateway's session table and facts cache and
//! never changed here.

use std::sync::Arc;

use pkcs11_sys::*;

use super::{Pending, Recorder};
use crate::audit::{KeyRef, OpEvent};
use crate::gateway::facts_cache::FactsCache;
use crate::gateway::session_table::SessionTable;
use crate::gateway::Call;
use crate::lifecycle::LifecycleRuntime;
use crate::policy::{KeyFacts, PolicyHandle};

/// What a record's context is read from: the gateway's own state, shared. The
/// recorder reads it and never changes it (the gateway follows sessions and
/// objects, `follow.rs`).
#[derive(Debug)]
pub(in crate::gateway) struct Context {
    pub(in crate::gateway) sessions: Arc<SessionTable>,
    pub(in crate::gateway) facts: Arc<FactsCache>,
    /// Enforce mode: a named session's roles are named under the active policy.
    pub(in crate::gateway) policy: Option<Arc<PolicyHandle>>,
    /// Enforce mode: a managed key's version, from the lifecycle index in memory
    /// (transparent mode names no version: it does not read the store per call).
    pub(in crate::gateway) versions: Option<Arc<LifecycleRuntime>>,
}

/// The facts a key's shared names were made from, and the names.
pub(super) type NamedFacts = (Arc<KeyFacts>, KeyNames);

pub(super) type KeyNames = (Option<Arc<str>>, Option<Arc<[u8]>>, Option<u32>);

/// Bound of the name cache (cleared when reached: handles of destroyed objects
/// would otherwise accumulate).
pub(super) const NAMES_MAX: usize = 4096;

impl Recorder {
    /// The serial number of `slot`'s token (the session table keeps it).
    fn serial(&self, slot: CK_SLOT_ID) -> Option<Arc<str>> {
        self.ctx.sessions.serial(slot, || {
            crate::gateway::session_table::read_serial(&*self.backend, slot)
        })
    }

    /// Label, `CKA_ID` of a key. `read`: may ask the token (one
    /// `C_GetAttributeValue`, once per handle); else only what is cached.
    fn key(
        &self,
        slot: CK_SLOT_ID,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        read: bool,
    ) -> Option<KeyRef> {
        let cache = &self.ctx.facts;
        let facts = match cache.peek(slot, object) {
            Some(f) => f,
            None if read => cache.get(&*self.backend, slot, session, object).ok()?,
            None => return None,
        };
        let (label, id, version) = self.names(slot, object, &facts);
        Some(KeyRef { label, id, version })
    }

    /// The shared label and id strings of a key and its managed version (enforce
    /// mode: from the lifecycle index in memory; transparent mode does not read
    /// the store per call), made once per facts entry: a record then costs
    /// reference counts, not allocations freed on the writer's thread. An entry is
    /// reused only while the facts cache holds the same facts for the handle, so
    /// an edited or re-created object is named afresh; a version is that of the
    /// handle's first recorded use (a `CKA_ID` names one version for good).
    fn names(&self, slot: CK_SLOT_ID, object: CK_OBJECT_HANDLE, facts: &Arc<KeyFacts>) -> KeyNames {
        if let Some((f, names)) = self.names.read().get(&(slot, object)) {
            if Arc::ptr_eq(f, facts) {
                return names.clone();
            }
        }
        let version = self.ctx.versions.as_ref().and_then(|lc| {
            let view = lc.view_for_search(self.serial(slot))?;
            view.lookup(facts).map(|m| m.version.version)
        });
        let names: KeyNames = (
            facts.label.as_deref().map(Arc::from),
            facts.id.as_deref().map(Arc::from),
            version,
        );
        let mut map = self.names.write();
        if map.len() >= NAMES_MAX {
            map.clear();
        }
        map.insert((slot, object), (Arc::clone(facts), names.clone()));
        names
    }

    /// The record's context: slot, token, session, identity and role, key.
    pub(super) fn context(&self, call: &Call, rv: CK_RV, read_key: bool) -> OpEvent {
        let mut ev = OpEvent::from_call(call, rv);
        self.fill_context(&mut ev, call, read_key);
        ev
    }

    /// [`Recorder::context`] written into `ev` (made by `OpEvent::from_call`), in
    /// place.
    pub(super) fn fill_context(&self, ev: &mut OpEvent, call: &Call, read_key: bool) {
        let located = match (call.slot, call.session) {
            (Some(slot), _) => Some((slot, self.serial(slot))),
            (None, Some(session)) => self.ctx.sessions.place(session).map(|p| (p.slot, p.serial)),
            (None, None) => None,
        };
        if let Some((slot, serial)) = located {
            // CK_ULONG is u64 here but 32 bits wide on other targets.
            #[allow(clippy::useless_conversion)]
            {
                ev.slot = Some(u64::from(slot));
            }
            ev.token = serial;
            if let (Some(session), Some(object)) = (call.session, call.object) {
                if let Some(k) = self.key(slot, session, object, read_key) {
                    ev.set_key(k);
                }
            }
        }
        // Only a named login gives a subject an identity (a flag read, not a
        // session look-up, until the first one).
        let named = self
            .ctx
            .policy
            .as_ref()
            .filter(|_| self.ctx.sessions.any_named_login());
        if let (Some(policy), Some(session)) = (named, call.session) {
            let p = policy.load();
            if let Some((_, subject)) = self.ctx.sessions.subject(&p, session) {
                if let Some(id) = &subject.principal().identity {
                    let roles = subject.role_names(&p);
                    let role = (!roles.is_empty()).then(|| roles.join(","));
                    ev.set_identity(id.name.as_str(), role.map(Into::into));
                }
            }
        }
    }

    /// A creating call succeeded: its pending record names the new object (a key
    /// pair's private key), read after the call through the facts cache (one
    /// `C_GetAttributeValue` of non-secret attributes, no lock held over it), with
    /// its managed version in enforce mode (a registration is in the index by now).
    /// The creating path has dropped whatever the cache held under the new handles.
    pub(in crate::gateway) fn name_created(
        &self,
        call: &Call,
        pending: Option<&mut Pending>,
        created: &crate::gateway::NewObjects,
    ) {
        let Some(Pending::Call {
            event: Some(ev), ..
        }) = pending
        else {
            return;
        };
        let Some(object) = created[1].or(created[0]) else {
            return;
        };
        let (Some(session), Some(slot)) = (
            call.session,
            call.session.and_then(|s| self.ctx.sessions.slot_of(s)),
        ) else {
            return;
        };
        if let Some(k) = self.key(slot, session, object, true) {
            ev.set_new_key(k);
        }
    }
}
