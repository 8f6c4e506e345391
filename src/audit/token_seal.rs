//! [`TokenSealer`]: seals signed by the audit key on the token itself.
//!
//! The key pair is created by `keywarden audit init-seal-key` (or `keywarden init
//! --audit-token`): EC P-256, label [`SEAL_KEY_LABEL`], `CKA_ID` [`SEAL_KEY_ID`], the
//! private half `CKA_PRIVATE=FALSE`, `CKA_SENSITIVE=TRUE`, `CKA_EXTRACTABLE=FALSE`,
//! `CKA_SIGN=TRUE`. It is not private because the module cannot log in on its own:
//! login is per application per token (PKCS#11 v2.40 §5.6), so logging in for a seal
//! would change the application's own state. A public key object is usable from a
//! public session; it still cannot leave the token, so forging a seal needs the
//! token (its files or the HSM), not just write access to the trail. docs/audit.md
//! says what that does and does not protect.
//!
//! Each seal: find the slot by token label → open a read-only session → find the
//! private key by label and class → `CKM_ECDSA` over
//! `SHA-256("keywarden-audit-seal-v1" || head)` → close the session. Sealing happens
//! at most every `seal_every_*` and at shutdown, so the session is not kept open:
//! nothing of it can be closed under our feet by the application's
//! `C_CloseAllSessions`, and the slot is looked up afresh each time.

use std::sync::Arc;

use pkcs11_sys::{CKA_EC_POINT, CKK_EC, CKM_ECDSA, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};

use super::ecdsa::{seal_digest, EcdsaVerifier, ECDSA_ALG};
use super::error::{AuditError, AuditResult};
use super::seal::{Seal, Sealer};
use crate::backend::{Backend, FindAttr, HelperSession};

/// `CKA_LABEL` of both halves of the audit seal key.
pub const SEAL_KEY_LABEL: &str = "keywarden-audit-seal";
/// `CKA_ID` of both halves: fixed, so the key is found without configuration and
/// is never mistaken for an application key (whose ids Keywarden generates).
pub const SEAL_KEY_ID: &[u8] = b"keywarden-audit-seal-v1";

/// Signs chain heads with the token's audit key, through the gateway's backend.
pub struct TokenSealer {
    backend: Arc<Backend>,
    token_label: String,
    verifier: EcdsaVerifier,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSealer")
            .field("token", &self.token_label)
            .field("key_id", &self.verifier.key_id())
            .finish()
    }
}

fn seal_err(what: &str) -> impl Fn(crate::error::Error) -> AuditError + '_ {
    move |e| AuditError::Seal(format!("{what}: {e}"))
}

fn key_template(class: pkcs11_sys::CK_OBJECT_CLASS) -> [FindAttr; 4] {
    [
        FindAttr::Class(class),
        FindAttr::KeyType(CKK_EC),
        FindAttr::Label(SEAL_KEY_LABEL.into()),
        FindAttr::Id(SEAL_KEY_ID.to_vec()),
    ]
}

impl TokenSealer {
    /// A sealer over `backend` (initialised) with the audit key on the token
    /// labelled `token_label`. Fails when the token or either half of the key is
    /// missing, so a misconfiguration shows at start, not at the first seal.
    pub fn new(backend: Arc<Backend>, token_label: &str) -> AuditResult<TokenSealer> {
        let verifier = {
            let session = open(&backend, token_label)?;
            // The private half must be there and usable from a public session.
            one(&session, CKO_PRIVATE_KEY)?;
            let public = one(&session, CKO_PUBLIC_KEY)?;
            let point = session
                .attribute_bytes(public, CKA_EC_POINT)
                .map_err(seal_err("reading the seal key's CKA_EC_POINT"))?;
            EcdsaVerifier::from_point(&point)?
        };
        Ok(TokenSealer {
            backend,
            token_label: token_label.to_owned(),
            verifier,
        })
    }

    /// The key's fingerprint, as in seal records and `seal-key.pub`.
    pub fn key_id(&self) -> &str {
        self.verifier.key_id()
    }

    /// The public key's verifier (what `seal-key.pub` holds).
    pub fn verifier(&self) -> &EcdsaVerifier {
        &self.verifier
    }
}

fn open<'a>(backend: &'a Backend, label: &str) -> AuditResult<HelperSession<'a>> {
    let slot = backend
        .slot_by_token_label(label)
        .map_err(seal_err("finding the audit token"))?;
    backend
        .open_helper_session(slot)
        .map_err(seal_err("opening a session for the seal"))
}

/// The one object of the seal key of this class.
fn one(
    session: &HelperSession<'_>,
    class: pkcs11_sys::CK_OBJECT_CLASS,
) -> AuditResult<pkcs11_sys::CK_OBJECT_HANDLE> {
    let found = session
        .find_objects(&key_template(class))
        .map_err(seal_err("finding the seal key"))?;
    let what = if class == CKO_PRIVATE_KEY {
        "private"
    } else {
        "public"
    };
    match found.as_slice() {
        [h] => Ok(*h),
        [] => Err(AuditError::Seal(format!(
            "no {what} key labelled {SEAL_KEY_LABEL:?} usable without login on the token \
             (create it with `keywarden audit init-seal-key`)"
        ))),
        _ => Err(AuditError::Seal(format!(
            "{} {what} keys labelled {SEAL_KEY_LABEL:?}: remove the extra ones",
            found.len()
        ))),
    }
}

impl Sealer for TokenSealer {
    fn seal(&self, head: &[u8; 32]) -> AuditResult<Seal> {
        let session = open(&self.backend, &self.token_label)?;
        let key = one(&session, CKO_PRIVATE_KEY)?;
        let sig = session
            .sign_once(CKM_ECDSA, key, &seal_digest(head))
            .map_err(seal_err("signing the chain head"))?;
        drop(session);
        // A seal that would not verify is worse than none: it would be reported as
        // tampering. Check it here, where the cause (a replaced key) is clear.
        self.verifier.check(head, &sig).map_err(|_| {
            AuditError::Seal(format!(
                "the token's seal key no longer matches key_id {}",
                self.key_id()
            ))
        })?;
        Ok(Seal {
            alg: ECDSA_ALG.into(),
            key_id: self.key_id().to_owned(),
            sig,
        })
    }

    fn verify(&self, head: &[u8; 32], seal: &Seal) -> AuditResult<bool> {
        self.verifier.verify(head, seal)
    }
}
