//! [`TokenOps`] over the backend, for automatic rotation inside the module: the same
//! operations the CLI performs with `cryptoki` (`src/cli/keys/token.rs`), here
//! through a read/write helper session of the application's own login state
//! (`Backend::open_helper_session_rw`). Objects are addressed by `CKA_ID`.

use pkcs11_sys::*;

use super::{KeyShape, TemplateAttr, TokenError, TokenObject, TokenOps, COPIED_FLAGS};
use crate::abi::{key_type_name, EcCurve};
use crate::backend::{FindAttr, HelperSession};
use crate::store::UnixTime;

/// One token, through a helper session.
pub(crate) struct BackendToken<'a> {
    pub(crate) session: HelperSession<'a>,
    pub(crate) serial: String,
}

fn terr(what: &'static str) -> impl Fn(crate::error::Error) -> TokenError {
    move |e| TokenError(format!("{what}: {e}"))
}

fn ulong_of(b: &[u8]) -> Option<CK_ULONG> {
    b.try_into().ok().map(CK_ULONG::from_ne_bytes)
}

/// `CK_DATE` ("YYYYMMDD", UTC) of a Unix time (days-to-civil, H. Hinnant).
pub fn ck_date(t: UnixTime) -> Vec<u8> {
    let (y, m, d) = crate::store::civil_date(t);
    format!("{y:04}{m:02}{d:02}").into_bytes()
}

/// A generation template's attribute as the backend takes it.
fn find_attr(a: &TemplateAttr) -> FindAttr {
    match a {
        TemplateAttr::Token(v) => FindAttr::Token(*v),
        TemplateAttr::Id(id) => FindAttr::Id(id.clone()),
        TemplateAttr::Label(l) => FindAttr::Label(l.clone()),
        TemplateAttr::StartDate(t) => FindAttr::Bytes(CKA_START_DATE, ck_date(*t)),
        TemplateAttr::Flag(ty, v) => FindAttr::Flag(*ty, *v),
        TemplateAttr::EcParams(p) => FindAttr::Bytes(CKA_EC_PARAMS, p.clone()),
        TemplateAttr::ModulusBits(b) => FindAttr::Ulong(CKA_MODULUS_BITS, *b),
        TemplateAttr::PublicExponent(e) => FindAttr::Bytes(CKA_PUBLIC_EXPONENT, e.clone()),
        TemplateAttr::ValueLen(n) => FindAttr::Ulong(CKA_VALUE_LEN, *n),
        TemplateAttr::KeyType(k) => FindAttr::KeyType(*k),
    }
}

impl BackendToken<'_> {
    fn handles(&self, find: &[FindAttr]) -> Result<Vec<CK_OBJECT_HANDLE>, TokenError> {
        self.session
            .find_objects(find)
            .map_err(terr("C_FindObjects"))
    }

    /// One attribute, `None` when the object does not have it (or it is sensitive).
    fn get(&self, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Option<Vec<u8>> {
        self.session.attribute_bytes(h, ty).ok()
    }

    fn describe(&self, h: CK_OBJECT_HANDLE) -> TokenObject {
        TokenObject {
            class: self
                .get(h, CKA_CLASS)
                .and_then(|b| ulong_of(&b))
                .map_or(u64::MAX, u64::from),
            id: self.get(h, CKA_ID).unwrap_or_default(),
            label: self
                .get(h, CKA_LABEL)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        }
    }

    fn objects(&self, find: &[FindAttr]) -> Result<Vec<TokenObject>, TokenError> {
        Ok(self
            .handles(find)?
            .into_iter()
            .map(|h| self.describe(h))
            .collect())
    }

    // CK_ULONG is `u64` here, `u32` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    fn flags(&self, h: CK_OBJECT_HANDLE) -> Vec<(u64, bool)> {
        COPIED_FLAGS
            .iter()
            .filter_map(|ty| match self.get(h, *ty).as_deref() {
                Some([v]) => Some((u64::from(*ty), *v != CK_FALSE)),
                _ => None,
            })
            .collect()
    }

    fn by_id_class(
        &self,
        id: &[u8],
        class: CK_OBJECT_CLASS,
    ) -> Result<Option<CK_OBJECT_HANDLE>, TokenError> {
        Ok(self
            .handles(&[FindAttr::Id(id.to_vec()), FindAttr::Class(class)])?
            .first()
            .copied())
    }
}

impl TokenOps for BackendToken<'_> {
    fn serial(&self) -> String {
        self.serial.clone()
    }

    fn find_by_id(&self, id: &[u8]) -> Result<Vec<TokenObject>, TokenError> {
        self.objects(&[FindAttr::Id(id.to_vec())])
    }

    fn find_by_label(&self, label: &str) -> Result<Vec<TokenObject>, TokenError> {
        self.objects(&[FindAttr::Label(label.to_owned())])
    }

    fn all_objects(&self) -> Result<Vec<TokenObject>, TokenError> {
        self.objects(&[])
    }

    fn shape(&self, id: &[u8]) -> Result<KeyShape, TokenError> {
        let private = self.by_id_class(id, CKO_PRIVATE_KEY)?;
        let public = self.by_id_class(id, CKO_PUBLIC_KEY)?;
        let (key, pair) = match private {
            Some(k) => (k, true),
            None => match self.by_id_class(id, CKO_SECRET_KEY)? {
                Some(k) => (k, false),
                None => {
                    return Err(TokenError(
                        "no private or secret key with that CKA_ID".into(),
                    ))
                }
            },
        };
        // Public values are read from the public key when there is one (a private
        // key may keep them unreadable).
        let read = |ty| {
            self.get(key, ty)
                .or_else(|| public.and_then(|p| self.get(p, ty)))
        };
        let key_type = read(CKA_KEY_TYPE)
            .and_then(|b| ulong_of(&b))
            .ok_or_else(|| TokenError("key without CKA_KEY_TYPE".into()))?;
        let ec_params = read(CKA_EC_PARAMS);
        let size_bits = if pair {
            read(CKA_MODULUS_BITS)
                .and_then(|b| ulong_of(&b))
                .and_then(|b| u32::try_from(b).ok())
                .or_else(|| read(CKA_MODULUS).and_then(|m| u32::try_from(m.len() * 8).ok()))
        } else {
            read(CKA_VALUE_LEN)
                .and_then(|b| ulong_of(&b))
                .and_then(|n| u32::try_from(n.saturating_mul(8)).ok())
        };
        Ok(KeyShape {
            algorithm: key_type_name(key_type).to_string(),
            size_bits,
            curve: ec_params
                .as_deref()
                .and_then(EcCurve::from_ec_params)
                .map(|c| c.name().to_owned()),
            ec_params,
            public_exponent: read(CKA_PUBLIC_EXPONENT),
            pair,
            private_flags: self.flags(key),
            public_flags: public.map(|p| self.flags(p)).unwrap_or_default(),
        })
    }

    fn generate(
        &self,
        shape: &KeyShape,
        id: &[u8],
        label: &str,
        start: UnixTime,
    ) -> Result<(), TokenError> {
        let g = shape.generation(id, label, start)?;
        let template = |t: &[TemplateAttr]| t.iter().map(find_attr).collect::<Vec<_>>();
        let public = g.public.as_deref().map(template);
        self.session
            .generate(
                g.mechanism.mechanism(),
                public.as_deref(),
                &template(&g.private),
            )
            .map(|_| ())
            .map_err(terr("generate"))
    }

    fn set_dates(
        &self,
        id: &[u8],
        start: Option<UnixTime>,
        end: Option<UnixTime>,
    ) -> Result<(), TokenError> {
        let mut t = Vec::new();
        if let Some(s) = start {
            t.push(FindAttr::Bytes(CKA_START_DATE, ck_date(s)));
        }
        if let Some(e) = end {
            t.push(FindAttr::Bytes(CKA_END_DATE, ck_date(e)));
        }
        for h in self.handles(&[FindAttr::Id(id.to_vec())])? {
            self.session
                .set_attributes(h, &t)
                .map_err(terr("C_SetAttributeValue"))?;
        }
        Ok(())
    }

    fn set_label(&self, id: &[u8], label: &str) -> Result<(), TokenError> {
        for h in self.handles(&[FindAttr::Id(id.to_vec())])? {
            self.session
                .set_attributes(h, &[FindAttr::Label(label.to_owned())])
                .map_err(terr("C_SetAttributeValue"))?;
        }
        Ok(())
    }

    fn destroy(&self, id: &[u8]) -> Result<usize, TokenError> {
        let handles = self.handles(&[FindAttr::Id(id.to_vec())])?;
        for h in &handles {
            self.session.destroy(*h).map_err(terr("C_DestroyObject"))?;
        }
        Ok(handles.len())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ck_dates_are_utc_days() {
        assert_eq!(super::ck_date(0), b"19700101");
        assert_eq!(super::ck_date(951_782_400), b"20000229");
        assert_eq!(super::ck_date(1_798_761_599), b"20261231");
    }
}
