//! [`Policy::decide_create`] (generate, generate pair, create/import, unwrap,
//! derive, copy) and [`Policy::check_new_key`] (the after-the-fact check of a
//! created key whose size the template did not state).
//!
//! Order of checks (the first refusal wins): the copy source's `copy` rule, then for
//! each new object: label rule → classification → copy loosening → key type and
//! size → sensitive, extractable and `[creation] set` → the access rule for the new
//! key (`generate` or `create`), within the caller's clearance.

use pkcs11_sys::*;

use super::checks::{is_key, is_private_or_secret, key_type_of_mechanism, Material};
use super::facts::{size_facts, template_facts};
use crate::abi::{mechanism_name, Template};
use crate::policy::compile::Policy;
use crate::policy::evaluate::Now;
use crate::policy::matchers::{KeyCtx, MechArg};
use crate::policy::model::{Decision, KeyFacts, Level, Op, RuleRef};
use crate::policy::subject::Subject;

/// Which function creates the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationKind {
    /// `C_GenerateKey`.
    Generate,
    /// `C_GenerateKeyPair` (`public_template` given).
    GenerateKeyPair,
    /// `C_CreateObject`.
    Create,
    /// `C_UnwrapKey` (the unwrapping key is decided separately as `unwrap`).
    Unwrap,
    /// `C_DeriveKey` (the base key is decided separately as `derive`).
    Derive,
    /// `C_CopyObject` (`source` given).
    Copy,
}

impl CreationKind {
    /// The access operation the new key is decided as.
    pub const fn access_op(self) -> Op {
        match self {
            CreationKind::Generate | CreationKind::GenerateKeyPair | CreationKind::Derive => {
                Op::Generate
            }
            CreationKind::Create | CreationKind::Unwrap => Op::Create,
            CreationKind::Copy => Op::Copy,
        }
    }
}

/// A request to create an object.
#[derive(Debug, Clone, Copy)]
pub struct Creation<'a, 't> {
    /// Which function.
    pub kind: CreationKind,
    /// The call's mechanism (generation, unwrap or derive mechanism).
    pub mechanism: Option<CK_MECHANISM_TYPE>,
    /// The template: of the secret key, of the private key (key pair), of the
    /// object (`C_CreateObject`), of the copy (`C_CopyObject`).
    pub template: &'a Template<'t>,
    /// `C_GenerateKeyPair`'s public-key template.
    pub public_template: Option<&'a Template<'t>>,
    /// `C_CopyObject`'s source object.
    pub source: Option<&'a KeyFacts>,
}

/// The answer on a creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDecision {
    /// Allow or refuse, with rule, reason and code.
    pub decision: Decision,
    /// Boolean attributes to add to the (private or secret key's) template because
    /// it leaves them out: the gateway forwards the template with these appended.
    pub force: Vec<(CK_ATTRIBUTE_TYPE, bool)>,
    /// The level the new key gets (for the metadata store).
    pub classification: Level,
    /// The template did not state the key's size or curve (unwrap, derive, copy):
    /// the gateway must read the created key and pass its facts to
    /// [`Policy::check_new_key`], destroying it on refusal.
    pub verify_after: bool,
}

/// One object a creation makes, as policy sees it.
pub(super) struct NewObject<'a, 't> {
    pub(super) facts: KeyFacts,
    pub(super) template: &'a Template<'t>,
    pub(super) type_from_mechanism: bool,
}

pub(super) fn refuse(rule: &'static str, rv: CK_RV, reason: String) -> Decision {
    Decision::deny(RuleRef::Builtin(rule), rv, reason)
}

impl Policy {
    /// The decision on a creation (module documentation for the order of checks).
    pub fn decide_create(&self, subject: &Subject, c: &Creation<'_, '_>) -> CreateDecision {
        self.with_fresh(subject, |s| self.create_in(s, c))
    }

    fn create_in(&self, s: &Subject, c: &Creation<'_, '_>) -> CreateDecision {
        let mut out = CreateDecision {
            decision: Decision::allow(RuleRef::Builtin("default-deny"), ""),
            force: Vec::new(),
            classification: self.default_classification,
            verify_after: false,
        };
        let mut now = self.now();
        let objects = match self.new_objects(c) {
            Ok(o) => o,
            Err(d) => {
                out.decision = d;
                return out;
            }
        };
        let source = c.source.map(|f| self.key_ctx(f));
        if let Some(src) = &source {
            let d = self.decide_in(s, Op::Copy, Some(src), MechArg::None, &mut now);
            if !d.allow {
                out.decision = d;
                return out;
            }
            out.decision = d;
        }
        for (n, obj) in objects.iter().enumerate() {
            match self.check_object(s, c, obj, source.as_ref(), &mut now, &mut out) {
                Ok(d) => {
                    // The level reported is the private/secret key's (the first).
                    if n == 0 {
                        out.classification = self.key_ctx(&obj.facts).level;
                    }
                    if n == 0 && c.kind != CreationKind::Copy {
                        out.decision = d;
                    }
                }
                Err(d) => {
                    out.decision = d;
                    out.force.clear();
                    return out;
                }
            }
        }
        out
    }

    /// The objects a creation makes, private/secret (or only) one first.
    fn new_objects<'a, 't>(
        &self,
        c: &Creation<'a, 't>,
    ) -> Result<Vec<NewObject<'a, 't>>, Decision> {
        let mech_type = c.mechanism.and_then(key_type_of_mechanism);
        let generating = matches!(
            c.kind,
            CreationKind::Generate | CreationKind::GenerateKeyPair
        );
        if generating && mech_type.is_none() && c.template.key_type().is_none() {
            let m = c
                .mechanism
                .map_or("no mechanism".into(), |m| mechanism_name(m).into_owned());
            return Err(refuse(
                "creation.key-type",
                CKR_MECHANISM_INVALID,
                format!("cannot tell which key type {m} generates"),
            ));
        }
        let mut main = template_facts(c.template);
        match c.kind {
            CreationKind::Generate => main.class = Some(CKO_SECRET_KEY),
            CreationKind::GenerateKeyPair => main.class = Some(CKO_PRIVATE_KEY),
            CreationKind::Copy => {
                let src = c.source.cloned().unwrap_or_default();
                main = KeyFacts {
                    class: src.class,
                    key_type: src.key_type,
                    label: main.label.or(src.label),
                    id: main.id.or(src.id),
                    classification: None,
                    sensitive: main.sensitive.or(src.sensitive),
                    extractable: main.extractable.or(src.extractable),
                    bits: src.bits,
                    curve: src.curve,
                };
            }
            _ => {}
        }
        if generating {
            if let Some(t) = mech_type {
                main.key_type = Some(t);
                // The size attributes are read by key type, now known.
                size_facts(c.template, &mut main);
            }
        }
        let mut objects = Vec::new();
        if let (CreationKind::GenerateKeyPair, Some(pt)) = (c.kind, c.public_template) {
            let mut public = template_facts(pt);
            public.class = Some(CKO_PUBLIC_KEY);
            public.key_type = main.key_type;
            size_facts(pt, &mut public);
            // The size lives in the public template (CKA_MODULUS_BITS, CKA_EC_PARAMS).
            main.bits = main.bits.or(public.bits);
            main.curve = main.curve.or(public.curve);
            objects.push(NewObject {
                facts: main,
                template: c.template,
                type_from_mechanism: mech_type.is_some(),
            });
            objects.push(NewObject {
                facts: public,
                template: pt,
                type_from_mechanism: mech_type.is_some(),
            });
        } else {
            objects.push(NewObject {
                facts: main,
                template: c.template,
                type_from_mechanism: generating && mech_type.is_some(),
            });
        }
        Ok(objects)
    }

    fn check_object(
        &self,
        s: &Subject,
        c: &Creation<'_, '_>,
        obj: &NewObject<'_, '_>,
        source: Option<&KeyCtx<'_>>,
        now: &mut Now<'_>,
        out: &mut CreateDecision,
    ) -> Result<Decision, Decision> {
        let f = &obj.facts;
        let ctx = self.key_ctx(f);
        self.check_naming(c, f, &ctx)?;
        if let Some(src) = source {
            self.check_copy_placement(&ctx, src)?;
        }
        self.check_object_material(c, obj, out)?;
        if is_private_or_secret(f.class) {
            self.check_protection(s, c, obj, &ctx, now, out)?;
        }
        if c.kind == CreationKind::Copy {
            return Ok(Decision::allow(
                RuleRef::Builtin("copy.loosening"),
                "copy keeps its source's protection",
            ));
        }
        let mech = match (c.kind, c.mechanism) {
            (CreationKind::Generate | CreationKind::GenerateKeyPair, Some(m)) => MechArg::Is(m),
            _ => MechArg::None,
        };
        let d = self.decide_in(s, c.kind.access_op(), Some(&ctx), mech, now);
        if d.allow {
            Ok(d)
        } else {
            Err(d)
        }
    }

    /// The label rule (not on a copy) and `require_classification`.
    fn check_naming(
        &self,
        c: &Creation<'_, '_>,
        f: &KeyFacts,
        ctx: &KeyCtx<'_>,
    ) -> Result<(), Decision> {
        let keyset = ctx.keyset.and_then(|i| self.keysets.get(usize::from(i)));
        let cp = &self.creation;
        if is_key(f.class) && c.kind != CreationKind::Copy {
            if let Some(why) = cp.check_label(f.label.as_deref()) {
                return Err(refuse("creation.label", CKR_TEMPLATE_INCONSISTENT, why));
            }
        }
        if cp.require_classification
            && is_key(f.class)
            && keyset.and_then(|k| k.classification).is_none()
        {
            return Err(refuse(
                "creation.classification",
                CKR_TEMPLATE_INCONSISTENT,
                format!("label {:?} falls in no keyset with a classification (creation.require_classification)", f.label.as_deref().unwrap_or("")),
            ));
        }
        Ok(())
    }

    /// A copy may not land below its source's level or under another owner.
    fn check_copy_placement(&self, ctx: &KeyCtx<'_>, src: &KeyCtx<'_>) -> Result<(), Decision> {
        if ctx.level < src.level {
            return Err(refuse(
                "copy.loosening",
                CKR_TEMPLATE_INCONSISTENT,
                format!(
                    "the copy would be {} but its source is {}",
                    ctx.level, src.level
                ),
            ));
        }
        let owner = |k: Option<u16>| {
            k.and_then(|i| self.keysets.get(usize::from(i)))
                .and_then(|k| k.owner)
        };
        if owner(ctx.keyset) != owner(src.keyset) {
            return Err(refuse(
                "copy.loosening",
                CKR_TEMPLATE_INCONSISTENT,
                "the copy's label moves it away from its source's owner".into(),
            ));
        }
        Ok(())
    }

    /// Key type and size; an unknown size is checked on the created key after
    /// unwrap, derive or copy, and refused otherwise.
    fn check_object_material(
        &self,
        c: &Creation<'_, '_>,
        obj: &NewObject<'_, '_>,
        out: &mut CreateDecision,
    ) -> Result<(), Decision> {
        let f = &obj.facts;
        match self.creation.check_material(
            f.class,
            f.key_type,
            f.bits,
            f.curve,
            obj.type_from_mechanism,
        ) {
            Material::Ok => {}
            Material::Refused(rule, rv, why) => return Err(refuse(rule, rv, why)),
            Material::Unknown(what) => {
                if matches!(
                    c.kind,
                    CreationKind::Unwrap | CreationKind::Derive | CreationKind::Copy
                ) {
                    out.verify_after = true;
                } else {
                    return Err(refuse(
                        "creation.key-size",
                        CKR_TEMPLATE_INCONSISTENT,
                        format!("the template does not state the {what}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Type and size of a created key, from its real attributes (after unwrap,
    /// derive or copy with `verify_after`, or for `policy explain`). An unknown
    /// size is refused here: the object exists, and its attributes say.
    pub fn check_new_key(&self, key: &KeyFacts) -> Decision {
        let cp = &self.creation;
        match cp.check_material(key.class, key.key_type, key.bits, key.curve, false) {
            Material::Ok => Decision::allow(
                RuleRef::Builtin("creation.key-size"),
                "key type and size allowed",
            ),
            Material::Refused(rule, rv, why) => refuse(rule, rv, why),
            Material::Unknown(what) => refuse(
                "creation.key-size",
                CKR_TEMPLATE_INCONSISTENT,
                format!("the key's {what} is unknown"),
            ),
        }
    }
}
