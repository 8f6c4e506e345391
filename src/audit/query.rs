//! Reading the trail back: filters for `audit tail`/`search`, and the export formats
//! (`jsonl`, `csv`, `cef`) plus the one-line `text` summary the CLI prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{AuditError, AuditResult};
use super::record::{Decision, RecordView, Timestamp};
use super::trail::list_files;

#[path = "query_formats.rs"]
mod formats;

pub use formats::{cef_line, header, text_line, write_record, Format};

/// Which records to show. Time range is `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Not before.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    /// Key label or `CKA_ID` (hex).
    pub key: Option<String>,
    /// OS user name, uid, or named identity.
    pub user: Option<String>,
    /// Only refusals.
    pub denied: bool,
    /// Only refusals and failures: operations the token answered with an error
    /// (`CKR_PIN_INCORRECT`, ...) and changes whose outcome was not success. A size
    /// query's `CKR_BUFFER_TOO_SMALL` is the §5.2 protocol, not a failure.
    pub failed: bool,
}

impl Filter {
    /// True when `r` passes every condition.
    pub fn matches(&self, r: &RecordView) -> bool {
        let time = r.time.as_deref().and_then(Timestamp::parse);
        let in_range = match (self.from, self.to, time) {
            (None, None, _) => true,
            (_, _, None) => false,
            (from, to, Some(t)) => from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u),
        };
        // A key's records: those that used it, and the one that created it.
        let key_ok = self.key.as_deref().is_none_or(|k| {
            let names = |label: &Option<String>, id: &Option<String>| {
                label.as_deref() == Some(k)
                    || id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(k))
            };
            names(&r.key_label, &r.key_id) || names(&r.new_key_label, &r.new_key_id)
        });
        let user_ok = self.user.as_deref().is_none_or(|u| {
            r.user.as_deref() == Some(u)
                || r.identity.as_deref() == Some(u)
                || r.uid.is_some_and(|id| id.to_string() == u)
        });
        let denied = r.decision == Some(Decision::Deny);
        in_range
            && key_ok
            && user_ok
            && (!self.denied || denied)
            && (!self.failed || denied || is_failure(r))
    }
}

/// An operation the token refused, or a change that did not succeed.
fn is_failure(r: &RecordView) -> bool {
    let rv_failed =
        r.rv.as_deref()
            .is_some_and(|rv| rv != "CKR_OK" && rv != "CKR_BUFFER_TOO_SMALL");
    let outcome_failed = r.outcome.as_deref() == Some("error");
    rv_failed || outcome_failed
}

/// Complete lines that are not records: readers skip them and say how many, and
/// `verify` names each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first one's file and 1-based line.
    pub first: Option<(PathBuf, usize)>,
}

impl Skipped {
    /// Counts one more at `file:line`.
    pub fn add(&mut self, file: &Path, line: usize) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((file.to_path_buf(), line));
        }
    }

    /// The warning a reader prints, or `None` when nothing was skipped.
    pub fn warning(&self) -> Option<String> {
        let (file, line) = self.first.as_ref()?;
        Some(format!(
            "{} line(s) of the trail are not records and were skipped, the first at {}:{line} \
             (keywarden audit verify names each)",
            self.count,
            file.display()
        ))
    }
}

/// A record found by [`read_records`].
#[derive(Debug, Clone)]
pub struct Found {
    /// Its file.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// The line parsed.
    pub view: RecordView,
}

/// Calls `each` for every record matching `filter`, in chain order, until it returns
/// false. Files whose successor starts more than a minute before `from` are skipped
/// unread (the minute covers clock differences between writing processes). A torn
/// last line (a record being written) is left for the next read; complete lines that
/// are not records are skipped and counted in the answer (`verify` reports them).
pub fn read_records(
    dir: &Path,
    filter: &Filter,
    mut each: impl FnMut(Found) -> bool,
) -> AuditResult<Skipped> {
    let mut skipped = Skipped::default();
    let files = list_files(dir)?;
    for (i, path) in files.iter().enumerate() {
        if let (Some(from), Some(next)) = (filter.from, files.get(i + 1)) {
            let next_start = first_time(next);
            if next_start.is_some_and(|t| t.0 + Duration::from_secs(60) < from.0) {
                continue;
            }
        }
        let bytes =
            crate::fsguard::read_nofollow(path).map_err(|e| AuditError::io(path.display(), &e))?;
        for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = line.strip_suffix(b"\n") else {
                break;
            };
            let Ok(view) = serde_json::from_slice::<RecordView>(line) else {
                skipped.add(path, n + 1);
                continue;
            };
            if filter.matches(&view) {
                let found = Found {
                    file: path.clone(),
                    line: n + 1,
                    text: String::from_utf8_lossy(line).into_owned(),
                    view,
                };
                if !each(found) {
                    return Ok(skipped);
                }
            }
        }
    }
    Ok(skipped)
}

fn first_time(path: &Path) -> Option<Timestamp> {
    use std::io::BufRead;
    let file = crate::fsguard::open_nofollow(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file).read_line(&mut line).ok()?;
    let v: RecordView = serde_json::from_str(&line).ok()?;
    Timestamp::parse(v.time.as_deref()?)
}

/// Writes every record matching `filter` in `format`; returns how many, and the
/// lines that were not records.
pub fn export(
    dir: &Path,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> AuditResult<(u64, Skipped)> {
    let io = |e: std::io::Error| AuditError::io("output", &e);
    header(out, format).map_err(io)?;
    let mut count = 0;
    let mut failed = None;
    let skipped = read_records(dir, filter, |found| {
        match write_record(out, format, &found) {
            Ok(()) => {
                count += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(io(e)),
        None => Ok((count, skipped)),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
