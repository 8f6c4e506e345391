//! The loaded module's general-purpose, slot, session and object functions
//! (PKCS#11 v2.40 §5.4-§5.7): each [`Calls`] method forwards to the module's
//! table, `None` as `NULL_PTR`, and returns its `CK_RV` untouched.

use std::ptr;

use pkcs11_sys::*;

use super::forward::{input, out_parts, output};
use super::{Calls, LoadedModule, Notify};
use crate::abi::OutBuf;

impl LoadedModule {
    pub(super) fn c_initialize_os_locking(&self) -> CK_RV {
        let mut args = super::os_locking_init_args();
        forward!(self.C_Initialize(ptr::from_mut(&mut args).cast()))
    }

    pub(super) fn c_finalize(&self) -> CK_RV {
        forward!(self.C_Finalize(ptr::null_mut()))
    }
}

impl Calls for LoadedModule {
    // --- General purpose (PKCS#11 v2.40 §5.4) ---------------------------------------

    fn get_info(&self, info: &mut CK_INFO) -> CK_RV {
        forward!(self.C_GetInfo(info))
    }

    // --- Slot and token management (§5.5) -------------------------------------------

    fn get_slot_list(&self, token_present: CK_BBOOL, mut out: OutBuf<'_, CK_SLOT_ID>) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetSlotList(token_present, p, len))
    }

    fn get_slot_info(&self, slot: CK_SLOT_ID, info: &mut CK_SLOT_INFO) -> CK_RV {
        forward!(self.C_GetSlotInfo(slot, info))
    }

    fn get_token_info(&self, slot: CK_SLOT_ID, info: &mut CK_TOKEN_INFO) -> CK_RV {
        forward!(self.C_GetTokenInfo(slot, info))
    }

    fn wait_for_slot_event(&self, flags: CK_FLAGS, slot: &mut CK_SLOT_ID) -> CK_RV {
        forward!(self.C_WaitForSlotEvent(flags, slot, ptr::null_mut()))
    }

    fn get_mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        mut out: OutBuf<'_, CK_MECHANISM_TYPE>,
    ) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetMechanismList(slot, p, len))
    }

    fn get_mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mech: CK_MECHANISM_TYPE,
        info: &mut CK_MECHANISM_INFO,
    ) -> CK_RV {
        forward!(self.C_GetMechanismInfo(slot, mech, info))
    }

    fn init_token(&self, slot: CK_SLOT_ID, pin: Option<&[u8]>, label: &[u8; 32]) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_InitToken(slot, pin, pin_len, label.as_ptr().cast_mut()))
    }

    fn init_pin(&self, session: CK_SESSION_HANDLE, pin: Option<&[u8]>) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_InitPIN(session, pin, pin_len))
    }

    fn set_pin(&self, session: CK_SESSION_HANDLE, old: Option<&[u8]>, new: Option<&[u8]>) -> CK_RV {
        let (old, old_len) = input(old);
        let (new, new_len) = input(new);
        forward!(self.C_SetPIN(session, old, old_len, new, new_len))
    }

    // --- Session management (§5.6) --------------------------------------------------

    fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        notify: Notify,
        session: &mut CK_SESSION_HANDLE,
    ) -> CK_RV {
        forward!(self.C_OpenSession(slot, flags, notify.application, notify.callback, session))
    }

    fn close_session(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_CloseSession(session))
    }

    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV {
        forward!(self.C_CloseAllSessions(slot))
    }

    fn get_session_info(&self, session: CK_SESSION_HANDLE, info: &mut CK_SESSION_INFO) -> CK_RV {
        forward!(self.C_GetSessionInfo(session, info))
    }

    fn session_cancel(&self, session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
        forward!(self.C_SessionCancel(session, flags))
    }

    fn get_operation_state(&self, session: CK_SESSION_HANDLE, mut out: OutBuf<'_>) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_GetOperationState(session, p, len))
    }

    fn set_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        state: Option<&[u8]>,
        encryption_key: CK_OBJECT_HANDLE,
        authentication_key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (p, len) = input(state);
        forward!(self.C_SetOperationState(session, p, len, encryption_key, authentication_key))
    }

    fn login(&self, session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> CK_RV {
        let (pin, pin_len) = input(pin);
        forward!(self.C_Login(session, user, pin, pin_len))
    }

    fn login_user(
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

    fn logout(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_Logout(session))
    }

    fn get_function_status(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_GetFunctionStatus(session))
    }

    fn cancel_function(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_CancelFunction(session))
    }

    // --- Object management (§5.7) ---------------------------------------------------

    fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_CreateObject(session, t, n, object))
    }

    fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        new_object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_CopyObject(session, object, t, n, new_object))
    }

    fn destroy_object(&self, session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
        forward!(self.C_DestroyObject(session, object))
    }

    fn get_object_size(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        size: &mut CK_ULONG,
    ) -> CK_RV {
        forward!(self.C_GetObjectSize(session, object, size))
    }

    fn get_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&mut [CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = output(template);
        forward!(self.C_GetAttributeValue(session, object, t, n))
    }

    fn set_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_SetAttributeValue(session, object, t, n))
    }

    fn find_objects_init(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_FindObjectsInit(session, t, n))
    }

    fn find_objects(
        &self,
        session: CK_SESSION_HANDLE,
        found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
    ) -> CK_RV {
        let (p, max) = output(found);
        forward!(self.C_FindObjects(session, p, max, count))
    }

    fn find_objects_final(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        forward!(self.C_FindObjectsFinal(session))
    }
}
