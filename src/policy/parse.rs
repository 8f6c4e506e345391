//! Compilation helpers: one value of the policy file at a time (globs, levels,
//! login states, `CKO_`/`CKK_`/`CKM_` names, time windows, key selectors, ids),
//! each error naming `file:line:col`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use pkcs11_sys::*;

use super::clock::DAY_NAMES;
use super::compile::Conditions;
use super::format::*;
use super::matchers::{Glob, Globs, KeySel, MechSel, TimeCond, UlongSet};
use super::model::{Level, Login, Op, BUILTIN_NAMES};
use super::names::{self, Src};
use crate::error::{Error, Result};

/// Compilation context: the source for positions, names resolved so far.
pub(crate) struct Cx<'a> {
    pub src: Src<'a>,
    pub roles: HashMap<String, u16>,
    pub keysets: HashMap<String, u16>,
}

pub(crate) fn list<T>(v: &Option<OneOrMany<T>>) -> Option<&[T]> {
    v.as_ref().map(OneOrMany::as_slice)
}

impl Cx<'_> {
    pub(crate) fn err(&self, span: &Range<usize>, msg: impl std::fmt::Display) -> Error {
        self.src.err(span, msg)
    }

    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        self.src.line_col(span.start).0
    }

    pub(crate) fn non_empty<'v, T>(
        &self,
        v: Option<&'v [T]>,
        what: &str,
        sp: &Range<usize>,
    ) -> Result<Option<&'v [T]>> {
        match v {
            Some([]) => Err(self.err(
                sp,
                format!("`{what}` is an empty list; leave it out to match anything"),
            )),
            other => Ok(other),
        }
    }

    pub(crate) fn globs(
        &self,
        v: Option<&[String]>,
        what: &str,
        path_like: bool,
        sp: &Range<usize>,
    ) -> Result<Option<Globs>> {
        let Some(v) = self.non_empty(v, what, sp)? else {
            return Ok(None);
        };
        let globs = v
            .iter()
            .map(|t| Glob::new(t, path_like).map_err(|e| self.err(sp, format!("`{what}`: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Globs(globs.into())))
    }

    pub(crate) fn level(&self, name: &str, sp: &Range<usize>) -> Result<Level> {
        Level::from_name(name).ok_or_else(|| {
            self.err(sp, format!("unknown classification {name:?} (expected High, Medium-High, Medium, Low-Medium or Low)"))
        })
    }

    pub(crate) fn logins(&self, v: Option<&[String]>, sp: &Range<usize>) -> Result<Option<u8>> {
        let Some(v) = self.non_empty(v, "login", sp)? else {
            return Ok(None);
        };
        let mut mask = 0;
        for name in v {
            let l = Login::from_name(name).ok_or_else(|| {
                self.err(
                    sp,
                    format!("unknown login state {name:?} (expected public, user or so)"),
                )
            })?;
            mask |= l.bit();
        }
        Ok(Some(mask))
    }

    pub(crate) fn ulongs(
        &self,
        v: Option<&[String]>,
        what: &str,
        parse: fn(&str) -> Option<CK_ULONG>,
        sp: &Range<usize>,
    ) -> Result<Option<UlongSet>> {
        let Some(v) = self.non_empty(v, what, sp)? else {
            return Ok(None);
        };
        let values = v
            .iter()
            .map(|n| parse(n).ok_or_else(|| self.err(sp, format!("`{what}`: unknown name {n:?}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(UlongSet::new(values)))
    }

    pub(crate) fn mechs(
        &self,
        only: &Option<Vec<String>>,
        except: &Option<Vec<String>>,
        sp: &Range<usize>,
    ) -> Result<MechSel> {
        let only = only.as_deref();
        let except = except.as_deref();
        Ok(MechSel {
            only: self.ulongs(only, "mechanisms", names::mechanism, sp)?,
            except: self.ulongs(except, "except_mechanisms", names::mechanism, sp)?,
        })
    }

    pub(crate) fn role(&self, name: &str, sp: &Range<usize>) -> Result<u16> {
        self.roles
            .get(name)
            .copied()
            .ok_or_else(|| self.err(sp, format!("unknown role {name:?}")))
    }

    pub(crate) fn ops(&self, v: &[String], sp: &Range<usize>) -> Result<(u32, bool)> {
        if v.is_empty() {
            return Err(self.err(sp, "`ops` is empty"));
        }
        let mut mask = 0u32;
        let mut all = false;
        for name in v {
            if name == "*" {
                all = true;
                mask = (1 << Op::COUNT) - 1;
                continue;
            }
            let op = Op::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                self.err(
                    sp,
                    format!(
                        "unknown operation {name:?} (expected \"*\" or one of {})",
                        known.join(", ")
                    ),
                )
            })?;
            mask |= 1 << op.index();
        }
        Ok((mask, all))
    }

    pub(crate) fn time(&self, c: &RawConditions, sp: &Range<usize>) -> Result<Option<TimeCond>> {
        if c.days.is_none() && c.hours.is_none() {
            return Ok(None);
        }
        let mut days = 0u8;
        match &c.days {
            None => days = 0x7f,
            Some(v) => {
                for d in v {
                    days |= self.day_range(d).ok_or_else(|| {
                        self.err(sp, format!("bad day {d:?} (expected mon..sun, a range like \"mon-fri\", or \"*\")"))
                    })?;
                }
            }
        }
        let mut windows = Vec::new();
        for h in list(&c.hours).unwrap_or(&[]) {
            windows.push(window(h).ok_or_else(|| {
                self.err(sp, format!("bad hours {h:?} (expected \"HH:MM-HH:MM\", end exclusive, may wrap past midnight)"))
            })?);
        }
        Ok(Some(TimeCond {
            days,
            windows: windows.into(),
        }))
    }

    pub(crate) fn day_range(&self, d: &str) -> Option<u8> {
        let day = |n: &str| {
            DAY_NAMES
                .iter()
                .position(|x| x.eq_ignore_ascii_case(n.get(..3).unwrap_or(n)))
        };
        if d == "*" {
            return Some(0x7f);
        }
        let (a, b) = match d.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(d)?, day(d)?),
        };
        let mut mask = 0u8;
        let mut i = a;
        loop {
            mask |= 1 << i;
            if i == b {
                return Some(mask);
            }
            i = (i + 1) % 7;
        }
    }

    pub(crate) fn conditions(
        &self,
        c: &Option<RawConditions>,
        sp: &Range<usize>,
    ) -> Result<Conditions> {
        let Some(c) = c else {
            return Ok(Conditions::default());
        };
        Ok(Conditions {
            time: self.time(c, sp)?,
            exe: self.globs(list(&c.exe), "exe", true, sp)?,
            host: self.globs(list(&c.host), "host", false, sp)?,
            login: self.logins(list(&c.login), sp)?,
        })
    }

    pub(crate) fn key_facts_sel(
        &self,
        label: &Option<OneOrMany<String>>,
        id: &Option<OneOrMany<String>>,
        class: &Option<OneOrMany<String>>,
        key_type: &Option<OneOrMany<String>>,
        sp: &Range<usize>,
    ) -> Result<KeySel> {
        let ids = match self.non_empty(list(id), "id", sp)? {
            None => None,
            Some(v) => Some(
                v.iter()
                    .map(|h| {
                        names::hex_id(h).map(Vec::into_boxed_slice).ok_or_else(|| {
                            self.err(
                                sp,
                                format!("bad CKA_ID {h:?} (expected hex, e.g. \"01ab\")"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
                    .into_boxed_slice(),
            ),
        };
        Ok(KeySel {
            sets: None,
            label: self.globs(list(label), "label", false, sp)?,
            id: ids,
            class: self.ulongs(list(class), "class", names::class, sp)?,
            key_type: self.ulongs(list(key_type), "type", names::key_type, sp)?,
            levels: None,
        })
    }

    pub(crate) fn key_sel(&self, k: &RawKeySelector, sp: &Range<usize>) -> Result<KeySel> {
        let mut sel = self.key_facts_sel(&k.label, &k.id, &k.class, &k.key_type, sp)?;
        if let Some(v) = self.non_empty(list(&k.set), "set", sp)? {
            let sets = v
                .iter()
                .map(|n| {
                    self.keysets
                        .get(n)
                        .copied()
                        .ok_or_else(|| self.err(sp, format!("unknown keyset {n:?}")))
                })
                .collect::<Result<Vec<_>>>()?;
            sel.sets = Some(sets.into());
        }
        if let Some(v) = self.non_empty(list(&k.classification), "classification", sp)? {
            let mut mask = 0;
            for n in v {
                mask |= self.level(n, sp)?.bit();
            }
            sel.levels = Some(mask);
        }
        Ok(sel)
    }

    pub(crate) fn id(
        &self,
        id: &str,
        seen: &mut HashSet<String>,
        sp: &Range<usize>,
    ) -> Result<Arc<str>> {
        let ok_chars = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if id.is_empty() || !ok_chars {
            return Err(self.err(
                sp,
                format!("bad id {id:?} (letters, digits and - _ . : only)"),
            ));
        }
        if BUILTIN_NAMES.contains(&id) {
            return Err(self.err(sp, format!("id {id:?} is reserved for a built-in check")));
        }
        if !seen.insert(id.to_owned()) {
            return Err(self.err(
                sp,
                format!("duplicate id {id:?} (rule and grant ids share one namespace)"),
            ));
        }
        Ok(id.into())
    }
}

/// `"HH:MM-HH:MM"` → minutes.
pub(crate) fn window(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-')?;
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        let total = h.checked_mul(60)?.checked_add(m)?;
        (m < 60 && total <= 24 * 60).then_some(total)
    };
    Some((minutes(a)?, minutes(b)?))
}

/// `"+01:00"`, `"-05:30"`, `"Z"`, `"UTC"` → seconds.
pub(crate) fn utc_offset(text: &str) -> Option<i32> {
    if text == "Z" || text.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, text.get(1..)?),
        b'-' => (-1, text.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m < 60).then_some(sign * (h * 3600 + m * 60))
}
