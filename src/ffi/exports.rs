//! The only symbols `libkeywarden.so` exports (see `include/keywarden.h`).
//!
//! Exporting `C_GetFunctionList`, `C_GetInterfaceList` and `C_GetInterface` only
//! means Keywarden's `C_*` symbols can never interpose those of the real module that
//! lives in the same process; clients reach everything through the function lists.
//! `keywarden_version` is also the marker by which a Keywarden build recognises
//! itself when it is configured as its own backend (backend/loader.rs).
#![allow(non_snake_case)]

use std::ffi::c_char;

use pkcs11_sys::*;

use super::entry;

/// `C_GetFunctionList` (PKCS#11 v2.40 §5.4).
///
/// # Safety
/// `ppFunctionList` must be NULL or point to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    // SAFETY: same contract.
    unsafe { entry::C_GetFunctionList(ppFunctionList) }
}

/// `C_GetInterfaceList` (PKCS#11 v3.0 §5.4).
///
/// # Safety
/// `pulCount` must be NULL or writable; a non-NULL `pInterfacesList` must hold
/// `*pulCount` writable `CK_INTERFACE`s.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    // SAFETY: same contract.
    unsafe { entry::C_GetInterfaceList(pInterfacesList, pulCount) }
}

/// `C_GetInterface` (PKCS#11 v3.0 §5.4).
///
/// # Safety
/// `pInterfaceName` must be NULL or a NUL-terminated string; `pVersion` NULL or a
/// readable `CK_VERSION`; `ppInterface` NULL or writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    // SAFETY: same contract.
    unsafe { entry::C_GetInterface(pInterfaceName, pVersion, ppInterface, flags) }
}

/// The Keywarden version as a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn keywarden_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
