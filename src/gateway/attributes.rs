//! `C_GetAttributeValue` and the secret-valued attributes (docs/policy.md,
//! "Enforcement points"): reading `CKA_VALUE`, a private exponent or a prime of a
//! key is the policy operation `read-sensitive-attribute`. When it is refused, the
//! token is asked only for the other attributes and the secret ones come back as
//! `CK_UNAVAILABLE_INFORMATION` with `CKR_ATTRIBUTE_SENSITIVE` (§5.7), as a token
//! answers for a sensitive attribute: the caller's other attributes are filled.

use pkcs11_sys::*;

use super::{Call, Gateway};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::policy::{is_secret_attribute, Op};

impl Gateway {
    /// `C_GetAttributeValue`: `template` is the caller's, filled in place by the
    /// token through `forward`.
    pub fn get_attributes(
        &self,
        call: Call,
        template: Option<&mut [CK_ATTRIBUTE]>,
        forward: impl FnOnce(&dyn Backend, Option<&mut [CK_ATTRIBUTE]>) -> CK_RV,
    ) -> Result<()> {
        let asks_secret = self.enforcing()
            && template
                .as_deref()
                .is_some_and(|t| t.iter().any(|a| is_secret_attribute(a.type_)));
        let template = match template {
            Some(t) if asks_secret && !self.may_read_secret(call)? => t,
            other => return self.call(call, |b| forward(b, other)),
        };
        // Refused: the token is asked only for the lengths of the secret
        // attributes (NULL pValue) and the caller sees them as unavailable.
        let mut copy: Vec<CK_ATTRIBUTE> = template
            .iter()
            .map(|a| {
                if is_secret_attribute(a.type_) {
                    CK_ATTRIBUTE {
                        pValue: std::ptr::null_mut(),
                        ulValueLen: 0,
                        ..*a
                    }
                } else {
                    *a
                }
            })
            .collect();
        let result = self.call(call, |b| forward(b, Some(&mut copy)));
        for (dst, src) in template.iter_mut().zip(&copy) {
            dst.ulValueLen = if is_secret_attribute(dst.type_) {
                CK_UNAVAILABLE_INFORMATION
            } else {
                src.ulValueLen
            };
        }
        // §5.7: with several per-attribute problems any of their codes may be
        // returned; a token error wins, else the refusal's code.
        result.and(Err(Error::Backend(CKR_ATTRIBUTE_SENSITIVE)))
    }

    /// Whether `read-sensitive-attribute` is allowed on the call's object (always
    /// in transparent mode). A refusal is recorded, and answered by withholding the
    /// secret attributes.
    fn may_read_secret(&self, call: Call) -> Result<bool> {
        let Some(e) = &self.enforcer else {
            return Ok(true);
        };
        let decided = e.decide_key(
            &*self.backend,
            &call,
            Op::ReadSensitive,
            Some(call.object.unwrap_or(CK_INVALID_HANDLE)),
        );
        match self.settle(&call, decided) {
            Ok(()) => Ok(true),
            Err(Error::Refused { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
