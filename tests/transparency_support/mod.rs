//! Shared by the transparency test: the transcript both runs write, the keys made
//! once before them, and the raw calls a scenario makes through the function list.
#![allow(dead_code)]

use std::fmt::Debug;

use cryptoki::context::Pkcs11;
use cryptoki::error::Result;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use pkcs11_sys::*;

use crate::common;
use crate::gateway_support::{hex, name, Raw};

pub const MSG: &[u8] = b"the same message on both paths";
pub const IV: [u8; 16] = [9; 16];

/// The recorded lines of one run; `tag` is replaced by `<run>` as lines are added.
pub struct Transcript {
    pub tag: String,
    pub lines: Vec<String>,
}

impl Transcript {
    pub fn line(&mut self, step: &str, what: impl Debug) {
        let l = format!("{step}: {what:?}").replace(&self.tag, "<run>");
        self.lines.push(l);
    }

    /// Records a call's outcome as `Ok(<shown>)` or `Err(<code>)`, and returns the value.
    pub fn call<T>(&mut self, step: &str, r: Result<T>, show: impl Fn(&T) -> String) -> Option<T> {
        let what = match &r {
            Ok(v) => format!("Ok({})", show(v)),
            Err(cryptoki::error::Error::Pkcs11(rv, _)) => format!("Err({rv:?})"),
            Err(e) => format!("Err(other: {e})"),
        };
        self.line(step, format_args!("{what}"));
        r.ok()
    }

    pub fn rv<T>(&mut self, step: &str, r: Result<T>) -> Option<T> {
        self.call(step, r, |_| String::new())
    }

    pub fn dbg<T: Debug>(&mut self, step: &str, r: Result<T>) -> Option<T> {
        self.call(step, r, |v| format!("{v:?}"))
    }

    pub fn hex(&mut self, step: &str, r: Result<Vec<u8>>) -> Option<Vec<u8>> {
        self.call(step, r, |v| hex(v))
    }

    pub fn len<T>(&mut self, step: &str, r: Result<Vec<T>>) -> Option<Vec<T>> {
        self.call(step, r, |v| v.len().to_string())
    }
}

/// Attributes as text, with labels and ids as strings so the run tag can be normalised.
pub fn show(attrs: &[Attribute]) -> String {
    let one = |a: &Attribute| match a {
        Attribute::Label(b) => format!("Label({:?})", String::from_utf8_lossy(b)),
        Attribute::Id(b) => format!("Id({:?})", String::from_utf8_lossy(b)),
        other => format!("{other:?}"),
    };
    attrs.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// Public-key attributes and generation defaults worth comparing, as text.
pub fn key_facts(s: &Session, t: &mut Transcript, step: &str, key: ObjectHandle) {
    use AttributeType as A;
    let types = [
        A::Class,
        A::KeyType,
        A::Label,
        A::Id,
        A::Token,
        A::Private,
        A::Local,
    ];
    let defaults = [
        A::Sensitive,
        A::Extractable,
        A::AlwaysSensitive,
        A::NeverExtractable,
    ];
    let sizes = [A::ModulusBits, A::PublicExponent, A::EcParams, A::ValueLen];
    let types = [
        &types[..],
        &defaults,
        &[A::KeyGenMechanism, A::Modifiable],
        &sizes,
    ]
    .concat();
    t.call(step, s.get_attributes(key, &types), |a| show(a));
}

/// The shared keys, made once on the direct path before both runs.
pub fn make_shared_keys(p11: &Pkcs11) {
    let slot = common::test_slot(p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let label = |l: &str| Attribute::Label(l.as_bytes().to_vec());
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::ModulusBits(2048.into()),
            label("shared-rsa"),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            label("shared-rsa"),
            Attribute::Sign(true),
        ],
    )
    .unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        label("shared-aes"),
        Attribute::Value((0..32).collect()),
    ])
    .unwrap();
    s.logout().unwrap();
    s.close().unwrap();
}

pub fn find_one(s: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

/// Signs `MSG` with `key` through the raw function list: `cap` is the output buffer
/// size, `None` for a size query. Returns the code, `*pulSignatureLen` and the output.
pub fn raw_sign(r: &Raw, h: CK_SESSION_HANDLE, cap: Option<usize>) -> (String, CK_ULONG, Vec<u8>) {
    let mut msg = MSG.to_vec();
    let mut out = vec![0u8; cap.unwrap_or(0)];
    let mut len = out.len() as CK_ULONG;
    let p = if cap.is_some() {
        out.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    let rv = raw!(
        r,
        C_Sign(h, msg.as_mut_ptr(), msg.len() as CK_ULONG, p, &mut len)
    );
    out.truncate(len as usize);
    (name(rv), len, out)
}
