//! `keywarden users`: named identities (`name:secret` PINs) in the metadata store.
//!
//! The secret is never taken from the command line (it would sit in shell history
//! and in /proc/PID/cmdline): it is read without echo from the terminal, asked twice,
//! or as one line from standard input when that is not a terminal (scripts). Buffers
//! that held it are zeroized.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use zeroize::Zeroizing;

use super::admin_audit::CliAudit;
use crate::config::Config;
use crate::error::Result;
use crate::store::{self, identity, Store, StoreError};

/// The `users` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum UsersCommand {
    /// Add an identity; its secret is read from the terminal (twice) or from stdin.
    Add {
        /// Login name: letters, digits, '.', '_', '-' (used as NAME:SECRET for the PIN).
        name: String,
        /// A role the identity holds (repeat for several).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// List identities and their roles (never secrets or hashes).
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove an identity.
    Remove {
        /// Login name.
        name: String,
    },
    /// Change an identity's secret (read like `add`'s).
    Passwd {
        /// Login name.
        name: String,
    },
    /// Refuse an identity's logins without removing it.
    Disable {
        /// Login name.
        name: String,
    },
    /// Accept an identity's logins again.
    Enable {
        /// Login name.
        name: String,
    },
}

pub(super) fn run(config: Option<PathBuf>, command: UsersCommand) -> Result<ExitCode> {
    let path = config.unwrap_or_else(Config::path_from_env);
    let config = Config::load(&path)?;
    let store = store::open(&config.store)?;
    let (action, name) = match &command {
        UsersCommand::List { json } => {
            list(&store, *json)?;
            return Ok(ExitCode::SUCCESS);
        }
        UsersCommand::Add { name, .. } => ("users.add", name.clone()),
        UsersCommand::Remove { name } => ("users.remove", name.clone()),
        UsersCommand::Passwd { name } => ("users.passwd", name.clone()),
        UsersCommand::Disable { name } => ("users.disable", name.clone()),
        UsersCommand::Enable { name } => ("users.enable", name.clone()),
    };
    // Before anything changes: no trail, no change.
    let au = CliAudit::open_bound(&config, &store, false)?;
    let result = change(&store, command);
    let outcome = match &result {
        Ok(detail) => Ok(detail.clone()),
        Err(e) => Err(e.to_string()),
    };
    au.admin(action, Some(&name), outcome);
    au.finish(result.map(|_| ExitCode::SUCCESS))
}

/// Makes one change; `Ok` carries the audit record's detail.
fn change(store: &store::SqliteStore, command: UsersCommand) -> Result<Option<String>> {
    Ok(match command {
        UsersCommand::List { .. } => None,
        UsersCommand::Add { name, roles } => {
            // Checked before asking for a secret, so a typo costs no typing.
            identity::validate_name(&name)?;
            roles.iter().try_for_each(|r| identity::validate_role(r))?;
            let secret = read_secret(&name)?;
            let added = identity::add(store, &name, secret.as_bytes(), &roles, store::now())?;
            println!(
                "added identity {} (roles: {})",
                added.name,
                shown_roles(&added.roles)
            );
            Some(format!("roles: {}", shown_roles(&added.roles)))
        }
        UsersCommand::Remove { name } => {
            if !store.remove_identity(&name)? {
                return Err(StoreError::NotFound(format!("identity {name:?}")).into());
            }
            println!("removed identity {name}");
            None
        }
        UsersCommand::Passwd { name } => {
            // Fail before prompting when there is no such identity.
            if store.identity_with_hash(&name)?.is_none() {
                return Err(StoreError::NotFound(format!("identity {name:?}")).into());
            }
            let secret = read_secret(&name)?;
            identity::set_secret(store, &name, secret.as_bytes())?;
            println!("changed the secret of {name}");
            None
        }
        UsersCommand::Disable { name } => {
            store.set_identity_disabled(&name, true)?;
            println!("disabled identity {name}");
            None
        }
        UsersCommand::Enable { name } => {
            store.set_identity_disabled(&name, false)?;
            println!("enabled identity {name}");
            None
        }
    })
}

fn shown_roles(roles: &[String]) -> String {
    if roles.is_empty() {
        "-".into()
    } else {
        roles.join(",")
    }
}

fn list(store: &dyn Store, json: bool) -> Result<()> {
    let all = store.identities()?;
    if json {
        let rows: Vec<_> = all
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "roles": i.roles,
                    "created_at": i.created_at,
                    "created": super::format_utc(i.created_at),
                    "disabled": i.disabled,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if all.is_empty() {
        println!("no identities");
        return Ok(());
    }
    let width = all.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
    let roles: Vec<String> = all.iter().map(|i| shown_roles(&i.roles)).collect();
    let rwidth = roles.iter().map(String::len).max().unwrap_or(5).max(5);
    println!(
        "{:width$}  {:rwidth$}  {:20}  STATUS",
        "NAME", "ROLES", "CREATED"
    );
    for (i, r) in all.iter().zip(&roles) {
        let status = if i.disabled { "disabled" } else { "enabled" };
        println!(
            "{:width$}  {:rwidth$}  {:20}  {status}",
            i.name,
            r,
            super::format_utc(i.created_at)
        );
    }
    Ok(())
}

/// The secret, from the terminal without echo (asked twice) or one line of stdin.
fn read_secret(name: &str) -> Result<Zeroizing<String>> {
    let io = |e: std::io::Error| StoreError::Invalid(format!("cannot read the secret: {e}"));
    let secret = if std::io::stdin().is_terminal() {
        let first =
            Zeroizing::new(rpassword::prompt_password(format!("secret for {name}: ")).map_err(io)?);
        let again = Zeroizing::new(rpassword::prompt_password("again: ").map_err(io)?);
        if *first != *again {
            return Err(StoreError::Invalid("the two secrets differ".into()).into());
        }
        first
    } else {
        // Room reserved up front so that reading does not reallocate and leave an
        // unwiped copy behind (secrets are at most 128 bytes).
        let mut line = Zeroizing::new(String::with_capacity(1024));
        let n = std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        if n == 0 {
            return Err(StoreError::Invalid("no secret on standard input".into()).into());
        }
        let keep = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(keep);
        line
    };
    identity::validate_secret(secret.as_bytes())?;
    Ok(secret)
}
