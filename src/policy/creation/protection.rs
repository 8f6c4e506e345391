//! The protection of a new private or secret key: `CKA_SENSITIVE` and
//! `CKA_EXTRACTABLE` (required, inherited from a copy's source, or forced) and the
//! boolean attributes `[creation] set` forces.

use pkcs11_sys::*;

use super::decide::{refuse, CreateDecision, Creation, CreationKind, NewObject};
use crate::abi::Template;
use crate::policy::compile::Policy;
use crate::policy::evaluate::Now;
use crate::policy::matchers::{KeyCtx, MechArg};
use crate::policy::model::{Decision, Op};
use crate::policy::subject::Subject;

impl Policy {
    /// `CKA_SENSITIVE`, `CKA_EXTRACTABLE` and `[creation] set` on a private or secret key.
    pub(super) fn check_protection(
        &self,
        s: &Subject,
        c: &Creation<'_, '_>,
        obj: &NewObject<'_, '_>,
        ctx: &KeyCtx<'_>,
        now: &mut Now<'_>,
        out: &mut CreateDecision,
    ) -> Result<(), Decision> {
        self.check_sensitive_extractable(s, c, obj.template, ctx, now, out)?;
        if c.kind != CreationKind::Copy {
            self.check_forced_set(obj.template, out)?;
        }
        Ok(())
    }

    /// `CKA_SENSITIVE=TRUE` and `CKA_EXTRACTABLE=FALSE`: a copy may not loosen
    /// them; when required, a loose value needs a rule allowing export and an
    /// absent one is forced.
    fn check_sensitive_extractable(
        &self,
        s: &Subject,
        c: &Creation<'_, '_>,
        t: &Template<'_>,
        ctx: &KeyCtx<'_>,
        now: &mut Now<'_>,
        out: &mut CreateDecision,
    ) -> Result<(), Decision> {
        let cp = &self.creation;
        let mut export: Option<bool> = None;
        let mut may_export = |now: &mut Now<'_>| {
            *export.get_or_insert_with(|| {
                self.decide_in(s, Op::Export, Some(ctx), MechArg::None, now)
                    .allow
            })
        };
        let src = c.source;
        // (attribute, required value, template's value, source's value, rule)
        let checks = [
            (
                CKA_SENSITIVE,
                true,
                t.sensitive(),
                src.and_then(|k| k.sensitive),
                cp.require_sensitive,
                "creation.sensitive",
            ),
            (
                CKA_EXTRACTABLE,
                false,
                t.extractable(),
                src.and_then(|k| k.extractable),
                cp.require_non_extractable,
                "creation.extractable",
            ),
        ];
        for (attr, safe, given, from_source, required, rule) in checks {
            let name = crate::abi::attribute_name(attr);
            if given == Some(!safe) && from_source == Some(safe) {
                return Err(refuse(
                    "copy.loosening",
                    CKR_TEMPLATE_INCONSISTENT,
                    format!(
                        "a copy may not set {name}={} on a key that has {name}={safe}",
                        !safe
                    ),
                ));
            }
            if !required {
                continue;
            }
            match given {
                Some(v) if v == safe => {}
                Some(_) => {
                    if !may_export(now) {
                        return Err(refuse(
                            rule,
                            CKR_TEMPLATE_INCONSISTENT,
                            format!(
                                "{name}={} on a private or secret key needs a rule allowing export",
                                !safe
                            ),
                        ));
                    }
                }
                // Left out: inherited when the source is safe, else forced, also on
                // a copy of a loose legacy key (a copy may tighten: v2.40 §4.9,
                // §4.10 footnotes on CKA_SENSITIVE and CKA_EXTRACTABLE).
                None if from_source == Some(safe) => {}
                None => out.force.push((attr, safe)),
            }
        }
        Ok(())
    }

    /// `[creation] set`: a template value against it is refused, an absent one forced.
    fn check_forced_set(&self, t: &Template<'_>, out: &mut CreateDecision) -> Result<(), Decision> {
        let cp = &self.creation;
        for &(attr, want) in &cp.set {
            match t.flag(attr) {
                Some(v) if v != want => {
                    return Err(refuse(
                        "creation.attribute",
                        CKR_TEMPLATE_INCONSISTENT,
                        format!(
                            "{}={v} is refused on new private and secret keys (creation.set: {})",
                            crate::abi::attribute_name(attr),
                            cp.set_names().join(", ")
                        ),
                    ))
                }
                Some(_) => {}
                None => out.force.push((attr, want)),
            }
        }
        Ok(())
    }
}
