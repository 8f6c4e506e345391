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
        /// The policy file (default: the `policy.file` of the configuration).
        file: Option<PathBuf>,
        /// Configuration file naming the policy when FILE is not given (default:
        /// $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Treat warnings as failures.
        #[arg(long)]
        strict: bool,
        /// Print the result as one JSON object (fields: docs/policy.md "CLI").
        #[arg(long)]
        json: bool,
    },
    /// Print the decision on one request and the rule that made it. Exit 0 when
    /// allowed, 1 when refused, 2 when the request cannot be decided.
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
        PolicyCommand::Check {
            file,
            config,
            strict,
            json,
        } => {
            let file = match file {
                Some(f) => f,
                None => super::explain::policy_file(&PolicySource {
                    policy: None,
                    config,
                })?,
            };
            check(&file, strict, json)
        }
        PolicyCommand::Explain(args) => super::explain::run(&args),
    }
}

fn check(file: &Path, strict: bool, json: bool) -> Result<ExitCode> {
    let policy = match Policy::load(file, Arc::new(SystemClock)) {
        Ok(p) => p,
        Err(e) => {
            if json {
                let v = serde_json::json!({
                    "file": file.display().to_string(),
                    "valid": false,
                    "error": e.to_string(),
                    "warnings": [],
                });
                println!("{v}");
            } else {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let (rules, grants, roles) = policy.counts();
    let findings = policy.lint();
    if json {
        let warnings: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| serde_json::json!({"line": f.line, "kind": f.kind.name(), "message": f.message}))
            .collect();
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "valid": true,
            "rules": rules,
            "grants": grants,
            "roles": roles,
            "warnings": warnings,
        });
        println!("{v}");
    } else {
        println!(
            "{}: valid ({rules} rules, {grants} grants, {roles} roles)",
            file.display()
        );
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
    }
    Ok(if strict && !findings.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
