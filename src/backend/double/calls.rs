//! The double's general-purpose, slot, session and object functions.

use pkcs11_sys::*;

use super::super::loader::attr_value_mut;
use super::{emit, padded, read_template, rv_of, Double, Session, SLOT, SO_PIN};
use super::{TOKEN_LABEL, TOKEN_SERIAL};
use crate::abi::{fill_attribute, AttrOut, OutBuf};
use crate::backend::{Calls, Notify};
use crate::functions::{FunctionId as F, OpKind};

/// The mechanisms the token lists.
const MECHANISMS: [CK_MECHANISM_TYPE; 4] =
    [CKM_ECDSA, CKM_SHA256, CKM_AES_ECB, CKM_EC_KEY_PAIR_GEN];

/// Attributes a sensitive or unextractable key never reveals.
const SECRET: [CK_ATTRIBUTE_TYPE; 3] = [CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1];

/// Answers `rv` early when the call was scripted to fail (or the library is not
/// initialised, or the session is unknown).
macro_rules! enter {
    ($st:ident, $f:ident) => {
        if let Some(rv) = $st.enter(F::$f, None) {
            return rv;
        }
        if !$st.initialized {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        }
    };
    ($st:ident, $f:ident, $session:expr) => {
        if let Some(rv) = $st.enter(F::$f, Some($session)) {
            return rv;
        }
        if let Err(rv) = $st.session($session) {
            return rv;
        }
    };
}

impl Calls for Double {
    fn get_info(&self, info: &mut CK_INFO) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetInfo);
        info.cryptokiVersion = CK_VERSION {
            major: 2,
            minor: 40,
        };
        info.manufacturerID = padded("keywarden test double");
        info.libraryDescription = padded("in-memory token");
        CKR_OK
    }

    fn get_slot_list(&self, _token_present: CK_BBOOL, mut out: OutBuf<'_, CK_SLOT_ID>) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetSlotList);
        emit(&mut out, &[SLOT])
    }

    fn get_slot_info(&self, slot: CK_SLOT_ID, info: &mut CK_SLOT_INFO) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetSlotInfo);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        info.slotDescription = padded("double slot");
        info.flags = CKF_TOKEN_PRESENT;
        CKR_OK
    }

    fn get_token_info(&self, slot: CK_SLOT_ID, info: &mut CK_TOKEN_INFO) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetTokenInfo);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        info.label = padded(TOKEN_LABEL);
        info.serialNumber = padded(TOKEN_SERIAL);
        info.flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
        CKR_OK
    }

    fn wait_for_slot_event(&self, _flags: CK_FLAGS, _slot: &mut CK_SLOT_ID) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_WaitForSlotEvent);
        CKR_NO_EVENT
    }

    fn get_mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        mut out: OutBuf<'_, CK_MECHANISM_TYPE>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetMechanismList);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        emit(&mut out, &MECHANISMS)
    }

    fn get_mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mech: CK_MECHANISM_TYPE,
        info: &mut CK_MECHANISM_INFO,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetMechanismInfo);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        if !MECHANISMS.contains(&mech) {
            return CKR_MECHANISM_INVALID;
        }
        *info = CK_MECHANISM_INFO {
            ulMinKeySize: 256,
            ulMaxKeySize: 256,
            flags: CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST,
        };
        CKR_OK
    }

    fn init_token(&self, _slot: CK_SLOT_ID, _pin: Option<&[u8]>, _label: &[u8; 32]) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_InitToken);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn init_pin(&self, session: CK_SESSION_HANDLE, _pin: Option<&[u8]>) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_InitPIN, session);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn set_pin(
        &self,
        session: CK_SESSION_HANDLE,
        _old: Option<&[u8]>,
        _new: Option<&[u8]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_SetPIN, session);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        _notify: Notify,
        session: &mut CK_SESSION_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_OpenSession);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        if flags & CKF_SERIAL_SESSION == 0 {
            return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        }
        let h = st.handle();
        st.sessions.insert(
            h,
            Session {
                flags,
                ..Session::default()
            },
        );
        *session = h;
        CKR_OK
    }

    fn close_session(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_CloseSession, session);
        st.close(session);
        CKR_OK
    }

    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_CloseAllSessions);
        if slot != SLOT {
            return CKR_SLOT_ID_INVALID;
        }
        let all: Vec<_> = st.sessions.keys().copied().collect();
        for h in all {
            st.close(h);
        }
        CKR_OK
    }

    fn get_session_info(&self, session: CK_SESSION_HANDLE, info: &mut CK_SESSION_INFO) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetSessionInfo, session);
        let login = st.login;
        let flags = st.sessions.get(&session).map_or(0, |s| s.flags);
        let rw = flags & CKF_RW_SESSION != 0;
        info.slotID = SLOT;
        info.flags = flags;
        info.ulDeviceError = 0;
        info.state = match (login, rw) {
            (Some(CKU_SO), _) => CKS_RW_SO_FUNCTIONS,
            (Some(_), true) => CKS_RW_USER_FUNCTIONS,
            (Some(_), false) => CKS_RO_USER_FUNCTIONS,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (None, false) => CKS_RO_PUBLIC_SESSION,
        };
        CKR_OK
    }

    fn session_cancel(&self, session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_SessionCancel, session);
        if let Some(s) = st.sessions.get_mut(&session) {
            for (flag, kind) in OpKind::CANCEL_FLAGS {
                if flags & flag != 0 {
                    s.ops.remove(&kind);
                }
            }
        }
        CKR_OK
    }

    fn get_operation_state(&self, session: CK_SESSION_HANDLE, _out: OutBuf<'_>) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetOperationState, session);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn set_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        _state: Option<&[u8]>,
        _encryption_key: CK_OBJECT_HANDLE,
        _authentication_key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_SetOperationState, session);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn login(&self, session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_Login, session);
        let expected = match user {
            CKU_USER => super::USER_PIN,
            CKU_SO => SO_PIN,
            _ => return CKR_USER_TYPE_INVALID,
        };
        if st.login.is_some() {
            return CKR_USER_ALREADY_LOGGED_IN;
        }
        if pin != Some(expected) {
            return CKR_PIN_INCORRECT;
        }
        st.login = Some(user);
        CKR_OK
    }

    fn login_user(
        &self,
        session: CK_SESSION_HANDLE,
        _user: CK_USER_TYPE,
        _pin: Option<&[u8]>,
        _username: Option<&[u8]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_LoginUser, session);
        CKR_FUNCTION_NOT_SUPPORTED
    }

    fn logout(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_Logout, session);
        match st.login.take() {
            Some(_) => CKR_OK,
            None => CKR_USER_NOT_LOGGED_IN,
        }
    }

    fn get_function_status(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetFunctionStatus, session);
        CKR_FUNCTION_NOT_PARALLEL
    }

    fn cancel_function(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_CancelFunction, session);
        CKR_FUNCTION_NOT_PARALLEL
    }

    fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_CreateObject, session);
        let attrs = read_template(template);
        if !attrs.contains_key(&CKA_CLASS) {
            return CKR_TEMPLATE_INCOMPLETE;
        }
        rv_of(st.create(session, attrs).map(|h| *object = h))
    }

    fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        new_object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_CopyObject, session);
        let Some(source) = st.visible(object) else {
            return CKR_OBJECT_HANDLE_INVALID;
        };
        let mut attrs = source.attrs.clone();
        attrs.extend(read_template(template));
        rv_of(st.create(session, attrs).map(|h| *new_object = h))
    }

    fn destroy_object(&self, session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_DestroyObject, session);
        if st.visible(object).is_none() {
            return CKR_OBJECT_HANDLE_INVALID;
        }
        st.objects.remove(&object);
        CKR_OK
    }

    fn get_object_size(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        size: &mut CK_ULONG,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetObjectSize, session);
        let Some(o) = st.visible(object) else {
            return CKR_OBJECT_HANDLE_INVALID;
        };
        let n: usize = o.attrs.values().map(Vec::len).sum();
        *size = CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX);
        CKR_OK
    }

    fn get_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&mut [CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_GetAttributeValue, session);
        let Some(o) = st.visible(object) else {
            return CKR_OBJECT_HANDLE_INVALID;
        };
        let hidden = o.flag(CKA_SENSITIVE) == Some(true) || o.flag(CKA_EXTRACTABLE) == Some(false);
        // Every attribute is answered; the first per-attribute error is the call's.
        let mut first = Ok(());
        for a in template.unwrap_or(&mut []) {
            let answer = match o.attrs.get(&a.type_) {
                Some(_) if hidden && SECRET.contains(&a.type_) => AttrOut::Sensitive,
                Some(v) => AttrOut::Value(v),
                None => AttrOut::Invalid,
            };
            let (buf, len) = attr_value_mut(a);
            let r = fill_attribute(answer, buf, len);
            if first.is_ok() {
                first = r;
            }
        }
        first.err().map_or(CKR_OK, |e| e.rv())
    }

    fn set_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_SetAttributeValue, session);
        if st.visible(object).is_none() {
            return CKR_OBJECT_HANDLE_INVALID;
        }
        if let Some(o) = st.objects.get_mut(&object) {
            o.attrs.extend(read_template(template));
        }
        CKR_OK
    }

    fn find_objects_init(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_FindObjectsInit, session);
        let wanted = read_template(template);
        let found: Vec<_> = st
            .objects
            .keys()
            .copied()
            .filter(|h| {
                st.visible(*h)
                    .is_some_and(|o| wanted.iter().all(|(t, v)| o.attrs.get(t) == Some(v)))
            })
            .collect();
        rv_of(st.session(session).and_then(|s| match s.find {
            Some(_) => Err(CKR_OPERATION_ACTIVE),
            None => {
                s.find = Some(found);
                Ok(())
            }
        }))
    }

    fn find_objects(
        &self,
        session: CK_SESSION_HANDLE,
        found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
    ) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_FindObjects, session);
        let found = found.unwrap_or(&mut []);
        rv_of(st.session(session).and_then(|s| {
            let left = s.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
            let n = found.len().min(left.len());
            for (d, h) in found.iter_mut().zip(left.drain(..n)) {
                *d = h;
            }
            *count = CK_ULONG::try_from(n).unwrap_or(0);
            Ok(())
        }))
    }

    fn find_objects_final(&self, session: CK_SESSION_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        enter!(st, C_FindObjectsFinal, session);
        rv_of(st.session(session).and_then(|s| match s.find.take() {
            Some(_) => Ok(()),
            None => Err(CKR_OPERATION_NOT_INITIALIZED),
        }))
    }
}
