//! The operation after a data call Keywarden refuses on its own argument checks
//! (a NULL length cell, NULL input with a length): it must be left as the token
//! would leave it after that very call (PKCS#11 v2.40 §5.2, §5.8-§5.13), so the
//! next `*Init` answers as it does directly. SoftHSM 2.6 ends the operation for
//! `C_EncryptFinal`/`C_DecryptFinal` with a NULL length and keeps it for the
//! others; Keywarden must match it call by call (docs/abi-conventions.md,
//! "Operations after a refused data call").
mod common;
#[macro_use]
mod gateway_support;

use std::path::Path;
use std::ptr::null_mut;

use gateway_support::{attr, attr_ulong, mech, name, user_session, Raw};
use pkcs11_sys::*;

struct Keys {
    aes: CK_OBJECT_HANDLE,
    ec_private: CK_OBJECT_HANDLE,
    ec_public: CK_OBJECT_HANDLE,
}

fn keys(r: &Raw, h: CK_SESSION_HANDLE) -> Keys {
    let mut len: CK_ULONG = 32;
    let (mut t, mut f) = ([CK_TRUE], [CK_FALSE]);
    let mut tmpl = [
        attr_ulong(CKA_VALUE_LEN, &mut len),
        attr(CKA_TOKEN, &mut f),
        attr(CKA_ENCRYPT, &mut t),
        attr(CKA_DECRYPT, &mut t),
        attr(CKA_SIGN, &mut t),
        attr(CKA_VERIFY, &mut t),
    ];
    let (mut m, mut aes) = (mech(CKM_AES_KEY_GEN), 0);
    assert_eq!(
        raw!(r, C_GenerateKey(h, &mut m, tmpl.as_mut_ptr(), 6, &mut aes)),
        CKR_OK
    );
    let mut params = common::P256;
    let mut public = [attr(CKA_EC_PARAMS, &mut params), attr(CKA_VERIFY, &mut t)];
    let mut t2 = [CK_TRUE];
    let mut private = [attr(CKA_SIGN, &mut t2)];
    let (mut m, mut ec_public, mut ec_private) = (mech(CKM_EC_KEY_PAIR_GEN), 0, 0);
    let rv = raw!(
        r,
        C_GenerateKeyPair(
            h,
            &mut m,
            public.as_mut_ptr(),
            2,
            private.as_mut_ptr(),
            1,
            &mut ec_public,
            &mut ec_private
        )
    );
    assert_eq!(rv, CKR_OK);
    Keys {
        aes,
        ec_private,
        ec_public,
    }
}

/// One case: the `*Init`, the refused call (after `prefix` data calls, if any).
type Case = (
    &'static str,
    fn(&Raw, CK_SESSION_HANDLE, &Keys) -> CK_RV,
    fn(&Raw, CK_SESSION_HANDLE) -> CK_RV,
);

fn encrypt_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_EncryptInit(h, &mut mech(CKM_AES_ECB), k.aes))
}
fn encrypt_updated(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    let (mut d, mut out, mut n) = ([0u8; 16], [0u8; 16], 16);
    let rv = encrypt_init(r, h, k);
    if rv != CKR_OK {
        return rv;
    }
    raw!(
        r,
        C_EncryptUpdate(h, d.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
    )
}
fn decrypt_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_DecryptInit(h, &mut mech(CKM_AES_ECB), k.aes))
}
fn digest_init(r: &Raw, h: CK_SESSION_HANDLE, _: &Keys) -> CK_RV {
    raw!(r, C_DigestInit(h, &mut mech(CKM_SHA256)))
}
fn ecdsa_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_SignInit(h, &mut mech(CKM_ECDSA), k.ec_private))
}
fn cmac_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_SignInit(h, &mut mech(CKM_AES_CMAC), k.aes))
}
fn verify_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_VerifyInit(h, &mut mech(CKM_ECDSA), k.ec_public))
}
fn cmac_verify_init(r: &Raw, h: CK_SESSION_HANDLE, k: &Keys) -> CK_RV {
    raw!(r, C_VerifyInit(h, &mut mech(CKM_AES_CMAC), k.aes))
}

const CASES: &[Case] = &[
    ("C_EncryptFinal(NULL, NULL)", encrypt_init, |r, h| {
        raw!(r, C_EncryptFinal(h, null_mut(), null_mut()))
    }),
    (
        "C_EncryptFinal(NULL, NULL) after an update",
        encrypt_updated,
        |r, h| raw!(r, C_EncryptFinal(h, null_mut(), null_mut())),
    ),
    ("C_DecryptFinal(buf, NULL)", decrypt_init, |r, h| {
        let mut out = [0u8; 16];
        raw!(r, C_DecryptFinal(h, out.as_mut_ptr(), null_mut()))
    }),
    ("C_Encrypt(NULL, 16, ..)", encrypt_init, |r, h| {
        let (mut out, mut n) = ([0u8; 16], 16);
        raw!(r, C_Encrypt(h, null_mut(), 16, out.as_mut_ptr(), &mut n))
    }),
    ("C_EncryptUpdate(.., NULL)", encrypt_init, |r, h| {
        let mut d = [0u8; 16];
        raw!(
            r,
            C_EncryptUpdate(h, d.as_mut_ptr(), 16, null_mut(), null_mut())
        )
    }),
    ("C_Decrypt(.., NULL)", decrypt_init, |r, h| {
        let mut d = [0u8; 16];
        raw!(r, C_Decrypt(h, d.as_mut_ptr(), 16, null_mut(), null_mut()))
    }),
    ("C_Digest(NULL, 5, ..)", digest_init, |r, h| {
        let (mut out, mut n) = ([0u8; 32], 32);
        raw!(r, C_Digest(h, null_mut(), 5, out.as_mut_ptr(), &mut n))
    }),
    ("C_DigestUpdate(NULL, 5)", digest_init, |r, h| {
        raw!(r, C_DigestUpdate(h, null_mut(), 5))
    }),
    ("C_DigestFinal(buf, NULL)", digest_init, |r, h| {
        let mut out = [0u8; 32];
        raw!(r, C_DigestFinal(h, out.as_mut_ptr(), null_mut()))
    }),
    ("C_Sign(.., NULL) ECDSA", ecdsa_init, |r, h| {
        let mut d = [0u8; 32];
        raw!(r, C_Sign(h, d.as_mut_ptr(), 32, null_mut(), null_mut()))
    }),
    ("C_SignUpdate(NULL, 5) CMAC", cmac_init, |r, h| {
        raw!(r, C_SignUpdate(h, null_mut(), 5))
    }),
    ("C_SignFinal(buf, NULL) CMAC", cmac_init, |r, h| {
        let mut out = [0u8; 16];
        raw!(r, C_SignFinal(h, out.as_mut_ptr(), null_mut()))
    }),
    ("C_Verify(.., NULL, 64)", verify_init, |r, h| {
        let mut d = [0u8; 32];
        raw!(r, C_Verify(h, d.as_mut_ptr(), 32, null_mut(), 64))
    }),
    ("C_VerifyUpdate(NULL, 5) CMAC", cmac_verify_init, |r, h| {
        raw!(r, C_VerifyUpdate(h, null_mut(), 5))
    }),
    ("C_VerifyFinal(NULL, 16) CMAC", cmac_verify_init, |r, h| {
        raw!(r, C_VerifyFinal(h, null_mut(), 16))
    }),
];

/// The cases where SoftHSM itself ends the operation (the others it keeps).
const SOFTHSM_ENDS: &[&str] = &[
    "C_EncryptFinal(NULL, NULL)",
    "C_EncryptFinal(NULL, NULL) after an update",
    "C_DecryptFinal(buf, NULL)",
];

/// (refused call's code, the next `*Init`'s code) for every case, each in a fresh
/// session of `r`.
fn run(r: &Raw, slot: CK_SLOT_ID, k: &Keys) -> Vec<(String, String)> {
    CASES
        .iter()
        .map(|(what, init, bad)| {
            let h = user_session(r, slot);
            assert_eq!(name(init(r, h, k)), "CKR_OK", "{what}: first init");
            let refused = name(bad(r, h));
            let next = name(init(r, h, k));
            assert_eq!(raw!(r, C_CloseSession(h)), CKR_OK);
            (refused, next)
        })
        .collect()
}

#[test]
fn a_data_call_refused_for_its_arguments_leaves_the_operation_as_the_token_does() {
    let _env = common::TestEnv::new();
    let direct = Raw::open(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(raw!(direct, C_Initialize(null_mut())), CKR_OK);
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let slot = gateway_support::slot(&kw);
    // The keys live in a session that stays open (session objects die with it).
    let holder = user_session(&kw, slot);
    let k = keys(&kw, holder);

    let a = run(&direct, slot, &k);
    let b = run(&kw, slot, &k);
    for (((what, _, _), d), w) in CASES.iter().zip(&a).zip(&b) {
        println!("{what:45} direct {d:?}  keywarden {w:?}");
        let next = if SOFTHSM_ENDS.contains(what) {
            "CKR_OK"
        } else {
            "CKR_OPERATION_ACTIVE"
        };
        assert_eq!(
            (d.0.as_str(), d.1.as_str()),
            ("CKR_ARGUMENTS_BAD", next),
            "{what}: SoftHSM"
        );
        assert_eq!(w, d, "{what}: direct vs Keywarden");
    }
    assert_eq!(raw!(kw, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(raw!(direct, C_Finalize(null_mut())), CKR_OK);
}
