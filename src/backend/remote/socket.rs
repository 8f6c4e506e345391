//! The client's connections to the service: a pool of Unix stream sockets, one in
//! use per calling thread at a time, so threads never wait for each other's round
//! trips and a reply always answers the request sent on its own connection.
//!
//! A connection that failed in any way is dropped, never reused (its stream may be
//! half-way through a frame). After a `fork` the child finds the parent's
//! connections in the pool; it drops them unused (its process id differs) and
//! connects anew, as two processes writing one stream would interleave frames.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;

use super::Transport;
use crate::wire::frame::{read_frame, write_frame};
use crate::wire::{WireError, WireResult};

/// Most bytes a reply may have: the largest request the service takes, plus room
/// for outputs it bounds (`kinds::MAX_OUTPUT`).
pub const MAX_REPLY: usize = 64 << 20;

/// Connections to one service socket.
pub struct SocketTransport {
    path: PathBuf,
    timeout: Option<Duration>,
    idle: Mutex<(u32, Vec<UnixStream>)>,
}

impl SocketTransport {
    /// A transport to the service listening at `path`; `timeout` bounds each read
    /// and write (`None`: wait as long as the service takes).
    pub fn new(path: PathBuf, timeout: Option<Duration>) -> SocketTransport {
        SocketTransport {
            path,
            timeout,
            idle: Mutex::new((std::process::id(), Vec::new())),
        }
    }

    /// An idle connection of this process, or a new one.
    fn checkout(&self) -> WireResult<UnixStream> {
        {
            let mut idle = self.idle.lock();
            let pid = std::process::id();
            if idle.0 != pid {
                *idle = (pid, Vec::new());
            }
            if let Some(s) = idle.1.pop() {
                return Ok(s);
            }
        }
        let s = UnixStream::connect(&self.path).map_err(|e| WireError::Io(e.kind().to_string()))?;
        s.set_read_timeout(self.timeout)
            .and_then(|()| s.set_write_timeout(self.timeout))
            .map_err(|e| WireError::Io(e.kind().to_string()))?;
        Ok(s)
    }

    fn checkin(&self, s: UnixStream) {
        let mut idle = self.idle.lock();
        if idle.0 == std::process::id() {
            idle.1.push(s);
        }
    }
}

impl Transport for SocketTransport {
    fn round_trip(&self, request: &[u8], reply: &mut Vec<u8>) -> WireResult<()> {
        let mut s = self.checkout()?;
        write_frame(&mut s, request)?;
        read_frame(&mut s, MAX_REPLY, reply)?;
        self.checkin(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn overlapping_calls_get_their_own_connections_and_idle_ones_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        // An echo service: every frame back as it came, on its own connection.
        let server = std::thread::spawn(move || {
            let mut accepted = 0;
            for s in listener.incoming().take(2) {
                let mut s = s.unwrap();
                accepted += 1;
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    while read_frame(&mut s, 1 << 20, &mut buf).is_ok() {
                        write_frame(&mut s, &buf).unwrap();
                    }
                });
            }
            accepted
        });
        let t = std::sync::Arc::new(SocketTransport::new(path, Some(Duration::from_secs(30))));
        // Two calls in flight at once hold one connection each; later calls reuse
        // them and the service never sees a third.
        let first = t.checkout().unwrap();
        let second = t.checkout().unwrap();
        t.checkin(first);
        t.checkin(second);
        for i in 0..10u8 {
            let mut reply = Vec::new();
            t.round_trip(&[i, 1, 2], &mut reply).unwrap();
            assert_eq!(reply, [i, 1, 2]);
        }
        assert_eq!(t.idle.lock().1.len(), 2);
        drop(t);
        assert_eq!(server.join().unwrap(), 2);
    }

    #[test]
    fn no_service_is_a_removed_device() {
        let dir = tempfile::tempdir().unwrap();
        let t = SocketTransport::new(dir.path().join("none"), None);
        let e = t.round_trip(b"x", &mut Vec::new()).unwrap_err();
        assert_eq!(e.rv(), pkcs11_sys::CKR_DEVICE_REMOVED);
    }
}
