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
//! The object's facts come from the cache the audit record and the lifecycle read
//! anyway (the enforcer's in enforce mode, the recorder's in transparent mode):
//! at most one `C_GetAttributeValue` per handle.

use pkcs11_sys::*;

use super::facts_cache::FactsCache;
use super::session_table::SessionTable;
use super::Call;
use crate::audit::{SEAL_KEY_ID, SEAL_KEY_LABEL};
use crate::backend::Backend;
use crate::error::Result;
use crate::lifecycle::LcRefusal;
use crate::policy::Op;

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
    pub(super) fn start(
        config: &crate::config::Config,
        backend: &dyn Backend,
    ) -> Result<Option<Self>> {
        let Some(label) = &config.audit.seal_token else {
            return Ok(None);
        };
        Ok(Some(SealGuard {
            slot: backend.slot_by_token_label(label)?,
        }))
    }

    /// The refusal of a call that uses, copies, edits or destroys an object of the
    /// seal key, for the caller's one refusal path; `None` for any other call.
    pub(super) fn check(
        &self,
        backend: &dyn Backend,
        sessions: &SessionTable,
        facts: &FactsCache,
        call: &Call,
    ) -> Option<(Op, LcRefusal)> {
        let op = Op::for_function(call.function)?;
        let rv = op.refusal_rv();
        if rv != CKR_KEY_FUNCTION_NOT_PERMITTED && rv != CKR_ACTION_PROHIBITED {
            return None;
        }
        let session = call.session?;
        if sessions.slot_of(session) != Some(self.slot) {
            return None;
        }
        // An unreadable object is not the seal key's: the token answers for it.
        let is_seal = |object| {
            facts
                .get(backend, self.slot, session, object)
                .is_ok_and(|f| {
                    f.id.as_deref() == Some(SEAL_KEY_ID)
                        && f.label.as_deref() == Some(SEAL_KEY_LABEL)
                })
        };
        [call.object, call.other]
            .into_iter()
            .flatten()
            .any(is_seal)
            .then(|| {
                (
                    op,
                    LcRefusal {
                        rule: RULE,
                        rv,
                        reason: "the audit seal key is Keywarden's own: no caller may use, \
                                 copy, edit or destroy it"
                            .into(),
                    },
                )
            })
    }
}
