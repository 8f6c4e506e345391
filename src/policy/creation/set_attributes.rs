//! The decision on `C_SetAttributeValue`: an edit may not loosen a key.

use pkcs11_sys::*;

use super::checks::is_private_or_secret;
use super::decide::refuse;
use super::facts::lossy;
use crate::abi::Template;
use crate::policy::compile::Policy;
use crate::policy::matchers::MechArg;
use crate::policy::model::{Decision, KeyFacts, Op};
use crate::policy::subject::Subject;

impl Policy {
    /// The decision on `C_SetAttributeValue`: the `set-attribute` rule for the
    /// key, then no loosening: `CKA_SENSITIVE` may not become FALSE,
    /// `CKA_EXTRACTABLE` may not become TRUE, a `[creation] set` attribute may
    /// not be turned against policy, and a new label may not lower the key's
    /// classification or move it to another owner. Refusals are
    /// `CKR_ACTION_PROHIBITED`.
    pub fn decide_set_attributes(
        &self,
        subject: &Subject,
        key: &KeyFacts,
        template: &Template<'_>,
    ) -> Decision {
        self.with_fresh(subject, |s| {
            let ctx = self.key_ctx(key);
            let mut now = self.now();
            let d = self.decide_in(s, Op::SetAttribute, Some(&ctx), MechArg::None, &mut now);
            if !d.allow {
                return d;
            }
            let loosen =
                |why: String| refuse("set-attribute.loosening", CKR_ACTION_PROHIBITED, why);
            if template.sensitive() == Some(false) && key.sensitive != Some(false) {
                return loosen("CKA_SENSITIVE may not be set to FALSE".into());
            }
            if template.extractable() == Some(true) && key.extractable != Some(true) {
                return loosen("CKA_EXTRACTABLE may not be set to TRUE".into());
            }
            if is_private_or_secret(key.class) {
                if let Some(&(attr, want)) = self
                    .creation
                    .set
                    .iter()
                    .find(|(a, w)| template.flag(*a) == Some(!*w))
                {
                    return loosen(format!(
                        "{} must stay {want} (creation.set)",
                        crate::abi::attribute_name(attr)
                    ));
                }
            }
            if template.label().is_some() {
                let mut renamed = key.clone();
                renamed.label = lossy(template.label());
                let new = self.key_ctx(&renamed);
                if new.level < ctx.level {
                    return loosen(format!(
                        "the new label would lower the key from {} to {}",
                        ctx.level, new.level
                    ));
                }
                let owner = |k: Option<u16>| {
                    k.and_then(|i| self.keysets.get(usize::from(i)))
                        .and_then(|k| k.owner)
                };
                if owner(new.keyset) != owner(ctx.keyset) {
                    return loosen("the new label would move the key to another owner".into());
                }
                if let Some(why) = self.creation.check_label(renamed.label.as_deref()) {
                    return loosen(why);
                }
            }
            d
        })
    }
}
