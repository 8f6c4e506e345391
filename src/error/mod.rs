//! One error type for the whole crate and its one mapping to `CK_RV`.
//!
//! A code returned by the real module travels as [`Error::Backend`] and is handed to
//! the application unchanged: Keywarden never collapses a token's answer into
//! `CKR_GENERAL_ERROR`. Messages never contain PINs, key material or data buffers.
//! The names of `CK_RV` codes live here too (`rv_name`, re-exported by `abi`), as
//! these messages name codes.

mod rv;

use pkcs11_sys::*;

pub use rv::rv_name;

/// Everything that can go wrong in Keywarden, each with a documented `CK_RV`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The real module answered with this code; passed through as is.
    #[error("the backend module returned {}", rv_name(*.0))]
    Backend(CK_RV),
    /// A caller's argument breaks the function's contract (NULL pointer, bad length).
    #[error("bad argument: {0}")]
    ArgumentsBad(&'static str),
    /// An argument was decoded and rejected with this specification code and reason:
    /// a malformed template attribute (`CKR_ATTRIBUTE_VALUE_INVALID`), conflicting
    /// duplicates (`CKR_TEMPLATE_INCONSISTENT`), a malformed mechanism parameter
    /// (`CKR_MECHANISM_PARAM_INVALID`). The code is the one the token itself would owe
    /// the caller, so the application sees the same answer with or without Keywarden.
    #[error("argument rejected with {rv}: {why}", rv = rv_name(*.0), why = .1)]
    Invalid(CK_RV, &'static str),
    /// A call other than `C_Initialize` before initialisation, or in a forked child.
    #[error("C_Initialize has not been called (in this process)")]
    NotInitialized,
    /// `C_Initialize` called twice.
    #[error("already initialised")]
    AlreadyInitialized,
    /// An output buffer given by the caller is too small (PKCS#11 v2.40 §5.2).
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The function is not offered (unclassified, or missing in the backend).
    #[error("function not supported")]
    FunctionNotSupported,
    /// The configuration is missing, unreadable or invalid (fail closed).
    #[error("configuration: {0}")]
    Config(String),
    /// The backend module could not be loaded or refused to initialise.
    #[error("backend module: {0}")]
    Load(String),
    /// The metadata store is unusable or refused a change (missing, locked too long,
    /// read-only, corrupt, newer schema, conflict). Operations that need the store
    /// fail closed with `CKR_GENERAL_ERROR`; see `store::StoreError`, whose `From`
    /// impl (in `store`) builds this variant.
    #[error(transparent)]
    Store(Failure),
    /// The audit record of an operation could not be written in `required` mode:
    /// the operation is refused (fail closed). A full trail is
    /// `CKR_DEVICE_MEMORY` ("insufficient memory on the token", the nearest code to
    /// "the token's log is full"), a bad `[audit]` setting or an unsafe trail file
    /// (`AuditError::Config`) `CKR_GENERAL_ERROR`, any other failure `CKR_DEVICE_ERROR`:
    /// the `From<AuditError>` impl (in `audit`) chooses the code.
    #[error(transparent)]
    Audit(Failure),
    /// The policy or the lifecycle refused the call: the documented code of the
    /// refusal (docs/policy.md, "Operations and refusal codes") and the rule that
    /// decided. The decision only builds it; the gateway logs and records it, once,
    /// where the call's path ends (`Recorder::after`).
    #[error("refused by policy rule {rule} with {}", rv_name(*.rv))]
    Refused {
        /// The code the application sees.
        rv: CK_RV,
        /// The rule (or built-in check) that decided.
        rule: String,
        /// What the log line and the audit record say beside rule and code.
        detail: Box<RefusalDetail>,
    },
    /// A request of the admin CLI that names something that is not there or
    /// cannot be used as asked (an unknown token or key, a key without `CKA_ID`, an
    /// empty PIN, a PIN the token refused); the message says which and what to do.
    #[error("{0}")]
    Request(String),
    /// An internal invariant broke (a caught panic, a poisoned state).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The parts of a refusal that its log line and audit record carry beside its rule
/// and code (never shown to the application, which sees the code only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalDetail {
    /// The policy operation refused (`sign`, `generate`, ...), when the call has one.
    pub op: Option<&'static str>,
    /// Why, in the decision's words.
    pub reason: String,
    /// A refused named login: the identity it tried (it has no session identity).
    pub tried: Option<String>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The `CK_RV` this error is reported as. This is the one mapping; a store or
    /// audit failure carries the code its `From` impl chose.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::Backend(rv) => *rv,
            Error::ArgumentsBad(_) | Error::Request(_) => CKR_ARGUMENTS_BAD,
            Error::Invalid(rv, _) => *rv,
            Error::Refused { rv, .. } => *rv,
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::BufferTooSmall => CKR_BUFFER_TOO_SMALL,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::Store(f) | Error::Audit(f) => f.rv(),
            Error::Config(_) | Error::Load(_) | Error::Internal(_) => CKR_GENERAL_ERROR,
        }
    }
}

/// The error of a module above this layer (the metadata store, the audit engine),
/// with the `CK_RV` that module chose for it when it converted the error (its
/// `From` impl for [`Error`]): so this layer needs none of their types. The message
/// and `Debug` are the original error's; [`Failure::get`] gives the original back
/// to code that knows its type.
pub struct Failure {
    rv: CK_RV,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    /// `cause`, to be reported as `rv`.
    pub fn new(rv: CK_RV, cause: impl std::error::Error + Send + Sync + 'static) -> Failure {
        Failure {
            rv,
            cause: Box::new(cause),
        }
    }

    /// The code chosen for the failure.
    pub fn rv(&self) -> CK_RV {
        self.rv
    }

    /// The original error, if it is an `E`.
    pub fn get<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.cause.downcast_ref()
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.cause, f)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.cause, f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.source()
    }
}

/// Turns a backend return value into a `Result`, keeping the code untouched.
pub fn check_rv(rv: CK_RV) -> Result<()> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(Error::Backend(rv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_codes_pass_through_unchanged() {
        for rv in [
            CKR_PIN_INCORRECT,
            CKR_BUFFER_TOO_SMALL,
            CKR_KEY_HANDLE_INVALID,
            0x8000_0001,
        ] {
            assert_eq!(Error::Backend(rv).rv(), rv);
            assert_eq!(check_rv(rv).unwrap_err().rv(), rv);
        }
        assert!(check_rv(CKR_OK).is_ok());
    }

    #[test]
    fn keywarden_errors_have_documented_codes() {
        assert_eq!(Error::Config("x".into()).rv(), CKR_GENERAL_ERROR);
        assert_eq!(Error::NotInitialized.rv(), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(Error::ArgumentsBad("p").rv(), CKR_ARGUMENTS_BAD);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the cause's message")]
    struct Cause;

    #[test]
    fn a_failure_keeps_its_code_message_debug_and_cause() {
        let e = Error::Audit(Failure::new(CKR_DEVICE_MEMORY, Cause));
        assert_eq!(e.rv(), CKR_DEVICE_MEMORY);
        assert_eq!(e.to_string(), "the cause's message");
        assert_eq!(format!("{e:?}"), "Audit(Cause)");
        assert!(matches!(&e, Error::Audit(f) if f.get::<Cause>().is_some()));
        assert!(matches!(&e, Error::Audit(f) if f.get::<std::io::Error>().is_none()));
    }

    #[test]
    fn invalid_carries_its_spec_code_and_reason() {
        for rv in [
            CKR_ATTRIBUTE_VALUE_INVALID,
            CKR_TEMPLATE_INCONSISTENT,
            CKR_MECHANISM_PARAM_INVALID,
        ] {
            assert_eq!(Error::Invalid(rv, "why").rv(), rv);
        }
        let e = Error::Invalid(
            CKR_MECHANISM_PARAM_INVALID,
            "GCM parameter of the wrong size",
        );
        assert_eq!(
            e.to_string(),
            "argument rejected with CKR_MECHANISM_PARAM_INVALID: GCM parameter of the wrong size"
        );
    }
}
