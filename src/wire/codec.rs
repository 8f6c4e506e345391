//! The message fields: integers, byte strings, output capacities, attribute
//! templates. [`Encoder`] appends to a buffer; [`Decoder`] reads from a received
//! body and checks every length and count against what is left before it slices,
//! so it borrows from the body and allocates only the arrays it returns, each at
//! most [`MAX_COUNT`] long.

use pkcs11_sys::{CKF_ARRAY_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_ULONG};

use super::{WireError, WireResult, MAX_COUNT};

/// An attribute as it travels: its type and, unless the sender's `pValue` was NULL,
/// its value. An attribute whose type has `CKF_ARRAY_ATTRIBUTE` (PKCS#11 v2.40
/// §4.1: `CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`) carries
/// a nested template instead of bytes, one level deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireValue<'a> {
    /// `pValue` was NULL (with the sender's `ulValueLen`).
    Absent(u64),
    /// The value's bytes.
    Bytes(&'a [u8]),
    /// The attributes of an array attribute.
    Nested(Vec<WireAttr<'a>>),
}

/// One attribute of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAttr<'a> {
    /// `CKA_*`.
    pub type_: CK_ATTRIBUTE_TYPE,
    /// Its value.
    pub value: WireValue<'a>,
}

const TAG_ABSENT: u8 = 0;
const TAG_BYTES: u8 = 1;
const TAG_NESTED: u8 = 2;

/// Whether attributes of this type hold an attribute array.
fn is_array(type_: CK_ATTRIBUTE_TYPE) -> bool {
    type_ & CKF_ARRAY_ATTRIBUTE != 0
}

/// Builds a message body.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder whose body starts with `header`.
    pub fn new(header: &[u8]) -> Encoder {
        Encoder {
            buf: header.to_vec(),
        }
    }

    /// The body.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u64` (every `CK_ULONG`, handle and flag word).
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `CK_ULONG`, as `u64`.
    // CK_ULONG is u64 on LP64 and u32 on Windows-style targets; the conversion is
    // a no-op on the one and widening on the other.
    #[allow(clippy::useless_conversion)]
    pub fn ulong(&mut self, v: CK_ULONG) -> &mut Self {
        self.u64(u64::from(v))
    }

    /// A byte string: its `u32` length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> WireResult<&mut Self> {
        let n = u32::try_from(v.len()).map_err(|_| WireError::Malformed("byte string too long"))?;
        self.u32(n);
        self.buf.extend_from_slice(v);
        Ok(self)
    }

    /// A count of array entries, refused over [`MAX_COUNT`].
    pub fn count(&mut self, n: usize) -> WireResult<&mut Self> {
        if n > MAX_COUNT {
            return Err(WireError::Malformed(
                "array longer than the protocol allows",
            ));
        }
        Ok(self.u32(n as u32))
    }

    /// An optional output buffer: `None` for a NULL buffer (a §5.2 size query),
    /// else its capacity in bytes or entries.
    pub fn capacity(&mut self, cap: Option<u64>) -> &mut Self {
        match cap {
            None => self.u8(0),
            Some(n) => self.u8(1).u64(n),
        }
    }

    /// A template.
    pub fn template(&mut self, attrs: &[WireAttr<'_>]) -> WireResult<&mut Self> {
        self.count(attrs.len())?;
        for a in attrs {
            self.ulong(a.type_);
            match &a.value {
                WireValue::Absent(len) => {
                    self.u8(TAG_ABSENT).u64(*len);
                }
                WireValue::Bytes(b) => {
                    self.u8(TAG_BYTES).bytes(b)?;
                }
                WireValue::Nested(inner) => {
                    if inner
                        .iter()
                        .any(|i| matches!(i.value, WireValue::Nested(_)))
                    {
                        return Err(WireError::Malformed("attribute arrays nest one level"));
                    }
                    self.u8(TAG_NESTED).template(inner)?;
                }
            }
        }
        Ok(self)
    }
}

/// Reads a message body, borrowing from it.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `body` (after its header).
    pub fn new(body: &'a [u8]) -> Decoder<'a> {
        Decoder { rest: body }
    }

    /// Succeeds only when every byte was read.
    pub fn finish(&self) -> WireResult<()> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> WireResult<&'a [u8]> {
        if n > self.rest.len() {
            return Err(WireError::Malformed(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> WireResult<[u8; N]> {
        let b = self.take(N, what)?;
        b.try_into().map_err(|_| WireError::Malformed(what))
    }

    /// One byte.
    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.array::<1>("byte past the end")?[0])
    }

    /// A `u32`.
    pub fn u32(&mut self) -> WireResult<u32> {
        Ok(u32::from_le_bytes(self.array("u32 past the end")?))
    }

    /// A `u64`.
    pub fn u64(&mut self) -> WireResult<u64> {
        Ok(u64::from_le_bytes(self.array("u64 past the end")?))
    }

    /// A `CK_ULONG`: refused when the value does not fit this platform's.
    pub fn ulong(&mut self) -> WireResult<CK_ULONG> {
        CK_ULONG::try_from(self.u64()?).map_err(|_| WireError::Malformed("CK_ULONG out of range"))
    }

    /// A byte string, borrowed from the body.
    pub fn bytes(&mut self) -> WireResult<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n, "byte string longer than the frame")
    }

    /// A count, refused over [`MAX_COUNT`] or over what `min_entry` bytes per
    /// entry could fit in the rest of the body.
    pub fn count(&mut self, min_entry: usize) -> WireResult<usize> {
        let n = self.u32()? as usize;
        let fits = n.saturating_mul(min_entry) <= self.rest.len();
        if n > MAX_COUNT || !fits {
            return Err(WireError::Malformed("count over the limit or the frame"));
        }
        Ok(n)
    }

    /// An optional output capacity ([`Encoder::capacity`]).
    pub fn capacity(&mut self) -> WireResult<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(WireError::Malformed("capacity tag")),
        }
    }

    /// A template ([`Encoder::template`]).
    pub fn template(&mut self) -> WireResult<Vec<WireAttr<'a>>> {
        self.template_at(0)
    }

    fn template_at(&mut self, depth: u8) -> WireResult<Vec<WireAttr<'a>>> {
        // An entry is at least its type and its tag with an empty value.
        let n = self.count(8 + 1 + 4)?;
        let mut attrs = Vec::with_capacity(n);
        for _ in 0..n {
            let type_ = self.ulong()?;
            let value = match self.u8()? {
                TAG_ABSENT => WireValue::Absent(self.u64()?),
                TAG_BYTES => WireValue::Bytes(self.bytes()?),
                TAG_NESTED if depth == 0 && is_array(type_) => {
                    WireValue::Nested(self.template_at(1)?)
                }
                TAG_NESTED => return Err(WireError::Malformed("nested template not allowed")),
                _ => return Err(WireError::Malformed("attribute value tag")),
            };
            attrs.push(WireAttr { type_, value });
        }
        Ok(attrs)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
