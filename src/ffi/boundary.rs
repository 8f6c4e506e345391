//! What every entry point does, and the module's one piece of global state.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use pkcs11_sys::*;

use crate::backend::{Backend, LoadedModule};
use crate::error::{Error, Result};
use crate::functions::FunctionId;
use crate::gateway::{Call, Gateway};

/// Who owns the running module. Only `C_Initialize` and `C_Finalize` touch it, under
/// this mutex; holding it serialises them against each other. It is the only lock ever
/// held across a backend call (the backend's own `C_Initialize`/`C_Finalize`).
pub(super) static MODULE_STATE: parking_lot::Mutex<ModuleState> =
    parking_lot::const_mutex(ModuleState {
        current: None,
        retired: None,
    });

/// The hot-path view of `MODULE_STATE.current`: one `Acquire` load per call, no atomic
/// read-modify-write (an `ArcSwap` guard cost two full barriers per call; see
/// benches/README.md).
static CURRENT: AtomicPtr<Running> = AtomicPtr::new(ptr::null_mut());

/// Bumped in the child by a `pthread_atfork` handler: state created under another
/// generation belongs to the parent and is treated as not initialised (§5.4: a forked
/// child must call `C_Initialize` again).
pub(super) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A gateway, the fork generation it was created in, and the calls inside it.
pub(super) struct Running {
    pub(super) gateway: Gateway,
    pub(super) fork_generation: u64,
    /// Calls that entered this gateway and have not left it: `C_Finalize` waits
    /// for them before it finalises the backend (see [`with_gateway`]).
    pub(super) in_flight: InFlight,
}

/// The count of calls inside one gateway, on its own cache line: every call of
/// every thread writes it, and the gateway's read-mostly fields stay shared.
#[repr(align(64))]
#[derive(Default)]
pub(super) struct InFlight(AtomicUsize);

impl Running {
    pub(super) fn new(gateway: Gateway) -> Running {
        Running {
            gateway,
            fork_generation: current_generation(),
            in_flight: InFlight::default(),
        }
    }

    /// After `ModuleState::retire`: returns once every call that entered this
    /// gateway has left it. New calls are refused at entry by then (they find
    /// `CURRENT` NULL, or find it changed after counting themselves in), so the
    /// count only goes down. PKCS#11 v2.40 §5.4 leaves a `C_Finalize` racing other
    /// calls undefined; waiting here keeps the backend from being finalised under
    /// a call inside it (SoftHSM crashes in a `C_Sign` it is finalised under).
    pub(super) fn drain(&self) {
        let mut spins = 0u32;
        while self.in_flight.0.load(Ordering::SeqCst) != 0 {
            // Calls into a token take microseconds to milliseconds: spin a little,
            // then give the core away.
            if spins < 64 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// Counts a call out of its gateway when it leaves (also by unwinding).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// The running module and the one before it.
///
/// `CURRENT` points into `current` while it is published. `C_Finalize` unpublishes it
/// and keeps it as `retired` until the next `C_Finalize`, so a call that loaded the
/// pointer just before never sees freed memory: PKCS#11 v2.40 §5.4 makes `C_Finalize`
/// undefined while other threads are in calls, and this grace period of one whole
/// initialise/finalise cycle turns such a race from a crash into a refused call.
pub(super) struct ModuleState {
    current: Option<Arc<Running>>,
    retired: Option<Arc<Running>>,
}

impl ModuleState {
    /// The module running in this process (not one inherited from a parent).
    pub(super) fn running(&self) -> Option<&Arc<Running>> {
        self.current
            .as_ref()
            .filter(|r| r.fork_generation == current_generation())
    }

    /// In a forked child: drops the parent's state from view without finalising or
    /// freeing anything, since it refers to the parent's backend state.
    pub(super) fn abandon_inherited(&mut self) {
        if self
            .current
            .as_ref()
            .is_some_and(|r| r.fork_generation != current_generation())
        {
            CURRENT.store(ptr::null_mut(), Ordering::Release);
            std::mem::forget(self.current.take());
            std::mem::forget(self.retired.take());
        }
    }

    /// Makes `running` the module every call uses.
    pub(super) fn publish(&mut self, running: Arc<Running>) {
        CURRENT.store(Arc::as_ptr(&running).cast_mut(), Ordering::Release);
        self.current = Some(running);
    }

    /// Stops handing out the current module and returns it for finalising; it stays
    /// allocated until the next `retire` (see the type's docs).
    pub(super) fn retire(&mut self) -> Option<Arc<Running>> {
        // SeqCst: ordered before `Running::drain`'s loads (see `with_gateway`).
        CURRENT.store(ptr::null_mut(), Ordering::SeqCst);
        let old = self.current.take()?;
        self.retired = Some(Arc::clone(&old));
        Some(old)
    }
}

/// The fork generation of this process.
pub(super) fn current_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Runs `f` with the gateway of this process, or fails with `CKR_CRYPTOKI_NOT_INITIALIZED`.
///
/// The call counts itself into the gateway (one atomic increment, one decrement
/// when it leaves) and then checks that the gateway is still published. With
/// `C_Finalize` unpublishing first and then waiting for the count to reach zero
/// (`Running::drain`), both sequentially consistent, either the call sees the
/// gateway gone and is refused, or `C_Finalize` sees the call and waits for it:
/// the backend is never finalised under a call inside it.
#[inline]
pub(super) fn with_gateway<R>(f: impl FnOnce(&Gateway) -> Result<R>) -> Result<R> {
    let published = CURRENT.load(Ordering::Acquire);
    // SAFETY: CURRENT is NULL or points into an `Arc<Running>` that `MODULE_STATE` keeps
    // alive while published and for one more initialise/finalise cycle after (see
    // `ModuleState`); after a fork the inherited one is never freed.
    let running = unsafe { published.as_ref() };
    match running {
        Some(running) if running.fork_generation == current_generation() => {
            running.in_flight.0.fetch_add(1, Ordering::SeqCst);
            let _leave = Leave(&running.in_flight.0);
            if CURRENT.load(Ordering::SeqCst) != published {
                return Err(Error::NotInitialized);
            }
            f(&running.gateway)
        }
        _ => Err(Error::NotInitialized),
    }
}

/// [`with_gateway`] without counting the call in: for `C_WaitForSlotEvent`, which
/// may block until the backend is finalised (§5.5: `C_Finalize` makes a blocked
/// wait return), so `C_Finalize` must not wait for it.
#[inline]
pub(super) fn with_gateway_uncounted<R>(f: impl FnOnce(&Gateway) -> Result<R>) -> Result<R> {
    let published = CURRENT.load(Ordering::Acquire);
    // SAFETY: as in `with_gateway`.
    let running = unsafe { published.as_ref() };
    match running {
        Some(running) if running.fork_generation == current_generation() => f(&running.gateway),
        _ => Err(Error::NotInitialized),
    }
}

/// The answer for a template count beyond `args::MAX_TEMPLATE`
/// (`Gateway::absurd_count`), or `CKR_CRYPTOKI_NOT_INITIALIZED`.
#[cold]
pub(super) fn absurd_count(call: &Call) -> Error {
    match with_gateway(|gw| Ok(gw.absurd_count(call))) {
        Ok(e) | Err(e) => e,
    }
}

/// A data call refused by Keywarden's argument checks, handed to the token as it
/// came (the raw forwarders in `backend/loader.rs`): the token's answer and operation state are its own.
/// Not recorded: the operation's record follows its next call, or its next
/// `*Init` records it as abandoned. A backend that is no loaded module has no raw
/// forwarders: the refusal stands.
#[cold]
pub(super) fn forward_refused(
    function: FunctionId,
    session: CK_SESSION_HANDLE,
    f: impl FnOnce(&LoadedModule) -> CK_RV,
) -> Result<()> {
    with_gateway(|gw| {
        gw.forward_unrecorded(&Call::session(function, session), |b| {
            b.loaded_module().map_or(CKR_ARGUMENTS_BAD, f)
        })
    })
}

/// The common handler tail: describe the call, let the gateway decide and forward.
#[inline]
pub(super) fn forward(call: Call, f: impl FnOnce(&dyn Backend) -> CK_RV) -> Result<()> {
    with_gateway(|gw| gw.call(call, f))
}

/// The boundary: panics become `CKR_GENERAL_ERROR`, errors become their `CK_RV`.
/// Keywarden's own faults (a caught panic, `Error::Internal`) also go to the audit
/// trail as module errors when a gateway is running.
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
            record_module_error(function, "internal panic caught at the C boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// Best effort, and itself guarded: recording must never turn into a second panic
/// across the C boundary.
#[cold]
fn record_module_error(function: FunctionId, detail: &str) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        with_gateway(|gw| {
            gw.record_module_error(function, detail);
            Ok(())
        })
    }));
}

/// Runs when the process exits (or this library is unloaded) without
/// `C_Finalize`: writes the audit records still queued in `buffered` mode
/// (docs/audit.md, "Durability"). A forked child that never initialised finds no
/// gateway of its own and does nothing.
extern "C" fn flush_audit_at_exit() {
    let _ = catch_unwind(|| {
        with_gateway(|gw| {
            gw.flush_audit();
            Ok(())
        })
    });
}

/// A destructor of this shared object: the dynamic linker runs `.fini_array`
/// entries at process exit and at `dlclose`, and only while the library is
/// loaded (unlike `atexit`, which could outlive an unloaded library).
#[used]
#[link_section = ".fini_array"]
static FLUSH_AUDIT_AT_EXIT: extern "C" fn() = flush_audit_at_exit;

fn log_error(function: FunctionId, err: &Error) {
    match err {
        // Keywarden's own fault: worth a line even at the default level.
        Error::Internal(_) => {
            log::error!("{}: {err}", function.name());
            record_module_error(function, &err.to_string());
        }
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
