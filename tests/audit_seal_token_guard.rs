//! The audit seal key through libkeywarden.so (src/gateway/seal_key.rs): with
//! `[audit] seal_token` set, no caller of the module may use, copy, edit or destroy
//! it, in either policy mode — not even the public key that older builds made
//! (`CKA_PRIVATE=FALSE`), which a public session could sign with and destroy; no
//! key may be made to look like it (enforce mode); and a lost key fails
//! `C_Initialize` with one line naming the fix, `audit init-seal-key --rotate`,
//! after which the old seals still verify.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use keywarden::audit::{EcdsaVerifier, SEAL_KEY_ID, SEAL_KEY_LABEL, SEAL_PUB_FILE};

use common::{TestEnv, P256, SOFTHSM_MODULE, TOKEN_LABEL, USER_PIN};

const ALLOW_ALL: &str = r#"
version = 1
[roles]
users = { members = ["*"], clearance = "High" }
[[rule]]
id = "all"
roles = ["users"]
ops = ["*"]
"#;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The user PIN in a 0600 file, named by the configuration's `[backend] pin_file`
/// (what the module logs in with to seal), and `[audit] seal_token` set.
fn seal_with_token(env: &TestEnv) -> PathBuf {
    let pin = env.path().join("pin");
    std::fs::write(&pin, format!("{USER_PIN}\n")).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let conf = conf
        .replacen(
            "[backend]\n",
            &format!("[backend]\npin_file = \"{}\"\n", pin.display()),
            1,
        )
        .replacen(
            "[audit]\n",
            &format!("[audit]\nseal_token = \"{TOKEN_LABEL}\"\n"),
            1,
        );
    std::fs::write(&env.keywarden_conf, conf).unwrap();
    pin
}

fn init_seal_key(env: &TestEnv, pin: &Path, extra: &[&str]) -> Output {
    env.command(common::keywarden_bin())
        .args([
            "audit",
            "init-seal-key",
            "--token",
            TOKEN_LABEL,
            "--pin-file",
        ])
        .arg(pin)
        .args(extra)
        .output()
        .unwrap()
}

/// The seal key as older builds made it: public, destroyable, modifiable — and
/// its `seal-key.pub`, exported by `init-seal-key --export-existing`.
fn old_public_seal_key(env: &TestEnv, pin: &Path) {
    let p11 = common::load(Path::new(SOFTHSM_MODULE));
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(USER_PIN)))
        .unwrap();
    let named = |class| {
        vec![
            Attribute::Class(class),
            Attribute::Label(SEAL_KEY_LABEL.as_bytes().to_vec()),
            Attribute::Id(SEAL_KEY_ID.to_vec()),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Private(false),
        ]
    };
    let mut public = named(ObjectClass::PUBLIC_KEY);
    public.extend([Attribute::EcParams(P256.to_vec()), Attribute::Verify(true)]);
    let mut private = named(ObjectClass::PRIVATE_KEY);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ]);
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
    drop(s);
    p11.finalize().unwrap();
    let out = init_seal_key(env, pin, &["--export-existing"]);
    assert!(out.status.success(), "{}", text(&out));
}

fn seal_object(s: &Session, class: ObjectClass) -> ObjectHandle {
    let found = s
        .find_objects(&[Attribute::Class(class), Attribute::Id(SEAL_KEY_ID.to_vec())])
        .unwrap();
    assert_eq!(found.len(), 1, "{class:?}");
    found[0]
}

fn rv<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("refused expected: {other:?}"),
    }
}

/// Every use, copy, edit and destruction of the seal key through Keywarden in
/// `s` is refused.
fn everything_refused(s: &Session) {
    let private = seal_object(s, ObjectClass::PRIVATE_KEY);
    let public = seal_object(s, ObjectClass::PUBLIC_KEY);
    let signed = s.sign(&Mechanism::Ecdsa, private, &[1u8; 32]);
    assert_eq!(rv(signed), RvError::KeyFunctionNotPermitted);
    let verified = s.verify(&Mechanism::Ecdsa, public, &[1u8; 32], &[0u8; 64]);
    assert_eq!(rv(verified), RvError::KeyFunctionNotPermitted);
    for h in [private, public] {
        assert_eq!(rv(s.destroy_object(h)), RvError::ActionProhibited);
        assert_eq!(rv(s.copy_object(h, &[])), RvError::ActionProhibited);
        let edit = s.update_attributes(h, &[Attribute::Label(b"mine".to_vec())]);
        assert_eq!(rv(edit), RvError::ActionProhibited);
    }
}

/// Loads Keywarden, runs `f` in a public and in a logged-in session, finalises.
fn through_keywarden(f: impl Fn(&Session)) {
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let public = p11.open_rw_session(slot).unwrap();
    f(&public);
    drop(public);
    let user = p11.open_rw_session(slot).unwrap();
    user.login(UserType::User, Some(&common::pin(USER_PIN)))
        .unwrap();
    f(&user);
    drop(user);
    p11.finalize().unwrap();
}

#[test]
fn a_public_session_can_neither_sign_with_nor_destroy_the_old_public_seal_key_in_either_mode() {
    let env = TestEnv::new();
    let pin = seal_with_token(&env);
    old_public_seal_key(&env, &pin);
    through_keywarden(everything_refused);
    env.enforce(ALLOW_ALL);
    through_keywarden(everything_refused);
    // Still on the token, and still sealing: Keywarden's own sealer uses it.
    let p11 = common::load(Path::new(SOFTHSM_MODULE));
    let s = p11.open_ro_session(common::test_slot(&p11)).unwrap();
    seal_object(&s, ObjectClass::PRIVATE_KEY);
    drop(s);
    p11.finalize().unwrap();
    let out = env
        .command(common::keywarden_bin())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("seals: 0 verified"), "{}", text(&out));
}

#[test]
fn the_private_seal_key_is_refused_to_logged_in_callers_and_no_key_can_impersonate_it() {
    let env = TestEnv::new();
    let pin = seal_with_token(&env);
    let out = init_seal_key(&env, &pin, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let logged_in_only = |s: &Session| {
        let info = s.get_session_info().unwrap();
        if format!("{:?}", info.session_state()).contains("User") {
            everything_refused(s);
        } else {
            // A public session does not see the private half at all.
            let found = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Id(SEAL_KEY_ID.to_vec()),
                ])
                .unwrap();
            assert!(found.is_empty());
        }
    };
    through_keywarden(logged_in_only);
    env.enforce(ALLOW_ALL);
    through_keywarden(|s| {
        logged_in_only(s);
        if !format!("{:?}", s.get_session_info().unwrap().session_state()).contains("User") {
            return;
        }
        // No key may take its CKA_ID or its label (a second "seal key").
        let aes = |id: &[u8]| {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Id(id.to_vec()),
                Attribute::Value(vec![3u8; 32]),
            ]
        };
        assert_eq!(
            rv(s.create_object(&aes(SEAL_KEY_ID))),
            RvError::TemplateInconsistent
        );
        // With another CKA_ID the same import passes: the ID was the reason.
        s.create_object(&aes(b"not-the-seal-key")).unwrap();
        let labelled = |class| {
            vec![
                Attribute::Token(true),
                Attribute::Label(SEAL_KEY_LABEL.as_bytes().to_vec()),
                Attribute::Class(class),
            ]
        };
        let mut public = labelled(ObjectClass::PUBLIC_KEY);
        public.push(Attribute::EcParams(P256.to_vec()));
        let generated = s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public,
            &labelled(ObjectClass::PRIVATE_KEY),
        );
        assert_eq!(rv(generated), RvError::TemplateInconsistent);
        let (_, other) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(P256.to_vec())],
                &[Attribute::Sign(true)],
            )
            .unwrap();
        let edit = s.update_attributes(other, &[Attribute::Id(SEAL_KEY_ID.to_vec())]);
        assert_eq!(rv(edit), RvError::ActionProhibited);
    });
}

#[test]
fn a_lost_seal_key_fails_c_initialize_with_one_line_and_rotate_keeps_old_seals_verifiable() {
    let env = TestEnv::new();
    let pin = seal_with_token(&env);
    old_public_seal_key(&env, &pin);
    let old_id = EcdsaVerifier::from_file(&env.path().join("audit").join(SEAL_PUB_FILE))
        .unwrap()
        .key_id()
        .to_owned();
    // Some records sealed by the old key (C_Finalize seals).
    through_keywarden(|_| {});
    // The key is lost (what a public session could do through older builds).
    let p11 = common::load(Path::new(SOFTHSM_MODULE));
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(USER_PIN)))
        .unwrap();
    s.destroy_object(seal_object(&s, ObjectClass::PRIVATE_KEY))
        .unwrap();
    drop(s);
    p11.finalize().unwrap();

    let listed = env
        .command("pkcs11-tool")
        .arg("--module")
        .arg(common::keywarden_module())
        .arg("-L")
        .output()
        .unwrap();
    assert!(!listed.status.success(), "{}", text(&listed));
    let said = String::from_utf8_lossy(&listed.stderr);
    let line = said
        .lines()
        .find(|l| l.contains("seal key"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        line.contains("missing") && line.contains("init-seal-key") && line.contains("--rotate"),
        "{line}"
    );

    let out = init_seal_key(&env, &pin, &["--rotate"]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = env
        .path()
        .join("audit")
        .join(format!("seal-key-{old_id}.pub"));
    assert!(kept.exists(), "{}", text(&out));
    // Sealing works again, and verify checks the old key's seals and the new one's.
    through_keywarden(|_| {});
    let out = env
        .command(common::keywarden_bin())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains(&old_id), "{report}");
    assert!(
        !report.contains("not checked") || report.contains("0 not checked"),
        "{report}"
    );
    // A second --rotate while the new key is there is refused.
    let again = init_seal_key(&env, &pin, &["--rotate"]);
    assert!(!again.status.success(), "{}", text(&again));
}

#[test]
fn the_seal_key_cannot_be_adopted_into_the_lifecycle_of_application_keys() {
    let env = TestEnv::new();
    let pin = seal_with_token(&env);
    let out = init_seal_key(&env, &pin, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let adopt = env
        .command(common::keywarden_bin())
        .args(["keys", "adopt", SEAL_KEY_LABEL, "--pin-file"])
        .arg(&pin)
        .output()
        .unwrap();
    assert!(!adopt.status.success(), "{}", text(&adopt));
    assert!(text(&adopt).contains("audit seal key"), "{}", text(&adopt));
}
