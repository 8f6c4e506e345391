//! Enforce mode: `C_FindObjects` shows only the objects the caller may see
//! (docs/policy.md, "Visibility"; `Policy::may_see`). Both modes: a search without
//! `CKA_ID` leaves out versions superseded by rotation (docs/lifecycle.md).

use pkcs11_sys::*;

use super::lifecycle::search_view;
use super::{Call, Gateway};
use crate::backend::Backend;
use crate::error::{check_rv, Result};

impl Gateway {
    /// `C_FindObjectsInit`. `by_id`: the template has `CKA_ID`. Without it (a
    /// search by label, or an enumeration by class as libp11 makes for OpenSSL's
    /// `pkcs11:object=LABEL`), enforce mode leaves versions superseded by rotation
    /// out of the results, so a label resolves to the current version only
    /// (docs/lifecycle.md); with it, every live version is found.
    pub fn find_objects_init(
        &self,
        call: Call,
        by_id: bool,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        let result = self.find_objects_init_path(call, by_id, forward);
        self.settle(&call, result)
    }

    fn find_objects_init_path(
        &self,
        call: Call,
        by_id: bool,
        forward: impl FnOnce(&dyn Backend) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        check_rv(forward(&*self.backend))?;
        match (&self.enforcer, call.session) {
            (Some(e), Some(session)) => {
                log::debug!("C_FindObjectsInit: session {session}, by CKA_ID: {by_id}");
                e.lifecycle.search_started(session, !by_id);
            }
            (None, Some(session)) => self.guard_search_started(session, by_id),
            _ => {}
        }
        Ok(())
    }

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
        forward: impl FnOnce(&dyn Backend, Option<&mut [CK_OBJECT_HANDLE]>, &mut CK_ULONG) -> CK_RV,
    ) -> Result<()> {
        let result = self.find_objects_path(call, found, count, forward);
        self.settle(&call, result)
    }

    fn find_objects_path(
        &self,
        call: Call,
        mut found: Option<&mut [CK_OBJECT_HANDLE]>,
        count: &mut CK_ULONG,
        forward: impl FnOnce(&dyn Backend, Option<&mut [CK_OBJECT_HANDLE]>, &mut CK_ULONG) -> CK_RV,
    ) -> Result<()> {
        self.decide(&call)?;
        let session = call.session.unwrap_or(CK_INVALID_HANDLE);
        let Some(e) = &self.enforcer else {
            // Transparent: one forward, unless this search hides superseded
            // versions (an atomic load while none does).
            if !self.lifecycle.hides_superseded(session) {
                return check_rv(forward(&*self.backend, found, count));
            }
            let slot = match &found {
                Some(b) if !b.is_empty() => self.sessions.slot_of(session),
                _ => None,
            };
            let (Some(slot), Some(buf)) = (slot, found.as_deref_mut()) else {
                return check_rv(forward(&*self.backend, found, count));
            };
            let view = search_view(&self.lifecycle, &self.sessions, &*self.backend, slot);
            let visible = |h| self.guard_visible(view.as_ref(), slot, session, h);
            return self.find_filtered(session, buf, count, forward, visible);
        };
        // A NULL or empty buffer: nothing to filter, the token answers.
        let buf = match found {
            Some(b) if !b.is_empty() => b,
            other => return check_rv(forward(&*self.backend, other, count)),
        };
        let p = e.policy();
        let (slot, subject) = e.subject_of(&p, &call, None)?;
        let view = search_view(&e.lifecycle, &self.sessions, &*self.backend, slot);
        let hide_superseded = e.lifecycle.hides_superseded(session);
        let visible = |h| {
            e.facts
                .get(&*self.backend, slot, session, h)
                .is_ok_and(|facts| match &view {
                    Some(v) => {
                        let managed = v.lookup(&facts);
                        let superseded = managed.is_some_and(|m| !m.current);
                        !(hide_superseded && superseded)
                            && p.may_see(
                                &subject,
                                &crate::lifecycle::View::enrich(facts, managed.as_ref()),
                            )
                    }
                    None => p.may_see(&subject, &facts),
                })
        };
        self.find_filtered(session, buf, count, forward, visible)
    }

    /// The filtering loop: asks the backend until `buf` is full of objects
    /// `visible` keeps or the backend has no more.
    fn find_filtered(
        &self,
        session: CK_SESSION_HANDLE,
        buf: &mut [CK_OBJECT_HANDLE],
        count: &mut CK_ULONG,
        forward: impl FnOnce(&dyn Backend, Option<&mut [CK_OBJECT_HANDLE]>, &mut CK_ULONG) -> CK_RV,
        visible: impl Fn(CK_OBJECT_HANDLE) -> bool,
    ) -> Result<()> {
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
                Some(f) => f(&*self.backend, Some(rest), &mut n),
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
                if visible(h) {
                    if let Some(slot_i) = rest.get_mut(kept) {
                        *slot_i = h;
                    }
                    kept += 1;
                } else {
                    log::debug!(
                        "C_FindObjects: object {h} hidden (policy, or a superseded version)"
                    );
                }
            }
            filled += kept;
        }
        *count = CK_ULONG::try_from(filled).unwrap_or(0);
        Ok(())
    }
}
