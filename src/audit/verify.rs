//! `verify`: checks the chain, the seals and the head, and points at the first bad
//! record.
//!
//! Every line must be a record whose `seq` is one more than the previous record's
//! and whose `prev` is the hash of the previous line. The kinds of damage, and how
//! each shows:
//! - a changed byte: the altered record's hash no longer matches its successor's
//!   `prev` (or its JSON no longer parses). The altered record is the one whose
//!   successor still links to *its* successor: when link k→k+1 breaks but k+1→k+2
//!   holds, k was changed; when both break, k+1 was.
//! - a removed record: `seq` jumps (the record after the gap is reported).
//! - a reordered pair: `seq` goes k+1, k (the first of the pair is reported).
//! - a truncated tail: the last file ends without a newline — a writer stopped
//!   mid-record (crash, kill -9). Reported as such, not as damage: every earlier
//!   record is intact. Whole records removed from the end show against the head file.
//!
//! A seal must sign the hash of the record just before it; with a [`Sealer`] that
//! owns the seal's key, its signature is checked.
//!
//! [`verify_with`] adds what a trail meant to be sealed must also show
//! ([`Expect`], `verify_rules.rs`): the head (keyed), a key for every seal, the
//! seals each writer's rule calls for, no missing first files unless archived —
//! and, given the off-host copy of the seals (`offhost.rs`), that each of them is
//! in the trail as the SIEM received it.
//!
//! This file walks the files and each record's link; the checks on a record
//! beyond its link, and those at the trail's end, are in `verify_checks.rs`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chain::{Digest, HeadCheck, HeadInfo, Link, Tip, GENESIS};
use super::error::{AuditError, AuditResult};
use super::offhost::OffHost;
use super::record::Timestamp;
use super::seal::Sealer;
use super::trail::{list_files, HEAD_FILE};
pub use super::verify_report::{Location, Problem, Report};
pub use super::verify_rules::Expect;
use super::verify_rules::Writers;

#[derive(Deserialize)]
struct TimeField {
    time: Option<String>,
}

fn read(path: &Path) -> AuditResult<Vec<u8>> {
    crate::fsguard::read_nofollow(path).map_err(|e| AuditError::io(path.display(), &e))
}

/// Complete lines and the torn fragment after them.
fn split_lines(bytes: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&[u8]> = bytes[..complete].split(|b| *b == b'\n').collect();
    lines.pop();
    (lines, &bytes[complete..])
}

fn first_time(path: &Path) -> Option<Timestamp> {
    let bytes = read(path).ok()?;
    let line = bytes.split(|b| *b == b'\n').next()?;
    let t: TimeField = serde_json::from_slice(line).ok()?;
    Timestamp::parse(t.time.as_deref()?)
}

fn name_seq(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.get(6..26)?.parse().ok()
}

/// Checks the files that hold records from `from` to `to` (all when `None`), with
/// `sealer` checking seals made with its key. Expects nothing more: see
/// [`verify_with`].
pub fn verify(
    dir: &Path,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    sealer: Option<&dyn Sealer>,
) -> AuditResult<Report> {
    verify_with(
        dir,
        &Options {
            from,
            to,
            sealer,
            expect: None,
            against: None,
        },
    )
}

/// What [`verify_with`] checks.
#[derive(Default)]
pub struct Options<'a> {
    /// Start of the period (files from the one holding it).
    pub from: Option<Timestamp>,
    /// End of the period.
    pub to: Option<Timestamp>,
    /// The keys that check seals (and a keyed head).
    pub sealer: Option<&'a dyn Sealer>,
    /// What the trail must show; `None`: only what is there is checked.
    pub expect: Option<Expect>,
    /// The off-host copy of the seals.
    pub against: Option<&'a OffHost>,
}

/// [`verify`], and what `opts.expect` and `opts.against` call for.
pub fn verify_with(dir: &Path, opts: &Options<'_>) -> AuditResult<Report> {
    let expect = opts.expect.as_ref();
    let strict = expect.is_some_and(|e| e.sealed);
    let files = trail_files(dir)?;
    let mut report = Report::default();
    if files.is_empty() {
        report
            .notes
            .push(format!("no trail files in {}", dir.display()));
        return Ok(report);
    }
    let (first, last) = file_range(&files, opts.from, opts.to);
    // The head is read before the files: a writer appending meanwhile only adds
    // records after the one it names.
    let head_bytes = crate::fsguard::read_nofollow(&dir.join(HEAD_FILE)).unwrap_or_default();
    let checked = HeadInfo::decode_with(&head_bytes, opts.sealer);
    let mut late = head_problem(
        &head_bytes,
        checked.as_ref().map(|(_, c)| *c),
        expect,
        strict,
        &mut report,
    );
    let head = checked.as_ref().and_then(|(h, _)| h.tip);
    report.chain = checked.as_ref().and_then(|(h, _)| h.chain.clone());
    if let Some(what) = expect.and_then(|e| e.missing_key.clone()) {
        late = Some(Problem::SealKeyMissing(what));
    } else if strict && opts.sealer.is_none() {
        late.get_or_insert(Problem::SealKeyMissing(
            "sealing is configured but no key was given to check the seals (--seal-key, --seal-pub, or DIR/seal-key.pub)".into(),
        ));
    }
    let mut v = Verifier {
        report,
        prev: None,
        sealer: opts.sealer,
        head,
        need_keys: expect.is_some(),
        writers: strict.then(|| Writers::new(expect.and_then(|e| e.rule))),
        against: opts.against,
        matched: 0,
    };
    v.start(&files, first, opts, &mut late)?;
    for (i, path) in files.iter().enumerate().take(last + 1).skip(first) {
        let bytes = read(path)?;
        let expected_first = if v.prev.is_none() {
            name_seq(path)
        } else {
            None
        };
        v.report.files += 1;
        if !v.file(path, &bytes, i == files.len() - 1, expected_first) {
            break;
        }
    }
    if last == files.len() - 1 && v.report.problem.is_none() {
        v.check_end();
    }
    if let Some(copy) = opts.against {
        v.report.offhost_matched = Some(v.matched);
        if v.matched == 0 && v.report.problem.is_none() {
            v.fail(Problem::OffHost(format!(
                "none of the seals in {} is in the range checked",
                copy.source
            )));
        }
    }
    // A key the configuration names but that is missing explains any seal that
    // could not be checked: name it rather than the first such seal.
    let named_key = matches!(late, Some(Problem::SealKeyMissing(_)))
        && matches!(v.report.problem, Some(Problem::SealKeyMissing(_)));
    if v.report.problem.is_none() || named_key {
        v.report.problem = late;
    }
    Ok(v.report)
}

/// The trail's files in order, empty ones left out.
fn trail_files(dir: &Path) -> AuditResult<Vec<PathBuf>> {
    Ok(list_files(dir)?
        .into_iter()
        .filter(|p| p.metadata().map(|m| m.len() > 0).unwrap_or(true))
        .collect())
}

/// Indices of the first and last file holding records of the period.
fn file_range(files: &[PathBuf], from: Option<Timestamp>, to: Option<Timestamp>) -> (usize, usize) {
    let starts: Vec<Option<Timestamp>> = files.iter().map(|p| first_time(p)).collect();
    let begins_by = |t: Timestamp| starts.iter().rposition(|s| s.is_some_and(|s| s <= t));
    let first = from.and_then(begins_by).unwrap_or(0);
    let last = match to {
        Some(t) => begins_by(t).unwrap_or(0),
        None => files.len() - 1,
    };
    (first, last)
}

/// What the head file shows against the expectations: a problem reported when the
/// records show none, or a note when nothing is expected of a missing head.
fn head_problem(
    head_bytes: &[u8],
    check: Option<HeadCheck>,
    expect: Option<&Expect>,
    strict: bool,
    report: &mut Report,
) -> Option<Problem> {
    match check {
        None if strict => Some(Problem::HeadMissing(
            if head_bytes.is_empty() {
                "is missing or empty"
            } else if HeadInfo::decode(head_bytes).is_some() {
                "does not hold under the seal key (rewritten without it)"
            } else {
                "is damaged"
            }
            .to_owned(),
        )),
        None => {
            report.notes.push(format!("{HEAD_FILE} is missing, empty or damaged: removal of the last records cannot be detected"));
            None
        }
        Some(HeadCheck::Unkeyed | HeadCheck::KeyedUnchecked)
            if expect.is_some_and(|e| e.keyed_head) =>
        {
            Some(Problem::HeadNotKeyed)
        }
        Some(_) => None,
    }
}

pub(super) struct Verifier<'a> {
    pub(super) report: Report,
    /// The last good record and where it is (`None` when it precedes the range).
    pub(super) prev: Option<(Tip, Option<Location>)>,
    pub(super) sealer: Option<&'a dyn Sealer>,
    /// The chain's end according to the head file.
    pub(super) head: Option<Tip>,
    /// Expectations were given: a seal no key checks is a problem.
    pub(super) need_keys: bool,
    /// The per-process rules (sealing expected).
    pub(super) writers: Option<Writers>,
    /// The off-host copy of the seals, and how many of them were found.
    pub(super) against: Option<&'a OffHost>,
    pub(super) matched: usize,
}

impl Verifier<'_> {
    /// Links the range to the record before it, or notes (or, when files are
    /// expected, defers a problem about) a trail whose first files are gone.
    fn start(
        &mut self,
        files: &[PathBuf],
        first: usize,
        opts: &Options<'_>,
        late: &mut Option<Problem>,
    ) -> AuditResult<()> {
        let expect = opts.expect.as_ref();
        if first > 0 {
            let bytes = read(&files[first - 1])?;
            if let Some(line) = split_lines(&bytes).0.last() {
                self.prev = Link::parse(line).map(|l| {
                    (
                        Tip {
                            seq: l.seq,
                            hash: Digest::of_line(line),
                        },
                        None,
                    )
                });
            }
        } else if name_seq(&files[0]).unwrap_or(0) > 0 {
            let seq = name_seq(&files[0]).unwrap_or(0);
            let archived = opts.from.is_some() || expect.is_some_and(|e| e.archived);
            if expect.is_some() && !archived {
                late.get_or_insert(Problem::FilesMissing(seq));
            } else {
                self.report.notes.push(format!(
                    "the trail starts at seq {seq} (earlier files were archived or removed)"
                ));
            }
        }
        Ok(())
    }

    /// At the trail's end: the head, the off-host copy's last seal, each writer's rule.
    fn check_end(&mut self) {
        self.check_head();
        self.check_offhost_end();
        if let Some(w) = &self.writers {
            match w.finish() {
                Ok(notes) => self.report.notes.extend(notes),
                Err(p) => {
                    self.fail(p);
                }
            }
        }
    }

    /// Checks one file; false when a problem ends the check.
    fn file(
        &mut self,
        path: &Path,
        bytes: &[u8],
        is_last_file: bool,
        expected_first: Option<u64>,
    ) -> bool {
        let (lines, torn) = split_lines(bytes);
        let at = |i: usize, seq: Option<u64>| Location {
            file: path.to_owned(),
            line: i + 1,
            seq,
        };
        for (i, line) in lines.iter().enumerate() {
            let Some(link) = Link::parse(line) else {
                return self.fail(Problem::Unparsable(at(i, None)));
            };
            let here = at(i, Some(link.seq));
            let (expected, prev_hash) = match self.link(&lines, i, &link, &here, expected_first) {
                Ok(v) => v,
                Err(p) => return self.fail(p),
            };
            let tip = Tip {
                seq: link.seq,
                hash: Digest::of_line(line),
            };
            if self
                .head
                .is_some_and(|h| h.seq == tip.seq && h.hash != tip.hash)
            {
                // Only the head file links to the last record; for earlier ones the
                // successor's check above has already spoken.
                return self.fail(Problem::Altered(here));
            }
            if let Err(p) = self.seal(line, &here, prev_hash, expected) {
                return self.fail(p);
            }
            if let Err(p) = self.extra(line, &here) {
                return self.fail(p);
            }
            self.prev = Some((tip, Some(here)));
            self.report.records += 1;
            self.report.first_seq.get_or_insert(link.seq);
            self.report.last_seq = Some(link.seq);
        }
        if !torn.is_empty() {
            let spot = at(lines.len(), None);
            if !is_last_file {
                return self.fail(Problem::Unparsable(spot));
            }
            self.report.truncated_tail = Some((spot, torn.len()));
        }
        true
    }

    /// Checks line `i`'s `seq` and `prev` against the record before it; gives the
    /// expected `seq` and the previous line's hash.
    fn link(
        &self,
        lines: &[&[u8]],
        i: usize,
        link: &Link,
        here: &Location,
        expected_first: Option<u64>,
    ) -> Result<(u64, Digest), Problem> {
        let (expected, prev_hash) = match &self.prev {
            Some((tip, _)) => (tip.seq + 1, tip.hash),
            None => (
                expected_first.unwrap_or(link.seq),
                if expected_first == Some(0) {
                    GENESIS
                } else {
                    Digest::from_hex(&link.prev).unwrap_or(GENESIS)
                },
            ),
        };
        if link.seq != expected {
            let next_seq = lines.get(i + 1).and_then(|l| Link::parse(l)).map(|l| l.seq);
            return Err(if link.seq < expected || next_seq == Some(expected) {
                Problem::Reordered(here.clone(), expected)
            } else {
                Problem::Missing(here.clone(), expected)
            });
        }
        if Digest::from_hex(&link.prev) != Some(prev_hash) {
            let hash = Digest::of_line(lines[i]);
            let successor_links = lines
                .get(i + 1)
                .and_then(|l| Link::parse(l))
                .map(|l| Digest::from_hex(&l.prev) == Some(hash));
            let culprit = match (successor_links, &self.prev) {
                (Some(false), _) | (_, None) | (_, Some((_, None))) => here.clone(),
                (_, Some((_, Some(prev_at)))) => prev_at.clone(),
            };
            return Err(Problem::Altered(culprit));
        }
        Ok((expected, prev_hash))
    }

    pub(super) fn fail(&mut self, p: Problem) -> bool {
        self.report.problem = Some(p);
        false
    }
}
