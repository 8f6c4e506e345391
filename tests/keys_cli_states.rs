//! `keywarden keys` end to end: SP 800-57 state changes, compromise and destroy,
//! unmanaged keys, due rotations, where the PIN comes from, and a watching process
//! seeing a change; checked with `cryptoki` directly on SoftHSM.

mod common;
mod keys_cli_support;

use std::process::Stdio;

use common::USER_PIN;
use serde_json::Value;

use keys_cli_support::{adopted, by_label, end_date_set, generate, versions, Keys, LABEL};

#[test]
fn compromise_shows_in_list_and_destroy_leaves_a_tombstone() {
    let k = adopted();
    k.ok(&[
        "compromise",
        "--reason",
        "key file found on a laptop",
        LABEL,
    ]);
    let list = k.json(&["list"]);
    assert_eq!(list[0]["state"], "compromised");
    assert_eq!(list[0]["reason"], "key file found on a laptop");
    assert_eq!(
        k.json(&["list", "--state", "compromised"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(k
        .json(&["list", "--state", "active"])
        .as_array()
        .unwrap()
        .is_empty());
    k.token(|s| assert!(end_date_set(s, &[0xa1])));

    // Without --yes and without a terminal to ask on: refused, nothing removed.
    let refused = k.run(&["destroy", LABEL]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    k.token(|s| assert_eq!(by_label(s, LABEL).len(), 2));

    k.ok(&["destroy", "--yes", LABEL]);
    k.token(|s| assert!(by_label(s, LABEL).is_empty(), "objects removed"));
    let vs = versions(&k);
    assert_eq!(vs.len(), 1, "tombstone kept");
    assert_eq!(vs[0]["state"], "destroyed");
    assert!(vs[0]["destroyed_at"].is_i64());
}

#[test]
fn state_commands_follow_sp800_57() {
    let k = adopted();
    k.ok(&["suspend", "--reason", "investigating", LABEL]);
    assert_eq!(k.json(&["list"])[0]["state"], "suspended");
    // A suspended key is neither rotated nor destroyed.
    assert!(!k.run(&["rotate", LABEL]).status.success());
    assert!(!k.run(&["destroy", "--yes", LABEL]).status.success());
    k.ok(&["resume", "--reason", "false alarm", LABEL]);
    assert_eq!(k.json(&["list"])[0]["state"], "active");
    k.ok(&["deactivate", "--reason", "retired", LABEL]);
    // Deactivated never becomes active again.
    let back = k.run(&["resume", "--reason", "oops", "--version", "1", LABEL]);
    assert!(!back.status.success());
    assert_eq!(k.json(&["list"])[0]["state"], "deactivated");
    // Adopting the same key twice is refused.
    assert!(!k.run(&["adopt", LABEL]).status.success());
}

#[test]
fn unmanaged_keys_are_listed_until_adopted() {
    let k = Keys::new();
    k.token(|s| {
        generate(s, "legacy", &[0xc1]);
        generate(s, LABEL, &[0xa1]);
    });
    k.ok(&["adopt", LABEL]);
    let un = k.json(&["list", "--unmanaged"]);
    let un = un.as_array().unwrap();
    assert_eq!(un.len(), 1, "{un:?}");
    assert_eq!(un[0]["label"], "legacy");
    assert_eq!(un[0]["cka_id"], "c1");
    assert_eq!(un[0]["state"], "unmanaged");
    k.ok(&["adopt", "legacy"]);
    assert!(k
        .json(&["list", "--unmanaged"])
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(k.json(&["list"]).as_array().unwrap().len(), 2);

    // A label longer than the column's default width keeps its row aligned.
    let long = "a-label-much-longer-than-twenty-five-characters";
    k.token(|s| generate(s, long, &[0xd1]));
    k.ok(&["adopt", long]);
    let table = k.ok(&["list"]);
    let mut lines = table.lines();
    let at = lines.next().unwrap().find("STATE").unwrap();
    for row in lines {
        assert_eq!(row.find("active"), Some(at), "{table}");
    }
}

#[test]
fn rotate_due_follows_the_cryptoperiod_and_backup_blocks_destroy() {
    let k = Keys::new();
    k.token(|s| {
        generate(s, "app-due", &[0xb1]);
        generate(s, "app-warn", &[0xb2]);
        generate(s, "ca-root", &[0xb3]);
    });
    k.set_policy(
        r#"
version = 1
[[keyset]]
name = "ca"
label = "ca-*"
backup_required = true

[[cryptoperiod]]
name = "apps"
label = "app-due"
originator = "90d"
recipient = "1y"
when_due = "rotate"

[[cryptoperiod]]
name = "warned"
label = ["app-warn", "ca-*"]
originator = "30d"
"#,
    );
    k.env.clock_override(true);
    for l in ["app-due", "app-warn", "ca-root"] {
        k.ok(&["adopt", l]);
    }
    let start: i64 = k.json(&["list"])[0]["activated_at"].as_i64().unwrap();
    let later = (start + 91 * 86_400).to_string();
    let at = |args: &[&str]| {
        let mut c = k.cmd(args);
        c.env("KEYWARDEN_NOW", &later);
        c.output().unwrap()
    };
    assert!(k.json(&["list", "--due"]).as_array().unwrap().is_empty());
    let due: Value = serde_json::from_slice(&at(&["list", "--due", "--json"]).stdout).unwrap();
    assert_eq!(due.as_array().unwrap().len(), 3, "{due}");
    let out = at(&["rotate", "--due"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("rotated app-due"), "{said}");
    assert!(said.contains("due app-warn"), "{said}");
    let shown = k.json(&["show", "app-due"]);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    assert_eq!(shown["cryptoperiod"]["name"], "apps");
    assert_eq!(
        k.json(&["show", "app-warn"])["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Running it again rotates nothing more: the new version is not due.
    assert!(at(&["rotate", "--due"]).status.success());
    assert_eq!(
        k.json(&["show", "app-due"])["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    k.ok(&["deactivate", "--reason", "retired", "ca-root"]);
    let refused = k.run(&["destroy", "--yes", "ca-root"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("backup"));
    k.token(|s| assert_eq!(by_label(s, "ca-root").len(), 2));
}

#[test]
fn pin_comes_from_the_configured_pin_file_when_no_option_is_given() {
    let k = Keys::new();
    k.token(|s| generate(s, LABEL, &[0xa1]));
    let conf = std::fs::read_to_string(&k.env.keywarden_conf).unwrap();
    let conf = conf.replacen(
        "[backend]\n",
        &format!("[backend]\npin_file = \"{}\"\n", k.pin_file.display()),
        1,
    );
    assert!(conf.contains("pin_file"), "{conf}");
    std::fs::write(&k.env.keywarden_conf, conf).unwrap();
    let out = k
        .env
        .command(common::keywarden_bin())
        .args(["keys", "adopt", LABEL])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pin_comes_from_stdin_when_no_file_is_given() {
    let k = Keys::new();
    k.token(|s| generate(s, LABEL, &[0xa1]));
    let mut c = k.env.command(common::keywarden_bin());
    c.args(["keys", "adopt", LABEL]);
    let out = common::run_with_stdin(c, &format!("{USER_PIN}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_cli_state_change_reaches_a_watching_process_within_a_second() {
    use keywarden::store::{ChangeWatcher, Store, DEFAULT_POLL, DEFAULT_RESYNC};
    use std::time::{Duration, Instant};
    let k = adopted();
    let config = keywarden::config::Config::load(&k.env.keywarden_conf).unwrap();
    let store = keywarden::store::open(&config.store).unwrap();
    // What a module holding a cached snapshot does (docs/store.md, gateway loop).
    let watcher = ChangeWatcher::new(store.change_stamp().unwrap(), DEFAULT_POLL, DEFAULT_RESYNC);
    let cached = store.snapshot().unwrap();
    assert_eq!(cached.versions[0].state.as_str(), "active");
    k.ok(&["compromise", "--reason", "stolen", LABEL]);
    let committed = Instant::now();
    let seen = loop {
        if watcher.check() && store.change_seq().unwrap() != cached.change_seq {
            break store.snapshot().unwrap();
        }
        assert!(
            committed.elapsed() < Duration::from_secs(1),
            "change not seen within 1 s"
        );
        std::thread::yield_now();
    };
    assert_eq!(seen.versions[0].state.as_str(), "compromised");
}
