//! The compiled `[creation]` section: what a file's `[creation]` table becomes,
//! with the baseline's strict defaults where a key is absent.

use std::ops::Range;

use pkcs11_sys::*;
use regex::Regex;
use toml::Spanned;

use crate::abi::{attribute_from_name, EcCurve};
use crate::error::Result;
use crate::policy::format::RawCreation;
use crate::policy::names::{self, Src};

/// The compiled `[creation]` section. Defaults (section or key absent) are the
/// strict ones of the baseline profile.
#[derive(Debug, Clone)]
pub struct CreationPolicy {
    pub(crate) key_types: Vec<CK_KEY_TYPE>,
    pub(crate) rsa_min_bits: u32,
    pub(crate) ec_min_bits: u32,
    pub(crate) ec_curves: Option<Vec<EcCurve>>,
    pub(crate) aes_min_bits: u32,
    pub(crate) secret_min_bits: u32,
    pub(crate) dsa_dh_min_bits: u32,
    pub(crate) label: Option<Regex>,
    pub(crate) require_label: bool,
    pub(crate) require_classification: bool,
    pub(crate) require_sensitive: bool,
    pub(crate) require_non_extractable: bool,
    pub(crate) set: Vec<(CK_ATTRIBUTE_TYPE, bool)>,
}

/// Key types allowed when `key_types` is not given: no DES, 3DES, RC2/4/5, IDEA,
/// CAST, SHA-1/MD5 HMAC or other legacy types.
pub const DEFAULT_KEY_TYPES: &[CK_KEY_TYPE] = &[
    CKK_RSA,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKK_AES,
    CKK_GENERIC_SECRET,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

/// Boolean attributes `[creation] set` may force (v2.40 §4.4, §4.9, §4.10).
const SETTABLE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
];

impl CreationPolicy {
    pub(crate) fn compile(
        raw: Option<&Spanned<RawCreation>>,
        src: &Src<'_>,
    ) -> Result<CreationPolicy> {
        let sp: Range<usize> = raw.map_or(0..0, Spanned::span);
        let default = RawCreation::default();
        let c = raw.map_or(&default, Spanned::get_ref);
        let key_types = match &c.key_types {
            None => DEFAULT_KEY_TYPES.to_vec(),
            Some(v) => v
                .iter()
                .map(|n| {
                    names::key_type(n).ok_or_else(|| {
                        src.err(&sp, format!("creation.key_types: unknown key type {n:?}"))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let ec_curves = c
            .ec_curves
            .as_ref()
            .map(|v| {
                v.iter()
                    .map(|n| {
                        names::curve(n).ok_or_else(|| {
                            src.err(&sp, format!("creation.ec_curves: unknown curve {n:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let label = c
            .label
            .as_deref()
            .map(|r| {
                Regex::new(r).map_err(|e| {
                    src.err(
                        &sp,
                        format!("creation.label: bad regex: {}", one_line(&e.to_string())),
                    )
                })
            })
            .transpose()?;
        let mut set = Vec::new();
        for (name, value) in c.set.iter().flatten() {
            let ty = attribute_from_name(name)
                .filter(|t| SETTABLE.contains(t))
                .ok_or_else(|| src.err(&sp, format!("creation.set: {name:?} is not a boolean attribute Keywarden can force (CKA_SENSITIVE and CKA_EXTRACTABLE have their own keys)")))?;
            set.push((ty, *value));
        }
        Ok(CreationPolicy {
            key_types,
            rsa_min_bits: c.rsa_min_bits.unwrap_or(2048),
            ec_min_bits: c.ec_min_bits.unwrap_or(256),
            ec_curves,
            aes_min_bits: c.aes_min_bits.unwrap_or(128),
            secret_min_bits: c.secret_min_bits.unwrap_or(128),
            dsa_dh_min_bits: c.dsa_dh_min_bits.unwrap_or(2048),
            label,
            require_label: c.require_label.unwrap_or(false),
            require_classification: c.require_classification.unwrap_or(false),
            require_sensitive: c.require_sensitive.unwrap_or(true),
            require_non_extractable: c.require_non_extractable.unwrap_or(true),
            set,
        })
    }
}

fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}
