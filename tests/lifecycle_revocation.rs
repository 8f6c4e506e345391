//! Revocation wins over a held store lock (docs/store.md, "Revocation while the
//! store is locked"): a process holding the store's write lock (`BEGIN IMMEDIATE`)
//! cannot keep a compromised key in use. `keys compromise` writes the revocation
//! side file first; a running signer is refused within 1 s even though the
//! database could not be written, and the command fails loudly naming the lock.
mod common;
mod lifecycle_support;

use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::object::ObjectClass;
use lifecycle_support::*;

const LABEL: &str = "app-sign";
const ID1: &[u8] = &[0xa1];

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_held_store_write_lock_does_not_keep_a_compromised_key_signing() {
    let lc = Lc::new(&policy("", ""));
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    lc.ok(&["adopt", LABEL]);
    // A short busy timeout keeps the test quick; the bound does not depend on it.
    let conf = std::fs::read_to_string(&lc.env.keywarden_conf).unwrap();
    std::fs::write(
        &lc.env.keywarden_conf,
        conf.replace("# busy_timeout_ms = 2000", "busy_timeout_ms = 300"),
    )
    .unwrap();
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, ObjectClass::PRIVATE_KEY));
    sign(&s, key).unwrap();

    // The application (here: this process, another connection) holds the lock.
    let holder = rusqlite::Connection::open(lc.env.path().join("store/keywarden.db")).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE managed_keys SET owner = owner;")
        .unwrap();
    let out = lc.run(&["compromise", "--reason", "key file leaked", LABEL]);
    let cli_done = Instant::now();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "fails loudly: {msg}");
    assert!(msg.contains("is locked"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "names the holder: {msg}"
    );
    assert!(msg.contains("keywarden.revoked"), "{msg}");
    // Refused within the bound while the lock is still held.
    let refused = loop {
        match sign(&s, key) {
            Ok(_) => {}
            Err(rv) => break rv,
        }
        assert!(
            cli_done.elapsed() < Duration::from_secs(1),
            "still signing 1 s after `keys compromise` under a held lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(refused, RvError::KeyFunctionNotPermitted);
    println!("refused {:?} after the command exited", cli_done.elapsed());

    // `doctor` names what the store still has to be told.
    let doctor = || {
        let out = lc
            .env
            .command(common::keywarden_bin())
            .arg("doctor")
            .output()
            .unwrap();
        text(&out)
    };
    let report = doctor();
    assert!(
        report.contains("keywarden.revoked names \"app-sign\" version 1 as compromised"),
        "{report}"
    );

    // Once the lock is released the command records it in the store too.
    holder.execute_batch("ROLLBACK").unwrap();
    lc.ok(&["compromise", "--reason", "key file leaked", LABEL]);
    assert!(!doctor().contains("keywarden.revoked names"));
    assert_eq!(lc.versions(LABEL)[0]["state"], "compromised");
    assert_eq!(sign(&s, key), Err(RvError::KeyFunctionNotPermitted));
    drop(s);
    p11.finalize().unwrap();
}

#[test]
fn an_unreadable_revocation_file_refuses_key_use() {
    let lc = Lc::new(&policy("", ""));
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    lc.ok(&["adopt", LABEL]);
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, ObjectClass::PRIVATE_KEY));
    sign(&s, key).unwrap();
    // Someone who may write the directory replaces the side file with a link.
    let revoked = lc.env.path().join("store/keywarden.revoked");
    std::os::unix::fs::symlink("/etc/hostname", &revoked).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let rv = loop {
        if let Err(rv) = sign(&s, key) {
            break rv;
        }
        assert!(Instant::now() < deadline, "still signing");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(rv, RvError::GeneralError, "fail closed");
    drop(s);
    p11.finalize().unwrap();
}
