//! The usage writer thread: counters recorded on the hot path are written to the
//! store every [`FLUSH_EVERY`] (and at `C_Finalize`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::UsageAccumulator;

/// How often the usage counters are written to the store (and at `C_Finalize`).
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// The usage writer thread (its own store connection, so a flush waiting for
/// another process's write lock never holds up the hot path's reloads).
pub(super) struct Flusher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Flusher {
    /// Starts the thread; `None` (counters written at `C_Finalize` only) when its
    /// store connection or the thread cannot be had.
    pub(super) fn spawn(
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

    /// Wakes the thread for its last flush and waits for it.
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}
