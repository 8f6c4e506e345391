//! Which sessions' searches hide superseded versions: a search without `CKA_ID`
//! finds a managed key's current version only (docs/lifecycle.md, "Rotation").

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use pkcs11_sys::CK_SESSION_HANDLE;

use super::LifecycleRuntime;
use crate::fasthash::FastHash;

/// The sessions whose current search hides superseded versions.
pub(super) struct SearchVisibility {
    /// Sessions whose current search has no `CKA_ID` (superseded versions hidden).
    label_searches: Mutex<HashSet<CK_SESSION_HANDLE, FastHash>>,
    /// The set's length, written under its lock: a session reads 0 without the
    /// lock when no search hides anything (its own entry, if any, was counted by
    /// a call on that session, which came before).
    hiding: AtomicUsize,
}

impl SearchVisibility {
    pub(super) fn new() -> SearchVisibility {
        SearchVisibility {
            label_searches: Mutex::new(HashSet::default()),
            hiding: AtomicUsize::new(0),
        }
    }

    fn follow(&self, session: CK_SESSION_HANDLE, hide: bool) {
        let mut s = self.label_searches.lock();
        if hide {
            s.insert(session);
        } else {
            s.remove(&session);
        }
        self.hiding.store(s.len(), Ordering::Release);
    }
}

impl LifecycleRuntime {
    /// A search started on `session`; `hide`: its template has no `CKA_ID`.
    #[inline]
    pub(crate) fn search_started(&self, session: CK_SESSION_HANDLE, hide: bool) {
        let v = &self.searches;
        if hide || v.hiding.load(Ordering::Acquire) != 0 {
            v.follow(session, hide);
        }
    }

    /// Whether the search under way on `session` hides superseded versions.
    #[inline]
    pub(crate) fn hides_superseded(&self, session: CK_SESSION_HANDLE) -> bool {
        let v = &self.searches;
        v.hiding.load(Ordering::Acquire) != 0 && v.label_searches.lock().contains(&session)
    }

    /// A session closed.
    #[inline]
    pub(crate) fn session_closed(&self, session: CK_SESSION_HANDLE) {
        let v = &self.searches;
        // Usually empty: no lock, no hashing on every close.
        if v.hiding.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut s = v.label_searches.lock();
        s.remove(&session);
        v.hiding.store(s.len(), Ordering::Release);
    }
}
