//! The descriptor of one PKCS#11 call: what a front end tells the gateway, and what
//! policy and audit see of a call. It lives below the gateway so that the audit
//! engine can build records from it without depending on the gateway.

use pkcs11_sys::*;

use crate::functions::FunctionId;

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
    /// A second object: the key `C_WrapKey` wraps (`object` is the wrapping key).
    pub other: Option<CK_OBJECT_HANDLE>,
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
            other: None,
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

    /// The same call, with a second object (the key being wrapped).
    pub const fn and(self, other: CK_OBJECT_HANDLE) -> Call {
        Call {
            other: Some(other),
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
