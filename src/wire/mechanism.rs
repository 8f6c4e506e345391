//! A `CK_MECHANISM` on the wire, byte-exact: its type, its parameter's bytes, and,
//! for a parameter struct with pointer fields (`CK_GCM_PARAMS`, `CK_CCM_PARAMS`,
//! `CK_RSA_PKCS_OAEP_PARAMS`, …; `abi::param_shape`), the bytes each pointer names.
//! The receiver rebuilds the struct around its own copies of those buffers.
//!
//! A parameter not known to be free of pointers (`ParamShape::Unknown`) is not
//! carried: its pointers would name memory of the sending process, and the token
//! would read through them in the receiving one. Such a mechanism is refused with
//! `CKR_MECHANISM_PARAM_INVALID`; one without parameter bytes always travels,
//! whatever its type, so a mechanism this build has never heard of still works.

use pkcs11_sys::*;

use super::codec::{Decoder, Encoder};
use super::{WireError, WireResult};
use crate::abi::{param_shape, ParamShape, PointerField};

const TAG_NONE: u8 = 0;
const TAG_FLAT: u8 = 1;
const TAG_STRUCT: u8 = 2;

const WORD: usize = std::mem::size_of::<usize>();

/// The buffers `param`'s pointer fields name, as (address, length) read from the
/// struct's bytes (`abi::PointerField::read`), in field order. A NULL pointer is
/// (0, length).
pub fn pointed(fields: &[PointerField], param: &[u8]) -> WireResult<Vec<(usize, usize)>> {
    fields
        .iter()
        .map(|f| {
            f.read(param)
                .ok_or(WireError::Malformed("pointer field outside the parameter"))
        })
        .collect()
}

/// Appends a mechanism. For a struct parameter `read_inner` is given its pointer
/// fields and returns the buffers they name, in order ([`pointed`] says where):
/// only the sender can follow the pointers.
pub fn encode<'p>(
    e: &mut Encoder,
    mechanism: CK_MECHANISM_TYPE,
    param: Option<&'p [u8]>,
    read_inner: impl FnOnce(&[PointerField]) -> WireResult<Vec<&'p [u8]>>,
) -> WireResult<()> {
    let param = param.unwrap_or(&[]);
    e.ulong(mechanism);
    match param_shape(mechanism, param) {
        ParamShape::Empty => {
            e.u8(TAG_NONE);
        }
        ParamShape::Flat => {
            e.u8(TAG_FLAT).bytes(param)?;
        }
        ParamShape::Pointers(fields) => {
            let inner = read_inner(&fields)?;
            if inner.len() != fields.len() {
                return Err(WireError::Malformed("inner buffers"));
            }
            e.u8(TAG_STRUCT).bytes(param)?.count(inner.len())?;
            for b in inner {
                e.bytes(b)?;
            }
        }
        ParamShape::Unknown => return Err(WireError::Param),
    }
    Ok(())
}

/// A mechanism received from the wire, owning its parameter and the buffers the
/// parameter's pointers name.
#[derive(Debug)]
pub struct OwnedMechanism {
    mechanism: CK_MECHANISM_TYPE,
    /// The parameter's bytes in `CK_ULONG`-aligned storage (a struct parameter is
    /// read by the token as that struct), its pointer fields aimed at `inner`.
    words: Vec<u64>,
    len: usize,
    /// Where the pointers point. A `Vec`'s heap buffer stays put when the `Vec`
    /// moves, so `words` stays valid as long as `self` lives.
    inner: Vec<Vec<u8>>,
}

impl OwnedMechanism {
    /// Reads a mechanism ([`encode`]) and rebuilds its parameter.
    pub fn decode(d: &mut Decoder<'_>) -> WireResult<OwnedMechanism> {
        let mechanism = d.ulong()?;
        let (bytes, inner) = match d.u8()? {
            TAG_NONE => (Vec::new(), Vec::new()),
            TAG_FLAT => {
                let p = d.bytes()?;
                match param_shape(mechanism, p) {
                    ParamShape::Flat => (p.to_vec(), Vec::new()),
                    _ => return Err(WireError::Param),
                }
            }
            TAG_STRUCT => {
                let p = d.bytes()?;
                let ParamShape::Pointers(fields) = param_shape(mechanism, p) else {
                    return Err(WireError::Param);
                };
                struct_param(d, &fields, p)?
            }
            _ => return Err(WireError::Malformed("mechanism parameter tag")),
        };
        let len = bytes.len();
        let words = bytes
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_ne_bytes(w)
            })
            .collect();
        Ok(OwnedMechanism {
            mechanism,
            words,
            len,
            inner,
        })
    }

    /// The mechanism type.
    pub fn mechanism(&self) -> CK_MECHANISM_TYPE {
        self.mechanism
    }

    /// The `CK_MECHANISM` to hand to the token; valid while `self` is neither
    /// dropped nor changed.
    pub fn as_ck(&mut self) -> CK_MECHANISM {
        let param = if self.len == 0 {
            std::ptr::null_mut()
        } else {
            self.words.as_mut_ptr().cast()
        };
        CK_MECHANISM {
            mechanism: self.mechanism,
            pParameter: param,
            ulParameterLen: self.len as CK_ULONG,
        }
    }

    /// The parameter's bytes as the token will read them.
    pub fn param_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        out.truncate(self.len);
        out
    }

    /// The buffers the parameter's pointers name, in field order.
    pub fn inner(&self) -> &[Vec<u8>] {
        &self.inner
    }
}

/// A struct parameter's bytes, its pointer fields aimed at the receiver's copies of
/// the buffers that follow it in the message, and those copies.
fn struct_param(
    d: &mut Decoder<'_>,
    fields: &[PointerField],
    param: &[u8],
) -> WireResult<(Vec<u8>, Vec<Vec<u8>>)> {
    if d.count(4)? != fields.len() {
        return Err(WireError::Malformed("inner buffer count"));
    }
    let mut bytes = param.to_vec();
    let mut inner = Vec::with_capacity(fields.len());
    for (f, (_, want)) in fields.iter().zip(pointed(fields, param)?) {
        let b = d.bytes()?;
        // The token reads as many bytes as the struct says: exactly those must
        // have come.
        if b.len() != want {
            return Err(WireError::Malformed("inner buffer of another length"));
        }
        let copy = b.to_vec();
        // An empty buffer is NULL (as PKCS#11 allows with a zero length). The
        // copy's heap buffer does not move when the `Vec` is moved into `inner`.
        let addr = if copy.is_empty() {
            0
        } else {
            copy.as_ptr() as usize
        };
        bytes
            .get_mut(f.ptr..f.ptr + WORD)
            .ok_or(WireError::Malformed("pointer field outside the parameter"))?
            .copy_from_slice(&addr.to_ne_bytes());
        inner.push(copy);
    }
    Ok((bytes, inner))
}

#[cfg(test)]
#[path = "mechanism_tests.rs"]
mod tests;
