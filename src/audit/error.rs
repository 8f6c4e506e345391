//! The audit engine's errors. They carry no record content: a message names a file
//! and an OS error, never a field of a record.

use std::io;

/// What can go wrong while writing, sealing or reading the trail. `Clone`, because
/// one failed batch answers every `required`-mode caller waiting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// No space (`ENOSPC`, `EDQUOT`, `EFBIG`): the trail cannot grow.
    #[error("audit trail full: {0}")]
    DiskFull(String),
    /// Any other I/O failure on the trail directory.
    #[error("audit trail I/O: {0}")]
    Io(String),
    /// The trail's last record cannot be read, so the chain cannot be continued.
    #[error("audit trail damaged: {0}")]
    Damaged(String),
    /// The background writer is gone (shut down, or this is a forked child that has
    /// not called `after_fork_in_child`).
    #[error("audit writer is not running")]
    WriterGone,
    /// The sealer failed or a seal does not verify.
    #[error("audit seal: {0}")]
    Seal(String),
    /// A bad `[audit]` setting.
    #[error("audit configuration: {0}")]
    Config(String),
}

impl AuditError {
    /// Classifies an I/O error, naming what was being done (`what` never holds data).
    pub fn io(what: impl std::fmt::Display, err: &io::Error) -> AuditError {
        let full = matches!(
            err.raw_os_error(),
            Some(code) if code == libc::ENOSPC || code == libc::EDQUOT || code == libc::EFBIG
        );
        if full {
            AuditError::DiskFull(format!("{what}: {err}"))
        } else {
            AuditError::Io(format!("{what}: {err}"))
        }
    }

    /// True for [`AuditError::DiskFull`].
    pub fn is_disk_full(&self) -> bool {
        matches!(self, AuditError::DiskFull(_))
    }
}

/// Shorthand for the engine's results.
pub type AuditResult<T> = std::result::Result<T, AuditError>;
