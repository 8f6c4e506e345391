use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;

use super::*;
use crate::service::listen;
use crate::service::{decode_protocol_error, PeerInfo};
use crate::wire::frame::{read_frame, write_frame};
use crate::wire::WireResult;

/// Echoes each body and reports each closed connection's peer.
struct Echo {
    closed: AtomicUsize,
    tx: Mutex<mpsc::Sender<PeerInfo>>,
}

impl Handler for Echo {
    fn handle(&self, _peer: &PeerInfo, body: &[u8], reply: &mut Vec<u8>) -> WireResult<()> {
        reply.extend_from_slice(body);
        Ok(())
    }

    fn closed(&self, peer: &PeerInfo) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.lock().send(peer.clone());
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    echo: Arc<Echo>,
    closed: mpsc::Receiver<PeerInfo>,
    server: Server,
}

fn fixture(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let (tx, closed) = mpsc::channel();
    let echo = Arc::new(Echo {
        closed: AtomicUsize::new(0),
        tx: Mutex::new(tx),
    });
    let bound = listen::bind(&path).unwrap();
    let server = Server::start_bound(bound, limits, echo.clone()).unwrap();
    Fixture {
        _dir: dir,
        path,
        echo,
        closed,
        server,
    }
}

/// `payload` echoed, in a body that starts with the protocol version.
fn echo_once(s: &mut UnixStream, payload: &[u8]) -> Vec<u8> {
    let body = [&[crate::wire::VERSION], payload].concat();
    write_frame(s, &body).unwrap();
    let mut got = Vec::new();
    read_frame(s, 1 << 20, &mut got).unwrap();
    assert_eq!(got.first(), Some(&crate::wire::VERSION), "{got:?}");
    got.split_off(1)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_killed_client_is_reported_closed() {
    let f = fixture(Limits::default());
    let mut s = UnixStream::connect(&f.path).unwrap();
    assert_eq!(echo_once(&mut s, b"hi"), b"hi");
    // The child holds the only copy of the client's socket, as its stdin.
    let mut child = Command::new("sleep")
        .arg("100")
        .stdin(Stdio::from(OwnedFd::from(s)))
        .spawn()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let peer = f.closed.recv_timeout(WAIT).expect("closed is called");
    assert_eq!(peer.facts.pid, std::process::id());
    assert_eq!(f.echo.closed.load(Ordering::SeqCst), 1);
    assert_eq!(f.server.stats().open, 0);
    f.server.stop();
}

#[test]
fn connections_over_a_limit_are_refused_and_counted() {
    let limits = Limits {
        max_connections: 3,
        max_per_uid: 2,
        ..Limits::default()
    };
    let f = fixture(limits);
    let mut held: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&f.path).unwrap())
        .collect();
    for s in &mut held {
        assert_eq!(echo_once(s, b"x"), b"x");
    }
    // The refusal comes unasked; a request written first would be unread data
    // at the close, which Linux reports to this side as a reset.
    let mut third = UnixStream::connect(&f.path).unwrap();
    let mut got = Vec::new();
    read_frame(&mut third, 1 << 20, &mut got).unwrap();
    let err = decode_protocol_error(&got)
        .unwrap()
        .expect("a protocol error");
    assert!(err.reason.contains("uid"), "{}", err.reason);
    assert_eq!(
        read_frame(&mut third, 1 << 20, &mut got),
        Err(crate::wire::WireError::Closed)
    );
    let stats = f.server.stats();
    assert_eq!((stats.served, stats.refused, stats.open), (2, 1, 2));
    f.server.stop();
}

#[test]
fn stop_closes_every_connection_and_tells_the_handler() {
    let f = fixture(Limits::default());
    let mut held: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&f.path).unwrap())
        .collect();
    for s in &mut held {
        assert_eq!(echo_once(s, b"y"), b"y");
    }
    f.server.stop();
    assert_eq!(f.echo.closed.load(Ordering::SeqCst), 3);
    let mut got = Vec::new();
    for s in &mut held {
        assert!(read_frame(s, 16, &mut got).is_err());
    }
    assert!(!f.path.exists(), "the socket path is removed");
}

#[test]
fn a_trickling_frame_is_cut_at_the_frame_timeout() {
    let limits = Limits {
        frame_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let f = fixture(limits);
    let mut s = UnixStream::connect(&f.path).unwrap();
    let start = std::time::Instant::now();
    // A header announcing 100 bytes, then one byte every 100 ms: each read alone
    // is quick, the frame is not.
    s.write_all(&100u32.to_le_bytes()).unwrap();
    let mut got = Vec::new();
    for _ in 0..30 {
        if s.write_all(b"z").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if f.echo.closed.load(Ordering::SeqCst) == 1 {
            break;
        }
    }
    let _ = read_frame(&mut s, 1 << 20, &mut got);
    assert!(f.closed.recv_timeout(WAIT).is_ok());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    f.server.stop();
}

#[test]
fn a_frame_of_another_version_never_reaches_the_handler() {
    let f = fixture(Limits::default());
    let mut s = UnixStream::connect(&f.path).unwrap();
    write_frame(&mut s, &[crate::wire::VERSION + 1, 1]).unwrap();
    let mut got = Vec::new();
    read_frame(&mut s, 1 << 20, &mut got).unwrap();
    let err = decode_protocol_error(&got).unwrap().expect("not an echo");
    assert_eq!(err.rv, pkcs11_sys::CKR_ARGUMENTS_BAD);
    assert!(f.closed.recv_timeout(WAIT).is_ok());
    f.server.stop();
}
