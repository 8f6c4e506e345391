//! `[[rule]]` and `[[grant]]`: ids unique across both, roles and keysets resolved
//! through the [`Cx`] name maps, and a grant checked against its owner's rules.

use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;

use super::{CGrant, CKeyset, CRule, Effect, RoleSel};
use crate::error::Result;
use crate::policy::format::*;
use crate::policy::model::Op;
use crate::policy::parse::Cx;

fn compile_roles(cx: &Cx<'_>, names: &[String], sp: &Range<usize>) -> Result<RoleSel> {
    if names.is_empty() {
        return Err(cx.err(sp, "`roles` is empty (use [\"*\"] for every caller)"));
    }
    if names.iter().any(|n| n == "*") {
        return Ok(RoleSel::Any);
    }
    let mut v = names
        .iter()
        .map(|n| cx.role(n, sp))
        .collect::<Result<Vec<_>>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(RoleSel::Some(v.into()))
}

pub(super) fn compile_rule(
    cx: &Cx<'_>,
    r: &Spanned<RawRule>,
    ids: &mut HashSet<String>,
) -> Result<CRule> {
    let sp = r.span();
    let raw = r.get_ref();
    let id = cx.id(&raw.id, ids, &sp)?;
    let effect = match raw.effect.as_deref() {
        None | Some("allow") => Effect::Allow,
        Some("deny") => Effect::Deny,
        Some(other) => {
            return Err(cx.err(
                &sp,
                format!("rule {id:?}: effect {other:?} (expected \"allow\" or \"deny\")"),
            ))
        }
    };
    let (ops, all_ops) = cx.ops(&raw.ops, &sp)?;
    Ok(CRule {
        line: cx.line(&sp),
        effect,
        roles: compile_roles(cx, &raw.roles, &sp)?,
        ops,
        all_ops,
        keys: raw.keys.as_ref().map(|k| cx.key_sel(k, &sp)).transpose()?,
        mechs: cx.mechs(&raw.mechanisms, &raw.except_mechanisms, &sp)?,
        cond: cx.conditions(&raw.when, &sp)?,
        description: raw.description.clone(),
        id,
    })
}

pub(super) fn compile_grant(
    cx: &Cx<'_>,
    g: &Spanned<RawGrant>,
    ids: &mut HashSet<String>,
    keysets: &[CKeyset],
    rules: &[CRule],
) -> Result<CGrant> {
    let sp = g.span();
    let raw = g.get_ref();
    let id = cx.id(&raw.id, ids, &sp)?;
    let owner = cx.role(&raw.owner, &sp)?;
    let keyset = cx.keysets.get(&raw.keyset).copied().ok_or_else(|| {
        cx.err(
            &sp,
            format!("grant {id:?}: unknown keyset {:?}", raw.keyset),
        )
    })?;
    let ks = keysets
        .get(usize::from(keyset))
        .ok_or_else(|| cx.err(&sp, "keyset index"))?;
    if ks.owner != Some(owner) {
        return Err(cx.err(&sp, format!("grant {id:?}: role {:?} does not own keyset {:?} (only a keyset's `owner` may grant it)", raw.owner, raw.keyset)));
    }
    let (ops, _) = cx.ops(&raw.ops, &sp)?;
    if let Some(op) = Op::ALL
        .into_iter()
        .find(|o| ops & (1 << o.index()) != 0 && o.is_admin())
    {
        return Err(cx.err(
            &sp,
            format!("grant {id:?}: {op} is not about a key and cannot be granted"),
        ));
    }
    // The owner can only lend what it may do itself: each operation must be allowed
    // to the owner by some rule. (Each use is also checked at decision time against
    // the owner's own rights for that very key and mechanism.)
    for op in Op::ALL.into_iter().filter(|o| ops & (1 << o.index()) != 0) {
        let owner_may = rules.iter().any(|r| {
            r.effect == Effect::Allow
                && r.ops & (1 << op.index()) != 0
                && match &r.roles {
                    RoleSel::Any => true,
                    RoleSel::Some(v) => v.contains(&owner),
                }
        });
        if !owner_may {
            return Err(cx.err(
                &sp,
                format!(
                    "grant {id:?}: lends {op}, which no rule allows its owner {:?} to do",
                    raw.owner
                ),
            ));
        }
    }
    let mut to = raw
        .to
        .iter()
        .map(|n| cx.role(n, &sp))
        .collect::<Result<Vec<_>>>()?;
    if to.is_empty() {
        return Err(cx.err(&sp, format!("grant {id:?}: `to` is empty")));
    }
    to.sort_unstable();
    to.dedup();
    Ok(CGrant {
        line: cx.line(&sp),
        owner,
        keyset,
        to: to.into(),
        ops,
        mechs: cx.mechs(&raw.mechanisms, &raw.except_mechanisms, &sp)?,
        cond: cx.conditions(&raw.when, &sp)?,
        id,
    })
}
