//! The store's and the trail's files on disk: modes `init` gives them whatever the
//! umask, files others can write (or read, for the store and the seal key) refused
//! by the module and the CLI with the fix, links planted in the directories never
//! followed by root, and a deleted store refused rather than silently recreated.
mod common;
mod lifecycle_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use common::TestEnv;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `keywarden ARGS` in `env`, `stdin` fed to it.
fn run(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    let mut c = env.command(common::keywarden_bin());
    c.args(args);
    common::run_with_stdin(c, stdin)
}

/// `keywarden init` run under `umask 000`, into DIR.
fn init_with_umask_000(dir: &Path, extra: &[&str]) {
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(common::keywarden_bin())
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--backend", common::SOFTHSM_MODULE])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// C_Initialize of the module in this process.
fn c_initialize() -> Result<cryptoki::context::Pkcs11, cryptoki::error::Error> {
    let p11 = cryptoki::context::Pkcs11::new(common::keywarden_module()).unwrap();
    p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ))
    .map(|()| p11)
}

fn general_error(r: Result<cryptoki::context::Pkcs11, cryptoki::error::Error>) {
    assert!(
        matches!(
            r,
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::GeneralError,
                _
            ))
        ),
        "{:?}",
        r.map(|_| ())
    );
}

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Low"
[roles]
users = { members = ["*"], clearance = "High" }
[[rule]]
id = "all"
roles = ["users"]
ops = ["*"]
"#;

#[test]
fn init_under_a_permissive_umask_leaves_no_hash_readable_by_others() {
    let t = tempfile::tempdir().unwrap();
    init_with_umask_000(t.path(), &[]);
    let (store, audit) = (t.path().join("store"), t.path().join("audit"));
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&audit), 0o700);
    assert_eq!(mode(&store.join("keywarden.db")), 0o600);
    assert_eq!(mode(&audit.join("audit.head")), 0o600);
    for f in keywarden::audit::list_files(&audit).unwrap() {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn init_with_a_group_shares_the_directories_with_that_group_only() {
    let t = tempfile::tempdir().unwrap();
    init_with_umask_000(t.path(), &["--group", "4545"]);
    for d in ["store", "audit"] {
        let p = t.path().join(d);
        assert_eq!(mode(&p), 0o2770, "{d}");
        assert_eq!(std::fs::metadata(&p).unwrap().gid(), 4545, "{d}");
    }
    let db = t.path().join("store/keywarden.db");
    assert_eq!(mode(&db), 0o660);
    assert_eq!(std::fs::metadata(&db).unwrap().gid(), 4545);
    let conf = std::fs::read_to_string(t.path().join("keywarden.toml")).unwrap();
    assert_eq!(conf.matches("\ngroup = \"4545\"").count(), 2, "{conf}");
}

#[test]
fn a_store_readable_by_others_is_refused_by_the_module_the_cli_and_doctor() {
    let env = TestEnv::new();
    env.enforce(POLICY);
    let db = env.path().join("store/keywarden.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    general_error(c_initialize());
    let out = run(&env, &["keys", "list"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains(&format!("chmod o-rwx {}", db.display())),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
    let out = run(&env, &["doctor"], "");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("chmod o-rwx {}", db.display())),
        "{}",
        text(&out)
    );
}

#[test]
fn a_trail_or_seal_key_others_can_write_is_refused_with_the_fix() {
    let env = TestEnv::new();
    let audit = env.path().join("audit");
    let head = audit.join("audit.head");
    std::fs::set_permissions(&head, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&env, &["users", "add", "alice"], "alice-secret-1\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("chmod o-w {}", head.display())),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&head, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A software seal key anyone may read seals nothing.
    let key = env.path().join("seal.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let conf = conf.replace(
        "# seal_key_file = \"/etc/keywarden/audit-seal.key\"",
        &format!("seal_key_file = \"{}\"", key.display()),
    );
    std::fs::write(&env.keywarden_conf, conf).unwrap();
    let out = run(&env, &["users", "add", "alice"], "alice-secret-1\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("chmod o-rwx {}", key.display())),
        "{}",
        text(&out)
    );
    general_error(c_initialize());
    let out = run(&env, &["doctor"], "");
    assert!(
        text(&out).contains(&format!("chmod o-rwx {}", key.display())),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&env, &["users", "add", "alice"], "alice-secret-1\n");
    assert!(out.status.success(), "{}", text(&out));
}

/// The application's user plants links in the directories it shares; root's CLI
/// must refuse them and leave their targets alone.
#[test]
fn root_cli_refuses_links_planted_in_the_audit_and_store_directories() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("root-owned");
    std::fs::write(&target, "keep\n").unwrap();
    let untouched = || {
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        let m = std::fs::metadata(&target).unwrap();
        assert_eq!((m.uid(), m.len()), (0, 5));
    };
    let audit = env.path().join("audit");
    let plant = |link: &Path| {
        std::fs::remove_file(link).unwrap();
        std::os::unix::fs::symlink(&target, link).unwrap();
    };
    let refused = |what: &str| {
        let out = run(&env, &["users", "add", "alice"], "alice-secret-1\n");
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(
            text(&out).contains("symbolic link"),
            "{what}: {}",
            text(&out)
        );
        untouched();
    };
    // The head (the lock, rewritten in place at every append).
    let head = audit.join("audit.head");
    let saved = std::fs::read(&head).unwrap();
    plant(&head);
    refused("audit.head");
    std::fs::remove_file(&head).unwrap();
    std::fs::write(&head, saved).unwrap();
    std::fs::set_permissions(&head, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The day's trail file.
    let files = keywarden::audit::list_files(&audit).unwrap();
    let day = files.last().unwrap();
    plant(day);
    refused("the day's trail file");
    std::fs::remove_file(day).unwrap();
    // A hard link to a file elsewhere, in place of the trail file.
    std::fs::hard_link(&target, day).unwrap();
    refused_hard_link(&env, &untouched);
    std::fs::remove_file(day).unwrap();
    // The store's WAL (SQLite opens it by path).
    let wal = env.path().join("store/keywarden.db-wal");
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&target, &wal).unwrap();
    refused("keywarden.db-wal");
    // The store directory itself.
    std::fs::remove_file(&wal).unwrap();
    let store = env.path().join("store");
    let real = env.path().join("store.real");
    std::fs::rename(&store, &real).unwrap();
    std::os::unix::fs::symlink(&real, &store).unwrap();
    refused("the store directory");
}

fn refused_hard_link(env: &TestEnv, untouched: &dyn Fn()) {
    let out = run(env, &["users", "add", "alice"], "alice-secret-1\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("hard links"), "{}", text(&out));
    untouched();
}

#[test]
fn a_deleted_store_is_refused_by_the_module_and_the_cli_not_recreated_empty() {
    let env = TestEnv::new();
    env.enforce(POLICY);
    assert!(run(&env, &["users", "add", "alice"], "alice-secret-1\n")
        .status
        .success());
    let store = env.path().join("store");
    for f in ["keywarden.db", "keywarden.db-wal", "keywarden.db-shm"] {
        let _ = std::fs::remove_file(store.join(f));
    }
    general_error(c_initialize());
    for args in [
        &["keys", "list"][..],
        &["users", "list"],
        &["users", "add", "bob"],
    ] {
        let out = run(&env, args, "bob-secret-12\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("does not exist") && text(&out).contains("keywarden init"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(!store.join("keywarden.db").exists(), "never recreated");
}

/// `audit verify`, `search` and `tail` (often run as root) never read through a
/// trail file an application replaced with a link.
#[test]
fn trail_readers_do_not_follow_a_planted_link() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("secret");
    std::fs::write(&target, "{\"seq\":0,\"SECRET-CONTENT\":1}\n").unwrap();
    let audit = env.path().join("audit");
    let day = keywarden::audit::list_files(&audit).unwrap().pop().unwrap();
    std::fs::remove_file(&day).unwrap();
    std::os::unix::fs::symlink(&target, &day).unwrap();
    for args in [
        &["audit", "verify"][..],
        &["audit", "search"],
        &["audit", "tail"],
    ] {
        let out = run(&env, args, "");
        let msg = text(&out);
        assert!(!msg.contains("SECRET-CONTENT"), "{args:?}: {msg}");
        assert!(!out.status.success(), "{args:?}: {msg}");
        assert!(msg.contains("symbolic links"), "{args:?}: {msg}");
    }
}

/// `keys suspend` as root with `audit.head` replaced by a link: refused before the
/// store changes, the link's target untouched.
#[test]
fn root_keys_suspend_refuses_a_planted_head_link_and_changes_nothing() {
    use lifecycle_support::*;
    let lc = Lc::new(&policy("", ""));
    lc.direct(|s| generate(s, "app-sign", Some(&[0xa1])));
    lc.ok(&["adopt", "app-sign"]);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("root-owned");
    std::fs::write(&target, "keep\n").unwrap();
    let head = lc.env.path().join("audit/audit.head");
    std::fs::remove_file(&head).unwrap();
    std::os::unix::fs::symlink(&target, &head).unwrap();
    let out = lc.run(&["suspend", "--reason", "drill", "app-sign"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("symbolic link") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    assert_eq!(lc.versions("app-sign")[0]["state"], "active");
}
