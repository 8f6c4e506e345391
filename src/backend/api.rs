//! What the gateway asks of a backend: the [`Backend`] trait, with one method per
//! PKCS#11 function in [`Calls`] (general purpose, slot, session and object
//! functions, v2.40 §5.4-§5.7) and [`CryptoCalls`] (§5.8-§5.15).
//!
//! The loaded module (`LoadedModule`) implements every method by calling the
//! module's own table; the unit tests' double (`double`) answers from an in-memory
//! token. No method has a default body: an implementation names every function, so
//! a forwarder cannot go missing unnoticed.
//!
//! Every method returns the backend's `CK_RV` untouched. Arguments are Rust
//! references and slices (built by `ffi` from the application's pointers, or by
//! Keywarden's own helpers from owned values); `None` stands for an application
//! `NULL_PTR`. The `pValue` of each `CK_ATTRIBUTE` in a template is NULL or points
//! to `ulValueLen` bytes that live for the call, as the C functions require.

use pkcs11_sys::*;

use super::{InitOutcome, LoadedModule};
use crate::abi::OutBuf;
use crate::error::Result;
use crate::functions::FunctionId;

/// The application's `C_OpenSession` notification callback and its context pointer,
/// passed to the backend untouched (the backend calls the application directly).
#[derive(Clone, Copy)]
pub struct Notify {
    /// `pApplication`, opaque to Keywarden.
    pub application: CK_VOID_PTR,
    /// `Notify`, may be `None`.
    pub callback: CK_NOTIFY,
}

/// A token behind Keywarden, as the gateway, the lifecycle and the audit sealer
/// use it. The PKCS#11 functions are the supertraits' methods; these are the rest.
pub trait Backend: Calls + CryptoCalls + Send + Sync + std::fmt::Debug {
    /// Whether the backend has an entry for `f` (it may still answer
    /// `CKR_FUNCTION_NOT_SUPPORTED` when called).
    fn has_function(&self, f: FunctionId) -> bool;

    /// True when the backend offers the PKCS#11 3.0 interface.
    fn has_v3_0(&self) -> bool;

    /// Initialises the backend with Keywarden's own arguments (§5.4).
    fn initialize(&self) -> Result<InitOutcome>;

    /// Finalises the backend if, and only if, [`Backend::initialize`] initialised it.
    fn finalize(&self) -> Result<()>;

    /// The loaded module behind this backend, for a data call handed to the token
    /// with the application's raw arguments (the `unsafe` forwarders in
    /// `loader.rs`). `None` for a backend that is no loaded module.
    fn loaded_module(&self) -> Option<&LoadedModule>;
}

/// The general-purpose, slot, session and object functions (§5.4-§5.7).
pub trait Calls {
    /// `C_GetInfo`
    fn get_info(&self, info: &mut CK_INFO) -> CK_RV;

    /// `C_GetSlotList`
    fn get_slot_list(&self, token_present: CK_BBOOL, out: OutBuf<'_, CK_SLOT_ID>) -> CK_RV;

    /// `C_GetSlotInfo`
    fn get_slot_info(&self, slot: CK_SLOT_ID, info: &mut CK_SLOT_INFO) -> CK_RV;

    /// `C_GetTokenInfo`
    fn get_token_info(&self, slot: CK_SLOT_ID, info: &mut CK_TOKEN_INFO) -> CK_RV;

    /// `C_WaitForSlotEvent` (`pReserved` is always NULL_PTR, as §5.5 requires).
    fn wait_for_slot_event(&self, flags: CK_FLAGS, slot: &mut CK_SLOT_ID) -> CK_RV;

    /// `C_GetMechanismList`
    fn get_mechanism_list(&self, slot: CK_SLOT_ID, out: OutBuf<'_, CK_MECHANISM_TYPE>) -> CK_RV;

    /// `C_GetMechanismInfo`
    fn get_mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mech: CK_MECHANISM_TYPE,
        info: &mut CK_MECHANISM_INFO,
    ) -> CK_RV;

    /// `C_InitToken` (`label` is the 32-byte blank-padded label).
    fn init_token(&self, slot: CK_SLOT_ID, pin: Option<&[u8]>, label: &[u8; 32]) -> CK_RV;

    /// `C_InitPIN`
    fn init_pin(&self, session: CK_SESSION_HANDLE, pin: Option<&[u8]>) -> CK_RV;

    /// `C_SetPIN`
    fn set_pin(&self, session: CK_SESSION_HANDLE, old: Option<&[u8]>, new: Option<&[u8]>) -> CK_RV;

    /// `C_OpenSession`
    fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        notify: Notify,
        session: &mut CK_SESSION_HANDLE,
    ) -> CK_RV;

    /// `C_CloseSession`
    fn close_session(&self, session: CK_SESSION_HANDLE) -> CK_RV;

    /// `C_CloseAllSessions`
    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV;

    /// `C_GetSessionInfo`
    fn get_session_info(&self, session: CK_SESSION_HANDLE, info: &mut CK_SESSION_INFO) -> CK_RV;

    /// `C_SessionCancel` (3.0)
    fn session_cancel(&self, session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV;

    /// `C_GetOperationState`
    fn get_operation_state(&self, session: CK_SESSION_HANDLE, out: OutBuf<'_>) -> CK_RV;

    /// `C_SetOperationState`
    fn set_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        state: Option<&[u8]>,
        encryption_key: CK_OBJECT_HANDLE,
        authentication_key: CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_Login`
    fn login(&self, session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> CK_RV;

    /// `C_LoginUser` (3.0)
    fn login_user(
        &self,
        session: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: Option<&[u8]>,
        username: Option<&[u8]>,
    ) -> CK_RV;

    /// `C_Logout`
    fn logout(&self, session: CK_SESSION_HANDLE) -> CK_RV;

    /// `C_GetFunctionStatus` (legacy)
    fn get_function_status(&self, session: CK_SESSION_HANDLE) -> CK_RV;

    /// `C_CancelFunction` (legacy)
    fn cancel_function(&self, session: CK_SESSION_HANDLE) -> CK_RV;

    /// `C_CreateObject`
    fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_CopyObject`
    fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        new_object: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_DestroyObject`
    fn destroy_object(&self, session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV;

    /// `C_GetObjectSize`
    fn get_object_size(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        size: &mut CK_ULONG,
    ) -> CK_RV;

    /// `C_GetAttributeValue`: the backend writes into the template's own `pValue`
    /// buffers and `ulValueLen` fields, so its per-attribute answers reach the
    /// caller as they are.
    fn get_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&mut [CK_ATTRIBUTE]>,
    ) -> CK_RV;

    /// `C_SetAttributeValue`
    fn set_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV;

    /// `C_FindObjectsInit`
    fn find_objects_init(
        &self,
        session: CK_SESSION_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
    ) -> CK_RV;

    /// `C_FindObjects`: up to `found.len()` handles; the count lands in `count`.
    fn find_objects(
        &self,
        session: CK_SESSION_HANDLE,
        found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
    ) -> CK_RV;

    /// `C_FindObjectsFinal`
    fn find_objects_final(&self, session: CK_SESSION_HANDLE) -> CK_RV;
}

/// Calls `$generator!` with the cryptographic functions of the four common call
/// shapes, so that the trait, the loaded module's forwarders and the double are
/// generated from one list and cannot drift apart:
/// - `init_with_key`: `X_Init(hSession, pMechanism, hKey)`;
/// - `in_to_out`: `X(hSession, pIn, ulInLen, pOut, pulOutLen)`, one input buffer
///   and one §5.2 output;
/// - `in_only`: `X(hSession, pPart, ulPartLen)`;
/// - `out_only`: `X(hSession, pOut, pulOutLen)`, the last part of an operation.
macro_rules! crypto_shapes {
    ($generator:ident) => {
        $generator! {
            init_with_key {
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
            in_to_out {
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
            in_only {
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
            out_only {
                /// `C_EncryptFinal`
                encrypt_final => C_EncryptFinal;
                /// `C_DecryptFinal`
                decrypt_final => C_DecryptFinal;
                /// `C_DigestFinal`
                digest_final => C_DigestFinal;
                /// `C_SignFinal`
                sign_final => C_SignFinal;
            }
        }
    };
}

/// The trait's declarations of the `crypto_shapes!` functions.
macro_rules! declare_crypto_shapes {
    (
        init_with_key { $( $(#[$d1:meta])* $n1:ident => $f1:ident; )* }
        in_to_out { $( $(#[$d2:meta])* $n2:ident => $f2:ident; )* }
        in_only { $( $(#[$d3:meta])* $n3:ident => $f3:ident; )* }
        out_only { $( $(#[$d4:meta])* $n4:ident => $f4:ident; )* }
    ) => {
        $( $(#[$d1])* fn $n1(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV; )*
        $( $(#[$d2])* fn $n2(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutBuf<'_>) -> CK_RV; )*
        $( $(#[$d3])* fn $n3(&self, session: CK_SESSION_HANDLE, data: Option<&[u8]>) -> CK_RV; )*
        $( $(#[$d4])* fn $n4(&self, session: CK_SESSION_HANDLE, out: OutBuf<'_>) -> CK_RV; )*
    };
}

/// [`call_keyed`], generated from the `init_with_key` rows of `crypto_shapes!`.
macro_rules! dispatch_keyed {
    (
        init_with_key { $( $(#[$d1:meta])* $n1:ident => $f1:ident; )* }
        in_to_out { $($t2:tt)* }
        in_only { $($t3:tt)* }
        out_only { $($t4:tt)* }
    ) => {
        /// Calls `f`, a function that takes a key, on `backend` with `(session,
        /// mechanism, key)`: an `X_Init(hSession, pMechanism, hKey)` of
        /// `crypto_shapes!`, or `C_DigestKey`, which takes the key alone. `None`
        /// when `f` is none of them. A keyed `*Init` added to `crypto_shapes!` is
        /// dispatched here without another arm.
        pub fn call_keyed<B: CryptoCalls + ?Sized>(
            backend: &B,
            f: FunctionId,
            session: CK_SESSION_HANDLE,
            mechanism: &CK_MECHANISM,
            key: CK_OBJECT_HANDLE,
        ) -> Option<CK_RV> {
            match f {
                $( FunctionId::$f1 => Some(backend.$n1(session, mechanism, key)), )*
                FunctionId::C_DigestKey => Some(backend.digest_key(session, key)),
                _ => None,
            }
        }
    };
}

crypto_shapes!(dispatch_keyed);

/// The cryptographic and key-management functions (§5.8-§5.15).
pub trait CryptoCalls {
    crypto_shapes!(declare_crypto_shapes);

    /// `C_DigestInit`
    fn digest_init(&self, session: CK_SESSION_HANDLE, mechanism: &CK_MECHANISM) -> CK_RV;

    /// `C_DigestKey`
    fn digest_key(&self, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV;

    /// `C_Verify`
    fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature: Option<&[u8]>,
    ) -> CK_RV;

    /// `C_GenerateRandom`: fills `out` (exactly the caller's `ulRandomLen` bytes).
    fn generate_random(&self, session: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> CK_RV;

    /// `C_GenerateKey`
    fn generate_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_GenerateKeyPair`
    fn generate_key_pair(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        public_template: Option<&[CK_ATTRIBUTE]>,
        private_template: Option<&[CK_ATTRIBUTE]>,
        public_key: &mut CK_OBJECT_HANDLE,
        private_key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_WrapKey`
    fn wrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        out: OutBuf<'_>,
    ) -> CK_RV;

    /// `C_UnwrapKey`
    #[allow(clippy::too_many_arguments)]
    fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: Option<&[u8]>,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;

    /// `C_DeriveKey`
    fn derive_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &CK_MECHANISM,
        base_key: CK_OBJECT_HANDLE,
        template: Option<&[CK_ATTRIBUTE]>,
        key: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV;
}
