//! Enforce mode through the cdylib on SoftHSM: key use decided at `*Init`,
//! destroy, administrative functions, login tracking, and start-up failures.
//!
//! Keys are made while the module is transparent, then the module is finalised,
//! the configuration switched to `mode = "enforce"` and the module initialised again
//! (C_Initialize reads the configuration).
mod common;
#[macro_use]
mod gateway_support;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use gateway_support::code;

/// DER OID of P-256 (RFC 5480).
use common::P256;

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
id = "encrypt-other"
roles = ["users"]
ops = ["encrypt"]
keys = { label = "other" }
[[rule]]
id = "verify-public-only"
roles = ["users"]
ops = ["verify"]
when = { login = "public" }
"#;

fn ec_pair(s: &Session, label: &str) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::EcParams(P256.to_vec()),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap()
}

/// The handle of the key of `class` labelled `label`, found through `s`. Handles
/// do not survive a C_Finalize, and SoftHSM forgets them when the last session on
/// the token closes, so tests look them up in a session they keep open.
fn find(s: &Session, class: cryptoki::object::ObjectClass, label: &str) -> ObjectHandle {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

const PRIVATE: cryptoki::object::ObjectClass = cryptoki::object::ObjectClass::PRIVATE_KEY;
const PUBLIC: cryptoki::object::ObjectClass = cryptoki::object::ObjectClass::PUBLIC_KEY;

/// Two EC pairs made in transparent mode, then the module restarted in enforce mode.
fn setup() -> (common::TestEnv, Pkcs11, Slot) {
    let (env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    ec_pair(&s, "ok-sign");
    ec_pair(&s, "other");
    drop(s);
    p11.finalize().unwrap();
    env.enforce(POLICY);
    let p11 = common::load(&common::keywarden_module());
    (env, p11, slot)
}

#[test]
fn sign_is_decided_at_sign_init_by_key_and_mechanism() {
    let (_env, p11, slot) = setup();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let ok = find(&s, PRIVATE, "ok-sign");
    let other = find(&s, PRIVATE, "other");
    let digest = [7u8; 32];
    let sig = s.sign(&Mechanism::Ecdsa, ok, &digest).unwrap();
    assert_eq!(sig.len(), 64);
    // The same again: served from the facts cache.
    s.sign(&Mechanism::Ecdsa, ok, &digest).unwrap();
    assert_eq!(
        code(s.sign(&Mechanism::Ecdsa, other, &digest)),
        RvError::KeyFunctionNotPermitted
    );
    // The rule allows the key but not this mechanism: default deny names it.
    assert_eq!(
        code(s.sign(&Mechanism::EcdsaSha256, ok, b"data")),
        RvError::MechanismInvalid
    );
    // No rule allows destroy.
    assert_eq!(code(s.destroy_object(ok)), RvError::ActionProhibited);
    // A handle the token never issued is answered as the token would.
    // SAFETY: a plain integer handle; the token checks it.
    let bogus = unsafe { ObjectHandle::new_from_raw(0x7fff_fff0) };
    assert_eq!(
        code(s.sign(&Mechanism::Ecdsa, bogus, &digest)),
        RvError::KeyHandleInvalid
    );
    // Still usable after the refusals.
    s.sign(&Mechanism::Ecdsa, ok, &digest).unwrap();
}

#[test]
fn login_state_is_tracked_per_token_and_follows_logout_and_last_close() {
    let (_env, p11, slot) = setup();
    let digest = [1u8; 32];
    let sig = [0u8; 64];
    let a = p11.open_rw_session(slot).unwrap();
    let b = p11.open_ro_session(slot).unwrap();
    let ok_pub = find(&a, PUBLIC, "ok-sign");
    // Public: the verify rule applies (the signature is wrong, so the token says so).
    assert_eq!(
        code(a.verify(&Mechanism::Ecdsa, ok_pub, &digest, &sig)),
        RvError::SignatureInvalid
    );
    // A login in one session is the login of every session on the token (§5.6).
    a.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert_eq!(
        code(b.verify(&Mechanism::Ecdsa, ok_pub, &digest, &sig)),
        RvError::KeyFunctionNotPermitted
    );
    b.logout().unwrap();
    assert_eq!(
        code(a.verify(&Mechanism::Ecdsa, ok_pub, &digest, &sig)),
        RvError::SignatureInvalid
    );
    a.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    // Closing every session logs out: a new session is public again.
    drop(a);
    drop(b);
    let c = p11.open_ro_session(slot).unwrap();
    let ok_pub = find(&c, PUBLIC, "ok-sign");
    assert_eq!(
        code(c.verify(&Mechanism::Ecdsa, ok_pub, &digest, &sig)),
        RvError::SignatureInvalid
    );
}

#[test]
fn admin_functions_and_creation_are_refused_without_a_rule() {
    let (_env, p11, slot) = setup();
    let s = p11.open_rw_session(slot).unwrap();
    assert_eq!(
        code(s.login(UserType::So, Some(&common::pin(common::SO_PIN)))),
        RvError::ActionProhibited
    );
    assert_eq!(
        code(s.set_pin(&common::pin(common::USER_PIN), &common::pin("5678"))),
        RvError::ActionProhibited
    );
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    // No generate rule: refused whatever the template.
    let r = s.generate_key(
        &Mechanism::AesKeyGen,
        &[Attribute::ValueLen(32.into()), Attribute::Token(false)],
    );
    assert_eq!(code(r), RvError::TemplateInconsistent);
}

#[test]
fn an_unusable_policy_file_fails_c_initialize() {
    let env = common::TestEnv::new();
    let file = env.enforce("version = 1\n[[rule]]\nid = \"x\"\nops = [\"fly\"]\n");
    let p11 = Pkcs11::new(common::keywarden_module()).unwrap();
    let r = p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    assert_eq!(code(r), RvError::GeneralError);
    std::fs::remove_file(&file).unwrap();
    let r = p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    assert_eq!(code(r), RvError::GeneralError);
}

/// Visibility: a key no rule lets the caller use is left out of searches (the
/// count stays right across the hidden ones) and still refused by handle.
#[test]
fn a_hidden_key_is_not_found_and_is_refused_by_handle() {
    let (env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    // Hidden keys first, so a whole batch of a small buffer is filtered out.
    for i in 0..5 {
        ec_pair(&s, &format!("hidden-{i}"));
    }
    ec_pair(&s, "ok-sign");
    ec_pair(&s, "other");
    drop(s);
    p11.finalize().unwrap();
    env.enforce(POLICY);
    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let label = |h| {
        s.get_attributes(h, &[cryptoki::object::AttributeType::Label])
            .unwrap()
    };
    // cryptoki asks for 10 handles at a time: the first batch is mostly hidden.
    let found = s.find_objects(&[Attribute::Class(PRIVATE)]).unwrap();
    let mut labels: Vec<_> = found.iter().map(|h| label(*h)).collect();
    labels.sort_by_key(|l| format!("{l:?}"));
    assert_eq!(
        labels,
        vec![
            vec![Attribute::Label(b"ok-sign".to_vec())],
            vec![Attribute::Label(b"other".to_vec())]
        ]
    );
    // Public keys: ok-sign (sign rule) and other (encrypt rule); "verify" is
    // allowed only in public sessions, so the hidden pairs stay hidden.
    assert_eq!(
        s.find_objects(&[Attribute::Class(PUBLIC)]).unwrap().len(),
        2
    );
    // One at a time: the count is never 0 before the last visible object.
    let one = std::num::NonZeroUsize::new(1).unwrap();
    let one_by_one = s
        .iter_objects_with_cache_size(&[Attribute::Class(PRIVATE)], one)
        .unwrap()
        .count();
    assert_eq!(one_by_one, 2);
    // A handle obtained another way is still refused at use: SoftHSM numbers
    // objects densely, so the handles around the visible ones are the hidden keys.
    let visible = found.iter().map(|h| h.handle()).max().unwrap();
    let found: Vec<u64> = found.iter().map(|h| h.handle()).collect();
    let mut refused = 0;
    for h in visible.saturating_sub(12)..visible + 12 {
        if found.contains(&h) {
            continue;
        }
        // SAFETY: a plain integer handle; the module checks it.
        let h = unsafe { ObjectHandle::new_from_raw(h) };
        if code(s.sign(&Mechanism::Ecdsa, h, &[0u8; 32])) == RvError::KeyFunctionNotPermitted {
            refused += 1;
        }
    }
    assert!(refused >= 5, "{refused} hidden keys refused by handle");
}
