//! The active policy of a running module, re-read when its file changes.
//!
//! [`PolicyHandle::current`] is on the hot path: it is one relaxed atomic load and
//! compare against a deadline, and an `ArcSwap` load. At most once per interval
//! (1 s by default) the call that finds the deadline passed — and only that one,
//! by compare-and-swap — `stat`s the file; only if device, inode, size, mtime or
//! ctime changed is it read and compiled. A broken edit keeps the old policy, is
//! logged once, and is kept as [`PolicyHandle::last_error`]: an edit never opens
//! anything up by failing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::clock::Clock;
use super::compile::Policy;
use crate::error::{Error, Result};

/// Default time between file checks.
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 1000;

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file is as it was.
    Unchanged,
    /// A new policy is active (its generation).
    Reloaded(u64),
    /// The file changed but is unusable; the old policy stays.
    Failed(String),
}

/// Called after every check that found the file changed (the audit trail records
/// reloads through it).
pub type ReloadObserver = Box<dyn Fn(&Path, &Reload) + Send + Sync>;

struct Observer(std::sync::OnceLock<ReloadObserver>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

/// The active policy and the file it comes from.
#[derive(Debug)]
pub struct PolicyHandle {
    path: PathBuf,
    active: ArcSwap<Policy>,
    clock: Arc<dyn Clock>,
    interval_ms: u64,
    /// Monotonic millis at which the next check is due.
    next_check: AtomicU64,
    /// The file version the active policy (or the last failed attempt) came from.
    seen: Mutex<Option<Stamp>>,
    last_error: Mutex<Option<String>>,
    observer: Observer,
}

impl PolicyHandle {
    /// Loads the policy file; an unusable file is an error (the module must not
    /// start without a policy).
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<PolicyHandle> {
        // Stamp before reading: an edit racing the read is then seen as a change
        // at the next check, never missed.
        let seen = stamp(path)
            .map_err(|e| Error::Config(format!("cannot read policy {}: {e}", path.display())))?;
        let policy = Policy::load(path, clock.clone())?;
        let first_check = clock
            .monotonic_millis()
            .saturating_add(DEFAULT_CHECK_INTERVAL_MS);
        Ok(PolicyHandle {
            path: path.to_owned(),
            active: ArcSwap::from_pointee(policy),
            clock,
            interval_ms: DEFAULT_CHECK_INTERVAL_MS,
            next_check: AtomicU64::new(first_check),
            seen: Mutex::new(Some(seen)),
            last_error: Mutex::new(None),
            observer: Observer(std::sync::OnceLock::new()),
        })
    }

    /// Calls `observer` after each check that found the file changed (with what
    /// the check did). Set once; a second observer is ignored.
    pub fn set_observer(&self, observer: ReloadObserver) {
        let _ = self.observer.0.set(observer);
    }

    /// Sets the time between checks (tests; 0 checks on every call).
    pub fn with_interval_ms(mut self, interval_ms: u64) -> PolicyHandle {
        self.interval_ms = interval_ms;
        self.next_check = AtomicU64::new(self.clock.monotonic_millis().saturating_add(interval_ms));
        self
    }

    /// The policy file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The active policy, after checking the file if a check is due.
    #[inline]
    pub fn current(&self) -> Arc<Policy> {
        self.maybe_check();
        self.active.load_full()
    }

    /// Like [`current`](Self::current) without touching the reference count: for a
    /// decision made and dropped within one call.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.maybe_check();
        self.active.load()
    }

    #[inline]
    fn maybe_check(&self) {
        let due = self.next_check.load(Ordering::Relaxed);
        let now = self.clock.monotonic_millis();
        if now >= due
            && self
                .next_check
                .compare_exchange(
                    due,
                    now.saturating_add(self.interval_ms),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.check_now();
        }
    }

    /// Checks the file now, whatever the interval.
    pub fn check_now(&self) -> Reload {
        let result = self.check_file();
        if result != Reload::Unchanged {
            if let Some(observe) = self.observer.0.get() {
                observe(&self.path, &result);
            }
        }
        result
    }

    fn check_file(&self) -> Reload {
        let mut seen = self.seen.lock();
        let current = stamp(&self.path).ok();
        if current == *seen {
            return Reload::Unchanged;
        }
        *seen = current;
        let result = match current {
            None => Err(Error::Config(format!(
                "policy {} is gone",
                self.path.display()
            ))),
            Some(_) => Policy::load(&self.path, self.clock.clone()),
        };
        match result {
            Ok(policy) => {
                let generation = policy.generation();
                self.active.store(Arc::new(policy));
                *self.last_error.lock() = None;
                log::info!("policy {} reloaded", self.path.display());
                Reload::Reloaded(generation)
            }
            Err(e) => {
                let msg = format!("{e}; keeping the previous policy");
                log::error!("{msg}");
                *self.last_error.lock() = Some(msg.clone());
                Reload::Failed(msg)
            }
        }
    }

    /// Why the last changed file could not be used, until a good one is loaded.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
}
