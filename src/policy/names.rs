//! Names in policy files (and `keywarden policy explain` options) → PKCS#11 values, through the one set of name tables in
//! `abi::names`. People write `private-key`, `EC`, `sha256-hmac` or the spec's own
//! `CKO_PRIVATE_KEY`, `CKK_EC`, `CKM_ECDSA`; both spellings are accepted.

use std::ops::Range;

use pkcs11_sys::CK_ULONG;

use crate::abi::{class_from_name, key_type_from_name, mechanism_from_name, EcCurve};

/// `prefix` + the name upper-cased with `-` → `_`, unless it already has the prefix.
fn spec_name(prefix: &str, name: &str) -> String {
    if name.starts_with(prefix) {
        name.to_owned()
    } else {
        format!("{prefix}{}", name.to_ascii_uppercase().replace('-', "_"))
    }
}

/// An object class: `private-key`, `secret-key`, `public-key`, `certificate`,
/// `data`, or a `CKO_*` name.
pub fn class(name: &str) -> Option<CK_ULONG> {
    class_from_name(&spec_name("CKO_", name))
}

/// A key type: `RSA`, `EC`, `AES`, `generic-secret`, or a `CKK_*` name.
pub fn key_type(name: &str) -> Option<CK_ULONG> {
    key_type_from_name(&spec_name("CKK_", name))
}

/// A mechanism: a `CKM_*` name (the prefix may be left out).
pub fn mechanism(name: &str) -> Option<CK_ULONG> {
    mechanism_from_name(&spec_name("CKM_", name))
}

/// A named curve: `P-256`, `secp256r1`, `prime256v1`, `Ed25519`, ...
pub fn curve(name: &str) -> Option<EcCurve> {
    let alias = match name.to_ascii_lowercase().as_str() {
        "secp224r1" => Some(EcCurve::P224),
        "secp256r1" | "prime256v1" => Some(EcCurve::P256),
        "secp384r1" => Some(EcCurve::P384),
        "secp521r1" => Some(EcCurve::P521),
        _ => None,
    };
    alias.or_else(|| {
        EcCurve::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    })
}

/// The strength class of a curve in bits, for `ec_min_bits`: the field size, except
/// that Curve25519 (255 bits) counts as 256, the same class as P-256.
pub fn curve_bits(curve: EcCurve) -> u32 {
    match curve {
        EcCurve::P224 => 224,
        EcCurve::P256
        | EcCurve::Secp256k1
        | EcCurve::BrainpoolP256r1
        | EcCurve::Ed25519
        | EcCurve::X25519 => 256,
        EcCurve::P384 | EcCurve::BrainpoolP384r1 => 384,
        EcCurve::Ed448 | EcCurve::X448 => 448,
        EcCurve::BrainpoolP512r1 => 512,
        EcCurve::P521 => 521,
    }
}

/// Hex `CKA_ID` (`"01ab"`, `"01:ab"`, `"0x01ab"`).
pub fn hex_id(text: &str) -> Option<Vec<u8>> {
    let t = text.strip_prefix("0x").unwrap_or(text).replace(':', "");
    if t.is_empty() || t.len() % 2 != 0 {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Where a piece of the file is, as `origin:line:col`.
#[derive(Debug, Clone, Copy)]
pub struct Src<'a> {
    /// The text.
    pub text: &'a str,
    /// The file name, or a description.
    pub origin: &'a str,
}

impl Src<'_> {
    /// `origin:line:col` of a byte offset.
    pub fn at(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.origin)
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// A configuration error at `span`.
    pub fn err(&self, span: &Range<usize>, msg: impl std::fmt::Display) -> crate::Error {
        crate::Error::Config(format!("{}: {msg}", self.at(span.start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs11_sys::*;

    #[test]
    fn friendly_and_spec_names() {
        assert_eq!(class("private-key"), Some(CKO_PRIVATE_KEY));
        assert_eq!(class("CKO_SECRET_KEY"), Some(CKO_SECRET_KEY));
        assert_eq!(class("nope"), None);
        assert_eq!(key_type("EC"), Some(CKK_EC));
        assert_eq!(key_type("generic-secret"), Some(CKK_GENERIC_SECRET));
        assert_eq!(key_type("CKK_AES"), Some(CKK_AES));
        assert_eq!(mechanism("CKM_ECDSA"), Some(CKM_ECDSA));
        assert_eq!(mechanism("sha256-rsa-pkcs"), Some(CKM_SHA256_RSA_PKCS));
        assert_eq!(curve("prime256v1"), Some(EcCurve::P256));
        assert_eq!(curve("ed25519"), Some(EcCurve::Ed25519));
        assert_eq!(hex_id("01:AB"), Some(vec![1, 0xab]));
        assert_eq!(hex_id("0x0"), None);
        assert_eq!(hex_id("zz"), None);
    }

    #[test]
    fn positions() {
        let s = Src {
            text: "a\nbc\nd",
            origin: "f.toml",
        };
        assert_eq!(s.at(0), "f.toml:1:1");
        assert_eq!(s.at(3), "f.toml:2:2");
        assert_eq!(s.at(5), "f.toml:3:1");
    }
}
