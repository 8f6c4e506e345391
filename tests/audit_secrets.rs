//! No PIN, key material or data can reach the trail, syslog or Debug output: the
//! call descriptors and records have no place for them, and the types that do hold
//! a secret (the seal key) redact it.
//! (The end-to-end check through libkeywarden.so and a real C_Login belongs with the
//! gateway wiring; this covers every audit type a PIN could pass near.)

mod audit_support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use audit_support::*;
use keywarden::abi::MechanismView;
use keywarden::audit::{
    AuditLog, HmacSealer, LifecycleEvent, Mode, ModuleEvent, ModuleWhat, OpEvent, Outcome,
    SyslogTarget,
};
use keywarden::functions::FunctionId;
use keywarden::gateway::Call;

const PIN: &str = "PIN-73915-SECRET";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn debug_of_call_descriptors_and_secret_holders_cannot_leak() {
    let pin_param = PIN.as_bytes();
    let view = MechanismView {
        mechanism: pkcs11_sys::CKM_AES_CBC,
        param: Some(pin_param),
    };
    let call = Call::session(FunctionId::C_Login, 5);
    let sealer = HmacSealer::new(PIN.repeat(2).into_bytes()).unwrap();
    for text in [
        format!("{view:?}"),
        format!("{call:?}"),
        format!("{sealer:?}"),
        format!("{:?}", OpEvent::from_call(&call, 0)),
    ] {
        assert!(!text.contains(PIN), "{text}");
        assert!(!text.contains("80, 73, 78"), "{text}"); // the PIN's bytes as a list
    }
    assert!(format!("{view:?}").contains(&format!("param {} bytes", PIN.len())));
}

#[test]
fn no_file_or_datagram_written_for_pin_functions_holds_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let sockdir = tempfile::tempdir().unwrap();
    let sock = sockdir.path().join("log");
    let listener = UnixDatagram::bind(&sock).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut c = config(dir.path(), Mode::Required);
    c.syslog = Some(SyslogTarget::Unix(sock));
    c.seal_every_records = 2;
    let log = AuditLog::open(c, Some(sealer())).unwrap();
    // The PIN-bearing calls, described as the gateway describes them.
    for f in [
        FunctionId::C_Login,
        FunctionId::C_InitPIN,
        FunctionId::C_SetPIN,
        FunctionId::C_InitToken,
    ] {
        log.append(OpEvent::from_call(
            &Call::session(f, 7),
            pkcs11_sys::CKR_PIN_INCORRECT,
        ))
        .unwrap();
    }
    // Error messages from the engine are built from typed values, never from input.
    let err = keywarden::Error::Backend(pkcs11_sys::CKR_PIN_INCORRECT);
    let mut m = ModuleEvent::new(ModuleWhat::Error);
    m.detail = Some(err.to_string());
    log.append(m).unwrap();
    log.append(LifecycleEvent {
        action: "rotate".into(),
        actor: Some("alice".into()),
        key_label: Some("k1".into()),
        key_id: Some(vec![1, 2]),
        key_version: Some(2),
        from_state: Some("active".into()),
        to_state: Some("retired".into()),
        outcome: Outcome::Ok,
        detail: None,
    })
    .unwrap();
    log.shutdown().unwrap();

    let mut everything = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        everything.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    // One datagram per line of the trail.
    let sent = lines(&files(dir.path())[0]).len();
    let mut buf = vec![0u8; 65536];
    for _ in 0..sent {
        let n = listener
            .recv(&mut buf)
            .expect("a datagram before the deadline");
        everything.extend_from_slice(&buf[..n]);
    }
    assert!(contains(&everything, b"C_SetPIN"), "the records are there");
    assert!(!contains(&everything, PIN.as_bytes()));
}
