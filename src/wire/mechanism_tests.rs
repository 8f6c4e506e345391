use std::mem::{offset_of, size_of};

use proptest::prelude::*;

use super::*;
use crate::abi::{MechParams, MechanismView};

/// `CK_GCM_PARAMS` bytes with the given pointer values and lengths.
fn gcm_bytes(iv: (usize, usize), aad: (usize, usize), tag_bits: usize) -> Vec<u8> {
    let mut b = vec![0u8; size_of::<CK_GCM_PARAMS>()];
    let mut put = |at: usize, v: usize| b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    put(offset_of!(CK_GCM_PARAMS, pIv), iv.0);
    put(offset_of!(CK_GCM_PARAMS, ulIvLen), iv.1);
    put(offset_of!(CK_GCM_PARAMS, ulIvBits), iv.1 * 8);
    put(offset_of!(CK_GCM_PARAMS, pAAD), aad.0);
    put(offset_of!(CK_GCM_PARAMS, ulAADLen), aad.1);
    put(offset_of!(CK_GCM_PARAMS, ulTagBits), tag_bits);
    b
}

fn decode(body: &[u8]) -> WireResult<OwnedMechanism> {
    let mut d = Decoder::new(body);
    let m = OwnedMechanism::decode(&mut d)?;
    d.finish()?;
    Ok(m)
}

#[test]
fn a_gcm_parameter_arrives_with_its_buffers_and_fresh_pointers() {
    let (iv, aad) = ([7u8; 12], *b"header");
    // The sender's addresses: meaningless to the receiver, so any values do.
    let param = gcm_bytes((0x1000, iv.len()), (0x2000, aad.len()), 128);
    let ParamShape::Pointers(fields) = param_shape(CKM_AES_GCM, &param) else {
        panic!("GCM has pointer fields");
    };
    assert_eq!(
        pointed(&fields, &param).unwrap(),
        [(0x1000, 12), (0x2000, 6)]
    );
    let mut e = Encoder::default();
    encode(&mut e, CKM_AES_GCM, Some(&param), |_| Ok(vec![&iv, &aad])).unwrap();
    let mut m = decode(&e.finish()).unwrap();
    assert_eq!(m.inner(), [iv.to_vec(), aad.to_vec()]);
    let got = m.param_bytes();
    let now = pointed(&fields, &got).unwrap();
    assert_eq!(now[0], (m.inner()[0].as_ptr() as usize, 12));
    assert_eq!(now[1], (m.inner()[1].as_ptr() as usize, 6));
    let view = MechanismView {
        mechanism: CKM_AES_GCM,
        param: Some(&got),
    };
    assert!(matches!(
        view.decode().unwrap().params,
        MechParams::Gcm {
            iv_len: 12,
            aad_len: 6,
            tag_bits: 128
        }
    ));
    let ck = m.as_ck();
    assert_eq!(ck.mechanism, CKM_AES_GCM);
    assert_eq!(ck.ulParameterLen as usize, param.len());
    assert_eq!(ck.pParameter as usize % 8, 0, "struct storage is aligned");
}

#[test]
fn an_empty_buffer_arrives_as_null() {
    let param = gcm_bytes((0x1000, 12), (0, 0), 128);
    let mut e = Encoder::default();
    encode(&mut e, CKM_AES_GCM, Some(&param), |_| {
        Ok(vec![&[1; 12], &[]])
    })
    .unwrap();
    let m = decode(&e.finish()).unwrap();
    let ParamShape::Pointers(fields) = param_shape(CKM_AES_GCM, &param) else {
        panic!("GCM has pointer fields");
    };
    assert_eq!(pointed(&fields, &m.param_bytes()).unwrap()[1], (0, 0));
}

#[test]
fn flat_and_empty_parameters_travel_as_they_are() {
    for (mech, param) in [
        (CKM_AES_CBC_PAD, vec![9u8; 16]),
        (CKM_SHA256_HMAC_GENERAL, 16usize.to_ne_bytes().to_vec()),
        (CKM_ECDSA, vec![]),
        // A mechanism this build does not know, without a parameter.
        (CKM_VENDOR_DEFINED | 0x42, vec![]),
    ] {
        let mut e = Encoder::default();
        encode(&mut e, mech, Some(&param), |_| Ok(vec![])).unwrap();
        let mut m = decode(&e.finish()).unwrap();
        assert_eq!(m.mechanism(), mech);
        assert_eq!(m.param_bytes(), param);
        assert_eq!(m.as_ck().pParameter.is_null(), param.is_empty());
    }
}

#[test]
fn a_parameter_that_may_hold_pointers_is_not_carried() {
    let unknown = CKM_VENDOR_DEFINED | 0x42;
    let mut e = Encoder::default();
    assert_eq!(
        encode(&mut e, unknown, Some(&[0; 16]), |_| Ok(vec![])),
        Err(WireError::Param)
    );
    // Nor accepted when a peer sends it as flat bytes, or a GCM struct as flat.
    for (mech, param) in [
        (unknown, vec![0u8; 16]),
        (CKM_AES_GCM, gcm_bytes((1, 1), (0, 0), 96)),
    ] {
        let mut e = Encoder::default();
        e.ulong(mech).u8(TAG_FLAT).bytes(&param).unwrap();
        assert_eq!(decode(&e.finish()).unwrap_err(), WireError::Param);
    }
}

#[test]
fn inner_buffers_must_match_the_struct() {
    let param = gcm_bytes((0x1000, 12), (0x2000, 6), 128);
    // One buffer of the wrong length, and the wrong number of buffers.
    for inner in [vec![vec![0u8; 12], vec![0u8; 5]], vec![vec![0u8; 12]]] {
        let mut e = Encoder::default();
        e.ulong(CKM_AES_GCM).u8(TAG_STRUCT).bytes(&param).unwrap();
        e.count(inner.len()).unwrap();
        for b in &inner {
            e.bytes(b).unwrap();
        }
        assert!(matches!(decode(&e.finish()), Err(WireError::Malformed(_))));
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panicking(
        mech in prop_oneof![Just(CKM_AES_GCM), Just(CKM_AES_CCM), Just(CKM_RSA_PKCS_OAEP), any::<u64>()],
        tag in 0u8..4,
        rest in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut body = mech.to_le_bytes().to_vec();
        body.push(tag);
        body.extend_from_slice(&rest);
        let _ = decode(&body);
    }
}
