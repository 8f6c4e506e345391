//! `keywarden audit verify|tail|search|export` as a user runs them.

mod audit_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use audit_support::*;
use keywarden::audit::{AuditLog, Mode, OpEvent};
use keywarden::functions::FunctionId;

fn kw(args: &[&str]) -> Output {
    Command::new(keywarden_bin())
        .args(args)
        .env_remove("KEYWARDEN_CONF")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A trail with allowed and refused records of two keys and two users.
fn sample(dir: &Path) {
    let log = AuditLog::open(config(dir, Mode::Required), Some(sealer())).unwrap();
    for i in 0..6 {
        let mut e = op(i);
        if i % 2 == 1 {
            e.key_label = Some("payroll".into());
            e.identity = Some("bob".into());
            e = e.denied("no-night-signing");
        }
        log.append(e).unwrap();
    }
    log.shutdown().unwrap();
}

#[test]
fn verify_reports_ok_and_exits_non_zero_on_tampering() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let d = dir.path().to_str().unwrap();
    let key = dir.path().join("seal.key");
    std::fs::write(&key, hex_key()).unwrap();
    let o = kw(&[
        "audit",
        "--dir",
        d,
        "verify",
        "--seal-key",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("OK: chain intact") && text(&o).contains("seals: 1 verified"),
        "{}",
        text(&o)
    );

    let file = files(dir.path()).remove(0);
    let mut l = lines(&file);
    l.swap(2, 3);
    write_lines(&file, &l);
    let o = kw(&["audit", "--dir", d, "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("PROBLEM: records reordered at") && text(&o).contains("line 3 (seq 3)"),
        "{}",
        text(&o)
    );
}

fn hex_key() -> String {
    KEY.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn search_filters_by_key_user_and_refusal() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let d = dir.path().to_str().unwrap();
    let denied = text(&kw(&["audit", "--dir", d, "search", "--denied"]));
    assert_eq!(denied.lines().count(), 3, "{denied}");
    assert!(
        denied
            .lines()
            .all(|l| l.contains("DENIED rule=no-night-signing") && l.contains("key=payroll")),
        "{denied}"
    );
    let by_key = text(&kw(&[
        "audit", "--dir", d, "search", "--key", "k1", "--format", "jsonl",
    ]));
    assert_eq!(by_key.lines().count(), 3);
    let by_user = text(&kw(&["audit", "--dir", d, "search", "--user", "bob"]));
    assert_eq!(by_user.lines().count(), 3);
    let future = text(&kw(&[
        "audit",
        "--dir",
        d,
        "search",
        "--from",
        "2999-01-01",
    ]));
    assert_eq!(future, "");
    let bad = kw(&["audit", "--dir", d, "search", "--from", "yesterday"]);
    assert!(!bad.status.success());
}

#[test]
fn failed_calls_json_lines_and_key_versions_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(dir.path(), Mode::Required), None).unwrap();
    let mut signed = op(0);
    signed.key_id = Some(vec![0x01, 0xab].into());
    signed.key_version = Some(3);
    log.append(signed).unwrap();
    // The token's own refusal (a wrong PIN) and a size query, which is no failure.
    log.append(OpEvent::new(
        FunctionId::C_Login,
        pkcs11_sys::CKR_PIN_INCORRECT,
    ))
    .unwrap();
    log.append(OpEvent::new(
        FunctionId::C_Sign,
        pkcs11_sys::CKR_BUFFER_TOO_SMALL,
    ))
    .unwrap();
    log.append(op(1).denied("no-night-signing")).unwrap();
    log.shutdown().unwrap();
    let d = dir.path().to_str().unwrap();

    let all = text(&kw(&["audit", "--dir", d, "search"]));
    assert!(
        all.lines().next().unwrap().contains("key=k1 v3 id=01ab"),
        "{all}"
    );
    let failed = text(&kw(&["audit", "--dir", d, "search", "--failed"]));
    assert_eq!(failed.lines().count(), 2, "{failed}");
    assert!(
        failed.contains("CKR_PIN_INCORRECT") && failed.contains("DENIED"),
        "{failed}"
    );
    let denied = text(&kw(&["audit", "--dir", d, "search", "--denied"]));
    assert_eq!(denied.lines().count(), 1, "{denied}");
    for cmd in [&["search"][..], &["tail", "-n", "10"][..]] {
        let out = kw(&[&["audit", "--dir", d][..], cmd, &["--json"]].concat());
        assert!(out.status.success());
        let lines: Vec<serde_json::Value> = text(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{cmd:?}");
        assert_eq!(lines[1]["rv"], "CKR_PIN_INCORRECT");
    }
}

#[test]
fn a_corrupt_line_is_reported_and_fails_search_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let file = files(dir.path()).remove(0);
    let mut l = lines(&file);
    l[2] = "{not a record".into();
    write_lines(&file, &l);
    let d = dir.path().to_str().unwrap();
    for cmd in [
        &["search"][..],
        &["tail"][..],
        &["export", "--format", "csv"][..],
    ] {
        let out = kw(&[&["audit", "--dir", d][..], cmd].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stderr}");
        assert!(
            stderr.contains("1 line(s) of the trail are not records") && stderr.contains(":3"),
            "{cmd:?}: {stderr}"
        );
        // The records around it are still shown.
        assert!(!text(&out).is_empty(), "{cmd:?}");
    }
}

#[test]
fn export_writes_jsonl_csv_and_cef() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let d = dir.path().to_str().unwrap();
    let jsonl = text(&kw(&["audit", "--dir", d, "export", "--format", "jsonl"]));
    assert_eq!(
        jsonl,
        std::fs::read_to_string(&files(dir.path())[0]).unwrap()
    );
    let csv = text(&kw(&[
        "audit",
        "--dir",
        d,
        "export",
        "--format",
        "csv",
        "--to",
        "2999-01-01",
    ]));
    assert!(csv.starts_with("seq,time,host,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 7);
    let out = dir.path().join("x.cef");
    let o = kw(&[
        "audit",
        "--dir",
        d,
        "export",
        "--format",
        "cef",
        "--denied",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("exported 3 records"));
    let cef = std::fs::read_to_string(out).unwrap();
    assert_eq!(cef.lines().count(), 3);
    assert!(cef.lines().all(|l| l.starts_with("CEF:0|Keywarden|keywarden|") && l.contains("|C_Sign denied|6|")), "{cef}");
}

#[test]
fn verify_reads_the_directory_and_key_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    sample(&audit);
    let key = dir.path().join("seal.key");
    std::fs::write(&key, hex_key()).unwrap();
    let conf = dir.path().join("k.toml");
    std::fs::write(
        &conf,
        format!(
            "[backend]\nmodule = \"/x.so\"\n[policy]\nprofile = \"transparent\"\n[store]\ndir = \"/tmp\"\n[audit]\ndir = {:?}\nseal_key_file = {:?}\n",
            audit.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let o = kw(&["audit", "--config", conf.to_str().unwrap(), "verify"]);
    assert!(
        o.status.success() && text(&o).contains("seals: 1 verified"),
        "{}{}",
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn tail_shows_the_last_records_and_follows_until_sigint() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let d = dir.path().to_str().unwrap();
    let last2 = text(&kw(&[
        "audit", "--dir", d, "tail", "-n", "2", "--format", "jsonl",
    ]));
    assert_eq!(last2.lines().map(seq_of).collect::<Vec<_>>(), vec![5, 6]);

    // One matching record exists before: seeing it printed shows the follower has
    // fixed where it follows from.
    let log = AuditLog::open(config(dir.path(), Mode::Required), None).unwrap();
    let mut first = op(99);
    first.key_label = Some("followed".into());
    log.append(first).unwrap();
    log.shutdown().unwrap();
    let mut child = Command::new(keywarden_bin())
        .args([
            "audit", "--dir", d, "tail", "-f", "-n", "1", "--key", "followed", "--format", "jsonl",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Duration::from_secs(30);
    let shown = rx.recv_timeout(deadline).expect("the last matching record");
    assert!(shown.contains("\"bytes_in\":99"), "{shown}");
    // Write across several files while it follows; only "followed" records match.
    let mut c = config(dir.path(), Mode::Required);
    c.max_file_bytes = 1500;
    let log = AuditLog::open(c, None).unwrap();
    for i in 0..12u64 {
        let mut e = op(100 + i);
        if i % 3 == 0 {
            e.key_label = Some("followed".into());
        }
        log.append(e).unwrap();
    }
    log.shutdown().unwrap();
    let got: Vec<u64> = (0..4)
        .map(|_| {
            let line = rx
                .recv_timeout(deadline)
                .expect("a followed record before the deadline");
            serde_json::from_str::<serde_json::Value>(&line).unwrap()["bytes_in"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, vec![100, 103, 106, 109]);
    assert!(
        files(dir.path()).len() > 2,
        "the records spanned several files"
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait().unwrap());
    });
    let status = done_rx
        .recv_timeout(deadline)
        .expect("tail -f exits on SIGINT");
    assert!(status.success(), "{status:?}");
}

/// `audit verify --json ARGS`: the exit code and the one object printed.
fn verify_json(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let o = kw(&[&["audit"], args, &["verify", "--json"]].concat());
    let out = text(&o);
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    (o.status.code(), serde_json::from_str(&out).unwrap())
}

fn kinds(v: &serde_json::Value, level: &str) -> Vec<String> {
    v[level]
        .as_array()
        .unwrap_or_else(|| panic!("{level} is an array: {v}"))
        .iter()
        .map(|f| {
            assert!(f["message"].is_string(), "{v}");
            f["kind"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn verify_json_reports_the_counts_and_names_the_first_bad_record_with_the_same_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let d = dir.path().to_str().unwrap();
    let key = dir.path().join("seal.key");
    std::fs::write(&key, hex_key()).unwrap();
    let keyed = ["--dir", d, "verify", "--seal-key", key.to_str().unwrap()];
    // Without the key its seal cannot be checked: exit 1, as the text report.
    let (code, v) = verify_json(&keyed[..2]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(code, kw(&["audit", "--dir", d, "verify"]).status.code());
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(kinds(&v, "problems"), ["seal_key_missing"], "{v}");
    assert_eq!(kinds(&v, "warnings"), ["unsealed"], "{v}");

    let o = kw(&[&["audit"], &keyed[..], &["--json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["records"], 7, "{v}");
    assert_eq!(v["seals_verified"], 1, "{v}");
    assert_eq!(v["seal_keys"][0]["alg"], keywarden::audit::HMAC_ALG, "{v}");
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(kinds(&v, "warnings"), ["forgeable_seals"], "{v}");

    let file = files(dir.path()).remove(0);
    let mut l = lines(&file);
    l.swap(2, 3);
    write_lines(&file, &l);
    let (code, v) = verify_json(&["--dir", d]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(kinds(&v, "problems"), ["reordered"], "{v}");
    let p = &v["problems"][0];
    assert_eq!(
        (p["line"].clone(), p["seq"].clone()),
        (3.into(), 3.into()),
        "{v}"
    );
    assert_eq!(p["expected_seq"], 2, "{v}");
    assert_eq!(p["file"], file.display().to_string(), "{v}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .starts_with("records reordered at"),
        "{v}"
    );
}
