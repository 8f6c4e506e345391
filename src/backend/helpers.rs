//! Keywarden's own short conversations with a backend, as typed Rust calls, built
//! on the [`Backend`] trait's methods (so they run on any backend, the test double
//! included).
//!
//! The trait's methods (`api.rs`) pass an application's arguments through; the
//! helpers here are for work Keywarden does itself — today the audit seal: find the
//! token by label, open a public read-only session, find a key by a small typed
//! template, sign one buffer, close the session. They take and return Rust values,
//! so their callers (`audit::TokenSealer`) need no raw pointers.
//!
//! A helper session is the module's own: it never appears in the application's
//! session table (the gateway does not see it), and it is closed when the
//! [`HelperSession`] is dropped. It is opened read-only and without login because
//! PKCS#11 login state is per application per token (v2.40 §5.6): logging in here
//! would log in (or out) every session of the application.

use std::ffi::c_void;
use std::ptr;

use pkcs11_sys::*;

use super::forward::ulong;
use super::{Backend, Notify};
use crate::abi::OutBuf;
use crate::error::{check_rv, Error, Result};

/// One attribute of a search (or generation, or edit) template, with an owned
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindAttr {
    /// `CKA_CLASS`
    Class(CK_OBJECT_CLASS),
    /// `CKA_KEY_TYPE`
    KeyType(CK_KEY_TYPE),
    /// `CKA_LABEL` (UTF-8, not padded)
    Label(String),
    /// `CKA_ID`
    Id(Vec<u8>),
    /// `CKA_TOKEN`
    Token(bool),
    /// Any `CK_BBOOL`-valued attribute.
    Flag(CK_ATTRIBUTE_TYPE, bool),
    /// Any `CK_ULONG`-valued attribute.
    Ulong(CK_ATTRIBUTE_TYPE, CK_ULONG),
    /// Any byte-valued attribute (`CKA_EC_PARAMS`, `CKA_START_DATE`, ...).
    Bytes(CK_ATTRIBUTE_TYPE, Vec<u8>),
}

/// The value storage behind one `CK_ATTRIBUTE`: numbers are kept as `CK_ULONG`s (not
/// as bytes) so the module reads them at their natural alignment.
enum Value {
    Ulong(CK_ULONG),
    Bool(CK_BBOOL),
    Bytes(Vec<u8>),
}

impl FindAttr {
    fn split(&self) -> (CK_ATTRIBUTE_TYPE, Value) {
        match self {
            FindAttr::Class(c) => (CKA_CLASS, Value::Ulong(*c)),
            FindAttr::KeyType(k) => (CKA_KEY_TYPE, Value::Ulong(*k)),
            FindAttr::Label(l) => (CKA_LABEL, Value::Bytes(l.as_bytes().to_vec())),
            FindAttr::Id(id) => (CKA_ID, Value::Bytes(id.clone())),
            FindAttr::Token(t) => (CKA_TOKEN, bool_value(*t)),
            FindAttr::Flag(ty, v) => (*ty, bool_value(*v)),
            FindAttr::Ulong(ty, v) => (*ty, Value::Ulong(*v)),
            FindAttr::Bytes(ty, v) => (*ty, Value::Bytes(v.clone())),
        }
    }
}

fn bool_value(v: bool) -> Value {
    Value::Bool(if v {
        CK_TRUE as CK_BBOOL
    } else {
        CK_FALSE as CK_BBOOL
    })
}

/// Builds `CK_ATTRIBUTE`s pointing into `values`, which must outlive their use.
fn template(types: &[CK_ATTRIBUTE_TYPE], values: &[Value]) -> Vec<CK_ATTRIBUTE> {
    types
        .iter()
        .zip(values)
        .map(|(t, v)| {
            let (p, n): (*const c_void, usize) = match v {
                Value::Ulong(u) => (ptr::from_ref(u).cast(), std::mem::size_of::<CK_ULONG>()),
                Value::Bool(b) => (ptr::from_ref(b).cast(), 1),
                Value::Bytes(b) => (b.as_ptr().cast(), b.len()),
            };
            CK_ATTRIBUTE {
                type_: *t,
                pValue: p.cast_mut(),
                ulValueLen: ulong(n),
            }
        })
        .collect()
}

/// Trailing blanks (the padding of `CK_TOKEN_INFO.label`) and NULs removed.
fn unpad(field: &[u8]) -> &[u8] {
    let end = field
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i + 1);
    &field[..end]
}

impl dyn Backend + '_ {
    /// Slots with a token present.
    pub fn slots_with_token(&self) -> Result<Vec<CK_SLOT_ID>> {
        // The list can grow between the size query and the fetch (a token inserted):
        // the backend then says CKR_BUFFER_TOO_SMALL and we ask again.
        for _ in 0..4 {
            let mut count: CK_ULONG = 0;
            check_rv(self.get_slot_list(CK_TRUE as CK_BBOOL, OutBuf::new(None, &mut count)))?;
            let mut slots = vec![0; usize::try_from(count).unwrap_or(0)];
            let rv = self.get_slot_list(
                CK_TRUE as CK_BBOOL,
                OutBuf::new(Some(&mut slots), &mut count),
            );
            if rv == CKR_BUFFER_TOO_SMALL {
                continue;
            }
            check_rv(rv)?;
            slots.truncate(usize::try_from(count).unwrap_or(0));
            return Ok(slots);
        }
        Err(Error::Backend(CKR_BUFFER_TOO_SMALL))
    }

    /// The one slot whose token is labelled `label`. No such token, or several, is a
    /// configuration error: a seal made on the wrong token would not verify.
    pub fn slot_by_token_label(&self, label: &str) -> Result<CK_SLOT_ID> {
        let mut found = Vec::new();
        for slot in self.slots_with_token()? {
            // All zeros (pkcs11-sys derives Default); the backend overwrites it.
            let mut info = CK_TOKEN_INFO::default();
            // A token removed meanwhile is simply not a match.
            if self.get_token_info(slot, &mut info) == CKR_OK
                && unpad(&info.label) == label.as_bytes()
            {
                found.push(slot);
            }
        }
        match found.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Error::Request(format!(
                "no token labelled {label:?} (keywarden doctor lists the tokens)"
            ))),
            _ => Err(Error::Config(format!(
                "{} tokens are labelled {label:?}",
                found.len()
            ))),
        }
    }

    /// The serial number of the token in `slot` (`CK_TOKEN_INFO.serialNumber`,
    /// padding removed): how the metadata store names a token.
    pub fn token_serial(&self, slot: CK_SLOT_ID) -> Result<String> {
        // All zeros (pkcs11-sys derives Default); the backend overwrites it.
        let mut info = CK_TOKEN_INFO::default();
        check_rv(self.get_token_info(slot, &mut info))?;
        Ok(String::from_utf8_lossy(unpad(&info.serialNumber))
            .trim()
            .to_owned())
    }

    /// Opens a read-only session on `slot` that is closed when dropped. It shares the
    /// application's login state (§5.6) and never changes it.
    pub fn open_helper_session(&self, slot: CK_SLOT_ID) -> Result<HelperSession<'_>> {
        self.helper_session(slot, CKF_SERIAL_SESSION)
    }

    /// A read/write helper session (automatic rotation creates and edits token
    /// objects). In the application's user login state it is an "R/W User
    /// Functions" session (§5.6); without a login, private objects cannot be
    /// created, and the caller's operation fails with the token's code.
    pub fn open_helper_session_rw(&self, slot: CK_SLOT_ID) -> Result<HelperSession<'_>> {
        self.helper_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    }

    fn helper_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<HelperSession<'_>> {
        let mut handle: CK_SESSION_HANDLE = 0;
        let notify = Notify {
            application: ptr::null_mut(),
            callback: None,
        };
        check_rv(self.open_session(slot, flags, notify, &mut handle))?;
        Ok(HelperSession {
            backend: self,
            handle,
        })
    }
}

/// A session Keywarden opened for itself (see the module docs).
pub struct HelperSession<'a> {
    backend: &'a dyn Backend,
    handle: CK_SESSION_HANDLE,
}

impl std::fmt::Debug for HelperSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelperSession")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Drop for HelperSession<'_> {
    fn drop(&mut self) {
        // Nothing to do about a failure: the application may have closed every
        // session of the slot (C_CloseAllSessions) meanwhile.
        let _ = self.backend.close_session(self.handle);
    }
}

impl HelperSession<'_> {
    /// Handles of the objects matching every attribute of `find` (all of them).
    pub fn find_objects(&self, find: &[FindAttr]) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let (types, values): (Vec<_>, Vec<_>) = find.iter().map(FindAttr::split).unzip();
        let t = template(&types, &values);
        check_rv(self.backend.find_objects_init(self.handle, Some(&t)))?;
        let mut out = Vec::new();
        let result = loop {
            let mut batch = [0 as CK_OBJECT_HANDLE; 16];
            let mut count: CK_ULONG = 0;
            let rv = self
                .backend
                .find_objects(self.handle, Some(&mut batch), &mut count);
            if rv != CKR_OK {
                break Err(Error::Backend(rv));
            }
            let n = usize::try_from(count).unwrap_or(0).min(batch.len());
            if n == 0 {
                break Ok(());
            }
            out.extend_from_slice(&batch[..n]);
        };
        // Always end the search, even after an error, so the session is reusable.
        let fin = check_rv(self.backend.find_objects_final(self.handle));
        result.and(fin).map(|()| out)
    }

    /// One attribute's value as bytes (e.g. `CKA_EC_POINT`). A sensitive or missing
    /// attribute is the backend's error code.
    pub fn attribute_bytes(
        &self,
        object: CK_OBJECT_HANDLE,
        attribute: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>> {
        let mut query = [CK_ATTRIBUTE {
            type_: attribute,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        }];
        check_rv(
            self.backend
                .get_attribute_value(self.handle, object, Some(&mut query)),
        )?;
        let len = usize::try_from(query[0].ulValueLen)
            .ok()
            .filter(|n| *n <= 1 << 16)
            .ok_or(Error::Backend(CKR_ATTRIBUTE_SENSITIVE))?;
        let mut value = vec![0u8; len];
        let mut fetch = [CK_ATTRIBUTE {
            type_: attribute,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: ulong(len),
        }];
        check_rv(
            self.backend
                .get_attribute_value(self.handle, object, Some(&mut fetch)),
        )?;
        value.truncate(usize::try_from(fetch[0].ulValueLen).unwrap_or(0).min(len));
        Ok(value)
    }

    /// Generates a key pair (`public` given) or a secret key with `mechanism` (one
    /// without parameters); returns the (public, private) or (secret, secret)
    /// handles.
    pub fn generate(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        public: Option<&[FindAttr]>,
        private: &[FindAttr],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let mech = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let (vtypes, vvalues): (Vec<_>, Vec<_>) = private.iter().map(FindAttr::split).unzip();
        let vt = template(&vtypes, &vvalues);
        let mut key: CK_OBJECT_HANDLE = 0;
        match public {
            Some(public) => {
                let (ptypes, pvalues): (Vec<_>, Vec<_>) =
                    public.iter().map(FindAttr::split).unzip();
                let pt = template(&ptypes, &pvalues);
                let mut pubkey: CK_OBJECT_HANDLE = 0;
                check_rv(self.backend.generate_key_pair(
                    self.handle,
                    &mech,
                    Some(&pt),
                    Some(&vt),
                    &mut pubkey,
                    &mut key,
                ))?;
                Ok((pubkey, key))
            }
            None => {
                check_rv(
                    self.backend
                        .generate_key(self.handle, &mech, Some(&vt), &mut key),
                )?;
                Ok((key, key))
            }
        }
    }

    /// `C_Login(CKU_USER)` on the token of the helper session: `Ok(true)` when it logged in,
    /// `Ok(false)` when the application already was (its login is shared, §5.6).
    /// Login state is per application per token: until [`HelperSession::logout`]
    /// every session of the application on the token is logged in.
    pub fn login_user(&self, pin: &[u8]) -> Result<bool> {
        match self.backend.login(self.handle, CKU_USER, Some(pin)) {
            CKR_OK => Ok(true),
            CKR_USER_ALREADY_LOGGED_IN => Ok(false),
            rv => Err(Error::Backend(rv)),
        }
    }

    /// `C_Logout` (after a [`HelperSession::login_user`] that logged in).
    pub fn logout(&self) -> Result<()> {
        check_rv(self.backend.logout(self.handle))
    }

    /// `C_SetAttributeValue` with owned values.
    pub fn set_attributes(&self, object: CK_OBJECT_HANDLE, attrs: &[FindAttr]) -> Result<()> {
        let (types, values): (Vec<_>, Vec<_>) = attrs.iter().map(FindAttr::split).unzip();
        let t = template(&types, &values);
        check_rv(
            self.backend
                .set_attribute_value(self.handle, object, Some(&t)),
        )
    }

    /// `C_DestroyObject`.
    pub fn destroy(&self, object: CK_OBJECT_HANDLE) -> Result<()> {
        check_rv(self.backend.destroy_object(self.handle, object))
    }

    /// Signs `data` once with `mechanism` (one without parameters, e.g. `CKM_ECDSA`)
    /// and `key`: `C_SignInit`, a size query, `C_Sign`.
    pub fn sign_once(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let mech = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        check_rv(self.backend.sign_init(self.handle, &mech, key))?;
        // A size query leaves the operation active (§5.2), so the real call follows.
        let mut len: CK_ULONG = 0;
        check_rv(
            self.backend
                .sign(self.handle, Some(data), OutBuf::new(None, &mut len)),
        )?;
        let mut sig = vec![0u8; usize::try_from(len).unwrap_or(0).min(1 << 16)];
        check_rv(self.backend.sign(
            self.handle,
            Some(data),
            OutBuf::new(Some(&mut sig), &mut len),
        ))?;
        sig.truncate(usize::try_from(len).unwrap_or(0));
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lose_their_padding_only() {
        let mut field = [b' '; 32];
        field[..4].copy_from_slice(b"test");
        assert_eq!(unpad(&field), b"test");
        assert_eq!(unpad(b"a b  "), b"a b");
        assert_eq!(unpad(&[b' '; 32]), b"");
    }

    #[test]
    fn templates_point_at_their_values() {
        let find = [
            FindAttr::Class(CKO_PRIVATE_KEY),
            FindAttr::Label("k".into()),
            FindAttr::Token(true),
        ];
        let (types, values): (Vec<_>, Vec<_>) = find.iter().map(FindAttr::split).unzip();
        let t = template(&types, &values);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].type_, CKA_CLASS);
        assert_eq!(t[0].ulValueLen as usize, std::mem::size_of::<CK_ULONG>());
        assert_eq!((t[1].type_, t[1].ulValueLen), (CKA_LABEL, 1));
        assert_eq!((t[2].type_, t[2].ulValueLen), (CKA_TOKEN, 1));
    }
}
