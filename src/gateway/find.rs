//! Enforce mode: `C_FindObjects` shows only the objects the caller may see
//! (docs/policy.md, "Visibility"; `Policy::may_see`).

use pkcs11_sys::*;

use super::{Call, Gateway};
use crate::backend::Backend;
use crate::error::{check_rv, Result};

impl Gateway {
    /// `C_FindObjects`. Transparent: one forward. Enforce: the backend is asked
    /// again until the caller's buffer is full or the backend has no more, so a
    /// count of 0 still means "no more objects" (v2.40 §5.7) even when a whole
    /// batch was hidden. An object whose facts cannot be read is hidden (fail
    /// closed); it is still checked at use if the caller has its handle.
    pub fn find_objects(
        &self,
        call: Call,
        found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
        forward: impl FnOnce(&Backend, Option<&mut [CK_OBJECT_HANDLE]>, &mut CK_ULONG) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        let Some(e) = &self.enforcer else {
            return check_rv(forward(&self.backend, found, count));
        };
        // A NULL or empty buffer: nothing to filter, the token answers.
        let buf = match found {
            Some(b) if !b.is_empty() => b,
            other => return check_rv(forward(&self.backend, other, count)),
        };
        let p = e.policy();
        let (slot, subject) = e.subject_of(&p, &call, None)?;
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let mut filled = 0usize;
        let mut forward = Some(forward);
        while filled < buf.len() {
            let Some(rest) = buf.get_mut(filled..) else {
                break;
            };
            let asked = rest.len();
            let mut n: CK_ULONG = 0;
            // The first round through the handler's closure, later ones directly.
            let rv = match forward.take() {
                Some(f) => f(&self.backend, Some(rest), &mut n),
                None => self.backend.find_objects(session, Some(rest), &mut n),
            };
            check_rv(rv)?;
            let n = usize::try_from(n).unwrap_or(0).min(asked);
            if n == 0 {
                break;
            }
            let Some(rest) = buf.get_mut(filled..filled + n) else {
                break;
            };
            let mut kept = 0usize;
            for i in 0..n {
                let Some(&h) = rest.get(i) else { break };
                let visible = e
                    .facts
                    .get(&self.backend, slot, session, h)
                    .is_ok_and(|facts| p.may_see(&subject, &facts));
                if visible {
                    if let Some(slot_i) = rest.get_mut(kept) {
                        *slot_i = h;
                    }
                    kept += 1;
                } else {
                    log::debug!("C_FindObjects: object {h} hidden by policy");
                }
            }
            filled += kept;
        }
        *count = CK_ULONG::try_from(filled).unwrap_or(0);
        Ok(())
    }
}
