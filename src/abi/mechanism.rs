//! Mechanism parameters (PKCS#11 v2.40 base §3.5 `CK_MECHANISM`; the parameter
//! structs of the v2.40 Current Mechanisms document, cited below as "mechanisms"),
//! summarised for policy and audit.
//!
//! A summary holds mechanism types, lengths and small enumerations, never the bytes
//! an IV, AAD, nonce, OAEP label or ECDH public value points to: those may be
//! sensitive, and Keywarden has no need to read them. The parameter structs contain
//! pointers; this safe layer reads the struct's own bytes (integer fields and
//! whether each pointer field is NULL) and never follows a pointer.
//!
//! Field offsets come from the `pkcs11-sys` definitions via `offset_of!`, so the same
//! code reads the LP64 layout, the 32-bit one and Windows' packed one.
//!
//! What is rejected, and with which code:
//! - a parameter of the wrong size for a mechanism Keywarden decodes, or a missing
//!   one where the mechanism requires it → `CKR_MECHANISM_PARAM_INVALID`;
//! - a NULL pointer field with a non-zero length field (`pIv`/`ulIvLen`, …) →
//!   `CKR_MECHANISM_PARAM_INVALID`: the token would read through NULL;
//! - (a NULL `pParameter` with a non-zero `ulParameterLen` is `CKR_ARGUMENTS_BAD`,
//!   checked where the pointer becomes a [`MechanismView`], in `ffi::decode`.)
//!
//! Value ranges (tag lengths, salt lengths, hash/MGF pairs) are left to the token and
//! to policy: the decoder describes, it does not judge. Unknown mechanisms are
//! summarised as [`MechParams::Other`] and never refused for being unknown.

use std::fmt;
use std::mem::{offset_of, size_of};

use pkcs11_sys::*;

use super::names::{kdf_name, mechanism_name, mgf_name};
use crate::error::{Error, Result};

/// A mechanism as the application gave it: the type and the parameter bytes
/// (`None` for a NULL `pParameter`, which always comes with a length of 0).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MechanismView<'a> {
    /// `CKM_*` type.
    pub mechanism: CK_MECHANISM_TYPE,
    /// The `ulParameterLen` bytes at `pParameter`.
    pub param: Option<&'a [u8]>,
}

impl fmt::Debug for MechanismView<'_> {
    // Length only: a CBC parameter is the IV itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.param {
            Some(p) => write!(
                f,
                "{}(param {} bytes)",
                mechanism_name(self.mechanism),
                p.len()
            ),
            None => write!(f, "{}(no param)", mechanism_name(self.mechanism)),
        }
    }
}

/// What Keywarden knows about a mechanism's parameter. Lengths are as the
/// application declared them (`CK_ULONG`), except where the parameter is itself the
/// bytes (`Iv`, `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MechParams {
    /// `CK_GCM_PARAMS` (AES-GCM; mechanisms "AES GCM and CCM Mechanism parameters",
    /// v3.0 §2.13.5), either layout, see [`GcmLayout`].
    Gcm {
        /// `ulIvLen`, bytes.
        iv_len: CK_ULONG,
        /// `ulAADLen`, bytes.
        aad_len: CK_ULONG,
        /// `ulTagBits`.
        tag_bits: CK_ULONG,
    },
    /// `CK_CCM_PARAMS` (AES-CCM; same section as GCM).
    Ccm {
        /// `ulDataLen`, bytes.
        data_len: CK_ULONG,
        /// `ulNonceLen`, bytes.
        nonce_len: CK_ULONG,
        /// `ulAADLen`, bytes.
        aad_len: CK_ULONG,
        /// `ulMACLen`, bytes.
        mac_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_PSS_PARAMS` (mechanisms §2.1.9, "PKCS #1 RSA PSS mechanism parameters").
    Pss {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `sLen`, bytes.
        salt_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS` (mechanisms §2.1.7, "PKCS #1 RSA OAEP mechanism parameters").
    Oaep {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `source` (`CKZ_DATA_SPECIFIED`).
        source: CK_RSA_PKCS_OAEP_SOURCE_TYPE,
        /// `ulSourceDataLen`: the label length, bytes.
        source_len: CK_ULONG,
    },
    /// A block-cipher mode whose parameter is the IV itself (CBC, CBC-PAD, CTS, OFB,
    /// CFB; mechanisms sections "AES", "AES CBC with Cipher Text Stealing",
    /// "Additional AES mechanisms", "DES", "Triple-DES", "Camellia", "ARIA", "SEED":
    /// each says "It has a parameter, an N-byte initialization vector").
    Iv {
        /// IV length, bytes (checked to be the cipher's block size).
        iv_len: usize,
    },
    /// `CK_AES_CTR_PARAMS` (mechanisms "AES with Counter mechanism parameters").
    Ctr {
        /// `ulCounterBits`.
        counter_bits: CK_ULONG,
    },
    /// `CK_ECDH1_DERIVE_PARAMS` (mechanisms §2.3, "EC mechanism parameters").
    Ecdh1 {
        /// `kdf`.
        kdf: CK_EC_KDF_TYPE,
        /// `ulSharedDataLen`, bytes.
        shared_data_len: CK_ULONG,
        /// `ulPublicDataLen`, bytes.
        public_data_len: CK_ULONG,
    },
    /// Any other mechanism, or one without a parameter: passed through as it came.
    Other {
        /// `ulParameterLen`.
        len: usize,
    },
}

/// A decoded mechanism: what policy decides on and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MechanismSummary {
    /// `CKM_*` type.
    pub mechanism: CK_MECHANISM_TYPE,
    /// The parameter summary.
    pub params: MechParams,
}

impl fmt::Display for MechanismSummary {
    /// `CKM_AES_GCM(iv_len=12, aad_len=0, tag_bits=128)`, for logs and audit lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", mechanism_name(self.mechanism))?;
        match self.params {
            MechParams::Gcm {
                iv_len,
                aad_len,
                tag_bits,
            } => write!(
                f,
                "(iv_len={iv_len}, aad_len={aad_len}, tag_bits={tag_bits})"
            ),
            MechParams::Ccm {
                data_len,
                nonce_len,
                aad_len,
                mac_len,
            } => write!(
                f,
                "(data_len={data_len}, nonce_len={nonce_len}, aad_len={aad_len}, mac_len={mac_len})"
            ),
            MechParams::Pss {
                hash,
                mgf,
                salt_len,
            } => write!(
                f,
                "(hash={}, mgf={}, salt_len={salt_len})",
                mechanism_name(hash),
                mgf_name(mgf)
            ),
            MechParams::Oaep {
                hash,
                mgf,
                source,
                source_len,
            } => write!(
                f,
                "(hash={}, mgf={}, source={source:#x}, label_len={source_len})",
                mechanism_name(hash),
                mgf_name(mgf)
            ),
            MechParams::Iv { iv_len } => write!(f, "(iv_len={iv_len})"),
            MechParams::Ctr { counter_bits } => write!(f, "(counter_bits={counter_bits})"),
            MechParams::Ecdh1 {
                kdf,
                shared_data_len,
                public_data_len,
            } => write!(
                f,
                "(kdf={}, shared_data_len={shared_data_len}, public_data_len={public_data_len})",
                kdf_name(kdf)
            ),
            MechParams::Other { len: 0 } => Ok(()),
            MechParams::Other { len } => write!(f, "(param {len} bytes)"),
        }
    }
}

/// The two `CK_GCM_PARAMS` layouts clients send, told apart by `ulParameterLen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcmLayout {
    /// Six fields with `ulIvBits`: the normative v2.40 header and v3.x. Java's
    /// SunPKCS11 sends this one (and falls back to the other on
    /// `CKR_MECHANISM_PARAM_INVALID`).
    WithIvBits,
    /// Five fields without `ulIvBits`: the struct as printed in the v2.40 mechanisms
    /// document, used by older OpenSC headers and other clients.
    WithoutIvBits,
}

/// The five-field `CK_GCM_PARAMS`, declared only so the compiler computes its layout
/// (with the same packing rule `pkcs11-sys` uses); never built.
#[allow(dead_code, non_snake_case)]
#[cfg_attr(target_os = "windows", repr(C, packed))]
#[cfg_attr(not(target_os = "windows"), repr(C))]
pub(super) struct GcmParamsWithoutIvBits {
    pub(super) pIv: CK_BYTE_PTR,
    pub(super) ulIvLen: CK_ULONG,
    pub(super) pAAD: CK_BYTE_PTR,
    pub(super) ulAADLen: CK_ULONG,
    ulTagBits: CK_ULONG,
}

impl GcmLayout {
    /// The layout whose size is `len`, if any.
    pub fn from_len(len: usize) -> Option<GcmLayout> {
        if len == size_of::<CK_GCM_PARAMS>() {
            Some(GcmLayout::WithIvBits)
        } else if len == size_of::<GcmParamsWithoutIvBits>() {
            Some(GcmLayout::WithoutIvBits)
        } else {
            None
        }
    }

    /// `sizeof` the struct in this layout on this platform.
    pub fn size(self) -> usize {
        match self {
            GcmLayout::WithIvBits => size_of::<CK_GCM_PARAMS>(),
            GcmLayout::WithoutIvBits => size_of::<GcmParamsWithoutIvBits>(),
        }
    }

    /// Offsets of (`pIv`, `ulIvLen`, `pAAD`, `ulAADLen`, `ulTagBits`).
    pub fn offsets(self) -> [usize; 5] {
        match self {
            GcmLayout::WithIvBits => [
                offset_of!(CK_GCM_PARAMS, pIv),
                offset_of!(CK_GCM_PARAMS, ulIvLen),
                offset_of!(CK_GCM_PARAMS, pAAD),
                offset_of!(CK_GCM_PARAMS, ulAADLen),
                offset_of!(CK_GCM_PARAMS, ulTagBits),
            ],
            GcmLayout::WithoutIvBits => [
                offset_of!(GcmParamsWithoutIvBits, pIv),
                offset_of!(GcmParamsWithoutIvBits, ulIvLen),
                offset_of!(GcmParamsWithoutIvBits, pAAD),
                offset_of!(GcmParamsWithoutIvBits, ulAADLen),
                offset_of!(GcmParamsWithoutIvBits, ulTagBits),
            ],
        }
    }
}

fn param_invalid(why: &'static str) -> Error {
    Error::Invalid(CKR_MECHANISM_PARAM_INVALID, why)
}

/// The bytes of a C parameter struct, read field by field in native byte order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The parameter, which must be exactly `sizeof(T)` bytes.
    fn of<T>(param: &'a [u8], why: &'static str) -> Result<Fields<'a>> {
        if param.len() == size_of::<T>() {
            Ok(Fields(param))
        } else {
            Err(param_invalid(why))
        }
    }

    fn bytes<const N: usize>(&self, offset: usize) -> Result<[u8; N]> {
        offset
            .checked_add(N)
            .and_then(|end| self.0.get(offset..end))
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| param_invalid("parameter field outside the parameter"))
    }

    fn ulong(&self, offset: usize) -> Result<CK_ULONG> {
        self.bytes::<{ size_of::<CK_ULONG>() }>(offset)
            .map(CK_ULONG::from_ne_bytes)
    }

    /// Whether the pointer field at `offset` is NULL (all-zero bits on every platform
    /// PKCS#11 runs on). The pointer itself is never followed.
    fn is_null(&self, offset: usize) -> Result<bool> {
        self.bytes::<{ size_of::<CK_VOID_PTR>() }>(offset)
            .map(|b| b.iter().all(|&x| x == 0))
    }

    /// A (pointer, length) pair: the length, after checking that a non-zero length
    /// does not come with a NULL pointer.
    fn buffer_len(&self, ptr: usize, len: usize, why: &'static str) -> Result<CK_ULONG> {
        let n = self.ulong(len)?;
        if n != 0 && self.is_null(ptr)? {
            return Err(param_invalid(why));
        }
        Ok(n)
    }
}

/// The IV length the block-cipher modes whose parameter is the IV require (the
/// cipher's block size), or `None` for other mechanisms.
fn iv_len_for(mechanism: CK_MECHANISM_TYPE) -> Option<usize> {
    match mechanism {
        CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_CTS | CKM_AES_OFB | CKM_AES_CFB128
        | CKM_AES_CFB64 | CKM_AES_CFB8 | CKM_AES_CFB1 => Some(16),
        CKM_CAMELLIA_CBC | CKM_CAMELLIA_CBC_PAD | CKM_ARIA_CBC | CKM_ARIA_CBC_PAD
        | CKM_SEED_CBC | CKM_SEED_CBC_PAD => Some(16),
        CKM_DES_CBC | CKM_DES_CBC_PAD | CKM_DES3_CBC | CKM_DES3_CBC_PAD => Some(8),
        _ => None,
    }
}

fn gcm(param: &[u8]) -> Result<MechParams> {
    let layout = GcmLayout::from_len(param.len())
        .ok_or_else(|| param_invalid("CK_GCM_PARAMS of neither known size"))?;
    let [p_iv, iv_len, p_aad, aad_len, tag_bits] = layout.offsets();
    let f = Fields(param);
    Ok(MechParams::Gcm {
        iv_len: f.buffer_len(p_iv, iv_len, "GCM pIv is NULL with ulIvLen > 0")?,
        aad_len: f.buffer_len(p_aad, aad_len, "GCM pAAD is NULL with ulAADLen > 0")?,
        tag_bits: f.ulong(tag_bits)?,
    })
}

fn ccm(param: &[u8]) -> Result<MechParams> {
    let f = Fields::of::<CK_CCM_PARAMS>(param, "CK_CCM_PARAMS of the wrong size")?;
    Ok(MechParams::Ccm {
        data_len: f.ulong(offset_of!(CK_CCM_PARAMS, ulDataLen))?,
        nonce_len: f.buffer_len(
            offset_of!(CK_CCM_PARAMS, pNonce),
            offset_of!(CK_CCM_PARAMS, ulNonceLen),
            "CCM pNonce is NULL with ulNonceLen > 0",
        )?,
        aad_len: f.buffer_len(
            offset_of!(CK_CCM_PARAMS, pAAD),
            offset_of!(CK_CCM_PARAMS, ulAADLen),
            "CCM pAAD is NULL with ulAADLen > 0",
        )?,
        mac_len: f.ulong(offset_of!(CK_CCM_PARAMS, ulMACLen))?,
    })
}

fn pss(param: &[u8]) -> Result<MechParams> {
    let f =
        Fields::of::<CK_RSA_PKCS_PSS_PARAMS>(param, "CK_RSA_PKCS_PSS_PARAMS of the wrong size")?;
    Ok(MechParams::Pss {
        hash: f.ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, hashAlg))?,
        mgf: f.ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, mgf))?,
        salt_len: f.ulong(offset_of!(CK_RSA_PKCS_PSS_PARAMS, sLen))?,
    })
}

fn oaep(param: &[u8]) -> Result<MechParams> {
    let f =
        Fields::of::<CK_RSA_PKCS_OAEP_PARAMS>(param, "CK_RSA_PKCS_OAEP_PARAMS of the wrong size")?;
    Ok(MechParams::Oaep {
        hash: f.ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, hashAlg))?,
        mgf: f.ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, mgf))?,
        source: f.ulong(offset_of!(CK_RSA_PKCS_OAEP_PARAMS, source))?,
        source_len: f.buffer_len(
            offset_of!(CK_RSA_PKCS_OAEP_PARAMS, pSourceData),
            offset_of!(CK_RSA_PKCS_OAEP_PARAMS, ulSourceDataLen),
            "OAEP pSourceData is NULL with ulSourceDataLen > 0",
        )?,
    })
}

fn ctr(param: &[u8]) -> Result<MechParams> {
    let f = Fields::of::<CK_AES_CTR_PARAMS>(param, "CK_AES_CTR_PARAMS of the wrong size")?;
    Ok(MechParams::Ctr {
        counter_bits: f.ulong(offset_of!(CK_AES_CTR_PARAMS, ulCounterBits))?,
    })
}

fn ecdh1(param: &[u8]) -> Result<MechParams> {
    let f =
        Fields::of::<CK_ECDH1_DERIVE_PARAMS>(param, "CK_ECDH1_DERIVE_PARAMS of the wrong size")?;
    Ok(MechParams::Ecdh1 {
        kdf: f.ulong(offset_of!(CK_ECDH1_DERIVE_PARAMS, kdf))?,
        shared_data_len: f.buffer_len(
            offset_of!(CK_ECDH1_DERIVE_PARAMS, pSharedData),
            offset_of!(CK_ECDH1_DERIVE_PARAMS, ulSharedDataLen),
            "ECDH pSharedData is NULL with ulSharedDataLen > 0",
        )?,
        public_data_len: f.buffer_len(
            offset_of!(CK_ECDH1_DERIVE_PARAMS, pPublicData),
            offset_of!(CK_ECDH1_DERIVE_PARAMS, ulPublicDataLen),
            "ECDH pPublicData is NULL with ulPublicDataLen > 0",
        )?,
    })
}

impl MechanismView<'_> {
    /// Summarises the parameter (rules in the module documentation). A NULL
    /// parameter and an empty one are the same thing here: both have no bytes.
    pub fn decode(&self) -> Result<MechanismSummary> {
        let param = self.param.unwrap_or(&[]);
        let params = match self.mechanism {
            CKM_AES_GCM => gcm(param)?,
            CKM_AES_CCM => ccm(param)?,
            CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
            | CKM_SHA3_224_RSA_PKCS_PSS
            | CKM_SHA3_256_RSA_PKCS_PSS
            | CKM_SHA3_384_RSA_PKCS_PSS
            | CKM_SHA3_512_RSA_PKCS_PSS => pss(param)?,
            CKM_RSA_PKCS_OAEP => oaep(param)?,
            CKM_AES_CTR => ctr(param)?,
            CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => ecdh1(param)?,
            m => match iv_len_for(m) {
                Some(n) if param.len() == n => MechParams::Iv { iv_len: n },
                Some(_) => return Err(param_invalid("IV of the wrong length for this cipher")),
                None => MechParams::Other { len: param.len() },
            },
        };
        Ok(MechanismSummary {
            mechanism: self.mechanism,
            params,
        })
    }
}

#[cfg(test)]
#[path = "mechanism_tests.rs"]
mod tests;
