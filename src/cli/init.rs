//! `keywarden init`: write a complete, commented configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use crate::config::{Config, Profile};
use crate::error::{Error, Result};
use crate::policy::{Policy, SystemClock, BASELINE_POLICY};

/// `keywarden init`'s arguments.
#[derive(Debug)]
pub(super) struct InitArgs<'a> {
    pub dir: &'a Path,
    pub backend: &'a Path,
    pub profile: Profile,
    pub force: bool,
    /// Create the audit seal key on this token and name it in `[audit] seal_token`.
    pub audit_token: Option<&'a str>,
    /// The user PIN's file for `audit_token`.
    pub pin_file: Option<&'a Path>,
    /// `store.group` and `audit.group`.
    pub group: Option<&'a str>,
}

/// Writes DIR/keywarden.toml (and, for the baseline profile, DIR/policy.toml) and
/// creates DIR/store (with an empty store: the only command that creates one) and
/// DIR/audit, owner-only or shared with `--group`, then (with `--audit-token`) creates the audit
/// seal key, and prints the `export KEYWARDEN_CONF=...` line.
pub(super) fn run(args: &InitArgs<'_>) -> Result<ExitCode> {
    let (profile, force) = (args.profile, args.force);
    let dir = absolute(args.dir)?;
    let backend = absolute(args.backend)?;
    crate::backend::inspect_module(&backend)?;
    let conf_path = dir.join("keywarden.toml");
    let policy_path = dir.join("policy.toml");
    let mut writes = vec![&conf_path];
    if profile == Profile::Baseline {
        writes.push(&policy_path);
    }
    if let Some(existing) = writes.iter().find(|p| p.exists()).filter(|_| !force) {
        return Err(Error::Config(format!(
            "{} exists; pass --force to overwrite",
            existing.display()
        )));
    }
    let seal_pin = match (args.audit_token, args.pin_file) {
        (Some(_), Some(f)) => Some(absolute(f)?),
        _ => None,
    };
    let text = render(
        &backend,
        &dir,
        profile,
        args.audit_token,
        seal_pin.as_deref(),
        args.group,
    );
    // What we write must be what the module accepts.
    let config = Config::parse(&text)?;
    for (sub, sharing) in [
        (&config.store.dir, config.store.sharing()?),
        (&config.audit.dir, config.audit.sharing()?),
    ] {
        crate::fsguard::GuardedDir::create(sub, sharing)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", sub.display())))?;
    }
    // The store exists from here on: any later opener refuses a missing one.
    crate::store::create(&config.store)?;
    // The new trail records this init; opened before anything is written.
    let au = super::admin_audit::CliAudit::open(&config)?;
    let result = write_all(args, &dir, &backend, &text);
    let outcome = match &result {
        Ok(()) => Ok(Some(format!(
            "profile {}{}",
            match profile {
                Profile::Transparent => "transparent",
                Profile::Baseline => "baseline (policy.toml written)",
            },
            args.audit_token.map_or(String::new(), |t| format!(
                "; audit seal key on token {t:?}"
            ))
        ))),
        Err(e) => Err(e.to_string()),
    };
    au.admin("init", Some(&conf_path.display().to_string()), outcome);
    // From now on the store records its changes in this trail, whose chain the
    // record above began if it was new (`--force` rebinds a store bound to another
    // chain, e.g. after the trail was replaced). Binding is init's only change to
    // the store, so it comes after the record that names the trail.
    let result = result.and_then(|()| {
        let store = crate::store::open(&config.store)?;
        au.bind(&config, &store, force)
    });
    let code = au.finish(result.map(|()| ExitCode::SUCCESS))?;
    println!("export KEYWARDEN_CONF={}", conf_path.display());
    Ok(code)
}

/// The files `init` writes, and the seal key.
fn write_all(args: &InitArgs<'_>, dir: &Path, backend: &Path, text: &str) -> Result<()> {
    let (conf_path, policy_path) = (dir.join("keywarden.toml"), dir.join("policy.toml"));
    let profile = args.profile;
    if profile == Profile::Baseline {
        Policy::compile(BASELINE_POLICY, "baseline policy", Arc::new(SystemClock))?;
        std::fs::write(&policy_path, BASELINE_POLICY)
            .map_err(|e| Error::Config(format!("cannot write {}: {e}", policy_path.display())))?;
    }
    std::fs::write(&conf_path, text)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", conf_path.display())))?;
    if let Some(token) = args.audit_token {
        // After the configuration is written, so a failure here leaves a valid file
        // and the step can be rerun alone with `keywarden audit init-seal-key`.
        let (file, written) =
            super::audit_seal::init_seal_key(&super::audit_seal::SealKeyRequest {
                module: backend,
                token,
                pin_file: args.pin_file,
                audit_dir: &dir.join("audit"),
                sharing: crate::fsguard::Sharing::from_group(args.group).map_err(Error::Config)?,
                export_existing: false,
                rotate: false,
            })?;
        eprintln!(
            "audit seal key on token {token:?}: key_id {}; public key in {}",
            file.key_id,
            written.display()
        );
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
}

fn quoted(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// The configuration file `init` writes: every setting, most commented out with
/// its default.
fn render(
    backend: &Path,
    dir: &Path,
    profile: Profile,
    audit_token: Option<&str>,
    seal_pin: Option<&Path>,
    group: Option<&str>,
) -> String {
    let group = match group {
        Some(g) => format!("group = {}", toml::Value::String(g.to_owned())),
        None => "# group = \"keywarden\"".to_owned(),
    };
    let seal_token = match audit_token {
        Some(label) => format!("seal_token = {}", toml::Value::String(label.to_owned())),
        None => "# seal_token = \"audit-token\"".to_owned(),
    };
    let seal_pin = match seal_pin {
        Some(f) => format!("seal_pin_file = {}", quoted(f)),
        None => "# seal_pin_file = \"/etc/keywarden/audit-token.pin\"".to_owned(),
    };
    [
        render_head(backend, &policy_section(profile, dir)),
        render_store(dir, &group),
        render_audit(dir, audit_level(profile), &seal_token, &seal_pin, &group),
    ]
    .concat()
}

/// `[audit] level`: adoption starts transparent, and application owners must not
/// notice Keywarden, so only security events are recorded until a policy is
/// enforced.
fn audit_level(profile: Profile) -> &'static str {
    match profile {
        Profile::Transparent => "level = \"security\"",
        Profile::Baseline => "level = \"all\"",
    }
}

/// The body of `[policy]`.
fn policy_section(profile: Profile, dir: &Path) -> String {
    match profile {
        Profile::Transparent => {
            "# \"transparent\": allow everything; Keywarden is a pure pass-through.\n\
             # \"enforce\": enforce the policy file named by `file` (docs/policy.md).\n\
             mode = \"transparent\""
                .to_owned()
        }
        Profile::Baseline => format!(
            "# \"enforce\": enforce the policy file below (docs/policy.md); a broken edit of\n\
             # it keeps the previous policy. \"transparent\": allow everything.\n\
             mode = \"enforce\"\n\
             # Absolute path. Check edits with `keywarden policy check --strict FILE`.\n\
             file = {}",
            quoted(&dir.join("policy.toml"))
        ),
    }
}

/// The file's header, `[backend]` and `[policy]`.
fn render_head(backend: &Path, policy: &str) -> String {
    format!(
        r#"# Keywarden configuration, written by `keywarden init`.
# Applications load libkeywarden.so instead of the token's module; Keywarden reads
# this file (named by KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml) at
# C_Initialize. A missing or invalid file makes C_Initialize fail with
# CKR_GENERAL_ERROR and a one-line reason on stderr and in syslog: there is no
# default backend.

[backend]
# The real PKCS#11 module every call is forwarded to (absolute path).
module = {backend}

[policy]
{policy}

"#,
        backend = quoted(backend),
    )
}

/// `[store]`.
fn render_store(dir: &Path, group: &str) -> String {
    format!(
        r#"[store]
# Metadata store (key lifecycle, named identities): keywarden.db in this
# directory, shared by every process that loads the module. Absolute path.
# A store that is missing, read-only, corrupt or locked too long makes the
# operations that need it fail (fail closed).
dir = {store}
# How long (ms) to wait for another process's write to the store before failing;
# 1 to 30000.
# busy_timeout_ms = 2000
# The Unix group (name or gid) shared by the application user(s) and the
# administrator: the directory is then 2770 and its files 0660 in that group.
# Without it everything is owner-only (0700/0600). A file or directory anyone
# else can write (or read, for the store) is refused.
{group}

"#,
        store = quoted(&dir.join("store")),
    )
}

/// `[audit]`.
fn render_audit(dir: &Path, level: &str, seal_token: &str, seal_pin: &str, group: &str) -> String {
    format!(
        r#"[audit]
# Audit trail directory. Absolute path. Files: audit-<first seq>-<YYYYMMDD>.jsonl
# (JSON Lines, one hash-chained record per line) and audit.head.
dir = {audit}
# "buffered": records are written by a background thread within 100 ms; a crash
#   can lose the last records not yet written (at most 100 ms of them, plus the
#   queue), never earlier ones.
# "required": an operation succeeds only once its record is on disk (fsync); if
#   the record cannot be written (disk full) the operation fails.
# "written": as "required", but the record need only be written to the file (it
#   survives the application's crash, not a power loss; synced within 100 ms).
# mode = "buffered"
# Which calls are recorded: "all" (every operation, session, login, change,
# refusal and failure), "security" (logins, administration, key creation and
# management, refusals and failures; not successful operations or sessions), or
# "off".
{level}
# Start a new file before one passes this many MiB (and at each UTC midnight).
# rotate_mb = 64
# Seal the chain head every this many records of a process, or this many
# seconds, and at C_Finalize.
# seal_every_records = 1000
# seal_every_secs = 60
# Forward every record to syslog (RFC 5424): "udp://HOST:PORT", "unix:/dev/log".
# syslog = "unix:/dev/log"
# Send each seal record (only those) to this syslog target too: the off-host copy
# of the seals that `keywarden audit verify --against FILE` compares the trail with.
# seal_syslog = "udp://siem.example:514"
# Software seal key (HMAC-SHA256, 32+ bytes) for hosts without the token's
# audit key. Absolute path.
# seal_key_file = "/etc/keywarden/audit-seal.key"
# Label of the token holding the audit seal key (created by `keywarden audit
# init-seal-key --token LABEL`, which also writes its public half to
# seal-key.pub in the audit directory): the module seals with that key.
{seal_token}
# The seal key is private: the module logs in to that token with the user PIN
# in this file (absolute, mode 0600) to seal. Default: backend.pin_file.
{seal_pin}
# As store.group, for this directory and the software seal key.
{group}
"#,
        audit = quoted(&dir.join("audit")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_parses_back() {
        let text = render(
            Path::new("/usr/lib/x.so"),
            Path::new("/tmp/k w\"d"),
            Profile::Transparent,
            None,
            None,
            None,
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.audit.seal_token, None);
        assert_eq!(c.store.dir, PathBuf::from("/tmp/k w\"d/store"));
        // The commented audit settings, uncommented, are valid too.
        let all = text
            .replace("# mode =", "mode =")
            .replace("# rotate_mb", "rotate_mb")
            .replace("# seal_every", "seal_every")
            .replace("# syslog =", "syslog =")
            .replace("# seal_syslog =", "seal_syslog =")
            .replace("# seal_key_file =", "seal_key_file =")
            .replace("# seal_token =", "seal_token =")
            .replace("# seal_pin_file =", "seal_pin_file =")
            .replace("# group =", "group =");
        assert_eq!(Config::parse(&all).unwrap().audit.rotate_mb, 64);
        assert_eq!(c.backend.module, PathBuf::from("/usr/lib/x.so"));
        assert_eq!(c.policy.mode, crate::config::PolicyMode::Transparent);
        let text = render(
            Path::new("/usr/lib/x.so"),
            Path::new("/etc/kw"),
            Profile::Baseline,
            Some("audit \"tok\""),
            Some(Path::new("/etc/kw/audit.pin")),
            Some("kw"),
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.audit.seal_token.as_deref(), Some("audit \"tok\""));
        assert_eq!(c.store.group.as_deref(), Some("kw"));
        assert_eq!(c.audit.group.as_deref(), Some("kw"));
        assert_eq!(
            c.audit.seal_pin_file.as_deref(),
            Some(Path::new("/etc/kw/audit.pin"))
        );
        assert_eq!(
            c.policy.mode,
            crate::config::PolicyMode::Enforce {
                file: PathBuf::from("/etc/kw/policy.toml")
            }
        );
    }
}
