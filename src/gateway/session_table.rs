//! The session table: the one place per-session state lives, in both policy modes.
//!
//! Per session its slot and that token's serial number (the one copy of it: the
//! audit record and the lifecycle view read it here); per slot the application's
//! login state, its named identity and (enforce mode) the policy `Subject` resolved
//! for it. PKCS#11 login state belongs to the application and the token, not to one
//! session (v2.40 §5.6 / §6.7: "all sessions that an application has with a token"
//! share it), so it is kept per slot. Closing every session of a slot logs the
//! application out (§5.6 C_CloseSession/C_CloseAllSessions), and the table follows.
//! What else is kept per session — the decision memo (`decision_memo.rs`), the audit
//! engine's operations in flight, the lifecycle's searches — is keyed by the same
//! handle and forgotten by the gateway in the same step (`Gateway::follow_sessions`).
//!
//! A subject is resolved from the process facts (observed once at `C_Initialize`)
//! and re-resolved when the login changes or when the policy was reloaded since.
//! Locks are held only for map look-ups, never across a backend call.
//!
//! Cost: clients often open and close a session per operation, so that pair is
//! kept cheap: a slot's state (with its token serial) stays once seen, so an open
//! is one slot look-up and one insert under one write lock, a close one remove and
//! one look-up; the subject is resolved only when a policy asks. The subject of a
//! login state without a named identity depends only on the process facts and the
//! policy, so it is resolved once per policy generation and shared
//! (`Tables::plain`), not per slot (~3 000 instructions and a dozen allocations
//! each). The maps hash handles with `FastHash`, not SipHash:
//! handles are small integers the token assigns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use pkcs11_sys::*;

use crate::identity::ProcessFacts;
use crate::policy::{Login, NamedIdentity, Policy, Principal, Subject};

/// What the gateway knows about one slot: its token's serial and the login. Kept
/// once seen (slots are few), reset to a public login when no session of the slot remains.
#[derive(Debug, Clone, Default)]
struct SlotState {
    login: Login,
    identity: Option<NamedIdentity>,
    sessions: usize,
    /// Enforce mode: the login's subject, resolved under some policy generation
    /// (`None` until a policy asks, and always in transparent mode).
    subject: Option<Arc<Subject>>,
    /// The token's serial number, read once (`None` until read, or unreadable).
    serial: Option<Arc<str>>,
}

impl SlotState {
    /// §5.6: with no session left the application is logged out of the token.
    fn logged_out(&mut self) {
        self.login = Login::Public;
        self.identity = None;
        self.subject = None;
    }
}

/// A session's slot and that token's serial number (for the audit record).
#[derive(Debug, Clone)]
pub(super) struct Place {
    pub(super) slot: CK_SLOT_ID,
    pub(super) serial: Option<Arc<str>>,
}

type HandleMap<V> = HashMap<CK_ULONG, V, crate::fasthash::FastHash>;

#[derive(Debug, Default)]
struct Tables {
    sessions: HandleMap<Place>,
    slots: HandleMap<SlotState>,
    /// Per login state (`Login as usize`), the subject without a named identity,
    /// for the newest policy generation it was resolved under.
    plain: [Option<Arc<Subject>>; 3],
}

impl Tables {
    /// The shared subject of `login` without identity, if resolved under `generation`.
    fn plain(&self, login: Login, generation: u64) -> Option<Arc<Subject>> {
        self.plain
            .get(login as usize)?
            .as_ref()
            .filter(|s| s.generation() == generation)
            .cloned()
    }

    /// Keeps `subject` as the shared one unless a newer generation's is kept.
    fn keep_plain(&mut self, login: Login, subject: &Arc<Subject>) {
        if let Some(slot) = self.plain.get_mut(login as usize) {
            if slot
                .as_ref()
                .is_none_or(|s| s.generation() < subject.generation())
            {
                *slot = Some(Arc::clone(subject));
            }
        }
    }
}

/// Sessions → their place, and per slot the login state and resolved subject.
#[derive(Debug)]
pub(super) struct SessionTable {
    process: ProcessFacts,
    tables: RwLock<Tables>,
    /// Set at the first login with a named identity, never cleared: until then no
    /// subject has an identity, and the audit record's context need not look one up.
    named_logins: AtomicBool,
}

impl SessionTable {
    pub(super) fn new(process: ProcessFacts) -> SessionTable {
        SessionTable {
            process,
            tables: RwLock::new(Tables::default()),
            named_logins: AtomicBool::new(false),
        }
    }

    /// The principal of a slot in a login state with an identity.
    pub(super) fn principal(&self, login: Login, identity: Option<NamedIdentity>) -> Principal {
        Principal::from_process(&self.process, login, identity)
    }

    /// The subject of `login` with `identity` under `policy`: the shared one when
    /// there is no identity (resolved outside the lock when missing), else resolved.
    fn resolve(
        &self,
        policy: &Policy,
        login: Login,
        identity: Option<NamedIdentity>,
    ) -> Arc<Subject> {
        if identity.is_some() {
            return Arc::new(policy.resolve(&self.principal(login, identity)));
        }
        if let Some(s) = self.tables.read().plain(login, policy.generation()) {
            return s;
        }
        // Outside the lock: resolving is the expensive part.
        let fresh = Arc::new(policy.resolve(&self.principal(login, None)));
        self.tables.write().keep_plain(login, &fresh);
        fresh
    }

    /// The serial number of `slot`'s token: cached, else read by `read` (outside
    /// the lock) and kept. `None` when it cannot be read.
    pub(super) fn serial(
        &self,
        slot: CK_SLOT_ID,
        read: impl FnOnce() -> Option<Arc<str>>,
    ) -> Option<Arc<str>> {
        self.try_serial(slot, || read().ok_or(())).ok()
    }

    /// [`SessionTable::serial`] with the reason a read failed: the error of `read`,
    /// and nothing kept (the next call reads again).
    pub(super) fn try_serial<E>(
        &self,
        slot: CK_SLOT_ID,
        read: impl FnOnce() -> std::result::Result<Arc<str>, E>,
    ) -> std::result::Result<Arc<str>, E> {
        if let Some(s) = self
            .tables
            .read()
            .slots
            .get(&slot)
            .and_then(|s| s.serial.clone())
        {
            return Ok(s);
        }
        let serial = read()?;
        let mut t = self.tables.write();
        let state = t.slots.entry(slot).or_default();
        Ok(Arc::clone(state.serial.get_or_insert(serial)))
    }

    /// Records a session the backend just opened on `slot`, with its token's
    /// serial (kept per slot; `read_serial` asks the token, outside the lock, the
    /// first time). A slot without sessions is logged in publicly, without
    /// identity; its subject is resolved when a policy first asks.
    pub(super) fn opened(
        &self,
        slot: CK_SLOT_ID,
        session: CK_SESSION_HANDLE,
        read_serial: impl FnOnce() -> Option<Arc<str>>,
    ) {
        {
            let mut t = self.tables.write();
            if let Some(state) = t.slots.get_mut(&slot).filter(|s| s.serial.is_some()) {
                state.sessions += 1;
                let serial = state.serial.clone();
                t.sessions.insert(session, Place { slot, serial });
                return;
            }
        }
        let read = read_serial();
        let mut t = self.tables.write();
        let state = t.slots.entry(slot).or_default();
        if state.serial.is_none() {
            state.serial = read;
        }
        state.sessions += 1;
        let serial = state.serial.clone();
        t.sessions.insert(session, Place { slot, serial });
    }

    /// The slot of a session we saw opened.
    #[inline]
    pub(super) fn slot_of(&self, session: CK_SESSION_HANDLE) -> Option<CK_SLOT_ID> {
        self.tables.read().sessions.get(&session).map(|p| p.slot)
    }

    /// The slot and token serial of a session we saw opened.
    pub(super) fn place(&self, session: CK_SESSION_HANDLE) -> Option<Place> {
        self.tables.read().sessions.get(&session).cloned()
    }

    /// Forgets a closed session; the last one on its slot logs the slot out (§5.6).
    /// Returns the slot and whether no other session of the slot remains.
    pub(super) fn closed(&self, session: CK_SESSION_HANDLE) -> Option<(CK_SLOT_ID, bool)> {
        let mut t = self.tables.write();
        let slot = t.sessions.remove(&session)?.slot;
        let last = t.slots.get_mut(&slot).is_some_and(|s| {
            s.sessions = s.sessions.saturating_sub(1);
            if s.sessions == 0 {
                s.logged_out();
            }
            s.sessions == 0
        });
        Some((slot, last))
    }

    /// `C_CloseAllSessions`: every session of the slot is gone, and so is its login.
    pub(super) fn closed_all(&self, slot: CK_SLOT_ID) {
        let mut t = self.tables.write();
        t.sessions.retain(|_, p| p.slot != slot);
        if let Some(s) = t.slots.get_mut(&slot) {
            s.sessions = 0;
            s.logged_out();
        }
    }

    /// `C_InitToken`: the token may have a new serial.
    pub(super) fn token_reinitialised(&self, slot: CK_SLOT_ID) {
        if let Some(s) = self.tables.write().slots.get_mut(&slot) {
            s.serial = None;
        }
    }

    /// A login (or logout, `Login::Public`) on the slot of `session` succeeded.
    /// With a policy (enforce mode) the new subject is resolved at once.
    pub(super) fn set_login(
        &self,
        policy: Option<&Policy>,
        session: CK_SESSION_HANDLE,
        login: Login,
        identity: Option<NamedIdentity>,
    ) {
        if identity.is_some() {
            self.named_logins.store(true, Ordering::Release);
        }
        let subject = policy.map(|p| self.resolve(p, login, identity.clone()));
        let mut t = self.tables.write();
        let Some(slot) = t.sessions.get(&session).map(|p| p.slot) else {
            return;
        };
        if let Some(s) = t.slots.get_mut(&slot) {
            s.login = login;
            s.identity = identity;
            s.subject = subject;
        }
    }

    /// Whether any login so far named an identity (see `named_logins`).
    #[inline]
    pub(super) fn any_named_login(&self) -> bool {
        self.named_logins.load(Ordering::Acquire)
    }

    /// The subject of a session, resolved under `policy`'s generation: a subject
    /// from an older generation (or none yet) is resolved once and kept.
    pub(super) fn subject(
        &self,
        policy: &Policy,
        session: CK_SESSION_HANDLE,
    ) -> Option<(CK_SLOT_ID, Arc<Subject>)> {
        let (slot, login, identity) = {
            let t = self.tables.read();
            let slot = t.sessions.get(&session)?.slot;
            let s = t.slots.get(&slot)?;
            if let Some(subject) = &s.subject {
                if subject.generation() == policy.generation() {
                    return Some((slot, Arc::clone(subject)));
                }
            }
            (slot, s.login, s.identity.clone())
        };
        let fresh = self.resolve(policy, login, identity.clone());
        let mut t = self.tables.write();
        if let Some(s) = t.slots.get_mut(&slot) {
            // Only if the login did not change meanwhile.
            if s.login == login && s.identity == identity {
                s.subject = Some(Arc::clone(&fresh));
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
        self.resolve(policy, login, identity)
    }
}

/// The serial number of `slot`'s token (`Backend::token_serial`); `None` when it
/// cannot be read.
pub(super) fn read_serial(
    backend: &dyn crate::backend::Backend,
    slot: CK_SLOT_ID,
) -> Option<Arc<str>> {
    backend.token_serial(slot).ok().map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SystemClock;

    fn policy() -> Policy {
        let text = "version = 1\n[roles]\nall = { members = [\"*\"], clearance = \"Low\" }\n";
        Policy::compile(text, "test", Arc::new(SystemClock)).unwrap()
    }

    #[test]
    fn plain_subjects_are_shared_per_generation_and_logins_are_per_slot() {
        let s = SessionTable::new(ProcessFacts::observe());
        let p = policy();
        s.opened(1, 10, || None);
        s.opened(2, 20, || None);
        s.opened(1, 11, || None);
        let (slot, a) = s.subject(&p, 10).unwrap();
        let (_, b) = s.subject(&p, 20).unwrap();
        assert_eq!(slot, 1);
        assert!(Arc::ptr_eq(&a, &b), "one resolution for both slots");
        assert_eq!(a.principal().login, Login::Public);

        // A login changes its slot only (§5.6), and closing the slot's last
        // session logs it out.
        s.set_login(Some(&p), 11, Login::User, None);
        assert_eq!(s.subject(&p, 10).unwrap().1.principal().login, Login::User);
        assert_eq!(
            s.subject(&p, 20).unwrap().1.principal().login,
            Login::Public
        );
        assert_eq!(s.closed(10), Some((1, false)));
        assert_eq!(s.closed(11), Some((1, true)));
        assert_eq!(s.slot_of(11), None);
        s.opened(1, 12, || None);
        assert_eq!(
            s.subject(&p, 12).unwrap().1.principal().login,
            Login::Public
        );

        // A reloaded policy is a new generation: re-resolved once, then shared.
        let q = policy();
        let (_, c) = s.subject(&q, 20).unwrap();
        let (_, d) = s.subject(&q, 12).unwrap();
        assert_eq!(c.generation(), q.generation());
        assert!(Arc::ptr_eq(&c, &d));
        assert!(!Arc::ptr_eq(&a, &c));
        // An older policy's resolution does not replace the newer shared one.
        s.opened(3, 30, || None);
        assert!(Arc::ptr_eq(&s.subject(&q, 20).unwrap().1, &c));
    }

    #[test]
    fn handles_hash_apart() {
        use std::hash::BuildHasher;
        let b = crate::fasthash::FastHash::default();
        let low: std::collections::HashSet<u64> =
            (0..4096u64).map(|h| b.hash_one(h) & 0xfff).collect();
        // Sequential handles spread over the low bits the map indexes by (like a
        // random function: about 4096 × (1 − 1/e) ≈ 2589 distinct values).
        assert!(low.len() > 2300, "{}", low.len());
    }
}
