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

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chain::{chain_id_of, Digest, HeadCheck, HeadInfo, Link, Tip, GENESIS};
use super::error::{AuditError, AuditResult};
use super::offhost::OffHost;
use super::record::Timestamp;
use super::seal::{Seal, Sealer};
use super::trail::{list_files, HEAD_FILE};
pub use super::verify_report::{Location, Problem, Report};
pub use super::verify_rules::Expect;
use super::verify_rules::{Fields, Writers};

#[derive(Deserialize)]
struct SealFields {
    kind: Option<String>,
    sealed_seq: Option<u64>,
    head: Option<String>,
    alg: Option<String>,
    key_id: Option<String>,
    sig: Option<String>,
}

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
    let (from, to, sealer) = (opts.from, opts.to, opts.sealer);
    let expect = opts.expect.clone();
    let strict = expect.as_ref().is_some_and(|e| e.sealed);
    let files: Vec<PathBuf> = list_files(dir)?
        .into_iter()
        .filter(|p| p.metadata().map(|m| m.len() > 0).unwrap_or(true))
        .collect();
    let mut report = Report::default();
    if files.is_empty() {
        report
            .notes
            .push(format!("no trail files in {}", dir.display()));
        return Ok(report);
    }
    let starts: Vec<Option<Timestamp>> = files.iter().map(|p| first_time(p)).collect();
    let begins_by = |t: Timestamp| starts.iter().rposition(|s| s.is_some_and(|s| s <= t));
    let first = from.and_then(begins_by).unwrap_or(0);
    let last = match to {
        Some(t) => begins_by(t).unwrap_or(0),
        None => files.len() - 1,
    };
    // The head is read before the files: a writer appending meanwhile only adds
    // records after the one it names.
    let head_bytes = crate::fsguard::read_nofollow(&dir.join(HEAD_FILE)).unwrap_or_default();
    let checked = HeadInfo::decode_with(&head_bytes, sealer);
    let mut late = None;
    match &checked {
        None if strict => {
            late = Some(Problem::HeadMissing(
                if head_bytes.is_empty() {
                    "is missing or empty"
                } else if HeadInfo::decode(&head_bytes).is_some() {
                    "does not hold under the seal key (rewritten without it)"
                } else {
                    "is damaged"
                }
                .to_owned(),
            ))
        }
        None => report.notes.push(format!("{HEAD_FILE} is missing, empty or damaged: removal of the last records cannot be detected")),
        Some((_, HeadCheck::Unkeyed | HeadCheck::KeyedUnchecked))
            if expect.as_ref().is_some_and(|e| e.keyed_head) =>
        {
            late = Some(Problem::HeadNotKeyed)
        }
        Some(_) => {}
    }
    let head = checked.as_ref().and_then(|(h, _)| h.tip);
    report.chain = checked.as_ref().and_then(|(h, _)| h.chain.clone());
    if let Some(what) = expect.as_ref().and_then(|e| e.missing_key.clone()) {
        late = Some(Problem::SealKeyMissing(what));
    } else if strict && sealer.is_none() {
        late.get_or_insert(Problem::SealKeyMissing(
            "sealing is configured but no key was given to check the seals (--seal-key, --seal-pub, or DIR/seal-key.pub)".into(),
        ));
    }
    let mut v = Verifier {
        report,
        prev: None,
        sealer,
        head,
        need_keys: expect.is_some(),
        writers: strict.then(|| Writers::new(expect.as_ref().and_then(|e| e.rule))),
        against: opts.against,
        matched: 0,
    };
    if first > 0 {
        let bytes = read(&files[first - 1])?;
        if let Some(line) = split_lines(&bytes).0.last() {
            v.prev = Link::parse(line).map(|l| {
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
        let archived = from.is_some() || expect.as_ref().is_some_and(|e| e.archived);
        if expect.is_some() && !archived {
            late.get_or_insert(Problem::FilesMissing(seq));
        } else {
            v.report.notes.push(format!(
                "the trail starts at seq {seq} (earlier files were archived or removed)"
            ));
        }
    }
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
        v.check_head();
        v.check_offhost_end();
        if let Some(w) = &v.writers {
            match w.finish() {
                Ok(notes) => v.report.notes.extend(notes),
                Err(p) => {
                    v.fail(p);
                }
            }
        }
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

struct Verifier<'a> {
    report: Report,
    /// The last good record and where it is (`None` when it precedes the range).
    prev: Option<(Tip, Option<Location>)>,
    sealer: Option<&'a dyn Sealer>,
    /// The chain's end according to the head file.
    head: Option<Tip>,
    /// Expectations were given: a seal no key checks is a problem.
    need_keys: bool,
    /// The per-process rules (sealing expected).
    writers: Option<Writers>,
    /// The off-host copy of the seals, and how many of them were found.
    against: Option<&'a OffHost>,
    matched: usize,
}

impl Verifier<'_> {
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
                let problem = if link.seq < expected || next_seq == Some(expected) {
                    Problem::Reordered(here, expected)
                } else {
                    Problem::Missing(here, expected)
                };
                return self.fail(problem);
            }
            if Digest::from_hex(&link.prev) != Some(prev_hash) {
                let hash = Digest::of_line(line);
                let successor_links = lines
                    .get(i + 1)
                    .and_then(|l| Link::parse(l))
                    .map(|l| Digest::from_hex(&l.prev) == Some(hash));
                let culprit = match (successor_links, &self.prev) {
                    (Some(false), _) | (_, None) | (_, Some((_, None))) => here,
                    (_, Some((_, Some(prev_at)))) => prev_at.clone(),
                };
                return self.fail(Problem::Altered(culprit));
            }
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

    fn fail(&mut self, p: Problem) -> bool {
        self.report.problem = Some(p);
        false
    }

    /// Checks a seal record; counts the records after the last verified seal.
    fn seal(
        &mut self,
        line: &[u8],
        here: &Location,
        prev_hash: Digest,
        seq: u64,
    ) -> Result<(), Problem> {
        let fields: Option<SealFields> = serde_json::from_slice(line).ok();
        let Some(s) = fields.filter(|f| f.kind.as_deref() == Some("seal")) else {
            self.report.unsealed_tail += 1;
            return Ok(());
        };
        let bad = |why: &str| Problem::BadSeal(here.clone(), why.to_owned());
        if s.head.as_deref().and_then(Digest::from_hex) != Some(prev_hash)
            || s.sealed_seq.map(|q| q + 1) != Some(seq)
        {
            return Err(bad("it does not name the record before it"));
        }
        let seal = Seal {
            alg: s.alg.unwrap_or_default(),
            key_id: s.key_id.unwrap_or_default(),
            sig: s
                .sig
                .as_deref()
                .and_then(super::chain::from_hex)
                .ok_or_else(|| bad("unreadable signature"))?,
        };
        match self.sealer.map(|k| k.verify(&prev_hash.0, &seal)) {
            Some(Ok(true)) => {
                self.report.seals_verified += 1;
                self.report.last_sealed_seq = s.sealed_seq;
                self.report.unsealed_tail = 0;
                Ok(())
            }
            Some(Err(e)) => Err(bad(&e.to_string())),
            // With keys given, a seal by none of them is what a rewriter who made
            // their own key would leave: report it, never count it as fine.
            Some(Ok(false)) => Err(bad(&format!(
                "made by a key that was not given (alg {}, key_id {}); give its key to check it",
                seal.alg, seal.key_id
            ))),
            None if self.need_keys => Err(Problem::SealKeyMissing(format!(
                "{here} is sealed by alg {}, key_id {}, and no key to check it was given",
                seal.alg, seal.key_id
            ))),
            None => {
                let note = format!(
                    "seals by alg {}, key_id {} were not checked (no key given)",
                    seal.alg, seal.key_id
                );
                if !self.report.notes.contains(&note) {
                    self.report.notes.push(note);
                }
                self.report.seals_unchecked += 1;
                self.report.unsealed_tail += 1;
                Ok(())
            }
        }
    }

    /// The checks beyond the chain: the chain id against the head, the writers'
    /// sealing rules, the off-host copy.
    fn extra(&mut self, line: &[u8], here: &Location) -> Result<(), Problem> {
        if here.seq == Some(0) {
            let first = chain_id_of(line);
            match &self.report.chain {
                Some(head) if *head != first => {
                    return Err(Problem::ChainMismatch {
                        head: head.clone(),
                        first,
                    })
                }
                Some(_) => {}
                None => self.report.chain = Some(first),
            }
        }
        if let Some(w) = &mut self.writers {
            let f: Fields = serde_json::from_slice(line).unwrap_or_default();
            w.record(&f, here)?;
        }
        if let (Some(copy), Some(seq)) = (self.against, here.seq) {
            if let Some(theirs) = copy.get(seq) {
                if theirs != line {
                    return Err(Problem::OffHost(format!(
                        "{here} differs from the seal {} holds for seq {seq}: the trail was rewritten",
                        copy.source
                    )));
                }
                self.matched += 1;
            }
        }
        Ok(())
    }

    /// After the last file: a seal of the off-host copy beyond the trail's end
    /// means records were removed from the end.
    fn check_offhost_end(&mut self) {
        let Some(copy) = self.against else { return };
        let last = self.prev.as_ref().map(|(t, _)| t.seq);
        if let Some(seq) = copy.first_after(last) {
            if self.report.problem.is_none() {
                self.fail(Problem::OffHost(format!(
                    "{} holds a seal at seq {seq}, after the trail's end ({}): records were removed",
                    copy.source,
                    last.map_or_else(|| "nothing".to_owned(), |s| format!("seq {s}"))
                )));
            }
        }
    }

    /// After the last file: the record the head file names must have been seen.
    fn check_head(&mut self) {
        let Some(head) = self.head else { return };
        let last_seq = self.prev.as_ref().map(|(t, _)| t.seq);
        if last_seq.is_none_or(|s| s < head.seq) && self.report.problem.is_none() {
            self.report.problem = Some(Problem::TailMissing {
                head_seq: head.seq,
                last_seq,
            });
        }
    }
}
