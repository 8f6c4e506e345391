//! `keywarden audit tail [-f]`: the last records, then new ones as they are written,
//! across file rotations, until SIGINT/SIGTERM.
//!
//! Following polls the current file's length every [`super::audit::POLL`] (sleeping
//! in between, never spinning) and moves to the next file once a newer one exists
//! and the current one has been read to its end. Only complete lines are printed: a
//! record being written is picked up at the next poll.

use std::collections::VecDeque;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use crate::audit::{self, Filter, Format, Found, RecordView};
use crate::error::{Error, Result};

use super::audit::{stop_flag, stopped, POLL};

pub(super) fn tail(
    dir: &Path,
    filter: &Filter,
    last: usize,
    follow: bool,
    format: Format,
) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Install the handler before reading, so an early Ctrl-C is not lost.
    let stop = if follow { Some(stop_flag()?) } else { None };
    // Where following starts is fixed before the last records are read, so a record
    // written meanwhile is printed once: by the follow loop, not as a recent one.
    let files = audit::list_files(dir).map_err(Error::from)?;
    let cursor = files.last().map_or_else(
        || Cursor::at_start(PathBuf::new()),
        |p| Cursor::at_end_of(p),
    );
    let (recent, skipped) = recent_records(dir, filter, last, &cursor)?;
    // Lines that are not records are reported now, and again when following ends.
    let warned = super::audit::skipped_exit(&skipped);
    if print_all(&mut out, format, &recent).is_err() {
        return Ok(warned);
    }
    let Some(stop) = stop else { return Ok(warned) };
    let skipped = follow_from(dir, filter, format, &mut out, cursor, &stop)?;
    Ok(if skipped.count == 0 {
        warned
    } else {
        super::audit::skipped_exit(&skipped)
    })
}

/// The last `last` records `filter` selects before `cursor` (all of them are
/// read, so every line that is no record is counted), and those skipped lines.
fn recent_records(
    dir: &Path,
    filter: &Filter,
    last: usize,
    cursor: &Cursor,
) -> Result<(VecDeque<Found>, audit::Skipped)> {
    let mut recent = VecDeque::with_capacity(last.min(10_000));
    let skipped = audit::read_records(dir, filter, |found| {
        let before_cursor =
            found.file < cursor.path || (found.file == cursor.path && found.line <= cursor.line);
        if last > 0 && before_cursor {
            if recent.len() == last {
                recent.pop_front();
            }
            recent.push_back(found);
        }
        before_cursor || cursor.path.as_os_str().is_empty()
    })
    .map_err(Error::from)?;
    Ok((recent, skipped))
}

/// The header and `records`, flushed; an error once the reader has gone.
fn print_all(
    out: &mut impl Write,
    format: Format,
    records: &VecDeque<Found>,
) -> std::io::Result<()> {
    audit::header(out, format)?;
    for found in records {
        audit::write_record(out, format, found)?;
    }
    out.flush()
}

/// Prints the records `filter` selects as they are written from `cursor` on,
/// across file rotations, until `stop` is set or the reader has gone; returns the
/// lines that were no records.
fn follow_from(
    dir: &Path,
    filter: &Filter,
    format: Format,
    out: &mut impl Write,
    mut cursor: Cursor,
    stop: &AtomicBool,
) -> Result<audit::Skipped> {
    let mut skipped = audit::Skipped::default();
    while !stopped(stop) {
        let mut progressed = cursor.read_new(&mut skipped, |found| {
            filter
                .matches(&found.view)
                .then(|| audit::write_record(out, format, &found))
        })?;
        if out.flush().is_err() {
            return Ok(skipped);
        }
        if !progressed {
            // Nothing new here: move on if a newer file has started.
            let files = audit::list_files(dir).map_err(Error::from)?;
            if let Some(next) = files.iter().find(|p| **p > cursor.path) {
                cursor = Cursor::at_start(next.clone());
                progressed = true;
            }
        }
        if !progressed {
            std::thread::sleep(POLL);
        }
    }
    Ok(skipped)
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The length of `p` up to its last complete line, and how many lines that is.
fn complete_prefix(p: &Path) -> (u64, usize) {
    let bytes = crate::fsguard::read_nofollow(p).unwrap_or_default();
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    (
        end as u64,
        bytes[..end].iter().filter(|c| **c == b'\n').count(),
    )
}

struct Cursor {
    path: PathBuf,
    offset: u64,
    line: usize,
    partial: Vec<u8>,
}

impl Cursor {
    /// At the start of `path` (none yet when it is empty).
    fn at_start(path: PathBuf) -> Cursor {
        Cursor {
            path,
            offset: 0,
            line: 0,
            partial: Vec::new(),
        }
    }

    /// After the last complete line of `path`.
    fn at_end_of(path: &Path) -> Cursor {
        let (offset, line) = complete_prefix(path);
        Cursor {
            path: path.to_owned(),
            offset,
            line,
            partial: Vec::new(),
        }
    }

    /// Emits the complete lines written since the last call; true if any bytes came.
    fn read_new(
        &mut self,
        skipped: &mut audit::Skipped,
        mut emit: impl FnMut(Found) -> Option<std::io::Result<()>>,
    ) -> Result<bool> {
        if self.path.as_os_str().is_empty() || len(&self.path) <= self.offset {
            return Ok(false);
        }
        let io = |e: std::io::Error| Error::from(audit::AuditError::io(self.path.display(), &e));
        let mut file = crate::fsguard::open_nofollow(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh).map_err(io)?;
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let complete = self
            .partial
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let ready: Vec<u8> = self.partial.drain(..complete).collect();
        for line in ready.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.line += 1;
            let Ok(view) = serde_json::from_slice::<RecordView>(line) else {
                if skipped.count == 0 {
                    eprintln!(
                        "keywarden: warning: {}:{} is not a record (skipped)",
                        self.path.display(),
                        self.line
                    );
                }
                skipped.add(&self.path, self.line);
                continue;
            };
            let found = Found {
                file: self.path.clone(),
                line: self.line,
                text: String::from_utf8_lossy(line).into_owned(),
                view,
            };
            if let Some(Err(_)) = emit(found) {
                break;
            }
        }
        Ok(!fresh.is_empty())
    }
}
