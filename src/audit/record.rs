//! The typed audit records, and how they read back.
//!
//! A record is one JSON object on one line. Field order is fixed by the declaration
//! order below (serde serialises struct fields in order), so the same event always
//! produces the same bytes and a SIEM sees one stable schema:
//!
//! `seq, prev` (added by the writer, see `chain.rs`), `time, host, pid, uid, user, exe`
//! (see `context.rs`), then `kind` and the event's own fields.
//!
//! There is deliberately no field that could hold a PIN, key material or the data of
//! an operation: only lengths, names, handles and identifiers. A caller who holds a
//! PIN has no way to put it into a record short of naming a key or a user after it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use pkcs11_sys::{CK_MECHANISM_TYPE, CK_RV};
use serde::{Deserialize, Serialize, Serializer};

use crate::abi::{mechanism_name, rv_name, MechanismSummary};
use crate::call::Call;
use crate::functions::FunctionId;
use crate::store::KeyState;

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

/// The key a creating call made (see [`OpEvent::new_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewKey {
    /// Its label.
    #[serde(
        rename = "new_key_label",
        serialize_with = "shared_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub label: Option<std::sync::Arc<str>>,
    /// Its `CKA_ID`, hex.
    #[serde(
        rename = "new_key_id",
        serialize_with = "hex_shared",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<std::sync::Arc<[u8]>>,
    /// Its managed version (enforce mode, when the call registered it).
    #[serde(rename = "new_key_version", skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// One slot operation (`kind: "op"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpEvent {
    /// The call that ended the operation (`C_Sign`, `C_SignFinal`, `C_Login`, …).
    #[serde(serialize_with = "function_name")]
    pub function: FunctionId,
    /// The named identity that made the call, when identities are in use.
    #[serde(serialize_with = "shared_str")]
    pub identity: Option<std::sync::Arc<str>>,
    /// That identity's role.
    #[serde(serialize_with = "shared_str")]
    pub role: Option<std::sync::Arc<str>>,
    /// Slot ID.
    pub slot: Option<u64>,
    /// Token serial number (shared: the same for every record of a slot).
    #[serde(serialize_with = "shared_str")]
    pub token: Option<std::sync::Arc<str>>,
    /// Session handle.
    pub session: Option<u64>,
    /// The mechanism and its parameter summary (`MechanismSummary` text).
    pub mechanism: Option<Mechanism>,
    /// Key label.
    #[serde(serialize_with = "shared_str")]
    pub key_label: Option<std::sync::Arc<str>>,
    /// Key `CKA_ID`, hex.
    #[serde(serialize_with = "hex_shared")]
    pub key_id: Option<std::sync::Arc<[u8]>>,
    /// Key lifecycle version.
    pub key_version: Option<u32>,
    /// Allowed or refused by Keywarden.
    pub decision: Decision,
    /// The rule that decided, when the policy names one.
    #[serde(serialize_with = "shared_str")]
    pub rule: Option<std::sync::Arc<str>>,
    /// The result the application got.
    pub rv: Rv,
    /// Input bytes over the whole operation.
    pub bytes_in: u64,
    /// Output bytes over the whole operation.
    pub bytes_out: u64,
    /// From the start of the `*Init` (or the call) to the end of its last call.
    pub duration_us: u64,
    /// The key a successful creating call made (`C_GenerateKey`, the private key
    /// of `C_GenerateKeyPair`, `C_CreateObject`, `C_CopyObject`, `C_UnwrapKey`,
    /// `C_DeriveKey`): `new_key_label`, `new_key_id`, `new_key_version`, each
    /// written only when known — absent, not `null`, in every other record. Boxed:
    /// it is rare, and every record is moved several times on the caller's thread
    /// and through the writer's queue.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub new_key: Option<Box<NewKey>>,
}

impl OpEvent {
    /// An allowed call with result `rv` and nothing else known yet.
    pub fn new(function: FunctionId, rv: CK_RV) -> OpEvent {
        OpEvent {
            function,
            identity: None,
            role: None,
            slot: None,
            token: None,
            session: None,
            mechanism: None,
            key_label: None,
            key_id: None,
            key_version: None,
            decision: Decision::Allow,
            rule: None,
            rv: Rv(rv),
            bytes_in: 0,
            bytes_out: 0,
            duration_us: 0,
            new_key: None,
        }
    }

    /// What the gateway's call descriptor says (function, slot, session, mechanism
    /// type). The descriptor holds no data, so neither can the record.
    // CK_ULONG is u64 here but 32 bits wide on other targets.
    #[allow(clippy::useless_conversion)]
    pub fn from_call(call: &Call, rv: CK_RV) -> OpEvent {
        let mut op = OpEvent::new(call.function, rv);
        op.slot = call.slot.map(u64::from);
        op.session = call.session.map(u64::from);
        op.mechanism = call.mechanism.map(Mechanism::Type);
        op
    }

    /// Sets the mechanism from its decoded summary (types and lengths only).
    pub fn with_mechanism(mut self, m: &MechanismSummary) -> OpEvent {
        self.set_mechanism(m);
        self
    }

    /// Sets the mechanism in place (the hot path: no move of the record).
    pub fn set_mechanism(&mut self, m: &MechanismSummary) {
        self.mechanism = Some(Mechanism::Summary(*m));
    }

    /// Sets the mechanism from its type alone.
    pub fn with_mechanism_type(mut self, m: CK_MECHANISM_TYPE) -> OpEvent {
        self.mechanism = Some(Mechanism::Type(m));
        self
    }

    /// Names the key.
    pub fn with_key(mut self, key: KeyRef) -> OpEvent {
        self.set_key(key);
        self
    }

    /// Names the key in place.
    pub fn set_key(&mut self, key: KeyRef) {
        self.key_label = key.label;
        self.key_id = key.id;
        self.key_version = key.version;
    }

    /// Names the key the call created.
    pub fn with_new_key(mut self, key: KeyRef) -> OpEvent {
        self.set_new_key(key);
        self
    }

    /// Names the key the call created, in place.
    pub fn set_new_key(&mut self, key: KeyRef) {
        self.new_key = Some(Box::new(NewKey {
            label: key.label,
            id: key.id,
            version: key.version,
        }));
    }

    /// Names the caller.
    pub fn with_identity(
        mut self,
        name: impl Into<std::sync::Arc<str>>,
        role: Option<std::sync::Arc<str>>,
    ) -> OpEvent {
        self.identity = Some(name.into());
        self.role = role;
        self
    }

    /// Records a refusal by `rule`.
    pub fn denied(mut self, rule: impl Into<std::sync::Arc<str>>) -> OpEvent {
        self.decision = Decision::Deny;
        self.rule = Some(rule.into());
        self
    }

    /// Sets the operation's duration.
    pub fn with_duration(mut self, d: Duration) -> OpEvent {
        self.set_duration(d);
        self
    }

    /// Sets the duration in place.
    pub fn set_duration(&mut self, d: Duration) {
        self.duration_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    }
}

/// Whether a CLI change or a reload worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It worked.
    Ok,
    /// It failed; `detail` says why.
    Error,
}

/// A key lifecycle change made by the CLI, or by the module itself (auto-registration,
/// automatic rotation) (`kind: "lifecycle"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    /// `adopt`, `register`, `rotate`, `deactivate`, `destroy`, …
    pub action: String,
    /// Who made the change: the CLI's user, or the calling session's named
    /// identity (else the OS user) for the module's own changes.
    pub actor: Option<String>,
    /// Key label.
    pub key_label: Option<String>,
    /// Key `CKA_ID`, hex.
    #[serde(serialize_with = "hex_opt")]
    pub key_id: Option<Vec<u8>>,
    /// Key lifecycle version.
    pub key_version: Option<u32>,
    /// State before.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: Option<String>,
    /// Worked or failed.
    pub outcome: Outcome,
    /// Why it failed (an error message, which never holds secrets).
    pub detail: Option<String>,
}

impl LifecycleEvent {
    /// `action` on the key labelled `label`, by default successful.
    pub fn new(action: &str, label: Option<&str>) -> LifecycleEvent {
        LifecycleEvent {
            action: action.to_owned(),
            actor: None,
            key_label: label.map(str::to_owned),
            key_id: None,
            key_version: None,
            from_state: None,
            to_state: None,
            outcome: Outcome::Ok,
            detail: None,
        }
    }

    /// Names the key's `CKA_ID` and, when known, its version.
    pub fn of_key(self, id: &[u8], version: Option<u32>) -> LifecycleEvent {
        LifecycleEvent {
            key_id: Some(id.to_vec()),
            key_version: version,
            ..self
        }
    }

    /// A change of state from `from` to `to`.
    pub fn states(self, from: Option<KeyState>, to: KeyState) -> LifecycleEvent {
        LifecycleEvent {
            from_state: from.map(|s| s.to_string()),
            to_state: Some(to.to_string()),
            ..self
        }
    }
}

/// An administrative change made by the CLI other than a key's lifecycle
/// (`kind: "admin"`). Secrets (an identity's secret, a PIN) have no field here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminEvent {
    /// `users.add`, `users.remove`, `users.passwd`, `users.disable`,
    /// `users.enable`, `init`.
    pub action: String,
    /// Who ran the CLI (the OS user).
    pub actor: Option<String>,
    /// What it acted on: the identity's name, the configuration file.
    pub target: Option<String>,
    /// Worked or failed.
    pub outcome: Outcome,
    /// Roles given, profile written, or why it failed.
    pub detail: Option<String>,
}

/// What was reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadWhat {
    /// The configuration file.
    Config,
    /// The policy.
    Policy,
}

/// A configuration or policy (re)load (`kind: "reload"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadEvent {
    /// Config or policy.
    pub what: ReloadWhat,
    /// The file read.
    pub path: String,
    /// SHA-256 of its contents, hex: which version was in force.
    pub sha256: Option<String>,
    /// Loaded or refused.
    pub outcome: Outcome,
    /// Why it was refused.
    pub detail: Option<String>,
}

/// The module's own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleWhat {
    /// `C_Initialize` succeeded.
    Start,
    /// `C_Finalize`.
    Stop,
    /// An internal error worth an auditor's attention.
    Error,
}

/// The module's start, stop or error (`kind: "module"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleEvent {
    /// Start, stop or error.
    pub what: ModuleWhat,
    /// Keywarden's version.
    pub version: Cow<'static, str>,
    /// The backend module path.
    pub backend: Option<String>,
    /// An error message (never holds secrets).
    pub detail: Option<String>,
}

impl ModuleEvent {
    /// A module event of this build.
    pub fn new(what: ModuleWhat) -> ModuleEvent {
        ModuleEvent {
            what,
            version: Cow::Borrowed(crate::VERSION),
            backend: None,
            detail: None,
        }
    }
}

/// A seal over the chain head (`kind: "seal"`): `sig` signs `head`, the hash of the
/// record just before this one (record `sealed_seq`), which this record's `prev`
/// repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealEvent {
    /// Sequence number of the sealed record.
    pub sealed_seq: u64,
    /// Its hash, hex.
    pub head: String,
    /// Signature algorithm, e.g. `hmac-sha256`.
    pub alg: String,
    /// Which key (a fingerprint, not the key).
    pub key_id: String,
    /// The signature, hex.
    pub sig: String,
    /// The sealing rule of the writer: a seal at least every this many of its
    /// records…
    pub every_records: u64,
    /// …and this many seconds after its first unsealed record.
    pub every_secs: u64,
}

/// Records lost in `buffered` mode (`kind: "gap"`), written as soon as writing works
/// again, so a loss is never silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapEvent {
    /// How many records were dropped.
    pub lost: u64,
    /// Failed write attempts meanwhile.
    pub errors: u64,
    /// The last error.
    pub last_error: String,
}

/// A crashed writer's torn, unacknowledged last line was cut off (`kind: "repair"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairEvent {
    /// The trail file.
    pub file: String,
    /// Where the torn line began.
    pub offset: u64,
    /// How many bytes were cut.
    pub dropped_bytes: u64,
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
