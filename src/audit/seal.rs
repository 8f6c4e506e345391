//! Seals: signatures over the chain head.
//!
//! The hash chain alone shows that records were changed, removed or reordered, but
//! anyone who can write the directory can rewrite the whole chain consistently. A
//! seal signs the head with a key the rewriter does not have, so everything up to the
//! last verified seal is fixed. Records after the last seal are protected by the
//! chain only; `verify` reports how many there are.
//!
//! [`Sealer`] is the interface. The production sealer signs with an audit key that
//! lives on the token (created by `keywarden init`) — it implements this trait over
//! the backend and is plugged in by the gateway. [`HmacSealer`] is the software
//! implementation for tests and for hosts without a token-backed key: HMAC-SHA256
//! with a key file. It proves nothing against someone who can read that file.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::chain::to_hex;
use super::error::{AuditError, AuditResult};

/// A signature over a chain head, as the seal record stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Algorithm name, e.g. `hmac-sha256`, `ecdsa-p256-sha256`.
    pub alg: String,
    /// Identifies the key (a fingerprint or the token key's `CKA_ID`), never the key.
    pub key_id: String,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

/// Signs and checks chain heads.
///
/// `seal` is called by the writer thread while it holds the trail lock, at most every
/// `seal_every_records` records or `seal_every` seconds and at shutdown, so a slow
/// token delays other writers only then. Implementations must be `Send + Sync`
/// (the writer thread owns an `Arc`) and must not log the head's signature key.
pub trait Sealer: Send + Sync {
    /// Signs `head`, the SHA-256 of the last record's line.
    fn seal(&self, head: &[u8; 32]) -> AuditResult<Seal>;

    /// Checks a seal over `head`: `Ok(true)` valid, `Ok(false)` not made by this
    /// sealer's key (another `alg`/`key_id`: cannot judge), `Err(Seal)` a seal by
    /// this key that does not verify.
    fn verify(&self, head: &[u8; 32], seal: &Seal) -> AuditResult<bool>;

    /// A MAC over `domain || body` under this key, for the head file
    /// (`chain::HeadInfo::encode`): `None` for a key that cannot make one cheaply
    /// (a token key signs only at seals; the head is rewritten on every append).
    fn head_mac(&self, _domain: &[u8], _body: &[u8]) -> Option<[u8; 32]> {
        None
    }
}

/// HMAC-SHA256 over `"keywarden-audit-seal-v1" || head` with a secret key.
pub struct HmacSealer {
    key: Zeroizing<Vec<u8>>,
    key_id: String,
}

impl std::fmt::Debug for HmacSealer {
    // The key never appears in Debug output; its fingerprint is public.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacSealer")
            .field("key", &"<redacted>")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// Prefix of every sealed message, so a seal signature cannot be taken for a
/// signature over anything else.
pub(super) const DOMAIN: &[u8] = b"keywarden-audit-seal-v1";
/// The algorithm name in seal records.
pub const HMAC_ALG: &str = "hmac-sha256";

impl HmacSealer {
    /// A sealer over `key` (at least 32 bytes).
    pub fn new(key: Vec<u8>) -> AuditResult<HmacSealer> {
        let key = Zeroizing::new(key);
        if key.len() < 32 {
            return Err(AuditError::Config(
                "a seal key needs at least 32 bytes".into(),
            ));
        }
        let mut h = Sha256::new();
        h.update(b"keywarden-audit-key-id");
        h.update(key.as_slice());
        let key_id = to_hex(&h.finalize()[..8]);
        Ok(HmacSealer { key, key_id })
    }

    /// Reads the key from a file (raw bytes, or hex text).
    pub fn from_file(path: &std::path::Path) -> AuditResult<HmacSealer> {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|e| AuditError::io(path.display(), &e))?);
        let hex = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| super::chain::from_hex(t.trim()));
        HmacSealer::new(hex.unwrap_or_else(|| bytes.to_vec()))
    }

    /// Reads the key from a file that only its owner (and the sharing group) can
    /// read and nobody else can write; a key anyone else could read is refused
    /// (as ssh refuses such a private key).
    pub fn from_file_checked(
        path: &std::path::Path,
        sharing: crate::fsguard::Sharing,
    ) -> AuditResult<HmacSealer> {
        use std::io::Read;
        let mut file = crate::fsguard::open_checked(path, crate::fsguard::Kind::Secret, sharing)
            .map_err(|e| AuditError::Config(format!("seal key {e}")))?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes)
            .map_err(|e| AuditError::io(path.display(), &e))?;
        let hex = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| super::chain::from_hex(t.trim()));
        HmacSealer::new(hex.unwrap_or_else(|| bytes.to_vec()))
    }

    /// The key's public fingerprint.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn mac(&self, head: &[u8; 32]) -> AuditResult<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .map_err(|_| AuditError::Seal("bad HMAC key length".into()))?;
        mac.update(DOMAIN);
        mac.update(head);
        Ok(mac)
    }
}

impl Sealer for HmacSealer {
    fn seal(&self, head: &[u8; 32]) -> AuditResult<Seal> {
        Ok(Seal {
            alg: HMAC_ALG.into(),
            key_id: self.key_id.clone(),
            sig: self.mac(head)?.finalize().into_bytes().to_vec(),
        })
    }

    fn verify(&self, head: &[u8; 32], seal: &Seal) -> AuditResult<bool> {
        if seal.alg != HMAC_ALG || seal.key_id != self.key_id {
            return Ok(false);
        }
        // verify_slice compares in constant time.
        self.mac(head)?
            .verify_slice(&seal.sig)
            .map(|()| true)
            .map_err(|_| AuditError::Seal("signature does not match the head".into()))
    }

    fn head_mac(&self, domain: &[u8], body: &[u8]) -> Option<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        mac.update(domain);
        mac.update(body);
        Some(mac.finalize().into_bytes().into())
    }
}

/// Several verification keys as one (`keywarden audit verify` with the HMAC key
/// file and the token key's `seal-key.pub`): a seal is judged by the key that made
/// it.
#[derive(Default)]
pub struct SealKeys {
    keys: Vec<Box<dyn Sealer>>,
}

impl SealKeys {
    /// No keys yet.
    pub fn new() -> SealKeys {
        SealKeys::default()
    }

    /// Adds a key.
    pub fn push(&mut self, key: Box<dyn Sealer>) {
        self.keys.push(key);
    }

    /// True when no key was added.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Sealer for SealKeys {
    fn seal(&self, _head: &[u8; 32]) -> AuditResult<Seal> {
        Err(AuditError::Seal(
            "a set of verification keys does not seal".into(),
        ))
    }

    fn verify(&self, head: &[u8; 32], seal: &Seal) -> AuditResult<bool> {
        for key in &self.keys {
            if key.verify(head, seal)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn head_mac(&self, domain: &[u8], body: &[u8]) -> Option<[u8; 32]> {
        self.keys.iter().find_map(|k| k.head_mac(domain, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_verify_and_detect_changes() {
        let s = HmacSealer::new(vec![7; 32]).unwrap();
        let head = [1u8; 32];
        let seal = s.seal(&head).unwrap();
        assert_eq!(s.verify(&head, &seal), Ok(true));
        assert!(s.verify(&[2u8; 32], &seal).is_err());
        let mut forged = seal.clone();
        forged.sig[0] ^= 1;
        assert!(s.verify(&head, &forged).is_err());
        let other = HmacSealer::new(vec![8; 32]).unwrap();
        assert_eq!(other.verify(&head, &seal), Ok(false));
    }

    #[test]
    fn short_keys_are_refused_and_debug_redacts() {
        assert!(HmacSealer::new(vec![1; 16]).is_err());
        let s = HmacSealer::new(vec![0x5a; 32]).unwrap();
        let dbg = format!("{s:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("5a5a") && !dbg.contains("90, 90"));
    }

    #[test]
    fn hex_key_files_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, format!("{}\n", "ab".repeat(32))).unwrap();
        let a = HmacSealer::from_file(&p).unwrap();
        let b = HmacSealer::new(vec![0xab; 32]).unwrap();
        assert_eq!(a.key_id(), b.key_id());
    }
}
