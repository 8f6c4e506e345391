//! Automatic rotation at first use after the due date (`when_due = "rotate"`),
//! through the cdylib: two processes racing to use a due key make exactly one new
//! version, both go on signing, and a search by label then finds the new version.
//! The test re-executes its own binary as the two racing processes; the module's
//! clock is moved past the originator period with `KEYWARDEN_NOW`.
mod common;
mod lifecycle_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cryptoki::object::{AttributeType, ObjectClass};
use lifecycle_support::*;

const LABEL: &str = "app-auto";
const ID1: &[u8] = &[0xe1];
const CHILD_ENV: &str = "KEYWARDEN_TEST_ROTATE_CHILD";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `n` children have written their ready file; a child that exits
/// first (or a 20 s deadline) fails the test with every child's output.
fn wait_ready(sync: &Path, n: usize, children: &mut Vec<std::process::Child>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(sync).unwrap().count() < n {
        let died = children
            .iter_mut()
            .any(|c| matches!(c.try_wait(), Ok(Some(_))));
        if died || Instant::now() > deadline {
            let outs: Vec<String> = children
                .drain(..)
                .map(|mut c| {
                    let _ = c.kill();
                    let o = c.wait_with_output().unwrap();
                    let (out, err) = (o.stdout, o.stderr);
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&err)
                    )
                })
                .collect();
            panic!("children not ready:\n{}", outs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One racing process: ready, wait for "go", sign with the key found by label
/// (the first use after the due date), then search by label again and sign.
#[test]
fn racing_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return; // only meaningful when re-executed by the test below
    };
    let me = std::process::id();
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let old = one(by_label(&s, LABEL, ObjectClass::PRIVATE_KEY));
    std::fs::write(dir.join(format!("ready-{me}")), b"").unwrap();
    wait_for(&dir.join("go"), "go");
    let first = sign(&s, old);
    let new = one(by_label(&s, LABEL, ObjectClass::PRIVATE_KEY));
    let id = attr_bytes(&s, new, AttributeType::Id);
    let second = sign(&s, new);
    println!(
        "RESULT first={:?} second={:?} id={}",
        first.map(|_| ()),
        second.map(|_| ()),
        hex(&id)
    );
    drop(s);
    p11.finalize().unwrap();
}

#[test]
fn two_processes_racing_a_due_key_make_one_new_version() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let lc = Lc::new(&policy("", ROTATE_WHEN_DUE));
    lc.env.clock_override(true);
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    lc.ok(&["adopt", LABEL]);
    let sync = lc.env.path().join("sync");
    std::fs::create_dir(&sync).unwrap();
    let later = keywarden::store::now() + 100 * 86_400;
    // The children set up one after the other: SoftHSM answers a token read with
    // CKR_GENERAL_ERROR while another process writes the token (its C_Login
    // rewrites the token flags), and only the race after "go" is under test.
    let mut children: Vec<std::process::Child> = Vec::new();
    for n in 1..=2 {
        children.push(
            lc.env
                .command(std::env::current_exe().unwrap())
                .args(["racing_child", "--exact", "--nocapture"])
                .env(CHILD_ENV, &sync)
                .env("KEYWARDEN_NOW", later.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        wait_ready(&sync, n, &mut children);
    }
    std::fs::write(sync.join("go"), b"").unwrap();
    let results: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text.lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .unwrap_or_else(|| panic!("no result: {text}"))
                .to_owned()
        })
        .collect();

    let vs = lc.versions(LABEL);
    assert_eq!(vs.len(), 2, "exactly one new version: {vs:?}");
    assert_eq!(vs[0]["state"], "deactivated");
    assert_eq!(vs[1]["state"], "active");
    let new_id = vs[1]["cka_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, hex(ID1));
    for r in &results {
        // The triggering use went on; the label then found version 2, which signs.
        assert_eq!(r, &format!("first=Ok(()) second=Ok(()) id={new_id}"));
    }
    // Exactly the two versions' objects on the token: no orphan of the loser.
    let ids: Vec<Vec<u8>> = lc.direct(|s| {
        find(s, &[])
            .into_iter()
            .map(|h| attr_bytes(s, h, AttributeType::Id))
            .collect()
    });
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.iter().all(|i| i == ID1 || hex(i) == new_id), "{ids:?}");
    // Recorded as an automatic rotation.
    assert!(
        vs[0]["reason"].as_str().unwrap_or("").contains("automatic"),
        "{vs:?}"
    );
}
