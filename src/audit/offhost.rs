//! The off-host copy of the seals (`keywarden audit verify --against FILE`).
//!
//! A seal made with a key the audited process can read (the software key, or a
//! token key usable from a public session) does not stop that process's user from
//! rewriting the trail and sealing it again. What they cannot rewrite is a copy
//! held elsewhere: the writer sends every line to syslog (`[audit] syslog`), seals
//! included, and a SIEM keeps them. Given that copy, verify checks that each seal
//! it holds is in the trail, byte for byte, at its `seq`.
//!
//! The copy's format: text lines, each holding one record's JSON from its first
//! `{` to the end of the line — the RFC 5424 lines the writer sends
//! (`<PRI>1 TIME HOST keywarden PID seal - {"seq":…}`), or the bare JSON lines
//! (`audit export --format jsonl`, or a SIEM's export). Lines that are not seal
//! records are ignored, so the whole syslog stream may be given.

use std::collections::BTreeMap;
use std::path::Path;

use super::chain::Link;
use super::error::{AuditError, AuditResult};

/// The seal lines of an off-host copy, by `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffHost {
    seals: BTreeMap<u64, Vec<u8>>,
    /// Where it came from, for messages.
    pub source: String,
}

#[derive(serde::Deserialize)]
struct Kind {
    kind: Option<String>,
}

impl OffHost {
    /// Reads `path` (see the module documentation for the format). A copy holding
    /// no seal at all is an error: it is not the copy meant.
    pub fn read(path: &Path) -> AuditResult<OffHost> {
        let text = std::fs::read(path).map_err(|e| AuditError::io(path.display(), &e))?;
        let copy = OffHost::parse(&text, &path.display().to_string());
        if copy.seals.is_empty() {
            return Err(AuditError::Config(format!(
                "{} holds no seal records (expected the syslog lines or JSON records of the seals)",
                path.display()
            )));
        }
        Ok(copy)
    }

    /// The seal lines of `text`.
    pub fn parse(text: &[u8], source: &str) -> OffHost {
        let mut seals = BTreeMap::new();
        for line in text.split(|b| *b == b'\n') {
            let Some(start) = line.iter().position(|b| *b == b'{') else {
                continue;
            };
            let json = line[start..].trim_ascii_end();
            let is_seal = serde_json::from_slice::<Kind>(json)
                .ok()
                .and_then(|k| k.kind)
                .is_some_and(|k| k == "seal");
            if let (true, Some(link)) = (is_seal, Link::parse(json)) {
                seals.insert(link.seq, json.to_vec());
            }
        }
        OffHost {
            seals,
            source: source.to_owned(),
        }
    }

    /// The copy's line for `seq`, if it holds that seal.
    pub(super) fn get(&self, seq: u64) -> Option<&[u8]> {
        self.seals.get(&seq).map(Vec::as_slice)
    }

    /// The copy's first seal after `seq`.
    pub(super) fn first_after(&self, seq: Option<u64>) -> Option<u64> {
        match seq {
            Some(s) => self
                .seals
                .range(s.saturating_add(1)..)
                .next()
                .map(|(k, _)| *k),
            None => self.seals.keys().next().copied(),
        }
    }
}
