//! Compiled matchers: globs with fast paths for the shapes policies mostly use
//! (literal, `prefix*`, `*suffix`, `*`), sorted mechanism lists, time windows, and
//! the key selector. Everything here runs on the decision path and allocates nothing.

use pkcs11_sys::*;

use super::clock::LocalTime;
use super::model::{KeyFacts, Level};

/// A compiled glob. `Glob` keeps the text for messages and for `policy check`.
#[derive(Debug, Clone)]
pub struct Glob {
    text: Box<str>,
    how: GlobHow,
}

#[derive(Debug, Clone)]
enum GlobHow {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Full(globset::GlobMatcher),
}

const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

impl Glob {
    /// Compiles `text`. With `path_like`, `*` and `?` do not match `/` (use `**`
    /// to cross directories), as in a shell; labels and host names have no
    /// separators.
    pub fn new(text: &str, path_like: bool) -> Result<Glob, String> {
        let how = if text == "*" || (text == "**" && path_like) {
            GlobHow::Any
        } else if !text.contains(META) {
            GlobHow::Exact(text.into())
        } else if let Some(p) = text
            .strip_suffix('*')
            .filter(|p| !p.contains(META) && !path_like)
        {
            GlobHow::Prefix(p.into())
        } else if let Some(s) = text
            .strip_prefix('*')
            .filter(|s| !s.contains(META) && !path_like)
        {
            GlobHow::Suffix(s.into())
        } else {
            let glob = globset::GlobBuilder::new(text)
                .literal_separator(path_like)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("bad glob {text:?}: {}", e.kind()))?;
            GlobHow::Full(glob.compile_matcher())
        };
        Ok(Glob {
            text: text.into(),
            how,
        })
    }

    /// Whether `s` matches.
    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        match &self.how {
            GlobHow::Any => true,
            GlobHow::Exact(e) => s == &**e,
            GlobHow::Prefix(p) => s.starts_with(&**p),
            GlobHow::Suffix(x) => s.ends_with(&**x),
            GlobHow::Full(m) => m.is_match(s),
        }
    }

    /// Conservative subsumption for `policy check`: true only when every string
    /// `other` matches is certainly matched by `self`.
    pub fn covers(&self, other: &Glob) -> bool {
        match (&self.how, &other.how) {
            (GlobHow::Any, _) => true,
            _ if self.text == other.text => true,
            (GlobHow::Prefix(p), GlobHow::Exact(t) | GlobHow::Prefix(t)) => t.starts_with(&**p),
            (GlobHow::Suffix(x), GlobHow::Exact(t) | GlobHow::Suffix(t)) => t.ends_with(&**x),
            (_, GlobHow::Exact(t)) => self.is_match(t),
            _ => false,
        }
    }
}

/// Any of several globs.
#[derive(Debug, Clone)]
pub struct Globs(pub Box<[Glob]>);

impl Globs {
    /// Whether any glob matches `s`.
    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        self.0.iter().any(|g| g.is_match(s))
    }

    /// Every glob of `other` is covered by one of ours.
    pub fn covers(&self, other: &Globs) -> bool {
        other.0.iter().all(|o| self.0.iter().any(|g| g.covers(o)))
    }
}

/// A set of `CK_ULONG` values (mechanisms, classes, key types), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UlongSet(pub Box<[CK_ULONG]>);

impl UlongSet {
    /// From any order, duplicates removed.
    pub fn new(mut values: Vec<CK_ULONG>) -> UlongSet {
        values.sort_unstable();
        values.dedup();
        UlongSet(values.into_boxed_slice())
    }

    /// Membership. Sets are small; a linear scan beats binary search below ~16.
    #[inline]
    pub fn contains(&self, v: CK_ULONG) -> bool {
        if self.0.len() <= 16 {
            self.0.contains(&v)
        } else {
            self.0.binary_search(&v).is_ok()
        }
    }

    /// Every value of `other` is in `self`.
    pub fn is_superset(&self, other: &UlongSet) -> bool {
        other.0.iter().all(|v| self.contains(*v))
    }
}

/// A rule's mechanism selector.
#[derive(Debug, Clone, Default)]
pub struct MechSel {
    /// `None`: any mechanism.
    pub only: Option<UlongSet>,
    /// Never these.
    pub except: Option<UlongSet>,
}

/// The mechanism side of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechArg {
    /// The call has no mechanism (destroy, set-attribute, ...): selectors are moot.
    None,
    /// The call's mechanism.
    Is(CK_MECHANISM_TYPE),
    /// Visibility probing: "some mechanism" — an allow rule matches if its list
    /// admits any mechanism, a deny rule only if it denies them all.
    Probe,
}

impl MechSel {
    /// True when the selector says nothing.
    pub fn is_any(&self) -> bool {
        self.only.is_none() && self.except.is_none()
    }

    #[inline]
    pub(crate) fn matches(&self, mech: MechArg, deny_rule: bool) -> bool {
        match mech {
            MechArg::None => true,
            MechArg::Is(m) => {
                self.only.as_ref().is_none_or(|s| s.contains(m))
                    && !self.except.as_ref().is_some_and(|s| s.contains(m))
            }
            MechArg::Probe => !deny_rule || self.is_any(),
        }
    }

    /// Every mechanism `other` admits, `self` admits too.
    pub fn covers(&self, other: &MechSel) -> bool {
        let only = match (&self.only, &other.only) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a.is_superset(b),
        };
        let except = match (&self.except, &other.except) {
            (None, _) => true,
            (Some(a), Some(b)) => b.is_superset(a),
            (Some(a), None) => other
                .only
                .as_ref()
                .is_some_and(|o| o.0.iter().all(|m| !a.contains(*m))),
        };
        only && except
    }
}

/// Day-of-week and time-of-day windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCond {
    /// Bit d set: weekday d (0 = Monday) allowed.
    pub days: u8,
    /// `[start, end)` in minutes; `start > end` wraps past midnight. Empty: all day.
    pub windows: Box<[(u16, u16)]>,
}

impl TimeCond {
    /// Whether the local time is inside.
    #[inline]
    pub fn matches(&self, t: LocalTime) -> bool {
        if self.days & (1 << t.weekday) == 0 {
            return false;
        }
        self.windows.is_empty()
            || self.windows.iter().any(|&(s, e)| {
                if s <= e {
                    t.minute >= s && t.minute < e
                } else {
                    t.minute >= s || t.minute < e
                }
            })
    }

    /// True when no moment can match.
    pub fn never(&self) -> bool {
        self.days == 0 || (!self.windows.is_empty() && self.windows.iter().all(|&(s, e)| s == e))
    }
}

/// A compiled key selector; every present field must match.
#[derive(Debug, Clone, Default)]
pub struct KeySel {
    /// Keyset indices (the key's keyset must be one of them).
    pub sets: Option<Box<[u16]>>,
    /// Label globs.
    pub label: Option<Globs>,
    /// `CKA_ID` values.
    pub id: Option<Box<[Box<[u8]>]>>,
    /// Object classes.
    pub class: Option<UlongSet>,
    /// Key types.
    pub key_type: Option<UlongSet>,
    /// Levels, as a bit mask of `Level::bit`.
    pub levels: Option<u8>,
}

/// What the selector is matched against: the facts plus what the policy derived.
#[derive(Debug, Clone, Copy)]
pub struct KeyCtx<'a> {
    /// The facts.
    pub facts: &'a KeyFacts,
    /// Its effective level.
    pub level: Level,
    /// Its keyset (first that matches), if any.
    pub keyset: Option<u16>,
}

impl KeySel {
    /// Matches the facts only (keysets use this; no sets or levels there).
    #[inline]
    pub fn matches_facts(&self, k: &KeyFacts) -> bool {
        (match &self.label {
            None => true,
            Some(g) => k.label.as_deref().is_some_and(|l| g.is_match(l)),
        }) && (match &self.id {
            None => true,
            Some(ids) => {
                k.id.as_deref()
                    .is_some_and(|id| ids.iter().any(|x| **x == *id))
            }
        }) && (match &self.class {
            None => true,
            Some(s) => k.class.is_some_and(|c| s.contains(c)),
        }) && (match &self.key_type {
            None => true,
            Some(s) => k.key_type.is_some_and(|t| s.contains(t)),
        })
    }

    /// Matches a key in context.
    #[inline]
    pub fn matches(&self, k: &KeyCtx<'_>) -> bool {
        (match &self.sets {
            None => true,
            Some(sets) => k.keyset.is_some_and(|s| sets.contains(&s)),
        }) && self.levels.is_none_or(|m| m & k.level.bit() != 0)
            && self.matches_facts(k.facts)
    }

    /// Conservative subsumption for `policy check`.
    pub fn covers(&self, other: &KeySel) -> bool {
        fn field<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> bool) -> bool {
            match (a, b) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => f(a, b),
            }
        }
        field(&self.sets, &other.sets, |a, b| {
            b.iter().all(|s| a.contains(s))
        }) && field(&self.label, &other.label, Globs::covers)
            && field(&self.id, &other.id, |a, b| b.iter().all(|x| a.contains(x)))
            && field(&self.class, &other.class, UlongSet::is_superset)
            && field(&self.key_type, &other.key_type, UlongSet::is_superset)
            && field(&self.levels, &other.levels, |a, b| a & b == *b)
    }

    /// Whether a key of `class` could match (for `policy check`).
    pub fn admits_class(&self, class: CK_OBJECT_CLASS) -> bool {
        self.class.as_ref().is_none_or(|s| s.contains(class))
    }
}
