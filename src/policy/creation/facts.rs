//! The facts a creation template states: class, type, label, protection flags
//! and the size or curve, read by key type.

use pkcs11_sys::*;

use super::checks::{family, Family};
use crate::abi::Template;
use crate::policy::model::KeyFacts;

pub(super) fn lossy(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn bits_of_bytes(b: &[u8]) -> u32 {
    let significant = b.iter().skip_while(|x| **x == 0).count();
    u32::try_from(significant.saturating_mul(8)).unwrap_or(u32::MAX)
}

fn to_bits(bytes: CK_ULONG) -> u32 {
    u32::try_from(bytes.saturating_mul(8)).unwrap_or(u32::MAX)
}

/// The size facts a template states, by key type.
pub(super) fn size_facts(t: &Template<'_>, facts: &mut KeyFacts) {
    let Some(kt) = facts.key_type else { return };
    facts.bits = match family(kt) {
        Family::Rsa => t
            .modulus_bits()
            .map(|b| u32::try_from(b).unwrap_or(u32::MAX))
            .or_else(|| t.bytes(CKA_MODULUS).map(bits_of_bytes)),
        Family::Aes | Family::Secret | Family::Other => t
            .value_len()
            .map(to_bits)
            .or_else(|| t.bytes(CKA_VALUE).map(|v| to_bits(v.len() as CK_ULONG))),
        Family::DsaDh => t
            .ulong(CKA_PRIME_BITS)
            .map(|b| u32::try_from(b).unwrap_or(u32::MAX))
            .or_else(|| t.bytes(CKA_PRIME).map(bits_of_bytes)),
        Family::Ec => None,
    };
    if family(kt) == Family::Ec {
        facts.curve = t.ec_curve();
    }
}

/// Facts stated by a template alone.
pub(crate) fn template_facts(t: &Template<'_>) -> KeyFacts {
    let mut f = KeyFacts {
        class: t.class(),
        key_type: t.key_type(),
        label: lossy(t.label()),
        id: t.id().map(<[u8]>::to_vec),
        classification: None,
        sensitive: t.sensitive(),
        extractable: t.extractable(),
        bits: None,
        curve: None,
    };
    size_facts(t, &mut f);
    f
}
