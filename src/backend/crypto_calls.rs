//! Forwarding of the cryptographic functions (PKCS#11 v2.40 §5.8-§5.15).
//!
//! The functions come in a few shapes; each shape is one small generator so that the
//! 37 methods cannot drift apart.

use pkcs11_sys::*;

use super::forward::{input, mech_ptr, out_parts, output};
use super::Backend;
use crate::abi::OutBuf;

/// `X_Init(hSession, pMechanism, hKey)`
macro_rules! init_with_key {
    ($( $(#[$doc:meta])* $name:ident => $f:ident; )*) => { $(
        $(#[$doc])*
        pub fn $name(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
            forward!(self.$f(session, mech_ptr(mechanism), key))
        }
    )* };
}

/// `X(hSession, pIn, ulInLen, pOut, pulOutLen)`: one input buffer, one §5.2 output.
macro_rules! in_to_out {
    ($( $(#[$doc:meta])* $name:ident => $f:ident; )*) => { $(
        $(#[$doc])*
        pub fn $name(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>, mut out: OutBuf<'_>) -> CK_RV {
            let (d, n) = input(data);
            let (p, len) = out_parts(&mut out);
            forward!(self.$f(session, d, n, p, len))
        }
    )* };
}

/// `X(hSession, pPart, ulPartLen)`: input only.
macro_rules! in_only {
    ($( $(#[$doc:meta])* $name:ident => $f:ident; )*) => { $(
        $(#[$doc])*
        pub fn $name(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>) -> CK_RV {
            let (d, n) = input(data);
            forward!(self.$f(session, d, n))
        }
    )* };
}

/// `X(hSession, pOut, pulOutLen)`: the final part of a multi-part operation.
macro_rules! out_only {
    ($( $(#[$doc:meta])* $name:ident => $f:ident; )*) => { $(
        $(#[$doc])*
        pub fn $name(&self, session: CK_SESSION_HANDLE, mut out: OutBuf<'_>) -> CK_RV {
            let (p, len) = out_parts(&mut out);
            forward!(self.$f(session, p, len))
        }
    )* };
}

impl Backend {
    init_with_key! {
        /// `C_EncryptInit`
        encrypt_init => C_EncryptInit;
        /// `C_DecryptInit`
        decrypt_init => C_DecryptInit;
        /// `C_SignInit`
        sign_init => C_SignInit;
        /// `C_SignRecoverInit`
        sign_recover_init => C_SignRecoverInit;
        /// `C_VerifyInit`
        verify_init => C_VerifyInit;
        /// `C_VerifyRecoverInit`
        verify_recover_init => C_VerifyRecoverInit;
    }

    in_to_out! {
        /// `C_Encrypt`
        encrypt => C_Encrypt;
        /// `C_EncryptUpdate`
        encrypt_update => C_EncryptUpdate;
        /// `C_Decrypt`
        decrypt => C_Decrypt;
        /// `C_DecryptUpdate`
        decrypt_update => C_DecryptUpdate;
        /// `C_Digest`
        digest => C_Digest;
        /// `C_Sign`
        sign => C_Sign;
        /// `C_SignRecover`
        sign_recover => C_SignRecover;
        /// `C_VerifyRecover`
        verify_recover => C_VerifyRecover;
        /// `C_DigestEncryptUpdate`
        digest_encrypt_update => C_DigestEncryptUpdate;
        /// `C_DecryptDigestUpdate`
        decrypt_digest_update => C_DecryptDigestUpdate;
        /// `C_SignEncryptUpdate`
        sign_encrypt_update => C_SignEncryptUpdate;
        /// `C_DecryptVerifyUpdate`
        decrypt_verify_update => C_DecryptVerifyUpdate;
    }

    in_only! {
        /// `C_DigestUpdate`
        digest_update => C_DigestUpdate;
        /// `C_SignUpdate`
        sign_update => C_SignUpdate;
        /// `C_VerifyUpdate`
        verify_update => C_VerifyUpdate;
        /// `C_VerifyFinal` (the input is the signature)
        verify_final => C_VerifyFinal;
        /// `C_SeedRandom`
        seed_random => C_SeedRandom;
    }

    out_only! {
        /// `C_EncryptFinal`
        encrypt_final => C_EncryptFinal;
        /// `C_DecryptFinal`
        decrypt_final => C_DecryptFinal;
        /// `C_DigestFinal`
        digest_final => C_DigestFinal;
        /// `C_SignFinal`
        sign_final => C_SignFinal;
    }

    /// `C_DigestInit`
    pub fn digest_init(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM) -> CK_RV {
        forward!(self.C_DigestInit(session, mech_ptr(mechanism)))
    }

    /// `C_DigestKey`
    pub fn digest_key(&self, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
        forward!(self.C_DigestKey(session, key))
    }

    /// `C_Verify`
    pub fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature: Option<&[u8]>,
    ) -> CK_RV {
        let (d, n) = input(data);
        let (s, sn) = input(signature);
        forward!(self.C_Verify(session, d, n, s, sn))
    }

    /// `C_GenerateRandom`: fills `out` (exactly the caller's `ulRandomLen` bytes).
    pub fn generate_random(&self, session: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> CK_RV {
        let (p, n) = output(out);
        forward!(self.C_GenerateRandom(session, p, n))
    }

    // --- Key management (§5.14) -----------------------------------------------------

    /// `C_GenerateKey`
    pub fn generate_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let (t, n) = input(template);
        forward!(self.C_GenerateKey(session, mech_ptr(mechanism), t, n, key))
    }

    /// `C_GenerateKeyPair`
    pub fn generate_key_pair(
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

    /// `C_WrapKey`
    pub fn wrap_key(
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

    /// `C_UnwrapKey`
    #[allow(clippy::too_many_arguments)]
    pub fn unwrap_key(
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

    /// `C_DeriveKey`
    pub fn derive_key(
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
