//! Shared by the `lifecycle_gateway*` and `lifecycle_transparent` tests: a token
//! with Keywarden in enforce (or transparent) mode,
//! the `keywarden keys` CLI driven as a subprocess, and key helpers over a module
//! loaded with `cryptoki` (Keywarden, or SoftHSM directly).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use serde_json::Value;

use crate::common::{self, pin, TestEnv, USER_PIN};

/// A cryptoperiod rotating `app-*` keys automatically at their first use after 90
/// days (`when_due = "rotate"`).
pub const ROTATE_WHEN_DUE: &str = r#"
[[cryptoperiod]]
name = "auto"
label = "app-*"
originator = "90d"
recipient = "2y"
when_due = "rotate"
"#;

/// DER OID of P-256 (RFC 5480).
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A policy that allows everything to everyone, so that what is refused is the
/// lifecycle's doing; `extra` is appended (settings, cryptoperiods).
pub fn policy(settings: &str, extra: &str) -> String {
    format!(
        r#"
version = 1
[settings]
default_classification = "Low"
{settings}
[roles]
users = {{ members = ["*"], clearance = "High" }}
[[rule]]
id = "all"
roles = ["users"]
ops = ["*"]
{extra}
"#
    )
}

/// A test token, its configuration and a user PIN file for the CLI.
pub struct Lc {
    pub env: TestEnv,
    pub pin_file: PathBuf,
}

impl Lc {
    /// A fresh token, the configuration switched to enforce mode with `policy`.
    pub fn new(policy: &str) -> Lc {
        let lc = Lc::transparent();
        lc.env.enforce(policy);
        lc
    }

    /// A fresh token, the configuration left in transparent mode (no policy).
    pub fn transparent() -> Lc {
        let env = TestEnv::new();
        let pin_file = env.path().join("pin");
        std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Lc { env, pin_file }
    }

    /// The audit trail's records (seals left out).
    pub fn trail(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for f in keywarden::audit::list_files(&self.env.path().join("audit")).unwrap() {
            for line in std::fs::read_to_string(f).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if v["kind"] != "seal" {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Rewrites the policy file.
    pub fn set_policy(&self, text: &str) {
        std::fs::write(self.env.path().join("policy.toml"), text).unwrap();
    }

    /// `keywarden keys ARGS --pin-file FILE`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(common::keywarden_bin());
        c.arg("keys")
            .args(args)
            .arg("--pin-file")
            .arg(&self.pin_file);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and requires success; the standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        common::success_stdout(self.run(args), &format!("keywarden keys {args:?}"))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `keys show LABEL --json`'s versions.
    pub fn versions(&self, label: &str) -> Vec<Value> {
        self.json(&["show", label])["versions"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Runs `f` in a logged-in R/W session of SoftHSM loaded directly (no
    /// Keywarden), then finalises.
    pub fn direct<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        let p11 = common::load(std::path::Path::new(common::SOFTHSM_MODULE));
        let out = f(&user_session(&p11));
        p11.finalize().unwrap();
        out
    }
}

/// A logged-in R/W session on the test token.
pub fn user_session(p11: &Pkcs11) -> Session {
    let s = p11.open_rw_session(common::test_slot(p11)).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s
}

/// Generates a P-256 token key pair labelled `label`, with `id` when given.
pub fn generate(s: &Session, label: &str, id: Option<&[u8]>) -> (ObjectHandle, ObjectHandle) {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Label(label.into()),
        Attribute::EcParams(P256.to_vec()),
        Attribute::Verify(true),
    ];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.into()),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    if let Some(id) = id {
        public.push(Attribute::Id(id.to_vec()));
        private.push(Attribute::Id(id.to_vec()));
    }
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap()
}

pub fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    s.find_objects(template).unwrap()
}

pub fn by_label(s: &Session, label: &str, class: ObjectClass) -> Vec<ObjectHandle> {
    find(
        s,
        &[Attribute::Label(label.into()), Attribute::Class(class)],
    )
}

pub fn by_id(s: &Session, id: &[u8], class: ObjectClass) -> Vec<ObjectHandle> {
    find(s, &[Attribute::Id(id.to_vec()), Attribute::Class(class)])
}

pub fn one(handles: Vec<ObjectHandle>) -> ObjectHandle {
    assert_eq!(handles.len(), 1, "{handles:?}");
    handles[0]
}

pub fn attr_bytes(s: &Session, h: ObjectHandle, ty: AttributeType) -> Vec<u8> {
    match s.get_attributes(h, &[ty]).unwrap().remove(0) {
        Attribute::EcPoint(p) | Attribute::Id(p) | Attribute::Label(p) => p,
        other => panic!("{other:?}"),
    }
}

/// The outcome of one sign: Ok, or the CKR the module answered.
pub fn sign(s: &Session, key: ObjectHandle) -> Result<Vec<u8>, RvError> {
    s.sign(&Mechanism::Ecdsa, key, &[7u8; 32]).map_err(rv)
}

/// The outcome of one verify.
pub fn verify(s: &Session, key: ObjectHandle, sig: &[u8]) -> Result<(), RvError> {
    s.verify(&Mechanism::Ecdsa, key, &[7u8; 32], sig)
        .map_err(rv)
}

pub fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other:?}"),
    }
}

/// Lower-case hex to bytes.
pub fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// Signs with `key` until the result is a success (`want_ok`) or a failure; panics
/// after 3 s (a state change must be seen within the watcher's poll interval).
pub fn sign_until(s: &Session, key: ObjectHandle, want_ok: bool) -> Result<Vec<u8>, RvError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let r = sign(s, key);
        if r.is_ok() == want_ok {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not seen within 3 s: {r:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
