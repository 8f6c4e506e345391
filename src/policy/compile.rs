//! Policy file → [`Policy`]: every name resolved, every glob and regex compiled,
//! rules bucketed by operation. Any problem is an `Error::Config` naming
//! `file:line:col`; there is no partial policy (fail closed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use toml::Spanned;

use super::clock::Clock;
use super::creation::CreationPolicy;
use super::format::*;
use super::matchers::{Globs, KeySel, MechSel, TimeCond, UlongSet};
use super::model::{Level, Op, Principal};
use super::names::{self, Src};
use super::parse::{list, utc_offset, Cx};
use crate::error::{Error, Result};

/// A compiled policy. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct Policy {
    pub(crate) generation: u64,
    pub(crate) origin: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) utc_offset: i32,
    pub(crate) default_classification: Level,
    pub(crate) default_clearance: Level,
    pub(crate) always_visible: UlongSet,
    pub(crate) principals: Vec<CPrincipal>,
    pub(crate) roles: Vec<CRole>,
    pub(crate) keysets: Vec<CKeyset>,
    pub(crate) rules: Vec<CRule>,
    pub(crate) grants: Vec<CGrant>,
    /// Rule indices per operation, in file order.
    pub(crate) rules_by_op: [Box<[u32]>; Op::COUNT],
    /// Grant indices per operation, in file order.
    pub(crate) grants_by_op: [Box<[u32]>; Op::COUNT],
    pub(crate) creation: CreationPolicy,
    pub(crate) cryptoperiods: Vec<super::cryptoperiod::Cryptoperiod>,
    pub(crate) unmanaged_keys: super::cryptoperiod::UnmanagedKeys,
}

/// A named principal matcher.
#[derive(Debug)]
pub(crate) struct CPrincipal {
    pub name: String,
    pub line: usize,
    pub uid: Option<Box<[u32]>>,
    pub user: Option<Box<[String]>>,
    pub gid: Option<Box<[u32]>>,
    pub group: Option<Box<[String]>>,
    pub exe: Option<Globs>,
    pub host: Option<Globs>,
    pub login: Option<u8>,
    pub identity: Option<Box<[String]>>,
}

/// A role.
#[derive(Debug)]
pub(crate) struct CRole {
    pub name: String,
    pub line: usize,
    pub clearance: Level,
    pub members: Vec<usize>,
    /// `members = ["*"]`: every caller holds the role.
    pub everyone: bool,
}

/// A keyset.
#[derive(Debug)]
pub(crate) struct CKeyset {
    pub name: String,
    pub line: usize,
    pub sel: KeySel,
    pub classification: Option<Level>,
    pub owner: Option<u16>,
    pub backup_required: bool,
}

/// Which roles a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleSel {
    /// `["*"]`: every caller.
    Any,
    /// These roles (indices).
    Some(Box<[u16]>),
}

impl RoleSel {
    pub fn covers(&self, other: &RoleSel) -> bool {
        match (self, other) {
            (RoleSel::Any, _) => true,
            (RoleSel::Some(_), RoleSel::Any) => false,
            (RoleSel::Some(a), RoleSel::Some(b)) => b.iter().all(|r| a.contains(r)),
        }
    }
}

/// ABAC conditions. Exe, host and login are facts of the session, checked once
/// when the subject is resolved; time is checked per decision.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    pub time: Option<TimeCond>,
    pub exe: Option<Globs>,
    pub host: Option<Globs>,
    pub login: Option<u8>,
}

impl Conditions {
    pub fn static_match(&self, p: &Principal) -> bool {
        self.login.is_none_or(|m| m & p.login.bit() != 0)
            && self
                .exe
                .as_ref()
                .is_none_or(|g| p.exe.as_deref().is_some_and(|e| g.is_match(e)))
            && self
                .host
                .as_ref()
                .is_none_or(|g| p.host.as_deref().is_some_and(|h| g.is_match(h)))
    }

    /// `self` is no stricter than `other` (conservative).
    pub fn covers(&self, other: &Conditions) -> bool {
        fn field<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> bool) -> bool {
            match (a, b) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => f(a, b),
            }
        }
        field(&self.time, &other.time, |a, b| a == b)
            && field(&self.exe, &other.exe, Globs::covers)
            && field(&self.host, &other.host, Globs::covers)
            && field(&self.login, &other.login, |a, b| a & b == *b)
    }
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// A rule.
#[derive(Debug)]
pub(crate) struct CRule {
    pub id: Arc<str>,
    pub line: usize,
    pub effect: Effect,
    pub roles: RoleSel,
    /// Bit `op.index()` set for each operation.
    pub ops: u32,
    pub all_ops: bool,
    pub keys: Option<KeySel>,
    pub mechs: MechSel,
    pub cond: Conditions,
    pub description: Option<String>,
}

/// A grant.
#[derive(Debug)]
pub(crate) struct CGrant {
    pub id: Arc<str>,
    pub line: usize,
    pub owner: u16,
    pub keyset: u16,
    pub to: Box<[u16]>,
    pub ops: u32,
    pub mechs: MechSel,
    pub cond: Conditions,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Policy {
    /// Compiles policy text. `origin` names it in messages (the file path).
    pub fn compile(text: &str, origin: &str, clock: Arc<dyn Clock>) -> Result<Policy> {
        let src = Src { text, origin };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map_or_else(|| origin.to_owned(), |s| src.at(s.start));
            Error::Config(format!("{at}: {}", one_line(e.message())))
        })?;
        compile_raw(raw, src, clock)
    }

    /// Reads and compiles a policy file.
    pub fn load(path: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read policy {}: {e}", path.display())))?;
        Policy::compile(&text, &path.display().to_string(), clock)
    }

    /// Distinguishes compiled policies; a [`super::Subject`] resolved under another
    /// generation is re-resolved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where the policy came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Line and description of a rule or grant, by id (for `policy explain`).
    pub fn describe(&self, id: &str) -> Option<(usize, Option<&str>)> {
        self.rules
            .iter()
            .find(|r| &*r.id == id)
            .map(|r| (r.line, r.description.as_deref()))
            .or_else(|| {
                self.grants
                    .iter()
                    .find(|g| &*g.id == id)
                    .map(|g| (g.line, None))
            })
    }

    /// Number of rules, grants and roles.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.rules.len(), self.grants.len(), self.roles.len())
    }

    /// The local time the policy's windows see now.
    pub fn local_now(&self) -> super::clock::LocalTime {
        super::clock::LocalTime::from_unix(self.clock.unix_seconds(), self.utc_offset)
    }

    /// The clock the policy decides time windows with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn compile_raw(raw: RawPolicy, src: Src<'_>, clock: Arc<dyn Clock>) -> Result<Policy> {
    let mut cx = Cx {
        src,
        roles: HashMap::new(),
        keysets: HashMap::new(),
    };
    if *raw.version.get_ref() != 1 {
        return Err(cx.err(
            &raw.version.span(),
            "unsupported policy version (this build reads version = 1)",
        ));
    }
    let settings_span = raw.settings.as_ref().map_or(0..0, Spanned::span);
    let settings = raw.settings.map(Spanned::into_inner).unwrap_or_default();
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
        None => super::cryptoperiod::UnmanagedKeys::default(),
        Some(n) => super::cryptoperiod::UnmanagedKeys::from_name(n).ok_or_else(|| {
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

    let principals = compile_principals(&cx, &raw.principals)?;
    let principal_index: HashMap<&str, usize> = principals
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();

    let mut roles = Vec::new();
    for (i, (name, role)) in raw.roles.iter().enumerate() {
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

    let mut keysets = Vec::new();
    for (i, ks) in raw.keysets.iter().enumerate() {
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

    let mut ids = HashSet::new();
    let mut rules = Vec::new();
    for r in &raw.rules {
        rules.push(compile_rule(&cx, r, &mut ids)?);
    }
    let mut grants = Vec::new();
    for g in &raw.grants {
        grants.push(compile_grant(&cx, g, &mut ids, &keysets, &rules)?);
    }
    let creation = CreationPolicy::compile(raw.creation.as_ref(), &src)?;
    let cryptoperiods = super::cryptoperiod::compile(&cx, &raw.cryptoperiods)?;

    let bucket = |ops: &mut dyn Iterator<Item = u32>| -> [Box<[u32]>; Op::COUNT] {
        let masks: Vec<u32> = ops.collect();
        Op::ALL.map(|op| {
            (0u32..)
                .zip(&masks)
                .filter(|(_, m)| *m & (1 << op.index()) != 0)
                .map(|(i, _)| i)
                .collect()
        })
    };
    Ok(Policy {
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        origin: src.origin.to_owned(),
        clock,
        utc_offset: utc,
        default_classification,
        default_clearance,
        always_visible,
        principals,
        roles,
        keysets,
        rules_by_op: bucket(&mut rules.iter().map(|r| r.ops)),
        grants_by_op: bucket(&mut grants.iter().map(|g| g.ops)),
        rules,
        grants,
        creation,
        cryptoperiods,
        unmanaged_keys,
    })
}

fn compile_principals(
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

fn compile_rule(cx: &Cx<'_>, r: &Spanned<RawRule>, ids: &mut HashSet<String>) -> Result<CRule> {
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

fn compile_grant(
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
