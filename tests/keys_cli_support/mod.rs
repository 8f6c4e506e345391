//! Shared by the `keys_cli*` tests: a private SoftHSM token with a Keywarden
//! configuration, the `keywarden keys` CLI run as a subprocess, and key helpers over
//! `cryptoki` on SoftHSM directly (never through Keywarden).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::common::{self, pin, TestEnv, SOFTHSM_MODULE, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use serde_json::Value;

pub const LABEL: &str = "app-sign";
/// DER OID of P-256.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

pub struct Keys {
    pub env: TestEnv,
    pub pin_file: PathBuf,
}

impl Keys {
    pub fn new() -> Keys {
        let env = TestEnv::new();
        let pin_file = env.path().join("pin");
        std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Keys { env, pin_file }
    }

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

    pub fn ok(&self, args: &[&str]) -> String {
        common::success_stdout(self.run(args), &format!("keywarden keys {args:?}"))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs `f` in a fresh logged-in SoftHSM session (a new C_Initialize each time,
    /// so nothing cached in this process hides what the CLI did).
    pub fn token<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        let p11 = Pkcs11::new(SOFTHSM_MODULE).unwrap();
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = common::test_slot(&p11);
        let s = p11.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let out = f(&s);
        drop(s);
        p11.finalize().unwrap();
        out
    }

    pub fn set_policy(&self, text: &str) {
        let file = self.env.path().join("policy.toml");
        std::fs::write(&file, text).unwrap();
        let conf = std::fs::read_to_string(&self.env.keywarden_conf).unwrap();
        let conf = conf.replace(
            "mode = \"transparent\"",
            &format!("mode = \"enforce\"\nfile = \"{}\"", file.display()),
        );
        std::fs::write(&self.env.keywarden_conf, conf).unwrap();
    }
}

pub fn generate(s: &Session, label: &str, id: &[u8]) {
    let public = [
        Attribute::Token(true),
        Attribute::Label(label.into()),
        Attribute::Id(id.to_vec()),
        Attribute::EcParams(P256.to_vec()),
        Attribute::Verify(true),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Label(label.into()),
        Attribute::Id(id.to_vec()),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
}

pub fn by_id(s: &Session, id: &[u8], class: ObjectClass) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Id(id.to_vec()), Attribute::Class(class)])
        .unwrap()
}

pub fn by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.into())]).unwrap()
}

pub fn ec_point(s: &Session, id: &[u8]) -> Vec<u8> {
    let h = by_id(s, id, ObjectClass::PUBLIC_KEY)[0];
    match s
        .get_attributes(h, &[AttributeType::EcPoint])
        .unwrap()
        .remove(0)
    {
        Attribute::EcPoint(p) => p,
        other => panic!("{other:?}"),
    }
}

/// Read on the public key: SoftHSM answers CKR_GENERAL_ERROR to reading
/// CKA_END_DATE of its (encrypted-at-rest) private key objects this way.
pub fn end_date_set(s: &Session, id: &[u8]) -> bool {
    let h = by_id(s, id, ObjectClass::PUBLIC_KEY)[0];
    match s
        .get_attributes(h, &[AttributeType::EndDate])
        .unwrap()
        .pop()
    {
        Some(Attribute::EndDate(d)) => !d.is_empty(),
        _ => false,
    }
}

pub fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

pub fn versions(k: &Keys) -> Vec<Value> {
    k.json(&["show", LABEL])["versions"]
        .as_array()
        .unwrap()
        .clone()
}

/// A managed P-256 signing key "app-sign" with CKA_ID a1.
pub fn adopted() -> Keys {
    let k = Keys::new();
    k.token(|s| generate(s, LABEL, &[0xa1]));
    let out = k.ok(&["adopt", LABEL]);
    assert!(out.contains("version 1"), "{out}");
    k
}
