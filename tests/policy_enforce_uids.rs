//! Sign allowed for one Unix user and refused for another: the test re-executes
//! its own binary as a child under two uids (`CommandExt::uid`, needs root, as in
//! CI), each child loading the module and signing with the same token key.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;

const SIGNER_UID: u32 = 4242;
const OTHER_UID: u32 = 4343;
/// The group both uids share the store and the trail through (`store.group`).
const SHARED_GID: u32 = 4545;
const CHILD_ENV: &str = "KEYWARDEN_TEST_UID_CHILD";

fn policy() -> String {
    format!(
        r#"
version = 1
[settings]
default_classification = "Low"
[principals]
signer = {{ uid = {SIGNER_UID} }}
[roles]
signers = {{ members = ["signer"], clearance = "Medium-High" }}
[[rule]]
id = "signers-sign"
roles = ["signers"]
ops = ["sign"]
[[rule]]
id = "everyone-verifies"
roles = ["*"]
ops = ["verify"]
"#
    )
}

/// Lets another uid read and write everything under `dir` (token, config), but
/// the store and the trail, which are shared through a group (`share_with_group`):
/// a store others can write is refused.
fn open_up(dir: &Path) {
    if dir.ends_with("store") || dir.ends_with("audit") {
        return;
    }
    let meta = std::fs::metadata(dir).unwrap();
    let mode = if meta.is_dir() { 0o777 } else { 0o666 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            open_up(&e.unwrap().path());
        }
    }
}

/// The child's part: sign with key "k" and print the outcome.
#[test]
fn child_signs_with_its_own_uid() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when re-executed by the test below
    }
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let key = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"k".to_vec()),
        ])
        .unwrap();
    assert_eq!(key.len(), 1);
    match s.sign(&Mechanism::Ecdsa, key[0], &[5u8; 32]) {
        Ok(_) => println!("RESULT=OK"),
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => println!("RESULT={rv:?}"),
        Err(e) => println!("RESULT=other {e:?}"),
    }
}

fn run_as(uid: u32) -> String {
    let mut cmd = Command::new("env");
    cmd.uid(uid).gid(SHARED_GID);
    common::child_result(cmd, "child_signs_with_its_own_uid", CHILD_ENV)
}

#[test]
fn sign_is_allowed_for_one_uid_and_refused_for_another() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching uids needs root (CI runs the suite as root)");
        return;
    }
    let env = common::token_with_signing_key("k");
    env.enforce(&policy());
    // Enforce mode opens the metadata store read-write in every process: both uids
    // share it (and the trail) through a group, as in a deployment.
    let out = env
        .command(common::keywarden_bin())
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.share_with_group(SHARED_GID);
    open_up(env.path());
    assert_eq!(run_as(SIGNER_UID), "OK");
    assert_eq!(run_as(OTHER_UID), "KeyFunctionNotPermitted");
}
