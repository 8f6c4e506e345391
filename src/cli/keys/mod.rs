//! `keywarden keys`: managed keys, their versions and lifecycle
//! (docs/lifecycle.md). State changes go through the store, so every process with
//! the module loaded sees them through its change watcher; the token is touched
//! (with `cryptoki`, see `token`) only for what lives on it: generating, dating and
//! destroying objects, and finding keys to adopt.

mod adopt;
mod compromise;
mod destroy;
mod reconcile;
mod rotate;
mod token;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::admin_audit::CliAudit;
use crate::audit::{LifecycleEvent, Outcome};
use crate::config::{Config, PolicyMode};
use crate::error::{Error, Result};
use crate::lifecycle::{self, RotationLock, TokenOps};
use crate::policy::{KeyFacts, Policy, SystemClock};
use crate::store::{self, KeyState, KeyVersion, ManagedKey, Store, StoreError, UnixTime};

use token::CryptokiToken;
pub(crate) use token::{read_pin, TokenArgs};

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// One line per managed key: its current version, state, dates, next rotation.
    List {
        /// Only keys whose current version is in this state.
        #[arg(long)]
        state: Option<String>,
        /// Only keys whose cryptoperiod has ended.
        #[arg(long)]
        due: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Instead: the keys on the token that are not under management (needs the
        /// token and PIN; `keys adopt` brings one in).
        #[arg(long, conflicts_with_all = ["state", "due"])]
        unmanaged: bool,
    },
    /// Every version of a key: states, dates, reasons, usage.
    Show {
        /// CKA_LABEL of the managed key.
        label: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Create the next version of a key (new CKA_ID, same type and template) and
    /// deactivate the current one; or, with --due, every key whose cryptoperiod ended.
    Rotate {
        /// CKA_LABEL of the managed key.
        #[arg(required_unless_present = "due", conflicts_with = "due")]
        label: Option<String>,
        /// Act on every key whose cryptoperiod has ended, as its policy says.
        #[arg(long)]
        due: bool,
        /// Rotate only if this is the active version (compare-and-swap for scripts).
        #[arg(long, value_name = "N")]
        expect_version: Option<u32>,
        /// Reason recorded with the state change.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Suspend the active version (no use until resumed).
    Suspend(StateArgs),
    /// Make a suspended version active again.
    Resume(StateArgs),
    /// Deactivate the active version (processing only: verify, decrypt, unwrap).
    Deactivate(StateArgs),
    /// Mark a version compromised: no use anywhere within a second.
    Compromise(StateArgs),
    /// Destroy versions' token objects, keeping tombstones in the store.
    Destroy {
        /// CKA_LABEL of the managed key.
        label: String,
        /// Only this version (default: every deactivated or compromised one).
        #[arg(long)]
        version: Option<u32>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Reason recorded with the state change.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Bring an unmanaged token key under management as version 1, active.
    Adopt {
        /// CKA_LABEL of the key on the token.
        label: String,
        /// Its CKA_ID in hex, when several keys share the label.
        #[arg(long)]
        id: Option<String>,
    },
    /// List (and remove) the token objects of this store's interrupted rotations.
    Reconcile {
        /// Only report.
        #[arg(long)]
        dry_run: bool,
        /// Remove without asking (needed when stdin is not a terminal).
        #[arg(long, conflicts_with = "dry_run")]
        yes: bool,
    },
}

/// A state change's arguments.
#[derive(Debug, clap::Args)]
pub(super) struct StateArgs {
    /// CKA_LABEL of the managed key.
    label: String,
    /// Why (recorded in the store).
    #[arg(long)]
    reason: String,
    /// The version to change (default: the current one).
    #[arg(long)]
    version: Option<u32>,
}

/// What every subcommand works with.
struct Ctx {
    config: Config,
    store: store::SqliteStore,
    policy: Option<Policy>,
    token_args: TokenArgs,
    now: UnixTime,
}

impl KeysCommand {
    /// The audit action of a command that changes keys (None: read-only), and the
    /// key label it names.
    fn change(&self) -> Option<(&'static str, Option<String>)> {
        let (action, label) = match self {
            KeysCommand::List { .. }
            | KeysCommand::Show { .. }
            | KeysCommand::Reconcile { dry_run: true, .. } => return None,
            KeysCommand::Rotate { label, .. } => ("rotate", label.as_deref()),
            KeysCommand::Suspend(a) => ("suspend", Some(a.label.as_str())),
            KeysCommand::Resume(a) => ("resume", Some(a.label.as_str())),
            KeysCommand::Deactivate(a) => ("deactivate", Some(a.label.as_str())),
            KeysCommand::Compromise(a) => ("compromise", Some(a.label.as_str())),
            KeysCommand::Destroy { label, .. } => ("destroy", Some(label.as_str())),
            KeysCommand::Adopt { label, .. } => ("adopt", Some(label.as_str())),
            KeysCommand::Reconcile { dry_run: false, .. } => ("reconcile", None),
        };
        Some((action, label.map(str::to_owned)))
    }
}

impl Ctx {
    fn token(&self) -> Result<CryptokiToken> {
        CryptokiToken::open(
            &self.config.backend.module,
            &self.token_args,
            self.config.backend.pin_file.as_deref(),
        )
    }

    fn lock(&self) -> Result<RotationLock> {
        RotationLock::acquire(&self.config.store.dir).map_err(|e| {
            Error::Config(format!(
                "rotation lock in {}: {e}",
                self.config.store.dir.display()
            ))
        })
    }

    /// The one managed key with this label.
    fn key(&self, label: &str) -> Result<ManagedKey> {
        let mut keys = self.store.keys_by_label(label)?;
        match keys.len() {
            0 => Err(StoreError::NotFound(format!("managed key {label:?}")).into()),
            1 => Ok(keys.remove(0)),
            n => Err(Error::Config(format!(
                "{n} managed keys are labelled {label:?}; relabel one on the token first"
            ))),
        }
    }

    fn cryptoperiod(
        &self,
        key: &ManagedKey,
        v: &KeyVersion,
    ) -> Option<&crate::policy::Cryptoperiod> {
        self.policy.as_ref()?.cryptoperiod_for(&facts(key, v))
    }
}

/// The policy facts of a managed key's version.
pub(crate) fn facts(key: &ManagedKey, v: &KeyVersion) -> KeyFacts {
    lifecycle::key_facts(key, v)
}

/// The version a command means by default (see [`lifecycle::current_version`]);
/// for a key whose versions are all destroyed, the newest tombstone.
pub(crate) fn current(versions: &[KeyVersion]) -> Option<&KeyVersion> {
    lifecycle::current_version(versions).or_else(|| versions.last())
}

pub(super) fn run(
    config: Option<PathBuf>,
    token_args: TokenArgs,
    command: KeysCommand,
) -> Result<ExitCode> {
    let path = config.unwrap_or_else(Config::path_from_env);
    let config = Config::load(&path)?;
    let store = store::open(&config.store)?;
    let policy = match &config.policy.mode {
        PolicyMode::Transparent => None,
        PolicyMode::Enforce { file } => Some(Policy::load(file, Arc::new(SystemClock))?),
    };
    let now = crate::policy::injected_now(config.policy.clock_override)
        .map_err(Error::Config)?
        .unwrap_or_else(store::now);
    let cx = Ctx {
        config,
        store,
        policy,
        token_args,
        now,
    };
    let Some((action, label)) = command.change() else {
        return read_only(&cx, command);
    };
    // Before anything changes: no trail, no change.
    let au = CliAudit::open_bound(&cx.config, &cx.store, false)?;
    let result = change(&cx, &au, command);
    if let Err(e) = &result {
        let mut ev = LifecycleEvent::new(action, label.as_deref());
        ev.outcome = Outcome::Error;
        ev.detail = Some(e.to_string());
        au.lifecycle(ev);
    }
    au.finish(result)
}

fn read_only(cx: &Ctx, command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::List {
            json,
            unmanaged: true,
            ..
        } => view::unmanaged(cx, json),
        KeysCommand::List {
            state, due, json, ..
        } => {
            let state = state.map(|s| s.parse::<KeyState>()).transpose()?;
            view::list(cx, state, due, json)
        }
        KeysCommand::Show { label, json } => view::show(cx, &label, json),
        KeysCommand::Reconcile { .. } => reconcile::run(cx, None, false),
        other => Err(Error::Internal(format!("{other:?} is not read-only"))),
    }
}

/// The commands that change keys; each change is recorded in `au`.
fn change(cx: &Ctx, au: &CliAudit, command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Rotate {
            label: Some(label),
            expect_version,
            reason,
            ..
        } => rotate::rotate_one(cx, au, &label, expect_version, reason.as_deref()),
        KeysCommand::Rotate { reason, .. } => rotate::rotate_due(cx, au, reason.as_deref()),
        KeysCommand::Suspend(a) => change_state(cx, au, &a, KeyState::Suspended),
        KeysCommand::Resume(a) => change_state(cx, au, &a, KeyState::Active),
        KeysCommand::Deactivate(a) => change_state(cx, au, &a, KeyState::Deactivated),
        KeysCommand::Compromise(a) => change_state(cx, au, &a, KeyState::Compromised),
        KeysCommand::Destroy {
            label,
            version,
            yes,
            reason,
        } => destroy::destroy(cx, au, &label, version, yes, reason.as_deref()),
        KeysCommand::Adopt { label, id } => adopt::adopt(cx, au, &label, id.as_deref()),
        KeysCommand::Reconcile { yes, .. } => reconcile::run(cx, Some(au), yes),
        other => read_only(cx, other),
    }
}

fn change_state(cx: &Ctx, au: &CliAudit, a: &StateArgs, to: KeyState) -> Result<ExitCode> {
    let key = cx.key(&a.label)?;
    let versions = cx.store.versions(key.id)?;
    let v = match a.version {
        Some(n) => versions.iter().find(|v| v.version == n),
        None if to == KeyState::Active => versions.iter().find(|v| v.state == KeyState::Suspended),
        None => current(&versions),
    }
    .ok_or_else(|| StoreError::NotFound(format!("a version of {:?} to make {to}", a.label)))?;
    // The store: that is what running modules enforce, within a second (a
    // compromise also through the revocation file, whatever holds the store).
    let changed = if to == KeyState::Compromised {
        compromise::compromise(cx, v, &a.label, &a.reason)?
    } else {
        cx.store.set_state(v.id, to, Some(&a.reason), cx.now)?
    };
    let verb = match to {
        KeyState::Suspended => "suspend",
        KeyState::Active => "resume",
        KeyState::Deactivated => "deactivate",
        _ => "compromise",
    };
    au.lifecycle(LifecycleEvent {
        from_state: Some(v.state.to_string()),
        to_state: Some(changed.state.to_string()),
        detail: Some(a.reason.clone()),
        ..version_event(verb, &a.label, v)
    });
    println!(
        "{} version {}: {} -> {}",
        a.label, v.version, v.state, changed.state
    );
    // Then the token's own view of the usage period, where it has one to record.
    if matches!(to, KeyState::Deactivated | KeyState::Compromised) {
        let dated = cx.token().and_then(|t| {
            t.set_dates(&v.cka_id, None, Some(cx.now))
                .map_err(|e| Error::Config(e.to_string()))
        });
        if let Err(e) = dated {
            eprintln!("keywarden: warning: CKA_END_DATE not set on the token: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A lifecycle record naming one version of a key.
fn version_event(action: &str, label: &str, v: &KeyVersion) -> LifecycleEvent {
    LifecycleEvent::new(action, Some(label)).of_key(&v.cka_id, Some(v.version))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
