//! `C_OpenSession`'s callback (not carried) and `C_GetAttributeValue`'s template
//! (§5.7: each attribute answered on its own, so values travel back whatever the
//! call's code).

use pkcs11_sys::*;

use super::kinds::{Arg, Bytes, MAX_OUTPUT};
use crate::backend::Notify;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::{WireError, WireResult};

/// Most bytes one `C_GetAttributeValue` may ask the service to allocate.
const MAX_ATTR_OUTPUT: usize = 4 * MAX_OUTPUT;

/// `C_OpenSession`'s notification callback: it cannot cross processes, so the
/// service's backend gets none (the callback is optional, §5.6, and tokens rarely
/// call it).
pub struct NoNotify;

impl Arg for NoNotify {
    type Form<'x> = Notify;
    type Held<'s> = ();
    fn put(_c: &Notify, _e: &mut Encoder) -> WireResult<()> {
        Ok(())
    }
    fn take(_d: &mut Decoder<'_>) -> WireResult<()> {
        Ok(())
    }
    fn form(_h: &mut ()) -> Notify {
        Notify {
            application: std::ptr::null_mut(),
            callback: None,
        }
    }
}

/// `C_GetAttributeValue`'s template: types and buffer sizes out, lengths and
/// values back.
pub struct AttrsOut;

/// The service's copy: attributes pointing into `bufs`.
pub type HeldAttrs = Option<(Vec<CK_ATTRIBUTE>, Vec<Vec<u8>>)>;

impl Arg for AttrsOut {
    type Form<'x> = Option<&'x mut [CK_ATTRIBUTE]>;
    type Held<'s> = HeldAttrs;
    fn put(c: &Option<&mut [CK_ATTRIBUTE]>, e: &mut Encoder) -> WireResult<()> {
        let Some(t) = c else {
            e.u8(0);
            return Ok(());
        };
        e.u8(1).count(t.len())?;
        for a in t.iter() {
            if a.type_ & CKF_ARRAY_ATTRIBUTE != 0 && !a.pValue.is_null() {
                // Reading an attribute array back needs the caller's own array of
                // buffers rebuilt on the service: not carried yet.
                return Err(WireError::Param);
            }
            e.ulong(a.type_);
            e.capacity((!a.pValue.is_null()).then_some(u64::from(a.ulValueLen)));
        }
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<HeldAttrs> {
        if d.u8()? == 0 {
            return Ok(None);
        }
        let n = d.count(9)?;
        let (mut types, mut bufs, mut total) = (Vec::with_capacity(n), Vec::with_capacity(n), 0);
        for _ in 0..n {
            let type_ = d.ulong()?;
            let cap = d.capacity()?.map(|c| c as usize);
            total += cap.unwrap_or(0);
            if total > MAX_ATTR_OUTPUT {
                return Err(WireError::Malformed("attribute buffers too large"));
            }
            types.push((type_, cap));
            bufs.push(cap.map(|c| vec![0u8; c]));
        }
        let mut kept = Vec::with_capacity(n);
        let mut attrs = Vec::with_capacity(n);
        for ((type_, cap), buf) in types.into_iter().zip(bufs) {
            let mut buf = buf.unwrap_or_default();
            let p = if cap.is_some() {
                buf.as_mut_ptr().cast()
            } else {
                std::ptr::null_mut()
            };
            attrs.push(CK_ATTRIBUTE {
                type_,
                pValue: p,
                ulValueLen: cap.unwrap_or(0) as CK_ULONG,
            });
            kept.push(buf);
        }
        Ok(Some((attrs, kept)))
    }
    fn form(h: &mut HeldAttrs) -> Option<&mut [CK_ATTRIBUTE]> {
        h.as_mut().map(|(a, _)| a.as_mut_slice())
    }
    fn answer(h: &HeldAttrs, _rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
        let Some((attrs, bufs)) = h else {
            return Ok(());
        };
        for (a, buf) in attrs.iter().zip(bufs) {
            e.ulong(a.ulValueLen);
            let n = usize::try_from(a.ulValueLen).ok();
            match n.and_then(|n| buf.get(..n)) {
                Some(v) if !a.pValue.is_null() => {
                    e.u8(1).bytes(v)?;
                }
                _ => {
                    e.u8(0);
                }
            }
        }
        Ok(())
    }
    fn accept(
        c: &mut Option<&mut [CK_ATTRIBUTE]>,
        _rv: CK_RV,
        d: &mut Decoder<'_>,
    ) -> WireResult<()> {
        let Some(t) = c else { return Ok(()) };
        for a in t.iter_mut() {
            let len = d.ulong()?;
            let value = Bytes::take(d)?;
            let (buf, cell) = super::super::loader::attr_value_mut(a);
            if let (Some(v), Some(buf)) = (value, buf) {
                buf.get_mut(..v.len())
                    .ok_or(WireError::Malformed(
                        "value larger than the caller's buffer",
                    ))?
                    .copy_from_slice(v);
            }
            *cell = len;
        }
        Ok(())
    }
}
