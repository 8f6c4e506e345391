//! Automatic rotation at first use after the due date (`when_due = "rotate"`,
//! [`super::check::PermittedUse::due_rotate`]): under [`RotationLock`], [`rotate`] with the
//! version seen as the expected active one, so processes racing here make exactly
//! one new version (the others get `LostRace` and find the new one). A failure
//! (e.g. no user login to create private objects with) is retried after
//! [`ROTATE_RETRY`]; the key stays in use meanwhile, as with `warn`. The caller
//! reports and records the [`AutoRotation`] it gets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pkcs11_sys::CK_SLOT_ID;

use super::LifecycleRuntime;
use crate::backend::Backend;
use crate::lifecycle::{
    new_cka_id, rotate, BackendToken, RotateError, RotateOutcome, RotationLock,
};
use crate::store::{KeyVersion, ManagedKey, UnixTime, VersionId};

/// How long after a failed automatic rotation the next use tries again.
pub(crate) const ROTATE_RETRY: Duration = Duration::from_secs(60);

/// The reason the store records for an automatic rotation.
const REASON: &str = "automatic: originator-usage period ended (when_due = \"rotate\")";

/// What an automatic rotation came to.
#[derive(Debug)]
pub(crate) enum AutoRotation {
    /// Not tried: one is under way in this process, or one failed less than
    /// [`ROTATE_RETRY`] ago.
    NotTried,
    /// The key was rotated: the new version is active, the one used deactivated.
    Rotated(Box<RotateOutcome>),
    /// Another process rotated it first (that process records it).
    LostRace,
    /// The attempt failed, in words; a use after [`ROTATE_RETRY`] tries again.
    Failed(String),
}

/// Versions an automatic rotation was last tried for, and when.
#[derive(Default)]
pub(super) struct RotationTries(Mutex<HashMap<VersionId, Instant>>);

impl RotationTries {
    /// Whether an automatic rotation of `version` may be tried now: not while one
    /// is under way in this process, nor within `ROTATE_RETRY` of a failed one.
    fn may_try(&self, version: VersionId) -> bool {
        let mut tries = self.0.lock();
        let now = Instant::now();
        match tries.get(&version) {
            Some(t) if now.duration_since(*t) < ROTATE_RETRY => false,
            _ => {
                tries.insert(version, now);
                true
            }
        }
    }

    /// The rotation of `version` is done (by us or another process): the index
    /// reload makes it deactivated, so no retry timer is needed any more.
    fn done(&self, version: VersionId) {
        self.0.lock().remove(&version);
    }
}

impl LifecycleRuntime {
    /// Rotates `key`, whose active `version` on the token of `slot` (serial
    /// `serial`) is past due, through a read/write helper session of the
    /// application's login; the index is reloaded after every attempt. The use
    /// that triggered it goes on with the version it named (it was active when
    /// decided); searches without `CKA_ID` find the new version from then on.
    pub(crate) fn auto_rotate(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
        serial: &str,
        key: &ManagedKey,
        version: &KeyVersion,
        now: UnixTime,
    ) -> AutoRotation {
        if !self.rotation_tries.may_try(version.id) {
            return AutoRotation::NotTried;
        }
        let result = self.try_rotation(backend, slot, serial, key, version, now);
        self.reload();
        if matches!(result, AutoRotation::Rotated(_) | AutoRotation::LostRace) {
            self.rotation_tries.done(version.id);
        }
        result
    }

    /// One attempt, under the rotation lock (released before the index reload).
    fn try_rotation(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
        serial: &str,
        key: &ManagedKey,
        version: &KeyVersion,
        now: UnixTime,
    ) -> AutoRotation {
        let _lock = match RotationLock::acquire(&self.dir) {
            Ok(l) => l,
            Err(e) => return AutoRotation::Failed(format!("rotation lock: {e}")),
        };
        let session = match backend.open_helper_session_rw(slot) {
            Ok(s) => s,
            Err(e) => return AutoRotation::Failed(format!("helper session: {e}")),
        };
        let token = BackendToken {
            session,
            serial: serial.to_owned(),
        };
        let new_id = match new_cka_id() {
            Ok(id) => id,
            Err(e) => return AutoRotation::Failed(e.to_string()),
        };
        let rotated = rotate(
            &self.store,
            &token,
            key,
            Some(version.version),
            &new_id,
            Some(REASON),
            now,
            &mut || {},
        );
        match rotated {
            Ok(o) => AutoRotation::Rotated(Box::new(o)),
            Err(RotateError::LostRace { .. }) => AutoRotation::LostRace,
            Err(other) => AutoRotation::Failed(other.to_string()),
        }
    }
}
