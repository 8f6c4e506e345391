//! [`TokenSealer`]: seals signed by the audit key on the token itself.
//!
//! The key pair is created by `keywarden audit init-seal-key` (or `keywarden init
//! --audit-token`): EC P-256, label [`SEAL_KEY_LABEL`], `CKA_ID` [`SEAL_KEY_ID`], the
//! private half `CKA_PRIVATE=TRUE`, `CKA_SENSITIVE=TRUE`, `CKA_EXTRACTABLE=FALSE`,
//! `CKA_SIGN=TRUE`, and both halves `CKA_MODIFIABLE`, `CKA_COPYABLE` and
//! `CKA_DESTROYABLE` false (v2.40 §4.4). The gateway refuses every use, copy, edit
//! and destruction of an object with that `CKA_ID` and label to every caller, in
//! both policy modes (`gateway::seal_key`): only this sealer uses it.
//!
//! Each seal: find the slot by token label → open a read-only session → find the
//! private key by label, `CKA_ID` and class; when the application is not logged in
//! (the private half is then invisible), log in with the PIN of
//! `audit.seal_pin_file` (else `backend.pin_file`) and log out again after the
//! signature → `CKM_ECDSA` over
//! `SHA-256("keywarden-audit-seal-v1" || head)` → close the session. Login state is
//! per application per token (PKCS#11 v2.40 §5.6), so for those milliseconds the
//! application's sessions on that token are logged in too: give the seal key a
//! token of its own (docs/audit.md). A key made by older builds with
//! `CKA_PRIVATE=FALSE` is used without a login. Sealing happens at most every
//! `seal_every_*` and at shutdown, so the session is not kept open: nothing of it
//! can be closed under our feet by the application's `C_CloseAllSessions`, and the
//! slot is looked up afresh each time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pkcs11_sys::{
    CKA_EC_POINT, CKK_EC, CKM_ECDSA, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CK_OBJECT_HANDLE,
};

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
    backend: Arc<dyn Backend>,
    token_label: String,
    /// `audit.seal_pin_file`, else `backend.pin_file`: the login for a private
    /// seal key.
    pin_file: Option<PathBuf>,
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
    /// labelled `token_label`, logging in with the PIN in `pin_file` when the key is
    /// private. Fails when the token or either half of the key is missing or cannot
    /// be used (it signs nothing yet: it finds the private half, logging in if it
    /// must), so a misconfiguration or a lost key shows at start, not at the first
    /// seal.
    pub fn new(
        backend: Arc<dyn Backend>,
        token_label: &str,
        pin_file: Option<&Path>,
    ) -> AuditResult<TokenSealer> {
        let verifier = {
            let session = open(&*backend, token_label)?;
            let public = one(&session, CKO_PUBLIC_KEY, token_label)?;
            let point = session
                .attribute_bytes(public, CKA_EC_POINT)
                .map_err(seal_err("reading the seal key's CKA_EC_POINT"))?;
            EcdsaVerifier::from_point(&point)?
        };
        let sealer = TokenSealer {
            backend,
            token_label: token_label.to_owned(),
            pin_file: pin_file.map(Path::to_path_buf),
            verifier,
        };
        sealer.with_private_key(|_, _| Ok(()))?;
        Ok(sealer)
    }

    /// The key's fingerprint, as in seal records and `seal-key.pub`.
    pub fn key_id(&self) -> &str {
        self.verifier.key_id()
    }

    /// The public key's verifier (what `seal-key.pub` holds).
    pub fn verifier(&self) -> &EcdsaVerifier {
        &self.verifier
    }

    /// Runs `f` with a session on the audit token and the private seal key: found
    /// without a login when the application is logged in (or the key is an older
    /// public one), else after a login with `[backend] pin_file`, undone after `f`.
    fn with_private_key<T>(
        &self,
        f: impl FnOnce(&HelperSession<'_>, CK_OBJECT_HANDLE) -> AuditResult<T>,
    ) -> AuditResult<T> {
        let label = self.token_label.as_str();
        let session = open(&*self.backend, label)?;
        if let Some(key) = visible(&session, CKO_PRIVATE_KEY)? {
            return f(&session, key);
        }
        let Some(pin_file) = &self.pin_file else {
            return Err(AuditError::Seal(format!(
                "the audit seal key on token {label:?} is private and the module logs in \
                 to use it with the PIN of audit.seal_pin_file (or backend.pin_file): set one"
            )));
        };
        let pin = crate::pin_file::read(pin_file).map_err(|why| {
            AuditError::Seal(format!(
                "the seal token's PIN file {}: {why}",
                pin_file.display()
            ))
        })?;
        let logged_in = session
            .login_user(&pin)
            .map_err(seal_err("logging in to the audit token"))?;
        drop(pin);
        let result = one(&session, CKO_PRIVATE_KEY, label).and_then(|key| f(&session, key));
        if logged_in {
            if let Err(e) = session.logout() {
                log::warn!("audit seal: logging out of token {label:?}: {e}");
            }
        }
        result
    }
}

fn open<'a>(backend: &'a dyn Backend, label: &str) -> AuditResult<HelperSession<'a>> {
    let slot = backend
        .slot_by_token_label(label)
        .map_err(seal_err("finding the audit token"))?;
    backend
        .open_helper_session(slot)
        .map_err(seal_err("opening a session for the seal"))
}

/// The one object of the seal key of this class the helper session sees, if any.
fn visible(
    session: &HelperSession<'_>,
    class: pkcs11_sys::CK_OBJECT_CLASS,
) -> AuditResult<Option<CK_OBJECT_HANDLE>> {
    let found = session
        .find_objects(&key_template(class))
        .map_err(seal_err("finding the seal key"))?;
    match found.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        _ => Err(AuditError::Seal(format!(
            "{} objects of class {class} labelled {SEAL_KEY_LABEL:?}: remove the extra ones",
            found.len()
        ))),
    }
}

/// The one object of the seal key of this class, or the error that says the key
/// is lost and how to make a new one.
fn one(
    session: &HelperSession<'_>,
    class: pkcs11_sys::CK_OBJECT_CLASS,
    token: &str,
) -> AuditResult<CK_OBJECT_HANDLE> {
    visible(session, class)?.ok_or_else(|| {
        let what = if class == CKO_PRIVATE_KEY {
            "private"
        } else {
            "public"
        };
        AuditError::Seal(format!(
            "the {what} half of the audit seal key ({SEAL_KEY_LABEL:?}) is missing from token \
             {token:?}: create a new one with `keywarden audit init-seal-key --token {token} \
             --rotate` (the old seal-key.pub is kept as seal-key-<key_id>.pub, with which \
             `keywarden audit verify` still checks the seals it made)"
        ))
    })
}

impl Sealer for TokenSealer {
    fn seal(&self, head: &[u8; 32]) -> AuditResult<Seal> {
        let sig = self.with_private_key(|session, key| {
            session
                .sign_once(CKM_ECDSA, key, &seal_digest(head))
                .map_err(seal_err("signing the chain head"))
        })?;
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
