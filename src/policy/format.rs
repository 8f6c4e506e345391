//! The policy file as written (TOML, docs/policy.md): serde structures with unknown
//! keys refused everywhere, and spans kept on each table so validation errors can
//! name `file:line`. Nothing is interpreted here; `compile.rs` does that.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One value or a list of them: `user = "alice"` or `user = ["alice", "bob"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Format version; must be 1.
    pub version: Spanned<i64>,
    /// `[settings]`.
    #[serde(default)]
    pub settings: Option<Spanned<RawSettings>>,
    /// `[principals]`: name → matcher.
    #[serde(default)]
    pub principals: BTreeMap<String, Spanned<RawPrincipal>>,
    /// `[roles]`: name → role.
    #[serde(default)]
    pub roles: BTreeMap<String, Spanned<RawRole>>,
    /// `[[keyset]]`, in order.
    #[serde(default, rename = "keyset")]
    pub keysets: Vec<Spanned<RawKeyset>>,
    /// `[[rule]]`, in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawRule>>,
    /// `[[grant]]`, in order.
    #[serde(default, rename = "grant")]
    pub grants: Vec<Spanned<RawGrant>>,
    /// `[creation]`.
    #[serde(default)]
    pub creation: Option<Spanned<RawCreation>>,
    /// `[[cryptoperiod]]`, in order (first match wins).
    #[serde(default, rename = "cryptoperiod")]
    pub cryptoperiods: Vec<Spanned<RawCryptoperiod>>,
}

/// `[[cryptoperiod]]`: how long keys of a kind are used (SP 800-57 Part 1 §5.3), and
/// what happens when the originator-usage period ends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCryptoperiod {
    /// Name shown by `keywarden keys`; defaults to `line N`.
    pub name: Option<String>,
    /// Label glob(s).
    pub label: Option<OneOrMany<String>>,
    /// `CKA_ID`(s), hex.
    pub id: Option<OneOrMany<String>>,
    /// Key type(s).
    #[serde(rename = "type")]
    pub key_type: Option<OneOrMany<String>>,
    /// Originator-usage period (`"90d"`), from activation.
    pub originator: String,
    /// Recipient-usage period (`"2y"`), from activation; at least `originator`.
    pub recipient: Option<String>,
    /// `warn`, `rotate` or `deactivate`.
    pub when_due: Option<String>,
    /// Compromised versions may still verify (forensics).
    pub forensic_verify: Option<bool>,
}

/// `[settings]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `"+01:00"`: the offset time windows are evaluated in.
    pub utc_offset: Option<String>,
    /// Level of keys no keyset classifies.
    pub default_classification: Option<String>,
    /// Clearance of a caller that holds no role (for `roles = ["*"]` rules).
    pub default_clearance: Option<String>,
    /// Object classes every caller may see in searches.
    pub always_visible: Option<Vec<String>>,
    /// Keys on the token the metadata store does not manage: `"allow"`,
    /// `"processing"` or `"deny"` (docs/policy.md).
    pub unmanaged_keys: Option<String>,
}

/// A principal matcher: every field given must match (AND); a list in a field
/// matches any of its values (OR).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrincipal {
    /// Unix uid(s).
    pub uid: Option<OneOrMany<u32>>,
    /// User name(s).
    pub user: Option<OneOrMany<String>>,
    /// Gid(s), primary or supplementary.
    pub gid: Option<OneOrMany<u32>>,
    /// Group name(s), primary or supplementary.
    pub group: Option<OneOrMany<String>>,
    /// Executable path glob(s).
    pub exe: Option<OneOrMany<String>>,
    /// Host name glob(s).
    pub host: Option<OneOrMany<String>>,
    /// Login state(s): public, user, so.
    pub login: Option<OneOrMany<String>>,
    /// Named identity name(s).
    pub identity: Option<OneOrMany<String>>,
}

/// A role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// Principal names; `"*"` for every caller.
    #[serde(default)]
    pub members: Vec<String>,
    /// Highest classification the role may use.
    pub clearance: String,
    /// Free text for people; not interpreted.
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// Key facts to match: every field given must match.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeySelector {
    /// Keyset name(s) (rules only).
    pub set: Option<OneOrMany<String>>,
    /// Label glob(s).
    pub label: Option<OneOrMany<String>>,
    /// `CKA_ID`(s), hex.
    pub id: Option<OneOrMany<String>>,
    /// Object class(es): `private-key`, `CKO_SECRET_KEY`, ...
    pub class: Option<OneOrMany<String>>,
    /// Key type(s): `RSA`, `EC`, `CKK_AES`, ...
    #[serde(rename = "type")]
    pub key_type: Option<OneOrMany<String>>,
    /// Classification level(s) (rules only).
    pub classification: Option<OneOrMany<String>>,
}

/// `[[keyset]]`: a named group of keys with a classification and an owner.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyset {
    /// Name.
    pub name: String,
    /// Label glob(s).
    pub label: Option<OneOrMany<String>>,
    /// `CKA_ID`(s), hex.
    pub id: Option<OneOrMany<String>>,
    /// Object class(es).
    pub class: Option<OneOrMany<String>>,
    /// Key type(s).
    #[serde(rename = "type")]
    pub key_type: Option<OneOrMany<String>>,
    /// The level of keys in the set.
    pub classification: Option<String>,
    /// The owning role (DAC).
    pub owner: Option<String>,
    /// `keywarden keys destroy` refuses keys of this set (they must be backed up and
    /// the flag removed first).
    pub backup_required: Option<bool>,
    /// Free text for people; not interpreted.
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// ABAC conditions.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConditions {
    /// `["mon-fri", "sun"]`.
    pub days: Option<Vec<String>>,
    /// `"08:00-18:00"` or a list; end exclusive; may wrap past midnight.
    pub hours: Option<OneOrMany<String>>,
    /// Executable path glob(s).
    pub exe: Option<OneOrMany<String>>,
    /// Host name glob(s).
    pub host: Option<OneOrMany<String>>,
    /// Login state(s).
    pub login: Option<OneOrMany<String>>,
}

/// `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id, named by every decision the rule makes.
    pub id: String,
    /// `allow` (default) or `deny`.
    pub effect: Option<String>,
    /// Role names, or `["*"]` for every caller.
    pub roles: Vec<String>,
    /// Operation names, or `["*"]`.
    pub ops: Vec<String>,
    /// The keys the rule is about; absent: any key, and requests without a key.
    pub keys: Option<RawKeySelector>,
    /// Mechanisms the rule is about (`CKM_*`); absent: any.
    pub mechanisms: Option<Vec<String>>,
    /// Mechanisms the rule is not about.
    pub except_mechanisms: Option<Vec<String>>,
    /// Conditions.
    pub when: Option<RawConditions>,
    /// Free text, shown by `keywarden policy explain`.
    pub description: Option<String>,
}

/// `[[grant]]`: an owner role lends use of its keyset to other roles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// Unique id (shared namespace with rule ids).
    pub id: String,
    /// The granting role; must own `keyset`.
    pub owner: String,
    /// The keyset lent.
    pub keyset: String,
    /// Grantee roles.
    pub to: Vec<String>,
    /// Operations lent.
    pub ops: Vec<String>,
    /// Mechanisms lent; absent: any.
    pub mechanisms: Option<Vec<String>>,
    /// Mechanisms not lent.
    pub except_mechanisms: Option<Vec<String>>,
    /// Conditions.
    pub when: Option<RawConditions>,
    /// Free text for people; not interpreted.
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// `[creation]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreation {
    /// Key types new keys may have.
    pub key_types: Option<Vec<String>>,
    /// Minimum RSA modulus, bits.
    pub rsa_min_bits: Option<u32>,
    /// Minimum curve size, bits.
    pub ec_min_bits: Option<u32>,
    /// Allowed curves (overrides `ec_min_bits`).
    pub ec_curves: Option<Vec<String>>,
    /// Minimum AES key, bits.
    pub aes_min_bits: Option<u32>,
    /// Minimum generic-secret/HMAC key, bits.
    pub secret_min_bits: Option<u32>,
    /// Minimum DSA/DH prime, bits.
    pub dsa_dh_min_bits: Option<u32>,
    /// Regex every new key's label must match.
    pub label: Option<String>,
    /// New keys must have a label.
    pub require_label: Option<bool>,
    /// New keys must fall in a keyset with a classification.
    pub require_classification: Option<bool>,
    /// Private/secret keys: CKA_SENSITIVE=TRUE, added when absent.
    pub require_sensitive: Option<bool>,
    /// Private/secret keys: CKA_EXTRACTABLE=FALSE, added when absent.
    pub require_non_extractable: Option<bool>,
    /// Further boolean attributes forced on new private/secret keys.
    pub set: Option<BTreeMap<String, bool>>,
}
