//! The facts policy decides on, per object, read from the token once and cached.
//!
//! Keyed by (slot, object handle): object handles are the application's view of
//! one token (v2.40 §2.4: a handle is valid in every session of the application
//! with that token). Entries are dropped on `C_DestroyObject` and
//! `C_SetAttributeValue` of the object, and session objects of a slot on
//! `C_CloseSession`/`C_CloseAllSessions` (session objects die with their session,
//! §6.7, and their handles may be reused); a freshly created object replaces any
//! entry under its handle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use pkcs11_sys::*;

use crate::abi::EcCurve;
use crate::backend::Backend;
use crate::fasthash::FastHash;
use crate::policy::KeyFacts;

/// One cached object: its facts, and whether it is a token object.
#[derive(Debug, Clone)]
struct Entry {
    facts: Arc<KeyFacts>,
    token: bool,
}

/// The facts cache.
#[derive(Debug, Default)]
pub(super) struct FactsCache {
    map: RwLock<HashMap<(CK_SLOT_ID, CK_OBJECT_HANDLE), Entry, FastHash>>,
    /// Set when a session object is cached, cleared when none is left: most
    /// `C_CloseSession`s then find nothing to forget without taking the lock.
    session_objects: AtomicBool,
}

/// Why facts could not be read: the backend's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FactsError(pub CK_RV);

impl FactsCache {
    /// The facts of `object`, from the cache or read through `session`. The read
    /// happens without any lock held.
    pub(super) fn get(
        &self,
        backend: &dyn Backend,
        slot: CK_SLOT_ID,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<Arc<KeyFacts>, FactsError> {
        if let Some(e) = self.map.read().get(&(slot, object)) {
            return Ok(Arc::clone(&e.facts));
        }
        let (facts, token) = read_facts(backend, session, object)?;
        let facts = Arc::new(facts);
        let mut map = self.map.write();
        map.insert(
            (slot, object),
            Entry {
                facts: Arc::clone(&facts),
                token,
            },
        );
        if !token {
            // Under the lock, so a concurrent forget cannot clear it after the insert.
            self.session_objects.store(true, Ordering::Release);
        }
        Ok(facts)
    }

    /// The cached facts of `object`, without asking the token.
    pub(super) fn peek(&self, slot: CK_SLOT_ID, object: CK_OBJECT_HANDLE) -> Option<Arc<KeyFacts>> {
        self.map
            .read()
            .get(&(slot, object))
            .map(|e| Arc::clone(&e.facts))
    }

    /// Forgets one object (destroyed, or its attributes changed, or a new object
    /// now has this handle).
    pub(super) fn forget(&self, slot: CK_SLOT_ID, object: CK_OBJECT_HANDLE) {
        self.map.write().remove(&(slot, object));
    }

    /// Forgets every object of a slot: no session of it remains open, after which a
    /// token may reissue handles (SoftHSM drops its handle table for the slot).
    pub(super) fn forget_slot(&self, slot: CK_SLOT_ID) {
        let mut map = self.map.write();
        map.retain(|(s, _), _| *s != slot);
        self.note_session_objects(&map);
    }

    /// Forgets the session objects of a slot (a session closed).
    #[inline]
    pub(super) fn forget_session_objects(&self, slot: CK_SLOT_ID) {
        if !self.session_objects.load(Ordering::Acquire) {
            return;
        }
        let mut map = self.map.write();
        map.retain(|(s, _), e| *s != slot || e.token);
        self.note_session_objects(&map);
    }

    /// Under the write lock: whether any session object is still cached.
    fn note_session_objects(&self, map: &HashMap<(CK_SLOT_ID, CK_OBJECT_HANDLE), Entry, FastHash>) {
        let any = map.values().any(|e| !e.token);
        self.session_objects.store(any, Ordering::Release);
    }
}

/// The code a call is refused with when its object's facts could not be read
/// (`rv`, the token's answer): a handle the token does not know is answered as
/// the token would, any other failure with the operation's code (never allow on
/// an error).
pub(super) fn facts_error_rv(op: crate::policy::Op, rv: CK_RV) -> CK_RV {
    use crate::policy::Op;
    match rv {
        CKR_OBJECT_HANDLE_INVALID
            if !matches!(
                op,
                Op::Destroy | Op::Copy | Op::SetAttribute | Op::ReadSensitive
            ) =>
        {
            CKR_KEY_HANDLE_INVALID
        }
        CKR_OBJECT_HANDLE_INVALID
        | CKR_SESSION_HANDLE_INVALID
        | CKR_SESSION_CLOSED
        | CKR_CRYPTOKI_NOT_INITIALIZED => rv,
        _ => op.refusal_rv(),
    }
}

/// Room for the variable-length attributes; a longer value is read in a second
/// call with its exact length.
const LABEL_ROOM: usize = 128;
const ID_ROOM: usize = 64;
const BIG_ROOM: usize = 1040; // an 8192-bit modulus or prime, or long EC params

fn ulong(b: &[u8]) -> Option<CK_ULONG> {
    b.try_into().ok().map(CK_ULONG::from_ne_bytes)
}

fn flag(b: &[u8]) -> Option<bool> {
    match b {
        [v] => Some(*v != CK_FALSE),
        _ => None,
    }
}

fn bits_of(b: &[u8]) -> u32 {
    let significant = b.iter().skip_while(|x| **x == 0).count();
    u32::try_from(significant.saturating_mul(8)).unwrap_or(u32::MAX)
}

/// Reads the facts of one object in one `C_GetAttributeValue` (two for an
/// unusually long value). Per §5.7 the token fills every attribute it can and marks
/// the others `CK_UNAVAILABLE_INFORMATION`, answering `CKR_ATTRIBUTE_TYPE_INVALID`,
/// `CKR_ATTRIBUTE_SENSITIVE` or `CKR_BUFFER_TOO_SMALL`: those are normal here
/// (a certificate has no key type). Any other code is an error.
fn read_facts(
    backend: &dyn Backend,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) -> Result<(KeyFacts, bool), FactsError> {
    let values = FactValues::read(backend, session, object)?;
    let get = |ty| values.get(ty);
    let key_type = get(CKA_KEY_TYPE).and_then(ulong);
    let facts = KeyFacts {
        class: get(CKA_CLASS).and_then(ulong),
        key_type,
        label: get(CKA_LABEL).map(|b| String::from_utf8_lossy(b).into_owned()),
        id: get(CKA_ID).map(<[u8]>::to_vec),
        classification: None,
        sensitive: get(CKA_SENSITIVE).and_then(flag),
        extractable: get(CKA_EXTRACTABLE).and_then(flag),
        bits: key_bits(key_type, &get),
        curve: get(CKA_EC_PARAMS).and_then(EcCurve::from_ec_params),
    };
    let token = get(CKA_TOKEN).and_then(flag).unwrap_or(false);
    Ok((facts, token))
}

/// The attributes [`read_facts`] asks for.
const FACT_TYPES: [CK_ATTRIBUTE_TYPE; 11] = [
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_VALUE_LEN,
    CKA_MODULUS_BITS,
    CKA_LABEL,
    CKA_ID,
    CKA_MODULUS,
    CKA_EC_PARAMS,
];

/// The room first offered for an attribute's value.
fn room_of(ty: CK_ATTRIBUTE_TYPE) -> usize {
    match ty {
        CKA_CLASS | CKA_KEY_TYPE | CKA_VALUE_LEN | CKA_MODULUS_BITS => {
            std::mem::size_of::<CK_ULONG>()
        }
        CKA_TOKEN | CKA_SENSITIVE | CKA_EXTRACTABLE => 1,
        CKA_LABEL => LABEL_ROOM,
        CKA_ID => ID_ROOM,
        _ => BIG_ROOM,
    }
}

/// The values of [`FACT_TYPES`] as the token gave them.
struct FactValues {
    /// The filled length of each, `None` when unavailable.
    values: Vec<Option<usize>>,
    bufs: Vec<Vec<u8>>,
}

impl FactValues {
    /// One query with the first rooms, and one more for each variable-length value
    /// that did not fit.
    fn read(
        backend: &dyn Backend,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<FactValues, FactsError> {
        let mut bufs: Vec<Vec<u8>> = FACT_TYPES.iter().map(|t| vec![0u8; room_of(*t)]).collect();
        let (mut values, rv) = query(backend, session, object, &FACT_TYPES, &mut bufs)?;
        if rv == CKR_BUFFER_TOO_SMALL {
            // Some variable-length value was longer than its room: ask for each missing
            // one again with its exact length (rare: labels over 128 bytes and such).
            for (i, ty) in FACT_TYPES.iter().enumerate() {
                if values[i].is_some() || room_of(*ty) <= 1 + std::mem::size_of::<CK_ULONG>() {
                    continue;
                }
                if let Some(len) = probe_len(backend, session, object, *ty)? {
                    let mut one = [vec![0u8; len]];
                    let (v, _) = query(backend, session, object, &[*ty], &mut one)?;
                    values[i] = v.into_iter().next().flatten();
                    let [b] = one;
                    bufs[i] = b;
                }
            }
        }
        Ok(FactValues { values, bufs })
    }

    /// The value of one attribute, if the token gave it.
    fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        let i = FACT_TYPES.iter().position(|t| *t == ty)?;
        let len = self.values[i]?;
        self.bufs[i].get(..len)
    }
}

/// A key's size in bits, from the attributes its key type records it in.
fn key_bits<'a>(
    key_type: Option<CK_KEY_TYPE>,
    get: &impl Fn(CK_ATTRIBUTE_TYPE) -> Option<&'a [u8]>,
) -> Option<u32> {
    match key_type {
        Some(CKK_RSA) => get(CKA_MODULUS_BITS)
            .and_then(ulong)
            .map(|b| u32::try_from(b).unwrap_or(u32::MAX))
            .or_else(|| get(CKA_MODULUS).map(bits_of)),
        Some(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY) => None,
        // A length of 0 means the token did not record it (SoftHSM 2.6 leaves it 0
        // on unwrapped keys): unknown, which policy treats as refused.
        Some(_) => get(CKA_VALUE_LEN)
            .and_then(ulong)
            .filter(|b| *b != 0)
            .map(|b| u32::try_from(b.saturating_mul(8)).unwrap_or(u32::MAX)),
        None => None,
    }
}

/// One `C_GetAttributeValue` into `bufs`; the filled length of each attribute, or
/// `None` when the token marked it unavailable.
fn query(
    backend: &dyn Backend,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
    bufs: &mut [Vec<u8>],
) -> Result<(Vec<Option<usize>>, CK_RV), FactsError> {
    let mut template: Vec<CK_ATTRIBUTE> = types
        .iter()
        .zip(bufs.iter_mut())
        .map(|(ty, b)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: b.as_mut_ptr().cast(),
            ulValueLen: CK_ULONG::try_from(b.len()).unwrap_or(0),
        })
        .collect();
    let rv = backend.get_attribute_value(session, object, Some(&mut template));
    match rv {
        CKR_OK | CKR_ATTRIBUTE_TYPE_INVALID | CKR_ATTRIBUTE_SENSITIVE | CKR_BUFFER_TOO_SMALL => {}
        other => return Err(FactsError(other)),
    }
    let lens = template
        .iter()
        .zip(bufs.iter())
        .map(|(a, b)| {
            usize::try_from(a.ulValueLen)
                .ok()
                .filter(|n| a.ulValueLen != CK_UNAVAILABLE_INFORMATION && *n <= b.len())
        })
        .collect();
    Ok((lens, rv))
}

/// The length of one attribute (NULL `pValue`), `None` when unavailable.
fn probe_len(
    backend: &dyn Backend,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> Result<Option<usize>, FactsError> {
    let mut t = [CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    }];
    let rv = backend.get_attribute_value(session, object, Some(&mut t));
    match rv {
        CKR_OK => Ok(usize::try_from(t[0].ulValueLen)
            .ok()
            .filter(|_| t[0].ulValueLen != CK_UNAVAILABLE_INFORMATION)),
        CKR_ATTRIBUTE_TYPE_INVALID | CKR_ATTRIBUTE_SENSITIVE => Ok(None),
        other => Err(FactsError(other)),
    }
}
