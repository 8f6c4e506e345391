//! `C_Login` and `C_LoginUser` through the gateway: a named identity's PIN is
//! verified here and replaced by the token's, and a login changes the slot's
//! subject (login state is per application per token, §5.6/§6.7).

use pkcs11_sys::*;

use super::{Call, Gateway};
use crate::backend::Backend;
use crate::error::{check_rv, Result};

impl Gateway {
    /// `C_Login` and `C_LoginUser`: `forward` gets the PIN to send. In enforce mode
    /// an SO login is decided as `so-login` first, and a successful login changes
    /// the slot's subject (login state is per application per token, §5.6/§6.7).
    pub fn login(
        &self,
        call: Call,
        user_type: CK_USER_TYPE,
        pin: Option<&[u8]>,
        forward: impl FnOnce(&dyn Backend, Option<&[u8]>) -> CK_RV,
    ) -> Result<()> {
        self.recorded(&call, || {
            self.login_unrecorded(call, user_type, pin, forward)
        })
    }

    fn login_unrecorded(
        &self,
        call: Call,
        user_type: CK_USER_TYPE,
        pin: Option<&[u8]>,
        forward: impl FnOnce(&dyn Backend, Option<&[u8]>) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        let Some(e) = &self.enforcer else {
            check_rv(forward(&*self.backend, pin))?;
            if let (CKU_SO | CKU_USER, Some(session)) = (user_type, call.session) {
                let login = match user_type {
                    CKU_SO => crate::policy::Login::So,
                    _ => crate::policy::Login::User,
                };
                self.sessions.set_login(None, session, login, None);
            }
            return Ok(());
        };
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let login = match user_type {
            CKU_SO => crate::policy::Login::So,
            CKU_USER => crate::policy::Login::User,
            // CKU_CONTEXT_SPECIFIC re-authenticates one operation: no state change,
            // and the PIN goes to the token as given.
            _ => return check_rv(forward(&*self.backend, pin)),
        };
        let named = match pin.map(crate::store::identity::parse_pin) {
            Some(crate::store::identity::Pin::Named { name, secret }) => {
                Some(e.verify_named(name, secret)?)
            }
            _ => None,
        };
        if user_type == CKU_SO {
            e.decide_so_login(named.clone())?;
        }
        match &named {
            Some(_) => {
                let token_pin = e.token_pin(user_type)?;
                check_rv(forward(&*self.backend, Some(&token_pin)))?;
            }
            None => check_rv(forward(&*self.backend, pin))?,
        }
        if let Some(id) = &named {
            log::info!(
                "{}: named identity {:?} logged in",
                call.function.name(),
                id.name
            );
        }
        self.sessions
            .set_login(Some(&e.policy()), session, login, named);
        Ok(())
    }
}
