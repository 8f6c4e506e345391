//! The material checks on a new key: key type and size (or curve) against
//! `[creation]`, the label rule, and the class and family tests they use.

use pkcs11_sys::*;

use super::section::CreationPolicy;
use crate::abi::{attribute_name, EcCurve};
use crate::policy::names;

/// How a key type's size is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rsa,
    Ec,
    Aes,
    Secret,
    DsaDh,
    Other,
}

pub(crate) fn family(key_type: CK_KEY_TYPE) -> Family {
    match key_type {
        CKK_RSA => Family::Rsa,
        CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY => Family::Ec,
        CKK_AES => Family::Aes,
        CKK_DSA | CKK_DH | CKK_X9_42_DH => Family::DsaDh,
        CKK_GENERIC_SECRET | CKK_SHA_1_HMAC | CKK_SHA224_HMAC | CKK_SHA256_HMAC
        | CKK_SHA384_HMAC | CKK_SHA512_HMAC | CKK_SHA3_224_HMAC | CKK_SHA3_256_HMAC
        | CKK_SHA3_384_HMAC | CKK_SHA3_512_HMAC | CKK_SHA512_224_HMAC | CKK_SHA512_256_HMAC
        | CKK_SHA512_T_HMAC | CKK_MD5_HMAC | CKK_RIPEMD128_HMAC | CKK_RIPEMD160_HMAC => {
            Family::Secret
        }
        _ => Family::Other,
    }
}

/// The key type a key-generation mechanism makes (mechanisms document, each key
/// type's "key generation" section).
pub(crate) fn key_type_of_mechanism(m: CK_MECHANISM_TYPE) -> Option<CK_KEY_TYPE> {
    Some(match m {
        CKM_RSA_PKCS_KEY_PAIR_GEN | CKM_RSA_X9_31_KEY_PAIR_GEN => CKK_RSA,
        CKM_EC_KEY_PAIR_GEN | CKM_EC_KEY_PAIR_GEN_W_EXTRA_BITS => CKK_EC,
        CKM_EC_EDWARDS_KEY_PAIR_GEN => CKK_EC_EDWARDS,
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN => CKK_EC_MONTGOMERY,
        CKM_DSA_KEY_PAIR_GEN => CKK_DSA,
        CKM_DH_PKCS_KEY_PAIR_GEN => CKK_DH,
        CKM_X9_42_DH_KEY_PAIR_GEN => CKK_X9_42_DH,
        CKM_AES_KEY_GEN => CKK_AES,
        CKM_AES_XTS_KEY_GEN => CKK_AES_XTS,
        CKM_DES_KEY_GEN => CKK_DES,
        CKM_DES2_KEY_GEN => CKK_DES2,
        CKM_DES3_KEY_GEN => CKK_DES3,
        CKM_GENERIC_SECRET_KEY_GEN => CKK_GENERIC_SECRET,
        CKM_RC2_KEY_GEN => CKK_RC2,
        CKM_RC4_KEY_GEN => CKK_RC4,
        CKM_RC5_KEY_GEN => CKK_RC5,
        CKM_IDEA_KEY_GEN => CKK_IDEA,
        CKM_CAST_KEY_GEN => CKK_CAST,
        CKM_CAST3_KEY_GEN => CKK_CAST3,
        CKM_CAST128_KEY_GEN => CKK_CAST128,
        CKM_BLOWFISH_KEY_GEN => CKK_BLOWFISH,
        CKM_TWOFISH_KEY_GEN => CKK_TWOFISH,
        CKM_CAMELLIA_KEY_GEN => CKK_CAMELLIA,
        CKM_ARIA_KEY_GEN => CKK_ARIA,
        CKM_SEED_KEY_GEN => CKK_SEED,
        CKM_CHACHA20_KEY_GEN => CKK_CHACHA20,
        CKM_POLY1305_KEY_GEN => CKK_POLY1305,
        CKM_SALSA20_KEY_GEN => CKK_SALSA20,
        CKM_HKDF_KEY_GEN => CKK_HKDF,
        CKM_SHA_1_KEY_GEN => CKK_SHA_1_HMAC,
        CKM_SHA224_KEY_GEN => CKK_SHA224_HMAC,
        CKM_SHA256_KEY_GEN => CKK_SHA256_HMAC,
        CKM_SHA384_KEY_GEN => CKK_SHA384_HMAC,
        CKM_SHA512_KEY_GEN => CKK_SHA512_HMAC,
        CKM_SHA3_224_KEY_GEN => CKK_SHA3_224_HMAC,
        CKM_SHA3_256_KEY_GEN => CKK_SHA3_256_HMAC,
        CKM_SHA3_384_KEY_GEN => CKK_SHA3_384_HMAC,
        CKM_SHA3_512_KEY_GEN => CKK_SHA3_512_HMAC,
        _ => return None,
    })
}

/// True for the classes whose value must stay inside the token.
pub(crate) fn is_private_or_secret(class: Option<CK_OBJECT_CLASS>) -> bool {
    matches!(class, Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY))
}

/// True for key classes (type and size rules apply).
pub(crate) fn is_key(class: Option<CK_OBJECT_CLASS>) -> bool {
    matches!(
        class,
        Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY | CKO_PUBLIC_KEY)
    )
}

/// What a type/size check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Material {
    Ok,
    /// The size (or curve) is not known yet: check the created object.
    Unknown(&'static str),
    /// Refused: rule, code, reason.
    Refused(&'static str, CK_RV, String),
}

impl CreationPolicy {
    /// Type and size of a new key. `type_from_mechanism`: the type came from a
    /// key-generation mechanism, so refusing it is refusing the mechanism.
    pub(crate) fn check_material(
        &self,
        class: Option<CK_OBJECT_CLASS>,
        key_type: Option<CK_KEY_TYPE>,
        bits: Option<u32>,
        curve: Option<EcCurve>,
        type_from_mechanism: bool,
    ) -> Material {
        if !is_key(class) {
            return Material::Ok;
        }
        let Some(kt) = key_type else {
            return Material::Refused(
                "creation.key-type",
                CKR_TEMPLATE_INCONSISTENT,
                "the template does not state CKA_KEY_TYPE, so policy cannot judge the key".into(),
            );
        };
        let kt_name = crate::abi::key_type_name(kt);
        if !self.key_types.contains(&kt) {
            let rv = if type_from_mechanism {
                CKR_MECHANISM_INVALID
            } else {
                CKR_TEMPLATE_INCONSISTENT
            };
            return Material::Refused(
                "creation.key-type",
                rv,
                format!("{kt_name} keys may not be created (creation.key_types)"),
            );
        }
        let too_small = |min: u32, what: &str| match bits {
            None => Material::Unknown("key size"),
            Some(b) if b < min => Material::Refused(
                "creation.key-size",
                CKR_TEMPLATE_INCONSISTENT,
                format!("{kt_name} key of {b} bits is below the minimum of {min} ({what})"),
            ),
            Some(_) => Material::Ok,
        };
        match family(kt) {
            Family::Rsa => too_small(self.rsa_min_bits, "creation.rsa_min_bits"),
            Family::Aes => too_small(self.aes_min_bits, "creation.aes_min_bits"),
            Family::Secret => too_small(self.secret_min_bits, "creation.secret_min_bits"),
            Family::DsaDh => too_small(self.dsa_dh_min_bits, "creation.dsa_dh_min_bits"),
            Family::Ec => match curve {
                None => Material::Unknown("curve"),
                Some(c) => {
                    let ok = match &self.ec_curves {
                        Some(list) => list.contains(&c),
                        None => names::curve_bits(c) >= self.ec_min_bits,
                    };
                    if ok {
                        Material::Ok
                    } else {
                        Material::Refused(
                            "creation.key-size",
                            CKR_TEMPLATE_INCONSISTENT,
                            format!(
                                "curve {} is not allowed (creation.ec_min_bits / ec_curves)",
                                c.name()
                            ),
                        )
                    }
                }
            },
            Family::Other => Material::Ok,
        }
    }

    /// The label rule.
    pub(crate) fn check_label(&self, label: Option<&str>) -> Option<String> {
        match (label, &self.label) {
            (None, re) if self.require_label || re.is_some() => Some(
                "new keys must have a CKA_LABEL (creation.require_label / creation.label)".into(),
            ),
            (Some(l), Some(re)) if !re.is_match(l) => Some(format!(
                "label {l:?} does not match the naming rule {:?} (creation.label)",
                re.as_str()
            )),
            _ => None,
        }
    }

    /// Attributes of `[creation] set`, by name, for messages.
    pub(crate) fn set_names(&self) -> Vec<String> {
        self.set
            .iter()
            .map(|(t, v)| format!("{}={v}", attribute_name(*t)))
            .collect()
    }
}
