//! Raw pointers in, references and slices out.
//!
//! The rules (docs/abi-conventions.md):
//! - A required pointer that is NULL is `CKR_ARGUMENTS_BAD`.
//! - A buffer pointer that is NULL with a length of 0 becomes `None` and is forwarded
//!   as `NULL_PTR`, so the backend answers exactly as it would directly; NULL with a
//!   non-zero length is `CKR_ARGUMENTS_BAD` and never reaches the backend.
//! - A misaligned pointer, or a length whose byte size exceeds `isize::MAX`, is
//!   `CKR_ARGUMENTS_BAD` (both would make a Rust slice undefined behaviour).
//! - A §5.2 output buffer needs its length pointer; a NULL buffer is a size query.

use std::mem::size_of;
use std::slice;

use pkcs11_sys::{CK_ATTRIBUTE, CK_ULONG};

use crate::abi::{to_usize, OutBuf};
use crate::call::Call;
use crate::error::{Error, Result};

fn checked_len<T>(p: *const T, len: CK_ULONG, what: &'static str) -> Result<usize> {
    let n = to_usize(len)?;
    let fits = n
        .checked_mul(size_of::<T>())
        .is_some_and(|bytes| isize::try_from(bytes).is_ok());
    if !fits || !p.is_aligned() {
        return Err(Error::ArgumentsBad(what));
    }
    Ok(n)
}

/// An output capacity (`*pulBufLen`, `ulMaxObjectCount`): the token writes only
/// what it has, so a capacity larger than the address space can hold is read as
/// the largest that fits instead of being refused, and the call answers as the
/// token does directly (docs/abi-conventions.md, "Counts and lengths").
fn capacity<T>(p: *const T, len: CK_ULONG, what: &'static str) -> Result<usize> {
    if !p.is_aligned() {
        return Err(Error::ArgumentsBad(what));
    }
    let most = isize::MAX.unsigned_abs() / size_of::<T>().max(1);
    Ok(usize::try_from(len).map_or(most, |n| n.min(most)))
}

/// The most attributes one template may carry. Real templates have tens; a count
/// beyond this is refused before anything walks, copies or forwards it
/// (`Gateway::absurd_count`): a count of 2^32 over a small buffer would read far
/// past it, in Keywarden or in the token.
pub(super) const MAX_TEMPLATE: CK_ULONG = 1 << 16;

/// An input template of `count` attributes (`in_slice` rules), or the answer for
/// a count beyond [`MAX_TEMPLATE`].
///
/// # Safety
/// As for [`in_slice`].
pub(super) unsafe fn in_template<'a>(
    call: &Call,
    p: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Option<&'a [CK_ATTRIBUTE]>> {
    if count > MAX_TEMPLATE {
        return Err(super::boundary::absurd_count(call));
    }
    // SAFETY: forwarded contract.
    unsafe { in_slice(p, count, "pTemplate") }
}

/// A template read and written in place (`C_GetAttributeValue`), with the same
/// bound as [`in_template`].
///
/// # Safety
/// As for [`out_slice`].
pub(super) unsafe fn out_template<'a>(
    call: &Call,
    p: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Option<&'a mut [CK_ATTRIBUTE]>> {
    if count > MAX_TEMPLATE {
        return Err(super::boundary::absurd_count(call));
    }
    // SAFETY: forwarded contract.
    unsafe { out_slice(p, count, "pTemplate") }
}

/// An output array of at most `len` elements the token fills (`C_FindObjects`):
/// `None` for NULL with length 0; the capacity read as [`capacity`] says.
///
/// # Safety
/// As for [`out_slice`].
pub(super) unsafe fn out_array<'a, T>(
    p: *mut T,
    len: CK_ULONG,
    what: &'static str,
) -> Result<Option<&'a mut [T]>> {
    // SAFETY: forwarded contract.
    unsafe { out_measured(p, len, what, capacity) }
}

/// An output array whose length `measure` reads from `len` (exactly, or as a
/// capacity); `None` for NULL with length 0.
///
/// # Safety
/// As for [`out_slice`], for the length `measure` returns.
#[inline]
unsafe fn out_measured<'a, T>(
    p: *mut T,
    len: CK_ULONG,
    what: &'static str,
    measure: impl FnOnce(*const T, CK_ULONG, &'static str) -> Result<usize>,
) -> Result<Option<&'a mut [T]>> {
    if p.is_null() {
        return null_buffer(len, what);
    }
    let n = measure(p, len, what)?;
    // SAFETY: p is non-NULL and aligned, n elements fit isize (both checked by
    // `measure`), and the caller gives us exclusive use of at least as many.
    Ok(Some(unsafe { slice::from_raw_parts_mut(p, n) }))
}

/// NULL with length 0 is an absent buffer; NULL with a length is a bad argument.
fn null_buffer<S>(len: CK_ULONG, what: &'static str) -> Result<Option<S>> {
    if len == 0 {
        Ok(None)
    } else {
        Err(Error::ArgumentsBad(what))
    }
}

/// An input array of `len` elements (`None` for NULL with length 0).
///
/// # Safety
/// A non-NULL `p` must point to `len` initialised `T`s that stay valid and unmodified
/// for `'a` (the caller's contract for the function's duration).
pub(super) unsafe fn in_slice<'a, T>(
    p: *const T,
    len: CK_ULONG,
    what: &'static str,
) -> Result<Option<&'a [T]>> {
    if p.is_null() {
        return null_buffer(len, what);
    }
    let n = checked_len(p, len, what)?;
    // SAFETY: p is non-NULL and aligned, n elements fit isize, and the caller promises
    // they are valid for 'a.
    Ok(Some(unsafe { slice::from_raw_parts(p, n) }))
}

/// An output array of `len` elements (`None` for NULL with length 0).
///
/// # Safety
/// A non-NULL `p` must point to `len` writable `T`s, valid and not otherwise accessed
/// for `'a`.
pub(super) unsafe fn out_slice<'a, T>(
    p: *mut T,
    len: CK_ULONG,
    what: &'static str,
) -> Result<Option<&'a mut [T]>> {
    // SAFETY: forwarded contract.
    unsafe { out_measured(p, len, what, checked_len) }
}

/// A required input reference.
///
/// # Safety
/// A non-NULL `p` must point to a valid `T` for `'a`.
pub(super) unsafe fn in_ref<'a, T>(p: *const T, what: &'static str) -> Result<&'a T> {
    if !p.is_aligned() {
        return Err(Error::ArgumentsBad(what));
    }
    // SAFETY: aligned, and valid when non-NULL by the caller's contract.
    match unsafe { p.as_ref() } {
        Some(r) => Ok(r),
        None => Err(Error::ArgumentsBad(what)),
    }
}

/// A required output reference.
///
/// # Safety
/// A non-NULL `p` must point to a writable `T`, exclusively ours for `'a`.
pub(super) unsafe fn out_ref<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T> {
    if !p.is_aligned() {
        return Err(Error::ArgumentsBad(what));
    }
    // A `match`, not `ok_or`: an error built eagerly would be dropped through
    // `Error`'s out-of-line drop glue on every successful call (benches/README.md).
    // SAFETY: aligned, and valid and exclusive when non-NULL by the caller's contract.
    match unsafe { p.as_mut() } {
        Some(r) => Ok(r),
        None => Err(Error::ArgumentsBad(what)),
    }
}

/// A §5.2 variable-length output: `p` may be NULL (size query), `pul` may not.
///
/// # Safety
/// `pul` must point to a writable `CK_ULONG`; a non-NULL `p` must point to `*pul`
/// writable `T`s; both exclusively ours for `'a`.
pub(super) unsafe fn out_buf<'a, T: Copy>(
    p: *mut T,
    pul: *mut CK_ULONG,
    what: &'static str,
) -> Result<OutBuf<'a, T>> {
    // SAFETY: forwarded contract.
    let len = unsafe { out_ref(pul, what) }?;
    let buf = if p.is_null() {
        None
    } else {
        let n = capacity(p, *len, what)?;
        // SAFETY: p non-NULL and aligned, *pul elements (at most) by the caller's
        // contract; the backend gets the caller's own length cell.
        Some(unsafe { slice::from_raw_parts_mut(p, n) })
    };
    Ok(OutBuf::new(buf, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn null_with_zero_length_is_none_and_with_length_is_bad() {
        // SAFETY: NULL pointers are never dereferenced.
        unsafe {
            assert!(matches!(in_slice::<u8>(ptr::null(), 0, "p"), Ok(None)));
            assert!(matches!(
                in_slice::<u8>(ptr::null(), 3, "p"),
                Err(Error::ArgumentsBad("p"))
            ));
            assert!(matches!(out_slice::<u8>(ptr::null_mut(), 0, "p"), Ok(None)));
            assert!(matches!(
                out_slice::<u8>(ptr::null_mut(), 1, "p"),
                Err(Error::ArgumentsBad(_))
            ));
        }
    }

    #[test]
    fn required_pointers_must_not_be_null() {
        // SAFETY: NULL pointers are never dereferenced.
        unsafe {
            assert!(in_ref::<u64>(ptr::null(), "x").is_err());
            assert!(out_ref::<u64>(ptr::null_mut(), "x").is_err());
            assert!(out_buf::<u8>(ptr::null_mut(), ptr::null_mut(), "x").is_err());
        }
    }

    #[test]
    fn size_query_and_real_buffer() {
        let mut len: CK_ULONG = 0;
        let mut buf = [0u8; 8];
        // SAFETY: pointers to live locals of the stated sizes.
        unsafe {
            let q = out_buf::<u8>(ptr::null_mut(), &mut len, "x");
            assert!(q.is_ok_and(|q| q.is_size_query()));
            len = 8;
            let b = out_buf(buf.as_mut_ptr(), &mut len, "x");
            assert!(b.is_ok_and(|b| !b.is_size_query() && b.written_len() == 8));
        }
    }

    #[test]
    fn misaligned_and_oversized_are_bad() {
        let words = [0u64; 2];
        let misaligned = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
        // SAFETY: both calls fail their checks before any dereference.
        unsafe {
            assert!(in_slice(misaligned, 1, "m").is_err());
            assert!(in_slice(words.as_ptr(), CK_ULONG::MAX, "m").is_err());
        }
    }
}
