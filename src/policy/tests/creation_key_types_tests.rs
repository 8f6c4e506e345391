//! Creation policy on key types and sizes: RSA moduli, curves, DES and AES.

use pkcs11_sys::*;

use super::creation_tests::{pair, rsa, single, ul, POLICY};
use super::*;
use crate::abi::{Attr, EcCurve};

#[test]
fn rsa_1024_refused_rsa_2048_allowed_with_forced_protection() {
    let p = compile(POLICY);
    let d = rsa(&p, 1024);
    assert!(!d.decision.allow);
    assert_eq!(d.decision.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_eq!(d.decision.rule.to_string(), "creation.key-size");
    assert!(d.force.is_empty());
    let d = rsa(&p, 2048);
    assert!(d.decision.allow, "{:?}", d.decision);
    assert_eq!(d.decision.rule.to_string(), "make");
    assert_eq!(d.classification, Level::Medium);
    assert!(!d.verify_after);
    let mut force = d.force.clone();
    force.sort_unstable();
    let mut want = vec![
        (CKA_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_PRIVATE, true),
    ];
    want.sort_unstable();
    assert_eq!(force, want);
}

#[test]
fn curves_and_des() {
    let p = compile(POLICY);
    let ec = |curve: EcCurve| {
        pair(
            &p,
            CKM_EC_KEY_PAIR_GEN,
            &[
                Attr::new(CKA_EC_PARAMS, curve.der_oid()),
                Attr::new(CKA_LABEL, b"app-ec"),
            ],
            &[Attr::new(CKA_LABEL, b"app-ec")],
        )
    };
    let d = ec(EcCurve::P224);
    assert_eq!(
        (d.decision.allow, d.decision.rv),
        (false, CKR_TEMPLATE_INCONSISTENT)
    );
    assert!(ec(EcCurve::P256).decision.allow);
    assert!(ec(EcCurve::P384).decision.allow);
    // P-192 and explicit parameters are not curves Keywarden can name: the size is
    // unknown, which a generation may not leave open.
    let p192 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01];
    let d = pair(
        &p,
        CKM_EC_KEY_PAIR_GEN,
        &[
            Attr::new(CKA_EC_PARAMS, &p192),
            Attr::new(CKA_LABEL, b"app-ec"),
        ],
        &[Attr::new(CKA_LABEL, b"app-ec")],
    );
    assert_eq!(
        (d.decision.allow, d.decision.rv),
        (false, CKR_TEMPLATE_INCONSISTENT)
    );
    // DES/3DES generation: the mechanism implies the type → CKR_MECHANISM_INVALID.
    for mech in [CKM_DES_KEY_GEN, CKM_DES3_KEY_GEN, CKM_DES2_KEY_GEN] {
        let d = single(
            &p,
            "alice",
            CreationKind::Generate,
            Some(mech),
            &[Attr::new(CKA_LABEL, b"app-des")],
        );
        assert_eq!(
            (d.decision.allow, d.decision.rv),
            (false, CKR_MECHANISM_INVALID),
            "{mech:#x}"
        );
        assert_eq!(d.decision.rule.to_string(), "creation.key-type");
    }
    // A DES key imported by template → CKR_TEMPLATE_INCONSISTENT.
    let class = ul(CKO_SECRET_KEY);
    let des = ul(CKK_DES3);
    let d = single(
        &p,
        "alice",
        CreationKind::Create,
        None,
        &[
            Attr::new(CKA_CLASS, &class),
            Attr::new(CKA_KEY_TYPE, &des),
            Attr::new(CKA_VALUE, &[1; 24]),
            Attr::new(CKA_LABEL, b"app-des"),
        ],
    );
    assert_eq!(
        (d.decision.allow, d.decision.rv),
        (false, CKR_TEMPLATE_INCONSISTENT)
    );
    // An unknown generation mechanism without a key type: refused, not guessed.
    let d = single(
        &p,
        "alice",
        CreationKind::Generate,
        Some(0x8000_1234),
        &[Attr::new(CKA_LABEL, b"app-x")],
    );
    assert_eq!(d.decision.rv, CKR_MECHANISM_INVALID);
}

#[test]
fn aes_sizes() {
    let p = compile(POLICY);
    let aes = |bytes: CK_ULONG| {
        let len = ul(bytes);
        single(
            &p,
            "alice",
            CreationKind::Generate,
            Some(CKM_AES_KEY_GEN),
            &[
                Attr::new(CKA_VALUE_LEN, &len),
                Attr::new(CKA_LABEL, b"app-aes"),
            ],
        )
    };
    assert_eq!(aes(8).decision.rule.to_string(), "creation.key-size");
    assert!(aes(16).decision.allow);
    assert!(aes(32).decision.allow);
    // Without CKA_VALUE_LEN the size is unknown: a generation is refused ...
    let d = single(
        &p,
        "alice",
        CreationKind::Generate,
        Some(CKM_AES_KEY_GEN),
        &[Attr::new(CKA_LABEL, b"app-aes")],
    );
    assert!(!d.decision.allow);
    // ... an unwrap is allowed but must be verified afterwards.
    let class = ul(CKO_SECRET_KEY);
    let kt = ul(CKK_AES);
    let d = single(
        &p,
        "alice",
        CreationKind::Unwrap,
        Some(CKM_AES_KEY_WRAP),
        &[
            Attr::new(CKA_CLASS, &class),
            Attr::new(CKA_KEY_TYPE, &kt),
            Attr::new(CKA_LABEL, b"app-aes"),
        ],
    );
    assert!(d.decision.allow, "{:?}", d.decision);
    assert!(d.verify_after);
    let mut made = key("app-aes", CKO_SECRET_KEY);
    made.key_type = Some(CKK_AES);
    made.bits = Some(64);
    assert!(!p.check_new_key(&made).allow);
    made.bits = Some(256);
    assert!(p.check_new_key(&made).allow);
}
