//! The hash chain.
//!
//! Every line is `{"seq":N,"prev":"<hex>",…}`: `seq` counts records from 0 across the
//! whole trail (all files, all processes) and `prev` is the SHA-256 of the previous
//! record's line — its exact bytes, without the newline (the canonical bytes are the
//! bytes on disk, so verifying never re-serialises anything). The first record's
//! `prev` is 64 zeros. Changing any byte of a record breaks the next record's link;
//! removing or reordering records breaks `seq` and the links.
//!
//! The head file (`audit.head`) says where the chain ends — last seq, its hash, the
//! current file and its length — so a writer need not scan a file to continue the
//! chain. It is a hint checked against the trail on every append (see `trail/`):
//! the trail files are the truth.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// A SHA-256 value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

/// `prev` of the first record.
pub const GENESIS: Digest = Digest([0; 32]);

impl Digest {
    /// The hash of one record line (without its newline).
    pub fn of_line(line: &[u8]) -> Digest {
        Digest(Sha256::digest(line).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Digest> {
        let bytes = from_hex(text)?;
        Some(Digest(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the lower-case hex of `bytes` to `out`: 32 bytes at a time through a
/// stack buffer, one append each (two `push`es per byte were a fifth of chaining
/// a line: each checks the capacity).
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.chunks(32) {
        let mut text = [0u8; 64];
        for (pair, b) in text.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
        }
        out.extend_from_slice(&text[..chunk.len() * 2]);
    }
}

/// Parses hex (either case); `None` for odd lengths or other characters.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The last record of the chain: what the next one links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its sequence number.
    pub seq: u64,
    /// The hash of its line.
    pub hash: Digest,
}

/// `seq` and `prev` of the record after `tip` (or of the first record).
pub fn next_link(tip: Option<Tip>) -> (u64, Digest) {
    match tip {
        Some(t) => (t.seq.saturating_add(1), t.hash),
        None => (0, GENESIS),
    }
}

/// Appends `{"seq":N,"prev":"…",` + `tail` + `\n` to `out` and returns the new tip.
/// `tail` is the rest of the JSON object, closing brace included. Runs once per
/// record on the writer thread: no allocation, no `core::fmt`.
pub fn push_line(out: &mut Vec<u8>, tip: Option<Tip>, tail: &[u8]) -> Tip {
    let (seq, prev) = next_link(tip);
    let start = out.len();
    out.extend_from_slice(b"{\"seq\":");
    super::render::number(out, seq);
    out.extend_from_slice(b",\"prev\":\"");
    push_hex(out, &prev.0);
    out.extend_from_slice(b"\",");
    out.extend_from_slice(tail);
    let hash = Digest::of_line(&out[start..]);
    out.push(b'\n');
    Tip { seq, hash }
}

/// The two chain fields of a line, read without parsing the rest.
#[derive(Debug, Deserialize)]
pub struct Link {
    /// `seq`.
    pub seq: u64,
    /// `prev`, hex.
    pub prev: String,
}

impl Link {
    /// Reads `seq` and `prev` of one line; `None` when it is not a record.
    pub fn parse(line: &[u8]) -> Option<Link> {
        serde_json::from_slice(line).ok()
    }
}

/// The head file's fixed size: rewritten in place, never truncated or renamed.
pub const HEAD_SIZE: usize = 256;

/// What the head file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadInfo {
    /// The chain's last record (`None`: empty trail).
    pub tip: Option<Tip>,
    /// The current trail file's name.
    pub file: String,
    /// Its length after the last append.
    pub len: u64,
    /// The chain's id (see [`chain_id_of`]), kept here so that it survives the
    /// archiving of the first file; `None` until the first record is written.
    pub chain: Option<String>,
}

/// How a head file's check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// A plain (unkeyed) hash: it catches a torn head, not a rewritten one.
    Unkeyed,
    /// An HMAC with the seal key, verified.
    Keyed,
    /// An HMAC, but no key was given to check it.
    KeyedUnchecked,
}

/// Prefix of the head's HMAC message: a head MAC is never a seal.
const HEAD_DOMAIN: &[u8] = b"keywarden-audit-head-v1";

/// The chain's id: the first 16 bytes (hex) of the SHA-256 of its first line
/// (seq 0). That line holds the time, host and pid of its writer, so two chains
/// never share an id; a copy of a trail directory shares it (it is the same chain).
pub fn chain_id_of(first_line: &[u8]) -> String {
    to_hex(&Digest::of_line(first_line).0[..16])
}

impl HeadInfo {
    /// `kwhead2 CHAIN SEQ HASH LEN FILE CHECK`, space-padded to `HEAD_SIZE`.
    /// CHECK is `k:` + a truncated HMAC-SHA256 under the seal key when `key`
    /// gives one ([`super::seal::Sealer::head_mac`]; a rewritten head then needs
    /// the key), else a truncated SHA-256 of the rest (rejects a torn head only).
    pub fn encode(&self, key: Option<&dyn super::seal::Sealer>) -> Vec<u8> {
        let (seq, hash) = match self.tip {
            Some(t) => (t.seq.to_string(), t.hash.to_hex()),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let chain = self.chain.as_deref().unwrap_or("-");
        let body = format!("kwhead2 {chain} {seq} {hash} {} {}", self.len, self.file);
        let check = match key.and_then(|k| k.head_mac(HEAD_DOMAIN, body.as_bytes())) {
            Some(mac) => format!("k:{}", to_hex(&mac[..16])),
            None => Digest::of_line(body.as_bytes()).to_hex()[..16].to_owned(),
        };
        let mut out = format!("{body} {check}").into_bytes();
        out.resize(HEAD_SIZE - 1, b' ');
        out.push(b'\n');
        out
    }

    /// Parses a head file without judging a keyed check; `None` if it is missing,
    /// torn or edited (see [`HeadInfo::decode_with`]).
    pub fn decode(bytes: &[u8]) -> Option<HeadInfo> {
        HeadInfo::decode_with(bytes, None).map(|(h, _)| h)
    }

    /// Parses a head file and checks it: `None` if it is missing, torn, edited,
    /// or keyed and its MAC does not hold under `key`.
    pub fn decode_with(
        bytes: &[u8],
        key: Option<&dyn super::seal::Sealer>,
    ) -> Option<(HeadInfo, HeadCheck)> {
        let text = std::str::from_utf8(bytes).ok()?.trim_end();
        let (body, check) = text.rsplit_once(' ')?;
        let status = match check.strip_prefix("k:") {
            Some(mac) => match key.and_then(|k| k.head_mac(HEAD_DOMAIN, body.as_bytes())) {
                // Not secret-dependent timing that matters: the MAC is of a public body.
                Some(want) if from_hex(mac).as_deref() == Some(&want[..16]) => HeadCheck::Keyed,
                Some(_) => return None,
                None => HeadCheck::KeyedUnchecked,
            },
            None if Digest::of_line(body.as_bytes()).to_hex().get(..16) == Some(check) => {
                HeadCheck::Unkeyed
            }
            None => return None,
        };
        let mut parts = body.split(' ');
        let chain = match parts.next()? {
            "kwhead1" => None,
            "kwhead2" => Some(parts.next()?).filter(|c| *c != "-").map(str::to_owned),
            _ => return None,
        };
        let (seq, hash) = (parts.next()?, parts.next()?);
        let len = parts.next()?.parse().ok()?;
        let file = parts.next()?.to_owned();
        let tip = match (seq, hash) {
            ("-", "-") => None,
            (s, h) => Some(Tip {
                seq: s.parse().ok()?,
                hash: Digest::from_hex(h)?,
            }),
        };
        Some((
            HeadInfo {
                tip,
                file,
                len,
                chain,
            },
            status,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        // Across the 32-byte chunks.
        for n in [0usize, 1, 31, 32, 33, 64, 70] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            let hex = to_hex(&bytes);
            assert_eq!(hex.len(), 2 * n);
            assert_eq!(from_hex(&hex), Some(bytes), "{n} bytes");
        }
    }

    #[test]
    fn lines_link_to_their_predecessor() {
        let mut out = Vec::new();
        let a = push_line(&mut out, None, b"\"x\":1}");
        let b = push_line(&mut out, Some(a), b"\"x\":2}");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("{{\"seq\":0,\"prev\":\"{}\",\"x\":1}}", GENESIS.to_hex())
        );
        assert_eq!(Digest::of_line(lines[0].as_bytes()), a.hash);
        let link = Link::parse(lines[1].as_bytes()).unwrap();
        assert_eq!((link.seq, Digest::from_hex(&link.prev)), (1, Some(a.hash)));
        assert_eq!(b.seq, 1);
    }

    #[test]
    fn head_round_trips_and_rejects_damage() {
        let head = HeadInfo {
            tip: Some(Tip {
                seq: 41,
                hash: Digest([7; 32]),
            }),
            file: "audit-00000000000000000000-20250101.jsonl".into(),
            len: 1234,
            chain: Some("ab".repeat(16)),
        };
        let bytes = head.encode(None);
        assert_eq!(bytes.len(), HEAD_SIZE);
        assert_eq!(HeadInfo::decode(&bytes), Some(head.clone()));
        let mut torn = bytes.clone();
        torn[12] ^= 1;
        assert_eq!(HeadInfo::decode(&torn), None);
        assert_eq!(HeadInfo::decode(&bytes[..40]), None);
        let empty = HeadInfo {
            tip: None,
            file: "f".into(),
            len: 0,
            chain: None,
        };
        assert_eq!(HeadInfo::decode(&empty.encode(None)), Some(empty));
    }

    #[test]
    fn a_keyed_head_holds_only_under_its_key() {
        use crate::audit::seal::{HmacSealer, Sealer};
        let key = HmacSealer::new(vec![7; 32]).unwrap();
        let other = HmacSealer::new(vec![8; 32]).unwrap();
        let head = HeadInfo {
            tip: None,
            file: "f".into(),
            len: 0,
            chain: Some("cd".repeat(16)),
        };
        let keyed = head.encode(Some(&key as &dyn Sealer));
        let check = |k: Option<&dyn Sealer>| HeadInfo::decode_with(&keyed, k).map(|(_, c)| c);
        assert_eq!(check(Some(&key)), Some(HeadCheck::Keyed));
        assert_eq!(check(None), Some(HeadCheck::KeyedUnchecked));
        assert_eq!(check(Some(&other)), None);
        let plain = head.encode(None);
        assert_eq!(
            HeadInfo::decode_with(&plain, Some(&key)).map(|(_, c)| c),
            Some(HeadCheck::Unkeyed)
        );
        // An edit of the chain id breaks the MAC.
        let text = String::from_utf8(keyed.clone())
            .unwrap()
            .replacen("cdcd", "abab", 1);
        assert_eq!(HeadInfo::decode_with(text.as_bytes(), Some(&key)), None);
    }
}
