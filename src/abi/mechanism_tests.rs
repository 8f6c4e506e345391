use super::*;

/// Builds a parameter struct's bytes field by field, as a C client would lay it out.
struct Bytes(Vec<u8>);

impl Bytes {
    fn new(size: usize) -> Bytes {
        Bytes(vec![0; size])
    }
    fn ulong(mut self, at: usize, v: CK_ULONG) -> Bytes {
        self.0[at..at + size_of::<CK_ULONG>()].copy_from_slice(&v.to_ne_bytes());
        self
    }
    /// A non-NULL pointer value that points nowhere: the decoder must never follow it.
    fn ptr(mut self, at: usize) -> Bytes {
        let bogus = usize::MAX - 0xfff;
        self.0[at..at + size_of::<usize>()].copy_from_slice(&bogus.to_ne_bytes());
        self
    }
}

fn decode(mechanism: CK_MECHANISM_TYPE, param: Option<&[u8]>) -> Result<MechParams> {
    MechanismView { mechanism, param }
        .decode()
        .map(|s| s.params)
}

fn code(r: Result<MechParams>) -> CK_RV {
    r.map(|_| CKR_OK).unwrap_or_else(|e| e.rv())
}

fn gcm(layout: GcmLayout, iv: Option<CK_ULONG>, aad: Option<CK_ULONG>, tag: CK_ULONG) -> Vec<u8> {
    let [p_iv, iv_len, p_aad, aad_len, tag_bits] = layout.offsets();
    let mut b = Bytes::new(layout.size()).ulong(tag_bits, tag);
    if let Some(n) = iv {
        b = b.ptr(p_iv).ulong(iv_len, n);
    }
    if let Some(n) = aad {
        b = b.ptr(p_aad).ulong(aad_len, n);
    }
    if layout == GcmLayout::WithIvBits {
        b = b.ulong(offset_of!(CK_GCM_PARAMS, ulIvBits), iv.unwrap_or(0) * 8);
    }
    b.0
}

#[test]
fn gcm_layouts_have_distinct_sizes_and_the_same_summary() {
    assert_ne!(
        GcmLayout::WithIvBits.size(),
        GcmLayout::WithoutIvBits.size()
    );
    #[cfg(all(target_pointer_width = "64", not(target_os = "windows")))]
    assert_eq!(
        (
            GcmLayout::WithIvBits.size(),
            GcmLayout::WithoutIvBits.size()
        ),
        (48, 40)
    );
    let want = MechParams::Gcm {
        iv_len: 12,
        aad_len: 20,
        tag_bits: 128,
    };
    for layout in [GcmLayout::WithIvBits, GcmLayout::WithoutIvBits] {
        assert_eq!(GcmLayout::from_len(layout.size()), Some(layout));
        let p = gcm(layout, Some(12), Some(20), 128);
        assert_eq!(decode(CKM_AES_GCM, Some(&p)).unwrap(), want, "{layout:?}");
    }
}

#[test]
fn gcm_null_buffers_need_zero_lengths() {
    for layout in [GcmLayout::WithIvBits, GcmLayout::WithoutIvBits] {
        let [p_iv, iv_len, p_aad, aad_len, _] = layout.offsets();
        // NULL AAD with length 0 is fine (the spec says pAAD may be NULL then).
        let p = gcm(layout, Some(12), None, 96);
        assert!(matches!(
            decode(CKM_AES_GCM, Some(&p)),
            Ok(MechParams::Gcm { aad_len: 0, .. })
        ));
        let p = Bytes::new(layout.size()).ulong(iv_len, 12).ptr(p_aad).0;
        assert_eq!(
            code(decode(CKM_AES_GCM, Some(&p))),
            CKR_MECHANISM_PARAM_INVALID
        );
        let p = Bytes::new(layout.size())
            .ptr(p_iv)
            .ulong(iv_len, 12)
            .ulong(aad_len, 1)
            .0;
        assert_eq!(
            code(decode(CKM_AES_GCM, Some(&p))),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}

#[test]
fn known_mechanisms_refuse_wrong_sizes() {
    let cases: &[(CK_MECHANISM_TYPE, usize)] = &[
        (CKM_AES_GCM, GcmLayout::WithIvBits.size()),
        (CKM_AES_CCM, size_of::<CK_CCM_PARAMS>()),
        (CKM_RSA_PKCS_PSS, size_of::<CK_RSA_PKCS_PSS_PARAMS>()),
        (CKM_SHA256_RSA_PKCS_PSS, size_of::<CK_RSA_PKCS_PSS_PARAMS>()),
        (CKM_RSA_PKCS_OAEP, size_of::<CK_RSA_PKCS_OAEP_PARAMS>()),
        (CKM_AES_CTR, size_of::<CK_AES_CTR_PARAMS>()),
        (CKM_ECDH1_DERIVE, size_of::<CK_ECDH1_DERIVE_PARAMS>()),
        (CKM_AES_CBC, 16),
        (CKM_AES_CBC_PAD, 16),
        (CKM_DES3_CBC, 8),
    ];
    for &(m, size) in cases {
        let name = mechanism_name(m);
        assert_eq!(
            code(decode(m, None)),
            CKR_MECHANISM_PARAM_INVALID,
            "{name} NULL"
        );
        for len in [size - 1, size + 1, size * 2] {
            let p = vec![0u8; len];
            if m == CKM_AES_GCM && GcmLayout::from_len(len).is_some() {
                continue;
            }
            assert_eq!(
                code(decode(m, Some(&p))),
                CKR_MECHANISM_PARAM_INVALID,
                "{name} {len}"
            );
        }
        assert!(
            decode(m, Some(&vec![0u8; size])).is_ok(),
            "{name} right size"
        );
    }
}

#[test]
fn rsa_parameters_are_summarised() {
    let p = Bytes::new(size_of::<CK_RSA_PKCS_PSS_PARAMS>())
        .ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, hashAlg), CKM_SHA256)
        .ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, mgf), CKG_MGF1_SHA256)
        .ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, sLen), 32)
        .0;
    let s = MechanismView {
        mechanism: CKM_SHA256_RSA_PKCS_PSS,
        param: Some(&p),
    }
    .decode()
    .unwrap();
    assert_eq!(
        s.params,
        MechParams::Pss {
            hash: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32
        }
    );
    assert_eq!(
        s.to_string(),
        "CKM_SHA256_RSA_PKCS_PSS(hash=CKM_SHA256, mgf=CKG_MGF1_SHA256, salt_len=32)"
    );

    let oaep = |label: Option<CK_ULONG>| {
        let mut b = Bytes::new(size_of::<CK_RSA_PKCS_OAEP_PARAMS>())
            .ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, hashAlg), CKM_SHA_1)
            .ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, mgf), CKG_MGF1_SHA1)
            .ulong(
                offset_of!(CK_RSA_PKCS_OAEP_PARAMS, source),
                CKZ_DATA_SPECIFIED,
            );
        if let Some(n) = label {
            b = b
                .ptr(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, pSourceData))
                .ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, ulSourceDataLen), n);
        }
        b.0
    };
    let want = |n| MechParams::Oaep {
        hash: CKM_SHA_1,
        mgf: CKG_MGF1_SHA1,
        source: CKZ_DATA_SPECIFIED,
        source_len: n,
    };
    assert_eq!(
        decode(CKM_RSA_PKCS_OAEP, Some(&oaep(None))).unwrap(),
        want(0)
    );
    assert_eq!(
        decode(CKM_RSA_PKCS_OAEP, Some(&oaep(Some(5)))).unwrap(),
        want(5)
    );
    let null_label =
        Bytes(oaep(None)).ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, ulSourceDataLen), 5);
    assert_eq!(
        code(decode(CKM_RSA_PKCS_OAEP, Some(&null_label.0))),
        CKR_MECHANISM_PARAM_INVALID
    );
}

#[test]
fn ecdh_ccm_ctr_and_iv_parameters_are_summarised() {
    let p = Bytes::new(size_of::<CK_ECDH1_DERIVE_PARAMS>())
        .ulong(offset_of!(CK_ECDH1_DERIVE_PARAMS, kdf), CKD_NULL)
        .ptr(offset_of!(CK_ECDH1_DERIVE_PARAMS, pPublicData))
        .ulong(offset_of!(CK_ECDH1_DERIVE_PARAMS, ulPublicDataLen), 65)
        .0;
    assert_eq!(
        decode(CKM_ECDH1_DERIVE, Some(&p)).unwrap(),
        MechParams::Ecdh1 {
            kdf: CKD_NULL,
            shared_data_len: 0,
            public_data_len: 65
        }
    );
    let no_public = Bytes(p).ulong(offset_of!(CK_ECDH1_DERIVE_PARAMS, ulSharedDataLen), 3);
    assert_eq!(
        code(decode(CKM_ECDH1_COFACTOR_DERIVE, Some(&no_public.0))),
        CKR_MECHANISM_PARAM_INVALID
    );

    let p = Bytes::new(size_of::<CK_CCM_PARAMS>())
        .ulong(offset_of!(CK_CCM_PARAMS, ulDataLen), 100)
        .ptr(offset_of!(CK_CCM_PARAMS, pNonce))
        .ulong(offset_of!(CK_CCM_PARAMS, ulNonceLen), 13)
        .ulong(offset_of!(CK_CCM_PARAMS, ulMACLen), 16)
        .0;
    assert_eq!(
        decode(CKM_AES_CCM, Some(&p)).unwrap(),
        MechParams::Ccm {
            data_len: 100,
            nonce_len: 13,
            aad_len: 0,
            mac_len: 16
        }
    );

    let p = Bytes::new(size_of::<CK_AES_CTR_PARAMS>()).ulong(0, 32).0;
    assert_eq!(
        decode(CKM_AES_CTR, Some(&p)).unwrap(),
        MechParams::Ctr { counter_bits: 32 }
    );
    assert_eq!(
        decode(CKM_AES_CBC_PAD, Some(&[7; 16])).unwrap(),
        MechParams::Iv { iv_len: 16 }
    );
    assert_eq!(
        decode(CKM_DES3_CBC, Some(&[7; 8])).unwrap(),
        MechParams::Iv { iv_len: 8 }
    );
}

#[test]
fn unknown_and_parameterless_mechanisms_pass_through() {
    for (m, p) in [
        (CKM_ECDSA, None),
        (CKM_SHA256_HMAC, Some(&[][..])),
        (CKM_VENDOR_DEFINED + 7, Some(&[1, 2, 3][..])),
        (0x7777_0000, Some(&[0; 200][..])),
    ] {
        let len = p.map_or(0, <[u8]>::len);
        assert_eq!(decode(m, p).unwrap(), MechParams::Other { len });
    }
}

#[test]
fn summaries_and_views_never_show_parameter_bytes() {
    let iv = [0xAB; 16];
    let view = MechanismView {
        mechanism: CKM_AES_CBC,
        param: Some(&iv),
    };
    assert_eq!(format!("{view:?}"), "CKM_AES_CBC(param 16 bytes)");
    let s = view.decode().unwrap();
    assert_eq!(s.to_string(), "CKM_AES_CBC(iv_len=16)");
    assert!(!format!("{s:?}").contains("171"));
    let p = gcm(GcmLayout::WithoutIvBits, Some(12), Some(0), 128);
    let s = MechanismView {
        mechanism: CKM_AES_GCM,
        param: Some(&p),
    }
    .decode()
    .unwrap();
    assert_eq!(
        s.to_string(),
        "CKM_AES_GCM(iv_len=12, aad_len=0, tag_bits=128)"
    );
    let s = MechanismView {
        mechanism: CKM_ECDSA,
        param: None,
    }
    .decode()
    .unwrap();
    assert_eq!(s.to_string(), "CKM_ECDSA");
}
