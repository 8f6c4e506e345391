//! Named identities: hashing and verifying secrets, and reading `name:secret` PINs.
//!
//! Secrets are hashed with argon2id (RFC 9106) at a random 16-byte salt, stored as a
//! PHC string; the clear secret is never stored, logged or kept: callers pass it as a
//! borrowed slice and own (and zeroize) the buffer. Argon2's working memory is wiped by
//! the crate's `zeroize` feature.
//!
//! Parameters: m = 19 MiB, t = 2, p = 1 — OWASP's recommended argon2id setting. A
//! verify takes about 25–30 ms in an optimised build on this project's 2-core machines
//! (measured by `verify_time_is_bounded` below), under the 50 ms budget for a
//! `C_Login`. Verifying uses the parameters in the stored string, so raising them later
//! only affects new and changed secrets.

use argon2::password_hash::{self, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version, ARGON2ID_IDENT};

use super::{Identity, PhcHash, Store, StoreError, StoreResult, UnixTime};

/// Argon2id memory cost in KiB.
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P_COST: u32 = 1;
/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 8;
/// Longest secret accepted (the whole `name:secret` PIN must still fit a client's
/// PIN field).
pub const MAX_SECRET_LEN: usize = 128;
/// Longest identity or role name.
pub const MAX_NAME_LEN: usize = 64;

fn argon2() -> StoreResult<Argon2<'static>> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .map_err(|e| StoreError::Invalid(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Identity names: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
/// Never a ':' — it separates the name from the secret in a PIN.
pub fn validate_name(name: &str) -> StoreResult<()> {
    if is_name(name) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "identity name {name:?}: use 1-{MAX_NAME_LEN} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

/// Role names follow the identity name rule.
pub fn validate_role(role: &str) -> StoreResult<()> {
    if is_name(role) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "role name {role:?}: use 1-{MAX_NAME_LEN} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Secrets: 8–128 bytes. The message never echoes the secret.
pub fn validate_secret(secret: &[u8]) -> StoreResult<()> {
    if (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "a secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes long"
        )))
    }
}

/// Hashes a secret with a fresh random salt.
pub fn hash_secret(secret: &[u8]) -> StoreResult<PhcHash> {
    validate_secret(secret)?;
    // The fallible generator: an RNG failure is an error here, not a panic.
    let salt = password_hash::try_generate_salt()
        .map_err(|e| StoreError::Invalid(format!("no randomness for a salt: {e}")))?;
    let hash = argon2()?
        .hash_password_with_salt(secret, &salt)
        .map_err(|e| StoreError::Invalid(format!("argon2 hashing failed: {e}")))?;
    Ok(PhcHash::new(hash.to_string()))
}

/// Whether `secret` matches `hash`. The final comparison is constant-time (argon2's
/// `Output` equality); the work is the same for a right and a wrong secret. A stored
/// string that is not an argon2id PHC hash is an error, never a match.
pub fn verify_secret(secret: &[u8], hash: &PhcHash) -> StoreResult<bool> {
    let bad = || StoreError::Invalid("stored credential is not an argon2id PHC hash".into());
    let parsed = PasswordHash::new(hash.as_str()).map_err(|_| bad())?;
    if parsed.algorithm != ARGON2ID_IDENT {
        return Err(bad());
    }
    match argon2()?.verify_password(secret, &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(bad()),
    }
}

/// A hash no secret matches in practice, verified against when the name is unknown
/// or disabled so that those answers take as long as a wrong secret.
fn decoy() -> Option<&'static PhcHash> {
    static DECOY: std::sync::OnceLock<Option<PhcHash>> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| hash_secret(b"keywarden decoy credential").ok())
        .as_ref()
}

/// Adds an identity (validating name, roles and secret).
pub fn add(
    store: &dyn Store,
    name: &str,
    secret: &[u8],
    roles: &[String],
    at: UnixTime,
) -> StoreResult<Identity> {
    validate_name(name)?;
    for role in roles {
        validate_role(role)?;
    }
    let hash = hash_secret(secret)?;
    store.add_identity(name, &hash, roles, at)
}

/// Replaces an identity's secret.
pub fn set_secret(store: &dyn Store, name: &str, secret: &[u8]) -> StoreResult<()> {
    validate_name(name)?;
    let hash = hash_secret(secret)?;
    store.set_identity_hash(name, &hash)
}

/// Checks a named login: `Some(identity)` when the name exists, is enabled and the
/// secret matches; `None` otherwise (the caller answers `CKR_PIN_INCORRECT`). An
/// unknown or disabled name costs the same argon2 work as a wrong secret, so timing
/// does not tell which names exist. Errors are store failures (fail closed).
pub fn verify(store: &dyn Store, name: &str, secret: &[u8]) -> StoreResult<Option<Identity>> {
    let found = if validate_name(name).is_ok() {
        store.identity_with_hash(name)?
    } else {
        None
    };
    match found {
        Some((identity, hash)) => {
            let ok = verify_secret(secret, &hash)?;
            Ok((ok && !identity.disabled).then_some(identity))
        }
        None => {
            if let Some(d) = decoy() {
                let _ = verify_secret(secret, d);
            }
            Ok(None)
        }
    }
}

/// A PIN as given to `C_Login`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// A token PIN, forwarded to the token as is.
    Token(&'a [u8]),
    /// `name:secret`, checked against the named identities.
    Named {
        /// The identity name.
        name: &'a str,
        /// The secret (borrowed from the caller's buffer).
        secret: &'a [u8],
    },
}

impl std::fmt::Debug for Pin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pin::Token(_) => f.write_str("Pin::Token(<redacted>)"),
            Pin::Named { name, .. } => {
                write!(f, "Pin::Named {{ name: {name:?}, secret: <redacted> }}")
            }
        }
    }
}

/// Reads a PIN: split at the first ':'; when the part before it is a well-formed
/// identity name, the PIN is `Named`, the rest (which may contain ':') its secret.
/// Anything else — no ':', an empty or malformed name — is a plain token PIN, so
/// existing PINs keep working unless they happen to look like `name:...`.
pub fn parse_pin(pin: &[u8]) -> Pin<'_> {
    let Some(colon) = pin.iter().position(|&b| b == b':') else {
        return Pin::Token(pin);
    };
    let (name, rest) = pin.split_at(colon);
    match std::str::from_utf8(name) {
        Ok(name) if is_name(name) => Pin::Named {
            name,
            secret: rest.get(1..).unwrap_or_default(),
        },
        _ => Pin::Token(pin),
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
