//! The lifecycle through the cdylib in transparent mode (docs/lifecycle.md,
//! "Gateway integration"): no access policy, but a managed key is used only as
//! its state in the store permits — a compromised or suspended key is refused with
//! the same code and the same audit record as in enforce mode, CLI changes reach a
//! running process within 1 s, managed versions stay closed, and unmanaged keys
//! are untouched. Keys are made on SoftHSM directly and adopted with `keywarden
//! keys adopt`.
mod common;
mod lifecycle_support;

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use lifecycle_support::*;
use serde_json::Value;

const LABEL: &str = "app-sign";
const ID1: &[u8] = &[0xa1];
const PRIVATE: ObjectClass = ObjectClass::PRIVATE_KEY;
const PUBLIC: ObjectClass = ObjectClass::PUBLIC_KEY;

/// A transparent-mode token with `LABEL` adopted and an unmanaged `legacy` key.
fn adopted() -> Lc {
    let lc = Lc::transparent();
    let conf = std::fs::read_to_string(&lc.env.keywarden_conf).unwrap();
    assert!(conf.contains("mode = \"transparent\""), "{conf}");
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    lc.direct(|s| generate(s, "legacy", Some(&[0xb2])));
    assert!(lc.ok(&["adopt", LABEL]).contains("version 1"));
    lc
}

fn through_keywarden<T>(f: impl FnOnce(&Session) -> T) -> T {
    let p11 = common::load(&common::keywarden_module());
    let out = f(&user_session(&p11));
    p11.finalize().unwrap();
    out
}

/// The trail's refusals of `function` under `rule`.
fn refusals<'a>(records: &'a [Value], function: &str, rule: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["function"] == function && r["decision"] == "deny" && r["rule"] == rule)
        .collect()
}

#[test]
fn a_compromised_key_stops_signing_in_transparent_mode_within_a_second() {
    let lc = adopted();
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, PRIVATE));
    let legacy = one(by_label(&s, "legacy", PRIVATE));
    sign(&s, key).unwrap();
    assert!(lc
        .ok(&["compromise", "--reason", "leaked", LABEL])
        .contains("compromised"));
    // The same process, the same handle: refused once the watcher sees the store
    // change, with enforce mode's code.
    assert_eq!(
        sign_until(&s, key, false),
        Err(RvError::KeyFunctionNotPermitted)
    );
    // Verification too (no forensic_verify without a policy's cryptoperiod).
    let pubkey = one(by_label(&s, LABEL, PUBLIC));
    assert_eq!(
        verify(&s, pubkey, &[0u8; 64]),
        Err(RvError::KeyFunctionNotPermitted)
    );
    // An unmanaged key is not affected: transparent mode has no policy, so
    // `unmanaged_keys` is "allow".
    let sig = sign(&s, legacy).unwrap();
    verify(&s, one(by_label(&s, "legacy", PUBLIC)), &sig).unwrap();
    drop(s);
    p11.finalize().unwrap();

    let records = lc.trail();
    let refused = refusals(&records, "C_SignInit", "lifecycle.state");
    assert!(!refused.is_empty(), "{records:#?}");
    assert_eq!(refused[0]["rv"], "CKR_KEY_FUNCTION_NOT_PERMITTED");
    assert_eq!(refused[0]["key_label"], LABEL);
    assert_eq!(
        refusals(&records, "C_VerifyInit", "lifecycle.state").len(),
        1
    );
    // Usage of the managed version is counted in transparent mode too.
    assert!(lc.versions(LABEL)[0]["usage"]["ops"].as_u64().unwrap() >= 1);
}

#[test]
fn a_suspended_key_is_refused_and_a_resumed_one_signs_in_transparent_mode() {
    let lc = adopted();
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, PRIVATE));
    sign(&s, key).unwrap();
    lc.ok(&["suspend", "--reason", "audit", LABEL]);
    assert_eq!(
        sign_until(&s, key, false),
        Err(RvError::KeyFunctionNotPermitted)
    );
    lc.ok(&["resume", "--reason", "audit done", LABEL]);
    assert!(sign_until(&s, key, true).is_ok());
    drop(s);
    p11.finalize().unwrap();
}

#[test]
fn a_copy_or_re_id_of_a_compromised_key_does_not_sign_in_transparent_mode() {
    let lc = adopted();
    lc.ok(&["compromise", "--reason", "leaked", LABEL]);
    through_keywarden(|s| {
        let key = one(by_id(s, ID1, PRIVATE));
        assert_eq!(sign(s, key), Err(RvError::KeyFunctionNotPermitted));
        // A copy with a new CKA_ID would be an unmanaged key with the same value.
        let copy = s.copy_object(key, &[Attribute::Token(false), Attribute::Id(vec![0x77])]);
        assert_eq!(rv(copy.expect_err("refused")), RvError::ActionProhibited);
        let edit = s.update_attributes(key, &[Attribute::Id(vec![0x77])]);
        assert_eq!(rv(edit.expect_err("refused")), RvError::ActionProhibited);
        assert_eq!(attr_bytes(s, key, AttributeType::Id), ID1);
        // A copy that stays in the version is one more compromised object.
        let same = s.copy_object(key, &[Attribute::Token(false)]).unwrap();
        assert_eq!(sign(s, same), Err(RvError::KeyFunctionNotPermitted));
        // No other key may take the managed CKA_ID.
        let legacy = one(by_label(s, "legacy", PRIVATE));
        let join = s.update_attributes(legacy, &[Attribute::Id(ID1.to_vec())]);
        assert_eq!(rv(join.expect_err("refused")), RvError::ActionProhibited);
        sign(s, legacy).unwrap();
    });
    let records = lc.trail();
    assert_eq!(
        refusals(&records, "C_CopyObject", "lifecycle.version").len(),
        1,
        "{records:#?}"
    );
    assert_eq!(
        refusals(&records, "C_SetAttributeValue", "lifecycle.version").len(),
        2
    );
}

#[test]
fn a_search_by_label_finds_the_current_version_only_in_transparent_mode() {
    let lc = adopted();
    assert!(lc.ok(&["rotate", LABEL]).contains("version 2"));
    through_keywarden(|s| {
        let current = one(by_label(s, LABEL, PRIVATE));
        assert_ne!(attr_bytes(s, current, AttributeType::Id), ID1);
        sign(s, current).unwrap();
        // By CKA_ID the deactivated version is still there: it verifies, and
        // does not sign.
        let old = one(by_id(s, ID1, PRIVATE));
        assert_eq!(sign(s, old), Err(RvError::KeyFunctionNotPermitted));
        // The unmanaged key sharing no label is found as the token returns it.
        assert_eq!(by_label(s, "legacy", PRIVATE).len(), 1);
        let all = find(s, &[Attribute::Class(PRIVATE)]);
        assert_eq!(all.len(), 2, "current version and legacy: {all:?}");
    });
}
