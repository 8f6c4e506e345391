//! `keywarden doctor`: check the configuration and the backend, in plain words.

use std::path::PathBuf;
use std::process::ExitCode;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use crate::config::Config;
use crate::error::{Error, Result};

pub(super) fn run(config: Option<PathBuf>) -> Result<ExitCode> {
    let path = config.unwrap_or_else(Config::path_from_env);
    println!("config:   {}", path.display());
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            println!("  PROBLEM: {e}");
            println!(
                "  fix: run `keywarden init --dir DIR --backend PATH` and export KEYWARDEN_CONF"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut healthy = true;
    let mut policy = None;
    match &config.policy.mode {
        crate::config::PolicyMode::Transparent => {
            println!("  ok (policy mode transparent: allow everything)")
        }
        crate::config::PolicyMode::Enforce { file } => {
            println!("  ok (policy mode enforce)");
            let clock = std::sync::Arc::new(crate::policy::SystemClock);
            match crate::policy::Policy::load(file, clock) {
                Ok(p) => {
                    let (rules, grants, roles) = p.counts();
                    let findings = p.lint().len();
                    println!("policy:   {} ok ({rules} rules, {grants} grants, {roles} roles; {findings} warnings, see `keywarden policy check`)", file.display());
                    policy = Some(p);
                }
                Err(e) => {
                    println!("policy:   PROBLEM: {e}");
                    healthy = false;
                }
            }
        }
    }
    for (what, dir) in [("store", &config.store.dir), ("audit", &config.audit.dir)] {
        if dir.is_dir() {
            println!("{what}:    {} ok", dir.display());
        } else {
            println!("{what}:    {} PROBLEM: not a directory", dir.display());
            healthy = false;
        }
    }
    if config.store.dir.is_dir() && !check_store(&config, policy.as_ref()) {
        healthy = false;
    }
    if !super::doctor_files::check(&config) {
        healthy = false;
    }
    let module = &config.backend.module;
    println!("backend:  {}", module.display());
    match crate::backend::inspect_module(module) {
        Ok(summary) => println!(
            "  loads; {} of 68 v2.40 functions; PKCS#11 3.0 interface: {}",
            summary.v2_40_functions,
            if summary.has_v3_0 { "yes" } else { "no" }
        ),
        Err(e) => {
            println!("  PROBLEM: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Err(e) = list_tokens(module) {
        println!("  PROBLEM: {e}");
        healthy = false;
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Opens the store (migrating it if it is older), checks its integrity and counts
/// what it holds. A missing store is a problem: only `keywarden init` creates one,
/// and a check must not.
fn check_store(config: &Config, policy: Option<&crate::policy::Policy>) -> bool {
    use crate::store::{Store, DB_FILE, SCHEMA_VERSION};
    let db = config.store.dir.join(DB_FILE);
    let report = crate::store::open(&config.store).and_then(|s| {
        let version = s.schema_version()?;
        s.integrity_check()?;
        let snap = s.snapshot()?;
        let identities = s.identities()?.len();
        Ok((version, snap, identities))
    });
    match report {
        Ok((version, snap, identities)) => {
            println!(
                "  {}: schema v{version} (this build: v{SCHEMA_VERSION}), integrity ok; \
                 {} managed keys, {} versions, {identities} identities",
                db.display(),
                snap.keys.len(),
                snap.versions.len()
            );
            lifecycle_summary(&snap, policy);
            pending_revocations(config, &snap)
        }
        Err(e) => {
            println!("  PROBLEM: {e}");
            false
        }
    }
}

/// Versions the revocation file names that the store does not have compromised
/// (a `keys compromise` that found the store locked): enforced by the module, but
/// to be written to the store.
fn pending_revocations(config: &Config, snap: &crate::store::Snapshot) -> bool {
    use crate::store::KeyState;
    let sharing = match crate::store::OpenOptions::from_config(&config.store) {
        Ok(o) => o.sharing,
        Err(e) => {
            println!("  PROBLEM: {e}");
            return false;
        }
    };
    let revoked = match crate::store::revoked(&config.store.dir, sharing) {
        Ok(r) => r,
        Err(e) => {
            println!("  PROBLEM: {e} (the module refuses every key use until it is fixed)");
            return false;
        }
    };
    let mut healthy = true;
    for v in snap.versions.iter().filter(|v| revoked.contains(&v.id)) {
        if !matches!(v.state, KeyState::Compromised | KeyState::Destroyed) {
            let label = snap
                .keys
                .iter()
                .find(|k| k.id == v.key_id)
                .map_or("?", |k| k.label.as_str());
            println!(
                "  PROBLEM: {} names {label:?} version {} as compromised, the store has it {}: \
                 enforced by the module; fix: keywarden keys compromise --version {} --reason R {label}",
                crate::store::REVOKED_FILE,
                v.version,
                v.state,
                v.version
            );
            healthy = false;
        }
    }
    healthy
}

/// Keys by the state of their current version, and how many are due under the
/// policy's cryptoperiods (`keywarden keys list --due` names them).
fn lifecycle_summary(snap: &crate::store::Snapshot, policy: Option<&crate::policy::Policy>) {
    use crate::lifecycle::{current_version, due, key_facts, Due};
    let now = crate::store::now();
    let mut states: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut due_now = 0;
    // Grouped once: a per-key scan of every version would be quadratic.
    let mut by_key: std::collections::HashMap<i64, Vec<crate::store::KeyVersion>> =
        std::collections::HashMap::new();
    for v in &snap.versions {
        by_key.entry(v.key_id.0).or_default().push(v.clone());
    }
    for key in &snap.keys {
        let versions = by_key.remove(&key.id.0).unwrap_or_default();
        let Some(v) = current_version(&versions) else {
            continue;
        };
        *states.entry(v.state.as_str()).or_default() += 1;
        let period = policy.and_then(|p| p.cryptoperiod_for(&key_facts(key, v)));
        if period.is_some_and(|p| matches!(due(v, p, now), Due::Now { .. })) {
            due_now += 1;
        }
    }
    if states.is_empty() {
        return;
    }
    let shown: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "  keys: {}; {due_now} due for rotation (see `keywarden keys list --due`)",
        shown.join(", ")
    );
}

fn list_tokens(module: &std::path::Path) -> Result<()> {
    let token_err = |e: cryptoki::error::Error| Error::Load(e.to_string());
    let p11 = Pkcs11::new(module).map_err(token_err)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(token_err)?;
    let info = p11.get_library_info().map_err(token_err)?;
    println!(
        "  library: {} {}",
        info.manufacturer_id(),
        info.library_description()
    );
    let slots = p11.get_all_slots().map_err(token_err)?;
    println!("  slots: {}", slots.len());
    for slot in slots {
        match p11.get_token_info(slot) {
            Ok(t) if t.token_initialized() => {
                let mechs = p11.get_mechanism_list(slot).map(|m| m.len()).unwrap_or(0);
                println!(
                    "  slot {:#x}: token \"{}\" serial {} model {} ({} mechanisms)",
                    slot.id(),
                    t.label(),
                    t.serial_number(),
                    t.model(),
                    mechs
                );
            }
            Ok(_) => println!("  slot {:#x}: token not initialised", slot.id()),
            Err(_) => println!("  slot {:#x}: no token", slot.id()),
        }
    }
    Ok(())
}
