use super::*;

fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn code(r: Result<Template<'_>>) -> CK_RV {
    r.map(|_| CKR_OK).unwrap_or_else(|e| e.rv())
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[test]
fn typed_getters_read_a_key_generation_template() {
    let (class, key_type, bits) = (ul(CKO_PRIVATE_KEY), ul(CKK_EC), ul(2048));
    let mechs: Vec<u8> = [CKM_ECDSA, CKM_ECDSA_SHA256]
        .iter()
        .flat_map(|m| m.to_ne_bytes())
        .collect();
    let attrs = [
        Attr::new(CKA_CLASS, &class),
        Attr::new(CKA_KEY_TYPE, &key_type),
        Attr::new(CKA_TOKEN, &[CK_TRUE]),
        Attr::new(CKA_EXTRACTABLE, &[CK_FALSE]),
        Attr::new(CKA_LABEL, b"ec1"),
        Attr::new(CKA_ID, &[1, 2]),
        Attr::new(CKA_EC_PARAMS, P256),
        Attr::new(CKA_MODULUS_BITS, &bits),
        Attr::new(CKA_ALLOWED_MECHANISMS, &mechs),
    ];
    let t = Template::parse(&attrs).unwrap();
    assert_eq!(t.len(), attrs.len());
    assert_eq!(t.class(), Some(CKO_PRIVATE_KEY));
    assert_eq!(t.key_type(), Some(CKK_EC));
    assert_eq!(t.token(), Some(true));
    assert_eq!(t.extractable(), Some(false));
    assert_eq!(t.sensitive(), None);
    assert_eq!(t.label(), Some(&b"ec1"[..]));
    assert_eq!(t.id(), Some(&[1u8, 2][..]));
    assert_eq!(t.ec_params(), Some(P256));
    assert_eq!(t.ec_curve(), Some(EcCurve::P256));
    assert_eq!(t.modulus_bits(), Some(2048));
    assert_eq!(t.value_len(), None);
    let allowed: Vec<_> = t.allowed_mechanisms().unwrap().collect();
    assert_eq!(allowed, [CKM_ECDSA, CKM_ECDSA_SHA256]);
    // The generic getters agree with the named ones, and refuse the wrong type.
    assert_eq!(t.flag(CKA_TOKEN), Some(true));
    assert_eq!(t.ulong(CKA_TOKEN), None);
    assert_eq!(t.flag(CKA_CLASS), None);
    assert_eq!(t.bytes(CKA_CLASS), Some(&class[..]));
}

#[test]
fn unknown_and_secret_attributes_pass_through_untouched() {
    let vendor = CKA_VENDOR_DEFINED | 0x42;
    let attrs = [
        Attr::new(vendor, &[9, 9, 9]),
        Attr::new(CKA_VALUE, b"k3y"),
        Attr::null(0x7777),
    ];
    let t = Template::parse(&attrs).unwrap();
    let back: Vec<_> = t.iter().collect();
    assert_eq!(back, attrs, "same attributes, same order, same bytes");
    assert_eq!(t.bytes(vendor), Some(&[9u8, 9, 9][..]));
    assert_eq!(t.get(0x7777), Some(Attr::null(0x7777)));
    assert_eq!(t.bytes(0x7777), Some(&[][..]));
    assert!(t.contains(CKA_VALUE) && !t.contains(CKA_LABEL));
}

#[test]
fn ulong_attribute_of_the_wrong_length_is_value_invalid() {
    for len in [0, 1, 4, 7, 9, 16] {
        let v = vec![0u8; len];
        if len == size_of::<CK_ULONG>() {
            continue;
        }
        let r = Template::parse(&[Attr::new(CKA_VALUE_LEN, &v)]);
        assert_eq!(code(r), CKR_ATTRIBUTE_VALUE_INVALID, "len {len}");
    }
    assert_eq!(
        code(Template::parse(&[Attr::null(CKA_CLASS)])),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
}

#[test]
fn bbool_must_be_one_byte_of_zero_or_one() {
    for bad in [&[][..], &[1, 0], &[2], &[0xff]] {
        let r = Template::parse(&[Attr::new(CKA_SENSITIVE, bad)]);
        assert_eq!(code(r), CKR_ATTRIBUTE_VALUE_INVALID, "{bad:?}");
    }
    assert_eq!(
        code(Template::parse(&[Attr::null(CKA_SIGN)])),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
}

#[test]
fn allowed_mechanisms_must_be_whole_ulongs() {
    let r = Template::parse(&[Attr::new(CKA_ALLOWED_MECHANISMS, &[1, 2, 3])]);
    assert_eq!(code(r), CKR_ATTRIBUTE_VALUE_INVALID);
    let t = Template::parse(&[Attr::null(CKA_ALLOWED_MECHANISMS)]).unwrap();
    assert_eq!(t.allowed_mechanisms().map(Iterator::count), Some(0));
}

#[test]
fn duplicates_agree_or_are_inconsistent() {
    let (a, b) = (ul(CKO_SECRET_KEY), ul(CKO_PRIVATE_KEY));
    let same = Template::parse(&[
        Attr::new(CKA_CLASS, &a),
        Attr::new(CKA_LABEL, b"x"),
        Attr::new(CKA_CLASS, &a),
    ])
    .unwrap();
    assert_eq!(same.len(), 2);
    assert_eq!(same.class(), Some(CKO_SECRET_KEY));
    let r = Template::parse(&[Attr::new(CKA_CLASS, &a), Attr::new(CKA_CLASS, &b)]);
    assert_eq!(code(r), CKR_TEMPLATE_INCONSISTENT);
    let r = Template::parse(&[Attr::new(CKA_TOKEN, &[1]), Attr::new(CKA_TOKEN, &[0])]);
    assert_eq!(code(r), CKR_TEMPLATE_INCONSISTENT);
    // An unknown attribute is compared by its bytes; NULL and empty are the same.
    let r = Template::parse(&[Attr::new(0x9999, b"a"), Attr::new(0x9999, b"b")]);
    assert_eq!(code(r), CKR_TEMPLATE_INCONSISTENT);
    let ok = Template::parse(&[Attr::null(CKA_LABEL), Attr::new(CKA_LABEL, b"")]);
    assert_eq!(ok.map(|t| t.len()).ok(), Some(1));
}

#[test]
fn the_first_offending_attribute_decides_the_code() {
    let (a, b) = (ul(1), ul(2));
    let r = Template::parse(&[
        Attr::new(CKA_CLASS, &a),
        Attr::new(CKA_CLASS, &b),
        Attr::new(CKA_TOKEN, &[7]),
    ]);
    assert_eq!(code(r), CKR_TEMPLATE_INCONSISTENT);
    let r = Template::parse(&[
        Attr::new(CKA_TOKEN, &[7]),
        Attr::new(CKA_CLASS, &a),
        Attr::new(CKA_CLASS, &b),
    ]);
    assert_eq!(code(r), CKR_ATTRIBUTE_VALUE_INVALID);
}

#[test]
fn debug_prints_types_and_lengths_never_values() {
    let secret = b"SUPERSECRETPRIME";
    let attrs = [
        Attr::new(CKA_PRIME_1, secret),
        Attr::new(CKA_VALUE, secret),
        Attr::null(CKA_PRIVATE_EXPONENT),
        Attr::new(CKA_TOKEN, &[1]),
    ];
    let t = Template::parse(&attrs).unwrap();
    let shown = format!("{t:?} {:?}", attrs[0]);
    assert!(!shown.contains("SUPERSECRET"), "{shown}");
    assert!(!shown.contains("83, 85"), "no byte lists either: {shown}");
    assert_eq!(
        format!("{t:?}"),
        "[CKA_PRIME_1(16 bytes), CKA_VALUE(16 bytes), CKA_PRIVATE_EXPONENT(NULL), CKA_TOKEN(1 bytes)]"
    );
}

#[test]
fn curves_are_named_from_their_der_encodings() {
    for curve in EcCurve::ALL {
        let der = curve.der_oid();
        assert_eq!(der.first(), Some(&0x06), "{curve:?}");
        assert_eq!(usize::from(der[1]) + 2, der.len(), "{curve:?} DER length");
        assert_eq!(EcCurve::from_ec_params(der), Some(curve));
    }
    assert_eq!(
        EcCurve::from_ec_params(b"\x13\x0cedwards25519"),
        Some(EcCurve::Ed25519)
    );
    assert_eq!(
        EcCurve::from_ec_params(b"\x13\x0acurve25519"),
        Some(EcCurve::X25519)
    );
    assert_eq!(EcCurve::P256.name(), "P-256");
    assert_eq!(EcCurve::Secp256k1.name(), "secp256k1");
    // Truncated, padded and explicit-parameter encodings are not named.
    assert_eq!(EcCurve::from_ec_params(&P256[..9]), None);
    assert_eq!(EcCurve::from_ec_params(&[P256, &[0]].concat()), None);
    assert_eq!(
        EcCurve::from_ec_params(&[0x30, 0x03, 0x02, 0x01, 0x01]),
        None
    );
    assert_eq!(EcCurve::from_ec_params(&[]), None);
}
