//! Opening the database: connection settings, header checks, migrations.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::errors::{Ctx, Fail};
use super::{OpenOptions, DB_FILE};
use crate::store::schema::{APPLICATION_ID, MIGRATIONS};
use crate::store::{StoreError, StoreResult};

/// Opens and migrates `<dir>/keywarden.db`.
pub(super) fn open(dir: &Path, options: &OpenOptions) -> StoreResult<(Connection, Ctx)> {
    // Checked first: SQLite would only say "unable to open database file".
    if !dir.is_dir() {
        return Err(StoreError::MissingDir(dir.to_path_buf()));
    }
    let path = dir.join(DB_FILE);
    let ctx = Ctx {
        path: path.clone(),
        timeout_ms: u64::try_from(options.busy_timeout.as_millis()).unwrap_or(u64::MAX),
    };
    // No SQLITE_OPEN_URI: the path is a path, never parsed for options.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(&path, flags).map_err(|e| ctx.sql(e))?;
    // When several processes open a fresh store at once, switching it to WAL needs an
    // exclusive lock, and SQLite answers SQLITE_BUSY without calling the busy handler
    // where waiting could deadlock. Retry the whole set-up until the busy timeout has
    // run out; every step is idempotent.
    let deadline = Instant::now() + options.busy_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = configure(&conn, options)
            .map_err(|e| ctx.fail(e))
            .and_then(|()| migrate(&mut conn, &ctx, MIGRATIONS));
        match attempt {
            Err(StoreError::Locked { .. }) if Instant::now() + pause < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
            Ok(_) => return Ok((conn, ctx)),
        }
    }
}

pub(super) fn configure(conn: &Connection, options: &OpenOptions) -> Result<(), Fail> {
    conn.busy_timeout(options.busy_timeout)?;
    // SQLite silently falls back to read-only when the file cannot be opened for
    // writing (read-only mount, immutable file); every later write would fail, so
    // refuse now with the reason.
    if conn.is_readonly("main")? {
        return Err(Fail::Store(StoreError::ReadOnly {
            path: conn.path().unwrap_or_default().into(),
            detail: "the file cannot be opened for writing".into(),
        }));
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    // Our triggers only run plain SQL; refuse anything fancier a tampered schema adds.
    conn.pragma_update(None, "trusted_schema", false)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Fail::Store(StoreError::Other {
            path: conn.path().unwrap_or_default().into(),
            detail: format!("cannot switch to WAL journal mode (got {mode})"),
        }));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// `PRAGMA user_version`.
pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

struct Header {
    version: u32,
    application_id: i32,
    objects: i64,
}

fn header(conn: &Connection) -> rusqlite::Result<Header> {
    // One statement, so one snapshot: read piecemeal, another process's migration
    // could commit in between and the mix would look like a foreign database.
    let (version, application_id, objects): (i64, i32, i64) = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version), \
                (SELECT application_id FROM pragma_application_id), \
                (SELECT count(*) FROM sqlite_schema)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    Ok(Header {
        version: u32::try_from(version)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, version))?,
        application_id,
        objects,
    })
}

/// Refuses a file this build must not touch: newer than us, or someone else's.
fn check_header(ctx: &Ctx, h: &Header, latest: u32) -> StoreResult<()> {
    if h.version > latest {
        return Err(StoreError::SchemaTooNew {
            path: ctx.path.clone(),
            found: h.version,
            supported: latest,
        });
    }
    if h.application_id != APPLICATION_ID && (h.version > 0 || h.objects > 0) {
        return Err(StoreError::Corrupt {
            path: ctx.path.clone(),
            detail: format!(
                "not a Keywarden store (application_id {:#x}, {} schema objects)",
                h.application_id, h.objects
            ),
        });
    }
    Ok(())
}

/// Brings the file to the newest of `migrations` (see `schema`); returns the version.
/// Many processes may open a fresh store at once: the version is read again under the
/// write lock, so exactly one of them migrates and the others find it done.
pub(super) fn migrate(conn: &mut Connection, ctx: &Ctx, migrations: &[&str]) -> StoreResult<u32> {
    let latest = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    let h = header(conn).map_err(|e| ctx.sql(e))?;
    check_header(ctx, &h, latest)?;
    if h.version == latest {
        return Ok(latest);
    }
    let mut run = || -> Result<u32, Fail> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let h = header(&tx)?;
        check_header(ctx, &h, latest)?;
        let from = usize::try_from(h.version).unwrap_or(usize::MAX);
        for sql in migrations.iter().skip(from) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", latest)?;
        tx.commit()?;
        if from < migrations.len() {
            log::info!(
                "store {}: migrated schema from version {} to {latest}",
                ctx.path.display(),
                h.version
            );
        }
        Ok(latest)
    };
    run().map_err(|e| ctx.fail(e))
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: an empty list when sound.
pub(super) fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    for row in stmt.query_map([], |row| row.get::<_, String>(0))? {
        let line = row?;
        if line != "ok" {
            problems.push(line);
        }
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    for row in stmt.query_map([], |row| {
        Ok(format!(
            "foreign key violation in {} row {}",
            row.get::<_, String>(0)?,
            row.get::<_, Option<i64>>(1)?.unwrap_or(-1)
        ))
    })? {
        problems.push(row?);
    }
    Ok(problems)
}
