//! What `verify` reports: where in the trail ([`Location`]), the first thing found
//! wrong ([`Problem`]), and the whole [`Report`] as `keywarden audit verify`
//! prints it.

use std::fmt;
use std::path::PathBuf;

use super::trail::HEAD_FILE;

/// A place in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The trail file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The record's `seq`, when it could be read.
    pub seq: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file.display(), self.line)?;
        match self.seq {
            Some(s) => write!(f, " (seq {s})"),
            None => Ok(()),
        }
    }
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The line is not a record.
    Unparsable(Location),
    /// The record's bytes changed after it was written.
    Altered(Location),
    /// Records before this one were removed (`expected` is the first missing seq).
    Missing(Location, u64),
    /// This record is out of order (`expected` is the seq that belongs here).
    Reordered(Location, u64),
    /// A seal that does not sign its head.
    BadSeal(Location, String),
    /// The trail ends before the record the head file names: records were removed
    /// from the end (or lost to a power failure in `buffered` mode).
    TailMissing {
        /// Last seq the head file names.
        head_seq: u64,
        /// Last seq in the files.
        last_seq: Option<u64>,
    },
    /// The head file is missing, damaged, or (keyed) does not hold under the key.
    HeadMissing(String),
    /// The head is not keyed with the seal key although it should be.
    HeadNotKeyed,
    /// A seal key that verify needs was not given or cannot be found.
    SealKeyMissing(String),
    /// A seal the writer's rule calls for is not there.
    SealMissing(Location, String),
    /// The trail does not start at seq 0 and nobody said the start was archived.
    FilesMissing(u64),
    /// The head names another chain than the trail's first record.
    ChainMismatch {
        /// The head's chain id.
        head: String,
        /// The first record's.
        first: String,
    },
    /// The trail disagrees with the off-host copy of the seals.
    OffHost(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unparsable(at) => write!(f, "not a record: {at}"),
            Problem::Altered(at) => write!(f, "record altered: {at}"),
            Problem::Missing(at, e) => write!(f, "record(s) removed before {at}: seq {e} is missing"),
            Problem::Reordered(at, e) => write!(f, "records reordered at {at}: expected seq {e}"),
            Problem::BadSeal(at, why) => write!(f, "bad seal at {at}: {why}"),
            Problem::TailMissing { head_seq, last_seq } => write!(
                f,
                "records removed from the end: {HEAD_FILE} names seq {head_seq}, the trail ends at {}",
                last_seq.map_or_else(|| "nothing".to_owned(), |s| format!("seq {s}"))
            ),
            Problem::HeadMissing(why) => write!(f, "{HEAD_FILE} {why}: the end of the trail cannot be checked (records removed from the end would not show)"),
            Problem::HeadNotKeyed => write!(f, "{HEAD_FILE} is not keyed with the seal key: it may have been rewritten by someone without the key"),
            Problem::SealKeyMissing(what) => write!(f, "seal key missing: {what}"),
            Problem::SealMissing(at, why) => write!(f, "seal missing at {at}: {why} (seals were removed, or sealing failed)"),
            Problem::FilesMissing(seq) => write!(f, "files missing: the trail starts at seq {seq}; if the earlier files were archived, say so (--archived, or --from)"),
            Problem::ChainMismatch { head, first } => write!(f, "{HEAD_FILE} names chain {head} but the first record is of chain {first}"),
            Problem::OffHost(why) => write!(f, "the trail disagrees with the off-host copy: {why}"),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Files checked.
    pub files: usize,
    /// Records checked (up to the first problem).
    pub records: u64,
    /// First and last seq checked.
    pub first_seq: Option<u64>,
    /// Last seq checked.
    pub last_seq: Option<u64>,
    /// Seals whose signature verified.
    pub seals_verified: u64,
    /// Seals that could not be checked (no key, or another key).
    pub seals_unchecked: u64,
    /// The seq the last verified seal covers.
    pub last_sealed_seq: Option<u64>,
    /// Records after the last verified seal (protected by the chain only).
    pub unsealed_tail: u64,
    /// Where a torn last line starts, and its length.
    pub truncated_tail: Option<(Location, usize)>,
    /// The first problem; `None` means the chain is intact.
    pub problem: Option<Problem>,
    /// Remarks that are not problems.
    pub notes: Vec<String>,
    /// Limits of what was proven, printed as `WARNING:` lines.
    pub warnings: Vec<String>,
    /// The chain's id (from the head, else from its first record).
    pub chain: Option<String>,
    /// Seals of the off-host copy found in the trail, when one was given.
    pub offhost_matched: Option<usize>,
}

impl Report {
    /// True when no problem was found (a truncated tail is not a problem).
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!("seq {a}..={b}"),
            _ => "no records".to_owned(),
        };
        writeln!(
            f,
            "checked: {} files, {} records ({range})",
            self.files, self.records
        )?;
        write!(
            f,
            "seals: {} verified, {} not checked",
            self.seals_verified, self.seals_unchecked
        )?;
        match self.last_sealed_seq {
            Some(s) => writeln!(
                f,
                "; last verified seal covers seq {s}, {} records after it",
                self.unsealed_tail
            )?,
            None => writeln!(f)?,
        }
        if let Some(c) = &self.chain {
            writeln!(f, "chain: {c}")?;
        }
        if let Some(n) = self.offhost_matched {
            writeln!(f, "off-host copy: {n} seals match the trail")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for w in &self.warnings {
            writeln!(f, "WARNING: {w}")?;
        }
        if let Some((at, bytes)) = &self.truncated_tail {
            writeln!(f, "TRUNCATED TAIL: {at}: {bytes} bytes of an unfinished record (a writer stopped mid-write); every record before it is intact")?;
        }
        match &self.problem {
            None => write!(f, "OK: chain intact"),
            Some(p) => write!(f, "PROBLEM: {p}"),
        }
    }
}
