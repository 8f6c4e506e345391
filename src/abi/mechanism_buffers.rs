//! The pointers *inside* mechanism parameter structs, checked before a call is
//! forwarded (docs/abi-conventions.md, "Mechanism parameters").
//!
//! A parameter struct such as `CK_GCM_PARAMS` carries (pointer, length) pairs
//! (`pIv`/`ulIvLen`, `pAAD`/`ulAADLen`, …). A token that trusts a non-zero length
//! reads through the pointer; with a NULL pointer it crashes (SoftHSM 2.6 does, for
//! GCM). Keywarden refuses such a parameter with `CKR_MECHANISM_PARAM_INVALID`, the
//! code §5 gives for a parameter the mechanism cannot use, as it refuses a NULL
//! `pParameter` with a length (`CKR_ARGUMENTS_BAD`, `ffi::decode`).
//!
//! Only the struct's own bytes are read (whether a pointer field is all zero, and
//! its length field); no pointer is followed. A struct is checked when the
//! parameter has exactly its size (both `CK_GCM_PARAMS` layouts are known); any
//! other size goes to the token, which judges it, as it would directly.

use std::mem::{offset_of, size_of};

use pkcs11_sys::*;

#[cfg(test)]
use super::mechanism::GcmLayout;
use super::mechanism::GcmParamsWithoutIvBits;
use crate::error::{Error, Result};

/// A pointer field, and the field holding how many bytes it points to (`None`:
/// a pointer the mechanism always follows, with no length of its own).
struct Buffer {
    ptr: usize,
    len: Option<usize>,
    what: &'static str,
}

/// A parameter struct of `size` bytes and its pointer fields.
struct Layout {
    size: usize,
    buffers: &'static [Buffer],
}

macro_rules! buffer {
    ($t:ty, $p:ident, $l:ident, $what:literal) => {
        Buffer {
            ptr: offset_of!($t, $p),
            len: Some(offset_of!($t, $l)),
            what: $what,
        }
    };
    ($t:ty, $p:ident, $what:literal) => {
        Buffer {
            ptr: offset_of!($t, $p),
            len: None,
            what: $what,
        }
    };
}

/// Both `CK_GCM_PARAMS` layouts (see `GcmLayout`), told apart by their size.
const GCM: [Layout; 2] = [
    Layout {
        size: size_of::<CK_GCM_PARAMS>(),
        buffers: &[
            buffer!(
                CK_GCM_PARAMS,
                pIv,
                ulIvLen,
                "GCM pIv is NULL with ulIvLen > 0"
            ),
            buffer!(
                CK_GCM_PARAMS,
                pAAD,
                ulAADLen,
                "GCM pAAD is NULL with ulAADLen > 0"
            ),
        ],
    },
    Layout {
        size: size_of::<GcmParamsWithoutIvBits>(),
        buffers: &[
            buffer!(
                GcmParamsWithoutIvBits,
                pIv,
                ulIvLen,
                "GCM pIv is NULL with ulIvLen > 0"
            ),
            buffer!(
                GcmParamsWithoutIvBits,
                pAAD,
                ulAADLen,
                "GCM pAAD is NULL with ulAADLen > 0"
            ),
        ],
    },
];

const CCM: Layout = Layout {
    size: size_of::<CK_CCM_PARAMS>(),
    buffers: &[
        buffer!(
            CK_CCM_PARAMS,
            pNonce,
            ulNonceLen,
            "CCM pNonce is NULL with ulNonceLen > 0"
        ),
        buffer!(
            CK_CCM_PARAMS,
            pAAD,
            ulAADLen,
            "CCM pAAD is NULL with ulAADLen > 0"
        ),
    ],
};

const OAEP: Layout = Layout {
    size: size_of::<CK_RSA_PKCS_OAEP_PARAMS>(),
    buffers: &[buffer!(
        CK_RSA_PKCS_OAEP_PARAMS,
        pSourceData,
        ulSourceDataLen,
        "OAEP pSourceData is NULL with ulSourceDataLen > 0"
    )],
};

const ECDH1: Layout = Layout {
    size: size_of::<CK_ECDH1_DERIVE_PARAMS>(),
    buffers: &[
        buffer!(
            CK_ECDH1_DERIVE_PARAMS,
            pSharedData,
            ulSharedDataLen,
            "ECDH pSharedData is NULL with ulSharedDataLen > 0"
        ),
        buffer!(
            CK_ECDH1_DERIVE_PARAMS,
            pPublicData,
            ulPublicDataLen,
            "ECDH pPublicData is NULL with ulPublicDataLen > 0"
        ),
    ],
};

const ECDH2: Layout = Layout {
    size: size_of::<CK_ECDH2_DERIVE_PARAMS>(),
    buffers: &[
        buffer!(
            CK_ECDH2_DERIVE_PARAMS,
            pSharedData,
            ulSharedDataLen,
            "ECDH pSharedData is NULL with ulSharedDataLen > 0"
        ),
        buffer!(
            CK_ECDH2_DERIVE_PARAMS,
            pPublicData,
            ulPublicDataLen,
            "ECDH pPublicData is NULL with ulPublicDataLen > 0"
        ),
        buffer!(
            CK_ECDH2_DERIVE_PARAMS,
            pPublicData2,
            ulPublicDataLen2,
            "ECMQV pPublicData2 is NULL with ulPublicDataLen2 > 0"
        ),
    ],
};

const STRING_DATA: Layout = Layout {
    size: size_of::<CK_KEY_DERIVATION_STRING_DATA>(),
    buffers: &[buffer!(
        CK_KEY_DERIVATION_STRING_DATA,
        pData,
        ulLen,
        "derivation pData is NULL with ulLen > 0"
    )],
};

const AES_CBC_DATA: Layout = Layout {
    size: size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>(),
    buffers: &[buffer!(
        CK_AES_CBC_ENCRYPT_DATA_PARAMS,
        pData,
        length,
        "CBC-encrypt-data pData is NULL with length > 0"
    )],
};

const DES_CBC_DATA: Layout = Layout {
    size: size_of::<CK_DES_CBC_ENCRYPT_DATA_PARAMS>(),
    buffers: &[buffer!(
        CK_DES_CBC_ENCRYPT_DATA_PARAMS,
        pData,
        length,
        "CBC-encrypt-data pData is NULL with length > 0"
    )],
};

const EDDSA: Layout = Layout {
    size: size_of::<CK_EDDSA_PARAMS>(),
    buffers: &[buffer!(
        CK_EDDSA_PARAMS,
        pContextData,
        ulContextDataLen,
        "EdDSA pContextData is NULL with ulContextDataLen > 0"
    )],
};

const SET_OAEP: Layout = Layout {
    size: size_of::<CK_KEY_WRAP_SET_OAEP_PARAMS>(),
    buffers: &[buffer!(
        CK_KEY_WRAP_SET_OAEP_PARAMS,
        pX,
        ulXLen,
        "SET-OAEP pX is NULL with ulXLen > 0"
    )],
};

/// `CK_RSA_AES_KEY_WRAP_PARAMS.pOAEPParams` has no length: the mechanism always
/// reads the OAEP parameters through it.
const RSA_AES_WRAP: Layout = Layout {
    size: size_of::<CK_RSA_AES_KEY_WRAP_PARAMS>(),
    buffers: &[buffer!(
        CK_RSA_AES_KEY_WRAP_PARAMS,
        pOAEPParams,
        "RSA-AES key wrap pOAEPParams is NULL"
    )],
};

/// The parameter structs `mechanism` may take (both GCM layouts; one for the
/// others with inner pointers; none for the rest): told apart by their size.
#[inline]
fn layouts_of(mechanism: CK_MECHANISM_TYPE) -> &'static [Layout] {
    match mechanism {
        CKM_AES_GCM => &GCM,
        m => layout_of(m).map_or(&[], std::slice::from_ref),
    }
}

/// The parameter struct (other than GCM's) each mechanism with inner pointers takes.
fn layout_of(mechanism: CK_MECHANISM_TYPE) -> Option<&'static Layout> {
    Some(match mechanism {
        CKM_AES_CCM => &CCM,
        CKM_RSA_PKCS_OAEP => &OAEP,
        CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => &ECDH1,
        CKM_ECMQV_DERIVE => &ECDH2,
        CKM_CONCATENATE_BASE_AND_DATA
        | CKM_CONCATENATE_DATA_AND_BASE
        | CKM_XOR_BASE_AND_DATA
        | CKM_AES_ECB_ENCRYPT_DATA
        | CKM_DES_ECB_ENCRYPT_DATA
        | CKM_DES3_ECB_ENCRYPT_DATA => &STRING_DATA,
        CKM_AES_CBC_ENCRYPT_DATA => &AES_CBC_DATA,
        CKM_DES_CBC_ENCRYPT_DATA | CKM_DES3_CBC_ENCRYPT_DATA => &DES_CBC_DATA,
        CKM_EDDSA => &EDDSA,
        CKM_KEY_WRAP_SET_OAEP => &SET_OAEP,
        CKM_RSA_AES_KEY_WRAP => &RSA_AES_WRAP,
        _ => return None,
    })
}

fn field<const N: usize>(param: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    param.get(offset..end)?.try_into().ok()
}

/// Runs on every `*Init` with a parameter: the length first (usually non-zero),
/// then the pointer as one word (NULL is all-zero bits on every platform PKCS#11
/// runs on).
#[inline]
fn check(param: &[u8], buffers: &[Buffer]) -> Result<()> {
    for b in buffers {
        let needed = match b.len {
            None => true,
            Some(at) => field::<{ size_of::<CK_ULONG>() }>(param, at)
                .is_some_and(|n| CK_ULONG::from_ne_bytes(n) != 0),
        };
        if needed
            && field::<{ size_of::<usize>() }>(param, b.ptr)
                .is_some_and(|p| usize::from_ne_bytes(p) == 0)
        {
            return Err(Error::Invalid(CKR_MECHANISM_PARAM_INVALID, b.what));
        }
    }
    Ok(())
}

/// A pointer field of a parameter struct and the field holding its length, as
/// byte offsets into the struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointerField {
    /// Offset of the pointer.
    pub ptr: usize,
    /// Offset of its `CK_ULONG` length.
    pub len: usize,
}

impl PointerField {
    /// The pointer's value and its length as `param` holds them (`None` when the
    /// fields lie outside it or the length does not fit a `usize`).
    pub fn read(&self, param: &[u8]) -> Option<(usize, usize)> {
        let ptr = usize::from_ne_bytes(field(param, self.ptr)?);
        let len = CK_ULONG::from_ne_bytes(field(param, self.len)?);
        Some((ptr, usize::try_from(len).ok()?))
    }
}

/// How a mechanism parameter can be carried to another process, where its
/// pointers would mean nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamShape {
    /// No parameter bytes.
    Empty,
    /// Bytes with no pointer in them (an IV, `CK_RSA_PKCS_PSS_PARAMS`, …).
    Flat,
    /// A struct whose pointer fields name buffers of the lengths beside them.
    Pointers(Vec<PointerField>),
    /// Not known to be free of pointers (or a pointer without a length): it
    /// cannot be carried.
    Unknown,
}

/// Mechanisms whose parameter is known to hold no pointer beyond those `decode`
/// summarises: `CK_MAC_GENERAL_PARAMS` (a length) and the AES key-wrap IV.
fn flat_besides_decoded(mechanism: CK_MECHANISM_TYPE) -> bool {
    matches!(
        mechanism,
        CKM_SHA_1_HMAC_GENERAL
            | CKM_SHA224_HMAC_GENERAL
            | CKM_SHA256_HMAC_GENERAL
            | CKM_SHA384_HMAC_GENERAL
            | CKM_SHA512_HMAC_GENERAL
            | CKM_SHA3_224_HMAC_GENERAL
            | CKM_SHA3_256_HMAC_GENERAL
            | CKM_SHA3_384_HMAC_GENERAL
            | CKM_SHA3_512_HMAC_GENERAL
            | CKM_AES_MAC_GENERAL
            | CKM_AES_CMAC_GENERAL
            | CKM_AES_KEY_WRAP
            | CKM_AES_KEY_WRAP_PAD
    )
}

/// The shape of `param` as `mechanism`'s parameter.
pub fn param_shape(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> ParamShape {
    use super::mechanism::{MechParams, MechanismView};
    if param.is_empty() {
        return ParamShape::Empty;
    }
    let layouts = layouts_of(mechanism);
    if let Some(l) = layouts.iter().find(|l| l.size == param.len()) {
        let fields: Option<Vec<PointerField>> = l
            .buffers
            .iter()
            .map(|b| b.len.map(|len| PointerField { ptr: b.ptr, len }))
            .collect();
        return fields.map_or(ParamShape::Unknown, ParamShape::Pointers);
    }
    if !layouts.is_empty() {
        return ParamShape::Unknown;
    }
    let view = MechanismView {
        mechanism,
        param: Some(param),
    };
    match view.decode() {
        Ok(s)
            if matches!(
                s.params,
                MechParams::Iv { .. } | MechParams::Pss { .. } | MechParams::Ctr { .. }
            ) =>
        {
            ParamShape::Flat
        }
        _ if flat_besides_decoded(mechanism) => ParamShape::Flat,
        _ => ParamShape::Unknown,
    }
}

/// `Err(CKR_MECHANISM_PARAM_INVALID)` when `param`, read as `mechanism`'s
/// parameter struct, has a NULL pointer the token would read through.
pub fn check_inner_buffers(mechanism: CK_MECHANISM_TYPE, param: Option<&[u8]>) -> Result<()> {
    let Some(param) = param else { return Ok(()) };
    match layouts_of(mechanism).iter().find(|l| l.size == param.len()) {
        Some(l) => check(param, l.buffers),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parameter struct of `size` zero bytes (all pointers NULL) with `ulongs`
    /// written at their offsets, and non-NULL (never followed) pointers at `ptrs`.
    fn bytes(size: usize, ulongs: &[(usize, CK_ULONG)], ptrs: &[usize]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        for &(at, v) in ulongs {
            b[at..at + size_of::<CK_ULONG>()].copy_from_slice(&v.to_ne_bytes());
        }
        for &at in ptrs {
            b[at..at + size_of::<usize>()].copy_from_slice(&(usize::MAX - 0xfff).to_ne_bytes());
        }
        b
    }

    fn rv(m: CK_MECHANISM_TYPE, p: &[u8]) -> CK_RV {
        check_inner_buffers(m, Some(p)).map_or_else(|e| e.rv(), |()| CKR_OK)
    }

    const INVALID: CK_RV = CKR_MECHANISM_PARAM_INVALID;

    #[test]
    fn gcm_in_both_layouts() {
        for l in [GcmLayout::WithIvBits, GcmLayout::WithoutIvBits] {
            let [p_iv, iv_len, p_aad, aad_len, _] = l.offsets();
            assert_eq!(
                rv(CKM_AES_GCM, &bytes(l.size(), &[(iv_len, 12)], &[])),
                INVALID
            );
            assert_eq!(
                rv(CKM_AES_GCM, &bytes(l.size(), &[(iv_len, 12)], &[p_iv])),
                CKR_OK
            );
            let aad = bytes(l.size(), &[(iv_len, 12), (aad_len, 5)], &[p_iv]);
            assert_eq!(rv(CKM_AES_GCM, &aad), INVALID);
            let both = bytes(l.size(), &[(iv_len, 12), (aad_len, 5)], &[p_iv, p_aad]);
            assert_eq!(rv(CKM_AES_GCM, &both), CKR_OK);
        }
        // A size neither layout has goes to the token as it came.
        assert_eq!(rv(CKM_AES_GCM, &[0u8; 7]), CKR_OK);
    }

    #[test]
    fn every_struct_with_inner_pointers() {
        let string = bytes(
            size_of::<CK_KEY_DERIVATION_STRING_DATA>(),
            &[(offset_of!(CK_KEY_DERIVATION_STRING_DATA, ulLen), 16)],
            &[],
        );
        for m in [
            CKM_AES_ECB_ENCRYPT_DATA,
            CKM_DES3_ECB_ENCRYPT_DATA,
            CKM_CONCATENATE_BASE_AND_DATA,
            CKM_XOR_BASE_AND_DATA,
        ] {
            assert_eq!(rv(m, &string), INVALID);
        }
        let cbc = bytes(
            size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>(),
            &[(offset_of!(CK_AES_CBC_ENCRYPT_DATA_PARAMS, length), 16)],
            &[],
        );
        assert_eq!(rv(CKM_AES_CBC_ENCRYPT_DATA, &cbc), INVALID);
        let ecdh = bytes(
            size_of::<CK_ECDH1_DERIVE_PARAMS>(),
            &[(offset_of!(CK_ECDH1_DERIVE_PARAMS, ulPublicDataLen), 65)],
            &[],
        );
        assert_eq!(rv(CKM_ECDH1_DERIVE, &ecdh), INVALID);
        assert_eq!(rv(CKM_ECDH1_COFACTOR_DERIVE, &ecdh), INVALID);
        let oaep = bytes(
            size_of::<CK_RSA_PKCS_OAEP_PARAMS>(),
            &[(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, ulSourceDataLen), 3)],
            &[],
        );
        assert_eq!(rv(CKM_RSA_PKCS_OAEP, &oaep), INVALID);
        let ccm = bytes(
            size_of::<CK_CCM_PARAMS>(),
            &[(offset_of!(CK_CCM_PARAMS, ulNonceLen), 12)],
            &[],
        );
        assert_eq!(rv(CKM_AES_CCM, &ccm), INVALID);
        let eddsa = bytes(
            size_of::<CK_EDDSA_PARAMS>(),
            &[(offset_of!(CK_EDDSA_PARAMS, ulContextDataLen), 4)],
            &[],
        );
        assert_eq!(rv(CKM_EDDSA, &eddsa), INVALID);
        let wrap = bytes(size_of::<CK_RSA_AES_KEY_WRAP_PARAMS>(), &[], &[]);
        assert_eq!(rv(CKM_RSA_AES_KEY_WRAP, &wrap), INVALID);
        let wrap_ok = bytes(
            size_of::<CK_RSA_AES_KEY_WRAP_PARAMS>(),
            &[],
            &[offset_of!(CK_RSA_AES_KEY_WRAP_PARAMS, pOAEPParams)],
        );
        assert_eq!(rv(CKM_RSA_AES_KEY_WRAP, &wrap_ok), CKR_OK);
        // NULL with a length of 0 is fine: nothing is read.
        let empty = bytes(size_of::<CK_ECDH1_DERIVE_PARAMS>(), &[], &[]);
        assert_eq!(rv(CKM_ECDH1_DERIVE, &empty), CKR_OK);
        assert!(check_inner_buffers(CKM_SHA256, None).is_ok());
    }
}
