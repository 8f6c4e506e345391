//! One record per cryptographic operation: [`OpTracker`] remembers each operation
//! from its `*Init` to the call that ends it, adding up byte counts, and hands back
//! the finished [`OpEvent`] to append.
//!
//! When an operation ends (PKCS#11 v2.40 §5.2 and each function's description):
//! - a single-part call (`C_Sign`, `C_Encrypt`, …) or a `*Final` ends it — except a
//!   size query (NULL output buffer answered `CKR_OK`) or `CKR_BUFFER_TOO_SMALL`,
//!   after which the application calls again;
//! - an `*Update` that fails with anything but `CKR_BUFFER_TOO_SMALL` ends it;
//! - closing its session (or all sessions of its slot) abandons it
//!   (`CKR_SESSION_CLOSED`), as does `C_SessionCancel` ([`OpTracker::abandon`]).
//!
//! Byte counts are added for calls that consumed their input (`CKR_OK`, and the
//! verdict `CKR_SIGNATURE_INVALID` of a verification).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Instant;

use pkcs11_sys::{CKR_BUFFER_TOO_SMALL, CKR_OK, CKR_SESSION_CLOSED, CKR_SIGNATURE_INVALID, CK_RV};

use super::record::{OpEvent, Rv};
use crate::functions::FunctionId;

/// The operations a session can have under way, and where each data call leaves
/// them, are the function table's (`functions::Effect`).
pub use crate::functions::OpKind;
use crate::functions::{Effect, Phase};

/// For a data call: its phase and the operations it feeds (the table's `effect`).
#[inline]
fn data_call(f: FunctionId) -> Option<(Phase, &'static [(OpKind, bool)])> {
    match f.effect() {
        Effect::Feeds(phase, feeds) => Some((phase, feeds)),
        _ => None,
    }
}

#[derive(Debug)]
struct InFlight {
    started: Instant,
    event: OpEvent,
}

impl InFlight {
    /// The record of the ended operation, completed in place (it is moved once,
    /// out of the tracker's map and into [`Ended`]).
    fn finish(&mut self, function: FunctionId, rv: CK_RV) {
        self.event.function = function;
        self.event.rv = Rv(rv);
        self.event.set_duration(self.started.elapsed());
    }

    fn finished(mut self, function: FunctionId, rv: CK_RV) -> OpEvent {
        self.finish(function, rv);
        self.event
    }
}

/// The operations one data call ended: none, one, or two (a dual-function
/// update). Inline, not a `Vec`: this is built on every data call.
#[derive(Debug, Default)]
pub struct Ended([Option<OpEvent>; 2]);

impl Ended {
    /// No operation ended.
    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }

    /// How many ended.
    pub fn len(&self) -> usize {
        self.0.iter().filter(|e| e.is_some()).count()
    }

    /// Hands each ended operation's slot to `f`, in order, stopping at the first
    /// error: `f` takes the record out of it where it lies (no move of the whole
    /// array, nor of the record before it is sent).
    pub fn try_each<E>(
        &mut self,
        mut f: impl FnMut(&mut Option<OpEvent>) -> Result<(), E>,
    ) -> Result<(), E> {
        for slot in &mut self.0 {
            if slot.is_some() {
                f(slot)?;
            }
        }
        Ok(())
    }
}

impl IntoIterator for Ended {
    type Item = OpEvent;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<OpEvent>, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// Shards of the tracker: threads working on different sessions take different
/// locks, on different cache lines (one lock for all made two signing threads hand
/// its line back and forth twice per operation).
const SHARDS: usize = 16;

type Ops = HashMap<(u64, OpKind), InFlight, crate::fasthash::FastHash>;

/// One shard's lock, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(parking_lot::Mutex<Ops>);

/// The operations under way, by session.
#[derive(Debug, Default)]
pub struct OpTracker {
    shards: [Shard; SHARDS],
}

impl OpTracker {
    /// No operations.
    pub fn new() -> OpTracker {
        OpTracker::default()
    }

    /// The shard of `session`'s operations (handles are small integers the token
    /// hands out: their low bits spread them).
    fn ops(&self, session: u64) -> parking_lot::MutexGuard<'_, Ops> {
        // The remainder is below SHARDS: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let i = (session % SHARDS as u64) as usize;
        // In bounds: `i` is a remainder of SHARDS.
        self.shards[i].0.lock()
    }

    /// After a `*Init` returned `CKR_OK`: remembers the operation. `template` is its
    /// record so far (slot, session, mechanism, key, identity, decision); `started`
    /// is when the `*Init` was called. Returns an operation the tracker still had
    /// for the session and kind (its end was missed), to record as it is.
    #[inline]
    pub fn begin(
        &self,
        session: u64,
        kind: OpKind,
        template: OpEvent,
        started: Instant,
    ) -> Option<OpEvent> {
        let fresh = InFlight {
            started,
            event: template,
        };
        match self.ops(session).entry((session, kind)) {
            Entry::Vacant(slot) => {
                slot.insert(fresh);
                None
            }
            Entry::Occupied(mut slot) => missed_end(slot.get_mut(), fresh),
        }
    }

    /// After a data call: adds its bytes and returns the operations it ended (none,
    /// one, or two for the dual-function updates). `size_query`: the output buffer
    /// was NULL.
    pub fn data(
        &self,
        session: u64,
        function: FunctionId,
        rv: CK_RV,
        bytes_in: u64,
        bytes_out: u64,
        size_query: bool,
    ) -> Ended {
        let mut done = Ended::default();
        let io = (bytes_in, bytes_out, size_query);
        self.data_into(session, function, rv, io, &mut done);
        done
    }

    /// [`OpTracker::data`] into `done` (empty), where the caller keeps it: a
    /// two-record array returned by value is copied whole. `io` is the call's
    /// input and output bytes and whether it was a size query.
    pub fn data_into(
        &self,
        session: u64,
        function: FunctionId,
        rv: CK_RV,
        (bytes_in, bytes_out, size_query): (u64, u64, bool),
        done: &mut Ended,
    ) {
        let Some((phase, feeds)) = data_call(function) else {
            return;
        };
        let again = rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && size_query);
        let consumed = !again && (rv == CKR_OK || rv == CKR_SIGNATURE_INVALID);
        let ends = !again && (phase == Phase::Last || rv != CKR_OK);
        // A dual-function update feeds a cipher (which has the call's input and
        // output) and a digest/sign/verify (which has one of them as its input and
        // no output); a single operation has both.
        let add = |event: &mut OpEvent, kind: OpKind, counts_input: bool| {
            let (i, o) = if feeds.len() == 2 && !counts_input {
                (bytes_out, 0)
            } else if feeds.len() == 2 && kind != OpKind::Encrypt && kind != OpKind::Decrypt {
                (bytes_in, 0)
            } else {
                (bytes_in, bytes_out)
            };
            event.bytes_in = event.bytes_in.saturating_add(i);
            event.bytes_out = event.bytes_out.saturating_add(o);
        };
        let mut ops = self.ops(session);
        let mut n = 0;
        for &(kind, counts_input) in feeds {
            // One lookup; an ended record is completed in the map and moved once.
            let Entry::Occupied(mut entry) = ops.entry((session, kind)) else {
                continue;
            };
            let op = entry.get_mut();
            if consumed {
                add(&mut op.event, kind, counts_input);
            }
            if ends {
                op.finish(function, rv);
                // At most two feeds: `n` is 0 or 1.
                if let Some(slot) = done.0.get_mut(n) {
                    *slot = Some(entry.remove().event);
                    n += 1;
                }
            }
        }
    }

    /// Ends one operation without a final call (`C_SessionCancel`, an error the
    /// gateway detected): recorded with `rv`.
    pub fn abandon(
        &self,
        session: u64,
        kind: OpKind,
        function: FunctionId,
        rv: CK_RV,
    ) -> Option<OpEvent> {
        self.ops(session)
            .remove(&(session, kind))
            .map(|op| op.finished(function, rv))
    }

    /// `C_CloseSession`: its operations end with `CKR_SESSION_CLOSED` (they are all
    /// in the session's shard).
    pub fn close_session(&self, session: u64, function: FunctionId) -> Vec<OpEvent> {
        let mut ended = Vec::new();
        take_where(
            &mut self.ops(session),
            |s, _| s == session,
            function,
            &mut ended,
        );
        ended
    }

    /// `C_CloseAllSessions(slot)`, or `C_Finalize` with `None`: every operation of
    /// that slot (or all) ends with `CKR_SESSION_CLOSED`.
    pub fn close_slot(&self, slot: Option<u64>, function: FunctionId) -> Vec<OpEvent> {
        let mut ended = Vec::new();
        for shard in &self.shards {
            let pick = |_, op: &InFlight| slot.is_none() || op.event.slot == slot;
            take_where(&mut shard.0.lock(), pick, function, &mut ended);
        }
        ended
    }

    /// How many operations are under way.
    pub fn in_flight(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }
}

/// [`OpTracker::begin`] found an operation under way: `fresh` takes its place, and
/// the one it replaces ends with `CKR_SESSION_CLOSED`.
#[cold]
fn missed_end(slot: &mut InFlight, fresh: InFlight) -> Option<OpEvent> {
    let p = std::mem::replace(slot, fresh);
    let f = p.event.function;
    Some(p.finished(f, CKR_SESSION_CLOSED))
}

/// Takes the operations `pick` selects out of one shard, ended with
/// `CKR_SESSION_CLOSED`, into `ended`.
fn take_where(
    ops: &mut Ops,
    pick: impl Fn(u64, &InFlight) -> bool,
    function: FunctionId,
    ended: &mut Vec<OpEvent>,
) {
    let keys: Vec<(u64, OpKind)> = ops
        .iter()
        .filter(|((s, _), op)| pick(*s, op))
        .map(|(k, _)| *k)
        .collect();
    ended.extend(
        keys.into_iter()
            .filter_map(|k| ops.remove(&k))
            .map(|op| op.finished(function, CKR_SESSION_CLOSED)),
    );
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
