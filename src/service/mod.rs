//! The service front end: `keywarden serve`'s connection layer. A separate process
//! holds the token, PIN, store and trail; applications load the client module,
//! which sends each PKCS#11 call as a frame (`wire`) over a Unix stream socket.
//!
//! - [`listen`]: the socket, bound at a path or taken from systemd socket activation;
//! - [`server`]: the accept loop, one thread per connection, the [`Limits`];
//! - [`peer`]: who is on the other end, from the kernel;
//! - [`hello`]: the built-in handler answering the `Hello` exchange.
//!
//! A [`Handler`] answers each frame; the connection layer owns the framing, the
//! limits and the peer facts, and tells the handler when a client is gone.

pub mod connection;
pub mod hello;
pub mod listen;
pub mod peer;
pub mod server;

use pkcs11_sys::CK_RV;

use crate::identity::ProcessFacts;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::frame::{header, open};
use crate::wire::{Kind, WireError, WireResult};

pub use server::{Limits, Server, Stats};

/// The connection a frame came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The connecting process, as the kernel reported it at accept time.
    pub facts: ProcessFacts,
    /// This service's number for the connection, unique while it runs.
    pub connection: u64,
}

/// What answers the frames of every connection.
pub trait Handler: Send + Sync {
    /// Answers one frame's `body`, appending the reply body to `reply` (empty on
    /// entry). An error is a protocol violation: the peer is sent a
    /// [`protocol error`](encode_protocol_error) and the connection is closed.
    fn handle(&self, peer: &PeerInfo, body: &[u8], reply: &mut Vec<u8>) -> WireResult<()>;

    /// The connection is gone (the client closed it or died, it broke a limit or
    /// the protocol, or the service is stopping); no frame of it follows.
    fn closed(&self, _peer: &PeerInfo) {}
}

/// The first byte after a reply's header that marks a protocol error reply.
pub use crate::wire::op::PROTOCOL_ERROR;

/// A protocol error reply: why the service is closing the connection, as the
/// `CK_RV` the client's call answers ([`WireError::rv`]) and a short reason that
/// never carries the peer's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// `CKR_*`.
    pub rv: CK_RV,
    /// Why, in words.
    pub reason: String,
}

/// The body of a protocol error reply.
pub fn encode_protocol_error(rv: CK_RV, reason: &str) -> Vec<u8> {
    let mut e = Encoder::new(&header(Kind::Reply));
    e.u8(PROTOCOL_ERROR).ulong(rv);
    // A reason is a handful of words, far below any length bound.
    let _ = e.bytes(reason.as_bytes());
    e.finish()
}

/// The protocol error in a reply `body`, `None` when it is another reply.
pub fn decode_protocol_error(body: &[u8]) -> WireResult<Option<ProtocolError>> {
    let rest = open(body, Kind::Reply)?;
    if rest.first() != Some(&PROTOCOL_ERROR) {
        return Ok(None);
    }
    let mut d = Decoder::new(&rest[1..]);
    let rv = d.ulong()?;
    let reason = String::from_utf8_lossy(d.bytes()?).into_owned();
    d.finish()?;
    Ok(Some(ProtocolError { rv, reason }))
}

/// The protocol error reply for a [`WireError`].
pub fn protocol_error_for(err: &WireError) -> Vec<u8> {
    encode_protocol_error(err.rv(), &err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protocol_error_round_trips() {
        let err = WireError::Version(9);
        let body = protocol_error_for(&err);
        let got = decode_protocol_error(&body).unwrap().unwrap();
        assert_eq!(got.rv, err.rv());
        assert!(got.reason.contains('9'), "{}", got.reason);
        let mut other = header(Kind::Reply).to_vec();
        other.push(1);
        assert_eq!(decode_protocol_error(&other).unwrap(), None);
    }
}
