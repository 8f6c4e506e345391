//! Tests that need other processes: many writers at once, a process killed inside a
//! rotation, a real read-only mount.
//!
//! Children are this test binary run again on one `#[ignore]`d test (`--exact
//! --ignored`), told what to do by environment variables; run without them, the child
//! tests do nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::tests::{fresh, new_key, new_version, open_in};
use super::*;
use crate::store::Store;

const DIR_ENV: &str = "KEYWARDEN_TEST_STORE_DIR";
const ARG_ENV: &str = "KEYWARDEN_TEST_CHILD_ARG";

fn child(test: &str, dir: &Path, arg: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        &format!("store::sqlite::tests_procs::{test}"),
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(DIR_ENV, dir)
    .env(ARG_ENV, arg)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn child_env() -> Option<(PathBuf, String)> {
    Some((
        std::env::var_os(DIR_ENV)?.into(),
        std::env::var(ARG_ENV).ok()?,
    ))
}

fn check(out: &Output, who: &str) {
    assert!(
        out.status.success(),
        "{who} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Children wait for this file so that they all start at once.
fn wait_for_go(dir: &Path) {
    let start = Instant::now();
    while !dir.join("go").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const WORKERS: usize = 6;
const ITERATIONS: u64 = 30;

#[test]
fn many_processes_create_the_store_at_once() {
    let d = tempfile::tempdir().unwrap();
    let kids: Vec<_> = (0..WORKERS)
        .map(|i| {
            child("first_open_child", d.path(), &i.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(d.path().join("go"), b"").unwrap();
    for (i, k) in kids.into_iter().enumerate() {
        check(&k.wait_with_output().unwrap(), &format!("child {i}"));
    }
    let s = open_in(d.path());
    assert_eq!(s.schema_version().unwrap(), crate::store::SCHEMA_VERSION);
    assert_eq!(
        s.list_keys().unwrap().len(),
        WORKERS,
        "one migration, every key kept"
    );
    s.integrity_check().unwrap();
}

#[test]
#[ignore = "child process of many_processes_create_the_store_at_once"]
fn first_open_child() {
    let Some((dir, arg)) = child_env() else {
        return;
    };
    wait_for_go(&dir);
    let s = open_in(&dir);
    let k = s.create_key(&new_key(&format!("child-{arg}")), 1).unwrap();
    s.add_version(k.id, &new_version(arg.as_bytes()), KeyState::Active, 1)
        .unwrap();
}

#[test]
fn many_processes_write_at_once_without_lost_updates_or_lock_errors() {
    let (d, s) = fresh();
    let k = s.create_key(&new_key("shared"), 1).unwrap();
    let v1 = s
        .add_version(k.id, &new_version(b"shared-1"), KeyState::Active, 1)
        .unwrap();
    let kids: Vec<_> = (0..WORKERS)
        .map(|i| {
            child("writer_child", d.path(), &i.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    std::fs::write(d.path().join("go"), b"").unwrap();
    let mut rotations = 0;
    for (i, k) in kids.into_iter().enumerate() {
        let out = k.wait_with_output().unwrap();
        check(&out, &format!("writer {i}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.split("ROTATIONS ").nth(1))
            .unwrap();
        rotations += line.trim().parse::<usize>().unwrap();
    }
    eprintln!(
        "{WORKERS} writers x {ITERATIONS} iterations in {:?}; {rotations} rotations won",
        t.elapsed()
    );
    let total = WORKERS as u64 * ITERATIONS;
    let u = s.version(v1.id).unwrap().unwrap().usage;
    assert_eq!((u.ops, u.bytes), (total, total * 10), "no lost increment");
    let versions = s.versions(k.id).unwrap();
    assert_eq!(
        versions.len(),
        1 + rotations,
        "exactly one version per won rotation"
    );
    assert!(rotations >= 1);
    let active: Vec<_> = versions
        .iter()
        .filter(|v| v.state == KeyState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0].version as usize,
        versions.len(),
        "the newest is the active one"
    );
    let numbers: Vec<u32> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (1..=versions.len() as u32).collect::<Vec<_>>());
    // Every child's own key went through its suspend/resume cycles.
    assert_eq!(s.list_keys().unwrap().len(), 1 + WORKERS);
    s.integrity_check().unwrap();
}

#[test]
#[ignore = "child process of many_processes_write_at_once_without_lost_updates_or_lock_errors"]
fn writer_child() {
    let Some((dir, me)) = child_env() else { return };
    wait_for_go(&dir);
    // The default (documented) busy timeout: any Locked error fails the test.
    let s = open_in(&dir);
    let shared = s.keys_by_label("shared").unwrap()[0].id;
    let v1 = s.versions(shared).unwrap()[0].id;
    let own = s.create_key(&new_key(&format!("own-{me}")), 1).unwrap();
    let ov = s
        .add_version(
            own.id,
            &new_version(format!("own-{me}").as_bytes()),
            KeyState::Active,
            1,
        )
        .unwrap();
    let mut won = 0;
    for i in 0..ITERATIONS {
        s.add_usage(&[UsageDelta {
            version: v1,
            ops: 1,
            bytes: 10,
            last_use_at: 5,
        }])
        .unwrap();
        let to = if i % 2 == 0 {
            KeyState::Suspended
        } else {
            KeyState::Active
        };
        s.set_state(ov.id, to, None, 2).unwrap();
        if i % 5 == 0 {
            let active = s
                .versions(shared)
                .unwrap()
                .into_iter()
                .find(|v| v.state == KeyState::Active);
            let cka = format!("shared-{me}-{i}");
            match s.rotate(
                shared,
                active.map(|v| v.id),
                &new_version(cka.as_bytes()),
                None,
                3,
            ) {
                Ok(_) => won += 1,
                Err(StoreError::Conflict(_)) => {} // another writer rotated first
                Err(e) => panic!("rotate: {e}"),
            }
        }
    }
    println!("ROTATIONS {won}");
}

#[test]
fn a_process_killed_inside_a_rotation_leaves_the_old_version_active() {
    for step in ["inserted", "deactivated", "activated"] {
        let (d, s) = fresh();
        let k = s.create_key(&new_key("k"), 1).unwrap();
        let v1 = s
            .add_version(k.id, &new_version(b"v1"), KeyState::Active, 1)
            .unwrap();
        let before = s.snapshot().unwrap();
        let out = child("killed_rotation_child", d.path(), step)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{step}: the child should have been killed"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("REACHED {step}")),
            "{step}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The same connection and a fresh one both see the old state, intact.
        assert_eq!(s.snapshot().unwrap(), before, "{step}");
        drop(s);
        let s = open_in(d.path());
        s.integrity_check().unwrap();
        let versions = s.versions(k.id).unwrap();
        assert_eq!(versions.len(), 1, "{step}");
        assert_eq!(
            (versions[0].id, versions[0].state),
            (v1.id, KeyState::Active)
        );
        assert_eq!(s.change_seq().unwrap(), before.change_seq);
    }
}

#[test]
#[ignore = "child process of a_process_killed_inside_a_rotation_leaves_the_old_version_active"]
fn killed_rotation_child() {
    let Some((dir, step)) = child_env() else {
        return;
    };
    let s = open_in(&dir);
    let k = s.list_keys().unwrap()[0].id;
    let active = s.versions(k).unwrap()[0].id;
    let target = match step.as_str() {
        "inserted" => RotateStep::Inserted,
        "deactivated" => RotateStep::Deactivated,
        _ => RotateStep::Activated,
    };
    let _ = s.rotate_with(k, Some(active), &new_version(b"v2"), None, 9, &mut |at| {
        if at == target {
            println!("REACHED {step}");
            // SIGKILL: no unwinding, no rollback by us, no close — a real crash.
            let _ = Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(10));
        }
        Ok(())
    });
    println!("NOT KILLED");
}

/// Runs `child_test` inside a private mount namespace where `dir` is bind-mounted
/// read-only: read-only for root too, as on a read-only filesystem. `None` when this
/// machine cannot make mount namespaces (then the test says so and proves nothing).
fn in_read_only_mount(dir: &Path, child_test: &str) -> Option<Output> {
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        eprintln!("SKIPPED: cannot create a mount namespace here ({probe:?})");
        return None;
    }
    let me = child(child_test, dir, "");
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(dir)
        .arg(me.get_program())
        .args(me.get_args())
        .env(DIR_ENV, dir)
        .env(ARG_ENV, "");
    Some(c.output().unwrap())
}

#[test]
fn a_read_only_mount_is_refused_with_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let existing = d.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    open_in(&existing).create_key(&new_key("k"), 1).unwrap();
    std::fs::create_dir(d.path().join("empty")).unwrap();
    if let Some(out) = in_read_only_mount(d.path(), "read_only_child") {
        check(&out, "read-only child");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("CHECKED read-only"), "{text}");
    }
    // Outside the namespace the store is untouched and writable.
    open_in(&existing).create_key(&new_key("k2"), 2).unwrap();
}

#[test]
#[ignore = "child process of a_read_only_mount_is_refused_with_a_clear_error"]
fn read_only_child() {
    let Some((dir, _)) = child_env() else { return };
    // The mount really refuses root: otherwise this test would prove nothing.
    let err = std::fs::write(dir.join("probe"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS expected: {err}");
    for sub in ["existing", "empty"] {
        match SqliteStore::open(&dir.join(sub), &OpenOptions::default()) {
            Err(e @ StoreError::ReadOnly { .. }) => println!("{sub}: {e}"),
            other => panic!("{sub}: {other:?}"),
        }
    }
    println!("CHECKED read-only");
}

#[test]
fn an_immutable_database_file_is_refused() {
    let (d, s) = fresh();
    drop(s);
    let db = d.path().join(DB_FILE);
    let set = |flag: &str| Command::new("chattr").arg(flag).arg(&db).output();
    match set("+i") {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("SKIPPED: chattr +i is not available here ({other:?})");
            return;
        }
    }
    struct Unset<'a>(&'a dyn Fn(&str) -> std::io::Result<Output>);
    impl Drop for Unset<'_> {
        fn drop(&mut self) {
            let _ = (self.0)("-i");
        }
    }
    let _unset = Unset(&set);
    // Root cannot open an immutable file for writing; SQLite falls back to read-only.
    assert!(std::fs::OpenOptions::new().write(true).open(&db).is_err());
    match SqliteStore::open(d.path(), &OpenOptions::default()) {
        Err(StoreError::ReadOnly { .. }) => {}
        other => panic!("{other:?}"),
    }
}
