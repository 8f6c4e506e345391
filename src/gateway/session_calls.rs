//! The session functions' path: `C_OpenSession`, `C_CloseSession`,
//! `C_CloseAllSessions`, `C_Logout`, `C_Login` and `C_LoginUser`. Each is decided,
//! forwarded and recorded like any call; after a success the session table follows
//! (`follow.rs`), and a named login (`name:secret`, docs/policy.md "Named
//! identities") is verified against the store and sent to the token with the
//! token's own PIN.

use pkcs11_sys::*;

use super::{Call, Gateway, Io};
use crate::backend::Backend;
use crate::error::{check_rv, Result};

impl Gateway {
    /// `C_OpenSession`: forwards, then maps the new session to its slot (for the
    /// audit trail; in enforce mode for the policy too).
    pub fn open_session(
        &self,
        call: Call,
        session: &mut CK_SESSION_HANDLE,
        forward: impl FnOnce(&dyn Backend, &mut CK_SESSION_HANDLE) -> CK_RV,
    ) -> Result<()> {
        let mut pending = None;
        self.audit.before(&call, None, &mut pending);
        let result = self.decide(&call).and_then(|()| {
            check_rv(forward(&*self.backend, session))?;
            if let Some(slot) = call.slot {
                self.session_opened(slot, *session);
            }
            Ok(())
        });
        let opened = result.is_ok();
        let recorded = match result {
            Ok(()) => Call {
                session: Some(*session),
                ..call
            },
            Err(_) => call,
        };
        let answer = self
            .audit
            .after(&recorded, &mut pending, Io::default(), result);
        if opened && answer.is_err() {
            // `required` mode: the open's record could not be written, so the
            // application is told the call failed — then no session may exist
            // either (a failed C_OpenSession opens none, §5.6). The backend's
            // session is closed again and forgotten; nothing records it, as
            // nothing recorded its opening.
            let handle = std::mem::replace(session, CK_INVALID_HANDLE);
            let _ = self.backend.close_session(handle);
            let _ = self.sessions.closed(handle);
        }
        answer
    }

    /// `C_CloseSession`, `C_CloseAllSessions`, `C_Logout`: forward, then follow the
    /// session and login state (§5.6: closing every session of a slot logs it out;
    /// its session objects are destroyed, so their cached facts go).
    pub fn session_call(
        &self,
        call: Call,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.recorded(&call, || self.session_call_unrecorded(call, forward))
    }

    fn session_call_unrecorded(
        &self,
        call: Call,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        check_rv(forward(&*self.backend))?;
        self.follow_sessions(&call);
        Ok(())
    }

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
        let login = match user_type {
            CKU_SO => crate::policy::Login::So,
            CKU_USER => crate::policy::Login::User,
            // CKU_CONTEXT_SPECIFIC re-authenticates one operation: no state change,
            // and the PIN goes to the token as given.
            _ => return check_rv(forward(&*self.backend, pin)),
        };
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let Some(e) = &self.enforcer else {
            check_rv(forward(&*self.backend, pin))?;
            self.sessions.set_login(None, session, login, None);
            return Ok(());
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
