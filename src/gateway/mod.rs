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

use pkcs11_sys::*;

use crate::backend::{Backend, InitOutcome};
use crate::config::{Config, PolicyMode};
use crate::error::{check_rv, Error, Result};
use crate::functions::{FnClass, FunctionId};

/// What the gateway needs to know about one call to decide on it and record it.
/// Data, PINs and key material are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Which PKCS#11 function.
    pub function: FunctionId,
    /// The slot, for slot-scoped functions.
    pub slot: Option<CK_SLOT_ID>,
    /// The session, for session-scoped functions.
    pub session: Option<CK_SESSION_HANDLE>,
    /// The object (key) the call acts on, if any.
    pub object: Option<CK_OBJECT_HANDLE>,
    /// The mechanism type, for calls that take one.
    pub mechanism: Option<CK_MECHANISM_TYPE>,
}

impl Call {
    /// A call with no slot, session or object.
    pub const fn library(function: FunctionId) -> Call {
        Call {
            function,
            slot: None,
            session: None,
            object: None,
            mechanism: None,
        }
    }

    /// A slot-scoped call.
    pub const fn slot(function: FunctionId, slot: CK_SLOT_ID) -> Call {
        Call {
            slot: Some(slot),
            ..Call::library(function)
        }
    }

    /// A session-scoped call.
    pub const fn session(function: FunctionId, session: CK_SESSION_HANDLE) -> Call {
        Call {
            session: Some(session),
            ..Call::library(function)
        }
    }

    /// The same call, acting on `object`.
    pub const fn on(self, object: CK_OBJECT_HANDLE) -> Call {
        Call {
            object: Some(object),
            ..self
        }
    }

    /// The same call, with `mechanism`.
    pub const fn with_mechanism(self, mechanism: CK_MECHANISM_TYPE) -> Call {
        Call {
            mechanism: Some(mechanism),
            ..self
        }
    }
}

/// The engine behind one initialised module instance.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    backend: Backend,
    init_outcome: InitOutcome,
}

impl Gateway {
    /// Loads and initialises the backend named by `config`.
    ///
    /// `mode = "enforce"` is refused here, before the backend is touched, after
    /// checking the policy file: this gateway does not consult the policy engine yet
    /// (docs/policy.md, "Enforcement points", is the recipe), and a module that
    /// started without enforcing its policy would fail open.
    pub fn start(config: Config) -> Result<Gateway> {
        if let PolicyMode::Enforce { file } = &config.policy.mode {
            crate::policy::Policy::load(file, std::sync::Arc::new(crate::policy::SystemClock))?;
            return Err(Error::Config(format!(
                "policy.mode = \"enforce\" ({} is valid) is not enforced by this build of the module; \
                 use mode = \"transparent\"",
                file.display()
            )));
        }
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
        })
    }

    /// Finalises the backend if this gateway initialised it.
    pub fn stop(&self) -> Result<()> {
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
        check_rv(forward(&self.backend))
    }

    /// The policy and lifecycle decision. Every function has a class in the one
    /// function table; an unclassified one is refused before it reaches the token.
    #[inline]
    fn decide(&self, call: &Call) -> Result<()> {
        if call.function.class() == FnClass::Unclassified {
            return Err(Error::FunctionNotSupported);
        }
        match self.config.policy.mode {
            PolicyMode::Transparent => Ok(()),
            // `start` refuses enforce mode until the gateway consults the policy.
            PolicyMode::Enforce { .. } => Err(Error::Internal(
                "enforce mode reached a gateway that does not consult the policy".into(),
            )),
        }
    }
}
