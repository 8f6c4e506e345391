//! Slot and token management (PKCS#11 v2.40 §5.5) and session management (§5.6).
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::args::{in_slice, out_buf, out_ref};
use super::boundary::{forward, with_gateway};
use crate::backend::Notify;
use crate::error::{Error, Result};
use crate::functions::FunctionId as F;
use crate::gateway::Call;

/// `C_GetSlotList` (§5.2 size query applies).
pub(super) unsafe fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: CK_SLOT_ID_PTR,
    pulCount: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract for C_GetSlotList.
    let out = unsafe { out_buf(pSlotList, pulCount, "pulCount") }?;
    forward(Call::library(F::C_GetSlotList), |b| {
        b.get_slot_list(tokenPresent, out)
    })
}

/// `C_GetSlotInfo`
pub(super) unsafe fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) -> Result<()> {
    // SAFETY: caller's contract.
    let info = unsafe { out_ref(pInfo, "pInfo") }?;
    forward(Call::slot(F::C_GetSlotInfo, slotID), |b| {
        b.get_slot_info(slotID, info)
    })
}

/// `C_GetTokenInfo`
pub(super) unsafe fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) -> Result<()> {
    // SAFETY: caller's contract.
    let info = unsafe { out_ref(pInfo, "pInfo") }?;
    forward(Call::slot(F::C_GetTokenInfo, slotID), |b| {
        b.get_token_info(slotID, info)
    })
}

/// `C_GetMechanismList` (§5.2 size query applies).
pub(super) unsafe fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: CK_MECHANISM_TYPE_PTR,
    pulCount: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let out = unsafe { out_buf(pMechanismList, pulCount, "pulCount") }?;
    forward(Call::slot(F::C_GetMechanismList, slotID), |b| {
        b.get_mechanism_list(slotID, out)
    })
}

/// `C_GetMechanismInfo`
pub(super) unsafe fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: CK_MECHANISM_INFO_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let info = unsafe { out_ref(pInfo, "pInfo") }?;
    let call = Call::slot(F::C_GetMechanismInfo, slotID).with_mechanism(type_);
    forward(call, |b| b.get_mechanism_info(slotID, type_, info))
}

/// `C_InitToken`: `pLabel` is 32 bytes, blank padded, not NUL-terminated (§5.5).
pub(super) unsafe fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pLabel: CK_UTF8CHAR_PTR,
) -> Result<()> {
    // SAFETY: caller's contract: the PIN has ulPinLen bytes, the label 32.
    let pin = unsafe { in_slice(pPin, ulPinLen, "pPin") }?;
    // SAFETY: as above.
    let label = unsafe { in_slice(pLabel, 32, "pLabel") }?.ok_or(Error::ArgumentsBad("pLabel"))?;
    let label: &[u8; 32] = label
        .try_into()
        .map_err(|_| Error::ArgumentsBad("pLabel"))?;
    forward(Call::slot(F::C_InitToken, slotID), |b| {
        b.init_token(slotID, pin, label)
    })
}

/// `C_InitPIN`
pub(super) unsafe fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let pin = unsafe { in_slice(pPin, ulPinLen, "pPin") }?;
    forward(Call::session(F::C_InitPIN, hSession), |b| {
        b.init_pin(hSession, pin)
    })
}

/// `C_SetPIN`
pub(super) unsafe fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: CK_UTF8CHAR_PTR,
    ulOldLen: CK_ULONG,
    pNewPin: CK_UTF8CHAR_PTR,
    ulNewLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let old = unsafe { in_slice(pOldPin, ulOldLen, "pOldPin") }?;
    // SAFETY: caller's contract.
    let new = unsafe { in_slice(pNewPin, ulNewLen, "pNewPin") }?;
    forward(Call::session(F::C_SetPIN, hSession), |b| {
        b.set_pin(hSession, old, new)
    })
}

/// `C_OpenSession`: `pApplication` and `Notify` go to the backend untouched.
pub(super) unsafe fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    pApplication: CK_VOID_PTR,
    Notify: CK_NOTIFY,
    phSession: CK_SESSION_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let session = unsafe { out_ref(phSession, "phSession") }?;
    let notify = Notify {
        application: pApplication,
        callback: Notify,
    };
    with_gateway(|gw| {
        gw.open_session(Call::slot(F::C_OpenSession, slotID), session, |b, s| {
            b.open_session(slotID, flags, notify, s)
        })
    })
}

/// `C_CloseSession`
pub(super) unsafe fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> Result<()> {
    with_gateway(|gw| {
        gw.session_call(Call::session(F::C_CloseSession, hSession), |b| {
            b.close_session(hSession)
        })
    })
}

/// `C_CloseAllSessions`
pub(super) unsafe fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> Result<()> {
    with_gateway(|gw| {
        gw.session_call(Call::slot(F::C_CloseAllSessions, slotID), |b| {
            b.close_all_sessions(slotID)
        })
    })
}

/// `C_GetSessionInfo`
pub(super) unsafe fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: CK_SESSION_INFO_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let info = unsafe { out_ref(pInfo, "pInfo") }?;
    forward(Call::session(F::C_GetSessionInfo, hSession), |b| {
        b.get_session_info(hSession, info)
    })
}

/// `C_SessionCancel` (3.0)
pub(super) unsafe fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    with_gateway(|gw| {
        gw.session_cancel(Call::session(F::C_SessionCancel, hSession), flags, |b| {
            b.session_cancel(hSession, flags)
        })
    })
}

/// `C_GetOperationState` (§5.2 size query applies).
pub(super) unsafe fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    pulOperationStateLen: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let out = unsafe {
        out_buf(
            pOperationState,
            pulOperationStateLen,
            "pulOperationStateLen",
        )
    }?;
    forward(Call::session(F::C_GetOperationState, hSession), |b| {
        b.get_operation_state(hSession, out)
    })
}

/// `C_SetOperationState`
pub(super) unsafe fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    ulOperationStateLen: CK_ULONG,
    hEncryptionKey: CK_OBJECT_HANDLE,
    hAuthenticationKey: CK_OBJECT_HANDLE,
) -> Result<()> {
    // SAFETY: caller's contract.
    let state = unsafe { in_slice(pOperationState, ulOperationStateLen, "pOperationState") }?;
    forward(Call::session(F::C_SetOperationState, hSession), |b| {
        b.set_operation_state(hSession, state, hEncryptionKey, hAuthenticationKey)
    })
}

/// `C_Login`: a NULL PIN with length 0 is forwarded (protected authentication path).
pub(super) unsafe fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let pin = unsafe { in_slice(pPin, ulPinLen, "pPin") }?;
    with_gateway(|gw| {
        gw.login(
            Call::session(F::C_Login, hSession),
            userType,
            pin,
            |b, pin| b.login(hSession, userType, pin),
        )
    })
}

/// `C_LoginUser` (3.0)
pub(super) unsafe fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pUsername: CK_UTF8CHAR_PTR,
    ulUsernameLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let pin = unsafe { in_slice(pPin, ulPinLen, "pPin") }?;
    // SAFETY: caller's contract.
    let user = unsafe { in_slice(pUsername, ulUsernameLen, "pUsername") }?;
    with_gateway(|gw| {
        gw.login(
            Call::session(F::C_LoginUser, hSession),
            userType,
            pin,
            |b, pin| b.login_user(hSession, userType, pin, user),
        )
    })
}

/// `C_Logout`
pub(super) unsafe fn C_Logout(hSession: CK_SESSION_HANDLE) -> Result<()> {
    with_gateway(|gw| gw.session_call(Call::session(F::C_Logout, hSession), |b| b.logout(hSession)))
}

/// `C_GetFunctionStatus` (legacy, §5.16)
pub(super) unsafe fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> Result<()> {
    forward(Call::session(F::C_GetFunctionStatus, hSession), |b| {
        b.get_function_status(hSession)
    })
}

/// `C_CancelFunction` (legacy, §5.16)
pub(super) unsafe fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> Result<()> {
    forward(Call::session(F::C_CancelFunction, hSession), |b| {
        b.cancel_function(hSession)
    })
}
