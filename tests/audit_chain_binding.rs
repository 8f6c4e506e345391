//! The store knows which audit chain records its changes: a second configuration
//! pointing at the same store but another audit directory is refused by the CLI
//! (exit 1, nothing changed) and by the module (`C_Initialize` →
//! `CKR_GENERAL_ERROR`); a store that predates the binding adopts its trail once,
//! recorded; `init --force` rebinds.
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use keywarden::store::{OpenOptions, SqliteStore, Store};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn users_add(env: &common::TestEnv, conf: &Path, name: &str) -> Output {
    let mut c = env.command(common::keywarden_bin());
    c.args(["users", "add", name, "--role", "admin", "--config"])
        .arg(conf);
    common::run_with_stdin(c, "a-long-enough-secret\n")
}

/// A copy of the test configuration whose trail is another, empty directory.
fn throwaway_config(env: &common::TestEnv) -> PathBuf {
    let other = env.path().join("throwaway-audit");
    std::fs::create_dir(&other).unwrap();
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let old = format!("\"{}\"", env.path().join("audit").display());
    assert!(conf.contains(&old), "{conf}");
    let conf = conf.replacen(&old, &format!("\"{}\"", other.display()), 1);
    let path = env.path().join("throwaway.toml");
    std::fs::write(&path, conf).unwrap();
    path
}

fn store(env: &common::TestEnv) -> SqliteStore {
    SqliteStore::open(&env.path().join("store"), &OpenOptions::default()).unwrap()
}

fn trail_text(env: &common::TestEnv) -> String {
    keywarden::audit::list_files(&env.path().join("audit"))
        .unwrap()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[test]
fn adding_an_admin_through_a_config_with_a_throwaway_trail_is_refused() {
    let env = common::TestEnv::new();
    // `keywarden init` bound the store to its trail.
    let chain = keywarden::audit::chain_id(&env.path().join("audit"))
        .unwrap()
        .expect("init started the chain");
    assert_eq!(store(&env).audit_chain().unwrap(), Some(chain.clone()));

    let out = users_add(&env, &throwaway_config(&env), "evil");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("records its changes in audit chain {chain}"))
            && text(&out).contains("refusing"),
        "{}",
        text(&out)
    );
    assert!(store(&env).identities().unwrap().is_empty());

    // Through the store's own trail the same change is made and recorded.
    let out = users_add(&env, &env.keywarden_conf, "admin1");
    assert!(out.status.success(), "{}", text(&out));
    assert!(trail_text(&env).contains("\"action\":\"users.add\""));
}

#[test]
fn the_module_refuses_a_config_whose_trail_is_another_chain() {
    let env = common::token_with_signing_key("k");
    env.enforce("version = 1\n");
    // The store's own trail: the module starts.
    let p11 = common::load(&common::keywarden_module());
    p11.finalize().unwrap();
    let other = throwaway_config(&env);
    std::env::set_var("KEYWARDEN_CONF", &other);
    let p11 = cryptoki::context::Pkcs11::new(common::keywarden_module()).unwrap();
    let got = p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    std::env::set_var("KEYWARDEN_CONF", &env.keywarden_conf);
    match got {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => {
            assert_eq!(rv, cryptoki::error::RvError::GeneralError)
        }
        other => panic!("C_Initialize with a throwaway trail: {other:?}"),
    }
}

#[test]
fn a_store_that_predates_the_binding_adopts_its_trail_once() {
    let env = common::TestEnv::new();
    let db = rusqlite::Connection::open(env.path().join("store/keywarden.db")).unwrap();
    db.execute("UPDATE meta SET audit_chain = NULL", [])
        .unwrap();
    drop(db);
    let out = users_add(&env, &env.keywarden_conf, "alice");
    assert!(out.status.success(), "{}", text(&out));
    let chain = keywarden::audit::chain_id(&env.path().join("audit"))
        .unwrap()
        .unwrap();
    assert_eq!(store(&env).audit_chain().unwrap(), Some(chain.clone()));
    assert!(
        trail_text(&env).contains(&format!("store bound to audit chain {chain}")),
        "the adoption is recorded"
    );
    // Once: from then on another trail is refused.
    let out = users_add(&env, &throwaway_config(&env), "evil");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn init_force_rebinds_the_store_to_a_new_trail() {
    let env = common::TestEnv::new();
    let audit = env.path().join("audit");
    let old = keywarden::audit::chain_id(&audit).unwrap().unwrap();
    // The trail is replaced (moved away): its chain is gone.
    std::fs::rename(&audit, env.path().join("audit.old")).unwrap();
    std::fs::create_dir(&audit).unwrap();
    let out = users_add(&env, &env.keywarden_conf, "alice");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("has no chain id"), "{}", text(&out));

    let out = env
        .command(common::keywarden_bin())
        .args(["init", "--force", "--profile", "transparent", "--dir"])
        .arg(env.path())
        .arg("--backend")
        .arg(common::SOFTHSM_MODULE)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let new = keywarden::audit::chain_id(&audit).unwrap().unwrap();
    assert_ne!(new, old);
    assert_eq!(store(&env).audit_chain().unwrap(), Some(new.clone()));
    assert!(trail_text(&env).contains(&format!("store rebound from audit chain {old} to {new}")));
    let out = users_add(&env, &env.keywarden_conf, "alice");
    assert!(out.status.success(), "{}", text(&out));
}
