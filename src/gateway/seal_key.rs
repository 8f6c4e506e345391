//! The audit seal key is Keywarden's own (docs/audit.md, "The token-backed seal
//! key"): with `[audit] seal_token` set, every key use, copy, edit and destruction
//! of its objects through the module is refused to every caller, in both policy
//! modes, before anything reaches the token. Only `audit::TokenSealer`, which calls
//! the backend directly, uses it.
//!
//! The objects are recognised on the seal token's slot by the `CKA_ID` and
//! `CKA_LABEL` the sealer looks for ([`SEAL_KEY_ID`], [`SEAL_KEY_LABEL`]): the key's
//! own attributes are not modifiable (`init-seal-key` makes them so) and the gateway
//! refuses edits of them and creations that would carry them
//! (`versions.rs`; in transparent mode while the store manages some key, when
//! templates are decoded), so no caller can take the key out of this check.
//! In enforce mode the cached facts answer (no extra token call); in transparent
//! mode one `C_GetAttributeValue` per key use on that slot does.

use pkcs11_sys::*;

use super::record::Recorder;
use super::{Call, Enforcer};
use crate::audit::{SEAL_KEY_ID, SEAL_KEY_LABEL};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::policy::{Decision, Op, RuleRef};

/// The built-in rule of these refusals.
const RULE: &str = "audit.seal-key";

/// Whether a template (or an object's attributes) names the seal key: its
/// `CKA_ID` or its `CKA_LABEL`.
pub(super) fn is_reserved(id: Option<&[u8]>, label: Option<&[u8]>) -> bool {
    id == Some(SEAL_KEY_ID) || label == Some(SEAL_KEY_LABEL.as_bytes())
}

/// The seal token's slot, found at start.
#[derive(Debug, Clone, Copy)]
pub(super) struct SealGuard {
    slot: CK_SLOT_ID,
}

impl SealGuard {
    /// The guard of the configured seal token (`None` without `seal_token`).
    pub(super) fn start(config: &crate::config::Config, backend: &Backend) -> Result<Option<Self>> {
        let Some(label) = &config.audit.seal_token else {
            return Ok(None);
        };
        Ok(Some(SealGuard {
            slot: backend.slot_by_token_label(label)?,
        }))
    }

    /// Refuses the call when it uses, copies, edits or destroys an object of the
    /// seal key.
    pub(super) fn check(
        &self,
        backend: &Backend,
        audit: &Recorder,
        enforcer: Option<&Enforcer>,
        call: &Call,
    ) -> Result<()> {
        let Some(op) = Op::for_function(call.function) else {
            return Ok(());
        };
        let rv = op.refusal_rv();
        if rv != CKR_KEY_FUNCTION_NOT_PERMITTED && rv != CKR_ACTION_PROHIBITED {
            return Ok(());
        }
        let Some(session) = call.session else {
            return Ok(());
        };
        if audit.slot_of(session) != Some(self.slot) {
            return Ok(());
        }
        for object in [call.object, call.other].into_iter().flatten() {
            if seal_object(backend, enforcer, self.slot, session, object) {
                return Err(refuse(audit, enforcer, call, op, rv));
            }
        }
        Ok(())
    }
}

/// Whether `object` is one of the seal key's (an unreadable object is not: the
/// token answers for it, and enforce mode refuses it on its own).
fn seal_object(
    backend: &Backend,
    enforcer: Option<&Enforcer>,
    slot: CK_SLOT_ID,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) -> bool {
    if let Some(e) = enforcer {
        return e.facts.get(backend, slot, session, object).is_ok_and(|f| {
            f.id.as_deref() == Some(SEAL_KEY_ID) && f.label.as_deref() == Some(SEAL_KEY_LABEL)
        });
    }
    // One read of both values, into buffers one byte longer than the seal key's:
    // a longer value does not fit (CKR_BUFFER_TOO_SMALL marks it unavailable, §5.7)
    // and is not the seal key's.
    let mut id = [0u8; SEAL_KEY_ID.len() + 1];
    let mut label = [0u8; SEAL_KEY_LABEL.len() + 1];
    let room = |n: usize| CK_ULONG::try_from(n).unwrap_or(0);
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: id.as_mut_ptr().cast(),
            ulValueLen: room(id.len()),
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: room(label.len()),
        },
    ];
    match backend.get_attribute_value(session, object, Some(&mut template)) {
        CKR_OK | CKR_BUFFER_TOO_SMALL | CKR_ATTRIBUTE_TYPE_INVALID | CKR_ATTRIBUTE_SENSITIVE => {}
        _ => return false,
    }
    let value = |a: &CK_ATTRIBUTE, buf: &[u8]| -> Option<Vec<u8>> {
        let n = usize::try_from(a.ulValueLen).ok()?;
        (a.ulValueLen != CK_UNAVAILABLE_INFORMATION)
            .then(|| buf.get(..n).map(<[u8]>::to_vec))
            .flatten()
    };
    value(&template[0], &id).as_deref() == Some(SEAL_KEY_ID)
        && value(&template[1], &label).as_deref() == Some(SEAL_KEY_LABEL.as_bytes())
}

fn refuse(audit: &Recorder, enforcer: Option<&Enforcer>, call: &Call, op: Op, rv: CK_RV) -> Error {
    let reason =
        "the audit seal key is Keywarden's own: no caller may use, copy, edit or destroy it";
    match enforcer {
        // Through the one refusal path (logged, recorded with its rule).
        Some(e) => e.refuse(
            call,
            Some(op),
            &Decision {
                allow: false,
                rule: RuleRef::Builtin(RULE),
                reason: reason.into(),
                rv,
            },
        ),
        None => {
            log::info!(
                "{}: refused by rule {RULE} ({}): {reason}; session {:?}, object {:?}",
                call.function.name(),
                op.name(),
                call.session,
                call.object
            );
            // Recorded with its rule, as every refusal.
            if let Err(e) = audit.refused(None, call, rv, RULE, None) {
                return e;
            }
            Error::Refused {
                rv,
                rule: RULE.to_owned(),
            }
        }
    }
}
