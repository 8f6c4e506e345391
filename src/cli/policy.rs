//! `keywarden policy check FILE` and the dispatch of `keywarden policy explain`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::error::Result;
use crate::policy::{Policy, SystemClock};

/// `keywarden policy ...`
#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Validate a policy file and report rules that never decide, rules allowing
    /// every operation on High keys, and unused names. Exit 1 when the file is
    /// invalid, or (with --strict) when there are warnings.
    Check {
        /// The policy file.
        file: PathBuf,
        /// Treat warnings as failures.
        #[arg(long)]
        strict: bool,
    },
    /// Print the decision on one request and the rule that made it. Exit 0 when
    /// allowed, 1 when refused.
    Explain(Box<super::explain::ExplainArgs>),
}

/// Where `explain` finds the policy.
#[derive(Debug, Args)]
pub(super) struct PolicySource {
    /// The policy file (default: the `policy.file` of the configuration).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub(super) fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { file, strict } => check(&file, strict),
        PolicyCommand::Explain(args) => super::explain::run(&args),
    }
}

fn check(file: &Path, strict: bool) -> Result<ExitCode> {
    let policy = match Policy::load(file, Arc::new(SystemClock)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (rules, grants, roles) = policy.counts();
    println!(
        "{}: valid ({rules} rules, {grants} grants, {roles} roles)",
        file.display()
    );
    let findings = policy.lint();
    for f in &findings {
        println!(
            "{}:{}: warning [{}]: {}",
            file.display(),
            f.line,
            f.kind.name(),
            f.message
        );
    }
    if !findings.is_empty() {
        println!("{} warning(s)", findings.len());
    }
    Ok(if strict && !findings.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
