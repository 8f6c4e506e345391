//! Policy file → [`Policy`]: every name resolved, every glob and regex compiled,
//! rules bucketed by operation. Any problem is an `Error::Config` naming
//! `file:line:col`; there is no partial policy (fail closed).
//!
//! `tables`: `[settings]`, `[principals]`, `[roles]` and `[[keyset]]`;
//! `rules`: `[[rule]]` and `[[grant]]`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::clock::Clock;
use super::creation::CreationPolicy;
use super::format::*;
use super::matchers::{Globs, KeySel, MechSel, TimeCond, UlongSet};
use super::model::{Level, Op, Principal};
use super::names::Src;
use super::parse::Cx;
use crate::error::{Error, Result};

mod rules;
mod tables;

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
    let settings = tables::compile_settings(&cx, raw.settings)?;
    let principals = tables::compile_principals(&cx, &raw.principals)?;
    let roles = tables::compile_role_table(&mut cx, &raw.roles, &principals)?;
    let keysets = tables::compile_keysets(&mut cx, &raw.keysets)?;

    let mut ids = HashSet::new();
    let mut rules = Vec::new();
    for r in &raw.rules {
        rules.push(rules::compile_rule(&cx, r, &mut ids)?);
    }
    let mut grants = Vec::new();
    for g in &raw.grants {
        grants.push(rules::compile_grant(&cx, g, &mut ids, &keysets, &rules)?);
    }
    let creation = CreationPolicy::compile(raw.creation.as_ref(), &src)?;
    let cryptoperiods = super::cryptoperiod::compile(&cx, &raw.cryptoperiods)?;

    Ok(Policy {
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        origin: src.origin.to_owned(),
        clock,
        utc_offset: settings.utc_offset,
        default_classification: settings.default_classification,
        default_clearance: settings.default_clearance,
        always_visible: settings.always_visible,
        principals,
        roles,
        keysets,
        rules_by_op: bucket(&mut rules.iter().map(|r| r.ops)),
        grants_by_op: bucket(&mut grants.iter().map(|g| g.ops)),
        rules,
        grants,
        creation,
        cryptoperiods,
        unmanaged_keys: settings.unmanaged_keys,
    })
}

/// Indices of the entries whose operation mask has each operation's bit, per operation.
fn bucket(ops: &mut dyn Iterator<Item = u32>) -> [Box<[u32]>; Op::COUNT] {
    let masks: Vec<u32> = ops.collect();
    Op::ALL.map(|op| {
        (0u32..)
            .zip(&masks)
            .filter(|(_, m)| *m & (1 << op.index()) != 0)
            .map(|(i, _)| i)
            .collect()
    })
}
