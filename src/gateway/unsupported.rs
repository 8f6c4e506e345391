//! The functions the backend does not offer (enforce mode): its table has no entry,
//! or it answers `CKR_FUNCTION_NOT_SUPPORTED` whatever the arguments. Such a call
//! gets `CKR_FUNCTION_NOT_SUPPORTED` before any policy decision, so a refusal never
//! hides the token's own answer: a client probing for `C_SignRecoverInit` must
//! learn that the token lacks it, not that its key was refused
//! (docs/abi-conventions.md, "Return codes").
//!
//! Known at start from the table; for a keyed `*Init` (and `C_DigestKey`) by asking
//! the backend once, at the function's first call (through `backend::call_keyed`,
//! the one dispatch of the keyed functions), with the call's own session and
//! the key `CK_INVALID_HANDLE`, which no token has: a real implementation refuses
//! the key and starts nothing, a stub answers `CKR_FUNCTION_NOT_SUPPORTED`. Other
//! answers of `CKR_FUNCTION_NOT_SUPPORTED` are not learnt from: some tokens give it
//! for one mechanism or argument, and a whole function must not be shut off for that.

use std::sync::atomic::{AtomicU64, Ordering};

use pkcs11_sys::*;

use super::Call;
use crate::backend::{call_keyed, Backend};
use crate::functions::{FnClass, FunctionId};

/// Two bits per `FunctionId`: known, and unsupported.
#[derive(Debug, Default)]
pub(super) struct Unsupported {
    known: [AtomicU64; 2],
    lacking: [AtomicU64; 2],
}

const _: () = assert!(FunctionId::ALL.len() <= 128);

fn bit(set: &[AtomicU64; 2], f: FunctionId) -> bool {
    let i = f as usize;
    set[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
}

fn set_bit(set: &[AtomicU64; 2], f: FunctionId) {
    let i = f as usize;
    set[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
}

impl Unsupported {
    /// What `backend`'s table lacks.
    pub(super) fn of(backend: &dyn Backend) -> Unsupported {
        let u = Unsupported::default();
        for &f in FunctionId::ALL {
            if !backend.has_function(f) {
                u.mark(f, true);
            }
        }
        u
    }

    fn mark(&self, f: FunctionId, lacking: bool) {
        if lacking {
            set_bit(&self.lacking, f);
        }
        set_bit(&self.known, f);
    }

    /// Whether the backend lacks the call's function (asking it once, see the
    /// module documentation, for a keyed function not yet known).
    #[inline]
    pub(super) fn lacks(&self, backend: &dyn Backend, call: &Call) -> bool {
        let f = call.function;
        if bit(&self.known, f) {
            return bit(&self.lacking, f);
        }
        if f.class() != FnClass::KeyUse {
            return false;
        }
        self.probe(backend, call)
    }

    #[cold]
    fn probe(&self, backend: &dyn Backend, call: &Call) -> bool {
        let Some(session) = call.session else {
            return false;
        };
        let mechanism = CK_MECHANISM {
            mechanism: call.mechanism.unwrap_or(CKM_VENDOR_DEFINED),
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        let Some(rv) = call_keyed(
            backend,
            call.function,
            session,
            &mechanism,
            CK_INVALID_HANDLE,
        ) else {
            return false;
        };
        match rv {
            CKR_FUNCTION_NOT_SUPPORTED => self.mark(call.function, true),
            // The session, not the function, was refused: ask again next time.
            CKR_SESSION_HANDLE_INVALID | CKR_SESSION_CLOSED | CKR_CRYPTOKI_NOT_INITIALIZED => {}
            _ => self.mark(call.function, false),
        }
        bit(&self.lacking, call.function)
    }
}
