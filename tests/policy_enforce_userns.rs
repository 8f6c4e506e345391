//! A process that maps itself into a group inside a user namespace of its own
//! (`unshare --user --map-group=GID`, no privilege needed) does not get that group's
//! role: the test re-executes its own binary as a child, once truly in the group and
//! once only claiming it from a nested user namespace, and signs with a key only
//! that group's role may use.
mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;

const SIGNER_GID: u32 = 4244;
const CHILD_ENV: &str = "KEYWARDEN_TEST_USERNS_CHILD";

fn policy() -> String {
    format!(
        r#"
version = 1
[settings]
default_classification = "Low"
[principals]
signer = {{ gid = {SIGNER_GID} }}
[roles]
signers = {{ members = ["signer"], clearance = "Medium-High" }}
[[rule]]
id = "signers-sign"
roles = ["signers"]
ops = ["sign"]
"#
    )
}

/// The child's part: sign with key "k" and print the outcome.
#[test]
fn child_signs_as_the_group_it_was_given() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when re-executed by the test below
    }
    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_ro_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let key = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"k".to_vec()),
        ])
        .unwrap();
    // A caller with no rule on the key does not see it (docs/policy.md, searches).
    let Some(&key) = key.first() else {
        println!("RESULT=hidden");
        return;
    };
    match s.sign(&Mechanism::Ecdsa, key, &[5u8; 32]) {
        Ok(_) => println!("RESULT=OK"),
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => println!("RESULT={rv:?}"),
        Err(e) => println!("RESULT=other {e:?}"),
    }
}

fn run_child(cmd: Command) -> String {
    common::child_result(cmd, "child_signs_as_the_group_it_was_given", CHILD_ENV)
}

#[test]
fn a_group_mapped_in_a_user_namespace_grants_no_role() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test sets a real gid for its control child: run it as root, as CI does"
    );
    let env = common::token_with_signing_key("k");
    env.enforce(&policy());

    // Truly in the group (the kernel's own credentials): the rule applies.
    let mut member = Command::new("env");
    member.gid(SIGNER_GID);
    assert_eq!(run_child(member), "OK");

    // Root's own credentials mapped to the group inside a fresh user namespace: the
    // kernel reports gid 4244 there, but that is the process's own choice: the key
    // it would have signed with is not even visible to it.
    let mut forged = Command::new("unshare");
    forged.args([
        "--user",
        "--map-user=0",
        &format!("--map-group={SIGNER_GID}"),
        "--",
    ]);
    assert_eq!(run_child(forged), "hidden");

    // The trail says which process was namespaced, and only that one.
    let trail: Vec<String> = env.trail_records().iter().map(|r| r.to_string()).collect();
    let namespaced: Vec<&String> = trail
        .iter()
        .filter(|l| l.contains("\"userns\":true"))
        .collect();
    assert!(
        !namespaced.is_empty(),
        "no record of the namespaced child:\n{trail:?}"
    );
    assert!(
        namespaced.iter().all(|l| !l.contains("\"sign\"")),
        "the namespaced child signed: {namespaced:?}"
    );
}
