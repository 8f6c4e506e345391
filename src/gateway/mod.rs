//! The gateway: the path of one PKCS#11 call through Keywarden.
//!
//! identify the caller → resolve the object → policy and lifecycle decision →
//! forward to the backend → audit record.
//!
//! A front end (the C ABI in `ffi`, later an out-of-process server) describes each
//! call with a [`Call`] and hands over a closure that performs the forward on the
//! [`Backend`] with its own, already-validated arguments. The gateway never sees a
//! raw pointer. With the `transparent` profile every decision is "allow", and the
//! cost of a call is the descriptor plus one closure call.

mod create;
mod enforce;
mod find;
mod lifecycle;
mod named;
mod objects;
mod register;
mod sessions;
mod token_ops;

use pkcs11_sys::*;

pub use crate::call::Call;
pub use create::{unwrap_bits_hint, Additions, CreateArgs, NewObjects};
pub use enforce::Enforcer;

use crate::backend::{Backend, InitOutcome};
use crate::config::{Config, PolicyMode};
use crate::error::{check_rv, Error, Result};
use crate::functions::{FnClass, FunctionId};

/// The engine behind one initialised module instance.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    backend: Backend,
    init_outcome: InitOutcome,
    /// `Some` in enforce mode only: transparent mode's path is one branch on it.
    enforcer: Option<Enforcer>,
}

impl Gateway {
    /// Loads and initialises the backend named by `config`. In enforce mode the
    /// policy file is opened first: an unusable file fails `C_Initialize` before
    /// the backend is touched (fail closed).
    pub fn start(config: Config) -> Result<Gateway> {
        let enforcer = match &config.policy.mode {
            PolicyMode::Transparent => None,
            PolicyMode::Enforce { file } => Some(Enforcer::open(file, &config)?),
        };
        let backend = Backend::load(&config.backend.module)?;
        let init_outcome = backend.initialize()?;
        log::info!(
            "keywarden {} started over {} ({:?}, policy {:?})",
            crate::VERSION,
            config.backend.module.display(),
            init_outcome,
            config.policy.mode
        );
        Ok(Gateway {
            config,
            backend,
            init_outcome,
            enforcer,
        })
    }

    /// Finalises the backend if this gateway initialised it (enforce mode: after
    /// writing the pending usage counters).
    pub fn stop(&self) -> Result<()> {
        if let Some(e) = &self.enforcer {
            e.lifecycle.stop();
        }
        self.backend.finalize()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `start` initialised the backend or found it already initialised.
    pub fn init_outcome(&self) -> InitOutcome {
        self.init_outcome
    }

    /// True when the backend offers the PKCS#11 3.0 interface.
    pub fn backend_has_v3_0(&self) -> bool {
        self.backend.has_v3_0()
    }

    /// One call's path. `forward` performs the backend call and returns its `CK_RV`,
    /// which comes back unchanged as `Err(Error::Backend(rv))` when it is not `CKR_OK`.
    #[inline]
    pub fn call(&self, call: Call, forward: impl FnOnce(&Backend) -> CK_RV) -> Result<()> {
        self.decide(&call)?;
        let result = check_rv(forward(&self.backend));
        if let (Some(e), Ok(())) = (&self.enforcer, &result) {
            e.after_ok(&call);
        }
        result
    }

    /// The policy and lifecycle decision. Every function has a class in the one
    /// function table; an unclassified one is refused before it reaches the token.
    #[inline]
    fn decide(&self, call: &Call) -> Result<()> {
        if call.function.class() == FnClass::Unclassified {
            return Err(Error::FunctionNotSupported);
        }
        match &self.enforcer {
            None => Ok(()),
            Some(e) => e.before(&self.backend, call),
        }
    }

    /// `C_OpenSession`: forwards, then (enforce mode) maps the new session to its slot.
    pub fn open_session(
        &self,
        call: Call,
        session: &mut CK_SESSION_HANDLE,
        forward: impl FnOnce(&Backend, &mut CK_SESSION_HANDLE) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        check_rv(forward(&self.backend, session))?;
        if let (Some(e), Some(slot)) = (&self.enforcer, call.slot) {
            e.sessions.opened(&e.policy(), slot, *session);
        }
        Ok(())
    }

    /// `C_CloseSession`, `C_CloseAllSessions`, `C_Logout`: forward, then follow the
    /// session and login state (§5.6: closing a slot's last session logs it out;
    /// its session objects are destroyed, so their cached facts go).
    pub fn session_call(&self, call: Call, forward: impl FnOnce(&Backend) -> CK_RV) -> Result<()> {
        self.decide(&call)?;
        check_rv(forward(&self.backend))?;
        let Some(e) = &self.enforcer else {
            return Ok(());
        };
        match (call.function, call.session, call.slot) {
            (FunctionId::C_CloseSession, Some(session), _) => {
                e.lifecycle.session_closed(session);
                match e.sessions.closed(session) {
                    Some((slot, true)) => e.facts.forget_slot(slot),
                    Some((slot, false)) => e.facts.forget_session_objects(slot),
                    None => {}
                }
            }
            (FunctionId::C_CloseAllSessions, _, Some(slot)) => {
                e.sessions.closed_all(slot);
                e.facts.forget_slot(slot);
            }
            (FunctionId::C_Logout, Some(session), _) => {
                e.sessions
                    .set_login(&e.policy(), session, crate::policy::Login::Public, None);
            }
            _ => {}
        }
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
        forward: impl FnOnce(&Backend, Option<&[u8]>) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        let Some(e) = &self.enforcer else {
            return check_rv(forward(&self.backend, pin));
        };
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let login = match user_type {
            CKU_SO => crate::policy::Login::So,
            CKU_USER => crate::policy::Login::User,
            // CKU_CONTEXT_SPECIFIC re-authenticates one operation: no state change,
            // and the PIN goes to the token as given.
            _ => return check_rv(forward(&self.backend, pin)),
        };
        let named = match pin.map(crate::store::identity::parse_pin) {
            Some(crate::store::identity::Pin::Named { name, secret }) => {
                Some(e.verify_named(&call, name, secret)?)
            }
            _ => None,
        };
        if user_type == CKU_SO {
            e.decide_so_login(&call, named.clone())?;
        }
        match &named {
            Some(_) => {
                let token_pin = e.token_pin(user_type)?;
                check_rv(forward(&self.backend, Some(&token_pin)))?;
            }
            None => check_rv(forward(&self.backend, pin))?,
        }
        if let Some(id) = &named {
            log::info!(
                "{}: named identity {:?} logged in",
                call.function.name(),
                id.name
            );
        }
        e.sessions.set_login(&e.policy(), session, login, named);
        Ok(())
    }
}
