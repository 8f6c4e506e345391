//! Opening the database: connection settings, header checks, migrations.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::errors::{Ctx, Fail};
use super::{OpenOptions, DB_FILE};
use crate::fsguard::{FileError, GuardedDir, How, Kind};
use crate::store::schema::{APPLICATION_ID, MIGRATIONS};
use crate::store::{StoreError, StoreResult};

/// The files SQLite opens by path beside the database: checked (never followed)
/// before it does.
pub(super) const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Opens and migrates `<dir>/keywarden.db`; with `create`, makes it first when it
/// does not exist (only `keywarden init` does: a store that vanished must not come
/// back empty).
pub(super) fn open(
    dir: &Path,
    options: &OpenOptions,
    create: bool,
) -> StoreResult<(Connection, Ctx)> {
    // SQLite opens its files by path: the directory and each file it may open are
    // checked first (no links, no foreign owners, nothing others can write). The
    // directory is writable by trusted users only, so nobody else can swap a file
    // between the check and SQLite's open.
    let guarded = guard(dir, options)?;
    let path = dir.join(DB_FILE);
    let unsafe_file = |e: FileError| match e {
        FileError::Io {
            detail,
            denied: true,
            ..
        } => StoreError::ReadOnly {
            path: path.clone(),
            detail,
        },
        FileError::Io { detail, .. } => StoreError::Other {
            path: path.clone(),
            detail,
        },
        e => StoreError::Unsafe(e.to_string()),
    };
    for side in SIDE_FILES {
        guarded
            .check(&format!("{DB_FILE}{side}"), Kind::Private)
            .map_err(unsafe_file)?;
    }
    if guarded
        .check(DB_FILE, Kind::Private)
        .map_err(unsafe_file)?
        .is_none()
    {
        if !create {
            return Err(StoreError::Missing(path));
        }
        // Made here, with its mode, rather than by SQLite (which would use the
        // umask); its WAL and shared-memory files take the same mode.
        match guarded.open_file(DB_FILE, How::CreateNew, Kind::Private) {
            Ok(_) => {}
            Err(FileError::Io { detail, .. }) if detail.contains("exists") => {}
            Err(e) => return Err(unsafe_file(e)),
        }
    }
    let ctx = Ctx {
        path: path.clone(),
        timeout_ms: u64::try_from(options.busy_timeout.as_millis()).unwrap_or(u64::MAX),
    };
    // No SQLITE_OPEN_URI: the path is a path, never parsed for options.
    // Never SQLITE_OPEN_CREATE: the file exists (checked above).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
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

/// Opens and checks the store directory.
pub(super) fn guard(dir: &Path, options: &OpenOptions) -> StoreResult<GuardedDir> {
    GuardedDir::open(dir, options.sharing).map_err(|e| match e {
        FileError::Missing(_) => StoreError::MissingDir(dir.to_path_buf()),
        FileError::Io { detail, .. } if detail.contains("Not a directory") => {
            StoreError::MissingDir(dir.to_path_buf())
        }
        FileError::Io { detail, .. } => StoreError::Other {
            path: dir.to_path_buf(),
            detail,
        },
        e => StoreError::Unsafe(e.to_string()),
    })
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
