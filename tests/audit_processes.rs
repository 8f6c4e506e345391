//! Many processes, one chain: concurrent writers, writers killed with SIGKILL, and
//! the repair of a torn tail. Child writers are this test binary re-executed on the
//! `child_writer` entry with `KW_AUDIT_CHILD` set.

mod audit_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use audit_support::*;
use keywarden::audit::{read_records, verify, AuditLog, Filter, Mode};

const THREADS: u64 = 2;

/// Not a test of its own: the body of a child writer process (does nothing unless
/// started by one of the tests below).
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var("KW_AUDIT_CHILD") else {
        return;
    };
    let mode = if std::env::var("KW_AUDIT_MODE").as_deref() == Ok("required") {
        Mode::Required
    } else {
        Mode::Buffered
    };
    let per_thread: u64 = std::env::var("KW_AUDIT_N").unwrap().parse().unwrap();
    let forever = std::env::var("KW_AUDIT_FOREVER").is_ok();
    let log = AuditLog::open(config(Path::new(&dir), mode), Some(sealer())).unwrap();
    let pid = u64::from(std::process::id());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let log = &log;
            s.spawn(move || {
                let mut i = 0;
                while forever || i < per_thread {
                    let mut e = op(i);
                    e.session = Some(pid * 10 + t);
                    log.append(e).unwrap();
                    i += 1;
                    if forever && i == per_thread && t == 0 {
                        log.flush().unwrap();
                        println!("ready");
                    }
                }
            });
        }
    });
    log.shutdown().unwrap();
}

fn spawn_writer(dir: &Path, mode: &str, n: u64, forever: bool) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("KW_AUDIT_CHILD", dir)
        .env("KW_AUDIT_MODE", mode)
        .env("KW_AUDIT_N", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if forever {
        c.env("KW_AUDIT_FOREVER", "1");
    }
    c.spawn().unwrap()
}

fn op_records(dir: &Path) -> Vec<keywarden::audit::RecordView> {
    let mut all = Vec::new();
    read_records(dir, &Filter::default(), |f| {
        if f.view.kind.as_deref() == Some("op") {
            all.push(f.view);
        }
        true
    })
    .unwrap();
    all
}

fn four_processes(mode: &str, per_thread: u64) {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_writer(dir.path(), mode, per_thread, false))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let r = verify(dir.path(), None, None, Some(&*sealer())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert!(r.truncated_tail.is_none(), "{r}");
    let ops = op_records(dir.path());
    assert_eq!(ops.len() as u64, 4 * THREADS * per_thread);
    // In order per session: each thread's records keep their numbering.
    let mut next = std::collections::HashMap::new();
    for v in &ops {
        let expected = next.entry(v.session.unwrap()).or_insert(0u64);
        assert_eq!(v.bytes_in, Some(*expected), "session {:?}", v.session);
        *expected += 1;
    }
    assert_eq!(next.len() as u64, 4 * THREADS);
    // Every process sealed at least at its shutdown.
    assert!(r.seals_verified >= 4, "{r}");
    assert_eq!(r.unsealed_tail, 0, "{r}");
}

#[test]
fn four_processes_two_threads_buffered_make_one_chain() {
    four_processes("buffered", 500);
}

#[test]
fn four_processes_two_threads_required_make_one_chain() {
    four_processes("required", 100);
}

/// Waits for a child's "ready" line, with a deadline.
fn wait_ready(child: &mut Child) {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if line.map(|l| l.contains("ready")).unwrap_or(false) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("child writer ready");
}

#[test]
fn kill_9_mid_run_leaves_a_verifiable_prefix_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["buffered", "required", "buffered"] {
        let mut children: Vec<Child> = (0..3)
            .map(|_| spawn_writer(dir.path(), mode, 200, true))
            .collect();
        for c in &mut children {
            wait_ready(c);
        }
        for c in &mut children {
            c.kill().unwrap(); // SIGKILL, while they write
            c.wait().unwrap();
        }
        let r = verify(dir.path(), None, None, Some(&*sealer())).unwrap();
        assert!(r.is_intact(), "{r}");
        assert!(r.records >= 3 * 200, "{r}");
    }
    // A new writer continues the chain, cutting a torn tail if one was left.
    let before = op_records(dir.path()).len();
    let log = AuditLog::open(config(dir.path(), Mode::Required), None).unwrap();
    for i in 0..10 {
        log.append(op(i)).unwrap();
    }
    log.shutdown().unwrap();
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
    assert_eq!(op_records(dir.path()).len(), before + 10);
}

#[test]
fn a_torn_tail_is_cut_and_reported_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    write_trail(dir.path(), 5, 1000);
    let file = files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    let torn = b"{\"seq\":5,\"prev\":\"00";
    bytes.extend_from_slice(torn);
    std::fs::write(&file, &bytes).unwrap();
    assert!(verify(dir.path(), None, None, None)
        .unwrap()
        .truncated_tail
        .is_some());

    let log = AuditLog::open(config(dir.path(), Mode::Required), None).unwrap();
    log.append(op(99)).unwrap();
    log.shutdown().unwrap();
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
    let l = lines(&file);
    let repair: serde_json::Value = serde_json::from_str(&l[l.len() - 2]).unwrap();
    assert_eq!(repair["kind"], "repair");
    assert_eq!(repair["dropped_bytes"], torn.len());
    assert_eq!(seq_of(&l[l.len() - 1]), seq_of(&l[l.len() - 2]) + 1);
}

#[test]
fn a_lost_head_file_is_rebuilt_from_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    write_trail(dir.path(), 5, 1000);
    std::fs::remove_file(dir.path().join(keywarden::audit::HEAD_FILE)).unwrap();
    write_trail(dir.path(), 5, 1000);
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(op_records(dir.path()).len(), 10);
}
