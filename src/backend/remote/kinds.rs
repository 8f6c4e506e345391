//! How each kind of `Backend` method argument crosses the socket. An [`Arg`] knows
//! four steps: what the client puts in the request from the argument it was given
//! (`put`), what the service reads back (`take`, owning or borrowing the request's
//! bytes) and hands to the real backend (`form`), what the service puts in the reply
//! after the call (`answer`: outputs only) and how the client writes that into the
//! caller's argument (`accept`). Outputs follow PKCS#11 v2.40 §5.2: a NULL buffer
//! asks for the length; a buffer gets the bytes only when the call succeeded.

use pkcs11_sys::*;

use crate::abi::OutBuf;
use crate::wire::codec::{Decoder, Encoder, WireAttr, WireValue};
use crate::wire::mechanism::OwnedMechanism;
use crate::wire::template::OwnedTemplate;
use crate::wire::{WireError, WireResult, MAX_COUNT};

/// Most bytes one output buffer may ask the service to allocate: outputs never
/// approach it (the largest are RSA-16384 signatures and wrapped keys), and a
/// hostile client cannot make the service allocate more per argument.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;

/// One kind of argument. `Form` is the parameter type of the `Backend` method;
/// `Held` what the service decodes it into.
pub trait Arg {
    type Form<'x>;
    type Held<'s>;
    fn put(c: &Self::Form<'_>, e: &mut Encoder) -> WireResult<()>;
    fn take<'s>(d: &mut Decoder<'s>) -> WireResult<Self::Held<'s>>;
    fn form<'x>(h: &'x mut Self::Held<'_>) -> Self::Form<'x>;
    fn answer(_h: &Self::Held<'_>, _rv: CK_RV, _e: &mut Encoder) -> WireResult<()> {
        Ok(())
    }
    fn accept(_c: &mut Self::Form<'_>, _rv: CK_RV, _d: &mut Decoder<'_>) -> WireResult<()> {
        Ok(())
    }
}

/// A handle, slot id, flag word, user type or mechanism type.
pub struct Ulong;

impl Arg for Ulong {
    type Form<'x> = CK_ULONG;
    type Held<'s> = CK_ULONG;
    fn put(c: &CK_ULONG, e: &mut Encoder) -> WireResult<()> {
        e.ulong(*c);
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<CK_ULONG> {
        d.ulong()
    }
    fn form(h: &mut CK_ULONG) -> CK_ULONG {
        *h
    }
}

/// A `CK_BBOOL`.
pub struct Bool;

impl Arg for Bool {
    type Form<'x> = CK_BBOOL;
    type Held<'s> = CK_BBOOL;
    fn put(c: &CK_BBOOL, e: &mut Encoder) -> WireResult<()> {
        e.u8(*c);
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<CK_BBOOL> {
        d.u8()
    }
    fn form(h: &mut CK_BBOOL) -> CK_BBOOL {
        *h
    }
}

/// An input byte string (`None`: NULL with a zero length).
pub struct Bytes;

impl Arg for Bytes {
    type Form<'x> = Option<&'x [u8]>;
    type Held<'s> = Option<&'s [u8]>;
    fn put(c: &Option<&[u8]>, e: &mut Encoder) -> WireResult<()> {
        match c {
            None => {
                e.u8(0);
            }
            Some(b) => {
                e.u8(1).bytes(b)?;
            }
        }
        Ok(())
    }
    fn take<'s>(d: &mut Decoder<'s>) -> WireResult<Option<&'s [u8]>> {
        match d.u8()? {
            0 => Ok(None),
            1 => Ok(Some(d.bytes()?)),
            _ => Err(WireError::Malformed("byte string tag")),
        }
    }
    fn form<'x>(h: &'x mut Option<&[u8]>) -> Option<&'x [u8]> {
        *h
    }
}

/// `C_InitToken`'s 32-byte label.
pub struct Label;

impl Arg for Label {
    type Form<'x> = &'x [u8; 32];
    type Held<'s> = [u8; 32];
    fn put(c: &&[u8; 32], e: &mut Encoder) -> WireResult<()> {
        e.bytes(&c[..])?;
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<[u8; 32]> {
        d.bytes()?
            .try_into()
            .map_err(|_| WireError::Malformed("label of another length"))
    }
    fn form(h: &mut [u8; 32]) -> &[u8; 32] {
        h
    }
}

/// An element of an output array: bytes, or `CK_ULONG`s (slot ids, mechanism
/// types, object handles).
pub trait Elem: Copy + Default + 'static {
    /// Most elements one output may ask the service to allocate.
    const MAX: usize;
    /// Appends `v` as one field.
    fn put_all(e: &mut Encoder, v: &[Self]) -> WireResult<()>;
    /// Reads a field [`Elem::put_all`] wrote.
    fn take_all(d: &mut Decoder<'_>) -> WireResult<Vec<Self>>;
}

impl Elem for u8 {
    const MAX: usize = MAX_OUTPUT;
    fn put_all(e: &mut Encoder, v: &[u8]) -> WireResult<()> {
        e.bytes(v).map(|_| ())
    }
    fn take_all(d: &mut Decoder<'_>) -> WireResult<Vec<u8>> {
        d.bytes().map(<[u8]>::to_vec)
    }
}

impl Elem for CK_ULONG {
    const MAX: usize = MAX_COUNT;
    fn put_all(e: &mut Encoder, v: &[CK_ULONG]) -> WireResult<()> {
        e.count(v.len())?;
        for x in v {
            e.ulong(*x);
        }
        Ok(())
    }
    fn take_all(d: &mut Decoder<'_>) -> WireResult<Vec<CK_ULONG>> {
        let n = d.count(8)?;
        (0..n).map(|_| d.ulong()).collect()
    }
}

/// The elements of a reply, copied into the caller's buffer.
fn fill<T: Elem>(buf: &mut [T], got: &[T]) -> WireResult<()> {
    buf.get_mut(..got.len())
        .ok_or(WireError::Malformed(
            "output larger than the caller's buffer",
        ))?
        .copy_from_slice(got);
    Ok(())
}

/// A §5.2 output: a buffer or a size query, and its length cell.
pub struct Out<T = u8>(std::marker::PhantomData<T>);

impl<T: Elem> Arg for Out<T> {
    type Form<'x> = OutBuf<'x, T>;
    type Held<'s> = (Option<Vec<T>>, CK_ULONG);
    fn put(c: &OutBuf<'_, T>, e: &mut Encoder) -> WireResult<()> {
        e.capacity(c.capacity().map(|n| n as u64));
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<(Option<Vec<T>>, CK_ULONG)> {
        let cap = d
            .capacity()?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX).min(T::MAX));
        Ok((
            cap.map(|n| vec![T::default(); n]),
            cap.unwrap_or(0) as CK_ULONG,
        ))
    }
    fn form<'x>(h: &'x mut (Option<Vec<T>>, CK_ULONG)) -> OutBuf<'x, T> {
        OutBuf::new(h.0.as_deref_mut(), &mut h.1)
    }
    fn answer(h: &(Option<Vec<T>>, CK_ULONG), rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
        e.ulong(h.1);
        match (&h.0, rv) {
            (Some(buf), CKR_OK) => {
                let n = usize::try_from(h.1).unwrap_or(usize::MAX);
                let got = buf
                    .get(..n)
                    .ok_or(WireError::Malformed("output past its buffer"))?;
                e.u8(1);
                T::put_all(e, got)
            }
            _ => {
                e.u8(0);
                Ok(())
            }
        }
    }
    fn accept(c: &mut OutBuf<'_, T>, _rv: CK_RV, d: &mut Decoder<'_>) -> WireResult<()> {
        let len = d.ulong()?;
        let got = match d.u8()? {
            0 => None,
            _ => Some(T::take_all(d)?),
        };
        let (buf, cell) = c.parts();
        *cell = len;
        match (got, buf) {
            (Some(got), Some(buf)) => fill(buf, &got),
            _ => Ok(()),
        }
    }
}

/// A plain output array with no length cell of its own (`C_FindObjects`' handles,
/// `C_GenerateRandom`'s bytes): filled only when the call succeeded.
pub struct Slice<T>(std::marker::PhantomData<T>);

impl<T: Elem> Arg for Slice<T> {
    type Form<'x> = Option<&'x mut [T]>;
    type Held<'s> = Option<Vec<T>>;
    fn put(c: &Option<&mut [T]>, e: &mut Encoder) -> WireResult<()> {
        e.capacity(c.as_ref().map(|b| b.len() as u64));
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<Option<Vec<T>>> {
        match d.capacity()? {
            Some(n) if usize::try_from(n).map_or(true, |n| n > T::MAX) => {
                Err(WireError::Malformed("output too large"))
            }
            Some(n) => Ok(Some(vec![T::default(); n as usize])),
            None => Ok(None),
        }
    }
    fn form(h: &mut Option<Vec<T>>) -> Option<&mut [T]> {
        h.as_deref_mut()
    }
    fn answer(h: &Option<Vec<T>>, rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
        match (h, rv) {
            (Some(v), CKR_OK) => {
                e.u8(1);
                T::put_all(e, v)
            }
            _ => {
                e.u8(0);
                Ok(())
            }
        }
    }
    fn accept(c: &mut Option<&mut [T]>, _rv: CK_RV, d: &mut Decoder<'_>) -> WireResult<()> {
        if d.u8()? == 0 {
            return Ok(());
        }
        let got = T::take_all(d)?;
        match c {
            Some(buf) => fill(buf, &got),
            None => Ok(()),
        }
    }
}

/// A scalar output: a new handle, a size, a slot id.
pub struct OutUlong;

impl Arg for OutUlong {
    type Form<'x> = &'x mut CK_ULONG;
    type Held<'s> = CK_ULONG;
    fn put(_c: &&mut CK_ULONG, _e: &mut Encoder) -> WireResult<()> {
        Ok(())
    }
    fn take(_d: &mut Decoder<'_>) -> WireResult<CK_ULONG> {
        Ok(0)
    }
    fn form(h: &mut CK_ULONG) -> &mut CK_ULONG {
        h
    }
    fn answer(h: &CK_ULONG, _rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
        e.ulong(*h);
        Ok(())
    }
    fn accept(c: &mut &mut CK_ULONG, rv: CK_RV, d: &mut Decoder<'_>) -> WireResult<()> {
        let v = d.ulong()?;
        // A failed call leaves the caller's cell as it was (§5.1's "undefined"
        // is not Keywarden's to invent).
        if rv == CKR_OK {
            **c = v;
        }
        Ok(())
    }
}

/// A mechanism, its parameter carried byte-exact (`wire::mechanism`).
pub struct Mech;

impl Arg for Mech {
    type Form<'x> = &'x CK_MECHANISM;
    type Held<'s> = (OwnedMechanism, CK_MECHANISM);
    fn put(c: &&CK_MECHANISM, e: &mut Encoder) -> WireResult<()> {
        let m: &CK_MECHANISM = c;
        let param = super::super::loader::mechanism_param(m);
        crate::wire::mechanism::encode(e, m.mechanism, param, |fields| {
            super::super::loader::inner_buffers(m, fields)
                .ok_or(WireError::Malformed("mechanism parameter"))
        })
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<(OwnedMechanism, CK_MECHANISM)> {
        let mut owned = OwnedMechanism::decode(d)?;
        let ck = owned.as_ck();
        Ok((owned, ck))
    }
    fn form(h: &mut (OwnedMechanism, CK_MECHANISM)) -> &CK_MECHANISM {
        &h.1
    }
}

/// An input template (`None`: NULL with a zero count).
pub struct Template;

impl Arg for Template {
    type Form<'x> = Option<&'x [CK_ATTRIBUTE]>;
    type Held<'s> = Option<OwnedTemplate>;
    fn put(c: &Option<&[CK_ATTRIBUTE]>, e: &mut Encoder) -> WireResult<()> {
        let Some(t) = c else {
            e.u8(0);
            return Ok(());
        };
        let attrs = wire_attrs(t, true)?;
        e.u8(1).template(&attrs)?;
        Ok(())
    }
    fn take(d: &mut Decoder<'_>) -> WireResult<Option<OwnedTemplate>> {
        match d.u8()? {
            0 => Ok(None),
            1 => Ok(Some(OwnedTemplate::new(&d.template()?)?)),
            _ => Err(WireError::Malformed("template tag")),
        }
    }
    fn form(h: &mut Option<OwnedTemplate>) -> Option<&[CK_ATTRIBUTE]> {
        h.as_ref().map(OwnedTemplate::attrs)
    }
}

/// A template's attributes as they travel; `nest`: array attributes carry their
/// attributes (one level, §4.1).
fn wire_attrs(t: &[CK_ATTRIBUTE], nest: bool) -> WireResult<Vec<WireAttr<'_>>> {
    if t.len() > MAX_COUNT {
        return Err(WireError::Malformed(
            "template longer than the protocol allows",
        ));
    }
    t.iter()
        .map(|a| {
            let value = if nest && a.type_ & CKF_ARRAY_ATTRIBUTE != 0 && !a.pValue.is_null() {
                let inner = super::super::loader::attr_array(a)
                    .ok_or(WireError::Malformed("array attribute"))?;
                WireValue::Nested(wire_attrs(inner, false)?)
            } else {
                match super::super::loader::attr_value(a) {
                    Some(b) => WireValue::Bytes(b),
                    None => WireValue::Absent(u64::from(a.ulValueLen)),
                }
            };
            Ok(WireAttr {
                type_: a.type_,
                value,
            })
        })
        .collect()
}
