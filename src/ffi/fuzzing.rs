//! The fuzzing entry (cargo feature `fuzzing`; also built for unit tests).
//!
//! [`decode_args`] turns arbitrary bytes into a real `CK_ATTRIBUTE` array and a real
//! `CK_MECHANISM` in valid memory, runs them through `ffi::decode`, and checks the
//! decoders' promises. Every length it declares matches a real buffer: a caller that
//! lies about a length is outside any module's control, so that case is not fuzzed.
//! NULL pointers with non-zero lengths, misaligned template pointers and parameter
//! structs whose inner pointers lead nowhere *are* generated: those must be handled.
//!
//! Input format (all optional: missing bytes read as 0):
//! - byte 0: bits 0-5 attribute count, bit 6 misaligned template pointer;
//! - per attribute: a type selector (an index into `ATTR_TYPES`, or any larger value
//!   followed by a native `CK_ULONG` type), then a length byte: `0..=0xFD` value
//!   bytes follow (cut to what is left), `0xFE` NULL with length 0, `0xFF` NULL with
//!   the length in the next byte;
//! - a mechanism selector (as for types, over `MECHANISMS`), then a parameter mode:
//!   0 NULL, 1 NULL with the length in the next byte, anything else: the rest of the
//!   input is the parameter.

use std::mem::{size_of, size_of_val};
use std::ptr;

use pkcs11_sys::*;

use super::decode::{attrs_from_raw, mechanism_from_raw, template_from_raw};
use crate::abi::{Attr, GcmLayout, MechParams, Template};

/// Attribute types worth reaching often; any other type comes in raw.
const ATTR_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_SIGN,
    CKA_DECRYPT,
    CKA_LABEL,
    CKA_ID,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_MODULUS_BITS,
    CKA_EC_PARAMS,
    CKA_ALLOWED_MECHANISMS,
    CKA_PRIVATE_EXPONENT,
    CKA_WRAP_TEMPLATE,
    CKA_VENDOR_DEFINED,
];

/// Mechanisms with decoded parameters, and a few without.
const MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_GCM,
    CKM_AES_CCM,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_AES_CTR,
    CKM_ECDH1_DERIVE,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_DES3_CBC,
    CKM_ECDSA,
    CKM_EC_KEY_PAIR_GEN,
    CKM_AES_KEY_GEN,
];

/// Reads the fuzz input; past the end every byte is 0.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn ulong(&mut self) -> CK_ULONG {
        let mut b = [0u8; size_of::<CK_ULONG>()];
        let src = self.take(b.len());
        b[..src.len()].copy_from_slice(src);
        CK_ULONG::from_ne_bytes(b)
    }

    fn pick(&mut self, table: &[CK_ULONG]) -> CK_ULONG {
        let i = usize::from(self.byte());
        match table.get(i) {
            Some(&v) => v,
            None => self.ulong(),
        }
    }
}

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// One attribute's value as generated: the backing bytes, or NULL with a length.
enum Value<'a> {
    Bytes(&'a [u8]),
    Null(CK_ULONG),
}

/// Runs one input through the decoders. `Err` names a broken promise (a bug);
/// inputs the decoders rightly refuse are `Ok`.
pub fn decode_args(data: &[u8]) -> Result<(), String> {
    let mut input = Input(data);
    let header = input.byte();
    let count = usize::from(header & 0x3f);
    let misaligned = header & 0x40 != 0;

    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let ty = input.pick(ATTR_TYPES);
        let value = match input.byte() {
            0xfe => Value::Null(0),
            0xff => Value::Null(CK_ULONG::from(input.byte())),
            n => Value::Bytes(input.take(usize::from(n))),
        };
        values.push((ty, value));
    }
    let raw: Vec<CK_ATTRIBUTE> = values
        .iter()
        .map(|(ty, v)| match v {
            Value::Bytes(b) => CK_ATTRIBUTE {
                type_: *ty,
                pValue: b.as_ptr().cast_mut().cast(),
                ulValueLen: CK_ULONG::try_from(b.len()).unwrap_or(0),
            },
            Value::Null(len) => CK_ATTRIBUTE {
                type_: *ty,
                pValue: ptr::null_mut(),
                ulValueLen: *len,
            },
        })
        .collect();
    check_template(&raw, &values, misaligned)?;

    let mechanism = input.pick(MECHANISMS);
    let (param, declared): (Option<&[u8]>, CK_ULONG) = match input.byte() {
        0 => (None, 0),
        1 => (None, CK_ULONG::from(input.byte())),
        _ => {
            let rest = input.take(usize::MAX);
            (Some(rest), CK_ULONG::try_from(rest.len()).unwrap_or(0))
        }
    };
    check_mechanism(mechanism, param, declared)
}

fn check_template(
    raw: &[CK_ATTRIBUTE],
    values: &[(CK_ULONG, Value<'_>)],
    misaligned: bool,
) -> Check {
    // A copy of the array one byte off its alignment, in a buffer large enough that
    // even a wrong read would stay in bounds.
    let mut shifted = vec![0u8; size_of_val(raw) + 1];
    let count = CK_ULONG::try_from(raw.len()).unwrap_or(0);
    let p = if misaligned {
        let dst = shifted.as_mut_ptr().wrapping_add(1);
        // SAFETY: `shifted` has room for the array's bytes after its first byte; the
        // source is the live array; byte copies need no alignment.
        unsafe { ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), dst, size_of_val(raw)) };
        dst.cast::<CK_ATTRIBUTE>().cast_const()
    } else {
        raw.as_ptr()
    };
    // SAFETY: `p` points to `count` attributes (aligned or deliberately not, which
    // the decoder must refuse before reading); each non-NULL pValue points into
    // `values`' input bytes with exactly its declared length.
    let decoded = unsafe { attrs_from_raw(p, count) };
    let Some(attrs) = check_decoded(decoded, values, misaligned)? else {
        return Ok(());
    };
    let parsed = Template::parse(&attrs);
    // SAFETY: as for attrs_from_raw above: same pointer, same count, same buffers.
    let direct = unsafe { template_from_raw(p, count) };
    check_parsed(&attrs, parsed, &direct)
}

/// `attrs_from_raw` refuses exactly a misaligned array and a NULL value with a
/// length, and otherwise gives back each input attribute as it was. The attributes,
/// or `None` when the refusal was the expected one.
fn check_decoded<'a>(
    decoded: crate::Result<Vec<Attr<'a>>>,
    values: &[(CK_ULONG, Value<'_>)],
    misaligned: bool,
) -> Result<Option<Vec<Attr<'a>>>, String> {
    let null_with_len = values
        .iter()
        .any(|(_, v)| matches!(v, Value::Null(n) if *n != 0));
    let attrs = match decoded {
        Err(e) => {
            let expected = misaligned || null_with_len;
            return ensure(expected && e.rv() == CKR_ARGUMENTS_BAD, || {
                format!("attrs_from_raw refused a well-formed template: {e}")
            })
            .map(|()| None);
        }
        Ok(attrs) => attrs,
    };
    ensure(!misaligned && !null_with_len, || {
        "attrs_from_raw accepted a misaligned array or a NULL value with a length".into()
    })?;
    ensure(attrs.len() == values.len(), || {
        "attribute count changed".into()
    })?;
    for (a, (ty, v)) in attrs.iter().zip(values) {
        let same = match v {
            Value::Bytes(b) => a.value == Some(*b),
            Value::Null(_) => a.value.is_none(),
        };
        ensure(a.ty == *ty && same, || {
            format!("attribute {a:?} differs from its input")
        })?;
    }
    Ok(Some(attrs))
}

/// `Template::parse` agrees with `template_from_raw`, refuses only with its
/// documented codes, and keeps each type's first value, which its typed getters
/// read back unchanged.
fn check_parsed(
    attrs: &[Attr<'_>],
    parsed: crate::Result<Template<'_>>,
    direct: &crate::Result<Template<'_>>,
) -> Check {
    let outcome =
        |r: &crate::Result<Template<'_>>| r.as_ref().map(Template::len).map_err(|e| e.rv());
    ensure(outcome(&parsed) == outcome(direct), || {
        "template_from_raw and attrs_from_raw + parse disagree".into()
    })?;
    let template = match parsed {
        Ok(t) => t,
        Err(e) => {
            let rv = e.rv();
            return ensure(
                rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT,
                || format!("Template::parse gave an undocumented code: {e}"),
            );
        }
    };
    // Every input type is there, with its first value; typed getters agree with it.
    for a in attrs {
        let kept = template.get(a.ty);
        ensure(kept.is_some_and(|k| k.bytes() == a.bytes()), || {
            format!("{a:?} lost or changed by Template::parse")
        })?;
        if let Some(v) = template.ulong(a.ty) {
            ensure(a.bytes() == v.to_ne_bytes(), || {
                format!("{a:?} read as {v}")
            })?;
        }
        if let Some(v) = template.flag(a.ty) {
            ensure(a.bytes() == [u8::from(v)], || format!("{a:?} read as {v}"))?;
        }
    }
    ensure(template.len() <= attrs.len(), || "template grew".into())?;
    let _ = (
        format!("{template:?}"),
        template.ec_curve(),
        template.allowed_mechanisms().map(Iterator::count),
    );
    Ok(())
}

fn check_mechanism(
    mechanism: CK_MECHANISM_TYPE,
    param: Option<&[u8]>,
    declared: CK_ULONG,
) -> Check {
    // The parameter is copied into a buffer we own, so `pParameter` points to exactly
    // `declared` bytes when it is not NULL.
    let mut owned = param.map(<[u8]>::to_vec);
    let m = CK_MECHANISM {
        mechanism,
        pParameter: owned
            .as_mut()
            .map_or(ptr::null_mut(), |b| b.as_mut_ptr().cast()),
        ulParameterLen: declared,
    };
    // SAFETY: a non-NULL pParameter points to `declared` live bytes (`owned`).
    let summary = unsafe { mechanism_from_raw(&m) };
    let bytes = owned.as_deref().unwrap_or(&[]);
    let s = match summary {
        Err(e) => {
            let null_with_len = param.is_none() && declared != 0;
            let rv = e.rv();
            return ensure(
                (null_with_len && rv == CKR_ARGUMENTS_BAD)
                    || (!null_with_len && rv == CKR_MECHANISM_PARAM_INVALID),
                || format!("mechanism_from_raw gave an unexpected code: {e}"),
            );
        }
        Ok(s) => s,
    };
    ensure(s.mechanism == mechanism, || "mechanism type changed".into())?;
    if let MechParams::Other { len } = s.params {
        ensure(len == bytes.len(), || {
            format!("Other {{ len: {len} }} for {} bytes", bytes.len())
        })?;
    }
    let _ = (s.to_string(), format!("{s:?}"));
    check_against_compiler_layout(mechanism, bytes, s.params)?;
    check_gcm_layouts_agree(mechanism, bytes)
}

/// Reads a `T` from the start of `bytes` when `bytes` is exactly its size.
fn read_exact<T: Copy>(bytes: &[u8]) -> Option<T> {
    (bytes.len() == size_of::<T>()).then(|| {
        // SAFETY: `bytes` holds exactly size_of::<T>() initialised bytes; the read is
        // unaligned-safe; T is a plain C struct for which any bits are a valid value
        // (integers and raw pointers).
        unsafe { ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
    })
}

/// Differential check: the safe decoder's fields equal those of the same bytes read
/// as the `pkcs11-sys` struct the compiler lays out.
fn check_against_compiler_layout(
    mechanism: CK_MECHANISM_TYPE,
    bytes: &[u8],
    got: MechParams,
) -> Check {
    let want = match mechanism {
        CKM_AES_GCM => read_exact::<CK_GCM_PARAMS>(bytes).map(|p| MechParams::Gcm {
            iv_len: p.ulIvLen,
            aad_len: p.ulAADLen,
            tag_bits: p.ulTagBits,
        }),
        CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS => read_exact::<CK_RSA_PKCS_PSS_PARAMS>(bytes)
            .map(|p| MechParams::Pss {
                hash: p.hashAlg,
                mgf: p.mgf,
                salt_len: p.sLen,
            }),
        CKM_RSA_PKCS_OAEP => {
            read_exact::<CK_RSA_PKCS_OAEP_PARAMS>(bytes).map(|p| MechParams::Oaep {
                hash: p.hashAlg,
                mgf: p.mgf,
                source: p.source,
                source_len: p.ulSourceDataLen,
            })
        }
        CKM_ECDH1_DERIVE => {
            read_exact::<CK_ECDH1_DERIVE_PARAMS>(bytes).map(|p| MechParams::Ecdh1 {
                kdf: p.kdf,
                shared_data_len: p.ulSharedDataLen,
                public_data_len: p.ulPublicDataLen,
            })
        }
        CKM_AES_CCM => read_exact::<CK_CCM_PARAMS>(bytes).map(|p| MechParams::Ccm {
            data_len: p.ulDataLen,
            nonce_len: p.ulNonceLen,
            aad_len: p.ulAADLen,
            mac_len: p.ulMACLen,
        }),
        CKM_AES_CTR => read_exact::<CK_AES_CTR_PARAMS>(bytes).map(|p| MechParams::Ctr {
            counter_bits: p.ulCounterBits,
        }),
        _ => None,
    };
    ensure(want.is_none_or(|w| w == got), || {
        format!("decoded {got:?}, the struct says {want:?}")
    })
}

/// The five-field GCM bytes, re-laid as six fields (`ulIvBits` = 0), decode to the
/// same summary or the same refusal.
fn check_gcm_layouts_agree(mechanism: CK_MECHANISM_TYPE, bytes: &[u8]) -> Check {
    if mechanism != CKM_AES_GCM
        || GcmLayout::from_len(bytes.len()) != Some(GcmLayout::WithoutIvBits)
    {
        return Ok(());
    }
    let (from, to) = (
        GcmLayout::WithoutIvBits.offsets(),
        GcmLayout::WithIvBits.offsets(),
    );
    let mut six = vec![0u8; GcmLayout::WithIvBits.size()];
    for (i, (&src, &dst)) in from.iter().zip(&to).enumerate() {
        // Fields 0 and 2 are pointers, the rest CK_ULONGs.
        let n = if i % 2 == 0 && i < 4 {
            size_of::<CK_VOID_PTR>()
        } else {
            size_of::<CK_ULONG>()
        };
        let (Some(s), Some(d)) = (bytes.get(src..src + n), six.get_mut(dst..dst + n)) else {
            return Err("GCM field outside its struct".into());
        };
        d.copy_from_slice(s);
    }
    let decode = |p: &[u8]| {
        crate::abi::MechanismView {
            mechanism,
            param: Some(p),
        }
        .decode()
        .map_err(|e| e.rv())
    };
    let (five, six) = (decode(bytes), decode(&six));
    ensure(five == six, || {
        format!("GCM layouts disagree: {five:?} vs {six:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Replays the committed seed corpus (tests/fuzz/seeds/decode_args) without
    /// libFuzzer, so CI runs the same harness the fuzzer does.
    #[test]
    fn seed_corpus_replays_clean() -> Result<(), String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/seeds/decode_args");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{dir}: {e}"))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            decode_args(&data).map_err(|e| format!("{}: {e}", path.display()))?;
            seen += 1;
        }
        ensure(seen >= 8, || format!("only {seen} seeds in {dir}"))
    }

    #[test]
    fn empty_and_tiny_inputs_are_fine() -> Result<(), String> {
        for data in [
            &[][..],
            &[0],
            &[0xff],
            &[0x7f, 0xff, 0xff],
            &[0x40],
            &[0x41, 2, 1, 1],
        ] {
            decode_args(data)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The fuzz harness's invariants hold on arbitrary inputs.
        #[test]
        fn harness_invariants_hold(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let r = decode_args(&data);
            prop_assert!(r.is_ok(), "{:?}", r);
        }
    }
}
