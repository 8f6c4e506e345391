//! Keywarden's configuration file (TOML), one schema shared by the module and the CLI.
//!
//! The module reads the file named by `KEYWARDEN_CONF`, else
//! `/etc/keywarden/keywarden.toml`. Anything missing, unreadable or invalid is an
//! error: there is no default backend to fall back to (fail closed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    pub audit: DirConfig,
}

/// `[backend]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Absolute path of the real module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
}

/// `[policy]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy profile in force.
    pub profile: Profile,
}

/// The policy profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Allow everything: Keywarden is a pure pass-through.
    Transparent,
    /// The recommended starting policy (needs the policy engine).
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
}

fn default_busy_timeout_ms() -> u64 {
    DEFAULT_BUSY_TIMEOUT_MS
}

/// A section that names a directory (`[audit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirConfig {
    /// Absolute path of the directory.
    pub dir: PathBuf,
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
        if self.policy.profile == Profile::Baseline {
            return Err(Error::Config(
                "policy.profile = \"baseline\" needs the policy engine, which this build does not have yet; \
                 use \"transparent\""
                    .into(),
            ));
        }
        Ok(())
    }
}

/// toml's messages span several lines; syslog and stderr want one.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [backend]
        module = "/usr/lib/softhsm/libsofthsm2.so"
        [policy]
        profile = "transparent"
        [store]
        dir = "/var/lib/keywarden"
        [audit]
        dir = "/var/log/keywarden"
    "#;

    #[test]
    fn parses_a_complete_file() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(
            c.backend.module,
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(c.policy.profile, Profile::Transparent);
        assert_eq!(c.store.busy_timeout_ms, DEFAULT_BUSY_TIMEOUT_MS);
    }

    #[test]
    fn store_busy_timeout_is_optional_and_bounded() {
        let with = |v: &str| GOOD.replace("[store]", &format!("[store]\nbusy_timeout_ms = {v}"));
        assert_eq!(
            Config::parse(&with("500")).unwrap().store.busy_timeout_ms,
            500
        );
        assert!(Config::parse(&with("0")).is_err());
        assert!(Config::parse(&with("30001")).is_err());
        assert!(Config::parse(&with("-1")).is_err());
    }

    #[test]
    fn refuses_missing_sections_unknown_keys_and_relative_paths() {
        assert!(Config::parse("").is_err());
        assert!(Config::parse(&GOOD.replace("[audit]", "[audit]\nbogus = 1")).is_err());
        assert!(Config::parse(&GOOD.replace("\"/usr/lib", "\"usr/lib")).is_err());
        assert!(Config::parse(&GOOD.replace("transparent", "allow-all")).is_err());
        assert!(Config::parse(&GOOD.replace("transparent", "baseline")).is_err());
    }

    #[test]
    fn errors_are_one_line_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.toml");
        std::fs::write(&p, "[backend\nmodule=").unwrap();
        let msg = Config::load(&p).unwrap_err().to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("k.toml"), "{msg}");
        let msg = Config::load(&dir.path().join("absent.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cannot read"), "{msg}");
    }
}
