//! A typed view over an application's attribute template (PKCS#11 v2.40 base §3.4
//! `CK_ATTRIBUTE`, §4 object attributes), for policy decisions on what an object will
//! be and for audit records of what was asked for.
//!
//! The view borrows the application's bytes and copies nothing: a call that is
//! allowed is forwarded with the application's own template, untouched. Attributes
//! Keywarden does not know pass through as raw bytes; nothing is allow-listed here
//! (refusing is policy's job, not the decoder's).
//!
//! Rules enforced by [`Template::parse`], with the codes a token owes (v2.40 §4.1.1,
//! "Creating objects", items 2 and 5, and §5.7 for `C_CreateObject`):
//! - A `CK_ULONG`-valued attribute whose length is not `sizeof(CK_ULONG)` →
//!   `CKR_ATTRIBUTE_VALUE_INVALID`.
//! - A `CK_BBOOL` attribute whose length is not 1, or whose value is not
//!   `CK_FALSE`/`CK_TRUE` → `CKR_ATTRIBUTE_VALUE_INVALID`.
//! - A `CK_MECHANISM_TYPE` array (`CKA_ALLOWED_MECHANISMS`, v2.40 §4.7) whose length
//!   is not a multiple of `sizeof(CK_ULONG)` → `CKR_ATTRIBUTE_VALUE_INVALID`.
//! - The same type twice with different values → `CKR_TEMPLATE_INCONSISTENT`. The
//!   same type twice with the same value is accepted and kept once: §4.1 lets a
//!   token either refuse it or pick the value, and the value is unambiguous.
//! - A NULL `pValue` with a non-zero `ulValueLen` → `CKR_ARGUMENTS_BAD`. An [`Attr`]
//!   cannot express that state, so the check lives where pointers become `Attr`s
//!   (`ffi::decode::attrs_from_raw`).
//!
//! `Debug` never prints a value, only types and lengths: templates carry
//! `CKA_VALUE`, private exponents and primes.

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;
use std::mem::size_of;

use pkcs11_sys::*;

use super::ec_curve::EcCurve;
use super::names::attribute_name;
use crate::error::{Error, Result};

/// One attribute as the application gave it. `value` is `None` for a NULL `pValue`
/// (which always comes with a length of 0).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// `CKA_*` type.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// The value bytes, `None` for NULL.
    pub value: Option<&'a [u8]>,
}

impl<'a> Attr<'a> {
    /// An attribute with a value.
    pub const fn new(ty: CK_ATTRIBUTE_TYPE, value: &'a [u8]) -> Attr<'a> {
        Attr {
            ty,
            value: Some(value),
        }
    }

    /// An attribute with a NULL `pValue` and length 0.
    pub const fn null(ty: CK_ATTRIBUTE_TYPE) -> Attr<'a> {
        Attr { ty, value: None }
    }

    /// The value bytes; NULL reads as empty (both mean "length 0").
    pub fn bytes(&self) -> &'a [u8] {
        self.value.unwrap_or(&[])
    }
}

impl fmt::Debug for Attr<'_> {
    // Type and length only: the value may be key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}({} bytes)", attribute_name(self.ty), v.len()),
            None => write!(f, "{}(NULL)", attribute_name(self.ty)),
        }
    }
}

/// How an attribute's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ulong,
    Bool,
    UlongArray,
    Bytes,
}

/// The value encoding of each attribute type Keywarden checks. Sources: v2.40 base
/// §4.2 (common), §4.3 (hardware features), §4.4 (storage), §4.6 (certificates),
/// §4.7-§4.10 (keys), §4.12 (mechanism objects); the mechanisms document for
/// `CKA_MODULUS_BITS`, `CKA_PRIME_BITS`, `CKA_VALUE_BITS` and the OTP attributes;
/// v3.0 base §4.13 (profiles); v3.1 mechanisms for the HSS attributes.
/// Everything else is bytes and passes through unchecked.
fn kind(ty: CK_ATTRIBUTE_TYPE) -> Kind {
    match ty {
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_CERTIFICATE_TYPE
        | CKA_CERTIFICATE_CATEGORY
        | CKA_JAVA_MIDP_SECURITY_DOMAIN
        | CKA_NAME_HASH_ALGORITHM
        | CKA_MODULUS_BITS
        | CKA_PRIME_BITS
        | CKA_SUBPRIME_BITS
        | CKA_VALUE_BITS
        | CKA_VALUE_LEN
        | CKA_KEY_GEN_MECHANISM
        | CKA_AUTH_PIN_FLAGS
        | CKA_MECHANISM_TYPE
        | CKA_HW_FEATURE_TYPE
        | CKA_PIXEL_X
        | CKA_PIXEL_Y
        | CKA_RESOLUTION
        | CKA_CHAR_ROWS
        | CKA_CHAR_COLUMNS
        | CKA_BITS_PER_PIXEL
        | CKA_OTP_FORMAT
        | CKA_OTP_LENGTH
        | CKA_OTP_TIME_INTERVAL
        | CKA_OTP_CHALLENGE_REQUIREMENT
        | CKA_OTP_TIME_REQUIREMENT
        | CKA_OTP_COUNTER_REQUIREMENT
        | CKA_OTP_PIN_REQUIREMENT
        | CKA_PROFILE_ID
        | CKA_HSS_LEVELS
        | CKA_HSS_LMS_TYPE
        | CKA_HSS_LMOTS_TYPE
        | CKA_HSS_KEYS_REMAINING => Kind::Ulong,
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_TRUSTED
        | CKA_SENSITIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_DERIVE
        | CKA_EXTRACTABLE
        | CKA_LOCAL
        | CKA_NEVER_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_ALWAYS_AUTHENTICATE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_SECONDARY_AUTH
        | CKA_OTP_USER_FRIENDLY_MODE
        | CKA_RESET_ON_INIT
        | CKA_HAS_RESET
        | CKA_COLOR => Kind::Bool,
        CKA_ALLOWED_MECHANISMS | CKA_HSS_LMS_TYPES | CKA_HSS_LMOTS_TYPES => Kind::UlongArray,
        _ => Kind::Bytes,
    }
}

const ULONG: usize = size_of::<CK_ULONG>();

fn value_invalid(why: &'static str) -> Error {
    Error::Invalid(CKR_ATTRIBUTE_VALUE_INVALID, why)
}

/// A `CK_ULONG` in the application's (native) byte order.
fn ulong_from(bytes: &[u8]) -> Option<CK_ULONG> {
    <[u8; ULONG]>::try_from(bytes)
        .ok()
        .map(CK_ULONG::from_ne_bytes)
}

/// A checked, decoded value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typed {
    Ulong(CK_ULONG),
    Bool(bool),
    Bytes,
}

fn decode(attr: Attr<'_>) -> Result<Typed> {
    let bytes = attr.bytes();
    match kind(attr.ty) {
        Kind::Ulong => ulong_from(bytes).map(Typed::Ulong).ok_or_else(|| {
            value_invalid("CK_ULONG attribute whose length is not sizeof(CK_ULONG)")
        }),
        Kind::Bool => match bytes {
            [b] if *b == CK_FALSE => Ok(Typed::Bool(false)),
            [b] if *b == CK_TRUE => Ok(Typed::Bool(true)),
            [_] => Err(value_invalid(
                "CK_BBOOL attribute that is neither CK_TRUE nor CK_FALSE",
            )),
            _ => Err(value_invalid("CK_BBOOL attribute whose length is not 1")),
        },
        Kind::UlongArray if bytes.len() % ULONG != 0 => Err(value_invalid(
            "CK_ULONG array attribute whose length is not a multiple of sizeof(CK_ULONG)",
        )),
        Kind::UlongArray | Kind::Bytes => Ok(Typed::Bytes),
    }
}

/// A parsed template: each attribute type at most once, in the application's order.
#[derive(Clone, Default)]
pub struct Template<'a> {
    attrs: Vec<(Attr<'a>, Typed)>,
    index: BTreeMap<CK_ATTRIBUTE_TYPE, usize>,
}

/// Typed getters for `CK_BBOOL` attributes, `None` when the template leaves them out.
macro_rules! flag_getters {
    ($( $(#[$doc:meta])* $fn:ident => $cka:ident; )*) => { $(
        $(#[$doc])*
        pub fn $fn(&self) -> Option<bool> {
            self.flag($cka)
        }
    )* };
}

/// Typed getters for `CK_ULONG` attributes.
macro_rules! ulong_getters {
    ($( $(#[$doc:meta])* $fn:ident => $cka:ident; )*) => { $(
        $(#[$doc])*
        pub fn $fn(&self) -> Option<CK_ULONG> {
            self.ulong($cka)
        }
    )* };
}

impl<'a> Template<'a> {
    /// Checks and indexes `attrs` (rules in the module documentation). The first
    /// offending attribute in the application's order decides the error.
    pub fn parse(attrs: &[Attr<'a>]) -> Result<Template<'a>> {
        let mut template = Template {
            attrs: Vec::with_capacity(attrs.len()),
            index: BTreeMap::new(),
        };
        for &attr in attrs {
            let typed = decode(attr)?;
            match template.index.entry(attr.ty) {
                Entry::Vacant(slot) => {
                    slot.insert(template.attrs.len());
                    template.attrs.push((attr, typed));
                }
                Entry::Occupied(first) => {
                    let same = template
                        .attrs
                        .get(*first.get())
                        .is_some_and(|(earlier, _)| earlier.bytes() == attr.bytes());
                    if !same {
                        return Err(Error::Invalid(
                            CKR_TEMPLATE_INCONSISTENT,
                            "attribute given twice with different values",
                        ));
                    }
                }
            }
        }
        Ok(template)
    }

    fn entry(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&(Attr<'a>, Typed)> {
        self.index.get(&ty).and_then(|&i| self.attrs.get(i))
    }

    /// Number of distinct attribute types.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// True for an empty template.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// True when the template has an attribute of this type.
    pub fn contains(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.index.contains_key(&ty)
    }

    /// The attributes, duplicates removed, in the application's order.
    pub fn iter(&self) -> impl Iterator<Item = Attr<'a>> + '_ {
        self.attrs.iter().map(|(a, _)| *a)
    }

    /// The attribute of this type as given.
    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<Attr<'a>> {
        self.entry(ty).map(|(a, _)| *a)
    }

    /// The raw value bytes of any attribute, known or not (NULL reads as empty).
    pub fn bytes(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&'a [u8]> {
        self.entry(ty).map(|(a, _)| a.bytes())
    }

    /// The value of a `CK_ULONG` attribute (`None` if absent or not `CK_ULONG`-typed).
    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        match self.entry(ty) {
            Some((_, Typed::Ulong(v))) => Some(*v),
            _ => None,
        }
    }

    /// The value of a `CK_BBOOL` attribute (`None` if absent or not `CK_BBOOL`-typed).
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        match self.entry(ty) {
            Some((_, Typed::Bool(v))) => Some(*v),
            _ => None,
        }
    }

    ulong_getters! {
        /// `CKA_CLASS` (v2.40 §4.2).
        class => CKA_CLASS;
        /// `CKA_KEY_TYPE` (v2.40 §4.7).
        key_type => CKA_KEY_TYPE;
        /// `CKA_CERTIFICATE_TYPE` (v2.40 §4.6).
        certificate_type => CKA_CERTIFICATE_TYPE;
        /// `CKA_VALUE_LEN`, the length in bytes of a secret key (v2.40 §4.10).
        value_len => CKA_VALUE_LEN;
        /// `CKA_MODULUS_BITS`, the RSA key size (mechanisms §2.1.2).
        modulus_bits => CKA_MODULUS_BITS;
        /// `CKA_KEY_GEN_MECHANISM` (v2.40 §4.7).
        key_gen_mechanism => CKA_KEY_GEN_MECHANISM;
    }

    flag_getters! {
        /// `CKA_TOKEN` (v2.40 §4.4): a token object rather than a session object.
        token => CKA_TOKEN;
        /// `CKA_PRIVATE` (v2.40 §4.4).
        private => CKA_PRIVATE;
        /// `CKA_MODIFIABLE` (v2.40 §4.4).
        modifiable => CKA_MODIFIABLE;
        /// `CKA_COPYABLE` (v2.40 §4.4).
        copyable => CKA_COPYABLE;
        /// `CKA_DESTROYABLE` (v2.40 §4.4).
        destroyable => CKA_DESTROYABLE;
        /// `CKA_SENSITIVE` (v2.40 §4.9, §4.10).
        sensitive => CKA_SENSITIVE;
        /// `CKA_EXTRACTABLE` (v2.40 §4.9, §4.10).
        extractable => CKA_EXTRACTABLE;
        /// `CKA_ENCRYPT` (v2.40 §4.8, §4.10).
        encrypt => CKA_ENCRYPT;
        /// `CKA_DECRYPT` (v2.40 §4.9, §4.10).
        decrypt => CKA_DECRYPT;
        /// `CKA_SIGN` (v2.40 §4.9, §4.10).
        sign => CKA_SIGN;
        /// `CKA_SIGN_RECOVER` (v2.40 §4.9).
        sign_recover => CKA_SIGN_RECOVER;
        /// `CKA_VERIFY` (v2.40 §4.8, §4.10).
        verify => CKA_VERIFY;
        /// `CKA_VERIFY_RECOVER` (v2.40 §4.8).
        verify_recover => CKA_VERIFY_RECOVER;
        /// `CKA_WRAP` (v2.40 §4.8, §4.10).
        wrap => CKA_WRAP;
        /// `CKA_UNWRAP` (v2.40 §4.9, §4.10).
        unwrap => CKA_UNWRAP;
        /// `CKA_DERIVE` (v2.40 §4.7).
        derive => CKA_DERIVE;
        /// `CKA_WRAP_WITH_TRUSTED` (v2.40 §4.9, §4.10).
        wrap_with_trusted => CKA_WRAP_WITH_TRUSTED;
        /// `CKA_TRUSTED` (v2.40 §4.8, §4.10).
        trusted => CKA_TRUSTED;
        /// `CKA_ALWAYS_AUTHENTICATE` (v2.40 §4.9).
        always_authenticate => CKA_ALWAYS_AUTHENTICATE;
        /// `CKA_LOCAL` (v2.40 §4.7; read-only, so a template that sets it fails at the token).
        local => CKA_LOCAL;
    }

    /// `CKA_LABEL` bytes (v2.40 §4.4; RFC 2279 text, not checked).
    pub fn label(&self) -> Option<&'a [u8]> {
        self.bytes(CKA_LABEL)
    }

    /// `CKA_ID` bytes (v2.40 §4.7).
    pub fn id(&self) -> Option<&'a [u8]> {
        self.bytes(CKA_ID)
    }

    /// `CKA_EC_PARAMS` bytes: DER of the curve's ECParameters (mechanisms §2.3.3).
    pub fn ec_params(&self) -> Option<&'a [u8]> {
        self.bytes(CKA_EC_PARAMS)
    }

    /// The named curve of `CKA_EC_PARAMS`, when it is one Keywarden knows.
    pub fn ec_curve(&self) -> Option<EcCurve> {
        self.ec_params().and_then(EcCurve::from_ec_params)
    }

    /// `CKA_ALLOWED_MECHANISMS` (v2.40 §4.7), already checked to be whole `CK_ULONG`s.
    pub fn allowed_mechanisms(&self) -> Option<impl Iterator<Item = CK_MECHANISM_TYPE> + 'a> {
        self.bytes(CKA_ALLOWED_MECHANISMS)
            .map(|b| b.chunks_exact(ULONG).filter_map(ulong_from))
    }
}

impl fmt::Debug for Template<'_> {
    // Types and lengths only, through `Attr`'s redacting Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
