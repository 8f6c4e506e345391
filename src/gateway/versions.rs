//! Both policy modes: a managed key's objects stay in their version, and no other
//! object joins one (docs/lifecycle.md, "Gateway integration"; docs/policy.md,
//! "Enforcement points").
//!
//! A version is the set of key objects sharing one `CKA_ID` on one token, and the
//! lifecycle finds a key's state by that `CKA_ID`. So an object that left its
//! version (a copy or an edit with another `CKA_ID`) would be an unmanaged key with
//! the same value, usable whatever the version's state — a compromised key signing
//! again; and an object given a managed `CKA_ID` (an import, unwrap, derive,
//! generation, copy or edit) would be taken for that version — a forged version.
//! Hence, after policy allowed the call:
//! - `C_CopyObject` of a managed key keeps its `CKA_ID` and `CKA_LABEL`: the copy
//!   is one more object of the same version (same state, classification, rules);
//!   a template changing either is refused with `CKR_ACTION_PROHIBITED`;
//! - `C_SetAttributeValue` of `CKA_ID` or `CKA_LABEL` on a managed key's object is
//!   refused with `CKR_ACTION_PROHIBITED` (v2.40 §5.7: the action is prohibited by
//!   policy; `CKR_ATTRIBUTE_READ_ONLY` would claim the token cannot change it);
//! - a new or edited key object may not take a `CKA_ID` a live version holds on
//!   that token: `CKR_TEMPLATE_INCONSISTENT` for the creating calls (whose return
//!   codes §5.7 lists; `CKR_ACTION_PROHIBITED` is not among them),
//!   `CKR_ACTION_PROHIBITED` for copies and edits.
//!
//! Certificates and data objects may carry a managed key's `CKA_ID` (that is how a
//! certificate names its key); they hold no key material. No key may be made or
//! edited to carry the audit seal key's `CKA_ID` or `CKA_LABEL` (`seal_key.rs`).
//!
//! [`on_create`] and [`on_edit`] are the checks; the enforcer refuses through its
//! path, transparent mode through `lifecycle_guard.rs`'s.

use super::enforce::lifecycle_refusal;
use pkcs11_sys::*;

use super::create::CreateArgs;
use super::lifecycle::lifecycle_view;
use super::Enforcer;
use crate::abi::Template;
use crate::backend::Backend;
use crate::error::Result;
use crate::lifecycle::{LcRefusal, View};
use crate::policy::{CreationKind, KeyFacts, Op};

/// The built-in rule these refusals are reported under.
const RULE: &str = "lifecycle.version";

/// Why a key may not take the audit seal key's `CKA_ID` or `CKA_LABEL`.
const RESERVED: &str = "the CKA_ID and CKA_LABEL of the audit seal key are reserved for it";

/// Whether an object of this class holds key material (an unknown class counts:
/// fail closed).
fn is_key(class: Option<CK_OBJECT_CLASS>) -> bool {
    !matches!(
        class,
        Some(c) if !matches!(c, CKO_PRIVATE_KEY | CKO_PUBLIC_KEY | CKO_SECRET_KEY)
    )
}

fn refusal(rv: CK_RV, reason: String) -> LcRefusal {
    LcRefusal {
        rule: RULE,
        rv,
        reason,
    }
}

impl Enforcer {
    /// The version check of a creation (`C_CopyObject` with the source's facts,
    /// or a generation, import, unwrap or derive).
    pub(super) fn keep_versions_on_create(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
        args: &CreateArgs<'_, '_>,
        source: Option<&KeyFacts>,
    ) -> Result<()> {
        let op = args.kind.access_op();
        lifecycle_view(&self.lifecycle, &self.sessions, backend, slot)
            .and_then(|view| on_create(&view, args, source))
            .map_err(|r| lifecycle_refusal(Some(op), r))
    }

    /// The version check of `C_SetAttributeValue` on an object with `facts`.
    pub(super) fn keep_versions_on_edit(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
        facts: &KeyFacts,
        template: &Template<'_>,
    ) -> Result<()> {
        on_edit(
            || lifecycle_view(&self.lifecycle, &self.sessions, backend, slot),
            facts,
            template,
        )
        .map_err(|r| lifecycle_refusal(Some(Op::SetAttribute), r))
    }
}

/// The version check of a creation (`C_CopyObject` with the source's facts, or a
/// generation, import, unwrap or derive) on the slot `view` describes; both
/// policy modes.
pub(super) fn on_create(
    view: &View,
    args: &CreateArgs<'_, '_>,
    source: Option<&KeyFacts>,
) -> std::result::Result<(), LcRefusal> {
    let holder = |id: &[u8]| {
        (!id.is_empty())
            .then(|| view.index.lookup(&view.serial, id))
            .flatten()
    };
    let refuse = |rv, why: String| Err(refusal(rv, why));
    let copy = args.kind == CreationKind::Copy;
    for t in std::iter::once(args.template).chain(args.public_template) {
        if (copy || is_key(t.class())) && super::seal_key::is_reserved(t.id(), t.label()) {
            return refuse(
                if copy {
                    CKR_ACTION_PROHIBITED
                } else {
                    CKR_TEMPLATE_INCONSISTENT
                },
                RESERVED.into(),
            );
        }
    }
    if let (CreationKind::Copy, Some(src)) = (args.kind, source) {
        if !is_key(src.class) {
            return Ok(());
        }
        let src_id = src.id.as_deref().unwrap_or_default();
        if let Some((v, key, _)) = holder(src_id) {
            if args.template.id().is_some_and(|id| id != src_id) {
                return refuse(
                    CKR_ACTION_PROHIBITED,
                    format!(
                        "a copy of managed key {:?} (version {}) keeps its CKA_ID: it is one more object of that version",
                        key.label, v.version
                    ),
                );
            }
            let label = args.template.label();
            if label.is_some_and(|l| Some(l) != src.label.as_deref().map(str::as_bytes)) {
                return refuse(
                    CKR_ACTION_PROHIBITED,
                    format!("a copy of managed key {:?} keeps its CKA_LABEL", key.label),
                );
            }
            return Ok(());
        }
        if let Some((v, key, _)) = args.template.id().and_then(holder) {
            return refuse(
                CKR_ACTION_PROHIBITED,
                format!(
                    "the copy's CKA_ID belongs to version {} of managed key {:?}",
                    v.version, key.label
                ),
            );
        }
        return Ok(());
    }
    for t in std::iter::once(args.template).chain(args.public_template) {
        if !is_key(t.class()) {
            continue;
        }
        if let Some((v, key, _)) = t.id().and_then(holder) {
            return refuse(
                CKR_TEMPLATE_INCONSISTENT,
                format!(
                    "CKA_ID belongs to version {} of managed key {:?}: a new key cannot join a version",
                    v.version, key.label
                ),
            );
        }
    }
    Ok(())
}

/// The version check of `C_SetAttributeValue` on an object with `facts`; `view`
/// is asked for only when the template names `CKA_ID` or `CKA_LABEL` of a key.
pub(super) fn on_edit(
    view: impl FnOnce() -> std::result::Result<View, LcRefusal>,
    facts: &KeyFacts,
    template: &Template<'_>,
) -> std::result::Result<(), LcRefusal> {
    if !is_key(facts.class) || !(template.contains(CKA_ID) || template.contains(CKA_LABEL)) {
        return Ok(());
    }
    if super::seal_key::is_reserved(template.id(), template.label()) {
        return Err(refusal(CKR_ACTION_PROHIBITED, RESERVED.into()));
    }
    let view = view()?;
    let refuse = |why: String| Err(refusal(CKR_ACTION_PROHIBITED, why));
    let own = facts.id.as_deref().unwrap_or_default();
    let managed = (!own.is_empty())
        .then(|| view.index.lookup(&view.serial, own))
        .flatten();
    if let Some((v, key, _)) = managed {
        if template.id().is_some_and(|id| id != own) {
            return refuse(format!(
                "the CKA_ID of managed key {:?} (version {}) names its version: it cannot change",
                key.label, v.version
            ));
        }
        let same = |l: &[u8]| {
            l == key.label.as_bytes() || Some(l) == facts.label.as_deref().map(str::as_bytes)
        };
        if template.label().is_some_and(|l| !same(l)) {
            return refuse(format!(
                "the CKA_LABEL of managed key {:?} is the key's name in the store: it cannot change through the module",
                key.label
            ));
        }
        return Ok(());
    }
    let taken = template
        .id()
        .filter(|id| !id.is_empty())
        .and_then(|id| view.index.lookup(&view.serial, id));
    if let Some((v, key, _)) = taken {
        return refuse(format!(
            "CKA_ID belongs to version {} of managed key {:?}: another key cannot join a version",
            v.version, key.label
        ));
    }
    Ok(())
}
