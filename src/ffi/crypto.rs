//! Cryptographic functions (PKCS#11 v2.40 §5.8-§5.13, §5.15) and key management
//! (§5.14). Mechanism parameters go to the token as they came, once their
//! pointers are checked (`mechanism_arg`: a NULL `pParameter` or a NULL pointer
//! inside the parameter struct, each with a length, is refused); at a `*Init`
//! they are also decoded (lengths only, `abi::MechanismView::decode`) for the
//! audit record, and a parameter the decoder cannot read is still forwarded (the
//! token judges it) and recorded by mechanism type only. Data calls tell the gateway
//! their buffer lengths (`gateway::Io`), never their contents.
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::args::{in_ref, in_slice, in_template, out_buf, out_ref, out_slice};
use super::boundary::{forward, with_gateway};
use super::decode::{checked_mechanism, template_from_raw, with_forced};
use super::output::{data_call, handles_if_recorded};
use crate::abi::MechanismSummary;
use crate::error::Result;
use crate::functions::FunctionId as F;
use crate::gateway::{unwrap_bits_hint, Call, CreateArgs, Io};

/// The length of an optional input buffer, for `Io`.
#[inline]
fn len_of(data: Option<&[u8]>) -> u64 {
    data.map_or(0, |d| d.len() as u64)
}
use crate::policy::CreationKind;

/// `pMechanism`, checked (`decode::checked_mechanism`) before anything is
/// forwarded, and its summary when the decoder can read it.
///
/// # Safety
/// A non-NULL `p` points to a `CK_MECHANISM` whose `pParameter` has
/// `ulParameterLen` readable bytes (the caller's contract).
unsafe fn mechanism_arg<'a>(
    p: CK_MECHANISM_PTR,
) -> Result<(&'a CK_MECHANISM, Option<MechanismSummary>)> {
    // SAFETY: forwarded contract.
    let m = unsafe { in_ref(p.cast_const(), "pMechanism") }?;
    // SAFETY: forwarded contract.
    let summary = unsafe { checked_mechanism(m) }?;
    Ok((m, summary))
}

/// `X_Init(hSession, pMechanism, hKey)`: the decision point of a keyed operation.
macro_rules! init_with_key {
    ($( $name:ident => $method:ident; )*) => { $(
        #[doc = concat!("`", stringify!($name), "`")]
        pub(super) unsafe fn $name(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) -> Result<()> {
            // SAFETY: caller's contract: pMechanism points to a CK_MECHANISM.
            let (mechanism, summary) = unsafe { mechanism_arg(pMechanism) }?;
            let call = Call::session(F::$name, hSession).on(hKey).with_mechanism(mechanism.mechanism);
            with_gateway(|gw| gw.op_init(call, summary.as_ref(), |b| b.$method(hSession, mechanism, hKey)))
        }
    )* };
}

/// `X(hSession, pIn, ulInLen, pOut, pulOutLen)`: data in, §5.2 output out.
macro_rules! in_to_out {
    ($( $name:ident => $method:ident; )*) => { $(
        #[doc = concat!("`", stringify!($name), "` (§5.2 size query applies)")]
        pub(super) unsafe fn $name(hSession: CK_SESSION_HANDLE, pIn: CK_BYTE_PTR, ulInLen: CK_ULONG, pOut: CK_BYTE_PTR, pulOutLen: CK_ULONG_PTR) -> Result<()> {
            // SAFETY: caller's contract: ulInLen readable bytes; *pulOutLen writable bytes.
            let (data, out) = unsafe { (in_slice(pIn, ulInLen, "input buffer")?, out_buf(pOut, pulOutLen, "output length")?) };
            let io = Io { in_len: len_of(data), size_query: out.is_size_query(), ..Io::default() };
            with_gateway(|gw| data_call(gw, Call::session(F::$name, hSession), io, out, |b, out| {
                b.$method(hSession, data, out)
            }))
        }
    )* };
}

/// `X(hSession, pPart, ulPartLen)`: data in only.
macro_rules! in_only {
    ($( $name:ident => $method:ident; )*) => { $(
        #[doc = concat!("`", stringify!($name), "`")]
        pub(super) unsafe fn $name(hSession: CK_SESSION_HANDLE, pIn: CK_BYTE_PTR, ulInLen: CK_ULONG) -> Result<()> {
            // SAFETY: caller's contract: ulInLen readable bytes.
            let data = unsafe { in_slice(pIn, ulInLen, "input buffer") }?;
            let io = Io { in_len: len_of(data), ..Io::default() };
            with_gateway(|gw| gw.call_io(Call::session(F::$name, hSession), io, |b| (b.$method(hSession, data), 0)))
        }
    )* };
}

/// `X(hSession, pOut, pulOutLen)`: the last part of a multi-part operation.
macro_rules! out_only {
    ($( $name:ident => $method:ident; )*) => { $(
        #[doc = concat!("`", stringify!($name), "` (§5.2 size query applies)")]
        pub(super) unsafe fn $name(hSession: CK_SESSION_HANDLE, pOut: CK_BYTE_PTR, pulOutLen: CK_ULONG_PTR) -> Result<()> {
            // SAFETY: caller's contract: *pulOutLen writable bytes.
            let out = unsafe { out_buf(pOut, pulOutLen, "output length") }?;
            let io = Io { size_query: out.is_size_query(), ..Io::default() };
            with_gateway(|gw| data_call(gw, Call::session(F::$name, hSession), io, out, |b, out| {
                b.$method(hSession, out)
            }))
        }
    )* };
}

init_with_key! {
    C_EncryptInit => encrypt_init;
    C_DecryptInit => decrypt_init;
    C_SignInit => sign_init;
    C_SignRecoverInit => sign_recover_init;
    C_VerifyInit => verify_init;
    C_VerifyRecoverInit => verify_recover_init;
}

in_to_out! {
    C_Encrypt => encrypt;
    C_EncryptUpdate => encrypt_update;
    C_Decrypt => decrypt;
    C_DecryptUpdate => decrypt_update;
    C_Digest => digest;
    C_Sign => sign;
    C_SignRecover => sign_recover;
    C_VerifyRecover => verify_recover;
    C_DigestEncryptUpdate => digest_encrypt_update;
    C_DecryptDigestUpdate => decrypt_digest_update;
    C_SignEncryptUpdate => sign_encrypt_update;
    C_DecryptVerifyUpdate => decrypt_verify_update;
}

in_only! {
    C_DigestUpdate => digest_update;
    C_SignUpdate => sign_update;
    C_VerifyUpdate => verify_update;
    C_VerifyFinal => verify_final;
    C_SeedRandom => seed_random;
}

out_only! {
    C_EncryptFinal => encrypt_final;
    C_DecryptFinal => decrypt_final;
    C_DigestFinal => digest_final;
    C_SignFinal => sign_final;
}

/// `C_DigestInit`
pub(super) unsafe fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, summary) = unsafe { mechanism_arg(pMechanism) }?;
    let call = Call::session(F::C_DigestInit, hSession).with_mechanism(mechanism.mechanism);
    with_gateway(|gw| {
        gw.op_init(call, summary.as_ref(), |b| {
            b.digest_init(hSession, mechanism)
        })
    })
}

/// `C_DigestKey`
pub(super) unsafe fn C_DigestKey(
    hSession: CK_SESSION_HANDLE,
    hKey: CK_OBJECT_HANDLE,
) -> Result<()> {
    forward(Call::session(F::C_DigestKey, hSession).on(hKey), |b| {
        b.digest_key(hSession, hKey)
    })
}

/// `C_Verify`
pub(super) unsafe fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (data, sig) = unsafe {
        (
            in_slice(pData, ulDataLen, "pData")?,
            in_slice(pSignature, ulSignatureLen, "pSignature")?,
        )
    };
    // The signature is not counted: bytes_in is the data verified.
    let io = Io {
        in_len: len_of(data),
        ..Io::default()
    };
    with_gateway(|gw| {
        gw.call_io(Call::session(F::C_Verify, hSession), io, |b| {
            (b.verify(hSession, data, sig), 0)
        })
    })
}

/// `C_GenerateRandom`
pub(super) unsafe fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: CK_BYTE_PTR,
    ulRandomLen: CK_ULONG,
) -> Result<()> {
    // SAFETY: caller's contract: ulRandomLen writable bytes.
    let out = unsafe { out_slice(RandomData, ulRandomLen, "RandomData") }?;
    forward(Call::session(F::C_GenerateRandom, hSession), |b| {
        b.generate_random(hSession, out)
    })
}

/// `C_GenerateKey`
pub(super) unsafe fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, template, key) = unsafe {
        (
            mechanism_arg(pMechanism)?.0,
            in_template(
                &Call::session(F::C_GenerateKey, hSession),
                pTemplate,
                ulCount,
            )?,
            out_ref(phKey, "phKey")?,
        )
    };
    let call = Call::session(F::C_GenerateKey, hSession).with_mechanism(mechanism.mechanism);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.generate_key(hSession, mechanism, template, key);
                (rv, [Some(*key), None])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulCount) }?;
        let args = CreateArgs {
            kind: CreationKind::Generate,
            template: &t,
            public_template: None,
            bits_hint: None,
        };
        gw.create(call, &args, |b, add| {
            let forced = with_forced(template, add);
            let rv = b.generate_key(hSession, mechanism, forced.as_deref().or(template), key);
            (rv, [Some(*key), None])
        })
    });
    handles_if_recorded(result, [key])
}

/// `C_GenerateKeyPair`
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: CK_OBJECT_HANDLE_PTR,
    phPrivateKey: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, public, private) = unsafe {
        (
            mechanism_arg(pMechanism)?.0,
            in_template(
                &Call::session(F::C_GenerateKeyPair, hSession),
                pPublicKeyTemplate,
                ulPublicKeyAttributeCount,
            )?,
            in_template(
                &Call::session(F::C_GenerateKeyPair, hSession),
                pPrivateKeyTemplate,
                ulPrivateKeyAttributeCount,
            )?,
        )
    };
    // SAFETY: caller's contract: two distinct writable handles.
    let (public_key, private_key) = unsafe {
        (
            out_ref(phPublicKey, "phPublicKey")?,
            out_ref(phPrivateKey, "phPrivateKey")?,
        )
    };
    let call = Call::session(F::C_GenerateKeyPair, hSession).with_mechanism(mechanism.mechanism);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.generate_key_pair(
                    hSession,
                    mechanism,
                    public,
                    private,
                    public_key,
                    private_key,
                );
                (rv, [Some(*public_key), Some(*private_key)])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let (pt, t) = unsafe {
            (
                template_from_raw(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template_from_raw(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        let args = CreateArgs {
            kind: CreationKind::GenerateKeyPair,
            template: &t,
            public_template: Some(&pt),
            bits_hint: None,
        };
        gw.create(call, &args, |b, add| {
            // Forced attributes go on the private key's template, an assigned
            // CKA_ID on both.
            let forced = with_forced(private, add);
            let public_forced = with_forced(public, &add.for_public());
            let rv = b.generate_key_pair(
                hSession,
                mechanism,
                public_forced.as_deref().or(public),
                forced.as_deref().or(private),
                public_key,
                private_key,
            );
            (rv, [Some(*public_key), Some(*private_key)])
        })
    });
    handles_if_recorded(result, [public_key, private_key])
}

/// `C_WrapKey` (§5.2 size query applies)
pub(super) unsafe fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, out) = unsafe {
        (
            mechanism_arg(pMechanism)?.0,
            out_buf(pWrappedKey, pulWrappedKeyLen, "pulWrappedKeyLen")?,
        )
    };
    let call = Call::session(F::C_WrapKey, hSession)
        .on(hWrappingKey)
        .and(hKey)
        .with_mechanism(mechanism.mechanism);
    let io = Io {
        size_query: out.is_size_query(),
        ..Io::default()
    };
    with_gateway(|gw| {
        data_call(gw, call, io, out, |b, out| {
            b.wrap_key(hSession, mechanism, hWrappingKey, hKey, out)
        })
    })
}

/// `C_UnwrapKey`
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, wrapped, template, key) = unsafe {
        (
            mechanism_arg(pMechanism)?.0,
            in_slice(pWrappedKey, ulWrappedKeyLen, "pWrappedKey")?,
            in_template(
                &Call::session(F::C_UnwrapKey, hSession).on(hUnwrappingKey),
                pTemplate,
                ulAttributeCount,
            )?,
            out_ref(phKey, "phKey")?,
        )
    };
    let call = Call::session(F::C_UnwrapKey, hSession)
        .on(hUnwrappingKey)
        .with_mechanism(mechanism.mechanism);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.unwrap_key(hSession, mechanism, hUnwrappingKey, wrapped, template, key);
                (rv, [Some(*key), None])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulAttributeCount) }?;
        let args = CreateArgs {
            kind: CreationKind::Unwrap,
            template: &t,
            public_template: None,
            bits_hint: unwrap_bits_hint(mechanism.mechanism, wrapped.map_or(0, <[u8]>::len)),
        };
        gw.create(call, &args, |b, add| {
            let forced = with_forced(template, add);
            let rv = b.unwrap_key(
                hSession,
                mechanism,
                hUnwrappingKey,
                wrapped,
                forced.as_deref().or(template),
                key,
            );
            (rv, [Some(*key), None])
        })
    });
    handles_if_recorded(result, [key])
}

/// `C_DeriveKey`
pub(super) unsafe fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> Result<()> {
    // SAFETY: caller's contract.
    let (mechanism, template, key) = unsafe {
        (
            mechanism_arg(pMechanism)?.0,
            in_template(
                &Call::session(F::C_DeriveKey, hSession).on(hBaseKey),
                pTemplate,
                ulAttributeCount,
            )?,
            out_ref(phKey, "phKey")?,
        )
    };
    let call = Call::session(F::C_DeriveKey, hSession)
        .on(hBaseKey)
        .with_mechanism(mechanism.mechanism);
    let result = with_gateway(|gw| {
        if !gw.enforcing() {
            return gw.create_plain(call, |b| {
                let rv = b.derive_key(hSession, mechanism, hBaseKey, template, key);
                (rv, [Some(*key), None])
            });
        }
        // SAFETY: caller's contract: each attribute's pValue has ulValueLen bytes.
        let t = unsafe { template_from_raw(pTemplate, ulAttributeCount) }?;
        let args = CreateArgs {
            kind: CreationKind::Derive,
            template: &t,
            public_template: None,
            bits_hint: None,
        };
        gw.create(call, &args, |b, add| {
            let forced = with_forced(template, add);
            let rv = b.derive_key(
                hSession,
                mechanism,
                hBaseKey,
                forced.as_deref().or(template),
                key,
            );
            (rv, [Some(*key), None])
        })
    });
    handles_if_recorded(result, [key])
}
