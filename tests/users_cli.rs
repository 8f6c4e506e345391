//! `keywarden users` and the store part of `keywarden doctor`, run as a user would.
//! No token needed: only the store directory of a throw-away configuration.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keywarden::store::{identity, OpenOptions, SqliteStore, Store};

struct Env {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["store", "audit"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let conf = dir.path().join("keywarden.toml");
        std::fs::write(
            &conf,
            format!(
                "[backend]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
                 [policy]\nprofile = \"transparent\"\n\
                 [store]\ndir = \"{0}/store\"\n[audit]\ndir = \"{0}/audit\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        // What `keywarden init` does: only it creates a store.
        SqliteStore::create(&dir.path().join("store"), &OpenOptions::default()).unwrap();
        Env { dir, conf }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `keywarden ARGS --config CONF`, `stdin` fed to it (not a terminal).
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keywarden"));
        c.args(args)
            .arg("--config")
            .arg(&self.conf)
            .env_remove("KEYWARDEN_CONF");
        common::run_with_stdin(c, stdin)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    text(&o)
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[test]
fn add_list_passwd_remove_round_trip() {
    let env = Env::new();
    let out = ok(env.run(
        &[
            "users", "add", "alice", "--role", "signer", "--role", "admin",
        ],
        "alice-secret-1\n",
    ));
    assert!(
        out.contains("added identity alice (roles: admin,signer)"),
        "{out}"
    );
    assert!(!out.contains("alice-secret-1"), "{out}");
    ok(env.run(&["users", "add", "bob"], "bob-secret-12"));

    let table = ok(env.run(&["users", "list"], ""));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("alice") && lines[1].contains("admin,signer"),
        "{table}"
    );
    assert!(lines[1].ends_with("enabled"), "{table}");
    assert!(lines[2].starts_with("bob"), "{table}");
    assert!(!table.contains("argon2"), "no hashes in listings: {table}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(env.run(&["users", "list", "--json"], ""))).unwrap();
    assert_eq!(json[0]["name"], "alice");
    assert_eq!(json[0]["roles"], serde_json::json!(["admin", "signer"]));
    assert_eq!(json[1]["disabled"], false);
    assert!(json[0]["created_at"].as_i64().unwrap() > 1_600_000_000);
    assert!(json[0].get("phc").is_none() && json[0].get("hash").is_none());

    // What the CLI stored is what a login checks.
    let store = SqliteStore::open(&env.store_dir(), &OpenOptions::default()).unwrap();
    assert!(identity::verify(&store, "alice", b"alice-secret-1")
        .unwrap()
        .is_some());
    ok(env.run(&["users", "passwd", "alice"], "alice-secret-2\r\n"));
    assert!(identity::verify(&store, "alice", b"alice-secret-1")
        .unwrap()
        .is_none());
    assert!(identity::verify(&store, "alice", b"alice-secret-2")
        .unwrap()
        .is_some());

    ok(env.run(&["users", "disable", "alice"], ""));
    assert!(ok(env.run(&["users", "list"], "")).contains("disabled"));
    assert!(identity::verify(&store, "alice", b"alice-secret-2")
        .unwrap()
        .is_none());
    ok(env.run(&["users", "enable", "alice"], ""));
    assert!(identity::verify(&store, "alice", b"alice-secret-2")
        .unwrap()
        .is_some());

    assert!(ok(env.run(&["users", "remove", "alice"], "")).contains("removed identity alice"));
    assert_eq!(store.identities().unwrap().len(), 1);
    drop(store);
    for secret in ["alice-secret-1", "alice-secret-2", "bob-secret-12"] {
        assert!(
            !files_contain(&env.store_dir(), secret.as_bytes()),
            "{secret} in the store"
        );
    }

    // Every change, and a refused one, is an admin record in the trail; no secret is.
    fails(env.run(&["users", "remove", "nobody"], ""));
    let audit = env.dir.path().join("audit");
    for secret in ["alice-secret-1", "alice-secret-2", "bob-secret-12"] {
        assert!(
            !files_contain(&audit, secret.as_bytes()),
            "{secret} in the trail"
        );
    }
    let found = ok(env.run(&["audit", "search", "--format", "jsonl"], ""));
    let records: Vec<(String, String, String)> = found
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|r| assert_eq!(r["kind"], "admin", "{r}"))
        .map(|r| {
            let s = |f: &str| r[f].as_str().unwrap_or("-").to_owned();
            (s("action"), s("target"), s("outcome"))
        })
        .collect();
    let store = env.store_dir().display().to_string();
    let expected: Vec<(String, String, String)> = [
        // The first change binds the new store to the (new) trail.
        ("audit.bind", store.as_str(), "ok"),
        ("users.add", "alice", "ok"),
        ("users.add", "bob", "ok"),
        ("users.passwd", "alice", "ok"),
        ("users.disable", "alice", "ok"),
        ("users.enable", "alice", "ok"),
        ("users.remove", "alice", "ok"),
        ("users.remove", "nobody", "error"),
    ]
    .iter()
    .map(|(a, t, o)| (a.to_string(), t.to_string(), o.to_string()))
    .collect();
    assert_eq!(records, expected);
    assert!(
        found.contains("\"detail\":\"roles: admin,signer\""),
        "{found}"
    );
    ok(env.run(&["audit", "verify"], ""));
}

#[test]
fn refusals_are_clear_and_exit_1() {
    let env = Env::new();
    ok(env.run(&["users", "add", "alice"], "alice-secret-1\n"));
    let out = fails(env.run(&["users", "add", "alice"], "another-secret\n"));
    assert!(out.contains("already exists"), "{out}");
    let out = fails(env.run(&["users", "add", "carol"], "short\n"));
    assert!(
        out.contains("8 to 128 bytes") && !out.contains("short\n"),
        "{out}"
    );
    let out = fails(env.run(&["users", "add", "carol"], ""));
    assert!(out.contains("no secret on standard input"), "{out}");
    let out = fails(env.run(&["users", "add", "car:ol"], "carol-secret-1\n"));
    assert!(out.contains("identity name"), "{out}");
    let out = fails(env.run(
        &["users", "add", "carol", "--role", "bad role"],
        "carol-secret-1\n",
    ));
    assert!(out.contains("role name"), "{out}");
    let out = fails(env.run(&["users", "remove", "nobody"], ""));
    assert!(out.contains("not found: identity \"nobody\""), "{out}");
    let out = fails(env.run(&["users", "passwd", "nobody"], "nobody-secret\n"));
    assert!(out.contains("not found"), "{out}");
    // The secret has no command-line option at all.
    let out = fails2(env.run(&["users", "add", "dave", "--secret", "x"], ""));
    assert!(out.contains("--secret"), "{out}");
    let listed = ok(env.run(&["users", "list", "--json"], ""));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// clap's usage errors exit with 2.
fn fails2(o: Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    text(&o)
}

#[test]
fn the_config_comes_from_keywarden_conf_and_a_missing_store_dir_fails_closed() {
    let env = Env::new();
    let mut c = Command::new(env!("CARGO_BIN_EXE_keywarden"));
    c.args(["users", "add", "alice"])
        .env("KEYWARDEN_CONF", &env.conf);
    assert!(common::run_with_stdin(c, "alice-secret-1\n")
        .status
        .success());
    let mut c = Command::new(env!("CARGO_BIN_EXE_keywarden"));
    c.args(["users", "list"]).env("KEYWARDEN_CONF", &env.conf);
    assert!(text(&common::run_with_stdin(c, "")).contains("alice"));

    std::fs::remove_dir_all(env.store_dir()).unwrap();
    let out = fails(env.run(&["users", "list"], ""));
    assert!(out.contains("does not exist"), "{out}");
    assert!(!env.store_dir().exists(), "never created by a listing");
}

#[test]
fn doctor_reports_the_store() {
    let env = Env::new();
    let db = env.store_dir().join("keywarden.db");
    std::fs::remove_file(&db).unwrap();
    let o = env.run(&["doctor"], "");
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("PROBLEM") && out.contains("does not exist"),
        "{out}"
    );
    assert!(!db.exists(), "doctor does not create the store");
    SqliteStore::create(&env.store_dir(), &OpenOptions::default()).unwrap();

    ok(env.run(&["users", "add", "alice"], "alice-secret-1\n"));
    let out = text(&env.run(&["doctor"], ""));
    assert!(
        out.contains(&format!(
            "schema v{v} (this build: v{v}), integrity ok; 0 managed keys, 0 versions, 1 identities",
            v = keywarden::store::SCHEMA_VERSION
        )),
        "{out}"
    );

    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let _ = std::fs::remove_file(env.store_dir().join("keywarden.db-wal"));
    let _ = std::fs::remove_file(env.store_dir().join("keywarden.db-shm"));
    let o = env.run(&["doctor"], "");
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("PROBLEM") && out.contains("corrupt"), "{out}");
}
