//! The accept loop: one named thread per connection, under [`Limits`].
//!
//! A connection beyond `max_connections`, or beyond `max_per_uid` for its peer's
//! uid (`SO_PEERCRED`), is accepted, sent a protocol error reply if its socket
//! takes it at once, and closed: refused connections are counted, never queued.
//! [`Server::stop`] stops accepting, shuts every connection's socket down (a
//! thread blocked reading or writing returns), tells the handler of each and
//! joins every thread.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rustix::event::{poll, PollFd, PollFlags};

use super::connection::{self, End};
use super::listen::Bound;
use super::{encode_protocol_error, peer, Handler, PeerInfo};
use pkcs11_sys::CKR_DEVICE_ERROR;

/// What one service allows its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, all peers together.
    pub max_connections: usize,
    /// Connections open at once by peers of one uid.
    pub max_per_uid: usize,
    /// Largest frame body read.
    pub max_frame: usize,
    /// Longest wait for the first byte of the next frame.
    pub idle_timeout: Duration,
    /// Longest wait from a frame's first byte to its last; longest a write of a
    /// reply may block.
    pub frame_timeout: Duration,
}

/// Largest payload a request or reply carries (data to sign or encrypt, a
/// ciphertext, a wrapped key, a template).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// Room for a frame's fields around its payload.
pub const MAX_FIELDS: usize = 64 << 10;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_per_uid: 256,
            max_frame: MAX_PAYLOAD + MAX_FIELDS,
            idle_timeout: Duration::from_secs(3600),
            frame_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of a running service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted and served.
    pub served: u64,
    /// Connections accepted and closed at once for a limit.
    pub refused: u64,
    /// Connections open now.
    pub open: u64,
}

/// The open connections: a clone of each socket (for stop) and its peer's uid.
#[derive(Default)]
struct Table {
    open: HashMap<u64, (UnixStream, u32)>,
}

struct Shared {
    limits: Limits,
    handler: Arc<dyn Handler>,
    table: Mutex<Table>,
    stopping: AtomicBool,
    served: AtomicU64,
    refused: AtomicU64,
}

/// A running service.
pub struct Server {
    shared: Arc<Shared>,
    wake: UnixStream,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves on a socket bound at a path; the path is removed when the server stops.
    pub fn start_bound(
        bound: Bound,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        Server::start_with(bound.listener.try_clone()?, Some(bound), limits, handler)
    }

    /// Serves on a listening socket (one from systemd socket activation).
    pub fn start(
        listener: UnixListener,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        Server::start_with(listener, None, limits, handler)
    }

    fn start_with(
        listener: UnixListener,
        bound: Option<Bound>,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let (wake, woken) = UnixStream::pair()?;
        let shared = Arc::new(Shared {
            limits,
            handler,
            table: Mutex::new(Table::default()),
            stopping: AtomicBool::new(false),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("kw-accept".into())
            .spawn(move || {
                accept_loop(&s, &listener, &woken);
                drop(bound);
            })?;
        Ok(Server {
            shared,
            wake,
            accept: Some(accept),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            served: self.shared.served.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            open: self.shared.table.lock().open.len() as u64,
        }
    }

    /// Stops accepting, closes every connection and joins every thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = (&self.wake).write_all(&[0]);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Accepts until stopped, then closes and joins every connection.
fn accept_loop(shared: &Arc<Shared>, listener: &UnixListener, woken: &UnixStream) {
    let mut next_id = 0u64;
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::new(woken, PollFlags::IN),
        ];
        if poll(&mut fds, None).is_err() || !fds[1].revents().is_empty() {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                next_id += 1;
                if let Some(t) = admit(shared, stream, next_id) {
                    threads.push(t);
                }
                threads.retain(|t| !t.is_finished());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => {
                // Out of descriptors or memory: the pending connection stays queued;
                // wait a little rather than spin on a listener that stays readable.
                log::warn!("service: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    for (stream, _) in shared.table.lock().open.values() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Registers and starts a connection within the limits, or refuses it.
fn admit(shared: &Arc<Shared>, stream: UnixStream, id: u64) -> Option<JoinHandle<()>> {
    let Ok(cred) = peer::credentials(&stream) else {
        return refuse(shared, &stream, "the peer's credentials are unknown");
    };
    // A descriptor accepted from the non-blocking listener is blocking (accept(2)
    // does not pass O_NONBLOCK on in Linux); said again, as the reads rely on it.
    if stream.set_nonblocking(false).is_err() {
        return refuse(shared, &stream, "the service is out of resources");
    }
    let Ok(clone) = stream.try_clone() else {
        return refuse(shared, &stream, "the service is out of resources");
    };
    {
        let mut table = shared.table.lock();
        let limits = &shared.limits;
        if table.open.len() >= limits.max_connections {
            drop(table);
            return refuse(shared, &stream, "too many connections");
        }
        let same_uid = table
            .open
            .values()
            .filter(|(_, uid)| *uid == cred.uid)
            .count();
        if same_uid >= limits.max_per_uid {
            drop(table);
            return refuse(shared, &stream, "too many connections for this uid");
        }
        table.open.insert(id, (clone, cred.uid));
    }
    let s = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("kw-conn-{id}"))
        .spawn(move || run(&s, &stream, cred, id));
    match spawned {
        Ok(t) => {
            shared.served.fetch_add(1, Ordering::Relaxed);
            Some(t)
        }
        Err(_) => {
            if let Some((stream, _)) = shared.table.lock().open.remove(&id) {
                refuse::<()>(shared, &stream, "the service is out of resources");
            }
            None
        }
    }
}

/// A connection's thread.
fn run(shared: &Shared, stream: &UnixStream, cred: peer::Credentials, id: u64) {
    let peer = PeerInfo {
        facts: peer::facts(cred, peer::pidfd(stream, cred.pid)),
        connection: id,
    };
    let end = if shared.stopping.load(Ordering::SeqCst) {
        End::Closed
    } else {
        connection::serve(stream, &peer, &shared.limits, shared.handler.as_ref())
    };
    if !matches!(end, End::Closed) {
        log::info!("service: connection {id} (uid {}) ended: {end:?}", cred.uid);
    }
    shared.table.lock().open.remove(&id);
    shared.handler.closed(&peer);
}

/// Counts a refused connection and closes it after a reply it can take at once.
fn refuse<T>(shared: &Shared, stream: &UnixStream, why: &str) -> Option<T> {
    shared.refused.fetch_add(1, Ordering::Relaxed);
    let reply = encode_protocol_error(CKR_DEVICE_ERROR, why);
    if stream.set_nonblocking(true).is_ok() {
        let _ = crate::wire::frame::write_frame(&mut &*stream, &reply);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    None
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
