//! A policy file edited while a long-lived client runs: a good edit takes effect
//! within 2 seconds, a corrupt edit keeps the policy in force.
mod common;

use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};

use common::P256;

fn policy(sign_labels: &str) -> String {
    format!(
        r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = {{ members = ["*"], clearance = "Medium-High" }}
[[rule]]
id = "generate"
roles = ["users"]
ops = ["generate", "verify"]
[[rule]]
id = "sign"
roles = ["users"]
ops = ["sign"]
keys = {{ label = "{sign_labels}" }}
"#
    )
}

fn sign(s: &Session, key: ObjectHandle) -> Result<(), RvError> {
    match s.sign(&Mechanism::Ecdsa, key, &[9u8; 32]) {
        Ok(_) => Ok(()),
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => Err(rv),
        Err(e) => panic!("{e:?}"),
    }
}

/// Polls `f` until it returns `want` or the deadline passes; returns the time taken.
fn until(
    want: Result<(), RvError>,
    deadline: Duration,
    f: impl Fn() -> Result<(), RvError>,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let got = f();
        if got == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < deadline,
            "still {got:?} after {:?}, wanted {want:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_edit_takes_effect_within_two_seconds_and_a_corrupt_one_keeps_the_policy() {
    let env = common::TestEnv::new();
    let file = env.enforce(&policy("k"));
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(false), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::Label(b"k".to_vec()),
            ],
        )
        .unwrap();
    sign(&s, key).unwrap();

    // Edit: the sign rule no longer names this key.
    std::fs::write(&file, policy("other")).unwrap();
    let took = until(
        Err(RvError::KeyFunctionNotPermitted),
        Duration::from_secs(2),
        || sign(&s, key),
    );
    eprintln!("the edit took effect after {took:?}");

    // A corrupt edit: the refusal stays for well over a check interval.
    std::fs::write(&file, "version = 1\n[[rule]\nid = ").unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        assert_eq!(sign(&s, key), Err(RvError::KeyFunctionNotPermitted));
        std::thread::sleep(Duration::from_millis(50));
    }
    // A good edit after the corrupt one is taken again.
    std::fs::write(&file, policy("k")).unwrap();
    until(Ok(()), Duration::from_secs(2), || sign(&s, key));
}
