//! `[audit] level`: `all` records every call that matters, `security` only logins,
//! administration, key creation and management, refusals and failures, `off`
//! nothing per call; `init --profile transparent` starts at `security`.
mod common;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use serde_json::Value;

fn set_level(env: &common::TestEnv, level: &str) {
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    assert!(conf.contains("level = \"all\""), "{conf}");
    let conf = conf.replacen("level = \"all\"", &format!("level = \"{level}\""), 1);
    std::fs::write(&env.keywarden_conf, conf).unwrap();
}

fn records(env: &common::TestEnv) -> Vec<Value> {
    env.trail_records()
}

/// Signs twice, fails a sign with a mechanism the key cannot do, makes a key: the calls of an
/// application's ordinary day, plus one failure and one key-management call.
fn workload(env: &common::TestEnv) -> Vec<Value> {
    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let key = common::find_one(&s, ObjectClass::PRIVATE_KEY, "k");
    for _ in 0..2 {
        s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).unwrap();
    }
    // An RSA mechanism on an EC key: the token refuses the SignInit.
    assert!(s.sign(&Mechanism::RsaPkcs, key, &[1u8; 32]).is_err());
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Label(b"level-aes".to_vec()),
        ],
    )
    .unwrap();
    drop(s);
    p11.finalize().unwrap();
    records(env)
}

fn functions(records: &[Value], rv: Option<&str>) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["kind"] == "op")
        .filter(|r| rv.is_none_or(|rv| r["rv"] == rv))
        .filter_map(|r| r["function"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn level_all_records_every_operation_and_session() {
    let env = common::token_with_signing_key("k");
    let recs = workload(&env);
    let all = functions(&recs, None);
    for f in [
        "C_OpenSession",
        "C_Login",
        "C_GenerateKey",
        "C_CloseSession",
    ] {
        assert!(all.iter().any(|g| g == f), "{f} missing from {all:?}");
    }
    // Every session's opening names the session, which its closing names too.
    let named = |f: &str| -> Vec<Value> {
        let of = recs
            .iter()
            .filter(|r| r["kind"] == "op" && r["function"] == f);
        of.map(|r| r["session"].clone()).collect()
    };
    let (opened, closed) = (named("C_OpenSession"), named("C_CloseSession"));
    assert!(opened.iter().all(Value::is_u64), "{opened:?}");
    assert!(
        closed.iter().all(|s| opened.contains(s)),
        "{opened:?} {closed:?}"
    );
    // An operation's record is named by the call that ended it.
    let signed = functions(&recs, Some("CKR_OK"));
    assert_eq!(
        signed.iter().filter(|g| *g == "C_Sign").count(),
        2,
        "{recs:?}"
    );
}

#[test]
fn level_security_records_logins_changes_and_failures_only() {
    let env = common::token_with_signing_key("k");
    set_level(&env, "security");
    // token_with_signing_key's own calls were recorded at level all.
    let before = records(&env).len();
    let recs = workload(&env).split_off(before);
    let all = functions(&recs, None);
    assert!(all.iter().any(|f| f == "C_Login"), "{all:?}");
    assert!(all.iter().any(|f| f == "C_GenerateKey"), "{all:?}");
    // The failed sign is there, the two that worked are not; nor are sessions.
    let ok = functions(&recs, Some("CKR_OK"));
    assert!(
        !ok.iter()
            .any(|f| f.starts_with("C_Sign") || f.ends_with("Session")),
        "{ok:?}"
    );
    let failed: Vec<&Value> = recs
        .iter()
        .filter(|r| r["kind"] == "op" && r["rv"] != "CKR_OK")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    // SoftHSM takes CKM_RSA_PKCS for an EC key at C_SignInit and fails the C_Sign.
    assert_eq!(failed[0]["function"], "C_Sign");
    // No operation is tracked at this level: the record names the call, its
    // session and token, and the code; the key and mechanism are not known.
    assert_eq!(failed[0]["rv"], "CKR_GENERAL_ERROR");
    assert!(
        failed[0]["session"].is_u64() && failed[0]["token"].is_string(),
        "{}",
        failed[0]
    );
    // The trail is whole all the same.
    let r = keywarden::audit::verify(&env.path().join("audit"), None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
}

#[test]
fn level_off_records_no_call() {
    let env = common::token_with_signing_key("k");
    set_level(&env, "off");
    // token_with_signing_key's own calls were recorded at level all.
    let before = records(&env).len();
    let recs = workload(&env);
    let new: Vec<&Value> = recs[before..]
        .iter()
        .filter(|r| r["kind"] == "op")
        .collect();
    assert!(new.is_empty(), "{new:?}");
}

#[test]
fn init_starts_transparent_at_security_and_baseline_at_all() {
    for (profile, level) in [
        ("transparent", keywarden::config::AuditLevel::Security),
        ("baseline", keywarden::config::AuditLevel::All),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::keywarden_bin())
            .args(["init", "--dir"])
            .arg(dir.path())
            .args(["--backend", common::SOFTHSM_MODULE, "--profile", profile])
            .env_remove("KEYWARDEN_CONF")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("keywarden.toml")).unwrap();
        let config = keywarden::config::Config::parse(&text).unwrap();
        assert_eq!(config.audit.level, level, "{profile}");
    }
}
