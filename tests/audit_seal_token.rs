//! The token-backed audit seal against a real SoftHSM token: `keywarden audit
//! init-seal-key` and `keywarden init --audit-token` create the key with the
//! designed attributes; `TokenSealer` over a `Backend` seals heads that verify with
//! `seal-key.pub`; a trail it sealed verifies with `keywarden audit verify`, and a
//! flipped signature byte or a consistent rewrite without the token is caught.

mod audit_support;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use keywarden::audit::{
    AuditLog, Digest, EcdsaVerifier, HmacSealer, Mode, Seal, Sealer, TokenSealer, SEAL_KEY_ID,
    SEAL_KEY_LABEL, SEAL_PUB_FILE,
};
use keywarden::backend::{Backend, LoadedModule};

use common::{TestEnv, SOFTHSM_MODULE, TOKEN_LABEL, USER_PIN};

fn pin_file(env: &TestEnv) -> PathBuf {
    let p = env.path().join("pin");
    std::fs::write(&p, format!("{USER_PIN}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn keywarden(env: &TestEnv, args: &[&str]) -> Output {
    env.command(common::keywarden_bin())
        .args(args)
        .output()
        .unwrap()
}

fn init_seal_key(env: &TestEnv) -> Output {
    let pin = pin_file(env);
    keywarden(
        env,
        &[
            "audit",
            "--config",
            env.keywarden_conf.to_str().unwrap(),
            "init-seal-key",
            "--token",
            TOKEN_LABEL,
            "--pin-file",
            pin.to_str().unwrap(),
        ],
    )
}

fn audit_dir(env: &TestEnv) -> PathBuf {
    env.path().join("audit")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn backend() -> Arc<dyn Backend> {
    let b = LoadedModule::load(Path::new(SOFTHSM_MODULE)).unwrap();
    b.initialize().unwrap();
    Arc::new(b)
}

#[test]
fn init_seal_key_creates_a_private_key_that_cannot_be_changed_copied_or_destroyed() {
    let env = TestEnv::new();
    let out = init_seal_key(&env);
    assert!(out.status.success(), "{}", text(&out));
    let pub_file = audit_dir(&env).join(SEAL_PUB_FILE);
    let verifier = EcdsaVerifier::from_file(&pub_file).unwrap();
    assert!(text(&out).contains(verifier.key_id()), "{}", text(&out));

    let p11 = common::load(Path::new(SOFTHSM_MODULE));
    let slot = common::test_slot(&p11);
    let template = |class| {
        vec![
            Attribute::Class(class),
            Attribute::Label(SEAL_KEY_LABEL.as_bytes().to_vec()),
            Attribute::Id(SEAL_KEY_ID.to_vec()),
        ]
    };
    // A public session does not even see the private half: CKA_PRIVATE.
    let public_session = p11.open_ro_session(slot).unwrap();
    assert!(public_session
        .find_objects(&template(ObjectClass::PRIVATE_KEY))
        .unwrap()
        .is_empty());
    drop(public_session);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(
        cryptoki::session::UserType::User,
        Some(&common::pin(common::USER_PIN)),
    )
    .unwrap();
    let private = s.find_objects(&template(ObjectClass::PRIVATE_KEY)).unwrap();
    assert_eq!(private.len(), 1);
    let attrs = s
        .get_attributes(
            private[0],
            &[
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Sign,
                AttributeType::Token,
                AttributeType::Modifiable,
                AttributeType::Copyable,
                AttributeType::Destroyable,
            ],
        )
        .unwrap();
    let mut seen = 0;
    for a in attrs {
        match a {
            Attribute::Private(v) => assert!(v, "CKA_PRIVATE"),
            Attribute::Sensitive(v) => assert!(v, "CKA_SENSITIVE"),
            Attribute::Extractable(v) => assert!(!v, "CKA_EXTRACTABLE"),
            Attribute::Sign(v) => assert!(v, "CKA_SIGN"),
            Attribute::Token(v) => assert!(v, "CKA_TOKEN"),
            Attribute::Modifiable(v) => assert!(!v, "CKA_MODIFIABLE"),
            Attribute::Copyable(v) => assert!(!v, "CKA_COPYABLE"),
            Attribute::Destroyable(v) => assert!(!v, "CKA_DESTROYABLE"),
            other => panic!("{other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 8);
    // Even straight on the token, with the user logged in.
    for h in [
        private[0],
        s.find_objects(&template(ObjectClass::PUBLIC_KEY)).unwrap()[0],
    ] {
        assert!(
            s.destroy_object(h).is_err(),
            "CKA_DESTROYABLE=FALSE honoured"
        );
        assert!(
            s.copy_object(h, &[]).is_err(),
            "CKA_COPYABLE=FALSE honoured"
        );
        assert!(s
            .update_attributes(h, &[Attribute::Label(b"x".to_vec())])
            .is_err());
    }
    // The exported point is the token's.
    let public = s.find_objects(&template(ObjectClass::PUBLIC_KEY)).unwrap();
    assert_eq!(public.len(), 1);
    let point = match &s
        .get_attributes(public[0], &[AttributeType::EcPoint])
        .unwrap()[..]
    {
        [Attribute::EcPoint(p)] => keywarden::audit::unwrap_ec_point(p).to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(point, verifier.point());
    drop(s);

    // A second run refuses and leaves the file alone.
    let before = std::fs::read(&pub_file).unwrap();
    let again = init_seal_key(&env);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists"), "{}", text(&again));
    assert_eq!(std::fs::read(&pub_file).unwrap(), before);
}

#[test]
fn init_with_audit_token_writes_seal_token_and_the_public_key() {
    let env = TestEnv::new();
    let pin = pin_file(&env);
    let dir = env.path().join("kw2");
    let out = keywarden(
        &env,
        &[
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--backend",
            SOFTHSM_MODULE,
            "--audit-token",
            TOKEN_LABEL,
            "--pin-file",
            pin.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let conf = keywarden::config::Config::load(&dir.join("keywarden.toml")).unwrap();
    assert_eq!(conf.audit.seal_token.as_deref(), Some(TOKEN_LABEL));
    // The module logs in with it to use the private seal key.
    assert_eq!(conf.audit.seal_pin_file.as_deref(), Some(pin.as_path()));
    EcdsaVerifier::from_file(&dir.join("audit").join(SEAL_PUB_FILE)).unwrap();
}

#[test]
fn token_sealer_needs_the_key_and_its_seals_verify_with_the_pub_file() {
    let env = TestEnv::new();
    let b = backend();
    let pin = pin_file(&env);
    let missing = TokenSealer::new(Arc::clone(&b), TOKEN_LABEL, Some(&pin)).unwrap_err();
    assert!(missing.to_string().contains("init-seal-key"), "{missing}");
    assert!(TokenSealer::new(Arc::clone(&b), "no-such-token", Some(&pin)).is_err());

    // What the gateway calls at C_Initialize: with seal_token set, a missing key
    // fails (closed), not a fall-back to no seals.
    let mut config = keywarden::config::Config::load(&env.keywarden_conf).unwrap();
    assert!(keywarden::audit::sealer_for(&config, &b).unwrap().is_none());
    config.audit.seal_token = Some(TOKEN_LABEL.into());
    assert!(keywarden::audit::sealer_for(&config, &b).is_err());

    let out = init_seal_key(&env);
    assert!(out.status.success(), "{}", text(&out));
    // The key is private: without [backend] pin_file the module cannot log in.
    let Err(no_pin) = keywarden::audit::sealer_for(&config, &b) else {
        panic!("a private seal key without pin_file")
    };
    assert!(no_pin.to_string().contains("pin_file"), "{no_pin}");
    config.backend.pin_file = Some(pin.clone());
    assert!(keywarden::audit::sealer_for(&config, &b).unwrap().is_some());
    let sealer = TokenSealer::new(Arc::clone(&b), TOKEN_LABEL, Some(&pin)).unwrap();
    let verifier = EcdsaVerifier::from_file(&audit_dir(&env).join(SEAL_PUB_FILE)).unwrap();
    assert_eq!(sealer.key_id(), verifier.key_id());
    for i in 0..3u8 {
        let head = [i; 32];
        let seal = sealer.seal(&head).unwrap();
        assert_eq!(seal.sig.len(), 64);
        assert_eq!(verifier.verify(&head, &seal), Ok(true));
        assert!(verifier.verify(&[i ^ 0xff; 32], &seal).is_err());
        let mut flipped = seal.clone();
        flipped.sig[5] ^= 0x40;
        assert!(verifier.verify(&head, &flipped).is_err());
    }
    b.finalize().unwrap();
}

/// Writes a trail of `n` records sealed by the token every 5, with the engine.
fn sealed_trail(env: &TestEnv, n: u64) -> Arc<dyn Backend> {
    let out = init_seal_key(env);
    assert!(out.status.success(), "{}", text(&out));
    let b = backend();
    let sealer: Arc<dyn Sealer> =
        Arc::new(TokenSealer::new(Arc::clone(&b), TOKEN_LABEL, Some(&pin_file(env))).unwrap());
    let mut c = audit_support::config(&audit_dir(env), Mode::Required);
    c.seal_every_records = 5;
    let log = AuditLog::open(c, Some(sealer)).unwrap();
    for i in 0..n {
        log.append(audit_support::op(i)).unwrap();
    }
    log.shutdown().unwrap();
    assert_eq!(log.stats().seal_errors, 0);
    b
}

fn verify(env: &TestEnv) -> Output {
    keywarden(
        env,
        &[
            "audit",
            "--config",
            env.keywarden_conf.to_str().unwrap(),
            "verify",
        ],
    )
}

fn trail_file(env: &TestEnv) -> PathBuf {
    audit_support::files(&audit_dir(env)).remove(0)
}

#[test]
fn a_token_sealed_trail_verifies_and_a_flipped_seal_byte_is_caught() {
    let env = TestEnv::new();
    let _b = sealed_trail(&env, 12);
    let out = verify(&env);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    // 12 records, a seal after every 5, one at shutdown.
    assert!(
        report.contains("seals: 3 verified, 0 not checked"),
        "{report}"
    );
    assert!(report.contains("ecdsa-p256-sha256 key_id"), "{report}");

    let file = trail_file(&env);
    let mut lines = audit_support::lines(&file);
    let at = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"seal\""))
        .unwrap();
    let sig_at = lines[at].find("\"sig\":\"").unwrap() + 7;
    let mut bytes = lines[at].clone().into_bytes();
    bytes[sig_at + 3] = if bytes[sig_at + 3] == b'0' {
        b'1'
    } else {
        b'0'
    };
    lines[at] = String::from_utf8(bytes).unwrap();
    // Rechained, so only the seal can object.
    rechain(&mut lines, |_, _| None);
    audit_support::write_lines(&file, &lines);
    std::fs::remove_file(audit_dir(&env).join(keywarden::audit::HEAD_FILE)).unwrap();
    let out = verify(&env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bad seal"), "{}", text(&out));
}

/// Recomputes every `prev` (and each seal's `head`) as a rewriter without the
/// token can; `reseal` may replace a seal's signature fields.
fn rechain(lines: &mut [String], reseal: impl Fn(&[u8; 32], &serde_json::Value) -> Option<Seal>) {
    for i in 1..lines.len() {
        let prev = Digest::of_line(lines[i - 1].as_bytes());
        let mut v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        v["prev"] = prev.to_hex().into();
        if v["kind"] == "seal" {
            v["head"] = prev.to_hex().into();
            if let Some(s) = reseal(&prev.0, &v) {
                v["alg"] = s.alg.into();
                v["key_id"] = s.key_id.into();
                v["sig"] = keywarden::audit::to_hex(&s.sig).into();
            }
        }
        lines[i] = serde_json::to_string(&v).unwrap();
    }
}

fn rewrite(env: &TestEnv, reseal: impl Fn(&[u8; 32], &serde_json::Value) -> Option<Seal>) {
    let file = trail_file(env);
    let mut lines = audit_support::lines(&file);
    // An early operation record (the trail opens with `keywarden init`'s record).
    let at = lines
        .iter()
        .position(|l| l.contains("\"bytes_in\":2,"))
        .unwrap();
    lines[at] = lines[at].replace("\"bytes_in\":2,", "\"bytes_in\":999,");
    rechain(&mut lines, reseal);
    audit_support::write_lines(&file, &lines);
    // A consistent rewriter rewrites the head file too; removing it is no harder.
    std::fs::remove_file(audit_dir(env).join(keywarden::audit::HEAD_FILE)).unwrap();
}

#[test]
fn a_consistent_rewrite_keeping_the_seals_is_caught() {
    let env = TestEnv::new();
    let _b = sealed_trail(&env, 12);
    rewrite(&env, |_, _| None);
    let out = verify(&env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bad seal"), "{}", text(&out));
}

#[test]
fn a_consistent_rewrite_resealed_with_another_key_is_reported() {
    let env = TestEnv::new();
    let _b = sealed_trail(&env, 12);
    let forger = HmacSealer::new(vec![0x66; 32]).unwrap();
    rewrite(&env, |head, _| Some(forger.seal(head).unwrap()));
    let out = verify(&env);
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("not given"), "{report}");
    assert!(report.contains(forger.key_id()), "{report}");
}

#[test]
fn sealing_leaves_other_sessions_of_the_backend_alone() {
    // The sealer opens and closes its own session per seal: another session on the
    // same backend is still open and sees the same objects afterwards.
    let env = TestEnv::new();
    assert!(init_seal_key(&env).status.success());
    let b = backend();
    let sealer = TokenSealer::new(Arc::clone(&b), TOKEN_LABEL, Some(&pin_file(&env))).unwrap();
    let slot = b.slot_by_token_label(TOKEN_LABEL).unwrap();
    let app = b.open_helper_session(slot).unwrap();
    let found_before = app.find_objects(&[]).unwrap();
    let seal = sealer.seal(&[9; 32]).unwrap();
    assert_eq!(sealer.verify(&[9; 32], &seal), Ok(true));
    assert_eq!(app.find_objects(&[]).unwrap(), found_before);
}

#[test]
fn deleting_seal_key_pub_is_reported() {
    let env = TestEnv::new();
    let _b = sealed_trail(&env, 12);
    std::fs::remove_file(audit_dir(&env).join(SEAL_PUB_FILE)).unwrap();
    // The seals are still there: a seal no key can check is a missing key.
    let out = verify(&env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("PROBLEM: seal key missing:")
            && text(&out).contains("ecdsa-p256-sha256"),
        "{}",
        text(&out)
    );
    // With `seal_token` configured the missing public key is named as such.
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let conf = conf.replacen(
        "[audit]\n",
        &format!("[audit]\nseal_token = {TOKEN_LABEL:?}\n"),
        1,
    );
    std::fs::write(&env.keywarden_conf, conf).unwrap();
    let out = verify(&env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("seal_token is configured but")
            && text(&out).contains("seal-key.pub is missing"),
        "{}",
        text(&out)
    );
}
