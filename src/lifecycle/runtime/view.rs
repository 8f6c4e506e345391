//! What one call is decided with: the index and the token serial the gateway
//! passes in, and the managed version an object belongs to.

use std::sync::Arc;

use super::{LcRefusal, LifecycleRuntime};
use crate::lifecycle::LifecycleIndex;
use crate::policy::KeyFacts;
use crate::store::{KeyVersion, ManagedKey};

/// The index and token serial one call is decided with.
pub(crate) struct View {
    pub(crate) index: Arc<LifecycleIndex>,
    pub(crate) serial: Arc<str>,
}

impl LifecycleRuntime {
    /// The view a key use is decided with (fails closed on a stale index). The
    /// token's serial is the gateway's (its session table keeps it per slot):
    /// `serial` gives it, or the refusal its read failed with, and is asked only
    /// once the index is usable.
    pub(crate) fn view(
        &self,
        serial: impl FnOnce() -> Result<Arc<str>, LcRefusal>,
    ) -> Result<View, LcRefusal> {
        let index = self.current_index()?;
        let serial = serial()?;
        Ok(View { index, serial })
    }

    /// The view for searches: the last good index even when a re-read failed
    /// (hiding superseded versions is a convenience; every use is still checked).
    /// `None` without the token's serial.
    pub(crate) fn view_for_search(&self, serial: Option<Arc<str>>) -> Option<View> {
        let _ = self.current_index();
        Some(View {
            index: self.last_index(),
            serial: serial?,
        })
    }
}

impl View {
    fn id(facts: &KeyFacts) -> Option<&[u8]> {
        facts.id.as_deref().filter(|id| !id.is_empty())
    }

    /// The managed version an object belongs to (one index look-up; `None` for
    /// an unmanaged object).
    pub(crate) fn lookup(&self, facts: &KeyFacts) -> Option<ManagedObject<'_>> {
        let (version, key, current) = self.index.lookup(&self.serial, Self::id(facts)?)?;
        Some(ManagedObject {
            version,
            key,
            current,
        })
    }

    /// The object's facts with the classification and label the store recorded for
    /// its key (policy then classifies it at the higher of that and its keyset's
    /// level, and matches its rules and keysets on the key's name in the store, so
    /// an object whose token label was changed outside the module is still decided
    /// as the key it belongs to).
    pub(crate) fn enrich(
        facts: Arc<KeyFacts>,
        managed: Option<&ManagedObject<'_>>,
    ) -> Arc<KeyFacts> {
        let Some(m) = managed else {
            return facts;
        };
        let recorded = m.key.classification.map(crate::policy::Level::from);
        let level_differs = recorded.is_some() && facts.classification != recorded;
        let label_differs = facts.label.as_deref() != Some(m.key.label.as_str());
        if !level_differs && !label_differs {
            return facts;
        }
        let mut f = (*facts).clone();
        if level_differs {
            f.classification = recorded;
        }
        if label_differs {
            f.label = Some(m.key.label.clone());
        }
        Arc::new(f)
    }
}

/// A managed object: its version, key, and whether the version is current.
#[derive(Clone, Copy)]
pub(crate) struct ManagedObject<'v> {
    pub(crate) version: &'v KeyVersion,
    pub(crate) key: &'v ManagedKey,
    /// False for a version superseded by rotation (hidden from searches without
    /// `CKA_ID`).
    pub(crate) current: bool,
}
