//! What every entry point does, and the module's one piece of global state.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use pkcs11_sys::*;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::functions::FunctionId;
use crate::gateway::{Call, Gateway};

/// The initialised module, or `None`. Read lock-free on every call; replaced only by
/// `C_Initialize` and `C_Finalize` under [`INIT_LOCK`].
pub(super) static STATE: ArcSwapOption<Running> = ArcSwapOption::const_empty();

/// Serialises `C_Initialize` and `C_Finalize` against each other. It is the only lock
/// ever held across a backend call, and only those two functions take it.
pub(super) static INIT_LOCK: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// Bumped in the child by a `pthread_atfork` handler: state created under another
/// generation belongs to the parent and is treated as not initialised (§5.4: a forked
/// child must call `C_Initialize` again).
pub(super) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A gateway and the fork generation it was created in.
pub(super) struct Running {
    pub(super) gateway: Gateway,
    pub(super) fork_generation: u64,
}

/// The fork generation of this process.
pub(super) fn current_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Runs `f` with the gateway of this process, or fails with `CKR_CRYPTOKI_NOT_INITIALIZED`.
#[inline]
pub(super) fn with_gateway<R>(f: impl FnOnce(&Gateway) -> Result<R>) -> Result<R> {
    let state = STATE.load();
    match state.as_deref() {
        Some(running) if running.fork_generation == current_generation() => f(&running.gateway),
        _ => Err(Error::NotInitialized),
    }
}

/// The common handler tail: describe the call, let the gateway decide and forward.
#[inline]
pub(super) fn forward(call: Call, f: impl FnOnce(&Backend) -> CK_RV) -> Result<()> {
    with_gateway(|gw| gw.call(call, f))
}

/// The boundary: panics become `CKR_GENERAL_ERROR`, errors become their `CK_RV`.
#[inline]
pub(super) fn boundary(function: FunctionId, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(err)) => {
            log_error(function, &err);
            err.rv()
        }
        Err(_) => {
            log::error!(
                "{}: internal panic caught at the C boundary",
                function.name()
            );
            CKR_GENERAL_ERROR
        }
    }
}

fn log_error(function: FunctionId, err: &Error) {
    match err {
        // Keywarden's own fault: worth a line even at the default level.
        Error::Internal(_) => log::error!("{}: {err}", function.name()),
        // A token's answer, a caller's mistake, or a refusal already reported once on
        // stderr and syslog (report.rs): normal traffic at the default level.
        _ => log::debug!("{}: {err}", function.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_general_error() {
        let rv = boundary(FunctionId::C_Sign, || -> Result<()> {
            std::panic::resume_unwind(Box::new("boom"))
        });
        assert_eq!(rv, CKR_GENERAL_ERROR);
    }

    #[test]
    fn errors_map_to_their_codes() {
        assert_eq!(
            boundary(FunctionId::C_Sign, || Err(Error::Backend(
                CKR_KEY_HANDLE_INVALID
            ))),
            CKR_KEY_HANDLE_INVALID
        );
        assert_eq!(boundary(FunctionId::C_Sign, || Ok(())), CKR_OK);
    }

    #[test]
    fn calls_before_initialisation_are_refused() {
        let rv = boundary(FunctionId::C_GetSlotList, || {
            forward(Call::library(FunctionId::C_GetSlotList), |_| CKR_OK)
        });
        assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}
