//! What `verify` expects of a trail that is meant to be sealed: the rules a
//! complete trail keeps, checked per writing process.
//!
//! Each process (host + pid) seals by itself: after `seal_every_records` of its
//! records, `seal_every_secs` after its first unsealed one, and at shutdown (after
//! its `module stop` record). Its counter is reset by its own seals only, so the
//! rules hold per process whatever the others do:
//! - at most `every_records` of its records (seals, gaps and repairs aside)
//!   between two of its seals;
//! - its records between two of its seals span at most `every_secs` (+ [`SLACK`]:
//!   the timer, the queue and a slow token);
//! - a `module stop` is followed by its seal (or another process's later seal,
//!   which covers everything before it).
//!
//! A process that still runs, or was killed before it sealed, leaves records after
//! its last seal that keep the first two rules: that is an *unsealed tail*,
//! reported but not a problem. A stretch that breaks them lies *between* seals (or
//! before a stop): seals were removed, or the writer failed to seal — a problem.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::record::Timestamp;
use super::verify::{Location, Problem};

/// Tolerance of the time rule.
pub const SLACK: Duration = Duration::from_secs(5);

/// What the verifier is told to expect (`keywarden audit verify` fills it from the
/// configuration and its options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Sealing is configured: the head, a key for every seal and the seals the
    /// rules call for must be there.
    pub sealed: bool,
    /// The head must carry a MAC under the (software) seal key.
    pub keyed_head: bool,
    /// `seal_every_records`, `seal_every_secs` from the configuration; `None`: each
    /// process's own seals state its rule (else the defaults, 1000 and 60).
    pub rule: Option<(u64, u64)>,
    /// The operator says the files before the first one were archived: a trail
    /// that does not start at seq 0 is then not a problem.
    pub archived: bool,
    /// A key the configuration calls for that could not be found (e.g. no
    /// `seal-key.pub` with `seal_token`): reported as missing.
    pub missing_key: Option<String>,
}

/// The fields of a line the rules need.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Fields {
    pub(super) kind: Option<String>,
    pub(super) what: Option<String>,
    pub(super) host: Option<String>,
    pub(super) pid: Option<u32>,
    pub(super) time: Option<String>,
    pub(super) every_records: Option<u64>,
    pub(super) every_secs: Option<u64>,
}

/// One process's records since its last seal.
#[derive(Debug)]
struct Stretch {
    count: u64,
    first: Option<(Timestamp, Location)>,
    stopped: Option<Location>,
    rule: Option<(u64, u64)>,
    /// Its last record's seq.
    last: Option<u64>,
}

/// The per-process bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Writers {
    configured: Option<(u64, u64)>,
    open: HashMap<(String, u32), Stretch>,
    /// The chain's last seal (by any process): it covers every record before it.
    last_seal: Option<u64>,
}

const DEFAULT_RULE: (u64, u64) = (1000, 60);

impl Writers {
    pub(super) fn new(configured: Option<(u64, u64)>) -> Writers {
        Writers {
            configured,
            open: HashMap::new(),
            last_seal: None,
        }
    }

    /// One record (`f`, at `here`); a seal ends its process's stretch.
    pub(super) fn record(&mut self, f: &Fields, here: &Location) -> Result<(), Problem> {
        let who = (f.host.clone().unwrap_or_default(), f.pid.unwrap_or(0));
        let configured = self.configured;
        let s = self.open.entry(who.clone()).or_insert(Stretch {
            count: 0,
            first: None,
            stopped: None,
            rule: None,
            last: None,
        });
        match f.kind.as_deref() {
            Some("seal") => {
                if let (Some(r), Some(t)) = (f.every_records, f.every_secs) {
                    s.rule = Some((r, t));
                }
                (s.count, s.first, s.stopped) = (0, None, None);
                self.last_seal = here.seq;
                return Ok(());
            }
            Some("gap" | "repair") => return Ok(()),
            _ => {}
        }
        let (every_records, every_secs) = configured.or(s.rule).unwrap_or(DEFAULT_RULE);
        let pid = who.1;
        if s.stopped.as_ref().is_some_and(|at| self.last_seal > at.seq) {
            // Its records were sealed by another process since: a new process
            // with the same pid, or one whose final seal failed.
            (s.count, s.first, s.stopped) = (0, None, None);
        }
        if let Some(at) = &s.stopped {
            return Err(Problem::SealMissing(
                at.clone(),
                format!("process {pid} wrote again after its stop without its final seal"),
            ));
        }
        s.count += 1;
        s.last = here.seq;
        if s.count > every_records {
            return Err(Problem::SealMissing(
                here.clone(),
                format!(
                    "process {pid} wrote {} records without a seal (seal_every_records = {every_records})",
                    s.count
                ),
            ));
        }
        let time = f.time.as_deref().and_then(Timestamp::parse);
        match (&s.first, time) {
            (None, Some(t)) => s.first = Some((t, here.clone())),
            (Some((t0, at0)), Some(t)) => {
                let span = t.0.duration_since(t0.0).unwrap_or_default();
                if span > Duration::from_secs(every_secs) + SLACK {
                    return Err(Problem::SealMissing(
                        here.clone(),
                        format!(
                            "process {pid} wrote records for {}s since {at0} without a seal \
                             (seal_every_secs = {every_secs})",
                            span.as_secs()
                        ),
                    ));
                }
            }
            _ => {}
        }
        if f.kind.as_deref() == Some("module") && f.what.as_deref() == Some("stop") {
            s.stopped = Some(here.clone());
        }
        Ok(())
    }

    /// After the last record: a stop without its seal is a problem; other open
    /// stretches after the chain's last seal are the unsealed tail (one note per
    /// process; records another process's later seal covers are not).
    pub(super) fn finish(&self) -> Result<Vec<String>, Problem> {
        let mut notes = Vec::new();
        let mut open: Vec<_> = self.open.iter().filter(|(_, s)| s.count > 0).collect();
        open.sort_by_key(|(_, s)| s.first.as_ref().map(|(_, at)| at.seq));
        for ((host, pid), s) in open {
            if s.last <= self.last_seal {
                continue;
            }
            if let Some(at) = &s.stopped {
                return Err(Problem::SealMissing(
                    at.clone(),
                    format!("process {pid} stopped without its final seal"),
                ));
            }
            let since = s
                .first
                .as_ref()
                .map_or_else(String::new, |(_, at)| format!(" from {at}"));
            notes.push(format!(
                "unsealed tail: process {pid} on {host} wrote {} records{since} after its last seal \
                 (still running, or stopped before it sealed)",
                s.count
            ));
        }
        Ok(notes)
    }
}
