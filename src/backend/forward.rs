//! The forwarding macro and the reference-to-pointer helpers shared by the call files.

use std::ptr;

use pkcs11_sys::*;

use crate::abi::OutBuf;

/// Calls the backend's entry `$f`, or answers `CKR_FUNCTION_NOT_SUPPORTED` when the
/// backend's table has no such function.
macro_rules! forward {
    ($self:ident . $f:ident ( $( $arg:expr ),* $(,)? )) => {
        match $self.fns.$f {
            // SAFETY: the function pointer comes from the module's own table (loader.rs).
            // Every pointer argument is derived from a live Rust reference or slice whose
            // length is passed alongside, or is NULL where the caller passed NULL; the
            // references outlive the call, which does not retain them (PKCS#11 §5).
            Some(f) => unsafe { f( $( $arg ),* ) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

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
