//! One connection: frames in, replies out, until the peer leaves or breaks a rule.
//! A frame of another protocol version is refused here, before any handler.
//!
//! Two clocks bound how long a peer may hold its thread without sending a complete
//! frame: `idle_timeout` from the last reply to the first byte of the next frame,
//! `frame_timeout` from that byte to the frame's last. Each read waits at most what
//! is left of the running one (`SO_RCVTIMEO`, re-set before every read), so a peer
//! trickling bytes cannot stretch it; each write of a reply blocks at most
//! `frame_timeout` (`SO_SNDTIMEO`).

use std::io::{self, ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{protocol_error_for, Handler, Limits, PeerInfo};
use crate::wire::frame::{read_frame, write_frame};
use crate::wire::{WireError, VERSION};

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The peer closed it between frames.
    Closed,
    /// No complete frame within the limits.
    TimedOut,
    /// A frame or request the service refused (after a protocol error reply).
    Refused(WireError),
    /// The socket failed (a reset peer, or the service shutting it down).
    Broken(WireError),
}

/// A reader that fails with `TimedOut` once its deadline has passed.
struct Deadlined<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
    /// The deadline of a frame, which starts with its first byte.
    frame_timeout: Duration,
    started: bool,
    timed_out: bool,
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.timed_out = true;
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&*self.stream).read(buf) {
            Ok(n) => {
                if n > 0 && !self.started {
                    self.started = true;
                    self.deadline = Instant::now() + self.frame_timeout;
                }
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.timed_out = true;
                Err(ErrorKind::TimedOut.into())
            }
            Err(e) => Err(e),
        }
    }
}

/// Serves `stream` until it ends; the caller tells the handler it closed.
pub fn serve(stream: &UnixStream, peer: &PeerInfo, limits: &Limits, handler: &dyn Handler) -> End {
    let _ = stream.set_write_timeout(Some(limits.frame_timeout));
    let mut body = Vec::new();
    let mut reply = Vec::new();
    loop {
        let mut reader = Deadlined {
            stream,
            deadline: Instant::now() + limits.idle_timeout,
            frame_timeout: limits.frame_timeout,
            started: false,
            timed_out: false,
        };
        match read_frame(&mut reader, limits.max_frame, &mut body) {
            Ok(()) => {}
            Err(WireError::Closed) => return End::Closed,
            Err(_) if reader.timed_out => {
                let why = WireError::Io("no complete frame within the time limit".into());
                refuse(stream, &why);
                return End::TimedOut;
            }
            Err(e @ WireError::Io(_)) => return End::Broken(e),
            Err(e) => {
                refuse(stream, &e);
                return End::Refused(e);
            }
        }
        // Every body starts with the protocol version; the kind and what follows
        // are the handler's to read.
        if let Some(&v) = body.first().filter(|v| **v != VERSION) {
            let e = WireError::Version(v);
            refuse(stream, &e);
            return End::Refused(e);
        }
        reply.clear();
        if let Err(e) = handler.handle(peer, &body, &mut reply) {
            refuse(stream, &e);
            return End::Refused(e);
        }
        if let Err(e) = write_frame(&mut &*stream, &reply) {
            return End::Broken(e);
        }
    }
}

/// Sends a protocol error reply for `why` if the socket takes it, then shuts the
/// connection down. A peer that reads nothing cannot delay this beyond the write
/// timeout.
pub fn refuse(stream: &UnixStream, why: &WireError) {
    let _ = write_frame(&mut &*stream, &protocol_error_for(why));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
