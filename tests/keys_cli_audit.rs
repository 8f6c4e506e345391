//! `keywarden keys` end to end: the audit records of its changes, and a change
//! refused before it is made when the trail cannot be written.

mod common;
mod keys_cli_support;

use std::process::{Command, Output};

use serde_json::Value;

use keys_cli_support::{adopted, versions, Keys, LABEL};

/// `keywarden audit …` against the test's configuration.
fn audit(k: &Keys, args: &[&str]) -> Output {
    k.env
        .command(common::keywarden_bin())
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

/// The trail's lifecycle records, as `audit search --format jsonl` prints them.
fn lifecycle_records(k: &Keys, select: &[&str]) -> Vec<Value> {
    let mut args = vec!["search", "--format", "jsonl"];
    args.extend_from_slice(select);
    let out = audit(k, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "lifecycle")
        .collect()
}

#[test]
fn lifecycle_changes_are_recorded_in_the_audit_trail() {
    let k = adopted();
    k.ok(&["suspend", "--reason", "investigating", LABEL]);
    k.ok(&["resume", "--reason", "false alarm", LABEL]);
    k.ok(&["rotate", "--reason", "yearly", LABEL]);
    k.ok(&["compromise", "--reason", "leaked", "--version", "1", LABEL]);
    k.ok(&[
        "destroy",
        "--yes",
        "--version",
        "1",
        "--reason",
        "gone",
        LABEL,
    ]);
    // A refused change is recorded as a failure.
    let refused = k.run(&["deactivate", "--reason", "x", "no-such-key"]);
    assert!(!refused.status.success());

    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let rows: Vec<(String, String, String, String, String)> = lifecycle_records(&k, &[])
        .iter()
        .map(|r| {
            let s = |f: &str| r[f].as_str().unwrap_or("-").to_owned();
            assert_eq!(r["actor"], me.trim(), "{r}");
            let version = r["key_version"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string());
            (
                s("action"),
                s("key_label") + " v" + &version,
                s("from_state") + "->" + &s("to_state"),
                s("outcome"),
                s("detail"),
            )
        })
        .collect();
    let row =
        |a: &str, k: &str, f: &str, o: &str, d: &str| -> (String, String, String, String, String) {
            (a.into(), k.into(), f.into(), o.into(), d.into())
        };
    let app = |v: u32| format!("{LABEL} v{v}");
    let expected = vec![
        row(
            "adopt",
            &app(1),
            "-->active",
            "ok",
            "key #1 brought under management",
        ),
        row(
            "suspend",
            &app(1),
            "active->suspended",
            "ok",
            "investigating",
        ),
        row("resume", &app(1), "suspended->active", "ok", "false alarm"),
        row(
            "rotate",
            &app(2),
            "-->active",
            "ok",
            "replaces version 1: yearly",
        ),
        row(
            "deactivate",
            &app(1),
            "active->deactivated",
            "ok",
            "replaced by version 2: yearly",
        ),
        row(
            "compromise",
            &app(1),
            "deactivated->compromised",
            "ok",
            "leaked",
        ),
        row(
            "destroy",
            &app(1),
            "compromised->destroyed",
            "ok",
            "2 token object(s) removed: gone",
        ),
        row(
            "deactivate",
            "no-such-key v-",
            "-->-",
            "error",
            "managed key \"no-such-key\"",
        ),
    ];
    assert_eq!(rows.len(), expected.len(), "{rows:#?}");
    for (got, want) in rows.iter().zip(&expected) {
        assert_eq!(
            (&got.0, &got.1, &got.2, &got.3),
            (&want.0, &want.1, &want.2, &want.3)
        );
        assert!(got.4.contains(want.4.as_str()), "{got:?} vs {want:?}");
    }
    // The CKA_ID is recorded: the search by the new version's id finds its record.
    let v2 = versions(&k)[1]["cka_id"].as_str().unwrap().to_owned();
    let by_id = lifecycle_records(&k, &["--key", &v2]);
    assert_eq!(by_id.len(), 1, "{by_id:?}");
    assert_eq!(by_id[0]["action"], "rotate");
    // The trail starts with `keywarden init`'s record (make-token.sh ran it).
    let out = audit(&k, &["search", "--format", "jsonl"]);
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        (&first["kind"], &first["action"]),
        (&"admin".into(), &"init".into())
    );
    assert_eq!(first["target"], k.env.keywarden_conf.display().to_string());
    // The trail, the module's and the CLI's records together, verifies.
    let out = audit(&k, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_unwritable_trail_stops_a_change_before_it_is_made() {
    let k = adopted();
    let conf = std::fs::read_to_string(&k.env.keywarden_conf).unwrap();
    let blocker = k.env.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let dir_line = conf
        .lines()
        .find(|l| l.starts_with("dir = ") && l.contains("audit"))
        .unwrap()
        .to_owned();
    std::fs::write(
        &k.env.keywarden_conf,
        conf.replace(&dir_line, &format!("dir = \"{}/audit\"", blocker.display())),
    )
    .unwrap();
    let out = k.run(&["suspend", "--reason", "r", LABEL]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was changed"), "{err}");
    // Read-only commands do not need the trail; the key is still active.
    assert_eq!(k.json(&["list"])[0]["state"], "active");
}
