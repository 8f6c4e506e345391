//! A scripted test double of a token, for the unit tests of the gateway pipeline:
//! an in-memory token behind the [`Backend`] trait, with a fault script.
//!
//! It models what the gateway's decisions and records depend on, and no more:
//! one slot with an initialised token, sessions and login state, objects with
//! attributes (search, `C_GetAttributeValue` with the §5.7 rules, create, copy,
//! edit, destroy, generate), and operations started by an `*Init` and fed by data
//! calls, producing deterministic bytes with the §5.2 buffer rules (a NULL buffer
//! asks for the length, a short one is `CKR_BUFFER_TOO_SMALL` with the length;
//! neither ends the operation). A signature is [`signature`] of the key's `CKA_ID`
//! and the data; encryption and decryption XOR each byte with a constant; a digest is
//! SHA-256. Functions it does not model (`C_InitToken`, operation state, wrap,
//! unwrap, derive, `C_LoginUser`) answer `CKR_FUNCTION_NOT_SUPPORTED`.
//!
//! [`Double::fail_next`] scripts faults: the next call of a function returns a
//! code of the test's choosing instead (a data call's fault also ends the
//! operations it feeds, as a failed data call does, §5.2). [`Double::calls`]
//! counts the calls that reached the double. It is a test double for the
//! gateway's own logic, never a stand-in for a real token in integration tests.

mod calls;
mod crypto;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use pkcs11_sys::*;

use super::loader::attr_value;
use super::{Backend, FindAttr, InitOutcome, LoadedModule};
use crate::abi::OutBuf;
use crate::error::{Error, Result};
use crate::functions::{Effect, FunctionId, OpKind, Phase};

/// The double's one slot.
pub(crate) const SLOT: CK_SLOT_ID = 1;
/// Its token's label and serial number.
pub(crate) const TOKEN_LABEL: &str = "double";
pub(crate) const TOKEN_SERIAL: &str = "DOUBLE0001";
/// The PINs `C_Login` accepts.
pub(crate) const USER_PIN: &[u8] = b"1234";
pub(crate) const SO_PIN: &[u8] = b"123456";

/// The deterministic "signature" of `data` by the key whose `CKA_ID` is `key_id`
/// (its handle's bytes when it has none): 64 bytes. A key pair shares its `CKA_ID`,
/// so the public half verifies what the private half signed.
pub(crate) fn signature(key_id: &[u8], data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut out = Vec::with_capacity(64);
    for part in [b"sig-r", b"sig-s"] {
        let mut h = sha2::Sha256::new();
        h.update(part);
        h.update(key_id);
        h.update(data);
        out.extend_from_slice(&h.finalize());
    }
    out
}

/// One scripted fault: the next call of `function` answers `rv`.
#[derive(Debug, Clone, Copy)]
struct Fault {
    function: FunctionId,
    rv: CK_RV,
}

/// An operation under way in a session.
#[derive(Debug, Clone)]
struct Operation {
    /// The key's `CKA_ID` (see [`signature`]); empty for a digest.
    key_id: Vec<u8>,
    /// The input fed so far (multi-part).
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Session {
    flags: CK_FLAGS,
    ops: HashMap<OpKind, Operation>,
    /// The handles a search has left to return.
    find: Option<Vec<CK_OBJECT_HANDLE>>,
}

#[derive(Debug, Clone)]
struct Object {
    /// `None` for a token object; the session a session object dies with.
    session: Option<CK_SESSION_HANDLE>,
    attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
}

impl Object {
    fn flag(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        match self.attrs.get(&ty)?.as_slice() {
            [v] => Some(*v != 0),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct State {
    sessions: HashMap<CK_SESSION_HANDLE, Session>,
    objects: BTreeMap<CK_OBJECT_HANDLE, Object>,
    login: Option<CK_USER_TYPE>,
    next_handle: CK_ULONG,
    faults: Vec<Fault>,
    calls: Vec<FunctionId>,
    /// The key each keyed `*Init` named.
    keys_used: Vec<CK_OBJECT_HANDLE>,
    initialized: bool,
}

impl State {
    /// A call of `f` arrives: counted, and answered by a scripted fault if any.
    fn enter(&mut self, f: FunctionId, session: Option<CK_SESSION_HANDLE>) -> Option<CK_RV> {
        self.calls.push(f);
        let i = self.faults.iter().position(|x| x.function == f)?;
        let fault = self.faults.remove(i);
        if let (Effect::Feeds(_, feeds), Some(s)) = (f.effect(), session) {
            if fault.rv != CKR_BUFFER_TOO_SMALL {
                if let Some(s) = self.sessions.get_mut(&s) {
                    for (kind, _) in feeds {
                        s.ops.remove(kind);
                    }
                }
            }
        }
        Some(fault.rv)
    }

    fn handle(&mut self) -> CK_ULONG {
        self.next_handle += 1;
        self.next_handle
    }

    fn session(&mut self, h: CK_SESSION_HANDLE) -> std::result::Result<&mut Session, CK_RV> {
        if !self.initialized {
            return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
        }
        self.sessions.get_mut(&h).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// An object the session may see: token objects, its own session objects
    /// and the other sessions' (all of one application), private ones only
    /// after a user login.
    fn visible(&self, h: CK_OBJECT_HANDLE) -> Option<&Object> {
        let o = self.objects.get(&h)?;
        let private = o.flag(CKA_PRIVATE).unwrap_or(false);
        (!private || self.login == Some(CKU_USER)).then_some(o)
    }

    /// Closes one session: its operations end, its session objects go.
    fn close(&mut self, h: CK_SESSION_HANDLE) {
        self.sessions.remove(&h);
        self.objects.retain(|_, o| o.session != Some(h));
        if self.sessions.is_empty() {
            self.login = None;
        }
    }
}

/// The test double (see the module docs).
#[derive(Debug)]
pub(crate) struct Double {
    state: Mutex<State>,
}

impl Default for Double {
    fn default() -> Self {
        Double::new()
    }
}

impl Double {
    /// A token with no objects, not yet initialised (the gateway initialises it).
    pub(crate) fn new() -> Double {
        Double {
            state: Mutex::new(State {
                sessions: HashMap::new(),
                objects: BTreeMap::new(),
                login: None,
                next_handle: 100,
                faults: Vec::new(),
                calls: Vec::new(),
                keys_used: Vec::new(),
                initialized: false,
            }),
        }
    }

    /// Adds a token object with `attrs` (as a token would hold it) and returns
    /// its handle.
    pub(crate) fn add_object(&self, attrs: &[FindAttr]) -> CK_OBJECT_HANDLE {
        let mut st = self.state.lock();
        let h = st.handle();
        let attrs = attrs.iter().map(owned).collect();
        st.objects.insert(
            h,
            Object {
                session: None,
                attrs,
            },
        );
        h
    }

    /// Adds a public token key pair's private half: an EC signing key labelled
    /// `label` with `CKA_ID` `id`, sensitive and not extractable.
    pub(crate) fn add_signing_key(&self, label: &str, id: &[u8]) -> CK_OBJECT_HANDLE {
        self.add_object(&[
            FindAttr::Class(CKO_PRIVATE_KEY),
            FindAttr::KeyType(CKK_EC),
            FindAttr::Label(label.to_owned()),
            FindAttr::Id(id.to_vec()),
            FindAttr::Token(true),
            FindAttr::Flag(CKA_PRIVATE, false),
            FindAttr::Flag(CKA_SENSITIVE, true),
            FindAttr::Flag(CKA_EXTRACTABLE, false),
            FindAttr::Flag(CKA_SIGN, true),
            FindAttr::Bytes(CKA_EC_PARAMS, crate::abi::EcCurve::P256.der_oid().to_vec()),
        ])
    }

    /// The next call of `function` answers `rv` instead (faults queue per function).
    pub(crate) fn fail_next(&self, function: FunctionId, rv: CK_RV) {
        self.state.lock().faults.push(Fault { function, rv });
    }

    /// How many calls of `function` reached the double.
    pub(crate) fn calls(&self, function: FunctionId) -> usize {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|f| **f == function)
            .count()
    }

    /// How many keyed `*Init`s named `key` (whatever they answered).
    pub(crate) fn key_uses(&self, key: CK_OBJECT_HANDLE) -> usize {
        self.state
            .lock()
            .keys_used
            .iter()
            .filter(|k| **k == key)
            .count()
    }

    /// Whether `session` has `kind` under way.
    pub(crate) fn has_operation(&self, session: CK_SESSION_HANDLE, kind: OpKind) -> bool {
        self.state
            .lock()
            .sessions
            .get(&session)
            .is_some_and(|s| s.ops.contains_key(&kind))
    }
}

/// A `FindAttr` as the type and bytes a token keeps.
fn owned(a: &FindAttr) -> (CK_ATTRIBUTE_TYPE, Vec<u8>) {
    let b = |v: bool| vec![u8::from(v)];
    match a {
        FindAttr::Class(c) => (CKA_CLASS, c.to_ne_bytes().to_vec()),
        FindAttr::KeyType(k) => (CKA_KEY_TYPE, k.to_ne_bytes().to_vec()),
        FindAttr::Label(l) => (CKA_LABEL, l.as_bytes().to_vec()),
        FindAttr::Id(id) => (CKA_ID, id.clone()),
        FindAttr::Token(t) => (CKA_TOKEN, b(*t)),
        FindAttr::Flag(ty, v) => (*ty, b(*v)),
        FindAttr::Ulong(ty, v) => (*ty, v.to_ne_bytes().to_vec()),
        FindAttr::Bytes(ty, v) => (*ty, v.clone()),
    }
}

/// §5.2 output of Keywarden-side values.
fn emit<T: Copy>(out: &mut OutBuf<'_, T>, values: &[T]) -> CK_RV {
    match out.write(values) {
        Ok(()) => CKR_OK,
        Err(e) => e.rv(),
    }
}

/// A blank-padded fixed-width field of a `CK_*_INFO`.
fn padded<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut field = [b' '; N];
    for (d, c) in field.iter_mut().zip(s.bytes()) {
        *d = c;
    }
    field
}

/// A template's attributes as owned (type, bytes).
fn read_template(template: Option<&[CK_ATTRIBUTE]>) -> BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>> {
    template
        .unwrap_or(&[])
        .iter()
        .map(|a| (a.type_, attr_value(a).unwrap_or(&[]).to_vec()))
        .collect()
}

impl State {
    /// Stores a new object made through `session` (a token object only in a
    /// read/write session).
    fn create(
        &mut self,
        session: CK_SESSION_HANDLE,
        attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let flags = self.session(session)?.flags;
        let token = attrs.get(&CKA_TOKEN).is_some_and(|v| v.first() == Some(&1));
        if token && flags & CKF_RW_SESSION == 0 {
            return Err(CKR_SESSION_READ_ONLY);
        }
        let h = self.handle();
        let session = (!token).then_some(session);
        self.objects.insert(h, Object { session, attrs });
        Ok(h)
    }
}

/// `Ok` as `CKR_OK`, an error as its code.
fn rv_of(r: std::result::Result<(), CK_RV>) -> CK_RV {
    r.err().unwrap_or(CKR_OK)
}

impl Backend for Double {
    fn has_function(&self, f: FunctionId) -> bool {
        FunctionId::ALL[..FunctionId::V2_40_COUNT].contains(&f)
    }

    fn has_v3_0(&self) -> bool {
        false
    }

    fn initialize(&self) -> Result<InitOutcome> {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(FunctionId::C_Initialize, None) {
            return Err(Error::Backend(rv));
        }
        st.initialized = true;
        Ok(InitOutcome::Initialized)
    }

    fn finalize(&self) -> Result<()> {
        let mut st = self.state.lock();
        if let Some(rv) = st.enter(FunctionId::C_Finalize, None) {
            return Err(Error::Backend(rv));
        }
        st.initialized = false;
        st.sessions.clear();
        st.login = None;
        Ok(())
    }

    fn loaded_module(&self) -> Option<&LoadedModule> {
        None
    }
}

/// Where a data call leaves the operations it feeds once it succeeded.
fn settle(session: &mut Session, f: FunctionId, input: &[u8], output: &[u8]) {
    let Effect::Feeds(phase, feeds) = f.effect() else {
        return;
    };
    for (kind, counts_input) in feeds {
        match phase {
            Phase::Last => {
                session.ops.remove(kind);
            }
            Phase::Update => {
                if let Some(op) = session.ops.get_mut(kind) {
                    op.data
                        .extend_from_slice(if *counts_input { input } else { output });
                }
            }
        }
    }
}
