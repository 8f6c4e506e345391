//! The reference-to-pointer helpers shared by the call files. The `forward!` macro
//! they call the backend with is in `loader.rs`, next to the table it reads: the
//! backend's `unsafe` stays in that one file.

use std::ptr;

use pkcs11_sys::*;

use crate::abi::OutBuf;

/// `CK_ULONG` length of a slice; slices here were built from a `CK_ULONG` length, so
/// the conversion cannot fail on any platform Keywarden builds for.
pub(super) fn ulong(n: usize) -> CK_ULONG {
    CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX)
}

/// Pointer and length of an optional input slice (`None` → `NULL_PTR`, 0).
pub(super) fn input<T>(s: Option<&[T]>) -> (*mut T, CK_ULONG) {
    match s {
        Some(s) => (s.as_ptr().cast_mut(), ulong(s.len())),
        None => (ptr::null_mut(), 0),
    }
}

/// Pointer and length of an optional output slice.
pub(super) fn output<T>(s: Option<&mut [T]>) -> (*mut T, CK_ULONG) {
    match s {
        Some(s) => (s.as_mut_ptr(), ulong(s.len())),
        None => (ptr::null_mut(), 0),
    }
}

/// Buffer pointer and length cell of a §5.2 output buffer.
pub(super) fn out_parts<T: Copy>(out: &mut OutBuf<'_, T>) -> (*mut T, *mut CK_ULONG) {
    let (buf, len) = out.parts();
    (output(buf).0, len)
}

pub(super) fn mech_ptr(m: &CK_MECHANISM) -> CK_MECHANISM_PTR {
    ptr::from_ref(m).cast_mut()
}
