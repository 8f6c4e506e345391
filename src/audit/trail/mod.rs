//! The trail on disk and the one locked append that every process uses.
//!
//! Files: `DIR/audit-<first seq, 20 digits>-<YYYYMMDD UTC>.jsonl`, e.g.
//! `audit-00000000000000001000-20250131.jsonl`. Names sort in chain order (the seq
//! comes first), so `ls` order is reading order; the date is for people and log
//! shippers. A new file starts when the current one would pass `max_file_bytes`, and
//! at the first append of a new UTC day. The chain continues across files: the first
//! record of a file links to the last record of the one before.
//!
//! `DIR/audit.head` is both the head hint (see `chain.rs`) and the lock: an exclusive
//! `flock` on it serialises appends across processes, around
//! "read head → (repair) → write lines → fsync (`durable`) → rewrite head".
//! A write that fails part-way is cut back to the previous length under the lock, so
//! a full disk never leaves half a record, and a writer killed mid-write leaves a
//! torn last line that the next writer cuts off (it was never acknowledged) and
//! reports in a `repair` record.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{FlockOperation, OFlags};

use std::sync::Arc;

use super::chain::{chain_id_of, push_line, HeadInfo, Link, Tip, HEAD_SIZE};
use super::error::{AuditError, AuditResult};
use super::record::{render_tail, Event, RepairEvent, SealEvent, Timestamp};
use super::seal::Sealer;
use crate::fsguard::{FileError, GuardedDir, How, Kind};

mod recover;

/// The head-and-lock file's name.
pub const HEAD_FILE: &str = "audit.head";

/// The name of a trail file whose first record is `first_seq`, started on `date`
/// (`YYYYMMDD`).
pub fn file_name(first_seq: u64, date: &str) -> String {
    format!("audit-{first_seq:020}-{date}.jsonl")
}

/// True for names [`file_name`] makes.
pub fn is_trail_file(name: &str) -> bool {
    name.len() == 41 && name.starts_with("audit-") && name.ends_with(".jsonl")
}

/// The UTC date of `t` as `YYYYMMDD`.
pub fn utc_date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .take(10)
        .filter(|c| *c != '-')
        .collect()
}

fn date_of(name: &str) -> Option<&str> {
    name.get(27..35)
}

/// The trail files of `dir`, in chain order.
pub fn list_files(dir: &Path) -> AuditResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| AuditError::io(dir.display(), &e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_trail_file(n))
        .collect();
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// How the trail is written.
#[derive(Debug, Clone)]
pub struct TrailOptions {
    /// The audit directory.
    pub dir: PathBuf,
    /// Start a new file before one would pass this size.
    pub max_file_bytes: u64,
    /// `fdatasync` every append before it returns (`required` mode).
    pub durable: bool,
    /// Who shares the directory besides its owner (new files' modes, checks).
    pub sharing: crate::fsguard::Sharing,
    /// The sealing rule (`seal_every_records`, `seal_every_secs`), stated in each
    /// seal record so the chain itself says how often it must be sealed.
    pub seal_rule: (u64, u64),
}

struct Current {
    name: String,
    file: File,
    len: u64,
}

/// The result of one append.
#[derive(Debug)]
pub struct Appended {
    /// The lines written, newline-terminated (for forwarding).
    pub lines: Vec<u8>,
    /// How many lines `lines` holds (from the chain's sequence numbers: scanning
    /// `lines` for newlines was a sixth of the writer's time).
    pub count: u64,
    /// The sealer's error, if a seal was asked for and failed (the records are
    /// written all the same).
    pub seal_error: Option<AuditError>,
}

/// The rendered tails of one batch (see `record::render_tail`), back to back in
/// one buffer the writer reuses from batch to batch.
#[derive(Debug, Default)]
pub struct Tails {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Tails {
    /// Empties it, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Adds one tail, written by `render` at the end of the buffer.
    pub fn push_with(&mut self, render: impl FnOnce(&mut Vec<u8>)) {
        render(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    /// How many tails.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Their total length.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Each tail, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.buf[a..b])
    }
}

/// Largest append buffer kept between appends.
const KEEP_OUT: usize = 16 << 20;

/// One process's handle on the trail.
pub struct Trail {
    opts: TrailOptions,
    /// The directory, opened without following links: every file is opened
    /// relative to it with `O_NOFOLLOW` and checked (`fsguard`).
    dir: GuardedDir,
    head: File,
    cur: Option<Current>,
    tip: Option<Tip>,
    last_head: Vec<u8>,
    /// Keys the head file's check (`HeadInfo::encode`); the writer's sealer.
    key: Option<Arc<dyn Sealer>>,
    /// The chain's id, once known (from the head, or the first line).
    chain: Option<String>,
    /// The first file was read for a head that did not name the chain.
    chain_sought: bool,
    process_fields: String,
    /// The lines of the last append, given back by [`Trail::recycle`]: a batch's
    /// buffer is reused rather than mapped, faulted in and unmapped every pass
    /// (a large `malloc` is an `mmap`; its `munmap` interrupts the process's other
    /// threads to flush their TLBs).
    out: Vec<u8>,
}

/// An unsafe file is a configuration problem (`CKR_GENERAL_ERROR` at
/// `C_Initialize`); the operating system's refusals stay I/O errors.
fn refused(e: FileError) -> AuditError {
    match e {
        FileError::Unsafe { .. } => AuditError::Config(e.to_string()),
        FileError::Io { path, errno, .. } if errno != 0 => {
            AuditError::io(path.display(), &std::io::Error::from_raw_os_error(errno))
        }
        e => AuditError::Io(e.to_string()),
    }
}

/// Opens (creating) a trail file of `dir` for appending; a link, a foreign owner
/// or a file others can write is refused.
fn open_append(dir: &GuardedDir, name: &str) -> AuditResult<File> {
    dir.open_file(name, How::Append, Kind::Shared)
        .map_err(refused)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_all_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads `file` from `from` to its end.
fn read_from(file: &File, from: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let size = usize::try_from(len.saturating_sub(from)).unwrap_or(usize::MAX);
    let mut buf = vec![0; size];
    let n = read_all_at(file, &mut buf, from)?;
    buf.truncate(n);
    Ok(buf)
}

/// The last complete record in `bytes` and where the torn fragment after it (if
/// any) starts.
fn scan(bytes: &[u8]) -> AuditResult<(Option<Tip>, usize)> {
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let tip = match bytes[..complete].split(|b| *b == b'\n').rev().nth(1) {
        None => None,
        Some(line) => {
            let link = Link::parse(line).ok_or_else(|| {
                AuditError::Damaged("the last complete line is not a record".into())
            })?;
            Some(Tip {
                seq: link.seq,
                hash: super::chain::Digest::of_line(line),
            })
        }
    };
    Ok((tip, complete))
}

impl Trail {
    /// Opens (creating if needed) the trail in `opts.dir`. `process_fields` is the
    /// pre-serialised process context for the records the trail writes itself.
    pub fn open(
        opts: TrailOptions,
        process_fields: String,
        key: Option<Arc<dyn Sealer>>,
    ) -> AuditResult<Trail> {
        let dir = GuardedDir::create(&opts.dir, opts.sharing).map_err(refused)?;
        // Every append reads the head just after the last one rewrote it, so with
        // `relatime` each read would also dirty the inode for its access time.
        // `O_NOATIME` is refused (EPERM) on a file another user owns: then without.
        let open_head = |flags| dir.open_file_with(HEAD_FILE, How::ReadWrite, Kind::Shared, flags);
        let head = match open_head(OFlags::NOATIME) {
            Err(FileError::Io { denied: true, .. }) => open_head(OFlags::empty()),
            other => other,
        }
        .map_err(refused)?;
        // The file the head names is checked now, before the caller changes
        // anything: a link planted there fails the open, not a later append.
        let mut buf = [0u8; HEAD_SIZE];
        let n = read_all_at(&head, &mut buf, 0).map_err(|e| AuditError::io(HEAD_FILE, &e))?;
        if let Some(info) = HeadInfo::decode(&buf[..n]).filter(|h| is_trail_file(&h.file)) {
            dir.check(&info.file, Kind::Shared).map_err(refused)?;
        }
        Ok(Trail {
            opts,
            dir,
            head,
            cur: None,
            tip: None,
            last_head: Vec::new(),
            key,
            chain: None,
            chain_sought: false,
            process_fields,
            out: Vec::new(),
        })
    }

    /// Appends one line per tail (see `record::render_tail`), then a seal over the
    /// new head when `seal` is given, as one write under the trail lock.
    pub fn append(&mut self, tails: &Tails, seal: Option<&dyn Sealer>) -> AuditResult<Appended> {
        lock(&self.head, FlockOperation::LockExclusive)?;
        let result = self.append_locked(tails, seal);
        // Closing the descriptor would release the lock too; failing to unlock
        // explicitly only delays other writers until then.
        let _ = lock(&self.head, FlockOperation::Unlock);
        result
    }

    fn tail_for(&self, event: &Event) -> String {
        render_tail(Timestamp::now(), &self.process_fields, event)
    }

    fn append_locked(&mut self, tails: &Tails, seal: Option<&dyn Sealer>) -> AuditResult<Appended> {
        let repair = self.sync_head()?;
        let start_tip = self.tip;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.reserve(tails.bytes() + tails.len() * 100);
        let (tip, seal_error) = self.chain_lines(&mut out, tails, seal, repair);
        // Lines chained = sequence numbers used since the batch's first.
        let next_seq = super::chain::next_link(start_tip).0;
        let count = tip.map_or(0, |t| (t.seq + 1).saturating_sub(next_seq));
        if out.is_empty() {
            return Ok(Appended {
                lines: out,
                count,
                seal_error,
            });
        }
        self.write_lines(&out, next_seq)?;
        if start_tip.is_none() {
            // This batch began the chain: its first line names it.
            let first = out.split(|b| *b == b'\n').next().unwrap_or_default();
            self.chain = Some(chain_id_of(first));
        }
        self.tip = tip;
        self.write_head();
        Ok(Appended {
            lines: out,
            count,
            seal_error,
        })
    }

    /// Chains into `out` the repair record (if any), one line per tail, and the
    /// seal over the new tip when `seal` is given; gives the new tip and the
    /// sealer's error.
    fn chain_lines(
        &self,
        out: &mut Vec<u8>,
        tails: &Tails,
        seal: Option<&dyn Sealer>,
        repair: Option<RepairEvent>,
    ) -> (Option<Tip>, Option<AuditError>) {
        let mut tip = self.tip;
        if let Some(r) = repair {
            tip = Some(push_line(
                out,
                tip,
                self.tail_for(&Event::Repair(r)).as_bytes(),
            ));
        }
        for t in tails.iter() {
            tip = Some(push_line(out, tip, t));
        }
        let mut seal_error = None;
        if let (Some(sealer), Some(head)) = (seal, tip) {
            match sealer.seal(&head.hash.0) {
                Ok(s) => {
                    let event = Event::Seal(SealEvent {
                        sealed_seq: head.seq,
                        head: head.hash.to_hex(),
                        alg: s.alg,
                        key_id: s.key_id,
                        sig: super::chain::to_hex(&s.sig),
                        every_records: self.opts.seal_rule.0,
                        every_secs: self.opts.seal_rule.1,
                    });
                    tip = Some(push_line(out, tip, self.tail_for(&event).as_bytes()));
                }
                Err(e) => seal_error = Some(e),
            }
        }
        (tip, seal_error)
    }

    /// Writes the chained lines to the current file (a new one when due), synced
    /// when `durable`; a failed write is cut back to the previous length.
    fn write_lines(&mut self, out: &[u8], next_seq: u64) -> AuditResult<()> {
        self.rotate_if_needed(next_seq, out.len() as u64)?;
        let cur = self
            .cur
            .as_mut()
            .ok_or_else(|| AuditError::Io("no current trail file".into()))?;
        let path = self.opts.dir.join(&cur.name);
        let written = cur.file.write_all(out).and_then(|()| {
            if self.opts.durable {
                cur.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut back whatever part of the batch reached the file: no half records,
            // and the chain stays where the head says it is.
            if let Err(cut) = cur.file.set_len(cur.len) {
                log::error!(
                    "audit: cannot cut a failed append back in {}: {cut}",
                    path.display()
                );
            }
            return Err(AuditError::io(path.display(), &e));
        }
        cur.len += out.len() as u64;
        Ok(())
    }

    /// Takes back an [`Appended::lines`] buffer for the next append (kept up to
    /// [`KEEP_OUT`] bytes).
    pub fn recycle(&mut self, lines: Vec<u8>) {
        if lines.capacity() <= KEEP_OUT {
            self.out = lines;
        }
    }

    /// `fdatasync`s the current file (`buffered` mode's periodic flush). No lock:
    /// syncing a file makes every process's completed writes to it durable.
    pub fn sync(&self) -> AuditResult<()> {
        match &self.cur {
            Some(c) => c
                .file
                .sync_data()
                .map_err(|e| AuditError::io(self.opts.dir.join(&c.name).display(), &e)),
            None => Ok(()),
        }
    }

    /// Starts a new file when there is none, the current one is full, or the UTC
    /// day changed since it was started.
    fn rotate_if_needed(&mut self, next_seq: u64, batch: u64) -> AuditResult<()> {
        let today = utc_date(SystemTime::now());
        let rotate = match &self.cur {
            None => true,
            Some(c) => {
                c.len > 0
                    && (c.len + batch > self.opts.max_file_bytes
                        || date_of(&c.name) != Some(today.as_str()))
            }
        };
        if !rotate {
            return Ok(());
        }
        if !self.opts.durable {
            // The periodic sync only covers the current file: finish the old one.
            self.sync()?;
        }
        let name = file_name(next_seq, &today);
        let path = self.opts.dir.join(&name);
        let file = open_append(&self.dir, &name)?;
        let len = file
            .metadata()
            .map_err(|e| AuditError::io(path.display(), &e))?
            .len();
        if self.opts.durable {
            self.dir.sync().map_err(refused)?;
        }
        self.cur = Some(Current { name, file, len });
        // Point the head at the new file before writing into it: a writer that dies
        // after writing leaves records the next one finds from the head.
        self.write_head();
        Ok(())
    }

    fn write_head(&mut self) {
        let Some(cur) = &self.cur else { return };
        let bytes = HeadInfo {
            tip: self.tip,
            file: cur.name.clone(),
            len: cur.len,
            chain: self.chain.clone(),
        }
        .encode(self.key.as_deref());
        match self.head.write_all_at(&bytes, 0) {
            Ok(()) => self.last_head = bytes,
            Err(e) => {
                // The head is a hint; the next append recovers from the file itself.
                log::warn!("audit: cannot update {HEAD_FILE}: {e}");
                self.last_head.clear();
            }
        }
    }
}

fn lock(file: &File, op: FlockOperation) -> AuditResult<()> {
    loop {
        match rustix::fs::flock(file, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(AuditError::Io(format!("{HEAD_FILE}: flock: {e}"))),
        }
    }
}
