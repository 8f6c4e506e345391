//! The revocation side file: compromises that running modules enforce even while
//! the database cannot be written.
//!
//! Any process that may write the store can hold its write lock (`BEGIN
//! IMMEDIATE`) as long as it likes; an administrator's `keys compromise` would then
//! wait and fail with `Locked` while the holder goes on signing. So a compromise
//! is written here **first**, one line appended to `<store.dir>/keywarden.revoked`
//! (no SQLite lock involved), and then to the database. Every module reads this
//! file whenever its change watcher fires (the watcher watches it beside the
//! change stamp: at most a poll interval after the append, and at every resync
//! regardless) and treats each version named in it as compromised, whatever the
//! database says. A file that exists but cannot be read or parsed makes key use
//! fail closed, as an unreadable store does.
//!
//! Lines are never removed by Keywarden: a version, once compromised, stays
//! compromised (SP 800-57 allows only `destroyed` after it), so an entry the
//! database already agrees with is harmless. One line:
//! `compromise <version id> <token serial> <CKA_ID hex> <unix time>`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;

use super::{KeyVersion, StoreError, StoreResult, UnixTime, VersionId};
use crate::fsguard::{FileError, GuardedDir, How, Kind, Sharing};

/// The side file inside `store.dir`.
pub const REVOKED_FILE: &str = "keywarden.revoked";

/// The most the file may hold (some 10 000 compromises): a larger one is refused
/// rather than read into memory.
const MAX_BYTES: u64 = 1 << 20;

fn refused(dir: &Path, e: FileError) -> StoreError {
    match e {
        FileError::Unsafe { .. } => StoreError::Unsafe(e.to_string()),
        e => StoreError::Other {
            path: dir.join(REVOKED_FILE),
            detail: e.to_string(),
        },
    }
}

/// Appends the compromise of `v` (durably: `fdatasync` before returning).
pub fn revoke(dir: &Path, sharing: Sharing, v: &KeyVersion, at: UnixTime) -> StoreResult<()> {
    let guarded = GuardedDir::open(dir, sharing).map_err(|e| refused(dir, e))?;
    let mut file = guarded
        .open_file(REVOKED_FILE, How::Append, Kind::Shared)
        .map_err(|e| refused(dir, e))?;
    let serial: String = v
        .token_serial
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let line = format!(
        "compromise {} {} {} {at}\n",
        v.id.0,
        if serial.is_empty() {
            "-"
        } else {
            serial.as_str()
        },
        v.cka_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    // One write of a short line under O_APPEND: concurrent appends do not mix.
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| StoreError::Other {
            path: dir.join(REVOKED_FILE),
            detail: e.to_string(),
        })
}

/// The versions the side file names (empty when there is none).
pub fn revoked(dir: &Path, sharing: Sharing) -> StoreResult<HashSet<VersionId>> {
    let guarded = GuardedDir::open(dir, sharing).map_err(|e| refused(dir, e))?;
    let file = match guarded.open_file(REVOKED_FILE, How::Read, Kind::Shared) {
        Ok(f) => f,
        Err(FileError::Missing(_)) => return Ok(HashSet::new()),
        Err(e) => return Err(refused(dir, e)),
    };
    let path = dir.join(REVOKED_FILE);
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    if text.len() as u64 > MAX_BYTES {
        return Err(StoreError::Corrupt {
            path,
            detail: format!("larger than {MAX_BYTES} bytes"),
        });
    }
    let mut set = HashSet::new();
    // A last line without its newline is an append still being written: the
    // next read sees it whole.
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    for (n, line) in complete.lines().enumerate() {
        let mut words = line.split(' ');
        let id = match (words.next(), words.next()) {
            (Some("compromise"), Some(id)) => id.parse::<i64>().ok(),
            _ => None,
        };
        let Some(id) = id else {
            return Err(StoreError::Corrupt {
                path,
                detail: format!("line {} is not a revocation", n + 1),
            });
        };
        set.insert(VersionId(id));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_revocations_read_back_and_garbage_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(revoked(d.path(), Sharing::default()).unwrap().is_empty());
        let store = super::super::SqliteStore::create(d.path(), &Default::default()).unwrap();
        use super::super::Store;
        let key = store
            .create_key(
                &super::super::NewKey {
                    label: "k".into(),
                    owner: None,
                    classification: None,
                    rotation_rule: None,
                },
                1,
            )
            .unwrap();
        let new = super::super::NewVersion {
            token_serial: "serial 1".into(),
            cka_id: vec![1, 0xab],
            algorithm: "CKK_EC".into(),
            size_bits: None,
            curve: None,
        };
        let mut v = store
            .add_version(key.id, &new, super::super::KeyState::Active, 1)
            .unwrap();
        v.id = VersionId(7);
        revoke(d.path(), Sharing::default(), &v, 5).unwrap();
        let set = revoked(d.path(), Sharing::default()).unwrap();
        assert!(set.contains(&VersionId(7)) && set.len() == 1);
        std::fs::write(d.path().join(REVOKED_FILE), "nonsense\n").unwrap();
        assert!(matches!(
            revoked(d.path(), Sharing::default()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
