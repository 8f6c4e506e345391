//! Syslog forwarding: every record reaches a local listener as an RFC 5424 message
//! carrying the record line exactly as the trail holds it.

mod audit_support;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use audit_support::*;
use keywarden::audit::{AuditLog, Mode, SyslogTarget};

fn receive(n: usize, mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>) -> Vec<String> {
    let mut buf = vec![0u8; 65536];
    (0..n)
        .map(|_| {
            let len = recv(&mut buf).expect("a syslog datagram before the deadline");
            String::from_utf8(buf[..len].to_vec()).unwrap()
        })
        .collect()
}

fn check(dir: &std::path::Path, messages: &[String]) {
    let trail = lines(&files(dir)[0]);
    assert_eq!(messages.len(), trail.len());
    for (m, line) in messages.iter().zip(&trail) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let header = format!(
            "1 {} {} keywarden {} {} - ",
            v["time"].as_str().unwrap(),
            v["host"].as_str().unwrap(),
            v["pid"],
            v["kind"].as_str().unwrap()
        );
        assert!(m.starts_with('<') && m.contains(&header), "{m}");
        assert!(m.ends_with(line.as_str()), "{m}");
    }
    // A refusal is authpriv.warning, an allowed call authpriv.info.
    assert!(messages[0].starts_with("<86>1 "), "{}", messages[0]);
    assert!(messages[1].starts_with("<84>1 "), "{}", messages[1]);
}

fn write(dir: &std::path::Path, target: SyslogTarget) {
    let mut c = config(dir, Mode::Buffered);
    c.syslog = Some(target);
    let log = AuditLog::open(c, None).unwrap();
    log.append(op(0)).unwrap();
    log.append(op(1).denied("no-export")).unwrap();
    log.append(op(2)).unwrap();
    log.shutdown().unwrap();
    assert_eq!(log.stats().syslog_errors, 0);
}

#[test]
fn records_are_forwarded_over_udp() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let target = SyslogTarget::parse(&format!("udp://127.0.0.1:{port}")).unwrap();
    write(dir.path(), target);
    let messages = receive(3, |b| listener.recv(b));
    check(dir.path(), &messages);
}

#[test]
fn records_are_forwarded_over_a_unix_socket() {
    let sockdir = tempfile::tempdir().unwrap();
    let path = sockdir.path().join("log");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        SyslogTarget::parse(&format!("unix:{}", path.display())).unwrap(),
    );
    let messages = receive(3, |b| listener.recv(b));
    check(dir.path(), &messages);
}

#[test]
fn a_missing_syslog_socket_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), Mode::Required);
    c.syslog = Some(SyslogTarget::Unix(dir.path().join("no-such-socket")));
    let log = AuditLog::open(c, None).unwrap();
    log.append(op(0)).unwrap();
    log.shutdown().unwrap();
    assert_eq!(log.stats().syslog_errors, 1);
    assert_eq!(lines(&files(dir.path())[0]).len(), 1);
}
