//! Unit tests of the gateway pipeline on the test double (`backend::double`): each
//! decision and record path, with a temporary store and trail and no real token.
//! The calls are made as the C front end makes them (`ffi/*.rs`): a `Call`
//! descriptor and a closure that forwards to the backend.

mod decisions;
mod lifecycle;
mod records;

use std::path::Path;
use std::sync::Arc;

use pkcs11_sys::*;

use super::{Call, Gateway, Io};
use crate::abi::OutBuf;
use crate::audit::{read_records, Filter, RecordView};
use crate::backend::double::{Double, SLOT, USER_PIN};
use crate::backend::Backend;
use crate::config::Config;
use crate::error::Result;
use crate::functions::FunctionId as F;

/// A policy that allows signing with CKM_ECDSA on keys labelled `ok-*` only.
const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "sign-ok"
roles = ["users"]
ops = ["sign"]
keys = { label = "ok-*" }
mechanisms = ["CKM_ECDSA"]
"#;

/// A gateway over a double, with its store and trail in a temporary directory.
struct Env {
    dir: tempfile::TempDir,
    double: Arc<Double>,
    gw: Gateway,
}

/// A configuration with `policy` as the `[policy]` section's body, over a new
/// store `prepare` may fill.
fn config(dir: &Path, policy: &str, prepare: impl FnOnce(&crate::store::SqliteStore)) -> Config {
    let text = format!(
        "[backend]\nmodule = \"/nonexistent/double.so\"\n\
         [policy]\n{policy}\n\
         [store]\ndir = \"{}\"\n\
         [audit]\ndir = \"{}\"\nmode = \"required\"\nlevel = \"all\"\n",
        dir.join("store").display(),
        dir.join("audit").display()
    );
    let config = Config::parse(&text).unwrap();
    for sub in ["store", "audit"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    prepare(&crate::store::create(&config.store).unwrap());
    config
}

impl Env {
    /// Transparent mode.
    fn transparent() -> Env {
        Env::transparent_over(|_| {})
    }

    /// Transparent mode over a store `prepare` filled.
    fn transparent_over(prepare: impl FnOnce(&crate::store::SqliteStore)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "profile = \"transparent\"", prepare);
        Env::start_in(dir, config, Arc::new(Double::new()))
    }

    /// Enforce mode with [`POLICY`].
    fn enforce() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, POLICY).unwrap();
        let policy = format!("mode = \"enforce\"\nfile = \"{}\"", file.display());
        let config = config(dir.path(), &policy, |_| {});
        Env::start_in(dir, config, Arc::new(Double::new()))
    }

    fn start_in(dir: tempfile::TempDir, config: Config, double: Arc<Double>) -> Env {
        let backend: Arc<dyn Backend> = Arc::clone(&double) as Arc<dyn Backend>;
        let gw = Gateway::start_with(config, backend).unwrap();
        Env { dir, double, gw }
    }

    /// The trail's operation records, in order (module and reload records aside).
    fn ops(&self) -> Vec<RecordView> {
        let mut out = Vec::new();
        read_records(&self.dir.path().join("audit"), &Filter::default(), |f| {
            if f.view.kind.as_deref() == Some("op") {
                out.push(f.view);
            }
            true
        })
        .unwrap();
        out
    }

    /// A read/write session, logged in as the user.
    fn user_session(&self) -> CK_SESSION_HANDLE {
        let mut s = CK_INVALID_HANDLE;
        let notify = crate::backend::Notify {
            application: std::ptr::null_mut(),
            callback: None,
        };
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        self.gw
            .open_session(Call::slot(F::C_OpenSession, SLOT), &mut s, |b, s| {
                b.open_session(SLOT, flags, notify, s)
            })
            .unwrap();
        self.gw
            .login(
                Call::session(F::C_Login, s),
                CKU_USER,
                Some(USER_PIN),
                |b, pin| b.login(s, CKU_USER, pin),
            )
            .unwrap();
        s
    }

    /// `C_SignInit` as `ffi::crypto` makes it.
    fn sign_init(
        &self,
        s: CK_SESSION_HANDLE,
        mech: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let m = mechanism(mech);
        let call = Call::session(F::C_SignInit, s).on(key).with_mechanism(mech);
        self.gw.op_init(call, None, |b| b.sign_init(s, &m, key))
    }

    /// `C_Sign` into `buf` (`None`: a size query), as `ffi::crypto` makes it when
    /// the backend writes into the caller's buffer; returns the result and the
    /// length cell.
    fn sign(
        &self,
        s: CK_SESSION_HANDLE,
        data: &[u8],
        buf: Option<&mut [u8]>,
    ) -> (Result<()>, CK_ULONG) {
        let mut len = buf.as_ref().map_or(0, |b| b.len() as CK_ULONG);
        let mut out = OutBuf::new(buf, &mut len);
        let io = Io {
            in_len: data.len() as u64,
            size_query: out.is_size_query(),
            ..Io::default()
        };
        let r = self.gw.call_io(Call::session(F::C_Sign, s), io, |b| {
            let rv = b.sign(s, Some(data), out.reborrow());
            (rv, out.written_len())
        });
        (r, len)
    }

    /// `C_CloseSession`.
    fn close(&self, s: CK_SESSION_HANDLE) -> Result<()> {
        self.gw
            .session_call(Call::session(F::C_CloseSession, s), |b| b.close_session(s))
    }
}

impl Drop for Env {
    /// `C_Finalize`, as a front end ends a gateway: the store flusher and the
    /// trail's writer stop before the directory goes.
    fn drop(&mut self) {
        let _ = self.gw.stop();
    }
}

/// A mechanism without parameters.
fn mechanism(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// The code of a result (`CKR_OK` for `Ok`).
fn rv(r: Result<()>) -> CK_RV {
    r.err().map_or(CKR_OK, |e| e.rv())
}
