//! [`TokenOps`] over a real token with `cryptoki` (the CLI's own connection to the
//! backend module named by the configuration; never through Keywarden's `ffi`).
//!
//! The user PIN comes from `--pin-file` or one line of standard input — never from
//! the command line, where it would be visible in `/proc/PID/cmdline` and shell
//! history — and every buffer that held it is zeroized.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Date};
use pkcs11_sys::{
    CKA_DECRYPT, CKA_DERIVE, CKA_ENCRYPT, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN,
    CKA_UNWRAP, CKA_VERIFY, CKA_WRAP, CK_ULONG,
};
use zeroize::Zeroizing;

use crate::abi::{key_type_name, EcCurve};
use crate::error::{Error, Result};
use crate::lifecycle::{
    KeyGen, KeyShape, TemplateAttr, TokenError, TokenObject, TokenOps, COPIED_FLAGS,
};
use crate::store::UnixTime;

/// Which token, and how to log in to it.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TokenArgs {
    /// Token label (default: the only initialised token).
    #[arg(long, global = true)]
    token: Option<String>,
    /// Token serial number, instead of the label.
    #[arg(long, global = true, conflicts_with = "token")]
    serial: Option<String>,
    /// File holding the user PIN (first line). Default: the configuration's
    /// `backend.pin_file`, else the PIN is read from stdin (without echo on a terminal).
    #[arg(long, global = true)]
    pin_file: Option<PathBuf>,
}

/// The cryptoki attribute of one of `lifecycle::COPIED_FLAGS` (`None` for another code).
fn flag_attribute(code: CK_ULONG, value: bool) -> Option<Attribute> {
    Some(match code {
        CKA_SIGN => Attribute::Sign(value),
        CKA_VERIFY => Attribute::Verify(value),
        CKA_ENCRYPT => Attribute::Encrypt(value),
        CKA_DECRYPT => Attribute::Decrypt(value),
        CKA_WRAP => Attribute::Wrap(value),
        CKA_UNWRAP => Attribute::Unwrap(value),
        CKA_DERIVE => Attribute::Derive(value),
        CKA_SENSITIVE => Attribute::Sensitive(value),
        CKA_EXTRACTABLE => Attribute::Extractable(value),
        CKA_PRIVATE => Attribute::Private(value),
        _ => return None,
    })
}

/// The value of one of `lifecycle::COPIED_FLAGS` read from a token: `(CKA_*, value)`.
fn flag_value(a: &Attribute) -> Option<(CK_ULONG, bool)> {
    let code = CK_ULONG::from(a.attribute_type());
    [true, false]
        .into_iter()
        .find(|v| flag_attribute(code, *v).as_ref() == Some(a))
        .map(|v| (code, v))
}

/// A generation template's attribute as cryptoki takes it (`None` for a flag
/// cryptoki has no attribute for).
fn attribute(a: &TemplateAttr) -> std::result::Result<Option<Attribute>, TokenError> {
    Ok(Some(match a {
        TemplateAttr::Token(v) => Attribute::Token(*v),
        TemplateAttr::Id(id) => Attribute::Id(id.clone()),
        TemplateAttr::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
        TemplateAttr::StartDate(t) => Attribute::StartDate(date(*t)?),
        TemplateAttr::Flag(c, v) => return Ok(flag_attribute(*c, *v)),
        TemplateAttr::EcParams(p) => Attribute::EcParams(p.clone()),
        TemplateAttr::ModulusBits(b) => Attribute::ModulusBits((*b).into()),
        TemplateAttr::PublicExponent(e) => Attribute::PublicExponent(e.clone()),
        TemplateAttr::ValueLen(n) => Attribute::ValueLen((*n).into()),
        TemplateAttr::KeyType(k) => {
            Attribute::KeyType(KeyType::try_from(*k).map_err(terr("CKA_KEY_TYPE"))?)
        }
    }))
}

fn mechanism(g: KeyGen) -> Mechanism<'static> {
    match g {
        KeyGen::EcKeyPair => Mechanism::EccKeyPairGen,
        KeyGen::EcEdwardsKeyPair => Mechanism::EccEdwardsKeyPairGen,
        KeyGen::RsaPkcsKeyPair => Mechanism::RsaPkcsKeyPairGen,
        KeyGen::AesKey => Mechanism::AesKeyGen,
        KeyGen::GenericSecretKey => Mechanism::GenericSecretKeyGen,
    }
}

fn terr(what: &str) -> impl Fn(cryptoki::error::Error) -> TokenError + '_ {
    move |e| TokenError(format!("{what}: {e}"))
}

/// A logged-in read-write session on the chosen token.
pub(crate) struct CryptokiToken {
    session: Session,
    serial: String,
}

impl CryptokiToken {
    /// Loads `module`, picks the token, reads the PIN and logs in as the user.
    pub(crate) fn open(
        module: &Path,
        args: &TokenArgs,
        configured_pin_file: Option<&Path>,
    ) -> Result<CryptokiToken> {
        let fail = |what: &str| {
            let what = what.to_owned();
            move |e: cryptoki::error::Error| Error::Load(format!("{what}: {e}"))
        };
        let p11 = Pkcs11::new(module).map_err(fail("load module"))?;
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(fail("C_Initialize"))?;
        let mut chosen = Vec::new();
        for slot in p11.get_slots_with_token().map_err(fail("slots"))? {
            let info = p11.get_token_info(slot).map_err(fail("token info"))?;
            let wanted = match (&args.token, &args.serial) {
                (Some(l), _) => info.label() == l.as_str(),
                (None, Some(s)) => info.serial_number().trim() == s.as_str(),
                (None, None) => info.token_initialized(),
            };
            if wanted {
                chosen.push((
                    slot,
                    info.serial_number().trim().to_owned(),
                    info.label().trim().to_owned(),
                ));
            }
        }
        let (slot, serial, label) = match chosen.len() {
            1 => chosen.remove(0),
            0 => {
                return Err(Error::Request(match (&args.token, &args.serial) {
                    (Some(l), _) => format!("no token labelled {l:?} (keywarden doctor lists the tokens)"),
                    (None, Some(s)) => format!("no token with serial {s:?} (keywarden doctor lists the tokens)"),
                    (None, None) => "no initialised token: initialise one (softhsm2-util --init-token, or the HSM's tool)".into(),
                }))
            }
            _ => {
                return Err(Error::Request(
                    "several tokens match: choose one with --token LABEL or --serial S".into(),
                ))
            }
        };
        let pin = read_pin(args.pin_file.as_deref().or(configured_pin_file))?;
        let session = p11.open_rw_session(slot).map_err(fail("C_OpenSession"))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.as_str().into())))
            .map_err(|e| match e {
                cryptoki::error::Error::Pkcs11(rv, _) => Error::Request(match rv {
                    RvError::PinIncorrect => {
                        format!("CKR_PIN_INCORRECT: the user PIN was refused by token {label:?}")
                    }
                    RvError::PinLenRange => format!(
                        "CKR_PIN_LEN_RANGE: the user PIN has a length token {label:?} never accepts"
                    ),
                    RvError::PinLocked => format!(
                        "CKR_PIN_LOCKED: the user PIN of token {label:?} is locked (the SO must reset it)"
                    ),
                    other => format!("C_Login on token {label:?} failed: {other}"),
                }),
                other => Error::Load(format!("C_Login: {other}")),
            })?;
        Ok(CryptokiToken { session, serial })
    }

    fn find(&self, template: &[Attribute]) -> std::result::Result<Vec<ObjectHandle>, TokenError> {
        let mut out = Vec::new();
        for class in [
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::SECRET_KEY,
            ObjectClass::CERTIFICATE,
        ] {
            let mut t = template.to_vec();
            t.push(Attribute::Class(class));
            out.extend(
                self.session
                    .find_objects(&t)
                    .map_err(terr("C_FindObjects"))?,
            );
        }
        Ok(out)
    }

    fn describe(&self, h: ObjectHandle) -> std::result::Result<TokenObject, TokenError> {
        let attrs = self
            .session
            .get_attributes(
                h,
                &[
                    AttributeType::Class,
                    AttributeType::Id,
                    AttributeType::Label,
                ],
            )
            .map_err(terr("C_GetAttributeValue"))?;
        let mut o = TokenObject {
            class: 0,
            id: Vec::new(),
            label: String::new(),
        };
        for a in attrs {
            match a {
                Attribute::Class(c) => o.class = CK_ULONG::from(c),
                Attribute::Id(id) => o.id = id,
                Attribute::Label(l) => o.label = String::from_utf8_lossy(&l).into_owned(),
                _ => {}
            }
        }
        Ok(o)
    }

    fn objects(&self, template: &[Attribute]) -> std::result::Result<Vec<TokenObject>, TokenError> {
        self.find(template)?
            .into_iter()
            .map(|h| self.describe(h))
            .collect()
    }

    fn flags(&self, h: ObjectHandle) -> std::result::Result<Vec<(CK_ULONG, bool)>, TokenError> {
        let types: Vec<AttributeType> = COPIED_FLAGS
            .iter()
            .filter_map(|c| AttributeType::try_from(*c).ok())
            .collect();
        let attrs = self
            .session
            .get_attributes(h, &types)
            .map_err(terr("C_GetAttributeValue"))?;
        Ok(attrs.iter().filter_map(flag_value).collect())
    }

    fn handles(
        &self,
        id: &[u8],
        class: ObjectClass,
    ) -> std::result::Result<Vec<ObjectHandle>, TokenError> {
        self.session
            .find_objects(&[Attribute::Id(id.to_vec()), Attribute::Class(class)])
            .map_err(terr("C_FindObjects"))
    }
}

/// A token date (`CK_DATE`, UTC day) for a Unix time.
fn date(t: UnixTime) -> std::result::Result<Date, TokenError> {
    let s = super::super::format_utc(t);
    let (y, m, d) = (s.get(0..4), s.get(5..7), s.get(8..10));
    match (y, m, d) {
        (Some(y), Some(m), Some(d)) => Date::new_from_str_slice(y, m, d).map_err(terr("date")),
        _ => Err(TokenError(format!("cannot express {t} as a date"))),
    }
}

impl TokenOps for CryptokiToken {
    fn serial(&self) -> String {
        self.serial.clone()
    }

    fn find_by_id(&self, id: &[u8]) -> std::result::Result<Vec<TokenObject>, TokenError> {
        self.objects(&[Attribute::Id(id.to_vec())])
    }

    fn find_by_label(&self, label: &str) -> std::result::Result<Vec<TokenObject>, TokenError> {
        self.objects(&[Attribute::Label(label.as_bytes().to_vec())])
    }

    fn all_objects(&self) -> std::result::Result<Vec<TokenObject>, TokenError> {
        self.objects(&[])
    }

    fn shape(&self, id: &[u8]) -> std::result::Result<KeyShape, TokenError> {
        let private = self.handles(id, ObjectClass::PRIVATE_KEY)?;
        let public = self.handles(id, ObjectClass::PUBLIC_KEY)?;
        let secret = self.handles(id, ObjectClass::SECRET_KEY)?;
        let (key, pair) = match (private.first(), secret.first()) {
            (Some(k), _) => (*k, true),
            (None, Some(k)) => (*k, false),
            (None, None) => {
                return Err(TokenError(format!(
                    "no private or secret key with CKA_ID {}",
                    super::hex(id)
                )))
            }
        };
        let wanted = [
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::ModulusBits,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::ValueLen,
        ];
        let mut attrs = self
            .session
            .get_attributes(key, &wanted)
            .map_err(terr("C_GetAttributeValue"))?;
        if let Some(p) = public.first() {
            attrs.extend(
                self.session
                    .get_attributes(*p, &wanted)
                    .map_err(terr("C_GetAttributeValue"))?,
            );
        }
        let mut shape = KeyShape {
            algorithm: String::new(),
            size_bits: None,
            curve: None,
            ec_params: None,
            public_exponent: None,
            pair,
            private_flags: self.flags(key)?,
            public_flags: match public.first() {
                Some(p) => self.flags(*p)?,
                None => Vec::new(),
            },
        };
        for a in attrs {
            match a {
                Attribute::KeyType(t) => {
                    shape.algorithm = key_type_name(CK_ULONG::from(t)).to_string();
                }
                Attribute::EcParams(p) => {
                    shape.curve = EcCurve::from_ec_params(&p).map(|c| c.name().to_owned());
                    shape.ec_params = Some(p);
                }
                Attribute::ModulusBits(b) => {
                    shape.size_bits = u32::try_from(CK_ULONG::from(b)).ok();
                }
                Attribute::Modulus(m) if shape.size_bits.is_none() => {
                    shape.size_bits = u32::try_from(m.len() * 8).ok();
                }
                Attribute::PublicExponent(e) => shape.public_exponent = Some(e),
                Attribute::ValueLen(n) if !pair => {
                    shape.size_bits = u32::try_from(CK_ULONG::from(n) * 8).ok();
                }
                _ => {}
            }
        }
        if shape.algorithm.is_empty() {
            return Err(TokenError("key without CKA_KEY_TYPE".into()));
        }
        Ok(shape)
    }

    fn generate(
        &self,
        shape: &KeyShape,
        id: &[u8],
        label: &str,
        start: UnixTime,
    ) -> std::result::Result<(), TokenError> {
        // A start the token cannot hold as a date fails before anything else.
        date(start)?;
        let g = shape.generation(id, label, start)?;
        let template = |t: &[TemplateAttr]| -> std::result::Result<Vec<Attribute>, TokenError> {
            let mut out = Vec::with_capacity(t.len());
            for a in t {
                out.extend(attribute(a)?);
            }
            Ok(out)
        };
        let private = template(&g.private)?;
        let mechanism = mechanism(g.mechanism);
        match &g.public {
            Some(public) => {
                self.session
                    .generate_key_pair(&mechanism, &template(public)?, &private)
                    .map_err(terr("C_GenerateKeyPair"))?;
            }
            None => {
                self.session
                    .generate_key(&mechanism, &private)
                    .map_err(terr("C_GenerateKey"))?;
            }
        }
        Ok(())
    }

    fn set_dates(
        &self,
        id: &[u8],
        start: Option<UnixTime>,
        end: Option<UnixTime>,
    ) -> std::result::Result<(), TokenError> {
        let mut t = Vec::new();
        if let Some(s) = start {
            t.push(Attribute::StartDate(date(s)?));
        }
        if let Some(e) = end {
            t.push(Attribute::EndDate(date(e)?));
        }
        for h in self.find(&[Attribute::Id(id.to_vec())])? {
            self.session
                .update_attributes(h, &t)
                .map_err(terr("C_SetAttributeValue"))?;
        }
        Ok(())
    }

    fn set_label(&self, id: &[u8], label: &str) -> std::result::Result<(), TokenError> {
        for h in self.find(&[Attribute::Id(id.to_vec())])? {
            self.session
                .update_attributes(h, &[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(terr("C_SetAttributeValue"))?;
        }
        Ok(())
    }

    fn destroy(&self, id: &[u8]) -> std::result::Result<usize, TokenError> {
        let handles = self.find(&[Attribute::Id(id.to_vec())])?;
        for h in &handles {
            self.session
                .destroy_object(*h)
                .map_err(terr("C_DestroyObject"))?;
        }
        Ok(handles.len())
    }
}

/// The user PIN: the first line of `file`, else one line of standard input.
/// The user PIN from `file` (refused if others can read it), else standard input.
pub(crate) fn read_pin(file: Option<&Path>) -> Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    match file {
        Some(f) => {
            // The same rule as the module's backend.pin_file: owner-only (a PIN
            // others can read is not a secret any more), owned by this user or
            // root, nobody else may write it.
            use std::io::Read;
            let mut file = crate::fsguard::open_checked(
                f,
                crate::fsguard::Kind::Secret,
                crate::fsguard::Sharing::default(),
            )
            .map_err(|e| Error::Config(format!("the PIN file {e}")))?;
            let mut text = Zeroizing::new(String::new());
            file.read_to_string(&mut text).map_err(|e| {
                Error::Config(format!("cannot read the PIN file {}: {e}", f.display()))
            })?;
            line.push_str(text.lines().next().unwrap_or(""));
        }
        None if std::io::stdin().is_terminal() => {
            // Never echo a PIN typed at a terminal.
            let typed = Zeroizing::new(
                rpassword::prompt_password("user PIN: ")
                    .map_err(|e| Error::Config(format!("cannot read the PIN: {e}")))?,
            );
            line.push_str(&typed);
        }
        None => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Config(format!("cannot read the PIN from stdin: {e}")))?;
        }
    }
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pin.is_empty() {
        return Err(Error::Request(
            "empty user PIN (give it with --pin-file, backend.pin_file, or on standard input)"
                .into(),
        ));
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every attribute a rotation copies is one cryptoki can write and read back:
    /// none is dropped on the CLI's side.
    #[test]
    fn every_copied_flag_round_trips_through_cryptoki() {
        for code in COPIED_FLAGS {
            assert!(AttributeType::try_from(code).is_ok(), "{code:#x}");
            for v in [true, false] {
                let a = flag_attribute(code, v).unwrap_or_else(|| panic!("{code:#x}"));
                assert_eq!(CK_ULONG::from(a.attribute_type()), code);
                assert_eq!(flag_value(&a), Some((code, v)));
            }
        }
    }
}
