//! `keywarden policy check` findings on a policy that compiles: rules that can never
//! decide (shadowed by an earlier rule, or unreachable), rules granting every
//! operation on keys that can be High, and names defined but never used. The
//! checks are conservative: a finding is certain, but not every dead rule is found
//! (glob overlap, for instance, is only judged for literal/prefix/suffix shapes).

use std::fmt;

use pkcs11_sys::*;

use super::compile::{CRule, Effect, Policy, RoleSel};
use super::model::{Level, Op};

/// What kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// An earlier rule matches every request this one would.
    Shadowed,
    /// The rule can never match, or can never allow.
    Unreachable,
    /// `ops = ["*"]` allowed on keys that can be High.
    WideHigh,
    /// A principal or role that nothing refers to.
    Unused,
}

impl FindingKind {
    /// Short name shown in brackets.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Shadowed => "shadowed",
            FindingKind::Unreachable => "unreachable",
            FindingKind::WideHigh => "wide-high",
            FindingKind::Unused => "unused",
        }
    }
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Kind.
    pub kind: FindingKind,
    /// 1-based line in the policy file.
    pub line: usize,
    /// What and why.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: [{}] {}",
            self.line,
            self.kind.name(),
            self.message
        )
    }
}

/// Which object classes an operation can ever apply to.
fn op_classes(op: Op) -> &'static [CK_OBJECT_CLASS] {
    match op {
        Op::Sign | Op::Decrypt | Op::Unwrap | Op::Derive | Op::Export | Op::ReadSensitive => {
            &[CKO_PRIVATE_KEY, CKO_SECRET_KEY]
        }
        Op::Verify | Op::Encrypt | Op::Wrap => &[CKO_PUBLIC_KEY, CKO_SECRET_KEY],
        Op::DigestWithKey => &[CKO_SECRET_KEY],
        Op::Generate => &[CKO_PRIVATE_KEY, CKO_SECRET_KEY, CKO_PUBLIC_KEY],
        _ => &[],
    }
}

fn ops_of(mask: u32) -> impl Iterator<Item = Op> {
    Op::ALL
        .into_iter()
        .filter(move |o| mask & (1 << o.index()) != 0)
}

impl Policy {
    /// Every finding, in file order.
    pub fn lint(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (j, rule) in self.rules.iter().enumerate() {
            if let Some(f) = self.shadowing(j, rule) {
                out.push(f);
            } else if let Some(why) = self.unreachable(rule) {
                out.push(Finding {
                    kind: FindingKind::Unreachable,
                    line: rule.line,
                    message: format!("rule {:?} {why}", rule.id),
                });
            }
            if rule.effect == Effect::Allow && rule.all_ops && self.may_be_high(rule) {
                out.push(Finding {
                    kind: FindingKind::WideHigh,
                    line: rule.line,
                    message: format!("rule {:?} allows every operation (\"*\") on keys that can be High; list the operations it needs", rule.id),
                });
            }
        }
        self.unused(&mut out);
        out.sort_by_key(|f| f.line);
        out
    }

    fn shadowing(&self, j: usize, later: &CRule) -> Option<Finding> {
        let earlier = self.rules.get(..j)?.iter().find(|e| {
            e.roles.covers(&later.roles)
                && e.ops & later.ops == later.ops
                && match (&e.keys, &later.keys) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(a), Some(b)) => a.covers(b),
                }
                && e.mechs.covers(&later.mechs)
                && e.cond.covers(&later.cond)
        })?;
        let effect = if earlier.effect == later.effect {
            ""
        } else {
            " (with the opposite effect)"
        };
        Some(Finding {
            kind: FindingKind::Shadowed,
            line: later.line,
            message: format!(
                "rule {:?} never decides: rule {:?} (line {}) matches every request it would{effect}",
                later.id, earlier.id, earlier.line
            ),
        })
    }

    fn unreachable(&self, rule: &CRule) -> Option<String> {
        if rule.cond.time.as_ref().is_some_and(|t| t.never()) {
            return Some("has a time condition that never holds".into());
        }
        if let Some(keys) = &rule.keys {
            if ops_of(rule.ops).all(Op::is_admin) {
                return Some(
                    "selects keys, but its operations are administrative and involve no key".into(),
                );
            }
            let class_ok = |op: Op| {
                let classes = op_classes(op);
                classes.is_empty() || classes.iter().any(|c| keys.admits_class(*c))
            };
            if !ops_of(rule.ops).any(class_ok) {
                return Some(
                    "selects an object class none of its operations can be used on".into(),
                );
            }
            if rule.effect == Effect::Allow {
                if let (Some(min), RoleSel::Some(roles)) = (self.min_level(rule), &rule.roles) {
                    let clearance = roles
                        .iter()
                        .filter_map(|&r| self.roles.get(usize::from(r)))
                        .map(|r| r.clearance)
                        .max();
                    if let Some(c) = clearance.filter(|c| *c < min) {
                        return Some(format!(
                            "can never allow: its keys are at least {min}, above its roles' clearance ({c})"
                        ));
                    }
                }
            }
        }
        None
    }

    /// The lowest level a key the rule selects can have, when the rule pins it.
    fn min_level(&self, rule: &CRule) -> Option<Level> {
        let keys = rule.keys.as_ref()?;
        if let Some(mask) = keys.levels {
            return Level::ALL.into_iter().find(|l| mask & l.bit() != 0);
        }
        let sets = keys.sets.as_ref()?;
        sets.iter()
            .map(|&s| {
                self.keysets
                    .get(usize::from(s))
                    .and_then(|k| k.classification)
                    .unwrap_or(self.default_classification)
            })
            .min()
    }

    fn may_be_high(&self, rule: &CRule) -> bool {
        let Some(keys) = &rule.keys else { return true };
        if let Some(mask) = keys.levels {
            return mask & Level::High.bit() != 0;
        }
        match &keys.sets {
            // Any key, including store-recorded High ones.
            None => true,
            Some(sets) => sets.iter().any(|&s| {
                self.keysets
                    .get(usize::from(s))
                    .and_then(|k| k.classification)
                    .unwrap_or(self.default_classification)
                    == Level::High
            }),
        }
    }

    fn unused(&self, out: &mut Vec<Finding>) {
        for (i, p) in self.principals.iter().enumerate() {
            if !self.roles.iter().any(|r| r.members.contains(&i)) {
                out.push(Finding {
                    kind: FindingKind::Unused,
                    line: p.line,
                    message: format!("principal {:?} is not a member of any role", p.name),
                });
            }
        }
        for (i, role) in (0u16..).zip(&self.roles) {
            let named = |sel: &RoleSel| matches!(sel, RoleSel::Some(v) if v.contains(&i));
            let used = self.rules.iter().any(|r| named(&r.roles))
                || self
                    .grants
                    .iter()
                    .any(|g| g.to.contains(&i) || g.owner == i);
            if !used {
                out.push(Finding {
                    kind: FindingKind::Unused,
                    line: role.line,
                    message: format!(
                        "role {:?} is named by no rule or grant, so holding it allows nothing",
                        role.name
                    ),
                });
            }
        }
        for (i, ks) in (0u16..).zip(&self.keysets) {
            let named = self.rules.iter().any(|r| {
                r.keys
                    .as_ref()
                    .and_then(|k| k.sets.as_ref())
                    .is_some_and(|s| s.contains(&i))
            }) || self.grants.iter().any(|g| g.keyset == i);
            if !named && ks.classification.is_none() && ks.owner.is_none() {
                out.push(Finding {
                    kind: FindingKind::Unused,
                    line: ks.line,
                    message: format!(
                        "keyset {:?} has no classification or owner and no rule names it",
                        ks.name
                    ),
                });
            }
        }
        for g in &self.grants {
            if g.to.contains(&g.owner) {
                out.push(Finding {
                    kind: FindingKind::Unreachable,
                    line: g.line,
                    message: format!(
                        "grant {:?} lends to its own owner, which gains nothing",
                        g.id
                    ),
                });
            }
        }
    }
}
