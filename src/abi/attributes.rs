//! The per-attribute rules of `C_GetAttributeValue` (PKCS#11 v2.40 §5.7), for the
//! attributes Keywarden answers itself. Forwarded calls get the token's own answer.
//!
//! > For each (type, pValue, ulValueLen) triple in the template, C_GetAttributeValue
//! > performs the following algorithm:
//! > 1. If the specified attribute cannot be revealed because the object is sensitive
//! >    or unextractable, then the ulValueLen field is modified to hold the value
//! >    CK_UNAVAILABLE_INFORMATION.
//! > 2. Otherwise, if the specified value for the object is invalid (the object does
//! >    not possess such an attribute), then ulValueLen is modified to hold
//! >    CK_UNAVAILABLE_INFORMATION.
//! > 3. Otherwise, if pValue is NULL_PTR, ulValueLen is modified to hold the exact
//! >    length of the specified attribute for the object.
//! > 4. Otherwise, if the length in ulValueLen is large enough [...] the attribute is
//! >    copied and ulValueLen modified to hold its exact length.
//! > 5. Otherwise, ulValueLen is modified to hold CK_UNAVAILABLE_INFORMATION.
//! >
//! > If case 1 applies to any of the requested attributes, then the call should return
//! > CKR_ATTRIBUTE_SENSITIVE. If case 2 [...] CKR_ATTRIBUTE_TYPE_INVALID. If case 5
//! > [...] CKR_BUFFER_TOO_SMALL. [...] all of the requested attributes [...] are
//! > processed, even when one of these errors is returned.

use pkcs11_sys::*;

use super::to_ulong;
use crate::error::{Error, Result};

/// What Keywarden knows about one requested attribute.
#[derive(Clone, Copy)]
pub enum AttrOut<'v> {
    /// The value may be revealed.
    Value(&'v [u8]),
    /// The object is sensitive or unextractable for this attribute (case 1).
    Sensitive,
    /// The object has no such attribute (case 2).
    Invalid,
}

impl std::fmt::Debug for AttrOut<'_> {
    // Never print attribute values: they may be key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrOut::Value(v) => write!(f, "Value({} bytes)", v.len()),
            AttrOut::Sensitive => f.write_str("Sensitive"),
            AttrOut::Invalid => f.write_str("Invalid"),
        }
    }
}

/// Applies the five cases to one attribute. Returns the per-attribute error, if any;
/// the caller keeps going through the template and reports the first one.
pub fn fill_attribute(
    answer: AttrOut<'_>,
    value: Option<&mut [u8]>,
    len: &mut CK_ULONG,
) -> Result<()> {
    match answer {
        AttrOut::Sensitive => {
            *len = CK_UNAVAILABLE_INFORMATION;
            Err(Error::Backend(CKR_ATTRIBUTE_SENSITIVE))
        }
        AttrOut::Invalid => {
            *len = CK_UNAVAILABLE_INFORMATION;
            Err(Error::Backend(CKR_ATTRIBUTE_TYPE_INVALID))
        }
        AttrOut::Value(v) => match value {
            None => {
                *len = to_ulong(v.len())?;
                Ok(())
            }
            Some(buf) if buf.len() >= v.len() => {
                buf[..v.len()].copy_from_slice(v);
                *len = to_ulong(v.len())?;
                Ok(())
            }
            Some(_) => {
                *len = CK_UNAVAILABLE_INFORMATION;
                Err(Error::BufferTooSmall)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(template: &mut [(AttrOut<'_>, Option<Vec<u8>>, CK_ULONG)]) -> Result<()> {
        let mut first = Ok(());
        for (answer, buf, len) in template.iter_mut() {
            let r = fill_attribute(*answer, buf.as_deref_mut(), len);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    #[test]
    fn every_attribute_is_processed_even_after_an_error() {
        let mut t = vec![
            (AttrOut::Sensitive, Some(vec![0; 8]), 8),
            (AttrOut::Value(b"label"), None, 0),
            (AttrOut::Invalid, Some(vec![0; 8]), 8),
            (AttrOut::Value(b"abc"), Some(vec![0; 8]), 8),
        ];
        let rv = run(&mut t).unwrap_err().rv();
        assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(t[0].2, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[1].2, 5, "size query for a later attribute still answered");
        assert_eq!(t[2].2, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[3].2, 3);
        assert_eq!(&t[3].1.as_ref().unwrap()[..3], b"abc");
    }

    #[test]
    fn short_buffer_is_unavailable_and_too_small() {
        let mut buf = [0u8; 2];
        let mut len = 2;
        let err = fill_attribute(AttrOut::Value(b"abcdef"), Some(&mut buf), &mut len).unwrap_err();
        assert_eq!(err.rv(), CKR_BUFFER_TOO_SMALL);
        assert_eq!(len, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(buf, [0, 0]);
    }

    #[test]
    fn debug_never_shows_values() {
        assert_eq!(format!("{:?}", AttrOut::Value(b"secret")), "Value(6 bytes)");
    }
}
