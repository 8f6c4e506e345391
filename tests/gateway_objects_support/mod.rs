//! Shared by the `gateway_objects` and `gateway_attributes` tests: a logged-in
//! session's object set (RSA and EC pairs, an AES key, a data object) and search
//! helpers over `cryptoki`.
#![allow(dead_code)]

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use crate::common::{self, P256};

pub fn login(s: &Session) {
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
        .unwrap();
}

pub fn label(s: &str) -> Attribute {
    Attribute::Label(s.as_bytes().to_vec())
}

pub fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    s.find_objects(template).unwrap()
}

/// A token object set: RSA and EC pairs, an AES key and a data object.
pub fn populate(s: &Session) -> (ObjectHandle, ObjectHandle, ObjectHandle) {
    let (rsa_pub, _) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                label("rsa"),
                Attribute::Id(vec![1]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                label("rsa"),
                Attribute::Id(vec![1]),
            ],
        )
        .unwrap();
    let (ec_pub, _) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(P256.to_vec()),
                label("ec"),
                Attribute::Id(vec![2]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                label("ec"),
                Attribute::Id(vec![2]),
            ],
        )
        .unwrap();
    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                label("aes"),
                Attribute::Id(vec![3]),
            ],
        )
        .unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        label("data"),
        Attribute::Application(b"keywarden-tests".to_vec()),
        Attribute::Value(b"hello".to_vec()),
    ])
    .unwrap();
    (rsa_pub, ec_pub, aes)
}
