//! Unit tests of the SQLite store in one process: opening, migrations, fail-closed
//! cases, invariants, rotation atomicity, usage and change counting.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::errors::Ctx;
use super::*;
use crate::store::schema::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION};
use crate::store::{Classification, Store};

pub(super) fn open_in(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, &OpenOptions::default()).unwrap()
}

pub(super) fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = open_in(dir.path());
    (dir, s)
}

pub(super) fn new_key(label: &str) -> NewKey {
    NewKey {
        label: label.into(),
        owner: Some("signers".into()),
        classification: Some(Classification::High),
        rotation_rule: Some("sign-90d".into()),
    }
}

pub(super) fn new_version(cka_id: &[u8]) -> NewVersion {
    NewVersion {
        token_serial: "0123456789abcdef".into(),
        cka_id: cka_id.to_vec(),
        algorithm: "CKK_EC".into(),
        size_bits: None,
        curve: Some("P-256".into()),
    }
}

fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

// --- opening and migrations ---

#[test]
fn open_creates_a_wal_store_at_the_current_schema() {
    let (d, s) = fresh();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 2);
    assert!(d.path().join(DB_FILE).is_file());
    assert_eq!(
        std::fs::read_to_string(d.path().join(STAMP_FILE)).unwrap(),
        "0\n"
    );
    s.integrity_check().unwrap();
    let conn = s.conn.lock();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let fk: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(
        (mode.as_str(), fk, app, sync),
        ("wal", true, APPLICATION_ID, 2)
    );
    drop(conn);
    // Reopening finds it done and keeps the data.
    s.create_key(&new_key("k"), 1).unwrap();
    drop(s);
    let s = open_in(d.path());
    assert_eq!(s.list_keys().unwrap().len(), 1);
    assert_eq!(s.change_seq().unwrap(), 1);
}

fn ctx(dir: &Path) -> Ctx {
    Ctx {
        path: dir.join(DB_FILE),
        timeout_ms: 2000,
    }
}

#[test]
fn migrations_run_in_order_and_only_the_missing_ones() {
    let d = tempfile::tempdir().unwrap();
    let mut conn = raw(d.path());
    let v2 = "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);";
    let v3 = "ALTER TABLE extra ADD COLUMN y INTEGER DEFAULT 7;";
    assert_eq!(
        open::migrate(&mut conn, &ctx(d.path()), &MIGRATIONS[..1]).unwrap(),
        1
    );
    assert_eq!(
        open::migrate(&mut conn, &ctx(d.path()), &[MIGRATIONS[0], v2]).unwrap(),
        2
    );
    // v2 is not run again (its INSERT would add a second row); v3 sees v2's table.
    assert_eq!(
        open::migrate(&mut conn, &ctx(d.path()), &[MIGRATIONS[0], v2, v3]).unwrap(),
        3
    );
    let (n, y): (i64, i64) = conn
        .query_row("SELECT count(*), max(y) FROM extra", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, y), (1, 7));
    assert_eq!(open::user_version(&conn).unwrap(), 3);
}

#[test]
fn a_failing_migration_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut conn = raw(d.path());
    open::migrate(&mut conn, &ctx(d.path()), &MIGRATIONS[..1]).unwrap();
    let broken = "CREATE TABLE half (x); THIS IS NOT SQL;";
    let err = open::migrate(&mut conn, &ctx(d.path()), &[MIGRATIONS[0], broken]).unwrap_err();
    assert!(matches!(err, StoreError::Other { .. }), "{err:?}");
    assert_eq!(open::user_version(&conn).unwrap(), 1);
    let half: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0, "the first statement was rolled back with the rest");
}

#[test]
fn a_newer_schema_is_refused() {
    let (d, s) = fresh();
    drop(s);
    raw(d.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteStore::open(d.path(), &OpenOptions::default()) {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: SCHEMA_VERSION,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn someone_elses_database_is_refused() {
    let d = tempfile::tempdir().unwrap();
    raw(d.path())
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = SqliteStore::open(d.path(), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not a Keywarden store"), "{err}");
}

// --- fail closed ---

#[test]
fn a_missing_directory_or_a_file_in_its_place_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let err = SqliteStore::open(&missing, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StoreError::MissingDir(p) if p == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(
        !missing.exists(),
        "never created behind the administrator's back"
    );
    let file = d.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        SqliteStore::open(&file, &OpenOptions::default()),
        Err(StoreError::MissingDir(_))
    ));
}

#[test]
fn garbage_is_reported_as_corrupt() {
    let d = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(d.path().join(DB_FILE), &junk).unwrap();
    let err = SqliteStore::open(d.path(), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("keywarden.db"), "{err}");
}

#[test]
fn a_damaged_page_fails_the_integrity_check() {
    let (d, s) = fresh();
    for i in 0..400 {
        let k = s
            .create_key(&new_key(&format!("label-{i:04}-{}", "x".repeat(40))), i)
            .unwrap();
        s.add_version(
            k.id,
            &new_version(format!("id-{i}").as_bytes()),
            KeyState::Active,
            i,
        )
        .unwrap();
    }
    s.integrity_check().unwrap();
    // Closing the last connection checkpoints the WAL into the main file.
    drop(s);
    let path = d.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page, "several pages: {}", bytes.len());
    // Scribble over a whole table leaf page (b-tree page type 13) past the schema page.
    let leaf = (2..bytes.len() / page)
        .find(|p| bytes[p * page] == 13)
        .expect("a table leaf page");
    for (i, b) in bytes[leaf * page..(leaf + 1) * page].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = SqliteStore::open(d.path(), &OpenOptions::default()).and_then(|s| {
        s.integrity_check()?;
        Ok(s)
    });
    match result {
        Err(StoreError::Corrupt { detail, .. }) => eprintln!("reported: {detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_writer_waits_the_busy_timeout_then_fails_while_readers_carry_on() {
    let (d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let short = SqliteStore::open(
        d.path(),
        &OpenOptions {
            busy_timeout: Duration::from_millis(300),
        },
    )
    .unwrap();
    // Another process (here: another connection) holds the write lock.
    let holder = raw(d.path());
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE managed_keys SET owner = 'x';")
        .unwrap();

    let t = Instant::now();
    let err = short.create_key(&new_key("k2"), 2).unwrap_err();
    let waited = t.elapsed();
    assert!(
        matches!(
            err,
            StoreError::Locked {
                timeout_ms: 300,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("longer than 300 ms"), "{err}");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // WAL: reading does not wait for the writer, and sees the committed state.
    let t = Instant::now();
    assert_eq!(
        short.key(k.id).unwrap().unwrap().owner.as_deref(),
        Some("signers")
    );
    assert!(t.elapsed() < Duration::from_millis(200));

    holder.execute_batch("COMMIT").unwrap();
    short.create_key(&new_key("k2"), 2).unwrap();
    assert_eq!(short.list_keys().unwrap().len(), 2);
}

#[test]
fn sqlite_busy_and_readonly_codes_map_to_their_kinds() {
    // The mapping itself, for the codes the other tests reach through the OS.
    let c = ctx(Path::new("/s"));
    let e = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
    assert!(matches!(
        c.sql(e(rusqlite::ffi::SQLITE_BUSY)),
        StoreError::Locked { .. }
    ));
    assert!(matches!(
        c.sql(e(rusqlite::ffi::SQLITE_READONLY)),
        StoreError::ReadOnly { .. }
    ));
    assert!(matches!(
        c.sql(e(rusqlite::ffi::SQLITE_NOTADB)),
        StoreError::Corrupt { .. }
    ));
    assert!(matches!(
        c.sql(e(rusqlite::ffi::SQLITE_CORRUPT)),
        StoreError::Corrupt { .. }
    ));
}

#[test]
fn a_connection_that_can_only_read_is_refused_at_open() {
    // SQLite answers a read-only file by opening it read-only without error; `open`
    // must notice. Reached here with SQLITE_OPEN_READ_ONLY (root ignores file modes);
    // tests_procs reaches it through a real read-only mount and an immutable file.
    let (d, s) = fresh();
    drop(s);
    let conn = Connection::open_with_flags(
        d.path().join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let err = open::configure(&conn, &OpenOptions::default())
        .map_err(|e| ctx(d.path()).fail(e))
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
}
