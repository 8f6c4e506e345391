//! The policy's vocabulary: operations, classification levels, login states, and the
//! facts about callers ([`Principal`]) and keys ([`KeyFacts`]) that decisions are
//! made on. Everything here is plain data; the compiled rules live in `compile.rs`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use pkcs11_sys::*;

use crate::abi::EcCurve;
use crate::functions::FunctionId;

/// Something a caller may be allowed to do. Key operations act on a key; creation
/// operations act on the key being created (its template); administrative ones act
/// on the token and never match a rule that selects keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `C_SignInit`, `C_SignRecoverInit` (and the v3.0 one-shot forms).
    Sign,
    /// `C_VerifyInit`, `C_VerifyRecoverInit`.
    Verify,
    /// `C_EncryptInit`.
    Encrypt,
    /// `C_DecryptInit`.
    Decrypt,
    /// `C_WrapKey`, on the wrapping key.
    Wrap,
    /// `C_UnwrapKey`, on the unwrapping key.
    Unwrap,
    /// `C_DeriveKey`, on the base key.
    Derive,
    /// `C_DigestKey`: a key's value fed into a digest.
    DigestWithKey,
    /// `C_GenerateKey`, `C_GenerateKeyPair`, and the new key of `C_DeriveKey`.
    Generate,
    /// `C_CreateObject` (import), and the new key of `C_UnwrapKey`.
    Create,
    /// `C_CopyObject`, on the source object.
    Copy,
    /// `C_DestroyObject`.
    Destroy,
    /// `C_SetAttributeValue`.
    SetAttribute,
    /// `C_GetAttributeValue` of a secret-valued attribute (`CKA_VALUE`, private
    /// exponent, primes: see [`is_secret_attribute`]).
    ReadSensitive,
    /// Key material leaving the token's protection: creating or copying a private or
    /// secret key that is extractable or not sensitive, and being the key that
    /// `C_WrapKey` wraps.
    Export,
    /// `C_InitToken`.
    InitToken,
    /// `C_InitPIN`.
    InitPin,
    /// `C_SetPIN`.
    SetPin,
    /// `C_Login` with `CKU_SO`.
    SoLogin,
}

impl Op {
    /// Every operation, in a fixed order (the index order of the compiled buckets).
    pub const ALL: [Op; 19] = [
        Op::Sign,
        Op::Verify,
        Op::Encrypt,
        Op::Decrypt,
        Op::Wrap,
        Op::Unwrap,
        Op::Derive,
        Op::DigestWithKey,
        Op::Generate,
        Op::Create,
        Op::Copy,
        Op::Destroy,
        Op::SetAttribute,
        Op::ReadSensitive,
        Op::Export,
        Op::InitToken,
        Op::InitPin,
        Op::SetPin,
        Op::SoLogin,
    ];
    /// Number of operations.
    pub const COUNT: usize = Op::ALL.len();

    /// Position in [`Op::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name used in policy files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Sign => "sign",
            Op::Verify => "verify",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Wrap => "wrap",
            Op::Unwrap => "unwrap",
            Op::Derive => "derive",
            Op::DigestWithKey => "digest-with-key",
            Op::Generate => "generate",
            Op::Create => "create",
            Op::Copy => "copy",
            Op::Destroy => "destroy",
            Op::SetAttribute => "set-attribute",
            Op::ReadSensitive => "read-sensitive-attribute",
            Op::Export => "export",
            Op::InitToken => "init-token",
            Op::InitPin => "init-pin",
            Op::SetPin => "set-pin",
            Op::SoLogin => "so-login",
        }
    }

    /// Parses a policy-file name; `import` is accepted for `create`.
    pub fn from_name(name: &str) -> Option<Op> {
        if name == "import" {
            return Some(Op::Create);
        }
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Token administration: no key is involved, and a rule that selects keys
    /// never matches these.
    pub const fn is_admin(self) -> bool {
        matches!(self, Op::InitToken | Op::InitPin | Op::SetPin | Op::SoLogin)
    }

    /// Operations that create an object; the "key" they are decided on is the new one.
    pub const fn is_creation(self) -> bool {
        matches!(self, Op::Generate | Op::Create)
    }

    /// Operations that use a key's value (cryptographic use and export), as opposed
    /// to creating, managing or administering objects: exactly those refused with
    /// `CKR_KEY_FUNCTION_NOT_PERMITTED`, so the list lives once, in `refusal_rv`.
    pub const fn uses_key_value(self) -> bool {
        self.refusal_rv() == CKR_KEY_FUNCTION_NOT_PERMITTED
    }

    /// The code a refusal of this operation is reported with (docs/policy.md,
    /// "Refusal codes"). A refused mechanism is `CKR_MECHANISM_INVALID` whatever
    /// the operation.
    pub const fn refusal_rv(self) -> CK_RV {
        match self {
            Op::Sign
            | Op::Verify
            | Op::Encrypt
            | Op::Decrypt
            | Op::Wrap
            | Op::Unwrap
            | Op::Derive
            | Op::DigestWithKey
            | Op::Export => CKR_KEY_FUNCTION_NOT_PERMITTED,
            // The template describes a key the caller may not create.
            Op::Generate | Op::Create => CKR_TEMPLATE_INCONSISTENT,
            // v2.40 §5.7: the code C_GetAttributeValue owes for an attribute that
            // "cannot be revealed"; clients already handle it per attribute.
            Op::ReadSensitive => CKR_ATTRIBUTE_SENSITIVE,
            // v2.40 §5.1.6 CKR_ACTION_PROHIBITED: "the action may not be taken,
            // either because of underlying policy restrictions on the token ...".
            Op::Copy
            | Op::Destroy
            | Op::SetAttribute
            | Op::InitToken
            | Op::InitPin
            | Op::SetPin
            | Op::SoLogin => CKR_ACTION_PROHIBITED,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The attributes whose value is secret key material: reading one is
/// `read-sensitive-attribute` (v2.40 §4.9 private keys, §4.10 secret keys, and the
/// mechanisms document's private-key attributes).
pub fn is_secret_attribute(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        ty,
        CKA_VALUE
            | CKA_PRIVATE_EXPONENT
            | CKA_PRIME_1
            | CKA_PRIME_2
            | CKA_EXPONENT_1
            | CKA_EXPONENT_2
            | CKA_COEFFICIENT
    )
}

/// Classification levels (MAC), lowest first. A role's clearance is the highest
/// level of key it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Low.
    Low,
    /// Low-Medium.
    LowMedium,
    /// Medium.
    Medium,
    /// Medium-High.
    MediumHigh,
    /// High.
    High,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Low,
        Level::LowMedium,
        Level::Medium,
        Level::MediumHigh,
        Level::High,
    ];

    /// The name used in policy files.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::LowMedium => "Low-Medium",
            Level::Medium => "Medium",
            Level::MediumHigh => "Medium-High",
            Level::High => "High",
        }
    }

    /// Parses a level name, ignoring case.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }

    /// A one-bit mask for level sets.
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The PKCS#11 login state of the caller's session (v2.40 §6.7: public session,
/// user functions, SO functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Login {
    /// Not logged in.
    #[default]
    Public,
    /// Logged in as the normal user (`CKU_USER`).
    User,
    /// Logged in as the Security Officer (`CKU_SO`).
    So,
}

impl Login {
    /// The name used in policy files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Login::Public => "public",
            Login::User => "user",
            Login::So => "so",
        }
    }

    /// Parses `public`, `user` or `so`.
    pub fn from_name(name: &str) -> Option<Login> {
        [Login::Public, Login::User, Login::So]
            .into_iter()
            .find(|l| l.name() == name)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A named identity established by Keywarden's own credential check (a PIN of the
/// form `name:secret`). The credential store verifies the secret and hands the
/// engine only the name and the roles bound to it; nothing secret is kept here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamedIdentity {
    /// The identity's name.
    pub name: String,
    /// Roles the store binds to it. Names the policy file does not define are
    /// ignored (they grant nothing), and `keywarden policy check` cannot see them.
    pub roles: Vec<String>,
}

/// Who is calling: the facts the module can observe about the process and session.
/// Unknown facts are `None`/empty, and a matcher on an unknown fact never matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// Real uid of the calling process.
    pub uid: Option<u32>,
    /// User name of that uid.
    pub user: Option<String>,
    /// Primary and supplementary gids.
    pub gids: Vec<u32>,
    /// Names of those groups.
    pub groups: Vec<String>,
    /// Absolute path of the executable.
    pub exe: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// Session login state.
    pub login: Login,
    /// The named identity, when the session logged in with `name:secret`.
    pub identity: Option<NamedIdentity>,
}

/// What the policy knows about a key (or other object): read from the token by the
/// gateway (and cached per handle), or built from a template for a new key.
/// A selector on a fact that is `None` never matches (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFacts {
    /// `CKA_CLASS`.
    pub class: Option<CK_OBJECT_CLASS>,
    /// `CKA_KEY_TYPE`.
    pub key_type: Option<CK_KEY_TYPE>,
    /// `CKA_LABEL` as text (RFC 2279 UTF-8 per v2.40 §4.4; lossy for other bytes).
    pub label: Option<String>,
    /// `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
    /// The level recorded for this key by the metadata store, if any. The key is at
    /// the higher of this and its keyset's level (see `Policy::classify`).
    pub classification: Option<Level>,
    /// `CKA_SENSITIVE`.
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE`.
    pub extractable: Option<bool>,
    /// Key size in bits (RSA modulus, AES/secret value, DSA/DH prime).
    pub bits: Option<u32>,
    /// Named curve of an EC/Edwards/Montgomery key.
    pub curve: Option<EcCurve>,
}

impl KeyFacts {
    /// Facts with just a label, for the CLI and tests.
    pub fn labelled(label: &str) -> KeyFacts {
        KeyFacts {
            label: Some(label.to_owned()),
            ..KeyFacts::default()
        }
    }
}

/// The rule (or built-in check) a decision came from. Its `Display` is what the
/// audit trail and `keywarden policy explain` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRef {
    /// A `[[rule]]` of the policy file, by id.
    Rule(Arc<str>),
    /// A `[[grant]]` of the policy file, by id.
    Grant(Arc<str>),
    /// A built-in check: `default-deny`, `mac-clearance`, `transparent`,
    /// `creation.key-type`, `creation.key-size`, `creation.label`,
    /// `creation.classification`, `creation.sensitive`, `creation.extractable`,
    /// `creation.attribute`, `copy.loosening`, `set-attribute.loosening`,
    /// `not-key-material`.
    Builtin(&'static str),
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Rule(id) | RuleRef::Grant(id) => f.write_str(id),
            RuleRef::Builtin(name) => f.write_str(name),
        }
    }
}

/// Built-in rule names, reserved: no rule or grant may use them as its id.
pub(crate) const BUILTIN_NAMES: &[&str] = &[
    "default-deny",
    "mac-clearance",
    "transparent",
    "creation.key-type",
    "creation.key-size",
    "creation.label",
    "creation.classification",
    "creation.sensitive",
    "creation.extractable",
    "creation.attribute",
    "copy.loosening",
    "set-attribute.loosening",
    "not-key-material",
];

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the call may go on.
    pub allow: bool,
    /// The rule that decided.
    pub rule: RuleRef,
    /// Why, in words, for the audit trail and the application owner's log.
    /// Borrowed on the allow path, so an allowed call allocates nothing.
    pub reason: Cow<'static, str>,
    /// `CKR_OK` when allowed, else the documented refusal code.
    pub rv: CK_RV,
}

impl Decision {
    pub(crate) fn allow(rule: RuleRef, reason: impl Into<Cow<'static, str>>) -> Decision {
        Decision {
            allow: true,
            rule,
            reason: reason.into(),
            rv: CKR_OK,
        }
    }

    pub(crate) fn deny(rule: RuleRef, rv: CK_RV, reason: impl Into<Cow<'static, str>>) -> Decision {
        Decision {
            allow: false,
            rule,
            reason: reason.into(),
            rv,
        }
    }

    /// The allow-everything decision of `mode = "transparent"`.
    pub fn transparent() -> Decision {
        Decision::allow(
            RuleRef::Builtin("transparent"),
            "transparent mode allows every call",
        )
    }
}

/// `Op::for_function`, generated from the function table's `op` column.
macro_rules! op_for_function {
    (
        v2_40 { $( $c2:ident [ $r2:ident $o2:tt $($x2:tt)+ ] $n2:ident $args2:tt; )* }
        v3_0 { $( $c3:ident [ $r3:ident $o3:tt $($x3:tt)+ ] $n3:ident $args3:tt; )* }
    ) => {
        impl Op {
            /// The operation a PKCS#11 function is decided as, for the functions that
            /// map one to one (the function table's `op` column). `C_Login` (only
            /// `CKU_SO` is `so-login`), `C_GetAttributeValue` (only secret attributes
            /// are `read-sensitive-attribute`) and the second checks of `C_WrapKey`,
            /// `C_UnwrapKey`, `C_DeriveKey` depend on arguments and are the gateway's
            /// to make (docs/policy.md, "Enforcement points").
            #[inline]
            pub const fn for_function(function: FunctionId) -> Option<Op> {
                match function {
                    $( FunctionId::$n2 => op_column!($o2), )*
                    $( FunctionId::$n3 => op_column!($o3), )*
                }
            }
        }
    };
}

/// One cell of the `op` column: `-` is none.
macro_rules! op_column {
    (-) => {
        None
    };
    ($op:ident) => {
        Some(Op::$op)
    };
}

crate::for_each_pkcs11_function!(op_for_function);
