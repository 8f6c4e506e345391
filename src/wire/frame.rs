//! Frames: a `u32` little-endian body length, then the body. The reader refuses a
//! length over its limit before allocating, and reads exactly the body (a frame cut
//! short by the peer is [`WireError::Truncated`], never a short message).

use std::io::{ErrorKind, Read, Write};

use super::{Kind, WireError, WireResult, VERSION};

/// The frame header: the body's length.
const LEN_BYTES: usize = 4;

/// The body of one frame from `r`, at most `max` bytes. `buf` is reused (cleared,
/// then grown to the body's length): a connection keeps one buffer for its frames.
pub fn read_frame(r: &mut impl Read, max: usize, buf: &mut Vec<u8>) -> WireResult<()> {
    let mut len = [0u8; LEN_BYTES];
    read_exact(r, &mut len, true)?;
    let len = u32::from_le_bytes(len);
    let n = usize::try_from(len).map_err(|_| WireError::Malformed("frame length"))?;
    if n > max {
        return Err(WireError::TooLong {
            len: u64::from(len),
            max: max as u64,
        });
    }
    buf.clear();
    buf.resize(n, 0);
    read_exact(r, buf, false)
}

/// Fills `out`; `at_start`: an end of stream before the first byte is a clean close.
fn read_exact(r: &mut impl Read, out: &mut [u8], at_start: bool) -> WireResult<()> {
    let mut done = 0;
    while done < out.len() {
        match r.read(&mut out[done..]) {
            Ok(0) if done == 0 && at_start => return Err(WireError::Closed),
            Ok(0) => return Err(WireError::Truncated),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e.kind().to_string())),
        }
    }
    Ok(())
}

/// Writes `body` as one frame (one `write_all` of header and body together, so a
/// peer never sees a header without its body from this side's buffering).
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> WireResult<()> {
    let len = u32::try_from(body.len()).map_err(|_| WireError::Malformed("frame too long"))?;
    let mut frame = Vec::with_capacity(LEN_BYTES + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)
        .map_err(|e| WireError::Io(e.kind().to_string()))
}

/// The start of a body: version and kind.
pub fn header(kind: Kind) -> [u8; 2] {
    [VERSION, kind as u8]
}

/// Checks a body's version and kind and returns the rest.
pub fn open(body: &[u8], want: Kind) -> WireResult<&[u8]> {
    match body {
        [v, _, ..] if *v != VERSION => Err(WireError::Version(*v)),
        [_, k, rest @ ..] if Kind::from_u8(*k) == Some(want) => Ok(rest),
        [_, _, ..] => Err(WireError::Malformed("unexpected frame kind")),
        _ => Err(WireError::Malformed("frame shorter than its header")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_the_buffer_is_reused() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        write_frame(&mut wire, b"").unwrap();
        let mut r = wire.as_slice();
        let mut buf = Vec::with_capacity(64);
        read_frame(&mut r, 16, &mut buf).unwrap();
        assert_eq!(buf, b"hello");
        read_frame(&mut r, 16, &mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(read_frame(&mut r, 16, &mut buf), Err(WireError::Closed));
    }

    #[test]
    fn an_oversized_length_is_refused_before_anything_is_allocated() {
        let wire = u32::MAX.to_le_bytes();
        let mut buf = Vec::new();
        let e = read_frame(&mut wire.as_slice(), 1 << 20, &mut buf).unwrap_err();
        assert_eq!(
            e,
            WireError::TooLong {
                len: u64::from(u32::MAX),
                max: 1 << 20
            }
        );
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn a_frame_cut_short_is_truncated_not_short() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"0123456789").unwrap();
        for cut in [1, 3, 4, 5, 13] {
            let mut buf = Vec::new();
            let e = read_frame(&mut &wire[..cut], 64, &mut buf).unwrap_err();
            assert_eq!(e, WireError::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn the_header_names_version_and_kind() {
        let mut body = header(Kind::Request).to_vec();
        body.push(7);
        assert_eq!(open(&body, Kind::Request).unwrap(), &[7]);
        assert!(matches!(
            open(&body, Kind::Reply),
            Err(WireError::Malformed(_))
        ));
        body[0] = 9;
        assert_eq!(open(&body, Kind::Request), Err(WireError::Version(9)));
        assert!(open(&[VERSION], Kind::Request).is_err());
        assert!(open(&[], Kind::Request).is_err());
    }
}
