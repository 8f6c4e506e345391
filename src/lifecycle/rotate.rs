//! Rotation between a token and the store, and reconciliation after a crash.
//!
//! Order matters for "never none, never two": the new version's objects are created
//! on the token first (with a `CKA_ID` decided up front), then one store transaction
//! (`Store::rotate`) makes them active and the previous version deactivated. A crash
//! before the commit leaves the old version active and the new objects orphaned; a
//! crash after it leaves the new version active.
//!
//! Before anything is generated the store records the intent (`Store::begin_pending`:
//! token serial, new `CKA_ID`, label, time); the commit clears it in its own
//! transaction. [`reconcile`] removes only the objects of intents that never
//! committed — never objects recognised by the shape of their `CKA_ID`: several
//! stores (configurations) may share one token, and each one's keys are unknown to
//! the others. Rotations and reconciliation on one store hold [`RotationLock`], so
//! an in-flight rotation's intent is never mistaken for a dead one.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::token::{TokenError, TokenOps};
use crate::store::{
    KeyState, KeyVersion, ManagedKey, NewVersion, PendingRotation, Store, StoreError, UnixTime,
};

/// First bytes of every `CKA_ID` Keywarden generates ("KW"), followed by 14 random
/// bytes. Only for people reading a token: applications' own IDs may have the same
/// shape, and so may another store's keys, so nothing is ever decided by it.
pub const ROTATION_ID_MAGIC: [u8; 2] = *b"KW";

/// The lock file in the store directory serialising rotations and reconciliation.
pub const LOCK_FILE: &str = "keywarden.rotate.lock";

/// Environment variable of the CLI's fault-injection hook (tests): when set to
/// `rotate-after-generate`, `keywarden keys rotate` aborts the process after the
/// new objects exist on the token and before the store commit.
pub const FAULT_ENV: &str = "KEYWARDEN_FAULT";

/// A fresh `CKA_ID`: the magic prefix and 14 bytes from the kernel's CSPRNG
/// (uniqueness, not secrecy, is what matters; 112 bits make a collision moot).
pub fn new_cka_id() -> std::io::Result<Vec<u8>> {
    let mut id = ROTATION_ID_MAGIC.to_vec();
    let mut random = [0u8; 14];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    id.extend_from_slice(&random);
    Ok(id)
}

/// Whether a `CKA_ID` has the shape of one [`new_cka_id`] made.
pub fn is_rotation_id(id: &[u8]) -> bool {
    id.len() == 16 && id.starts_with(&ROTATION_ID_MAGIC)
}

/// An exclusive `flock` on `<store dir>/keywarden.rotate.lock`, released on drop (and
/// by the kernel when the process dies, so a killed rotation never wedges the next).
#[derive(Debug)]
pub struct RotationLock {
    _file: File,
}

impl RotationLock {
    /// Waits for the lock.
    pub fn acquire(store_dir: &Path) -> std::io::Result<RotationLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(store_dir.join(LOCK_FILE))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(RotationLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The store refused or failed; the new objects (if any) were destroyed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The token failed.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The key is not in a state to rotate.
    #[error("key {label:?}: {why}")]
    NotRotatable {
        /// Label.
        label: String,
        /// Why.
        why: String,
    },
    /// Another process rotated first (store conflict, or `--expect-version` did not
    /// hold); the objects this attempt created were destroyed.
    #[error("key {label:?}: rotated by another process first ({detail}); {destroyed} new object(s) removed")]
    LostRace {
        /// Label.
        label: String,
        /// What the store said.
        detail: String,
        /// Objects of this attempt destroyed again.
        destroyed: usize,
    },
}

/// A rotation that happened.
#[derive(Debug, Clone)]
pub struct RotateOutcome {
    /// The version that was active (now deactivated), if any.
    pub previous: Option<KeyVersion>,
    /// The new active version.
    pub current: KeyVersion,
    /// Setting `CKA_END_DATE` on the previous version failed (the store, which is
    /// authoritative, is already right).
    pub warning: Option<String>,
}

/// Rotates `key`: generates the next version on the token with `new_id`, then
/// commits it in one store transaction. `expect_version` (the active version number
/// the caller believes current) turns the rotation into a compare-and-swap. `hook`
/// runs between generation and commit (fault injection in tests; a no-op otherwise).
/// The caller holds [`RotationLock`].
#[allow(clippy::too_many_arguments)] // each is a distinct input of one transaction
pub fn rotate(
    store: &dyn Store,
    token: &dyn TokenOps,
    key: &ManagedKey,
    expect_version: Option<u32>,
    new_id: &[u8],
    reason: Option<&str>,
    now: UnixTime,
    hook: &mut dyn FnMut(),
) -> Result<RotateOutcome, RotateError> {
    let versions = store.versions(key.id)?;
    let (active, model) = model_version(key, &versions, expect_version)?;
    let shape = token.shape(&model.cka_id)?;
    // The intent first: a crash from here to the commit leaves objects that
    // `reconcile` knows to be ours.
    store.begin_pending(&PendingRotation {
        token_serial: token.serial(),
        cka_id: new_id.to_vec(),
        label: key.label.clone(),
        started_at: now,
    })?;
    if let Err(e) = token.generate(&shape, new_id, &key.label, now) {
        // A failed generation may still have left one half of a pair.
        if token.destroy(new_id).is_ok() {
            let _ = store.clear_pending(&token.serial(), new_id);
        }
        return Err(e.into());
    }
    hook();
    let new = NewVersion {
        token_serial: token.serial(),
        cka_id: new_id.to_vec(),
        algorithm: shape.algorithm.clone(),
        size_bits: shape.size_bits,
        curve: shape.curve.clone(),
    };
    let committed = store.rotate(key.id, active.map(|v| v.id), &new, reason, now);
    let rotation = committed.map_err(|e| uncommitted(store, token, key, new_id, e))?;
    let warning = rotation.previous.as_ref().and_then(|p| {
        token
            .set_dates(&p.cka_id, None, Some(now))
            .err()
            .map(|e| format!("version {}: CKA_END_DATE not set: {e}", p.version))
    });
    Ok(RotateOutcome {
        previous: rotation.previous,
        current: rotation.current,
        warning,
    })
}

/// The active version of `key` (if any) and the version the next one is modelled
/// on, or why the key cannot be rotated now.
fn model_version<'v>(
    key: &ManagedKey,
    versions: &'v [KeyVersion],
    expect_version: Option<u32>,
) -> Result<(Option<&'v KeyVersion>, &'v KeyVersion), RotateError> {
    let not = |why: String| RotateError::NotRotatable {
        label: key.label.clone(),
        why,
    };
    let active = versions.iter().find(|v| v.state == KeyState::Active);
    if let Some(s) = versions.iter().find(|v| v.state == KeyState::Suspended) {
        return Err(not(format!(
            "version {} is suspended: resume or deactivate it first",
            s.version
        )));
    }
    if let Some(want) = expect_version {
        let have = active.map(|v| v.version);
        if have != Some(want) {
            return Err(RotateError::LostRace {
                label: key.label.clone(),
                detail: format!(
                    "active version is {}, not {want}",
                    have.map_or("none".into(), |v| v.to_string())
                ),
                destroyed: 0,
            });
        }
    }
    // Without an active version (e.g. after a compromise) the newest live version
    // is the model for the next one.
    let model = active
        .or_else(|| {
            versions
                .iter()
                .rev()
                .find(|v| v.state != KeyState::Destroyed)
        })
        .ok_or_else(|| not("no version left on the token to model the next one on".into()))?;
    Ok((active, model))
}

/// The store did not commit the rotation: the objects made under `new_id` belong to
/// no version and are destroyed. The intent stays if they could not be destroyed
/// (reconcile's to finish).
fn uncommitted(
    store: &dyn Store,
    token: &dyn TokenOps,
    key: &ManagedKey,
    new_id: &[u8],
    e: StoreError,
) -> RotateError {
    let destroyed = match token.destroy(new_id) {
        Ok(n) => {
            let _ = store.clear_pending(&token.serial(), new_id);
            n
        }
        Err(_) => 0,
    };
    match e {
        StoreError::Conflict(detail) => RotateError::LostRace {
            label: key.label.clone(),
            detail,
            destroyed,
        },
        other => RotateError::Store(other),
    }
}

/// The objects of a rotation (or registration) that never committed: its intent
/// in the store, and what is on the token under its `CKA_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Their `CKA_ID`.
    pub cka_id: Vec<u8>,
    /// Their `CKA_LABEL` (as the intent recorded it).
    pub label: String,
    /// When the interrupted rotation started.
    pub started_at: UnixTime,
    /// How many objects are on the token (0: it died before generating).
    pub objects: usize,
    /// Whether they were destroyed and the intent cleared (false for a dry run or
    /// a failure).
    pub removed: bool,
}

/// Finds (and unless `dry_run`, destroys) the objects of rotations this store
/// recorded as in flight on this token that never committed: each intent of
/// `Store::pending`, matched on the token by `CKA_ID` and label. Nothing else is
/// ever touched: an object whose intent this store did not write (another store's
/// key on a shared token, an application's) is not an orphan here, whatever its
/// `CKA_ID` looks like. An intent whose `CKA_ID` a live version holds is only
/// cleared. The caller holds [`RotationLock`].
pub fn reconcile(
    store: &dyn Store,
    token: &dyn TokenOps,
    dry_run: bool,
) -> Result<Vec<Orphan>, RotateError> {
    let serial = token.serial();
    let mut orphans = Vec::new();
    for p in store.pending(&serial)? {
        if store.version_by_cka_id(&serial, &p.cka_id)?.is_some() {
            if !dry_run {
                store.clear_pending(&serial, &p.cka_id)?;
            }
            continue;
        }
        let objects = token
            .find_by_id(&p.cka_id)?
            .into_iter()
            .filter(|o| o.label == p.label)
            .count();
        let mut o = Orphan {
            cka_id: p.cka_id,
            label: p.label,
            started_at: p.started_at,
            objects,
            removed: false,
        };
        if !dry_run {
            o.removed = destroy_labelled(token, &o.cka_id, &o.label).is_ok()
                && store.clear_pending(&serial, &o.cka_id).is_ok();
        }
        orphans.push(o);
    }
    Ok(orphans)
}

/// Destroys the objects with `id` whose label is `label`. `TokenOps::destroy` takes
/// every object of a `CKA_ID`; one carrying another label is not the rotation's,
/// and its presence stops the removal.
fn destroy_labelled(token: &dyn TokenOps, id: &[u8], label: &str) -> Result<usize, TokenError> {
    let found = token.find_by_id(id)?;
    if found.iter().any(|o| o.label != label) {
        return Err(TokenError(
            "objects with another label share the CKA_ID: left alone".into(),
        ));
    }
    token.destroy(id)
}
