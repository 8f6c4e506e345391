//! The gateway follows what a successful call changed, in one place and the same
//! way in both policy modes: the session table (sessions opened and closed, logins),
//! the facts cache (objects edited or destroyed, session objects gone with their
//! session, a re-initialised token), the decision memo and the lifecycle's
//! per-session state. The stages read this state; only these functions change it.

use pkcs11_sys::*;

use super::{Call, Gateway};
use crate::functions::{Effect, FunctionId as F};
use crate::policy::Login;

impl Gateway {
    /// A session the backend just opened on `slot`.
    pub(super) fn session_opened(&self, slot: CK_SLOT_ID, session: CK_SESSION_HANDLE) {
        self.sessions.opened(slot, session, || {
            super::session_table::read_serial(&*self.backend, slot)
        });
    }

    /// After a successful `C_CloseSession`, `C_CloseAllSessions` or `C_Logout`.
    /// §5.6: closing every session of a slot logs the application out; §6.7: session
    /// objects die with their session, and once no session of the slot remains the
    /// token may reissue any handle, so the slot's cached facts go.
    pub(super) fn follow_sessions(&self, call: &Call) {
        let memo = self.enforcer.as_ref().map(|e| &e.memo);
        match (call.function.effect(), call.session, call.slot) {
            (Effect::EndsSession, Some(session), _) => {
                self.lifecycle.session_closed(session);
                if let Some(m) = memo {
                    m.forget_session(session);
                }
                match self.sessions.closed(session) {
                    Some((slot, true)) => self.facts.forget_slot(slot),
                    Some((slot, false)) => self.facts.forget_session_objects(slot),
                    None => {}
                }
            }
            (Effect::EndsSlot, _, Some(slot)) => {
                self.sessions.closed_all(slot);
                if let Some(m) = memo {
                    m.forget_all();
                }
                self.facts.forget_slot(slot);
            }
            (_, Some(session), _) if call.function == F::C_Logout => match &self.enforcer {
                Some(e) => self
                    .sessions
                    .set_login(Some(&e.policy()), session, Login::Public, None),
                None => self.sessions.set_login(None, session, Login::Public, None),
            },
            _ => {}
        }
    }

    /// After any other successful forward: objects a call changed are read afresh.
    /// Most calls change none: one comparison here, the rest out of line.
    #[inline(always)]
    pub(super) fn follow_objects(&self, call: &Call) {
        if matches!(
            call.function,
            F::C_DestroyObject | F::C_SetAttributeValue | F::C_InitToken
        ) {
            self.follow_changed_objects(call);
        }
    }

    #[inline(never)]
    fn follow_changed_objects(&self, call: &Call) {
        match (call.function, call.session, call.slot) {
            (F::C_DestroyObject | F::C_SetAttributeValue, Some(session), _) => {
                if let (Some(slot), Some(object)) = (self.sessions.slot_of(session), call.object) {
                    self.facts.forget(slot, object);
                }
            }
            // A re-initialised token has none of its old objects, and may have a
            // new serial.
            (F::C_InitToken, _, Some(slot)) => {
                self.facts.forget_slot(slot);
                self.sessions.token_reinitialised(slot);
                if let Some(e) = &self.enforcer {
                    e.memo.forget_all();
                }
            }
            _ => {}
        }
    }
}
