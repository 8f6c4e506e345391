use proptest::prelude::*;

use super::*;
use pkcs11_sys::{CKA_LABEL, CKA_VALUE, CKA_WRAP_TEMPLATE};

fn round_trip(attrs: &[WireAttr<'_>]) -> Vec<u8> {
    let mut e = Encoder::default();
    e.template(attrs).unwrap();
    e.finish()
}

#[test]
fn integers_strings_and_capacities_round_trip() {
    let mut e = Encoder::new(&[9]);
    e.u8(7).u32(0xdead_beef).u64(u64::MAX).ulong(42);
    e.bytes(b"abc").unwrap().capacity(None).capacity(Some(256));
    let body = e.finish();
    assert_eq!(body[0], 9);
    let mut d = Decoder::new(&body[1..]);
    assert_eq!(d.u8().unwrap(), 7);
    assert_eq!(d.u32().unwrap(), 0xdead_beef);
    assert_eq!(d.u64().unwrap(), u64::MAX);
    assert_eq!(d.ulong().unwrap(), 42);
    assert_eq!(d.bytes().unwrap(), b"abc");
    assert_eq!(d.capacity().unwrap(), None);
    assert_eq!(d.capacity().unwrap(), Some(256));
    d.finish().unwrap();
}

#[test]
fn a_template_with_a_nested_array_round_trips() {
    let inner = vec![WireAttr {
        type_: CKA_LABEL,
        value: WireValue::Bytes(b"wrapped"),
    }];
    let attrs = vec![
        WireAttr {
            type_: CKA_VALUE,
            value: WireValue::Absent(32),
        },
        WireAttr {
            type_: CKA_WRAP_TEMPLATE,
            value: WireValue::Nested(inner),
        },
    ];
    let body = round_trip(&attrs);
    let mut d = Decoder::new(&body);
    assert_eq!(d.template().unwrap(), attrs);
    d.finish().unwrap();
}

#[test]
fn nesting_is_one_level_and_only_under_an_array_attribute() {
    // A nested value under a plain attribute type.
    let mut e = Encoder::default();
    e.count(1)
        .unwrap()
        .ulong(CKA_LABEL)
        .u8(TAG_NESTED)
        .count(0)
        .unwrap();
    let body = e.finish();
    assert!(Decoder::new(&body).template().is_err());
    // Two levels.
    let two = WireAttr {
        type_: CKA_WRAP_TEMPLATE,
        value: WireValue::Nested(vec![WireAttr {
            type_: CKA_WRAP_TEMPLATE,
            value: WireValue::Nested(vec![]),
        }]),
    };
    assert!(Encoder::default().template(&[two]).is_err());
    let mut e = Encoder::default();
    e.count(1).unwrap().ulong(CKA_WRAP_TEMPLATE).u8(TAG_NESTED);
    e.count(1)
        .unwrap()
        .ulong(CKA_WRAP_TEMPLATE)
        .u8(TAG_NESTED)
        .count(0)
        .unwrap();
    let body = e.finish();
    assert!(Decoder::new(&body).template().is_err());
}

#[test]
fn hostile_lengths_and_counts_are_refused_without_allocating_for_them() {
    // A byte string claiming 4 GiB.
    let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
    assert!(matches!(d.bytes(), Err(WireError::Malformed(_))));
    // A template claiming more entries than the frame could hold, or than the limit.
    for n in [3u32, MAX_COUNT as u32 + 1, u32::MAX] {
        let mut body = n.to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 26]);
        assert!(Decoder::new(&body).template().is_err(), "{n}");
    }
    // A count over the limit is refused when encoding too.
    assert!(Encoder::default().count(MAX_COUNT + 1).is_err());
    // Trailing bytes.
    let d = Decoder::new(&[1]);
    assert_eq!(d.finish(), Err(WireError::Trailing(1)));
    // Bad tags.
    assert!(Decoder::new(&[2]).capacity().is_err());
    let mut e = Encoder::default();
    e.count(1).unwrap().ulong(CKA_LABEL).u8(9);
    assert!(Decoder::new(&e.finish()).template().is_err());
}

fn attr() -> impl Strategy<Value = (u64, Option<Vec<u8>>, u64)> {
    (
        any::<u64>().prop_map(|t| t & !u64::from(CKF_ARRAY_ATTRIBUTE as u32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        any::<u64>(),
    )
}

proptest! {
    #[test]
    fn templates_round_trip(attrs in proptest::collection::vec(attr(), 0..20)) {
        let attrs: Vec<WireAttr<'_>> = attrs
            .iter()
            .map(|(t, v, len)| WireAttr {
                type_: *t as CK_ATTRIBUTE_TYPE,
                value: match v {
                    Some(b) => WireValue::Bytes(b),
                    None => WireValue::Absent(*len),
                },
            })
            .collect();
        let body = round_trip(&attrs);
        let mut d = Decoder::new(&body);
        prop_assert_eq!(d.template().unwrap(), attrs);
        prop_assert!(d.finish().is_ok());
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Decoder::new(&body);
        let _ = d.template();
        let mut d = Decoder::new(&body);
        let _ = (d.bytes(), d.capacity(), d.ulong(), d.count(1));
    }
}
