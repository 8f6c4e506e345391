//! Enforce mode through the cdylib on SoftHSM: named identities. A PIN
//! `name:secret` is checked against Keywarden's credential store, the token is
//! logged in with the PIN from `[backend] pin_file`, and the identity decides.
mod common;
#[macro_use]
mod gateway_support;

use std::os::unix::fs::PermissionsExt;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use gateway_support::code;

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[principals]
alice = { identity = "alice" }
[roles]
signers = { members = ["alice"], clearance = "High" }
[[rule]]
id = "signers-sign"
roles = ["signers"]
ops = ["sign"]
"#;

fn users_add(env: &common::TestEnv, name: &str, secret: &str) {
    let mut c = env.command(common::keywarden_bin());
    c.args(["users", "add", name]);
    let out = common::run_with_stdin(c, &format!("{secret}\n"));
    assert!(
        out.status.success(),
        "users add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `pin_file` (mode 0600, holding the user PIN) to the configuration.
fn with_pin_file(env: &common::TestEnv, mode: u32) {
    let pin_file = env.path().join("token.pin");
    std::fs::write(&pin_file, format!("{}\n", common::USER_PIN)).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(mode)).unwrap();
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let conf = conf.replacen(
        "[backend]\n",
        &format!("[backend]\npin_file = \"{}\"\n", pin_file.display()),
        1,
    );
    std::fs::write(&env.keywarden_conf, conf).unwrap();
}

fn setup(
    pin_mode: u32,
) -> (
    common::TestEnv,
    cryptoki::context::Pkcs11,
    cryptoki::slot::Slot,
) {
    let env = common::token_with_signing_key("k");
    users_add(&env, "alice", "alice-secret-1");
    users_add(&env, "bob", "bob-secret-12");
    with_pin_file(&env, pin_mode);
    env.enforce(POLICY);
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    (env, p11, slot)
}

#[test]
fn a_named_identity_logs_in_and_is_told_apart() {
    let (env, p11, slot) = setup(0o600);
    let s = p11.open_rw_session(slot).unwrap();
    let private = [Attribute::Class(ObjectClass::PRIVATE_KEY)];

    s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))
        .unwrap();
    let found = s.find_objects(&private).unwrap();
    assert_eq!(found.len(), 1);
    let key = found[0];
    s.sign(&Mechanism::Ecdsa, key, &[3u8; 32]).unwrap();
    s.logout().unwrap();

    // Bob is a valid identity without the role: the key is hidden and refused.
    s.login(UserType::User, Some(&common::pin("bob:bob-secret-12")))
        .unwrap();
    assert!(s.find_objects(&private).unwrap().is_empty());
    assert_eq!(
        code(s.sign(&Mechanism::Ecdsa, key, &[3u8; 32])),
        RvError::KeyFunctionNotPermitted
    );
    s.logout().unwrap();

    // Wrong secret, unknown name: CKR_PIN_INCORRECT, and nothing reached the token.
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("alice:wrong-secret")))),
        RvError::PinIncorrect
    );
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("carol:whatever-1")))),
        RvError::PinIncorrect
    );
    // A plain PIN still works, as an unnamed user (not a signer).
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert_eq!(
        code(s.sign(&Mechanism::Ecdsa, key, &[3u8; 32])),
        RvError::KeyFunctionNotPermitted
    );
    drop(s);
    p11.finalize().unwrap();

    // The refused logins are recorded with the name they tried, never the secret.
    let mut trail = String::new();
    for f in keywarden::audit::list_files(&env.path().join("audit")).unwrap() {
        trail += &std::fs::read_to_string(f).unwrap();
    }
    let refused: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["function"] == "C_Login" && r["rv"] == "CKR_PIN_INCORRECT")
        .collect();
    let tried: Vec<&str> = refused
        .iter()
        .filter_map(|r| r["identity"].as_str())
        .collect();
    assert_eq!(tried, ["alice", "carol"], "{refused:?}");
    assert!(!trail.contains("wrong-secret") && !trail.contains("whatever-1"));
}

#[test]
fn a_pin_file_others_can_read_is_refused() {
    let (_env, p11, slot) = setup(0o644);
    let s = p11.open_rw_session(slot).unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))),
        RvError::GeneralError
    );
    // Not logged in: a plain login still works.
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
}

#[test]
fn a_pin_file_another_user_owns_or_can_write_is_refused() {
    let (env, p11, slot) = setup(0o600);
    let pin_file = env.path().join("token.pin");
    let s = p11.open_rw_session(slot).unwrap();
    // Whoever owns it can put another PIN in it (or swap it for a link).
    std::os::unix::fs::chown(&pin_file, Some(4242), None).unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))),
        RvError::GeneralError
    );
    std::os::unix::fs::chown(&pin_file, Some(0), None).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o602)).unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))),
        RvError::GeneralError
    );
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))
        .unwrap();
}

/// A key registered by the module names the identity that generated it: as the
/// lifecycle record's actor and as the call record's identity (docs/audit.md).
#[test]
fn a_registration_is_recorded_with_the_named_identity_as_actor() {
    let env = common::TestEnv::new();
    users_add(&env, "alice", "alice-secret-1");
    with_pin_file(&env, 0o600);
    env.enforce(&POLICY.replace("ops = [\"sign\"]", "ops = [\"*\"]"));
    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin("alice:alice-secret-1")))
        .unwrap();
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(true),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Label(b"alice-aes".to_vec()),
        ],
    )
    .unwrap();
    drop(s);
    p11.finalize().unwrap();

    let mut records = Vec::new();
    for f in keywarden::audit::list_files(&env.path().join("audit")).unwrap() {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            records.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
        }
    }
    let reg: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "lifecycle" && r["action"] == "register")
        .collect();
    assert_eq!(reg.len(), 1, "{records:?}");
    assert_eq!(reg[0]["actor"], "alice", "{}", reg[0]);
    assert_eq!(reg[0]["key_label"], "alice-aes", "{}", reg[0]);
    let generated: Vec<_> = records
        .iter()
        .filter(|r| r["function"] == "C_GenerateKey")
        .collect();
    assert_eq!(generated.len(), 1, "{records:?}");
    assert_eq!(generated[0]["identity"], "alice");
    assert_eq!(generated[0]["new_key_label"], "alice-aes");
    assert_eq!(generated[0]["new_key_id"], reg[0]["key_id"]);
    assert_eq!(generated[0]["new_key_version"], 1);
}
