//! Every `Backend` method as a request and a reply: its arguments' kinds (`kinds`,
//! `outputs`, `infos`), in the method's order. One list generates both sides: the
//! client's methods ([`RemoteBackend`](super::RemoteBackend)'s `Calls` and
//! `CryptoCalls`) and the service's [`serve`], so the two cannot disagree.
//!
//! A request is `wire::op::CALL`, the function's index in `FunctionId::ALL` (a
//! `u32` below 2^16) and each argument's request part; a reply is `CALL`, the
//! backend's `CK_RV` and each argument's reply part.

use pkcs11_sys::*;

use super::infos::{Info, MechanismInfo, SessionInfo, SlotInfo, TokenInfo};
use super::kinds::{Arg, Bool, Bytes, Label, Mech, Out, OutUlong, Slice, Template, Ulong};
use super::outputs::{AttrsOut, NoNotify};
use super::RemoteBackend;
use crate::backend::{Backend, Calls, CryptoCalls};
use crate::functions::FunctionId;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::{WireError, WireResult};

macro_rules! remote_calls {
    (
        $( $tr:ident { $( $m:ident => $f:ident ( $( $a:ident : $k:ty ),* ); )* } )*
    ) => {
        $(
            impl $tr for RemoteBackend {
                $(
                    #[allow(unused_mut)]
                    fn $m(&self, $( mut $a: <$k as Arg>::Form<'_> ),* ) -> CK_RV {
                        let mut e = self.request(FunctionId::$f);
                        let put = (|| -> WireResult<()> {
                            $( <$k as Arg>::put(&$a, &mut e)?; )*
                            Ok(())
                        })();
                        if let Err(err) = put {
                            return err.rv();
                        }
                        self.exchange(e, |rv, d| {
                            $( <$k as Arg>::accept(&mut $a, rv, d)?; )*
                            Ok(())
                        })
                    }
                )*
            }
        )*

        /// Decodes one request for `f`, runs it on `backend` and encodes the reply.
        pub(crate) fn serve(
            backend: &dyn Backend,
            f: FunctionId,
            d: &mut Decoder<'_>,
            e: &mut Encoder,
        ) -> WireResult<()> {
            match f {
                $( $(
                    FunctionId::$f => {
                        $( let mut $a = <$k as Arg>::take(d)?; )*
                        d.finish()?;
                        let rv = backend.$m($( <$k as Arg>::form(&mut $a) ),*);
                        e.ulong(rv);
                        $( <$k as Arg>::answer(&$a, rv, e)?; )*
                        Ok(())
                    }
                )* )*
                _ => Err(WireError::Malformed("a function the protocol does not carry")),
            }
        }

        /// The functions a request may name.
        #[cfg(test)]
        pub(crate) const CARRIED: &[FunctionId] = &[ $( $( FunctionId::$f, )* )* ];
    };
}

remote_calls! {
    Calls {
        get_info => C_GetInfo(info: Info);
        get_slot_list => C_GetSlotList(token_present: Bool, out: Out<CK_ULONG>);
        get_slot_info => C_GetSlotInfo(slot: Ulong, info: SlotInfo);
        get_token_info => C_GetTokenInfo(slot: Ulong, info: TokenInfo);
        wait_for_slot_event => C_WaitForSlotEvent(flags: Ulong, slot: OutUlong);
        get_mechanism_list => C_GetMechanismList(slot: Ulong, out: Out<CK_ULONG>);
        get_mechanism_info => C_GetMechanismInfo(slot: Ulong, mech: Ulong, info: MechanismInfo);
        init_token => C_InitToken(slot: Ulong, pin: Bytes, label: Label);
        init_pin => C_InitPIN(session: Ulong, pin: Bytes);
        set_pin => C_SetPIN(session: Ulong, old: Bytes, new: Bytes);
        open_session => C_OpenSession(slot: Ulong, flags: Ulong, notify: NoNotify, session: OutUlong);
        close_session => C_CloseSession(session: Ulong);
        close_all_sessions => C_CloseAllSessions(slot: Ulong);
        get_session_info => C_GetSessionInfo(session: Ulong, info: SessionInfo);
        session_cancel => C_SessionCancel(session: Ulong, flags: Ulong);
        get_operation_state => C_GetOperationState(session: Ulong, out: Out);
        set_operation_state => C_SetOperationState(session: Ulong, state: Bytes, encryption_key: Ulong, authentication_key: Ulong);
        login => C_Login(session: Ulong, user: Ulong, pin: Bytes);
        login_user => C_LoginUser(session: Ulong, user: Ulong, pin: Bytes, username: Bytes);
        logout => C_Logout(session: Ulong);
        get_function_status => C_GetFunctionStatus(session: Ulong);
        cancel_function => C_CancelFunction(session: Ulong);
        create_object => C_CreateObject(session: Ulong, template: Template, object: OutUlong);
        copy_object => C_CopyObject(session: Ulong, object: Ulong, template: Template, new_object: OutUlong);
        destroy_object => C_DestroyObject(session: Ulong, object: Ulong);
        get_object_size => C_GetObjectSize(session: Ulong, object: Ulong, size: OutUlong);
        get_attribute_value => C_GetAttributeValue(session: Ulong, object: Ulong, template: AttrsOut);
        set_attribute_value => C_SetAttributeValue(session: Ulong, object: Ulong, template: Template);
        find_objects_init => C_FindObjectsInit(session: Ulong, template: Template);
        find_objects => C_FindObjects(session: Ulong, found: Slice<CK_ULONG>, count: OutUlong);
        find_objects_final => C_FindObjectsFinal(session: Ulong);
    }
    CryptoCalls {
        encrypt_init => C_EncryptInit(session: Ulong, mechanism: Mech, key: Ulong);
        decrypt_init => C_DecryptInit(session: Ulong, mechanism: Mech, key: Ulong);
        sign_init => C_SignInit(session: Ulong, mechanism: Mech, key: Ulong);
        sign_recover_init => C_SignRecoverInit(session: Ulong, mechanism: Mech, key: Ulong);
        verify_init => C_VerifyInit(session: Ulong, mechanism: Mech, key: Ulong);
        verify_recover_init => C_VerifyRecoverInit(session: Ulong, mechanism: Mech, key: Ulong);
        encrypt => C_Encrypt(session: Ulong, data: Bytes, out: Out);
        encrypt_update => C_EncryptUpdate(session: Ulong, data: Bytes, out: Out);
        decrypt => C_Decrypt(session: Ulong, data: Bytes, out: Out);
        decrypt_update => C_DecryptUpdate(session: Ulong, data: Bytes, out: Out);
        digest => C_Digest(session: Ulong, data: Bytes, out: Out);
        sign => C_Sign(session: Ulong, data: Bytes, out: Out);
        sign_recover => C_SignRecover(session: Ulong, data: Bytes, out: Out);
        verify_recover => C_VerifyRecover(session: Ulong, data: Bytes, out: Out);
        digest_encrypt_update => C_DigestEncryptUpdate(session: Ulong, data: Bytes, out: Out);
        decrypt_digest_update => C_DecryptDigestUpdate(session: Ulong, data: Bytes, out: Out);
        sign_encrypt_update => C_SignEncryptUpdate(session: Ulong, data: Bytes, out: Out);
        decrypt_verify_update => C_DecryptVerifyUpdate(session: Ulong, data: Bytes, out: Out);
        digest_update => C_DigestUpdate(session: Ulong, data: Bytes);
        sign_update => C_SignUpdate(session: Ulong, data: Bytes);
        verify_update => C_VerifyUpdate(session: Ulong, data: Bytes);
        verify_final => C_VerifyFinal(session: Ulong, data: Bytes);
        seed_random => C_SeedRandom(session: Ulong, data: Bytes);
        encrypt_final => C_EncryptFinal(session: Ulong, out: Out);
        decrypt_final => C_DecryptFinal(session: Ulong, out: Out);
        digest_final => C_DigestFinal(session: Ulong, out: Out);
        sign_final => C_SignFinal(session: Ulong, out: Out);
        digest_init => C_DigestInit(session: Ulong, mechanism: Mech);
        digest_key => C_DigestKey(session: Ulong, key: Ulong);
        verify => C_Verify(session: Ulong, data: Bytes, signature: Bytes);
        generate_random => C_GenerateRandom(session: Ulong, out: Slice<u8>);
        generate_key => C_GenerateKey(session: Ulong, mechanism: Mech, template: Template, key: OutUlong);
        generate_key_pair => C_GenerateKeyPair(session: Ulong, mechanism: Mech, public_template: Template, private_template: Template, public_key: OutUlong, private_key: OutUlong);
        wrap_key => C_WrapKey(session: Ulong, mechanism: Mech, wrapping_key: Ulong, key: Ulong, out: Out);
        unwrap_key => C_UnwrapKey(session: Ulong, mechanism: Mech, unwrapping_key: Ulong, wrapped: Bytes, template: Template, key: OutUlong);
        derive_key => C_DeriveKey(session: Ulong, mechanism: Mech, base_key: Ulong, template: Template, key: OutUlong);
    }
}

/// The index a request names its function by.
pub(crate) fn function_index(f: FunctionId) -> u16 {
    FunctionId::ALL
        .iter()
        .position(|&g| g == f)
        .map_or(u16::MAX, |i| i as u16)
}

/// The function a request names.
pub(crate) fn function_at(index: u16) -> WireResult<FunctionId> {
    FunctionId::ALL
        .get(usize::from(index))
        .copied()
        .ok_or(WireError::Malformed("unknown function"))
}
