//! `keywarden doctor`: check the configuration and the backend, in plain words
//! (or, with `--json`, as one object: docs/doctor.md).

mod checks;
mod config;
mod files;
mod report;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use report::{Doctor, Finding};

use crate::config::Config;
use crate::error::Result;

pub(super) fn run(config: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let mut d = Doctor::new(json);
    let path = config.unwrap_or_else(Config::path_from_env);
    d.line(format_args!("config:   {}", path.display()));
    d.fact("config", "file", path.display().to_string());
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            config::load_failed(&mut d, &path, &e);
            return Ok(d.finish());
        }
    };
    deployment(&mut d);
    let policy = policy(&mut d, &config);
    let store_dir = &config.store.dir;
    if directory(&mut d, "store", store_dir) {
        checks::store(&mut d, &config, policy.as_ref());
    }
    directory(&mut d, "audit", &config.audit.dir);
    files::check(&mut d, &config);
    tokens::backend(&mut d, &config.backend.module);
    Ok(d.finish())
}

/// How Keywarden is deployed, and what that protects against (docs/threat-model.md
/// "Modes"): the module runs inside each application that loads it.
fn deployment(d: &mut Doctor) {
    d.line(
        "deployment: in-process: the module runs inside each application with its rights; \
         a guard-rail against it, not a boundary (docs/threat-model.md, \"Modes\")",
    );
    d.fact("config", "deployment", "in-process");
}

/// The policy mode, and in enforce mode the policy file.
fn policy(d: &mut Doctor, config: &Config) -> Option<crate::policy::Policy> {
    match &config.policy.mode {
        crate::config::PolicyMode::Transparent => {
            d.line("  ok (policy mode transparent: allow everything)");
            d.fact("policy", "mode", "transparent");
            None
        }
        crate::config::PolicyMode::Enforce { file } => {
            d.line("  ok (policy mode enforce)");
            d.fact("policy", "mode", "enforce");
            d.fact("policy", "file", file.display().to_string());
            let clock = std::sync::Arc::new(crate::policy::SystemClock);
            match crate::policy::Policy::load(file, clock) {
                Ok(p) => {
                    let (rules, grants, roles) = p.counts();
                    let findings = p.lint().len();
                    d.line(format_args!(
                        "policy:   {} ok ({rules} rules, {grants} grants, {roles} roles)",
                        file.display()
                    ));
                    d.fact("policy", "rules", rules);
                    d.fact("policy", "grants", grants);
                    d.fact("policy", "roles", roles);
                    d.fact("policy", "lint_warnings", findings);
                    if findings > 0 {
                        d.note(
                            Finding::new(
                                "policy_lint",
                                format!("the policy has {findings} lint warnings (shadowed or unreachable rules, unused names, ...)"),
                            )
                            .fix(format!("keywarden policy check {}", file.display())),
                        );
                    }
                    Some(p)
                }
                Err(e) => {
                    d.line(format_args!("policy:   {}", file.display()));
                    d.problem(Finding::new("policy", e.to_string()));
                    None
                }
            }
        }
    }
}

/// The `what:` line of a directory; `true` when it is one.
fn directory(d: &mut Doctor, what: &'static str, dir: &std::path::Path) -> bool {
    d.fact(what, "dir", dir.display().to_string());
    if dir.is_dir() {
        d.line(format_args!("{what}:    {} ok", dir.display()));
        return true;
    }
    d.line(format_args!("{what}:    {}", dir.display()));
    let check = if what == "store" {
        "store_dir"
    } else {
        "audit_dir"
    };
    d.problem(
        Finding::new(check, format!("{} is not a directory", dir.display()))
            .fix("restore it from its backup (only `keywarden init` makes a new, empty one)"),
    );
    false
}
