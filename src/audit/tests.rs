//! Engine-level tests: the record format, and the writer's life cycle.

use std::time::{Duration, Instant};

use super::record::render_tail;
use super::*;
use crate::functions::FunctionId;

fn sign_event() -> OpEvent {
    let mut e = OpEvent::new(FunctionId::C_Sign, pkcs11_sys::CKR_OK)
        .with_key(KeyRef {
            label: Some("app-signing".into()),
            id: Some(vec![0x01, 0xab].into()),
            version: Some(3),
        })
        .with_identity("alice", Some("signer".into()))
        .with_duration(Duration::from_micros(412));
    e.slot = Some(0);
    e.token = Some("a1b2c3d4e5f60708".into());
    e.session = Some(1);
    e.mechanism = Some("CKM_ECDSA_SHA256".into());
    e.bytes_in = 1024;
    e.bytes_out = 64;
    e
}

#[test]
fn a_record_line_has_a_stable_field_order() {
    let tail = render_tail(
        Timestamp::parse("2025-01-31T12:00:00.123456Z").unwrap(),
        &ProcessInfo {
            host: "hsm-gw-1".into(),
            pid: 4242,
            uid: 1000,
            user: Some("app".into()),
            exe: Some("/usr/bin/openssl".into()),
            userns: false,
        }
        .json_fields(),
        &Event::Op(sign_event()),
    );
    let mut line = Vec::new();
    chain::push_line(&mut line, None, tail.as_bytes());
    let expected = concat!(
        r#"{"seq":0,"prev":"0000000000000000000000000000000000000000000000000000000000000000","#,
        r#""time":"2025-01-31T12:00:00.123456Z","host":"hsm-gw-1","pid":4242,"uid":1000,"user":"app","exe":"/usr/bin/openssl","#,
        r#""kind":"op","function":"C_Sign","identity":"alice","role":"signer","slot":0,"token":"a1b2c3d4e5f60708","session":1,"#,
        r#""mechanism":"CKM_ECDSA_SHA256","key_label":"app-signing","key_id":"01ab","key_version":3,"decision":"allow","rule":null,"#,
        r#""rv":"CKR_OK","bytes_in":1024,"bytes_out":64,"duration_us":412}"#,
        "\n"
    );
    assert_eq!(String::from_utf8(line).unwrap(), expected);
}

#[test]
fn every_event_kind_serialises_with_its_kind_first() {
    let events: Vec<Event> = vec![
        sign_event().denied("r").into(),
        LifecycleEvent::new("rotate", None).into(),
        ReloadEvent {
            what: ReloadWhat::Policy,
            path: "/p".into(),
            sha256: None,
            outcome: Outcome::Error,
            detail: Some("bad".into()),
        }
        .into(),
        ModuleEvent::new(ModuleWhat::Start).into(),
        GapEvent {
            lost: 1,
            errors: 2,
            last_error: "x".into(),
        }
        .into(),
        RepairEvent {
            file: "f".into(),
            offset: 1,
            dropped_bytes: 2,
        }
        .into(),
    ];
    for (e, kind) in events
        .iter()
        .zip(["op", "lifecycle", "reload", "module", "gap", "repair"])
    {
        let json = serde_json::to_string(e).unwrap();
        assert!(
            json.starts_with(&format!("{{\"kind\":\"{kind}\"")),
            "{json}"
        );
        let view: RecordView = serde_json::from_str(&json).unwrap();
        assert_eq!(view.kind.as_deref(), Some(kind));
    }
}

#[test]
fn records_built_from_a_call_name_its_mechanism() {
    let call = crate::call::Call::session(FunctionId::C_SignInit, 9)
        .on(3)
        .with_mechanism(pkcs11_sys::CKM_ECDSA);
    let e = OpEvent::from_call(&call, pkcs11_sys::CKR_KEY_HANDLE_INVALID);
    assert_eq!(
        (
            e.session,
            e.mechanism.as_ref().map(ToString::to_string).as_deref()
        ),
        (Some(9), Some("CKM_ECDSA"))
    );
    let json = serde_json::to_string(&Event::Op(e)).unwrap();
    assert!(json.contains("\"rv\":\"CKR_KEY_HANDLE_INVALID\""), "{json}");
}

#[test]
fn shutdown_is_idempotent_and_later_appends_fail() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path()), None).unwrap();
    log.append(sign_event()).unwrap();
    log.shutdown().unwrap();
    log.shutdown().unwrap();
    assert_eq!(log.append(sign_event()), Err(AuditError::WriterGone));
    assert_eq!(log.stats().written, 1);
}

#[test]
fn after_fork_in_child_starts_a_fresh_writer_on_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path()), None).unwrap();
    log.append(sign_event()).unwrap();
    log.flush().unwrap();
    log.after_fork_in_child().unwrap();
    log.append(sign_event()).unwrap();
    log.shutdown().unwrap();
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, 2);
}

#[test]
fn buffered_records_are_written_without_a_flush_and_sealed_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = AuditConfig::new(dir.path());
    c.seal_every = Duration::from_millis(50);
    let sealer: std::sync::Arc<dyn Sealer> =
        std::sync::Arc::new(HmacSealer::new(vec![1; 32]).unwrap());
    let log = AuditLog::open(c, Some(sealer.clone())).unwrap();
    log.append(sign_event()).unwrap();
    // Poll for the timer-driven seal, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.stats().seals == 0 {
        assert!(Instant::now() < deadline, "no seal within the deadline");
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = verify(dir.path(), None, None, Some(&*sealer)).unwrap();
    assert_eq!((r.records, r.seals_verified), (2, 1), "{r}");
    drop(log);
}

#[test]
fn written_counts_every_line_chained_including_seals_on_a_continued_chain() {
    let dir = tempfile::tempdir().unwrap();
    let sealer: std::sync::Arc<dyn Sealer> =
        std::sync::Arc::new(HmacSealer::new(vec![1; 32]).unwrap());
    let first = AuditLog::open(AuditConfig::new(dir.path()), Some(sealer.clone())).unwrap();
    first.append(sign_event()).unwrap();
    first.shutdown().unwrap();
    assert_eq!(first.stats().written, 2, "a record and the final seal");
    // A second writer continues the chain: its count starts from its own first line.
    let second = AuditLog::open(AuditConfig::new(dir.path()), Some(sealer.clone())).unwrap();
    for _ in 0..3 {
        second.append(sign_event()).unwrap();
    }
    second.shutdown().unwrap();
    assert_eq!(
        second.stats().written,
        4,
        "three records and the final seal"
    );
    let r = verify(dir.path(), None, None, Some(&*sealer)).unwrap();
    assert_eq!(r.records, 6, "{r}");
}

#[test]
fn a_full_queue_ends_the_writers_pause() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = AuditConfig::new(dir.path());
    // A pause no test would outlast. Only the sync deadline (while records are
    // unsynced) and the wake-ups end it; once a pass has synced, only a wake-up.
    c.pause = Duration::from_secs(3600);
    c.queue_capacity = 2;
    let log = std::sync::Arc::new(AuditLog::open(c, None).unwrap());
    let appender = std::sync::Arc::clone(&log);
    let (done, finished) = std::sync::mpsc::channel();
    // The first record starts a pause; the rest fill the two-slot queue again and
    // again.
    std::thread::spawn(move || {
        for _ in 0..50 {
            appender.append(sign_event()).unwrap();
        }
        let _ = done.send(());
    });
    // A hang detector, not a measurement: a missed wake-up takes the hour.
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("appends stalled in the writer's pause");
    log.shutdown().unwrap();
    let r = verify(dir.path(), None, None, None).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, 50);
}

#[test]
fn the_chain_id_is_kept_in_the_head_and_survives_an_older_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = AuditConfig::new(dir.path());
    c.mode = Mode::Required;
    let log = AuditLog::open(c.clone(), None).unwrap();
    log.append(sign_event()).unwrap();
    log.shutdown().unwrap();
    let files = list_files(dir.path()).unwrap();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let first = text.lines().next().unwrap();
    let id = chain_id_of(first.as_bytes());
    let head_path = dir.path().join(HEAD_FILE);
    let head = |p: &std::path::Path| HeadInfo::decode(&std::fs::read(p).unwrap()).unwrap();
    assert_eq!(head(&head_path).chain.as_deref(), Some(id.as_str()));
    assert_eq!(chain_id(dir.path()).unwrap().as_deref(), Some(id.as_str()));
    // A head as builds before chain ids wrote it (`kwhead1`, no chain field).
    let h = head(&head_path);
    let tip = h.tip.unwrap();
    let body = format!(
        "kwhead1 {} {} {} {}",
        tip.seq,
        tip.hash.to_hex(),
        h.len,
        h.file
    );
    let check = &Digest::of_line(body.as_bytes()).to_hex()[..16];
    let mut old = format!("{body} {check}").into_bytes();
    old.resize(255, b' ');
    old.push(b'\n');
    std::fs::write(&head_path, old).unwrap();
    assert_eq!(head(&head_path).chain, None);
    let log = AuditLog::open(c, None).unwrap();
    log.append(sign_event()).unwrap();
    log.shutdown().unwrap();
    // The next writer names the chain in the head again, from the first file.
    assert_eq!(head(&head_path).chain.as_deref(), Some(id.as_str()));
}
