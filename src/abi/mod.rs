//! ABI conventions shared by every layer, in safe Rust: the §5.2 output-buffer rules,
//! the per-attribute rules of `C_GetAttributeValue`, typed views of templates and
//! mechanism parameters, and the names of `CK_RV`, `CKA_`, `CKO_`, `CKK_` and `CKM_`
//! values. No raw pointers here: `ffi` turns the application's pointers into these
//! types.

mod attributes;
mod ec_curve;
mod mechanism;
mod mechanism_buffers;
mod names;
mod outbuf;
mod template;

// `CK_RV` names live with the error type, whose messages name codes.
pub use crate::error::rv_name;
pub use attributes::{fill_attribute, AttrOut};
pub use ec_curve::EcCurve;
pub use mechanism::{GcmLayout, MechParams, MechanismSummary, MechanismView};
pub use mechanism_buffers::{check_inner_buffers, param_shape, ParamShape, PointerField};
pub use names::{
    attribute_from_name, attribute_name, class_from_name, class_name, kdf_from_name, kdf_name,
    key_type_from_name, key_type_name, mechanism_from_name, mechanism_name, mgf_from_name,
    mgf_name,
};
pub use outbuf::{write_counted, OutBuf};
pub use template::{Attr, Template};

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
