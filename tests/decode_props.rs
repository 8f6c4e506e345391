//! Properties of the argument decoders (`keywarden::abi::{Template, MechanismView}`):
//! arbitrary input never panics and is either accepted or refused with a documented
//! code; well-formed input round-trips; both GCM layouts mean the same thing.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};

use keywarden::abi::{Attr, EcCurve, GcmLayout, MechParams, MechanismView, Template};
use pkcs11_sys::*;
use proptest::prelude::*;

const ULONG: usize = size_of::<CK_ULONG>();

/// Attribute types with the encoding the decoder must enforce.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ulong,
    Bool,
    Bytes,
}

const KNOWN: &[(CK_ATTRIBUTE_TYPE, Kind)] = &[
    (CKA_CLASS, Kind::Ulong),
    (CKA_KEY_TYPE, Kind::Ulong),
    (CKA_VALUE_LEN, Kind::Ulong),
    (CKA_MODULUS_BITS, Kind::Ulong),
    (CKA_TOKEN, Kind::Bool),
    (CKA_PRIVATE, Kind::Bool),
    (CKA_SENSITIVE, Kind::Bool),
    (CKA_EXTRACTABLE, Kind::Bool),
    (CKA_SIGN, Kind::Bool),
    (CKA_DECRYPT, Kind::Bool),
    (CKA_LABEL, Kind::Bytes),
    (CKA_ID, Kind::Bytes),
    (CKA_VALUE, Kind::Bytes),
    (CKA_EC_PARAMS, Kind::Bytes),
    (CKA_PRIVATE_EXPONENT, Kind::Bytes),
];

fn kind_of(ty: CK_ATTRIBUTE_TYPE) -> Kind {
    KNOWN
        .iter()
        .find(|(t, _)| *t == ty)
        .map_or(Kind::Bytes, |(_, k)| *k)
}

/// A generated attribute: type and value (`None` = NULL pointer).
type RawAttr = (CK_ATTRIBUTE_TYPE, Option<Vec<u8>>);

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        3 => prop::collection::vec(any::<u8>(), 0..=2).prop_map(Some),
        3 => prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], ULONG..=ULONG)
            .prop_map(Some),
        2 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Some),
    ]
}

fn attr_type() -> impl Strategy<Value = CK_ATTRIBUTE_TYPE> {
    prop_oneof![
        4 => prop::sample::select(KNOWN).prop_map(|(t, _)| t),
        // Vendor-defined types: unknown to Keywarden, passed through as bytes.
        1 => (0u32..64).prop_map(|n| CKA_VENDOR_DEFINED + CK_ULONG::from(n)),
    ]
}

fn raw_attrs() -> impl Strategy<Value = Vec<RawAttr>> {
    prop::collection::vec((attr_type(), value()), 0..12)
}

/// The documented outcome, computed independently of the decoder.
fn expected(attrs: &[RawAttr]) -> Result<(), CK_RV> {
    let mut seen: HashMap<CK_ATTRIBUTE_TYPE, &[u8]> = HashMap::new();
    for (ty, v) in attrs {
        let bytes = v.as_deref().unwrap_or(&[]);
        let well_formed = match kind_of(*ty) {
            Kind::Ulong => bytes.len() == ULONG,
            Kind::Bool => bytes == [0] || bytes == [1],
            Kind::Bytes => true,
        };
        if !well_formed {
            return Err(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        if *seen.entry(*ty).or_insert(bytes) != bytes {
            return Err(CKR_TEMPLATE_INCONSISTENT);
        }
    }
    Ok(())
}

fn view(attrs: &[RawAttr]) -> Vec<Attr<'_>> {
    attrs
        .iter()
        .map(|(ty, v)| Attr {
            ty: *ty,
            value: v.as_deref(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Any attribute list parses or is refused with exactly the documented code, and
    /// an accepted one keeps every type with its first value.
    #[test]
    fn arbitrary_templates_parse_or_fail_with_the_documented_code(attrs in raw_attrs()) {
        let parsed = Template::parse(&view(&attrs));
        prop_assert_eq!(parsed.as_ref().map(|_| ()).map_err(|e| e.rv()), expected(&attrs));
        if let Ok(t) = parsed {
            for (ty, v) in &attrs {
                prop_assert!(t.contains(*ty));
                prop_assert_eq!(t.bytes(*ty), Some(v.as_deref().unwrap_or(&[])));
                if kind_of(*ty) == Kind::Ulong {
                    let read = t.ulong(*ty).map(|n| n.to_ne_bytes().to_vec());
                    prop_assert_eq!(read.as_deref(), v.as_deref());
                }
                if kind_of(*ty) == Kind::Bool {
                    prop_assert_eq!(t.flag(*ty), v.as_deref().map(|b| b == [1]));
                }
            }
            // Debug shows names and lengths, nothing else.
            let shown = format!("{t:?}");
            let want: Vec<String> = t.iter().map(|a| match a.value {
                Some(v) => format!("{}({} bytes)", keywarden::abi::attribute_name(a.ty), v.len()),
                None => format!("{}(NULL)", keywarden::abi::attribute_name(a.ty)),
            }).collect();
            prop_assert_eq!(shown, format!("[{}]", want.join(", ")));
        }
    }

    /// Typed values written the way a client writes them come back unchanged, in any
    /// order and with harmless duplicates.
    #[test]
    fn well_formed_templates_round_trip(
        class in any::<CK_ULONG>(),
        key_type in any::<CK_ULONG>(),
        value_len in any::<CK_ULONG>(),
        flags in prop::collection::vec(any::<bool>(), 6),
        label in prop::collection::vec(any::<u8>(), 0..40),
        id in prop::option::of(prop::collection::vec(any::<u8>(), 1..20)),
        curve in prop::sample::select(&EcCurve::ALL[..]),
        seed in any::<u64>(),
        duplicate in any::<bool>(),
    ) {
        let bool_types = [CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_SIGN, CKA_DECRYPT];
        let bools: Vec<[u8; 1]> = flags.iter().map(|&f| [u8::from(f)]).collect();
        let (c, k, v) = (class.to_ne_bytes(), key_type.to_ne_bytes(), value_len.to_ne_bytes());
        let mut attrs = vec![
            Attr::new(CKA_CLASS, &c),
            Attr::new(CKA_KEY_TYPE, &k),
            Attr::new(CKA_VALUE_LEN, &v),
            Attr::new(CKA_LABEL, &label),
            Attr::new(CKA_EC_PARAMS, curve.der_oid()),
        ];
        attrs.extend(bool_types.iter().zip(&bools).map(|(t, b)| Attr::new(*t, b)));
        if let Some(id) = &id {
            attrs.push(Attr::new(CKA_ID, id));
        }
        // A deterministic shuffle driven by `seed`.
        let mut s = seed;
        for i in (1..attrs.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            attrs.swap(i, usize::try_from(s >> 33).unwrap_or(0) % (i + 1));
        }
        if duplicate {
            let again = attrs.clone();
            attrs.extend(again);
        }
        let t = Template::parse(&attrs).unwrap();
        prop_assert_eq!(t.len(), 11 + usize::from(id.is_some()));
        prop_assert_eq!(t.class(), Some(class));
        prop_assert_eq!(t.key_type(), Some(key_type));
        prop_assert_eq!(t.value_len(), Some(value_len));
        prop_assert_eq!(t.label(), Some(&label[..]));
        prop_assert_eq!(t.id(), id.as_deref());
        prop_assert_eq!(t.ec_curve(), Some(curve));
        let got = [t.token(), t.private(), t.sensitive(), t.extractable(), t.sign(), t.decrypt()];
        let want: Vec<_> = flags.iter().map(|&f| Some(f)).collect();
        prop_assert_eq!(&got[..], &want[..]);
    }

    /// Arbitrary parameter bytes for the decoded mechanisms never panic; the only
    /// refusal is CKR_MECHANISM_PARAM_INVALID, and a decoded mechanism is never
    /// summarised as `Other`.
    #[test]
    fn arbitrary_mechanism_params_never_panic(
        mechanism in prop::sample::select(&[
            CKM_AES_GCM, CKM_AES_CCM, CKM_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS,
            CKM_RSA_PKCS_OAEP, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_DES_CBC, CKM_AES_CTR,
            CKM_ECDH1_DERIVE, CKM_ECDSA, 0x7fff_0001,
        ][..]),
        param in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            // Exactly the struct sizes, so the field reads are reached often.
            prop::sample::select(&[8usize, 16, 24, 40, 48][..])
                .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n..=n)),
        ]),
    ) {
        let r = MechanismView { mechanism, param: param.as_deref() }.decode();
        match r {
            Ok(s) => {
                let _ = s.to_string();
                let decoded = mechanism != CKM_ECDSA && mechanism != 0x7fff_0001;
                prop_assert_eq!(matches!(s.params, MechParams::Other { .. }), !decoded);
            }
            Err(e) => prop_assert_eq!(e.rv(), CKR_MECHANISM_PARAM_INVALID),
        }
    }

    /// The same GCM fields in either layout decode to the same summary, or to the
    /// same refusal.
    #[test]
    fn gcm_layouts_decode_to_the_same_summary(
        iv in prop::option::of(any::<CK_ULONG>()),
        iv_len in any::<CK_ULONG>(),
        aad in prop::option::of(any::<CK_ULONG>()),
        aad_len in any::<CK_ULONG>(),
        tag_bits in any::<CK_ULONG>(),
        iv_bits in any::<CK_ULONG>(),
    ) {
        let encode = |layout: GcmLayout| {
            let [p_iv, l_iv, p_aad, l_aad, tag] = layout.offsets();
            let mut b = vec![0u8; layout.size()];
            let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
            let ptr = |p: Option<CK_ULONG>| usize::try_from(p.unwrap_or(0)).unwrap_or(1).to_ne_bytes();
            put(p_iv, &ptr(iv));
            put(l_iv, &iv_len.to_ne_bytes());
            put(p_aad, &ptr(aad));
            put(l_aad, &aad_len.to_ne_bytes());
            put(tag, &tag_bits.to_ne_bytes());
            if layout == GcmLayout::WithIvBits {
                put(offset_of!(CK_GCM_PARAMS, ulIvBits), &iv_bits.to_ne_bytes());
            }
            b
        };
        let decode = |b: &[u8]| {
            MechanismView { mechanism: CKM_AES_GCM, param: Some(b) }
                .decode()
                .map(|s| s.params)
                .map_err(|e| e.rv())
        };
        let six = decode(&encode(GcmLayout::WithIvBits));
        let five = decode(&encode(GcmLayout::WithoutIvBits));
        prop_assert_eq!(six, five);
        let iv_null = iv.unwrap_or(0) == 0;
        let aad_null = aad.unwrap_or(0) == 0;
        let refused = (iv_null && iv_len != 0) || (aad_null && aad_len != 0);
        prop_assert_eq!(six.is_err(), refused);
        if !refused {
            prop_assert_eq!(six, Ok(MechParams::Gcm { iv_len, aad_len, tag_bits }));
        }
    }
}
