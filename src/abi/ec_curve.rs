//! Elliptic curves named from a template's `CKA_EC_PARAMS` (v2.40 base §4.9, EC
//! keys; v3.0 mechanisms §2.3.5/§2.3.7 for the Edwards and Montgomery curves).

/// Elliptic curves Keywarden can name from `CKA_EC_PARAMS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-224 (secp224r1).
    P224,
    /// NIST P-256 (prime256v1, secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// secp256k1.
    Secp256k1,
    /// brainpoolP256r1.
    BrainpoolP256r1,
    /// brainpoolP384r1.
    BrainpoolP384r1,
    /// brainpoolP512r1.
    BrainpoolP512r1,
    /// Ed25519 (edwards25519).
    Ed25519,
    /// Ed448 (edwards448).
    Ed448,
    /// X25519 (curve25519).
    X25519,
    /// X448 (curve448).
    X448,
}

/// `CKA_EC_PARAMS` encodings: a DER OBJECT IDENTIFIER (tag 06) for every curve, and
/// for the Edwards and Montgomery curves also the DER PrintableString (tag 13) that
/// PKCS#11 v3.0 mechanisms §2.3.5/§2.3.7 allow.
const CURVES: &[(&[u8], EcCurve)] = &[
    // 1.3.132.0.33
    (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21], EcCurve::P224),
    // 1.2.840.10045.3.1.7
    (
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        EcCurve::P256,
    ),
    // 1.3.132.0.34
    (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], EcCurve::P384),
    // 1.3.132.0.35
    (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], EcCurve::P521),
    // 1.3.132.0.10
    (
        &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        EcCurve::Secp256k1,
    ),
    // 1.3.36.3.3.2.8.1.1.7 / .11 / .13
    (
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
        ],
        EcCurve::BrainpoolP256r1,
    ),
    (
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b,
        ],
        EcCurve::BrainpoolP384r1,
    ),
    (
        &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d,
        ],
        EcCurve::BrainpoolP512r1,
    ),
    // RFC 8410: 1.3.101.110 X25519, .111 X448, .112 Ed25519, .113 Ed448
    (&[0x06, 0x03, 0x2b, 0x65, 0x6e], EcCurve::X25519),
    (&[0x06, 0x03, 0x2b, 0x65, 0x6f], EcCurve::X448),
    (&[0x06, 0x03, 0x2b, 0x65, 0x70], EcCurve::Ed25519),
    (&[0x06, 0x03, 0x2b, 0x65, 0x71], EcCurve::Ed448),
    (b"\x13\x0cedwards25519", EcCurve::Ed25519),
    (b"\x13\x0aedwards448", EcCurve::Ed448),
    (b"\x13\x0acurve25519", EcCurve::X25519),
    (b"\x13\x08curve448", EcCurve::X448),
];

impl EcCurve {
    /// The curve whose DER encoding is exactly `ec_params`; `None` for other curves,
    /// explicit parameters or malformed bytes (policy decides what that means).
    pub fn from_ec_params(ec_params: &[u8]) -> Option<EcCurve> {
        CURVES
            .iter()
            .find(|(der, _)| *der == ec_params)
            .map(|&(_, curve)| curve)
    }

    /// The DER OBJECT IDENTIFIER encoding, as a client puts it in `CKA_EC_PARAMS`.
    pub fn der_oid(self) -> &'static [u8] {
        CURVES
            .iter()
            .find(|(der, c)| *c == self && der.first() == Some(&0x06))
            .map_or(&[], |(der, _)| der)
    }

    /// The usual name (the one OpenSSL and the IETF use).
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P224 => "P-224",
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
            EcCurve::Secp256k1 => "secp256k1",
            EcCurve::BrainpoolP256r1 => "brainpoolP256r1",
            EcCurve::BrainpoolP384r1 => "brainpoolP384r1",
            EcCurve::BrainpoolP512r1 => "brainpoolP512r1",
            EcCurve::Ed25519 => "Ed25519",
            EcCurve::Ed448 => "Ed448",
            EcCurve::X25519 => "X25519",
            EcCurve::X448 => "X448",
        }
    }

    /// Every curve, for tests and configuration help.
    pub const ALL: [EcCurve; 12] = [
        EcCurve::P224,
        EcCurve::P256,
        EcCurve::P384,
        EcCurve::P521,
        EcCurve::Secp256k1,
        EcCurve::BrainpoolP256r1,
        EcCurve::BrainpoolP384r1,
        EcCurve::BrainpoolP512r1,
        EcCurve::Ed25519,
        EcCurve::Ed448,
        EcCurve::X25519,
        EcCurve::X448,
    ];
}
