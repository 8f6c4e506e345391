//! Raw templates and mechanisms → the safe views in `crate::abi`.
//!
//! This is the only place that reads through a template's `pValue` pointers or a
//! mechanism's `pParameter`. It reads the bytes the application declared and nothing
//! more: pointers *inside* a parameter struct (`pIv`, `pAAD`, `pSourceData`, …) are
//! never followed; `abi::MechanismView::decode` reads their lengths and whether they
//! are NULL from the struct's own bytes. The rules for NULL, lengths and alignment
//! are those of `args.rs` (docs/abi-conventions.md): a NULL `pValue` or `pParameter`
//! with a non-zero length is `CKR_ARGUMENTS_BAD`, a NULL with length 0 is `None`.
//!
//! Who calls this: the policy layer (next issue) decodes creation templates and
//! mechanisms here before deciding; audit summarises mechanisms. The transparent
//! profile must forward the application's own pointers untouched, so the forwarding
//! path does not call these: the handlers decode only when the gateway is
//! enforcing a policy.
#![cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]

use pkcs11_sys::{
    CKA_ID, CKA_START_DATE, CK_ATTRIBUTE, CK_BBOOL, CK_FALSE, CK_MECHANISM, CK_TRUE, CK_ULONG,
};

use super::args::in_slice;
use crate::abi::{Attr, MechParams, MechanismSummary, MechanismView, Template};
use crate::error::Result;
use crate::gateway::Additions;

/// The attributes of a template, each value borrowed from the application.
///
/// # Safety
/// A non-NULL `p` must point to `count` `CK_ATTRIBUTE`s, and each non-NULL `pValue`
/// to `ulValueLen` readable bytes, all valid and unmodified for `'a` (the caller's
/// contract for the duration of the PKCS#11 call).
pub(crate) unsafe fn attrs_from_raw<'a>(
    p: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Vec<Attr<'a>>> {
    // SAFETY: forwarded contract: `count` attributes at `p` (NULL only with count 0,
    // which in_slice checks, as it checks alignment and the byte size).
    let raw: &'a [CK_ATTRIBUTE] = unsafe { in_slice(p, count, "pTemplate") }?.unwrap_or(&[]);
    raw.iter()
        .map(|a| {
            // SAFETY: forwarded contract: `ulValueLen` readable bytes at a non-NULL
            // `pValue`; in_slice refuses NULL with a non-zero length.
            let value = unsafe {
                in_slice(
                    a.pValue.cast::<u8>().cast_const(),
                    a.ulValueLen,
                    "pValue is NULL with a non-zero ulValueLen",
                )
            }?;
            Ok(Attr { ty: a.type_, value })
        })
        .collect()
}

/// A template decoded and checked (`abi::Template::parse` rules).
///
/// # Safety
/// As for [`attrs_from_raw`].
pub(crate) unsafe fn template_from_raw<'a>(
    p: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Template<'a>> {
    // SAFETY: forwarded contract.
    let attrs = unsafe { attrs_from_raw(p, count) }?;
    Template::parse(&attrs)
}

/// A mechanism with its parameter bytes borrowed from the application.
///
/// # Safety
/// A non-NULL `m.pParameter` must point to `m.ulParameterLen` readable bytes, valid
/// and unmodified for `'a`.
pub(crate) unsafe fn mechanism_view_from_raw(m: &CK_MECHANISM) -> Result<MechanismView<'_>> {
    // SAFETY: forwarded contract; in_slice refuses NULL with a non-zero length and
    // byte counts beyond isize::MAX. Bytes need no alignment.
    let param = unsafe {
        in_slice(
            m.pParameter.cast::<u8>().cast_const(),
            m.ulParameterLen,
            "pParameter is NULL with a non-zero ulParameterLen",
        )
    }?;
    Ok(MechanismView {
        mechanism: m.mechanism,
        param,
    })
}

/// A mechanism decoded into its summary (`abi::MechanismView::decode` rules).
///
/// # Safety
/// As for [`mechanism_view_from_raw`].
pub(crate) unsafe fn mechanism_from_raw(m: &CK_MECHANISM) -> Result<MechanismSummary> {
    // SAFETY: forwarded contract.
    unsafe { mechanism_view_from_raw(m) }?.decode()
}

/// The mechanism check every mechanism-taking handler makes before forwarding:
/// a NULL `pParameter` with a length is `CKR_ARGUMENTS_BAD`, a NULL pointer inside
/// the parameter struct with a length is `CKR_MECHANISM_PARAM_INVALID`
/// (`abi::check_inner_buffers`); both would make the token read through NULL.
/// Then the summary for audit, or `None` when the decoder cannot read the
/// parameter (the token judges it, as it would directly).
///
/// # Safety
/// As for [`mechanism_view_from_raw`].
pub(crate) unsafe fn checked_mechanism(m: &CK_MECHANISM) -> Result<Option<MechanismSummary>> {
    if m.ulParameterLen == 0 {
        // No parameter bytes (most digests and signatures): no pointer to check
        // and no struct to look inside, whatever `pParameter` holds.
        let view = crate::abi::MechanismView {
            mechanism: m.mechanism,
            param: None,
        };
        return Ok(view.decode().ok());
    }
    // SAFETY: forwarded contract.
    let view = unsafe { mechanism_view_from_raw(m) }?;
    match view.decode() {
        // The decoder has checked the inner buffers of the structs it summarises
        // (the same rule: NULL with a length is refused), so the hot GCM path
        // reads them once.
        Ok(s) if !matches!(s.params, MechParams::Other { .. }) => Ok(Some(s)),
        Ok(s) => {
            crate::abi::check_inner_buffers(view.mechanism, view.param)?;
            Ok(Some(s))
        }
        Err(_) => {
            crate::abi::check_inner_buffers(view.mechanism, view.param)?;
            Ok(None)
        }
    }
}

static TRUE_BYTE: CK_BBOOL = CK_TRUE;
static FALSE_BYTE: CK_BBOOL = CK_FALSE;

/// The application's template with what the gateway adds appended (enforce mode):
/// the boolean attributes policy forces (docs/policy.md "Creation policy": only
/// those the template leaves out) and the `CKA_ID` auto-registration assigns
/// (docs/lifecycle.md; only when the template has none) with its
/// `CKA_START_DATE` (unless the template sets one). `None` when there is
/// nothing to add, so the application's own array is forwarded. The added values
/// point at statics, or at `add`'s bytes, which the backend only reads during the
/// call.
pub(crate) fn with_forced(
    template: Option<&[CK_ATTRIBUTE]>,
    add: &Additions<'_>,
) -> Option<Vec<CK_ATTRIBUTE>> {
    // Only the attribute types are looked at, never the values.
    let start_date = add
        .start_date
        .filter(|_| !template.is_some_and(|t| t.iter().any(|a| a.type_ == CKA_START_DATE)));
    if add.flags.is_empty() && add.id.is_none() && start_date.is_none() {
        return None;
    }
    let mut out: Vec<CK_ATTRIBUTE> = template.unwrap_or_default().to_vec();
    out.extend(add.flags.iter().map(|&(ty, v)| {
        CK_ATTRIBUTE {
            type_: ty,
            pValue: std::ptr::from_ref(if v { &TRUE_BYTE } else { &FALSE_BYTE })
                .cast_mut()
                .cast(),
            ulValueLen: 1,
        }
    }));
    for (ty, value) in [(CKA_ID, add.id), (CKA_START_DATE, start_date)] {
        if let Some(v) = value {
            out.push(CK_ATTRIBUTE {
                type_: ty,
                pValue: v.as_ptr().cast_mut().cast(),
                ulValueLen: CK_ULONG::try_from(v.len()).unwrap_or(0),
            });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::MechParams;
    use pkcs11_sys::*;
    use std::ptr;

    fn attr(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> CK_ATTRIBUTE {
        CK_ATTRIBUTE {
            type_: ty,
            pValue: v.as_ptr().cast_mut().cast(),
            ulValueLen: v.len().try_into().unwrap_or(CK_ULONG::MAX),
        }
    }

    fn rv<T>(r: Result<T>) -> CK_RV {
        r.map_or_else(|e| e.rv(), |_| CKR_OK)
    }

    #[test]
    fn a_real_template_decodes() {
        let class = CKO_SECRET_KEY.to_ne_bytes();
        let len: CK_ULONG = 32;
        let len = len.to_ne_bytes();
        let raw = [
            attr(CKA_CLASS, &class),
            attr(CKA_VALUE_LEN, &len),
            attr(CKA_TOKEN, &[CK_TRUE]),
            attr(CKA_LABEL, b"aes1"),
            CK_ATTRIBUTE {
                type_: CKA_ID,
                pValue: ptr::null_mut(),
                ulValueLen: 0,
            },
        ];
        // SAFETY: every pointer is a live local of the stated length.
        let t = unsafe { template_from_raw(raw.as_ptr(), 5) };
        assert!(t.as_ref().is_ok_and(|t| t.class() == Some(CKO_SECRET_KEY)
            && t.value_len() == Some(32)
            && t.token() == Some(true)
            && t.label() == Some(&b"aes1"[..])
            && t.get(CKA_ID) == Some(Attr::null(CKA_ID))));
        // SAFETY: as above; a count of 0 reads nothing.
        let empty = unsafe { template_from_raw(raw.as_ptr(), 0) };
        assert!(empty.is_ok_and(|t| t.is_empty()));
    }

    #[test]
    fn null_pointers_with_lengths_are_arguments_bad() {
        let raw = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: ptr::null_mut(),
            ulValueLen: 4,
        }];
        // SAFETY: the NULL pValue is refused before any read.
        let r = unsafe { attrs_from_raw(raw.as_ptr(), 1) };
        assert_eq!(rv(r), CKR_ARGUMENTS_BAD);
        // SAFETY: NULL template pointer, never dereferenced.
        let r = unsafe { attrs_from_raw(ptr::null(), 2) };
        assert_eq!(rv(r), CKR_ARGUMENTS_BAD);
        // SAFETY: as above, with count 0: an empty template.
        assert!(unsafe { attrs_from_raw(ptr::null(), 0) }.is_ok_and(|a| a.is_empty()));
        let m = CK_MECHANISM {
            mechanism: CKM_AES_GCM,
            pParameter: ptr::null_mut(),
            ulParameterLen: 48,
        };
        // SAFETY: the NULL parameter is refused before any read.
        assert_eq!(rv(unsafe { mechanism_from_raw(&m) }), CKR_ARGUMENTS_BAD);
    }

    #[test]
    fn a_real_gcm_struct_decodes_without_following_its_pointers() {
        // Pointers that lead nowhere: decoding must only look at the struct itself.
        let bogus = ptr::null_mut::<u8>().wrapping_add(usize::MAX - 0xfff);
        let mut params = CK_GCM_PARAMS {
            pIv: bogus,
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: bogus,
            ulAADLen: 7,
            ulTagBits: 128,
        };
        let m = CK_MECHANISM {
            mechanism: CKM_AES_GCM,
            pParameter: ptr::addr_of_mut!(params).cast(),
            ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>().try_into().unwrap_or(0),
        };
        // SAFETY: pParameter points to a live CK_GCM_PARAMS of the stated size.
        let s = unsafe { mechanism_from_raw(&m) };
        let want = MechParams::Gcm {
            iv_len: 12,
            aad_len: 7,
            tag_bits: 128,
        };
        assert!(s.is_ok_and(|s| s.params == want));
    }
}
