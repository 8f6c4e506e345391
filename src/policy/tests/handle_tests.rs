use std::sync::Arc;

use super::*;

const V1: &str = r#"version = 1
[roles]
r = { members = ["*"], clearance = "High" }
[[rule]]
id = "v1"
roles = ["r"]
ops = ["sign"]
"#;

fn rule_of(p: &Policy) -> String {
    let s = p.resolve(&user("x"));
    p.decide(&Request {
        subject: &s,
        op: Op::Sign,
        key: None,
        mechanism: None,
    })
    .rule
    .to_string()
}

#[test]
fn an_edit_is_seen_after_the_interval_and_a_corrupt_edit_keeps_the_old_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, V1).unwrap();
    let clock = clock_at(MONDAY);
    let handle = PolicyHandle::open(&path, clock.clone())
        .unwrap()
        .with_interval_ms(1000);
    assert_eq!(rule_of(&handle.current()), "v1");

    std::fs::write(&path, V1.replace("\"v1\"", "\"version-two\"")).unwrap();
    // Within the interval: no check, the old policy.
    clock.advance_millis(999);
    assert_eq!(rule_of(&handle.current()), "v1");
    clock.advance_millis(1);
    let p2 = handle.current();
    assert_eq!(rule_of(&p2), "version-two");
    assert!(handle.last_error().is_none());

    // Nothing changed: the same policy object.
    clock.advance_millis(1000);
    assert!(Arc::ptr_eq(&p2, &handle.current()));

    // A corrupt edit: old policy kept, error recorded, still closed-as-before.
    std::fs::write(
        &path,
        "version = 1\n[[rule]]\nid = \"x\"\nroles = [\"ghost\"]\nops = [\"sign\"]\n",
    )
    .unwrap();
    clock.advance_millis(1000);
    assert_eq!(rule_of(&handle.current()), "version-two");
    let err = handle.last_error().unwrap();
    assert!(
        err.contains("unknown role") && err.contains("policy.toml:"),
        "{err}"
    );
    assert!(err.contains("keeping the previous policy"), "{err}");
    // The broken file is not re-read at every check.
    clock.advance_millis(1000);
    assert_eq!(handle.check_now(), Reload::Unchanged);

    // Fixed: the new policy arrives and the error clears.
    std::fs::write(&path, V1.replace("\"v1\"", "\"v3\"")).unwrap();
    assert!(matches!(handle.check_now(), Reload::Reloaded(_)));
    assert_eq!(rule_of(&handle.load()), "v3");
    assert!(handle.last_error().is_none());

    // Replaced by rename (a new inode), as editors do.
    let tmp = dir.path().join("policy.toml.new");
    std::fs::write(&tmp, V1.replace("\"v1\"", "\"v4\"")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    clock.advance_millis(1000);
    assert_eq!(rule_of(&handle.current()), "v4");

    // Removed: the last good policy stays.
    std::fs::remove_file(&path).unwrap();
    clock.advance_millis(1000);
    assert_eq!(rule_of(&handle.current()), "v4");
    assert!(handle.last_error().unwrap().contains("gone"));
}

#[test]
fn a_broken_file_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    assert!(PolicyHandle::open(&path, clock_at(0)).is_err());
    std::fs::write(&path, "version = 1\nbogus = true\n").unwrap();
    let msg = PolicyHandle::open(&path, clock_at(0))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("policy.toml:2:"), "{msg}");
}
