//! Specification names of PKCS#11 constants, for logs, audit records and (in reverse)
//! for configuration files: attribute types, object classes, key types, mechanisms,
//! mask generation functions and key derivation functions.
//!
//! The lists are the constants `pkcs11-sys` defines (PKCS#11 v3.1 headers), with
//! each deprecated alias moved to the `aliases` list: an alias shares its value with
//! a current name, so it is accepted when parsing a name but never printed. A unit
//! test checks that no two printed names share a value.
//!
//! Unknown values are printed as `CKM_VENDOR_DEFINED+0x…` above the vendor base and
//! as `CKM_0x…` below it, the way `rv_name` prints return values.

use std::borrow::Cow;

use pkcs11_sys::CK_ULONG;

mod mechanisms;

pub use mechanisms::{mechanism_from_name, mechanism_name};

/// One family of constants: `$name_fn` (value → name), `$value_fn` (name → value,
/// aliases included) and `$table` (every printed name, for tests).
/// Patterns are written as `pkcs11_sys::NAME` paths so that a misspelt name fails to
/// compile instead of silently becoming a catch-all binding.
macro_rules! name_table {
    (
        $(#[$name_doc:meta])* fn $name_fn:ident;
        $(#[$value_doc:meta])* fn $value_fn:ident;
        table $table:ident, prefix $prefix:literal, vendor $vendor:expr;
        names { $($c:ident)* }
        aliases { $($a:ident)* }
    ) => {
        #[cfg(test)]
        pub(super) static $table: &[(CK_ULONG, &str)] = &[$((pkcs11_sys::$c, stringify!($c))),*];

        $(#[$name_doc])*
        pub fn $name_fn(value: CK_ULONG) -> Cow<'static, str> {
            match value {
                $(pkcs11_sys::$c => Cow::Borrowed(stringify!($c)),)*
                _ => $crate::abi::names::unnamed(value, $prefix, $vendor),
            }
        }

        $(#[$value_doc])*
        pub fn $value_fn(name: &str) -> Option<CK_ULONG> {
            match name {
                $(stringify!($c) => Some(pkcs11_sys::$c),)*
                $(stringify!($a) => Some(pkcs11_sys::$a),)*
                _ => None,
            }
        }
    };
}
use name_table;

/// How a value without a name is printed.
fn unnamed(value: CK_ULONG, prefix: &str, vendor: Option<CK_ULONG>) -> Cow<'static, str> {
    match vendor {
        Some(base) if value > base => format!("{prefix}_VENDOR_DEFINED+{:#x}", value - base).into(),
        _ => format!("{prefix}_{value:#x}").into(),
    }
}

name_table! {
    /// The name of an attribute type (`CKA_*`, PKCS#11 v2.40 §4 and v3.x additions).
    fn attribute_name;
    /// The attribute type with this `CKA_*` name.
    fn attribute_from_name;
    table ATTRIBUTES, prefix "CKA", vendor Some(pkcs11_sys::CKA_VENDOR_DEFINED);
    names {
        CKA_CLASS CKA_TOKEN CKA_PRIVATE CKA_LABEL CKA_UNIQUE_ID CKA_APPLICATION CKA_VALUE
        CKA_OBJECT_ID CKA_CERTIFICATE_TYPE CKA_ISSUER CKA_SERIAL_NUMBER CKA_AC_ISSUER CKA_OWNER
        CKA_ATTR_TYPES CKA_TRUSTED CKA_CERTIFICATE_CATEGORY CKA_JAVA_MIDP_SECURITY_DOMAIN
        CKA_URL CKA_HASH_OF_SUBJECT_PUBLIC_KEY CKA_HASH_OF_ISSUER_PUBLIC_KEY
        CKA_NAME_HASH_ALGORITHM CKA_CHECK_VALUE CKA_KEY_TYPE CKA_SUBJECT CKA_ID CKA_SENSITIVE
        CKA_ENCRYPT CKA_DECRYPT CKA_WRAP CKA_UNWRAP CKA_SIGN CKA_SIGN_RECOVER CKA_VERIFY
        CKA_VERIFY_RECOVER CKA_DERIVE CKA_START_DATE CKA_END_DATE CKA_MODULUS CKA_MODULUS_BITS
        CKA_PUBLIC_EXPONENT CKA_PRIVATE_EXPONENT CKA_PRIME_1 CKA_PRIME_2 CKA_EXPONENT_1
        CKA_EXPONENT_2 CKA_COEFFICIENT CKA_PUBLIC_KEY_INFO CKA_PRIME CKA_SUBPRIME CKA_BASE
        CKA_PRIME_BITS CKA_SUBPRIME_BITS CKA_VALUE_BITS CKA_VALUE_LEN CKA_EXTRACTABLE CKA_LOCAL
        CKA_NEVER_EXTRACTABLE CKA_ALWAYS_SENSITIVE CKA_KEY_GEN_MECHANISM CKA_MODIFIABLE
        CKA_COPYABLE CKA_DESTROYABLE CKA_EC_PARAMS CKA_EC_POINT CKA_SECONDARY_AUTH
        CKA_AUTH_PIN_FLAGS CKA_ALWAYS_AUTHENTICATE CKA_WRAP_WITH_TRUSTED CKA_WRAP_TEMPLATE
        CKA_UNWRAP_TEMPLATE CKA_DERIVE_TEMPLATE CKA_OTP_FORMAT CKA_OTP_LENGTH
        CKA_OTP_TIME_INTERVAL CKA_OTP_USER_FRIENDLY_MODE CKA_OTP_CHALLENGE_REQUIREMENT
        CKA_OTP_TIME_REQUIREMENT CKA_OTP_COUNTER_REQUIREMENT CKA_OTP_PIN_REQUIREMENT
        CKA_OTP_COUNTER CKA_OTP_TIME CKA_OTP_USER_IDENTIFIER CKA_OTP_SERVICE_IDENTIFIER
        CKA_OTP_SERVICE_LOGO CKA_OTP_SERVICE_LOGO_TYPE CKA_GOSTR3410_PARAMS
        CKA_GOSTR3411_PARAMS CKA_GOST28147_PARAMS CKA_HW_FEATURE_TYPE CKA_RESET_ON_INIT
        CKA_HAS_RESET CKA_PIXEL_X CKA_PIXEL_Y CKA_RESOLUTION CKA_CHAR_ROWS CKA_CHAR_COLUMNS
        CKA_COLOR CKA_BITS_PER_PIXEL CKA_CHAR_SETS CKA_ENCODING_METHODS CKA_MIME_TYPES
        CKA_MECHANISM_TYPE CKA_REQUIRED_CMS_ATTRIBUTES CKA_DEFAULT_CMS_ATTRIBUTES
        CKA_SUPPORTED_CMS_ATTRIBUTES CKA_ALLOWED_MECHANISMS CKA_PROFILE_ID CKA_X2RATCHET_BAG
        CKA_X2RATCHET_BAGSIZE CKA_X2RATCHET_BOBS1STMSG CKA_X2RATCHET_CKR CKA_X2RATCHET_CKS
        CKA_X2RATCHET_DHP CKA_X2RATCHET_DHR CKA_X2RATCHET_DHS CKA_X2RATCHET_HKR
        CKA_X2RATCHET_HKS CKA_X2RATCHET_ISALICE CKA_X2RATCHET_NHKR CKA_X2RATCHET_NHKS
        CKA_X2RATCHET_NR CKA_X2RATCHET_NS CKA_X2RATCHET_PNS CKA_X2RATCHET_RK CKA_HSS_LEVELS
        CKA_HSS_LMS_TYPE CKA_HSS_LMOTS_TYPE CKA_HSS_LMS_TYPES CKA_HSS_LMOTS_TYPES
        CKA_HSS_KEYS_REMAINING CKA_VENDOR_DEFINED
    }
    aliases {
        CKA_SUB_PRIME_BITS CKA_ECDSA_PARAMS
    }
}

name_table! {
    /// The name of an object class (`CKO_*`, PKCS#11 v2.40 base §3.4 `CK_OBJECT_CLASS`, v3.0 `CKO_PROFILE`).
    fn class_name;
    /// The object class with this `CKO_*` name.
    fn class_from_name;
    table CLASSES, prefix "CKO", vendor Some(pkcs11_sys::CKO_VENDOR_DEFINED);
    names {
        CKO_DATA CKO_CERTIFICATE CKO_PUBLIC_KEY CKO_PRIVATE_KEY CKO_SECRET_KEY CKO_HW_FEATURE
        CKO_DOMAIN_PARAMETERS CKO_MECHANISM CKO_OTP_KEY CKO_PROFILE CKO_VENDOR_DEFINED
    }
    aliases {}
}

name_table! {
    /// The name of a key type (`CKK_*`, PKCS#11 v2.40 base §3.4 `CK_KEY_TYPE` and the mechanisms document).
    fn key_type_name;
    /// The key type with this `CKK_*` name.
    fn key_type_from_name;
    table KEY_TYPES, prefix "CKK", vendor Some(pkcs11_sys::CKK_VENDOR_DEFINED);
    names {
        CKK_RSA CKK_DSA CKK_DH CKK_EC CKK_X9_42_DH CKK_KEA CKK_GENERIC_SECRET CKK_RC2 CKK_RC4
        CKK_DES CKK_DES2 CKK_DES3 CKK_CAST CKK_CAST3 CKK_CAST128 CKK_RC5 CKK_IDEA CKK_SKIPJACK
        CKK_BATON CKK_JUNIPER CKK_CDMF CKK_AES CKK_BLOWFISH CKK_TWOFISH CKK_SECURID CKK_HOTP
        CKK_ACTI CKK_CAMELLIA CKK_ARIA CKK_MD5_HMAC CKK_SHA_1_HMAC CKK_RIPEMD128_HMAC
        CKK_RIPEMD160_HMAC CKK_SHA256_HMAC CKK_SHA384_HMAC CKK_SHA512_HMAC CKK_SHA224_HMAC
        CKK_SEED CKK_GOSTR3410 CKK_GOSTR3411 CKK_GOST28147 CKK_CHACHA20 CKK_POLY1305
        CKK_AES_XTS CKK_SHA3_224_HMAC CKK_SHA3_256_HMAC CKK_SHA3_384_HMAC CKK_SHA3_512_HMAC
        CKK_BLAKE2B_160_HMAC CKK_BLAKE2B_256_HMAC CKK_BLAKE2B_384_HMAC CKK_BLAKE2B_512_HMAC
        CKK_SALSA20 CKK_X2RATCHET CKK_EC_EDWARDS CKK_EC_MONTGOMERY CKK_HKDF CKK_SHA512_224_HMAC
        CKK_SHA512_256_HMAC CKK_SHA512_T_HMAC CKK_HSS CKK_VENDOR_DEFINED
    }
    aliases {
        CKK_ECDSA CKK_CAST5
    }
}

name_table! {
    /// The name of an RSA mask generation function (`CKG_MGF1_*`, PKCS#11 v2.40
    /// mechanisms §2.1.7, used by OAEP and PSS parameters).
    fn mgf_name;
    /// The mask generation function with this `CKG_MGF1_*` name.
    fn mgf_from_name;
    table MGFS, prefix "CKG", vendor None;
    names {
        CKG_MGF1_SHA1 CKG_MGF1_SHA256 CKG_MGF1_SHA384 CKG_MGF1_SHA512 CKG_MGF1_SHA224
        CKG_MGF1_SHA3_224 CKG_MGF1_SHA3_256 CKG_MGF1_SHA3_384 CKG_MGF1_SHA3_512
    }
    aliases {}
}

name_table! {
    /// The name of an elliptic-curve key derivation function (`CKD_*`, PKCS#11 v2.40
    /// mechanisms §2.3 "EC mechanism parameters", used by ECDH parameters).
    fn kdf_name;
    /// The key derivation function with this `CKD_*` name.
    fn kdf_from_name;
    table KDFS, prefix "CKD", vendor None;
    names {
        CKD_NULL CKD_SHA1_KDF CKD_SHA1_KDF_ASN1 CKD_SHA1_KDF_CONCATENATE CKD_SHA224_KDF
        CKD_SHA256_KDF CKD_SHA384_KDF CKD_SHA512_KDF CKD_CPDIVERSIFY_KDF CKD_SHA3_224_KDF
        CKD_SHA3_256_KDF CKD_SHA3_384_KDF CKD_SHA3_512_KDF CKD_SHA1_KDF_SP800
        CKD_SHA224_KDF_SP800 CKD_SHA256_KDF_SP800 CKD_SHA384_KDF_SP800 CKD_SHA512_KDF_SP800
        CKD_SHA3_224_KDF_SP800 CKD_SHA3_256_KDF_SP800 CKD_SHA3_384_KDF_SP800
        CKD_SHA3_512_KDF_SP800 CKD_BLAKE2B_160_KDF CKD_BLAKE2B_256_KDF CKD_BLAKE2B_384_KDF
        CKD_BLAKE2B_512_KDF
    }
    aliases {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs11_sys::*;
    use std::collections::HashMap;

    fn check(
        table: &[(CK_ULONG, &str)],
        name: fn(CK_ULONG) -> Cow<'static, str>,
        from: fn(&str) -> Option<CK_ULONG>,
    ) {
        let mut seen = HashMap::new();
        for &(v, n) in table {
            assert_eq!(
                seen.insert(v, n),
                None,
                "{n} shares its value with another name"
            );
            assert_eq!(name(v), n);
            assert_eq!(from(n), Some(v));
        }
    }

    #[test]
    fn every_name_round_trips_and_no_two_share_a_value() {
        check(ATTRIBUTES, attribute_name, attribute_from_name);
        check(CLASSES, class_name, class_from_name);
        check(KEY_TYPES, key_type_name, key_type_from_name);
        check(MGFS, mgf_name, mgf_from_name);
        check(KDFS, kdf_name, kdf_from_name);
        check(mechanisms::MECHANISMS, mechanism_name, mechanism_from_name);
        assert!(mechanisms::MECHANISMS.len() > 400);
    }

    #[test]
    fn aliases_parse_but_print_under_the_current_name() {
        assert_eq!(
            mechanism_from_name("CKM_ECDSA_KEY_PAIR_GEN"),
            Some(CKM_EC_KEY_PAIR_GEN)
        );
        assert_eq!(
            mechanism_name(CKM_ECDSA_KEY_PAIR_GEN),
            "CKM_EC_KEY_PAIR_GEN"
        );
        assert_eq!(attribute_name(CKA_ECDSA_PARAMS), "CKA_EC_PARAMS");
        assert_eq!(key_type_name(CKK_ECDSA), "CKK_EC");
    }

    #[test]
    fn unknown_and_vendor_values() {
        assert_eq!(mechanism_name(CKM_AES_GCM), "CKM_AES_GCM");
        assert_eq!(mechanism_name(CKM_VENDOR_DEFINED), "CKM_VENDOR_DEFINED");
        assert_eq!(
            mechanism_name(CKM_VENDOR_DEFINED + 0x10),
            "CKM_VENDOR_DEFINED+0x10"
        );
        assert_eq!(mechanism_name(0x7fff_0000), "CKM_0x7fff0000");
        assert_eq!(
            attribute_name(CKA_VENDOR_DEFINED | 1),
            "CKA_VENDOR_DEFINED+0x1"
        );
        assert_eq!(class_name(CKO_SECRET_KEY), "CKO_SECRET_KEY");
        assert_eq!(key_type_name(CKK_EC_EDWARDS), "CKK_EC_EDWARDS");
        assert_eq!(mgf_name(0), "CKG_0x0");
        assert_eq!(kdf_name(CKD_SHA256_KDF), "CKD_SHA256_KDF");
        assert_eq!(mechanism_from_name("CKM_NOPE"), None);
    }
}
