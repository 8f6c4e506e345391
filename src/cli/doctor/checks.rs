//! `doctor`'s store checks: the database (schema, integrity, what it holds), the
//! revocations it still has to be told of, the keys due for rotation, and what
//! named identities need from the configuration.

use super::report::{Doctor, Finding};
use crate::config::Config;

/// Opens the store (migrating it if it is older), checks its integrity and counts
/// what it holds. A missing store is a problem: only `keywarden init` creates one,
/// and a check must not.
pub(super) fn store(d: &mut Doctor, config: &Config, policy: Option<&crate::policy::Policy>) {
    use crate::store::{Store, DB_FILE, SCHEMA_VERSION};
    let db = config.store.dir.join(DB_FILE);
    d.fact("store", "db", db.display().to_string());
    let report = crate::store::open(&config.store).and_then(|s| {
        let version = s.schema_version()?;
        s.integrity_check()?;
        let snap = s.snapshot()?;
        let identities = s.identities()?.len();
        Ok((version, snap, identities))
    });
    match report {
        Ok((version, snap, identities)) => {
            d.line(format_args!(
                "  {}: schema v{version} (this build: v{SCHEMA_VERSION}), integrity ok; \
                 {} managed keys, {} versions, {identities} identities",
                db.display(),
                snap.keys.len(),
                snap.versions.len()
            ));
            d.fact("store", "schema_version", version);
            d.fact("store", "build_schema_version", SCHEMA_VERSION);
            d.fact("store", "integrity", "ok");
            d.fact("store", "keys", snap.keys.len());
            d.fact("store", "versions", snap.versions.len());
            d.fact("store", "identities", identities);
            lifecycle_summary(d, &snap, policy);
            pending_revocations(d, config, &snap);
            named_logins(d, config, identities);
        }
        Err(e) => d.problem(Finding::new("store", e.to_string())),
    }
}

/// Named logins (`NAME:SECRET`) log in to the token with `backend.pin_file`'s PIN:
/// without it each one fails with CKR_GENERAL_ERROR.
fn named_logins(d: &mut Doctor, config: &Config, identities: usize) {
    if identities == 0 || config.backend.pin_file.is_some() {
        return;
    }
    d.warning(
        Finding::new(
            "pin_file_unset",
            format!(
                "the store holds {identities} named identities but backend.pin_file is not set: \
                 their logins (NAME:SECRET) fail with CKR_GENERAL_ERROR"
            ),
        )
        .fix(
            "write the token's user PIN on the first line of a file only this service's user \
             can read (chmod 0600) and set `pin_file = \"/path/to/file\"` in [backend] \
             (so_pin_file likewise for named SO logins)",
        ),
    );
}

/// Versions the revocation file names that the store does not have compromised
/// (a `keys compromise` that found the store locked): enforced by the module, but
/// to be written to the store.
fn pending_revocations(d: &mut Doctor, config: &Config, snap: &crate::store::Snapshot) {
    use crate::store::KeyState;
    let sharing = match crate::store::OpenOptions::from_config(&config.store) {
        Ok(o) => o.sharing,
        Err(e) => return d.problem(Finding::new("revocations", e.to_string())),
    };
    let revoked = match crate::store::revoked(&config.store.dir, sharing) {
        Ok(r) => r,
        Err(e) => {
            return d.problem(Finding::new(
                "revocations",
                format!("{e} (the module refuses every key use until it is fixed)"),
            ))
        }
    };
    for v in snap.versions.iter().filter(|v| revoked.contains(&v.id)) {
        if !matches!(v.state, KeyState::Compromised | KeyState::Destroyed) {
            let label = snap
                .keys
                .iter()
                .find(|k| k.id == v.key_id)
                .map_or("?", |k| k.label.as_str());
            d.problem(
                Finding::new(
                    "revocation_pending",
                    format!(
                        "{} names {label:?} version {} as compromised, the store has it {}: \
                         enforced by the module",
                        crate::store::REVOKED_FILE,
                        v.version,
                        v.state,
                    ),
                )
                .fix(format!(
                    "keywarden keys compromise --version {} --reason R {label}",
                    v.version
                )),
            );
        }
    }
}

/// Keys by the state of their current version, and how many are due under the
/// policy's cryptoperiods (`keywarden keys list --due` names them).
fn lifecycle_summary(
    d: &mut Doctor,
    snap: &crate::store::Snapshot,
    policy: Option<&crate::policy::Policy>,
) {
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
    let by_state: serde_json::Map<String, serde_json::Value> = states
        .iter()
        .map(|(s, n)| ((*s).to_owned(), (*n).into()))
        .collect();
    d.fact("store", "key_states", by_state);
    d.fact("store", "due_for_rotation", due_now);
    if states.is_empty() {
        return;
    }
    let shown: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    d.line(format_args!(
        "  keys: {}; {due_now} due for rotation (see `keywarden keys list --due`)",
        shown.join(", ")
    ));
}
