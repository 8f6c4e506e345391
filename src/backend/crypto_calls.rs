//! The loaded module's cryptographic and key-management functions (PKCS#11 v2.40
//! §5.8-§5.15), forwarded to the module's table. The functions of the common call
//! shapes are generated from the one list in `api.rs` (`crypto_shapes!`).

use pkcs11_sys::*;

use super::forward::{input, mech_ptr, out_parts, output};
use super::{CryptoCalls, LoadedModule};
use crate::abi::OutBuf;

/// The loaded module's forwarders of the `crypto_shapes!` functions.
macro_rules! forward_crypto_shapes {
    (
        init_with_key { $( $(#[$d1:meta])* $n1:ident => $f1:ident; )* }
        in_to_out { $( $(#[$d2:meta])* $n2:ident => $f2:ident; )* }
        in_only { $( $(#[$d3:meta])* $n3:ident => $f3:ident; )* }
        out_only { $( $(#[$d4:meta])* $n4:ident => $f4:ident; )* }
    ) => {
        $(
            fn $n1(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
                forward!(self.$f1(session, mech_ptr(mechanism), key))
            }
        )*
        $(
            fn $n2(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>, mut out: OutBuf<'_>) -> CK_RV {
                let (d, n) = input(data);
                let (p, len) = out_parts(&mut out);
                forward!(self.$f2(session, d, n, p, len))
            }
        )*
        $(
            fn $n3(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>) -> CK_RV {
                let (d, n) = input(data);
                forward!(self.$f3(session, d, n))
            }
        )*
        $(
            fn $n4(&self, session: CK_SESSION_HANDLE, mut out: OutBuf<'_>) -> CK_RV {
                let (p, len) = out_parts(&mut out);
                forward!(self.$f4(session, p, len))
            }
        )*
    };
}

impl CryptoCalls for LoadedModule {
    crypto_shapes!(forward_crypto_shapes);

    fn digest_init(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM) -> CK_RV {
        forward!(self.C_DigestInit(session, mech_ptr(mechanism)))
    }

    fn digest_key(&self, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
        forward!(self.C_DigestKey(session, key))
    }

    fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature: Option<&[u8]>,
    ) -> CK_RV {
        let (d, n) = input(data);
        let (s, sn) = input(signature);
        forward!(self.C_Verify(session, d, n, s, sn))
    }

    fn generate_random(&self, session: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> CK_RV {
        let (p, n) = output(out);
        forward!(self.C_GenerateRandom(session, p, n))
    }

    // --- Key management (§5.14) -----------------------------------------------------

    fn generate_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_GenerateKey(session, mech_ptr(mechanism), t, n, key))
    }

    fn generate_key_pair(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        public_template: Option<&[CK_ATTRIBUTE]>,
        private_template: Option<&[CK_ATTRIBUTE]>,
        public_key: &mut CK_OBJECT_HANDLE,
        private_key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (pt, pn) = input(public_template);
        let (vt, vn) = input(private_template);
        forward!(self.C_GenerateKeyPair(
            session,
            mech_ptr(mechanism),
            pt,
            pn,
            vt,
            vn,
            public_key,
            private_key
        ))
    }

    fn wrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        mut out: OutBuf<'_>,
    ) -> CK_RV {
        let (p, len) = out_parts(&mut out);
        forward!(self.C_WrapKey(session, mech_ptr(mechanism), wrapping_key, key, p, len))
    }

    fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: Option<&[u8]>,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (w, wn) = input(wrapped);
        let (t, n) = input(template);
        forward!(self.C_UnwrapKey(
            session,
            mech_ptr(mechanism),
            unwrapping_key,
            w,
            wn,
            t,
            n,
            key
        ))
    }

    fn derive_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        base_key: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_DeriveKey(session, mech_ptr(mechanism), base_key, t, n, key))
    }
}
