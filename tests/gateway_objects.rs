//! Objects through Keywarden: finding, attributes (including the per-attribute rules of
//! C_GetAttributeValue at the C level), create/copy/destroy, wrap/unwrap.
mod common;
#[macro_use]
mod gateway_support;

use std::path::Path;
use std::ptr::null_mut;

use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use gateway_support::{attr, attr_ulong, code, name, unhex, Raw};
use pkcs11_sys::*;

use common::P256;

fn login(s: &Session) {
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
        .unwrap();
}

fn label(s: &str) -> Attribute {
    Attribute::Label(s.as_bytes().to_vec())
}

fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    s.find_objects(template).unwrap()
}

/// A token object set: RSA and EC pairs, an AES key and a data object.
fn populate(s: &Session) -> (ObjectHandle, ObjectHandle, ObjectHandle) {
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
fn attributes_get_and_set() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    login(&s);
    let (rsa_pub, ec_pub, aes) = populate(&s);

    let a = s
        .get_attributes(
            rsa_pub,
            &[
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::ModulusBits,
                AttributeType::Modulus,
            ],
        )
        .unwrap();
    assert_eq!(
        a[..3],
        [
            label("rsa"),
            Attribute::Id(vec![1]),
            Attribute::ModulusBits(2048.into())
        ]
    );
    assert!(matches!(&a[3], Attribute::Modulus(n) if n.len() == 256));
    let a = s
        .get_attributes(ec_pub, &[AttributeType::EcPoint, AttributeType::KeyType])
        .unwrap();
    assert!(matches!(&a[0], Attribute::EcPoint(p) if p.len() == 67 && p[2] == 4));
    assert_eq!(a[1], Attribute::KeyType(KeyType::EC));

    // Relabel and re-id; finds follow the new values.
    s.update_attributes(aes, &[label("aes-renamed"), Attribute::Id(vec![9, 9])])
        .unwrap();
    assert_eq!(
        s.get_attributes(aes, &[AttributeType::Label]).unwrap(),
        vec![label("aes-renamed")]
    );
    assert!(find(&s, &[label("aes")]).is_empty());
    assert_eq!(find(&s, &[Attribute::Id(vec![9, 9])]), vec![aes]);
    // Read-only attributes stay read-only.
    assert_eq!(
        code(s.update_attributes(aes, &[Attribute::KeyType(KeyType::RSA)])),
        RvError::AttributeReadOnly
    );
}

/// One C_GetAttributeValue result: the code, and each entry's ulValueLen and bytes.
#[derive(Debug, PartialEq)]
struct Got {
    rv: String,
    lens: Vec<CK_ULONG>,
    values: Vec<Vec<u8>>,
}

/// Calls C_GetAttributeValue with one buffer per type (`None` = NULL pValue).
fn get_raw(
    r: &Raw,
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    want: &[(CK_ATTRIBUTE_TYPE, Option<usize>)],
) -> Got {
    let mut bufs: Vec<Vec<u8>> = want
        .iter()
        .map(|(_, n)| vec![0xaa; n.unwrap_or(0)])
        .collect();
    let mut t: Vec<CK_ATTRIBUTE> = want
        .iter()
        .zip(bufs.iter_mut())
        .map(|((ty, _), b)| attr(*ty, b))
        .collect();
    let rv = raw!(
        r,
        C_GetAttributeValue(h, obj, t.as_mut_ptr(), t.len() as CK_ULONG)
    );
    let lens: Vec<CK_ULONG> = t.iter().map(|a| a.ulValueLen).collect();
    let values = bufs
        .iter()
        .zip(&lens)
        .map(|(b, &l)| {
            if (l as usize) <= b.len() {
                b[..l as usize].to_vec()
            } else {
                Vec::new()
            }
        })
        .collect();
    Got {
        rv: name(rv),
        lens,
        values,
    }
}

/// The §5.7 rules, at the C level, through Keywarden and directly: both must agree and
/// match the specification.
#[test]
fn get_attribute_value_per_attribute_rules() {
    let _env = common::TestEnv::new();
    // SoftHSM first, so Keywarden shares the initialised instance.
    let direct = Raw::open(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(raw!(direct, C_Initialize(null_mut())), CKR_OK);
    let kw = Raw::open(&common::keywarden_module());
    assert_eq!(raw!(kw, C_Initialize(null_mut())), CKR_OK);
    let slot = gateway_support::slot(&kw);

    // A sensitive, unextractable AES token key labelled "secret", made through Keywarden.
    let hk = gateway_support::user_session(&kw, slot);
    let (mut len, mut class, mut kt) = (32 as CK_ULONG, CKO_SECRET_KEY, CKK_AES);
    let (mut t, mut f, mut lbl) = ([CK_TRUE], [CK_FALSE], *b"secret");
    let mut tmpl = [
        attr_ulong(CKA_VALUE_LEN, &mut len),
        attr(CKA_TOKEN, &mut t),
        attr(CKA_SENSITIVE, &mut t),
        attr(CKA_EXTRACTABLE, &mut f),
        attr(CKA_LABEL, &mut lbl),
    ];
    let mut m = gateway_support::mech(CKM_AES_KEY_GEN);
    let mut key = 0;
    assert_eq!(
        raw!(
            kw,
            C_GenerateKey(hk, &mut m, tmpl.as_mut_ptr(), 5, &mut key)
        ),
        CKR_OK
    );

    let mut run = |r: &Raw| {
        // Each module finds the key in its own session.
        let h = gateway_support::user_session(r, slot);
        let mut find = [
            attr_ulong(CKA_CLASS, &mut class),
            attr_ulong(CKA_KEY_TYPE, &mut kt),
        ];
        let (mut obj, mut n) = (0, 0);
        assert_eq!(raw!(r, C_FindObjectsInit(h, find.as_mut_ptr(), 2)), CKR_OK);
        assert_eq!(raw!(r, C_FindObjects(h, &mut obj, 1, &mut n)), CKR_OK);
        assert_eq!((raw!(r, C_FindObjectsFinal(h)), n), (CKR_OK, 1));
        let ulong = Some(std::mem::size_of::<CK_ULONG>());
        let out = vec![
            // Case 1: sensitive value, while the other entries are still processed.
            get_raw(
                r,
                h,
                obj,
                &[
                    (CKA_VALUE, Some(32)),
                    (CKA_LABEL, Some(64)),
                    (CKA_VALUE_LEN, ulong),
                ],
            ),
            // Case 2: an attribute type no object has, and one this object lacks.
            get_raw(r, h, obj, &[(0x7fff_0001, Some(8)), (CKA_LABEL, Some(64))]),
            get_raw(r, h, obj, &[(CKA_LABEL, Some(64)), (CKA_MODULUS, Some(8))]),
            // Case 3: size queries.
            get_raw(r, h, obj, &[(CKA_LABEL, None), (CKA_VALUE_LEN, None)]),
            // Case 5: a buffer too small, and a later entry still filled.
            get_raw(r, h, obj, &[(CKA_LABEL, Some(2)), (CKA_VALUE_LEN, ulong)]),
        ];
        assert_eq!(raw!(r, C_CloseSession(h)), CKR_OK);
        out
    };
    let a = run(&direct);
    let b = run(&kw);
    assert_eq!(a, b, "direct vs Keywarden");

    const UNAVAILABLE: CK_ULONG = CK_UNAVAILABLE_INFORMATION;
    let thirty_two = 32 as CK_ULONG;
    let ulong = std::mem::size_of::<CK_ULONG>() as CK_ULONG;
    assert_eq!(b[0].rv, "CKR_ATTRIBUTE_SENSITIVE");
    assert_eq!(b[0].lens, [UNAVAILABLE, 6, ulong]);
    assert_eq!(b[0].values[1], b"secret");
    assert_eq!(b[0].values[2], thirty_two.to_ne_bytes());
    assert_eq!(b[1].rv, "CKR_ATTRIBUTE_TYPE_INVALID");
    assert_eq!(
        (b[1].lens[0], &b[1].values[1][..]),
        (UNAVAILABLE, &b"secret"[..])
    );
    assert_eq!(b[2].rv, "CKR_ATTRIBUTE_TYPE_INVALID");
    assert_eq!(
        (&b[2].values[0][..], b[2].lens[1]),
        (&b"secret"[..], UNAVAILABLE)
    );
    assert_eq!(
        (b[3].rv.as_str(), &b[3].lens[..]),
        ("CKR_OK", &[6, ulong][..])
    );
    assert_eq!(b[4].rv, "CKR_BUFFER_TOO_SMALL");
    assert_eq!(b[4].lens, [UNAVAILABLE, ulong]);
    assert_eq!(b[4].values[1], thirty_two.to_ne_bytes());
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
