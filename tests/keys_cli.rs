//! `keywarden keys` end to end: adoption, rotation (racing, interrupted, and in two
//! stores on one token), reconcile and error messages; the built binary against a
//! private SoftHSM token, checked with `cryptoki` directly on SoftHSM (never through
//! Keywarden).

mod common;
mod keys_cli_support;

use std::path::PathBuf;
use std::process::Stdio;

use common::SOFTHSM_MODULE;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};

use keys_cli_support::{
    adopted, by_id, by_label, ec_point, end_date_set, generate, unhex, versions, Keys, LABEL,
};

#[test]
fn adopt_rotate_keeps_old_signatures_verifiable() {
    let k = adopted();
    let digest = [7u8; 32];
    let old_sig = k.token(|s| {
        let key = by_id(s, &[0xa1], ObjectClass::PRIVATE_KEY)[0];
        s.sign(&Mechanism::Ecdsa, key, &digest).unwrap()
    });
    let old_point = k.token(|s| ec_point(s, &[0xa1]));
    assert!(k.ok(&["rotate", LABEL]).contains("version 2"));

    let vs = versions(&k);
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0]["state"], "deactivated");
    assert_eq!(vs[1]["state"], "active");
    let new_id = unhex(vs[1]["cka_id"].as_str().unwrap());
    assert_ne!(new_id, vec![0xa1]);
    k.token(|s| {
        assert_ne!(ec_point(s, &new_id), old_point, "a new key pair");
        assert!(end_date_set(s, &[0xa1]), "CKA_END_DATE on the old version");
        assert!(!end_date_set(s, &new_id));
        // Same label, same template: both versions' pairs are on the token.
        assert_eq!(by_label(s, LABEL).len(), 4);
        let attrs = s
            .get_attributes(
                by_id(s, &new_id, ObjectClass::PRIVATE_KEY)[0],
                &[AttributeType::Sign, AttributeType::Extractable],
            )
            .unwrap();
        assert!(attrs.contains(&Attribute::Sign(true)));
        assert!(attrs.contains(&Attribute::Extractable(false)));
        // The old signature verifies with the deactivated version found by CKA_ID.
        let old_pub = by_id(s, &[0xa1], ObjectClass::PUBLIC_KEY)[0];
        s.verify(&Mechanism::Ecdsa, old_pub, &digest, &old_sig)
            .unwrap();
    });
    let list = k.json(&["list"]);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["versions"], 2);
    let table = k.ok(&["list"]);
    assert!(table.starts_with("LABEL"), "{table}");
    assert!(
        table.contains("app-sign") && table.contains("active"),
        "{table}"
    );
}

#[test]
fn racing_rotations_produce_exactly_one_new_version() {
    let k = adopted();
    let children: Vec<_> = (0..2)
        .map(|_| {
            k.cmd(&["rotate", LABEL, "--expect-version", "1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let said: Vec<_> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![Some(0), Some(3)],
        "one winner, one loser: {codes:?} {said:?}"
    );
    let vs = versions(&k);
    assert_eq!(vs.len(), 2);
    assert_eq!(vs.iter().filter(|v| v["state"] == "active").count(), 1);
    // The loser left nothing behind.
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 4));
}

#[test]
fn a_crash_between_generation_and_commit_keeps_the_old_version_active() {
    let k = adopted();
    let out = k
        .cmd(&["rotate", LABEL])
        .env("KEYWARDEN_FAULT", "rotate-after-generate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), None, "killed by SIGABRT");
    let vs = versions(&k);
    assert_eq!(vs.len(), 1, "nothing committed");
    assert_eq!(vs[0]["state"], "active", "never none");
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 4, "orphans on the token"));

    let dry = k.run(&["reconcile", "--dry-run"]);
    assert!(dry.status.success());
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(
        said.contains("2 orphaned object(s)") && !said.contains("removed"),
        "{said}"
    );
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 4));

    // The next rotation cleans up first, then rotates.
    let out = k.run(&["rotate", LABEL]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed"));
    let vs = versions(&k);
    assert_eq!(vs.len(), 2);
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 4, "v1 and v2 only"));
}

/// A second configuration ("store B") on the same token as `k` ("store A"):
/// `keywarden init` into its own directory, the same SoftHSM module and token.
fn second_store(k: &Keys) -> PathBuf {
    let dir = k.env.path().join("b");
    k.env.cli(&[
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--backend",
        SOFTHSM_MODULE,
    ]);
    dir.join("keywarden.toml")
}

#[test]
fn rotating_in_another_store_on_the_same_token_does_not_destroy_this_stores_keys() {
    // Store A: a-key adopted and rotated, so its active version has a
    // Keywarden-made CKA_ID that store B has never heard of.
    let k = Keys::new();
    k.token(|s| generate(s, "a-key", &[0xa1]));
    k.ok(&["adopt", "a-key"]);
    k.ok(&["rotate", "a-key"]);
    let a = k.json(&["show", "a-key"])["versions"]
        .as_array()
        .unwrap()
        .clone();
    let a_active = unhex(a[1]["cka_id"].as_str().unwrap());
    let a_point = k.token(|s| ec_point(s, &a_active));

    // Store B, same token: b-key adopted and rotated, then reconciled.
    let conf_b = second_store(&k);
    let b = |args: &[&str]| {
        let mut all = vec!["--config", conf_b.to_str().unwrap()];
        all.extend_from_slice(args);
        k.run(&all)
    };
    k.token(|s| generate(s, "b-key", &[0xb1]));
    for args in [
        &["adopt", "b-key"][..],
        &["rotate", "b-key"],
        &["reconcile", "--yes"],
    ] {
        let out = b(args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {said}");
        assert!(!said.contains("orphaned"), "{args:?}: {said}");
    }
    let dry = b(&["reconcile", "--dry-run"]);
    assert!(dry.status.success());
    assert!(!String::from_utf8_lossy(&dry.stderr).contains("a-key"));

    // A's active version is intact and still signs.
    k.token(|s| {
        assert_eq!(by_id(s, &a_active, ObjectClass::PRIVATE_KEY).len(), 1);
        assert_eq!(ec_point(s, &a_active), a_point);
        let key = by_id(s, &a_active, ObjectClass::PRIVATE_KEY)[0];
        s.sign(&Mechanism::Ecdsa, key, &[7u8; 32]).unwrap();
        assert_eq!(by_label(s, "a-key").len(), 4);
        assert_eq!(by_label(s, "b-key").len(), 4);
    });
    // And A's own rotation still works and finds nothing to clean.
    let out = k.run(&["rotate", "a-key"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("orphaned"));
}

#[test]
fn reconcile_without_a_terminal_lists_and_asks_for_yes() {
    let k = adopted();
    let out = k
        .cmd(&["rotate", LABEL])
        .env("KEYWARDEN_FAULT", "rotate-after-generate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "killed by SIGABRT");
    let listed = k.run(&["reconcile"]);
    let said = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(listed.status.code(), Some(1), "{said}");
    assert!(
        said.contains("2 orphaned object(s)") && said.contains("--yes"),
        "{said}"
    );
    assert!(!said.contains(": removed"), "{said}");
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 4, "nothing removed"));
    let done = k.run(&["reconcile", "--yes"]);
    assert!(done.status.success());
    assert!(String::from_utf8_lossy(&done.stderr).contains(": removed"));
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 2, "only version 1"));
    assert_eq!(versions(&k)[0]["state"], "active");
}

#[test]
fn errors_name_their_cause_without_a_configuration_prefix() {
    let k = adopted();
    let wrong = k.env.path().join("wrong-pin");
    std::fs::write(&wrong, "999999\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = k
        .env
        .command(common::keywarden_bin())
        .args(["keys", "list", "--unmanaged", "--pin-file"])
        .arg(&wrong)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CKR_PIN_INCORRECT: the user PIN was refused by token"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = k.run(&["list", "--unmanaged", "--token", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no token labelled \"nosuch\"") && !stderr.contains("configuration:"),
        "{stderr}"
    );
}
