//! The `keywarden` admin CLI. It is a front end of its own, built on the engine
//! layers (config, backend loader) and on `cryptoki` where it talks to a token; it
//! never goes through `ffi`. One file per subcommand.

mod doctor;
mod init;

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
        /// Policy profile.
        #[arg(long, value_enum, default_value_t = Profile::Transparent)]
        profile: Profile,
        /// Overwrite an existing keywarden.toml.
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration and the backend, and say what is wrong.
    Doctor {
        /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
        } => init::run(&dir, &backend, profile, force),
        Command::Doctor { config } => doctor::run(config),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keywarden: {err}");
            ExitCode::FAILURE
        }
    }
}
