//! The double's cryptographic and key-management functions: operations started
//! by an `*Init` and fed by data calls as the one function table describes them
//! (`functions::Effect`), with deterministic output.

use std::collections::BTreeMap;

use pkcs11_sys::*;

use super::{read_template, settle, signature, Double, Operation, State};
use crate::abi::OutBuf;
use crate::backend::CryptoCalls;
use crate::functions::{Effect, FunctionId as F, OpKind};

/// What encryption XORs each byte with (so decryption undoes it).
const XOR: u8 = 0x5a;

/// The attribute that permits a key an operation, when the key has it.
fn permit(kind: OpKind) -> Option<CK_ATTRIBUTE_TYPE> {
    match kind {
        OpKind::Encrypt => Some(CKA_ENCRYPT),
        OpKind::Decrypt => Some(CKA_DECRYPT),
        OpKind::Sign => Some(CKA_SIGN),
        OpKind::SignRecover => Some(CKA_SIGN_RECOVER),
        OpKind::Verify => Some(CKA_VERIFY),
        OpKind::VerifyRecover => Some(CKA_VERIFY_RECOVER),
        OpKind::Digest => None,
    }
}

impl State {
    /// An `*Init`: starts `f`'s operation with `key` (none for a digest).
    fn init(&mut self, f: F, session: CK_SESSION_HANDLE, key: Option<CK_OBJECT_HANDLE>) -> CK_RV {
        self.keys_used.extend(key);
        if let Some(rv) = self.enter(f, Some(session)) {
            return rv;
        }
        let Effect::Starts(kind) = f.effect() else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        let key_id = match key {
            None => Vec::new(),
            Some(k) => {
                let Some(o) = self.visible(k) else {
                    return CKR_KEY_HANDLE_INVALID;
                };
                if permit(kind).and_then(|a| o.flag(a)) == Some(false) {
                    return CKR_KEY_FUNCTION_NOT_PERMITTED;
                }
                o.attrs
                    .get(&CKA_ID)
                    .cloned()
                    .unwrap_or_else(|| k.to_le_bytes().to_vec())
            }
        };
        let s = match self.session(session) {
            Ok(s) => s,
            Err(rv) => return rv,
        };
        if s.ops.contains_key(&kind) {
            return CKR_OPERATION_ACTIVE;
        }
        let data = Vec::new();
        s.ops.insert(kind, Operation { key_id, data });
        CKR_OK
    }

    /// A data call of `f`: `data` in, and the output written to `out` by §5.2
    /// (a length query or a short buffer leaves the operations as they were).
    fn data(
        &mut self,
        f: F,
        session: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        out: Option<OutBuf<'_>>,
    ) -> CK_RV {
        if let Some(rv) = self.enter(f, Some(session)) {
            return rv;
        }
        let s = match self.session(session) {
            Ok(s) => s,
            Err(rv) => return rv,
        };
        let Effect::Feeds(_, feeds) = f.effect() else {
            // C_SeedRandom: accepted and ignored.
            return CKR_OK;
        };
        let Some(first) = feeds.first().and_then(|(k, _)| s.ops.get(k)) else {
            return CKR_OPERATION_NOT_INITIALIZED;
        };
        if feeds.iter().any(|(k, _)| !s.ops.contains_key(k)) {
            return CKR_OPERATION_NOT_INITIALIZED;
        }
        let input = data.unwrap_or(&[]);
        let mut all = first.data.clone();
        all.extend_from_slice(input);
        let output = match f {
            F::C_Sign | F::C_SignFinal => signature(&first.key_id, &all),
            F::C_Digest | F::C_DigestFinal => {
                use sha2::Digest as _;
                sha2::Sha256::digest(&all).to_vec()
            }
            F::C_EncryptFinal | F::C_DecryptFinal => Vec::new(),
            F::C_VerifyFinal => {
                let ok = input == signature(&first.key_id, &first.data).as_slice();
                settle(s, f, &[], &[]);
                return if ok { CKR_OK } else { CKR_SIGNATURE_INVALID };
            }
            _ => input.iter().map(|b| b ^ XOR).collect(),
        };
        if let Some(mut out) = out {
            let answered = out.write(&output);
            if out.is_size_query() || answered.is_err() {
                return answered.err().map_or(CKR_OK, |e| e.rv());
            }
        }
        settle(s, f, input, &output);
        CKR_OK
    }

    /// A generated object: `template` with the attributes the mechanism implies.
    fn generate(
        &mut self,
        session: CK_SESSION_HANDLE,
        class: CK_OBJECT_CLASS,
        key_type: CK_KEY_TYPE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut attrs: BTreeMap<_, _> = BTreeMap::new();
        attrs.insert(CKA_CLASS, class.to_ne_bytes().to_vec());
        attrs.insert(CKA_KEY_TYPE, key_type.to_ne_bytes().to_vec());
        attrs.extend(read_template(template));
        self.create(session, attrs)
    }
}

/// The double's answers to the `crypto_shapes!` functions.
macro_rules! double_crypto_shapes {
    (
        init_with_key { $( $(#[$d1:meta])* $n1:ident => $f1:ident; )* }
        in_to_out { $( $(#[$d2:meta])* $n2:ident => $f2:ident; )* }
        in_only { $( $(#[$d3:meta])* $n3:ident => $f3:ident; )* }
        out_only { $( $(#[$d4:meta])* $n4:ident => $f4:ident; )* }
    ) => {
        $(
            fn $n1(&self, session: CK_SESSION_HANDLE, _mechanism: &CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
                self.state.lock().init(F::$f1, session, Some(key))
            }
        )*
        $(
            fn $n2(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutBuf<'_>) -> CK_RV {
                self.state.lock().data(F::$f2, session, data, Some(out))
            }
        )*
        $(
            fn $n3(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>) -> CK_RV {
                self.state.lock().data(F::$f3, session, data, None)
            }
        )*
        $(
            fn $n4(&self, session: CK_SESSION_HANDLE, out: OutBuf<'_>) -> CK_RV {
                self.state.lock().data(F::$f4, session, None, Some(out))
            }
        )*
    };
}

impl CryptoCalls for Double {
    crypto_shapes!(double_crypto_shapes);

    fn digest_init(&self, session: CK_SESSION_HANDLE, _mechanism: &CK_MECHANISM) -> CK_RV {
        self.state.lock().init(F::C_DigestInit, session, None)
    }

    fn digest_key(&self, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(F::C_DigestKey, Some(session)) {
            return rv;
        }
        if st.visible(key).is_none() {
            return CKR_KEY_HANDLE_INVALID;
        }
        let key = key.to_le_bytes();
        match st.session(session) {
            Ok(s) => match s.ops.get_mut(&OpKind::Digest) {
                Some(op) => {
                    op.data.extend_from_slice(&key);
                    CKR_OK
                }
                None => CKR_OPERATION_NOT_INITIALIZED,
            },
            Err(rv) => rv,
        }
    }

    fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature_in: Option<&[u8]>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(F::C_Verify, Some(session)) {
            return rv;
        }
        let s = match st.session(session) {
            Ok(s) => s,
            Err(rv) => return rv,
        };
        // A single-part verify ends its operation whatever the answer (§5.12).
        let Some(op) = s.ops.remove(&OpKind::Verify) else {
            return CKR_OPERATION_NOT_INITIALIZED;
        };
        let expected = signature(&op.key_id, data.unwrap_or(&[]));
        match signature_in {
            Some(sig) if sig.len() != expected.len() => CKR_SIGNATURE_LEN_RANGE,
            Some(sig) if sig == expected.as_slice() => CKR_OK,
            _ => CKR_SIGNATURE_INVALID,
        }
    }

    fn generate_random(&self, session: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> CK_RV {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(F::C_GenerateRandom, Some(session)) {
            return rv;
        }
        if let Err(rv) = st.session(session) {
            return rv;
        }
        for (i, b) in out.unwrap_or(&mut []).iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        CKR_OK
    }

    fn generate_key(
        &self,
        session: CK_SESSION_HANDLE,
        _mechanism: &CK_MECHANISM,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(F::C_GenerateKey, Some(session)) {
            return rv;
        }
        match st.generate(session, CKO_SECRET_KEY, CKK_AES, template) {
            Ok(h) => {
                *key = h;
                CKR_OK
            }
            Err(rv) => rv,
        }
    }

    fn generate_key_pair(
        &self,
        session: CK_SESSION_HANDLE,
        _mechanism: &CK_MECHANISM,
        public_template: Option<&[CK_ATTRIBUTE]>,
        private_template: Option<&[CK_ATTRIBUTE]>,
        public_key: &mut CK_OBJECT_HANDLE,
        private_key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        let f = F::C_GenerateKeyPair;
        if let Some(rv) = st.enter(f, Some(session)) {
            return rv;
        }
        let pair = st
            .generate(session, CKO_PUBLIC_KEY, CKK_EC, public_template)
            .and_then(|p| {
                let v = st.generate(session, CKO_PRIVATE_KEY, CKK_EC, private_template)?;
                Ok((p, v))
            });
        match pair {
            Ok((p, v)) => {
                (*public_key, *private_key) = (p, v);
                CKR_OK
            }
            Err(rv) => rv,
        }
    }

    fn wrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        _mechanism: &CK_MECHANISM,
        _wrapping_key: CK_OBJECT_HANDLE,
        _key: CK_OBJECT_HANDLE,
        _out: OutBuf<'_>,
    ) -> CK_RV {
        let mut st = self.state.lock();
        st.enter(F::C_WrapKey, Some(session))
            .unwrap_or(CKR_FUNCTION_NOT_SUPPORTED)
    }

    fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        _mechanism: &CK_MECHANISM,
        _unwrapping_key: CK_OBJECT_HANDLE,
        _wrapped: Option<&[u8]>,
        _template: Option<&[CK_ATTRIBUTE]>,
        _key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        st.enter(F::C_UnwrapKey, Some(session))
            .unwrap_or(CKR_FUNCTION_NOT_SUPPORTED)
    }

    fn derive_key(
        &self,
        session: CK_SESSION_HANDLE,
        _mechanism: &CK_MECHANISM,
        _base_key: CK_OBJECT_HANDLE,
        _template: Option<&[CK_ATTRIBUTE]>,
        _key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut st = self.state.lock();
        st.enter(F::C_DeriveKey, Some(session))
            .unwrap_or(CKR_FUNCTION_NOT_SUPPORTED)
    }
}
