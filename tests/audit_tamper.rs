//! `verify` finds each kind of edit and points at the right record.

mod audit_support;

use audit_support::*;
use keywarden::audit::{verify, HmacSealer, Problem, Sealer};

fn check(dir: &std::path::Path) -> keywarden::audit::Report {
    let key = HmacSealer::new(KEY.to_vec()).unwrap();
    verify(dir, None, None, Some(&key as &dyn Sealer)).unwrap()
}

fn trail(n: u64) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    write_trail(dir.path(), n, 1000);
    let file = files(dir.path()).remove(0);
    let lines = lines(&file);
    (dir, file, lines)
}

#[test]
fn an_untouched_trail_verifies_with_its_seals() {
    let dir = tempfile::tempdir().unwrap();
    write_trail(dir.path(), 25, 10);
    let r = check(dir.path());
    assert!(r.is_intact(), "{r}");
    // 25 records, a seal after every 10, and one at shutdown.
    assert_eq!((r.records, r.seals_verified), (28, 3), "{r}");
    assert_eq!(r.unsealed_tail, 0);
    assert_eq!((r.first_seq, r.last_seq), (Some(0), Some(27)));
    assert!(r.to_string().ends_with("OK: chain intact"));
}

#[test]
fn a_changed_byte_is_pinned_to_its_record() {
    let (dir, file, mut l) = trail(12);
    l[5] = l[5].replace("\"bytes_in\":5", "\"bytes_in\":6");
    write_lines(&file, &l);
    let r = check(dir.path());
    match &r.problem {
        Some(Problem::Altered(at)) => assert_eq!((at.line, at.seq), (6, Some(5)), "{at}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_link_field_is_pinned_to_its_record() {
    let (dir, file, mut l) = trail(12);
    let flipped = if l[5].contains("\"prev\":\"0") {
        "\"prev\":\"1"
    } else {
        "\"prev\":\"0"
    };
    l[5] = format!(
        "{}{}{}",
        &l[5][..l[5].find("\"prev\":\"").unwrap()],
        flipped,
        &l[5][l[5].find("\"prev\":\"").unwrap() + 9..]
    );
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::Altered(at)) => assert_eq!(at.seq, Some(5)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_byte_that_breaks_the_json_is_reported_as_not_a_record() {
    let (dir, file, mut l) = trail(12);
    l[3] = l[3].replacen('{', "[", 1);
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::Unparsable(at)) => assert_eq!(at.line, 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_removed_record_is_found() {
    let (dir, file, mut l) = trail(12);
    l.remove(5);
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::Missing(at, expected)) => {
            assert_eq!((at.line, at.seq, expected), (6, Some(6), 5))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reordered_pair_is_found() {
    let (dir, file, mut l) = trail(12);
    l.swap(5, 6);
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::Reordered(at, expected)) => {
            assert_eq!((at.line, at.seq, expected), (6, Some(6), 5))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_truncated_tail_is_reported_as_such_not_as_damage() {
    let (dir, file, l) = trail(12);
    // What a writer killed in the middle of its write leaves: part of a line.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&l[4].as_bytes()[..70]);
    std::fs::write(&file, &bytes).unwrap();
    let r = check(dir.path());
    assert!(r.is_intact(), "{r}");
    let (at, len) = r.truncated_tail.clone().expect("truncated tail");
    assert_eq!((at.line, len), (14, 70), "{r}");
    assert_eq!(r.last_seq, Some(12));
    assert!(r.to_string().contains("TRUNCATED TAIL"), "{r}");
}

#[test]
fn cutting_into_an_acknowledged_record_is_a_removal() {
    let (dir, file, _) = trail(12);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 40]).unwrap();
    let r = check(dir.path());
    assert!(r.truncated_tail.is_some(), "{r}");
    assert_eq!(
        r.problem,
        Some(Problem::TailMissing {
            head_seq: 12,
            last_seq: Some(11)
        }),
        "{r}"
    );
}

#[test]
fn removing_whole_records_from_the_end_shows_against_the_head() {
    let (dir, file, mut l) = trail(12);
    l.truncate(10);
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::TailMissing { head_seq, last_seq }) => {
            assert_eq!((head_seq, last_seq), (12, Some(9)))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_last_record_shows_against_the_head() {
    let (dir, file, mut l) = trail(3);
    let last = l.len() - 1;
    l[last] = l[last].replace("\"pid\":", "\"pid\":1");
    write_lines(&file, &l);
    match check(dir.path()).problem {
        Some(Problem::Altered(at)) => assert_eq!(at.seq, Some(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_consistently_rewritten_chain_fails_at_the_next_seal() {
    let dir = tempfile::tempdir().unwrap();
    write_trail(dir.path(), 20, 10);
    let file = files(dir.path()).remove(0);
    let mut l = lines(&file);
    l[3] = l[3].replace("\"bytes_in\":3", "\"bytes_in\":9");
    rechain(&mut l, 4);
    write_lines(&file, &l);
    // Without the head file only the seals can tell.
    std::fs::remove_file(dir.path().join(keywarden::audit::HEAD_FILE)).unwrap();
    let r = check(dir.path());
    match &r.problem {
        // The first seal is line 11 (after records 0..=9).
        Some(Problem::BadSeal(at, _)) => assert_eq!(at.line, 11, "{r}"),
        other => panic!("{other:?}"),
    }
    // Without the key the rewrite cannot be told from the original.
    let unkeyed = verify(dir.path(), None, None, None).unwrap();
    assert!(unkeyed.is_intact(), "{unkeyed}");
    // Seals after records 10 and 20; nothing left to seal at shutdown.
    assert_eq!(unkeyed.seals_unchecked, 2);
}

#[test]
fn the_chain_continues_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), keywarden::audit::Mode::Required);
    c.max_file_bytes = 2000;
    let log = keywarden::audit::AuditLog::open(c, None).unwrap();
    for i in 0..40 {
        log.append(op(i)).unwrap();
    }
    log.shutdown().unwrap();
    let all = files(dir.path());
    assert!(all.len() >= 5, "{all:?}");
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!((r.files, r.records), (all.len(), 40));
    // Each file is named after its first record.
    for f in &all {
        let first = seq_of(&lines(f)[0]);
        assert!(
            f.to_string_lossy().contains(&format!("audit-{first:020}-")),
            "{f:?}"
        );
    }
    // Removing the first record of the third file breaks the link between files.
    let mut l = lines(&all[2]);
    l.remove(0);
    write_lines(&all[2], &l);
    match verify(dir.path(), None, None, None).unwrap().problem {
        Some(Problem::Missing(at, _)) => {
            assert_eq!((at.file.clone(), at.line), (all[2].clone(), 1))
        }
        other => panic!("{other:?}"),
    }
}
