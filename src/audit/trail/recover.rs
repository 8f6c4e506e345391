//! Catching up with the trail under the lock: the head another process wrote,
//! records a writer that died left after the head's length, a torn last line
//! (cut off and reported in a `repair` record), and, with no usable head, the
//! chain's end found from the files alone.

use std::fs::File;
use std::path::Path;

use super::{
    is_trail_file, list_files, name_of, open_append, read_all_at, read_from, refused, scan,
    Current, Trail, HEAD_FILE,
};
use crate::audit::chain::{HeadInfo, HEAD_SIZE};
use crate::audit::error::{AuditError, AuditResult};
use crate::audit::record::RepairEvent;
use crate::fsguard::Kind;

impl Trail {
    /// Brings `tip` and `cur` up to date with what other processes wrote. Returns a
    /// repair record's content when a torn tail was cut off.
    pub(super) fn sync_head(&mut self) -> AuditResult<Option<RepairEvent>> {
        let mut buf = [0u8; HEAD_SIZE];
        let n = read_all_at(&self.head, &mut buf, 0).map_err(|e| AuditError::io(HEAD_FILE, &e))?;
        let bytes = &buf[..n];
        if let Some(cur) = &self.cur {
            if bytes == self.last_head.as_slice() {
                // Nobody appended through the head since we did; one fstat shows
                // whether a writer died between its write and its head update.
                let len = self.len_of(&cur.file, &cur.name)?;
                if len == cur.len {
                    return Ok(None);
                }
                return self.recover_from(cur.len, len);
            }
        }
        self.last_head = bytes.to_vec();
        // A keyed head whose MAC fails under our key is no hint: recover from the
        // files, which are the truth (verify reports the head).
        let Some((head, _)) = HeadInfo::decode_with(bytes, self.key.as_deref()) else {
            return self.recover_full();
        };
        if head.chain.is_some() {
            self.chain = head.chain.clone();
        } else if self.chain.is_none() && head.tip.is_some() && !self.chain_sought {
            // A head written before heads named their chain: name it from the
            // first file (once per process), so that it survives the file's
            // archiving.
            self.chain_sought = true;
            self.chain = crate::audit::binding::first_chain_id(&self.opts.dir)?;
        }
        // Only a trail file's name, never a path: the head is a hint anyone who
        // can write the directory could have edited.
        if !is_trail_file(&head.file)
            || self
                .dir
                .check(&head.file, Kind::Shared)
                .map_err(refused)?
                .is_none()
        {
            return self.recover_full();
        }
        if self.cur.as_ref().map(|c| c.name.as_str()) != Some(head.file.as_str()) {
            self.cur = Some(Current {
                name: head.file.clone(),
                file: open_append(&self.dir, &head.file)?,
                len: head.len,
            });
        }
        let Some(cur) = &mut self.cur else {
            return self.recover_full();
        };
        cur.len = head.len;
        self.tip = head.tip;
        let len = len_of(&self.opts.dir, &cur.file, &cur.name)?;
        match len.cmp(&head.len) {
            std::cmp::Ordering::Equal => Ok(None),
            std::cmp::Ordering::Greater => self.recover_from(head.len, len),
            // Shorter than the head says: records were lost (power loss in buffered
            // mode) or removed. Continue from what the file holds; verify reports it.
            std::cmp::Ordering::Less => self.recover_full(),
        }
    }

    fn len_of(&self, file: &File, name: &str) -> AuditResult<u64> {
        len_of(&self.opts.dir, file, name)
    }

    /// Adopts the complete records after `from` in the current file (written by a
    /// writer that died before updating the head) and cuts a torn fragment.
    fn recover_from(&mut self, from: u64, len: u64) -> AuditResult<Option<RepairEvent>> {
        let Some(cur) = &mut self.cur else {
            return Ok(None);
        };
        let path = self.opts.dir.join(&cur.name);
        let bytes =
            read_from(&cur.file, from, len).map_err(|e| AuditError::io(path.display(), &e))?;
        let (tip, complete) = scan(&bytes)?;
        if tip.is_some() {
            self.tip = tip;
        }
        cut_fragment(cur, &path, from + complete as u64, len)
    }

    /// Finds the chain's end from the files alone (no usable head).
    fn recover_full(&mut self) -> AuditResult<Option<RepairEvent>> {
        self.cur = None;
        self.tip = None;
        if let Some(chain) = crate::audit::binding::first_chain_id(&self.opts.dir)? {
            self.chain = Some(chain);
        }
        let mut repair = None;
        for path in list_files(&self.opts.dir)?.iter().rev() {
            let file = open_append(&self.dir, &name_of(path))?;
            let len = file
                .metadata()
                .map_err(|e| AuditError::io(path.display(), &e))?
                .len();
            if len == 0 {
                continue;
            }
            let bytes = read_from(&file, 0, len).map_err(|e| AuditError::io(path.display(), &e))?;
            let (tip, complete) = scan(&bytes)?;
            let name = name_of(path);
            let mut cur = Current { name, file, len };
            let cut = cut_fragment(&mut cur, path, complete as u64, len)?;
            repair = repair.or(cut);
            if self.cur.is_none() {
                self.cur = Some(cur);
            }
            if tip.is_some() {
                self.tip = tip;
                break;
            }
        }
        Ok(repair)
    }
}

fn len_of(dir: &Path, file: &File, name: &str) -> AuditResult<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| AuditError::io(dir.join(name).display(), &e))
}

/// Cuts the bytes after the last complete line (`complete`) when there are any.
fn cut_fragment(
    cur: &mut Current,
    path: &Path,
    complete: u64,
    len: u64,
) -> AuditResult<Option<RepairEvent>> {
    cur.len = len;
    if complete == len {
        return Ok(None);
    }
    cur.file
        .set_len(complete)
        .map_err(|e| AuditError::io(path.display(), &e))?;
    cur.len = complete;
    log::warn!(
        "audit: cut a torn last record ({} bytes) at offset {complete} of {}",
        len - complete,
        path.display()
    );
    Ok(Some(RepairEvent {
        file: cur.name.clone(),
        offset: complete,
        dropped_bytes: len - complete,
    }))
}
