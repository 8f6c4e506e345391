//! Enforce mode: named identities (`C_Login` with a `name:secret` PIN).
//!
//! The secret is checked against Keywarden's credential store (argon2,
//! `store::identity::verify`) and never reaches the token; Keywarden then logs in
//! to the token with the PIN from `[backend] pin_file`, and binds the identity and
//! its roles to the slot's subject. A wrong name or secret is `CKR_PIN_INCORRECT`,
//! as a wrong token PIN would be.

use pkcs11_sys::*;
use zeroize::Zeroizing;

use super::enforce::{refusal, Enforcer};
use crate::error::{Error, Result};
use crate::policy::{Decision, NamedIdentity, RuleRef};

impl Enforcer {
    /// Verifies `name:secret`; a failure is refused (through the one refusal path)
    /// with `CKR_PIN_INCORRECT`, a store failure fails closed.
    pub(super) fn verify_named(&self, name: &str, secret: &[u8]) -> Result<NamedIdentity> {
        let store = crate::store::open(&self.store)?;
        match crate::store::identity::verify(&store, name, secret)? {
            Some(identity) => Ok(NamedIdentity::from(&identity)),
            None => {
                let d = Decision {
                    allow: false,
                    rule: RuleRef::Builtin("identity.verify"),
                    reason: format!("named login {name:?}: unknown name or wrong secret").into(),
                    rv: CKR_PIN_INCORRECT,
                };
                Err(refusal(None, &d, Some(name)))
            }
        }
    }

    /// The token PIN for named logins, read from `[backend] pin_file` (or
    /// `so_pin_file` for an SO login) at each use
    /// (a rotated PIN needs no restart) and wiped when dropped. A file that others
    /// could read is refused: the PIN must stay the service's.
    pub(super) fn token_pin(&self, user_type: CK_USER_TYPE) -> Result<Zeroizing<Vec<u8>>> {
        let (file, key) = if user_type == CKU_SO {
            (&self.so_pin_file, "so_pin_file")
        } else {
            (&self.pin_file, "pin_file")
        };
        let Some(path) = file else {
            let e = Error::Config(format!(
                "a named login needs [backend] {key}, the token PIN's file"
            ));
            log::error!("{e}");
            return Err(e);
        };
        crate::pin_file::read(path).map_err(|why| {
            let e = Error::Config(format!("backend.{key} {}: {why}", path.display()));
            log::error!("{e}");
            e
        })
    }
}
