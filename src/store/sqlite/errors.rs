//! SQLite errors → [`StoreError`] kinds, with the file they concern.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// What an error message needs to name: the file and the timeout in force.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub(super) path: PathBuf,
    pub(super) timeout_ms: u64,
}

/// An internal failure: either SQLite's (classified by [`Ctx::fail`]) or already one of
/// ours. Lets the SQL helpers use `?` on both.
#[derive(Debug)]
pub(super) enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Ctx {
    pub(super) fn fail(&self, f: Fail) -> StoreError {
        match f {
            Fail::Store(e) => e,
            Fail::Sql(e) => self.sql(e),
        }
    }

    /// Classifies a SQLite error. The primary result code decides; the message is
    /// SQLite's own (it never contains bound values, so never a secret).
    pub(super) fn sql(&self, e: rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path,
                timeout_ms: self.timeout_ms,
            },
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
                StoreError::ReadOnly { path, detail }
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt { path, detail }
            }
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(detail),
            Some(ErrorCode::CannotOpen) => self.cannot_open(detail),
            _ => match e {
                // A value of the wrong type in a column the schema constrains: the
                // file was edited behind our back.
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt {
                    path,
                    detail: format!("unexpected value: {detail}"),
                },
                _ => StoreError::Other { path, detail },
            },
        }
    }

    /// `SQLITE_CANTOPEN` says only that a file could not be opened. Find out whether
    /// the directory is gone or cannot be written (SQLite must create the database,
    /// its WAL and its shared-memory file there), so the message can say so.
    pub(super) fn cannot_open(&self, detail: String) -> StoreError {
        let path = self.path.clone();
        let Some(dir) = self.path.parent() else {
            return StoreError::Other { path, detail };
        };
        if !dir.is_dir() {
            return StoreError::MissingDir(dir.to_path_buf());
        }
        match probe_writable(dir) {
            Err(e) => StoreError::ReadOnly {
                path,
                detail: format!("cannot create files in {}: {e}", dir.display()),
            },
            Ok(()) => StoreError::Other { path, detail },
        }
    }
}

/// Tries to create (and removes) a file in `dir`. Mode bits do not answer the
/// question: root ignores them, and a read-only mount or an immutable directory
/// refuses root too.
pub(super) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".keywarden-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
