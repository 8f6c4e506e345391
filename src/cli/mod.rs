//! The `keywarden` admin CLI. It is a front end of its own, built on the engine
//! layers (config, backend loader) and on `cryptoki` where it talks to a token; it
//! never goes through `ffi`. One file per subcommand.

mod admin_audit;
mod audit;
mod audit_follow;
mod audit_seal;
mod audit_verify;
mod audit_verify_json;
mod doctor;
mod explain;
mod init;
mod keys;
mod locks;
mod policy;
mod serve;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Profile;

/// Keywarden: key-management policy, lifecycle and audit in front of a PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "keywarden", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a complete, commented configuration (and its directories) into DIR.
    Init {
        /// Directory for keywarden.toml, store/ and audit/ (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Path of the real PKCS#11 module Keywarden forwards to.
        #[arg(long)]
        backend: PathBuf,
        /// Policy profile: transparent (allow everything) or baseline (write and
        /// enforce DIR/policy.toml).
        #[arg(long, value_enum, default_value_t = Profile::Transparent)]
        profile: Profile,
        /// Overwrite an existing keywarden.toml.
        #[arg(long)]
        force: bool,
        /// Also create the audit seal key on this token (label) and write
        /// `seal_token` into the configuration (see `keywarden audit init-seal-key`).
        #[arg(long)]
        audit_token: Option<String>,
        /// With --audit-token: file holding the token's user PIN (mode 0600);
        /// default: standard input.
        #[arg(long, requires = "audit_token")]
        pin_file: Option<PathBuf>,
        /// Unix group (name or gid) shared by the application user(s) and the
        /// administrator: store/ and audit/ become 2770 and their files 0660 in
        /// it (`store.group`, `audit.group`). Default: owner-only (0700/0600).
        #[arg(long)]
        group: Option<String>,
    },
    /// Check the configuration and the backend, and say what is wrong.
    Doctor {
        /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object: the facts of each check and every problem, warning
        /// and note with its `check`, `message` and `fix` (docs/doctor.md).
        #[arg(long)]
        json: bool,
    },
    /// Manage named identities (PINs of the form NAME:SECRET).
    Users {
        /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Check a policy file, or explain a decision (docs/policy.md).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Managed keys: list, show, rotate, suspend/resume/deactivate/compromise,
    /// destroy, adopt (docs/lifecycle.md).
    Keys {
        /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(flatten)]
        token: keys::TokenArgs,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Verify, read and export the audit trail.
    Audit {
        #[command(flatten)]
        source: audit::Source,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Run the Keywarden service in the foreground: clients' calls arrive over a
    /// Unix socket (stops on SIGTERM or SIGINT).
    Serve(serve::ServeArgs),
}

/// Runs the CLI with the process arguments.
pub fn main() -> ExitCode {
    crate::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            dir,
            backend,
            profile,
            force,
            audit_token,
            pin_file,
            group,
        } => init::run(&init::InitArgs {
            dir: &dir,
            backend: &backend,
            profile,
            force,
            audit_token: audit_token.as_deref(),
            pin_file: pin_file.as_deref(),
            group: group.as_deref(),
        }),
        Command::Doctor { config, json } => doctor::run(config, json),
        Command::Users { config, command } => users::run(config, command),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Audit { source, command } => audit::run(&source, &command),
        Command::Keys {
            config,
            token,
            command,
        } => keys::run(config, token, command),
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keywarden: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `2026-05-01 12:00:00Z` for a Unix time (UTC; civil-from-days, proleptic Gregorian),
/// so tables need no date library.
pub(crate) fn format_utc(t: crate::store::UnixTime) -> String {
    let (year, month, day) = crate::store::civil_date(t);
    let secs = t.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formatting() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(super::format_utc(1_777_636_800), "2026-05-01 12:00:00Z");
        assert_eq!(super::format_utc(-1), "1969-12-31 23:59:59Z");
    }
}
