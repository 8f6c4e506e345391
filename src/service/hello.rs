//! The `Hello` exchange, and the built-in handler that answers it and nothing else.
//!
//! Request: header (`Request`), [`HELLO`], the client's Keywarden version (bytes).
//! Reply: header (`Reply`), [`HELLO`], the protocol version the service speaks
//! (`u8`), the service's Keywarden version (bytes), and the peer's pid, uid and gid
//! as the service saw them (`u32` each), so a client can check who it was taken for.

use super::{Handler, PeerInfo};
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::frame::{header, open};
use crate::wire::{Kind, WireError, WireResult, VERSION};

/// The operation byte of the `Hello` exchange, after the header.
pub use crate::wire::op::HELLO;

/// The service's answer to a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloReply {
    /// The protocol version the service speaks.
    pub protocol: u8,
    /// The service's Keywarden version.
    pub version: String,
    /// The peer's pid as the kernel reported it.
    pub pid: u32,
    /// The peer's uid as the kernel reported it.
    pub uid: u32,
    /// The peer's gid as the kernel reported it.
    pub gid: u32,
}

/// The body of a `Hello` request from a client of version `client_version`.
pub fn encode_request(client_version: &str) -> WireResult<Vec<u8>> {
    let mut e = Encoder::new(&header(Kind::Request));
    e.u8(HELLO).bytes(client_version.as_bytes())?;
    Ok(e.finish())
}

/// The client's version in a `Hello` request body.
pub fn decode_request(body: &[u8]) -> WireResult<String> {
    let mut d = Decoder::new(open(body, Kind::Request)?);
    if d.u8()? != HELLO {
        return Err(WireError::Malformed("unknown request"));
    }
    let version = String::from_utf8_lossy(d.bytes()?).into_owned();
    d.finish()?;
    Ok(version)
}

/// Appends the body of a `Hello` reply to `out`.
pub fn encode_reply(reply: &HelloReply, out: &mut Vec<u8>) -> WireResult<()> {
    let mut e = Encoder::new(&header(Kind::Reply));
    e.u8(HELLO).u8(reply.protocol);
    e.bytes(reply.version.as_bytes())?;
    e.u32(reply.pid).u32(reply.uid).u32(reply.gid);
    out.extend_from_slice(&e.finish());
    Ok(())
}

/// A `Hello` reply body.
pub fn decode_reply(body: &[u8]) -> WireResult<HelloReply> {
    let mut d = Decoder::new(open(body, Kind::Reply)?);
    if d.u8()? != HELLO {
        return Err(WireError::Malformed("not a Hello reply"));
    }
    let protocol = d.u8()?;
    let version = String::from_utf8_lossy(d.bytes()?).into_owned();
    let reply = HelloReply {
        protocol,
        version,
        pid: d.u32()?,
        uid: d.u32()?,
        gid: d.u32()?,
    };
    d.finish()?;
    Ok(reply)
}

/// Answers `Hello` and refuses every other request as a protocol error.
#[derive(Debug, Default)]
pub struct HelloHandler;

impl Handler for HelloHandler {
    fn handle(&self, peer: &PeerInfo, body: &[u8], reply: &mut Vec<u8>) -> WireResult<()> {
        decode_request(body)?;
        let answer = HelloReply {
            protocol: VERSION,
            version: crate::VERSION.to_owned(),
            pid: peer.facts.pid,
            uid: peer.facts.uid,
            gid: peer.facts.gid,
        };
        encode_reply(&answer, reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ProcessFacts;

    #[test]
    fn hello_reports_the_peer_as_seen() {
        let peer = PeerInfo {
            facts: ProcessFacts::observe(),
            connection: 1,
        };
        let mut out = Vec::new();
        let req = encode_request("9.9.9").unwrap();
        assert_eq!(decode_request(&req).unwrap(), "9.9.9");
        HelloHandler.handle(&peer, &req, &mut out).unwrap();
        let got = decode_reply(&out).unwrap();
        assert_eq!(got.protocol, VERSION);
        assert_eq!(got.version, crate::VERSION);
        assert_eq!(
            (got.pid, got.uid, got.gid),
            (peer.facts.pid, peer.facts.uid, peer.facts.gid)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let peer = PeerInfo {
            facts: ProcessFacts::observe(),
            connection: 1,
        };
        let mut out = Vec::new();
        let mut other = header(Kind::Request).to_vec();
        other.push(HELLO + 1);
        assert!(HelloHandler.handle(&peer, &other, &mut out).is_err());
        let mut req = encode_request("1").unwrap();
        req[0] = VERSION + 1;
        assert_eq!(
            HelloHandler.handle(&peer, &req, &mut out),
            Err(WireError::Version(VERSION + 1))
        );
        req[0] = VERSION;
        req.push(0);
        assert_eq!(
            HelloHandler.handle(&peer, &req, &mut out),
            Err(WireError::Trailing(1))
        );
    }
}
