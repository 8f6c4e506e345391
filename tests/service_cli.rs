//! `keywarden serve` as a client meets it over its socket: the `Hello` exchange and
//! the uid the service saw, the start line and a clean exit on SIGTERM, and hostile
//! clients: an oversized frame, a half-written frame, silence, a foreign version or
//! kind, and more connections than the limits allow; a socket systemd passes, and
//! the start refused for a non-socket path or a missing configuration. Each test
//! starts its own service and waits for it by reading its `serving on` line.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use keywarden::service::hello::{decode_reply, encode_request};
use keywarden::service::{decode_protocol_error, ProtocolError};
use keywarden::wire::frame::{read_frame, write_frame};
use keywarden::wire::WireError;
use pkcs11_sys::CKR_ARGUMENTS_BAD;
use rustix::process::{kill_process, Pid, Signal};

use common::TestEnv;

/// A running `keywarden serve`, killed on drop unless stopped.
struct Service {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    socket: PathBuf,
}

impl Service {
    /// `keywarden serve --socket DIR/s ARGS`, once it has said where it serves.
    fn start(env: &TestEnv, args: &[&str]) -> Service {
        let socket = env.path().join("s");
        let mut cmd = env.command(common::keywarden_bin());
        cmd.arg("serve").arg("--socket").arg(&socket).args(args);
        let (child, stdout, line) = spawn_until_serving(cmd);
        assert_eq!(line.trim_end(), format!("serving on {}", socket.display()));
        Service {
            child,
            _stdout: stdout,
            socket,
        }
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).unwrap()
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        term(&self.child);
        self.child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn term(child: &Child) {
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
}

/// Spawns `cmd` with stdout piped and returns it with its first line.
fn spawn_until_serving(mut cmd: Command) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if line.is_empty() {
        let status = child.wait().unwrap();
        panic!("the service exited before serving: {status}");
    }
    (child, stdout, line)
}

const MAX: usize = 1 << 20;

/// A `Hello` on `s`: the uid the service saw.
fn hello(s: &mut UnixStream) -> Result<u32, Reply> {
    write_frame(s, &encode_request("test").unwrap()).map_err(Reply::Wire)?;
    let mut body = Vec::new();
    read_frame(s, MAX, &mut body).map_err(Reply::Wire)?;
    if let Some(e) = decode_protocol_error(&body).unwrap() {
        return Err(Reply::Error(e));
    }
    let reply = decode_reply(&body).unwrap();
    assert_eq!(reply.version, keywarden::VERSION);
    assert_eq!(reply.protocol, keywarden::wire::VERSION);
    assert_eq!(reply.pid, std::process::id());
    Ok(reply.uid)
}

/// What a connection got instead of a `Hello` reply.
#[derive(Debug)]
enum Reply {
    Error(ProtocolError),
    Wire(WireError),
}

/// The protocol error the service sent before closing `s`, and that it closed it.
fn error_then_eof(s: &mut UnixStream) -> ProtocolError {
    let mut body = Vec::new();
    read_frame(s, MAX, &mut body).expect("a reply before the close");
    let e = decode_protocol_error(&body)
        .unwrap()
        .expect("a protocol error");
    assert_eof(s);
    e
}

fn assert_eof(s: &mut UnixStream) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "nothing after the error reply"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

fn our_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[test]
fn hello_reports_our_uid_and_sigterm_stops_the_service() {
    let env = TestEnv::new();
    let service = Service::start(&env, &[]);
    let mut s = service.connect();
    assert_eq!(hello(&mut s).unwrap(), our_uid());
    assert_eq!(
        hello(&mut s).unwrap(),
        our_uid(),
        "the connection stays open"
    );
    let socket = service.socket.clone();
    let status = service.stop();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket is removed");
    assert_eof(&mut s);
}

#[test]
fn a_frame_announcing_4_gib_is_refused_and_the_next_client_served() {
    let env = TestEnv::new();
    let service = Service::start(&env, &[]);
    // The announcement alone, and with bytes of its body the service never reads.
    for body in [0, 64 << 10] {
        let mut s = service.connect();
        s.write_all(&u32::MAX.to_le_bytes()).unwrap();
        // The service may have answered and closed before the body is all written.
        let _ = s.write_all(&vec![0xA5; body]);
        let e = error_then_eof(&mut s);
        assert_eq!(e.rv, CKR_ARGUMENTS_BAD);
        assert!(e.reason.contains("over the limit"), "{}", e.reason);
    }
    assert_eq!(hello(&mut service.connect()).unwrap(), our_uid());
}

#[test]
fn a_half_written_frame_is_closed_after_the_frame_timeout() {
    let env = TestEnv::new();
    let service = Service::start(&env, &["--frame-timeout", "200"]);
    let mut s = service.connect();
    let start = Instant::now();
    let body = encode_request("test").unwrap();
    s.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
    s.write_all(&body[..2]).unwrap();
    let e = error_then_eof(&mut s);
    let waited = start.elapsed();
    assert!(e.reason.contains("time limit"), "{}", e.reason);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(hello(&mut service.connect()).unwrap(), our_uid());
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let env = TestEnv::new();
    let service = Service::start(&env, &["--idle-timeout", "200"]);
    let mut s = service.connect();
    assert_eq!(hello(&mut s).unwrap(), our_uid());
    let start = Instant::now();
    let e = error_then_eof(&mut s);
    let waited = start.elapsed();
    assert!(e.reason.contains("time limit"), "{}", e.reason);
    // The service's clock starts once its reply is written, which may be a little
    // after this side read it.
    assert!(waited >= Duration::from_millis(180), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_foreign_version_or_kind_gets_an_error_reply() {
    let env = TestEnv::new();
    let service = Service::start(&env, &[]);
    let good = encode_request("test").unwrap();
    let mut version = good.clone();
    version[0] = keywarden::wire::VERSION + 1;
    let mut kind = good.clone();
    kind[1] = 7;
    let mut reply_kind = good.clone();
    reply_kind[1] = 2;
    for (body, says) in [
        (version, "version"),
        (kind, "kind"),
        (reply_kind, "kind"),
        (vec![keywarden::wire::VERSION], "header"),
    ] {
        let mut s = service.connect();
        write_frame(&mut s, &body).unwrap();
        let e = error_then_eof(&mut s);
        assert_eq!(e.rv, CKR_ARGUMENTS_BAD, "{says}");
        assert!(e.reason.contains(says), "{says}: {}", e.reason);
    }
    assert_eq!(hello(&mut service.connect()).unwrap(), our_uid());
}

/// Hellos on every connection: how many were answered, how many refused.
fn answered(conns: &mut [UnixStream]) -> (usize, usize) {
    let mut served = 0;
    let mut refused = 0;
    for s in conns {
        match hello(s) {
            Ok(uid) => {
                assert_eq!(uid, our_uid());
                served += 1;
            }
            Err(Reply::Error(e)) => {
                assert!(e.reason.contains("too many connections"), "{}", e.reason);
                refused += 1;
            }
            // Refused and closed before the request was even written.
            Err(Reply::Wire(e)) => {
                assert!(matches!(e, WireError::Closed | WireError::Io(_)), "{e}");
                refused += 1;
            }
        }
    }
    (served, refused)
}

/// Connects until a `Hello` is answered: the service notices closed connections
/// on its own time, and each attempt before that is refused at once.
fn served_within(service: &Service, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if hello(&mut service.connect()).is_ok() {
            return true;
        }
    }
    false
}

#[test]
fn two_hundred_connections_held_within_the_limit_and_beyond() {
    let env = TestEnv::new();
    let service = Service::start(&env, &["--max-connections", "150"]);
    let mut held: Vec<UnixStream> = (0..200).map(|_| service.connect()).collect();
    assert_eq!(answered(&mut held), (150, 50));
    assert_eq!(answered(&mut [service.connect()]), (0, 1), "full");
    // The served ones are the first 150 connected; drop ten of them.
    held.drain(..10);
    assert!(served_within(&service, Duration::from_secs(10)));
    assert_eq!(
        hello(&mut held[10]).unwrap(),
        our_uid(),
        "the held ones still served"
    );
    let status = service.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn connections_per_uid_are_limited() {
    let env = TestEnv::new();
    let service = Service::start(&env, &["--max-per-uid", "5"]);
    let mut held: Vec<UnixStream> = (0..5).map(|_| service.connect()).collect();
    assert_eq!(answered(&mut held), (5, 0));
    // The refusal comes unasked (a request written first may meet a closed socket).
    let e = error_then_eof(&mut service.connect());
    assert!(e.reason.contains("for this uid"), "{}", e.reason);
    assert_eq!(answered(&mut held), (5, 0), "the held ones still served");
}

#[test]
fn serves_on_a_socket_systemd_passes() {
    let activate = Path::new("/usr/bin/systemd-socket-activate");
    if !activate.exists() {
        eprintln!("skipped: no {}", activate.display());
        return;
    }
    let env = TestEnv::new();
    let socket = env.path().join("activated");
    let mut cmd = env.command(activate);
    // systemd-socket-activate passes the program no environment of its own.
    cmd.arg("-l")
        .arg(&socket)
        .arg(common::keywarden_bin())
        .arg("serve");
    cmd.arg("--config").arg(&env.keywarden_conf);
    cmd.stderr(Stdio::piped());
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("Listening on"), "{line}");
    // The service is started by the first connection, which waits in the backlog.
    let mut s = UnixStream::connect(&socket).unwrap();
    assert_eq!(hello(&mut s).unwrap(), our_uid());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), format!("serving on {}", socket.display()));
    term(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_bad_configuration_or_socket_path_stops_the_start() {
    let env = TestEnv::new();
    let file = env.path().join("not-a-socket");
    std::fs::write(&file, b"keep").unwrap();
    let missing = env.path().join("missing.toml");
    let conf = env.keywarden_conf.clone();
    for (socket, config, says) in [
        (&file, &conf, "is not a socket"),
        (&env.path().join("s"), &missing, "missing.toml"),
    ] {
        let out = env
            .command(common::keywarden_bin())
            .arg("serve")
            .arg("--socket")
            .arg(socket)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}
