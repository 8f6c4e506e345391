//! Objects through Keywarden: finding, create/copy/destroy, wrap/unwrap (attributes
//! are in `gateway_attributes.rs`).
mod common;
#[macro_use]
mod gateway_support;
mod gateway_objects_support;

use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use gateway_support::{code, unhex};

use gateway_objects_support::{find, label, login, populate};

#[test]
fn find_objects_by_label_id_and_class() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    login(&s);
    let (rsa_pub, _, aes) = populate(&s);

    assert_eq!(find(&s, &[]).len(), 6);
    assert_eq!(find(&s, &[label("rsa")]).len(), 2);
    assert_eq!(find(&s, &[Attribute::Id(vec![2])]).len(), 2);
    assert_eq!(
        find(&s, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
        vec![aes]
    );
    assert_eq!(
        find(&s, &[Attribute::Class(ObjectClass::PRIVATE_KEY)]).len(),
        2
    );
    assert_eq!(
        find(
            &s,
            &[Attribute::Class(ObjectClass::PUBLIC_KEY), label("rsa")]
        ),
        vec![rsa_pub]
    );
    assert_eq!(
        find(
            &s,
            &[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC)
            ]
        )
        .len(),
        1
    );
    assert!(find(&s, &[label("nope")]).is_empty());
    assert!(find(&s, &[label("rsa"), Attribute::Id(vec![2])]).is_empty());
    // Several C_FindObjects rounds of one handle each still see everything once.
    let mut all: Vec<_> = s
        .iter_objects_with_cache_size(&[], 1.try_into().unwrap())
        .unwrap()
        .map(|o| o.unwrap())
        .collect();
    all.sort_by_key(|o| o.handle());
    all.dedup();
    assert_eq!(all.len(), 6);

    // After logout the private objects are invisible: the private keys and the AES key
    // (SoftHSM defaults CKA_PRIVATE to true for keys); the public keys and data remain.
    s.logout().unwrap();
    assert!(find(&s, &[Attribute::Class(ObjectClass::PRIVATE_KEY)]).is_empty());
    assert!(find(&s, &[Attribute::Class(ObjectClass::SECRET_KEY)]).is_empty());
    assert_eq!(find(&s, &[]).len(), 3);
}

#[test]
fn create_copy_destroy() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    login(&s);
    let data = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            label("note"),
            Attribute::Application(b"tests".to_vec()),
            Attribute::Value(b"payload".to_vec()),
        ])
        .unwrap();
    assert_eq!(
        s.get_attributes(data, &[AttributeType::Value]).unwrap(),
        vec![Attribute::Value(b"payload".to_vec())]
    );

    let copy = s.copy_object(data, &[label("note-copy")]).unwrap();
    assert_ne!(copy, data);
    let got = s
        .get_attributes(
            copy,
            &[
                AttributeType::Label,
                AttributeType::Value,
                AttributeType::Application,
            ],
        )
        .unwrap();
    assert_eq!(
        got,
        vec![
            label("note-copy"),
            Attribute::Value(b"payload".to_vec()),
            Attribute::Application(b"tests".to_vec())
        ]
    );
    assert_eq!(find(&s, &[Attribute::Class(ObjectClass::DATA)]).len(), 2);

    s.destroy_object(data).unwrap();
    assert!(find(&s, &[label("note")]).is_empty());
    assert_eq!(find(&s, &[label("note-copy")]), vec![copy]);
    assert_eq!(
        code(s.get_attributes(data, &[AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(code(s.destroy_object(data)), RvError::ObjectHandleInvalid);

    // An imported AES secret works as a key, and its copy is the same key.
    let aes = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Value(vec![0x42; 32]),
        ])
        .unwrap();
    let aes2 = s.copy_object(aes, &[label("aes-copy")]).unwrap();
    let ct = s
        .encrypt(&Mechanism::AesCbcPad([1; 16]), aes, b"copied keys agree")
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad([1; 16]), aes2, &ct)
            .unwrap(),
        b"copied keys agree"
    );
    s.destroy_object(aes2).unwrap();
    // SoftHSM answers a stale key handle with CKR_OBJECT_HANDLE_INVALID (not
    // CKR_KEY_HANDLE_INVALID); gateway_errors.rs checks Keywarden passes it through.
    assert_eq!(
        code(s.encrypt(&Mechanism::AesCbcPad([1; 16]), aes2, b"x")),
        RvError::ObjectHandleInvalid
    );
}

fn secret(s: &Session, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t).unwrap()
}

#[test]
fn wrap_and_unwrap() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    login(&s);

    // RFC 3394 §4.6: 256-bit key data wrapped with a 256-bit KEK.
    let kek = secret(
        &s,
        &unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        &[Attribute::Wrap(true), Attribute::Unwrap(true)],
    );
    let key_data = unhex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
    let target = secret(
        &s,
        &key_data,
        &[Attribute::Extractable(true), Attribute::Sensitive(false)],
    );
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, target).unwrap();
    let want = "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21";
    assert_eq!(wrapped, unhex(want));
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let back = s
        .unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &template)
        .unwrap();
    assert_eq!(
        s.get_attributes(back, &[AttributeType::Value]).unwrap(),
        vec![Attribute::Value(key_data)]
    );
    let mut tampered = wrapped.clone();
    tampered[3] ^= 1;
    assert!(
        s.unwrap_key(&Mechanism::AesKeyWrap, kek, &tampered, &template)
            .is_err(),
        "integrity check"
    );

    // An unextractable key cannot be wrapped.
    let locked = secret(&s, &[7; 32], &[Attribute::Extractable(false)]);
    assert_eq!(
        code(s.wrap_key(&Mechanism::AesKeyWrap, kek, locked)),
        RvError::KeyUnextractable
    );

    // RSA-OAEP wrap of a generated AES key; the unwrapped copy decrypts its ciphertext.
    let (rsa_pub, rsa_priv) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::Wrap(true),
            ],
            &[Attribute::Token(false), Attribute::Unwrap(true)],
        )
        .unwrap();
    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ));
    let wrapped = s.wrap_key(&oaep, rsa_pub, aes).unwrap();
    assert_eq!(wrapped.len(), 256);
    let mut t = template[..3].to_vec();
    t.push(Attribute::Decrypt(true));
    let unwrapped = s.unwrap_key(&oaep, rsa_priv, &wrapped, &t).unwrap();
    let ct = s
        .encrypt(&Mechanism::AesCbcPad([3; 16]), aes, b"wrapped and back")
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad([3; 16]), unwrapped, &ct)
            .unwrap(),
        b"wrapped and back"
    );
}
