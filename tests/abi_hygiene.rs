//! C ABI hygiene, called through the raw function list of the real `libkeywarden.so`:
//! NULL pointers, NULL-with-zero-length buffers and the per-attribute rules of
//! `C_GetAttributeValue` (the §5.2 output-buffer convention and interface discovery
//! are in `abi_output_buffers.rs`).
//!
//! Where Keywarden forwards, the reference is SoftHSM called directly in the same
//! process (one SoftHSM instance; the test initialises it first, so Keywarden finds it
//! already initialised): Keywarden must answer as the token does.

mod abi_hygiene_support;
mod common;
#[path = "c/support.rs"]
mod support;

use std::ptr::{self, null_mut};

use abi_hygiene_support::{fixture, UL};
use pkcs11_sys::*;
use support::{attr, mechanism, p11, Module};

#[test]
fn null_required_pointers_are_arguments_bad() {
    let fx = fixture();
    let kw = &fx.kw;
    // SAFETY: the exported symbol has the C_GetFunctionList signature.
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
            kw.lib.get(b"C_GetFunctionList\0").unwrap();
        get(null_mut())
    };
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_GetFunctionList(NULL)");
    assert_eq!(p11!(kw, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        p11!(kw, C_GetSlotList(CK_TRUE, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_GetTokenInfo(fx.slot, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let rv = p11!(
        kw,
        C_OpenSession(fx.slot, flags, null_mut(), None, null_mut())
    );
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_OpenSession(phSession = NULL)");
    assert_eq!(
        p11!(kw, C_GetSessionInfo(fx.s, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_SignInit(fx.s, null_mut(), fx.ec_private)),
        CKR_ARGUMENTS_BAD
    );
    // NULL with a non-zero count never reaches the token (it would read 3 attributes).
    assert_eq!(
        p11!(kw, C_FindObjectsInit(fx.s, null_mut(), 3)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_GenerateRandom(fx.s, null_mut(), 16)),
        CKR_ARGUMENTS_BAD
    );

    let mut ecdsa = mechanism(CKM_ECDSA);
    let mut digest = [7u8; 32];
    assert_eq!(
        p11!(kw, C_SignInit(fx.s, &mut ecdsa, fx.ec_private)),
        CKR_OK
    );
    let rv = p11!(
        kw,
        C_Sign(fx.s, digest.as_mut_ptr(), 32, null_mut(), null_mut())
    );
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_Sign(pulSignatureLen = NULL)");
    // The refusals left the module in working order.
    // SAFETY: CK_INFO is plain old data.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(p11!(kw, C_GetInfo(&mut info)), CKR_OK);
    assert_eq!(
        info.cryptokiVersion.major, 2,
        "SoftHSM 2.6's answer, forwarded"
    );
}

/// PKCS#11 v2.40 §5.12 (C_Sign): "A call to C_Sign always terminates the active
/// signing operation unless it returns CKR_BUFFER_TOO_SMALL or is a successful call
/// [...] to determine the length of the buffer needed". Keywarden refuses a NULL
/// pulSignatureLen before the token sees it, so the token's operation state after
/// the refusal is whatever the token leaves after refusing the same call: measured,
/// SoftHSM 2.6 keeps the operation active (a new C_SignInit gets
/// CKR_OPERATION_ACTIVE) both directly and through Keywarden.
#[test]
fn a_refused_sign_leaves_the_operation_as_the_token_would() {
    let fx = fixture();
    let key = fx.ec_private;
    let (kw, hsm) = fx.both(|m, s| {
        let mut ecdsa = mechanism(CKM_ECDSA);
        let mut digest = [7u8; 32];
        assert_eq!(p11!(m, C_SignInit(s, &mut ecdsa, key)), CKR_OK);
        let rv = p11!(
            m,
            C_Sign(s, digest.as_mut_ptr(), 32, null_mut(), null_mut())
        );
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        let again = p11!(m, C_SignInit(s, &mut ecdsa, key));
        let mut sig = [0u8; 64];
        let mut len = 64;
        [
            again,
            p11!(
                m,
                C_Sign(s, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)
            ),
        ]
    });
    assert_eq!(hsm, [CKR_OPERATION_ACTIVE, CKR_OK], "SoftHSM 2.6 directly");
    assert_eq!(kw, hsm, "Keywarden: {kw:x?}, SoftHSM: {hsm:x?}");
}

/// A buffer that is NULL with a length of 0 is handed to the token as such
/// (docs/abi-conventions.md), so the answers, and the operation state after them
/// (probed with a valid follow-up call), are the token's. SoftHSM 2.6 refuses all of
/// these with CKR_ARGUMENTS_BAD and keeps the operation; that they reach the token at
/// all is shown with a recording backend in `forwarding_is_observed_at_the_backend`
/// (`abi_output_buffers.rs`).
#[test]
fn null_with_zero_length_reaches_the_token_as_is() {
    let fx = fixture();
    let (ec, aes) = (fx.ec_private, fx.aes);
    let mut buf = [1u8; 16];
    let b = buf.as_mut_ptr();
    let n = null_mut();
    let init = |m: &Module, s, mut mech: CK_MECHANISM| {
        let rv = match mech.mechanism {
            CKM_SHA256 => p11!(m, C_DigestInit(s, &mut mech)),
            CKM_AES_CMAC => p11!(m, C_SignInit(s, &mut mech, aes)),
            _ => p11!(m, C_EncryptInit(s, &mut mech, aes)),
        };
        assert_eq!(rv, CKR_OK);
    };
    let mut iv = [0u8; 16];
    let cbc = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv.as_mut_ptr().cast(),
        ulParameterLen: 16,
    };
    let names = [
        "C_DigestUpdate(NULL, 0)",
        "C_Digest(NULL, 0, NULL, &len)",
        "C_SignUpdate(NULL, 0)", // AES-CMAC: SoftHSM 2.6 has no multi-part ECDSA
        "C_EncryptUpdate(NULL, 0, NULL, &len)",
        "C_Encrypt(NULL, 0, NULL, &len)",
        "C_GenerateRandom(NULL, 0)",
        "C_SeedRandom(NULL, 0)",
        "C_Login(NULL, 0)",
        "C_CreateObject(NULL, 0)",
        "C_CopyObject(NULL, 0)",
        "C_GetAttributeValue(NULL, 0)",
        "C_SetAttributeValue(NULL, 0)",
    ];
    // Each case: [the NULL-with-0 call, a valid follow-up (0 where there is none)].
    let case = |i: usize, m: &Module, s| -> [CK_RV; 2] {
        let (mut len, mut h) = (0, 0);
        match i {
            0 => {
                init(m, s, mechanism(CKM_SHA256));
                [
                    p11!(m, C_DigestUpdate(s, n, 0)),
                    p11!(m, C_DigestUpdate(s, b, 4)),
                ]
            }
            1 => {
                init(m, s, mechanism(CKM_SHA256));
                let first = p11!(m, C_Digest(s, n, 0, n, &mut len));
                [first, p11!(m, C_Digest(s, b, 4, n, &mut len))]
            }
            2 => {
                init(m, s, mechanism(CKM_AES_CMAC));
                [
                    p11!(m, C_SignUpdate(s, n, 0)),
                    p11!(m, C_SignUpdate(s, b, 4)),
                ]
            }
            3 => {
                init(m, s, cbc);
                let first = p11!(m, C_EncryptUpdate(s, n, 0, n, &mut len));
                [first, p11!(m, C_EncryptUpdate(s, b, 16, n, &mut len))]
            }
            4 => {
                init(m, s, cbc);
                let first = p11!(m, C_Encrypt(s, n, 0, n, &mut len));
                [first, p11!(m, C_Encrypt(s, b, 16, n, &mut len))]
            }
            5 => [
                p11!(m, C_GenerateRandom(s, n, 0)),
                p11!(m, C_GenerateRandom(s, b, 4)),
            ],
            6 => [p11!(m, C_SeedRandom(s, n, 0)), 0],
            7 => [p11!(m, C_Login(s, CKU_USER, n, 0)), 0],
            8 => [p11!(m, C_CreateObject(s, n.cast(), 0, &mut h)), 0],
            9 => [p11!(m, C_CopyObject(s, aes, n.cast(), 0, &mut h)), 0],
            10 => [p11!(m, C_GetAttributeValue(s, ec, n.cast(), 0)), 0],
            _ => [p11!(m, C_SetAttributeValue(s, ec, n.cast(), 0)), 0],
        }
    };
    let mut table = String::new();
    for (i, name) in names.iter().enumerate() {
        let (kw, hsm) = fx.both(|m, s| case(i, m, s));
        table += &format!("{name}: keywarden {kw:x?}, softhsm {hsm:x?}\n");
        assert_eq!(kw, hsm, "{name}: Keywarden must answer as the token does");
    }
    println!("{table}");
}

/// Counts every object `C_FindObjectsInit(template)` lets a session see.
fn count_objects(m: &Module, s: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> usize {
    let p = if template.is_empty() {
        null_mut()
    } else {
        template.as_mut_ptr()
    };
    assert_eq!(p11!(m, C_FindObjectsInit(s, p, UL(template.len()))), CKR_OK);
    let mut found = [0; 64];
    let mut n = 0;
    assert_eq!(
        p11!(m, C_FindObjects(s, found.as_mut_ptr(), 64, &mut n)),
        CKR_OK
    );
    assert_eq!(p11!(m, C_FindObjectsFinal(s)), CKR_OK);
    n as usize
}

#[test]
fn find_objects_with_a_null_template_and_zero_count_finds_everything() {
    let fx = fixture();
    // Public key, private key, AES key: all session objects of this application.
    let mut class = CKO_SECRET_KEY;
    let mut secret = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: ptr::from_mut(&mut class).cast(),
        ulValueLen: UL(std::mem::size_of::<CK_OBJECT_CLASS>()),
    }];
    let everything = count_objects(&fx.kw, fx.s, &mut []);
    assert_eq!(
        everything, 3,
        "NULL template with count 0 matches every object"
    );
    assert_eq!(count_objects(&fx.kw, fx.s, &mut secret), 1);
    let direct = fx.hsm.open(fx.slot);
    assert_eq!(count_objects(&fx.hsm, direct, &mut []), everything);
}

#[test]
fn get_attribute_value_applies_the_per_attribute_rules() {
    let fx = fixture();
    let key = fx.ec_private;
    let run = |m: &Module, s| {
        let mut value = [0xeeu8; 64];
        let mut label = [0u8; 32];
        let mut key_type = [0u8; std::mem::size_of::<CK_KEY_TYPE>()];
        let mut t = [
            attr(CKA_VALUE, &mut value), // sensitive: must not come out
            attr(CKA_LABEL, &mut label), // still filled after the error
            attr(CKA_KEY_TYPE, &mut key_type),
            CK_ATTRIBUTE {
                type_: CKA_EC_PARAMS,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        let rv = p11!(m, C_GetAttributeValue(s, key, t.as_mut_ptr(), 4));
        let lens = t.map(|a| a.ulValueLen);
        (
            rv,
            lens,
            value,
            label[..6].to_vec(),
            CK_KEY_TYPE::from_ne_bytes(key_type),
        )
    };
    let kw = run(&fx.kw, fx.s);
    let (rv, lens, value, label, key_type) = kw.clone();
    assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(lens[0], CK_UNAVAILABLE_INFORMATION, "sensitive value");
    assert_eq!(value, [0xee; 64], "sensitive buffer untouched");
    assert_eq!((lens[1], label.as_slice()), (6, &b"abi-ec"[..]));
    assert_eq!(
        (lens[2], key_type),
        (UL(std::mem::size_of::<CK_KEY_TYPE>()), CKK_EC)
    );
    assert_eq!(
        lens[3],
        UL(support::P256_OID.len()),
        "NULL pValue: length only"
    );
    let direct = fx.hsm.open(fx.slot);
    assert_eq!(
        run(&fx.hsm, direct),
        kw,
        "Keywarden and SoftHSM fill the template alike"
    );
}
