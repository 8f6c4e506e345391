//! Bounds at the C boundary: mechanism parameters whose inner pointers are NULL
//! with a length, and template or array counts no buffer can hold (2^32, 2^63).
//! Each would make SoftHSM read through NULL or far past a buffer; Keywarden must
//! answer at once with the code SoftHSM gives where it answers without crashing
//! (bad handles), `CKR_ARGUMENTS_BAD` or `CKR_MECHANISM_PARAM_INVALID` otherwise
//! (docs/abi-conventions.md, "Mechanism parameters", "Counts and lengths").
mod common;
#[macro_use]
mod gateway_support;

use std::path::Path;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use gateway_support::{aes_key, attr, mech, name, user_session, Raw};
use pkcs11_sys::*;

const BIG: [CK_ULONG; 2] = [1 << 32, 1 << 63];
const BAD: CK_OBJECT_HANDLE = 0x7777;

fn param<T>(m: CK_MECHANISM_TYPE, p: &mut T) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: (p as *mut T).cast(),
        ulParameterLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

/// Times one call: an absurd count must be answered at once, not walked.
fn quick(what: &str, f: impl FnOnce() -> CK_RV) -> String {
    let t = Instant::now();
    let rv = f();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{what} took {:?}",
        t.elapsed()
    );
    name(rv)
}

#[test]
fn null_pointers_inside_mechanism_parameters_are_refused_before_the_token_reads_them() {
    let _env = common::TestEnv::new();
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let h = user_session(&kw, gateway_support::slot(&kw));
    let key = aes_key(&kw, h);
    let mut out_key = 0;
    let invalid = |what: &str, rv: CK_RV| {
        assert_eq!(name(rv), "CKR_MECHANISM_PARAM_INVALID", "{what}");
    };

    let mut gcm = CK_GCM_PARAMS {
        pIv: null_mut(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: null_mut(),
        ulAADLen: 0,
        ulTagBits: 128,
    };
    let mut m = param(CKM_AES_GCM, &mut gcm);
    invalid("GCM pIv", raw!(kw, C_EncryptInit(h, &mut m, key)));
    invalid("GCM pIv decrypt", raw!(kw, C_DecryptInit(h, &mut m, key)));
    // The five-field layout of the v2.40 mechanisms document: pIv is first too.
    m.ulParameterLen -= std::mem::size_of::<CK_ULONG>() as CK_ULONG;
    invalid(
        "GCM (5 fields) pIv",
        raw!(kw, C_EncryptInit(h, &mut m, key)),
    );
    let mut iv = [0u8; 12];
    gcm.pIv = iv.as_mut_ptr();
    gcm.ulAADLen = 5;
    let mut m = param(CKM_AES_GCM, &mut gcm);
    invalid("GCM pAAD", raw!(kw, C_EncryptInit(h, &mut m, key)));

    let mut ccm = CK_CCM_PARAMS {
        ulDataLen: 16,
        pNonce: null_mut(),
        ulNonceLen: 12,
        pAAD: null_mut(),
        ulAADLen: 0,
        ulMACLen: 16,
    };
    let mut m = param(CKM_AES_CCM, &mut ccm);
    invalid("CCM pNonce", raw!(kw, C_EncryptInit(h, &mut m, key)));

    let mut oaep = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: null_mut(),
        ulSourceDataLen: 8,
    };
    let mut m = param(CKM_RSA_PKCS_OAEP, &mut oaep);
    invalid("OAEP pSourceData", raw!(kw, C_EncryptInit(h, &mut m, key)));
    let mut wrapped = [0u8; 512];
    let mut wrapped_len = wrapped.len() as CK_ULONG;
    invalid(
        "OAEP wrap",
        raw!(
            kw,
            C_WrapKey(h, &mut m, key, key, wrapped.as_mut_ptr(), &mut wrapped_len)
        ),
    );
    invalid(
        "OAEP unwrap",
        raw!(
            kw,
            C_UnwrapKey(
                h,
                &mut m,
                key,
                wrapped.as_mut_ptr(),
                256,
                null_mut(),
                0,
                &mut out_key
            )
        ),
    );
    let mut rsa_aes = CK_RSA_AES_KEY_WRAP_PARAMS {
        ulAESKeyBits: 256,
        pOAEPParams: null_mut(),
    };
    let mut m = param(CKM_RSA_AES_KEY_WRAP, &mut rsa_aes);
    invalid(
        "RSA-AES wrap pOAEPParams",
        raw!(
            kw,
            C_WrapKey(h, &mut m, key, key, wrapped.as_mut_ptr(), &mut wrapped_len)
        ),
    );

    let mut ecdh = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: 65,
        pPublicData: null_mut(),
    };
    let mut m = param(CKM_ECDH1_DERIVE, &mut ecdh);
    invalid(
        "ECDH1 pPublicData",
        raw!(kw, C_DeriveKey(h, &mut m, key, null_mut(), 0, &mut out_key)),
    );
    let mut data = CK_KEY_DERIVATION_STRING_DATA {
        pData: null_mut(),
        ulLen: 16,
    };
    let mut m = param(CKM_AES_ECB_ENCRYPT_DATA, &mut data);
    invalid(
        "AES ECB-encrypt-data pData",
        raw!(kw, C_DeriveKey(h, &mut m, key, null_mut(), 0, &mut out_key)),
    );
    let mut cbc = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
        iv: [0; 16],
        pData: null_mut(),
        length: 16,
    };
    let mut m = param(CKM_AES_CBC_ENCRYPT_DATA, &mut cbc);
    invalid(
        "AES CBC-encrypt-data pData",
        raw!(kw, C_DeriveKey(h, &mut m, key, null_mut(), 0, &mut out_key)),
    );

    // A NULL pParameter with a length: CKR_ARGUMENTS_BAD, as SoftHSM answers it.
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: null_mut(),
        ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
    };
    assert_eq!(
        name(raw!(kw, C_EncryptInit(h, &mut m, key))),
        "CKR_ARGUMENTS_BAD"
    );

    // The module (and SoftHSM behind it) is still there, and a sound GCM works.
    gcm.ulAADLen = 0;
    let mut m = param(CKM_AES_GCM, &mut gcm);
    assert_eq!(name(raw!(kw, C_EncryptInit(h, &mut m, key))), "CKR_OK");
    let (mut plain, mut out) = (*b"abc", [0u8; 64]);
    let mut len = out.len() as CK_ULONG;
    let rv = raw!(
        kw,
        C_Encrypt(h, plain.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len)
    );
    assert_eq!((name(rv), len), ("CKR_OK".into(), 19));
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
}

/// Every template-taking call, with a count no buffer holds: (name, call).
type Case<'a> = (&'static str, Box<dyn Fn(&Raw, CK_ULONG) -> CK_RV + 'a>);

fn template_cases<'a>(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    small: &'a [CK_ATTRIBUTE; 2],
) -> Vec<Case<'a>> {
    let t = || small.as_ptr().cast_mut();
    vec![
        (
            "FindObjectsInit",
            Box::new(move |r, n| raw!(r, C_FindObjectsInit(h, t(), n))),
        ),
        (
            "SetAttributeValue",
            Box::new(move |r, n| raw!(r, C_SetAttributeValue(h, object, t(), n))),
        ),
        (
            "GetAttributeValue",
            Box::new(move |r, n| raw!(r, C_GetAttributeValue(h, object, t(), n))),
        ),
        (
            "CreateObject",
            Box::new(move |r, n| {
                let mut o = 0;
                raw!(r, C_CreateObject(h, t(), n, &mut o))
            }),
        ),
        (
            "CopyObject",
            Box::new(move |r, n| {
                let mut o = 0;
                raw!(r, C_CopyObject(h, object, t(), n, &mut o))
            }),
        ),
        (
            "GenerateKey",
            Box::new(move |r, n| {
                let (mut m, mut o) = (mech(CKM_AES_KEY_GEN), 0);
                raw!(r, C_GenerateKey(h, &mut m, t(), n, &mut o))
            }),
        ),
        (
            "GenerateKeyPair public",
            Box::new(move |r, n| {
                let (mut m, mut a, mut b) = (mech(CKM_EC_KEY_PAIR_GEN), 0, 0);
                raw!(
                    r,
                    C_GenerateKeyPair(h, &mut m, t(), n, t(), 1, &mut a, &mut b)
                )
            }),
        ),
        (
            "GenerateKeyPair private",
            Box::new(move |r, n| {
                let (mut m, mut a, mut b) = (mech(CKM_EC_KEY_PAIR_GEN), 0, 0);
                raw!(
                    r,
                    C_GenerateKeyPair(h, &mut m, t(), 1, t(), n, &mut a, &mut b)
                )
            }),
        ),
        (
            "UnwrapKey",
            Box::new(move |r, n| {
                let (mut m, mut w, mut o) = (mech(CKM_AES_KEY_WRAP), [0u8; 40], 0);
                raw!(
                    r,
                    C_UnwrapKey(h, &mut m, object, w.as_mut_ptr(), 40, t(), n, &mut o)
                )
            }),
        ),
        (
            "DeriveKey",
            Box::new(move |r, n| {
                let mut d = [0u8; 16];
                let mut data = CK_KEY_DERIVATION_STRING_DATA {
                    pData: d.as_mut_ptr(),
                    ulLen: 16,
                };
                let (mut m, mut o) = (param(CKM_AES_ECB_ENCRYPT_DATA, &mut data), 0);
                raw!(r, C_DeriveKey(h, &mut m, object, t(), n, &mut o))
            }),
        ),
    ]
}

#[test]
fn template_counts_of_2_32_and_2_63_are_answered_at_once() {
    let _env = common::TestEnv::new();
    let direct = Raw::open(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(raw!(direct, C_Initialize(null_mut())), CKR_OK);
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let h = user_session(&kw, gateway_support::slot(&kw));
    let key = aes_key(&kw, h);
    let (mut label, mut t) = (*b"x", [CK_TRUE]);
    let small = [attr(CKA_LABEL, &mut label), attr(CKA_TOKEN, &mut t)];

    // Handles the token does not know: it answers them at once, without reading
    // the template, and so must Keywarden (the same code).
    let with_object = [
        "SetAttributeValue",
        "GetAttributeValue",
        "CopyObject",
        "UnwrapKey",
        "DeriveKey",
    ];
    for (what, call) in template_cases(h, BAD, &small) {
        if !with_object.contains(&what) {
            continue;
        }
        for n in BIG {
            let want = name(call(&direct, n));
            let got = quick(what, || call(&kw, n));
            assert_eq!(got, want, "{what} with count {n:#x}, bad object");
        }
    }
    for (what, call) in template_cases(0x7777_7777, BAD, &small) {
        for n in BIG {
            let want = name(call(&direct, n));
            assert_eq!(want, "CKR_SESSION_HANDLE_INVALID", "{what}");
            assert_eq!(quick(what, || call(&kw, n)), want, "{what}, bad session");
        }
    }
    // Valid handles: SoftHSM would walk the count (and mostly crash); Keywarden
    // refuses it before anything walks it.
    for (what, call) in template_cases(h, key, &small) {
        for n in BIG {
            let got = quick(what, || call(&kw, n));
            assert_eq!(got, "CKR_ARGUMENTS_BAD", "{what} with count {n:#x}");
        }
    }

    // Output capacities are not walked: the token writes what it has, as directly.
    for n in BIG {
        let mut slots = [0 as CK_SLOT_ID; 16];
        let (mut a, mut b) = (n, n);
        let rv_d = raw!(direct, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut a));
        let rv_k = quick("GetSlotList", || {
            raw!(kw, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut b))
        });
        assert_eq!((rv_k, b), (name(rv_d), a), "GetSlotList {n:#x}");
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        assert_eq!(raw!(kw, C_FindObjectsInit(h, null_mut(), 0)), CKR_OK);
        let mut count = 0;
        let rv = quick("FindObjects", || {
            raw!(kw, C_FindObjects(h, found.as_mut_ptr(), n, &mut count))
        });
        assert_eq!((rv.as_str(), count), ("CKR_OK", 1), "FindObjects {n:#x}");
        assert_eq!(raw!(kw, C_FindObjectsFinal(h)), CKR_OK);
    }
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(raw!(direct, C_Finalize(null_mut())), CKR_OK);
}

const ALLOW_ALL: &str = r#"
version = 1
[settings]
default_classification = "Low"
unmanaged_keys = "allow"
[[rule]]
id = "everything"
roles = ["*"]
ops = ["*"]
"#;

const DENY_ALL: &str = r#"
version = 1
[settings]
unmanaged_keys = "allow"
"#;

/// Enforce mode decodes templates: a huge count on a bad handle must still be
/// answered at once (SoftHSM: CKR_OBJECT_HANDLE_INVALID), not copied whole.
#[test]
fn enforce_mode_answers_a_huge_template_on_a_bad_handle_without_copying_it() {
    let env = common::TestEnv::new();
    env.enforce(ALLOW_ALL);
    let direct = Raw::open(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(raw!(direct, C_Initialize(null_mut())), CKR_OK);
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let h = user_session(&kw, gateway_support::slot(&kw));
    // 2^26 real (zeroed) entries: readable memory, as an attacker would pass.
    let n: usize = 1 << 26;
    let mut big = vec![
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 0
        };
        n
    ];
    let want = name(raw!(
        direct,
        C_SetAttributeValue(h, BAD, big.as_mut_ptr(), n as CK_ULONG)
    ));
    assert_eq!(want, "CKR_OBJECT_HANDLE_INVALID");
    let got = quick("SetAttributeValue 2^26", || {
        raw!(
            kw,
            C_SetAttributeValue(h, BAD, big.as_mut_ptr(), n as CK_ULONG)
        )
    });
    assert_eq!(got, want);
    let (mut m, mut w, mut o) = (mech(CKM_AES_KEY_WRAP), [0u8; 40], 0);
    let want = name(raw!(
        direct,
        C_UnwrapKey(
            h,
            &mut m,
            BAD,
            w.as_mut_ptr(),
            40,
            big.as_mut_ptr(),
            n as CK_ULONG,
            &mut o
        )
    ));
    let got = quick("UnwrapKey 2^26", || {
        raw!(
            kw,
            C_UnwrapKey(
                h,
                &mut m,
                BAD,
                w.as_mut_ptr(),
                40,
                big.as_mut_ptr(),
                n as CK_ULONG,
                &mut o
            )
        )
    });
    assert_eq!(got, want);
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(raw!(direct, C_Finalize(null_mut())), CKR_OK);
}

/// A refusing policy must not hide that the token lacks a function: SoftHSM has
/// no sign-with-recovery, and a client probing for it must learn that.
#[test]
fn a_refusal_does_not_hide_that_the_token_lacks_sign_recover() {
    let env = common::TestEnv::new();
    env.enforce(DENY_ALL);
    let direct = Raw::open(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(raw!(direct, C_Initialize(null_mut())), CKR_OK);
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let hd = user_session(&direct, gateway_support::slot(&direct));
    let key = aes_key(&direct, hd);
    let h = user_session(&kw, gateway_support::slot(&kw));
    let mut m = mech(CKM_RSA_PKCS);
    let want = name(raw!(direct, C_SignRecoverInit(hd, &mut m, key)));
    assert_eq!(want, "CKR_FUNCTION_NOT_SUPPORTED");
    assert_eq!(name(raw!(kw, C_SignRecoverInit(h, &mut m, key))), want);
    assert_eq!(name(raw!(kw, C_VerifyRecoverInit(h, &mut m, key))), want);
    // A function the token has is still decided by the policy.
    assert_ne!(name(raw!(kw, C_SignInit(h, &mut m, key))), want);
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(raw!(direct, C_Finalize(null_mut())), CKR_OK);
}
