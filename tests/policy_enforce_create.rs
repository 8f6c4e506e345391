//! Enforce mode through the cdylib on SoftHSM: creation policy (sizes, forced
//! attributes, export), copies, attribute edits and reads of secret attributes.
mod common;
#[macro_use]
mod gateway_support;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use gateway_support::{attr, attr_ulong, code, mech, name, Raw};
use pkcs11_sys::*;

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "make-keys"
roles = ["users"]
ops = ["generate", "create", "copy", "set-attribute", "encrypt", "decrypt"]
[[rule]]
id = "export-exp"
roles = ["users"]
ops = ["export"]
keys = { label = "exp-*" }
[[rule]]
id = "read-exp-read"
roles = ["users"]
ops = ["read-sensitive-attribute"]
keys = { label = "exp-read" }
"#;

fn setup() -> (common::TestEnv, Pkcs11, Session) {
    let env = common::TestEnv::new();
    env.enforce(POLICY);
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    (env, p11, s)
}

fn rsa(s: &Session, bits: u64) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ],
        &[Attribute::Token(false), Attribute::Sign(true)],
    )
}

fn aes(s: &Session, label: &str, extra: &[Attribute]) -> cryptoki::error::Result<ObjectHandle> {
    let mut t = vec![
        Attribute::Token(false),
        Attribute::ValueLen(32.into()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
}

fn flags(s: &Session, k: ObjectHandle) -> (bool, bool) {
    let a = s
        .get_attributes(k, &[AttributeType::Sensitive, AttributeType::Extractable])
        .unwrap();
    let get = |want: AttributeType| {
        a.iter()
            .find_map(|x| match (x, want) {
                (Attribute::Sensitive(v), AttributeType::Sensitive)
                | (Attribute::Extractable(v), AttributeType::Extractable) => Some(*v),
                _ => None,
            })
            .unwrap()
    };
    (
        get(AttributeType::Sensitive),
        get(AttributeType::Extractable),
    )
}

#[test]
fn rsa_1024_generation_is_refused_and_rsa_2048_allowed() {
    let (_env, _p11, s) = setup();
    assert_eq!(code(rsa(&s, 1024)), RvError::TemplateInconsistent);
    let (_, private) = rsa(&s, 2048).unwrap();
    // The private key got the attributes policy forces when left out.
    assert_eq!(flags(&s, private), (true, false));
}

#[test]
fn forced_attributes_and_export() {
    let (_env, _p11, s) = setup();
    let plain = aes(&s, "plain", &[]).unwrap();
    assert_eq!(flags(&s, plain), (true, false));
    // Extractable needs an export rule for the key.
    assert_eq!(
        code(aes(&s, "plain2", &[Attribute::Extractable(true)])),
        RvError::TemplateInconsistent
    );
    let exp = aes(
        &s,
        "exp-1",
        &[Attribute::Extractable(true), Attribute::Sensitive(false)],
    )
    .unwrap();
    assert_eq!(flags(&s, exp), (false, true));
}

#[test]
fn a_copy_may_not_loosen_and_edits_may_not_either() {
    let (_env, _p11, s) = setup();
    let plain = aes(&s, "plain", &[]).unwrap();
    assert_eq!(
        code(s.copy_object(plain, &[Attribute::Extractable(true)])),
        RvError::TemplateInconsistent
    );
    let copy = s
        .copy_object(plain, &[Attribute::Label(b"plain-copy".to_vec())])
        .unwrap();
    assert_eq!(flags(&s, copy), (true, false));
    assert_eq!(
        code(s.update_attributes(plain, &[Attribute::Extractable(true)])),
        RvError::ActionProhibited
    );
    s.update_attributes(plain, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    // The cached facts followed the edit: the new label is what policy sees.
    let a = s.get_attributes(plain, &[AttributeType::Label]).unwrap();
    assert_eq!(a, vec![Attribute::Label(b"renamed".to_vec())]);
}

/// `C_GetAttributeValue(CKA_VALUE)` on an extractable, non-sensitive key: the
/// token would reveal it; policy withholds it unless a rule allows the read.
#[test]
fn reading_a_secret_value_needs_a_rule() {
    let env = common::TestEnv::new();
    env.enforce(POLICY);
    let r = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(r, C_Initialize(std::ptr::null_mut())), CKR_OK);
    let h = gateway_support::user_session(&r, gateway_support::slot(&r));
    let key = |label: &[u8]| {
        let mut len: CK_ULONG = 32;
        let (mut t, mut f) = ([CK_TRUE], [CK_FALSE]);
        let mut l = label.to_vec();
        let mut tmpl = [
            attr_ulong(CKA_VALUE_LEN, &mut len),
            attr(CKA_TOKEN, &mut f.clone()),
            attr(CKA_SENSITIVE, &mut f),
            attr(CKA_EXTRACTABLE, &mut t),
            attr(CKA_LABEL, &mut l),
        ];
        let mut m = mech(CKM_AES_KEY_GEN);
        let mut k = 0;
        let rv = raw!(
            r,
            C_GenerateKey(h, &mut m, tmpl.as_mut_ptr(), tmpl.len() as CK_ULONG, &mut k)
        );
        assert_eq!(rv, CKR_OK, "{}", name(rv));
        k
    };
    let read = |k: CK_OBJECT_HANDLE| {
        let mut value = [0u8; 32];
        let mut label = [0u8; 16];
        let mut t = [attr(CKA_LABEL, &mut label), attr(CKA_VALUE, &mut value)];
        let rv = raw!(r, C_GetAttributeValue(h, k, t.as_mut_ptr(), 2));
        (rv, t[0].ulValueLen, t[1].ulValueLen, value)
    };
    let hidden = key(b"exp-hidden");
    let (rv, label_len, value_len, value) = read(hidden);
    assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE, "{}", name(rv));
    assert_eq!(label_len, 10, "other attributes are still answered");
    assert_eq!(value_len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(value, [0u8; 32], "nothing of the value was written");
    let readable = key(b"exp-read");
    let (rv, _, value_len, value) = read(readable);
    assert_eq!(rv, CKR_OK, "{}", name(rv));
    assert_eq!(value_len, 32);
    assert_ne!(value, [0u8; 32]);
    assert_eq!(raw!(r, C_Finalize(std::ptr::null_mut())), CKR_OK);
}
