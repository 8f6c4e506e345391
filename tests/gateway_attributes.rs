//! Attributes through Keywarden: get and set, and the per-attribute rules of
//! C_GetAttributeValue at the C level.
mod common;
#[macro_use]
mod gateway_support;
mod gateway_objects_support;

use std::path::Path;
use std::ptr::null_mut;

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, KeyType};
use gateway_support::{attr, attr_ulong, code, name, Raw};
use pkcs11_sys::*;

use gateway_objects_support::{find, label, login, populate};

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
