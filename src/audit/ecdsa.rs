//! Checking token-made seals with the public half of the audit key.
//!
//! The token signs `SHA-256("keywarden-audit-seal-v1" || head)` with `CKM_ECDSA`
//! (raw `r || s`, 64 bytes). Verifying needs only the public key, exported once by
//! `keywarden audit init-seal-key` into `seal-key.pub`, so an auditor checks a trail
//! on any machine, without the token and without any secret.
//!
//! `seal-key.pub` is TOML:
//!
//! ```toml
//! alg = "ecdsa-p256-sha256"
//! key_id = "…32 hex…"   # SHA-256 fingerprint of the point (first 16 bytes)
//! point = "04…"         # SEC1 uncompressed point, 65 bytes in hex
//! token = "LABEL"       # informative
//! ```

use std::path::Path;

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::chain::{from_hex, to_hex};
use super::error::{AuditError, AuditResult};
use super::seal::{Seal, Sealer, DOMAIN};

/// The algorithm name in seal records made by the token key.
pub const ECDSA_ALG: &str = "ecdsa-p256-sha256";
/// The public key file's name in the audit directory.
pub const SEAL_PUB_FILE: &str = "seal-key.pub";
/// Start of the name of a retired seal key's public half in the audit directory,
/// `seal-key-<key_id>.pub` (`audit init-seal-key --rotate` keeps the lost key's
/// there; `audit verify` reads them all).
pub const RETIRED_SEAL_PUB_PREFIX: &str = "seal-key-";

/// The `key_id` of a P-256 public key: the first 16 bytes of SHA-256 of its SEC1
/// uncompressed encoding, in hex. Public, and the same wherever it is computed.
pub fn ec_key_id(point: &[u8]) -> String {
    to_hex(&Sha256::digest(point)[..16])
}

/// The message the token signs for `head` (its SHA-256 is what `CKM_ECDSA` gets).
pub fn seal_message(head: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + head.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(head);
    m
}

/// SHA-256 of `seal_message`: the 32 bytes handed to `CKM_ECDSA`.
pub fn seal_digest(head: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(seal_message(head)).into()
}

/// The `seal-key.pub` file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealPubFile {
    /// Always [`ECDSA_ALG`].
    pub alg: String,
    /// [`ec_key_id`] of the point.
    pub key_id: String,
    /// SEC1 uncompressed point, hex.
    pub point: String,
    /// The token holding the private key (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl SealPubFile {
    /// The file for `point` (SEC1 uncompressed) on token `token`.
    pub fn new(point: &[u8], token: Option<&str>) -> SealPubFile {
        SealPubFile {
            alg: ECDSA_ALG.into(),
            key_id: ec_key_id(point),
            point: to_hex(point),
            token: token.map(str::to_owned),
        }
    }

    /// The TOML text, with a comment saying what the file is.
    pub fn render(&self) -> AuditResult<String> {
        let body = toml::to_string(self)
            .map_err(|e| AuditError::Config(format!("cannot write the seal key file: {e}")))?;
        Ok(format!(
            "# Public half of the audit seal key (keywarden audit init-seal-key).\n\
             # `keywarden audit verify` checks token seals with it. Keep a copy where the\n\
             # trail's writers cannot change it, and compare key_id with that copy.\n{body}"
        ))
    }
}

/// Verifies seals made by the token's audit key.
#[derive(Clone)]
pub struct EcdsaVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl std::fmt::Debug for EcdsaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcdsaVerifier")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl EcdsaVerifier {
    /// From a SEC1 point (uncompressed, or DER-wrapped in an OCTET STRING as
    /// `CKA_EC_POINT` often is).
    pub fn from_point(point: &[u8]) -> AuditResult<EcdsaVerifier> {
        let raw = unwrap_ec_point(point);
        let key = VerifyingKey::from_sec1_bytes(raw)
            .map_err(|_| AuditError::Config("not a P-256 public key".into()))?;
        // The key_id is computed over the uncompressed encoding whatever was given,
        // so a compressed point names the same key.
        let uncompressed = key.to_encoded_point(false);
        Ok(EcdsaVerifier {
            key_id: ec_key_id(uncompressed.as_bytes()),
            key,
        })
    }

    /// From a `seal-key.pub` file; its `key_id` must match its point.
    pub fn from_file(path: &Path) -> AuditResult<EcdsaVerifier> {
        let text = std::fs::read_to_string(path).map_err(|e| AuditError::io(path.display(), &e))?;
        let file: SealPubFile = toml::from_str(&text)
            .map_err(|e| AuditError::Config(format!("{}: {e}", path.display())))?;
        if file.alg != ECDSA_ALG {
            return Err(AuditError::Config(format!(
                "{}: alg {:?} is not {ECDSA_ALG}",
                path.display(),
                file.alg
            )));
        }
        let point = from_hex(&file.point)
            .ok_or_else(|| AuditError::Config(format!("{}: point is not hex", path.display())))?;
        let v = EcdsaVerifier::from_point(&point)?;
        if v.key_id != file.key_id {
            return Err(AuditError::Config(format!(
                "{}: key_id {} does not match the point (its fingerprint is {})",
                path.display(),
                file.key_id,
                v.key_id
            )));
        }
        Ok(v)
    }

    /// The key's fingerprint.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The point, SEC1 uncompressed.
    pub fn point(&self) -> Vec<u8> {
        self.key.to_encoded_point(false).as_bytes().to_vec()
    }

    /// Checks a raw `r || s` signature over `head`.
    pub fn check(&self, head: &[u8; 32], sig: &[u8]) -> AuditResult<()> {
        let sig = Signature::from_slice(sig)
            .map_err(|_| AuditError::Seal("not a P-256 signature (r || s, 64 bytes)".into()))?;
        // `verify` hashes the message with SHA-256, which is exactly what the token
        // was given to sign with CKM_ECDSA.
        self.key
            .verify(&seal_message(head), &sig)
            .map_err(|_| AuditError::Seal("signature does not match the head".into()))
    }
}

impl Sealer for EcdsaVerifier {
    fn seal(&self, _head: &[u8; 32]) -> AuditResult<Seal> {
        Err(AuditError::Seal(
            "the public key only verifies; seals are made on the token".into(),
        ))
    }

    fn verify(&self, head: &[u8; 32], seal: &Seal) -> AuditResult<bool> {
        if seal.alg != ECDSA_ALG || seal.key_id != self.key_id {
            return Ok(false);
        }
        self.check(head, &seal.sig).map(|()| true)
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point in PKCS#11 v2.40 (§2.3.3),
/// though some modules return the bare point: accept both.
pub fn unwrap_ec_point(value: &[u8]) -> &[u8] {
    match value {
        // A bare P-256 point first: an uncompressed one (65 bytes, 0x04 ...) whose x
        // happens to start with 0x3f would otherwise read as "OCTET STRING of 63
        // bytes" (a 1-in-256 misparse); DER-wrapped points are 67 or 35 bytes long.
        [0x04, ..] if value.len() == 65 => value,
        [0x02 | 0x03, ..] if value.len() == 33 => value,
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && len & 0x80 == 0 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    /// Signs as the token does: CKM_ECDSA over the 32-byte digest.
    fn token_like_seal(k: &SigningKey, head: &[u8; 32]) -> Vec<u8> {
        let sig: Signature = k.sign_prehash(&seal_digest(head)).unwrap();
        sig.to_bytes().to_vec()
    }

    #[test]
    fn a_bare_point_whose_x_starts_with_0x3f_is_not_mistaken_for_der() {
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1] = 0x3f; // 63 = the number of bytes after it: looks like DER
        assert_eq!(unwrap_ec_point(&point), &point[..]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(&point);
        assert_eq!(unwrap_ec_point(&wrapped), &point[..]);
    }

    #[test]
    fn seals_verify_and_changes_are_caught() {
        let k = key();
        let point = k
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let v = EcdsaVerifier::from_point(&point).unwrap();
        let head = [3u8; 32];
        let seal = Seal {
            alg: ECDSA_ALG.into(),
            key_id: v.key_id().into(),
            sig: token_like_seal(&k, &head),
        };
        assert_eq!(v.verify(&head, &seal), Ok(true));
        assert!(v.verify(&[4u8; 32], &seal).is_err());
        let mut flipped = seal.clone();
        flipped.sig[10] ^= 0x01;
        assert!(v.verify(&head, &flipped).is_err());
        let mut short = seal.clone();
        short.sig.pop();
        assert!(v.verify(&head, &short).is_err());
        // Another key's seal: not judged here.
        let other = Seal {
            key_id: "00".repeat(16),
            ..seal.clone()
        };
        assert_eq!(v.verify(&head, &other), Ok(false));
        assert!(v.seal(&head).is_err());
    }

    #[test]
    fn der_wrapped_and_compressed_points_name_the_same_key() {
        let k = key();
        let point = k
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&point);
        let compressed = k.verifying_key().to_encoded_point(true).as_bytes().to_vec();
        let a = EcdsaVerifier::from_point(&point).unwrap();
        let b = EcdsaVerifier::from_point(&der).unwrap();
        let c = EcdsaVerifier::from_point(&compressed).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.key_id(), c.key_id());
        assert_eq!(a.point(), point);
        assert!(EcdsaVerifier::from_point(&[4u8; 65]).is_err());
    }

    #[test]
    fn a_key_set_judges_each_seal_by_its_own_key() {
        use crate::audit::{HmacSealer, SealKeys};
        let k = key();
        let point = k
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let ecdsa = EcdsaVerifier::from_point(&point).unwrap();
        let hmac = HmacSealer::new(vec![9; 32]).unwrap();
        let head = [7u8; 32];
        let token_seal = Seal {
            alg: ECDSA_ALG.into(),
            key_id: ecdsa.key_id().into(),
            sig: token_like_seal(&k, &head),
        };
        let hmac_seal = hmac.seal(&head).unwrap();
        let foreign = HmacSealer::new(vec![1; 32]).unwrap().seal(&head).unwrap();
        let mut keys = SealKeys::new();
        assert!(keys.is_empty());
        keys.push(Box::new(hmac));
        keys.push(Box::new(ecdsa));
        assert_eq!(keys.verify(&head, &token_seal), Ok(true));
        assert_eq!(keys.verify(&head, &hmac_seal), Ok(true));
        assert_eq!(keys.verify(&head, &foreign), Ok(false));
        assert!(keys.verify(&[0; 32], &token_seal).is_err());
        assert!(keys.seal(&head).is_err());
    }

    #[test]
    fn pub_files_round_trip_and_a_wrong_key_id_is_refused() {
        let k = key();
        let point = k
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEAL_PUB_FILE);
        let file = SealPubFile::new(&point, Some("tok"));
        std::fs::write(&path, file.render().unwrap()).unwrap();
        let v = EcdsaVerifier::from_file(&path).unwrap();
        assert_eq!(v.key_id(), file.key_id);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(&file.key_id, &"ab".repeat(16))).unwrap();
        assert!(EcdsaVerifier::from_file(&path).is_err());
    }
}
