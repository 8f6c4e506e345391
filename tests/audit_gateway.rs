//! The audit trail written by libkeywarden.so on SoftHSM: every PKCS#11 call the
//! gateway records produces the expected record, the others none (table-driven, in
//! `required` mode so each row's records are on disk when the call returns), and
//! `keywarden audit verify` accepts the result. Enforce mode adds refusals with
//! their rule and the caller's identity.
mod audit_gateway_support;
mod audit_support;
mod common;

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;

use audit_gateway_support::{audit_verify, check, ok, Expect, Trail};
use common::P256;

#[test]
fn every_recorded_function_produces_its_record_and_the_others_none() {
    let env = common::TestEnv::new();
    env.require_audit();
    let mut trail = Trail::new(&env);
    // `keywarden init` (in TestEnv) may have recorded itself already.
    trail.seen = trail.all().len();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);

    let start = trail.new_records();
    assert_eq!(start[0]["kind"], "module");
    assert_eq!(start[0]["what"], "start");
    assert_eq!(start[1]["kind"], "reload");
    assert_eq!(start[1]["what"], "config");
    assert!(start[1]["sha256"].as_str().is_some_and(|h| h.len() == 64));
    assert_eq!(start.len(), 2, "{start:?}");

    // Slot and token information is not recorded.
    p11.get_slot_info(slot).unwrap();
    p11.get_token_info(slot).unwrap();
    p11.get_mechanism_list(slot).unwrap();
    check("slot info", &trail.new_records(), &[]);

    let s = p11.open_rw_session(slot).unwrap();
    let opened = trail.new_records();
    check("open session", &opened, &[ok("C_OpenSession")]);
    // The record names the session it opened, as the session's later records do.
    let handle = opened[0]["session"]
        .as_u64()
        .expect("the opened session's handle");
    s.get_session_info().unwrap();
    check("session info", &trail.new_records(), &[]);

    let wrong = s.login(UserType::User, Some(&common::pin("999999")));
    assert!(wrong.is_err());
    let failed = trail.new_records();
    assert_eq!(failed[0]["session"].as_u64(), Some(handle), "{failed:?}");
    check(
        "wrong PIN",
        &failed,
        &[Expect {
            rv: "CKR_PIN_INCORRECT",
            ..ok("C_Login")
        }],
    );
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    check("login", &trail.new_records(), &[ok("C_Login")]);

    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"aes-1".to_vec()),
                Attribute::Id(vec![0x0a]),
            ],
        )
        .unwrap();
    check(
        "generate key",
        &trail.new_records(),
        &[Expect {
            mechanism: Some("CKM_AES_KEY_GEN"),
            ..ok("C_GenerateKey")
        }],
    );
    let (ec_pub, ec) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Verify(true),
                Attribute::Label(b"ec-1".to_vec()),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::Label(b"ec-1".to_vec()),
                Attribute::Id(vec![0xec, 0x01]),
            ],
        )
        .unwrap();
    check(
        "generate key pair",
        &trail.new_records(),
        &[ok("C_GenerateKeyPair")],
    );

    // Search and attribute reads: the find-by-label hot path is not recorded.
    assert_eq!(common::find_one(&s, ObjectClass::SECRET_KEY, "aes-1"), aes);
    s.get_attributes(aes, &[cryptoki::object::AttributeType::Label])
        .unwrap();
    check("find and read", &trail.new_records(), &[]);

    // Init + (size query) + Encrypt: one record with both lengths.
    let mut iv = [7u8; 12];
    let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
    let ct = s.encrypt(&gcm, aes, &[1u8; 1000]).unwrap();
    assert_eq!(ct.len(), 1016);
    check(
        "AES-GCM encrypt",
        &trail.new_records(),
        &[Expect {
            key: Some("aes-1"),
            key_id: Some("0a"),
            mechanism: Some("CKM_AES_GCM(iv_len=12, aad_len=3, tag_bits=128)"),
            bytes: Some((1000, 1016)),
            ..ok("C_Encrypt")
        }],
    );

    // Init + Update + Update + Final: one record.
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(&[2u8; 100]).unwrap();
    s.digest_update(&[3u8; 200]).unwrap();
    assert_eq!(s.digest_final().unwrap().len(), 32);
    check(
        "multi-part digest",
        &trail.new_records(),
        &[Expect {
            mechanism: Some("CKM_SHA256"),
            bytes: Some((300, 32)),
            ..ok("C_DigestFinal")
        }],
    );
    let hash = [5u8; 32];
    let sig = s.sign(&Mechanism::Ecdsa, ec, &hash).unwrap();
    check(
        "ECDSA sign",
        &trail.new_records(),
        &[Expect {
            key: Some("ec-1"),
            key_id: Some("ec01"),
            mechanism: Some("CKM_ECDSA"),
            bytes: Some((32, 64)),
            ..ok("C_Sign")
        }],
    );
    s.verify(&Mechanism::Ecdsa, ec_pub, &hash, &sig).unwrap();
    let mut bad = sig.clone();
    bad[5] ^= 1;
    assert!(s.verify(&Mechanism::Ecdsa, ec_pub, &hash, &bad).is_err());
    check(
        "verify good and bad",
        &trail.new_records(),
        &[
            Expect {
                key: Some("ec-1"),
                bytes: Some((32, 0)),
                ..ok("C_Verify")
            },
            Expect {
                key: Some("ec-1"),
                rv: "CKR_SIGNATURE_INVALID",
                bytes: Some((32, 0)),
                ..ok("C_Verify")
            },
        ],
    );

    let digest = s.digest(&Mechanism::Sha256, &[9u8; 4096]).unwrap();
    assert_eq!(digest.len(), 32);
    check(
        "digest",
        &trail.new_records(),
        &[Expect {
            mechanism: Some("CKM_SHA256"),
            bytes: Some((4096, 32)),
            ..ok("C_Digest")
        }],
    );

    // A failed *Init is one record, at once.
    assert!(s.sign_init(&Mechanism::Ecdsa, ec_pub).is_err());
    let failed = trail.new_records();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["function"], "C_SignInit");
    assert_ne!(failed[0]["rv"], "CKR_OK");
    assert_eq!(failed[0]["key_label"], "ec-1");

    let mut random = [0u8; 16];
    s.generate_random_slice(&mut random).unwrap();
    check("random", &trail.new_records(), &[]);

    s.update_attributes(aes, &[Attribute::Label(b"aes-renamed".to_vec())])
        .unwrap();
    check(
        "set attribute",
        &trail.new_records(),
        &[Expect {
            key: Some("aes-1"),
            ..ok("C_SetAttributeValue")
        }],
    );
    s.destroy_object(aes).unwrap();
    check(
        "destroy",
        &trail.new_records(),
        &[Expect {
            key: Some("aes-renamed"),
            key_id: Some("0a"),
            ..ok("C_DestroyObject")
        }],
    );

    // An operation still under way when its session closes ends there.
    s.sign_init(&Mechanism::Ecdsa, ec).unwrap();
    check("sign init", &trail.new_records(), &[]);
    s.logout().unwrap();
    check("logout", &trail.new_records(), &[ok("C_Logout")]);
    drop(s);
    check(
        "close session",
        &trail.new_records(),
        &[
            ok("C_CloseSession"),
            Expect {
                key: Some("ec-1"),
                rv: "CKR_SESSION_CLOSED",
                bytes: Some((0, 0)),
                ..ok("C_CloseSession")
            },
        ],
    );

    p11.finalize().unwrap();
    let stop = trail.new_records();
    assert_eq!(stop.len(), 1, "{stop:?}");
    assert_eq!(stop[0]["kind"], "module");
    assert_eq!(stop[0]["what"], "stop");
    audit_verify(&env);
}

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "sign-ok"
roles = ["users"]
ops = ["sign"]
keys = { label = "ok-*" }
mechanisms = ["CKM_ECDSA"]
[[rule]]
id = "nope-visible"
roles = ["users"]
ops = ["encrypt"]
keys = { label = "nope" }
"#;

#[test]
fn enforce_mode_records_refusals_with_their_rule_and_allowed_operations() {
    let (env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    for label in ["ok-1", "nope"] {
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Label(label.into()),
            ],
        )
        .unwrap();
    }
    drop(s);
    p11.finalize().unwrap();
    env.require_audit();
    env.enforce(POLICY);
    let mut trail = Trail::new(&env);
    trail.seen = trail.all().len();

    let p11 = common::load(&common::keywarden_module());
    let start = trail.new_records();
    let whats: Vec<_> = start.iter().map(|r| r["what"].clone()).collect();
    assert_eq!(whats, ["start", "config", "policy"], "{start:?}");
    assert!(start[0]["detail"].as_str().unwrap().contains("enforce"));

    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let ok_key = common::find_one(&s, ObjectClass::PRIVATE_KEY, "ok-1");
    let nope = common::find_one(&s, ObjectClass::PRIVATE_KEY, "nope");
    let opened = trail.new_records();
    check(
        "open, login, find",
        &opened,
        &[ok("C_OpenSession"), ok("C_Login")],
    );
    // The open's record names the session it opened, as the login's does.
    assert!(opened[0]["session"].is_u64(), "{opened:?}");
    assert_eq!(opened[0]["session"], opened[1]["session"], "{opened:?}");

    s.sign(&Mechanism::Ecdsa, ok_key, &[1u8; 32]).unwrap();
    check(
        "allowed sign",
        &trail.new_records(),
        &[Expect {
            key: Some("ok-1"),
            mechanism: Some("CKM_ECDSA"),
            bytes: Some((32, 64)),
            ..ok("C_Sign")
        }],
    );
    assert!(s.sign(&Mechanism::Ecdsa, nope, &[1u8; 32]).is_err());
    assert!(s.sign(&Mechanism::EcdsaSha256, ok_key, &[1u8; 32]).is_err());
    check(
        "refused signs",
        &trail.new_records(),
        &[
            Expect {
                key: Some("nope"),
                rv: "CKR_KEY_FUNCTION_NOT_PERMITTED",
                deny_rule: Some("default-deny"),
                ..ok("C_SignInit")
            },
            Expect {
                key: Some("ok-1"),
                rv: "CKR_MECHANISM_INVALID",
                deny_rule: Some("default-deny"),
                mechanism: Some("CKM_ECDSA_SHA256"),
                ..ok("C_SignInit")
            },
        ],
    );
    // A refused destroy: recorded once, as a refusal.
    assert!(s.destroy_object(nope).is_err());
    let refused = trail.new_records();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["decision"], "deny");
    assert_eq!(refused[0]["function"], "C_DestroyObject");
    assert_eq!(refused[0]["key_label"], "nope");
    drop(s);
    p11.finalize().unwrap();
    audit_verify(&env);
}
