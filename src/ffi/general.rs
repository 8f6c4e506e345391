//! General-purpose functions (PKCS#11 v2.40 §5.4, v3.0 §5.4) and slot events.
#![allow(non_snake_case)]

use std::ffi::CStr;
use std::ptr;
use std::sync::{Arc, Once, OnceLock};

use pkcs11_sys::*;

use super::args::{in_ref, out_buf, out_ref};
use super::boundary::{
    forward, with_gateway, with_gateway_uncounted, Running, FORK_GENERATION, MODULE_STATE,
};
use super::entry::{FUNCTION_LIST_2_40, FUNCTION_LIST_3_0};
use super::report;
use crate::abi::write_counted;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::functions::FunctionId;
use crate::gateway::{Call, Gateway};

/// Checks the locking arguments of `C_Initialize` (§5.4, `CK_C_INITIALIZE_ARGS`):
/// 1. no mutex functions, no `CKF_OS_LOCKING_OK`: fine (Keywarden locks anyway);
/// 2. no functions, `CKF_OS_LOCKING_OK`: fine, OS primitives are what we use;
/// 3. all four functions, no flag: accepted, as SoftHSM accepts it directly
///    (§5.4 allows either that or `CKR_CANT_LOCK`). Keywarden still locks with
///    OS primitives, which is correct: the callbacks exist so that a library can
///    be safe among the application's threads, and on every platform Keywarden
///    builds for those are OS threads (Keywarden creates one of its own for the
///    audit writer), among which OS mutexes and atomics are sound whatever other
///    locking the application does; no Keywarden lock is ever held while control
///    is back with the application. The callbacks are never called nor passed on:
///    the backend is initialised with Keywarden's own `CKF_OS_LOCKING_OK`
///    arguments (`Backend::initialize`), Keywarden being its application;
/// 4. all four functions and the flag: fine, we may use either and use the OS's.
///
/// Some but not all functions, or a non-NULL `pReserved`, is `CKR_ARGUMENTS_BAD`.
fn check_init_args(args: Option<&CK_C_INITIALIZE_ARGS>) -> Result<()> {
    let Some(args) = args else { return Ok(()) };
    if !args.pReserved.is_null() {
        return Err(Error::ArgumentsBad(
            "CK_C_INITIALIZE_ARGS.pReserved must be NULL",
        ));
    }
    let supplied = [
        args.CreateMutex.is_some(),
        args.DestroyMutex.is_some(),
        args.LockMutex.is_some(),
        args.UnlockMutex.is_some(),
    ];
    match supplied.iter().filter(|s| **s).count() {
        0 | 4 => Ok(()),
        _ => Err(Error::ArgumentsBad(
            "some but not all mutex functions supplied",
        )),
    }
}

/// Registers the fork handler once per process.
fn register_fork_handler() {
    extern "C" fn in_child() {
        // Only an atomic increment: async-signal-safe, as a child handler must be.
        FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain function with no prepare/parent handlers.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if rc != 0 {
            log::warn!("pthread_atfork failed ({rc}); a forked child may use stale state");
        }
    });
}

/// `C_Initialize`
pub(super) unsafe fn C_Initialize(pInitArgs: CK_VOID_PTR) -> Result<()> {
    let args = if pInitArgs.is_null() {
        None
    } else {
        // SAFETY: a non-NULL pInitArgs points to a CK_C_INITIALIZE_ARGS (§5.4).
        Some(unsafe {
            in_ref(
                pInitArgs.cast::<CK_C_INITIALIZE_ARGS>().cast_const(),
                "pInitArgs",
            )
        }?)
    };
    check_init_args(args)?;
    crate::logging::init();
    register_fork_handler();

    let mut state = MODULE_STATE.lock();
    if state.running().is_some() {
        return Err(Error::AlreadyInitialized);
    }
    state.abandon_inherited();
    let gateway = Config::load_from_env()
        .and_then(Gateway::start)
        .inspect_err(report::init_failure)?;
    state.publish(Arc::new(Running::new(gateway)));
    Ok(())
}

/// `C_Finalize`
pub(super) unsafe fn C_Finalize(pReserved: CK_VOID_PTR) -> Result<()> {
    if !pReserved.is_null() {
        return Err(Error::ArgumentsBad("pReserved must be NULL"));
    }
    let mut state = MODULE_STATE.lock();
    if state.running().is_none() {
        return Err(Error::NotInitialized);
    }
    match state.retire() {
        Some(running) => {
            // Calls already inside finish before the backend is finalised;
            // new ones are refused at entry (`boundary::with_gateway`).
            running.drain();
            running.gateway.stop()
        }
        None => Err(Error::NotInitialized),
    }
}

/// `C_GetInfo`: the backend's answer, verbatim.
pub(super) unsafe fn C_GetInfo(pInfo: CK_INFO_PTR) -> Result<()> {
    // SAFETY: pInfo points to a writable CK_INFO when non-NULL.
    let info = unsafe { out_ref(pInfo, "pInfo") }?;
    forward(Call::library(FunctionId::C_GetInfo), |b| b.get_info(info))
}

/// `C_GetFunctionList`: callable before `C_Initialize`.
pub(super) unsafe fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> Result<()> {
    // SAFETY: ppFunctionList points to writable pointer storage when non-NULL.
    let out = unsafe { out_ref(ppFunctionList, "ppFunctionList") }?;
    // Clients never write through this pointer; the list is an immutable static.
    *out = ptr::from_ref(&FUNCTION_LIST_2_40).cast_mut();
    Ok(())
}

/// `C_WaitForSlotEvent`
pub(super) unsafe fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: CK_SLOT_ID_PTR,
    pRserved: CK_VOID_PTR,
) -> Result<()> {
    if !pRserved.is_null() {
        return Err(Error::ArgumentsBad("pReserved must be NULL"));
    }
    // SAFETY: pSlot points to a writable CK_SLOT_ID when non-NULL.
    let slot = unsafe { out_ref(pSlot, "pSlot") }?;
    with_gateway_uncounted(|gw| {
        gw.call(Call::library(FunctionId::C_WaitForSlotEvent), |b| {
            b.wait_for_slot_event(flags, slot)
        })
    })
}

/// The interfaces Keywarden can offer: "PKCS 11" 3.0 and 2.40. The 3.0 one is offered
/// only when the backend offers 3.0 itself (see [`offered_interfaces`]).
struct Interfaces([CK_INTERFACE; 2]);

// SAFETY: the pointers inside point to immutable statics (a string literal and the two
// function lists) and are never written through, so sharing them between threads is sound.
unsafe impl Sync for Interfaces {}

const INTERFACE_NAME: &CStr = c"PKCS 11";

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut().cast(),
        pFunctionList: ptr::from_ref(&FUNCTION_LIST_3_0).cast_mut().cast(),
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut().cast(),
        pFunctionList: ptr::from_ref(&FUNCTION_LIST_2_40).cast_mut().cast(),
        flags: 0,
    },
]);

fn interface_version(i: &CK_INTERFACE) -> CK_VERSION {
    if ptr::eq(i.pFunctionList.cast_const().cast(), &FUNCTION_LIST_3_0) {
        FUNCTION_LIST_3_0.version
    } else {
        FUNCTION_LIST_2_40.version
    }
}

/// The interfaces offered to this process: 3.0 and 2.40 when the backend has a 3.0
/// interface, 2.40 alone otherwise. Mirroring the backend keeps clients transparent:
/// a client handed a 3.0 list uses 3.0-only calls (`C_SessionCancel`, ...) that a
/// 2.40 token would answer with `CKR_FUNCTION_NOT_SUPPORTED`, where directly it would
/// have taken its 2.40 path. Before `C_Initialize` the configured backend is inspected
/// once (loaded, not initialised); an unreadable config offers 2.40 only, and
/// `C_Initialize` then reports the problem.
fn offered_interfaces() -> &'static [CK_INTERFACE] {
    static BACKEND_HAS_V3_BEFORE_INIT: OnceLock<bool> = OnceLock::new();
    let running = with_gateway(|gw| Ok(gw.backend_has_v3_0())).ok();
    let has_v3 = running.unwrap_or_else(|| {
        *BACKEND_HAS_V3_BEFORE_INIT.get_or_init(|| {
            Config::load_from_env()
                .and_then(|c| crate::backend::inspect_module(&c.backend.module))
                .is_ok_and(|summary| summary.has_v3_0)
        })
    });
    if has_v3 {
        &INTERFACES.0
    } else {
        &INTERFACES.0[1..]
    }
}

/// `C_GetInterfaceList` (§5.2 size query applies).
pub(super) unsafe fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: pulCount writable; a non-NULL list holds *pulCount entries.
    let mut out = unsafe { out_buf(pInterfacesList, pulCount, "pulCount") }?;
    let (buf, count) = out.parts();
    write_counted(offered_interfaces(), buf, count)
}

/// `C_GetInterface`: by name ("PKCS 11" or NULL for any), version (NULL for the
/// default: the newest offered) and required flags. No match is `CKR_ARGUMENTS_BAD`.
pub(super) unsafe fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> Result<()> {
    // SAFETY: writable pointer storage when non-NULL.
    let out = unsafe { out_ref(ppInterface, "ppInterface") }?;
    if !pInterfaceName.is_null() {
        // SAFETY: a non-NULL name is a NUL-terminated string (v3.0 §5.4).
        let name = unsafe { CStr::from_ptr(pInterfaceName.cast_const().cast()) };
        if name != INTERFACE_NAME {
            return Err(Error::ArgumentsBad("no interface of that name"));
        }
    }
    let version = if pVersion.is_null() {
        None
    } else {
        // SAFETY: a non-NULL pVersion points to a CK_VERSION.
        Some(*unsafe { in_ref(pVersion.cast_const(), "pVersion") }?)
    };
    let found = offered_interfaces().iter().find(|i| {
        let v = interface_version(i);
        let version_ok = version.is_none_or(|want| want.major == v.major && want.minor == v.minor);
        version_ok && i.flags & flags == flags
    });
    let found = found.ok_or(Error::ArgumentsBad("no interface matches"))?;
    *out = ptr::from_ref(found).cast_mut();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n_fns: usize, flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
        unsafe extern "C" fn create(_: CK_VOID_PTR_PTR) -> CK_RV {
            CKR_OK
        }
        unsafe extern "C" fn other(_: CK_VOID_PTR) -> CK_RV {
            CKR_OK
        }
        CK_C_INITIALIZE_ARGS {
            CreateMutex: (n_fns > 0)
                .then_some(create as unsafe extern "C" fn(CK_VOID_PTR_PTR) -> CK_RV),
            DestroyMutex: (n_fns > 1)
                .then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
            LockMutex: (n_fns > 2).then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
            UnlockMutex: (n_fns > 3).then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
            flags,
            pReserved: ptr::null_mut(),
        }
    }

    #[test]
    fn the_four_locking_cases_and_the_bad_ones() {
        assert!(check_init_args(None).is_ok());
        assert!(check_init_args(Some(&args(0, 0))).is_ok());
        assert!(check_init_args(Some(&args(0, CKF_OS_LOCKING_OK))).is_ok());
        assert!(check_init_args(Some(&args(4, 0))).is_ok());
        assert!(check_init_args(Some(&args(4, CKF_OS_LOCKING_OK))).is_ok());
        assert!(matches!(
            check_init_args(Some(&args(2, CKF_OS_LOCKING_OK))),
            Err(Error::ArgumentsBad(_))
        ));
        let mut reserved = args(0, 0);
        reserved.pReserved = ptr::from_mut(&mut reserved.flags).cast();
        assert!(matches!(
            check_init_args(Some(&reserved)),
            Err(Error::ArgumentsBad(_))
        ));
    }
}
