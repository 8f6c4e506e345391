//! Change propagation between processes: the stamp file and its watcher.
//!
//! Every commit that moves `change_seq` is followed by a rewrite of
//! `<store.dir>/keywarden.changes` (new content in a fresh file, renamed over the old
//! one: readers see a new inode and new times). A process polls the file's metadata
//! with [`ChangeWatcher::check`], which costs one monotonic clock read and one atomic
//! load per call and a `stat` at most once per poll interval, by one thread at a time.
//! When it answers `true` the caller reads [`super::Store::change_seq`] (one integer)
//! and reloads its cache if the number moved.
//!
//! The stamp is a hint, the counter is the authority: the watcher also answers `true`
//! once per resync interval even when the file did not change, which bounds how late a
//! change is seen if a writer died between its commit and the stamp (or the stamp
//! could not be written). With the defaults (poll 200 ms, resync 1 s) a change is seen
//! within about 0.2 s, and within about 1 s in that rare case (the bound is 1 s).

use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often [`ChangeWatcher::check`] looks at the stamp by default.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);
/// How often it asks for a `change_seq` read regardless, by default.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(1);

/// Rewrites the stamp with `seq` (a fresh file renamed over it, created and
/// renamed relative to the checked directory, never through a link). Failure is
/// logged, not returned: the change is already committed, and watchers' resync
/// still picks it up.
pub(crate) fn publish(stamp: &Path, seq: u64, sharing: crate::fsguard::Sharing) {
    let (Some(dir), Some(name)) = (stamp.parent(), stamp.file_name().and_then(|n| n.to_str()))
    else {
        return;
    };
    let result = crate::fsguard::GuardedDir::open(dir, sharing)
        .and_then(|d| d.replace(name, format!("{seq}\n").as_bytes()));
    if let Err(e) = result {
        log::warn!(
            "cannot update the change stamp {}: {e}; other processes will see the change at their next resync",
            stamp.display()
        );
    }
}

/// What identifies one version of the stamp file: any rewrite changes it.
fn signature(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match std::fs::metadata(path) {
        Ok(m) => (
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
            .hash(&mut h),
        // Missing or unreadable: a fixed value, so a lasting error is one change, and
        // resync keeps the caller asking the store (which reports the real problem).
        Err(_) => 0u8.hash(&mut h),
    }
    h.finish()
}

/// Tells a process, cheaply and from any thread, when to re-read the store's
/// `change_seq`. Lock-free; safe to share (`&self` everywhere).
#[derive(Debug)]
pub struct ChangeWatcher {
    path: PathBuf,
    /// A second file watched the same way (the revocation side file).
    also: Option<PathBuf>,
    poll_ns: u64,
    resync_ns: u64,
    /// `coarse_clock::monotonic_nanos` when it was made.
    origin: u64,
    next_poll: AtomicU64,
    last_signal: AtomicU64,
    signature: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ChangeWatcher {
    /// Watches `stamp` (from [`super::Store::change_stamp`]). The file as it is now is
    /// the baseline: load the cache after creating the watcher, not before.
    pub fn new(stamp: PathBuf, poll: Duration, resync: Duration) -> ChangeWatcher {
        let signature = signature(&stamp);
        ChangeWatcher {
            path: stamp,
            also: None,
            poll_ns: nanos(poll),
            resync_ns: nanos(resync),
            origin: crate::coarse_clock::monotonic_nanos(),
            next_poll: AtomicU64::new(nanos(poll)),
            last_signal: AtomicU64::new(0),
            signature: AtomicU64::new(signature),
        }
    }

    /// Watches `path` too (its changes signal like the stamp's).
    pub fn also_watching(mut self, path: PathBuf) -> ChangeWatcher {
        self.also = Some(path);
        self.signature.store(self.current(), Ordering::Release);
        self
    }

    fn current(&self) -> u64 {
        let sig = signature(&self.path);
        match &self.also {
            Some(p) => sig ^ signature(p).rotate_left(1),
            None => sig,
        }
    }

    /// `true` when the caller should read `change_seq` now (the stamp changed, or a
    /// resync is due). At most one thread gets `true` per poll; the others carry on
    /// with the cache they have.
    pub fn check(&self) -> bool {
        let now = crate::coarse_clock::monotonic_nanos().saturating_sub(self.origin);
        let due = self.next_poll.load(Ordering::Acquire);
        if now < due {
            return false;
        }
        if self
            .next_poll
            .compare_exchange(
                due,
                now.saturating_add(self.poll_ns),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false; // another thread is polling
        }
        let sig = self.current();
        let changed = self.signature.swap(sig, Ordering::AcqRel) != sig;
        let quiet_for = now.saturating_sub(self.last_signal.load(Ordering::Acquire));
        if changed || quiet_for >= self.resync_ns {
            self.last_signal.store(now, Ordering::Release);
            return true;
        }
        false
    }

    /// Makes the next poll answer `true` (call it when a reload after `true` failed,
    /// so the signal is not lost).
    pub fn force(&self) {
        self.signature.store(0, Ordering::Release);
        self.next_poll.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_for(w: &ChangeWatcher, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if w.check() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn a_publish_is_seen_within_the_poll_interval_and_silence_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join("keywarden.changes");
        publish(&stamp, 1, Default::default());
        let w = ChangeWatcher::new(
            stamp.clone(),
            Duration::from_millis(50),
            Duration::from_secs(60),
        );
        // Nothing changed: many checks, no signal.
        assert_eq!(wait_for(&w, Duration::from_millis(300)), None);
        publish(&stamp, 2, Default::default());
        let seen = wait_for(&w, Duration::from_secs(2)).expect("change seen");
        assert!(seen < Duration::from_millis(200), "{seen:?}");
        assert_eq!(std::fs::read_to_string(&stamp).unwrap(), "2\n");
        // The same content rewritten is still a change (new inode, new times).
        publish(&stamp, 2, Default::default());
        assert!(wait_for(&w, Duration::from_secs(2)).is_some());
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn resync_signals_without_a_change_and_force_signals_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join("keywarden.changes");
        publish(&stamp, 1, Default::default());
        let w = ChangeWatcher::new(stamp, Duration::from_millis(10), Duration::from_millis(150));
        let seen = wait_for(&w, Duration::from_secs(2)).expect("resync");
        assert!(seen >= Duration::from_millis(100), "{seen:?}");
        w.force();
        assert!(w.check());
    }

    #[test]
    fn only_one_thread_gets_the_signal() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join("keywarden.changes");
        publish(&stamp, 1, Default::default());
        let w = ChangeWatcher::new(
            stamp.clone(),
            Duration::from_millis(20),
            Duration::from_secs(60),
        );
        publish(&stamp, 2, Default::default());
        std::thread::sleep(Duration::from_millis(40));
        let hits = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        if w.check() {
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 1);
    }
}
