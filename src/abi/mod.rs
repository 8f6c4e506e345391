//! ABI conventions shared by every layer, in safe Rust: the §5.2 output-buffer rules,
//! the per-attribute rules of `C_GetAttributeValue`, and `CK_RV` names.
//! No raw pointers here: `ffi` turns the application's pointers into these types.

mod attributes;
mod outbuf;
mod rv;

pub use attributes::{fill_attribute, AttrOut};
pub use outbuf::{write_counted, OutBuf};
pub use rv::rv_name;

use pkcs11_sys::CK_ULONG;

use crate::error::{Error, Result};

/// `usize` → `CK_ULONG` without a lossy `as` cast.
pub fn to_ulong(n: usize) -> Result<CK_ULONG> {
    CK_ULONG::try_from(n).map_err(|_| Error::ArgumentsBad("length does not fit CK_ULONG"))
}

/// `CK_ULONG` → `usize` without a lossy `as` cast.
pub fn to_usize(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad("length does not fit usize"))
}
