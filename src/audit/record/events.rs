//! The records other than operations: lifecycle changes, administration, reloads,
//! the module's own events, seals, gaps and repairs.

use std::borrow::Cow;

use serde::Serialize;

use crate::store::KeyState;

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
    #[serde(serialize_with = "super::hex_opt")]
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
