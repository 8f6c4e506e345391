//! Deciding: a caller is resolved once into a [`Subject`] (`subject.rs`: its roles,
//! and for each rule whether it applies and with which clearance); each request
//! then walks only the rules of its operation, in file order, testing precomputed
//! bytes, compiled key selectors, mechanism lists and, where a rule has one, the
//! time window.
//!
//! Precedence (docs/policy.md, "How a request is decided"):
//! 1. the first `[[rule]]` (file order) whose roles, operations, keys, conditions and
//!    mechanisms all match decides: `deny` refuses; `allow` allows unless the key's
//!    classification is above the clearance the rule was matched through
//!    (`mac-clearance`, checked even though a rule allows);
//! 2. if no rule matches, the first matching `[[grant]]` whose owner could itself
//!    do the same thing (same key, mechanism, time) allows, again within the
//!    grantee's clearance;
//! 3. otherwise `default-deny`.

use pkcs11_sys::*;

use super::clock::{Clock, LocalTime};
use super::compile::{Effect, Policy};
use super::matchers::{KeyCtx, MechArg};
use super::model::{Decision, KeyFacts, Level, Op, RuleRef};
use super::subject::Subject;
use crate::abi::mechanism_name;

/// One request to decide. For `generate`/`create` the key is the new key's facts
/// (see also `Policy::decide_create`, which checks the template too).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who.
    pub subject: &'a Subject,
    /// What.
    pub op: Op,
    /// On which key (`None` for administrative functions).
    pub key: Option<&'a KeyFacts>,
    /// With which mechanism (`None` for calls without one).
    pub mechanism: Option<CK_MECHANISM_TYPE>,
}

/// Local time, computed at most once per decision and only if a rule needs it.
pub(crate) struct Now<'c> {
    clock: &'c dyn Clock,
    offset: i32,
    cached: Option<LocalTime>,
}

impl Now<'_> {
    fn get(&mut self) -> LocalTime {
        *self
            .cached
            .get_or_insert_with(|| LocalTime::from_unix(self.clock.unix_seconds(), self.offset))
    }
}

enum Scan {
    Matched(usize, Level),
    NoMatch { near_miss: Option<usize> },
}

const fn level_of(byte: u8) -> Level {
    match byte {
        0 | 1 => Level::Low,
        2 => Level::LowMedium,
        3 => Level::Medium,
        4 => Level::MediumHigh,
        _ => Level::High,
    }
}

impl Policy {
    /// A key's effective classification and keyset: the key belongs to the first
    /// keyset (file order) it matches; its level is the higher of the level the
    /// store recorded and its keyset's level (else `default_classification`), so
    /// neither a stale record nor a missing one can lower it.
    pub(crate) fn key_ctx<'k>(&self, facts: &'k KeyFacts) -> KeyCtx<'k> {
        let keyset = self.keysets.iter().position(|k| k.sel.matches_facts(facts));
        let set_level = keyset
            .and_then(|i| self.keysets.get(i))
            .and_then(|k| k.classification);
        let level = match (facts.classification, set_level) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.default_classification,
        };
        KeyCtx {
            facts,
            level,
            keyset: keyset.and_then(|i| u16::try_from(i).ok()),
        }
    }

    /// The classification a key is treated as.
    pub fn classification(&self, key: &KeyFacts) -> Level {
        self.key_ctx(key).level
    }

    /// The keyset a key belongs to, by name.
    pub fn keyset_of(&self, key: &KeyFacts) -> Option<&str> {
        self.key_ctx(key)
            .keyset
            .and_then(|i| self.keysets.get(usize::from(i)))
            .map(|k| k.name.as_str())
    }

    /// The owner role of a key's keyset.
    pub fn owner_of(&self, key: &KeyFacts) -> Option<&str> {
        let ks = self.key_ctx(key).keyset?;
        let owner = self.keysets.get(usize::from(ks))?.owner?;
        self.roles.get(usize::from(owner)).map(|r| r.name.as_str())
    }

    pub(crate) fn now(&self) -> Now<'_> {
        Now {
            clock: &*self.clock,
            offset: self.utc_offset,
            cached: None,
        }
    }

    /// The decision on one request. Never panics, never allocates when allowing.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        if req.op == Op::ReadSensitive && req.key.is_some_and(|k| !holds_key_material(k)) {
            // A certificate's, public key's or data object's CKA_VALUE is no key
            // material (sensitivity is a private/secret key notion, v2.40 §4.9,
            // §4.10): SunPKCS11 reads certificate values to list its keystore.
            return Decision::allow(
                RuleRef::Builtin("not-key-material"),
                "the object is not a private or secret key",
            );
        }
        let mech = req.mechanism.map_or(MechArg::None, MechArg::Is);
        self.with_fresh(req.subject, |s| {
            let key = req.key.map(|k| self.key_ctx(k));
            self.decide_in(s, req.op, key.as_ref(), mech, &mut self.now())
        })
    }

    /// Whether a caller may see an object in `C_FindObjects` results: it is of an
    /// `always_visible` class, or some key operation on it would be allowed now
    /// with some mechanism.
    pub fn may_see(&self, subject: &Subject, key: &KeyFacts) -> bool {
        if key.class.is_some_and(|c| self.always_visible.contains(c)) {
            return true;
        }
        self.with_fresh(subject, |s| {
            let ctx = self.key_ctx(key);
            let mut now = self.now();
            Op::ALL
                .into_iter()
                .filter(|op| !op.is_admin() && !op.is_creation())
                .any(|op| {
                    self.decide_in(s, op, Some(&ctx), MechArg::Probe, &mut now)
                        .allow
                })
        })
    }

    /// Runs `f` with `subject`, or with a fresh resolution of its principal when it
    /// was resolved under another policy generation (after a reload).
    pub(crate) fn with_fresh<T>(&self, subject: &Subject, f: impl FnOnce(&Subject) -> T) -> T {
        if subject.generation == self.generation {
            f(subject)
        } else {
            f(&self.resolve(&subject.principal))
        }
    }

    fn scan(
        &self,
        levels: &[u8],
        op: Op,
        key: Option<&KeyCtx<'_>>,
        mech: MechArg,
        now: &mut Now<'_>,
    ) -> Scan {
        let mut near_miss = None;
        let Some(bucket) = self.rules_by_op.get(op.index()) else {
            return Scan::NoMatch { near_miss };
        };
        for &i in bucket.iter() {
            let i = i as usize;
            let (Some(&lvl), Some(rule)) = (levels.get(i), self.rules.get(i)) else {
                continue;
            };
            if lvl == 0 {
                continue;
            }
            if let Some(sel) = &rule.keys {
                match key {
                    Some(k) if sel.matches(k) => {}
                    _ => continue,
                }
            }
            if let Some(t) = &rule.cond.time {
                if !t.matches(now.get()) {
                    continue;
                }
            }
            if !rule.mechs.matches(mech, rule.effect == Effect::Deny) {
                if rule.effect == Effect::Allow && near_miss.is_none() {
                    near_miss = Some(i);
                }
                continue;
            }
            return Scan::Matched(i, level_of(lvl));
        }
        Scan::NoMatch { near_miss }
    }

    pub(crate) fn decide_in(
        &self,
        s: &Subject,
        op: Op,
        key: Option<&KeyCtx<'_>>,
        mech: MechArg,
        now: &mut Now<'_>,
    ) -> Decision {
        match self.scan(&s.rule_levels, op, key, mech, now) {
            Scan::Matched(i, clearance) => {
                let Some(rule) = self.rules.get(i) else {
                    return Decision::deny(
                        RuleRef::Builtin("default-deny"),
                        op.refusal_rv(),
                        "internal: rule index",
                    );
                };
                let rule_ref = RuleRef::Rule(rule.id.clone());
                if rule.effect == Effect::Deny {
                    let (rv, what) = match mech {
                        MechArg::Is(m) if rule.mechs.only.is_some() => (
                            CKR_MECHANISM_INVALID,
                            format!("{op} with {}", mechanism_name(m)),
                        ),
                        _ => (op.refusal_rv(), op.to_string()),
                    };
                    return Decision::deny(
                        rule_ref,
                        rv,
                        format!("{what} denied by rule {}", rule.id),
                    );
                }
                match key {
                    Some(k) if k.level > clearance => Decision::deny(
                        RuleRef::Builtin("mac-clearance"),
                        op.refusal_rv(),
                        format!(
                            "rule {} allows {op}, but the key is {} and the caller's clearance through that rule is {}",
                            rule.id, k.level, clearance
                        ),
                    ),
                    _ => Decision::allow(rule_ref, "allowed by rule"),
                }
            }
            Scan::NoMatch { near_miss } => {
                if let Some(d) = self.try_grants(s, op, key, mech, now) {
                    return d;
                }
                match (near_miss.and_then(|i| self.rules.get(i)), mech) {
                    (Some(rule), MechArg::Is(m)) => Decision::deny(
                        RuleRef::Builtin("default-deny"),
                        CKR_MECHANISM_INVALID,
                        format!("{} is not a mechanism rule {} allows for {op}, and no other rule allows it", mechanism_name(m), rule.id),
                    ),
                    _ => Decision::deny(
                        RuleRef::Builtin("default-deny"),
                        op.refusal_rv(),
                        format!("no rule or grant allows {op}{}", key.map_or(String::new(), describe_key)),
                    ),
                }
            }
        }
    }

    fn try_grants(
        &self,
        s: &Subject,
        op: Op,
        key: Option<&KeyCtx<'_>>,
        mech: MechArg,
        now: &mut Now<'_>,
    ) -> Option<Decision> {
        let k = key?;
        let keyset = k.keyset?;
        for &g in self.grants_by_op.get(op.index())?.iter() {
            let g = g as usize;
            let (Some(&lvl), Some(grant)) = (s.grant_levels.get(g), self.grants.get(g)) else {
                continue;
            };
            if lvl == 0 || grant.keyset != keyset {
                continue;
            }
            if grant
                .cond
                .time
                .as_ref()
                .is_some_and(|t| !t.matches(now.get()))
            {
                continue;
            }
            if !grant.mechs.matches(mech, false) {
                continue;
            }
            // Within what the owner itself may do with this key, now.
            let owner_ok = s
                .owners
                .iter()
                .find(|(o, _)| *o == grant.owner)
                .is_some_and(|(_, levels)| match self.scan(levels, op, key, mech, now) {
                    Scan::Matched(i, owner_clearance) => {
                        self.rules.get(i).is_some_and(|r| r.effect == Effect::Allow)
                            && k.level <= owner_clearance
                    }
                    Scan::NoMatch { .. } => false,
                });
            if !owner_ok {
                continue;
            }
            let clearance = level_of(lvl);
            if k.level > clearance {
                return Some(Decision::deny(
                    RuleRef::Builtin("mac-clearance"),
                    op.refusal_rv(),
                    format!("grant {} lends {op}, but the key is {} and the grantee's clearance is {clearance}", grant.id, k.level),
                ));
            }
            return Some(Decision::allow(
                RuleRef::Grant(grant.id.clone()),
                "allowed by grant",
            ));
        }
        None
    }
}

/// Whether an object may hold secret key material: a private or secret key, or an
/// object whose class could not be read (fail closed).
fn holds_key_material(k: &KeyFacts) -> bool {
    k.class
        .is_none_or(|c| c == CKO_PRIVATE_KEY || c == CKO_SECRET_KEY)
}

fn describe_key(k: &KeyCtx<'_>) -> String {
    match k.facts.label.as_deref() {
        Some(l) => format!(" on key {l:?} ({})", k.level),
        None => format!(" on this key ({})", k.level),
    }
}
