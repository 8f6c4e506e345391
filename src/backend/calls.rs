//! One safe method per PKCS#11 function, forwarding to the backend's table.
//!
//! Every method returns the backend's `CK_RV` untouched. Arguments arrive as Rust
//! references and slices (built by `ffi` from the application's pointers, or by a
//! future out-of-process front end from its own buffers); `None` stands for an
//! application `NULL_PTR` and is forwarded as `NULL_PTR`.

use std::ptr;

use pkcs11_sys::*;

use super::forward::{input, out_parts, output};
use super::Backend;
use crate::abi::OutBuf;

/// The application's `C_OpenSession` notification callback and its context pointer,
/// passed to the backend untouched (the backend calls the application directly).
#[derive(Clone, Copy)]
pub struct Notify {
    /// `pApplication`, opaque to Keywarden.
    pub application: CK_VOID_PTR,
    /// `Notify`, may be `None`.
    pub callback: CK_NOTIFY,
}

impl Backend {
    // --- General purpose (PKCS#11 v2.40 §5.4) ---------------------------------------

    pub(super) fn c_initialize_os_locking(&self) -> CK_RV {
        let mut args = super::os_locking_init_args();
        forward!(self.C_Initialize(ptr::from_mut(&mut args).cast()))
    }

    pub(super) fn c_finalize(&self) -> CK_RV {
        forward!(self.C_Finalize(ptr::null_mut()))
    }

    /// `C_GetInfo`
    pub fn get_info(&self, info: &mut CK_INFO) -> CK_RV {
        forward!(self.C_GetInfo(info))
    }

    // --- Slot and token management (§5.5) -------------------------------------------

    /// `C_GetSlotList`
    pub fn get_slot_list(&self, token_present: CK_BBOOL, mut out: OutBuf<'_, CK_SLOT_ID>) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetSlotList(token_present, p, len))
    }

    /// `C_GetSlotInfo`
    pub fn get_slot_info(&self, slot: CK_SLOT_ID, info: &mut CK_SLOT_INFO) -> CK_RV {
        forward!(self.C_GetSlotInfo(slot, info))
    }

    /// `C_GetTokenInfo`
    pub fn get_token_info(&self, slot: CK_SLOT_ID, info: &mut CK_TOKEN_INFO) -> CK_RV {
        forward!(self.C_GetTokenInfo(slot, info))
    }

    /// `C_WaitForSlotEvent` (`pReserved` is always NULL_PTR, as §5.5 requires).
    pub fn wait_for_slot_event(&self, flags: CK_FLAGS, slot: &mut CK_SLOT_ID) -> CK_RV {
        forward!(self.C_WaitForSlotEvent(flags, slot, ptr::null_mut()))
    }

    /// `C_GetMechanismList`
    pub fn get_mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        mut out: OutBuf<'_, CK_MECHANISM_TYPE>,
    ) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetMechanismList(slot, p, len))
    }

    /// `C_GetMechanismInfo`
    pub fn get_mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mech: CK_MECHANISM_TYPE,
        info: &mut CK_MECHANISM_INFO,
    ) -> CK_RV {
        forward!(self.C_GetMechanismInfo(slot, mech, info))
    }

    /// `C_InitToken` (`label` is the 32-byte blank-padded label).
    pub fn init_token(&self, slot: CK_SLOT_ID, pin: Option<&[u8]>, label: &[u8; 32]) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_InitToken(slot, pin, pin_len, label.as_ptr().cast_mut()))
    }

    /// `C_InitPIN`
    pub fn init_pin(&self, session: CK_SESSION_HANDLE, pin: Option<&[u8]>) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_InitPIN(session, pin, pin_len))
    }

    /// `C_SetPIN`
    pub fn set_pin(
        &self,
        session: CK_SESSION_HANDLE,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> CK_RV {
        let (old, old_len) = input(old);
        let (new, new_len) = input(new);
        forward!(self.C_SetPIN(session, old, old_len, new, new_len))
    }

    // --- Session management (§5.6) --------------------------------------------------

    /// `C_OpenSession`
    pub fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        notify: Notify,
        session: &mut CK_SESSION_HANDLE,
    ) -> CK_RV {
        forward!(self.C_OpenSession(slot, flags, notify.application, notify.callback, session))
    }

    /// `C_CloseSession`
    pub fn close_session(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_CloseSession(session))
    }

    /// `C_CloseAllSessions`
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV {
        forward!(self.C_CloseAllSessions(slot))
    }

    /// `C_GetSessionInfo`
    pub fn get_session_info(
        &self,
        session: CK_SESSION_HANDLE,
        info: &mut CK_SESSION_INFO,
    ) -> CK_RV {
        forward!(self.C_GetSessionInfo(session, info))
    }

    /// `C_SessionCancel` (3.0)
    pub fn session_cancel(&self, session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
        forward!(self.C_SessionCancel(session, flags))
    }

    /// `C_GetOperationState`
    pub fn get_operation_state(&self, session: CK_SESSION_HANDLE, mut out: OutBuf<'_>) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetOperationState(session, p, len))
    }

    /// `C_SetOperationState`
    pub fn set_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        state: Option<&[u8]>,
        encryption_key: CK_OBJECT_HANDLE,
        authentication_key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (p, len) = input(state);
        forward!(self.C_SetOperationState(session, p, len, encryption_key, authentication_key))
    }

    /// `C_Login`
    pub fn login(
        &self,
        session: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_Login(session, user, pin, pin_len))
    }

    /// `C_LoginUser` (3.0)
    pub fn login_user(
        &self,
        session: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: Option<&[u8]>,
        username: Option<&[u8]>,
    ) -> CK_RV {
        let (pin, pin_len) = input(pin);
        let (name, name_len) = input(username);
        forward!(self.C_LoginUser(session, user, pin, pin_len, name, name_len))
    }

    /// `C_Logout`
    pub fn logout(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_Logout(session))
    }

    /// `C_GetFunctionStatus` (legacy)
    pub fn get_function_status(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_GetFunctionStatus(session))
    }

    /// `C_CancelFunction` (legacy)
    pub fn cancel_function(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_CancelFunction(session))
    }

    // --- Object management (§5.7) ---------------------------------------------------

    /// `C_CreateObject`
    pub fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_CreateObject(session, t, n, object))
    }

    /// `C_CopyObject`
    pub fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        new_object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_CopyObject(session, object, t, n, new_object))
    }

    /// `C_DestroyObject`
    pub fn destroy_object(&self, session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
        forward!(self.C_DestroyObject(session, object))
    }

    /// `C_GetObjectSize`
    pub fn get_object_size(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        size: &mut CK_ULONG,
    ) -> CK_RV {
        forward!(self.C_GetObjectSize(session, object, size))
    }

    /// `C_GetAttributeValue`: the backend writes into the application's own `pValue`
    /// buffers and `ulValueLen` fields, so its per-attribute answers reach the caller as is.
    pub fn get_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&mut [CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = output(template);
        forward!(self.C_GetAttributeValue(session, object, t, n))
    }

    /// `C_SetAttributeValue`
    pub fn set_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_SetAttributeValue(session, object, t, n))
    }

    /// `C_FindObjectsInit`
    pub fn find_objects_init(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_FindObjectsInit(session, t, n))
    }

    /// `C_FindObjects`: up to `found.len()` handles; the count lands in `count`.
    pub fn find_objects(
        &self,
        session: CK_SESSION_HANDLE,
        found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
    ) -> CK_RV {
        let (p, max) = output(found);
        forward!(self.C_FindObjects(session, p, max, count))
    }

    /// `C_FindObjectsFinal`
    pub fn find_objects_final(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_FindObjectsFinal(session))
    }
}
