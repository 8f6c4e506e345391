//! A template received from the wire, rebuilt as the `CK_ATTRIBUTE` array a token
//! reads: each `pValue` aimed at the receiver's own copy of the value, an array
//! attribute's (`CKF_ARRAY_ATTRIBUTE`, PKCS#11 v2.40 §4.1) at its own rebuilt
//! array, with `ulValueLen` the array's size in bytes as §4.1 has it.

use std::mem::size_of;

use pkcs11_sys::*;

use super::codec::{WireAttr, WireValue};
use super::{WireError, WireResult};

/// An input template (creation, search, set-attribute) owning every byte its
/// attributes point to.
#[derive(Debug, Default)]
pub struct OwnedTemplate {
    attrs: Vec<CK_ATTRIBUTE>,
    /// The nested arrays, pointed to by their outer attributes. A `Vec`'s heap
    /// buffer stays put when the `Vec` (or `self`) moves.
    nested: Vec<Vec<CK_ATTRIBUTE>>,
    /// Every value's bytes.
    values: Vec<Vec<u8>>,
}

impl OwnedTemplate {
    /// Copies `attrs` (from [`super::codec::Decoder::template`]).
    pub fn new(attrs: &[WireAttr<'_>]) -> WireResult<OwnedTemplate> {
        let mut t = OwnedTemplate::default();
        let mut out = Vec::with_capacity(attrs.len());
        for a in attrs {
            let attr = match &a.value {
                WireValue::Nested(inner) => t.array(a.type_, inner)?,
                WireValue::Absent(len) => absent(a.type_, *len),
                WireValue::Bytes(b) => t.bytes(a.type_, b),
            };
            out.push(attr);
        }
        t.attrs = out;
        Ok(t)
    }

    /// An array attribute: its attributes rebuilt in `nested`.
    fn array(
        &mut self,
        type_: CK_ATTRIBUTE_TYPE,
        inner: &[WireAttr<'_>],
    ) -> WireResult<CK_ATTRIBUTE> {
        let mut array = Vec::with_capacity(inner.len());
        for i in inner {
            array.push(match &i.value {
                WireValue::Absent(len) => absent(i.type_, *len),
                WireValue::Bytes(b) => self.bytes(i.type_, b),
                WireValue::Nested(_) => {
                    return Err(WireError::Malformed("attribute arrays nest one level"))
                }
            });
        }
        let len = array.len() * size_of::<CK_ATTRIBUTE>();
        let p = array.as_mut_ptr().cast();
        self.nested.push(array);
        Ok(CK_ATTRIBUTE {
            type_,
            pValue: p,
            ulValueLen: len as CK_ULONG,
        })
    }

    /// A value attribute, its bytes kept in `values`.
    fn bytes(&mut self, type_: CK_ATTRIBUTE_TYPE, b: &[u8]) -> CK_ATTRIBUTE {
        let mut v = b.to_vec();
        let p = v.as_mut_ptr().cast();
        self.values.push(v);
        CK_ATTRIBUTE {
            type_,
            pValue: p,
            ulValueLen: b.len() as CK_ULONG,
        }
    }

    /// The attributes, for the token; valid while `self` lives unchanged.
    pub fn attrs(&self) -> &[CK_ATTRIBUTE] {
        &self.attrs
    }

    /// The nested array of array attribute `i` (for tests: found by its pointer).
    #[cfg(test)]
    fn nested(&self, i: usize) -> Option<&[CK_ATTRIBUTE]> {
        let a = self.attrs.get(i)?;
        self.nested
            .iter()
            .find(|v| v.as_ptr().cast() == a.pValue.cast_const())
            .map(Vec::as_slice)
    }

    /// The bytes `attr` (one of this template's, nested or not) points to (for
    /// tests: found by its pointer).
    #[cfg(test)]
    fn value_of(&self, attr: &CK_ATTRIBUTE) -> Option<&[u8]> {
        self.values
            .iter()
            .find(|v| v.as_ptr().cast() == attr.pValue.cast_const())
            .map(Vec::as_slice)
    }
}

/// An attribute whose `pValue` was NULL.
fn absent(type_: CK_ATTRIBUTE_TYPE, len: u64) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: std::ptr::null_mut(),
        ulValueLen: len as CK_ULONG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{Decoder, Encoder};

    #[test]
    fn a_template_is_rebuilt_around_owned_values() {
        let wrap = vec![
            WireAttr {
                type_: CKA_EXTRACTABLE,
                value: WireValue::Bytes(&[0]),
            },
            WireAttr {
                type_: CKA_LABEL,
                value: WireValue::Absent(5),
            },
        ];
        let sent = vec![
            WireAttr {
                type_: CKA_LABEL,
                value: WireValue::Bytes(b"app-sign"),
            },
            WireAttr {
                type_: CKA_ID,
                value: WireValue::Bytes(b""),
            },
            WireAttr {
                type_: CKA_WRAP_TEMPLATE,
                value: WireValue::Nested(wrap),
            },
        ];
        let mut e = Encoder::default();
        e.template(&sent).unwrap();
        let body = e.finish();
        let got = Decoder::new(&body).template().unwrap();
        let t = OwnedTemplate::new(&got).unwrap();
        drop(body);
        let a = t.attrs();
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].type_, a[0].ulValueLen), (CKA_LABEL, 8));
        assert_eq!(t.value_of(&a[0]), Some(&b"app-sign"[..]));
        assert_eq!((a[1].ulValueLen, t.value_of(&a[1])), (0, Some(&b""[..])));
        assert_eq!(a[2].ulValueLen as usize, 2 * size_of::<CK_ATTRIBUTE>());
        let inner = t.nested(2).unwrap();
        assert_eq!(inner.len(), 2);
        assert_eq!(t.value_of(&inner[0]), Some(&[0u8][..]));
        assert!(inner[1].pValue.is_null());
        assert_eq!(inner[1].ulValueLen, 5);
    }
}
