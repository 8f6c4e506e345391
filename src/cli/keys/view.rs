//! `keys list` and `keys show`: human tables by default, JSON for scripts.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::{current, hex, Ctx};
use crate::cli::format_utc;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Due};
use crate::policy::{Cryptoperiod, Level};
use crate::store::{KeyState, KeyVersion, ManagedKey, Store};

fn time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".into(), format_utc)
}

fn opt_json(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(t))
}

fn size(v: &KeyVersion) -> String {
    match (&v.curve, v.size_bits) {
        (Some(c), _) => c.clone(),
        (None, Some(b)) => b.to_string(),
        (None, None) => "-".into(),
    }
}

/// The due status of a key's current version: (next rotation time, due now?).
fn due_of(cx: &Ctx, key: &ManagedKey, v: &KeyVersion) -> (Option<i64>, bool, Option<&'static str>) {
    match cx
        .cryptoperiod(key, v)
        .map(|p| lifecycle::due(v, p, cx.now))
    {
        Some(Due::At(t)) => (Some(t), false, None),
        Some(Due::Now { since, action }) => (Some(since), true, Some(action.as_str())),
        _ => (None, false, None),
    }
}

pub(super) fn list(
    cx: &Ctx,
    state: Option<KeyState>,
    due_only: bool,
    json_out: bool,
) -> Result<ExitCode> {
    // One read transaction for everything: a consistent picture, and one query
    // instead of one per key (this is what scales to 100 000 versions).
    let snap = cx.store.snapshot()?;
    let mut by_key: std::collections::HashMap<i64, Vec<KeyVersion>> =
        std::collections::HashMap::new();
    for v in snap.versions {
        by_key.entry(v.key_id.0).or_default().push(v);
    }
    let mut rows = Vec::new();
    for key in &snap.keys {
        let versions = by_key.remove(&key.id.0).unwrap_or_default();
        let Some(v) = current(&versions) else {
            continue;
        };
        if state.is_some_and(|s| s != v.state) {
            continue;
        }
        let (next, is_due, action) = due_of(cx, key, v);
        if due_only && !is_due {
            continue;
        }
        rows.push((key, v.clone(), versions.len(), next, is_due, action));
    }
    if json_out {
        print_list_json(&rows)
    } else {
        print_list_table(&rows);
        Ok(ExitCode::SUCCESS)
    }
}

/// One row of `keys list`: the key, its current version, how many versions it
/// has, and when (and whether) that version is due.
type ListRow<'k> = (
    &'k ManagedKey,
    KeyVersion,
    usize,
    Option<i64>,
    bool,
    Option<&'static str>,
);

fn print_list_json(rows: &[ListRow<'_>]) -> Result<ExitCode> {
    let out: Vec<Value> = rows
        .iter()
        .map(|(k, v, n, next, is_due, action)| {
            json!({
                "label": k.label, "key_id": k.id.0, "owner": k.owner,
                "classification": k.classification.map(|c| c.as_str()),
                "version": v.version, "versions": n, "state": v.state.as_str(),
                "algorithm": v.algorithm, "size_bits": v.size_bits, "curve": v.curve,
                "cka_id": hex(&v.cka_id), "token_serial": v.token_serial,
                "created_at": v.created_at, "activated_at": opt_json(v.activated_at),
                "state_changed_at": v.state_changed_at, "reason": v.reason,
                "next_rotation_at": opt_json(*next), "due": is_due, "when_due": action,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| Error::Internal(e.to_string()))?
    );
    Ok(ExitCode::SUCCESS)
}

fn print_list_table(rows: &[ListRow<'_>]) {
    // The label column is as wide as the longest label, so long labels do not
    // push the rest of their row out of line.
    let w = rows
        .iter()
        .map(|(k, ..)| k.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(24);
    println!(
        "{:<w$} {:>4} {:<14} {:<10} {:<8} {:<20} {:<22} {:<10} CLASS",
        "LABEL", "VER", "STATE", "TYPE", "SIZE", "ACTIVATED", "NEXT ROTATION", "OWNER"
    );
    for (k, v, _, next, is_due, _) in rows {
        let next = match (next, is_due) {
            (Some(t), true) => format!("DUE {}", format_utc(*t)),
            (Some(t), false) => format_utc(*t),
            (None, _) => "-".into(),
        };
        println!(
            "{:<w$} {:>4} {:<14} {:<10} {:<8} {:<20} {:<22} {:<10} {}",
            k.label,
            v.version,
            v.state.as_str(),
            v.algorithm.trim_start_matches("CKK_"),
            size(v),
            time(v.activated_at),
            next,
            k.owner.as_deref().unwrap_or("-"),
            // As the policy file spells levels ("Medium-High"), not the store's key.
            k.classification.map_or("-", |c| Level::from(c).name())
        );
    }
}

pub(super) fn show(cx: &Ctx, label: &str, json_out: bool) -> Result<ExitCode> {
    let key = cx.key(label)?;
    let versions = cx.store.versions(key.id)?;
    let period = current(&versions).and_then(|v| cx.cryptoperiod(&key, v));
    if json_out {
        show_json(&key, &versions, period)
    } else {
        show_text(&key, &versions, period);
        Ok(ExitCode::SUCCESS)
    }
}

fn show_json(
    key: &ManagedKey,
    versions: &[KeyVersion],
    period: Option<&Cryptoperiod>,
) -> Result<ExitCode> {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let sched = period.map(|p| lifecycle::schedule(v, p));
            json!({
                "version": v.version, "state": v.state.as_str(), "reason": v.reason,
                "cka_id": hex(&v.cka_id), "token_serial": v.token_serial,
                "algorithm": v.algorithm, "size_bits": v.size_bits, "curve": v.curve,
                "created_at": v.created_at, "state_changed_at": v.state_changed_at,
                "activated_at": opt_json(v.activated_at), "suspended_at": opt_json(v.suspended_at),
                "deactivated_at": opt_json(v.deactivated_at), "compromised_at": opt_json(v.compromised_at),
                "destroyed_at": opt_json(v.destroyed_at),
                "originator_end": opt_json(sched.map(|s| s.originator_end)),
                "recipient_end": opt_json(sched.map(|s| s.recipient_end)),
                "usage": {"ops": v.usage.ops, "bytes": v.usage.bytes, "last_use_at": opt_json(v.usage.last_use_at)},
            })
        })
        .collect();
    let out = json!({
        "label": key.label, "key_id": key.id.0, "owner": key.owner,
        "classification": key.classification.map(|c| c.as_str()),
        "created_at": key.created_at,
        "cryptoperiod": period.map(|p| json!({
            "name": p.name, "originator_secs": p.originator_secs,
            "recipient_secs": p.recipient_secs, "when_due": p.when_due.as_str(),
        })),
        "versions": vs,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| Error::Internal(e.to_string()))?
    );
    Ok(ExitCode::SUCCESS)
}

fn show_text(key: &ManagedKey, versions: &[KeyVersion], period: Option<&Cryptoperiod>) {
    println!("key {} (#{})", key.label, key.id.0);
    println!("  owner:          {}", key.owner.as_deref().unwrap_or("-"));
    println!(
        "  classification: {}",
        key.classification.map_or("-", |c| Level::from(c).name())
    );
    match period {
        Some(p) => println!(
            "  cryptoperiod:   {} (originator {}d, recipient {}d, when due: {})",
            p.name,
            p.originator_secs / 86_400,
            p.recipient_secs / 86_400,
            p.when_due.as_str()
        ),
        None => println!("  cryptoperiod:   none"),
    }
    for v in versions {
        println!(
            "  version {} {} {} {} CKA_ID {}",
            v.version,
            v.state.as_str(),
            v.algorithm,
            size(v),
            hex(&v.cka_id)
        );
        println!("    created     {}", format_utc(v.created_at));
        for (what, t) in [
            ("activated  ", v.activated_at),
            ("suspended  ", v.suspended_at),
            ("deactivated", v.deactivated_at),
            ("compromised", v.compromised_at),
            ("destroyed  ", v.destroyed_at),
        ] {
            if t.is_some() {
                println!("    {what} {}", time(t));
            }
        }
        if let Some(r) = &v.reason {
            println!("    reason      {r}");
        }
        println!(
            "    usage       {} ops, {} bytes, last use {}",
            v.usage.ops,
            v.usage.bytes,
            time(v.usage.last_use_at)
        );
    }
}

/// Private and secret keys on the token with no live version in the store.
pub(super) fn unmanaged(cx: &Ctx, json_out: bool) -> Result<ExitCode> {
    use crate::lifecycle::TokenOps;
    use pkcs11_sys::{CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    let token = cx.token()?;
    let serial = token.serial();
    let mut rows = Vec::new();
    for o in token
        .all_objects()
        .map_err(|e| Error::Config(e.to_string()))?
    {
        if o.class != CKO_PRIVATE_KEY && o.class != CKO_SECRET_KEY {
            continue;
        }
        if !o.id.is_empty() && cx.store.version_by_cka_id(&serial, &o.id)?.is_some() {
            continue;
        }
        let class = if o.class == CKO_PRIVATE_KEY {
            "private-key"
        } else {
            "secret-key"
        };
        rows.push((o.label, hex(&o.id), class));
    }
    rows.sort();
    if json_out {
        let out: Vec<Value> = rows
            .iter()
            .map(|(l, id, c)| json!({"label": l, "cka_id": id, "class": c, "state": "unmanaged", "token_serial": serial}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Error::Internal(e.to_string()))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<24} {:<34} CLASS", "LABEL", "CKA_ID");
    for (l, id, c) in &rows {
        println!("{l:<24} {:<34} {c}", if id.is_empty() { "-" } else { id });
    }
    Ok(ExitCode::SUCCESS)
}
