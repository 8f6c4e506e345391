//! Enforce mode through the cdylib on SoftHSM: `C_WrapKey` (wrap on the wrapping
//! key, export on the wrapped one) and `C_UnwrapKey` (unwrap on the unwrapping key,
//! then the new key's template, and its real size checked after: `verify_after`).
mod common;
#[macro_use]
mod gateway_support;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use gateway_support::code;

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "kek"
roles = ["users"]
ops = ["wrap", "unwrap"]
keys = { label = "kek" }
[[rule]]
id = "export-exp"
roles = ["users"]
ops = ["export"]
keys = { label = "exp-*" }
[[rule]]
id = "import-and-see"
roles = ["users"]
ops = ["create", "verify"]
"#;

fn find(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
}

fn secret_template(key_type: KeyType, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

#[test]
fn wrap_and_unwrap_are_decided_on_both_keys_and_the_unwrapped_size() {
    let (env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let aes = |label: &str, extractable: bool| {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Extractable(extractable),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .unwrap()
    };
    aes("kek", false);
    aes("exp-aes", true);
    aes("plain-aes", true);
    let mut small = secret_template(KeyType::GENERIC_SECRET, "exp-small");
    small.extend([Attribute::Value(vec![7u8; 8]), Attribute::Extractable(true)]);
    s.create_object(&small).unwrap();
    drop(s);
    p11.finalize().unwrap();
    env.enforce(POLICY);

    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let kek = find(&s, "kek")[0];
    let exp_aes = find(&s, "exp-aes")[0];
    let plain_aes = find(&s, "plain-aes")[0];
    let exp_small = find(&s, "exp-small")[0];

    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, exp_aes).unwrap();
    // Export: no rule lets plain-aes leave the token, extractable or not.
    assert_eq!(
        code(s.wrap_key(&Mechanism::AesKeyWrap, kek, plain_aes)),
        RvError::KeyFunctionNotPermitted
    );
    // Wrap: exp-aes may be exported but is no wrapping key by policy.
    assert_eq!(
        code(s.wrap_key(&Mechanism::AesKeyWrap, exp_aes, exp_small)),
        RvError::KeyFunctionNotPermitted
    );
    let wrapped_small = s
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, exp_small)
        .unwrap();

    // Unwrap: the template cannot state the size (SoftHSM refuses CKA_VALUE_LEN
    // there) and SoftHSM records none, so the created key is checked after with
    // the size AES key wrap fixes (RFC 3394: the key plus 8 bytes).
    let mut t = secret_template(KeyType::AES, "unwrapped");
    t.retain(|a| *a != Attribute::Token(true));
    t.push(Attribute::Token(false));
    let k = s
        .unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &t)
        .unwrap();
    let a = s
        .get_attributes(k, &[AttributeType::Sensitive, AttributeType::Extractable])
        .unwrap();
    assert_eq!(
        a,
        vec![Attribute::Sensitive(true), Attribute::Extractable(false)],
        "forced on the unwrapped key"
    );
    // With padding (RFC 5649) the size is not exact: unknown after the unwrap,
    // so refused (fail closed) and the created key destroyed.
    let t = secret_template(KeyType::GENERIC_SECRET, "unwrapped-small");
    assert_eq!(
        code(s.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped_small, &t)),
        RvError::TemplateInconsistent
    );
    assert!(find(&s, "unwrapped-small").is_empty());
    // Unwrapping with a key that is not the KEK: refused at the unwrapping key.
    assert_eq!(
        code(s.unwrap_key(&Mechanism::AesKeyWrap, exp_aes, &wrapped, &t)),
        RvError::KeyFunctionNotPermitted
    );
    drop(s);
    p11.finalize().unwrap();

    // Through SoftHSM directly: the refused unwrapped key is really gone.
    let direct = common::load(std::path::Path::new(common::SOFTHSM_MODULE));
    let s = direct.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert!(find(&s, "unwrapped-small").is_empty());
    assert!(
        find(&s, "unwrapped").is_empty(),
        "session objects, and the refused one"
    );
    assert_eq!(find(&s, "exp-small").len(), 1);
}
