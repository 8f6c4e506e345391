//! The typed audit records, and how they read back.
//!
//! A record is one JSON object on one line. Field order is fixed by the declaration
//! order of each record type (serde serialises struct fields in order), so the same
//! event always produces the same bytes and a SIEM sees one stable schema:
//!
//! `seq, prev` (added by the writer, see `chain.rs`), `time, host, pid, uid, user, exe`
//! (see `context.rs`), then `kind` and the event's own fields.
//!
//! There is deliberately no field that could hold a PIN, key material or the data of
//! an operation: only lengths, names, handles and identifiers. A caller who holds a
//! PIN has no way to put it into a record short of naming a key or a user after it.
//!
//! Here: the event enum and the field types records share; `op.rs`: the operation
//! record; `events.rs`: every other kind.

use std::time::SystemTime;

use pkcs11_sys::{CK_MECHANISM_TYPE, CK_RV};
use serde::{Deserialize, Serialize, Serializer};

use crate::abi::{mechanism_name, rv_name, MechanismSummary};
use crate::functions::FunctionId;

mod events;
mod op;

pub use events::{
    AdminEvent, GapEvent, LifecycleEvent, ModuleEvent, ModuleWhat, Outcome, ReloadEvent,
    ReloadWhat, RepairEvent, SealEvent,
};
pub use op::{NewKey, OpEvent};

/// A record's time: UTC, microseconds (`2025-01-31T12:00:00.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now())
    }

    /// Parses an RFC 3339 time (`2025-01-31T12:00:00Z`, fraction optional) or a
    /// plain date (`2025-01-31`, meaning its midnight UTC).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let with_time = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        humantime::parse_rfc3339_weak(&with_time)
            .ok()
            .map(Timestamp)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_micros(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One auditable event. The writer adds the sequence number, the chain link, the
/// time and the process context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A slot operation: a call, or a whole multi-part operation at its end.
    Op(OpEvent),
    /// A key lifecycle change made by the CLI or by the module (registration, rotation).
    Lifecycle(LifecycleEvent),
    /// Another administrative change made by the CLI: named identities, `init`.
    Admin(AdminEvent),
    /// A configuration or policy reload.
    Reload(ReloadEvent),
    /// The module's start, stop, or one of its own errors.
    Module(ModuleEvent),
    /// A signature over the chain head (written by the writer only).
    Seal(SealEvent),
    /// Records lost after write failures in `buffered` mode (written by the writer).
    Gap(GapEvent),
    /// A torn, never-acknowledged tail left by a crashed writer was cut off.
    Repair(RepairEvent),
}

/// The policy decision on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The call was forwarded.
    Allow,
    /// The call was refused by Keywarden and never reached the token.
    Deny,
}

/// A key as records name it: never its value. Shared strings: the gateway keeps
/// one per key and every record of it points there (no allocation per record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRef {
    /// `CKA_LABEL`.
    pub label: Option<std::sync::Arc<str>>,
    /// `CKA_ID` (an identifier, not secret).
    pub id: Option<std::sync::Arc<[u8]>>,
    /// Keywarden's lifecycle version.
    pub version: Option<u32>,
}

/// A `CK_RV`, written as its specification name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rv(pub CK_RV);

impl Serialize for Rv {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rv_name(self.0))
    }
}

/// A record's mechanism: kept as typed values and formatted only when the writer
/// serialises the record (off the caller's thread), e.g.
/// `CKM_AES_GCM(iv_len=12, aad_len=0, tag_bits=128)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// The decoded mechanism (types and lengths only).
    Summary(MechanismSummary),
    /// The mechanism type alone.
    Type(CK_MECHANISM_TYPE),
    /// Text given as is.
    Text(String),
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mechanism::Summary(m) => write!(f, "{m}"),
            Mechanism::Type(t) => f.write_str(&mechanism_name(*t)),
            Mechanism::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for Mechanism {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<&str> for Mechanism {
    fn from(text: &str) -> Mechanism {
        Mechanism::Text(text.to_owned())
    }
}

fn shared_str<S: Serializer>(v: &Option<std::sync::Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(text) => s.serialize_str(text),
        None => s.serialize_none(),
    }
}

fn function_name<S: Serializer>(f: &FunctionId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.name())
}

fn hex_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&super::chain::to_hex(bytes)),
        None => s.serialize_none(),
    }
}

fn hex_shared<S: Serializer>(v: &Option<std::sync::Arc<[u8]>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&super::chain::to_hex(bytes)),
        None => s.serialize_none(),
    }
}

macro_rules! into_event {
    ($($t:ident => $v:ident),*) => { $( impl From<$t> for Event { fn from(e: $t) -> Event { Event::$v(e) } } )* };
}
into_event!(OpEvent => Op, LifecycleEvent => Lifecycle, AdminEvent => Admin, ReloadEvent => Reload,
    ModuleEvent => Module, SealEvent => Seal, GapEvent => Gap, RepairEvent => Repair);

/// A record read back from the trail, for search, tail, export and syslog. Every field is
/// optional so that records of other kinds, and of later versions, still read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct RecordView {
    pub seq: Option<u64>,
    pub time: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub exe: Option<String>,
    pub kind: Option<String>,
    pub function: Option<String>,
    pub identity: Option<String>,
    pub role: Option<String>,
    pub slot: Option<u64>,
    pub token: Option<String>,
    pub session: Option<u64>,
    pub mechanism: Option<String>,
    pub key_label: Option<String>,
    pub key_id: Option<String>,
    pub key_version: Option<u32>,
    pub decision: Option<Decision>,
    pub rule: Option<String>,
    pub rv: Option<String>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub duration_us: Option<u64>,
    pub new_key_label: Option<String>,
    pub new_key_id: Option<String>,
    pub new_key_version: Option<u32>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub what: Option<String>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

/// The part of a line after `seq` and `prev`: time, process context and the event,
/// closing brace included. Called on the writer thread (not the caller's), before
/// it takes the trail lock, which keeps the locked section to hashing and one
/// `write`. Written in place (`render.rs`).
pub(crate) fn render_tail(time: Timestamp, process_fields: &str, event: &Event) -> String {
    super::render::tail(time.0, process_fields, event)
}
