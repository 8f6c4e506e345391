//! Usage counters on the hot path: summed in memory, written in batches.
//!
//! One store write per operation would put an fsync'ed transaction on every sign.
//! Instead the gateway records each operation here (a short critical section on a
//! map) and flushes the sums with [`UsageAccumulator::flush`] — on a timer, at
//! `C_Finalize`, or when the map grows — in one transaction. Increments are additive
//! in SQL, so flushes from many processes never lose each other's counts. What is
//! lost on a crash is at most the unflushed interval.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{Store, StoreResult, UnixTime, UsageDelta, VersionId};

/// Pending usage increments, per version.
#[derive(Debug, Default)]
pub struct UsageAccumulator {
    pending: Mutex<HashMap<VersionId, UsageDelta>>,
}

impl UsageAccumulator {
    /// An empty accumulator.
    pub fn new() -> UsageAccumulator {
        UsageAccumulator::default()
    }

    /// Counts one operation over `bytes` bytes at `at`.
    pub fn record(&self, version: VersionId, bytes: u64, at: UnixTime) {
        self.merge(UsageDelta {
            version,
            ops: 1,
            bytes,
            last_use_at: at,
        });
    }

    fn merge(&self, d: UsageDelta) {
        let mut pending = self.pending.lock();
        let e = pending.entry(d.version).or_insert(UsageDelta {
            version: d.version,
            ops: 0,
            bytes: 0,
            last_use_at: d.last_use_at,
        });
        e.ops = e.ops.saturating_add(d.ops);
        e.bytes = e.bytes.saturating_add(d.bytes);
        e.last_use_at = e.last_use_at.max(d.last_use_at);
    }

    /// Versions with pending counts.
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().is_empty()
    }

    /// Takes everything pending.
    pub fn drain(&self) -> Vec<UsageDelta> {
        let mut v: Vec<_> = self.pending.lock().drain().map(|(_, d)| d).collect();
        v.sort_by_key(|d| d.version);
        v
    }

    /// Writes everything pending in one transaction; on failure the counts are put
    /// back for the next flush. Returns how many versions were written.
    pub fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let batch = self.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        match store.add_usage(&batch) {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for d in batch {
                    self.merge(d);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_version_and_drains() {
        let acc = UsageAccumulator::new();
        for i in 0..1000 {
            acc.record(VersionId(1), 10, 100 + i);
        }
        acc.record(VersionId(2), 5, 50);
        assert_eq!(acc.len(), 2);
        let batch = acc.drain();
        assert_eq!(
            batch,
            vec![
                UsageDelta {
                    version: VersionId(1),
                    ops: 1000,
                    bytes: 10_000,
                    last_use_at: 1099
                },
                UsageDelta {
                    version: VersionId(2),
                    ops: 1,
                    bytes: 5,
                    last_use_at: 50
                },
            ]
        );
        assert!(acc.is_empty());
    }
}
