//! Keywarden's configuration file (TOML), one schema shared by the module and the CLI.
//!
//! The module reads the file named by `KEYWARDEN_CONF`, else
//! `/etc/keywarden/keywarden.toml`. Anything missing, unreadable or invalid is an
//! error: there is no default backend to fall back to (fail closed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod syslog;

pub use syslog::SyslogTarget;

/// The environment variable naming the configuration file.
pub const CONF_ENV: &str = "KEYWARDEN_CONF";
/// Where the configuration lives when `KEYWARDEN_CONF` is not set.
pub const DEFAULT_CONF_PATH: &str = "/etc/keywarden/keywarden.toml";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The real PKCS#11 module every call is forwarded to.
    pub backend: BackendConfig,
    /// What the policy engine enforces.
    pub policy: PolicyConfig,
    /// The metadata store (key lifecycle, named identities).
    pub store: StoreConfig,
    /// The audit trail.
    pub audit: AuditSection,
}

/// `[backend]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Absolute path of the real module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Absolute path of a file holding the token's user PIN, readable by the
    /// service alone (mode 0600 or stricter; checked at use). Needed only for named
    /// identities (`C_Login` with `name:secret`, enforce mode): Keywarden checks the
    /// secret itself and logs in to the token with this PIN. The PIN itself never
    /// goes in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// As `pin_file`, with the token's SO PIN, for named SO logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so_pin_file: Option<PathBuf>,
}

/// `[policy]`: `mode = "transparent"`, or `mode = "enforce"` with `file = "/abs/policy.toml"`.
/// The older `profile = "transparent"` is still read, as `mode = "transparent"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicyConfig", into = "RawPolicyConfig")]
pub struct PolicyConfig {
    /// What the module enforces.
    pub mode: PolicyMode,
    /// `clock_override = true` lets `KEYWARDEN_NOW=<unix seconds>` shift the clock
    /// of policy time windows and key lifecycle dates (tests and what-if drills).
    /// Off by default: otherwise anyone who can set an application's environment
    /// could move expired keys back into their cryptoperiod.
    pub clock_override: bool,
}

/// What the module enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyMode {
    /// Allow everything: Keywarden is a pure pass-through; no policy file.
    Transparent,
    /// Enforce the policy file (docs/policy.md).
    Enforce {
        /// Absolute path of the policy file.
        file: PathBuf,
    },
}

/// `[policy]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    clock_override: bool,
}

impl TryFrom<RawPolicyConfig> for PolicyConfig {
    type Error = String;

    fn try_from(raw: RawPolicyConfig) -> std::result::Result<PolicyConfig, String> {
        let mode = match (raw.mode.as_deref(), raw.profile, raw.file) {
            (Some(_), Some(_), _) => {
                return Err("give policy.mode, not both policy.mode and the older policy.profile".into())
            }
            (Some("transparent"), None, None) | (None, Some(Profile::Transparent), None) => {
                PolicyMode::Transparent
            }
            (Some("transparent") | None, _, Some(_)) => {
                return Err("policy.file is only read with policy.mode = \"enforce\"".into())
            }
            (Some("enforce"), None, Some(file)) => PolicyMode::Enforce { file },
            (Some("enforce"), None, None) => {
                return Err("policy.mode = \"enforce\" needs policy.file, the policy's absolute path".into())
            }
            (None, Some(Profile::Baseline), None) => {
                return Err("policy.profile = \"baseline\" is a `keywarden init` profile, not a mode: use mode = \"enforce\" and file = \"/path/policy.toml\"".into())
            }
            (Some(other), None, _) => {
                return Err(format!("unknown policy.mode {other:?} (expected \"transparent\" or \"enforce\")"))
            }
            (None, None, None) => return Err("policy.mode is missing (\"transparent\" or \"enforce\")".into()),
        };
        Ok(PolicyConfig {
            mode,
            clock_override: raw.clock_override,
        })
    }
}

impl From<PolicyConfig> for RawPolicyConfig {
    fn from(p: PolicyConfig) -> RawPolicyConfig {
        let (mode, file) = match p.mode {
            PolicyMode::Transparent => ("transparent", None),
            PolicyMode::Enforce { file } => ("enforce", Some(file)),
        };
        RawPolicyConfig {
            mode: Some(mode.into()),
            profile: None,
            file,
            clock_override: p.clock_override,
        }
    }
}

/// The profiles `keywarden init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Allow everything: Keywarden is a pure pass-through.
    Transparent,
    /// Enforce a written baseline policy (`policy.toml` beside the configuration).
    Baseline,
}

/// The default of `store.busy_timeout_ms`.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 2_000;
/// The largest `store.busy_timeout_ms` accepted: a PKCS#11 call must not hang longer
/// than this on another process's store transaction.
pub const MAX_BUSY_TIMEOUT_MS: u64 = 30_000;

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Absolute path of the directory holding `keywarden.db`.
    pub dir: PathBuf,
    /// How long (ms) an operation waits for another process's write lock on the store
    /// before failing closed. Optional; 1 to 30000, default 2000.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// The Unix group (name or gid) shared by the application user(s) and the
    /// administrator: the directory is then `2770` and its files `0660` in that
    /// group. Without it everything is owner-only (`0700`/`0600`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

fn default_busy_timeout_ms() -> u64 {
    DEFAULT_BUSY_TIMEOUT_MS
}

impl StoreConfig {
    /// Who shares the store directory (`store.group`, resolved).
    pub fn sharing(&self) -> Result<crate::fsguard::Sharing> {
        crate::fsguard::Sharing::from_group(self.group.as_deref())
            .map_err(|e| Error::Config(format!("store.group: {e}")))
    }
}

impl AuditSection {
    /// Who shares the trail directory and the seal key (`audit.group`, resolved).
    pub fn sharing(&self) -> Result<crate::fsguard::Sharing> {
        crate::fsguard::Sharing::from_group(self.group.as_deref())
            .map_err(|e| Error::Config(format!("audit.group: {e}")))
    }
}

/// `[audit]`: only `dir` is required, so files written before the audit engine
/// existed stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Absolute path of the trail directory.
    pub dir: PathBuf,
    /// `buffered` (default) or `required`.
    #[serde(default)]
    pub mode: AuditMode,
    /// Which calls are recorded: `all` (default), `security`, or `off`.
    #[serde(default)]
    pub level: AuditLevel,
    /// Start a new trail file before one passes this many MiB (and at UTC midnight).
    #[serde(default = "default_rotate_mb")]
    pub rotate_mb: u64,
    /// Seal the chain head after this many records of one process…
    #[serde(default = "default_seal_every_records")]
    pub seal_every_records: u64,
    /// …or this many seconds after its first unsealed record, and at `C_Finalize`.
    #[serde(default = "default_seal_every_secs")]
    pub seal_every_secs: u64,
    /// Forward every record to syslog: `udp://HOST:PORT`, `unix:/PATH` or `/PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<String>,
    /// Send each seal record (only those) to this syslog target too, as it is
    /// written: the off-host copy `keywarden audit verify --against` compares with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_syslog: Option<String>,
    /// Software seal key (HMAC-SHA256, at least 32 bytes, raw or hex), for hosts
    /// without the token-backed audit key. Absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_key_file: Option<PathBuf>,
    /// Label of the token holding the audit seal key (`keywarden audit
    /// init-seal-key`): the module seals the chain head with that key. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_token: Option<String>,
    /// File (absolute, mode 0600) with the user PIN of the `seal_token` token, which
    /// the module logs in with to use the private seal key. Default:
    /// `backend.pin_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_pin_file: Option<PathBuf>,
    /// As `store.group`, for the trail directory and the software seal key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Which calls the module records (docs/audit.md, "Levels").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditLevel {
    /// Every call that matters: each operation with its bytes, sessions, logins,
    /// administration, key creation and management, refusals and failures.
    #[default]
    All,
    /// Security events only: logins, administration, key creation and management,
    /// refusals, and calls that failed. Successful operations (sign, encrypt,
    /// digest, …) and session opening and closing are not recorded.
    Security,
    /// No calls are recorded (the module's start and stop still are).
    Off,
}

/// How an operation waits for its audit record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditMode {
    /// Records are queued and written by a background thread within 100 ms; an
    /// operation never waits for the disk.
    #[default]
    Buffered,
    /// An operation succeeds only once its record is on disk (fsync); a write
    /// failure fails the operation.
    Required,
    /// An operation succeeds only once its record is written to the trail file
    /// (`write`, synced within 100 ms like `buffered`): the record survives the
    /// application's crash, not a power loss; a write failure fails the operation.
    Written,
}

impl AuditMode {
    /// The name in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            AuditMode::Buffered => "buffered",
            AuditMode::Required => "required",
            AuditMode::Written => "written",
        }
    }

    /// Whether a call waits for its record's write and fails when it fails.
    pub fn caller_waits(self) -> bool {
        self != AuditMode::Buffered
    }

    /// Whether every batch is `fdatasync`ed before its callers are answered.
    pub fn syncs_each_batch(self) -> bool {
        self == AuditMode::Required
    }
}

fn default_rotate_mb() -> u64 {
    64
}
fn default_seal_every_records() -> u64 {
    1000
}
fn default_seal_every_secs() -> u64 {
    60
}

impl Config {
    /// The configuration file path this process uses.
    pub fn path_from_env() -> PathBuf {
        std::env::var_os(CONF_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONF_PATH))
    }

    /// Reads and validates the configuration named by the environment.
    pub fn load_from_env() -> Result<Config> {
        Config::load(&Config::path_from_env())
    }

    /// Reads and validates one configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config =
            toml::from_str(text).map_err(|e| Error::Config(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let absolute = |what: &str, p: &Path| {
            if p.is_absolute() {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{what} must be an absolute path, got {}",
                    p.display()
                )))
            }
        };
        absolute("backend.module", &self.backend.module)?;
        absolute("store.dir", &self.store.dir)?;
        absolute("audit.dir", &self.audit.dir)?;
        if !(1..=MAX_BUSY_TIMEOUT_MS).contains(&self.store.busy_timeout_ms) {
            return Err(Error::Config(format!(
                "store.busy_timeout_ms must be 1 to {MAX_BUSY_TIMEOUT_MS}, got {}",
                self.store.busy_timeout_ms
            )));
        }
        if let Some(key) = &self.audit.seal_key_file {
            absolute("audit.seal_key_file", key)?;
        }
        if let Some(pin) = &self.audit.seal_pin_file {
            absolute("audit.seal_pin_file", pin)?;
        }
        for (what, value) in [
            ("audit.rotate_mb", self.audit.rotate_mb),
            ("audit.seal_every_records", self.audit.seal_every_records),
            ("audit.seal_every_secs", self.audit.seal_every_secs),
        ] {
            if value == 0 {
                return Err(Error::Config(format!("{what} must be at least 1")));
            }
        }
        if let Some(label) = &self.audit.seal_token {
            // CK_TOKEN_INFO.label is 32 bytes: a longer label can name no token.
            if label.is_empty() || label.len() > 32 {
                return Err(Error::Config(
                    "audit.seal_token must be a token label of 1 to 32 bytes".into(),
                ));
            }
        }
        for (what, group) in [
            ("store.group", &self.store.group),
            ("audit.group", &self.audit.group),
        ] {
            if group
                .as_deref()
                .is_some_and(|g| g.is_empty() || g.contains(char::is_whitespace))
            {
                return Err(Error::Config(format!("{what} must be a group name or gid")));
            }
        }
        for target in [&self.audit.syslog, &self.audit.seal_syslog]
            .into_iter()
            .flatten()
        {
            // Worded as the audit engine words it when it reads the section.
            SyslogTarget::parse(target)
                .map_err(|e| Error::Config(format!("audit configuration: {e}")))?;
        }
        if let PolicyMode::Enforce { file } = &self.policy.mode {
            absolute("policy.file", file)?;
        }
        Ok(())
    }
}

/// toml's messages span several lines; syslog and stderr want one.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
