//! The gateway's view of the store: every live version by (token serial, `CKA_ID`),
//! built once from a [`Snapshot`] and swapped when the change watcher says the store
//! moved, so the per-operation state check is two hash lookups and no query.

use std::collections::HashMap;

use super::{permits, Refusal};
use crate::policy::{Op, Policy};
use crate::store::{KeyState, KeyVersion, ManagedKey, Snapshot, UnixTime};

/// The version a key is "at" for display and for searches by label: the active one,
/// else a suspended one, else the newest that is not destroyed (after a compromise,
/// the compromised version stays what the label finds, and is refused on use).
pub fn current_version(versions: &[KeyVersion]) -> Option<&KeyVersion> {
    versions
        .iter()
        .find(|v| v.state == KeyState::Active)
        .or_else(|| versions.iter().find(|v| v.state == KeyState::Suspended))
        .or_else(|| {
            versions
                .iter()
                .rev()
                .find(|v| v.state != KeyState::Destroyed)
        })
}

struct Entry {
    version: KeyVersion,
    key: usize,
    current: bool,
}

/// Live versions by token serial and `CKA_ID`.
pub struct LifecycleIndex {
    change_seq: u64,
    keys: Vec<ManagedKey>,
    by_token: HashMap<Box<str>, HashMap<Box<[u8]>, Entry>>,
    /// Some live version is not its key's current one (a search without `CKA_ID`
    /// has something to hide).
    superseded: bool,
}

impl LifecycleIndex {
    /// Indexes a snapshot (destroyed versions are left out: their objects are gone,
    /// and their `CKA_ID` may be reused).
    pub fn new(snapshot: Snapshot) -> LifecycleIndex {
        let mut per_key: HashMap<i64, Vec<KeyVersion>> = HashMap::new();
        for v in snapshot.versions {
            per_key.entry(v.key_id.0).or_default().push(v);
        }
        let mut by_token: HashMap<Box<str>, HashMap<Box<[u8]>, Entry>> = HashMap::new();
        let mut superseded = false;
        for (i, key) in snapshot.keys.iter().enumerate() {
            let Some(mut versions) = per_key.remove(&key.id.0) else {
                continue;
            };
            versions.sort_by_key(|v| v.version);
            let current = current_version(&versions).map(|v| v.id);
            for v in versions {
                if v.state == KeyState::Destroyed {
                    continue;
                }
                superseded |= Some(v.id) != current;
                by_token
                    .entry(v.token_serial.as_str().into())
                    .or_default()
                    .insert(
                        v.cka_id.as_slice().into(),
                        Entry {
                            current: Some(v.id) == current,
                            key: i,
                            version: v,
                        },
                    );
            }
        }
        LifecycleIndex {
            change_seq: snapshot.change_seq,
            keys: snapshot.keys,
            by_token,
            superseded,
        }
    }

    /// No live version at all: no object is managed.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Whether some live version is superseded (hidden from searches without
    /// `CKA_ID`); when not, such a search has nothing to filter.
    pub fn has_superseded(&self) -> bool {
        self.superseded
    }

    /// The store's change counter this index reflects.
    pub fn change_seq(&self) -> u64 {
        self.change_seq
    }

    fn entry(&self, token_serial: &str, cka_id: &[u8]) -> Option<&Entry> {
        self.by_token.get(token_serial)?.get(cka_id)
    }

    /// One look-up for the gateway's hot path: the live version holding this
    /// `CKA_ID`, its key, and whether it is the key's current version (not
    /// superseded).
    pub fn lookup(
        &self,
        token_serial: &str,
        cka_id: &[u8],
    ) -> Option<(&KeyVersion, &ManagedKey, bool)> {
        let e = self.entry(token_serial, cka_id)?;
        Some((&e.version, self.keys.get(e.key)?, e.current))
    }

    /// The live version whose objects carry this `CKA_ID`; `None` for an unmanaged
    /// object.
    pub fn version(&self, token_serial: &str, cka_id: &[u8]) -> Option<&KeyVersion> {
        self.entry(token_serial, cka_id).map(|e| &e.version)
    }

    /// The managed key a `CKA_ID` belongs to.
    pub fn key(&self, token_serial: &str, cka_id: &[u8]) -> Option<&ManagedKey> {
        self.entry(token_serial, cka_id)
            .and_then(|e| self.keys.get(e.key))
    }

    /// Whether a search by `CKA_LABEL` must leave this object out: it is a version
    /// of a managed key other than the key's current one (superseded by rotation).
    /// Unmanaged objects and other keys sharing the label are never hidden.
    pub fn hidden_from_label_search(&self, token_serial: &str, cka_id: &[u8]) -> bool {
        self.entry(token_serial, cka_id).is_some_and(|e| !e.current)
    }

    /// The lifecycle check of one operation: `Ok` for an unmanaged object (policy
    /// alone decides those), else [`permits`] with the key's cryptoperiod.
    pub fn check(
        &self,
        token_serial: &str,
        cka_id: &[u8],
        op: Op,
        now: UnixTime,
        policy: Option<&Policy>,
    ) -> Result<(), Refusal> {
        let Some(e) = self.entry(token_serial, cka_id) else {
            return Ok(());
        };
        let period = match (policy, self.keys.get(e.key)) {
            (Some(p), Some(k)) => p.cryptoperiod_for(&key_facts(k, &e.version)),
            _ => None,
        };
        permits(&e.version, op, now, period)
    }
}

/// The policy facts of a managed key's version (label, type, `CKA_ID`, size, curve).
pub fn key_facts(key: &ManagedKey, v: &KeyVersion) -> crate::policy::KeyFacts {
    crate::policy::KeyFacts {
        key_type: crate::abi::key_type_from_name(&v.algorithm),
        id: Some(v.cka_id.clone()),
        bits: v.size_bits,
        curve: v.curve.as_deref().and_then(crate::policy::names::curve),
        ..crate::policy::KeyFacts::labelled(&key.label)
    }
}
