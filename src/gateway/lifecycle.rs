//! The lifecycle side of each call (docs/lifecycle.md, "Gateway integration"), in
//! both policy modes: the [`Lifecycle`] is the gateway's, shared with the
//! [`super::Enforcer`] in enforce mode and used directly in transparent mode
//! (`lifecycle_guard.rs`).
//!
//! At `C_Initialize` the metadata store is opened, a [`ChangeWatcher`] set on its
//! stamp and a [`LifecycleIndex`] built from one snapshot. Per key use the cost is
//! the watcher's check (a clock read and an atomic load), one `ArcSwap` load, the
//! slot's cached token serial and the index's hash look-ups: no store query. When
//! the watcher signals, `change_seq` is read and the index rebuilt if it moved; a
//! failed re-read fails closed (every key use refused with `CKR_GENERAL_ERROR`)
//! until a re-read succeeds.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use pkcs11_sys::*;

use super::decision_memo::Kept;
use crate::audit::LifecycleEvent;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fasthash::FastHash;
use crate::lifecycle::{Due, LifecycleIndex};
use crate::policy::{Clock, KeyFacts, Op, Policy, UnmanagedKeys, WhenDue};
use crate::store::{
    ChangeWatcher, KeyState, KeyVersion, ManagedKey, SqliteStore, Store, UnixTime,
    UsageAccumulator, VersionId, DEFAULT_POLL, DEFAULT_RESYNC,
};

/// How often the usage counters are written to the store (and at `C_Finalize`).
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// A lifecycle refusal with the built-in rule it is reported under.
#[derive(Debug, Clone)]
pub(super) struct LcRefusal {
    pub rule: &'static str,
    pub rv: CK_RV,
    pub reason: String,
}

impl LcRefusal {
    pub(super) fn store(why: String) -> LcRefusal {
        LcRefusal {
            rule: "lifecycle.store",
            rv: CKR_GENERAL_ERROR,
            reason: why,
        }
    }
}

/// The wall clock shifted so that it read `KEYWARDEN_NOW` at start-up.
#[derive(Debug)]
struct ShiftedClock {
    offset: i64,
}

impl Clock for ShiftedClock {
    fn unix_seconds(&self) -> i64 {
        crate::policy::SystemClock
            .unix_seconds()
            .saturating_add(self.offset)
    }

    fn monotonic_millis(&self) -> u64 {
        crate::policy::SystemClock.monotonic_millis()
    }
}

/// The clock of enforce mode (policy time windows and lifecycle dates).
pub(super) fn clock_from_env(override_allowed: bool) -> Result<Arc<dyn Clock>> {
    match crate::policy::injected_now(override_allowed).map_err(Error::Config)? {
        None => Ok(Arc::new(crate::policy::SystemClock)),
        Some(at) => {
            let offset = at.saturating_sub(crate::policy::SystemClock.unix_seconds());
            log::warn!(
                "{}: the module's clock is shifted by {offset} s",
                crate::policy::NOW_ENV
            );
            Ok(Arc::new(ShiftedClock { offset }))
        }
    }
}

/// The usage writer thread (its own store connection, so a flush waiting for
/// another process's write lock never holds up the hot path's reloads).
struct Flusher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// The lifecycle state of one running module.
pub(super) struct Lifecycle {
    store: SqliteStore,
    pub(super) dir: PathBuf,
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
    serials: RwLock<HashMap<CK_SLOT_ID, Arc<str>, FastHash>>,
    /// Sessions whose current search has no `CKA_ID` (superseded versions hidden).
    label_searches: Mutex<HashSet<CK_SESSION_HANDLE, FastHash>>,
    /// The set's length, written under its lock: a session reads 0 without the
    /// lock when no search hides anything (its own entry, if any, was counted by
    /// a call on that session, which came before).
    hiding: AtomicUsize,
    usage: Arc<UsageAccumulator>,
    flusher: Mutex<Option<Flusher>>,
    pub(super) clock: Arc<dyn Clock>,
    /// Versions an automatic rotation was last tried for, and when.
    rotation_tries: Mutex<HashMap<VersionId, std::time::Instant>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("dir", &self.dir)
            .field("change_seq", &self.index.load().change_seq())
            .finish_non_exhaustive()
    }
}

/// The index and token serial one call is decided with.
pub(super) struct View {
    pub(super) index: Arc<LifecycleIndex>,
    pub(super) serial: Arc<str>,
}

impl Lifecycle {
    /// Opens the store the configuration names and indexes it (a store that cannot
    /// be opened or read fails `C_Initialize`).
    pub(super) fn open(
        config: &crate::config::StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Lifecycle> {
        let store = crate::store::open(config)?;
        let sharing = crate::store::OpenOptions::from_config(config)?.sharing;
        let stamp = store
            .change_stamp()
            .unwrap_or_else(|| config.dir.join(crate::store::STAMP_FILE));
        // The watcher first: a change between it and the snapshot is then seen.
        let watcher = ChangeWatcher::new(stamp, DEFAULT_POLL, DEFAULT_RESYNC)
            .also_watching(config.dir.join(crate::store::REVOKED_FILE));
        let revoked = crate::store::revoked(&config.dir, sharing)?;
        let index = LifecycleIndex::new(with_revoked(store.snapshot()?, &revoked));
        let usage = Arc::new(UsageAccumulator::new());
        let flusher = spawn_flusher(config, Arc::clone(&usage));
        Ok(Lifecycle {
            store,
            dir: config.dir.clone(),
            sharing,
            revoked: Mutex::new(revoked),
            watcher,
            managed: AtomicBool::new(!index.is_empty()),
            index: ArcSwap::from_pointee(index),
            stale: AtomicBool::new(false),
            serials: RwLock::new(HashMap::default()),
            label_searches: Mutex::new(HashSet::default()),
            hiding: AtomicUsize::new(0),
            usage,
            flusher: Mutex::new(flusher),
            clock,
            rotation_tries: Mutex::new(HashMap::new()),
        })
    }

    /// The store (registration and rotation; never on the per-operation path).
    pub(super) fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Now, on the module's clock.
    pub(super) fn now(&self) -> UnixTime {
        self.clock.unix_seconds()
    }

    /// Re-reads the store if `change_seq` moved or the revocation side file
    /// changed; on failure marks the index stale (fail closed) and makes the
    /// watcher ask again at the next call.
    pub(super) fn reload(&self) {
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
    pub(super) fn refresh(&self) -> std::result::Result<(), LcRefusal> {
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

    /// Whether the index (as of the last [`Lifecycle::refresh`]) holds any live
    /// version: when not, no object is managed and no check can refuse.
    #[inline]
    pub(super) fn has_managed(&self) -> bool {
        self.managed.load(Ordering::Acquire)
    }

    /// Whether some live version is superseded (a search without `CKA_ID` has
    /// something to hide), as of the last [`Lifecycle::refresh`].
    pub(super) fn hides_anything(&self) -> bool {
        self.index.load().has_superseded()
    }

    /// The current index: reloaded first when the watcher says the store moved.
    fn index(&self) -> std::result::Result<Arc<LifecycleIndex>, LcRefusal> {
        self.refresh()?;
        Ok(self.index.load_full())
    }

    /// The serial of the token in `slot`, read once per slot.
    pub(super) fn serial(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
    ) -> std::result::Result<Arc<str>, LcRefusal> {
        if let Some(s) = self.serials.read().get(&slot) {
            return Ok(Arc::clone(s));
        }
        let serial: Arc<str> = backend
            .token_serial(slot)
            .map_err(|e| LcRefusal {
                rule: "lifecycle.token",
                rv: e.rv(),
                reason: format!("the token's serial number could not be read: {e}"),
            })?
            .into();
        self.serials.write().insert(slot, Arc::clone(&serial));
        Ok(serial)
    }

    /// A re-initialised token may have a new serial.
    pub(super) fn forget_slot(&self, slot: CK_SLOT_ID) {
        self.serials.write().remove(&slot);
    }

    /// The view a key use is decided with (fails closed on a stale index).
    pub(super) fn view(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
    ) -> std::result::Result<View, LcRefusal> {
        let index = self.index()?;
        let serial = self.serial(backend, slot)?;
        Ok(View { index, serial })
    }

    /// The view for searches: the last good index even when a re-read failed
    /// (hiding superseded versions is a convenience; every use is still checked).
    pub(super) fn view_for_search(&self, backend: &dyn Backend, slot: CK_SLOT_ID) -> Option<View> {
        let _ = self.index();
        let serial = self.serial(backend, slot).ok()?;
        Some(View {
            index: self.index.load_full(),
            serial,
        })
    }

    /// A search started on `session`; `hide`: its template has no `CKA_ID`.
    #[inline]
    pub(super) fn search_started(&self, session: CK_SESSION_HANDLE, hide: bool) {
        if hide || self.hiding.load(Ordering::Acquire) != 0 {
            self.follow_search(session, hide);
        }
    }

    fn follow_search(&self, session: CK_SESSION_HANDLE, hide: bool) {
        let mut s = self.label_searches.lock();
        if hide {
            s.insert(session);
        } else {
            s.remove(&session);
        }
        self.hiding.store(s.len(), Ordering::Release);
    }

    /// Whether the search under way on `session` hides superseded versions.
    #[inline]
    pub(super) fn hides_superseded(&self, session: CK_SESSION_HANDLE) -> bool {
        self.hiding.load(Ordering::Acquire) != 0 && self.label_searches.lock().contains(&session)
    }

    /// A session closed.
    #[inline]
    pub(super) fn session_closed(&self, session: CK_SESSION_HANDLE) {
        // Usually empty: no lock, no hashing on every close.
        if self.hiding.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut s = self.label_searches.lock();
        s.remove(&session);
        self.hiding.store(s.len(), Ordering::Release);
    }

    /// Counts one use of a managed version (written by the flusher).
    pub(super) fn record_use(&self, version: VersionId, now: UnixTime) {
        self.usage.record(version, 0, now);
    }

    /// Whether an automatic rotation of `version` may be tried now: not while one
    /// is under way in this process, nor within `ROTATE_RETRY` of a failed one.
    fn may_try_rotation(&self, version: VersionId) -> bool {
        let mut tries = self.rotation_tries.lock();
        let now = std::time::Instant::now();
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
    fn rotation_done(&self, version: VersionId) {
        self.rotation_tries.lock().remove(&version);
    }

    /// `C_Finalize`: stops the flusher, which writes what is pending.
    pub(super) fn stop(&self) {
        self.stop_flusher();
        if let Err(e) = self.usage.flush(&self.store) {
            log::warn!("usage counters not written: {e}");
        }
    }

    fn stop_flusher(&self) {
        if let Some(f) = self.flusher.lock().take() {
            f.stop.store(true, Ordering::Release);
            f.thread.thread().unpark();
            let _ = f.thread.join();
        }
    }
}

impl Drop for Lifecycle {
    /// A `C_Initialize` that failed after the store was opened (e.g. the backend
    /// would not load) drops the enforcer: its writer thread must not outlive it.
    /// (A forked child never drops the parent's state, see `ffi::boundary`.)
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

/// The snapshot with every version the revocation side file names made
/// compromised (unless the store already has it compromised or destroyed).
fn with_revoked(
    mut snap: crate::store::Snapshot,
    revoked: &HashSet<VersionId>,
) -> crate::store::Snapshot {
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

fn spawn_flusher(
    config: &crate::config::StoreConfig,
    usage: Arc<UsageAccumulator>,
) -> Option<Flusher> {
    let store = match crate::store::open(config) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("usage counters will be written at C_Finalize only: {e}");
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("keywarden-usage".into())
        .spawn(move || loop {
            std::thread::park_timeout(FLUSH_EVERY);
            if !usage.is_empty() {
                if let Err(e) = usage.flush(&store) {
                    log::warn!("usage counters not written (kept for the next try): {e}");
                }
            }
            if stop2.load(Ordering::Acquire) {
                break;
            }
        });
    match thread {
        Ok(thread) => Some(Flusher { stop, thread }),
        Err(e) => {
            log::warn!("no usage writer thread ({e}): counters are written at C_Finalize");
            None
        }
    }
}

/// The "processing" side (SP 800-57 §5.3.4), as for deactivated versions.
fn processing(op: Op) -> bool {
    matches!(op, Op::Verify | Op::Decrypt | Op::Unwrap)
}

impl View {
    fn id(facts: &KeyFacts) -> Option<&[u8]> {
        facts.id.as_deref().filter(|id| !id.is_empty())
    }

    /// The managed version an object belongs to (one index look-up; `None` for
    /// an unmanaged object).
    pub(super) fn lookup(&self, facts: &KeyFacts) -> Option<Managed<'_>> {
        let (version, key, current) = self.index.lookup(&self.serial, Self::id(facts)?)?;
        Some(Managed {
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
    pub(super) fn enrich(facts: Arc<KeyFacts>, managed: Option<&Managed<'_>>) -> Arc<KeyFacts> {
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
pub(super) struct Managed<'v> {
    pub(super) version: &'v KeyVersion,
    pub(super) key: &'v ManagedKey,
    /// False for a version superseded by rotation (hidden from searches without
    /// `CKA_ID`).
    pub(super) current: bool,
}

/// The lifecycle check of one operation: the managed version's state
/// (`lifecycle::permits` with the key's cryptoperiod), or `unmanaged_keys` for an
/// object no live version holds, then the cryptoperiod's `when_due`. `Ok(None)`
/// for an unmanaged object. `policy` is `None` in transparent mode: no
/// cryptoperiods (they are the policy file's) and `unmanaged_keys = "allow"`.
///
/// An active version past its originator-usage period is treated as `when_due`
/// says: `warn` — used as before (`keys list --due` reports it); `deactivate` —
/// refused for protecting (sign, encrypt, wrap, derive, ...) and allowed to
/// process until its recipient period ends, as if deactivated (the store is left
/// to `keys rotate --due`); `rotate` — the caller rotates it (`Use::due_rotate`).
pub(super) fn check<'v>(
    managed: Option<Managed<'v>>,
    facts: &KeyFacts,
    op: Op,
    now: UnixTime,
    policy: Option<&Policy>,
) -> std::result::Result<Option<Use<'v>>, LcRefusal> {
    let Some(m) = managed else {
        let setting = policy.map_or(UnmanagedKeys::Allow, Policy::unmanaged_keys);
        return unmanaged(setting, facts, op).map(|()| None);
    };
    let version = m.version;
    // The policy facts of the key are built (an allocation) only when the policy
    // has cryptoperiods at all.
    let period = match policy {
        Some(p) if !p.cryptoperiods().is_empty() => {
            p.cryptoperiod_for(&crate::lifecycle::key_facts(m.key, version))
        }
        _ => None,
    };
    crate::lifecycle::permits(version, op, now, period).map_err(|r| LcRefusal {
        rule: "lifecycle.state",
        rv: r.rv,
        reason: r.reason,
    })?;
    let mut due_rotate = false;
    if let (KeyState::Active, true, Some(period)) = (version.state, op.uses_key_value(), period) {
        match crate::lifecycle::due(version, period, now) {
            Due::Now {
                since,
                action: WhenDue::Deactivate,
            } => {
                let end = crate::lifecycle::schedule(version, period).recipient_end;
                if !processing(op) || now >= end {
                    return Err(LcRefusal {
                        rule: "lifecycle.cryptoperiod",
                        rv: CKR_KEY_FUNCTION_NOT_PERMITTED,
                        reason: format!(
                            "version {} is past its originator-usage period ({} ended at {since}; when_due = \"deactivate\"): {}",
                            version.version,
                            period.name,
                            if now >= end {
                                "its recipient period ended too".to_owned()
                            } else {
                                format!("no {}", op.name())
                            }
                        ),
                    });
                }
            }
            Due::Now {
                action: WhenDue::Rotate,
                ..
            } => due_rotate = !processing(op),
            _ => {}
        }
    }
    Ok(Some(Use {
        version,
        key: m.key,
        due_rotate,
    }))
}

/// A permitted use of a managed version.
pub(super) struct Use<'v> {
    pub(super) version: &'v KeyVersion,
    pub(super) key: &'v ManagedKey,
    /// Past its originator period with `when_due = "rotate"`, used to protect.
    pub(super) due_rotate: bool,
}

/// `[settings] unmanaged_keys` on a key-using operation.
fn unmanaged(
    setting: UnmanagedKeys,
    facts: &KeyFacts,
    op: Op,
) -> std::result::Result<(), LcRefusal> {
    let is_key = matches!(
        facts.class,
        Some(CKO_PRIVATE_KEY | CKO_PUBLIC_KEY | CKO_SECRET_KEY)
    );
    let allowed = !op.uses_key_value()
        || !is_key
        || match setting {
            UnmanagedKeys::Allow => true,
            UnmanagedKeys::Processing => processing(op),
            UnmanagedKeys::Deny => false,
        };
    if allowed {
        return Ok(());
    }
    Err(LcRefusal {
        rule: "lifecycle.unmanaged",
        rv: CKR_KEY_FUNCTION_NOT_PERMITTED,
        reason: format!(
            "the key is not managed (unmanaged_keys = \"{}\"): no {}; `keywarden keys adopt` brings it under management",
            setting.as_str(),
            op.name()
        ),
    })
}

impl super::Enforcer {
    /// The lifecycle half of a key-use decision (after policy allowed it): the
    /// state check, automatic rotation of a version past due, and a permitted use
    /// of a managed version counted. Says whether the decision may be kept (not
    /// while a rotation is due: each use must try it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lifecycle_check(
        &self,
        backend: &dyn Backend,
        call: &super::Call,
        op: Op,
        slot: CK_SLOT_ID,
        view: &View,
        managed: Option<Managed<'_>>,
        facts: &KeyFacts,
        policy: &Policy,
    ) -> Result<Kept> {
        let now = self.lifecycle.now();
        match check(managed, facts, op, now, Some(policy)) {
            Ok(Some(u)) if op.uses_key_value() => {
                self.lifecycle.record_use(u.version.id, now);
                if u.due_rotate {
                    self.auto_rotate(backend, call, slot, &view.serial, u.key, u.version, now)?;
                    return Ok(Kept::Not);
                }
                Ok(Kept::May {
                    counts: Some(u.version.id),
                })
            }
            Ok(_) => Ok(Kept::May { counts: None }),
            Err(r) => Err(self.refuse_lifecycle(Some(op), r)),
        }
    }

    /// Automatic rotation at first use after the due date (`when_due = "rotate"`):
    /// under `RotationLock`, `lifecycle::rotate` with the version seen as the
    /// expected active one, so processes racing here make exactly one new version
    /// (the others get `LostRace` and find the new one). The use that triggered it
    /// goes on with the version it named (it was active when decided); searches
    /// without `CKA_ID` find the new version from then on. A failure (e.g. no user
    /// login to create private objects with) is logged, and retried after
    /// `ROTATE_RETRY`; the key stays in use meanwhile, as with `warn`. Both the
    /// rotation and a failed attempt are audit records (`lifecycle_audit.rs`); an
    /// error here is only one of those records not written in `required` mode.
    #[allow(clippy::too_many_arguments)]
    fn auto_rotate(
        &self,
        backend: &dyn Backend,
        call: &super::Call,
        slot: CK_SLOT_ID,
        serial: &str,
        key: &ManagedKey,
        version: &KeyVersion,
        now: UnixTime,
    ) -> Result<()> {
        if !self.lifecycle.may_try_rotation(version.id) {
            return Ok(());
        }
        let attempt = || -> std::result::Result<crate::lifecycle::RotateOutcome, String> {
            let _lock = crate::lifecycle::RotationLock::acquire(&self.lifecycle.dir)
                .map_err(|e| format!("rotation lock: {e}"))?;
            let session = backend
                .open_helper_session_rw(slot)
                .map_err(|e| format!("helper session: {e}"))?;
            let token = super::token_ops::BackendToken {
                session,
                serial: serial.to_owned(),
            };
            let new_id = crate::lifecycle::new_cka_id().map_err(|e| e.to_string())?;
            crate::lifecycle::rotate(
                self.lifecycle.store(),
                &token,
                key,
                Some(version.version),
                &new_id,
                Some("automatic: originator-usage period ended (when_due = \"rotate\")"),
                now,
                &mut || {},
            )
            .map_err(|e| match e {
                crate::lifecycle::RotateError::LostRace { .. } => LOST_RACE.to_owned(),
                other => other.to_string(),
            })
        };
        let result = attempt();
        self.lifecycle.reload();
        match result {
            Ok(o) => {
                log::info!(
                    "{}: key {:?} rotated automatically: version {} active, version {} deactivated",
                    call.function.name(),
                    key.label,
                    o.current.version,
                    version.version
                );
                if let Some(w) = &o.warning {
                    log::warn!("{w}");
                }
                self.lifecycle.rotation_done(version.id);
                self.record_rotation(call, key, version, &o)
            }
            Err(e) if e == LOST_RACE => {
                // The process that won records it.
                log::debug!("key {:?}: another process rotated it first", key.label);
                self.lifecycle.rotation_done(version.id);
                Ok(())
            }
            Err(e) => {
                log::warn!(
                    "{}: key {:?} is due for rotation but could not be rotated (retried in {} s): {e}",
                    call.function.name(),
                    key.label,
                    ROTATE_RETRY.as_secs()
                );
                let mut ev = LifecycleEvent::new("rotate", Some(&key.label))
                    .of_key(&version.cka_id, Some(version.version));
                ev.outcome = crate::audit::Outcome::Error;
                ev.detail = Some(format!("automatic: {e}"));
                self.record_lifecycle(call, ev)
            }
        }
    }

    /// The records of an automatic rotation, as `keywarden keys rotate` writes
    /// them: the new version active, the one it replaces deactivated.
    fn record_rotation(
        &self,
        call: &super::Call,
        key: &ManagedKey,
        version: &KeyVersion,
        o: &crate::lifecycle::RotateOutcome,
    ) -> Result<()> {
        let new = &o.current;
        let mut ev = LifecycleEvent::new("rotate", Some(&key.label))
            .of_key(&new.cka_id, Some(new.version))
            .states(None, new.state);
        ev.detail = Some(format!(
            "automatic ({}): replaces version {}: originator-usage period ended (when_due = \"rotate\")",
            call.function.name(),
            version.version
        ));
        self.record_lifecycle(call, ev)?;
        let old = o.previous.as_ref().unwrap_or(version);
        let mut ev = LifecycleEvent::new("deactivate", Some(&key.label))
            .of_key(&old.cka_id, Some(old.version))
            .states(Some(KeyState::Active), KeyState::Deactivated);
        ev.detail = Some(format!("automatic: replaced by version {}", new.version));
        self.record_lifecycle(call, ev)
    }
}

const LOST_RACE: &str = "lost race";

/// How long after a failed automatic rotation the next use tries again.
const ROTATE_RETRY: Duration = Duration::from_secs(60);
