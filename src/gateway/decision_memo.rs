//! The last allowed key-use decision of each session, reused while nothing it was
//! made from has changed.
//!
//! An application signs or encrypts with the same key and mechanism again and
//! again, and the policy scan, keyset match, lifecycle look-up and state check give
//! the same answer each time. That answer is a function of:
//! - the policy (a reload swaps the `Arc`),
//! - the session's subject (a login, a logout or a reload replaces the `Arc`),
//! - the key's facts (an edit, a destroy or a token re-initialisation makes the
//!   facts cache read them again: a new `Arc`),
//! - the lifecycle index and the token serial (a store change swaps the index),
//! - the operation and the mechanism type (docs/policy.md: rules name mechanism
//!   types, never parameters),
//! - and the clock's whole second (the time conditions of rules and grants and the
//!   cryptoperiods read whole seconds of the module's one clock; `exe`, `host` and
//!   `login` conditions are part of the subject).
//!
//! An entry is reused only when every one of these is the same object or value;
//! anything else is decided afresh. The policy and lifecycle change checks still run
//! on every call (they are how reloads are noticed), and so does the usage count.
//! Only allowed decisions with no automatic rotation due are kept: a refusal always
//! takes the full path, with its log line and audit record.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pkcs11_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_SESSION_HANDLE};

use crate::fasthash::FastHash;
use crate::lifecycle::LifecycleIndex;
use crate::policy::{KeyFacts, Op, Policy, Subject};
use crate::store::{UnixTime, VersionId};

/// What an allowed decision leaves for the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// It may be kept; a reuse counts a use of `counts` (a managed version).
    May { counts: Option<VersionId> },
    /// It must be made afresh next time (an automatic rotation is due).
    Not,
}

/// Everything one key-use decision is made from.
pub(super) struct Basis<'a> {
    pub(super) policy: &'a Arc<Policy>,
    pub(super) subject: &'a Arc<Subject>,
    pub(super) facts: &'a Arc<KeyFacts>,
    pub(super) index: &'a Arc<LifecycleIndex>,
    pub(super) serial: &'a Arc<str>,
    pub(super) object: CK_OBJECT_HANDLE,
    pub(super) op: Op,
    pub(super) mechanism: Option<CK_MECHANISM_TYPE>,
    pub(super) second: UnixTime,
}

/// A kept decision: its basis (the `Arc`s are held, so an address is never
/// another object's) and the managed version whose use it counts.
struct Entry {
    policy: Arc<Policy>,
    subject: Arc<Subject>,
    facts: Arc<KeyFacts>,
    index: Arc<LifecycleIndex>,
    serial: Arc<str>,
    object: CK_OBJECT_HANDLE,
    op: Op,
    mechanism: Option<CK_MECHANISM_TYPE>,
    second: UnixTime,
    counts: Option<VersionId>,
}

impl Entry {
    fn holds(&self, b: &Basis<'_>) -> bool {
        self.second == b.second
            && self.object == b.object
            && self.op == b.op
            && self.mechanism == b.mechanism
            && Arc::ptr_eq(&self.policy, b.policy)
            && Arc::ptr_eq(&self.subject, b.subject)
            && Arc::ptr_eq(&self.facts, b.facts)
            && Arc::ptr_eq(&self.index, b.index)
            && Arc::ptr_eq(&self.serial, b.serial)
    }
}

// The basis's policy and subject are left out: a debug line names the decision.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("object", &self.object)
            .field("op", &self.op)
            .field("second", &self.second)
            .finish_non_exhaustive()
    }
}

/// Shards by session, as the operation tracker: two threads on two sessions take
/// two locks on two cache lines.
const SHARDS: usize = 16;

type Entries = HashMap<CK_SESSION_HANDLE, Entry, FastHash>;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Entries>);

/// One kept decision per session.
#[derive(Debug, Default)]
pub(super) struct DecisionMemo {
    shards: [Shard; SHARDS],
}

impl DecisionMemo {
    fn shard(&self, session: CK_SESSION_HANDLE) -> parking_lot::MutexGuard<'_, Entries> {
        // The remainder is below SHARDS: the cast cannot truncate, the index is in
        // bounds.
        #[allow(clippy::cast_possible_truncation)]
        let i = (session % SHARDS as CK_SESSION_HANDLE) as usize;
        self.shards[i].0.lock()
    }

    /// The kept decision of `session` if it was made from exactly `basis`:
    /// `Some(counts)` (the version whose use to count, if any), else `None`.
    pub(super) fn reuse(
        &self,
        session: CK_SESSION_HANDLE,
        basis: &Basis<'_>,
    ) -> Option<Option<VersionId>> {
        let shard = self.shard(session);
        let entry = shard.get(&session)?;
        entry.holds(basis).then_some(entry.counts)
    }

    /// Keeps an allowed decision made from `basis` (replacing the session's last).
    pub(super) fn keep(
        &self,
        session: CK_SESSION_HANDLE,
        basis: &Basis<'_>,
        counts: Option<VersionId>,
    ) {
        let entry = Entry {
            policy: Arc::clone(basis.policy),
            subject: Arc::clone(basis.subject),
            facts: Arc::clone(basis.facts),
            index: Arc::clone(basis.index),
            serial: Arc::clone(basis.serial),
            object: basis.object,
            op: basis.op,
            mechanism: basis.mechanism,
            second: basis.second,
            counts,
        };
        self.shard(session).insert(session, entry);
    }

    /// A session closed: its entry goes (it would only ever be reused by a session
    /// with the same handle deciding from the same basis, which is correct, but
    /// would keep old policies and indexes alive).
    pub(super) fn forget_session(&self, session: CK_SESSION_HANDLE) {
        self.shard(session).remove(&session);
    }

    /// Every entry goes (`C_CloseAllSessions`, `C_InitToken`).
    pub(super) fn forget_all(&self) {
        for shard in &self.shards {
            shard.0.lock().clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }
}

#[cfg(test)]
#[path = "decision_memo_tests.rs"]
mod tests;
