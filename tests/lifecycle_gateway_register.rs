//! Auto-registration through the cdylib in enforce mode (docs/lifecycle.md): a token
//! key generated with a label becomes version 1 of a managed key, with a `CKA_ID`
//! assigned when the template has none and the classification creation policy
//! gave it — which then applies to its use even after the policy changes.
mod common;
mod lifecycle_support;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use lifecycle_support::*;

const PRIVATE: ObjectClass = ObjectClass::PRIVATE_KEY;
const PUBLIC: ObjectClass = ObjectClass::PUBLIC_KEY;

const KEYSETS: &str = r#"
[[keyset]]
name = "high"
label = "hi-*"
classification = "High"
owner = "users"
"#;

#[test]
fn a_generated_key_is_registered_with_an_assigned_cka_id() {
    let lc = Lc::new(&policy("unmanaged_keys = \"deny\"", KEYSETS));
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let (public, private) = generate(&s, "app-new", None);
    // Registered, so managed: it signs at once although unmanaged keys may not.
    let sig = sign(&s, private).unwrap();
    verify(&s, public, &sig).unwrap();
    // Both halves carry the one assigned CKA_ID.
    let id = attr_bytes(&s, private, AttributeType::Id);
    assert_eq!(attr_bytes(&s, public, AttributeType::Id), id);
    assert_eq!(id.len(), 16);
    assert_eq!(&id[..2], b"KW");
    // The version's activation day as CKA_START_DATE (read on the public key:
    // SoftHSM fails some date reads on private key objects).
    match s
        .get_attributes(public, &[AttributeType::StartDate])
        .unwrap()
        .remove(0)
    {
        Attribute::StartDate(d) => assert!(!d.is_empty(), "CKA_START_DATE empty"),
        other => panic!("{other:?}"),
    }
    // An application-chosen CKA_ID is kept.
    generate(&s, "app-own-id", Some(&[0xc3, 0x01]));
    // A session key and a key without a label are not registered.
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(P256.to_vec()),
            Attribute::Label(b"app-temp".to_vec()),
        ],
        &[
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Label(b"app-temp".to_vec()),
        ],
    )
    .unwrap();
    let (_, nameless) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    assert_eq!(sign(&s, nameless), Err(RvError::KeyFunctionNotPermitted));
    // A secret key too (C_GenerateKey).
    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Label(b"hi-aes".to_vec()),
            ],
        )
        .unwrap();
    let aes_id = attr_bytes(&s, aes, AttributeType::Id);
    drop(s);
    p11.finalize().unwrap();
    // Each registration's intent (docs/lifecycle.md, "Rotation") went with it:
    // nothing is left for reconcile to remove.
    let dry = lc.run(&["reconcile", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        !String::from_utf8_lossy(&dry.stderr).contains("orphaned"),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );

    let list = lc.json(&["list"]);
    let row = |label: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .unwrap_or_else(|| panic!("{label} not listed: {list}"))
            .clone()
    };
    let k = row("app-new");
    assert_eq!(k["state"], "active");
    assert_eq!(k["version"], 1);
    assert_eq!(k["cka_id"], hex(&id));
    assert_eq!(k["algorithm"], "CKK_EC");
    assert_eq!(k["curve"], "P-256");
    // No keyset: the default level creation policy gave it.
    assert_eq!(k["classification"], "low");
    assert_eq!(row("app-own-id")["cka_id"], "c301");
    let a = row("hi-aes");
    assert_eq!(a["cka_id"], hex(&aes_id));
    assert_eq!(a["classification"], "high");
    assert_eq!(a["owner"], "users");
    assert_eq!(a["size_bits"], 256);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    // The table a person reads shows the same.
    let table = lc.ok(&["list"]);
    assert!(
        table.contains("app-new") && table.contains("High"),
        "{table}"
    );
}

#[test]
fn the_recorded_classification_outlives_a_policy_change() {
    let lc = Lc::new(&policy("", KEYSETS));
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let (_, registered) = generate(&s, "hi-sign", None);
    sign(&s, registered).unwrap();
    drop(s);
    p11.finalize().unwrap();
    // The same kind of key made behind Keywarden's back: unmanaged, nothing recorded.
    lc.direct(|s| generate(s, "hi-other", Some(&[0xd4])));

    // The keyset loses its classification and callers are cleared to Medium only.
    lc.set_policy(
        &policy(
            "",
            KEYSETS.replace("classification = \"High\"\n", "").as_str(),
        )
        .replace("clearance = \"High\"", "clearance = \"Medium\""),
    );
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    // The store's "high" still applies to the registered key (MAC): a caller
    // cleared to Medium may not use it, so searches do not show it either
    // (docs/policy.md, "Visibility").
    assert_eq!(by_label(&s, "hi-sign", PRIVATE), vec![]);
    assert_eq!(by_label(&s, "hi-sign", PUBLIC), vec![]);
    // The unregistered one is at the default level now: visible, and it signs.
    sign(&s, one(by_label(&s, "hi-other", PRIVATE))).unwrap();
    drop(s);
    p11.finalize().unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
