//! The audit engine's errors. They carry no record content: a message names a file
//! and an OS error, never a field of a record.

use std::io;

use pkcs11_sys::{CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_GENERAL_ERROR};

use crate::error::{Error, Failure};

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

/// The code a caller is refused with when its record cannot be written (in
/// `required` mode) or the trail fails it otherwise.
impl From<AuditError> for Error {
    fn from(e: AuditError) -> Error {
        let rv = match &e {
            // "Insufficient memory on the token": the nearest code to "the token's
            // log is full".
            AuditError::DiskFull(_) => CKR_DEVICE_MEMORY,
            // A bad `[audit]` setting or an unsafe trail file (fsguard) is the
            // configuration's fault, as a bad store or config file is.
            AuditError::Config(_) => CKR_GENERAL_ERROR,
            _ => CKR_DEVICE_ERROR,
        };
        Error::Audit(Failure::new(rv, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_errors_have_documented_codes() {
        assert_eq!(
            Error::from(AuditError::DiskFull("x".into())).rv(),
            CKR_DEVICE_MEMORY
        );
        assert_eq!(
            Error::from(AuditError::Io("x".into())).rv(),
            CKR_DEVICE_ERROR
        );
        assert_eq!(
            Error::from(AuditError::Config("x".into())).rv(),
            CKR_GENERAL_ERROR
        );
        let e = Error::from(AuditError::DiskFull("x".into()));
        assert_eq!(e.to_string(), "audit trail full: x");
        assert!(
            matches!(&e, Error::Audit(f) if f.get::<AuditError>().is_some_and(AuditError::is_disk_full))
        );
    }
}
