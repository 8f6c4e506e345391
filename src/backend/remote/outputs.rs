//! The array outputs on the wire: slot and mechanism lists (§5.2 counted arrays),
//! found handles, random bytes, and `C_GetAttributeValue`'s template (§5.7: each
//! attribute answered on its own, so values travel back whatever the call's code).

use pkcs11_sys::*;

use super::kinds::{Arg, Bytes, MAX_OUTPUT};
use crate::abi::OutBuf;
use crate::backend::Notify;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::{WireError, WireResult, MAX_COUNT};

/// Most bytes one `C_GetAttributeValue` may ask the service to allocate.
const MAX_ATTR_OUTPUT: usize = 4 * MAX_OUTPUT;

fn put_ulongs(e: &mut Encoder, v: &[CK_ULONG]) -> WireResult<()> {
    e.count(v.len())?;
    for x in v {
        e.ulong(*x);
    }
    Ok(())
}

fn take_ulongs(d: &mut Decoder<'_>) -> WireResult<Vec<CK_ULONG>> {
    let n = d.count(8)?;
    (0..n).map(|_| d.ulong()).collect()
}

/// A §5.2 counted array of `CK_ULONG`s (slot ids, mechanism types).
pub struct OutList;

impl Arg for OutList {
    type Form<'x> = OutBuf<'x, CK_ULONG>;
    type Held<'s> = (Option<Vec<CK_ULONG>>, CK_ULONG);
    fn put(c: &OutBuf<'_, CK_ULONG>, e: &mut Encoder) -> WireResult<()> {
        e.capacity(c.capacity().map(|n| n as u64));
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<(Option<Vec<CK_ULONG>>, CK_ULONG)> {
        let cap = d.capacity()?.map(|n| (n as usize).min(MAX_COUNT));
        Ok((cap.map(|n| vec![0; n]), cap.unwrap_or(0) as CK_ULONG))
    }
    fn form<'x>(h: &'x mut (Option<Vec<CK_ULONG>>, CK_ULONG)) -> OutBuf<'x, CK_ULONG> {
        OutBuf::new(h.0.as_deref_mut(), &mut h.1)
    }
    fn answer(h: &(Option<Vec<CK_ULONG>>, CK_ULONG), rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
        e.ulong(h.1);
        match (&h.0, rv) {
            (Some(v), CKR_OK) => {
                let n = usize::try_from(h.1).unwrap_or(usize::MAX);
                let v = v
                    .get(..n)
                    .ok_or(WireError::Malformed("list past its buffer"))?;
                e.u8(1);
                put_ulongs(e, v)
            }
            _ => {
                e.u8(0);
                Ok(())
            }
        }
    }
    fn accept(c: &mut OutBuf<'_, CK_ULONG>, _rv: CK_RV, d: &mut Decoder<'_>) -> WireResult<()> {
        let len = d.ulong()?;
        let list = match d.u8()? {
            0 => None,
            _ => Some(take_ulongs(d)?),
        };
        let (buf, cell) = c.parts();
        *cell = len;
        if let (Some(list), Some(buf)) = (list, buf) {
            buf.get_mut(..list.len())
                .ok_or(WireError::Malformed("list larger than the caller's buffer"))?
                .copy_from_slice(&list);
        }
        Ok(())
    }
}

/// A plain output array: `C_FindObjects`' handles, `C_GenerateRandom`'s bytes.
macro_rules! out_slice {
    ($kind:ident, $t:ty, $max:expr, $put:ident, $take:ident) => {
        #[doc = concat!("An output slice of `", stringify!($t), "`.")]
        pub struct $kind;

        impl Arg for $kind {
            type Form<'x> = Option<&'x mut [$t]>;
            type Held<'s> = Option<Vec<$t>>;
            fn put(c: &Option<&mut [$t]>, e: &mut Encoder) -> WireResult<()> {
                e.capacity(c.as_ref().map(|b| b.len() as u64));
                Ok(())
            }
            fn take(d: &mut Decoder<'_>) -> WireResult<Option<Vec<$t>>> {
                match d.capacity()? {
                    Some(n) if n as usize > $max => Err(WireError::Malformed("output too large")),
                    Some(n) => Ok(Some(vec![<$t>::default(); n as usize])),
                    None => Ok(None),
                }
            }
            fn form(h: &mut Option<Vec<$t>>) -> Option<&mut [$t]> {
                h.as_deref_mut()
            }
            fn answer(h: &Option<Vec<$t>>, rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
                match (h, rv) {
                    (Some(v), CKR_OK) => {
                        e.u8(1);
                        $put(e, v)
                    }
                    _ => {
                        e.u8(0);
                        Ok(())
                    }
                }
            }
            fn accept(
                c: &mut Option<&mut [$t]>,
                _rv: CK_RV,
                d: &mut Decoder<'_>,
            ) -> WireResult<()> {
                if d.u8()? == 0 {
                    return Ok(());
                }
                let v = $take(d)?;
                if let Some(buf) = c {
                    buf.get_mut(..v.len())
                        .ok_or(WireError::Malformed(
                            "output larger than the caller's buffer",
                        ))?
                        .copy_from_slice(&v);
                }
                Ok(())
            }
        }
    };
}

fn put_bytes(e: &mut Encoder, v: &[u8]) -> WireResult<()> {
    e.bytes(v).map(|_| ())
}

fn take_bytes(d: &mut Decoder<'_>) -> WireResult<Vec<u8>> {
    d.bytes().map(<[u8]>::to_vec)
}

out_slice!(
    Handles,
    CK_OBJECT_HANDLE,
    MAX_COUNT,
    put_ulongs,
    take_ulongs
);
out_slice!(Random, u8, MAX_OUTPUT, put_bytes, take_bytes);

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
