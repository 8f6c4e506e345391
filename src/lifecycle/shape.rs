//! What "the same key again" is: the [`KeyShape`] a rotation reads from the current
//! version's objects, the boolean attributes it copies ([`COPIED_FLAGS`]), and the
//! templates and mechanism that generate the next version ([`KeyShape::generation`]).
//! Both [`TokenOps`](super::TokenOps) implementations (the CLI's over `cryptoki`, the
//! module's over the backend) read and generate through these, translating each
//! [`TemplateAttr`] one to one, so `keys rotate` and automatic rotation make the
//! same objects.

use pkcs11_sys::{
    CKA_DECRYPT, CKA_DERIVE, CKA_ENCRYPT, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN,
    CKA_UNWRAP, CKA_VERIFY, CKA_WRAP, CKK_AES, CKK_GENERIC_SECRET, CKM_AES_KEY_GEN,
    CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN, CKM_GENERIC_SECRET_KEY_GEN,
    CKM_RSA_PKCS_KEY_PAIR_GEN, CK_ATTRIBUTE_TYPE, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_ULONG,
};

use super::token::TokenError;
use crate::store::UnixTime;

/// The boolean attributes a rotation copies from each object of a key to its next
/// version: the usage and protection ones an application chose at generation. An
/// object class that lacks one is simply without it, so one list serves every class.
pub const COPIED_FLAGS: [CK_ATTRIBUTE_TYPE; 10] = [
    CKA_SIGN,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_PRIVATE,
];

/// Everything needed to generate "the same key again" with a new `CKA_ID`: type,
/// size or curve, and the boolean usage/protection attributes of each object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShape {
    /// `CKK_*` name, as the store records it.
    pub algorithm: String,
    /// RSA modulus or secret key size, bits.
    pub size_bits: Option<u32>,
    /// Curve name (for display and the store) when known.
    pub curve: Option<String>,
    /// DER `CKA_EC_PARAMS` of an EC/Edwards key (what generation needs).
    pub ec_params: Option<Vec<u8>>,
    /// RSA public exponent, big-endian.
    pub public_exponent: Option<Vec<u8>>,
    /// `true` for a key pair, `false` for a secret key.
    pub pair: bool,
    /// Boolean attributes of the private (or secret) key: `(CKA_*, value)`, of
    /// [`COPIED_FLAGS`].
    pub private_flags: Vec<(u64, bool)>,
    /// Boolean attributes of the public key.
    pub public_flags: Vec<(u64, bool)>,
}

/// One attribute of a generation template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateAttr {
    /// `CKA_TOKEN`.
    Token(bool),
    /// `CKA_ID`.
    Id(Vec<u8>),
    /// `CKA_LABEL` (UTF-8).
    Label(String),
    /// `CKA_START_DATE`, the UTC day of this time.
    StartDate(UnixTime),
    /// One of [`COPIED_FLAGS`].
    Flag(CK_ATTRIBUTE_TYPE, bool),
    /// `CKA_EC_PARAMS` (DER).
    EcParams(Vec<u8>),
    /// `CKA_MODULUS_BITS`.
    ModulusBits(CK_ULONG),
    /// `CKA_PUBLIC_EXPONENT` (big-endian).
    PublicExponent(Vec<u8>),
    /// `CKA_VALUE_LEN`, bytes.
    ValueLen(CK_ULONG),
    /// `CKA_KEY_TYPE`.
    KeyType(CK_KEY_TYPE),
}

/// The generation mechanism of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyGen {
    /// `CKM_EC_KEY_PAIR_GEN`.
    EcKeyPair,
    /// `CKM_EC_EDWARDS_KEY_PAIR_GEN`.
    EcEdwardsKeyPair,
    /// `CKM_RSA_PKCS_KEY_PAIR_GEN`.
    RsaPkcsKeyPair,
    /// `CKM_AES_KEY_GEN`.
    AesKey,
    /// `CKM_GENERIC_SECRET_KEY_GEN`.
    GenericSecretKey,
}

impl KeyGen {
    /// The `CKM_*` code.
    pub fn mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            KeyGen::EcKeyPair => CKM_EC_KEY_PAIR_GEN,
            KeyGen::EcEdwardsKeyPair => CKM_EC_EDWARDS_KEY_PAIR_GEN,
            KeyGen::RsaPkcsKeyPair => CKM_RSA_PKCS_KEY_PAIR_GEN,
            KeyGen::AesKey => CKM_AES_KEY_GEN,
            KeyGen::GenericSecretKey => CKM_GENERIC_SECRET_KEY_GEN,
        }
    }
}

/// How to generate one key (pair): the mechanism and each object's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The mechanism.
    pub mechanism: KeyGen,
    /// The public key's template; `None` for a secret key (`C_GenerateKey`).
    pub public: Option<Vec<TemplateAttr>>,
    /// The private (or secret) key's template.
    pub private: Vec<TemplateAttr>,
}

impl KeyShape {
    /// How to generate this shape as token objects with `CKA_ID = id`, `CKA_LABEL =
    /// label` and `CKA_START_DATE = start`, each object with the flags the shape
    /// read. An algorithm without a known generation mechanism (or without the size
    /// or parameters it needs) is refused.
    pub fn generation(
        &self,
        id: &[u8],
        label: &str,
        start: UnixTime,
    ) -> Result<Generation, TokenError> {
        let with_flags =
            |flags: &[(u64, bool)]| {
                let mut t = vec![
                    TemplateAttr::Token(true),
                    TemplateAttr::Id(id.to_vec()),
                    TemplateAttr::Label(label.to_owned()),
                    TemplateAttr::StartDate(start),
                ];
                t.extend(flags.iter().filter_map(|(c, v)| {
                    Some(TemplateAttr::Flag(CK_ULONG::try_from(*c).ok()?, *v))
                }));
                t
            };
        let mut private = with_flags(&self.private_flags);
        let mut public = with_flags(&self.public_flags);
        let unsupported = || TokenError(format!("cannot generate a {} key", self.algorithm));
        let mechanism = match self.algorithm.as_str() {
            "CKK_EC" | "CKK_EC_EDWARDS" => {
                let params = self.ec_params.clone().ok_or_else(unsupported)?;
                public.push(TemplateAttr::EcParams(params));
                if self.algorithm == "CKK_EC" {
                    KeyGen::EcKeyPair
                } else {
                    KeyGen::EcEdwardsKeyPair
                }
            }
            "CKK_RSA" => {
                let bits = self.size_bits.ok_or_else(unsupported)?;
                public.push(TemplateAttr::ModulusBits(CK_ULONG::from(bits)));
                if let Some(e) = &self.public_exponent {
                    public.push(TemplateAttr::PublicExponent(e.clone()));
                }
                KeyGen::RsaPkcsKeyPair
            }
            "CKK_AES" | "CKK_GENERIC_SECRET" => {
                let bytes = self.size_bits.ok_or_else(unsupported)? / 8;
                private.push(TemplateAttr::ValueLen(CK_ULONG::from(bytes)));
                if self.algorithm == "CKK_AES" {
                    private.push(TemplateAttr::KeyType(CKK_AES));
                    KeyGen::AesKey
                } else {
                    private.push(TemplateAttr::KeyType(CKK_GENERIC_SECRET));
                    KeyGen::GenericSecretKey
                }
            }
            _ => return Err(unsupported()),
        };
        Ok(Generation {
            mechanism,
            public: self.pair.then_some(public),
            private,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(algorithm: &str, pair: bool) -> KeyShape {
        KeyShape {
            algorithm: algorithm.into(),
            size_bits: Some(256),
            curve: None,
            ec_params: Some(vec![6, 3, 1]),
            public_exponent: Some(vec![1, 0, 1]),
            pair,
            private_flags: vec![(CKA_SIGN, true)],
            public_flags: vec![(CKA_VERIFY, true)],
        }
    }

    #[test]
    fn an_ec_pair_gets_its_parameters_on_the_public_template() {
        let g = shape("CKK_EC", true).generation(b"KW1", "k", 0).unwrap();
        assert_eq!(g.mechanism.mechanism(), CKM_EC_KEY_PAIR_GEN);
        let public = g.public.unwrap();
        assert_eq!(public.last(), Some(&TemplateAttr::EcParams(vec![6, 3, 1])));
        assert!(public.contains(&TemplateAttr::Flag(CKA_VERIFY, true)));
        assert_eq!(
            g.private[..4],
            [
                TemplateAttr::Token(true),
                TemplateAttr::Id(b"KW1".to_vec()),
                TemplateAttr::Label("k".into()),
                TemplateAttr::StartDate(0),
            ]
        );
    }

    #[test]
    fn a_secret_key_gets_its_length_in_bytes_and_type_and_no_public_template() {
        let g = shape("CKK_AES", false).generation(b"KW1", "k", 0).unwrap();
        assert_eq!(g.mechanism, KeyGen::AesKey);
        assert!(g.public.is_none());
        assert!(g
            .private
            .ends_with(&[TemplateAttr::ValueLen(32), TemplateAttr::KeyType(CKK_AES)]));
    }

    #[test]
    fn an_unknown_algorithm_is_refused_by_name() {
        let e = shape("CKK_DSA", true)
            .generation(b"KW1", "k", 0)
            .unwrap_err();
        assert_eq!(e.to_string(), "token: cannot generate a CKK_DSA key");
    }
}
