//! The store's own error kinds.
//!
//! Every failure to reach a trustworthy store is an error, never a default: the module
//! refuses whatever needs the store (fail closed). In the crate-wide [`crate::Error`]
//! they travel as `Error::Store` (the `From` impl below) and are reported to PKCS#11
//! callers as `CKR_GENERAL_ERROR` — the code the spec keeps for "the module cannot go
//! on", the same one a broken configuration gets. The lifecycle and identity layers that call the
//! store decide the *logical* answers themselves (a wrong named PIN is
//! `CKR_PIN_INCORRECT`, from `Ok(None)`, not from an error here).
//!
//! Messages name the file and the remedy; they never contain secrets or hashes.

use std::path::PathBuf;

use pkcs11_sys::CKR_GENERAL_ERROR;

use crate::error::{Error, Failure};

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store.dir` does not exist or is not a directory.
    #[error("store directory {0} does not exist or is not a directory (create it, or run `keywarden init`)")]
    MissingDir(PathBuf),
    /// `keywarden.db` does not exist. Only `keywarden init` creates a store: one
    /// that vanished is an error, never a fresh empty store (whose keys and
    /// identities would all be gone).
    #[error("store {} does not exist; nothing is created implicitly (restore it from a backup, or run `keywarden init` for a new store)", .0.display())]
    Missing(PathBuf),
    /// A file or the directory of the store is not safe to use (a link, a
    /// foreign owner, writable or readable by others).
    #[error("store file {0}")]
    Unsafe(String),
    /// Another process held the write lock longer than the configured busy timeout.
    #[error("store {path} is locked by another process for longer than {timeout_ms} ms")]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The busy timeout that ran out.
        timeout_ms: u64,
    },
    /// The file or its directory cannot be written (read-only mount, permissions,
    /// immutable file): the store needs to write its WAL and lock files even to read.
    #[error("store {path} is read-only: {detail}")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// What the operating system or SQLite said.
        detail: String,
    },
    /// Not a database, not a Keywarden store, or an integrity check failed.
    #[error("store {path} is corrupt: {detail} (restore it from a backup)")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer Keywarden; this one will not guess.
    #[error("store {path} has schema version {found}, newer than this Keywarden supports ({supported}); upgrade Keywarden")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest schema this build knows.
        supported: u32,
    },
    /// The change would break an invariant (a second active version, a duplicate
    /// name, a rotation that lost a race).
    #[error("store conflict: {0}")]
    Conflict(String),
    /// A lifecycle transition SP 800-57 does not allow.
    #[error("a key version cannot go from {from} to {to}")]
    InvalidTransition {
        /// The current state.
        from: &'static str,
        /// The refused target state.
        to: &'static str,
    },
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A value given to the store is not acceptable (bad name, empty label).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// Anything else SQLite or the operating system reported.
    #[error("store {path}: {detail}")]
    Other {
        /// The database file.
        path: PathBuf,
        /// What was reported.
        detail: String,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Store(Failure::new(CKR_GENERAL_ERROR, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_general_errors() {
        let locked = StoreError::Locked {
            path: "/s/keywarden.db".into(),
            timeout_ms: 2000,
        };
        assert_eq!(Error::from(locked).rv(), CKR_GENERAL_ERROR);
    }
}
