//! `keywarden keys` end to end: the built binary against a private SoftHSM token,
//! checked with `cryptoki` directly on SoftHSM (never through Keywarden).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{pin, TestEnv, SOFTHSM_MODULE, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use serde_json::Value;

const LABEL: &str = "app-sign";
/// DER OID of P-256.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

struct Keys {
    env: TestEnv,
    pin_file: PathBuf,
}

impl Keys {
    fn new() -> Keys {
        let env = TestEnv::new();
        let pin_file = env.path().join("pin");
        std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Keys { env, pin_file }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(common::keywarden_bin());
        c.arg("keys")
            .args(args)
            .arg("--pin-file")
            .arg(&self.pin_file);
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::success_stdout(self.run(args), &format!("keywarden keys {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs `f` in a fresh logged-in SoftHSM session (a new C_Initialize each time,
    /// so nothing cached in this process hides what the CLI did).
    fn token<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        let p11 = Pkcs11::new(SOFTHSM_MODULE).unwrap();
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = common::test_slot(&p11);
        let s = p11.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let out = f(&s);
        drop(s);
        p11.finalize().unwrap();
        out
    }

    fn set_policy(&self, text: &str) {
        let file = self.env.path().join("policy.toml");
        std::fs::write(&file, text).unwrap();
        let conf = std::fs::read_to_string(&self.env.keywarden_conf).unwrap();
        let conf = conf.replace(
            "mode = \"transparent\"",
            &format!("mode = \"enforce\"\nfile = \"{}\"", file.display()),
        );
        std::fs::write(&self.env.keywarden_conf, conf).unwrap();
    }
}

fn generate(s: &Session, label: &str, id: &[u8]) {
    let public = [
        Attribute::Token(true),
        Attribute::Label(label.into()),
        Attribute::Id(id.to_vec()),
        Attribute::EcParams(P256.to_vec()),
        Attribute::Verify(true),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Label(label.into()),
        Attribute::Id(id.to_vec()),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
}

fn by_id(s: &Session, id: &[u8], class: ObjectClass) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Id(id.to_vec()), Attribute::Class(class)])
        .unwrap()
}

fn by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.into())]).unwrap()
}

fn ec_point(s: &Session, id: &[u8]) -> Vec<u8> {
    let h = by_id(s, id, ObjectClass::PUBLIC_KEY)[0];
    match s
        .get_attributes(h, &[AttributeType::EcPoint])
        .unwrap()
        .remove(0)
    {
        Attribute::EcPoint(p) => p,
        other => panic!("{other:?}"),
    }
}

/// Read on the public key: SoftHSM answers CKR_GENERAL_ERROR to reading
/// CKA_END_DATE of its (encrypted-at-rest) private key objects this way.
fn end_date_set(s: &Session, id: &[u8]) -> bool {
    let h = by_id(s, id, ObjectClass::PUBLIC_KEY)[0];
    match s
        .get_attributes(h, &[AttributeType::EndDate])
        .unwrap()
        .pop()
    {
        Some(Attribute::EndDate(d)) => !d.is_empty(),
        _ => false,
    }
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

fn versions(k: &Keys) -> Vec<Value> {
    k.json(&["show", LABEL])["versions"]
        .as_array()
        .unwrap()
        .clone()
}

/// A managed P-256 signing key "app-sign" with CKA_ID a1.
fn adopted() -> Keys {
    let k = Keys::new();
    k.token(|s| generate(s, LABEL, &[0xa1]));
    let out = k.ok(&["adopt", LABEL]);
    assert!(out.contains("version 1"), "{out}");
    k
}

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
