//! `keys adopt`: brings a key already on the token under management, as the
//! first version of a new managed key.

use std::process::ExitCode;

use super::token::CryptokiToken;
use super::{hex, version_event, Ctx};
use crate::audit::LifecycleEvent;
use crate::cli::admin_audit::CliAudit;
use crate::error::{Error, Result};
use crate::lifecycle::TokenOps;
use crate::policy::KeyFacts;
use crate::store::{KeyState, ManagedKey, NewKey, NewVersion, Store};

pub(super) fn adopt(cx: &Ctx, au: &CliAudit, label: &str, id: Option<&str>) -> Result<ExitCode> {
    let token = cx.token()?;
    let cka_id = adoptable_id(&token, label, id)?;
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
    let key = create_key(cx, label, &facts)?;
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

/// The one CKA_ID among the token's keys labelled `label` (and, given `id`, with
/// that CKA_ID); never the audit seal key's.
fn adoptable_id(token: &CryptokiToken, label: &str, id: Option<&str>) -> Result<Vec<u8>> {
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
    match ids.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        [_] => Err(Error::Request(format!(
            "the key {label:?} has no CKA_ID, which Keywarden needs to tell its versions apart; \
             give it one first (e.g. pkcs11-tool --set-id, or p11tool --set-id) or adopt it with --id"
        ))),
        [] => Err(Error::Config(format!(
            "no key labelled {label:?} on the token"
        ))),
        many => {
            let shown: Vec<String> = many.iter().map(|i| hex(i)).collect();
            Err(Error::Config(format!(
                "several keys are labelled {label:?} (CKA_ID {}): choose one with --id",
                shown.join(", ")
            )))
        }
    }
}

/// The managed key, with the owner, classification and rotation rule policy gives it.
fn create_key(cx: &Ctx, label: &str, facts: &KeyFacts) -> Result<ManagedKey> {
    let (owner, classification) = match &cx.policy {
        Some(p) => (
            p.owner_of(facts).map(str::to_owned),
            // Only a keyset's classification is recorded; the default level is
            // policy's to apply at decision time, not a fact about the key.
            p.keyset_of(facts).map(|_| p.classification(facts).into()),
        ),
        None => (None, None),
    };
    Ok(cx.store.create_key(
        &NewKey {
            label: label.to_owned(),
            owner,
            classification,
            rotation_rule: cx
                .policy
                .as_ref()
                .and_then(|p| p.cryptoperiod_for(facts))
                .map(|c| c.name.clone()),
        },
        cx.now,
    )?)
}
