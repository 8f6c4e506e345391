//! Object management (PKCS#11 v2.40 §5.7).
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::args::{in_template, out_array, out_ref, out_template};
use super::boundary::{forward, with_gateway};
use super::decode::{template_from_raw, with_forced};
use super::output::handles_if_recorded;
use crate::error::Result;
use crate::functions::FunctionId as F;
use crate::gateway::{Call, CreateArgs};
use crate::policy::CreationKind;

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
            in_template(
                &Call::session(F::C_CreateObject, hSession),
                pTemplate,
                ulCount,
            )?,
            out_ref(phObject, "phObject")?,
        )
    };
    let call = Call::session(F::C_CreateObject, hSession);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.create_object(hSession, template, object);
                (rv, [Some(*object), None])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulCount) }?;
        let args = CreateArgs {
            kind: CreationKind::Create,
            template: &t,
            public_template: None,
            bits_hint: None,
        };
        gw.create(call, &args, |b, add| {
            let forced = with_forced(template, add);
            let rv = b.create_object(hSession, forced.as_deref().or(template), object);
            (rv, [Some(*object), None])
        })
    });
    handles_if_recorded(result, [object])
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
            in_template(
                &Call::session(F::C_CopyObject, hSession).on(hObject),
                pTemplate,
                ulCount,
            )?,
            out_ref(phNewObject, "phNewObject")?,
        )
    };
    let call = Call::session(F::C_CopyObject, hSession).on(hObject);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.copy_object(hSession, hObject, template, new);
                (rv, [Some(*new), None])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulCount) }?;
        let args = CreateArgs {
            kind: CreationKind::Copy,
            template: &t,
            public_template: None,
            bits_hint: None,
        };
        gw.create(call, &args, |b, add| {
            let forced = with_forced(template, add);
            let rv = b.copy_object(hSession, hObject, forced.as_deref().or(template), new);
            (rv, [Some(*new), None])
        })
    });
    handles_if_recorded(result, [new])
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
/// the per-attribute rules itself; its code comes back unchanged. Secret-valued
/// attributes the policy withholds are the gateway's (`Gateway::get_attributes`).
pub(super) unsafe fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    let call = Call::session(F::C_GetAttributeValue, hSession).on(hObject);
    // SAFETY: caller's contract: ulCount attributes, read and written in place.
    let template = unsafe { out_template(&call, pTemplate, ulCount) }?;
    with_gateway(|gw| {
        gw.get_attributes(call, template, |b, t| {
            b.get_attribute_value(hSession, hObject, t)
        })
    })
}

/// `C_SetAttributeValue`
pub(super) unsafe fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    let call = Call::session(F::C_SetAttributeValue, hSession).on(hObject);
    // SAFETY: caller's contract.
    let template = unsafe { in_template(&call, pTemplate, ulCount) }?;
    with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.call(call, |b| b.set_attribute_value(hSession, hObject, template));
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulCount) }?;
        gw.set_attributes(call, &t, |b| {
            b.set_attribute_value(hSession, hObject, template)
        })
    })
}

/// `C_FindObjectsInit`
pub(super) unsafe fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> Result<()> {
    let call = Call::session(F::C_FindObjectsInit, hSession);
    // SAFETY: caller's contract.
    let template = unsafe { in_template(&call, pTemplate, ulCount) }?;
    // Only the attribute types are looked at, never the values.
    let by_id = template.is_some_and(|t| t.iter().any(|a| a.type_ == CKA_ID));
    with_gateway(|gw| {
        gw.find_objects_init(call, by_id, |b| b.find_objects_init(hSession, template))
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
            out_array(phObject, ulMaxObjectCount, "phObject")?,
            out_ref(pulObjectCount, "pulObjectCount")?,
        )
    };
    with_gateway(|gw| {
        gw.find_objects(
            Call::session(F::C_FindObjects, hSession),
            found,
            count,
            |b, found, count| b.find_objects(hSession, found, count),
        )
    })
}

/// `C_FindObjectsFinal`
pub(super) unsafe fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> Result<()> {
    forward(Call::session(F::C_FindObjectsFinal, hSession), |b| {
        b.find_objects_final(hSession)
    })
}
