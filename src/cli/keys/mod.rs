//! `keywarden keys`: managed keys, their versions and lifecycle
//! (docs/lifecycle.md). State changes go through the store, so every process with
//! the module loaded sees them through its change watcher; the token is touched
//! (with `cryptoki`, see `token`) only for what lives on it: generating, dating and
//! destroying objects, and finding keys to adopt.

mod compromise;
mod reconcile;
mod token;
mod view;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::admin_audit::CliAudit;
use crate::audit::{LifecycleEvent, Outcome};
use crate::config::{Config, PolicyMode};
use crate::error::{Error, Result};
use crate::lifecycle::{self, Due, RotateError, RotationLock, TokenOps};
use crate::policy::{KeyFacts, Policy, SystemClock, WhenDue};
use crate::store::{
    self, KeyState, KeyVersion, ManagedKey, NewKey, NewVersion, Store, StoreError, UnixTime,
};

use token::CryptokiToken;
pub(crate) use token::{read_pin, TokenArgs};

/// Exit status of a rotation that lost a race (another process rotated first).
const EXIT_LOST_RACE: u8 = 3;

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
        } => rotate_one(cx, au, &label, expect_version, reason.as_deref()),
        KeysCommand::Rotate { reason, .. } => rotate_due(cx, au, reason.as_deref()),
        KeysCommand::Suspend(a) => change_state(cx, au, &a, KeyState::Suspended),
        KeysCommand::Resume(a) => change_state(cx, au, &a, KeyState::Active),
        KeysCommand::Deactivate(a) => change_state(cx, au, &a, KeyState::Deactivated),
        KeysCommand::Compromise(a) => change_state(cx, au, &a, KeyState::Compromised),
        KeysCommand::Destroy {
            label,
            version,
            yes,
            reason,
        } => destroy(cx, au, &label, version, yes, reason.as_deref()),
        KeysCommand::Adopt { label, id } => adopt(cx, au, &label, id.as_deref()),
        KeysCommand::Reconcile { yes, .. } => reconcile::run(cx, Some(au), yes),
        other => read_only(cx, other),
    }
}

fn rotate_err(e: RotateError) -> Error {
    match e {
        RotateError::Store(s) => Error::from(s),
        other => Error::Config(other.to_string()),
    }
}

/// The test hook of [`lifecycle::FAULT_ENV`]: die like a crash (no unwinding, no
/// cleanup) between token generation and the store commit.
fn fault_hook() {
    if std::env::var(lifecycle::FAULT_ENV).is_ok_and(|v| v == "rotate-after-generate") {
        std::process::abort();
    }
}

fn rotate_one(
    cx: &Ctx,
    au: &CliAudit,
    label: &str,
    expect: Option<u32>,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let key = cx.key(label)?;
    // The lock comes before the token is opened, and the token is closed (dropped
    // first) before the lock is released: the whole rotation, token reads included,
    // is one critical section. SoftHSM's file store answers CKR_GENERAL_ERROR to a
    // process reading a token that another process is writing.
    let _lock = cx.lock()?;
    let token = cx.token()?;
    // Leftovers of this store's rotations that crashed are cleaned before making
    // new objects.
    reconcile::before_rotation(cx, au, &token)?;
    let id = lifecycle::new_cka_id().map_err(|e| Error::Internal(format!("random CKA_ID: {e}")))?;
    let reason = reason.unwrap_or("rotated by keywarden keys rotate");
    match lifecycle::rotate(
        &cx.store,
        &token,
        &key,
        expect,
        &id,
        Some(reason),
        cx.now,
        &mut fault_hook,
    ) {
        Ok(out) => {
            print_rotation(au, label, &out, reason);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ RotateError::LostRace { .. }) => {
            eprintln!("keywarden: {e}");
            let mut ev = LifecycleEvent::new("rotate", Some(label));
            ev.outcome = Outcome::Error;
            ev.detail = Some(e.to_string());
            au.lifecycle(ev);
            Ok(ExitCode::from(EXIT_LOST_RACE))
        }
        Err(e) => Err(rotate_err(e)),
    }
}

/// Reports a rotation and records it: the new version made active, and the
/// previous one deactivated.
fn print_rotation(au: &CliAudit, label: &str, out: &lifecycle::RotateOutcome, reason: &str) {
    au.lifecycle(LifecycleEvent {
        to_state: Some(out.current.state.to_string()),
        detail: Some(match &out.previous {
            Some(p) => format!("replaces version {}: {reason}", p.version),
            None => reason.to_owned(),
        }),
        ..version_event("rotate", label, &out.current)
    });
    if let Some(p) = &out.previous {
        au.lifecycle(LifecycleEvent {
            from_state: Some(KeyState::Active.to_string()),
            to_state: Some(KeyState::Deactivated.to_string()),
            detail: Some(format!(
                "replaced by version {}: {reason}",
                out.current.version
            )),
            ..version_event("deactivate", label, p)
        });
    }
    println!(
        "rotated {label}: version {} (CKA_ID {}) is active{}",
        out.current.version,
        hex(&out.current.cka_id),
        out.previous.as_ref().map_or(String::new(), |p| format!(
            ", version {} deactivated",
            p.version
        ))
    );
    if let Some(w) = &out.warning {
        eprintln!("keywarden: warning: {w}");
    }
}

/// A lifecycle record naming one version of a key.
fn version_event(action: &str, label: &str, v: &KeyVersion) -> LifecycleEvent {
    LifecycleEvent::new(action, Some(label)).of_key(&v.cka_id, Some(v.version))
}

fn rotate_due(cx: &Ctx, au: &CliAudit, reason: Option<&str>) -> Result<ExitCode> {
    // Lock before opening the token: see rotate_one.
    let _lock = cx.lock()?;
    let token = cx.token()?;
    reconcile::before_rotation(cx, au, &token)?;
    let mut failed = false;
    for key in cx.store.list_keys()? {
        let versions = cx.store.versions(key.id)?;
        let Some(v) = versions.iter().find(|v| v.state == KeyState::Active) else {
            continue;
        };
        let Some(period) = cx.cryptoperiod(&key, v) else {
            continue;
        };
        let Due::Now { since, action } = lifecycle::due(v, period, cx.now) else {
            continue;
        };
        let why = format!(
            "cryptoperiod {:?} ended at {}",
            period.name,
            super::format_utc(since)
        );
        let result = match action {
            WhenDue::Warn => {
                println!("due {}: {why} (policy: warn)", key.label);
                Ok(())
            }
            WhenDue::Deactivate => cx
                .store
                .set_state(
                    v.id,
                    KeyState::Deactivated,
                    Some(reason.unwrap_or(&why)),
                    cx.now,
                )
                .map(|_| {
                    if let Err(e) = token.set_dates(&v.cka_id, None, Some(cx.now)) {
                        eprintln!(
                            "keywarden: warning: {}: CKA_END_DATE not set: {e}",
                            key.label
                        );
                    }
                    au.lifecycle(LifecycleEvent {
                        from_state: Some(v.state.to_string()),
                        to_state: Some(KeyState::Deactivated.to_string()),
                        detail: Some(reason.unwrap_or(&why).to_owned()),
                        ..version_event("deactivate", &key.label, v)
                    });
                    println!("deactivated {} version {}: {why}", key.label, v.version);
                })
                .map_err(|e| e.to_string()),
            WhenDue::Rotate => {
                let id = lifecycle::new_cka_id()
                    .map_err(|e| Error::Internal(format!("random CKA_ID: {e}")))?;
                lifecycle::rotate(
                    &cx.store,
                    &token,
                    &key,
                    Some(v.version),
                    &id,
                    Some(reason.unwrap_or(&why)),
                    cx.now,
                    &mut fault_hook,
                )
                .map(|out| print_rotation(au, &key.label, &out, reason.unwrap_or(&why)))
                .map_err(|e| e.to_string())
            }
        };
        if let Err(e) = result {
            eprintln!("keywarden: {}: {e}", key.label);
            let verb = match action {
                WhenDue::Deactivate => "deactivate",
                _ => "rotate",
            };
            au.lifecycle(LifecycleEvent {
                outcome: Outcome::Error,
                detail: Some(e),
                ..version_event(verb, &key.label, v)
            });
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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

fn destroy(
    cx: &Ctx,
    au: &CliAudit,
    label: &str,
    version: Option<u32>,
    yes: bool,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let key = cx.key(label)?;
    let versions = cx.store.versions(key.id)?;
    let targets: Vec<&KeyVersion> = match version {
        Some(n) => versions.iter().filter(|v| v.version == n).collect(),
        None => versions
            .iter()
            .filter(|v| v.state != KeyState::Destroyed)
            .collect(),
    };
    if targets.is_empty() {
        return Err(StoreError::NotFound(format!("a version of {label:?} to destroy")).into());
    }
    if let Some(live) = targets
        .iter()
        .find(|v| matches!(v.state, KeyState::Active | KeyState::Suspended))
    {
        return Err(Error::Config(format!(
            "{label:?} version {} is {}: deactivate or compromise it first, or name another \
             version with --version",
            live.version, live.state
        )));
    }
    if let Some(p) = &cx.policy {
        if targets.iter().any(|v| p.backup_required(&facts(&key, v))) {
            return Err(Error::Config(format!(
                "policy marks {label:?} as needing a backup first (keyset backup_required); \
                 back it up and clear the flag before destroying"
            )));
        }
    }
    if !yes && !confirm(label, &targets)? {
        eprintln!("keywarden: not destroyed");
        return Ok(ExitCode::FAILURE);
    }
    let token = cx.token()?;
    for v in targets {
        // Token first: a crash after it leaves a record whose objects are gone (the
        // next destroy only writes the tombstone), never a tombstone with live objects.
        let removed = token
            .destroy(&v.cka_id)
            .map_err(|e| Error::Config(e.to_string()))?;
        let why = reason.unwrap_or("destroyed by keywarden keys destroy");
        cx.store
            .set_state(v.id, KeyState::Destroyed, Some(why), cx.now)?;
        au.lifecycle(LifecycleEvent {
            from_state: Some(v.state.to_string()),
            to_state: Some(KeyState::Destroyed.to_string()),
            detail: Some(format!("{removed} token object(s) removed: {why}")),
            ..version_event("destroy", label, v)
        });
        println!(
            "destroyed {label} version {}: {removed} object(s) removed, tombstone kept",
            v.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(label: &str, targets: &[&KeyVersion]) -> Result<bool> {
    let list: Vec<String> = targets.iter().map(|v| v.version.to_string()).collect();
    if !std::io::stdin().is_terminal() {
        return Err(Error::Config(format!(
            "destroying {label:?} version(s) {} needs --yes when stdin is not a terminal",
            list.join(", ")
        )));
    }
    eprint!(
        "Destroy the token objects of {label:?} version(s) {}? This cannot be undone. Type the label to confirm: ",
        list.join(", ")
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Config(format!("stdin: {e}")))?;
    Ok(answer.trim_end_matches(['\r', '\n']) == label)
}

fn adopt(cx: &Ctx, au: &CliAudit, label: &str, id: Option<&str>) -> Result<ExitCode> {
    let token = cx.token()?;
    let want = id
        .map(|h| {
            crate::policy::names::hex_id(h)
                .ok_or_else(|| Error::Config(format!("bad CKA_ID {h:?}")))
        })
        .transpose()?;
    let objects = token
        .find_by_label(label)
        .map_err(|e| Error::Config(e.to_string()))?;
    let mut ids: Vec<Vec<u8>> = Vec::new();
    for o in objects {
        if want.as_ref().is_none_or(|w| *w == o.id) && !ids.contains(&o.id) {
            ids.push(o.id);
        }
    }
    // The audit seal key is Keywarden's own (docs/audit.md): no lifecycle of keys.
    if label == crate::audit::SEAL_KEY_LABEL
        || ids
            .iter()
            .any(|i| i.as_slice() == crate::audit::SEAL_KEY_ID)
    {
        return Err(Error::Config(format!(
            "{label:?} is the audit seal key: it is not adopted as an application key"
        )));
    }
    let cka_id = match ids.as_slice() {
        [one] if !one.is_empty() => one.clone(),
        [_] => {
            return Err(Error::Request(format!(
                "the key {label:?} has no CKA_ID, which Keywarden needs to tell its versions apart; \
                 give it one first (e.g. pkcs11-tool --set-id, or p11tool --set-id) or adopt it with --id"
            )))
        }
        [] => {
            return Err(Error::Config(format!(
                "no key labelled {label:?} on the token"
            )))
        }
        many => {
            let shown: Vec<String> = many.iter().map(|i| hex(i)).collect();
            return Err(Error::Config(format!(
                "several keys are labelled {label:?} (CKA_ID {}): choose one with --id",
                shown.join(", ")
            )));
        }
    };
    let serial = token.serial();
    if let Some(v) = cx.store.version_by_cka_id(&serial, &cka_id)? {
        return Err(Error::Config(format!(
            "CKA_ID {} is already managed (key #{}, version {})",
            hex(&cka_id),
            v.key_id.0,
            v.version
        )));
    }
    let shape = token
        .shape(&cka_id)
        .map_err(|e| Error::Config(e.to_string()))?;
    let mut facts = KeyFacts::labelled(label);
    facts.id = Some(cka_id.clone());
    facts.key_type = crate::abi::key_type_from_name(&shape.algorithm);
    let (owner, classification) = match &cx.policy {
        Some(p) => (
            p.owner_of(&facts).map(str::to_owned),
            // Only a keyset's classification is recorded; the default level is
            // policy's to apply at decision time, not a fact about the key.
            p.keyset_of(&facts).map(|_| p.classification(&facts).into()),
        ),
        None => (None, None),
    };
    let key = cx.store.create_key(
        &NewKey {
            label: label.to_owned(),
            owner,
            classification,
            rotation_rule: cx
                .policy
                .as_ref()
                .and_then(|p| p.cryptoperiod_for(&facts))
                .map(|c| c.name.clone()),
        },
        cx.now,
    )?;
    let new = NewVersion {
        token_serial: serial,
        cka_id: cka_id.clone(),
        algorithm: shape.algorithm,
        size_bits: shape.size_bits,
        curve: shape.curve,
    };
    // A failure here leaves a key without versions, which `list` skips and a new
    // `adopt` does not trip over (the CKA_ID is what must be unique).
    let v = cx
        .store
        .add_version(key.id, &new, KeyState::Active, cx.now)?;
    au.lifecycle(LifecycleEvent {
        to_state: Some(v.state.to_string()),
        detail: Some(format!("key #{} brought under management", key.id.0)),
        ..version_event("adopt", label, &v)
    });
    if let Err(e) = token.set_dates(&cka_id, Some(cx.now), None) {
        eprintln!("keywarden: warning: CKA_START_DATE not set: {e}");
    }
    println!(
        "adopted {label}: key #{}, version {} (CKA_ID {}) active",
        key.id.0,
        v.version,
        hex(&cka_id)
    );
    Ok(ExitCode::SUCCESS)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
