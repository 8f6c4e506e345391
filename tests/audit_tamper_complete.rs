//! Removals the chain alone cannot show, done by the application's user (who can
//! write the trail directory and read the software seal key): `keywarden audit
//! verify` with the configuration must refuse each, naming what is missing; a
//! rewrite re-sealed with the key itself shows only against the off-host copy.

mod audit_support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use audit_support::*;
use keywarden::audit::{
    AuditLog, Digest, HeadInfo, HmacSealer, Mode, ModuleEvent, ModuleWhat, Sealer, SyslogTarget,
    Tip, HEAD_FILE,
};

/// A trail directory, the seal key file and a configuration naming both, with
/// `seal_every_records = 10`.
struct Site {
    _tmp: tempfile::TempDir,
    audit: PathBuf,
    conf: PathBuf,
}

fn site(seal_key: bool) -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let audit = tmp.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    let key = tmp.path().join("seal.key");
    std::fs::write(
        &key,
        KEY.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    )
    .unwrap();
    let key_line = if seal_key {
        format!("seal_key_file = {:?}\n", key.display().to_string())
    } else {
        String::new()
    };
    let conf = tmp.path().join("k.toml");
    std::fs::write(
        &conf,
        format!(
            "[backend]\nmodule = \"/x.so\"\n[policy]\nprofile = \"transparent\"\n[store]\ndir = \"/tmp\"\n\
             [audit]\ndir = {:?}\n{key_line}seal_every_records = 10\nseal_every_secs = 60\n",
            audit.display().to_string()
        ),
    )
    .unwrap();
    Site {
        _tmp: tmp,
        audit,
        conf,
    }
}

/// Writes `n` records as the module does (a stop record last), sealed every 10,
/// in files of at most `file_bytes`; `syslog` receives every line.
fn write(s: &Site, n: u64, file_bytes: u64) -> u64 {
    let mut c = config(&s.audit, Mode::Required);
    c.seal_every_records = 10;
    c.max_file_bytes = file_bytes;
    let log = AuditLog::open(c, Some(sealer())).unwrap();
    for i in 0..n {
        log.append(op(i)).unwrap();
    }
    log.append(ModuleEvent::new(ModuleWhat::Stop)).unwrap();
    log.shutdown().unwrap();
    log.stats().written
}

fn verify(s: &Site, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(keywarden_bin())
        .args(["audit", "--config", s.conf.to_str().unwrap(), "verify"])
        .args(extra)
        .env_remove("KEYWARDEN_CONF")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn all_lines(s: &Site) -> Vec<String> {
    files(&s.audit).iter().flat_map(|f| lines(f)).collect()
}

/// Rewrites the head as the application's user can: it reads the seal key, so the
/// head's MAC is no obstacle to them.
fn forge_head(s: &Site, file: &Path) {
    let l = lines(file);
    let last = l.last().unwrap();
    let head = HeadInfo {
        tip: Some(Tip {
            seq: seq_of(last),
            hash: Digest::of_line(last.as_bytes()),
        }),
        file: file.file_name().unwrap().to_str().unwrap().to_owned(),
        len: std::fs::metadata(file).unwrap().len(),
        chain: keywarden::audit::chain_id(&s.audit).unwrap(),
    };
    let key = HmacSealer::new(KEY.to_vec()).unwrap();
    std::fs::write(
        s.audit.join(HEAD_FILE),
        head.encode(Some(&key as &dyn Sealer)),
    )
    .unwrap();
}

#[test]
fn an_untouched_sealed_trail_verifies_and_says_what_its_seals_cannot_prove() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("OK: chain intact"), "{text}");
    assert!(
        text.contains("seals made by a key the audited process can read"),
        "{text}"
    );
}

#[test]
fn cutting_the_tail_and_deleting_the_head_is_reported() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    let file = files(&s.audit).remove(0);
    let mut l = lines(&file);
    l.truncate(l.len() - 5);
    write_lines(&file, &l);
    std::fs::remove_file(s.audit.join(HEAD_FILE)).unwrap();
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("PROBLEM: audit.head is missing"), "{text}");
}

#[test]
fn deleting_the_newest_file_and_rewriting_the_head_unkeyed_is_reported() {
    let s = site(true);
    write(&s, 40, 2500);
    let mut all = files(&s.audit);
    assert!(all.len() >= 3, "{all:?}");
    std::fs::remove_file(all.pop().unwrap()).unwrap();
    // The head's old check: a plain SHA-256 anybody can compute.
    let last_file = all.last().unwrap();
    let l = lines(last_file);
    let last = l.last().unwrap();
    let body = format!(
        "kwhead1 {} {} {} {}",
        seq_of(last),
        Digest::of_line(last.as_bytes()).to_hex(),
        std::fs::metadata(last_file).unwrap().len(),
        last_file.file_name().unwrap().to_str().unwrap()
    );
    let check = &Digest::of_line(body.as_bytes()).to_hex()[..16];
    let mut head = format!("{body} {check}").into_bytes();
    head.resize(255, b' ');
    head.push(b'\n');
    std::fs::write(s.audit.join(HEAD_FILE), head).unwrap();
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    // Where the files split depends on the lengths of the pid and times in each
    // record: when the removed file held only the stop's final seal, the
    // per-process rule names that loss first (the report names one problem).
    assert!(
        text.contains("PROBLEM: audit.head is not keyed with the seal key")
            || text.contains("stopped without its final seal"),
        "{text}"
    );
}

#[test]
fn deleting_the_oldest_file_is_reported_unless_it_was_archived() {
    let s = site(true);
    write(&s, 40, 2500);
    std::fs::remove_file(files(&s.audit).remove(0)).unwrap();
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: files missing: the trail starts at seq"),
        "{text}"
    );
    let (code, text) = verify(&s, &["--archived"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn stripping_every_seal_and_rechaining_is_reported() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    let file = files(&s.audit).remove(0);
    let mut l: Vec<String> = lines(&file)
        .into_iter()
        .filter(|l| !l.contains("\"kind\":\"seal\""))
        .collect();
    for (i, line) in l.iter_mut().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let old = format!("{{\"seq\":{},", v["seq"]);
        *line = line.replacen(&old, &format!("{{\"seq\":{i},"), 1);
    }
    rechain(&mut l, 1);
    write_lines(&file, &l);
    forge_head(&s, &file);
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: seal missing at")
            && text.contains("11 records without a seal (seal_every_records = 10)"),
        "{text}"
    );
}

#[test]
fn stripping_the_final_seal_after_a_stop_is_reported() {
    let s = site(true);
    write(&s, 5, 1 << 20);
    let file = files(&s.audit).remove(0);
    let mut l = lines(&file);
    assert!(l.last().unwrap().contains("\"kind\":\"seal\""));
    l.pop();
    write_lines(&file, &l);
    forge_head(&s, &file);
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("stopped without its final seal"), "{text}");
}

#[test]
fn a_writer_killed_before_it_sealed_leaves_an_unsealed_tail_not_a_problem() {
    let s = site(true);
    let mut c = config(&s.audit, Mode::Required);
    c.seal_every_records = 10;
    let log = AuditLog::open(c, Some(sealer())).unwrap();
    for i in 0..4 {
        log.append(op(i)).unwrap();
    }
    // What a kill leaves: the records, no final seal, no stop.
    std::mem::forget(log);
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("note: unsealed tail: process"), "{text}");
}

#[test]
fn an_unsealed_trail_says_it_cannot_prove_completeness() {
    let s = site(false);
    let log = AuditLog::open(config(&s.audit, Mode::Required), None).unwrap();
    log.append(op(0)).unwrap();
    log.shutdown().unwrap();
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("WARNING: UNSEALED trail")
            && text.contains("cannot prove that it is complete"),
        "{text}"
    );
}

/// The SIEM: a unix datagram socket collecting what the writer sends.
fn siem(dir: &Path) -> (SyslogTarget, mpsc::Receiver<String>) {
    let path = dir.join("siem.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let target = SyslogTarget::parse(&format!("unix:{}", path.display())).unwrap();
    (target, rx)
}

/// Edits one record and re-chains and re-seals everything after it with the
/// real key, as the application's user can; the head too.
fn reseal_rewrite(s: &Site) {
    let file = files(&s.audit).remove(0);
    let mut l = lines(&file);
    l[3] = l[3].replace("\"bytes_in\":3,", "\"bytes_in\":9,");
    let key = HmacSealer::new(KEY.to_vec()).unwrap();
    for i in 1..l.len() {
        let prev = Digest::of_line(l[i - 1].as_bytes());
        let mut v: serde_json::Value = serde_json::from_str(&l[i]).unwrap();
        let old_prev = v["prev"].as_str().unwrap().to_owned();
        l[i] = l[i].replacen(&old_prev, &prev.to_hex(), 1);
        if v["kind"] == "seal" {
            l[i] = l[i].replacen(&old_prev, &prev.to_hex(), 1);
            v = serde_json::from_str(&l[i]).unwrap();
            let sig = keywarden::audit::to_hex(&key.seal(&prev.0).unwrap().sig);
            l[i] = l[i].replacen(v["sig"].as_str().unwrap(), &sig, 1);
        }
    }
    write_lines(&file, &l);
    forge_head(s, &file);
}

#[test]
fn rechaining_with_the_software_seal_key_is_caught_by_the_off_host_copy() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    // The SIEM's copy of the whole stream, as it stood before the rewrite (the
    // syslog transport itself is tested by the seal_syslog test and
    // tests/audit_syslog.rs: a burst of datagrams may outrun a busy receiver).
    let copy = all_lines(&s);
    let copy_file = s._tmp.path().join("siem.log");
    std::fs::write(&copy_file, copy.join("\n")).unwrap();
    let (code, text) = verify(&s, &["--against", copy_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("off-host copy: 3 seals match the trail"),
        "{text}"
    );

    reseal_rewrite(&s);
    // The trail alone cannot tell: the key that sealed it sealed the rewrite.
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = verify(&s, &["--against", copy_file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: the trail disagrees with the off-host copy")
            && text.contains("the trail was rewritten"),
        "{text}"
    );
}

#[test]
fn cutting_the_end_and_resealing_is_caught_by_the_off_host_copy() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    // The seals the SIEM holds: those of the trail before it was cut.
    let seals: Vec<String> = all_lines(&s)
        .into_iter()
        .filter(|l| l.contains("\"kind\":\"seal\""))
        .collect();
    let copy_file = s._tmp.path().join("seals.log");
    std::fs::write(&copy_file, seals.join("\n")).unwrap();
    // Cut after the second seal: a trail that looks like a writer killed there.
    let file = files(&s.audit).remove(0);
    let l = lines(&file);
    let second = l
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"kind\":\"seal\""))
        .nth(1)
        .unwrap()
        .0;
    write_lines(&file, &l[..=second + 2]);
    forge_head(&s, &file);
    assert_eq!(verify(&s, &[]).0, Some(0));
    let (code, text) = verify(&s, &["--against", copy_file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("after the trail's end"), "{text}");
}

#[test]
fn a_seal_rule_kept_in_the_seals_is_used_without_the_configuration() {
    let s = site(true);
    write(&s, 25, 1 << 20);
    let r = keywarden::audit::verify(&s.audit, None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    let seal = all_lines(&s)
        .into_iter()
        .find(|l| l.contains("\"kind\":\"seal\""))
        .unwrap();
    assert!(
        seal.contains("\"every_records\":10,\"every_secs\":60"),
        "{seal}"
    );
}

#[test]
fn stripping_the_seals_of_a_quiet_trail_breaks_the_time_rule() {
    // A writer with a record every 100 s seals in between (seal_every_secs = 60):
    // the same records without those seals span 100 s and more unsealed.
    let s = site(true);
    write(&s, 2, 1 << 20);
    let file = files(&s.audit).remove(0);
    let mut l = lines(&file);
    let t0 = humantime::parse_rfc3339(
        serde_json::from_str::<serde_json::Value>(&l[0]).unwrap()["time"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for (i, line) in l.iter_mut().enumerate().take(3) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let later = humantime::format_rfc3339_micros(t0 + Duration::from_secs(100 * i as u64));
        *line = line.replacen(v["time"].as_str().unwrap(), &later.to_string(), 1);
    }
    let key = HmacSealer::new(KEY.to_vec()).unwrap();
    for i in 1..l.len() {
        let prev = Digest::of_line(l[i - 1].as_bytes());
        let v: serde_json::Value = serde_json::from_str(&l[i]).unwrap();
        l[i] = l[i].replace(v["prev"].as_str().unwrap(), &prev.to_hex());
        if v["kind"] == "seal" {
            let sig = keywarden::audit::to_hex(&key.seal(&prev.0).unwrap().sig);
            l[i] = l[i].replace(v["sig"].as_str().unwrap(), &sig);
        }
    }
    write_lines(&file, &l);
    forge_head(&s, &file);
    let (code, text) = verify(&s, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("wrote records for 100s since") && text.contains("(seal_every_secs = 60)"),
        "{text}"
    );
}

#[test]
fn seal_syslog_sends_the_seals_alone_and_they_serve_as_the_off_host_copy() {
    let s = site(true);
    let (target, rx) = siem(s._tmp.path());
    let mut c = config(&s.audit, Mode::Required);
    c.seal_every_records = 10;
    c.seal_syslog = Some(target);
    let log = AuditLog::open(c, Some(sealer())).unwrap();
    for i in 0..25 {
        log.append(op(i)).unwrap();
    }
    log.append(ModuleEvent::new(ModuleWhat::Stop)).unwrap();
    log.shutdown().unwrap();
    assert_eq!((log.stats().seals, log.stats().syslog_errors), (3, 0));
    let seals: Vec<String> = (0..3)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("each seal reaches the SIEM")
        })
        .collect();
    assert!(
        seals
            .iter()
            .all(|l| l.contains(" seal - {") && l.contains("\"kind\":\"seal\"")),
        "{seals:?}"
    );
    let copy_file = s._tmp.path().join("seals.log");
    std::fs::write(&copy_file, seals.join("\n")).unwrap();
    let (code, text) = verify(&s, &["--against", copy_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("off-host copy: 3 seals match the trail"),
        "{text}"
    );
}
