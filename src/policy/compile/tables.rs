//! The tables a policy's rules refer to: `[settings]`, `[principals]`, `[roles]`
//! and `[[keyset]]`. Roles and keysets are entered into the [`Cx`] name maps in
//! file order, so that rules and grants can resolve them.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;

use super::{CKeyset, CPrincipal, CRole};
use crate::error::Result;
use crate::policy::cryptoperiod::UnmanagedKeys;
use crate::policy::format::*;
use crate::policy::matchers::UlongSet;
use crate::policy::model::Level;
use crate::policy::names;
use crate::policy::parse::{list, utc_offset, Cx};

/// The compiled `[settings]` table.
pub(super) struct Settings {
    pub utc_offset: i32,
    pub default_classification: Level,
    pub default_clearance: Level,
    pub unmanaged_keys: UnmanagedKeys,
    pub always_visible: UlongSet,
}

pub(super) fn compile_settings(cx: &Cx<'_>, raw: Option<Spanned<RawSettings>>) -> Result<Settings> {
    let settings_span = raw.as_ref().map_or(0..0, Spanned::span);
    let settings = raw.map(Spanned::into_inner).unwrap_or_default();
    let utc = match &settings.utc_offset {
        None => 0,
        Some(t) => utc_offset(t).ok_or_else(|| {
            cx.err(
                &settings_span,
                format!("bad utc_offset {t:?} (expected \"+HH:MM\", \"-HH:MM\" or \"UTC\")"),
            )
        })?,
    };
    let default_classification = match &settings.default_classification {
        None => Level::High,
        Some(n) => cx.level(n, &settings_span)?,
    };
    let default_clearance = match &settings.default_clearance {
        None => Level::Low,
        Some(n) => cx.level(n, &settings_span)?,
    };
    let unmanaged_keys = match &settings.unmanaged_keys {
        None => UnmanagedKeys::default(),
        Some(n) => UnmanagedKeys::from_name(n).ok_or_else(|| {
            cx.err(
                &settings_span,
                format!(
                    "unknown unmanaged_keys {n:?} (expected \"allow\", \"processing\" or \"deny\")"
                ),
            )
        })?,
    };
    let always_visible = cx
        .ulongs(
            settings.always_visible.as_deref().filter(|v| !v.is_empty()),
            "always_visible",
            names::class,
            &settings_span,
        )?
        .unwrap_or_else(|| UlongSet::new(Vec::new()));
    Ok(Settings {
        utc_offset: utc,
        default_classification,
        default_clearance,
        unmanaged_keys,
        always_visible,
    })
}

pub(super) fn compile_principals(
    cx: &Cx<'_>,
    raw: &BTreeMap<String, Spanned<RawPrincipal>>,
) -> Result<Vec<CPrincipal>> {
    let mut out = Vec::new();
    for (name, p) in raw {
        let sp = p.span();
        let r = p.get_ref();
        let boxed = |v: Option<&[String]>, what: &str| -> Result<Option<Box<[String]>>> {
            Ok(cx
                .non_empty(v, what, &sp)?
                .map(|v| v.to_vec().into_boxed_slice()))
        };
        let nums = |v: Option<&[u32]>, what: &str| -> Result<Option<Box<[u32]>>> {
            Ok(cx
                .non_empty(v, what, &sp)?
                .map(|v| v.to_vec().into_boxed_slice()))
        };
        let c = CPrincipal {
            name: name.clone(),
            line: cx.line(&sp),
            uid: nums(list(&r.uid), "uid")?,
            user: boxed(list(&r.user), "user")?,
            gid: nums(list(&r.gid), "gid")?,
            group: boxed(list(&r.group), "group")?,
            exe: cx.globs(list(&r.exe), "exe", true, &sp)?,
            host: cx.globs(list(&r.host), "host", false, &sp)?,
            login: cx.logins(list(&r.login), &sp)?,
            identity: boxed(list(&r.identity), "identity")?,
        };
        let says_something = c.uid.is_some()
            || c.user.is_some()
            || c.gid.is_some()
            || c.group.is_some()
            || c.exe.is_some()
            || c.host.is_some()
            || c.login.is_some()
            || c.identity.is_some();
        if !says_something {
            return Err(cx.err(&sp, format!("principal {name:?} matches nothing: give at least one of uid, user, gid, group, exe, host, login, identity")));
        }
        out.push(c);
    }
    Ok(out)
}

/// `[roles]`, each entered into `cx.roles`.
pub(super) fn compile_role_table(
    cx: &mut Cx<'_>,
    raw: &BTreeMap<String, Spanned<RawRole>>,
    principals: &[CPrincipal],
) -> Result<Vec<CRole>> {
    let principal_index: HashMap<&str, usize> = principals
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut roles = Vec::new();
    for (i, (name, role)) in raw.iter().enumerate() {
        let sp = role.span();
        if name == "*" {
            return Err(cx.err(&sp, "a role may not be called \"*\""));
        }
        let everyone = role.get_ref().members.iter().any(|m| m == "*");
        let members =
            role.get_ref()
                .members
                .iter()
                .filter(|m| *m != "*")
                .map(|m| {
                    principal_index.get(m.as_str()).copied().ok_or_else(|| {
                        cx.err(&sp, format!("role {name:?}: unknown principal {m:?}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        let index = u16::try_from(i).map_err(|_| cx.err(&sp, "too many roles"))?;
        cx.roles.insert(name.clone(), index);
        roles.push(CRole {
            name: name.clone(),
            line: cx.line(&sp),
            clearance: cx.level(&role.get_ref().clearance, &sp)?,
            members,
            everyone,
        });
    }
    Ok(roles)
}

/// `[[keyset]]`, each entered into `cx.keysets`.
pub(super) fn compile_keysets(cx: &mut Cx<'_>, raw: &[Spanned<RawKeyset>]) -> Result<Vec<CKeyset>> {
    let mut keysets = Vec::new();
    for (i, ks) in raw.iter().enumerate() {
        let sp = ks.span();
        let k = ks.get_ref();
        if cx.keysets.contains_key(&k.name) {
            return Err(cx.err(&sp, format!("duplicate keyset {:?}", k.name)));
        }
        let sel = cx.key_facts_sel(&k.label, &k.id, &k.class, &k.key_type, &sp)?;
        let owner = k.owner.as_ref().map(|o| cx.role(o, &sp)).transpose()?;
        let classification = k
            .classification
            .as_ref()
            .map(|c| cx.level(c, &sp))
            .transpose()?;
        let index = u16::try_from(i).map_err(|_| cx.err(&sp, "too many keysets"))?;
        cx.keysets.insert(k.name.clone(), index);
        keysets.push(CKeyset {
            name: k.name.clone(),
            line: cx.line(&sp),
            sel,
            classification,
            owner,
            backup_required: k.backup_required.unwrap_or(false),
        });
    }
    Ok(keysets)
}
