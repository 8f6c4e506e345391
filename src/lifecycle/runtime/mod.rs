//! The lifecycle state of one running module (docs/lifecycle.md, "Gateway
//! integration"): [`LifecycleRuntime`], opened by the gateway at `C_Initialize` and
//! used in both policy modes (shared with the enforcer in enforce mode).
//!
//! At `C_Initialize` the metadata store is opened, a [`ChangeWatcher`] set on its
//! stamp and a [`LifecycleIndex`] built from one snapshot. Per key use the cost is
//! the watcher's check (a clock read and an atomic load), one `ArcSwap` load, the
//! token serial the gateway keeps per slot and the index's hash look-ups: no store query. When
//! the watcher signals, `change_seq` is read and the index rebuilt if it moved; a
//! failed re-read fails closed (every key use refused with `CKR_GENERAL_ERROR`)
//! until a re-read succeeds.
//!
//! - this file: [`LifecycleRuntime`] (opening, usage counting, `C_Finalize`) and
//!   [`LcRefusal`];
//! - `clock`: the module's clock ([`clock_from_env`], `KEYWARDEN_NOW`);
//! - `watcher`: the index reload when the store moved, failing closed;
//! - `view`: the [`View`] (index, and the token serial the gateway passes in) a
//!   call is decided with;
//! - `check`: the lifecycle check of one operation ([`check_use`]);
//! - `visibility`: which sessions' searches hide superseded versions;
//! - `flusher`: the thread writing the usage counters;
//! - `rotation`: automatic rotation of a version past due
//!   ([`LifecycleRuntime::auto_rotate`]).

mod check;
mod clock;
mod flusher;
mod rotation;
mod view;
mod visibility;
mod watcher;

pub(crate) use check::check_use;
pub(crate) use clock::clock_from_env;
pub(crate) use rotation::{AutoRotation, ROTATE_RETRY};
pub(crate) use view::{ManagedObject, View};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use pkcs11_sys::{CKR_GENERAL_ERROR, CK_RV};

use super::LifecycleIndex;
use crate::error::Result;
use crate::policy::Clock;
use crate::store::{
    ChangeWatcher, SqliteStore, Store, UnixTime, UsageAccumulator, VersionId, DEFAULT_POLL,
    DEFAULT_RESYNC,
};
use flusher::Flusher;
use rotation::RotationTries;
use visibility::SearchVisibility;

/// A lifecycle refusal with the built-in rule it is reported under.
#[derive(Debug, Clone)]
pub(crate) struct LcRefusal {
    pub rule: &'static str,
    pub rv: CK_RV,
    pub reason: String,
}

impl LcRefusal {
    /// The store could not be read or written (`lifecycle.store`,
    /// `CKR_GENERAL_ERROR`).
    pub(crate) fn store(why: String) -> LcRefusal {
        LcRefusal {
            rule: "lifecycle.store",
            rv: CKR_GENERAL_ERROR,
            reason: why,
        }
    }
}

/// The lifecycle state of one running module.
pub(crate) struct LifecycleRuntime {
    store: SqliteStore,
    /// The store directory (`RotationLock` lives there).
    pub(crate) dir: PathBuf,
    sharing: crate::fsguard::Sharing,
    /// The versions the revocation side file names (`store::revoked`), as last read.
    revoked: Mutex<HashSet<VersionId>>,
    watcher: ChangeWatcher,
    index: ArcSwap<LifecycleIndex>,
    /// The index holds some live version (transparent mode's one check for a
    /// call on an unmanaged key while the store manages none).
    managed: AtomicBool,
    /// The last re-read failed: refuse until one succeeds.
    stale: AtomicBool,
    searches: SearchVisibility,
    usage: Arc<UsageAccumulator>,
    flusher: Mutex<Option<Flusher>>,
    /// The module's clock (policy time windows and lifecycle dates).
    pub(crate) clock: Arc<dyn Clock>,
    rotation_tries: RotationTries,
}

impl std::fmt::Debug for LifecycleRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleRuntime")
            .field("dir", &self.dir)
            .field("change_seq", &self.index.load().change_seq())
            .finish_non_exhaustive()
    }
}

impl LifecycleRuntime {
    /// Opens the store the configuration names and indexes it (a store that cannot
    /// be opened or read fails `C_Initialize`).
    pub(crate) fn open(
        config: &crate::config::StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<LifecycleRuntime> {
        let store = crate::store::open(config)?;
        let sharing = crate::store::OpenOptions::from_config(config)?.sharing;
        let stamp = store
            .change_stamp()
            .unwrap_or_else(|| config.dir.join(crate::store::STAMP_FILE));
        // The watcher first: a change between it and the snapshot is then seen.
        let watcher = ChangeWatcher::new(stamp, DEFAULT_POLL, DEFAULT_RESYNC)
            .also_watching(config.dir.join(crate::store::REVOKED_FILE));
        let revoked = crate::store::revoked(&config.dir, sharing)?;
        let index = LifecycleIndex::new(watcher::with_revoked(store.snapshot()?, &revoked));
        let usage = Arc::new(UsageAccumulator::new());
        let flusher = Flusher::spawn(config, Arc::clone(&usage));
        Ok(LifecycleRuntime {
            store,
            dir: config.dir.clone(),
            sharing,
            revoked: Mutex::new(revoked),
            watcher,
            managed: AtomicBool::new(!index.is_empty()),
            index: ArcSwap::from_pointee(index),
            stale: AtomicBool::new(false),
            searches: SearchVisibility::new(),
            usage,
            flusher: Mutex::new(flusher),
            clock,
            rotation_tries: RotationTries::default(),
        })
    }

    /// The store (registration and rotation; never on the per-operation path).
    pub(crate) fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Now, on the module's clock.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.unix_seconds()
    }

    /// Counts one use of a managed version (written by the flusher).
    pub(crate) fn record_use(&self, version: VersionId, now: UnixTime) {
        self.usage.record(version, 0, now);
    }

    /// `C_Finalize`: stops the flusher, which writes what is pending.
    pub(crate) fn stop(&self) {
        self.stop_flusher();
        if let Err(e) = self.usage.flush(&self.store) {
            log::warn!("usage counters not written: {e}");
        }
    }

    fn stop_flusher(&self) {
        if let Some(f) = self.flusher.lock().take() {
            f.stop();
        }
    }
}

impl Drop for LifecycleRuntime {
    /// A `C_Initialize` that failed after the store was opened (e.g. the backend
    /// would not load) drops the runtime: its writer thread must not outlive it.
    /// (A forked child never drops the parent's state, see `ffi::boundary`.)
    fn drop(&mut self) {
        self.stop_flusher();
    }
}
