//! What the lifecycle needs of a token, as a small trait: the CLI implements it
//! with `cryptoki` over the real token, the module over the loaded backend
//! (`backend_token.rs`), unit tests with an in-memory fake. Objects
//! are addressed by `CKA_ID` (a version is the set of objects sharing one), never by
//! handle, so no handle outlives the call that found it.

use super::shape::KeyShape;
use crate::store::UnixTime;

/// A token failure, in words (the CLI shows it; nothing branches on its kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token: {0}")]
pub struct TokenError(pub String);

/// One key object on the token (private, public or secret key, or certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// `CKA_CLASS`.
    pub class: u64,
    /// `CKA_ID` (empty when the object has none).
    pub id: Vec<u8>,
    /// `CKA_LABEL` (lossy UTF-8).
    pub label: String,
}

/// The token operations of the lifecycle. All by `CKA_ID` or label.
pub trait TokenOps {
    /// The token's serial number (`CK_TOKEN_INFO.serialNumber`, trimmed).
    fn serial(&self) -> String;
    /// Key objects and certificates with this `CKA_ID`.
    fn find_by_id(&self, id: &[u8]) -> Result<Vec<TokenObject>, TokenError>;
    /// Key objects and certificates with this `CKA_LABEL`.
    fn find_by_label(&self, label: &str) -> Result<Vec<TokenObject>, TokenError>;
    /// Every key object and certificate (for reconciliation).
    fn all_objects(&self) -> Result<Vec<TokenObject>, TokenError>;
    /// The shape of the key whose objects carry `id`.
    fn shape(&self, id: &[u8]) -> Result<KeyShape, TokenError>;
    /// Generates a key (pair) of `shape` with `CKA_ID = id` and `CKA_LABEL = label`,
    /// as token objects, `CKA_START_DATE` = `start`.
    fn generate(
        &self,
        shape: &KeyShape,
        id: &[u8],
        label: &str,
        start: UnixTime,
    ) -> Result<(), TokenError>;
    /// Sets `CKA_START_DATE` / `CKA_END_DATE` (those given) on every object with `id`.
    fn set_dates(
        &self,
        id: &[u8],
        start: Option<UnixTime>,
        end: Option<UnixTime>,
    ) -> Result<(), TokenError>;
    /// Sets `CKA_LABEL` on every object with `id`.
    fn set_label(&self, id: &[u8], label: &str) -> Result<(), TokenError>;
    /// Destroys every object with `id`; returns how many there were.
    fn destroy(&self, id: &[u8]) -> Result<usize, TokenError>;
}
