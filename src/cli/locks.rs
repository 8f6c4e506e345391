//! Who holds the store's write lock, for the message of a command that waited
//! for it in vain.
//!
//! In WAL mode SQLite's write lock is a POSIX (`fcntl`) write lock on byte 120 of
//! `keywarden.db-shm` (`WAL_WRITE_LOCK`); Linux lists every POSIX lock in
//! `/proc/locks` as `N: POSIX ADVISORY WRITE <pid> <major>:<minor>:<inode> <start> <end>`.
//! A lock held through an open file description (`F_OFD_SETLK`) shows pid -1.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Byte offset of SQLite's WAL write lock in the shared-memory file.
const WAL_WRITE_LOCK: u64 = 120;

/// The pids holding a write lock at `offset` of the file with inode `ino`.
fn holders(locks: &str, ino: u64, offset: u64) -> Vec<i64> {
    let mut pids = Vec::new();
    for line in locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1:" "POSIX" "ADVISORY" "WRITE" pid dev:ino start end (a "->" marks a waiter)
        if f.len() < 8 || f[1] != "POSIX" || f[3] != "WRITE" {
            continue;
        }
        let on_file = f[5].rsplit(':').next().and_then(|i| i.parse::<u64>().ok()) == Some(ino);
        let start = f[6].parse::<u64>().ok();
        let end = if f[7] == "EOF" {
            Some(u64::MAX)
        } else {
            f[7].parse::<u64>().ok()
        };
        let covers = matches!((start, end), (Some(s), Some(e)) if s <= offset && offset <= e);
        if on_file && covers {
            if let Ok(pid) = f[4].parse::<i64>() {
                pids.push(pid);
            }
        }
    }
    pids
}

/// `/proc/locks` in one `read`: one read is one pass over the kernel's lock list
/// under its lock (seq_file), while reading in pieces may skip a line when other
/// processes take or drop locks between the pieces.
fn proc_locks() -> Option<String> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let n = std::fs::File::open("/proc/locks")
        .ok()?
        .read(&mut buf)
        .ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// "held by pid N (exe)" for the store database at `db`, or why it is unknown.
pub(crate) fn describe_holders(db: &Path) -> String {
    let shm = db.with_file_name(format!(
        "{}-shm",
        db.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let (Ok(meta), Some(locks)) = (std::fs::symlink_metadata(&shm), proc_locks()) else {
        return "holder unknown".into();
    };
    let pids = holders(&locks, meta.ino(), WAL_WRITE_LOCK);
    if pids.is_empty() {
        return "holder unknown".into();
    }
    let shown: Vec<String> = pids
        .iter()
        .map(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default();
            format!("pid {pid}{exe}")
        })
        .collect();
    format!("write lock held by {}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_wal_write_lock_holder() {
        let locks = "1: POSIX  ADVISORY  READ 77 08:01:999 128 128\n\
                     2: POSIX  ADVISORY  WRITE 4242 08:01:999 120 120\n\
                     3: POSIX  ADVISORY  WRITE 1 08:01:5 120 120\n\
                     4: FLOCK  ADVISORY  WRITE 9 08:01:999 0 EOF\n";
        assert_eq!(super::holders(locks, 999, 120), vec![4242]);
    }
}
