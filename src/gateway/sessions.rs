//! Session and login tracking (enforce mode only).
//!
//! PKCS#11 login state belongs to the application and the token, not to one session
//! (v2.40 §5.6 / §6.7: "all sessions that an application has with a token" share
//! it), so it is kept per slot; every session is mapped to its slot when opened.
//! Closing the last session of a slot logs the application out (§5.6
//! C_CloseSession/C_CloseAllSessions), and the table follows.
//!
//! Each slot keeps the policy `Subject` resolved from the process facts (observed
//! once at `C_Initialize`), its login state and its named identity; it is
//! re-resolved when the login changes or when the policy was reloaded since.
//! Locks are held only for map look-ups, never across a backend call.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use pkcs11_sys::*;

use crate::identity::ProcessFacts;
use crate::policy::{Login, NamedIdentity, Policy, Principal, Subject};

/// What the gateway knows about one slot's login.
#[derive(Debug, Clone)]
struct SlotState {
    login: Login,
    identity: Option<NamedIdentity>,
    sessions: usize,
    subject: Arc<Subject>,
}

#[derive(Debug, Default)]
struct Tables {
    sessions: HashMap<CK_SESSION_HANDLE, CK_SLOT_ID>,
    slots: HashMap<CK_SLOT_ID, SlotState>,
}

/// Sessions → slots, and per slot the login state and resolved subject.
#[derive(Debug)]
pub(super) struct Sessions {
    process: ProcessFacts,
    tables: RwLock<Tables>,
}

impl Sessions {
    pub(super) fn new(process: ProcessFacts) -> Sessions {
        Sessions {
            process,
            tables: RwLock::new(Tables::default()),
        }
    }

    /// The principal of a slot in a login state with an identity.
    pub(super) fn principal(&self, login: Login, identity: Option<NamedIdentity>) -> Principal {
        Principal::from_process(&self.process, login, identity)
    }

    /// Records a session the backend just opened on `slot`.
    pub(super) fn opened(&self, policy: &Policy, slot: CK_SLOT_ID, session: CK_SESSION_HANDLE) {
        // Resolve outside the lock: it is the expensive part (~1 µs).
        let fresh = Arc::new(policy.resolve(&self.principal(Login::Public, None)));
        let mut t = self.tables.write();
        t.sessions.insert(session, slot);
        let state = t.slots.entry(slot).or_insert_with(|| SlotState {
            login: Login::Public,
            identity: None,
            sessions: 0,
            subject: fresh,
        });
        state.sessions += 1;
    }

    /// The slot of a session we saw opened.
    pub(super) fn slot_of(&self, session: CK_SESSION_HANDLE) -> Option<CK_SLOT_ID> {
        self.tables.read().sessions.get(&session).copied()
    }

    /// Forgets a closed session; the last one on its slot logs the slot out (§5.6).
    /// Returns the slot and whether it was its last session.
    pub(super) fn closed(&self, session: CK_SESSION_HANDLE) -> Option<(CK_SLOT_ID, bool)> {
        let mut t = self.tables.write();
        let slot = t.sessions.remove(&session)?;
        let last = t.slots.get_mut(&slot).is_some_and(|s| {
            s.sessions = s.sessions.saturating_sub(1);
            s.sessions == 0
        });
        if last {
            t.slots.remove(&slot);
        }
        Some((slot, last))
    }

    /// `C_CloseAllSessions`: every session of the slot is gone, and so is its login.
    pub(super) fn closed_all(&self, slot: CK_SLOT_ID) {
        let mut t = self.tables.write();
        t.sessions.retain(|_, s| *s != slot);
        t.slots.remove(&slot);
    }

    /// A login (or logout, `Login::Public`) on the slot of `session` succeeded.
    pub(super) fn set_login(
        &self,
        policy: &Policy,
        session: CK_SESSION_HANDLE,
        login: Login,
        identity: Option<NamedIdentity>,
    ) {
        let subject = Arc::new(policy.resolve(&self.principal(login, identity.clone())));
        let mut t = self.tables.write();
        let Some(slot) = t.sessions.get(&session).copied() else {
            return;
        };
        if let Some(s) = t.slots.get_mut(&slot) {
            s.login = login;
            s.identity = identity;
            s.subject = subject;
        }
    }

    /// The subject of a session, resolved under `policy`'s generation: a subject
    /// from an older generation is re-resolved once and kept.
    pub(super) fn subject(
        &self,
        policy: &Policy,
        session: CK_SESSION_HANDLE,
    ) -> Option<(CK_SLOT_ID, Arc<Subject>)> {
        let (slot, login, identity) = {
            let t = self.tables.read();
            let slot = *t.sessions.get(&session)?;
            let s = t.slots.get(&slot)?;
            if s.subject.generation() == policy.generation() {
                return Some((slot, Arc::clone(&s.subject)));
            }
            (slot, s.login, s.identity.clone())
        };
        let fresh = Arc::new(policy.resolve(&self.principal(login, identity.clone())));
        let mut t = self.tables.write();
        if let Some(s) = t.slots.get_mut(&slot) {
            // Only if the login did not change meanwhile.
            if s.login == login && s.identity == identity {
                s.subject = Arc::clone(&fresh);
            }
        }
        Some((slot, fresh))
    }

    /// The subject of a slot (for slot-scoped calls such as `C_InitToken`): the
    /// slot's login if it has sessions, else a public caller.
    pub(super) fn slot_subject(&self, policy: &Policy, slot: CK_SLOT_ID) -> Arc<Subject> {
        let (login, identity) = {
            let t = self.tables.read();
            t.slots
                .get(&slot)
                .map_or((Login::Public, None), |s| (s.login, s.identity.clone()))
        };
        Arc::new(policy.resolve(&self.principal(login, identity)))
    }
}
