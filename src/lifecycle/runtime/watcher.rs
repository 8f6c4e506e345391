//! The index follows the store: the change watcher says when to look, a re-read
//! builds a new index from one snapshot, and a failed re-read fails closed.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{LcRefusal, LifecycleRuntime};
use crate::lifecycle::LifecycleIndex;
use crate::store::{KeyState, Snapshot, Store, VersionId};

impl LifecycleRuntime {
    /// Re-reads the store if `change_seq` moved or the revocation side file
    /// changed; on failure marks the index stale (fail closed) and makes the
    /// watcher ask again at the next call.
    pub(crate) fn reload(&self) {
        let have = self.index.load().change_seq();
        let result = crate::store::revoked(&self.dir, self.sharing).and_then(|revoked| {
            let seq = self.store.change_seq()?;
            let mut known = self.revoked.lock();
            if seq != have || *known != revoked {
                let index = LifecycleIndex::new(with_revoked(self.store.snapshot()?, &revoked));
                log::debug!("lifecycle index reloaded (change {have} -> {seq})");
                let managed = !index.is_empty();
                self.index.store(Arc::new(index));
                *known = revoked;
                self.managed.store(managed, Ordering::Release);
            }
            Ok(())
        });
        match result {
            Ok(()) => self.stale.store(false, Ordering::Release),
            Err(e) => {
                if !self.stale.swap(true, Ordering::AcqRel) {
                    log::warn!("metadata store unreadable, refusing key use until it is back: {e}");
                }
                self.watcher.force();
            }
        }
    }

    /// Reloads the index when the watcher says the store moved; a refusal while
    /// the store cannot be re-read (fail closed).
    #[inline]
    pub(crate) fn refresh(&self) -> Result<(), LcRefusal> {
        if self.watcher.check() {
            self.reload();
        }
        if self.stale.load(Ordering::Acquire) {
            return Err(LcRefusal::store(
                "the metadata store could not be re-read (fail closed)".into(),
            ));
        }
        Ok(())
    }

    /// Whether the index (as of the last [`LifecycleRuntime::refresh`]) holds any
    /// live version: when not, no object is managed and no check can refuse.
    #[inline]
    pub(crate) fn has_managed(&self) -> bool {
        self.managed.load(Ordering::Acquire)
    }

    /// Whether some live version is superseded (a search without `CKA_ID` has
    /// something to hide), as of the last [`LifecycleRuntime::refresh`].
    pub(crate) fn hides_anything(&self) -> bool {
        self.index.load().has_superseded()
    }

    /// The current index: reloaded first when the watcher says the store moved.
    pub(super) fn current_index(&self) -> Result<Arc<LifecycleIndex>, LcRefusal> {
        self.refresh()?;
        Ok(self.index.load_full())
    }

    /// The last index read, even when a re-read failed since.
    pub(super) fn last_index(&self) -> Arc<LifecycleIndex> {
        self.index.load_full()
    }
}

/// The snapshot with every version the revocation side file names made
/// compromised (unless the store already has it compromised or destroyed).
pub(super) fn with_revoked(mut snap: Snapshot, revoked: &HashSet<VersionId>) -> Snapshot {
    if revoked.is_empty() {
        return snap;
    }
    for v in &mut snap.versions {
        if revoked.contains(&v.id)
            && !matches!(v.state, KeyState::Compromised | KeyState::Destroyed)
        {
            v.state = KeyState::Compromised;
            v.compromised_at = Some(v.state_changed_at);
        }
    }
    snap
}
