//! `required` and `written` mode on a full disk: the append fails with a clear error (the gateway
//! turns it into `CKR_DEVICE_MEMORY`) and works again once space returns; the trail
//! holds no half record. `buffered` mode reports the failure and records the loss.
//! The full disk is a 64 KiB tmpfs (CI runs as root); without permission to mount,
//! the test says so and returns.

mod audit_support;

use audit_support::*;
use keywarden::audit::{verify, AuditError, AuditLog, Mode};

#[test]
fn required_mode_fails_closed_on_a_full_disk_and_resumes() {
    fails_closed_on_a_full_disk_and_resumes(Mode::Required);
}

#[test]
fn written_mode_fails_closed_on_a_full_disk_and_resumes() {
    fails_closed_on_a_full_disk_and_resumes(Mode::Written);
}

/// `written` mode: `append` returns once the record is in the trail file, with no
/// flush or shutdown first (a reader, or the next process, finds it there).
#[test]
fn written_mode_returns_with_the_record_in_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = AuditLog::open(config(&dir, Mode::Written), Some(sealer())).unwrap();
    for i in [7_000_001, 7_000_002] {
        log.append(op(i)).unwrap();
        let text: String = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(text.contains(&format!("\"bytes_in\":{i}")), "{text}");
    }
    log.shutdown().unwrap();
}

fn fails_closed_on_a_full_disk_and_resumes(mode: Mode) {
    let Some((_guard, fs)) = Tmpfs::mount("64k") else {
        return;
    };
    let dir = fs.0.join("audit");
    let log = AuditLog::open(config(&dir, mode), Some(sealer())).unwrap();
    for i in 0..5 {
        log.append(op(i)).unwrap();
    }
    let filler = fill(&fs.0);
    let mut refused = 0;
    for i in 5..50 {
        match log.append(op(i)) {
            Ok(()) => {}
            Err(e) => {
                assert!(matches!(e, AuditError::DiskFull(_)), "{e:?}");
                assert!(e.to_string().contains("audit trail full"), "{e}");
                let rv = keywarden::Error::from(e).rv();
                assert_eq!(rv, pkcs11_sys::CKR_DEVICE_MEMORY);
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the disk never filled up");
    assert!(log.stats().errors >= refused);
    // What is on disk is whole records only.
    let r = verify(&dir, None, None, Some(&*sealer())).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
    let written_before = r.records;

    std::fs::remove_file(filler).unwrap();
    for i in 50..60 {
        log.append(op(i)).unwrap();
    }
    log.shutdown().unwrap();
    let r = verify(&dir, None, None, Some(&*sealer())).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
    assert_eq!(r.records, written_before + 10 + 1, "{r}"); // + the shutdown seal
}

#[test]
fn buffered_mode_reports_a_full_disk_and_records_the_loss() {
    let Some((_guard, fs)) = Tmpfs::mount("64k") else {
        return;
    };
    let dir = fs.0.join("audit");
    let log = AuditLog::open(config(&dir, Mode::Buffered), None).unwrap();
    log.append(op(0)).unwrap();
    log.flush().unwrap();
    let filler = fill(&fs.0);
    // None of these fit now: the writer keeps them for a retry.
    for i in 1..100 {
        log.append(op(i)).unwrap();
    }
    let err = log.flush().unwrap_err();
    assert!(err.is_disk_full(), "{err:?}");
    assert!(log.stats().errors > 0);
    assert!(log.stats().last_error.unwrap().contains("audit trail full"));

    std::fs::remove_file(filler).unwrap();
    log.flush().unwrap();
    log.shutdown().unwrap();
    let r = verify(&dir, None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    // Kept in memory and retried: nothing lost, so no gap record.
    assert_eq!(r.records, 100, "{r}");
}

#[test]
fn buffered_mode_overflow_is_counted_and_leaves_a_gap_record() {
    let Some((_guard, fs)) = Tmpfs::mount("64k") else {
        return;
    };
    let dir = fs.0.join("audit");
    let mut c = config(&dir, Mode::Buffered);
    c.retry_capacity = 10;
    let log = AuditLog::open(c, None).unwrap();
    log.append(op(0)).unwrap();
    log.flush().unwrap();
    let filler = fill(&fs.0);
    for i in 1..41 {
        log.append(op(i)).unwrap();
    }
    assert!(log.flush().is_err());
    // A few records may still fit in the file's last, partly used page.
    let stats = log.stats();
    let fitted = stats.written - 1;
    assert_eq!(stats.lost, 40 - fitted - 10, "{stats:?}");

    std::fs::remove_file(filler).unwrap();
    log.flush().unwrap();
    log.shutdown().unwrap();
    let r = verify(&dir, None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    let l = lines(&files(&dir)[0]);
    let at = 1 + fitted as usize;
    let gap: serde_json::Value = serde_json::from_str(&l[at]).unwrap();
    assert_eq!(gap["kind"].as_str(), Some("gap"), "{gap}");
    assert_eq!(gap["lost"].as_u64(), Some(stats.lost), "{gap}");
    let why = gap["last_error"].as_str().unwrap();
    assert!(why.contains("No space left"), "{gap}");
    assert_eq!(l.len(), at + 1 + 10);
}
