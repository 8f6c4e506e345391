//! Object management (PKCS#11 v2.40 §5.7).
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::args::{in_slice, out_ref, out_slice};
use super::boundary::forward;
use crate::error::Result;
use crate::functions::FunctionId as F;
use crate::gateway::Call;

/// `C_CreateObject`
pub(super) unsafe fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phObject: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract: ulCount attributes, one writable handle.
    let (template, object) = unsafe {
        (
            in_slice(pTemplate, ulCount, "pTemplate")?,
            out_ref(phObject, "phObject")?,
        )
    };
    forward(Call::session(F::C_CreateObject, hSession), |b| {
        b.create_object(hSession, template, object)
    })
}

/// `C_CopyObject`
pub(super) unsafe fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phNewObject: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (template, new) = unsafe {
        (
            in_slice(pTemplate, ulCount, "pTemplate")?,
            out_ref(phNewObject, "phNewObject")?,
        )
    };
    forward(Call::session(F::C_CopyObject, hSession).on(hObject), |b| {
        b.copy_object(hSession, hObject, template, new)
    })
}

/// `C_DestroyObject`
pub(super) unsafe fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> Result<()> {
    forward(
        Call::session(F::C_DestroyObject, hSession).on(hObject),
        |b| b.destroy_object(hSession, hObject),
    )
}

/// `C_GetObjectSize`
pub(super) unsafe fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let size = unsafe { out_ref(pulSize, "pulSize") }?;
    forward(
        Call::session(F::C_GetObjectSize, hSession).on(hObject),
        |b| b.get_object_size(hSession, hObject, size),
    )
}

/// `C_GetAttributeValue`: the token fills the caller's template in place and applies
/// the per-attribute rules itself; its code comes back unchanged.
pub(super) unsafe fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract: ulCount attributes, read and written in place.
    let template = unsafe { out_slice(pTemplate, ulCount, "pTemplate") }?;
    forward(
        Call::session(F::C_GetAttributeValue, hSession).on(hObject),
        |b| b.get_attribute_value(hSession, hObject, template),
    )
}

/// `C_SetAttributeValue`
pub(super) unsafe fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let template = unsafe { in_slice(pTemplate, ulCount, "pTemplate") }?;
    forward(
        Call::session(F::C_SetAttributeValue, hSession).on(hObject),
        |b| b.set_attribute_value(hSession, hObject, template),
    )
}

/// `C_FindObjectsInit`
pub(super) unsafe fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let template = unsafe { in_slice(pTemplate, ulCount, "pTemplate") }?;
    forward(Call::session(F::C_FindObjectsInit, hSession), |b| {
        b.find_objects_init(hSession, template)
    })
}

/// `C_FindObjects`
pub(super) unsafe fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: CK_OBJECT_HANDLE_PTR,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract: room for ulMaxObjectCount handles, one writable count.
    let (found, count) = unsafe {
        (
            out_slice(phObject, ulMaxObjectCount, "phObject")?,
            out_ref(pulObjectCount, "pulObjectCount")?,
        )
    };
    forward(Call::session(F::C_FindObjects, hSession), |b| {
        b.find_objects(hSession, found, count)
    })
}

/// `C_FindObjectsFinal`
pub(super) unsafe fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> Result<()> {
    forward(Call::session(F::C_FindObjectsFinal, hSession), |b| {
        b.find_objects_final(hSession)
    })
}
