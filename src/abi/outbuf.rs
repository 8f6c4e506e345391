//! PKCS#11 v2.40 §5.2, "Conventions for functions returning output in a
//! variable-length buffer", implemented once.
//!
//! > If pBuf is NULL_PTR, then all that the function does is return (in *pulBufLen) a
//! > number of bytes which would suffice to hold the cryptographic output [...] and
//! > return CKR_OK. If pBuf is not NULL_PTR, then *pulBufLen must contain the size in
//! > bytes of the buffer pointed to by pBuf. If that buffer is large enough to hold
//! > the output, then the output is returned in that buffer and *pulBufLen is set to
//! > the exact number of bytes returned [...]. If the buffer is not large enough, then
//! > CKR_BUFFER_TOO_SMALL is returned and *pulBufLen is set to hold the exact number of
//! > bytes needed.

use pkcs11_sys::CK_ULONG;

use super::to_ulong;
use crate::error::{Error, Result};

/// A caller's variable-length output buffer (bytes, or an array of `T`): `pBuf` (absent for a size query) and the
/// caller's `*pulBufLen`, which is both the capacity on entry and the answer on exit.
/// When a call is forwarded, the backend writes through these same references, so
/// the backend's own §5.2 behaviour reaches the caller untouched.
pub struct OutBuf<'a, T = u8> {
    buf: Option<&'a mut [T]>,
    len: &'a mut CK_ULONG,
}

impl<'a, T: Copy> OutBuf<'a, T> {
    /// `buf` is `None` for a size query; otherwise its length is the caller's `*pulBufLen`
    /// (for arrays such as slot lists: the caller's element count).
    pub fn new(buf: Option<&'a mut [T]>, len: &'a mut CK_ULONG) -> Self {
        OutBuf { buf, len }
    }

    /// The buffer (if any) and the length cell, for handing to the backend.
    pub fn parts(&mut self) -> (Option<&mut [T]>, &mut CK_ULONG) {
        (self.buf.as_deref_mut(), &mut *self.len)
    }

    /// The same buffer and length cell, borrowed again (to forward it and read the
    /// length written afterwards).
    pub fn reborrow(&mut self) -> OutBuf<'_, T> {
        OutBuf {
            buf: self.buf.as_deref_mut(),
            len: &mut *self.len,
        }
    }

    /// The length cell as it stands (after a call: the length written or needed).
    pub fn written_len(&self) -> CK_ULONG {
        *self.len
    }

    /// The buffer's capacity in elements; `None` for a size query.
    pub fn capacity(&self) -> Option<usize> {
        self.buf.as_ref().map(|b| b.len())
    }

    /// True when the caller only asked for the size.
    pub fn is_size_query(&self) -> bool {
        self.buf.is_none()
    }

    /// Writes Keywarden's own output following §5.2.
    pub fn write(&mut self, output: &[T]) -> Result<()> {
        write_counted(output, self.buf.as_deref_mut(), self.len)
    }
}

impl<T> std::fmt::Debug for OutBuf<'_, T> {
    // Lengths only: the buffer may hold plaintext or key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.buf {
            None => write!(f, "OutBuf(size query, len={})", self.len),
            Some(b) => write!(f, "OutBuf(capacity={}, len={})", b.len(), self.len),
        }
    }
}

/// §5.2 for any element type (bytes, slot IDs, mechanism types, interfaces): `count`
/// always ends up holding `src.len()`; a missing `dst` is a size query (`Ok`), a short
/// one is [`Error::BufferTooSmall`] and nothing is copied.
pub fn write_counted<T: Copy>(
    src: &[T],
    dst: Option<&mut [T]>,
    count: &mut CK_ULONG,
) -> Result<()> {
    *count = to_ulong(src.len())?;
    match dst {
        None => Ok(()),
        Some(dst) if dst.len() < src.len() => Err(Error::BufferTooSmall),
        Some(dst) => {
            dst[..src.len()].copy_from_slice(src);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs11_sys::CKR_BUFFER_TOO_SMALL;

    #[test]
    fn size_query_reports_length_and_succeeds() {
        let mut len = 0;
        OutBuf::new(None, &mut len).write(b"signature").unwrap();
        assert_eq!(len, 9);
    }

    #[test]
    fn short_buffer_reports_needed_length_and_copies_nothing() {
        let mut buf = [0u8; 4];
        let mut len = 4;
        let err = OutBuf::new(Some(&mut buf), &mut len)
            .write(b"signature")
            .unwrap_err();
        assert_eq!(err.rv(), CKR_BUFFER_TOO_SMALL);
        assert_eq!(len, 9);
        assert_eq!(buf, [0; 4]);
    }

    #[test]
    fn large_buffer_gets_exact_length() {
        let mut buf = [0u8; 16];
        let mut len = 16;
        OutBuf::new(Some(&mut buf), &mut len).write(b"sig").unwrap();
        assert_eq!(len, 3);
        assert_eq!(&buf[..3], b"sig");
        assert_eq!(buf[3], 0);
    }

    #[test]
    fn exact_fit_and_empty_output() {
        let mut buf = [0u8; 3];
        let mut len = 3;
        OutBuf::new(Some(&mut buf), &mut len).write(b"abc").unwrap();
        assert_eq!((len, &buf), (3, b"abc"));
        let mut len = 7;
        OutBuf::new(Some(&mut []), &mut len).write(b"").unwrap();
        assert_eq!(len, 0);
    }

    #[test]
    fn counted_elements_follow_the_same_rule() {
        let slots: [u64; 3] = [1, 2, 3];
        let mut count = 0;
        write_counted(&slots, None, &mut count).unwrap();
        assert_eq!(count, 3);
        let mut dst = [0u64; 2];
        assert!(matches!(
            write_counted(&slots, Some(&mut dst), &mut count),
            Err(Error::BufferTooSmall)
        ));
        assert_eq!(count, 3);
        let mut dst = [0u64; 5];
        write_counted(&slots, Some(&mut dst), &mut count).unwrap();
        assert_eq!((count, &dst[..3]), (3, &slots[..]));
    }
}
